/* Seed 17: a background task that loops until it is cancelled.
 * Port of 17_background_task.py. */
#include <stdio.h>

#include <weft.h>

static int background_task(void *arg, void **result) {
    for (;;) {
        printf("Running in the background...\n");
        /* Once cancelled, weft_sleep returns -ECANCELED (every time: cancellation is sticky),
         * and returning it ends the loop as the CancelledError does in Python. */
        int rc = weft_sleep(5);
        if (rc < 0)
            return rc;
    }
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task;
    int rc = weft_create_task(&task, background_task, NULL, NULL);
    if (rc < 0)
        return rc;
    rc = weft_sleep(15);
    weft_cancel(task, NULL);
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
