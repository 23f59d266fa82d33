/* Seed 01: coroutine basics (execute_worker). Port of 01_worker.py. */
#include <stdio.h>

#include <weft.h>

/* async def execute_worker(): a task body returns 0 and its value in *result, or an error. */
static int execute_worker(void *arg, void **result) {
    printf("Worker task initialized\n");
    int rc = weft_sleep(1);
    if (rc < 0)
        return rc;
    printf("Worker task completed\n");
    *result = (void *)"Done";
    return 0;
}

int main(void) {
    void *result;
    int rc = weft_run(execute_worker, NULL, &result);
    if (rc < 0) {
        fprintf(stderr, "execute_worker: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    printf("%s\n", (const char *)result);
    return 0;
}
