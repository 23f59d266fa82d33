/* Synchronization primitives (asyncio.Lock, Event, Condition, Semaphore, BoundedSemaphore,
 * Barrier): FIFO order, hand-off to waiters cancelled in the same iteration, the error codes,
 * timeout scopes, and loop close with tasks blocked in each primitive. Virtual clock only. */
#include "wt.h"

/* Runs op() in a timeout scope of `secs`; logs the scope's outcome, then the loop time in ms. */
static int timed(double secs, int (*op)(void)) {
    weft_timeout_t to;
    ASSERT_OK(weft_timeout_begin(&to, secs));
    wt_log(weft_timeout_end(&to, op()));
    wt_log((int)(wt_loop_now() * 1000));
    return 0;
}


static weft_lock_t *lk;
static weft_event_t *ev;
static weft_condition_t *cv;
static weft_semaphore_t *sem;
static weft_barrier_t *bar;

/* ---- construction and misuse --------------------------------------------------------- */

static void call_outside_task(void *arg) {
    (void)arg;
    ASSERT_EQ_INT(weft_lock_acquire(lk), WEFT_EPERM);
    ASSERT_EQ_INT(weft_lock_release(lk), WEFT_EPERM);
    ASSERT_EQ_INT(weft_event_wait(ev), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_wait(cv), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), WEFT_EPERM);
    ASSERT_EQ_INT(weft_semaphore_acquire(sem), WEFT_EPERM);
    ASSERT_EQ_INT(weft_barrier_wait(bar), WEFT_EPERM);
    /* Not waits: fine from a callback. */
    weft_event_set(ev);
    ASSERT_OK(weft_semaphore_release(sem));
    wt_log(1);
}

static int outside_main(void *arg, void **res) {
    ASSERT_EQ_INT(weft_barrier_new(&bar, 0), WEFT_EINVAL);
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_event_new(&ev));
    ASSERT_OK(weft_condition_new(&cv, NULL));
    ASSERT_OK(weft_semaphore_new(&sem, 0, 0));
    ASSERT_OK(weft_barrier_new(&bar, 2));
    ASSERT_EQ_INT(weft_barrier_parties(bar), 2);
    ASSERT_OK(weft_call_soon(weft_get_running_loop(), call_outside_task, NULL, NULL));
    wt_yield_n(1);
    WT_ASSERT_LOG(1);
    ASSERT_EQ_INT(weft_event_is_set(ev), 1);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_OK(weft_lock_free(lk));
    ASSERT_OK(weft_event_free(ev));
    ASSERT_OK(weft_condition_free(cv));
    ASSERT_OK(weft_semaphore_free(sem));
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

/* Objects are created on the running loop: not outside one. Waits need a task. */
TEST(create_outside_loop_and_calls_outside_task) {
    ASSERT_EQ_INT(weft_lock_new(&lk), WEFT_EPERM);
    ASSERT_EQ_INT(weft_event_new(&ev), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_new(&cv, NULL), WEFT_EPERM);
    ASSERT_EQ_INT(weft_semaphore_new(&sem, 1, 1), WEFT_EPERM);
    ASSERT_EQ_INT(weft_barrier_new(&bar, 2), WEFT_EPERM);
    wt_run_main(outside_main, 0);
}

static int make_objects(void *arg, void **res) {
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_event_new(&ev));
    ASSERT_OK(weft_semaphore_new(&sem, 1, 0));
    ASSERT_OK(weft_barrier_new(&bar, 2));
    return 0;
}

static int use_from_other_loop(void *arg, void **res) {
    ASSERT_EQ_INT(weft_lock_acquire(lk), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_lock_release(lk), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_event_wait(ev), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_semaphore_acquire(sem), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_semaphore_release(sem), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_barrier_wait(bar), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_condition_new(&cv, lk), WEFT_EINVAL); /* a lock of another loop */
    return 0;
}

/* An object belongs to the loop it was created on. */
TEST(wrong_loop) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    ASSERT_OK(wt_run_task(a, make_objects, NULL, NULL));
    ASSERT_OK(wt_run_task(b, use_from_other_loop, NULL, NULL));
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_OK(weft_lock_free(lk));
    ASSERT_OK(weft_event_free(ev));
    ASSERT_OK(weft_semaphore_free(sem));
    ASSERT_OK(weft_barrier_free(bar));
    WT_CLOSE_LOOP(a);
    WT_CLOSE_LOOP(b);
}

/* ---- Lock ------------------------------------------------------------------------------ */

static int lock_basic_main(void *arg, void **res) {
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_lock_acquire(lk));
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);
    ASSERT_EQ_INT(weft_lock_acquire(lk), WEFT_EDEADLK); /* not reentrant, and still held */
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_EQ_INT(weft_lock_release(lk), WEFT_EPERM);
    ASSERT_OK(weft_lock_acquire(lk));
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

TEST(lock_basic) { wt_run_main(lock_basic_main, 0); }

static int release_not_mine(void *arg, void **res) {
    ASSERT_EQ_INT(weft_lock_release(lk), WEFT_EPERM);
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);
    return 0;
}

static int lock_non_owner_main(void *arg, void **res) {
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_lock_acquire(lk));
    ASSERT_OK(wt_join(wt_spawn_arg(release_not_mine, 0)));
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

/* asyncio raises RuntimeError; weft knows the owner and refuses anyone else. */
TEST(lock_release_by_non_owner) { wt_run_main(lock_non_owner_main, 0); }

#define NFAIR 100
static int fair_order[NFAIR], nfair;

static int fair_waiter(void *arg, void **res) {
    ASSERT_OK(weft_lock_acquire(lk));
    fair_order[nfair++] = (int)(intptr_t)arg;
    ASSERT_OK(weft_sleep(0)); /* hold it across a suspension */
    ASSERT_OK(weft_lock_release(lk));
    return 0;
}

static int lock_fair_main(void *arg, void **res) {
    weft_task_t *t[NFAIR];
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_lock_acquire(lk));
    for (int i = 0; i < NFAIR; i++)
        t[i] = wt_spawn_arg(fair_waiter, i);
    wt_yield_n(1); /* all 100 are queued */
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_EQ_INT(weft_lock_locked(lk), 1); /* handed to the first waiter */
    /* No barging: the releaser asking again queues behind all 100. */
    ASSERT_OK(weft_lock_acquire(lk));
    ASSERT_EQ_INT(nfair, NFAIR);
    for (int i = 0; i < NFAIR; i++)
        ASSERT_EQ_INT(fair_order[i], i);
    ASSERT_OK(weft_lock_release(lk));
    for (int i = 0; i < NFAIR; i++)
        ASSERT_OK(wt_join(t[i]));
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

TEST(lock_fairness_100) { wt_run_main(lock_fair_main, 0); }

static int locker(void *arg, void **res) {
    int rc = weft_lock_acquire(lk);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    if (rc == 0) {
        ASSERT_OK(weft_sleep(0));
        ASSERT_OK(weft_lock_release(lk));
    }
    return rc;
}

/* arg bit 0: cancel before the release (else after); bit 1: a second waiter queued. */
static int lock_handoff_cancel_main(void *arg, void **res) {
    int mode = (int)(intptr_t)arg;
    weft_task_t *b, *c = NULL;
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_lock_acquire(lk));
    b = wt_spawn_arg(locker, 1);
    if (mode & 2)
        c = wt_spawn_arg(locker, 2);
    wt_yield_n(1);
    if (mode & 1)
        ASSERT_EQ_INT(weft_cancel(b, NULL), 1);
    ASSERT_OK(weft_lock_release(lk)); /* to b, which is (being) cancelled */
    if (!(mode & 1))
        ASSERT_EQ_INT(weft_cancel(b, NULL), 1);
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);
    ASSERT_EQ_INT(weft_lock_release(lk), WEFT_EPERM); /* no longer ours */
    ASSERT_EQ_INT(wt_join(b), WEFT_ECANCELED);
    if (c) {
        ASSERT_OK(wt_join(c));
        WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 0);
    } else {
        WT_ASSERT_LOG(1, WEFT_ECANCELED);
    }
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_lock_acquire(lk)); /* nobody hangs on to it */
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

/* A waiter cancelled in the iteration it is handed the lock passes it to the next waiter. */
TEST(lock_cancel_when_handed_over) { wt_run_main(lock_handoff_cancel_main, 2); }
TEST(lock_cancel_then_handed_over) { wt_run_main(lock_handoff_cancel_main, 3); }
TEST(lock_cancel_handed_over_last) { wt_run_main(lock_handoff_cancel_main, 0); }

static int lock_cancel_waiting_main(void *arg, void **res) {
    weft_task_t *b, *c;
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_lock_acquire(lk));
    b = wt_spawn_arg(locker, 1);
    c = wt_spawn_arg(locker, 2);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_lock_free(lk), WEFT_EBUSY);
    ASSERT_EQ_INT(weft_cancel(b, NULL), 1);
    wt_yield_n(1); /* b leaves the queue */
    WT_ASSERT_LOG(1, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(b), 1);
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(wt_join(c));
    ASSERT_EQ_INT(wt_join(b), WEFT_ECANCELED);
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 0);
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

TEST(lock_cancel_waiting) { wt_run_main(lock_cancel_waiting_main, 0); }

/* A cancelled task that can take the lock at once takes it (no suspension, so nothing to be
 * cancelled at, as in asyncio); one that would wait returns -ECANCELED without queueing. */
static int cancelled_locker(void *arg, void **res) {
    ASSERT_EQ_INT(weft_cancel(weft_current_task(), NULL), 1);
    wt_log(weft_lock_acquire(lk));
    ASSERT_OK(weft_lock_release(lk));
    wt_log(weft_lock_acquire(lk));
    return 0; /* swallows the cancellation and ends holding the lock */
}

static int lock_cancelled_caller_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_EQ_INT(weft_lock_acquire(NULL), WEFT_EINVAL);
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(wt_join(wt_spawn_arg(cancelled_locker, 0)));
    WT_ASSERT_LOG(0, 0);
    ASSERT_EQ_INT(weft_lock_locked(lk), 1); /* by a task that has finished */
    ASSERT_EQ_INT(weft_lock_release(lk), WEFT_EPERM);
    ASSERT_EQ_INT(weft_cancel(weft_current_task(), NULL), 1);
    ASSERT_EQ_INT(weft_lock_acquire(lk), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_uncancel(weft_current_task()), 0);
    t = wt_spawn_arg(locker, 7);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_lock_free(lk), WEFT_EBUSY);
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    WT_ASSERT_LOG(0, 0, 7, WEFT_ECANCELED);
    ASSERT_OK(weft_lock_free(lk)); /* held but not waited for: may be freed */
    return 0;
}

TEST(lock_cancelled_caller) { wt_run_main(lock_cancelled_caller_main, 0); }

static int lock_op(void) { return weft_lock_acquire(lk); }
static int lock_timed(void *arg, void **res) { return timed(0.5, lock_op); }

static int lock_timeout_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_lock_acquire(lk));
    t = wt_spawn_arg(lock_timed, 0);
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(wt_join(t));
    WT_ASSERT_LOG(WEFT_ETIMEDOUT, 500);
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

TEST(lock_timeout) { wt_run_main(lock_timeout_main, 0); }

/* ---- Event ----------------------------------------------------------------------------- */

static int ev_waiter(void *arg, void **res) {
    int rc = weft_event_wait(ev);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    return rc;
}

static int event_set_main(void *arg, void **res) {
    weft_task_t *t[3];
    uint64_t it;
    weft_loop_stats_t st;
    ASSERT_OK(weft_event_new(&ev));
    ASSERT_EQ_INT(weft_event_is_set(ev), 0);
    for (int i = 0; i < 3; i++)
        t[i] = wt_spawn_arg(ev_waiter, i + 1);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_event_free(ev), WEFT_EBUSY);
    weft_event_set(ev);
    weft_event_set(ev); /* idempotent */
    ASSERT_EQ_INT(weft_event_is_set(ev), 1);
    weft_event_clear(ev); /* too late for the waiters: set() already released them */
    ASSERT_EQ_INT(weft_event_is_set(ev), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(wt_join(t[i]));
    WT_ASSERT_LOG(1, 0, 2, 0, 3, 0);
    /* Set: returns at once, without a suspension. */
    weft_event_set(ev);
    weft_loop_stats(weft_get_running_loop(), &st);
    it = st.iterations;
    ASSERT_OK(weft_event_wait(ev));
    weft_loop_stats(weft_get_running_loop(), &st);
    ASSERT_EQ_INT(st.iterations, it);
    ASSERT_OK(weft_event_free(ev));
    return 0;
}

TEST(event_set_wakes_all) { wt_run_main(event_set_main, 0); }

static int event_cancel_main(void *arg, void **res) {
    weft_task_t *a, *b;
    ASSERT_OK(weft_event_new(&ev));
    a = wt_spawn_arg(ev_waiter, 1);
    b = wt_spawn_arg(ev_waiter, 2);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_cancel(a, NULL), 1);
    ASSERT_EQ_INT(wt_join(a), WEFT_ECANCELED);
    weft_event_set(ev);
    ASSERT_OK(wt_join(b));
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 0);
    /* Cancelled in the same iteration as the set: the cancellation wins (it is sticky). */
    weft_event_clear(ev);
    a = wt_spawn_arg(ev_waiter, 3);
    wt_yield_n(1);
    weft_event_set(ev);
    ASSERT_EQ_INT(weft_cancel(a, NULL), 1);
    ASSERT_EQ_INT(wt_join(a), WEFT_ECANCELED);
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 0, 3, WEFT_ECANCELED);
    ASSERT_OK(weft_event_free(ev));
    return 0;
}

TEST(event_cancel_waiter) { wt_run_main(event_cancel_main, 0); }

static int ev_op(void) { return weft_event_wait(ev); }
static int ev_timed(void *arg, void **res) { return timed(0.25, ev_op); }

static int event_timeout_main(void *arg, void **res) {
    ASSERT_OK(weft_event_new(&ev));
    ASSERT_OK(wt_join(wt_spawn_arg(ev_timed, 0)));
    WT_ASSERT_LOG(WEFT_ETIMEDOUT, 250);
    ASSERT_OK(weft_event_free(ev));
    return 0;
}

TEST(event_timeout) { wt_run_main(event_timeout_main, 0); }

/* ---- Condition ---------------------------------------------------------------------------- */

static int items;

static int consumer(void *arg, void **res) {
    ASSERT_OK(weft_condition_acquire(cv));
    while (items == 0)
        ASSERT_OK(weft_condition_wait(cv));
    items--;
    wt_log((int)(intptr_t)arg);
    ASSERT_OK(weft_condition_release(cv));
    return 0;
}

static int cond_basic_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_OK(weft_condition_new(&cv, NULL));
    t = wt_spawn_arg(consumer, 1);
    wt_yield_n(2);
    ASSERT_EQ_INT(weft_condition_free(cv), WEFT_EBUSY);
    ASSERT_OK(weft_condition_acquire(cv)); /* free: the waiter released it */
    items = 1;
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1);
    wt_yield_n(2);
    WT_ASSERT_LOG(); /* woken, but it needs the lock, which we hold */
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_OK(weft_condition_release(cv));
    ASSERT_OK(wt_join(t));
    WT_ASSERT_LOG(1);
    ASSERT_EQ_INT(items, 0);
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_wait_notify) { wt_run_main(cond_basic_main, 0); }

static int cond_waiter(void *arg, void **res) {
    int rc;
    ASSERT_OK(weft_condition_acquire(cv));
    rc = weft_condition_wait(cv);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    /* Whatever happened, the lock is ours again. */
    ASSERT_OK(weft_condition_release(cv));
    return rc;
}

static int cond_counts_main(void *arg, void **res) {
    weft_task_t *t[6];
    ASSERT_OK(weft_condition_new(&cv, NULL));
    for (int i = 0; i < 6; i++)
        t[i] = wt_spawn_arg(cond_waiter, i + 1);
    wt_yield_n(1);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_condition_notify(cv, 2), 2);
    ASSERT_OK(weft_condition_release(cv));
    wt_yield_n(2);
    WT_ASSERT_LOG(1, 0, 2, 0);
    ASSERT_OK(weft_condition_acquire(cv));
    /* Only waiters not notified yet count. */
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1);
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1);
    ASSERT_EQ_INT(weft_condition_notify(cv, 0), 0);
    ASSERT_EQ_INT(weft_condition_notify_all(cv), 2);
    ASSERT_EQ_INT(weft_condition_notify(cv, 5), 0);
    ASSERT_OK(weft_condition_release(cv));
    for (int i = 0; i < 6; i++)
        ASSERT_OK(wt_join(t[i]));
    WT_ASSERT_LOG(1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0);
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_notify_counts) { wt_run_main(cond_counts_main, 0); }

static int pred_calls;
static int enough_items(void *arg) {
    pred_calls++;
    return items >= (int)(intptr_t)arg;
}

static int cond_wait_for_task(void *arg, void **res) {
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_OK(weft_condition_wait_for(cv, enough_items, arg));
    wt_log(items);
    ASSERT_OK(weft_condition_release(cv));
    return 0;
}

static int cond_wait_for_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_OK(weft_condition_new(&cv, NULL));
    ASSERT_EQ_INT(weft_condition_wait_for(cv, enough_items, 0), WEFT_EPERM);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_condition_wait_for(cv, NULL, 0), WEFT_EINVAL);
    ASSERT_OK(weft_condition_wait_for(cv, enough_items, 0)); /* true: no wait */
    ASSERT_EQ_INT(pred_calls, 1);
    ASSERT_OK(weft_condition_release(cv));
    pred_calls = 0;
    t = wt_spawn_arg(cond_wait_for_task, 3);
    wt_yield_n(1);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_condition_acquire(cv));
        items++;
        ASSERT_EQ_INT(weft_condition_notify_all(cv), 1);
        ASSERT_OK(weft_condition_release(cv));
        wt_yield_n(1);
    }
    ASSERT_OK(wt_join(t));
    WT_ASSERT_LOG(3);
    ASSERT_EQ_INT(pred_calls, 4); /* once at first, once per wake */
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_wait_for_predicate) { wt_run_main(cond_wait_for_main, 0); }

static int cond_holder_task(void *arg, void **res) {
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_OK(weft_condition_release(cv));
    return 0;
}

static int cond_eperm_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_OK(weft_condition_new(&cv, NULL));
    ASSERT_EQ_INT(weft_condition_wait(cv), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_notify_all(cv), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_release(cv), WEFT_EPERM);
    t = wt_spawn_arg(cond_holder_task, 0);
    wt_yield_n(1); /* held by another task: still not ours */
    ASSERT_EQ_INT(weft_condition_wait(cv), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), WEFT_EPERM);
    ASSERT_EQ_INT(weft_condition_release(cv), WEFT_EPERM);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_condition_acquire(cv), WEFT_EDEADLK);
    ASSERT_OK(weft_condition_release(cv));
    ASSERT_OK(wt_join(t));
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_requires_lock) { wt_run_main(cond_eperm_main, 0); }

static int cond_cancel_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_OK(weft_condition_new(&cv, NULL));
    t = wt_spawn_arg(cond_waiter, 1);
    wt_yield_n(1);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    wt_yield_n(3);
    /* Cancelled, but it must take the lock back before it returns: it waits for us, and a
     * second cancellation does not make it give up either. */
    ASSERT_EQ_INT(weft_future_done(t), 0);
    WT_ASSERT_LOG();
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    wt_yield_n(2);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_OK(weft_condition_release(cv));
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    WT_ASSERT_LOG(1, WEFT_ECANCELED);
    ASSERT_OK(weft_condition_acquire(cv)); /* and it released it */
    ASSERT_OK(weft_condition_release(cv));
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_cancel_reacquires) { wt_run_main(cond_cancel_main, 0); }

static int cond_cancel_notified_main(void *arg, void **res) {
    weft_task_t *a, *b;
    ASSERT_OK(weft_condition_new(&cv, NULL));
    a = wt_spawn_arg(cond_waiter, 1);
    b = wt_spawn_arg(cond_waiter, 2);
    wt_yield_n(1);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1); /* a */
    ASSERT_EQ_INT(weft_cancel(a, NULL), 1);        /* before a runs */
    ASSERT_OK(weft_condition_release(cv));
    /* a's notification is not lost: it goes to b. */
    ASSERT_EQ_INT(wt_join(a), WEFT_ECANCELED);
    ASSERT_OK(wt_join(b));
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 0);
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_cancel_notified_passes_on) { wt_run_main(cond_cancel_notified_main, 0); }

static int cond_op(void) { return weft_condition_wait(cv); }
static int cond_timed(void *arg, void **res) {
    ASSERT_OK(weft_condition_acquire(cv));
    timed(0.5, cond_op);
    ASSERT_OK(weft_condition_release(cv)); /* held again */
    return 0;
}

static int cond_timeout_main(void *arg, void **res) {
    ASSERT_OK(weft_condition_new(&cv, NULL));
    ASSERT_OK(wt_join(wt_spawn_arg(cond_timed, 0)));
    WT_ASSERT_LOG(WEFT_ETIMEDOUT, 500);
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}

TEST(cond_timeout) { wt_run_main(cond_timeout_main, 0); }

static weft_condition_t *cv2;

static int cond2_waiter(void *arg, void **res) {
    ASSERT_OK(weft_lock_acquire(lk));
    ASSERT_OK(weft_condition_wait(cv2));
    wt_log((int)(intptr_t)arg);
    ASSERT_OK(weft_lock_release(lk));
    return 0;
}

/* Two conditions over one lock (asyncio.Condition(lock)). */
static int cond_shared_lock_main(void *arg, void **res) {
    weft_task_t *a, *b;
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_condition_new(&cv, lk));
    ASSERT_OK(weft_condition_new(&cv2, lk));
    a = wt_spawn_arg(cond_waiter, 1);
    b = wt_spawn_arg(cond2_waiter, 2);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_lock_acquire(lk));
    ASSERT_EQ_INT(weft_condition_notify_all(cv2), 1);
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(wt_join(b));
    WT_ASSERT_LOG(2);
    ASSERT_EQ_INT(weft_future_done(a), 0);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);
    ASSERT_EQ_INT(weft_condition_notify(cv2, 1), 0);
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1);
    ASSERT_OK(weft_lock_release(lk));
    ASSERT_OK(wt_join(a));
    WT_ASSERT_LOG(2, 1, 0);
    ASSERT_OK(weft_condition_free(cv));
    ASSERT_OK(weft_condition_free(cv2));
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}

TEST(cond_shared_lock) { wt_run_main(cond_shared_lock_main, 0); }

/* ---- Semaphore ------------------------------------------------------------------------------ */

static int sem_basic_main(void *arg, void **res) {
    ASSERT_OK(weft_semaphore_new(&sem, 2, 0));
    ASSERT_EQ_INT(weft_semaphore_value(sem), 2);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 0);
    ASSERT_OK(weft_semaphore_acquire(sem));
    ASSERT_OK(weft_semaphore_acquire(sem));
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    for (int i = 0; i < 3; i++) /* unbounded: above the initial value is fine */
        ASSERT_OK(weft_semaphore_release(sem));
    ASSERT_EQ_INT(weft_semaphore_value(sem), 3);
    ASSERT_OK(weft_semaphore_free(sem));

    ASSERT_OK(weft_semaphore_new(&sem, 1, 1));
    ASSERT_EQ_INT(weft_semaphore_release(sem), WEFT_EOVERFLOW);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_OK(weft_semaphore_acquire(sem));
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    ASSERT_OK(weft_semaphore_release(sem));
    ASSERT_EQ_INT(weft_semaphore_release(sem), WEFT_EOVERFLOW);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_OK(weft_semaphore_free(sem));

    ASSERT_OK(weft_semaphore_new(&sem, 0, 1)); /* BoundedSemaphore(0): never releasable */
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    ASSERT_EQ_INT(weft_semaphore_release(sem), WEFT_EOVERFLOW);
    ASSERT_OK(weft_semaphore_free(sem));
    return 0;
}

TEST(sem_basic_and_bounded_overflow) { wt_run_main(sem_basic_main, 0); }

static int sem_taker(void *arg, void **res) {
    int rc = weft_semaphore_acquire(sem);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    if (rc == 0 && (intptr_t)arg < 100) {
        ASSERT_OK(weft_sleep(0));
        ASSERT_OK(weft_semaphore_release(sem));
    }
    return rc;
}

static int sem_fifo_main(void *arg, void **res) {
    weft_task_t *t[10];
    ASSERT_OK(weft_semaphore_new(&sem, 1, 1));
    ASSERT_OK(weft_semaphore_acquire(sem));
    for (int i = 0; i < 10; i++)
        t[i] = wt_spawn_arg(sem_taker, i);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    ASSERT_EQ_INT(weft_semaphore_free(sem), WEFT_EBUSY);
    ASSERT_OK(weft_semaphore_release(sem)); /* handed to the first waiter: value stays 0 */
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    /* No barging: our acquire queues behind the nine still waiting. */
    ASSERT_OK(weft_semaphore_acquire(sem));
    wt_log(100);
    for (int i = 0; i < 10; i++)
        ASSERT_OK(wt_join(t[i]));
    WT_ASSERT_LOG(0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 0, 100);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_OK(weft_semaphore_release(sem));
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 0);
    ASSERT_OK(weft_semaphore_free(sem));
    return 0;
}

TEST(sem_fifo) { wt_run_main(sem_fifo_main, 0); }

/* arg bit 0: cancel before the release (else after); bit 1: a second waiter queued. */
static int sem_handoff_cancel_main(void *arg, void **res) {
    int mode = (int)(intptr_t)arg;
    weft_task_t *b, *c = NULL;
    ASSERT_OK(weft_semaphore_new(&sem, 0, 0));
    b = wt_spawn_arg(sem_taker, 101);
    if (mode & 2)
        c = wt_spawn_arg(sem_taker, 102);
    wt_yield_n(1);
    if (mode & 1)
        ASSERT_EQ_INT(weft_cancel(b, NULL), 1);
    ASSERT_OK(weft_semaphore_release(sem));
    if (!(mode & 1))
        ASSERT_EQ_INT(weft_cancel(b, NULL), 1);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_EQ_INT(wt_join(b), WEFT_ECANCELED);
    if (c) {
        ASSERT_OK(wt_join(c)); /* got the permit b could not use, and keeps it */
        WT_ASSERT_LOG(101, WEFT_ECANCELED, 102, 0);
        ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    } else {
        WT_ASSERT_LOG(101, WEFT_ECANCELED);
        ASSERT_EQ_INT(weft_semaphore_value(sem), 1); /* back where it was released to */
    }
    ASSERT_OK(weft_semaphore_free(sem));
    return 0;
}

TEST(sem_cancel_when_handed_over) { wt_run_main(sem_handoff_cancel_main, 2); }
TEST(sem_cancel_then_handed_over) { wt_run_main(sem_handoff_cancel_main, 3); }
TEST(sem_cancel_handed_over_last) { wt_run_main(sem_handoff_cancel_main, 0); }

static int sem_op(void) { return weft_semaphore_acquire(sem); }
static int sem_timed(void *arg, void **res) { return timed(0.5, sem_op); }

static int sem_timeout_main(void *arg, void **res) {
    weft_task_t *t;
    ASSERT_OK(weft_semaphore_new(&sem, 0, 0));
    ASSERT_OK(wt_join(wt_spawn_arg(sem_timed, 0)));
    WT_ASSERT_LOG(WEFT_ETIMEDOUT, 500);
    /* weft_wait_for: the acquiring task is cancelled at the deadline. */
    t = wt_spawn_arg(sem_taker, 5);
    ASSERT_EQ_INT(weft_wait_for(t, 0.25, NULL), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    WT_ASSERT_LOG(WEFT_ETIMEDOUT, 500, 5, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 0.75);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_OK(weft_semaphore_free(sem)); /* nobody left queued */
    return 0;
}

TEST(sem_timeout) { wt_run_main(sem_timeout_main, 0); }

/* ---- Barrier ------------------------------------------------------------------------------- */

static int bar_waiter(void *arg, void **res) {
    int rc = weft_barrier_wait(bar);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    return rc < 0 ? rc : 0;
}

static int bar_cycles(void *arg, void **res) {
    unsigned *seen = arg;
    for (int cycle = 0; cycle < 4; cycle++) {
        int idx = weft_barrier_wait(bar);
        ASSERT_GE_INT(idx, 0);
        ASSERT_LT_INT(idx, 3);
        ASSERT_EQ_INT(seen[cycle] & (1u << idx), 0);
        seen[cycle] |= 1u << idx;
    }
    return 0;
}

static int barrier_cycles_main(void *arg, void **res) {
    weft_task_t *t[3];
    unsigned seen[4] = {0};
    ASSERT_OK(weft_barrier_new(&bar, 3));
    ASSERT_EQ_INT(weft_barrier_parties(bar), 3);
    t[0] = wt_spawn_arg(bar_waiter, 1);
    t[1] = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 2);
    ASSERT_EQ_INT(weft_barrier_free(bar), WEFT_EBUSY);
    ASSERT_EQ_INT(weft_barrier_wait(bar), 2); /* the last to arrive: no suspension */
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0); /* draining */
    ASSERT_OK(wt_join(t[0]));
    ASSERT_OK(wt_join(t[1]));
    WT_ASSERT_LOG(1, 0, 2, 1);
    /* Cycles: every cycle hands out 0, 1 and 2 exactly once. */
    for (int i = 0; i < 3; i++)
        t[i] = wt_spawn(NULL, bar_cycles, seen, NULL);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(wt_join(t[i]));
    for (int c = 0; c < 4; c++)
        ASSERT_EQ_INT(seen[c], 7);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    ASSERT_OK(weft_barrier_free(bar));
    /* One party: never waits. */
    ASSERT_OK(weft_barrier_new(&bar, 1));
    ASSERT_EQ_INT(weft_barrier_wait(bar), 0);
    ASSERT_EQ_INT(weft_barrier_wait(bar), 0);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_indexes_and_cycles) { wt_run_main(barrier_cycles_main, 0); }

static int bar_twice(void *arg, void **res) {
    int a = weft_barrier_wait(bar);
    wt_log((int)(intptr_t)arg);
    wt_log(a);
    wt_log((int)weft_barrier_n_waiting(bar));
    a = weft_barrier_wait(bar);
    wt_log((int)(intptr_t)arg);
    wt_log(a);
    return 0;
}

/* The releasing task comes back at once, while the released one has not run: the barrier is
 * draining, and its second wait joins the next cycle, after the drain. */
static int barrier_drain_main(void *arg, void **res) {
    weft_task_t *a, *b;
    ASSERT_OK(weft_barrier_new(&bar, 2));
    a = wt_spawn_arg(bar_twice, 1);
    wt_yield_n(1);
    b = wt_spawn_arg(bar_twice, 2);
    ASSERT_OK(wt_join(a));
    ASSERT_OK(wt_join(b));
    /* b released cycle 1 (index 1) and blocked while it drained (n_waiting 0 meanwhile);
     * a, out last, ended the drain and got index 0 of cycle 2, and b, let in, released it. */
    WT_ASSERT_LOG(2, 1, 0, 1, 0, 0, 2, 1, 1, 0);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_draining) { wt_run_main(barrier_drain_main, 0); }

static int barrier_full_cycle(void) {
    weft_task_t *a = wt_spawn_arg(bar_waiter, 10), *b = wt_spawn_arg(bar_waiter, 11);
    int idx;
    wt_yield_n(1);
    idx = weft_barrier_wait(bar);
    ASSERT_OK(wt_join(a));
    ASSERT_OK(wt_join(b));
    return idx;
}

static int barrier_abort_main(void *arg, void **res) {
    weft_task_t *a, *b;
    ASSERT_OK(weft_barrier_new(&bar, 3));
    a = wt_spawn_arg(bar_waiter, 1);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    weft_barrier_abort(bar);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 1);
    ASSERT_EQ_INT(wt_join(a), WEFT_ENOTRECOVERABLE);
    ASSERT_EQ_INT(wt_join(b), WEFT_ENOTRECOVERABLE);
    WT_ASSERT_LOG(1, WEFT_ENOTRECOVERABLE, 2, WEFT_ENOTRECOVERABLE);
    ASSERT_EQ_INT(weft_barrier_wait(bar), WEFT_ENOTRECOVERABLE); /* until reset */
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    weft_barrier_reset(bar);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    wt_log_reset();
    ASSERT_EQ_INT(barrier_full_cycle(), 2);
    WT_ASSERT_LOG(10, 0, 11, 1);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_abort) { wt_run_main(barrier_abort_main, 0); }

static int bar_then_abort(void *arg, void **res) {
    int rc = weft_barrier_wait(bar);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    weft_barrier_abort(bar);
    return 0;
}

static int barrier_reset_main(void *arg, void **res) {
    weft_task_t *a, *b;
    ASSERT_OK(weft_barrier_new(&bar, 3));
    a = wt_spawn_arg(bar_waiter, 1);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    weft_barrier_reset(bar); /* the waiters leave broken; the barrier is not */
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    ASSERT_EQ_INT(wt_join(a), WEFT_ENOTRECOVERABLE);
    ASSERT_EQ_INT(wt_join(b), WEFT_ENOTRECOVERABLE);
    WT_ASSERT_LOG(1, WEFT_ENOTRECOVERABLE, 2, WEFT_ENOTRECOVERABLE);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    wt_log_reset();
    ASSERT_EQ_INT(barrier_full_cycle(), 2);
    WT_ASSERT_LOG(10, 0, 11, 1);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_reset_while_waiting) { wt_run_main(barrier_reset_main, 0); }

/* Arriving while a reset drains: the newcomer waits, then joins the next cycle, unless the
 * barrier breaks meanwhile, which it learns too. */
static int barrier_blocked_main(void *arg, void **res) {
    weft_task_t *a, *b, *c, *d;
    ASSERT_OK(weft_barrier_new(&bar, 3));
    a = wt_spawn_arg(bar_waiter, 1);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    weft_barrier_reset(bar);
    c = wt_spawn_arg(bar_waiter, 3); /* start after a and b have left: a fresh cycle */
    d = wt_spawn_arg(bar_waiter, 4);
    /* Blocked until a and b are out; c and d, queued before we were let in, come first. */
    ASSERT_EQ_INT(weft_barrier_wait(bar), 2);
    ASSERT_EQ_INT(wt_join(a), WEFT_ENOTRECOVERABLE);
    ASSERT_EQ_INT(wt_join(b), WEFT_ENOTRECOVERABLE);
    ASSERT_OK(wt_join(c));
    ASSERT_OK(wt_join(d));
    WT_ASSERT_LOG(1, WEFT_ENOTRECOVERABLE, 2, WEFT_ENOTRECOVERABLE, 3, 0, 4, 1);

    wt_log_reset();
    a = wt_spawn_arg(bar_then_abort, 1);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    weft_barrier_reset(bar);
    ASSERT_EQ_INT(weft_barrier_wait(bar), WEFT_ENOTRECOVERABLE); /* a aborts while we wait */
    ASSERT_EQ_INT(weft_barrier_broken(bar), 1);
    ASSERT_OK(wt_join(a));
    ASSERT_EQ_INT(wt_join(b), WEFT_ENOTRECOVERABLE);
    WT_ASSERT_LOG(1, WEFT_ENOTRECOVERABLE, 2, WEFT_ENOTRECOVERABLE);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 1);
    weft_barrier_reset(bar);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_blocked_during_reset) { wt_run_main(barrier_blocked_main, 0); }

static int barrier_cancel_main(void *arg, void **res) {
    weft_task_t *a, *b, *c;
    ASSERT_OK(weft_barrier_new(&bar, 3));
    a = wt_spawn_arg(bar_waiter, 1);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    /* Cancelled while filling: it leaves, the others keep waiting (asyncio). */
    ASSERT_EQ_INT(weft_cancel(a, NULL), 1);
    ASSERT_EQ_INT(wt_join(a), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 1);
    c = wt_spawn_arg(bar_waiter, 3);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_barrier_wait(bar), 2);
    ASSERT_OK(wt_join(b));
    ASSERT_OK(wt_join(c));
    /* Indexes are taken from the count, as asyncio's are: b kept 1, the newcomer got 1 too. */
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 1, 3, 1);
    /* Cancelled in the iteration its cycle completed: the cycle stands for the others. */
    wt_log_reset();
    a = wt_spawn_arg(bar_waiter, 1);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_barrier_wait(bar), 2);
    ASSERT_EQ_INT(weft_cancel(a, NULL), 1);
    ASSERT_EQ_INT(wt_join(a), WEFT_ECANCELED);
    ASSERT_OK(wt_join(b));
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, 1);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    wt_log_reset();
    ASSERT_EQ_INT(barrier_full_cycle(), 2);
    WT_ASSERT_LOG(10, 0, 11, 1);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_cancelled_waiter) { wt_run_main(barrier_cancel_main, 0); }

static int bar_op(void) { return weft_barrier_wait(bar); }
static int bar_timed(void *arg, void **res) { return timed(0.5, bar_op); }

static int barrier_timeout_main(void *arg, void **res) {
    weft_task_t *a, *b, *c;
    ASSERT_OK(weft_barrier_new(&bar, 3));
    a = wt_spawn_arg(bar_timed, 0);
    b = wt_spawn_arg(bar_waiter, 2);
    ASSERT_OK(wt_join(a));
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0); /* the timed-out waiter just left */
    c = wt_spawn_arg(bar_waiter, 3);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_barrier_wait(bar), 2);
    ASSERT_OK(wt_join(b));
    ASSERT_OK(wt_join(c));
    WT_ASSERT_LOG(WEFT_ETIMEDOUT, 500, 2, 1, 3, 1); /* asyncio's indexes, as above */
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}

TEST(barrier_timeout) { wt_run_main(barrier_timeout_main, 0); }

/* ---- loop close with tasks blocked in every primitive ------------------------------------- */

static weft_lock_t *lk2;
static weft_barrier_t *bar2;

static int blk_lock(void *arg, void **res) { return weft_lock_acquire(lk); }
static int blk_event(void *arg, void **res) { return weft_event_wait(ev); }
static int blk_cond(void *arg, void **res) {
    ASSERT_OK(weft_condition_acquire(cv));
    return weft_condition_wait(cv);
}
static int blk_sem(void *arg, void **res) { return weft_semaphore_acquire(sem); }
static int blk_bar(void *arg, void **res) { return weft_barrier_wait(arg); }

static int close_main(void *arg, void **res) {
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_lock_new(&lk2));
    ASSERT_OK(weft_event_new(&ev));
    ASSERT_OK(weft_condition_new(&cv, lk2));
    ASSERT_OK(weft_semaphore_new(&sem, 0, 0));
    ASSERT_OK(weft_barrier_new(&bar, 3));
    ASSERT_OK(weft_barrier_new(&bar2, 2));
    ASSERT_OK(weft_lock_acquire(lk));
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(weft_create_task(NULL, blk_lock, NULL, NULL));
        ASSERT_OK(weft_create_task(NULL, blk_event, NULL, NULL));
        ASSERT_OK(weft_create_task(NULL, blk_cond, NULL, NULL));
        ASSERT_OK(weft_create_task(NULL, blk_sem, NULL, NULL));
        ASSERT_OK(weft_create_task(NULL, blk_bar, bar, NULL));
    }
    ASSERT_OK(weft_create_task(NULL, blk_bar, bar2, NULL));
    wt_yield_n(1);
    /* The first condition waiter is notified and queues for the lock, which we hold. */
    ASSERT_OK(weft_lock_acquire(lk2));
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1);
    wt_yield_n(1);
    /* Handed over, not yet seen by their new holders when the loop stops. */
    ASSERT_OK(weft_semaphore_release(sem));
    ASSERT_OK(weft_lock_release(lk));
    weft_loop_stop(weft_get_running_loop());
    ASSERT_EQ_INT(weft_barrier_wait(bar2), 1); /* releases its waiter, which has not run */
    return weft_barrier_wait(bar2);            /* and blocks, as the barrier drains */
}

TEST(loop_close_with_blocked_tasks) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, close_main, NULL, NULL);
    char *out;
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_EQ_INT(weft_lock_locked(lk), 1);         /* handed to a waiter */
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);    /* likewise */
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 2);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar2), 0); /* draining */
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    out = wt_capture_end();
    ASSERT_CONTAINS(out, "Task was destroyed but it is pending");
    free(out);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    /* What was handed to an abandoned task went on (to nobody: all were abandoned). */
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    /* Every abandoned waiter left its queue: nothing is busy, everything frees. */
    ASSERT_OK(weft_lock_free(lk));
    ASSERT_OK(weft_condition_free(cv));
    ASSERT_OK(weft_lock_free(lk2));
    ASSERT_OK(weft_event_free(ev));
    ASSERT_OK(weft_semaphore_free(sem));
    ASSERT_OK(weft_barrier_free(bar));
    ASSERT_OK(weft_barrier_free(bar2));
}

const wt_test_t wt_tests[] = {
    T(create_outside_loop_and_calls_outside_task),
    T(wrong_loop),
    T(lock_basic),
    T(lock_release_by_non_owner),
    T(lock_fairness_100),
    T(lock_cancel_when_handed_over),
    T(lock_cancel_then_handed_over),
    T(lock_cancel_handed_over_last),
    T(lock_cancel_waiting),
    T(lock_cancelled_caller),
    T(lock_timeout),
    T(event_set_wakes_all),
    T(event_cancel_waiter),
    T(event_timeout),
    T(cond_wait_notify),
    T(cond_notify_counts),
    T(cond_wait_for_predicate),
    T(cond_requires_lock),
    T(cond_cancel_reacquires),
    T(cond_cancel_notified_passes_on),
    T(cond_timeout),
    T(cond_shared_lock),
    T(sem_basic_and_bounded_overflow),
    T(sem_fifo),
    T(sem_cancel_when_handed_over),
    T(sem_cancel_then_handed_over),
    T(sem_cancel_handed_over_last),
    T(sem_timeout),
    T(barrier_indexes_and_cycles),
    T(barrier_draining),
    T(barrier_abort),
    T(barrier_reset_while_waiting),
    T(barrier_blocked_during_reset),
    T(barrier_cancelled_waiter),
    T(barrier_timeout),
    T(loop_close_with_blocked_tasks),
    WT_END,
};
