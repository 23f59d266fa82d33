/* Cancellation: at each kind of suspension, before the first run and after the end, sticky
 * requests, uncancel and the count, shields (future and scope). */
#include "wt.h"


static void cancel_cb(void *arg) { ASSERT_EQ_INT(weft_cancel(arg, NULL), 1); }
static void cancel_msg_cb(void *arg) { ASSERT_EQ_INT(weft_cancel(arg, "go away"), 1); }

/* Cancels `t` at loop time `when`. */
static void cancel_at(weft_loop_t *loop, weft_task_t *t, double when) {
    ASSERT_OK(weft_call_at(loop, when, cancel_cb, t, NULL));
}

static int ran;
static int mark_ran(void *arg, void **res) {
    ran = 1;
    return 0;
}

/* ---- before, after ----------------------------------------------------------------------- */

TEST(cancel_before_first_run) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, mark_ran, NULL, NULL);
    ASSERT_EQ_INT(weft_cancel(t, "early"), 1);
    ASSERT_EQ_INT(weft_future_done(t), 0); /* a task is asked, not cancelled at once */
    ASSERT_EQ_INT(weft_task_cancelling(t), 1);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(ran, 0);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    ASSERT_EQ_INT(weft_future_result(t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_STR(weft_future_error_message(t), "early");
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

TEST(cancel_after_done) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, mark_ran, NULL, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_EQ_INT(weft_cancel(t, NULL), 0);
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    ASSERT_EQ_INT(weft_task_cancelling(t), 0);
    ASSERT_OK(weft_future_result(t, NULL));
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- at a sleep ------------------------------------------------------------------------- */

static int sleep_long(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    wt_log(rc);
    wt_log((int)(wt_loop_now() * 1000));
    return rc;
}

TEST(cancel_sleep) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, sleep_long, NULL, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_msg_cb, t, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED, 1000);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    ASSERT_EQ_STR(weft_future_error_message(t), "go away");
    ASSERT_EQ_DBL(weft_loop_time(loop), 1.0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* The request is sticky: every later suspension returns -ECANCELED too, at once. */
static int sticky(void *arg, void **res) {
    weft_future_t *f;
    wt_log(weft_sleep(10.0));
    wt_log(weft_sleep(10.0));
    wt_log(weft_sleep(0));
    ASSERT_OK(weft_create_future(&f));
    wt_log(weft_await(f, NULL));
    weft_unref(f);
    wt_log((int)(wt_loop_now() * 1000));
    wt_log(weft_task_cancelling(weft_current_task()));
    *res = (void *)1;
    return 0; /* swallowed: the task ends with its value */
}

TEST(cancel_sticky) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, sticky, NULL, NULL);
    void *v = NULL;
    cancel_at(loop, t, 1.0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED, 1000, 1);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* A task cancelling itself: the next suspension returns -ECANCELED. */
static int self_cancel(void *arg, void **res) {
    ASSERT_EQ_INT(weft_cancel(weft_current_task(), NULL), 1);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 1);
    return weft_sleep(1.0);
}

TEST(cancel_self) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, self_cancel, NULL, NULL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    ASSERT_EQ_DBL(weft_loop_time(loop), 0.0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- uncancel and the count ----------------------------------------------------------------- */

static int counts(void *arg, void **res) {
    weft_task_t *me = weft_current_task();
    ASSERT_EQ_INT(weft_sleep(10.0), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(me), 2);
    ASSERT_EQ_INT(weft_task_uncancel(me), 1);
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED); /* still one request pending */
    ASSERT_EQ_INT(weft_task_uncancel(me), 0);
    ASSERT_OK(weft_sleep(1.0)); /* acknowledged: suspensions work again */
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    ASSERT_EQ_INT(weft_task_uncancel(me), 0); /* never below 0 */
    ASSERT_EQ_INT(weft_task_cancelling(me), 0);
    /* A new request after that is seen again. */
    ASSERT_EQ_INT(weft_cancel(me, NULL), 1);
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_uncancel(me), 0);
    *res = (void *)2;
    return 0;
}

static void cancel_twice_cb(void *arg) {
    ASSERT_EQ_INT(weft_cancel(arg, NULL), 1);
    ASSERT_EQ_INT(weft_cancel(arg, NULL), 1);
    ASSERT_EQ_INT(weft_task_cancelling(arg), 2);
}

TEST(uncancel_counts) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, counts, NULL, NULL);
    void *v = NULL;
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_twice_cb, t, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)2);
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

TEST(cancelling_of_future) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_EQ_INT(weft_task_cancelling(f), 0);
    ASSERT_EQ_INT(weft_cancel(f, NULL), 1);
    ASSERT_EQ_INT(weft_task_cancelling(f), 0);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* ---- how a cancelled body ends ------------------------------------------------------------- */

static int swallow(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    *res = (void *)0x5a;
    return 0;
}

TEST(cancel_swallowed_returns_value) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, swallow, NULL, NULL);
    void *v = NULL;
    cancel_at(loop, t, 1.0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)0x5a);
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int return_ecanceled(void *arg, void **res) {
    *res = (void *)1;
    return WEFT_ECANCELED;
}

/* Returning -ECANCELED without any request still ends the task cancelled (raise
 * CancelledError). */
TEST(body_returns_ecanceled) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, return_ecanceled, NULL, NULL);
    void *v = NULL;
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, &v), WEFT_ECANCELED);
    ASSERT_NULL(v);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    ASSERT_EQ_INT(weft_future_error(t), WEFT_ECANCELED);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int cancelled_then_fails(void *arg, void **res) {
    weft_sleep(10.0);
    return weft_fail(WEFT_EIO, "clean-up failed");
}

/* A cancelled task that returns another error ends with that error, not cancelled. */
TEST(cancelled_body_returns_error) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, cancelled_then_fails, NULL, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EIO);
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    ASSERT_EQ_STR(weft_future_error_message(t), "clean-up failed");
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- while awaiting ------------------------------------------------------------------------ */

static int await_arg(void *arg, void **res) {
    int rc = weft_await(arg, NULL);
    wt_log(rc);
    return rc;
}

/* asyncio: cancelling a task that awaits a future cancels the future too. */
TEST(cancel_awaiting_future) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    t = wt_spawn(loop, await_arg, f, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

static int child_with_cleanup(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    wt_log(100 + (rc == WEFT_ECANCELED));
    weft_shield_begin();
    ASSERT_OK(weft_sleep(2.0)); /* clean-up takes 2 s */
    weft_shield_end();
    wt_log(200);
    return rc;
}

static int await_child_timed(void *arg, void **res) {
    int rc = weft_await(arg, NULL);
    wt_log(rc);
    wt_log((int)(wt_loop_now() * 1000));
    return rc;
}

/* Cancelling the awaiter cancels the awaited task, and the awaiter resumes only after the
 * child's clean-up has finished. */
TEST(cancel_awaiting_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *child = wt_spawn(loop, child_with_cleanup, NULL, "child");
    weft_task_t *t = wt_spawn(loop, await_child_timed, child, "parent");
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(101, 200, WEFT_ECANCELED, 3000);
    ASSERT_EQ_INT(weft_future_cancelled(child), 1);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    weft_unref(child);
    WT_CLOSE_LOOP(loop);
}

/* If the awaited task swallows the cancellation and returns a value, the awaiter still
 * returns -ECANCELED (it was cancelled itself). */
TEST(cancel_awaiting_task_that_swallows) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *child = wt_spawn(loop, swallow, NULL, NULL);
    weft_task_t *t = wt_spawn(loop, await_arg, child, NULL);
    void *v = NULL;
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_OK(weft_future_result(child, &v));
    ASSERT_EQ_PTR(v, (void *)0x5a);
    weft_unref(t);
    weft_unref(child);
    WT_CLOSE_LOOP(loop);
}

/* Cancelling the awaited task (not the awaiter): the awaiter gets -ECANCELED as the awaited
 * outcome, and is not itself cancelled. */
static int await_then_continue(void *arg, void **res) {
    ASSERT_EQ_INT(weft_await(arg, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 0);
    ASSERT_OK(weft_sleep(1.0)); /* not cancelled */
    *res = (void *)3;
    return 0;
}

TEST(cancel_awaited_task_only) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *child = wt_spawn(loop, sleep_long, NULL, NULL);
    weft_task_t *t = wt_spawn(loop, await_then_continue, child, NULL);
    void *v = NULL;
    cancel_at(loop, child, 1.0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)3);
    ASSERT_EQ_DBL(weft_loop_time(loop), 2.0);
    weft_unref(t);
    weft_unref(child);
    WT_CLOSE_LOOP(loop);
}

static int gather_two(void *arg, void **res) {
    weft_task_t **kids = arg;
    int rc = weft_gather(kids, 2, NULL);
    wt_log(rc);
    return rc;
}

TEST(cancel_in_gather) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *kids[2] = {wt_spawn(loop, sleep_long, NULL, NULL),
                            wt_spawn(loop, child_with_cleanup, NULL, NULL)};
    weft_task_t *t = wt_spawn(loop, gather_two, kids, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_loop_run_until_complete(loop, kids[i], NULL), WEFT_ECANCELED);
        ASSERT_EQ_INT(weft_future_cancelled(kids[i]), 1);
        weft_unref(kids[i]);
    }
    /* asyncio's gather (without return_exceptions) completes with the first child that ends
     * cancelled: the caller resumes at 1 s while the other child's 2 s clean-up goes on. */
    WT_ASSERT_LOG(WEFT_ECANCELED, 1000, 101, WEFT_ECANCELED, 200);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int wait_for_long(void *arg, void **res) {
    int rc = weft_wait_for(arg, 5.0, NULL);
    wt_log(rc);
    return rc;
}

/* Cancelled while in wait_for (before its timeout): -ECANCELED, not -ETIMEDOUT; the inner
 * task is cancelled. */
TEST(cancel_in_wait_for) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *inner = wt_spawn(loop, sleep_long, NULL, NULL);
    weft_task_t *t = wt_spawn(loop, wait_for_long, inner, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(wt_log_at(wt_log_len() - 1), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_done(inner), 1);
    ASSERT_EQ_INT(weft_future_cancelled(inner), 1);
    ASSERT_EQ_DBL(weft_loop_time(loop), 1.0);
    weft_unref(t);
    weft_unref(inner);
    WT_CLOSE_LOOP(loop);
}

static int wait_both(void *arg, void **res) {
    int rc = weft_wait(arg, 2, WEFT_ALL_COMPLETED, WEFT_NEVER);
    wt_log(rc);
    return rc;
}

/* asyncio.wait does not cancel the futures it waits for, even when the caller is cancelled. */
TEST(cancel_in_wait) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *kids[2] = {wt_spawn(loop, sleep_long, NULL, NULL),
                            wt_spawn(loop, sleep_long, NULL, NULL)};
    weft_task_t *t = wt_spawn(loop, wait_both, kids, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_DBL(weft_loop_time(loop), 1.0);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_future_done(kids[i]), 0);
        ASSERT_EQ_INT(weft_task_cancelling(kids[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(weft_loop_run_until_complete(loop, kids[i], NULL));
        weft_unref(kids[i]);
    }
    ASSERT_EQ_DBL(weft_loop_time(loop), 10.0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- shield (future) -------------------------------------------------------------------- */

static int await_shielded(void *arg, void **res) {
    weft_future_t *outer;
    ASSERT_OK(weft_shield(arg, &outer));
    int rc = weft_await(outer, NULL);
    wt_log(rc);
    wt_log((int)(wt_loop_now() * 1000));
    weft_unref(outer);
    return rc;
}

TEST(shield_future) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *inner = wt_spawn(loop, sleep_long, NULL, "inner");
    weft_task_t *t = wt_spawn(loop, await_shielded, inner, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    /* The awaiter returns at once; the inner task goes on untouched. */
    WT_ASSERT_LOG(WEFT_ECANCELED, 1000);
    ASSERT_EQ_INT(weft_future_done(inner), 0);
    ASSERT_EQ_INT(weft_task_cancelling(inner), 0);
    ASSERT_OK(weft_loop_run_until_complete(loop, inner, NULL));
    ASSERT_EQ_DBL(weft_loop_time(loop), 10.0);
    weft_unref(t);
    weft_unref(inner);
    WT_CLOSE_LOOP(loop);
}

/* The outer future takes the inner's outcome: value, error and message. */
static void fail_cb(void *arg) { ASSERT_OK(weft_future_set_error(arg, WEFT_EPIPE, "pipe gone")); }
static void ok_cb(void *arg) { ASSERT_OK(weft_future_set_result(arg, (void *)8)); }

TEST(shield_passes_outcome) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *in1, *in2, *out1, *out2;
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &in1));
    ASSERT_OK(weft_loop_create_future(loop, &in2));
    ASSERT_OK(weft_shield(in1, &out1));
    ASSERT_OK(weft_shield(in2, &out2));
    ASSERT_OK(weft_call_later(loop, 1.0, ok_cb, in1, NULL));
    ASSERT_OK(weft_call_later(loop, 2.0, fail_cb, in2, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, out1, &v));
    ASSERT_EQ_PTR(v, (void *)8);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, out2, NULL), WEFT_EPIPE);
    ASSERT_EQ_STR(weft_error_message(), "pipe gone");
    ASSERT_EQ_INT(weft_future_error(in2), WEFT_EPIPE);
    weft_unref(out1);
    weft_unref(out2);
    weft_unref(in1);
    weft_unref(in2);
    WT_CLOSE_LOOP(loop);
}

/* Cancelling the outer future directly leaves the inner one alone. */
TEST(shield_cancel_outer) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *in, *out;
    ASSERT_OK(weft_loop_create_future(loop, &in));
    ASSERT_OK(weft_shield(in, &out));
    ASSERT_EQ_INT(weft_cancel(out, NULL), 1);
    ASSERT_EQ_INT(weft_future_cancelled(out), 1);
    ASSERT_EQ_INT(weft_future_done(in), 0);
    ASSERT_OK(weft_future_set_result(in, NULL));
    weft_unref(out);
    weft_unref(in);
    WT_CLOSE_LOOP(loop);
}

/* Shielding something already done: the outer has its outcome. */
TEST(shield_done_inner) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *in, *out;
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &in));
    ASSERT_OK(weft_future_set_result(in, (void *)4));
    ASSERT_OK(weft_shield(in, &out));
    ASSERT_OK(weft_loop_run_until_complete(loop, out, &v));
    ASSERT_EQ_PTR(v, (void *)4);
    weft_unref(out);
    weft_unref(in);
    WT_CLOSE_LOOP(loop);
}

/* ---- shield scope ----------------------------------------------------------------------- */

static int scope_cleanup(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    wt_log(rc);
    weft_shield_begin();
    wt_log(weft_sleep(2.0)); /* the clean-up can sleep */
    wt_log(weft_sleep(0));
    wt_log((int)(wt_loop_now() * 1000));
    weft_shield_end();
    wt_log(weft_sleep(1.0)); /* still cancelled after the scope */
    wt_log((int)(wt_loop_now() * 1000));
    return rc;
}

TEST(shield_scope_cleanup) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, scope_cleanup, NULL, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED, 0, 0, 3000, WEFT_ECANCELED, 3000);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* A cancellation that arrives inside the scope is held back until it ends. */
static int cancel_during_scope(void *arg, void **res) {
    weft_shield_begin();
    wt_log(weft_sleep(5.0));
    wt_log(weft_task_cancelling(weft_current_task()));
    weft_shield_end();
    wt_log(weft_sleep(5.0));
    wt_log((int)(wt_loop_now() * 1000));
    return 0;
}

TEST(shield_scope_cancel_arrives_inside) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, cancel_during_scope, NULL, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    WT_ASSERT_LOG(0, 1, WEFT_ECANCELED, 5000);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int nested_scopes(void *arg, void **res) {
    weft_shield_begin();
    weft_shield_begin();
    wt_log(weft_sleep(2.0));
    weft_shield_end();
    wt_log(weft_sleep(1.0)); /* still inside the outer scope */
    weft_shield_end();
    wt_log(weft_sleep(1.0));
    wt_log((int)(wt_loop_now() * 1000));
    return 0;
}

TEST(shield_scope_nested) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, nested_scopes, NULL, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    WT_ASSERT_LOG(0, 0, WEFT_ECANCELED, 3000);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* Awaiting a task from inside a shield scope: the awaiter's pending cancellation is not
 * passed on to it. */
static int sleeper2(void *arg, void **res) {
    ASSERT_OK(weft_sleep(2.0));
    *res = (void *)9;
    return 0;
}

static int shielded_await2(void *arg, void **res) {
    weft_task_t *child;
    void *v = NULL;
    ASSERT_EQ_INT(weft_sleep(10.0), WEFT_ECANCELED);
    weft_shield_begin();
    child = wt_spawn(NULL, sleeper2, NULL, NULL);
    ASSERT_OK(weft_await(child, &v));
    ASSERT_EQ_PTR(v, (void *)9);
    ASSERT_EQ_INT(weft_task_cancelling(child), 0);
    weft_shield_end();
    weft_unref(child);
    return WEFT_ECANCELED;
}

TEST(shield_scope_await) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, shielded_await2, NULL, NULL);
    cancel_at(loop, t, 1.0);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_DBL(weft_loop_time(loop), 3.0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* The awaiter's cancel message is passed on with the cancellation. */
TEST(cancel_message_passed_on) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    t = wt_spawn(loop, await_arg, f, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_msg_cb, t, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_STR(weft_future_error_message(f), "go away");
    ASSERT_EQ_STR(weft_future_error_message(t), "go away");
    weft_unref(t);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* A future the task awaits is cancelled by someone else: the await returns -ECANCELED, but
 * the task itself is not cancelled and goes on. */
static int await_cancelled_future(void *arg, void **res) {
    ASSERT_EQ_INT(weft_await(arg, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 0);
    ASSERT_OK(weft_sleep(1.0));
    *res = (void *)4;
    return 0;
}

static void cancel_future_cb(void *arg) { ASSERT_EQ_INT(weft_cancel(arg, NULL), 1); }

TEST(awaited_future_cancelled_by_other) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t;
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    t = wt_spawn(loop, await_cancelled_future, f, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_future_cb, f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)4);
    ASSERT_EQ_DBL(weft_loop_time(loop), 2.0);
    weft_unref(t);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* A cancelled task released without anyone looking: cancellation is not an error to report. */
TEST(cancelled_task_no_report) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, sleep_long, NULL, NULL);
    char *err;
    cancel_at(loop, t, 1.0);
    ASSERT_OK(weft_call_later(loop, 2.0, wt_stop_cb, loop, NULL));
    wt_capture_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
    WT_CLOSE_LOOP(loop);
}

/* The inner future of a shield fails after the outer was cancelled: asyncio marks the inner
 * error retrieved (nobody can see it through the outer any more), so no report. */
static void fail_inner_cb(void *arg) { ASSERT_OK(weft_future_set_error(arg, WEFT_EIO, "late")); }

TEST(shield_inner_error_after_outer_cancelled) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *in, *out;
    char *err;
    ASSERT_OK(weft_loop_create_future(loop, &in));
    ASSERT_OK(weft_shield(in, &out));
    ASSERT_EQ_INT(weft_cancel(out, NULL), 1);
    ASSERT_OK(weft_call_later(loop, 1.0, fail_inner_cb, in, NULL));
    ASSERT_OK(weft_call_later(loop, 2.0, wt_stop_cb, loop, NULL));
    wt_capture_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    weft_unref(out);
    weft_unref(in);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
    WT_CLOSE_LOOP(loop);
}

/* weft_loop_stop() from a task: run_forever returns with the task suspended; it resumes on the
 * next run. */
static int stopper(void *arg, void **res) {
    wt_log(1);
    weft_loop_stop(weft_get_running_loop());
    ASSERT_OK(weft_sleep(0));
    wt_log(2);
    ASSERT_OK(weft_sleep(1.0));
    wt_log(3);
    return 0;
}

TEST(stop_from_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, stopper, NULL, NULL);
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    WT_ASSERT_LOG(1, 2, 3);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

const wt_test_t wt_tests[] = {
    T(cancel_before_first_run),
    T(cancel_after_done),
    T(cancel_sleep),
    T(cancel_sticky),
    T(cancel_self),
    T(uncancel_counts),
    T(cancelling_of_future),
    T(cancel_swallowed_returns_value),
    T(body_returns_ecanceled),
    T(cancelled_body_returns_error),
    T(cancel_awaiting_future),
    T(cancel_awaiting_task),
    T(cancel_awaiting_task_that_swallows),
    T(cancel_awaited_task_only),
    T(cancel_in_gather),
    T(cancel_in_wait_for),
    T(cancel_in_wait),
    T(shield_future),
    T(shield_passes_outcome),
    T(shield_cancel_outer),
    T(shield_done_inner),
    T(shield_scope_cleanup),
    T(shield_scope_cancel_arrives_inside),
    T(shield_scope_nested),
    T(shield_scope_await),
    T(cancel_message_passed_on),
    T(awaited_future_cancelled_by_other),
    T(cancelled_task_no_report),
    T(shield_inner_error_after_outer_cancelled),
    T(stop_from_task),
    WT_END,
};
