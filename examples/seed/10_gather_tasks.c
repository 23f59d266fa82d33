/* Seed 10: two tasks awaited together with gather. Port of 10_gather_tasks.py. */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

static int fetch_data(void *arg, void **result) {
    int id = (int)(intptr_t)arg;
    char *text;
    int rc = weft_sleep(2);
    if (rc < 0)
        return rc;
    /* f"Data from {id}": a new string, freed by the caller */
    if (asprintf(&text, "Data from %d", id) < 0)
        return -ENOMEM;
    *result = text;
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_task_t *task1 = NULL, *task2 = NULL;
    void *results[2];
    int rc;
    if ((rc = weft_create_task(&task1, fetch_data, (void *)(intptr_t)1, NULL)) < 0 ||
        (rc = weft_create_task(&task2, fetch_data, (void *)(intptr_t)2, NULL)) < 0)
        goto out;
    rc = weft_gather((weft_task_t *[]){task1, task2}, 2, results);
    if (rc == 0) {
        printf("Results: ['%s', '%s']\n", (char *)results[0], (char *)results[1]);
        free(results[0]);
        free(results[1]);
    }
out:
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
