/* Seed 24: a task that handles its own cancellation and returns a value; wait_for timeouts.
 * Port of 24_cancel_and_timeout.py. */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

static int long_running_task(void *arg, void **result) {
    int rc = weft_sleep(10);
    if (rc == 0) {
        *result = (void *)"Task completed successfully";
        return 0;
    }
    /* the C counterpart of `except asyncio.CancelledError:` */
    if (rc == -ECANCELED) {
        printf("Task was cancelled\n");
        *result = (void *)"Task cancelled"; /* returning 0 swallows the cancellation */
        return 0;
    }
    return rc;
}

/* asyncio.sleep(delay, result) as a task: wait_for() takes a future, and Python's wait_for
 * wraps the sleep coroutine in a task too. */
struct sleep_args {
    double delay;
    const char *result;
};

static int sleep_task(void *arg, void **result) {
    const struct sleep_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc < 0)
        return rc;
    *result = (void *)args->result;
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct sleep_args ten = {10, NULL}, in_time = {0.1, "in time"};
    weft_task_t *task, *sleeper;
    void *value;
    int rc = weft_create_task(&task, long_running_task, NULL, NULL);
    if (rc < 0)
        return rc;
    rc = weft_sleep(1);
    if (rc == 0) {
        weft_cancel(task, NULL);
        rc = weft_await(task, &value);
    }
    weft_unref(task);
    if (rc < 0)
        return rc;
    printf("%s\n", (const char *)value);

    /* try: await asyncio.wait_for(asyncio.sleep(10), timeout=0.5) */
    if ((rc = weft_create_task(&sleeper, sleep_task, &ten, NULL)) < 0)
        return rc;
    rc = weft_wait_for(sleeper, 0.5, NULL);
    weft_unref(sleeper);
    /* except asyncio.TimeoutError: */
    if (rc == -ETIMEDOUT)
        printf("wait_for timed out\n");
    else if (rc < 0)
        return rc;

    /* print(await asyncio.wait_for(asyncio.sleep(0.1, result="in time"), timeout=1)) */
    if ((rc = weft_create_task(&sleeper, sleep_task, &in_time, NULL)) < 0)
        return rc;
    rc = weft_wait_for(sleeper, 1, &value);
    weft_unref(sleeper);
    if (rc < 0)
        return rc;
    printf("%s\n", (const char *)value);
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
