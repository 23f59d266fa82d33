/* Seed 23: a CPU-bound function runs in a worker thread; the loop stays responsive meanwhile.
 * Port of 23_to_thread.py.
 *
 * CPython needs about 0.3 s for cpu_bound_task(3000000); C needs about 15 ms, less than one tick
 * of the ticker, so "the loop stayed responsive" would say nothing. The job therefore repeats the
 * same computation on the worker until that thread has spent as much CPU time as CPython's single
 * run (checking that every repetition agrees): the ticker has to keep ticking on the loop's
 * thread through that much real work. What is printed is computed, never assumed. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <weft.h>

#define PYTHON_SECONDS 0.3

static long cpu_bound_task(long n) {
    long long acc = 0;
    for (long i = 1; i <= n; i++)
        acc = (acc * 31 + i) % 1000000007;
    return (long)acc;
}

struct cpu_job {
    long n;
    double cpu_seconds; /* keep the worker busy at least this long */
};

static double thread_cpu_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* cpu_bound_task(n) as a job: runs on a worker thread, so it calls nothing of weft but
 * weft_fail(). */
static int cpu_bound_job(void *arg, void **result) {
    const struct cpu_job *job = arg;
    volatile const long *n = &job->n; /* read anew each time: no repetition is optimised away */
    double start = thread_cpu_time();
    long acc = cpu_bound_task(*n);
    while (thread_cpu_time() - start < job->cpu_seconds)
        if (cpu_bound_task(*n) != acc)
            return weft_fail(-EIO, "cpu_bound_task(%ld) gave two answers", *n);
    *result = (void *)(intptr_t)acc;
    return 0;
}

static int ticker(void *stop, void **result) {
    intptr_t ticks = 0;
    while (!weft_event_is_set(stop)) {
        int rc = weft_sleep(0.05);
        if (rc < 0)
            return rc;
        ticks++;
    }
    *result = (void *)ticks;
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    /* static: a job's argument must outlive the job */
    static const struct cpu_job big = {3000000, PYTHON_SECONDS}, small = {1000, 0};
    weft_loop_t *loop = weft_get_running_loop();
    weft_event_t *stop;
    weft_executor_t *pool;
    weft_future_t *fut;
    weft_task_t *t;
    void *value, *ticks = NULL;
    int rc;

    if ((rc = weft_event_new(&stop)) < 0)
        return rc;
    if ((rc = weft_create_task(&t, ticker, stop, NULL)) < 0) {
        weft_event_free(stop);
        return rc;
    }
    /* with concurrent.futures.ThreadPoolExecutor() as pool:
     *     result = await loop.run_in_executor(pool, cpu_bound_task, 3000000) */
    if ((rc = weft_executor_new(&pool, 0)) == 0) {
        if ((rc = weft_loop_run_in_executor(loop, pool, cpu_bound_job, (void *)&big, &fut)) == 0) {
            rc = weft_await(fut, &value);
            weft_unref(fut);
        }
        weft_executor_free(pool); /* the end of the with block: shutdown(wait=True) */
    }
    if (rc == 0) {
        printf("Result: %ld\n", (long)(intptr_t)value);
        /* result2 = await asyncio.to_thread(cpu_bound_task, 1000) */
        rc = weft_to_thread(cpu_bound_job, (void *)&small, &value);
    }
    if (rc == 0)
        printf("Result: %ld\n", (long)(intptr_t)value);
    weft_event_set(stop);
    if (rc < 0)
        weft_cancel(t, NULL);
    if (weft_await(t, &ticks) == 0 && rc == 0)
        printf("loop stayed responsive: %s\n", (intptr_t)ticks >= 2 ? "True" : "False");
    weft_unref(t);
    weft_event_free(stop);
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
