/* Debug mode (WEFT_DEBUG=1) naming the task that blocks the loop, with where it was created.
 *
 * "blocker" calls usleep() (a blocking call where it should await weft_sleep()), and the
 * "ticker" beside it misses its ticks meanwhile. Run with WEFT_DEBUG=1 in the environment: the
 * loop then logs
 *   ... weft WARNING: Executing <Task 'blocker' #3 created at .../debug_slow_callback.c:40 in
 *   main_task> took 0.200 seconds
 * (asyncio's debug mode: "Executing <Task ...> took 0.200 seconds"). */
#include <stdio.h>
#include <unistd.h>
#include <weft.h>

static int ticker(void *arg, void **result) {
    double start = weft_loop_time(weft_get_running_loop());
    for (int i = 1; i <= 8; i++) {
        int rc = weft_sleep(0.05);
        if (rc < 0)
            return rc;
        /* The gap in the times shows the ticks the blocked loop could not run. */
        printf("tick %d at %.2f s\n", i, weft_loop_time(weft_get_running_loop()) - start);
    }
    return 0;
}

static int blocker(void *arg, void **result) {
    int rc = weft_sleep(0.1);
    if (rc < 0)
        return rc;
    usleep(200 * 1000); /* the bug: the whole loop stops for 0.2 s */
    printf("blocker done\n");
    return 0;
}

static int main_task(void *arg, void **result) {
    weft_task_t *t[2];
    weft_task_options_t tick = {"ticker", 0}, block = {"blocker", 0};
    int rc;
    if ((rc = weft_create_task(&t[0], ticker, NULL, &tick)) < 0)
        return rc;
    if ((rc = weft_create_task(&t[1], blocker, NULL, &block)) < 0) {
        weft_cancel(t[0], NULL);
        weft_await(t[0], NULL);
        weft_unref(t[0]);
        return rc;
    }
    rc = weft_gather(t, 2, NULL);
    weft_unref(t[0]);
    weft_unref(t[1]);
    return rc;
}

int main(void) { return weft_exit_status(weft_run(main_task, NULL, NULL)); }
