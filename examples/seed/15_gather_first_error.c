/* Seed 15: "If any coroutine raises an unhandled exception, gather immediately raises the
 * first exception". Port of 15_gather_first_error.py. */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

struct ok_args {
    const char *name;
    double delay;
};

struct bad_args {
    double delay;
};

static int ok(void *arg, void **result) {
    const struct ok_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc < 0)
        return rc;
    printf("%s done\n", args->name);
    *result = (void *)args->name;
    return 0;
}

/* ValueError is -EINVAL here: errors are negative codes, with a message. */
static int bad(void *arg, void **result) {
    const struct bad_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc < 0)
        return rc;
    return weft_fail(-EINVAL, "bad after %g", args->delay); /* raise ValueError(...) */
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct ok_args slow = {"slow", 2}, fast = {"fast", 0.2}, a = {"a", 0.1};
    static struct bad_args half = {0.5}, fifth = {0.2};
    weft_loop_t *loop = weft_get_running_loop();
    double t0 = weft_loop_time(loop);
    weft_task_t *t[3] = {NULL};
    void *results[2];
    int codes[2];
    int rc;

    /* try: await asyncio.gather(ok('slow', 2), bad(0.5), ok('fast', 0.2)) */
    if ((rc = weft_create_task(&t[0], ok, &slow, NULL)) == 0 &&
        (rc = weft_create_task(&t[1], bad, &half, NULL)) == 0 &&
        (rc = weft_create_task(&t[2], ok, &fast, NULL)) == 0)
        rc = weft_gather(t, 3, NULL);
    /* except ValueError as e: */
    if (rc == -EINVAL) {
        printf("gather raised: %s at %.1fs\n", weft_error_message(), weft_loop_time(loop) - t0);
        rc = 0;
    }
    /* The tasks still running are not cancelled: releasing them is fire-and-forget. */
    for (int i = 0; i < 3; i++)
        weft_unref(t[i]);
    if (rc < 0)
        return rc;

    rc = weft_sleep(2); /* the other awaitables are not cancelled: 'slow' still finishes */
    if (rc < 0)
        return rc;

    /* results = await asyncio.gather(ok('a', 0.1), bad(0.2), return_exceptions=True) */
    t[0] = t[1] = NULL;
    if ((rc = weft_create_task(&t[0], ok, &a, NULL)) == 0 &&
        (rc = weft_create_task(&t[1], bad, &fifth, NULL)) == 0)
        rc = weft_gather_all(t, 2, results, codes);
    if (rc == 0) {
        for (int i = 0; i < 2; i++) {
            if (codes[i] < 0) /* isinstance(r, BaseException) */
                printf("error: %s\n", weft_future_error_message(t[i]));
            else
                printf("result: %s\n", (const char *)results[i]);
        }
    }
    weft_unref(t[0]);
    weft_unref(t[1]);
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
