/* weft: Python asyncio's concurrency model in C, with stackful tasks.
 *
 * The one header users include. Conventions, everywhere below:
 *   - A call that can fail returns 0 (or a count) on success and a negative WEFT_E* code
 *     (-errno) on failure. A call that takes a callback and fails never calls it.
 *   - Calls marked [suspends] may only be made from inside a task. They suspend the calling
 *     task (never the thread) and return -ECANCELED if the task is cancelled.
 *   - Calls marked [loop thread] must be made on the thread that runs the loop.
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
 * does (0 and *result, or main's error; weft_error_message() has its message). */
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

#ifdef __cplusplus
}
#endif
#endif
