/* TaskGroup (asyncio.TaskGroup): structured concurrency for a parent task. */
#include "wt.h"

static weft_task_t *me(void) { return weft_current_task(); }

/* Sleeps arg ms; logs ms on success or the error; returns arg. */
static int kid(void *arg, void **res) {
    intptr_t ms = (intptr_t)arg;
    int rc = weft_sleep((double)ms / 1000.0);
    wt_log(rc < 0 ? rc : (int)ms);
    *res = arg;
    return rc;
}

/* Fails after arg ms with -EIO. */
static int failing_kid(void *arg, void **res) {
    intptr_t ms = (intptr_t)arg;
    int rc = weft_sleep((double)ms / 1000.0);
    if (rc < 0)
        return rc;
    wt_log(-1000 - (int)ms);
    return weft_fail(WEFT_EIO, "kid %d failed", (int)ms);
}

static weft_task_t *tg_spawn(weft_taskgroup_t *tg, weft_task_fn fn, intptr_t ms) {
    weft_task_t *t = NULL;
    ASSERT_OK(weft_taskgroup_create_task(tg, &t, fn, (void *)ms, NULL));
    ASSERT_NOT_NULL(t);
    return t;
}

static int all_ok(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *t[3];
    void *v;
    ASSERT_OK(weft_taskgroup_new(&tg));
    t[0] = tg_spawn(tg, kid, 3000);
    t[1] = tg_spawn(tg, kid, 1000);
    t[2] = tg_spawn(tg, kid, 2000);
    ASSERT_OK(weft_taskgroup_wait(tg));
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    ASSERT_EQ_INT(weft_taskgroup_error_count(tg), 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_future_result(t[i], &v));
        weft_unref(t[i]);
    }
    WT_ASSERT_LOG(1000, 2000, 3000);
    weft_taskgroup_free(tg);
    ASSERT_OK(weft_sleep(1.0));
    *res = (void *)1;
    return 0;
}

TEST(tg_all_ok) { wt_run_body(all_ok, NULL); }

static int empty_group(void *arg, void **res) {
    weft_taskgroup_t *tg;
    ASSERT_OK(weft_taskgroup_new(&tg));
    ASSERT_OK(weft_taskgroup_wait(tg));
    ASSERT_EQ_INT(weft_taskgroup_error_count(tg), 0);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_wait_empty) { wt_run_body(empty_group, NULL); }

/* The first failure cancels the siblings and the parent; wait() takes the parent's
 * cancellation back and returns the error. */
static int first_failure(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *sib, *bad, *extra = NULL;
    int rc;
    ASSERT_OK(weft_taskgroup_new(&tg));
    sib = tg_spawn(tg, kid, 10000);
    bad = tg_spawn(tg, failing_kid, 1000);
    rc = weft_sleep(5.0); /* the parent's own work */
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_taskgroup_create_task(tg, &extra, kid, (void *)1, NULL), WEFT_EBUSY);
    ASSERT_NULL(extra);
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_future_cancelled(sib), 1);
    ASSERT_EQ_INT(weft_taskgroup_error_count(tg), 1);
    ASSERT_EQ_PTR(weft_taskgroup_error(tg, 0), bad);
    ASSERT_EQ_STR(weft_future_error_message(weft_taskgroup_error(tg, 0)), "kid 1000 failed");
    ASSERT_EQ_STR(weft_error_message(), "kid 1000 failed");
    /* The parent is not cancelled any more. */
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_EQ_INT(weft_taskgroup_create_task(tg, &extra, kid, (void *)1, NULL), WEFT_EBUSY);
    WT_ASSERT_LOG(-2000, WEFT_ECANCELED);
    weft_unref(sib);
    weft_unref(bad);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_first_failure_cancels) { wt_run_body(first_failure, NULL); }

/* The parent already waiting in wait() when the failure comes. */
static int failure_during_wait(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *a, *b;
    ASSERT_OK(weft_taskgroup_new(&tg));
    a = tg_spawn(tg, kid, 10000);
    b = tg_spawn(tg, failing_kid, 2000);
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    ASSERT_EQ_INT(weft_future_cancelled(a), 1);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1.0));
    weft_unref(a);
    weft_unref(b);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_failure_during_wait) { wt_run_body(failure_during_wait, NULL); }

/* Several children fail: wait returns the first error, and every error is readable. */
static int cleanup_fails(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    return weft_fail(WEFT_EPIPE, "clean-up failed");
}

/* Cancelled, it takes 1 s to clean up, then fails. */
static int fails_proto(void *arg, void **res) {
    ASSERT_EQ_INT(weft_sleep(10.0), WEFT_ECANCELED);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(1.0));
    weft_shield_end();
    return weft_fail(WEFT_EPROTO, "proto");
}

static int many_errors(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *t[4];
    int seen[3] = {0};
    ASSERT_OK(weft_taskgroup_new(&tg));
    t[0] = tg_spawn(tg, failing_kid, 1000);
    t[1] = tg_spawn(tg, fails_proto, 0);
    t[2] = tg_spawn(tg, cleanup_fails, 0);
    t[3] = tg_spawn(tg, kid, 5000);
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0); /* waited for every clean-up */
    ASSERT_EQ_INT(weft_taskgroup_error_count(tg), 3);
    ASSERT_EQ_PTR(weft_taskgroup_error(tg, 0), t[0]);
    for (size_t i = 0; i < 3; i++) {
        weft_task_t *e = weft_taskgroup_error(tg, i);
        int code = weft_future_error(e);
        seen[0] += code == WEFT_EIO && !strcmp(weft_future_error_message(e), "kid 1000 failed");
        seen[1] += code == WEFT_EPROTO && !strcmp(weft_future_error_message(e), "proto");
        seen[2] += code == WEFT_EPIPE && !strcmp(weft_future_error_message(e), "clean-up failed");
    }
    ASSERT_EQ_INT(seen[0], 1);
    ASSERT_EQ_INT(seen[1], 1);
    ASSERT_EQ_INT(seen[2], 1);
    ASSERT_EQ_INT(weft_future_cancelled(t[3]), 1);
    for (int i = 0; i < 4; i++)
        weft_unref(t[i]);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_multiple_errors) { wt_run_body(many_errors, NULL); }

/* The errors the group handled are not reported as never retrieved. */
static int errors_not_reported(void *arg, void **res) {
    weft_taskgroup_t *tg;
    ASSERT_OK(weft_taskgroup_new(&tg));
    ASSERT_OK(weft_taskgroup_create_task(tg, NULL, failing_kid, (void *)1000, NULL));
    ASSERT_OK(weft_taskgroup_create_task(tg, NULL, fails_proto, NULL, NULL));
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    ASSERT_EQ_INT(weft_taskgroup_error_count(tg), 2);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_errors_not_reported) {
    char *err;
    wt_capture_begin();
    wt_run_body(errors_not_reported, NULL);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
}

/* A child that is cancelled (or returns -ECANCELED) is not a failure: the others go on. */
static int self_cancelling(void *arg, void **res) {
    ASSERT_OK(weft_sleep(1.0));
    return WEFT_ECANCELED;
}

static int cancelled_child_ok(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *a, *b, *c;
    ASSERT_OK(weft_taskgroup_new(&tg));
    a = tg_spawn(tg, self_cancelling, 0);
    b = tg_spawn(tg, kid, 3000);
    c = tg_spawn(tg, kid, 10000);
    ASSERT_OK(weft_sleep(1.5)); /* the parent is not cancelled */
    ASSERT_EQ_INT(weft_cancel(c, NULL), 1);
    ASSERT_OK(weft_taskgroup_wait(tg));
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    ASSERT_EQ_INT(weft_future_cancelled(a), 1);
    ASSERT_OK(weft_future_result(b, NULL));
    ASSERT_EQ_INT(weft_future_cancelled(c), 1);
    ASSERT_EQ_INT(weft_taskgroup_error_count(tg), 0);
    weft_unref(a);
    weft_unref(b);
    weft_unref(c);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_cancelled_child_not_error) { wt_run_body(cancelled_child_ok, NULL); }

/* The parent cancelled from outside while in wait(): children cancelled, -ECANCELED, and the
 * parent stays cancelled (the cancellation was not the group's to take back). */
static weft_task_t *kids_seen[2];
static int parent_waits(void *arg, void **res) {
    weft_taskgroup_t *tg;
    int rc;
    ASSERT_OK(weft_taskgroup_new(&tg));
    kids_seen[0] = tg_spawn(tg, kid, 5000);
    kids_seen[1] = tg_spawn(tg, kid, 10000);
    rc = weft_taskgroup_wait(tg);
    wt_log(rc);
    wt_log((int)(wt_loop_now() * 1000));
    wt_log(weft_task_cancelling(me()));
    wt_log(weft_sleep(1.0));
    weft_taskgroup_free(tg);
    return rc;
}

static void cancel_cb(void *arg) { ASSERT_EQ_INT(weft_cancel(arg, NULL), 1); }

TEST(tg_external_cancel) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, parent_waits, NULL, "parent");
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_cb, t, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED, 1000, 1, WEFT_ECANCELED);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_future_cancelled(kids_seen[i]), 1);
        weft_unref(kids_seen[i]);
    }
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* Cancelled from outside while still in its own work: the body's suspension returns
 * -ECANCELED; wait() then cancels the children and returns -ECANCELED. */
static int parent_works(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *k;
    int rc;
    ASSERT_OK(weft_taskgroup_new(&tg));
    k = tg_spawn(tg, kid, 5000);
    rc = weft_sleep(3.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    rc = weft_taskgroup_wait(tg);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(k), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    weft_unref(k);
    weft_taskgroup_free(tg);
    return rc;
}

TEST(tg_external_cancel_in_body) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, parent_works, NULL, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_cb, t, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* free() without wait(): the children still running are cancelled and waited for. */
static int free_without_wait(void *arg, void **res) {
    weft_taskgroup_t *tg;
    weft_task_t *a, *b;
    ASSERT_OK(weft_taskgroup_new(&tg));
    a = tg_spawn(tg, kid, 1000);
    b = tg_spawn(tg, kid, 10000);
    ASSERT_OK(weft_sleep(2.0));
    weft_taskgroup_free(tg);
    ASSERT_EQ_INT(weft_future_done(b), 1);
    ASSERT_EQ_INT(weft_future_cancelled(b), 1);
    ASSERT_OK(weft_future_result(a, NULL));
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    WT_ASSERT_LOG(1000, WEFT_ECANCELED);
    weft_unref(a);
    weft_unref(b);
    *res = (void *)1;
    return 0;
}

TEST(tg_free_without_wait) { wt_run_body(free_without_wait, NULL); }

/* A child adds a sibling to the group while it runs; wait() waits for it too. */
static weft_taskgroup_t *shared_tg;
static int adder(void *arg, void **res) {
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_OK(weft_taskgroup_create_task(shared_tg, NULL, kid, (void *)2000, NULL));
    return 0;
}

static int child_adds(void *arg, void **res) {
    ASSERT_OK(weft_taskgroup_new(&shared_tg));
    ASSERT_OK(weft_taskgroup_create_task(shared_tg, NULL, adder, NULL, NULL));
    ASSERT_OK(weft_taskgroup_wait(shared_tg));
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    WT_ASSERT_LOG(2000);
    weft_taskgroup_free(shared_tg);
    *res = (void *)1;
    return 0;
}

TEST(tg_child_adds_child) { wt_run_body(child_adds, NULL); }

/* Two groups in one parent, one after the other: the second is unaffected by the first's
 * failure. */
static int two_groups(void *arg, void **res) {
    weft_taskgroup_t *tg;
    ASSERT_OK(weft_taskgroup_new(&tg));
    ASSERT_OK(weft_taskgroup_create_task(tg, NULL, failing_kid, (void *)1000, NULL));
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    weft_taskgroup_free(tg);
    ASSERT_OK(weft_taskgroup_new(&tg));
    ASSERT_OK(weft_taskgroup_create_task(tg, NULL, kid, (void *)1000, NULL));
    ASSERT_OK(weft_taskgroup_wait(tg));
    weft_taskgroup_free(tg);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    *res = (void *)1;
    return 0;
}

TEST(tg_sequential_groups) { wt_run_body(two_groups, NULL); }

const wt_test_t wt_tests[] = {
    T(tg_all_ok),
    T(tg_wait_empty),
    T(tg_first_failure_cancels),
    T(tg_failure_during_wait),
    T(tg_multiple_errors),
    T(tg_errors_not_reported),
    T(tg_cancelled_child_not_error),
    T(tg_external_cancel),
    T(tg_external_cancel_in_body),
    T(tg_free_without_wait),
    T(tg_child_adds_child),
    T(tg_sequential_groups),
    WT_END,
};
