/* Internal structures of the core: loop, ready queue, timers, futures and tasks.
 * Everything here is private to the library (weft__ prefix, hidden visibility). */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weft.h"
#include "../coro/coro.h"
#include "list.h"
#include "../poll/poll.h"
#include "slab.h"

#define weft__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define weft__likely(x) __builtin_expect(!!(x), 1)
#define weft__unlikely(x) __builtin_expect(!!(x), 0)

/* ---- ready queue ---------------------------------------------------------------------- */

/* Something to run in a loop iteration: a task step, a call_soon handle, a done callback.
 * Intrusive, so scheduling never allocates. */
typedef struct weft__work weft__work_t;
struct weft__work {
    weft__work_t *next;
    void (*run)(weft__work_t *w);
};

typedef struct weft__queue {
    weft__work_t *head;
    weft__work_t **tailp;
    size_t len;
} weft__queue_t;

static inline void weft__queue_init(weft__queue_t *q) {
    q->head = NULL;
    q->tailp = &q->head;
    q->len = 0;
}

static inline void weft__queue_push(weft__queue_t *q, weft__work_t *w) {
    w->next = NULL;
    *q->tailp = w;
    q->tailp = &w->next;
    q->len++;
}

/* ---- timers --------------------------------------------------------------------------- */

enum weft__timer_kind {
    WEFT__TIMER_HANDLE,   /* call_later / call_at */
    WEFT__TIMER_TASK,     /* a task's own timer: sleep, wait(timeout) */
    WEFT__TIMER_TIMEOUT,  /* a weft_timeout_t scope */
};

#define WEFT__TIMER_IDLE UINT32_MAX

/* Entries carry their deadline, so sifting compares without touching the timers. */
typedef struct weft__heap_entry {
    double when;
    struct weft__timer *timer;
} weft__heap_entry_t;

typedef struct weft__heap {
    weft__heap_entry_t *items;
    uint32_t len, cap;
} weft__heap_t;

void weft__heap_free(weft__heap_t *h);
int weft__heap_push(weft__heap_t *h, struct weft__timer *t);
void weft__heap_remove(weft__heap_t *h, struct weft__timer *t);
static inline struct weft__timer *weft__heap_top(const weft__heap_t *h) {
    return h->len ? h->items[0].timer : NULL;
}

/* ---- futures and tasks ---------------------------------------------------------------- */

enum weft__fstate { WEFT__PENDING, WEFT__RESULT, WEFT__ERROR, WEFT__CANCELLED };
enum weft__fkind { WEFT__FUTURE, WEFT__TASK, WEFT__GATHER, WEFT__SHIELD };

/* A registration on a future's done list. Internal waiters run inline at completion (they
 * only schedule work: wake a task, count a gather child); user callbacks are turned into
 * ready work, so user code never runs inline. */
typedef struct weft__waiter weft__waiter_t;
struct weft__waiter {
    weft__waiter_t *next;
    void (*fire)(weft__waiter_t *w, weft_future_t *f);
};

/* Task life cycle. */
enum weft__tstate {
    WEFT__T_NEW,      /* scheduled for its first step, no stack yet */
    WEFT__T_READY,    /* in the ready queue */
    WEFT__T_RUNNING,
    WEFT__T_WAITING,  /* suspended until something wakes it */
    WEFT__T_DONE,
};

/* Positive wake status: a task's own timer fired (negative ones are error codes). */
#define WEFT__WAKE_TIMER 1

/* What a task needs only while it runs. It lives at the top of the task's own stack, so a
 * task that has not started, or has finished, costs only its weft_future (small): a million
 * pending tasks are a million small structs, not a million of these. */
typedef struct weft__run {
    weft__coro_t coro;
    weft_task_t *task;
    weft__stack_t stack;            /* as handed out by the pool */
    weft_timeout_t *scopes;         /* innermost open timeout scope */
    char *errmsg;                   /* weft_error_message() */
    char *failmsg;                  /* set by weft_fail() */
    /* Called if the task is destroyed while suspended (its loop closed): unregisters what
     * the suspension left on other objects (waiter nodes on this stack). */
    void (*abort_wait)(struct weft__run *run, void *arg);
    void *abort_arg;
    void *value;                    /* the body's result, until the loop completes the task */
    /* What the task is suspended on, for weft_task_waiting_on() and the deadlock report: a
     * static description ("lock", "queue get", ...) and the object, set at each suspension. */
    const char *wait_what;
    const void *wait_obj;
    int shield_depth;
    int cancel_level;               /* highest shield depth a pending cancel reaches */
} weft__run_t;

struct weft_future {
    weft__work_t work;          /* task: its step; others: unused */
    weft_loop_t *loop;
    weft__waiter_t *waiters;    /* newest first; reversed when fired */
    union {                     /* one or the other: a future has a value or a message */
        void *value;            /* state WEFT__RESULT */
        char *msg;              /* otherwise: the error or cancel message (heap), or NULL */
    };
    int refs;
    int code;                   /* error code when state is WEFT__ERROR */
    uint8_t state;              /* enum weft__fstate */
    uint8_t kind;               /* enum weft__fkind */
    uint8_t retrieved;          /* error seen by someone: no "never retrieved" report */
    uint8_t tstate;             /* tasks: enum weft__tstate */
    int cancelling;             /* tasks: Task.cancelling() */
    /* tasks only, from here */
    weft__run_t *run;           /* while the task has a stack */
    struct weft__task_extra *extra; /* name, creation site and time, hidden: NULL if none */
    /* The body is needed only until the task starts, the timer only after: sharing the bytes
     * keeps a task at two cache lines (128 bytes), and a million tasks created before any
     * runs (spawn-and-gather) touch 16 MB less fresh memory. task_main reads the body and
     * disarms the timer before anything else can look at it. */
    union {
        struct {
            weft_task_fn fn;
            void *arg;
        } body;                 /* WEFT__T_NEW */
        /* sleep / wait timeout, once started. Here rather than on the task's stack: the timer
         * heap touches it on every sift, and a million timers packed in the loop's slab stay
         * cache- and TLB-friendly where a million stack pages would not. */
        struct weft__timer timer;
    };
    uint64_t id;
    struct weft_future *all_prev, *all_next; /* the loop's list of unfinished tasks */
    uint32_t stack_size;
    /* Why the task was woken. Here and not in the run state: waking a sleeping task then
     * touches only this struct, not its (cold) stack page. */
    int wake_status;
};


/* What few tasks need, kept out of the task so that a million plain tasks stay small: made for
 * a task given a name, one created in debug mode or with the monitor on (its creation site and
 * time, as asyncio keeps a task's creation traceback only in debug mode), and weft's own
 * hidden tasks. */
typedef struct weft__task_extra {
    char *name;                 /* NULL: "Task-<id>" */
    const weft_site_t *site;    /* where it was created, or NULL */
    uint32_t created_ms;        /* ms from the loop's creation to the task's, plus 1; 0: unknown */
    bool hidden;                /* weft's own (the monitor's): not listed, not in reports */
} weft__task_extra_t;

static inline const char *weft__task_own_name(const struct weft_future *t) {
    return t->extra ? t->extra->name : NULL;
}
static inline const weft_site_t *weft__task_site(const struct weft_future *t) {
    return t->extra ? t->extra->site : NULL;
}
static inline bool weft__task_hidden(const struct weft_future *t) {
    return t->extra && t->extra->hidden;
}
static inline uint32_t weft__task_created_ms(const struct weft_future *t) {
    return t->extra ? t->extra->created_ms : 0;
}
/* The task's extra block, made on first use; NULL when out of memory. */
weft__task_extra_t *weft__task_extra(struct weft_future *t);
/* Makes a pending task one of weft's own (the monitor's consoles): left out of weft_all_tasks,
 * weft_loop_stats, the dumps and the deadlock report. 0, or -ENOMEM. */
int weft__task_hide(struct weft_future *t);

/* ---- handles -------------------------------------------------------------------------- */

struct weft_handle {
    weft__work_t work;
    struct weft__timer timer;
    weft_loop_t *loop;
    weft_callback_fn cb;
    void *arg;
    int refs;
    uint8_t cancelled;
    uint8_t queued;          /* in the ready queue or the heap: the loop holds a reference */
    uint8_t is_timer;
};

/* ---- the loop ------------------------------------------------------------------------- */

struct weft_loop {
    weft__queue_t ready;
    weft__heap_t timers;
    weft__poll_t poll;
    weft__coro_t ctx;              /* the loop's own context (the thread's stack) */
    weft__stack_pool_t *stacks;
    weft__slab_t objects;          /* tasks and plain futures */
    weft_task_t *current;          /* the running task, or NULL */
    weft__work_t *batch;           /* the rest of this iteration's work */
    struct weft__run *orphan;      /* a finished task's stack, for the loop to take back */
    weft_task_t *all_tasks;        /* unfinished tasks */
    double vnow;                   /* virtual clock's time */
    double trim_at;                /* when retired stack chunks go even if never idle; 0: unset */
    uint64_t timer_seq;
    uint64_t next_id, end_id;      /* this loop's block of task ids */
    uint64_t iterations;
    unsigned steps_since_poll;
    size_t stack_size;
    size_t ntasks, npending, nfutures, nhandles;
    size_t nhidden, nhidden_pending; /* weft's own tasks among ntasks, npending: not reported */
    int refs;                      /* 1 for the loop itself + 1 per live future/task/handle */
    bool running, stopping, closed, virtual_clock;
    bool debug;                    /* debug mode (weft_loop_set_debug) */
    void *data;
    struct weft__monitor *monitor; /* src/debug/monitor.c, or NULL */
    /* Networking (src/net): watched fds by number, objects to close with the loop, the
     * resolver's state. */
    struct weft__fd **fds;
    int nfds;
    struct weft__closer *closers;
    void *dns;
    /* Other threads and signal handlers (src/thread, src/process). They post work to the
     * inbox and set `pending`; the loop looks at `pending` once per iteration (one load), so
     * busy loops see posts without a system call, and a sleeping one is woken by the eventfd,
     * written only when `pending` goes from 0 to set. */
    _Atomic unsigned pending;      /* WEFT__PENDING_* */
    _Atomic int holds;             /* weft_loop_hold() */
    int wake_fd;                   /* eventfd, in the poller without counting as watched */
    weft__io_t wake_io;
    pthread_mutex_t inbox_lock;
    weft__queue_t inbox;           /* posted work, under inbox_lock */
    bool inbox_closed;
    bool forever;                  /* in run_forever: never -EDEADLK */
    unsigned nexternal;            /* executor jobs in flight for this loop (loop thread) */
    weft__list_t jobs;             /* those jobs (src/thread/executor.c) */
    weft_executor_t *executor;     /* the default executor, once started */
    weft_executor_t *user_executor;  /* set_default_executor's, borrowed */
    unsigned executor_workers;
    struct weft__signals *signals;         /* handlers of this loop (src/process/signal.c) */
    struct weft__procs *procs;             /* child processes (src/process/process.c) */
    /* Debug mode and the monitor (src/debug); `debug` and `monitor` are with the hot fields
     * above, since task creation and every step test them. */
    double slow_callback_duration;
    double epoch;                  /* loop time at creation: tasks' created_ms count from it */
    double debug_began;            /* debug mode: when the running step or callback began */
    struct weft__quitdump *quitdump;   /* the SIGQUIT task dump, while debug or monitor is on */
};

/* ---- shared by the core files --------------------------------------------------------- */

extern __thread weft_loop_t *weft__tls_loop __attribute__((tls_model("initial-exec")));

double weft__now(const weft_loop_t *loop);
int weft__timer_start(weft_loop_t *loop, struct weft__timer *t, double when, uint32_t kind);
void weft__timer_stop(weft_loop_t *loop, struct weft__timer *t);
static inline bool weft__timer_armed(const struct weft__timer *t) {
    return t->heap_index != WEFT__TIMER_IDLE;
}
void weft__loop_unref(weft_loop_t *loop);
/* Closes the loop's sockets, servers and resolver (src/net). */
void weft__net_loop_close(weft_loop_t *loop);
/* Frees a queued work item of src/net without running it (loop close); false if not one. */
bool weft__net_drop_work(weft__work_t *w);

static inline void weft__schedule(weft_loop_t *loop, weft__work_t *w) {
    weft__queue_push(&loop->ready, w);
}

/* With work ready, the kernel is asked for I/O only every this many task steps: often enough
 * that sockets are not starved, rarely enough that a yield costs no system call. */
#define WEFT__POLL_EVERY_STEPS 64

static inline bool weft__poll_due(const weft_loop_t *loop) {
    return loop->poll.nwatched && loop->steps_since_poll >= WEFT__POLL_EVERY_STEPS;
}

/* Starts an iteration: what is ready now becomes the batch. */
static inline void weft__iteration_begin(weft_loop_t *loop) {
    loop->batch = loop->ready.head;
    loop->steps_since_poll += (unsigned)loop->ready.len;
    loop->iterations++;
    weft__queue_init(&loop->ready);
}

/* Futures. */
static inline weft_future_t *weft__ref(weft_future_t *f) {
    f->refs++;
    return f;
}
void weft__future_destroy(weft_future_t *f);
static inline void weft__unref(weft_future_t *f) {
    if (--f->refs == 0)
        weft__future_destroy(f);
}
static inline void weft__future_init(weft_future_t *f, weft_loop_t *loop, uint8_t kind) {
    /* The common part only: tasks set their own fields. */
    memset(f, 0, offsetof(struct weft_future, run));
    f->loop = loop;
    f->kind = kind;
    f->refs = 1;
    loop->refs++;
    if (kind != WEFT__TASK)
        loop->nfutures++;
}
void weft__future_complete(weft_future_t *f, uint8_t state, int code, void *value, char *msg);
/* Frees a queued done callback without running it (loop close). */
void weft__drop_work(weft__work_t *w);
void weft__waiter_add(weft_future_t *f, weft__waiter_t *w);
void weft__waiter_remove(weft_future_t *f, weft__waiter_t *w);
/* weft_await, where the caller also holds `owned_refs` references to f that must go if the
 * task is abandoned while it waits (its loop closed). */
int weft__await(weft_future_t *f, void **value, int owned_refs);
int weft__future_outcome(weft_future_t *f, void **value); /* marks retrieved */
void weft__gather_destroy(weft_future_t *f);
int weft__gather_cancel(weft_future_t *f, const char *msg);
void weft__shield_destroy(weft_future_t *f);

/* Tasks. */
/* Requests cancellation, visible to suspensions at shield depth <= level. */
int weft__task_cancel(weft_task_t *t, const char *msg, int level);
void weft__task_wake(weft_task_t *t, int status);
/* The task is still suspended: nothing (a wake-up, a cancellation) has made it ready yet. */
static inline bool weft__task_waiting(const weft_task_t *t) { return t->tstate == WEFT__T_WAITING; }
/* Suspends the current task until weft__task_wake(); returns the wake status, or -ECANCELED
 * when a cancellation is visible at resume. */
int weft__suspend(weft_task_t *t);
/* Suspends until woken, whatever cancellation is pending; returns the wake status. For waits
 * that must run to their end (an await after passing its cancellation on). */
int weft__suspend_raw(weft_task_t *t);
void weft__task_step(weft__work_t *w);
/* Every suspension site says what the task waits on (weft_task_waiting_on(), the deadlock
 * report, the monitor): a static description and the object it is about. */
#define WEFT__WAITING(t, what, obj) \
    ((t)->run->wait_what = (what), (t)->run->wait_obj = (const void *)(obj))
static inline bool weft__cancel_visible(const weft_task_t *t) {
    return t->cancelling > 0 && t->run->shield_depth <= t->run->cancel_level;
}
void weft__task_destroy(weft_task_t *t);
void weft__task_abandon(weft_task_t *t);
void weft__set_errmsg(const char *msg);
weft_task_t *weft__current(void);

/* Timeout scopes. */
void weft__timeout_fire(weft_timeout_t *to);
void weft__recompute_cancel_level(weft_task_t *t);

/* Messages: heap-allocated printf. Never NULL on success; NULL only when out of memory. */
char *weft__vasprintf(const char *fmt, va_list ap);
char *weft__strdup(const char *s);

/* ---- threads (src/thread/wake.c) ------------------------------------------------------ */

enum { WEFT__PENDING_INBOX = 1, WEFT__PENDING_SIGNAL = 2 };

int weft__wake_init(weft_loop_t *loop);
/* Sets `what` in loop->pending and wakes the loop if it was clear. Async-signal-safe. */
void weft__loop_wake(weft_loop_t *loop, unsigned what);
/* Posts `w` to the loop from any thread: w->run(w) is called on the loop's thread. After the
 * loop closed, -ESHUTDOWN and nothing is posted. Never allocates. */
int weft__loop_post(weft_loop_t *loop, weft__work_t *w);
/* Removes a posted item not yet taken by the loop; false if the loop has it already. */
bool weft__loop_unpost(weft_loop_t *loop, weft__work_t *w);
/* CLOCK_MONOTONIC `timeout` seconds from now (negative: now), for condition variables made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC): threads blocked on loop work wait with it. */
struct timespec;
void weft__deadline(struct timespec *dl, double timeout);
/* Moves what was posted into the ready queue and handles pending signals. */
void weft__wake_dispatch(weft_loop_t *loop);
/* Loop close: ends executor jobs, children, signal handlers, then runs what is left in the
 * inbox with loop->closed set (each item then releases itself without doing its work). */
void weft__thread_loop_close(weft_loop_t *loop);
void weft__wake_free(weft_loop_t *loop);
/* Something outside the loop may still complete work on it (executor jobs, holds, signal
 * handlers): waiting is not a deadlock. */
bool weft__loop_expects_outside(weft_loop_t *loop);

/* Hooks of the other thread-related modules, called by wake.c. */
void weft__executor_loop_close(weft_loop_t *loop);   /* src/thread/executor.c */
void weft__signal_dispatch(weft_loop_t *loop);       /* src/process/signal.c */
void weft__signal_loop_close(weft_loop_t *loop);
bool weft__signal_expected(weft_loop_t *loop);       /* handlers registered by the user */
void weft__process_loop_close(weft_loop_t *loop);    /* src/process/process.c */

/* Internal signal watchers (src/process/signal.c): any number per signal and loop, beside the
 * user's handler; cb runs on the loop's thread after the signal arrived (once for a burst).
 * Used for SIGCHLD where the kernel has no pidfd, and for the SIGQUIT task dump. A watcher
 * counts as "expected from outside" (no -EDEADLK while one is registered) unless it is `quiet`.
 * cb is called inline by the loop's signal dispatch (possibly from within its poll), like an
 * io callback: it may wake tasks, complete futures and unwatch itself or other watchers, never
 * suspend or run user code. watch: 0, -EINVAL (bad
 * signo, no cb), -ESHUTDOWN, -ENOMEM; the struct stays the caller's and must live until
 * unwatched (or the loop closed). unwatch of a watcher not registered does nothing. */
typedef struct weft__sigwatch weft__sigwatch_t;
struct weft__sigwatch {
    weft__sigwatch_t *next;
    int signo;
    void (*cb)(weft__sigwatch_t *w);
    /* Not "expected from outside": a debugging aid (the SIGQUIT task dump) must not keep
     * run_until_complete from reporting -EDEADLK. */
    bool quiet;
};
int weft__signal_watch(weft_loop_t *loop, weft__sigwatch_t *w);
void weft__signal_unwatch(weft_loop_t *loop, weft__sigwatch_t *w);
/* weft_run() (src/core/loop.c): while main runs, SIGINT / SIGTERM left at SIG_DFL cancel it
 * (on the main thread only). This catching is not "expected from outside". run_end restores
 * the dispositions and returns the signal caught (0 if none); weft__run_signo is what
 * weft_run_signal() reports for the thread's last weft_run(). */
void weft__signal_run_begin(weft_loop_t *loop, weft_task_t *main_task);
int weft__signal_run_end(weft_loop_t *loop);
extern __thread int weft__run_signo __attribute__((tls_model("initial-exec")));

/* [loop thread] checks (WEFT_THREAD_CHECKS builds, and loops in debug mode): a call made on
 * another thread while the loop runs logs the call's name and aborts. Without
 * WEFT_THREAD_CHECKS a call costs one predictable branch on loop->debug. */
__attribute__((noreturn, cold)) void weft__wrong_thread(const weft_loop_t *loop, const char *fn);
#ifdef WEFT_THREAD_CHECKS
#define WEFT__THREAD_CHECKED(loop) 1
#else
#define WEFT__THREAD_CHECKED(loop) weft__unlikely((loop)->debug)
#endif
#define WEFT__LOOP_THREAD(loop)                                                     \
    do {                                                                            \
        if (WEFT__THREAD_CHECKED(loop) && (loop)->running && weft__tls_loop != (loop)) \
            weft__wrong_thread((loop), __func__);                                   \
    } while (0)

/* A task's creation time as it is kept (weft_future.created_ms). */
static inline uint32_t weft__created_ms(const weft_loop_t *loop) {
    double ms = (weft__now(loop) - loop->epoch) * 1000.0 + 1;
    return ms < UINT32_MAX ? (uint32_t)ms : UINT32_MAX;
}

/* src/debug/tasks.c: logs the deadlock report (every task and what it waits on). */
void weft__deadlock_report(weft_loop_t *loop, const weft_future_t *awaited);
/* src/debug/monitor.c. Called when a loop starts running: the first loop of the process
 * starts the monitor WEFT_MONITOR names, and the SIGQUIT dump follows debug mode. */
void weft__monitor_loop_enter(weft_loop_t *loop);
/* src/debug/backtrace.c. Installs or removes the loop's SIGQUIT task dump to match
 * loop->debug || loop->monitor: called when either changes (and when a loop starts running). */
void weft__quitdump_sync(weft_loop_t *loop);

/* ---- logging and debug mode (src/core/log.c) ------------------------------------------- */

/* weft_log() for the library's own reports: weft__log at WARNING, weft__log_at at any level. */
void weft__log(const char *fmt, ...) WEFT_PRINTF(1, 2);
void weft__log_at(int level, const char *fmt, ...) WEFT_PRINTF(2, 3);
void weft__vlog(int level, const char *fmt, va_list ap);
/* WEFT_DEBUG=1 (or true, yes, on) in the environment: new loops start in debug mode. */
bool weft__debug_env(void);
/* The monotonic clock in seconds, even for a virtual-clock loop (debug mode times real work). */
double weft__debug_clock(void);
/* Debug mode, the running task `t` stops running (it suspends or ends): its step is reported
 * if it was slow, and loop->debug_began restarts for whatever runs next. */
void weft__debug_task_left(weft_loop_t *loop, weft_task_t *t);
/* Debug mode, a callback (fn: the user's function, or the work item's) that began at `began`
 * has returned: reported if it was slow. */
void weft__debug_callback_done(weft_loop_t *loop, void *fn, double began);
/* The user's function behind a queued work item, for that report: a done callback
 * (future.c), a call_soon_threadsafe (wake.c), an add_reader / add_writer callback (net/fd.c);
 * NULL if `w` is not one of theirs. */
void *weft__done_work_fn(const weft__work_t *w);
void *weft__posted_work_fn(const weft__work_t *w);
void *weft__net_work_fn(const weft__work_t *w);
/* " (created at file.c:42 in func)" for a task whose creation site is known, else "". */
const char *weft__site_suffix(const weft_task_t *t, char *buf, size_t len);
/* "127.0.0.1:80", "[::1]:80", "unix:/path"; "" for an unnamed socket. Returns the length. */
size_t weft__format_sockaddr(char *buf, size_t len, const struct sockaddr *sa, socklen_t salen);
/* Debug mode's "unclosed <what> fd N (peer ADDR)" at loop close: the peer's address, or the
 * socket's own (local) one when peer is false. */
void weft__log_unclosed_socket(const char *what, int fd, bool peer);

#endif
