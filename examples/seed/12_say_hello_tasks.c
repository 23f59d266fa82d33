/* Seed 12: three tasks with different delays, awaited one by one.
 * Port of 12_say_hello_tasks.py. */
#include <stdio.h>

#include <weft.h>

struct say_hello_args {
    const char *name;
    int delay;
};

static int say_hello(void *arg, void **result) {
    const struct say_hello_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc < 0)
        return rc;
    printf("Hello, %s\n", args->name);
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct say_hello_args alice = {"Alice", 2}, bob = {"Bob", 1}, charlie = {"Charlie", 3};
    weft_task_t *task1 = NULL, *task2 = NULL, *task3 = NULL;
    int rc;
    if ((rc = weft_create_task(&task1, say_hello, &alice, NULL)) == 0 &&
        (rc = weft_create_task(&task2, say_hello, &bob, NULL)) == 0 &&
        (rc = weft_create_task(&task3, say_hello, &charlie, NULL)) == 0) {
        /* await task1; await task2; await task3 */
        if ((rc = weft_await(task1, NULL)) == 0 && (rc = weft_await(task2, NULL)) == 0)
            rc = weft_await(task3, NULL);
    }
    weft_unref(task1);
    weft_unref(task2);
    weft_unref(task3);
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
