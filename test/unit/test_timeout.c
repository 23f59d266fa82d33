/* Timeout scopes (asyncio.timeout / timeout_at) and wait_for, on the virtual clock. */
#include "wt.h"

static weft_loop_t *L(void) { return weft_get_running_loop(); }
static weft_task_t *me(void) { return weft_current_task(); }

/* Runs body as the only task of a fresh virtual-clock loop, which must end clean. */
static void assert_no_timers(void) {
    weft_loop_stats_t st;
    weft_loop_stats(L(), &st);
    ASSERT_EQ_INT(st.timers, 0);
}

/* ---- scopes ------------------------------------------------------------------------------- */

static int expires(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    ASSERT_EQ_DBL(weft_timeout_when(&to), 1.0);
    ASSERT_EQ_INT(weft_timeout_expired(&to), 0);
    rc = weft_sleep(5.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_timeout_expired(&to), 1);
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED); /* sticky until the scope ends */
    rc = weft_timeout_end(&to, rc);
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    /* The scope's cancellation was taken back: the task is not cancelled any more. */
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    assert_no_timers();
    *res = (void *)1;
    return 0;
}

TEST(timeout_expires) { wt_run_body(expires, NULL); }

static int no_expiry(void *arg, void **res) {
    weft_timeout_t to;
    ASSERT_OK(weft_timeout_begin(&to, 5.0));
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, 0), 0);
    ASSERT_EQ_INT(weft_timeout_expired(&to), 0);
    assert_no_timers(); /* the deadline's timer is gone */
    /* rc passes through unchanged, whatever it is. */
    ASSERT_OK(weft_timeout_begin(&to, 5.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, WEFT_EIO), WEFT_EIO);
    ASSERT_OK(weft_timeout_begin(&to, 5.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, 17), 17);
    ASSERT_OK(weft_timeout_begin(&to, 5.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, WEFT_ECANCELED), WEFT_ECANCELED);
    ASSERT_OK(weft_sleep(10.0)); /* no stray timeout fires later */
    ASSERT_EQ_DBL(wt_loop_now(), 11.0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_no_expiry) { wt_run_body(no_expiry, NULL); }

static int begin_at(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_OK(weft_timeout_begin_at(&to, 3.5));
    ASSERT_EQ_DBL(weft_timeout_when(&to), 3.5);
    rc = weft_timeout_end(&to, weft_sleep(10.0));
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 3.5);
    *res = (void *)1;
    return 0;
}

TEST(timeout_begin_at) { wt_run_body(begin_at, NULL); }

/* A deadline already past: the next suspension is cancelled. */
static int past_deadline(void *arg, void **res) {
    weft_timeout_t to;
    ASSERT_OK(weft_sleep(2.0));
    ASSERT_OK(weft_timeout_begin(&to, -1.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(1.0)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    ASSERT_OK(weft_timeout_begin(&to, 0.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(1.0)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_past_deadline) { wt_run_body(past_deadline, NULL); }

static int inner_expires(void *arg, void **res) {
    weft_timeout_t outer, inner;
    int rc;
    ASSERT_OK(weft_timeout_begin(&outer, 5.0));
    ASSERT_OK(weft_timeout_begin(&inner, 1.0));
    rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    rc = weft_timeout_end(&inner, rc);
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_timeout_expired(&outer), 0);
    /* Work goes on under the outer scope. */
    ASSERT_OK(weft_sleep(2.0));
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    ASSERT_EQ_INT(weft_timeout_end(&outer, 0), 0);
    ASSERT_OK(weft_sleep(5.0)); /* the outer deadline (5) passed: nothing fires */
    ASSERT_EQ_DBL(wt_loop_now(), 8.0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_nested_inner_expires) { wt_run_body(inner_expires, NULL); }

/* The outer deadline passes while the inner scope is open: the inner scope must not report it
 * as its own timeout. */
static int outer_expires(void *arg, void **res) {
    weft_timeout_t outer, inner;
    int rc;
    ASSERT_OK(weft_timeout_begin(&outer, 1.0));
    ASSERT_OK(weft_timeout_begin(&inner, 5.0));
    rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_timeout_expired(&inner), 0);
    ASSERT_EQ_INT(weft_timeout_expired(&outer), 1);
    rc = weft_timeout_end(&inner, rc);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED); /* still cancelled between the ends */
    rc = weft_timeout_end(&outer, rc);
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    *res = (void *)1;
    return 0;
}

TEST(timeout_nested_outer_expires) { wt_run_body(outer_expires, NULL); }

/* Both expire (inner first): each reports its own. */
static int both_expire(void *arg, void **res) {
    weft_timeout_t outer, inner;
    int rc;
    ASSERT_OK(weft_timeout_begin(&outer, 2.0));
    ASSERT_OK(weft_timeout_begin(&inner, 1.0));
    rc = weft_timeout_end(&inner, weft_sleep(10.0));
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    ASSERT_EQ_INT(weft_timeout_end(&outer, rc), WEFT_ETIMEDOUT);
    *res = (void *)1;
    return 0;
}

TEST(timeout_nested_both_expire) { wt_run_body(both_expire, NULL); }

/* The outer expires first, then the inner's deadline passes while cancelled (sticky): the
 * inner scope still must not claim the outer's timeout. */
static int outer_first_then_inner(void *arg, void **res) {
    weft_timeout_t outer, inner;
    int rc;
    ASSERT_OK(weft_timeout_begin(&outer, 1.0));
    ASSERT_OK(weft_timeout_begin(&inner, 2.0));
    rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(2.0)); /* clean-up past the inner deadline */
    weft_shield_end();
    rc = weft_timeout_end(&inner, rc);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_timeout_end(&outer, rc), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_nested_outer_first) { wt_run_body(outer_first_then_inner, NULL); }

static int reschedule(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    ASSERT_OK(weft_timeout_reschedule(&to, 3.0));
    ASSERT_EQ_DBL(weft_timeout_when(&to), 3.0);
    ASSERT_OK(weft_sleep(2.0)); /* past the first deadline: fine */
    rc = weft_sleep(5.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    ASSERT_EQ_INT(weft_timeout_reschedule(&to, 10.0), WEFT_EALREADY);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    /* Earlier. */
    ASSERT_OK(weft_timeout_begin(&to, 10.0));
    ASSERT_OK(weft_timeout_reschedule(&to, wt_loop_now() + 0.5));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(5.0)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 3.5);
    *res = (void *)1;
    return 0;
}

TEST(timeout_reschedule) { wt_run_body(reschedule, NULL); }

static int never(void *arg, void **res) {
    weft_timeout_t to;
    ASSERT_OK(weft_timeout_begin(&to, WEFT_NEVER));
    ASSERT(isinf(weft_timeout_when(&to)));
    assert_no_timers();
    ASSERT_OK(weft_sleep(1000.0));
    ASSERT_OK(weft_timeout_reschedule(&to, wt_loop_now() + 1.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(5.0)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 1001.0);
    /* And back to never. */
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    ASSERT_OK(weft_timeout_reschedule(&to, WEFT_NEVER));
    ASSERT(isinf(weft_timeout_when(&to)));
    ASSERT_OK(weft_timeout_end(&to, weft_sleep(5.0)));
    ASSERT_OK(weft_timeout_begin_at(&to, WEFT_NEVER));
    ASSERT_OK(weft_timeout_end(&to, 0));
    *res = (void *)1;
    return 0;
}

TEST(timeout_never) { wt_run_body(never, NULL); }

TEST(timeout_outside_task) {
    weft_timeout_t to;
    ASSERT_EQ_INT(weft_timeout_begin(&to, 1.0), WEFT_EPERM);
    ASSERT_EQ_INT(weft_timeout_begin_at(&to, 1.0), WEFT_EPERM);
}

/* An outside cancel while a scope is open (and does not expire) stays a cancellation. */
static void cancel_cb(void *arg) { ASSERT_EQ_INT(weft_cancel(arg, NULL), 1); }

static int external_cancel(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_call_later(L(), 1.0, cancel_cb, me(), NULL));
    ASSERT_OK(weft_timeout_begin(&to, 5.0));
    rc = weft_sleep(10.0);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    rc = weft_timeout_end(&to, rc);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 1);
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_uncancel(me()), 0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_external_cancel) { wt_run_body(external_cancel, NULL); }

/* Expired and cancelled from outside as well: the outside cancellation wins (asyncio's
 * uncancel() > the count at entry). */
static int expired_and_cancelled(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_cancel(me(), NULL), 1); /* while the expiry is still pending */
    rc = weft_timeout_end(&to, rc);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 1);
    ASSERT_EQ_INT(weft_task_uncancel(me()), 0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_expired_and_cancelled) { wt_run_body(expired_and_cancelled, NULL); }

/* Work that swallows the expiry and returns 0: end returns 0, and the cancellation is still
 * taken back. */
static int swallowing_work(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    rc = weft_sleep(10.0) == WEFT_ECANCELED ? 0 : -1;
    rc = weft_timeout_end(&to, rc);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(weft_timeout_expired(&to), 1);
    ASSERT_OK(weft_sleep(1.0));
    *res = (void *)1;
    return 0;
}

TEST(timeout_work_swallows) { wt_run_body(swallowing_work, NULL); }

/* A timeout scope opened inside a shield scope still interrupts, while the task's pending
 * cancellation stays held back; it reports -ETIMEDOUT as the cancellation was there before
 * the scope began. One arriving during the scope is still pending at its end: -ECANCELED. */
static int timeout_in_shield(void *arg, void **res) {
    weft_timeout_t to;
    ASSERT_EQ_INT(weft_cancel(me(), NULL), 1);
    weft_shield_begin();
    ASSERT_OK(weft_timeout_begin(&to, 2.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(10.0)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 1);
    weft_shield_end();
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_uncancel(me()), 0);

    weft_shield_begin();
    ASSERT_OK(weft_timeout_begin(&to, 2.0));
    ASSERT_OK(weft_call_later(L(), 0.5, cancel_cb, me(), NULL));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(10.0)), WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 4.0); /* the cancel at 2.5 was held back by the shield */
    weft_shield_end();
    ASSERT_EQ_INT(weft_sleep(1.0), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_uncancel(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    *res = (void *)1;
    return 0;
}

TEST(timeout_inside_shield) { wt_run_body(timeout_in_shield, NULL); }

/* The scope interrupts an await, which passes the cancellation on. */
static int timeout_await_future(void *arg, void **res) {
    weft_timeout_t to;
    weft_future_t *f;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_timeout_begin(&to, 1.5));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_await(f, NULL)), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 1.5);
    weft_unref(f);
    *res = (void *)1;
    return 0;
}

TEST(timeout_await_future) { wt_run_body(timeout_await_future, NULL); }

/* ---- wait_for ----------------------------------------------------------------------------- */

static int sleep_arg_ms(void *arg, void **res) {
    int rc = weft_sleep((double)(intptr_t)arg / 1000.0);
    wt_log(rc);
    *res = arg;
    return rc;
}

static int wait_for_times_out(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, sleep_arg_ms, (void *)10000, NULL);
    void *v = (void *)5;
    ASSERT_EQ_INT(weft_wait_for(t, 1.0, &v), WEFT_ETIMEDOUT);
    ASSERT_EQ_PTR(v, (void *)5);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1); /* cancelled and waited for */
    WT_ASSERT_LOG(WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_timeout) { wt_run_body(wait_for_times_out, NULL); }

static int wait_for_in_time(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, sleep_arg_ms, (void *)1000, NULL);
    void *v = NULL;
    ASSERT_OK(weft_wait_for(t, 5.0, &v));
    ASSERT_EQ_PTR(v, (void *)1000);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_OK(weft_sleep(10.0)); /* the timeout left nothing behind */
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_in_time) { wt_run_body(wait_for_in_time, NULL); }

/* The task cancelled by wait_for has a clean-up of 2 s: wait_for waits for it. */
static int slow_cleanup(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(2.0));
    weft_shield_end();
    wt_log(1);
    return rc;
}

static int wait_for_cleanup(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, slow_cleanup, NULL, NULL);
    ASSERT_EQ_INT(weft_wait_for(t, 1.0, NULL), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    WT_ASSERT_LOG(1);
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_cancelled_task_cleanup) { wt_run_body(wait_for_cleanup, NULL); }

/* The cancelled task swallows the cancellation and returns a value. asyncio 3.12 would return
 * that value (its await completes normally); weft's header defines weft_await of a cancelled
 * awaiter as -ECANCELED and wait_for as "on timeout f is cancelled, waited for, and -ETIMEDOUT
 * is returned": the value stays readable from the task. */
static int swallows(void *arg, void **res) {
    ASSERT_EQ_INT(weft_sleep(10.0), WEFT_ECANCELED);
    *res = (void *)0x33;
    return 0;
}

static int wait_for_swallowed(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, swallows, NULL, NULL);
    void *v = NULL;
    ASSERT_EQ_INT(weft_wait_for(t, 1.0, &v), WEFT_ETIMEDOUT);
    ASSERT_OK(weft_future_result(t, &v));
    ASSERT_EQ_PTR(v, (void *)0x33);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_inner_swallows) { wt_run_body(wait_for_swallowed, NULL); }

static void fail_cb(void *arg) { ASSERT_OK(weft_future_set_error(arg, WEFT_EPROTO, "bad reply")); }

static int wait_for_future(void *arg, void **res) {
    weft_future_t *f, *g;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_EQ_INT(weft_wait_for(f, 2.0, NULL), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    /* An error arrives in time: passed through with its message. */
    ASSERT_OK(weft_create_future(&g));
    ASSERT_OK(weft_call_later(L(), 1.0, fail_cb, g, NULL));
    ASSERT_EQ_INT(weft_wait_for(g, 2.0, NULL), WEFT_EPROTO);
    ASSERT_EQ_STR(weft_error_message(), "bad reply");
    weft_unref(f);
    weft_unref(g);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_future) { wt_run_body(wait_for_future, NULL); }

static int wait_for_done(void *arg, void **res) {
    weft_future_t *f;
    void *v = NULL;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_future_set_result(f, (void *)6));
    ASSERT_OK(weft_wait_for(f, 0.0, &v)); /* done already: no timeout, even of 0 */
    ASSERT_EQ_PTR(v, (void *)6);
    v = NULL;
    ASSERT_OK(weft_wait_for(f, WEFT_NEVER, &v));
    ASSERT_EQ_PTR(v, (void *)6);
    weft_unref(f);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_done_future) { wt_run_body(wait_for_done, NULL); }

static int wait_for_never(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, sleep_arg_ms, (void *)100000, NULL);
    void *v = NULL;
    ASSERT_OK(weft_wait_for(t, WEFT_NEVER, &v));
    ASSERT_EQ_PTR(v, (void *)100000);
    ASSERT_EQ_DBL(wt_loop_now(), 100.0);
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_never) { wt_run_body(wait_for_never, NULL); }

/* wait_for inside a timeout scope that expires first: the scope reports the timeout, and
 * wait_for returns -ECANCELED. */
static int wait_for_in_scope(void *arg, void **res) {
    weft_timeout_t to;
    weft_task_t *t = wt_spawn(NULL, sleep_arg_ms, (void *)10000, NULL);
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1.0));
    rc = weft_wait_for(t, 5.0, NULL);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_inside_expiring_scope) { wt_run_body(wait_for_in_scope, NULL); }

static int real_timeout(void *arg, void **res) {
    weft_timeout_t to;
    double t0 = wt_now();
    ASSERT_OK(weft_timeout_begin(&to, 0.040));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(1.0)), WEFT_ETIMEDOUT);
    ASSERT_TIME(wt_now() - t0, 0.040);
    *res = (void *)1;
    return 0;
}

TEST(timeout_real_clock) {
    weft_loop_t *loop = wt_loop_real();
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, real_timeout, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    WT_CLOSE_LOOP(loop);
}

/* wait_for with a timeout of 0 (or less) on something pending: cancelled, -ETIMEDOUT. */
static int wait_for_zero(void *arg, void **res) {
    weft_future_t *f;
    weft_task_t *t = wt_spawn(NULL, sleep_arg_ms, (void *)1000, NULL);
    ASSERT_OK(weft_create_future(&f));
    ASSERT_EQ_INT(weft_wait_for(f, 0.0, NULL), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_INT(weft_wait_for(t, -1.0, NULL), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 0.0);
    weft_unref(f);
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_zero_timeout) { wt_run_body(wait_for_zero, NULL); }

/* A future cancelled by someone else during wait_for: -ECANCELED, not a timeout. */
static void cancel_fut_cb(void *arg) { ASSERT_EQ_INT(weft_cancel(arg, NULL), 1); }

static int wait_for_cancelled_future(void *arg, void **res) {
    weft_future_t *f;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_call_later(L(), 1.0, cancel_fut_cb, f, NULL));
    ASSERT_EQ_INT(weft_wait_for(f, 5.0, NULL), WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(10.0)); /* no stray timeout */
    weft_unref(f);
    *res = (void *)1;
    return 0;
}

TEST(wait_for_future_cancelled_by_other) { wt_run_body(wait_for_cancelled_future, NULL); }

/* Rescheduled to a time already past: expires at the next iteration. */
static int reschedule_past(void *arg, void **res) {
    weft_timeout_t to;
    ASSERT_OK(weft_sleep(2.0));
    ASSERT_OK(weft_timeout_begin(&to, 10.0));
    ASSERT_OK(weft_timeout_reschedule(&to, 1.0));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_sleep(5.0)), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_reschedule_past) { wt_run_body(reschedule_past, NULL); }

/* Scopes end innermost first; ending the outer one first is refused. */
static int wrong_order(void *arg, void **res) {
    weft_timeout_t outer, inner;
    ASSERT_OK(weft_timeout_begin(&outer, 5.0));
    ASSERT_OK(weft_timeout_begin(&inner, 6.0));
    wt_capture_begin();
    int rc = weft_timeout_end(&outer, 0);
    free(wt_capture_end());
    ASSERT_LT_INT(rc, 0);
    ASSERT_OK(weft_timeout_end(&inner, 0));
    ASSERT_OK(weft_timeout_end(&outer, 0));
    ASSERT_OK(weft_sleep(10.0));
    *res = (void *)1;
    return 0;
}

TEST(timeout_end_wrong_order) { wt_run_body(wrong_order, NULL); }

const wt_test_t wt_tests[] = {
    T(timeout_expires),
    T(timeout_no_expiry),
    T(timeout_begin_at),
    T(timeout_past_deadline),
    T(timeout_nested_inner_expires),
    T(timeout_nested_outer_expires),
    T(timeout_nested_both_expire),
    T(timeout_nested_outer_first),
    T(timeout_reschedule),
    T(timeout_never),
    T(timeout_outside_task),
    T(timeout_external_cancel),
    T(timeout_expired_and_cancelled),
    T(timeout_work_swallows),
    T(timeout_inside_shield),
    T(timeout_await_future),
    T(wait_for_timeout),
    T(wait_for_in_time),
    T(wait_for_cancelled_task_cleanup),
    T(wait_for_inner_swallows),
    T(wait_for_future),
    T(wait_for_done_future),
    T(wait_for_never),
    T(wait_for_inside_expiring_scope),
    T(timeout_real_clock),
    T(wait_for_zero_timeout),
    T(wait_for_future_cancelled_by_other),
    T(timeout_reschedule_past),
    T(timeout_end_wrong_order),
    WT_END,
};
