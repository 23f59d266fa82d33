/* Seed 02: explicit loop management with run_until_complete. Port of 02_explicit_loop.py. */
#include <stdio.h>

#include <weft.h>

static int fetch_data(void *arg, void **result) {
    int rc = weft_sleep(0.5);
    if (rc < 0)
        return rc;
    *result = (void *)"Data Retrieved";
    return 0;
}

int main(void) {
    weft_loop_t *loop;
    weft_task_t *task;
    void *result;
    int rc = weft_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(rc));
        return 1;
    }
    /* asyncio.set_event_loop(loop) has no counterpart: a loop is the current one while it runs.
     * run_until_complete(fetch_data()) wraps the coroutine in a task; in C the task is explicit. */
    rc = weft_loop_create_task(loop, &task, fetch_data, NULL, NULL);
    if (rc == 0) {
        rc = weft_loop_run_until_complete(loop, task, &result);
        weft_unref(task);
    }
    if (rc == 0)
        printf("%s\n", (const char *)result);
    else
        fprintf(stderr, "fetch_data: %s (%s)\n", weft_error_message(), weft_err_name(rc));
    weft_loop_close(loop); /* finally: loop.close() */
    return rc == 0 ? 0 : 1;
}
