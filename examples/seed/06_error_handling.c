/* Seed 06: an error raised and caught inside a coroutine. Port of 06_error_handling.py. */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

/* ValueError is -EINVAL here: errors are negative codes, with a message. */
static int fetch_data(void *arg, void **result) {
    /* try: */
    int rc = weft_sleep(1);
    if (rc == 0)
        rc = weft_fail(-EINVAL, "Something went wrong"); /* raise ValueError(...) */
    /* except ValueError as e: */
    if (rc == -EINVAL) {
        printf("Exception caught: %s\n", weft_error_message());
        rc = 0;
    }
    return rc;
}

int main(void) {
    int rc = weft_run(fetch_data, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "fetch_data: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
