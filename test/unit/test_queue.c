/* Queues: asyncio.Queue, LifoQueue and PriorityQueue. Hand-off between waiters, fairness,
 * cancellation safety, join/task_done, shutdown, timeouts, loop close. */
#include "wt.h"

#define P(i) ((void *)(intptr_t)(i))
#define I(p) ((int)(intptr_t)(p))

static weft_loop_t *L(void) { return weft_get_running_loop(); }

static weft_queue_t *new_queue(weft_loop_t *loop, int kind, size_t maxsize) {
    weft_queue_options_t o = {kind, maxsize, NULL, NULL};
    weft_queue_t *q = NULL;
    ASSERT_OK(weft_loop_queue_new(loop, &q, &o));
    ASSERT_NOT_NULL(q);
    return q;
}

/* One blocking operation run by a task: its outcome lands here. */
typedef struct op {
    weft_queue_t *q;
    int id;          /* logged when the operation returns */
    intptr_t value;  /* put: the item */
    int rc;
    void *got;
} op_t;

#define OP(q_, id_, v_) {q_, id_, v_, 999, NULL}

static int getter(void *arg, void **res) {
    op_t *o = arg;
    o->rc = weft_queue_get(o->q, &o->got);
    wt_log(o->id);
    return 0;
}

static int putter(void *arg, void **res) {
    op_t *o = arg;
    o->rc = weft_queue_put(o->q, P(o->value));
    wt_log(o->id);
    return 0;
}

static int joiner(void *arg, void **res) {
    op_t *o = arg;
    o->rc = weft_queue_join(o->q);
    wt_log(o->id);
    return 0;
}

static void await_all(weft_task_t **t, int n) {
    for (int i = 0; i < n; i++) {
        ASSERT_OK(weft_await(t[i], NULL));
        weft_unref(t[i]);
    }
}

/* ---- basics -------------------------------------------------------------------------------- */

TEST(queue_new_free) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = NULL;
    weft_queue_options_t bad = {7, 0, NULL, NULL};
    ASSERT_EQ_INT(weft_queue_new(&q, NULL), WEFT_EPERM); /* no running loop */
    ASSERT_EQ_INT(weft_loop_queue_new(loop, &q, &bad), WEFT_EINVAL);
    ASSERT_OK(weft_loop_queue_new(loop, &q, NULL));
    ASSERT_EQ_INT(weft_queue_maxsize(q), 0);
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_EQ_INT(weft_queue_empty(q), 1);
    ASSERT_EQ_INT(weft_queue_full(q), 0);
    ASSERT_OK(weft_queue_free(q));
    ASSERT_OK(weft_queue_free(NULL));
    WT_CLOSE_LOOP(loop);
}

TEST(nowait_full_empty) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = new_queue(loop, WEFT_QUEUE_FIFO, 3);
    void *v = NULL;
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EQUEUEEMPTY);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_queue_put_nowait(q, P(i)));
    ASSERT_EQ_INT(weft_queue_full(q), 1);
    ASSERT_EQ_INT(weft_queue_put_nowait(q, P(9)), WEFT_EQUEUEFULL);
    ASSERT_EQ_INT(weft_queue_qsize(q), 3);
    ASSERT_EQ_INT(weft_queue_put_prio_nowait(q, 1, P(9)), WEFT_EINVAL); /* not a priority queue */
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_queue_get_nowait(q, &v));
        ASSERT_EQ_INT(I(v), i);
    }
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EQUEUEEMPTY);
    ASSERT_EQ_INT(weft_queue_empty(q), 1);
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

/* Unbounded FIFO: the ring grows, with its head anywhere, and keeps the order. */
TEST(fifo_unbounded_growth) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = new_queue(loop, WEFT_QUEUE_FIFO, 0);
    int next_in = 0, next_out = 0;
    void *v;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 7 * round + 3; i++)
            ASSERT_OK(weft_queue_put_nowait(q, P(next_in++)));
        for (int i = 0; i < 5 * round + 2; i++) {
            ASSERT_OK(weft_queue_get_nowait(q, &v));
            ASSERT_EQ_INT(I(v), next_out++);
        }
    }
    ASSERT_EQ_INT(weft_queue_qsize(q), next_in - next_out);
    while (weft_queue_get_nowait(q, &v) == 0)
        ASSERT_EQ_INT(I(v), next_out++);
    ASSERT_EQ_INT(next_out, next_in);
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

static int outside_task_calls(void *arg, void **res) { return 0; }

TEST(calls_outside_tasks) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = new_queue(loop, WEFT_QUEUE_FIFO, 1);
    void *v;
    ASSERT_EQ_INT(weft_queue_put(q, P(1)), WEFT_EPERM);
    ASSERT_EQ_INT(weft_queue_get(q, &v), WEFT_EPERM);
    ASSERT_EQ_INT(weft_queue_join(q), WEFT_EPERM);
    ASSERT_OK(weft_queue_put_nowait(q, P(1)));
    ASSERT_OK(weft_queue_get_nowait(q, &v));
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    ASSERT_OK(wt_run_task(loop, outside_task_calls, NULL, NULL));
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

/* A queue belongs to its loop: a task of another loop gets -EINVAL. */
static int other_loop_user(void *arg, void **res) {
    weft_queue_t *q = arg;
    void *v;
    ASSERT_EQ_INT(weft_queue_put(q, P(1)), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_queue_get(q, &v), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_queue_put_nowait(q, P(1)), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_queue_join(q), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    return 0;
}

TEST(other_loop_einval) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    weft_queue_t *q = new_queue(a, WEFT_QUEUE_FIFO, 0);
    ASSERT_OK(wt_run_task(b, other_loop_user, q, NULL));
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(b);
    WT_CLOSE_LOOP(a);
}

/* ---- never suspending when there is no need -------------------------------------------------- */

static int witness(void *arg, void **res) {
    wt_log(100);
    return 0;
}

/* With another task ready, put on a queue with room and get on a non-empty one run through
 * without yielding (seed 05 prints every "Produced" before any "Consumed"). */
static int no_suspend_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 3);
    weft_task_t *w = wt_spawn(L(), witness, NULL, NULL);
    void *v;
    ASSERT_OK(weft_sleep(0)); /* the witness ran */
    wt_log_reset();
    weft_unref(w);
    w = wt_spawn(L(), witness, NULL, NULL);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_queue_put(q, P(i)));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_queue_get(q, &v));
        ASSERT_EQ_INT(I(v), i);
    }
    ASSERT_OK(weft_queue_put(q, P(5)));
    ASSERT_OK(weft_queue_get(q, NULL)); /* the item may be dropped */
    ASSERT_EQ_INT(wt_log_len(), 0);      /* the witness has not run */
    ASSERT_OK(weft_await(w, NULL));
    WT_ASSERT_LOG(100);
    weft_unref(w);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(room_never_suspends) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, no_suspend_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- hand-off ------------------------------------------------------------------------------ */

static int handoff_get_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t g = OP(q, 1, 0);
    weft_task_t *t = wt_spawn(L(), getter, &g, NULL);
    void *v;
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_INT(g.rc, 999); /* waiting */
    ASSERT_OK(weft_queue_put(q, P(42)));
    /* The item stays in the queue (asyncio's qsize and maxsize), reserved for the woken getter:
     * nobody else takes it. */
    ASSERT_EQ_INT(weft_queue_qsize(q), 1);
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EQUEUEEMPTY);
    ASSERT_OK(weft_queue_put(q, P(43))); /* full: waits until the getter has taken 42 */
    ASSERT_EQ_INT(weft_queue_qsize(q), 1);
    await_all(&t, 1);
    ASSERT_OK(g.rc);
    ASSERT_EQ_INT(I(g.got), 42);
    ASSERT_OK(weft_queue_get(q, &g.got));
    ASSERT_EQ_INT(I(g.got), 43);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(get_waits_then_handoff) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, handoff_get_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int handoff_put_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t p = OP(q, 1, 2);
    weft_task_t *t;
    void *v;
    ASSERT_OK(weft_queue_put(q, P(1)));
    t = wt_spawn(L(), putter, &p, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_INT(p.rc, 999); /* waiting: the queue is full */
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 1);
    ASSERT_EQ_INT(weft_queue_qsize(q), 1); /* the putter's item is in already */
    ASSERT_EQ_INT(weft_queue_put_nowait(q, P(3)), WEFT_EQUEUEFULL);
    await_all(&t, 1);
    ASSERT_OK(p.rc);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 2);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(put_waits_then_admitted) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, handoff_put_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- fairness ------------------------------------------------------------------------------ */

#define NW 100

static int fair_getters_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t ops[NW];
    weft_task_t *t[NW];
    for (int i = 0; i < NW; i++) {
        ops[i] = (op_t)OP(q, i, 0);
        t[i] = wt_spawn(L(), getter, &ops[i], NULL);
    }
    ASSERT_OK(weft_sleep(0));
    for (int i = 0; i < NW; i++)
        ASSERT_OK(weft_queue_put(q, P(1000 + i)));
    await_all(t, NW);
    for (int i = 0; i < NW; i++) {
        ASSERT_OK(ops[i].rc);
        ASSERT_EQ_INT(I(ops[i].got), 1000 + i); /* first come, first served */
        ASSERT_EQ_INT(wt_log_at(i), i);
    }
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(fairness_getters) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, fair_getters_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int fair_putters_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t ops[NW];
    weft_task_t *t[NW];
    void *v;
    ASSERT_OK(weft_queue_put(q, P(-1)));
    for (int i = 0; i < NW; i++) {
        ops[i] = (op_t)OP(q, i, i);
        t[i] = wt_spawn(L(), putter, &ops[i], NULL);
    }
    ASSERT_OK(weft_sleep(0));
    for (int i = -1; i < NW; i++) {
        ASSERT_OK(weft_queue_get(q, &v));
        ASSERT_EQ_INT(I(v), i);
        ASSERT_OK(weft_queue_task_done(q));
    }
    await_all(t, NW);
    for (int i = 0; i < NW; i++) {
        ASSERT_OK(ops[i].rc);
        ASSERT_EQ_INT(wt_log_at(i), i);
    }
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(fairness_putters) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, fair_putters_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- cancellation -------------------------------------------------------------------------- */

static int cancel_waiting_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t g = OP(q, 1, 0), p = OP(q, 2, 7);
    weft_task_t *t[2];
    void *v;
    t[0] = wt_spawn(L(), getter, &g, NULL);
    ASSERT_OK(weft_sleep(0));
    weft_cancel(t[0], NULL);
    await_all(t, 1);
    ASSERT_EQ_INT(g.rc, WEFT_ECANCELED);
    ASSERT_OK(weft_queue_put(q, P(1)));
    t[1] = wt_spawn(L(), putter, &p, NULL);
    ASSERT_OK(weft_sleep(0));
    weft_cancel(t[1], NULL);
    await_all(&t[1], 1);
    ASSERT_EQ_INT(p.rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_queue_qsize(q), 1);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 1);
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EQUEUEEMPTY); /* 7 never went in */
    ASSERT_OK(weft_queue_free(q));                                  /* nobody left waiting */
    return 0;
}

TEST(cancel_waiting_get_put) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, cancel_waiting_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* A getter handed an item and cancelled in the same iteration passes it to the next getter. */
static int handed_then_cancelled_next_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t g1 = OP(q, 1, 0), g2 = OP(q, 2, 0);
    weft_task_t *t[2];
    t[0] = wt_spawn(L(), getter, &g1, NULL);
    t[1] = wt_spawn(L(), getter, &g2, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_put(q, P(5)));  /* to g1 */
    ASSERT_EQ_INT(weft_cancel(t[0], NULL), 1);
    await_all(t, 2);
    ASSERT_EQ_INT(g1.rc, WEFT_ECANCELED);
    ASSERT_OK(g2.rc);
    ASSERT_EQ_INT(I(g2.got), 5);
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL); /* one item, counted once */
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(getter_cancelled_after_handoff_next_getter) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, handed_then_cancelled_next_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ... or, with no other getter, it simply stays where it is, in every kind: the queue never
 * holds more than maxsize, and the order is the kind's own (asyncio's). */
static int handed_then_cancelled_front(void *arg, void **res) {
    int kind = (int)(intptr_t)arg;
    weft_queue_t *q = new_queue(L(), kind, 2);
    op_t g = OP(q, 1, 0);
    weft_task_t *t;
    void *v;
    t = wt_spawn(L(), getter, &g, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_put(q, P(10)));          /* reserved for g */
    ASSERT_OK(weft_queue_put(q, P(11)));          /* queued: full */
    ASSERT_EQ_INT(weft_queue_put_nowait(q, P(12)), WEFT_EQUEUEFULL);
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    await_all(&t, 1);
    ASSERT_EQ_INT(g.rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_queue_qsize(q), 2);        /* nothing lost */
    ASSERT_EQ_INT(weft_queue_full(q), 1);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), kind == WEFT_QUEUE_LIFO ? 11 : 10);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), kind == WEFT_QUEUE_LIFO ? 10 : 11);
    for (int i = 0; i < 2; i++)
        ASSERT_OK(weft_queue_task_done(q));
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(getter_cancelled_after_handoff_front) {
    for (int kind = 0; kind < 3; kind++) {
        weft_loop_t *loop = wt_loop_virtual();
        ASSERT_OK(wt_run_task(loop, handed_then_cancelled_front, (void *)(intptr_t)kind, NULL));
        WT_CLOSE_LOOP(loop);
    }
}

/* A getter cancelled before the put, in the same iteration: the put skips it. */
static int cancelled_then_put_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t g1 = OP(q, 1, 0), g2 = OP(q, 2, 0);
    weft_task_t *t[2];
    t[0] = wt_spawn(L(), getter, &g1, NULL);
    t[1] = wt_spawn(L(), getter, &g2, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_INT(weft_cancel(t[0], NULL), 1);
    ASSERT_OK(weft_queue_put(q, P(5)));
    await_all(t, 2);
    WT_ASSERT_LOG(1, 2);
    ASSERT_EQ_INT(g1.rc, WEFT_ECANCELED);
    ASSERT_OK(g2.rc);
    ASSERT_EQ_INT(I(g2.got), 5);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(getter_cancelled_before_put) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, cancelled_then_put_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* A putter cancelled before a slot frees never inserts: the next putter's item goes in. */
static int putter_cancelled_before_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t p1 = OP(q, 1, 20), p2 = OP(q, 2, 30);
    weft_task_t *t[2];
    void *v;
    ASSERT_OK(weft_queue_put(q, P(10)));
    t[0] = wt_spawn(L(), putter, &p1, NULL);
    t[1] = wt_spawn(L(), putter, &p2, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_INT(weft_cancel(t[0], NULL), 1);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 10);
    ASSERT_EQ_INT(weft_queue_qsize(q), 1);
    await_all(t, 2);
    ASSERT_EQ_INT(p1.rc, WEFT_ECANCELED);
    ASSERT_OK(p2.rc);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 30);
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(putter_cancelled_before_admit) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, putter_cancelled_before_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* A putter whose item went in, then cancelled in the same iteration: the put happened and
 * returns 0; the cancellation stays pending for the next suspension. */
static int put_then_sleep(void *arg, void **res) {
    op_t *o = arg;
    o->rc = weft_queue_put(o->q, P(o->value));
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 1);
    ASSERT_EQ_INT(weft_sleep(1), WEFT_ECANCELED);
    return WEFT_ECANCELED;
}

static int putter_cancelled_after_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t p = OP(q, 1, 20);
    weft_task_t *t;
    void *v;
    ASSERT_OK(weft_queue_put(q, P(10)));
    t = wt_spawn(L(), put_then_sleep, &p, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_get(q, &v)); /* admits 20 */
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    ASSERT_OK(p.rc);
    ASSERT_OK(weft_queue_get_nowait(q, &v));
    ASSERT_EQ_INT(I(v), 20);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(putter_cancelled_after_admit) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, putter_cancelled_after_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* A cancelled task does not start waiting at all. */
static int already_cancelled(void *arg, void **res) {
    weft_queue_t *q = arg;
    weft_cancel(weft_current_task(), NULL);
    ASSERT_EQ_INT(weft_queue_get(q, NULL), WEFT_ECANCELED);
    ASSERT_OK(weft_queue_put(q, P(1))); /* room: no suspension, no cancellation */
    ASSERT_EQ_INT(weft_queue_put(q, P(2)), WEFT_ECANCELED);
    ASSERT_OK(weft_queue_get(q, NULL));
    ASSERT_EQ_INT(weft_queue_join(q), WEFT_ECANCELED);
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_OK(weft_queue_join(q)); /* nothing to wait for */
    weft_task_uncancel(weft_current_task());
    return 0;
}

TEST(cancelled_before_waiting) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = new_queue(loop, WEFT_QUEUE_FIFO, 1);
    ASSERT_OK(wt_run_task(loop, already_cancelled, q, NULL));
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

/* Many getters, some cancelled, items handed over in between: counts add up. */
static int cancel_mix_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t ops[NW];
    weft_task_t *t[NW];
    int got = 0, cancelled = 0;
    long long sum = 0;
    void *v;
    for (int i = 0; i < NW; i++) {
        ops[i] = (op_t)OP(q, i, 0);
        t[i] = wt_spawn(L(), getter, &ops[i], NULL);
    }
    ASSERT_OK(weft_sleep(0));
    /* Every third getter is cancelled after an item reached it, every fifth before. */
    for (int i = 0; i < NW; i++) {
        if (i % 5 == 0)
            weft_cancel(t[i], NULL);
        ASSERT_OK(weft_queue_put(q, P(i + 1)));
        if (i % 3 == 0)
            weft_cancel(t[i], NULL);
    }
    await_all(t, NW);
    for (int i = 0; i < NW; i++) {
        if (ops[i].rc == 0) {
            got++;
            sum += I(ops[i].got);
        } else {
            ASSERT_EQ_INT(ops[i].rc, WEFT_ECANCELED);
            cancelled++;
        }
    }
    while (weft_queue_get_nowait(q, &v) == 0) {
        got++;
        sum += I(v);
    }
    ASSERT_EQ_INT(got, NW);
    ASSERT_EQ_INT(sum, NW * (NW + 1) / 2);
    ASSERT_GT_INT(cancelled, 0);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(cancel_mix_no_item_lost) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, cancel_mix_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- join / task_done ---------------------------------------------------------------------- */

static int join_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t j1 = OP(q, 1, 0), j2 = OP(q, 2, 0);
    weft_task_t *t[2];
    ASSERT_OK(weft_queue_join(q)); /* nothing put: at once */
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_queue_put(q, P(i)));
    t[0] = wt_spawn(L(), joiner, &j1, NULL);
    t[1] = wt_spawn(L(), joiner, &j2, NULL);
    ASSERT_OK(weft_sleep(0));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_queue_get(q, NULL));
        ASSERT_OK(weft_sleep(0));
        ASSERT_EQ_INT(j1.rc, 999); /* gets do not finish items: task_done does */
    }
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_INT(j1.rc, 999);
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL); /* one more than was put */
    await_all(t, 2);
    ASSERT_OK(j1.rc);
    ASSERT_OK(j2.rc);
    WT_ASSERT_LOG(1, 2);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(join_and_task_done) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, join_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- shutdown ------------------------------------------------------------------------------ */

static int shutdown_graceful_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 2), *q2 = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t p1 = OP(q, 1, 3), p2 = OP(q, 2, 4), g1 = OP(q2, 3, 0), g2 = OP(q2, 4, 0);
    weft_task_t *t[4];
    void *v;
    ASSERT_OK(weft_queue_put(q, P(1)));
    ASSERT_OK(weft_queue_put(q, P(2)));
    t[0] = wt_spawn(L(), putter, &p1, NULL);
    t[1] = wt_spawn(L(), putter, &p2, NULL);
    t[2] = wt_spawn(L(), getter, &g1, NULL);
    t[3] = wt_spawn(L(), getter, &g2, NULL);
    ASSERT_OK(weft_sleep(0));
    weft_queue_shutdown(q, 0);
    weft_queue_shutdown(q2, 0);
    await_all(t, 4);
    WT_ASSERT_LOG(1, 2, 3, 4);
    ASSERT_EQ_INT(p1.rc, WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(p2.rc, WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(g1.rc, WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(g2.rc, WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(weft_queue_put(q, P(9)), WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(weft_queue_put_nowait(q, P(9)), WEFT_EQUEUESHUTDOWN);
    /* Getters drain what is queued, then get the shutdown. */
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 1);
    ASSERT_OK(weft_queue_get_nowait(q, &v));
    ASSERT_EQ_INT(I(v), 2);
    ASSERT_EQ_INT(weft_queue_get(q, &v), WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EQUEUESHUTDOWN);
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_OK(weft_queue_task_done(q));
    ASSERT_OK(weft_queue_join(q));
    ASSERT_OK(weft_queue_free(q));
    ASSERT_OK(weft_queue_free(q2));
    return 0;
}

TEST(shutdown_graceful_with_waiters) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, shutdown_graceful_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int shutdown_immediate_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_PRIORITY, 2),
                 *q2 = new_queue(L(), WEFT_QUEUE_LIFO, 0);
    op_t p = OP(q, 1, 3), j = OP(q, 2, 0), g = OP(q2, 3, 0);
    weft_task_t *t[3];
    void *v;
    ASSERT_OK(weft_queue_put(q, P(1)));
    ASSERT_OK(weft_queue_put(q, P(2)));
    t[0] = wt_spawn(L(), putter, &p, NULL);
    t[1] = wt_spawn(L(), joiner, &j, NULL);
    t[2] = wt_spawn(L(), getter, &g, NULL);
    ASSERT_OK(weft_sleep(0));
    weft_queue_shutdown(q, 1);
    weft_queue_shutdown(q2, 1);
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    await_all(t, 3);
    ASSERT_EQ_INT(p.rc, WEFT_EQUEUESHUTDOWN);
    ASSERT_OK(j.rc); /* the dropped items count as done */
    ASSERT_EQ_INT(g.rc, WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(weft_queue_get(q, &v), WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(weft_queue_put(q2, P(1)), WEFT_EQUEUESHUTDOWN);
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    ASSERT_OK(weft_queue_join(q));
    ASSERT_OK(weft_queue_free(q));
    ASSERT_OK(weft_queue_free(q2));
    return 0;
}

TEST(shutdown_immediate_with_waiters) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, shutdown_immediate_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* An item handed to a getter that is cancelled after an immediate shutdown is dropped and
 * counted done (it cannot go back into a queue that was emptied). */
static int shutdown_handed_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t g = OP(q, 1, 0), j = OP(q, 2, 0);
    weft_task_t *t[2];
    t[0] = wt_spawn(L(), getter, &g, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_put(q, P(1)));
    t[1] = wt_spawn(L(), joiner, &j, NULL);
    weft_cancel(t[0], NULL);
    weft_queue_shutdown(q, 1);
    await_all(t, 2);
    ASSERT_EQ_INT(g.rc, WEFT_ECANCELED);
    ASSERT_OK(j.rc);
    ASSERT_EQ_INT(weft_queue_qsize(q), 0);
    ASSERT_EQ_INT(weft_queue_task_done(q), WEFT_EINVAL);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(shutdown_immediate_handed_item) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, shutdown_handed_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- timeouts ------------------------------------------------------------------------------ */

static int timeout_scopes_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    weft_timeout_t to;
    double t0 = weft_loop_time(L());
    void *v;
    ASSERT_OK(weft_timeout_begin(&to, 0.5));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_queue_get(q, &v)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(weft_loop_time(L()) - t0, 0.5);
    ASSERT_OK(weft_queue_put(q, P(1)));
    ASSERT_OK(weft_timeout_begin(&to, 0.25));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_queue_put(q, P(2))), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(weft_loop_time(L()) - t0, 0.75);
    ASSERT_OK(weft_timeout_begin(&to, 0.25));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_queue_join(q)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(weft_loop_time(L()) - t0, 1.0);
    ASSERT_EQ_INT(weft_queue_qsize(q), 1); /* the timed-out put did not insert */
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 1);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 0);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(timeout_scope_get_put_join) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, timeout_scopes_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int put_later(void *arg, void **res) {
    op_t *o = arg;
    ASSERT_OK(weft_sleep(0.5));
    o->rc = weft_queue_put(o->q, P(o->value));
    return 0;
}

static int wait_for_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 1);
    op_t g = OP(q, 1, 0), p = OP(q, 2, 0), j = OP(q, 3, 0), pl = OP(q, 4, 77);
    weft_task_t *t;
    double t0 = weft_loop_time(L());
    /* get times out; the getter is cancelled and leaves the queue */
    t = wt_spawn(L(), getter, &g, NULL);
    ASSERT_EQ_INT(weft_wait_for(t, 1.0, NULL), WEFT_ETIMEDOUT);
    weft_unref(t);
    ASSERT_EQ_INT(g.rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(weft_loop_time(L()) - t0, 1.0);
    /* get succeeds in time */
    g.rc = 999;
    t = wt_spawn(L(), getter, &g, NULL);
    weft_unref(wt_spawn(L(), put_later, &pl, NULL));
    ASSERT_OK(weft_wait_for(t, 1.0, NULL));
    weft_unref(t);
    ASSERT_OK(g.rc);
    ASSERT_OK(pl.rc);
    ASSERT_EQ_INT(I(g.got), 77);
    ASSERT_EQ_DBL(weft_loop_time(L()) - t0, 1.5);
    /* put and join time out */
    ASSERT_OK(weft_queue_put(q, P(1)));
    t = wt_spawn(L(), putter, &p, NULL);
    ASSERT_EQ_INT(weft_wait_for(t, 1.0, NULL), WEFT_ETIMEDOUT);
    weft_unref(t);
    ASSERT_EQ_INT(p.rc, WEFT_ECANCELED);
    t = wt_spawn(L(), joiner, &j, NULL);
    ASSERT_EQ_INT(weft_wait_for(t, 1.0, NULL), WEFT_ETIMEDOUT);
    weft_unref(t);
    ASSERT_EQ_INT(j.rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(weft_loop_time(L()) - t0, 3.5);
    ASSERT_EQ_INT(weft_queue_qsize(q), 1);
    ASSERT_OK(weft_queue_free(q)); /* nobody waits any more */
    return 0;
}

TEST(wait_for_get_put_join) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, wait_for_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- priority and LIFO --------------------------------------------------------------------- */

TEST(priority_int_fifo_ties) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = new_queue(loop, WEFT_QUEUE_PRIORITY, 0);
    static const int64_t prio[] = {5, 1, 3, 1, 5, -2, 3, 1, 0, 5};
    static const int expect[] = {5, 8, 1, 3, 7, 2, 6, 0, 4, 9}; /* indices, in order out */
    void *v;
    for (int i = 0; i < 10; i++)
        ASSERT_OK(weft_queue_put_prio_nowait(q, prio[i], P(i)));
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(weft_queue_get_nowait(q, &v));
        ASSERT_EQ_INT(I(v), expect[i]);
    }
    ASSERT_EQ_INT(weft_queue_get_nowait(q, &v), WEFT_EQUEUEEMPTY);
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

/* A larger pseudo-random run against the expected order (stable by insertion). */
TEST(priority_int_random) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_queue_t *q = new_queue(loop, WEFT_QUEUE_PRIORITY, 0);
    enum { N = 5000 };
    static int64_t prio[N];
    uint32_t x = 12345;
    int64_t last_p = INT64_MIN;
    int last_i = -1;
    void *v;
    for (int i = 0; i < N; i++) {
        x = 1664525u * x + 1013904223u;
        prio[i] = (int64_t)(x >> 24) - 100;
        ASSERT_OK(weft_queue_put_prio_nowait(q, prio[i], P(i)));
        if (i % 3 == 0) { /* interleave gets */
            ASSERT_OK(weft_queue_put_prio_nowait(q, INT64_MIN, P(-1)));
            ASSERT_OK(weft_queue_get_nowait(q, &v));
            ASSERT_EQ_INT(I(v), -1);
        }
    }
    for (int i = 0; i < N; i++) {
        int idx;
        ASSERT_OK(weft_queue_get_nowait(q, &v));
        idx = I(v);
        ASSERT(prio[idx] > last_p || (prio[idx] == last_p && idx > last_i));
        last_p = prio[idx];
        last_i = idx;
    }
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

typedef struct job {
    int pri;
    int id;
} job_t;

static int job_cmp(const void *a, const void *b, void *arg) {
    const job_t *x = a, *y = b;
    (*(int *)arg)++;
    return (x->pri > y->pri) - (x->pri < y->pri);
}

TEST(priority_cmp_fifo_ties) {
    weft_loop_t *loop = wt_loop_virtual();
    int calls = 0;
    weft_queue_options_t o = {WEFT_QUEUE_PRIORITY, 8, job_cmp, &calls};
    weft_queue_t *q;
    static job_t jobs[] = {{3, 0}, {1, 1}, {2, 2}, {1, 3}, {3, 4}, {0, 5}, {2, 6}, {1, 7}};
    static const int expect[] = {5, 1, 3, 7, 2, 6, 0, 4};
    void *v;
    ASSERT_OK(weft_loop_queue_new(loop, &q, &o));
    for (int i = 0; i < 8; i++)
        ASSERT_OK(weft_queue_put_nowait(q, &jobs[i]));
    ASSERT_EQ_INT(weft_queue_put_nowait(q, &jobs[0]), WEFT_EQUEUEFULL);
    for (int i = 0; i < 8; i++) {
        ASSERT_OK(weft_queue_get_nowait(q, &v));
        ASSERT_EQ_INT(((job_t *)v)->id, expect[i]);
    }
    ASSERT_GT_INT(calls, 0);
    ASSERT_OK(weft_queue_free(q));
    WT_CLOSE_LOOP(loop);
}

/* A bounded priority queue with a putter waiting: the get admits it, and the order holds. */
static int priority_blocking_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_PRIORITY, 2);
    op_t p = OP(q, 1, 0);
    weft_task_t *t;
    void *v;
    ASSERT_OK(weft_queue_put_prio(q, 5, P(50)));
    ASSERT_OK(weft_queue_put_prio(q, 7, P(70)));
    t = wt_spawn(L(), putter, &p, NULL); /* put = priority 0 */
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 50);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 0); /* admitted by the first get, ahead of 70 */
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 70);
    await_all(&t, 1);
    ASSERT_OK(p.rc);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(priority_blocking_put) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, priority_blocking_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int lifo_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_LIFO, 3);
    op_t p = OP(q, 1, 9);
    weft_task_t *t;
    void *v;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_queue_put(q, P(i)));
    t = wt_spawn(L(), putter, &p, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 2);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 9); /* admitted on top */
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 1);
    ASSERT_OK(weft_queue_get(q, &v));
    ASSERT_EQ_INT(I(v), 0);
    await_all(&t, 1);
    ASSERT_OK(p.rc);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(lifo_order) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, lifo_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- freeing and loop close ---------------------------------------------------------------- */

static int free_busy_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 0);
    op_t g = OP(q, 1, 0);
    weft_task_t *t = wt_spawn(L(), getter, &g, NULL);
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_INT(weft_queue_free(q), WEFT_EBUSY);
    ASSERT_OK(weft_queue_put(q, P(1)));
    ASSERT_EQ_INT(weft_queue_free(q), WEFT_EBUSY); /* served, not yet resumed */
    await_all(&t, 1);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(free_busy_while_waiting) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, free_busy_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

struct close_ctx {
    weft_queue_t *qget, *qput, *qhand;
    op_t ops[6];
};

static int close_main(void *arg, void **res) {
    struct close_ctx *c = arg;
    ASSERT_OK(weft_queue_put(c->qput, P(1)));
    for (int i = 0; i < 6; i++) {
        op_t *o = &c->ops[i];
        weft_task_fn fn = i < 2 ? getter : i < 4 ? putter : i == 4 ? joiner : getter;
        weft_unref(wt_spawn(L(), fn, o, NULL));
    }
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_queue_put(c->qhand, P(33))); /* handed to a getter that never resumes */
    weft_loop_stop(L());
    return 0;
}

TEST(loop_close_with_blocked_tasks) {
    weft_loop_t *loop = wt_loop_virtual();
    struct close_ctx c;
    weft_task_t *m;
    char *err;
    void *v;
    c.qget = new_queue(loop, WEFT_QUEUE_FIFO, 0);
    c.qput = new_queue(loop, WEFT_QUEUE_FIFO, 1);
    c.qhand = new_queue(loop, WEFT_QUEUE_FIFO, 0);
    c.ops[0] = (op_t)OP(c.qget, 1, 0);
    c.ops[1] = (op_t)OP(c.qget, 2, 0);
    c.ops[2] = (op_t)OP(c.qput, 3, 2);
    c.ops[3] = (op_t)OP(c.qput, 4, 3);
    c.ops[4] = (op_t)OP(c.qput, 5, 0);
    c.ops[5] = (op_t)OP(c.qhand, 6, 0);
    m = wt_spawn(loop, close_main, &c, NULL);
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(weft_future_done(m), 1);
    weft_unref(m);
    ASSERT_EQ_INT(weft_queue_free(c.qget), WEFT_EBUSY);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "Task was destroyed but it is pending");
    free(err);
    ASSERT_EQ_INT(wt_log_len(), 0); /* none of them returned */
    /* The item handed to the abandoned getter is back in its queue. */
    ASSERT_EQ_INT(weft_queue_qsize(c.qhand), 1);
    ASSERT_OK(weft_queue_get_nowait(c.qhand, &v));
    ASSERT_EQ_INT(I(v), 33);
    ASSERT_EQ_INT(weft_queue_qsize(c.qput), 1);
    ASSERT_OK(weft_queue_free(c.qget));
    ASSERT_OK(weft_queue_free(c.qput));
    ASSERT_OK(weft_queue_free(c.qhand));
}

/* ---- a producer and consumers, end to end -------------------------------------------------- */

static int produce(void *arg, void **res) {
    weft_queue_t *q = arg;
    for (int i = 1; i <= 1000; i++) {
        ASSERT_OK(weft_queue_put(q, P(i)));
        if (i % 7 == 0)
            ASSERT_OK(weft_sleep(0.001));
    }
    ASSERT_OK(weft_queue_join(q));
    weft_queue_shutdown(q, 0);
    return 0;
}

static int consume(void *arg, void **res) {
    weft_queue_t *q = arg;
    intptr_t sum = 0;
    void *v;
    int rc;
    while ((rc = weft_queue_get(q, &v)) == 0) {
        sum += I(v);
        if (I(v) % 5 == 0)
            ASSERT_OK(weft_sleep(0.002));
        ASSERT_OK(weft_queue_task_done(q));
    }
    ASSERT_EQ_INT(rc, WEFT_EQUEUESHUTDOWN);
    *res = P(sum);
    return 0;
}

static int pc_main(void *arg, void **res) {
    weft_queue_t *q = new_queue(L(), WEFT_QUEUE_FIFO, 4);
    weft_task_t *t[4];
    intptr_t total = 0;
    t[0] = wt_spawn(L(), produce, q, NULL);
    for (int i = 1; i < 4; i++)
        t[i] = wt_spawn(L(), consume, q, NULL);
    for (int i = 0; i < 4; i++) {
        void *v = NULL;
        ASSERT_OK(weft_await(t[i], &v));
        total += (intptr_t)v;
        weft_unref(t[i]);
    }
    ASSERT_EQ_INT(total, 1000 * 1001 / 2);
    ASSERT_OK(weft_queue_free(q));
    return 0;
}

TEST(producer_consumers_join_shutdown) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, pc_main, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

const wt_test_t wt_tests[] = {
    T(queue_new_free),
    T(nowait_full_empty),
    T(fifo_unbounded_growth),
    T(calls_outside_tasks),
    T(other_loop_einval),
    T(room_never_suspends),
    T(get_waits_then_handoff),
    T(put_waits_then_admitted),
    T(fairness_getters),
    T(fairness_putters),
    T(cancel_waiting_get_put),
    T(getter_cancelled_after_handoff_next_getter),
    T(getter_cancelled_after_handoff_front),
    T(getter_cancelled_before_put),
    T(putter_cancelled_before_admit),
    T(putter_cancelled_after_admit),
    T(cancelled_before_waiting),
    T(cancel_mix_no_item_lost),
    T(join_and_task_done),
    T(shutdown_graceful_with_waiters),
    T(shutdown_immediate_with_waiters),
    T(shutdown_immediate_handed_item),
    T(timeout_scope_get_put_join),
    T(wait_for_get_put_join),
    T(priority_int_fifo_ties),
    T(priority_int_random),
    T(priority_cmp_fifo_ties),
    T(priority_blocking_put),
    T(lifo_order),
    T(free_busy_while_waiting),
    T(loop_close_with_blocked_tasks),
    T(producer_consumers_join_shutdown),
    WT_END,
};
