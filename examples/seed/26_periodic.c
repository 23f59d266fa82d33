/* Seed 26: a periodic task (interval shortened to 0.2 s, stopped after 1.1 s).
 * Port of 26_periodic.py. */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

static int monitor(void *arg, void **result) {
    for (;;) {
        printf("Monitoring system status...\n");
        int rc = weft_sleep(0.2);
        if (rc < 0) /* cancelled: the loop ends, as CancelledError ends it in Python */
            return rc;
    }
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task;
    weft_future_t *gather;
    int rc = weft_create_task(&task, monitor, NULL, NULL);
    if (rc < 0)
        return rc;
    /* asyncio.gather(monitor()) as a future: cancelling it (wait_for does) cancels monitor */
    rc = weft_loop_gather(weft_get_running_loop(), &task, 1, 0, &gather);
    if (rc == 0) {
        /* try: await asyncio.wait_for(asyncio.gather(monitor()), timeout=1.1) */
        rc = weft_wait_for(gather, 1.1, NULL);
        /* except asyncio.TimeoutError: */
        if (rc == -ETIMEDOUT) {
            printf("stopped\n");
            rc = 0;
        }
        weft_unref(gather);
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
