/* Executors: the thread pool (workers started as jobs arrive, FIFO queue, max_workers),
 * run_in_executor and to_thread, cancellation of queued and running jobs, shutdown, a pool
 * shared by two loops, loop close with jobs in flight, the default executor. Real clock: the
 * jobs run on real threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "wt.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static weft_loop_t *loop_workers(unsigned workers) {
    weft_loop_options_t o = {.executor_workers = workers};
    weft_loop_t *loop = NULL;
    ASSERT_OK(weft_loop_new(&loop, &o));
    return loop;
}

/* Runs body(arg) as the main task of a real-clock loop whose default executor has `workers`
 * workers (0: the default), then closes the loop, which must be clean. */
static void run_loop(weft_task_fn body, void *arg, unsigned workers) {
    weft_loop_t *loop = loop_workers(workers);
    ASSERT_OK(wt_run_task(loop, body, arg, NULL));
    WT_CLOSE_LOOP(loop);
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* From a task: lets the loop run until *v reaches `want` (5 s at most). */
static void await_count(atomic_int *v, int want) {
    double t0 = wt_now();
    while (atomic_load(v) < want) {
        ASSERT(wt_now() - t0 < 5);
        ASSERT_OK(weft_sleep(0.001));
    }
}

/* Jobs that wait at a gate the test opens, counting how many started and finished. */
static sem_t gate;
static atomic_int started, finished, running, max_running;

static void counters_reset(void) {
    ASSERT_OK(sem_init(&gate, 0, 0));
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    atomic_store(&running, 0);
    atomic_store(&max_running, 0);
}

static void gate_open(int n) {
    while (n-- > 0)
        ASSERT_OK(sem_post(&gate));
}

static int gated_job(void *arg, void **result) {
    atomic_fetch_add(&started, 1);
    while (sem_wait(&gate) < 0)
        ;
    atomic_fetch_add(&finished, 1);
    *result = arg;
    return 0;
}

/* Counts how many run at once; sleeps `arg` ms; returns arg * 3. */
static int counting_job(void *arg, void **result) {
    int now = atomic_fetch_add(&running, 1) + 1, seen = atomic_load(&max_running);
    while (now > seen && !atomic_compare_exchange_weak(&max_running, &seen, now))
        ;
    atomic_fetch_add(&started, 1);
    msleep((int)((intptr_t)arg % 16) + 1);
    atomic_fetch_sub(&running, 1);
    atomic_fetch_add(&finished, 1);
    *result = (void *)((intptr_t)arg * 3);
    return 0;
}

/* Records that it ran: ran_mask |= 1 << arg. */
static atomic_int ran_mask;
static int marking_job(void *arg, void **result) {
    atomic_fetch_or(&ran_mask, 1 << (intptr_t)arg);
    *result = arg;
    return 0;
}

static int thread_id_job(void *arg, void **result) {
    *result = (void *)(uintptr_t)pthread_self();
    return 0;
}

static int sleeping_job(void *arg, void **result) {
    atomic_fetch_add(&started, 1);
    msleep((int)(intptr_t)arg);
    atomic_fetch_add(&finished, 1);
    *result = arg;
    return 0;
}

/* ---- the pool ----------------------------------------------------------------------------- */

#define NSAT 200

static int saturation_main(void *arg, void **res) {
    weft_executor_t *ex;
    weft_future_t *f[NSAT];
    void *results[NSAT];
    counters_reset();
    ASSERT_OK(weft_executor_new(&ex, 4));
    for (intptr_t i = 0; i < NSAT; i++)
        ASSERT_OK(weft_run_in_executor(ex, counting_job, (void *)i, &f[i]));
    ASSERT_OK(weft_gather(f, NSAT, results));
    for (intptr_t i = 0; i < NSAT; i++) {
        ASSERT_EQ_INT((intptr_t)results[i], i * 3);
        weft_unref(f[i]);
    }
    ASSERT_EQ_INT(atomic_load(&finished), NSAT);
    ASSERT_EQ_INT(atomic_load(&max_running), 4); /* all four busy, never a fifth */
    weft_executor_free(ex);
    return 0;
}

TEST(saturation) { run_loop(saturation_main, NULL, 0); }

/* A job submitted when a worker is idle goes to that worker: one thread serves jobs that
 * never overlap, however large the pool may grow. */
static int reuse_main(void *arg, void **res) {
    weft_executor_t *ex;
    void *first = NULL;
    ASSERT_OK(weft_executor_new(&ex, 8));
    for (int i = 0; i < 20; i++) {
        weft_future_t *f;
        void *tid;
        ASSERT_OK(weft_run_in_executor(ex, thread_id_job, NULL, &f));
        ASSERT_OK(weft_await(f, &tid));
        weft_unref(f);
        if (i == 0)
            first = tid;
        ASSERT_EQ_PTR(tid, first);
    }
    ASSERT(first != (void *)(uintptr_t)pthread_self());
    weft_executor_free(ex);
    return 0;
}

TEST(idle_worker_reused) { run_loop(reuse_main, NULL, 0); }

static int sigmask_job(void *arg, void **result) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGCHLD, SIGUSR1, SIGPIPE, SIGHUP};
    sigset_t set;
    intptr_t blocked = 0;
    ASSERT_OK(pthread_sigmask(SIG_BLOCK, NULL, &set));
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        blocked += sigismember(&set, sigs[i]) == 1;
    *result = (void *)blocked;
    return 0;
}

static int sigmask_main(void *arg, void **res) {
    sigset_t set;
    void *blocked;
    ASSERT_OK(weft_to_thread(sigmask_job, NULL, &blocked));
    ASSERT_EQ_INT((intptr_t)blocked, 6);
    /* The loop's thread keeps its own mask. */
    ASSERT_OK(pthread_sigmask(SIG_BLOCK, NULL, &set));
    ASSERT_EQ_INT(sigismember(&set, SIGINT), 0);
    return 0;
}

TEST(workers_block_signals) { run_loop(sigmask_main, NULL, 0); }

/* ---- cancellation ------------------------------------------------------------------------- */

static int cancel_queued_main(void *arg, void **res) {
    weft_executor_t *ex;
    weft_future_t *blocker, *f[4];
    void *v;
    counters_reset();
    atomic_store(&ran_mask, 0);
    ASSERT_OK(weft_executor_new(&ex, 1));
    ASSERT_OK(weft_run_in_executor(ex, gated_job, (void *)7, &blocker));
    for (intptr_t i = 0; i < 4; i++)
        ASSERT_OK(weft_run_in_executor(ex, marking_job, (void *)i, &f[i]));
    await_count(&started, 1);
    ASSERT_EQ_INT(weft_cancel(f[1], "no longer needed"), 1);
    ASSERT_EQ_INT(weft_cancel(f[2], NULL), 1);
    ASSERT(weft_future_cancelled(f[1]));
    gate_open(1);
    ASSERT_OK(weft_await(blocker, &v));
    ASSERT_EQ_INT((intptr_t)v, 7);
    ASSERT_OK(weft_await(f[3], &v));
    ASSERT_OK(weft_await(f[0], &v));
    ASSERT_EQ_INT(weft_await(f[1], &v), WEFT_ECANCELED);
    ASSERT_EQ_STR(weft_future_error_message(f[1]), "no longer needed");
    /* Every job queued behind them has run: the cancelled two never will. */
    ASSERT_EQ_INT(atomic_load(&ran_mask), 1 << 0 | 1 << 3);
    weft_unref(blocker);
    for (int i = 0; i < 4; i++)
        weft_unref(f[i]);
    weft_executor_free(ex);
    ASSERT_EQ_INT(atomic_load(&ran_mask), 1 << 0 | 1 << 3);
    return 0;
}

TEST(cancel_queued_jobs) { run_loop(cancel_queued_main, NULL, 0); }

static weft_future_t *dropped_future;

static int await_gated(void *arg, void **res) {
    ASSERT_OK(weft_run_in_executor(NULL, gated_job, (void *)1, &dropped_future));
    return weft_await(dropped_future, res);
}

/* The awaiting task is cancelled while the job runs: it returns at once, the job runs to its
 * end, and its result is dropped (the future stays cancelled). */
static int dropped_main(void *arg, void **res) {
    weft_task_t *t;
    void *v;
    counters_reset();
    t = wt_spawn(NULL, await_gated, NULL, "awaiter");
    await_count(&started, 1);
    weft_cancel(t, NULL);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(atomic_load(&finished), 0);
    ASSERT(weft_future_cancelled(dropped_future));
    gate_open(1);
    await_count(&finished, 1);
    for (int i = 0; i < 20; i++) /* the completion arrives and is dropped */
        ASSERT_OK(weft_sleep(0.002));
    ASSERT(weft_future_cancelled(dropped_future));
    ASSERT_EQ_INT(weft_future_result(dropped_future, &v), WEFT_ECANCELED);
    weft_unref(dropped_future);
    weft_unref(t);
    return 0;
}

TEST(running_job_result_dropped) { run_loop(dropped_main, NULL, 0); }

/* Waits at the gate, then writes into the caller's stack. */
static int stack_writer_job(void *arg, void **result) {
    atomic_fetch_add(&started, 1);
    while (sem_wait(&gate) < 0)
        ;
    msleep(20);
    *(volatile int *)arg = 42;
    atomic_fetch_add(&finished, 1);
    return 0;
}

static int observed;

static int to_thread_stack_task(void *arg, void **res) {
    volatile int slot = 0;
    int rc = weft_to_thread(stack_writer_job, (void *)&slot, NULL);
    observed = slot;
    return rc;
}

static int to_thread_running_main(void *arg, void **res) {
    weft_task_t *t;
    counters_reset();
    observed = 0;
    t = wt_spawn(NULL, to_thread_stack_task, NULL, "caller");
    await_count(&started, 1);
    weft_cancel(t, NULL);
    ASSERT_OK(weft_sleep(0.05));
    ASSERT(!weft_future_done(t)); /* still waiting for the job that uses its stack */
    gate_open(1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(observed, 42); /* written before to_thread returned */
    weft_unref(t);
    return 0;
}

TEST(to_thread_cancelled_while_running_waits) { run_loop(to_thread_running_main, NULL, 0); }

static int to_thread_marking(void *arg, void **res) {
    return weft_to_thread(marking_job, arg, res);
}

static int to_thread_gated(void *arg, void **res) { return weft_to_thread(gated_job, arg, res); }

/* One worker, busy: a cancelled to_thread still queued returns at once, its job never runs. */
static int to_thread_queued_main(void *arg, void **res) {
    weft_task_t *a, *b;
    double t0;
    void *v;
    counters_reset();
    atomic_store(&ran_mask, 0);
    a = wt_spawn(NULL, to_thread_gated, (void *)5, "a");
    await_count(&started, 1);
    b = wt_spawn(NULL, to_thread_marking, (void *)2, "b");
    wt_yield_n(3);
    t0 = wt_now();
    weft_cancel(b, NULL);
    ASSERT_EQ_INT(weft_await(b, NULL), WEFT_ECANCELED);
    ASSERT(wt_now() - t0 < 0.5);
    ASSERT_EQ_INT(atomic_load(&finished), 0);
    gate_open(1);
    ASSERT_OK(weft_await(a, &v));
    ASSERT_EQ_INT((intptr_t)v, 5);
    ASSERT_EQ_INT(atomic_load(&ran_mask), 0);
    weft_unref(a);
    weft_unref(b);
    return 0;
}

TEST(to_thread_cancelled_while_queued) { run_loop(to_thread_queued_main, NULL, 1); }

static void open_gate_cb(void *arg) { gate_open(1); }

/* A timeout scope around to_thread: the deadline cancels the call, which waits for the job,
 * and the scope reports -ETIMEDOUT. */
static int to_thread_timeout_main(void *arg, void **res) {
    weft_timeout_t to;
    double t0 = wt_now();
    volatile int slot = 0;
    int rc;
    counters_reset();
    ASSERT_OK(weft_call_later(weft_get_running_loop(), 0.15, open_gate_cb, NULL, NULL));
    ASSERT_OK(weft_timeout_begin(&to, 0.05));
    rc = weft_to_thread(stack_writer_job, (void *)&slot, NULL);
    rc = weft_timeout_end(&to, rc);
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(slot, 42);
    ASSERT(wt_now() - t0 >= 0.15);
    return 0;
}

TEST(to_thread_timeout) { run_loop(to_thread_timeout_main, NULL, 0); }

/* ---- errors ------------------------------------------------------------------------------- */

static int failing_job(void *arg, void **result) {
    intptr_t kind = (intptr_t)arg;
    if (kind == 0)
        return weft_fail(-EINVAL, "bad value %d", 7);
    if (kind == 1)
        return -ENOENT; /* no message: weft_strerror's */
    return -ECANCELED;
}

static int errors_main(void *arg, void **res) {
    weft_executor_t *ex;
    weft_future_t *f;
    ASSERT_OK(weft_executor_new(&ex, 1));
    ASSERT_OK(weft_run_in_executor(ex, failing_job, (void *)0, &f));
    ASSERT_EQ_INT(weft_await(f, NULL), WEFT_EINVAL);
    ASSERT_EQ_STR(weft_error_message(), "bad value 7");
    ASSERT_EQ_STR(weft_future_error_message(f), "bad value 7");
    weft_unref(f);
    /* Same worker: the last job's message is not taken for this one's. */
    ASSERT_OK(weft_run_in_executor(ex, failing_job, (void *)1, &f));
    ASSERT_EQ_INT(weft_await(f, NULL), WEFT_ENOENT);
    ASSERT_EQ_STR(weft_error_message(), weft_strerror(WEFT_ENOENT));
    weft_unref(f);
    ASSERT_OK(weft_run_in_executor(ex, failing_job, (void *)2, &f));
    ASSERT_EQ_INT(weft_await(f, NULL), WEFT_ECANCELED);
    ASSERT(weft_future_cancelled(f));
    weft_unref(f);
    weft_executor_free(ex);
    /* to_thread passes the message on too. */
    ASSERT_EQ_INT(weft_to_thread(failing_job, (void *)0, NULL), WEFT_EINVAL);
    ASSERT_EQ_STR(weft_error_message(), "bad value 7");
    return 0;
}

TEST(job_errors_with_messages) { run_loop(errors_main, NULL, 0); }

static void outside_calls(void) {
    weft_future_t *f = NULL;
    ASSERT_EQ_INT(weft_to_thread(marking_job, NULL, NULL), WEFT_EPERM);
    ASSERT_EQ_INT(weft_run_in_executor(NULL, marking_job, NULL, &f), WEFT_EPERM);
    ASSERT_EQ_INT(weft_shutdown_default_executor(), WEFT_EPERM);
    ASSERT_EQ_INT(weft_executor_new(NULL, 1), WEFT_EINVAL);
    ASSERT_NULL(f);
}

static int bad_args_main(void *arg, void **res) {
    weft_future_t *f = NULL;
    ASSERT_EQ_INT(weft_to_thread(NULL, NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_run_in_executor(NULL, NULL, NULL, &f), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_run_in_executor(NULL, marking_job, NULL, NULL), WEFT_EINVAL);
    ASSERT_NULL(f);
    return 0;
}

TEST(bad_arguments) {
    outside_calls();
    run_loop(bad_args_main, NULL, 0);
}

/* ---- no deadlock while a job runs --------------------------------------------------------- */

static int long_job_main(void *arg, void **res) {
    void *v;
    ASSERT_OK(weft_to_thread(sleeping_job, (void *)200, &v));
    ASSERT_EQ_INT((intptr_t)v, 200);
    return 0;
}

/* Nothing is ready, no timer, no fd: only the job can complete the future, and the loop waits
 * for it instead of reporting -EDEADLK; on the virtual clock as on the real one. */
TEST(long_job_is_not_a_deadlock) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    void *v;
    counters_reset();
    ASSERT_OK(wt_run_task(loop, long_job_main, NULL, NULL));
    ASSERT_OK(weft_loop_run_in_executor(loop, NULL, sleeping_job, (void *)100, &f));
    ASSERT_OK(weft_loop_run_until_complete(loop, f, &v));
    ASSERT_EQ_INT((intptr_t)v, 100);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
    run_loop(long_job_main, NULL, 0);
}

/* ---- shutdown ----------------------------------------------------------------------------- */

static int shutdown_wait_main(void *arg, void **res) {
    weft_executor_t *ex;
    weft_future_t *f[3], *late = NULL;
    void *results[3];
    counters_reset();
    ASSERT_OK(weft_executor_new(&ex, 1));
    for (intptr_t i = 0; i < 3; i++)
        ASSERT_OK(weft_run_in_executor(ex, sleeping_job, (void *)(20 + i), &f[i]));
    weft_executor_shutdown(ex, 1, 0); /* blocks this thread until the three have run */
    ASSERT_EQ_INT(atomic_load(&finished), 3);
    ASSERT_EQ_INT(weft_run_in_executor(ex, sleeping_job, (void *)1, &late), WEFT_ESHUTDOWN);
    ASSERT_NULL(late);
    ASSERT_OK(weft_gather(f, 3, results));
    for (intptr_t i = 0; i < 3; i++) {
        ASSERT_EQ_INT((intptr_t)results[i], 20 + i);
        weft_unref(f[i]);
    }
    weft_executor_free(ex);
    return 0;
}

TEST(shutdown_wait) { run_loop(shutdown_wait_main, NULL, 0); }

static int shutdown_cancel_main(void *arg, void **res) {
    weft_executor_t *ex;
    weft_future_t *blocker, *f[2];
    void *v;
    counters_reset();
    atomic_store(&ran_mask, 0);
    ASSERT_OK(weft_executor_new(&ex, 1));
    ASSERT_OK(weft_run_in_executor(ex, gated_job, (void *)3, &blocker));
    for (intptr_t i = 0; i < 2; i++)
        ASSERT_OK(weft_run_in_executor(ex, marking_job, (void *)i, &f[i]));
    await_count(&started, 1);
    weft_executor_shutdown(ex, 0, 1); /* returns at once: the gated job is still running */
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_await(f[i], NULL), WEFT_ECANCELED);
        ASSERT_CONTAINS(weft_future_error_message(f[i]), "shut down");
        weft_unref(f[i]);
    }
    ASSERT_EQ_INT(atomic_load(&finished), 0);
    gate_open(1);
    ASSERT_OK(weft_await(blocker, &v));
    ASSERT_EQ_INT((intptr_t)v, 3);
    weft_unref(blocker);
    weft_executor_free(ex);
    ASSERT_EQ_INT(atomic_load(&ran_mask), 0);
    return 0;
}

TEST(shutdown_cancel_futures) { run_loop(shutdown_cancel_main, NULL, 0); }

static int shutdown_own_job(void *ex, void **result) {
    weft_executor_shutdown(ex, 1, 0); /* from its own worker: must not wait for itself */
    return 0;
}

static int shutdown_from_job_main(void *arg, void **res) {
    weft_executor_t *ex;
    weft_future_t *f;
    ASSERT_OK(weft_executor_new(&ex, 2));
    ASSERT_OK(weft_run_in_executor(ex, shutdown_own_job, ex, &f));
    ASSERT_OK(weft_await(f, NULL));
    weft_unref(f);
    weft_executor_free(ex);
    return 0;
}

TEST(shutdown_from_own_job) { run_loop(shutdown_from_job_main, NULL, 0); }

static atomic_int ticks;

static int ticker(void *arg, void **res) {
    for (;;) {
        int rc = weft_sleep(0.01);
        if (rc < 0)
            return rc;
        atomic_fetch_add(&ticks, 1);
    }
}

/* shutdown_default_executor waits for the running job without blocking the loop: a ticker
 * keeps ticking meanwhile. Afterwards the default executor refuses jobs. */
static int shutdown_default_main(void *arg, void **res) {
    weft_future_t *f, *late = NULL;
    weft_task_t *tick;
    double t0;
    void *v;
    counters_reset();
    atomic_store(&ticks, 0);
    ASSERT_OK(weft_run_in_executor(NULL, sleeping_job, (void *)200, &f));
    await_count(&started, 1);
    tick = wt_spawn(NULL, ticker, NULL, "ticker");
    t0 = wt_now();
    ASSERT_OK(weft_shutdown_default_executor());
    ASSERT(wt_now() - t0 >= 0.1);
    ASSERT_EQ_INT(atomic_load(&finished), 1);
    ASSERT_GE_INT(atomic_load(&ticks), 5);
    ASSERT_OK(weft_await(f, &v));
    ASSERT_EQ_INT((intptr_t)v, 200);
    ASSERT_EQ_INT(weft_run_in_executor(NULL, sleeping_job, NULL, &late), WEFT_ESHUTDOWN);
    ASSERT_EQ_INT(weft_to_thread(sleeping_job, NULL, NULL), WEFT_ESHUTDOWN);
    ASSERT_OK(weft_shutdown_default_executor()); /* again: nothing left to do */
    weft_cancel(tick, NULL);
    ASSERT_EQ_INT(weft_await(tick, NULL), WEFT_ECANCELED);
    weft_unref(tick);
    weft_unref(f);
    return 0;
}

/* Never started: shut down at once, and refused from then on (asyncio's RuntimeError). */
static int shutdown_unused_main(void *arg, void **res) {
    weft_future_t *late = NULL;
    ASSERT_OK(weft_shutdown_default_executor());
    ASSERT_EQ_INT(weft_run_in_executor(NULL, sleeping_job, NULL, &late), WEFT_ESHUTDOWN);
    return 0;
}

TEST(shutdown_default_executor) {
    run_loop(shutdown_default_main, NULL, 0);
    run_loop(shutdown_unused_main, NULL, 0);
}

/* ---- the default executor ------------------------------------------------------------------ */

static int size_main(void *arg, void **res) {
    unsigned workers = (unsigned)(intptr_t)arg;
    int n = (int)workers + 4;
    weft_future_t *f[40];
    counters_reset();
    for (intptr_t i = 0; i < n; i++)
        ASSERT_OK(weft_run_in_executor(NULL, gated_job, (void *)i, &f[i]));
    await_count(&started, (int)workers);
    ASSERT_OK(weft_sleep(0.05));
    ASSERT_EQ_INT(atomic_load(&started), (int)workers); /* the others wait in the queue */
    gate_open(n);
    ASSERT_OK(weft_gather(f, (size_t)n, NULL));
    ASSERT_EQ_INT(atomic_load(&finished), n);
    for (int i = 0; i < n; i++)
        weft_unref(f[i]);
    return 0;
}

TEST(default_executor_size) {
    cpu_set_t set;
    int cpus;
    ASSERT_OK(sched_getaffinity(0, sizeof set, &set));
    cpus = CPU_COUNT(&set);
    run_loop(size_main, (void *)2, 2);
    run_loop(size_main, (void *)(intptr_t)(cpus + 4 < 32 ? cpus + 4 : 32), 0);
}

static int user_default_main(void *ex, void **res) {
    void *a, *b;
    weft_future_t *f;
    ASSERT_OK(weft_to_thread(thread_id_job, NULL, &a));
    ASSERT_OK(weft_run_in_executor(ex, thread_id_job, NULL, &f));
    ASSERT_OK(weft_await(f, &b));
    weft_unref(f);
    ASSERT_EQ_PTR(a, b); /* the one worker of the user's pool ran both */
    return 0;
}

static int start_default_main(void *arg, void **res) {
    return weft_to_thread(thread_id_job, NULL, NULL);
}

TEST(set_default_executor) {
    weft_executor_t *ex;
    weft_loop_t *loop = loop_workers(0);
    ASSERT_OK(weft_executor_new(&ex, 1));
    ASSERT_OK(weft_loop_set_default_executor(loop, ex));
    ASSERT_OK(wt_run_task(loop, user_default_main, ex, NULL));
    WT_CLOSE_LOOP(loop);
    weft_executor_free(ex); /* borrowed: the loop left it alone */
    loop = loop_workers(0);
    ASSERT_OK(wt_run_task(loop, start_default_main, NULL, NULL));
    ASSERT_OK(weft_executor_new(&ex, 1));
    ASSERT_EQ_INT(weft_loop_set_default_executor(loop, ex), WEFT_EBUSY);
    WT_CLOSE_LOOP(loop);
    weft_executor_free(ex);
}

/* ---- a pool shared by two loops ------------------------------------------------------------ */

#define NSHARED 50

typedef struct shared_ctx {
    weft_executor_t *ex;
    intptr_t base;
    int rc;
} shared_ctx_t;

static int shared_main(void *arg, void **res) {
    shared_ctx_t *c = arg;
    weft_future_t *f[NSHARED];
    void *results[NSHARED];
    for (intptr_t i = 0; i < NSHARED; i++) {
        ASSERT_OK(weft_run_in_executor(c->ex, counting_job, (void *)(c->base + i), &f[i]));
        ASSERT_EQ_PTR(weft_future_loop(f[i]), weft_get_running_loop());
    }
    ASSERT_OK(weft_gather(f, NSHARED, results));
    for (intptr_t i = 0; i < NSHARED; i++) {
        ASSERT_EQ_INT((intptr_t)results[i], (c->base + i) * 3);
        weft_unref(f[i]);
    }
    return 0;
}

static void *shared_thread(void *arg) {
    shared_ctx_t *c = arg;
    c->rc = weft_run(shared_main, c, NULL);
    return NULL;
}

TEST(shared_by_two_loops) {
    shared_ctx_t c[2] = {{NULL, 0, -1}, {NULL, 1000, -1}};
    pthread_t th[2];
    weft_executor_t *ex;
    counters_reset();
    ASSERT_OK(weft_executor_new(&ex, 3));
    for (int i = 0; i < 2; i++) {
        c[i].ex = ex;
        ASSERT_OK(pthread_create(&th[i], NULL, shared_thread, &c[i]));
    }
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(pthread_join(th[i], NULL));
        ASSERT_OK(c[i].rc);
    }
    ASSERT_EQ_INT(atomic_load(&finished), 2 * NSHARED);
    ASSERT_LE_INT(atomic_load(&max_running), 3);
    weft_executor_free(ex);
}

/* ---- loop close with jobs in flight --------------------------------------------------------- */

/* Not run as a task: futures made on a loop that is not running, then the loop closed with one
 * job running and one queued. Close waits for the running one; the queued one never runs. The
 * futures stay pending and valid until released. */
TEST(loop_close_with_jobs) {
    weft_loop_t *loop = loop_workers(1);
    weft_future_t *f0, *f1;
    double t0 = wt_now();
    counters_reset();
    atomic_store(&ran_mask, 0);
    ASSERT_OK(weft_loop_run_in_executor(loop, NULL, sleeping_job, (void *)150, &f0));
    ASSERT_OK(weft_loop_run_in_executor(loop, NULL, marking_job, (void *)1, &f1));
    while (atomic_load(&started) < 1)
        msleep(1);
    ASSERT_OK(weft_loop_close(loop));
    ASSERT_EQ_INT(atomic_load(&finished), 1);
    ASSERT(wt_now() - t0 >= 0.14);
    ASSERT_EQ_INT(atomic_load(&ran_mask), 0);
    ASSERT(!weft_future_done(f0));
    ASSERT(!weft_future_done(f1));
    weft_unref(f0);
    weft_unref(f1);
}

static int wait_started_main(void *arg, void **res) {
    await_count(&started, 1);
    wt_yield_n(5);
    return 0;
}

static atomic_int abandoned_done;

static int abandoned_caller(void *arg, void **res) {
    volatile int slot = 0;
    int rc = weft_to_thread(stack_writer_job, (void *)&slot, NULL);
    atomic_store(&abandoned_done, 1); /* never: the task is abandoned while it waits */
    return rc;
}

/* Tasks abandoned by close while in to_thread: the running job, which writes into its
 * caller's stack, is waited for before that stack goes; the queued one is dropped. */
TEST(loop_close_abandons_to_thread) {
    weft_loop_t *loop = loop_workers(1);
    weft_task_t *a, *b;
    char *log;
    counters_reset();
    atomic_store(&ran_mask, 0);
    atomic_store(&abandoned_done, 0);
    a = wt_spawn(loop, abandoned_caller, NULL, "writer");
    b = wt_spawn(loop, to_thread_marking, (void *)4, "queued");
    ASSERT_OK(wt_run_task(loop, wait_started_main, NULL, NULL));
    gate_open(1); /* the job now sleeps 20 ms, then writes */
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    log = wt_capture_end();
    ASSERT_EQ_INT(atomic_load(&finished), 1);
    ASSERT_CONTAINS(log, "Task was destroyed but it is pending: task");
    ASSERT_CONTAINS(log, "'writer'");
    free(log);
    ASSERT_EQ_INT(atomic_load(&ran_mask), 0);
    ASSERT_EQ_INT(atomic_load(&abandoned_done), 0);
    ASSERT(weft_future_cancelled(a));
    weft_unref(a);
    weft_unref(b);
}

const wt_test_t wt_tests[] = {
    T(saturation),
    T(idle_worker_reused),
    T(workers_block_signals),
    T(cancel_queued_jobs),
    T(running_job_result_dropped),
    T(to_thread_cancelled_while_running_waits),
    T(to_thread_cancelled_while_queued),
    T(to_thread_timeout),
    T(job_errors_with_messages),
    T(bad_arguments),
    T(long_job_is_not_a_deadlock),
    T(shutdown_wait),
    T(shutdown_cancel_futures),
    T(shutdown_from_own_job),
    T(shutdown_default_executor),
    T(default_executor_size),
    T(set_default_executor),
    T(shared_by_two_loops),
    T(loop_close_with_jobs),
    T(loop_close_abandons_to_thread),
    WT_END,
};
