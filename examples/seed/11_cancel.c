/* Seed 11: cancel a task; it sees the cancellation, re-raises, and the awaiter handles it.
 * Port of 11_cancel.py. */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

static int fetch_data(void *arg, void **result) {
    int rc = weft_sleep(5);
    /* the C counterpart of `except asyncio.CancelledError:` */
    if (rc == -ECANCELED) {
        printf("Task was cancelled\n");
        return rc; /* raise: the task ends cancelled */
    }
    return rc;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task;
    int rc = weft_create_task(&task, fetch_data, NULL, NULL);
    if (rc < 0)
        return rc;
    rc = weft_sleep(1);
    if (rc == 0) {
        weft_cancel(task, NULL);
        /* try: await task  except asyncio.CancelledError: */
        rc = weft_await(task, NULL);
        if (rc == -ECANCELED) {
            printf("Handled task cancellation\n");
            rc = 0;
        }
    }
    weft_unref(task);
    return rc;
}

int main(void) {
    int rc = weft_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "main: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
