/* Seed 22: gather returns results in the order of its arguments, not of completion.
 * Port of 22_gather_order.py. */
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

static int fetch_data_1(void *arg, void **result) {
    int rc = weft_sleep(1);
    if (rc < 0)
        return rc;
    *result = (void *)"Data 1 fetched";
    return 0;
}

static int fetch_data_2(void *arg, void **result) {
    int rc = weft_sleep(2);
    if (rc < 0)
        return rc;
    *result = (void *)"Data 2 fetched";
    return 0;
}

struct slow_first_args {
    int i;
    double d;
};

static int slow_first(void *arg, void **result) {
    const struct slow_first_args *args = arg;
    int rc = weft_sleep(args->d);
    if (rc < 0)
        return rc;
    printf("finished %d\n", args->i);
    *result = (void *)(intptr_t)args->i;
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a task's argument must outlive the task */
    static struct slow_first_args args[] = {{0, 0.3}, {1, 0.1}, {2, 0.2}};
    weft_task_t *t[3] = {NULL};
    void *results[3];
    int rc;

    /* results = await asyncio.gather(fetch_data_1(), fetch_data_2()) */
    if ((rc = weft_create_task(&t[0], fetch_data_1, NULL, NULL)) == 0 &&
        (rc = weft_create_task(&t[1], fetch_data_2, NULL, NULL)) == 0 &&
        (rc = weft_gather(t, 2, results)) == 0)
        printf("['%s', '%s']\n", (const char *)results[0], (const char *)results[1]);
    weft_unref(t[0]);
    weft_unref(t[1]);
    if (rc < 0)
        return rc;

    /* print(await asyncio.gather(slow_first(0, 0.3), slow_first(1, 0.1), slow_first(2, 0.2))) */
    t[0] = t[1] = NULL;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = weft_create_task(&t[i], slow_first, &args[i], NULL);
    if (rc == 0 && (rc = weft_gather(t, 3, results)) == 0)
        printf("[%d, %d, %d]\n", (int)(intptr_t)results[0], (int)(intptr_t)results[1],
               (int)(intptr_t)results[2]);
    for (int i = 0; i < 3; i++)
        weft_unref(t[i]);
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
