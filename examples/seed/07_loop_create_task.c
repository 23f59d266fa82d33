/* Seed 07: loop.create_task + run_until_complete(task), then asyncio.create_task inside main.
 * Port of 07_loop_create_task.py. */
#include <stdio.h>

#include <weft.h>

static int my_coroutine(void *arg, void **result) {
    printf("Hello, Asyncio!\n");
    int rc = weft_sleep(1);
    if (rc < 0)
        return rc;
    printf("Goodbye, Asyncio!\n");
    return 0;
}

static int my_other_coroutine(void *arg, void **result) {
    int rc = weft_sleep(2);
    if (rc < 0)
        return rc;
    printf("Completed my other coroutine\n");
    return 0;
}

static int my_third_coroutine(void *arg, void **result) {
    int rc = weft_sleep(2);
    if (rc < 0)
        return rc;
    printf("Finished my third coroutine\n");
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task;
    int rc = weft_create_task(&task, my_third_coroutine, NULL, NULL);
    if (rc < 0)
        return rc;
    rc = weft_await(task, NULL);
    weft_unref(task);
    return rc;
}

int main(void) {
    weft_loop_t *loop;
    weft_task_t *task;
    int rc = weft_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(rc));
        return 1;
    }
    /* loop.run_until_complete(my_coroutine()): the coroutine is wrapped in a task */
    rc = weft_loop_create_task(loop, &task, my_coroutine, NULL, NULL);
    if (rc == 0) {
        rc = weft_loop_run_until_complete(loop, task, NULL);
        weft_unref(task);
    }
    /* task = loop.create_task(my_other_coroutine()); loop.run_until_complete(task) */
    if (rc == 0)
        rc = weft_loop_create_task(loop, &task, my_other_coroutine, NULL, NULL);
    if (rc == 0) {
        rc = weft_loop_run_until_complete(loop, task, NULL);
        weft_unref(task);
    }
    weft_loop_close(loop);

    if (rc == 0)
        rc = weft_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "error: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
