/* Seed 16: cancel one task, gather with return_exceptions=True.
 * Port of 16_cancel_gather_return_exceptions.py. */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

struct say_hello_args {
    const char *name;
    int delay;
};

static int say_hello(void *arg, void **result) {
    const struct say_hello_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc == 0)
        printf("Hello, %s\n", args->name);
    /* the C counterpart of `except asyncio.CancelledError:` */
    if (rc == -ECANCELED) {
        printf("Task for %s was cancelled\n", args->name);
        rc = 0; /* not re-raised: the task swallows the cancellation and returns None */
    }
    return rc;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct say_hello_args alice = {"Alice", 3}, bob = {"Bob", 1};
    weft_task_t *task1 = NULL, *task2 = NULL;
    void *results[2];
    int codes[2]; /* the outcomes, unused as the Python ignores gather's list */
    int rc;
    if ((rc = weft_create_task(&task1, say_hello, &alice, NULL)) == 0 &&
        (rc = weft_create_task(&task2, say_hello, &bob, NULL)) == 0 &&
        (rc = weft_sleep(1.5)) == 0) {
        weft_cancel(task1, NULL);
        rc = weft_gather_all((weft_task_t *[]){task1, task2}, 2, results, codes);
    }
    weft_unref(task1);
    weft_unref(task2);
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
