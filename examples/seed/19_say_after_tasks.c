/* Seed 19: as tasks they overlap: 2 s instead of 3 s. Port of 19_say_after_tasks.py. */
#include <stdio.h>
#include <time.h>

#include <weft.h>

/* time.strftime('%X'): the current time of day, HH:MM:SS in the C locale */
static const char *strftime_X(void) {
    static char buf[64];
    time_t now = time(NULL);
    strftime(buf, sizeof buf, "%X", localtime(&now));
    return buf;
}

struct say_after_args {
    double delay;
    const char *what;
};

static int say_after(void *arg, void **result) {
    const struct say_after_args *args = arg;
    int rc = weft_sleep(args->delay);
    if (rc < 0)
        return rc;
    printf("%s\n", args->what);
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct say_after_args hello = {1, "hello"}, world = {2, "world"};
    weft_task_t *task1 = NULL, *task2 = NULL;
    int rc;
    if ((rc = weft_create_task(&task1, say_after, &hello, NULL)) == 0 &&
        (rc = weft_create_task(&task2, say_after, &world, NULL)) == 0) {
        printf("started at %s\n", strftime_X());
        if ((rc = weft_await(task1, NULL)) == 0 && (rc = weft_await(task2, NULL)) == 0)
            printf("finished at %s\n", strftime_X());
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
