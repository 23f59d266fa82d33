/* Seed 09: a task runs while main does other work, then main awaits it.
 * Port of 09_task_other_work.py. */
#include <stdio.h>

#include <weft.h>

/* The dict {'data': ...}: a struct in C. */
struct record {
    const char *data;
};

static int fetch_data(void *arg, void **result) {
    static const struct record sample = {.data = "sample data"};
    int rc = weft_sleep(2);
    if (rc < 0)
        return rc;
    *result = (void *)&sample;
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task;
    void *value;
    int rc = weft_create_task(&task, fetch_data, NULL, NULL);
    if (rc < 0)
        return rc;
    printf("Performing other operations...\n");
    rc = weft_await(task, &value);
    weft_unref(task);
    if (rc < 0)
        return rc;
    const struct record *r = value;
    printf("Result: {'data': '%s'}\n", r->data);
    return 0;
}

int main(void) {
    int rc = weft_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "main: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
