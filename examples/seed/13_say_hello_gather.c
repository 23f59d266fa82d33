/* Seed 13: the same three, gathered. Port of 13_say_hello_gather.py. */
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
    static struct say_hello_args args[] = {{"Alice", 2}, {"Bob", 1}, {"Charlie", 3}};
    weft_task_t *tasks[3] = {NULL};
    int rc = 0;
    /* tasks = [say_hello(...), ...]: gather wraps coroutines in tasks, C creates them itself */
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = weft_create_task(&tasks[i], say_hello, &args[i], NULL);
    if (rc == 0)
        rc = weft_gather(tasks, 3, NULL);
    for (int i = 0; i < 3; i++)
        weft_unref(tasks[i]);
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
