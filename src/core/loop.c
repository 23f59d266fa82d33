/* The event loop: one iteration polls for I/O, moves due timers to the ready queue, then runs
 * what was ready when the iteration began (asyncio's BaseEventLoop._run_once). */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

__thread weft_loop_t *weft__tls_loop __attribute__((tls_model("initial-exec")));


/* Runs in the SIGSEGV handler: async-signal-safe, so formatted by hand. */
static void describe_task(void *owner, char *buf, size_t len) {
    weft_task_t *t = owner;
    char digits[24];
    size_t nd = 0, at = 0;
    uint64_t id = t->id;
    const char *name = weft__task_own_name(t) ? t->extra->name : "Task-";
    do
        digits[nd++] = (char)('0' + id % 10);
    while ((id /= 10) && nd < sizeof digits);
#define PUT(c) do { if (at + 1 < len) buf[at++] = (c); } while (0)
    PUT('#');
    for (size_t i = nd; i > 0; i--)
        PUT(digits[i - 1]);
    PUT(' ');
    PUT('\'');
    for (const char *p = name; *p; p++)
        PUT(*p);
    if (!weft__task_own_name(t))
        for (size_t i = nd; i > 0; i--)
            PUT(digits[i - 1]);
    PUT('\'');
#undef PUT
    if (len)
        buf[at] = '\0';
}

double weft__now(const weft_loop_t *loop) {
    struct timespec ts;
    if (loop->virtual_clock)
        return loop->vnow;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int weft_loop_new(weft_loop_t **out, const weft_loop_options_t *opts) {
    weft_loop_t *loop;
    int rc;
    if (!out)
        return WEFT_EINVAL;
    loop = calloc(1, sizeof *loop);
    if (!loop)
        return WEFT_ENOMEM;
    weft__queue_init(&loop->ready);
    weft__list_init(&loop->jobs);
    loop->stack_size = opts && opts->stack_size ? opts->stack_size : WEFT_STACK_DEFAULT;
    loop->virtual_clock = opts && opts->virtual_clock;
    loop->refs = 1;
    weft__slab_init(&loop->objects, sizeof(struct weft_future));
    loop->stacks = weft__stack_pool_new(loop->stack_size);
    if (!loop->stacks) {
        free(loop);
        return WEFT_ENOMEM;
    }
    loop->executor_workers = opts ? opts->executor_workers : 0;
    loop->epoch = weft__now(loop);
    loop->slow_callback_duration = 0.1; /* asyncio's default */
    loop->debug = weft__debug_env();
    rc = weft__poll_init(&loop->poll);
    if (rc == 0 && (rc = weft__wake_init(loop)) < 0)
        weft__poll_close(&loop->poll);
    if (rc < 0) {
        weft__stack_pool_free(loop->stacks);
        free(loop);
        return rc;
    }
    weft__overflow_install(describe_task);
    *out = loop;
    return 0;
}

void weft__loop_unref(weft_loop_t *loop) {
    if (--loop->refs == 0) {
        weft__slab_destroy(&loop->objects);
        free(loop);
    }
}

/* ---- handles (call_soon / call_later / call_at) ------------------------------------- */

static void handle_unref(weft_handle_t *h) {
    if (--h->refs == 0) {
        weft_loop_t *loop = h->loop;
        loop->nhandles--;
        free(h);
        weft__loop_unref(loop);
    }
}

void weft_handle_unref(weft_handle_t *h) {
    if (h)
        handle_unref(h);
}

static void handle_run(weft__work_t *w) {
    weft_handle_t *h = weft__container_of(w, weft_handle_t, work);
    h->queued = 0;
    if (!h->cancelled)
        h->cb(h->arg);
    handle_unref(h);
}

static int handle_new(weft_loop_t *loop, weft_callback_fn cb, void *arg, weft_handle_t **out,
                      weft_handle_t **hp) {
    weft_handle_t *h;
    if (!loop || !cb)
        return WEFT_EINVAL;
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    h = malloc(sizeof *h);
    if (!h)
        return WEFT_ENOMEM;
    h->work.run = handle_run;
    h->timer.heap_index = WEFT__TIMER_IDLE;
    h->timer.when = NAN;
    h->loop = loop;
    h->cb = cb;
    h->arg = arg;
    h->refs = 1 + (out != NULL);
    h->cancelled = 0;
    h->queued = 1;
    h->is_timer = 0;
    loop->nhandles++;
    loop->refs++;
    if (out)
        *out = h;
    *hp = h;
    return 0;
}

int weft_call_soon(weft_loop_t *loop, weft_callback_fn cb, void *arg, weft_handle_t **handle) {
    weft_handle_t *h;
    int rc;
    if (loop)
        WEFT__LOOP_THREAD(loop);
    rc = handle_new(loop, cb, arg, handle, &h);
    if (rc == 0)
        weft__schedule(loop, &h->work);
    return rc;
}

int weft_call_at(weft_loop_t *loop, double when, weft_callback_fn cb, void *arg,
                 weft_handle_t **handle) {
    weft_handle_t *h;
    int rc;
    if (when != when)
        return WEFT_EINVAL;
    if (loop)
        WEFT__LOOP_THREAD(loop);
    rc = handle_new(loop, cb, arg, NULL, &h);
    if (rc < 0)
        return rc;
    h->is_timer = 1;
    rc = weft__timer_start(loop, &h->timer, when, WEFT__TIMER_HANDLE);
    if (rc < 0) {
        handle_unref(h);
        return rc;
    }
    if (handle) {
        h->refs++;
        *handle = h;
    }
    return 0;
}

int weft_call_later(weft_loop_t *loop, double delay, weft_callback_fn cb, void *arg,
                    weft_handle_t **handle) {
    if (!loop || delay != delay)
        return WEFT_EINVAL;
    return weft_call_at(loop, weft__now(loop) + delay, cb, arg, handle);
}

int weft_handle_cancel(weft_handle_t *h) {
    if (h->cancelled || !h->queued)
        return 0;
    h->cancelled = 1;
    if (weft__timer_armed(&h->timer)) {
        weft__timer_stop(h->loop, &h->timer);
        h->queued = 0;
        handle_unref(h);
    }
    return 1;
}

int weft_handle_cancelled(const weft_handle_t *h) { return h->cancelled; }
double weft_handle_when(const weft_handle_t *h) { return h->timer.when; }

/* ---- one iteration --------------------------------------------------------------------- */

static void fire_timer(weft_loop_t *loop, struct weft__timer *t) {
    switch (t->kind) {
    case WEFT__TIMER_HANDLE:
        weft__schedule(loop, &weft__container_of(t, weft_handle_t, timer)->work);
        break;
    case WEFT__TIMER_TASK:
        weft__task_wake(weft__container_of(t, struct weft_future, timer), WEFT__WAKE_TIMER);
        break;
    case WEFT__TIMER_TIMEOUT:
        weft__timeout_fire(weft__container_of(t, weft_timeout_t, timer));
        break;
    }
}

/* The function a work item will call for the user, for debug mode's report of a slow one:
 * read before it runs, since running frees it. */
static void *work_fn(weft__work_t *w) {
    void *fn;
    if (w->run == handle_run)
        return (void *)(uintptr_t)weft__container_of(w, weft_handle_t, work)->cb;
    if ((fn = weft__done_work_fn(w)) || (fn = weft__posted_work_fn(w)) ||
        (fn = weft__net_work_fn(w)))
        return fn;
    return (void *)(uintptr_t)w->run;
}

/* The batch in debug mode: each callback is timed here; a task step is timed where the task
 * is switched in and out (weft__debug_task_left), since tasks hand over to each other without
 * coming back to this loop. Kept apart so that the usual batch has no clock read. */
static void run_batch_debug(weft_loop_t *loop) {
    weft__work_t *w;
    while ((w = loop->batch)) {
        loop->batch = w->next;
        if (w->run == weft__task_step) {
            loop->debug_began = weft__debug_clock();
            w->run(w);
        } else {
            void *fn = work_fn(w);
            double began = weft__debug_clock();
            w->run(w);
            weft__debug_callback_done(loop, fn, began);
        }
    }
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Stack chunks that a burst of tasks left free are unmapped when the loop is about to wait at
 * least a millisecond with nothing to do, or 10 s after they were retired if that never
 * happens: not while the burst winds down (see src/coro/stack.c). Unmapping a million stacks
 * takes most of a second, so it goes a few chunks at a time within a budget: half the wait
 * when something is due (a timer must not fire late for it), 1 ms per poll when the loop is
 * busy, no limit when nothing is due at all. Returns the nanoseconds it took. */
static int64_t trim_stacks(weft_loop_t *loop, int64_t timeout_ns) {
    bool idle = timeout_ns < 0 || timeout_ns >= 1000000;
    int64_t budget = timeout_ns < 0 ? INT64_MAX : idle ? timeout_ns / 2 : 1000000;
    int64_t t0, spent;
    if (!idle) {
        double now = weft__now(loop);
        if (loop->trim_at == 0)
            loop->trim_at = now + 10.0;
        if (now < loop->trim_at)
            return 0;
    }
    t0 = mono_ns();
    do {
        weft__stack_pool_trim(loop->stacks, 8);
        spent = mono_ns() - t0;
    } while (weft__stack_pool_retired(loop->stacks) && spent < budget);
    if (!weft__stack_pool_retired(loop->stacks))
        loop->trim_at = 0;
    return spent;
}

static void loop_poll(weft_loop_t *loop, int64_t timeout_ns) {
    if (weft__unlikely(weft__stack_pool_retired(loop->stacks) != 0)) {
        int64_t spent = trim_stacks(loop, timeout_ns);
        if (timeout_ns > 0)
            timeout_ns = spent < timeout_ns ? timeout_ns - spent : 0;
    }
    weft__poll_wait(&loop->poll, timeout_ns);
}

/* Returns 0, or -EDEADLK when nothing is ready, no timer is armed, no fd is watched and
 * nothing outside the loop (another thread, a signal) is expected: no event can ever arrive,
 * and blocking would hang forever. */
static int run_once(weft_loop_t *loop) {
    struct weft__timer *top = weft__heap_top(&loop->timers);
    weft__work_t *w;

    if (top && top->when == WEFT_NEVER) /* armed for never: it cannot wake anything */
        top = NULL;
    /* One relaxed load per iteration: what other threads posted runs in this iteration even if
     * the loop is too busy to poll. */
    if (atomic_load_explicit(&loop->pending, memory_order_relaxed))
        weft__wake_dispatch(loop);

    if (loop->ready.head || loop->stopping) {
        if (weft__poll_due(loop)) {
            loop->steps_since_poll = 0;
            loop_poll(loop, 0);
        }
    } else if (top) {
        double delay = top->when - weft__now(loop);
        if (loop->virtual_clock) {
            /* Time does not jump while a job on another thread may still finish first. */
            if (loop->nexternal)
                loop_poll(loop, -1);
            else if (loop->poll.nwatched)
                loop_poll(loop, 0);
            if (!loop->ready.head && delay > 0) {
                if (weft__stack_pool_retired(loop->stacks)) /* time jumps: an idle moment */
                    trim_stacks(loop, -1);
                loop->vnow = top->when;
            }
        } else if (delay > 0) {
            /* Wait a day at most: the deadline is recomputed next time round. */
            int64_t ns = delay > 86400 ? (int64_t)86400e9 : (int64_t)ceil(delay * 1e9);
            loop_poll(loop, ns);
        } else if (loop->poll.nwatched) {
            loop_poll(loop, 0);
        }
        loop->steps_since_poll = 0;
    } else if (loop->poll.nwatched || loop->forever || weft__loop_expects_outside(loop)) {
        loop_poll(loop, -1);
        loop->steps_since_poll = 0;
    } else {
        return WEFT_EDEADLK;
    }

    if (top) {
        double now = weft__now(loop);
        while ((top = weft__heap_top(&loop->timers)) && top->when <= now) {
            weft__heap_remove(&loop->timers, top);
            fire_timer(loop, top);
        }
    }

    /* Only what is ready now runs in this iteration; what it schedules waits for the next.
     * Tasks take items from the batch too (weft__sched_leave), so it is re-read each time. */
    weft__iteration_begin(loop);
    if (weft__unlikely(loop->debug)) {
        run_batch_debug(loop);
        return 0;
    }
    while ((w = loop->batch)) {
        loop->batch = w->next;
        w->run(w);
    }
    return 0;
}

static int loop_enter(weft_loop_t *loop) {
    int rc;
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if (loop->running || weft__tls_loop)
        return WEFT_EBUSY; /* this loop, or another one on this thread, is running */
    /* On the thread that runs the loop: it gets the overflow handler's alternate stack. */
    if ((rc = weft__coro_init_thread(&loop->ctx)) < 0)
        return rc;
    loop->running = true;
    weft__tls_loop = loop;
    weft__monitor_loop_enter(loop); /* WEFT_MONITOR, and the SIGQUIT dump of debug mode */
    return 0;
}

static void loop_leave(weft_loop_t *loop) {
    weft__coro_release(&loop->ctx);
    loop->running = false;
    loop->stopping = false;
    weft__tls_loop = NULL;
}

int weft_loop_run_forever(weft_loop_t *loop) {
    int rc = loop_enter(loop);
    if (rc < 0)
        return rc;
    loop->forever = true;
    while ((rc = run_once(loop)) == 0 && !loop->stopping)
        ;
    loop->forever = false;
    loop_leave(loop);
    return rc;
}

/* run_until_complete stops the loop from a done callback of its own, queued like any other:
 * callbacks the user added to the future earlier still run first (asyncio's order). */
typedef struct stop_waiter {
    weft__waiter_t waiter;
    weft__work_t work;
    weft_loop_t *loop;
    bool queued;
} stop_waiter_t;

static void stop_run(weft__work_t *w) {
    stop_waiter_t *sw = weft__container_of(w, stop_waiter_t, work);
    sw->queued = false;
    sw->loop->stopping = true;
}

static void stop_fire(weft__waiter_t *w, weft_future_t *f) {
    stop_waiter_t *sw = weft__container_of(w, stop_waiter_t, waiter);
    (void)f;
    sw->queued = true;
    weft__schedule(sw->loop, &sw->work);
}

/* Unlinks a queued item: O(n), for the rare exits that leave one behind. */
static void queue_remove(weft__queue_t *q, weft__work_t *w) {
    for (weft__work_t **p = &q->head; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            if (!*p)
                q->tailp = p;
            q->len--;
            return;
        }
}

int weft_loop_run_until_complete(weft_loop_t *loop, weft_future_t *f, void **result) {
    int rc;
    if (!loop || !f || f->loop != loop)
        return WEFT_EINVAL;
    if (f->state == WEFT__PENDING) {
        stop_waiter_t sw = {{NULL, stop_fire}, {NULL, stop_run}, loop, false};
        if ((rc = loop_enter(loop)) < 0)
            return rc;
        weft__ref(f);
        weft__waiter_add(f, &sw.waiter);
        while ((rc = run_once(loop)) == 0 && !loop->stopping)
            ;
        weft__waiter_remove(f, &sw.waiter);
        if (sw.queued) /* the loop was stopped by someone else first */
            queue_remove(&loop->ready, &sw.work);
        loop_leave(loop);
        if (f->state == WEFT__PENDING) {
            if (rc == WEFT_EDEADLK)
                weft__deadlock_report(loop, f);
            weft__unref(f);
            weft__set_errmsg(rc == WEFT_EDEADLK ? "the future can never complete: nothing is "
                                                  "ready, scheduled or watched"
                                                : "the loop stopped before the future completed");
            return rc == WEFT_EDEADLK ? rc : WEFT_EINTR;
        }
        weft__unref(f);
    }
    rc = weft__future_outcome(f, result);
    if (rc < 0)
        weft__set_errmsg(weft_future_error_message(f));
    return rc;
}

void weft_loop_stop(weft_loop_t *loop) {
    WEFT__LOOP_THREAD(loop);
    loop->stopping = true;
}
int weft_loop_is_running(const weft_loop_t *loop) { return loop->running; }
int weft_loop_is_closed(const weft_loop_t *loop) { return loop->closed; }
double weft_loop_time(const weft_loop_t *loop) { return weft__now(loop); }
weft_loop_t *weft_get_running_loop(void) { return weft__tls_loop; }
void weft_loop_set_data(weft_loop_t *loop, void *data) { loop->data = data; }
void *weft_loop_data(const weft_loop_t *loop) { return loop->data; }

void weft_loop_stats(const weft_loop_t *loop, weft_loop_stats_t *st) {
    st->iterations = loop->iterations;
    st->tasks = loop->ntasks - loop->nhidden;
    st->pending_tasks = loop->npending - loop->nhidden_pending;
    st->futures = loop->nfutures;
    st->timers = loop->timers.len;
    st->ready = loop->ready.len;
    st->handles = loop->nhandles;
    st->stacks = loop->stacks ? weft__stack_pool_in_use(loop->stacks) : 0;
}

/* Pending callbacks are dropped, not run (asyncio's close clears its ready queue). A queued
 * task step is just unlinked: the task itself is abandoned by the caller. */
static void drop_ready(weft_loop_t *loop) {
    weft__work_t *w;
    while ((w = loop->ready.head)) {
        loop->ready.head = w->next;
        if (w->run == handle_run) {
            weft_handle_t *h = weft__container_of(w, weft_handle_t, work);
            h->queued = 0;
            h->cancelled = 1;
            handle_unref(h);
        } else if (w->run != weft__task_step && !weft__net_drop_work(w)) {
            weft__drop_work(w);
        }
    }
    weft__queue_init(&loop->ready);
}

int weft_loop_close(weft_loop_t *loop) {
    if (!loop)
        return WEFT_EINVAL;
    if (loop->running)
        return WEFT_EBUSY;
    if (loop->closed)
        return 0;
    loop->closed = true;
    /* Abandoning a task completes it, which can queue more work: drain until all is gone. */
    for (;;) {
        drop_ready(loop);
        if (!loop->all_tasks)
            break;
        weft__task_abandon(loop->all_tasks);
    }
    while (loop->timers.len) { /* only call_later handles are left */
        struct weft__timer *t = loop->timers.items[0].timer;
        weft__heap_remove(&loop->timers, t);
        weft__schedule(loop, &weft__container_of(t, weft_handle_t, timer)->work);
    }
    drop_ready(loop);
    weft__thread_loop_close(loop);
    drop_ready(loop);
    weft__net_loop_close(loop);
    drop_ready(loop);
    weft__queue_init(&loop->ready);
    weft__heap_free(&loop->timers);
    weft__poll_close(&loop->poll);
    weft__wake_free(loop);
    weft__stack_pool_free(loop->stacks);
    loop->stacks = NULL;
    weft__loop_unref(loop);
    return 0;
}

/* ---- asyncio.run ------------------------------------------------------------------------ */

/* Cancels every task still pending and runs the loop until they have all finished
 * (asyncio.runners._cancel_all_tasks). */
static void cancel_all_tasks(weft_loop_t *loop) {
    size_t n = loop->npending, i = 0;
    weft_future_t **tasks, *g = NULL;
    if (n == 0)
        return;
    tasks = malloc(n * sizeof *tasks);
    if (!tasks) {
        weft__log("weft_run: out of memory while cancelling the remaining tasks");
        return;
    }
    for (weft_task_t *t = loop->all_tasks; t; t = t->all_next)
        tasks[i++] = weft__ref(t);
    for (i = 0; i < n; i++)
        weft_cancel(tasks[i], NULL);
    if (weft_loop_gather(loop, tasks, n, WEFT_GATHER_RETURN_EXCEPTIONS, &g) == 0) {
        weft_loop_run_until_complete(loop, g, NULL);
        weft__unref(g);
    }
    for (i = 0; i < n; i++) {
        weft_task_t *t = tasks[i];
        if (t->state == WEFT__ERROR) {
            t->retrieved = 1;
            weft__log("unhandled error during weft_run() shutdown: task #%llu '%s': %s (%s)",
                      (unsigned long long)t->id, weft_task_name(t), weft_future_error_message(t),
                      weft_err_name(t->code));
        }
        weft__unref(t);
    }
    free(tasks);
}

int weft_run_with(const weft_loop_options_t *opts, weft_task_fn main, void *arg, void **result) {
    weft_loop_t *loop;
    weft_task_t *task;
    char msg[512];
    int rc, signo = 0;
    weft__run_signo = 0;
    if (weft__tls_loop)
        return WEFT_EBUSY; /* asyncio.run() cannot be called from a running event loop */
    if ((rc = weft_loop_new(&loop, opts)) < 0)
        return rc;
    rc = weft_loop_create_task_at(NULL, loop, &task, main, arg, NULL);
    if (rc == 0) {
        /* Ctrl-C and SIGTERM cancel main so that its clean-up runs (asyncio.Runner), from the
         * start until main is done; the remaining tasks are then cancelled without them. */
        weft__signal_run_begin(loop, task);
        rc = weft_loop_run_until_complete(loop, task, result);
        signo = weft__signal_run_end(loop);
        if (signo && rc == WEFT_ECANCELED) {
            rc = WEFT_EINTR;
            snprintf(msg, sizeof msg, "interrupted by %s", signo == SIGINT ? "SIGINT" : "SIGTERM");
        } else {
            snprintf(msg, sizeof msg, "%s", rc < 0 ? weft_error_message() : "");
        }
        cancel_all_tasks(loop);
        weft__unref(task);
        weft__set_errmsg(msg);
    }
    weft_loop_close(loop);
    weft__run_signo = signo;
    return rc;
}

int weft_run(weft_task_fn main, void *arg, void **result) {
    return weft_run_with(NULL, main, arg, result);
}
