/* Review of src/sync: waiters served and cancelled in the same iteration, bounded/LIFO
 * give-back, shutdown racing served waiters, free() while a served task has not resumed, use
 * from another loop, loop close with served-not-resumed waiters. Virtual clock. */
#include "wt.h"


static weft_queue_t *q;
static weft_lock_t *lk;
static weft_condition_t *cv;
static weft_semaphore_t *sem;
static weft_barrier_t *bar;

/* ---- Queue ----------------------------------------------------------------------------- */

static int q_getter(void *arg, void **res) {
    void *item = NULL;
    int rc = weft_queue_get(q, &item);
    (void)res;
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    if (rc == 0)
        wt_log((int)(intptr_t)item);
    return 0;
}

static int q_putter(void *arg, void **res) {
    (void)res;
    wt_log(weft_queue_put(q, arg));
    return 0;
}

/* maxsize 1: a getter waits, A is handed to it, B goes into the (now empty) queue, and the
 * getter is cancelled before it runs. asyncio keeps A in the queue and makes the second put
 * wait (qsize never exceeds maxsize). Here A comes back in front of B: qsize 2 > maxsize 1. */
static int giveback_maxsize_main(void *arg, void **res) {
    weft_queue_options_t o = {WEFT_QUEUE_FIFO, 1, NULL, NULL};
    weft_task_t *g, *p3;
    void *item;
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, &o));
    g = wt_spawn_arg(q_getter, 1);
    wt_yield_n(1);                                  /* g waits on the empty queue */
    ASSERT_OK(weft_queue_put(q, (void *)100));   /* reserved for g, still in the queue */
    ASSERT_EQ_INT(weft_queue_put_nowait(q, (void *)200), WEFT_EQUEUEFULL); /* as in asyncio */
    ASSERT_EQ_INT(weft_queue_full(q), 1);
    weft_cancel(g, NULL);
    ASSERT_OK(wt_join(g));
    WT_ASSERT_LOG(1, WEFT_ECANCELED);
    /* the queue must never hold more than maxsize items */
    ASSERT_LE_INT(weft_queue_qsize(q), weft_queue_maxsize(q));
    p3 = wt_spawn_arg(q_putter, 300);
    wt_yield_n(1);
    ASSERT_OK(weft_queue_get(q, &item));
    ASSERT_EQ_PTR(item, (void *)100);
    while (weft_queue_qsize(q))
        ASSERT_OK(weft_queue_get_nowait(q, NULL));
    ASSERT_OK(wt_join(p3));
    while (weft_queue_qsize(q))
        ASSERT_OK(weft_queue_get_nowait(q, NULL));
    ASSERT_OK(weft_queue_free(q));
    return 0;
}
TEST(queue_giveback_respects_maxsize) { wt_run_main(giveback_maxsize_main, 0); }

/* LIFO: A handed to a waiting getter, B pushed after it, getter cancelled in the same
 * iteration. asyncio's LifoQueue holds [A, B]: the next get returns B (the last put). */
static int lifo_giveback_main(void *arg, void **res) {
    weft_queue_options_t o = {WEFT_QUEUE_LIFO, 0, NULL, NULL};
    weft_task_t *g;
    void *item;
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, &o));
    g = wt_spawn_arg(q_getter, 1);
    wt_yield_n(1);
    ASSERT_OK(weft_queue_put_nowait(q, (void *)100));
    ASSERT_OK(weft_queue_put_nowait(q, (void *)200));
    weft_cancel(g, NULL);
    ASSERT_OK(wt_join(g));
    WT_ASSERT_LOG(1, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_queue_qsize(q), 2);
    ASSERT_OK(weft_queue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)200);
    ASSERT_OK(weft_queue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)100);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}
TEST(queue_lifo_giveback_order) { wt_run_main(lifo_giveback_main, 0); }

/* PRIORITY: a given-back item goes back in priority order (not "to the front"). */
static int prio_giveback_main(void *arg, void **res) {
    weft_queue_options_t o = {WEFT_QUEUE_PRIORITY, 0, NULL, NULL};
    weft_task_t *g;
    void *item;
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, &o));
    g = wt_spawn_arg(q_getter, 1);
    wt_yield_n(1);
    ASSERT_OK(weft_queue_put_prio_nowait(q, 5, (void *)5));
    ASSERT_OK(weft_queue_put_prio_nowait(q, 1, (void *)1));
    ASSERT_OK(weft_queue_put_prio_nowait(q, 9, (void *)9));
    weft_cancel(g, NULL);
    ASSERT_OK(wt_join(g));
    ASSERT_OK(weft_queue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)1);
    ASSERT_OK(weft_queue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)5);
    ASSERT_OK(weft_queue_get_nowait(q, &item));
    ASSERT_EQ_PTR(item, (void *)9);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}
TEST(queue_prio_giveback_order) { wt_run_main(prio_giveback_main, 0); }

/* Cancelled getter hands its item to the next waiting getter, skipping a second cancelled
 * getter; the join count stays right. */
static int giveback_chain_main(void *arg, void **res) {
    weft_task_t *g1, *g2, *g3;
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, NULL));
    g1 = wt_spawn_arg(q_getter, 1);
    g2 = wt_spawn_arg(q_getter, 2);
    g3 = wt_spawn_arg(q_getter, 3);
    wt_yield_n(1);
    ASSERT_OK(weft_queue_put_nowait(q, (void *)100)); /* to g1 */
    weft_cancel(g1, NULL);
    weft_cancel(g2, NULL);
    ASSERT_OK(wt_join(g1));
    ASSERT_OK(wt_join(g2));
    ASSERT_OK(wt_join(g3));
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 2, WEFT_ECANCELED, 3, 0, 100);
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    ASSERT_OK(weft_queue_join(q));
    ASSERT_OK(weft_queue_free(q));
    return 0;
}
TEST(queue_giveback_chain) { wt_run_main(giveback_chain_main, 0); }

/* shutdown(immediate) after a getter was handed an item but before it ran: the contract
 * ("every waiter wakes with -ESHUTDOWN", and asyncio 3.13, where the item sits in the queue and
 * is dropped) says the get fails and the item counts as done. */
static int shutdown_served_getter_main(void *arg, void **res) {
    weft_task_t *g;
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, NULL));
    g = wt_spawn_arg(q_getter, 1);
    wt_yield_n(1);
    ASSERT_OK(weft_queue_put_nowait(q, (void *)100));
    weft_queue_shutdown(q, 1);
    ASSERT_OK(wt_join(g));
    WT_ASSERT_LOG(1, WEFT_EQUEUESHUTDOWN);
    ASSERT_OK(weft_queue_join(q)); /* the dropped item counts as done */
    ASSERT_OK(weft_queue_free(q));
    return 0;
}
TEST(queue_shutdown_immediate_served_getter) { wt_run_main(shutdown_served_getter_main, 0); }

/* Timeout expiring in the very iteration a getter is served: the item is not lost. */
static int q_getter_timeout(void *arg, void **res) {
    weft_timeout_t to;
    void *item = NULL;
    int rc;
    (void)arg, (void)res;
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    rc = weft_queue_get(q, &item);
    rc = weft_timeout_end(&to, rc);
    wt_log(rc);
    if (rc == 0)
        wt_log((int)(intptr_t)item);
    return 0;
}

static void put_cb(void *arg) { ASSERT_OK(weft_queue_put_nowait(q, arg)); }

static int timeout_served_main(void *arg, void **res) {
    weft_task_t *g;
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, NULL));
    g = wt_spawn_arg(q_getter_timeout, 0);
    wt_yield_n(1);
    /* a callback at the deadline, after the timeout's timer (same time, later handle) */
    ASSERT_OK(weft_call_later(weft_get_running_loop(), 1.0, put_cb, (void *)100, NULL));
    ASSERT_OK(wt_join(g));
    if (wt_log_at(0) == 0) {
        WT_ASSERT_LOG(0, 100);
        ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    } else {
        WT_ASSERT_LOG(WEFT_ETIMEDOUT);
        ASSERT_EQ_INT(weft_queue_qsize(q), 1);
        ASSERT_OK(weft_queue_get_nowait(q, NULL));
    }
    ASSERT_OK(weft_queue_free(q));
    return 0;
}
TEST(queue_timeout_same_iteration_as_put) { wt_run_main(timeout_served_main, 0); }

/* Loop close with waiters served and not resumed (a getter holding an item, a putter whose item
 * went in, a joiner released) and waiters still linked: the queue frees, nothing leaks. */
static int q_joiner(void *arg, void **res) {
    (void)arg, (void)res;
    wt_log(weft_queue_join(q));
    return 0;
}

static int close_queue_main(void *arg, void **res) {
    weft_queue_options_t o = {WEFT_QUEUE_FIFO, 1, NULL, NULL};
    (void)arg, (void)res;
    ASSERT_OK(weft_queue_new(&q, &o));
    weft_unref(wt_spawn_arg(q_getter, 1));
    weft_unref(wt_spawn_arg(q_getter, 2));
    wt_yield_n(1);
    ASSERT_OK(weft_queue_put(q, (void *)100)); /* to getter 1, not resumed */
    ASSERT_OK(weft_queue_put(q, (void *)200)); /* to getter 2, not resumed */
    ASSERT_OK(weft_queue_put(q, (void *)300)); /* queued: full */
    weft_unref(wt_spawn_arg(q_putter, 400));          /* will wait: full */
    weft_unref(wt_spawn_arg(q_joiner, 0));
    weft_loop_stop(weft_get_running_loop());
    wt_yield_n(1);                                /* loop stops before the others resume */
    return 0;
}

TEST(queue_loop_close_served_not_resumed) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, close_queue_main, NULL, NULL);
    char *out;
    ASSERT_OK(weft_loop_run_forever(loop));
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    out = wt_capture_end();
    free(out);
    weft_unref(t);
    ASSERT_OK(weft_queue_free(q));
}

/* ---- Condition ------------------------------------------------------------------------- */

static int cond_waiter(void *arg, void **res) {
    int rc;
    (void)res;
    ASSERT_OK(weft_condition_acquire(cv));
    rc = weft_condition_wait(cv);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    ASSERT_OK(weft_condition_release(cv));
    return 0;
}

/* notify_all and release, then free the condition before the notified waiter has resumed: it
 * is still inside weft_condition_wait (it must re-acquire c's lock), so free must say -EBUSY.
 * It returns 0 and frees; the waiter then re-acquires a freed lock (ASan: use after free). */
static int cond_free_notified_main(void *arg, void **res) {
    weft_task_t *w;
    int rc;
    (void)arg, (void)res;
    ASSERT_OK(weft_condition_new(&cv, NULL));
    w = wt_spawn_arg(cond_waiter, 1);
    wt_yield_n(1);
    ASSERT_OK(weft_condition_acquire(cv));
    ASSERT_EQ_INT(weft_condition_notify_all(cv), 1);
    ASSERT_OK(weft_condition_release(cv));
    rc = weft_condition_free(cv);
    ASSERT_EQ_INT(rc, WEFT_EBUSY);
    ASSERT_OK(wt_join(w));
    WT_ASSERT_LOG(1, 0);
    ASSERT_OK(weft_condition_free(cv));
    return 0;
}
TEST(cond_free_busy_while_notified) { wt_run_main(cond_free_notified_main, 0); }

static int lock_user(void *arg, void **res) {
    (void)res;
    wt_log(weft_lock_acquire(lk));
    wt_log((int)(intptr_t)arg);
    wt_yield_n(1);
    ASSERT_OK(weft_lock_release(lk));
    return 0;
}

/* Condition re-acquire when cancelled: other lock waiters keep their turn; the cancelled
 * waiter comes back holding the lock, passes its notification on, and nothing is stuck. */
static int cond_reacquire_cancel_main(void *arg, void **res) {
    weft_task_t *w1, *w2, *l1;
    (void)arg, (void)res;
    ASSERT_OK(weft_lock_new(&lk));
    ASSERT_OK(weft_condition_new(&cv, lk));
    w1 = wt_spawn_arg(cond_waiter, 1);
    w2 = wt_spawn_arg(cond_waiter, 2);
    wt_yield_n(1);
    ASSERT_OK(weft_lock_acquire(lk));
    l1 = wt_spawn_arg(lock_user, 10);
    wt_yield_n(1);                                  /* l1 queues on the lock */
    ASSERT_EQ_INT(weft_condition_notify(cv, 1), 1); /* w1 */
    ASSERT_OK(weft_lock_release(lk));            /* to l1 */
    wt_yield_n(1);                                  /* w1 queues for the lock behind l1 */
    weft_cancel(w1, NULL);                       /* during its shielded re-acquire */
    ASSERT_OK(wt_join(l1));
    ASSERT_OK(wt_join(w1));
    ASSERT_OK(wt_join(w2));
    WT_ASSERT_LOG(0, 10, 1, WEFT_ECANCELED, 2, 0);
    ASSERT_EQ_INT(weft_lock_locked(lk), 0);
    ASSERT_OK(weft_condition_free(cv));
    ASSERT_OK(weft_lock_free(lk));
    return 0;
}
TEST(cond_reacquire_cancelled_behind_lock_waiter) { wt_run_main(cond_reacquire_cancel_main, 0); }

/* ---- Semaphore ------------------------------------------------------------------------- */

static int sem_waiter(void *arg, void **res) {
    (void)res;
    wt_log((int)(intptr_t)arg);
    wt_log(weft_semaphore_acquire(sem));
    return 0;
}

/* A permit handed to a waiter that is cancelled before it runs: free() must not succeed while
 * that task is still inside acquire (it will give the permit back to `sem`). */
static int sem_free_granted_main(void *arg, void **res) {
    weft_task_t *w;
    (void)arg, (void)res;
    ASSERT_OK(weft_semaphore_new(&sem, 0, 0));
    w = wt_spawn_arg(sem_waiter, 1);
    wt_yield_n(1);
    ASSERT_OK(weft_semaphore_release(sem)); /* to w */
    weft_cancel(w, NULL);
    ASSERT_EQ_INT(weft_semaphore_free(sem), WEFT_EBUSY);
    ASSERT_OK(wt_join(w));
    WT_ASSERT_LOG(1, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 1);
    ASSERT_OK(weft_semaphore_free(sem));
    return 0;
}
TEST(sem_free_busy_while_granted_cancelled) { wt_run_main(sem_free_granted_main, 0); }

/* locked() (asyncio 3.11+): "an acquire would wait". With a cancelled waiter (not yet run)
 * and a permit handed over, the numbers stay coherent and nothing is lost. */
static int sem_locked_main(void *arg, void **res) {
    weft_task_t *w1, *w2;
    (void)arg, (void)res;
    ASSERT_OK(weft_semaphore_new(&sem, 1, 1));
    ASSERT_OK(weft_semaphore_acquire(sem));
    w1 = wt_spawn_arg(sem_waiter, 1);
    w2 = wt_spawn_arg(sem_waiter, 2);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    weft_cancel(w1, NULL);
    ASSERT_OK(weft_semaphore_release(sem)); /* to w1 (cancelled), which passes it to w2 */
    ASSERT_EQ_INT(wt_join(w1), 0);
    ASSERT_EQ_INT(wt_join(w2), 0);
    WT_ASSERT_LOG(1, 2, WEFT_ECANCELED, 0);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 1);
    ASSERT_OK(weft_semaphore_release(sem));
    ASSERT_EQ_INT(weft_semaphore_locked(sem), 0);
    ASSERT_EQ_INT(weft_semaphore_release(sem), WEFT_EOVERFLOW);
    ASSERT_OK(weft_semaphore_free(sem));
    return 0;
}
TEST(sem_locked_with_cancelled_waiter) { wt_run_main(sem_locked_main, 0); }

/* Another loop's callback (no task running) releasing: the queue's nowait calls return -EINVAL
 * from another loop; the semaphore does not check and mutates it. */
static int make_sem(void *arg, void **res) {
    (void)arg, (void)res;
    ASSERT_OK(weft_semaphore_new(&sem, 0, 0));
    ASSERT_OK(weft_queue_new(&q, NULL));
    return 0;
}

static void other_loop_cb(void *arg) {
    (void)arg;
    wt_log(weft_queue_put_nowait(q, NULL));
    wt_log(weft_semaphore_release(sem));
}

TEST(sem_release_from_other_loop_callback) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    ASSERT_OK(wt_run_task(a, make_sem, NULL, NULL));
    ASSERT_OK(weft_call_soon(b, other_loop_cb, NULL, NULL));
    ASSERT_OK(weft_call_soon(b, wt_stop_cb, b, NULL));
    ASSERT_OK(weft_loop_run_forever(b));
    WT_ASSERT_LOG(WEFT_EINVAL, WEFT_EINVAL);
    ASSERT_EQ_INT(weft_semaphore_value(sem), 0);
    ASSERT_OK(weft_semaphore_free(sem));
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(a);
    WT_CLOSE_LOOP(b);
}

/* ---- Barrier --------------------------------------------------------------------------- */

static int flag;

static int bar_waiter(void *arg, void **res) {
    int rc;
    (void)res;
    rc = weft_barrier_wait(bar);
    wt_log((int)(intptr_t)arg);
    wt_log(rc);
    if ((intptr_t)arg == 1)
        flag = 1;
    return 0;
}

/* A task blocked during a drain is released when the drain ends, but has not run yet: free()
 * must say -EBUSY (it will read b->state when it resumes). */
static int barrier_free_blocked_main(void *arg, void **res) {
    weft_task_t *a, *b, *c;
    (void)arg, (void)res;
    ASSERT_OK(weft_barrier_new(&bar, 2));
    a = wt_spawn_arg(bar_waiter, 1);
    wt_yield_n(1);
    b = wt_spawn_arg(bar_waiter, 2);
    c = wt_spawn_arg(bar_waiter, 3);                 /* b fills, c arrives during the drain */
    while (!flag)
        wt_yield_n(1);
    /* a left last: the drain is over and c was released, but c has not run yet */
    ASSERT_EQ_INT(wt_log_len(), 4);
    ASSERT_EQ_INT(weft_barrier_free(bar), WEFT_EBUSY);
    ASSERT_OK(wt_join(a));
    ASSERT_OK(wt_join(b));
    weft_cancel(c, NULL);
    ASSERT_OK(wt_join(c));
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}
TEST(barrier_free_busy_while_released_blocked) { wt_run_main(barrier_free_blocked_main, 0); }

/* asyncio 3.11: a cancelled waiter leaves and the count drops; indexes come from the count. */
static int barrier_cancel_count_main(void *arg, void **res) {
    weft_task_t *a, *b, *c;
    (void)arg, (void)res;
    ASSERT_OK(weft_barrier_new(&bar, 2));
    a = wt_spawn_arg(bar_waiter, 1);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 1);
    weft_cancel(a, NULL);
    wt_yield_n(1);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    b = wt_spawn_arg(bar_waiter, 2);
    wt_yield_n(1);
    c = wt_spawn_arg(bar_waiter, 3);
    ASSERT_OK(wt_join(a));
    ASSERT_OK(wt_join(b));
    ASSERT_OK(wt_join(c));
    WT_ASSERT_LOG(1, WEFT_ECANCELED, 3, 1, 2, 0);
    ASSERT_EQ_INT(weft_barrier_n_waiting(bar), 0);
    ASSERT_EQ_INT(weft_barrier_broken(bar), 0);
    ASSERT_OK(weft_barrier_free(bar));
    return 0;
}
TEST(barrier_cancel_drops_count) { wt_run_main(barrier_cancel_count_main, 0); }

const wt_test_t wt_tests[] = {
    T(queue_giveback_respects_maxsize),
    T(queue_lifo_giveback_order),
    T(queue_prio_giveback_order),
    T(queue_giveback_chain),
    T(queue_shutdown_immediate_served_getter),
    T(queue_timeout_same_iteration_as_put),
    T(queue_loop_close_served_not_resumed),
    T(cond_free_busy_while_notified),
    T(cond_reacquire_cancelled_behind_lock_waiter),
    T(sem_free_busy_while_granted_cancelled),
    T(sem_locked_with_cancelled_waiter),
    T(sem_release_from_other_loop_callback),
    T(barrier_free_busy_while_released_blocked),
    T(barrier_cancel_drops_count),
    WT_END,
};
