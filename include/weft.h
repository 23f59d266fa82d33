/* weft: Python asyncio's concurrency model in C, with stackful tasks.
 *
 * The one header users include. Conventions, everywhere below:
 *   - A call that can fail returns 0 (or a count) on success and a negative WEFT_E* code
 *     (-errno) on failure. A call that takes a callback and fails never calls it.
 *   - Calls marked [suspends] may only be made from inside a task. They suspend the calling
 *     task (never the thread) and return -ECANCELED if the task is cancelled.
 *   - A loop and everything made on it (futures, tasks, handles, queues, streams, ...) belong
 *     to the thread that runs it: calls on them must be made there ([loop thread]; a reminder
 *     is written where it is easy to forget). Only the calls marked [any thread] may be made
 *     from other threads (see "Threads"). Builds with WEFT_THREAD_CHECKS (debug and sanitizer
 *     builds) abort with the call's name when a loop's call is made on another thread while
 *     the loop runs.
 *   - A task IS a future (weft_task_t and weft_future_t are one type, as asyncio.Task is a
 *     subclass of asyncio.Future): every weft_future_* call takes a task too.
 *   - Tasks, futures and handles are reference counted. A call that hands one out gives the
 *     caller one reference, released with weft_unref() / weft_handle_unref(). The loop keeps its
 *     own reference to a task until the task has finished, so releasing a running task is
 *     fire-and-forget.
 *   - Values carried by futures and tasks are `void *`: weft never dereferences or frees them.
 *
 * Cancellation (asyncio 3.11 semantics made safe for C): weft_cancel() on a task makes its
 * current or next suspension return -ECANCELED. C has no exceptions, so the request is sticky:
 * every later suspension returns -ECANCELED too, until the task acknowledges it with
 * weft_task_uncancel() (asyncio's Task.uncancel()), or runs its clean-up between
 * weft_shield_begin() and weft_shield_end(). A task whose body returns -ECANCELED ends
 * cancelled; one that returns 0 after being cancelled ends with its result (it swallowed the
 * cancellation, as a coroutine catching CancelledError does).
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weft/errno.h"
#include "weft/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_EXTERN __attribute__((visibility("default")))
#define WEFT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WEFT_EXTERN
#define WEFT_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------------------------------
 * Types
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_loop weft_loop_t;
typedef struct weft_future weft_future_t;
typedef struct weft_future weft_task_t;       /* a task is a future */
typedef struct weft_handle weft_handle_t;
typedef struct weft_taskgroup weft_taskgroup_t;
typedef struct weft_as_completed weft_as_completed_t;
struct addrinfo; /* <netdb.h>: only pointers to it here, so strict C17 users need no POSIX macros */

/* A task's body. Returns 0 with its value in *result (NULL if left untouched), or a negative
 * code: -ECANCELED ends the task cancelled, any other code ends it with that error (its
 * message set with weft_fail(), else weft_strerror(code)). */
typedef int (*weft_task_fn)(void *arg, void **result);
typedef void (*weft_callback_fn)(void *arg);
typedef void (*weft_done_fn)(weft_future_t *future, void *arg);

#define WEFT_NEVER (__builtin_inf()) /* a deadline or timeout that never comes */

/* ------------------------------------------------------------------------------------------
 * Errors and version
 * ---------------------------------------------------------------------------------------- */

WEFT_EXTERN const char *weft_strerror(int code);  /* "timed out"; never NULL */
WEFT_EXTERN const char *weft_err_name(int code);  /* "ETIMEDOUT"; never NULL */
WEFT_EXTERN unsigned weft_version(void);          /* WEFT_VERSION_HEX of the library */
WEFT_EXTERN const char *weft_version_string(void);

/* Sets the calling task's error message (printf-style) and returns `code`, so a task body can
 * end with `return weft_fail(-EINVAL, "Invalid delay: %d", d);`. Outside a task it sets the
 * thread's message. */
WEFT_EXTERN int weft_fail(int code, const char *fmt, ...) WEFT_PRINTF(2, 3);

/* The message of the last error the calling task (or thread, outside tasks) received from
 * weft_await(), weft_run() and their kin, e.g. "boom" when an awaited future failed with
 * weft_future_set_error(f, -EINVAL, "boom"). Valid until the task's next weft call. Never NULL. */
WEFT_EXTERN const char *weft_error_message(void);

/* ------------------------------------------------------------------------------------------
 * Event loop (asyncio's BaseEventLoop)
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_loop_options {
    size_t stack_size;     /* default stack size for its tasks; 0 = WEFT_STACK_DEFAULT */
    /* A virtual clock (trio's MockClock with autojump): loop time starts at 0 and, whenever
     * nothing is ready and no I/O arrived, jumps straight to the next timer. Timeouts and
     * schedules run instantly and deterministically. For tests. */
    int virtual_clock;
    /* Workers of the loop's default executor (weft_run_in_executor() with NULL, weft_to_thread(),
     * the file calls); 0: min(32, CPUs + 4), as Python's default. */
    unsigned executor_workers;
} weft_loop_options_t;

#define WEFT_STACK_DEFAULT ((size_t)64 * 1024)

/* asyncio.new_event_loop(). opts may be NULL. */
WEFT_EXTERN int weft_loop_new(weft_loop_t **loop, const weft_loop_options_t *opts);
/* loop.close(): -EBUSY while running. Drops pending callbacks; tasks that have not finished are
 * destroyed and reported ("Task was destroyed but it is pending"), like asyncio's garbage
 * collector does. Tasks and futures the user still holds stay valid until released. */
WEFT_EXTERN int weft_loop_close(weft_loop_t *loop);
/* loop.run_forever(): until weft_loop_stop(). -EBUSY if already running, -ESHUTDOWN if closed. */
WEFT_EXTERN int weft_loop_run_forever(weft_loop_t *loop);
/* loop.run_until_complete(future): runs until `f` (a future or task of this loop) is done, then
 * returns its outcome as weft_await() would: 0 and *result, or its error. If the loop was
 * stopped first, returns -EINTR and `f` stays pending. result may be NULL. */
WEFT_EXTERN int weft_loop_run_until_complete(weft_loop_t *loop, weft_future_t *f, void **result);
/* loop.stop(): the loop finishes the current iteration's callbacks, then returns. */
WEFT_EXTERN void weft_loop_stop(weft_loop_t *loop);
WEFT_EXTERN int weft_loop_is_running(const weft_loop_t *loop);
WEFT_EXTERN int weft_loop_is_closed(const weft_loop_t *loop);
/* loop.time(): the loop's monotonic clock in seconds. */
WEFT_EXTERN double weft_loop_time(const weft_loop_t *loop);
/* The loop running on this thread (asyncio.get_running_loop()), or NULL. */
WEFT_EXTERN weft_loop_t *weft_get_running_loop(void);

/* User data, handed back by weft_loop_data(). */
WEFT_EXTERN void weft_loop_set_data(weft_loop_t *loop, void *data);
WEFT_EXTERN void *weft_loop_data(const weft_loop_t *loop);

/* The monitor's console tasks (WEFT_MONITOR) are weft's own: they are not counted in `tasks`
 * and `pending_tasks`, nor listed by weft_all_tasks(); their stacks are in `stacks`. */
typedef struct weft_loop_stats {
    uint64_t iterations;  /* loop iterations so far */
    size_t tasks;         /* tasks created and not yet destroyed */
    size_t pending_tasks; /* tasks not yet finished */
    size_t futures;       /* futures (tasks excluded) not yet destroyed */
    size_t timers;        /* armed timers: call_later handles, sleeps, timeouts */
    size_t ready;         /* callbacks and task steps queued for the next iteration */
    size_t handles;       /* handles not yet destroyed */
    size_t stacks;        /* task stacks in use */
} weft_loop_stats_t;
WEFT_EXTERN void weft_loop_stats(const weft_loop_t *loop, weft_loop_stats_t *stats);

/* loop.call_soon / call_later / call_at [loop thread]. Callbacks run in FIFO order of
 * scheduling (timers by deadline, then scheduling order); one loop iteration runs only what was
 * ready when it began. If `handle` is not NULL it receives a reference to a cancellable handle
 * (release it with weft_handle_unref(), whether or not the callback ran). */
WEFT_EXTERN int weft_call_soon(weft_loop_t *loop, weft_callback_fn cb, void *arg,
                               weft_handle_t **handle);
WEFT_EXTERN int weft_call_later(weft_loop_t *loop, double delay, weft_callback_fn cb, void *arg,
                                weft_handle_t **handle);
WEFT_EXTERN int weft_call_at(weft_loop_t *loop, double when, weft_callback_fn cb, void *arg,
                             weft_handle_t **handle);
/* Handle.cancel(): the callback will not run. Returns 1 if it was still pending, else 0. */
WEFT_EXTERN int weft_handle_cancel(weft_handle_t *h);
WEFT_EXTERN int weft_handle_cancelled(const weft_handle_t *h);
WEFT_EXTERN double weft_handle_when(const weft_handle_t *h); /* TimerHandle.when(); NaN for call_soon */
WEFT_EXTERN void weft_handle_unref(weft_handle_t *h);

/* asyncio.run(main(arg)): a new loop, runs `main` as a task to completion, cancels the tasks
 * still pending and lets them finish, closes the loop. Returns main's outcome as weft_await()
 * does (0 and *result, or main's error; weft_error_message() has its message). On the main
 * thread, SIGINT and SIGTERM cancel main meanwhile, as Ctrl-C does in asyncio.run(): see
 * weft_run_signal() under "Signals". */
WEFT_EXTERN int weft_run(weft_task_fn main, void *arg, void **result);
WEFT_EXTERN int weft_run_with(const weft_loop_options_t *opts, weft_task_fn main, void *arg,
                              void **result);

/* ------------------------------------------------------------------------------------------
 * Futures (asyncio.Future)
 * ---------------------------------------------------------------------------------------- */

/* loop.create_future(); weft_create_future() uses the running loop. */
WEFT_EXTERN int weft_loop_create_future(weft_loop_t *loop, weft_future_t **future);
WEFT_EXTERN int weft_create_future(weft_future_t **future);

WEFT_EXTERN weft_future_t *weft_ref(weft_future_t *f);  /* returns f */
WEFT_EXTERN void weft_unref(weft_future_t *f);          /* NULL is allowed */

/* Resolve a future [loop thread]. -EALREADY if it is already done (asyncio's
 * InvalidStateError); -EINVAL on a task (a task resolves itself by returning). */
WEFT_EXTERN int weft_future_set_result(weft_future_t *f, void *value);
/* `code` is negative; the message is printf-formatted (NULL fmt: weft_strerror(code)). An error
 * of -ECANCELED cancels the future instead. */
WEFT_EXTERN int weft_future_set_error(weft_future_t *f, int code, const char *fmt, ...)
    WEFT_PRINTF(3, 4);

/* Future.cancel(msg) / Task.cancel(msg). Returns 1 if cancellation was requested, 0 if `f` was
 * already done. A future is cancelled at once; a task is asked to cancel (see the top). */
WEFT_EXTERN int weft_cancel(weft_future_t *f, const char *msg);

WEFT_EXTERN int weft_future_done(const weft_future_t *f);
WEFT_EXTERN int weft_future_cancelled(const weft_future_t *f);
/* Future.result(): 0 and *value if it has a result; its error code if it failed or was
 * cancelled (-ECANCELED); -EINPROGRESS if not done. Marks an error as retrieved. */
WEFT_EXTERN int weft_future_result(weft_future_t *f, void **value);
/* Future.exception(): the error code (0 if it has a result or is pending). Marks it retrieved. */
WEFT_EXTERN int weft_future_error(weft_future_t *f);
/* The error's message (the cancel message for a cancelled one), or NULL. Valid while `f` is. */
WEFT_EXTERN const char *weft_future_error_message(const weft_future_t *f);

/* add_done_callback: `cb(f, arg)` is scheduled with call_soon when `f` is done (at once if it
 * already is), never called inline. remove_done_callback removes every registration of
 * (cb, arg) and returns how many. */
WEFT_EXTERN int weft_future_add_done_callback(weft_future_t *f, weft_done_fn cb, void *arg);
WEFT_EXTERN int weft_future_remove_done_callback(weft_future_t *f, weft_done_fn cb, void *arg);

/* `await f` [suspends]. Returns 0 and *value (result may be NULL), or f's error code (its
 * message in weft_error_message()). If the awaiting task is cancelled while it waits, the
 * cancellation is passed on to `f` (as asyncio does; use weft_shield() to prevent it), the task
 * waits until `f` is done, and returns -ECANCELED. Outside a task: -EPERM. */
WEFT_EXTERN int weft_await(weft_future_t *f, void **value);

/* asyncio.shield(inner): *outer is a new future that takes inner's outcome; cancelling outer
 * (for example by cancelling a task that awaits it) does not cancel inner. */
WEFT_EXTERN int weft_shield(weft_future_t *inner, weft_future_t **outer);

/* ------------------------------------------------------------------------------------------
 * Tasks (asyncio.Task)
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_task_options {
    const char *name;     /* copied; NULL: "Task-<id>" */
    size_t stack_size;    /* 0: the loop's default */
} weft_task_options_t;

/* asyncio.create_task(fn(arg)) on the running loop / loop.create_task(). The task is scheduled
 * and starts at a later loop iteration. `task` may be NULL (fire and forget; the loop keeps the
 * task until it ends). opts may be NULL. Errors: -ENOMEM, -EPERM (no running loop),
 * -ESHUTDOWN (loop closed). */
WEFT_EXTERN int weft_create_task(weft_task_t **task, weft_task_fn fn, void *arg,
                                 const weft_task_options_t *opts);
WEFT_EXTERN int weft_loop_create_task(weft_loop_t *loop, weft_task_t **task, weft_task_fn fn,
                                      void *arg, const weft_task_options_t *opts);
/* The same, with the call site the task reports in debug output (weft_task_created_at()). The
 * two calls above are macros for these where the compiler allows (GNU C); which tasks keep
 * the site is said at weft_task_created_at(). */
typedef struct weft_site {
    const char *file;
    int line;
    const char *func;
} weft_site_t;
WEFT_EXTERN int weft_create_task_at(const weft_site_t *site, weft_task_t **task, weft_task_fn fn,
                                    void *arg, const weft_task_options_t *opts);
WEFT_EXTERN int weft_loop_create_task_at(const weft_site_t *site, weft_loop_t *loop,
                                         weft_task_t **task, weft_task_fn fn, void *arg,
                                         const weft_task_options_t *opts);
#if defined(__GNUC__) && !defined(WEFT_NO_SITE_MACROS)
#define WEFT_SITE                                                                      \
    (__extension__({                                                                   \
        static const weft_site_t weft_site_ = {__FILE__, __LINE__, __func__};          \
        &weft_site_;                                                                   \
    }))
#define weft_create_task(...) weft_create_task_at(WEFT_SITE, __VA_ARGS__)
#define weft_loop_create_task(...) weft_loop_create_task_at(WEFT_SITE, __VA_ARGS__)
#endif

WEFT_EXTERN weft_task_t *weft_current_task(void);    /* NULL outside tasks; no reference */
/* asyncio.all_tasks(): stores up to `max` unfinished tasks of `loop` (no references: valid
 * until the caller next suspends) and returns how many there are in all. */
WEFT_EXTERN size_t weft_all_tasks(weft_loop_t *loop, weft_task_t **tasks, size_t max);
WEFT_EXTERN int weft_is_task(const weft_future_t *f);
WEFT_EXTERN uint64_t weft_task_id(const weft_task_t *t);       /* 1, 2, ... per process */
/* The name given at creation or with set_name (valid until renamed or destroyed), else
 * "Task-<id>" in a per-thread buffer valid until the thread's next call. */
WEFT_EXTERN const char *weft_task_name(const weft_task_t *t);
WEFT_EXTERN int weft_task_set_name(weft_task_t *t, const char *name);
WEFT_EXTERN weft_loop_t *weft_future_loop(const weft_future_t *f);
/* Task.cancelling() and Task.uncancel(): the count of pending cancellation requests;
 * uncancel decrements it and returns the new count. When it reaches 0, suspensions stop
 * returning -ECANCELED. */
WEFT_EXTERN int weft_task_cancelling(const weft_task_t *t);
WEFT_EXTERN int weft_task_uncancel(weft_task_t *t);

/* A cancel-shielded scope for clean-up (trio's CancelScope(shield=True)): between begin and
 * end, pending and new cancellations of the calling task are held back (timeout scopes opened
 * inside still work). Scopes nest. [suspends: must be called from a task] */
WEFT_EXTERN void weft_shield_begin(void);
WEFT_EXTERN void weft_shield_end(void);

/* asyncio.sleep(seconds) [suspends]. sleep(0) (or less) yields to the loop once: the task
 * runs again in the next iteration, after everything that is ready now. */
WEFT_EXTERN int weft_sleep(double seconds);
WEFT_EXTERN int weft_sleep_until(double when);  /* when: loop time */

/* ------------------------------------------------------------------------------------------
 * Timeouts (asyncio.timeout / timeout_at / wait_for)
 * ---------------------------------------------------------------------------------------- */

struct weft__timer {               /* private: an entry of the loop's timer heap */
    double when;
    uint32_t heap_index;           /* UINT32_MAX when not armed */
    uint32_t kind;
    uint64_t seq;                  /* insertion order: equal deadlines fire FIFO */
};

/* A timeout scope lives on the calling task's stack, between begin and end:
 *
 *     weft_timeout_t to;
 *     weft_timeout_begin(&to, 0.5);
 *     rc = do_work();                       // suspensions return -ECANCELED once it expires
 *     rc = weft_timeout_end(&to, rc);       // -ETIMEDOUT if this scope expired
 *
 * When the deadline passes, the task is cancelled; the scope's end takes that cancellation back
 * and reports -ETIMEDOUT. Scopes nest: an outer deadline is never reported by an inner scope.
 * Fields are private. */
typedef struct weft_timeout {
    struct weft__timer timer;
    weft_task_t *task;
    struct weft_timeout *outer;
    int state;
    int shield_depth;
    int cancelling_at_entry;
} weft_timeout_t;

/* [loop thread; from a task] delay/when may be WEFT_NEVER (no deadline until rescheduled). */
WEFT_EXTERN int weft_timeout_begin(weft_timeout_t *to, double delay);
WEFT_EXTERN int weft_timeout_begin_at(weft_timeout_t *to, double when);
/* Ends the scope, innermost first; `rc` is the outcome of the work inside. If this scope's
 * deadline expired, the cancellation it caused is taken back, and an `rc` of -ECANCELED becomes
 * -ETIMEDOUT (unless another cancellation, say an outer scope's, is still pending: then
 * -ECANCELED stays and the outer scope reports it). Otherwise returns `rc` unchanged. */
WEFT_EXTERN int weft_timeout_end(weft_timeout_t *to, int rc);
/* Timeout.reschedule(when) (loop time, WEFT_NEVER for none) and Timeout.when(). -EALREADY if
 * it already expired. */
WEFT_EXTERN int weft_timeout_reschedule(weft_timeout_t *to, double when);
WEFT_EXTERN double weft_timeout_when(const weft_timeout_t *to);
WEFT_EXTERN int weft_timeout_expired(const weft_timeout_t *to);

/* asyncio.wait_for(f, timeout) [suspends]: awaits `f` for at most `timeout` seconds. On
 * timeout `f` is cancelled, waited for, and -ETIMEDOUT is returned. */
WEFT_EXTERN int weft_wait_for(weft_future_t *f, double timeout, void **value);

/* ------------------------------------------------------------------------------------------
 * Combinators (asyncio.gather / wait / as_completed / TaskGroup)
 * ---------------------------------------------------------------------------------------- */

/* asyncio.gather(*fs) [suspends]: results[i] gets fs[i]'s value (results may be NULL). The
 * first error is returned at once (its message in weft_error_message()); the other futures
 * are not cancelled. Cancelling the caller cancels every fs[i]. */
WEFT_EXTERN int weft_gather(weft_future_t *const *fs, size_t n, void **results);
/* asyncio.gather(*fs, return_exceptions=True) [suspends]: waits for all; codes[i] gets
 * fs[i]'s outcome (0, an error, -ECANCELED) and results[i] its value. Returns 0, or
 * -ECANCELED if the caller was cancelled. */
WEFT_EXTERN int weft_gather_all(weft_future_t *const *fs, size_t n, void **results, int *codes);

#define WEFT_GATHER_RETURN_EXCEPTIONS 1
/* gather as a future, for weft_loop_run_until_complete() or to pass around: its value is a
 * `void **` array of n results owned by the future; weft_gather_codes() gives the outcomes
 * (return-exceptions mode). Cancelling it cancels the children. */
WEFT_EXTERN int weft_loop_gather(weft_loop_t *loop, weft_future_t *const *fs, size_t n,
                                 int flags, weft_future_t **gather);
WEFT_EXTERN const int *weft_gather_codes(const weft_future_t *gather);

enum weft_return_when { WEFT_ALL_COMPLETED = 0, WEFT_FIRST_COMPLETED = 1, WEFT_FIRST_EXCEPTION = 2 };
/* asyncio.wait(fs, timeout, return_when) [suspends]: returns how many of fs are done when the
 * condition holds or the timeout (seconds, WEFT_NEVER for none) passes; the futures are not
 * cancelled. weft_future_done() tells which. -ECANCELED if the caller is cancelled. */
WEFT_EXTERN int weft_wait(weft_future_t *const *fs, size_t n, int return_when, double timeout);

/* asyncio.as_completed(fs, timeout): next() [suspends] returns 1 and the next future to finish
 * (no reference added), 0 when all were returned, -ETIMEDOUT once the timeout passes. */
WEFT_EXTERN int weft_as_completed_new(weft_as_completed_t **ac, weft_future_t *const *fs,
                                      size_t n, double timeout);
WEFT_EXTERN int weft_as_completed_next(weft_as_completed_t *ac, weft_future_t **f);
WEFT_EXTERN void weft_as_completed_free(weft_as_completed_t *ac);

/* asyncio.TaskGroup, for the calling task (its "parent"). The first child to fail cancels its
 * siblings and the parent (whose suspensions then return -ECANCELED until wait). wait()
 * [suspends] waits for every child, takes back the group's cancellation of the parent and
 * returns the first error (0 if none; -ECANCELED if the parent was cancelled from outside).
 * Every child error stays readable until free. */
WEFT_EXTERN int weft_taskgroup_new(weft_taskgroup_t **tg);
/* -EBUSY once the group is shutting down (a child failed or wait() returned). */
WEFT_EXTERN int weft_taskgroup_create_task(weft_taskgroup_t *tg, weft_task_t **task,
                                           weft_task_fn fn, void *arg,
                                           const weft_task_options_t *opts);
WEFT_EXTERN int weft_taskgroup_wait(weft_taskgroup_t *tg);
/* Number of children that failed, and the i-th of them (no reference added). */
WEFT_EXTERN size_t weft_taskgroup_error_count(const weft_taskgroup_t *tg);
WEFT_EXTERN weft_task_t *weft_taskgroup_error(const weft_taskgroup_t *tg, size_t i);
/* Cancels and waits for children still running if wait() was not called, then frees. */
WEFT_EXTERN void weft_taskgroup_free(weft_taskgroup_t *tg);

/* ------------------------------------------------------------------------------------------
 * Queues (asyncio.Queue, PriorityQueue, LifoQueue)
 *
 * Items are `void *`: the queue stores the pointers, never what they point to (the caller owns
 * that). A queue belongs to one loop; its calls are [loop thread]. Waiters are served first come,
 * first served. A put on a queue with room never suspends; a get from a non-empty queue never
 * suspends. Cancellation-safe: a cancelled get never loses an item (one handed to it in the same
 * iteration goes to the next getter, or back to the front of the queue), a cancelled put never
 * inserts (a put whose item went in before the cancellation reached it returns 0; the
 * cancellation stays pending for the task's next suspension). Timeouts come from timeout scopes
 * and weft_wait_for.
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_queue weft_queue_t;

enum weft_queue_kind { WEFT_QUEUE_FIFO = 0, WEFT_QUEUE_LIFO = 1, WEFT_QUEUE_PRIORITY = 2 };

/* Priority order for WEFT_QUEUE_PRIORITY with a comparator: negative if a comes out first. */
typedef int (*weft_queue_cmp_fn)(const void *a, const void *b, void *arg);

typedef struct weft_queue_options {
    int kind;                /* enum weft_queue_kind */
    size_t maxsize;          /* 0: unbounded */
    /* WEFT_QUEUE_PRIORITY: order items with cmp(a, b, cmp_arg); without cmp, items are ordered by
     * the integer priority given to weft_queue_put_prio() (smallest first, FIFO among equals). */
    weft_queue_cmp_fn cmp;
    void *cmp_arg;
} weft_queue_options_t;

/* Distinct codes of the nowait calls (asyncio's QueueFull / QueueEmpty) and of a shut-down
 * queue (asyncio 3.13's QueueShutDown). */
#define WEFT_EQUEUEFULL WEFT_ENOSPC
#define WEFT_EQUEUEEMPTY WEFT_EAGAIN
#define WEFT_EQUEUESHUTDOWN WEFT_ESHUTDOWN

/* asyncio.Queue(maxsize) on the running loop / on `loop`. opts may be NULL (FIFO, unbounded). */
WEFT_EXTERN int weft_queue_new(weft_queue_t **q, const weft_queue_options_t *opts);
WEFT_EXTERN int weft_loop_queue_new(weft_loop_t *loop, weft_queue_t **q,
                                    const weft_queue_options_t *opts);
/* -EBUSY (and nothing freed) while tasks wait on it. Items still queued are dropped. */
WEFT_EXTERN int weft_queue_free(weft_queue_t *q);

/* [suspends] put waits while the queue is full; get waits while it is empty. Both return
 * -ESHUTDOWN once the queue is shut down (get: once it is also empty, or at once if the shutdown
 * was immediate). put_prio is put with an integer priority (WEFT_QUEUE_PRIORITY without cmp). */
WEFT_EXTERN int weft_queue_put(weft_queue_t *q, void *item);
WEFT_EXTERN int weft_queue_put_prio(weft_queue_t *q, int64_t priority, void *item);
WEFT_EXTERN int weft_queue_get(weft_queue_t *q, void **item);
/* Never suspend: -EQUEUEFULL / -EQUEUEEMPTY instead. */
WEFT_EXTERN int weft_queue_put_nowait(weft_queue_t *q, void *item);
WEFT_EXTERN int weft_queue_put_prio_nowait(weft_queue_t *q, int64_t priority, void *item);
WEFT_EXTERN int weft_queue_get_nowait(weft_queue_t *q, void **item);

WEFT_EXTERN size_t weft_queue_qsize(const weft_queue_t *q);
WEFT_EXTERN size_t weft_queue_maxsize(const weft_queue_t *q);
WEFT_EXTERN int weft_queue_empty(const weft_queue_t *q);
WEFT_EXTERN int weft_queue_full(const weft_queue_t *q);
/* Queue.task_done(): -EINVAL if called more times than items were put (asyncio's ValueError).
 * Queue.join() [suspends] until every item put has been marked done. */
WEFT_EXTERN int weft_queue_task_done(weft_queue_t *q);
WEFT_EXTERN int weft_queue_join(weft_queue_t *q);
/* Queue.shutdown(immediate) (Python 3.13): puts fail from now on; waiting putters wake with
 * -ESHUTDOWN; getters drain what is queued, then get -ESHUTDOWN. immediate: the queue is emptied
 * at once (each dropped item counts as done for join) and every waiter wakes with -ESHUTDOWN. */
WEFT_EXTERN void weft_queue_shutdown(weft_queue_t *q, int immediate);

/* ------------------------------------------------------------------------------------------
 * Synchronization (asyncio.Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier)
 *
 * All waits [suspend], are served first come, first served, honour cancellation and timeout
 * scopes, and a cancelled waiter never leaves the primitive in a wrong state (a lock handed to a
 * waiter that is being cancelled passes on to the next one). Objects belong to one loop. free()
 * returns -EBUSY (and frees nothing) while tasks wait.
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_lock weft_lock_t;
typedef struct weft_event weft_event_t;
typedef struct weft_condition weft_condition_t;
typedef struct weft_semaphore weft_semaphore_t;
typedef struct weft_barrier weft_barrier_t;

/* Lock: fair, not reentrant (acquiring a lock the task holds returns -EDEADLK); releasing a lock
 * the calling task does not hold returns -EPERM (asyncio's RuntimeError). */
WEFT_EXTERN int weft_lock_new(weft_lock_t **lock);
WEFT_EXTERN int weft_lock_free(weft_lock_t *lock);
WEFT_EXTERN int weft_lock_acquire(weft_lock_t *lock);
WEFT_EXTERN int weft_lock_release(weft_lock_t *lock);
WEFT_EXTERN int weft_lock_locked(const weft_lock_t *lock);

WEFT_EXTERN int weft_event_new(weft_event_t **ev);
WEFT_EXTERN int weft_event_free(weft_event_t *ev);
WEFT_EXTERN void weft_event_set(weft_event_t *ev);    /* wakes every waiter */
WEFT_EXTERN void weft_event_clear(weft_event_t *ev);
WEFT_EXTERN int weft_event_is_set(const weft_event_t *ev);
WEFT_EXTERN int weft_event_wait(weft_event_t *ev);    /* 0 at once if set */

/* Condition over `lock` (NULL: a lock of its own). wait / wait_for / notify require the lock
 * held by the calling task (-EPERM otherwise). wait releases it, waits for a notify, and
 * re-acquires it before returning, even when cancelled (asyncio's rule). wait_for waits until
 * pred(arg) is true and returns 0 (or an error). notify(n) wakes up to n waiters not yet
 * notified and returns how many it woke; notify_all wakes them all. */
typedef int (*weft_predicate_fn)(void *arg);
WEFT_EXTERN int weft_condition_new(weft_condition_t **cond, weft_lock_t *lock);
WEFT_EXTERN int weft_condition_free(weft_condition_t *cond);
WEFT_EXTERN int weft_condition_acquire(weft_condition_t *cond);
WEFT_EXTERN int weft_condition_release(weft_condition_t *cond);
WEFT_EXTERN int weft_condition_wait(weft_condition_t *cond);
WEFT_EXTERN int weft_condition_wait_for(weft_condition_t *cond, weft_predicate_fn pred, void *arg);
WEFT_EXTERN int weft_condition_notify(weft_condition_t *cond, size_t n);
WEFT_EXTERN int weft_condition_notify_all(weft_condition_t *cond);

/* Semaphore(value) and BoundedSemaphore(value) (bounded: a release above the initial value
 * returns -EOVERFLOW, asyncio's ValueError). locked(): an acquire would wait. */
WEFT_EXTERN int weft_semaphore_new(weft_semaphore_t **sem, unsigned value, int bounded);
WEFT_EXTERN int weft_semaphore_free(weft_semaphore_t *sem);
WEFT_EXTERN int weft_semaphore_acquire(weft_semaphore_t *sem);
WEFT_EXTERN int weft_semaphore_release(weft_semaphore_t *sem);
WEFT_EXTERN int weft_semaphore_locked(const weft_semaphore_t *sem);
WEFT_EXTERN unsigned weft_semaphore_value(const weft_semaphore_t *sem);

/* Barrier(parties): wait returns the arrival index (0 .. parties-1) once `parties` tasks are
 * waiting; -ENOTRECOVERABLE when the barrier is broken (abort(), or reset() while tasks wait:
 * asyncio's BrokenBarrierError, reported to every waiter). A waiter cancelled (or timed out)
 * while the barrier is filling just leaves, as in asyncio. reset() returns a broken barrier to
 * empty. */
WEFT_EXTERN int weft_barrier_new(weft_barrier_t **b, unsigned parties);
WEFT_EXTERN int weft_barrier_free(weft_barrier_t *b);
WEFT_EXTERN int weft_barrier_wait(weft_barrier_t *b);
WEFT_EXTERN void weft_barrier_reset(weft_barrier_t *b);
WEFT_EXTERN void weft_barrier_abort(weft_barrier_t *b);
WEFT_EXTERN unsigned weft_barrier_parties(const weft_barrier_t *b);
WEFT_EXTERN unsigned weft_barrier_n_waiting(const weft_barrier_t *b);
WEFT_EXTERN int weft_barrier_broken(const weft_barrier_t *b);

/* ------------------------------------------------------------------------------------------
 * File descriptors and sockets (asyncio's add_reader / add_writer and loop.sock_*)
 *
 * The loop watches each file descriptor it is given once, from the first call that names it
 * until weft_fd_forget() (or weft_close()): call one of those before closing a descriptor the
 * loop has seen, as asyncio requires remove_reader() before close. The sock_* calls and
 * weft_wait_fd() switch the descriptor to non-blocking mode. A descriptor belongs to one loop.
 * ---------------------------------------------------------------------------------------- */

#define WEFT_READABLE 1
#define WEFT_WRITABLE 2

/* [suspends] until `fd` is readable and/or writable as `events` asks; returns the events that
 * are ready (a hang-up or error counts as both). */
WEFT_EXTERN int weft_wait_fd(int fd, unsigned events);
/* loop.add_reader(fd, cb, arg) / add_writer [loop thread]: cb(arg) is scheduled (never called
 * inline) in each iteration in which fd is readable / writable, until removed. Adding replaces
 * the previous callback. remove_* return 1 if a callback was removed, 0 if there was none. */
WEFT_EXTERN int weft_add_reader(weft_loop_t *loop, int fd, weft_callback_fn cb, void *arg);
WEFT_EXTERN int weft_remove_reader(weft_loop_t *loop, int fd);
WEFT_EXTERN int weft_add_writer(weft_loop_t *loop, int fd, weft_callback_fn cb, void *arg);
WEFT_EXTERN int weft_remove_writer(weft_loop_t *loop, int fd);
/* The loop stops watching fd: callbacks are removed, tasks waiting on it return -EBADF.
 * Does not close it. weft_close() forgets, then closes. Safe on descriptors never seen. */
WEFT_EXTERN void weft_fd_forget(weft_loop_t *loop, int fd);
WEFT_EXTERN int weft_close(int fd);

/* loop.sock_recv / sock_recv_into [suspends]: bytes received (0 at end of stream). */
WEFT_EXTERN ssize_t weft_sock_recv(int fd, void *buf, size_t n);
/* loop.sock_sendall [suspends]: 0 once all n bytes are sent. On error or cancellation the
 * bytes already sent are in *sent (sent may be NULL). */
WEFT_EXTERN int weft_sock_sendall(int fd, const void *buf, size_t n, size_t *sent);
/* loop.sock_connect [suspends]: 0 once connected, or the connection's error. */
WEFT_EXTERN int weft_sock_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* loop.sock_accept [suspends]: the new connection (non-blocking, close-on-exec) and, if addr
 * is not NULL, the peer's address. */
WEFT_EXTERN int weft_sock_accept(int fd, struct sockaddr *addr, socklen_t *len);
/* loop.sock_sendfile [suspends]: sends `count` bytes (0: to the end of the file) of `file`
 * from *offset (advanced), with sendfile(2); returns the bytes sent. */
WEFT_EXTERN ssize_t weft_sock_sendfile(int sock, int file, off_t *offset, size_t count);
/* Datagrams [suspend]: loop.sock_recvfrom / sock_sendto. recvfrom returns the datagram's
 * length (truncated to n: then -EMSGSIZE, never silently). */
WEFT_EXTERN ssize_t weft_sock_recvfrom(int fd, void *buf, size_t n, struct sockaddr *addr,
                                       socklen_t *len);
WEFT_EXTERN ssize_t weft_sock_sendto(int fd, const void *buf, size_t n,
                                     const struct sockaddr *addr, socklen_t len);

/* ------------------------------------------------------------------------------------------
 * Name resolution (loop.getaddrinfo, non-blocking, with c-ares)
 * ---------------------------------------------------------------------------------------- */

/* [suspends] Resolves host (and port, a number or service name; either may be NULL) as
 * getaddrinfo(3) does, without blocking the loop: numeric addresses are parsed at once, names
 * are looked up in /etc/hosts and DNS. hints may be NULL. The list is freed with
 * weft_freeaddrinfo() (never libc's freeaddrinfo()). A name that does not resolve gives
 * WEFT_ENONAME (its message in weft_error_message()); a DNS timeout WEFT_ETIMEDOUT, a server
 * failure WEFT_EAGAIN; host and port both NULL WEFT_EINVAL. Hints: ai_family AF_UNSPEC, AF_INET
 * or AF_INET6; ai_flags AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_V4MAPPED,
 * AI_ALL, AI_ADDRCONFIG (others: WEFT_EINVAL). Unlike getaddrinfo(3), an ai_socktype of 0 does
 * not list each address once per socket type: it means SOCK_STREAM (SOCK_DGRAM if ai_protocol
 * is IPPROTO_UDP), and every entry has its socktype and protocol filled in. If the task is
 * cancelled meanwhile, the look-up is abandoned (its answer dropped when it comes). */
#define WEFT_ENONAME WEFT_ENXIO
WEFT_EXTERN int weft_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
                                 struct addrinfo **res);
WEFT_EXTERN void weft_freeaddrinfo(struct addrinfo *res);
/* The DNS servers the loop's resolver asks, as c-ares's "host[:port],..." CSV (e.g.
 * "127.0.0.1:5353", "[::1]:53"); NULL restores /etc/resolv.conf's. -EBUSY while look-ups are
 * pending on the loop (abandoned ones too, until they end), -EINVAL for a list that does not
 * parse. [loop thread] */
WEFT_EXTERN int weft_resolver_set_servers(weft_loop_t *loop, const char *servers);

/* ------------------------------------------------------------------------------------------
 * TLS (ssl.SSLContext), with OpenSSL
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_tls weft_tls_t;

/* A TLS context, shared by any number of streams (reference counted: each stream holds one).
 * A client context verifies the peer's chain against the system's CA store and the host name,
 * as ssl.create_default_context() does; a server context needs a certificate and key. */
enum weft_tls_role { WEFT_TLS_CLIENT = 0, WEFT_TLS_SERVER = 1 };
WEFT_EXTERN int weft_tls_new(weft_tls_t **tls, int role);
WEFT_EXTERN void weft_tls_unref(weft_tls_t *tls);
/* PEM files. load_verify: trust these CAs instead of the system store (file or NULL, dir or
 * NULL). set_verify(0) turns a client's verification off (ssl.CERT_NONE): for tests only; on a
 * server, set_verify(1) requires client certificates (ssl.CERT_REQUIRED). Server contexts send
 * no TLS 1.3 session tickets (weft's client does not resume sessions): weft_tls_native() can
 * turn them on. */
WEFT_EXTERN int weft_tls_use_certificate(weft_tls_t *tls, const char *cert_file,
                                         const char *key_file);
WEFT_EXTERN int weft_tls_load_verify(weft_tls_t *tls, const char *ca_file, const char *ca_dir);
WEFT_EXTERN int weft_tls_set_verify(weft_tls_t *tls, int verify);
/* ALPN protocols offered (client) or accepted (server), in order of preference, e.g.
 * {"h2", "http/1.1"}. */
WEFT_EXTERN int weft_tls_set_alpn(weft_tls_t *tls, const char *const *protocols, size_t n);
/* The underlying SSL_CTX *, for settings weft does not wrap. */
WEFT_EXTERN void *weft_tls_native(weft_tls_t *tls);

/* A certificate that fails verification (untrusted chain, wrong host name) gives
 * WEFT_ECERTIFICATE; other TLS failures WEFT_ETLS. The message says why. */
#define WEFT_ECERTIFICATE WEFT_EKEYREJECTED
#define WEFT_ETLS WEFT_EPROTO

/* ------------------------------------------------------------------------------------------
 * Streams (asyncio.open_connection / start_server, StreamReader and StreamWriter)
 *
 * A weft_stream_t is asyncio's reader and writer pair in one handle: a connected TCP or Unix
 * socket, optionally with TLS. Its calls are [loop thread]. One task may read at a time
 * (another reader gets -EBUSY); writes never suspend; any number of tasks may drain.
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_stream weft_stream_t;
typedef struct weft_server weft_server_t;

/* asyncio's errors: readexactly/readuntil reaching the end of the stream first
 * (IncompleteReadError), readuntil/readline over the stream's limit (LimitOverrunError). */
#define WEFT_EINCOMPLETE WEFT_ENODATA
#define WEFT_ELIMIT WEFT_EMSGSIZE

#define WEFT_STREAM_LIMIT ((size_t)64 * 1024)        /* asyncio's _DEFAULT_LIMIT */
#define WEFT_WRITE_HIGH_WATER ((size_t)64 * 1024)    /* asyncio's transport defaults */
#define WEFT_WRITE_LOW_WATER ((size_t)16 * 1024)

typedef struct weft_connect_options {
    size_t limit;                /* readuntil/readline limit; 0: WEFT_STREAM_LIMIT */
    int family;                  /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    weft_tls_t *tls;             /* a client context: connect with TLS */
    const char *server_hostname; /* for SNI and verification; NULL: host */
    double tls_handshake_timeout;/* seconds; 0: 60 (asyncio's default) */
    /* RFC 8305 Happy Eyeballs: > 0 starts the next address's attempt after this many seconds
     * while the earlier ones are still trying (asyncio's happy_eyeballs_delay; 0.25 is the
     * RFC's value); 0: each address in turn. Addresses alternate between families
     * (interleave). */
    double happy_eyeballs_delay;
    const char *local_host;      /* bind before connecting (local_addr); NULL: any */
    int local_port;
} weft_connect_options_t;

/* asyncio.open_connection(host, port) [suspends]: resolves host, connects to each address in
 * turn (or Happy Eyeballs), returns the connected stream (TCP_NODELAY on, as asyncio does).
 * opts may be NULL. */
WEFT_EXTERN int weft_open_connection(weft_stream_t **stream, const char *host, int port,
                                     const weft_connect_options_t *opts);
/* asyncio.open_unix_connection(path) [suspends]. */
WEFT_EXTERN int weft_open_unix_connection(weft_stream_t **stream, const char *path,
                                          const weft_connect_options_t *opts);
/* Wraps a connected socket the caller owns (it passes to the stream) [loop thread]. */
WEFT_EXTERN int weft_stream_from_fd(weft_stream_t **stream, int fd, size_t limit);

/* Closes if still open, and releases the caller's handle. Data still buffered for writing is
 * sent in the background first (as transport.close() does), then the socket is closed. */
WEFT_EXTERN void weft_stream_free(weft_stream_t *s);

/* Reader. read: up to n bytes, at least 1 unless at end of stream (then 0). */
WEFT_EXTERN ssize_t weft_stream_read(weft_stream_t *s, void *buf, size_t n);
/* read() with no size: everything up to the end of stream, in a malloc'd buffer the caller
 * frees (NUL-terminated for convenience; *len excludes the NUL). */
WEFT_EXTERN int weft_stream_read_all(weft_stream_t *s, char **data, size_t *len);
/* readexactly(n): 0 once n bytes are in buf. At end of stream first: WEFT_EINCOMPLETE, with the
 * bytes that did arrive in buf and their count in *got (got may be NULL). */
WEFT_EXTERN int weft_stream_readexactly(weft_stream_t *s, void *buf, size_t n, size_t *got);
/* readuntil(separator): 0 with *data and *len the bytes up to and including the separator. *data
 * points into the stream's buffer and is valid until the next read call on s. At end of stream
 * first: WEFT_EINCOMPLETE, with *data and *len the partial bytes (consumed). If the separator is
 * not within the limit: WEFT_ELIMIT, and the data stays in the buffer (*len tells how much is
 * buffered). */
WEFT_EXTERN int weft_stream_readuntil(weft_stream_t *s, const void *sep, size_t seplen,
                                      const char **data, size_t *len);
/* readline(): readuntil("\n"), except that at end of stream the partial line is returned with 0
 * (and *len == 0 at the end), and over the limit the line is discarded (WEFT_ELIMIT). */
WEFT_EXTERN int weft_stream_readline(weft_stream_t *s, const char **data, size_t *len);
WEFT_EXTERN int weft_stream_at_eof(const weft_stream_t *s);
/* Bytes received and not yet read. */
WEFT_EXTERN size_t weft_stream_buffered(const weft_stream_t *s);

/* Writer. write / writelines never suspend: what the socket does not take at once is buffered
 * and sent in the background. They return the connection's error if it has one, -EPIPE after
 * close or write_eof. */
WEFT_EXTERN int weft_stream_write(weft_stream_t *s, const void *buf, size_t n);
WEFT_EXTERN int weft_stream_writelines(weft_stream_t *s, const struct iovec *iov, int iovcnt);
/* drain() [suspends]: while the write buffer is above the high-water mark, waits until it is at
 * or below the low-water mark. Returns 0, or the connection's error (-EPIPE once closed). */
WEFT_EXTERN int weft_stream_drain(weft_stream_t *s);
/* transport.set_write_buffer_limits(high, low): high 0 = default; low > high is -EINVAL. */
WEFT_EXTERN int weft_stream_set_write_buffer_limits(weft_stream_t *s, size_t high, size_t low);
WEFT_EXTERN size_t weft_stream_write_buffer_size(const weft_stream_t *s);
/* write_eof(): half-close once the buffer is sent; reading goes on. */
WEFT_EXTERN int weft_stream_write_eof(weft_stream_t *s);
WEFT_EXTERN int weft_stream_can_write_eof(const weft_stream_t *s);
/* close(): stops reading, sends what is buffered, then closes the socket. wait_closed()
 * [suspends] until the socket is closed. abort(): closes at once, dropping buffered data. */
WEFT_EXTERN void weft_stream_close(weft_stream_t *s);
WEFT_EXTERN void weft_stream_abort(weft_stream_t *s);
WEFT_EXTERN int weft_stream_is_closing(const weft_stream_t *s);
WEFT_EXTERN int weft_stream_wait_closed(weft_stream_t *s);
/* get_extra_info('peername' / 'sockname' / 'socket'). */
WEFT_EXTERN int weft_stream_peername(const weft_stream_t *s, struct sockaddr_storage *addr,
                                     socklen_t *len);
WEFT_EXTERN int weft_stream_sockname(const weft_stream_t *s, struct sockaddr_storage *addr,
                                     socklen_t *len);
WEFT_EXTERN int weft_stream_fd(const weft_stream_t *s);
/* start_tls(): upgrades the open stream to TLS [suspends] (a client context, or a server one
 * on the accepting side). -EBUSY while anything is buffered (either way) or a read is in
 * progress; -EINVAL if it is TLS already. server_hostname may be NULL for a server. After a
 * failed handshake the stream is unusable: close it. Over TLS, write_eof() sends close_notify,
 * then the TCP half-close. */
WEFT_EXTERN int weft_stream_start_tls(weft_stream_t *s, weft_tls_t *tls,
                                      const char *server_hostname, double handshake_timeout);
/* The ALPN protocol agreed on, or NULL. */
WEFT_EXTERN const char *weft_stream_alpn(const weft_stream_t *s);

/* A connection handler runs in its own task for each accepted connection. The stream belongs to
 * the server: it is closed (buffered data still sent) and freed when the handler returns. The
 * handler's return value ends its task (an error is reported like any task's). */
typedef int (*weft_stream_handler_fn)(weft_stream_t *s, void *arg);

typedef struct weft_server_options {
    int backlog;                 /* 0: 100, asyncio's default */
    int reuse_address;           /* SO_REUSEADDR; asyncio's default on POSIX is on: -1 off */
    int reuse_port;              /* SO_REUSEPORT */
    int family;                  /* AF_UNSPEC (0): every address host resolves to */
    size_t limit;                /* streams' limit; 0: WEFT_STREAM_LIMIT */
    weft_tls_t *tls;             /* a server context: every connection does TLS */
    double tls_handshake_timeout;/* seconds; 0: 60 */
    size_t stack_size;           /* handlers' stack size; 0: the loop's default */
} weft_server_options_t;

/* asyncio.start_server(handler, host, port) [suspends: resolving host]: listens on every
 * address host resolves to (host NULL: all interfaces, IPv4 and IPv6; port 0: a free port,
 * see weft_server_address()) and starts serving. opts may be NULL. */
WEFT_EXTERN int weft_start_server(weft_server_t **server, weft_stream_handler_fn handler,
                                  void *arg, const char *host, int port,
                                  const weft_server_options_t *opts);
/* asyncio.start_unix_server(handler, path). An existing socket file at path is replaced. */
WEFT_EXTERN int weft_start_unix_server(weft_server_t **server, weft_stream_handler_fn handler,
                                       void *arg, const char *path,
                                       const weft_server_options_t *opts);
/* Server.close(): stops listening (connections already accepted go on). */
WEFT_EXTERN void weft_server_close(weft_server_t *srv);
/* Server.close_clients() (3.13): closes every accepted connection; abort_clients drops
 * their buffered data. */
WEFT_EXTERN void weft_server_close_clients(weft_server_t *srv);
WEFT_EXTERN void weft_server_abort_clients(weft_server_t *srv);
/* Server.wait_closed() [suspends]: once closed, until every connection's handler has ended. */
WEFT_EXTERN int weft_server_wait_closed(weft_server_t *srv);
/* Server.serve_forever() [suspends]: until the server is closed (0) or the task is cancelled
 * (the server is then closed, as asyncio does, and -ECANCELED returned; the handlers still
 * running go on: weft_server_wait_closed() waits for them). */
WEFT_EXTERN int weft_server_serve_forever(weft_server_t *srv);
WEFT_EXTERN int weft_server_is_serving(const weft_server_t *srv);
/* Server.sockets: how many listening sockets, and the i-th one's address / descriptor. */
WEFT_EXTERN size_t weft_server_nsockets(const weft_server_t *srv);
WEFT_EXTERN int weft_server_address(const weft_server_t *srv, size_t i,
                                    struct sockaddr_storage *addr, socklen_t *len);
WEFT_EXTERN int weft_server_port(const weft_server_t *srv);   /* of the first socket */
/* Closes if needed and frees; -EBUSY (nothing freed) while handlers still run. */
WEFT_EXTERN int weft_server_free(weft_server_t *srv);

/* ------------------------------------------------------------------------------------------
 * Datagrams (loop.create_datagram_endpoint)
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_udp weft_udp_t;

typedef struct weft_udp_options {
    const char *local_host;      /* bind here (NULL with local_port 0: an ephemeral port) */
    int local_port;
    const char *remote_host;     /* connect the socket: sendto may then pass addr NULL */
    int remote_port;
    int family;                  /* AF_UNSPEC, AF_INET, AF_INET6 */
    int reuse_port;
    int allow_broadcast;
} weft_udp_options_t;

/* [suspends: resolving] A UDP endpoint. */
WEFT_EXTERN int weft_udp_open(weft_udp_t **udp, const weft_udp_options_t *opts);
WEFT_EXTERN void weft_udp_close(weft_udp_t *udp);
/* [suspends] One datagram: sendto never truncates (a datagram too large is -EMSGSIZE);
 * recvfrom returns the datagram's length, -EMSGSIZE if it did not fit (its first n bytes are in
 * buf). addr may be NULL on a connected endpoint. */
WEFT_EXTERN ssize_t weft_udp_sendto(weft_udp_t *udp, const void *buf, size_t n,
                                    const struct sockaddr *addr, socklen_t len);
WEFT_EXTERN ssize_t weft_udp_recvfrom(weft_udp_t *udp, void *buf, size_t n,
                                      struct sockaddr_storage *addr, socklen_t *len);
WEFT_EXTERN int weft_udp_sockname(const weft_udp_t *udp, struct sockaddr_storage *addr,
                                  socklen_t *len);
WEFT_EXTERN int weft_udp_fd(const weft_udp_t *udp);

/* ------------------------------------------------------------------------------------------
 * Threads (loop.call_soon_threadsafe, asyncio.run_coroutine_threadsafe)
 *
 * A loop runs on one thread at a time and its tasks never migrate; several loops may run in
 * several threads at once, one per thread. Other threads reach a loop only through the calls
 * marked [any thread] below. Calls marked [loop thread] elsewhere in this header must be made on
 * the thread running the loop (or, while it is not running, by its owner): builds with thread
 * checks (WEFT_THREAD_CHECKS: debug and sanitizer builds) abort with a message naming the call
 * when one is made from another thread while the loop runs.
 * ---------------------------------------------------------------------------------------- */

/* loop.call_soon_threadsafe(cb, arg) [any thread; not from a signal handler]:
 * schedules cb(arg) on the loop's thread and wakes the loop (an eventfd write, at most one per
 * batch of calls). Calls made by one thread run in the order they were made. -ESHUTDOWN once the
 * loop is closed; -ENOMEM. The loop object must still exist: close it only once other threads
 * are done with it. */
WEFT_EXTERN int weft_call_soon_threadsafe(weft_loop_t *loop, weft_callback_fn cb, void *arg);
/* loop.call_soon_threadsafe(loop.stop) [any thread]. */
WEFT_EXTERN int weft_loop_stop_threadsafe(weft_loop_t *loop);

/* [any thread] A hold tells the loop that another thread may still call into it (say, to
 * complete a future with call_soon_threadsafe), so run_until_complete waits instead of
 * reporting -EDEADLK when nothing else can happen. Executor jobs and thread-safe calls in
 * flight hold the loop by themselves; run_forever never reports -EDEADLK (it waits for
 * weft_loop_stop_threadsafe()). Every hold is released once. */
WEFT_EXTERN void weft_loop_hold(weft_loop_t *loop);
WEFT_EXTERN void weft_loop_release(weft_loop_t *loop);

/* concurrent.futures.Future: the outcome of work on a loop, for a thread outside it. Reference
 * counted (atomically): whoever gets one releases it with weft_cfuture_unref(). */
typedef struct weft_cfuture weft_cfuture_t;

/* asyncio.run_coroutine_threadsafe(fn(arg), loop) [any thread but the loop's]: creates the task
 * fn(arg) on `loop` (a running loop, or one that will run) and returns a concurrent future for
 * its outcome. opts may be NULL. */
WEFT_EXTERN int weft_run_coroutine_threadsafe(weft_loop_t *loop, weft_task_fn fn, void *arg,
                                              const weft_task_options_t *opts,
                                              weft_cfuture_t **cf);
/* Future.result(timeout) [blocks the calling thread]: waits up to `timeout` seconds (WEFT_NEVER:
 * no limit) and returns 0 and *value, the task's error, -ECANCELED, or -ETIMEDOUT if it is not
 * done in time (the task goes on: cancel it with weft_cfuture_cancel()). Calling it on the
 * loop's own thread would deadlock: -EDEADLK. value may be NULL. */
WEFT_EXTERN int weft_cfuture_result(weft_cfuture_t *cf, double timeout, void **value);
/* The error's message once done with an error (valid while cf is), else NULL. */
WEFT_EXTERN const char *weft_cfuture_error_message(const weft_cfuture_t *cf);
/* Future.cancel() [any thread]: asks the task to cancel (it ends when its clean-up is done).
 * Returns 1 if requested, 0 if already done. */
WEFT_EXTERN int weft_cfuture_cancel(weft_cfuture_t *cf);
WEFT_EXTERN int weft_cfuture_done(const weft_cfuture_t *cf);
WEFT_EXTERN int weft_cfuture_cancelled(const weft_cfuture_t *cf);
/* asyncio.wrap_future(cf) awaited [suspends]: a task of any loop waits for cf without blocking
 * its thread. Cancelling the caller does not cancel cf's work. */
WEFT_EXTERN int weft_cfuture_await(weft_cfuture_t *cf, void **value);
WEFT_EXTERN void weft_cfuture_unref(weft_cfuture_t *cf);

/* A thread-safe queue (queue.Queue and asyncio.Queue in one) for handing items between loops
 * and threads. Items are `void *` the queue never dereferences. maxsize 0: unbounded. From a
 * task, put and get [suspend] (other tasks on the loop go on); from a plain thread, the
 * _blocking calls block the thread up to `timeout` seconds (WEFT_NEVER: no limit; -ETIMEDOUT).
 * Do not call the _blocking ones on a loop's thread: they would block the loop. Waiters of
 * either kind are served first come, first served. A cancelled get never loses an item and a
 * cancelled put never inserts one, as with weft_queue_t. */
typedef struct weft_tsqueue weft_tsqueue_t;
WEFT_EXTERN int weft_tsqueue_new(weft_tsqueue_t **q, size_t maxsize);
/* -EBUSY (nothing freed) while anyone waits on it. Items still queued are dropped. */
WEFT_EXTERN int weft_tsqueue_free(weft_tsqueue_t *q);
WEFT_EXTERN int weft_tsqueue_put(weft_tsqueue_t *q, void *item);
WEFT_EXTERN int weft_tsqueue_get(weft_tsqueue_t *q, void **item);
WEFT_EXTERN int weft_tsqueue_put_blocking(weft_tsqueue_t *q, void *item, double timeout);
WEFT_EXTERN int weft_tsqueue_get_blocking(weft_tsqueue_t *q, void **item, double timeout);
/* [any thread] never wait: WEFT_EQUEUEFULL / WEFT_EQUEUEEMPTY. */
WEFT_EXTERN int weft_tsqueue_put_nowait(weft_tsqueue_t *q, void *item);
WEFT_EXTERN int weft_tsqueue_get_nowait(weft_tsqueue_t *q, void **item);
WEFT_EXTERN size_t weft_tsqueue_qsize(weft_tsqueue_t *q);
/* Queue.shutdown(): puts fail with -ESHUTDOWN from now on (waiting putters too); getters drain
 * what is queued, then get -ESHUTDOWN. */
WEFT_EXTERN void weft_tsqueue_shutdown(weft_tsqueue_t *q);

/* ------------------------------------------------------------------------------------------
 * Executors (loop.run_in_executor, asyncio.to_thread, concurrent.futures.ThreadPoolExecutor)
 *
 * A job is a plain function run on a worker thread: it must not call weft functions other than
 * those marked [any thread]. It returns 0 with its value in *result, or a negative code (its
 * message set with weft_fail(), which works on any thread; -ECANCELED cancels the future).
 * Workers block every signal: process signals go to the loops' threads.
 *
 * Cancellation: a job that has not started yet is removed from the executor's queue and never
 * runs. A job that has started cannot be stopped: it runs to its end and its result is dropped
 * (the future is already cancelled). weft_to_thread() differs: a cancelled caller still waits
 * for a started job to end (then returns -ECANCELED), so the job may use memory on the caller's
 * stack.
 *
 * Loop close: the loop's jobs still queued (in any executor) are removed and never run, the
 * running ones are waited for (the closing thread blocks), their futures stay pending; a task
 * abandoned inside weft_to_thread() has its running job waited for before its stack goes. Then
 * the loop's own default executor is shut down and freed.
 * ---------------------------------------------------------------------------------------- */

typedef int (*weft_job_fn)(void *arg, void **result);
typedef struct weft_executor weft_executor_t;

/* ThreadPoolExecutor(max_workers) [any thread]: workers are started as jobs arrive (a new one
 * only when every worker is busy), up to max_workers (0: min(32, CPUs + 4), as Python's
 * default), and stay for reuse. Jobs start in the order they were submitted. Any loop may
 * submit to it; each job completes on the loop that submitted it. */
WEFT_EXTERN int weft_executor_new(weft_executor_t **ex, unsigned max_workers);
/* Executor.shutdown(wait, cancel_futures) [any thread]: new jobs are refused (-ESHUTDOWN);
 * cancel_futures: jobs not started yet are cancelled (their futures end cancelled, "the
 * executor was shut down"), else they still run; wait: returns once every job has ended and
 * the workers have exited (blocks the calling thread; from one of the pool's own jobs it does
 * not wait). Calling it again is harmless. */
WEFT_EXTERN void weft_executor_shutdown(weft_executor_t *ex, int wait, int cancel_futures);
/* shutdown(wait=1), then frees (NULL is allowed). Futures of its jobs stay valid. */
WEFT_EXTERN void weft_executor_free(weft_executor_t *ex);

/* loop.run_in_executor(executor, fn, arg) [loop thread]: `ex` NULL is the loop's default
 * executor (created on first use with weft_loop_options_t.executor_workers workers, shut down
 * when the loop closes). *future gets the job's outcome; cancelling it cancels the job as
 * described above. The loop keeps arg untouched: it must live until the job has ended. A job
 * in flight keeps run_until_complete waiting (never -EDEADLK). Errors: -EINVAL, -EPERM (no
 * running loop), -ESHUTDOWN (executor shut down, or loop closed), -ENOMEM, -EAGAIN (no thread
 * could be started and none runs). */
WEFT_EXTERN int weft_run_in_executor(weft_executor_t *ex, weft_job_fn fn, void *arg,
                                     weft_future_t **future);
WEFT_EXTERN int weft_loop_run_in_executor(weft_loop_t *loop, weft_executor_t *ex, weft_job_fn fn,
                                          void *arg, weft_future_t **future);
/* asyncio.to_thread(fn, arg) [suspends]: runs fn(arg) on the default executor and returns its
 * outcome (its message in weft_error_message()). Cancelled: -ECANCELED, at once if the job had
 * not started, else once it has ended (what it returned is dropped). result may be NULL. */
WEFT_EXTERN int weft_to_thread(weft_job_fn fn, void *arg, void **result);
/* loop.set_default_executor(ex) [loop thread]: ex is borrowed (not freed by the loop; it must
 * outlive the loop's use of it; NULL goes back to the loop's own). -EBUSY if the loop's own
 * default executor has been started already. */
WEFT_EXTERN int weft_loop_set_default_executor(weft_loop_t *loop, weft_executor_t *ex);
/* loop.shutdown_default_executor() [suspends]: shuts the default executor down and waits,
 * without blocking the loop, until its jobs have ended and its workers exited. From then on
 * the default executor refuses jobs (-ESHUTDOWN), even if it had never been started. A
 * cancelled caller returns -ECANCELED; the shutdown goes on. */
WEFT_EXTERN int weft_shutdown_default_executor(void);

/* ------------------------------------------------------------------------------------------
 * Files (aiofiles-style): blocking file calls run on the default executor [suspend]. They return
 * what the system call returns (a descriptor, a byte count, 0) or its -errno; calls naming a
 * path put it in the message ("/x/y: No such file or directory"). Outside a task: -EPERM; a
 * NULL path or buffer (with n > 0): -EINVAL. A cancelled call waits for a system call that has
 * started, then undoes what it can (an opened descriptor is closed, a read_all buffer freed)
 * and returns -ECANCELED; one cancelled before its system call started never makes it.
 * ---------------------------------------------------------------------------------------- */

struct stat;
/* open(2): the descriptor is close-on-exec; it is a plain blocking descriptor for the calls
 * below (not one for weft_wait_fd()). */
WEFT_EXTERN int weft_file_open(const char *path, int flags, int mode);
/* close(2). The descriptor is closed even when the call is cancelled (on the loop's thread if
 * the job had not started): a descriptor is never left in doubt. */
WEFT_EXTERN int weft_file_close(int fd);
/* read / write at `offset` (pread / pwrite: the file position stays), or at the file position
 * if offset is -1. write writes all n bytes (returns n) unless an error stops it; it then
 * returns the error, and what was written before it stays written. */
WEFT_EXTERN ssize_t weft_file_read(int fd, void *buf, size_t n, off_t offset);
WEFT_EXTERN ssize_t weft_file_write(int fd, const void *buf, size_t n, off_t offset);
WEFT_EXTERN int weft_file_fsync(int fd);
WEFT_EXTERN int weft_file_stat(const char *path, struct stat *st);
WEFT_EXTERN int weft_file_fstat(int fd, struct stat *st);
/* The whole file in a malloc'd buffer the caller frees (NUL-terminated; *len excludes the
 * NUL; len may be NULL). Files that do not tell their size (/proc) are read to their end. On
 * error *data is NULL. */
WEFT_EXTERN int weft_file_read_all(const char *path, char **data, size_t *len);
/* Creates or truncates path (mode 0666 & ~umask) and writes n bytes (data may be NULL if n is
 * 0); a write error reported by close(2) is returned too. */
WEFT_EXTERN int weft_file_write_all(const char *path, const void *data, size_t n);

/* getaddrinfo(3) itself, on the default executor [suspends]: every name service of
 * nsswitch.conf (mDNS, LDAP, systemd-resolved, ...), where weft_getaddrinfo() asks only
 * /etc/hosts and DNS. Same arguments, errors and result (freed with weft_freeaddrinfo()).
 * weft_getaddrinfo() falls back to it by itself when c-ares does not find a name and the
 * "hosts:" line of /etc/nsswitch.conf (read once per process) lists a source other than files
 * and dns. A cancelled call returns -ECANCELED once libc's look-up has ended. */
WEFT_EXTERN int weft_getaddrinfo_system(const char *host, const char *port,
                                        const struct addrinfo *hints, struct addrinfo **res);

/* ------------------------------------------------------------------------------------------
 * Subprocesses (asyncio.create_subprocess_exec / create_subprocess_shell, asyncio.subprocess)
 *
 * Every call here is [loop thread] and the process belongs to the loop that was running when it
 * was created. The loop reaps the child as soon as it exits (with a pidfd, or a SIGCHLD watcher
 * where the kernel has none), so returncode() is up to date even if nobody waits. No zombie is
 * ever left: a child still running when its process is freed or its loop closes is not killed,
 * it is reaped in the background when it exits.
 * ---------------------------------------------------------------------------------------- */

typedef struct weft_process weft_process_t;

/* What each of the child's stdin / stdout / stderr is connected to. */
enum weft_stdio {
    WEFT_STDIO_INHERIT = 0,  /* the parent's own (asyncio's None) */
    /* A pipe to the parent, as a weft stream: a connected Unix socket pair (the stream layer
     * works on sockets), so weft_stream_write_eof() on stdin gives the child its end of file
     * while the stream stays open. The child sees a socket where it would see a pipe; it gets
     * EPIPE / SIGPIPE writing after the parent closed stdout, as with a pipe. */
    WEFT_STDIO_PIPE = 1,
    WEFT_STDIO_DEVNULL = 2,  /* /dev/null */
    WEFT_STDIO_STDOUT = 3,   /* stderr only: into the same place as stdout */
};

typedef struct weft_process_options {
    int stdin_mode, stdout_mode, stderr_mode;  /* enum weft_stdio */
    const char *cwd;         /* NULL: the parent's */
    char *const *env;        /* "NAME=value" array ending in NULL; NULL: the parent's */
    size_t limit;            /* the stdout / stderr streams' limit; 0: WEFT_STREAM_LIMIT */
    int start_new_session;   /* setsid() in the child */
} weft_process_options_t;

/* asyncio.create_subprocess_exec(file, *argv) [loop thread]: starts `file` with argv (argv[0]
 * included, NULL-terminated). A file without a slash is searched as execvp does (an empty
 * entry is the directory the child starts in) in the PATH of opts->env when it is given, as
 * Python's subprocess does, else in the parent's; "/bin:/usr/bin" if that has none. A program
 * that cannot be started gives its -errno (-ENOENT, -EACCES, ...; a missing cwd -ENOENT) and no
 * process. The child starts with default signal dispositions and an empty signal mask, and
 * inherits no descriptor but 0-2. opts may be NULL (all three inherited). Errors: -EINVAL (NULL
 * p, file or argv, argv[0] NULL, a bad stdio mode, WEFT_STDIO_STDOUT for stdin or stdout),
 * -EPERM with no running loop on this thread. */
WEFT_EXTERN int weft_create_subprocess_exec(weft_process_t **p, const char *file,
                                            char *const argv[],
                                            const weft_process_options_t *opts);
/* asyncio.create_subprocess_shell(cmd): /bin/sh -c cmd. */
WEFT_EXTERN int weft_create_subprocess_shell(weft_process_t **p, const char *cmd,
                                             const weft_process_options_t *opts);
/* Process.stdin / stdout / stderr: the streams of the PIPE ones, else NULL. They belong to
 * the process (freed with it); closing one (weft_stream_close()) is allowed. */
WEFT_EXTERN weft_stream_t *weft_process_stdin(weft_process_t *p);
WEFT_EXTERN weft_stream_t *weft_process_stdout(weft_process_t *p);
WEFT_EXTERN weft_stream_t *weft_process_stderr(weft_process_t *p);
WEFT_EXTERN int weft_process_pid(const weft_process_t *p);
/* Process.wait() [suspends]: 0 once the child has exited, its status in *returncode (the exit
 * code, or -N if signal N killed it, as asyncio's returncode; 255 if someone else reaped it,
 * as asyncio reports when SIGCHLD is ignored). returncode may be NULL. A cancelled wait
 * returns -ECANCELED and leaves the child running (kill it yourself if you want it gone). */
WEFT_EXTERN int weft_process_wait(weft_process_t *p, int *returncode);
/* Process.returncode: 1 and *returncode once the child's exit has been seen, else 0. */
WEFT_EXTERN int weft_process_returncode(const weft_process_t *p, int *returncode);
/* Process.communicate(input) [suspends]: writes input (n bytes; NULL/0: none) to stdin and
 * closes it, reads stdout and stderr to their ends at the same time (so a child filling both
 * pipes never deadlocks), then waits for the exit. *out / *err get malloc'd NUL-terminated
 * buffers the caller frees (NULL when that stream is not a PIPE); out, err, their lengths and
 * returncode may be NULL to discard. A child that stops reading stdin early is not an error
 * (EPIPE is ignored, as asyncio does). Input without a stdin PIPE is -EINVAL; a second
 * communicate while one runs -EBUSY. Cancelled: -ECANCELED, nothing is returned (what was read
 * is dropped), stdin is closed and the child is left running. */
WEFT_EXTERN int weft_process_communicate(weft_process_t *p, const void *input, size_t n,
                                         char **out, size_t *outlen, char **err, size_t *errlen,
                                         int *returncode);
/* send_signal / terminate (SIGTERM) / kill (SIGKILL): -ESRCH once the child has been reaped,
 * or handed to the background reaper by a closed loop (asyncio's ProcessLookupError). A pidfd
 * addresses the child where the kernel has them, so a reused pid is never signalled. */
WEFT_EXTERN int weft_process_send_signal(weft_process_t *p, int signo);
WEFT_EXTERN int weft_process_terminate(weft_process_t *p);
WEFT_EXTERN int weft_process_kill(weft_process_t *p);
/* Releases the process and its streams (NULL is allowed). A child still running is not
 * killed: it is reaped in the background when it exits (no zombie), as it is if the loop
 * closes first. Tasks still inside a call on `p` (wait, communicate) finish it first: the
 * process is released when the last one returns. May be called after the loop closed. */
WEFT_EXTERN void weft_process_free(weft_process_t *p);

/* ------------------------------------------------------------------------------------------
 * Signals (loop.add_signal_handler / remove_signal_handler)
 * ---------------------------------------------------------------------------------------- */

/* loop.add_signal_handler(signo, cb, arg) [loop thread]: each arrival of signo, on whatever
 * thread the kernel picks, schedules cb(arg) on the loop as call_soon does: it runs as an ordinary
 * callback, never inside the signal handler, so it may call anything a callback may. Arrivals
 * that come before the callback has run make one call. Adding again replaces the loop's callback.
 * While a handler is registered the signal's disposition is weft's; removing the last one puts
 * the previous disposition back. A registered handler keeps run_until_complete waiting for the
 * signal (no -EDEADLK). Closing the loop removes its handlers.
 * Errors: -EINVAL for a number out of range, SIGKILL, SIGSTOP, or the C library's reserved
 * signals (32, 33); -EBUSY if another loop has a handler for signo (the disposition is
 * process-wide: one loop per signal); -ESHUTDOWN; -ENOMEM; a failed sigaction()'s -errno. */
WEFT_EXTERN int weft_add_signal_handler(weft_loop_t *loop, int signo, weft_callback_fn cb,
                                        void *arg);
/* loop.remove_signal_handler(signo) [loop thread]: 1 if a handler was removed (a call already
 * scheduled for it does not run), 0 if there was none, -EINVAL for an invalid signo. */
WEFT_EXTERN int weft_remove_signal_handler(weft_loop_t *loop, int signo);

/* weft_run() and SIGINT / SIGTERM (asyncio.Runner's KeyboardInterrupt handling). On the process's
 * main thread, while main runs, a SIGINT or SIGTERM whose disposition was SIG_DFL when weft_run()
 * started (weft never replaces a handler the application installed) and that no loop has a
 * handler for cancels the main task, so that its clean-up runs. From then on both have their
 * default action again: a second one while main cleans up ends the process. This catching does
 * not keep the loop waiting (-EDEADLK is still reported) and costs nothing per iteration. If main
 * ends cancelled after such a signal, weft_run() returns -EINTR with the message "interrupted by
 * SIGINT" (or SIGTERM). The dispositions are restored once main is done, before the remaining
 * tasks are cancelled.
 * weft_run_signal(): the signal the calling thread's last weft_run() caught (even if main then
 * swallowed the cancellation and returned normally), or 0.
 * weft_exit_status(rc): the process exit status for weft_run()'s result rc, as a shell reports
 * it: 0 for 0, 128 + the signal for -EINTR after a caught signal (130 for SIGINT, 143 for
 * SIGTERM), 1 for any other value. `return weft_exit_status(weft_run(main_fn, arg, NULL));` */
WEFT_EXTERN int weft_run_signal(void);
WEFT_EXTERN int weft_exit_status(int rc);

/* ------------------------------------------------------------------------------------------
 * Logging
 *
 * Everything weft reports (slow callbacks, tasks destroyed while pending, errors never
 * retrieved, deadlocks, ...) goes through one logger. Levels are Python logging's. The default
 * sink writes "YYYY-MM-DD HH:MM:SS.mmm weft LEVEL: message" lines (local time) to stderr, one
 * write(2) per line so that lines of several threads never interleave; messages below the
 * level (default WEFT_LOG_WARNING, or WEFT_LOG_LEVEL=debug|info|warning|error or a number in
 * the environment, read once, when weft first logs) are dropped before they are formatted.
 * Only the coroutine layer's fatal reports (a task's stack overflow, written from inside the
 * SIGSEGV handler) bypass the logger.
 * [any thread]
 * ---------------------------------------------------------------------------------------- */

enum weft_log_level {
    WEFT_LOG_DEBUG = 10,
    WEFT_LOG_INFO = 20,
    WEFT_LOG_WARNING = 30,
    WEFT_LOG_ERROR = 40,
};
/* A sink gets each message (one line, no newline, valid during the call), its level and arg.
 * It may be called from any thread that logs, one call at a time (under a lock: what the sink
 * itself logs goes to the default sink). */
typedef void (*weft_log_fn)(int level, const char *message, void *arg);
/* NULL restores the default sink. */
WEFT_EXTERN void weft_log_set_sink(weft_log_fn sink, void *arg);
WEFT_EXTERN void weft_log_set_level(int level);
WEFT_EXTERN int weft_log_get_level(void);
WEFT_EXTERN void weft_log(int level, const char *fmt, ...) WEFT_PRINTF(2, 3);
/* "WARNING"; "Level 25" for a level without a name, as Python's logging.getLevelName(). */
WEFT_EXTERN const char *weft_log_level_name(int level);

/* ------------------------------------------------------------------------------------------
 * Debug mode (asyncio's debug=True), task dumps and the monitor (aiomonitor)
 * ---------------------------------------------------------------------------------------- */

/* loop.set_debug() [loop thread]. New loops start in debug mode when WEFT_DEBUG=1 (or true,
 * yes) is in the environment. In debug mode the loop:
 *   - warns when one task step (from the task's resumption to its next suspension) or one
 *     callback runs longer than the slow-callback duration (default 0.1 s; asyncio's
 *     slow_callback_duration; measured on the real clock, even with a virtual one):
 *     "Executing <Task 'worker' #12 created at app.c:42 in main> took 0.201 seconds", or
 *     "Executing <Handle on_tick> took ..." for a callback (its symbol if the dynamic linker
 *     knows it, as for a program linked with -rdynamic, else its address and object);
 *   - checks that loop calls come from the loop's thread, as WEFT_THREAD_CHECKS builds do (an
 *     ERROR is logged and the process aborts);
 *   - warns about streams, servers, UDP endpoints and subprocesses still open when the loop
 *     closes ("unclosed stream fd 7 (peer 127.0.0.1:5000)", "unclosed server 127.0.0.1:8888",
 *     "unclosed subprocess pid 1234 (still running)").
 * Tasks destroyed while pending and errors never retrieved are reported with the task's
 * creation site in any mode. With debug mode off none of this costs anything measurable.
 * set_slow_callback_duration ignores a negative or NaN duration. */
WEFT_EXTERN void weft_loop_set_debug(weft_loop_t *loop, int enabled);
WEFT_EXTERN int weft_loop_get_debug(const weft_loop_t *loop);
WEFT_EXTERN void weft_loop_set_slow_callback_duration(weft_loop_t *loop, double seconds);

/* Where a task was created ("file.c:42 in func"), or NULL if unknown. weft_create_task() and
 * weft_loop_create_task() are macros that pass their call site; it is kept (like asyncio's
 * creation traceback) for tasks created in debug mode or with the monitor on, and for named
 * tasks, whose names already take a small extra block: a plain task stays as small as before. */
WEFT_EXTERN const char *weft_task_created_at(const weft_task_t *t, char *buf, size_t len);
/* What a suspended task waits on, e.g. "sleep (1.50 s left)", "future", "task #12 'worker'",
 * "lock", "queue get", "fd 7 readable", "executor job"; "ready" / "running" / "done"
 * otherwise. Writes into buf and returns it. [loop thread] */
WEFT_EXTERN const char *weft_task_waiting_on(const weft_task_t *t, char *buf, size_t len);
/* The symbolised backtrace of a suspended task's stack (libunwind), one frame per line,
 * innermost first, from the call that suspended it down to the task's body and the library's
 * entry frame ("#0 weft_sleep+0x57 (libweft.so.0)", "#1 worker+0x23 (myprog)"), read from its
 * saved context. Static functions are named too, unless the object was stripped; a function
 * the compiler inlined, or left through a tail call, has no frame of its own. At most 64
 * frames. Returns the number of frames (the text is cut to fit len, NUL-terminated; buf may
 * be NULL with len 0 to count), -EBUSY for the running task, -ENOENT for one not started or
 * done, -EINVAL for a NULL task or a future, -ENOTSUP where weft cannot unwind (only x86-64
 * stacks are unwound). [loop thread] */
WEFT_EXTERN int weft_task_backtrace(const weft_task_t *t, char *buf, size_t len);
/* Writes every unfinished task of the loop, oldest first, to fd, as Go's goroutine dump does:
 *     task #4 'worker': waiting on queue, age 12.5 s, stack 3 KiB in use
 *         created at app.c:42 in main_task
 *         #0 ...backtrace
 * The age is "unknown" for tasks created while neither debug mode nor the monitor was on.
 * SIGQUIT (Ctrl-\) makes a loop in debug mode or with a monitor write this dump to stderr, and
 * the program goes on (as a Go program prints its goroutines, without exiting). The dump is
 * written by the loop's thread between two steps, so a loop blocked in a long step writes it
 * when the step ends. It is installed only while SIGQUIT has its default disposition: a handler
 * the application set, with sigaction() or weft_add_signal_handler(), stays in charge. It never
 * keeps run_until_complete from reporting -EDEADLK. [loop thread] */
WEFT_EXTERN void weft_loop_dump_tasks(weft_loop_t *loop, int fd);

/* The monitor (aiomonitor): a line-oriented console served by the loop itself, for nc / socat
 * or the weft-monitor client (`weft-monitor ADDRESS [COMMAND...]`). Commands:
 *     ps          ID, NAME, STATE, WAITING ON, AGE, STACK of every task
 *     where ID    the task's report as in weft_loop_dump_tasks() (its backtrace)
 *     cancel ID   weft_cancel(), then waits up to 1 s and says how the task ended
 *     stats       weft_loop_stats(), watched fds, resident memory, loop time, debug mode
 *     help, quit
 * Each answer is followed by the prompt "weft> "; an error answer starts with "error:".
 * address: a path (a Unix socket, made 0600; a stale socket file is replaced, a live one is
 * -EADDRINUSE), or "127.0.0.1:PORT", "[::1]:PORT", "localhost:PORT": loopback only (any other
 * host is -EINVAL), port 0 picks a free one (weft_monitor_port()). The socket is made at once,
 * so the call works before the loop runs as well as from a task or a callback, and returns
 * bind()'s error. The monitor keeps nothing alive: its sockets are not "watched" descriptors
 * (a loop with nothing else to wait for still reports -EDEADLK; weft_run() still ends), and its
 * own tasks (one per connection) are left out of listings, dumps and deadlock reports. Its
 * console is served whenever the loop polls (when it waits, and every few dozen steps while
 * other descriptors are watched): a loop kept busy by tasks alone, with no descriptor
 * watched, answers once it rests. Also turns on creation times (task ages) and the SIGQUIT
 * dump.
 * WEFT_MONITOR=address in the environment starts it on the first loop of the process that runs
 * (a failure is logged; the address it listens on is logged at INFO level). Errors:
 * -EINVAL, -ENAMETOOLONG, -EALREADY (the loop has one), -ESHUTDOWN, -EADDRINUSE, socket(),
 * bind() and listen()'s -errno. [loop thread] */
WEFT_EXTERN int weft_monitor_start(weft_loop_t *loop, const char *address);
/* Stops listening (the socket file is removed) and closes every console; NULL or a loop
 * without a monitor is allowed. Closing the loop stops it too. [loop thread] */
WEFT_EXTERN void weft_monitor_stop(weft_loop_t *loop);
/* The TCP port it listens on; 0 for a Unix socket or no monitor. */
WEFT_EXTERN int weft_monitor_port(const weft_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif
