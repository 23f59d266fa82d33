/* Seed 18: awaiting coroutines one after the other takes the sum of their delays.
 * Port of 18_say_after_sequential.py. */
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

/* A coroutine awaited directly is a plain function in weft: the calling task's stack
 * suspends inside it. */
static int say_after(double delay, const char *what) {
    int rc = weft_sleep(delay);
    if (rc < 0)
        return rc;
    printf("%s\n", what);
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    int rc;
    printf("started at %s\n", strftime_X());
    /* say_1 = say_after(1, 'hello'); say_2 = say_after(2, 'world'): creating a coroutine runs
     * nothing, so in C the calls are simply made in the order of the awaits. */
    if ((rc = say_after(2, "world")) < 0) /* await say_2 */
        return rc;
    if ((rc = say_after(1, "hello")) < 0) /* await say_1 */
        return rc;
    printf("finished at %s\n", strftime_X());
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
