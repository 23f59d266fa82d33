/* Seed 21: a low-level future made by the loop, resolved by another task, awaited.
 * Port of 21_create_future.py. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

struct resolve_later_args {
    weft_future_t *fut;
    double delay;
    int value;
};

static int resolve_later(void *arg, void **result) {
    const struct resolve_later_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc < 0)
        return rc;
    return weft_future_set_result(args->fut, (void *)(intptr_t)args->value);
}

/* bad.set_exception(ValueError("boom")) as a call_later callback (ValueError is -EINVAL) */
static void set_exception_boom(void *bad) {
    weft_future_set_error(bad, -EINVAL, "boom");
}

static const char *py_bool(int b) { return b ? "True" : "False"; }

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct resolve_later_args args = {.delay = 0.5, .value = 42};
    weft_loop_t *loop = weft_get_running_loop();
    weft_future_t *fut, *bad;
    void *value, *fut_result;
    int rc = weft_loop_create_future(loop, &fut);
    if (rc < 0)
        return rc;
    printf("done before: %s\n", py_bool(weft_future_done(fut)));
    args.fut = fut;
    rc = weft_loop_create_task(loop, NULL, resolve_later, &args, NULL);
    if (rc == 0)
        rc = weft_await(fut, &value);
    if (rc == 0) {
        printf("awaited: %d\n", (int)(intptr_t)value);
        weft_future_result(fut, &fut_result);
        printf("done after: %s result: %d\n", py_bool(weft_future_done(fut)),
               (int)(intptr_t)fut_result);
    }
    weft_unref(fut);
    if (rc < 0)
        return rc;

    if ((rc = weft_loop_create_future(loop, &bad)) < 0)
        return rc;
    rc = weft_call_later(loop, 0.2, set_exception_boom, bad, NULL);
    if (rc == 0) {
        /* try: await bad  except ValueError as e: */
        rc = weft_await(bad, NULL);
        if (rc == -EINVAL) {
            printf("awaited exception: %s\n", weft_error_message());
            rc = 0;
        }
    }
    weft_unref(bad);
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
