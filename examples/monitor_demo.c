/* The monitor, live: a few long-running tasks to look at with weft-monitor (or nc / socat).
 *
 *     WEFT_MONITOR=/tmp/demo.sock ./monitor_demo 60 &
 *     ./weft-monitor /tmp/demo.sock ps
 *     ./weft-monitor /tmp/demo.sock where 3
 *     ./weft-monitor /tmp/demo.sock          (interactive: ps, where ID, cancel ID, stats, ...)
 *
 * Without WEFT_MONITOR it starts the monitor itself on a free loopback port. The tasks: a
 * "ticker" that wakes up every half second, a "producer" that feeds a queue every two seconds,
 * a "worker" waiting on that queue, and a "waiter" blocked on an event nobody sets (cancel it
 * from the monitor). Runs for the number of seconds given (default: until interrupted). Also
 * try Ctrl-\ (SIGQUIT): the loop has a monitor, so it prints every task and goes on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static int ticks;

static int ticker(void *arg, void **result) {
    (void)arg;
    (void)result;
    for (;;) {
        int rc = weft_sleep(0.5);
        if (rc < 0)
            return rc;
        ticks++;
    }
}

static int producer(void *arg, void **result) {
    weft_queue_t *q = arg;
    (void)result;
    for (intptr_t job = 1;; job++) {
        int rc = weft_sleep(2.0);
        if (rc == 0)
            rc = weft_queue_put(q, (void *)job);
        if (rc < 0)
            return rc;
    }
}

/* Named so that `where` has something to show between the worker and weft_queue_get. */
static __attribute__((noinline)) int wait_for_job(weft_queue_t *q, intptr_t *job) {
    void *item = NULL;
    int rc = weft_queue_get(q, &item);
    *job = (intptr_t)item;
    return rc;
}

static int worker(void *arg, void **result) {
    weft_queue_t *q = arg;
    (void)result;
    for (;;) {
        intptr_t job;
        int rc = wait_for_job(q, &job);
        if (rc < 0)
            return rc;
        weft_queue_task_done(q);
    }
}

static __attribute__((noinline)) int wait_for_go(weft_event_t *ev) {
    int rc = weft_event_wait(ev);
    if (rc == WEFT_ECANCELED)
        printf("waiter: cancelled\n");
    return rc;
}

static int waiter(void *arg, void **result) {
    (void)result;
    return wait_for_go(arg);
}

static int main_task(void *arg, void **result) {
    double seconds = *(double *)arg;
    weft_loop_t *loop = weft_get_running_loop();
    const char *address = getenv("WEFT_MONITOR");
    weft_task_t *tasks[4];
    size_t n = 0;
    weft_queue_t *q;
    weft_event_t *ev;
    int rc;
    (void)result;
    if (!address || !*address)
        address = "127.0.0.1:0";
    /* With WEFT_MONITOR the loop started it when it began to run (-EALREADY here); the same
     * address is refused the same way if that failed. */
    if ((rc = weft_monitor_start(loop, address)) < 0 && rc != WEFT_EALREADY) {
        fprintf(stderr, "monitor_demo: cannot start the monitor on %s: %s\n", address,
                weft_strerror(rc));
        return rc;
    }
    if (weft_monitor_port(loop) > 0) /* "HOST:0": the port it got */
        printf("monitor: %.*s:%d\n", (int)(strrchr(address, ':') - address), address,
               weft_monitor_port(loop));
    else
        printf("monitor: %s\n", address);
    fflush(stdout);
    if ((rc = weft_queue_new(&q, NULL)) < 0)
        return rc;
    if ((rc = weft_event_new(&ev)) < 0) {
        weft_queue_free(q);
        return rc;
    }
    const struct {
        const char *name;
        weft_task_fn fn;
        void *arg;
    } specs[] = {{"ticker", ticker, NULL}, {"producer", producer, q}, {"worker", worker, q},
                 {"waiter", waiter, ev}};
    for (; n < 4 && rc == 0; n++)
        rc = weft_create_task(&tasks[n], specs[n].fn, specs[n].arg,
                              &(weft_task_options_t){.name = specs[n].name});
    if (rc < 0)
        n--; /* the last one was not created */
    else
        rc = weft_sleep(seconds > 0 ? seconds : WEFT_NEVER);
    /* Clean-up, shielded: after Ctrl-C this task is cancelled itself, and must still wait
     * for its tasks to end before it frees what they use. */
    weft_shield_begin();
    for (size_t i = 0; i < n; i++)
        weft_cancel(tasks[i], NULL);
    weft_gather_all(tasks, n, NULL, NULL);
    weft_shield_end();
    for (size_t i = 0; i < n; i++)
        weft_unref(tasks[i]);
    weft_queue_free(q);
    weft_event_free(ev);
    printf("done after %d ticks\n", ticks);
    return rc;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0;
    return weft_exit_status(weft_run(main_task, &seconds, NULL));
}
