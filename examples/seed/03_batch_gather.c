/* Seed 03: gather of three workers on an explicit loop. Port of 03_batch_gather.py. */
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

/* Integers travel through the `void *` argument and result as intptr_t. */
static int worker_process(void *arg, void **result) {
    int identifier = (int)(intptr_t)arg;
    int rc = weft_sleep(2);
    if (rc < 0)
        return rc;
    printf("Process %d finished\n", identifier);
    *result = (void *)(intptr_t)identifier;
    return 0;
}

static int batch_run(void) {
    weft_loop_t *loop;
    weft_task_t *tasks[3] = {NULL};
    weft_future_t *gather = NULL;
    void *value;
    int rc = weft_loop_new(&loop, NULL);
    if (rc < 0)
        return rc;
    /* tasks = [worker_process(i) for i in range(3)] (gather would wrap them in tasks) */
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = weft_loop_create_task(loop, &tasks[i], worker_process, (void *)(intptr_t)i, NULL);
    if (rc == 0)
        rc = weft_loop_gather(loop, tasks, 3, 0, &gather);
    if (rc == 0)
        rc = weft_loop_run_until_complete(loop, gather, &value);
    if (rc == 0) {
        void **results = value; /* the gather's array of results, valid while it is */
        printf("Results: [");
        for (int i = 0; i < 3; i++)
            printf("%s%d", i ? ", " : "", (int)(intptr_t)results[i]);
        printf("]\n");
    }
    weft_unref(gather);
    for (int i = 0; i < 3; i++)
        weft_unref(tasks[i]);
    weft_loop_close(loop);
    return rc;
}

int main(void) {
    int rc = batch_run();
    if (rc < 0) {
        fprintf(stderr, "batch_run: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
