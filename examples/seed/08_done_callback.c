/* Seed 08: add_done_callback on a task. Port of 08_done_callback.py. */
#include <stdio.h>

#include <weft.h>

/* A task is a future: its done callbacks get it as a weft_future_t. */
static void on_task_done(weft_future_t *task, void *arg) {
    void *result;
    if (weft_future_result(task, &result) == 0)
        printf("Task completed with result: %s\n", (const char *)result);
    else
        fprintf(stderr, "Task failed: %s\n", weft_future_error_message(task));
}

static int sample_coroutine(void *arg, void **result) {
    int rc = weft_sleep(1);
    if (rc < 0)
        return rc;
    *result = (void *)"Hello from coroutine!";
    return 0;
}

int main(void) {
    weft_loop_t *loop;
    weft_task_t *task;
    int rc = weft_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(rc));
        return 1;
    }
    rc = weft_loop_create_task(loop, &task, sample_coroutine, NULL, NULL);
    if (rc == 0) {
        rc = weft_future_add_done_callback(task, on_task_done, NULL);
        if (rc == 0)
            rc = weft_loop_run_until_complete(loop, task, NULL);
        weft_unref(task);
    }
    weft_loop_close(loop);
    if (rc < 0) {
        fprintf(stderr, "sample_coroutine: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
