/* Threads and loops: call_soon_threadsafe from many threads, holds and the deadlock rule,
 * run_forever woken from outside, run_coroutine_threadsafe with results, errors, timeouts and
 * cancellation, several loops in several threads, and the thread-safe queue between threads
 * and tasks. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wt.h"

static pthread_t start(void *(*fn)(void *), void *arg) {
    pthread_t th;
    if (pthread_create(&th, NULL, fn, arg) != 0)
        WT_FAIL("pthread_create");
    return th;
}

static void join(pthread_t th) { pthread_join(th, NULL); }

/* A loop running run_forever on a thread of its own, for the tests that submit to it. */
typedef struct loop_thread {
    weft_loop_t *loop;
    pthread_t th;
    int rc;
} loop_thread_t;

static void *loop_thread_main(void *arg) {
    loop_thread_t *lt = arg;
    lt->rc = weft_loop_run_forever(lt->loop);
    return NULL;
}

static void loop_thread_start(loop_thread_t *lt) {
    if (!lt->loop)
        lt->loop = wt_loop_real();
    lt->th = start(loop_thread_main, lt);
}

static void loop_thread_stop(loop_thread_t *lt) {
    ASSERT_OK(weft_loop_stop_threadsafe(lt->loop));
    join(lt->th);
    ASSERT_OK(lt->rc);
    WT_CLOSE_LOOP(lt->loop);
}

/* ---- call_soon_threadsafe ------------------------------------------------------------- */

#define NTHREADS 8
#define NCALLS 2000

typedef struct calls {
    weft_loop_t *loop;
    weft_future_t *all_done;
    int count;
    int last[NTHREADS];     /* per thread: the last sequence number seen, to check order */
    bool disorder;
} calls_t;

typedef struct call_arg {
    calls_t *c;
    int thread, seq;
} call_arg_t;

static void counted(void *arg) {
    call_arg_t *a = arg;
    calls_t *c = a->c;
    if (a->seq != c->last[a->thread] + 1)
        c->disorder = true;
    c->last[a->thread] = a->seq;
    if (++c->count == NTHREADS * NCALLS)
        weft_future_set_result(c->all_done, NULL);
    free(a);
}

typedef struct poster {
    calls_t *c;
    int thread;
} poster_t;

static void *poster_main(void *arg) {
    poster_t *p = arg;
    for (int i = 1; i <= NCALLS; i++) {
        call_arg_t *a = malloc(sizeof *a);
        a->c = p->c;
        a->thread = p->thread;
        a->seq = i;
        if (weft_call_soon_threadsafe(p->c->loop, counted, a) != 0)
            abort();
        if (i % 256 == 0)
            sched_yield();
    }
    return NULL;
}

/* Many threads at once: every call runs on the loop, once, in each thread's order. The loop
 * is held while the threads may still post, so it waits instead of reporting a deadlock. */
TEST(call_soon_threadsafe_many_threads) {
    calls_t c = {0};
    poster_t p[NTHREADS];
    pthread_t th[NTHREADS];
    c.loop = wt_loop_real();
    ASSERT_OK(weft_loop_create_future(c.loop, &c.all_done));
    weft_loop_hold(c.loop);
    for (int i = 0; i < NTHREADS; i++) {
        p[i] = (poster_t){&c, i};
        th[i] = start(poster_main, &p[i]);
    }
    ASSERT_OK(weft_loop_run_until_complete(c.loop, c.all_done, NULL));
    for (int i = 0; i < NTHREADS; i++)
        join(th[i]);
    weft_loop_release(c.loop);
    ASSERT_EQ_INT(c.count, NTHREADS * NCALLS);
    ASSERT(!c.disorder);
    weft_unref(c.all_done);
    WT_CLOSE_LOOP(c.loop);
}

static void set_flag(void *arg) { *(int *)arg = 1; }

/* A busy loop (tasks always ready, nothing watched: it never polls) still runs what other
 * threads post, in the next iteration. */
typedef struct busy {
    weft_loop_t *loop;
    int flag;
} busy_t;

static void *post_flag(void *arg) {
    busy_t *b = arg;
    usleep(20000);
    if (weft_call_soon_threadsafe(b->loop, set_flag, &b->flag) != 0)
        abort();
    return NULL;
}

static int spin_until_flag(void *arg, void **result) {
    busy_t *b = arg;
    double t0 = wt_now();
    while (!b->flag && wt_now() - t0 < 5)
        ASSERT_OK(weft_sleep(0));
    ASSERT(b->flag);
    return 0;
}

TEST(call_soon_threadsafe_reaches_busy_loop) {
    busy_t b = {wt_loop_real(), 0};
    pthread_t th = start(post_flag, &b);
    ASSERT_OK(wt_run_task(b.loop, spin_until_flag, &b, NULL));
    join(th);
    WT_CLOSE_LOOP(b.loop);
}

TEST(call_soon_threadsafe_after_close) {
    weft_loop_t *loop = wt_loop_real();
    int flag = 0;
    ASSERT_EQ_INT(weft_call_soon_threadsafe(NULL, set_flag, &flag), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_call_soon_threadsafe(loop, NULL, &flag), WEFT_EINVAL);
    /* Posted but never run: dropped by close, as asyncio's close drops pending callbacks. */
    ASSERT_OK(weft_call_soon_threadsafe(loop, set_flag, &flag));
    ASSERT_OK(weft_loop_close(loop));
    ASSERT_EQ_INT(flag, 0);
}

/* ---- holds, run_forever and the deadlock rule ------------------------------------------ */

static void *stop_later(void *loop) {
    usleep(30000);
    if (weft_loop_stop_threadsafe(loop) != 0)
        abort();
    return NULL;
}

/* run_forever with nothing to do waits for another thread instead of reporting a deadlock. */
TEST(run_forever_waits_for_stop_threadsafe) {
    weft_loop_t *loop = wt_loop_real();
    pthread_t th = start(stop_later, loop);
    double t0 = wt_now();
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT(wt_now() - t0 >= 0.025);
    join(th);
    WT_CLOSE_LOOP(loop);
}

static void *release_later(void *loop) {
    usleep(30000);
    weft_loop_release(loop);
    return NULL;
}

/* Held, the loop waits; when the last hold goes without anything completing the future, the
 * loop wakes and reports the deadlock it now is. */
TEST(hold_then_release_reports_deadlock) {
    weft_loop_t *loop = wt_loop_real();
    weft_future_t *f;
    pthread_t th;
    double t0 = wt_now();
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, f, NULL), WEFT_EDEADLK);
    weft_loop_hold(loop);
    th = start(release_later, loop);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, f, NULL), WEFT_EDEADLK);
    ASSERT(wt_now() - t0 >= 0.025);
    join(th);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* A future completed from another thread through call_soon_threadsafe (asyncio's
 * loop.call_soon_threadsafe(fut.set_result, x)). */
typedef struct completer {
    weft_loop_t *loop;
    weft_future_t *f;
} completer_t;

static void set_42(void *arg) { weft_future_set_result(arg, (void *)42); }

static void *complete_later(void *arg) {
    completer_t *c = arg;
    usleep(10000);
    if (weft_call_soon_threadsafe(c->loop, set_42, c->f) != 0)
        abort();
    weft_loop_release(c->loop);
    return NULL;
}

TEST(future_completed_from_thread) {
    completer_t c = {wt_loop_real(), NULL};
    void *v = NULL;
    pthread_t th;
    ASSERT_OK(weft_loop_create_future(c.loop, &c.f));
    weft_loop_hold(c.loop);
    th = start(complete_later, &c);
    ASSERT_OK(weft_loop_run_until_complete(c.loop, c.f, &v));
    ASSERT_EQ_PTR(v, (void *)42);
    join(th);
    weft_unref(c.f);
    WT_CLOSE_LOOP(c.loop);
}

/* ---- run_coroutine_threadsafe ---------------------------------------------------------- */

static int sleep_then_value(void *arg, void **result) {
    int rc = weft_sleep((double)(intptr_t)arg / 1000.0);
    if (rc < 0)
        return rc;
    *result = (void *)(intptr_t)(7 * (intptr_t)arg);
    return 0;
}

static int fails(void *arg, void **result) {
    return weft_fail(WEFT_EPROTO, "bad thing %d", (int)(intptr_t)arg);
}

TEST(run_coroutine_threadsafe_result_and_error) {
    loop_thread_t lt = {0};
    weft_cfuture_t *cf, *cf2;
    void *v = NULL;
    loop_thread_start(&lt);
    ASSERT_OK(weft_run_coroutine_threadsafe(lt.loop, sleep_then_value, (void *)20, NULL, &cf));
    ASSERT_OK(weft_cfuture_result(cf, 5, &v));
    ASSERT_EQ_PTR(v, (void *)140);
    ASSERT(weft_cfuture_done(cf));
    ASSERT(!weft_cfuture_cancelled(cf));
    ASSERT_NULL(weft_cfuture_error_message(cf));
    ASSERT_EQ_INT(weft_cfuture_cancel(cf), 0); /* already done */
    weft_cfuture_unref(cf);

    ASSERT_OK(weft_run_coroutine_threadsafe(lt.loop, fails, (void *)3, NULL, &cf2));
    ASSERT_EQ_INT(weft_cfuture_result(cf2, 5, NULL), WEFT_EPROTO);
    ASSERT_EQ_STR(weft_error_message(), "bad thing 3");
    ASSERT_EQ_STR(weft_cfuture_error_message(cf2), "bad thing 3");
    weft_cfuture_unref(cf2);
    loop_thread_stop(&lt);
}

/* result(timeout) gives up without stopping the task; cancel() then ends it. */
TEST(run_coroutine_threadsafe_timeout_then_cancel) {
    loop_thread_t lt = {0};
    weft_cfuture_t *cf;
    double t0;
    loop_thread_start(&lt);
    ASSERT_OK(weft_run_coroutine_threadsafe(lt.loop, sleep_then_value, (void *)10000, NULL, &cf));
    t0 = wt_now();
    ASSERT_EQ_INT(weft_cfuture_result(cf, 0.05, NULL), WEFT_ETIMEDOUT);
    ASSERT(wt_now() - t0 >= 0.045);
    ASSERT(!weft_cfuture_done(cf));
    ASSERT_EQ_INT(weft_cfuture_cancel(cf), 1);
    /* Asked again: 1 while still pending, 0 if the task has already ended. */
    ASSERT(weft_cfuture_cancel(cf) == 1 || weft_cfuture_done(cf));
    ASSERT_EQ_INT(weft_cfuture_result(cf, 5, NULL), WEFT_ECANCELED);
    ASSERT(weft_cfuture_cancelled(cf));
    ASSERT(wt_now() - t0 < 2);
    weft_cfuture_unref(cf);
    loop_thread_stop(&lt);
}

/* Cancelled before the loop even created the task: it never runs its body. */
static int must_not_run(void *arg, void **result) {
    atomic_store((_Atomic int *)arg, 1);
    return 0;
}

TEST(run_coroutine_threadsafe_cancel_before_start) {
    loop_thread_t lt = {wt_loop_real(), 0, 0};
    _Atomic int ran = 0;
    weft_cfuture_t *cf;
    /* Submitted and cancelled before the loop runs at all. */
    ASSERT_OK(weft_run_coroutine_threadsafe(lt.loop, must_not_run, &ran, NULL, &cf));
    ASSERT_EQ_INT(weft_cfuture_cancel(cf), 1);
    loop_thread_start(&lt);
    ASSERT_EQ_INT(weft_cfuture_result(cf, 5, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(atomic_load(&ran), 0);
    weft_cfuture_unref(cf);
    loop_thread_stop(&lt);
}

/* Waiting on the loop's own thread for work of that loop would hang: -EDEADLK. */
static int wait_own(void *arg, void **result) {
    weft_cfuture_t *cf;
    ASSERT_OK(weft_run_coroutine_threadsafe(weft_get_running_loop(), sleep_then_value,
                                            (void *)1, NULL, &cf));
    ASSERT_EQ_INT(weft_cfuture_result(cf, 1, NULL), WEFT_EDEADLK);
    /* A task awaits it instead. */
    void *v = NULL;
    ASSERT_OK(weft_cfuture_await(cf, &v));
    ASSERT_EQ_PTR(v, (void *)7);
    weft_cfuture_unref(cf);
    return 0;
}

TEST(cfuture_result_on_own_loop_is_edeadlk) {
    weft_loop_t *loop = wt_loop_real();
    ASSERT_OK(wt_run_task(loop, wait_own, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* A loop closed before it ran the request: the waiter is told, not left hanging. */
TEST(run_coroutine_threadsafe_loop_closed) {
    weft_loop_t *loop = wt_loop_real();
    _Atomic int ran = 0;
    weft_cfuture_t *cf;
    ASSERT_OK(weft_run_coroutine_threadsafe(loop, must_not_run, &ran, NULL, &cf));
    ASSERT_OK(weft_loop_close(loop));
    ASSERT_EQ_INT(weft_cfuture_result(cf, 1, NULL), WEFT_ESHUTDOWN);
    ASSERT_EQ_INT(atomic_load(&ran), 0);
    weft_cfuture_unref(cf);
    ASSERT_EQ_INT(weft_run_coroutine_threadsafe(NULL, must_not_run, &ran, NULL, &cf),
                  WEFT_EINVAL);
}

/* ---- several loops in several threads ---------------------------------------------------- */

/* Four threads each run their own loop (weft_run); each main task submits work to the next
 * thread's loop and awaits it without blocking its own, while its own loop serves the
 * previous one. Tasks stay on their loop's thread. */
#define NLOOPS 4

typedef struct ring {
    _Atomic(weft_loop_t *) loops[NLOOPS];
    _Atomic int ready, finished;
} ring_t;

typedef struct ring_arg {
    ring_t *r;
    int i;
    pthread_t self;
} ring_arg_t;

static int on_thread(void *arg, void **result) {
    ring_arg_t *a = arg;
    ASSERT(pthread_equal(pthread_self(), a->self)); /* ran on the loop's own thread */
    ASSERT_OK(weft_sleep(0.01));
    *result = (void *)(intptr_t)(a->i * 10);
    return 0;
}

static int ring_main(void *arg, void **result) {
    ring_arg_t *a = arg, *next_arg;
    ring_t *r = a->r;
    int next = (a->i + 1) % NLOOPS;
    weft_cfuture_t *cf;
    void *v = NULL;
    a->self = pthread_self();
    atomic_store(&r->loops[a->i], weft_get_running_loop());
    atomic_fetch_add(&r->ready, 1);
    while (atomic_load(&r->ready) < NLOOPS)
        ASSERT_OK(weft_sleep(0.001));
    next_arg = a + (next - a->i);
    ASSERT_OK(weft_run_coroutine_threadsafe(atomic_load(&r->loops[next]), on_thread, next_arg,
                                            NULL, &cf));
    ASSERT_OK(weft_cfuture_await(cf, &v));
    ASSERT_EQ_PTR(v, (void *)(intptr_t)(next * 10));
    weft_cfuture_unref(cf);
    /* Stay until every loop has served its neighbour. */
    atomic_fetch_add(&r->finished, 1);
    while (atomic_load(&r->finished) < NLOOPS)
        ASSERT_OK(weft_sleep(0.001));
    return 0;
}

static void *ring_thread(void *arg) {
    if (weft_run(ring_main, arg, NULL) != 0)
        abort();
    return NULL;
}

TEST(loops_in_threads_serve_each_other) {
    ring_t r = {0};
    ring_arg_t a[NLOOPS];
    pthread_t th[NLOOPS];
    for (int i = 0; i < NLOOPS; i++) {
        a[i] = (ring_arg_t){&r, i, 0};
        th[i] = start(ring_thread, &a[i]);
    }
    for (int i = 0; i < NLOOPS; i++)
        join(th[i]);
    ASSERT_EQ_INT(atomic_load(&r.finished), NLOOPS);
}

/* A task awaiting a cfuture is cancelled: it returns -ECANCELED at once, the other loop's
 * work goes on to its end. */
static int await_then_cancelled(void *arg, void **result) {
    weft_cfuture_t *cf = arg;
    return weft_cfuture_await(cf, NULL);
}

static int cancel_awaiter_main(void *arg, void **result) {
    loop_thread_t *lt = arg;
    weft_cfuture_t *cf;
    weft_task_t *t;
    void *v = NULL;
    ASSERT_OK(weft_run_coroutine_threadsafe(lt->loop, sleep_then_value, (void *)50, NULL, &cf));
    t = wt_spawn(NULL, await_then_cancelled, cf, "awaiter");
    ASSERT_OK(weft_sleep(0.01));
    weft_cancel(t, NULL);
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    ASSERT(!weft_cfuture_done(cf));
    ASSERT_OK(weft_cfuture_await(cf, &v));
    ASSERT_EQ_PTR(v, (void *)350);
    weft_cfuture_unref(cf);
    return 0;
}

TEST(cfuture_await_cancelled) {
    loop_thread_t lt = {0};
    weft_loop_t *loop = wt_loop_real();
    loop_thread_start(&lt);
    ASSERT_OK(wt_run_task(loop, cancel_awaiter_main, &lt, NULL));
    WT_CLOSE_LOOP(loop);
    loop_thread_stop(&lt);
}

/* The awaiting loop closes while its task waits: nothing is left behind in the cfuture. */
static int await_forever(void *arg, void **result) {
    weft_cfuture_await(arg, NULL);
    return 0;
}

TEST(cfuture_await_loop_closed) {
    loop_thread_t lt = {0};
    weft_loop_t *loop = wt_loop_real();
    weft_cfuture_t *cf;
    weft_task_t *t;
    char *err;
    loop_thread_start(&lt);
    ASSERT_OK(weft_run_coroutine_threadsafe(lt.loop, sleep_then_value, (void *)100, NULL, &cf));
    ASSERT_OK(weft_loop_create_task(loop, &t, await_forever, cf, NULL));
    ASSERT_OK(weft_call_later(loop, 0.02, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    weft_unref(t);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "destroyed but it is pending");
    free(err);
    ASSERT_OK(weft_cfuture_result(cf, 5, NULL));
    weft_cfuture_unref(cf);
    loop_thread_stop(&lt);
}

/* ---- the thread-safe queue ------------------------------------------------------------------ */

#define NPRODUCERS 4
#define NITEMS 5000

typedef struct pc {
    weft_tsqueue_t *q;
    int producer;
    _Atomic int *left;
} pc_t;

/* The last producer to finish shuts the queue down, which ends the consumer. */
static void *produce(void *arg) {
    pc_t *p = arg;
    for (intptr_t i = 1; i <= NITEMS; i++)
        if (weft_tsqueue_put_blocking(p->q, (void *)(i * 8 + p->producer), WEFT_NEVER) != 0)
            abort();
    if (atomic_fetch_sub(p->left, 1) == 1)
        weft_tsqueue_shutdown(p->q);
    return NULL;
}

typedef struct consumed {
    weft_tsqueue_t *q;
    intptr_t last[NPRODUCERS];
    int n;
} consumed_t;

static int consumer(void *arg, void **result) {
    consumed_t *c = arg;
    void *item;
    int rc;
    while ((rc = weft_tsqueue_get(c->q, &item)) == 0) {
        intptr_t v = (intptr_t)item, p = v % 8, seq = v / 8;
        ASSERT(p < NPRODUCERS);
        ASSERT_EQ_INT(seq, c->last[p] + 1); /* each producer's items in order */
        c->last[p] = seq;
        c->n++;
    }
    ASSERT_EQ_INT(rc, WEFT_ESHUTDOWN);
    return 0;
}

/* Producer threads block on a small bounded queue (backpressure) while a task consumes; the
 * loop waits for them rather than reporting a deadlock. */
TEST(tsqueue_threads_to_task) {
    weft_loop_t *loop = wt_loop_real();
    consumed_t c = {0};
    pc_t p[NPRODUCERS];
    pthread_t th[NPRODUCERS];
    weft_task_t *t;
    _Atomic int left = NPRODUCERS;
    ASSERT_OK(weft_tsqueue_new(&c.q, 16));
    for (int i = 0; i < NPRODUCERS; i++) {
        p[i] = (pc_t){c.q, i, &left};
        th[i] = start(produce, &p[i]);
    }
    t = wt_spawn(loop, consumer, &c, "consumer");
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    for (int i = 0; i < NPRODUCERS; i++)
        join(th[i]);
    weft_unref(t);
    ASSERT_EQ_INT(c.n, NPRODUCERS * NITEMS);
    ASSERT_OK(weft_tsqueue_free(c.q));
    WT_CLOSE_LOOP(loop);
}

/* The other way: tasks of two loops put, a plain thread gets with get_blocking. */
typedef struct to_thread_q {
    weft_tsqueue_t *q;
    int base;
} to_thread_q_t;

static int put_many(void *arg, void **result) {
    to_thread_q_t *a = arg;
    for (intptr_t i = 0; i < 1000; i++)
        ASSERT_OK(weft_tsqueue_put(a->q, (void *)(a->base + i)));
    return 0;
}

static void *run_putter(void *arg) {
    if (weft_run(put_many, arg, NULL) != 0)
        abort();
    return NULL;
}

TEST(tsqueue_tasks_to_thread) {
    weft_tsqueue_t *q;
    to_thread_q_t a = {NULL, 0}, b = {NULL, 100000};
    pthread_t ta, tb;
    long long sum = 0, expect = 0;
    void *item;
    ASSERT_OK(weft_tsqueue_new(&q, 4));
    a.q = b.q = q;
    ta = start(run_putter, &a);
    tb = start(run_putter, &b);
    for (int i = 0; i < 2000; i++) {
        ASSERT_OK(weft_tsqueue_get_blocking(q, &item, 5));
        sum += (intptr_t)item;
    }
    join(ta);
    join(tb);
    for (int i = 0; i < 1000; i++)
        expect += i + (100000 + i);
    ASSERT(sum == expect);
    ASSERT_EQ_INT(weft_tsqueue_get_nowait(q, &item), WEFT_EQUEUEEMPTY);
    ASSERT_OK(weft_tsqueue_free(q));
}

TEST(tsqueue_blocking_timeouts_and_nowait) {
    weft_tsqueue_t *q;
    void *item = NULL;
    double t0;
    ASSERT_OK(weft_tsqueue_new(&q, 1));
    t0 = wt_now();
    ASSERT_EQ_INT(weft_tsqueue_get_blocking(q, &item, 0.05), WEFT_ETIMEDOUT);
    ASSERT(wt_now() - t0 >= 0.045);
    ASSERT_EQ_INT(weft_tsqueue_get_blocking(q, &item, 0), WEFT_ETIMEDOUT);
    ASSERT_OK(weft_tsqueue_put_nowait(q, (void *)1));
    ASSERT_EQ_INT(weft_tsqueue_put_nowait(q, (void *)2), WEFT_EQUEUEFULL);
    ASSERT_EQ_INT(weft_tsqueue_put_blocking(q, (void *)2, 0.02), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT((int)weft_tsqueue_qsize(q), 1);
    ASSERT_OK(weft_tsqueue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)1);
    ASSERT_EQ_INT(weft_tsqueue_get_nowait(q, &item), WEFT_EQUEUEEMPTY);
    /* Outside a task, the suspending calls refuse. */
    ASSERT_EQ_INT(weft_tsqueue_get(q, &item), WEFT_EPERM);
    ASSERT_EQ_INT(weft_tsqueue_put(q, item), WEFT_EPERM);
    ASSERT_EQ_INT(weft_tsqueue_get_nowait(NULL, &item), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_tsqueue_new(NULL, 0), WEFT_EINVAL);
    weft_tsqueue_shutdown(q);
    ASSERT_EQ_INT(weft_tsqueue_put_nowait(q, (void *)3), WEFT_ESHUTDOWN);
    ASSERT_EQ_INT(weft_tsqueue_get_blocking(q, &item, 1), WEFT_ESHUTDOWN);
    ASSERT_OK(weft_tsqueue_free(q));
}

/* A getter cancelled (here by a timeout scope) loses nothing: the item a thread puts after
 * the cancellation goes to the next getter. And free() refuses while a task waits. */
static int get_with_timeout(void *arg, void **result) {
    weft_tsqueue_t *q = arg;
    weft_timeout_t to;
    void *item = NULL;
    int rc;
    weft_timeout_begin(&to, 0.02);
    rc = weft_tsqueue_get(q, &item);
    rc = weft_timeout_end(&to, rc);
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_NULL(item);
    ASSERT_OK(weft_tsqueue_get(q, &item));
    *result = item;
    return 0;
}

static void *put_later(void *q) {
    usleep(60000);
    if (weft_tsqueue_put_blocking(q, (void *)77, 1) != 0)
        abort();
    return NULL;
}

static int busy_free(void *arg, void **result) {
    weft_tsqueue_t *q = arg;
    ASSERT_OK(weft_sleep(0.01));
    ASSERT_EQ_INT(weft_tsqueue_free(q), WEFT_EBUSY);
    return 0;
}

TEST(tsqueue_cancelled_get_loses_nothing) {
    weft_loop_t *loop = wt_loop_real();
    weft_tsqueue_t *q;
    weft_task_t *t, *f;
    void *v = NULL;
    pthread_t th;
    ASSERT_OK(weft_tsqueue_new(&q, 0));
    th = start(put_later, q);
    t = wt_spawn(loop, get_with_timeout, q, "getter");
    f = wt_spawn(loop, busy_free, q, "free");
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)77);
    ASSERT_OK(weft_loop_run_until_complete(loop, f, NULL));
    join(th);
    weft_unref(t);
    weft_unref(f);
    ASSERT_EQ_INT((int)weft_tsqueue_qsize(q), 0);
    ASSERT_OK(weft_tsqueue_free(q));
    WT_CLOSE_LOOP(loop);
}

/* Many cancellations racing with puts from threads: every item is got exactly once. */
#define RACE_ITEMS 3000

typedef struct race {
    weft_tsqueue_t *q;
    _Atomic int got;
    int seen[RACE_ITEMS + 1];
} race_t;

static int racing_getter(void *arg, void **result) {
    race_t *r = arg;
    void *item;
    int rc;
    for (;;) {
        rc = weft_tsqueue_get(r->q, &item);
        if (rc == WEFT_ECANCELED) {
            weft_task_uncancel(weft_current_task());
            continue;
        }
        if (rc == WEFT_ESHUTDOWN)
            return 0;
        ASSERT_OK(rc);
        r->seen[(intptr_t)item]++;
        atomic_fetch_add(&r->got, 1);
    }
}

static int canceller(void *arg, void **result) {
    weft_task_t **getters = arg;
    for (int i = 0; i < 400; i++) {
        weft_cancel(getters[i % 4], NULL);
        ASSERT_OK(weft_sleep(0.0002));
    }
    return 0;
}

static void *race_producer(void *arg) {
    race_t *r = arg;
    for (intptr_t i = 1; i <= RACE_ITEMS; i++)
        if (weft_tsqueue_put_blocking(r->q, (void *)i, 5) != 0)
            abort();
    return NULL;
}

TEST(tsqueue_cancellation_race) {
    weft_loop_t *loop = wt_loop_real();
    static race_t r;
    weft_task_t *getters[4], *c;
    pthread_t th;
    ASSERT_OK(weft_tsqueue_new(&r.q, 8));
    for (int i = 0; i < 4; i++)
        getters[i] = wt_spawn(loop, racing_getter, &r, NULL);
    c = wt_spawn(loop, canceller, getters, "canceller");
    th = start(race_producer, &r);
    ASSERT_OK(weft_loop_run_until_complete(loop, c, NULL));
    join(th);
    weft_tsqueue_shutdown(r.q);
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(weft_loop_run_until_complete(loop, getters[i], NULL));
        weft_unref(getters[i]);
    }
    weft_unref(c);
    ASSERT_EQ_INT(atomic_load(&r.got), RACE_ITEMS);
    for (int i = 1; i <= RACE_ITEMS; i++)
        ASSERT_EQ_INT(r.seen[i], 1);
    ASSERT_OK(weft_tsqueue_free(r.q));
    WT_CLOSE_LOOP(loop);
}

/* The loop closes while a task waits on the queue: its node leaves, the queue is usable and
 * freeable afterwards. */
static int wait_get(void *arg, void **result) {
    void *item;
    weft_tsqueue_get(arg, &item);
    return 0;
}

TEST(tsqueue_loop_close_with_waiter) {
    weft_loop_t *loop = wt_loop_real();
    weft_tsqueue_t *q;
    weft_task_t *t;
    void *item;
    char *err;
    ASSERT_OK(weft_tsqueue_new(&q, 0));
    ASSERT_OK(weft_loop_create_task(loop, &t, wait_get, q, NULL));
    ASSERT_OK(weft_call_later(loop, 0.01, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    weft_unref(t);
    ASSERT_EQ_INT(weft_tsqueue_free(q), WEFT_EBUSY);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "destroyed but it is pending");
    free(err);
    ASSERT_OK(weft_tsqueue_put_nowait(q, (void *)5));
    ASSERT_OK(weft_tsqueue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)5);
    ASSERT_OK(weft_tsqueue_free(q));
}

/* ---- [loop thread] checks ------------------------------------------------------------------ */

#ifdef WEFT_THREAD_CHECKS
static weft_loop_t *checked_loop;

static void nothing(void *arg) { (void)arg; }

static void *wrong_thread(void *arg) {
    weft_call_soon(checked_loop, nothing, NULL, NULL); /* aborts */
    return NULL;
}

static int spin(void *arg, void **result) {
    pthread_t th = start(wrong_thread, NULL);
    join(th);
    return 0;
}

static void wrong_thread_child(void) {
    checked_loop = wt_loop_real();
    wt_run_task(checked_loop, spin, NULL, NULL);
    exit(0);
}

#endif

TEST(loop_thread_check_aborts) {
#ifdef WEFT_THREAD_CHECKS
    int status;
    char *err = wt_run_child(wrong_thread_child, &status);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    ASSERT_CONTAINS(err, "weft_call_soon() called on a thread other than");
    free(err);
#else
    wt_skip("built without WEFT_THREAD_CHECKS");
#endif
}

const wt_test_t wt_tests[] = {
    T(call_soon_threadsafe_many_threads),
    T(call_soon_threadsafe_reaches_busy_loop),
    T(call_soon_threadsafe_after_close),
    T(run_forever_waits_for_stop_threadsafe),
    T(hold_then_release_reports_deadlock),
    T(future_completed_from_thread),
    T(run_coroutine_threadsafe_result_and_error),
    T(run_coroutine_threadsafe_timeout_then_cancel),
    T(run_coroutine_threadsafe_cancel_before_start),
    T(cfuture_result_on_own_loop_is_edeadlk),
    T(run_coroutine_threadsafe_loop_closed),
    T(loops_in_threads_serve_each_other),
    T(cfuture_await_cancelled),
    T(cfuture_await_loop_closed),
    T(tsqueue_threads_to_task),
    T(tsqueue_tasks_to_thread),
    T(tsqueue_blocking_timeouts_and_nowait),
    T(tsqueue_cancelled_get_loses_nothing),
    T(tsqueue_cancellation_race),
    T(tsqueue_loop_close_with_waiter),
    T(loop_thread_check_aborts),
    WT_END,
};
