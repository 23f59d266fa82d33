/* Seed 20: a task awaited twice runs once and gives the same result both times.
 * Port of 20_await_task_twice.py. */
#include <stdint.h>
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

static int runs = 0;

static int foo(void *arg, void **result) {
    int delay = (int)(intptr_t)arg;
    runs += 1;
    int rc = weft_sleep(delay);
    if (rc < 0)
        return rc;
    *result = (void *)"bar";
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task1;
    void *result_once, *result_twice;
    int rc = weft_create_task(&task1, foo, (void *)(intptr_t)3, NULL);
    if (rc < 0)
        return rc;
    printf("started at %s\n", strftime_X());
    if ((rc = weft_await(task1, &result_once)) == 0) {
        printf("task1, value: %s, finished once at %s\n", (const char *)result_once,
               strftime_X());
        if ((rc = weft_await(task1, &result_twice)) == 0) {
            printf("task1, value: %s, finished twice at %s\n", (const char *)result_twice,
                   strftime_X());
            printf("runs: %d\n", runs);
        }
    }
    weft_unref(task1);
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
