/* gather (both modes, and as a future), wait, as_completed. */
#include "wt.h"

static weft_loop_t *L(void) { return weft_get_running_loop(); }

/* A child: sleeps arg ms, then returns arg as its value; fails (-EIO, "fail <ms>") when the ms
 * count is odd. Logs its end. */
static int child(void *arg, void **res) {
    intptr_t ms = (intptr_t)arg;
    int rc = weft_sleep((double)ms / 1000.0);
    wt_log(rc < 0 ? rc : (int)ms);
    if (rc < 0)
        return rc;
    if (ms & 1)
        return weft_fail(WEFT_EIO, "fail %d", (int)ms);
    *res = arg;
    return 0;
}

static void spawn_n(weft_task_t **t, const intptr_t *ms, size_t n) {
    for (size_t i = 0; i < n; i++)
        t[i] = wt_spawn(NULL, child, (void *)ms[i], NULL);
}

static void unref_n(weft_task_t **t, size_t n) {
    for (size_t i = 0; i < n; i++)
        weft_unref(t[i]);
}

/* ---- gather ------------------------------------------------------------------------------ */

static int gather_order(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1000, 2000, 500};
    weft_task_t *t[4];
    void *results[4] = {0};
    spawn_n(t, ms, 4);
    ASSERT_OK(weft_gather(t, 4, results));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ_PTR(results[i], (void *)ms[i]);
    WT_ASSERT_LOG(500, 1000, 2000, 3000);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    /* results may be NULL. */
    ASSERT_OK(weft_gather(t, 4, NULL));
    unref_n(t, 4);
    *res = (void *)1;
    return 0;
}

TEST(gather_order) { wt_run_body(gather_order, NULL); }

static int gather_first_error(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1001, 2000, 1501};
    weft_task_t *t[4];
    void *results[4] = {0};
    spawn_n(t, ms, 4);
    ASSERT_EQ_INT(weft_gather(t, 4, results), WEFT_EIO);
    ASSERT_EQ_STR(weft_error_message(), "fail 1001");
    ASSERT_EQ_DBL(wt_loop_now(), 1.001); /* at once */
    /* The others were not cancelled and go on. */
    ASSERT_EQ_INT(weft_future_done(t[0]), 0);
    ASSERT_EQ_INT(weft_task_cancelling(t[0]), 0);
    ASSERT_EQ_INT(weft_task_cancelling(t[2]), 0);
    ASSERT_EQ_INT(weft_await(t[0], NULL), 0);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    ASSERT_EQ_INT(weft_future_error(t[3]), WEFT_EIO);
    WT_ASSERT_LOG(1001, 1501, 2000, 3000);
    unref_n(t, 4);
    *res = (void *)1;
    return 0;
}

TEST(gather_first_error) { wt_run_body(gather_first_error, NULL); }

/* A child cancelled from outside: gather returns -ECANCELED (asyncio's gather raises the
 * child's CancelledError), without the caller being cancelled. */
static void cancel_cb(void *arg) { weft_cancel(arg, NULL); }

static int gather_child_cancelled(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 2000};
    weft_task_t *t[2];
    spawn_n(t, ms, 2);
    ASSERT_OK(weft_call_later(L(), 1.0, cancel_cb, t[1], NULL));
    ASSERT_EQ_INT(weft_gather(t, 2, NULL), WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 0);
    ASSERT_OK(weft_await(t[0], NULL));
    unref_n(t, 2);
    *res = (void *)1;
    return 0;
}

TEST(gather_child_cancelled) { wt_run_body(gather_child_cancelled, NULL); }

static int gather_all(void *arg, void **res) {
    static const intptr_t ms[] = {2000, 1001, 3000};
    weft_task_t *t[3];
    weft_future_t *f;
    void *results[4] = {(void *)9, (void *)9, (void *)9, (void *)9};
    int codes[4] = {9, 9, 9, 9};
    weft_future_t *fs[4];
    spawn_n(t, ms, 3);
    ASSERT_OK(weft_create_future(&f));
    ASSERT_EQ_INT(weft_cancel(f, NULL), 1);
    fs[0] = t[0];
    fs[1] = t[1];
    fs[2] = t[2];
    fs[3] = f;
    ASSERT_OK(weft_call_later(L(), 2.5, cancel_cb, t[2], NULL));
    ASSERT_OK(weft_gather_all(fs, 4, results, codes));
    ASSERT_EQ_DBL(wt_loop_now(), 2.5);
    ASSERT_EQ_INT(codes[0], 0);
    ASSERT_EQ_PTR(results[0], (void *)2000);
    ASSERT_EQ_INT(codes[1], WEFT_EIO);
    ASSERT_NULL(results[1]);
    ASSERT_EQ_INT(codes[2], WEFT_ECANCELED);
    ASSERT_NULL(results[2]);
    ASSERT_EQ_INT(codes[3], WEFT_ECANCELED);
    ASSERT_NULL(results[3]);
    unref_n(t, 3);
    weft_unref(f);
    *res = (void *)1;
    return 0;
}

TEST(gather_all_codes) { wt_run_body(gather_all, NULL); }

/* gather_all takes responsibility for errors: no "never retrieved" report. */
static int gather_all_quiet(void *arg, void **res) {
    static const intptr_t ms[] = {1001};
    weft_task_t *t[1];
    int codes[1];
    spawn_n(t, ms, 1);
    ASSERT_OK(weft_gather_all(t, 1, NULL, codes));
    ASSERT_EQ_INT(codes[0], WEFT_EIO);
    unref_n(t, 1);
    *res = (void *)1;
    return 0;
}

TEST(gather_all_no_report) {
    char *err;
    wt_capture_begin();
    wt_run_body(gather_all_quiet, NULL);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
}

static int gather_zero(void *arg, void **res) {
    weft_loop_stats_t a, b;
    weft_loop_stats(L(), &a);
    ASSERT_OK(weft_gather(NULL, 0, NULL));
    ASSERT_OK(weft_gather_all(NULL, 0, NULL, NULL));
    weft_loop_stats(L(), &b);
    ASSERT_EQ_INT(b.iterations, a.iterations); /* nothing to wait for: no suspension */
    *res = (void *)1;
    return 0;
}

TEST(gather_zero) { wt_run_body(gather_zero, NULL); }

static int gather_done_already(void *arg, void **res) {
    weft_future_t *f[2];
    void *results[2];
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(weft_create_future(&f[i]));
        ASSERT_OK(weft_future_set_result(f[i], (void *)(intptr_t)(i + 10)));
    }
    ASSERT_OK(weft_gather(f, 2, results));
    ASSERT_EQ_PTR(results[0], (void *)10);
    ASSERT_EQ_PTR(results[1], (void *)11);
    weft_unref(f[0]);
    weft_unref(f[1]);
    *res = (void *)1;
    return 0;
}

TEST(gather_done_already) { wt_run_body(gather_done_already, NULL); }

static int gather_caller(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 2000};
    weft_task_t **t = arg;
    spawn_n(t, ms, 2);
    int rc = weft_gather(t, 2, NULL);
    wt_log(rc);
    wt_log((int)(wt_loop_now() * 1000));
    return rc;
}

TEST(gather_cancel_caller) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *kids[2];
    weft_task_t *t = wt_spawn(loop, gather_caller, kids, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_cb, t, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED, 1000);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_future_cancelled(kids[i]), 1);
        weft_unref(kids[i]);
    }
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- gather as a future --------------------------------------------------------------------- */

TEST(loop_gather_future) {
    weft_loop_t *loop = wt_loop_virtual();
    static const intptr_t ms[] = {2000, 1000, 3000};
    weft_task_t *t[3];
    weft_future_t *g;
    void *v = NULL;
    for (int i = 0; i < 3; i++)
        t[i] = wt_spawn(loop, child, (void *)ms[i], NULL);
    ASSERT_OK(weft_loop_gather(loop, t, 3, 0, &g));
    ASSERT_EQ_INT(weft_is_task(g), 0);
    ASSERT_EQ_INT(weft_future_done(g), 0);
    ASSERT_OK(weft_loop_run_until_complete(loop, g, &v));
    ASSERT_NOT_NULL(v);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_PTR(((void **)v)[i], (void *)ms[i]);
    ASSERT_EQ_DBL(weft_loop_time(loop), 3.0);
    weft_unref(g);
    unref_n(t, 3);
    WT_CLOSE_LOOP(loop);
}

TEST(loop_gather_error) {
    weft_loop_t *loop = wt_loop_virtual();
    static const intptr_t ms[] = {2000, 1001};
    weft_task_t *t[2];
    weft_future_t *g;
    for (int i = 0; i < 2; i++)
        t[i] = wt_spawn(loop, child, (void *)ms[i], NULL);
    ASSERT_OK(weft_loop_gather(loop, t, 2, 0, &g));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, g, NULL), WEFT_EIO);
    ASSERT_EQ_STR(weft_error_message(), "fail 1001");
    ASSERT_EQ_STR(weft_future_error_message(g), "fail 1001");
    ASSERT_EQ_DBL(weft_loop_time(loop), 1.001);
    ASSERT_OK(weft_loop_run_until_complete(loop, t[0], NULL));
    weft_unref(g);
    unref_n(t, 2);
    WT_CLOSE_LOOP(loop);
}

TEST(loop_gather_return_exceptions) {
    weft_loop_t *loop = wt_loop_virtual();
    static const intptr_t ms[] = {2000, 1001, 500};
    weft_task_t *t[3];
    weft_future_t *g;
    const int *codes;
    void *v = NULL;
    for (int i = 0; i < 3; i++)
        t[i] = wt_spawn(loop, child, (void *)ms[i], NULL);
    ASSERT_OK(weft_loop_gather(loop, t, 3, WEFT_GATHER_RETURN_EXCEPTIONS, &g));
    ASSERT_OK(weft_call_later(loop, 0.25, cancel_cb, t[2], NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, g, &v));
    codes = weft_gather_codes(g);
    ASSERT_NOT_NULL(codes);
    ASSERT_EQ_INT(codes[0], 0);
    ASSERT_EQ_INT(codes[1], WEFT_EIO);
    ASSERT_EQ_INT(codes[2], WEFT_ECANCELED);
    ASSERT_EQ_PTR(((void **)v)[0], (void *)2000);
    ASSERT_NULL(((void **)v)[1]);
    ASSERT_NULL(((void **)v)[2]);
    weft_unref(g);
    unref_n(t, 3);
    WT_CLOSE_LOOP(loop);
}

/* Cancelling the gather future cancels every child. */
TEST(loop_gather_cancel) {
    weft_loop_t *loop = wt_loop_virtual();
    static const intptr_t ms[] = {2000, 1000};
    weft_task_t *t[2];
    weft_future_t *g;
    for (int i = 0; i < 2; i++)
        t[i] = wt_spawn(loop, child, (void *)ms[i], NULL);
    ASSERT_OK(weft_loop_gather(loop, t, 2, 0, &g));
    ASSERT_OK(weft_call_later(loop, 0.5, cancel_cb, g, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, g, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_cancelled(g), 1);
    ASSERT_EQ_DBL(weft_loop_time(loop), 0.5);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t[i], NULL), WEFT_ECANCELED);
        ASSERT_EQ_INT(weft_future_cancelled(t[i]), 1);
    }
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED);
    weft_unref(g);
    unref_n(t, 2);
    WT_CLOSE_LOOP(loop);
}

TEST(loop_gather_zero) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *g;
    ASSERT_OK(weft_loop_gather(loop, NULL, 0, 0, &g));
    ASSERT_EQ_INT(weft_future_done(g), 1);
    ASSERT_OK(weft_loop_run_until_complete(loop, g, NULL));
    weft_unref(g);
    ASSERT_OK(weft_loop_gather(loop, NULL, 0, WEFT_GATHER_RETURN_EXCEPTIONS, &g));
    ASSERT_EQ_INT(weft_future_done(g), 1);
    ASSERT_OK(weft_future_result(g, NULL));
    weft_unref(g);
    WT_CLOSE_LOOP(loop);
}

/* A future of another loop is refused. */
TEST(loop_gather_other_loop) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    weft_future_t *f, *g = NULL;
    ASSERT_OK(weft_loop_create_future(a, &f));
    ASSERT_EQ_INT(weft_loop_gather(b, &f, 1, 0, &g), WEFT_EINVAL);
    ASSERT_NULL(g);
    weft_unref(f);
    WT_CLOSE_LOOP(a);
    WT_CLOSE_LOOP(b);
}

/* A bad child after good ones, pending and done: the good ones are left as they were, watched
 * by nothing, their references untouched (the loop closes clean). */
TEST(loop_gather_bad_child_last) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    weft_future_t *fs[4], *other, *g = NULL;
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(a, &fs[0]));
    ASSERT_OK(weft_loop_create_future(a, &fs[1]));
    ASSERT_OK(weft_future_set_result(fs[1], (void *)7));
    ASSERT_OK(weft_loop_create_future(a, &fs[2]));
    ASSERT_OK(weft_loop_create_future(b, &other));
    fs[3] = other;
    ASSERT_EQ_INT(weft_loop_gather(a, fs, 4, 0, &g), WEFT_EINVAL);
    ASSERT_NULL(g);
    fs[3] = NULL;
    ASSERT_EQ_INT(weft_loop_gather(a, fs, 4, WEFT_GATHER_RETURN_EXCEPTIONS, &g), WEFT_EINVAL);
    ASSERT_NULL(g);
    /* Still usable: a gather of the good ones works. */
    ASSERT_OK(weft_loop_gather(a, fs, 3, 0, &g));
    ASSERT_OK(weft_future_set_result(fs[0], (void *)5));
    ASSERT_OK(weft_future_set_result(fs[2], (void *)9));
    ASSERT_OK(weft_loop_run_until_complete(a, g, &v));
    ASSERT_EQ_PTR(((void **)v)[0], (void *)5);
    ASSERT_EQ_PTR(((void **)v)[1], (void *)7);
    ASSERT_EQ_PTR(((void **)v)[2], (void *)9);
    weft_unref(g);
    for (int i = 0; i < 3; i++)
        weft_unref(fs[i]);
    weft_unref(other);
    WT_CLOSE_LOOP(a);
    WT_CLOSE_LOOP(b);
}

/* ---- wait ------------------------------------------------------------------------------ */

static int count_done(weft_task_t **t, int n) {
    int d = 0;
    for (int i = 0; i < n; i++)
        d += weft_future_done(t[i]);
    return d;
}

static int wait_modes(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1000, 2000};
    weft_task_t *t[3];
    spawn_n(t, ms, 3);
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_FIRST_COMPLETED, WEFT_NEVER), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_future_done(t[1]), 1);
    ASSERT_EQ_INT(count_done(t, 3), 1);
    /* One is done already: FIRST_COMPLETED returns at once. */
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_FIRST_COMPLETED, WEFT_NEVER), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_ALL_COMPLETED, WEFT_NEVER), 3);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    /* Without errors, FIRST_EXCEPTION is ALL_COMPLETED. */
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_FIRST_EXCEPTION, WEFT_NEVER), 3);
    unref_n(t, 3);
    *res = (void *)1;
    return 0;
}

TEST(wait_first_completed_and_all) { wt_run_body(wait_modes, NULL); }

static int wait_first_exception(void *arg, void **res) {
    static const intptr_t ms[] = {1000, 2001, 3000};
    weft_task_t *t[3];
    spawn_n(t, ms, 3);
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_FIRST_EXCEPTION, WEFT_NEVER), 2);
    ASSERT_EQ_DBL(wt_loop_now(), 2.001);
    ASSERT_EQ_INT(weft_future_done(t[2]), 0);
    ASSERT_EQ_INT(weft_task_cancelling(t[2]), 0);
    ASSERT_EQ_INT(weft_future_error(t[1]), WEFT_EIO);
    ASSERT_OK(weft_await(t[2], NULL));
    unref_n(t, 3);
    *res = (void *)1;
    return 0;
}

TEST(wait_first_exception) { wt_run_body(wait_first_exception, NULL); }

static int wait_timeout(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1000, 2000};
    weft_task_t *t[3];
    spawn_n(t, ms, 3);
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_ALL_COMPLETED, 1.5), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 1.5);
    /* Not cancelled: they finish normally. */
    ASSERT_EQ_INT(weft_task_cancelling(t[0]), 0);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 0);
    /* One is done: FIRST_COMPLETED returns at once. */
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_FIRST_COMPLETED, 0.25), 1);
    ASSERT_EQ_DBL(wt_loop_now(), 1.5);
    /* Nothing finishes in time: 0 after the timeout. */
    weft_future_t *rest[2] = {t[0], t[2]};
    ASSERT_EQ_INT(weft_wait(rest, 2, WEFT_FIRST_COMPLETED, 0.25), 0);
    ASSERT_EQ_DBL(wt_loop_now(), 1.75);
    ASSERT_EQ_INT(weft_wait(t, 3, WEFT_ALL_COMPLETED, 10.0), 3);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    WT_ASSERT_LOG(1000, 2000, 3000);
    unref_n(t, 3);
    *res = (void *)1;
    return 0;
}

TEST(wait_timeout_no_cancel) { wt_run_body(wait_timeout, NULL); }

/* ---- as_completed --------------------------------------------------------------------- */

static int as_completed_order(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1000, 2000, 1500};
    weft_task_t *t[4];
    weft_as_completed_t *ac;
    weft_future_t *f;
    void *v;
    spawn_n(t, ms, 4);
    ASSERT_OK(weft_as_completed_new(&ac, t, 4, WEFT_NEVER));
    static const intptr_t want[] = {1000, 1500, 2000, 3000};
    for (int i = 0; i < 4; i++) {
        f = NULL;
        ASSERT_EQ_INT(weft_as_completed_next(ac, &f), 1);
        ASSERT_NOT_NULL(f);
        ASSERT_EQ_INT(weft_future_done(f), 1);
        ASSERT_OK(weft_future_result(f, &v));
        ASSERT_EQ_PTR(v, (void *)want[i]);
        ASSERT_EQ_DBL(wt_loop_now(), (double)want[i] / 1000.0);
    }
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), 0);
    weft_as_completed_free(ac);
    unref_n(t, 4);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_order) { wt_run_body(as_completed_order, NULL); }

static int as_completed_timeout(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1000};
    weft_task_t *t[2];
    weft_as_completed_t *ac;
    weft_future_t *f = NULL;
    spawn_n(t, ms, 2);
    ASSERT_OK(weft_as_completed_new(&ac, t, 2, 2.0));
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), 1);
    ASSERT_EQ_PTR(f, t[1]);
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), WEFT_ETIMEDOUT); /* once passed, stays */
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    weft_as_completed_free(ac);
    /* The futures were not cancelled. */
    ASSERT_EQ_INT(weft_task_cancelling(t[0]), 0);
    ASSERT_OK(weft_await(t[0], NULL));
    unref_n(t, 2);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_timeout) { wt_run_body(as_completed_timeout, NULL); }

static int as_completed_done_already(void *arg, void **res) {
    weft_future_t *f[3], *got;
    weft_as_completed_t *ac;
    int seen = 0;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_create_future(&f[i]));
    ASSERT_OK(weft_future_set_result(f[1], NULL));
    ASSERT_OK(weft_as_completed_new(&ac, f, 3, WEFT_NEVER));
    ASSERT_OK(weft_future_set_result(f[2], NULL));
    ASSERT_OK(weft_future_set_error(f[0], WEFT_EIO, "x"));
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(weft_as_completed_next(ac, &got), 1);
        seen |= (got == f[0]) << 0 | (got == f[1]) << 1 | (got == f[2]) << 2;
    }
    ASSERT_EQ_INT(seen, 7);
    ASSERT_EQ_INT(weft_as_completed_next(ac, &got), 0);
    ASSERT_EQ_INT(weft_future_error(f[0]), WEFT_EIO);
    weft_as_completed_free(ac);
    for (int i = 0; i < 3; i++)
        weft_unref(f[i]);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_done_already) { wt_run_body(as_completed_done_already, NULL); }

/* Freed before every future was returned: nothing left behind (the loop-clean check). */
static int as_completed_early_free(void *arg, void **res) {
    static const intptr_t ms[] = {3000, 1000};
    weft_task_t *t[2];
    weft_as_completed_t *ac;
    weft_future_t *f;
    spawn_n(t, ms, 2);
    ASSERT_OK(weft_as_completed_new(&ac, t, 2, 5.0));
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), 1);
    weft_as_completed_free(ac);
    ASSERT_OK(weft_await(t[0], NULL));
    unref_n(t, 2);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_early_free) { wt_run_body(as_completed_early_free, NULL); }

/* Errors that arrive after gather returned the first one are handled by gather too (asyncio
 * marks them retrieved): releasing the children reports nothing. */
static int gather_later_errors(void *arg, void **res) {
    static const intptr_t ms[] = {1001, 2001};
    weft_task_t *t[2];
    spawn_n(t, ms, 2);
    ASSERT_EQ_INT(weft_gather(t, 2, NULL), WEFT_EIO);
    ASSERT_OK(weft_sleep(5.0));
    ASSERT_EQ_INT(weft_future_done(t[1]), 1);
    unref_n(t, 2);
    *res = (void *)1;
    return 0;
}

TEST(gather_later_errors_not_reported) {
    char *err;
    wt_capture_begin();
    wt_run_body(gather_later_errors, NULL);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
}

/* The same future twice: both positions get its value (asyncio dedups, and fills both). */
static int gather_duplicates(void *arg, void **res) {
    static const intptr_t ms[] = {1000, 2000};
    weft_task_t *t[2];
    weft_future_t *fs[4];
    void *results[4] = {0};
    int codes[4] = {1, 1, 1, 1};
    spawn_n(t, ms, 2);
    fs[0] = t[0];
    fs[1] = t[1];
    fs[2] = t[0];
    fs[3] = t[1];
    ASSERT_OK(weft_gather(fs, 4, results));
    ASSERT_EQ_PTR(results[0], (void *)1000);
    ASSERT_EQ_PTR(results[1], (void *)2000);
    ASSERT_EQ_PTR(results[2], (void *)1000);
    ASSERT_EQ_PTR(results[3], (void *)2000);
    ASSERT_OK(weft_gather_all(fs, 4, results, codes));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ_INT(codes[i], 0);
    unref_n(t, 2);
    *res = (void *)1;
    return 0;
}

TEST(gather_duplicates) { wt_run_body(gather_duplicates, NULL); }

static int as_completed_empty(void *arg, void **res) {
    weft_as_completed_t *ac;
    weft_future_t *f = NULL;
    ASSERT_OK(weft_as_completed_new(&ac, NULL, 0, WEFT_NEVER));
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), 0);
    weft_as_completed_free(ac);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_empty) { wt_run_body(as_completed_empty, NULL); }

/* return-exceptions mode, caller cancelled: every child is cancelled and waited for (the
 * clean-up included), then -ECANCELED. */
static int slow_cleanup(void *arg, void **res) {
    int rc = weft_sleep(10.0);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(2.0));
    weft_shield_end();
    wt_log(7);
    return rc;
}

static int gather_all_caller(void *arg, void **res) {
    weft_task_t **t = arg;
    int codes[2];
    t[0] = wt_spawn(NULL, child, (void *)5000, NULL);
    t[1] = wt_spawn(NULL, slow_cleanup, NULL, NULL);
    int rc = weft_gather_all(t, 2, NULL, codes);
    wt_log(rc);
    wt_log((int)(wt_loop_now() * 1000));
    return rc;
}

TEST(gather_all_cancel_caller) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *kids[2];
    weft_task_t *t = wt_spawn(loop, gather_all_caller, kids, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_cb, t, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED, 7, WEFT_ECANCELED, 3000);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_future_cancelled(kids[i]), 1);
        weft_unref(kids[i]);
    }
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

const wt_test_t wt_tests[] = {
    T(gather_order),
    T(gather_first_error),
    T(gather_child_cancelled),
    T(gather_all_codes),
    T(gather_all_no_report),
    T(gather_zero),
    T(gather_done_already),
    T(gather_cancel_caller),
    T(loop_gather_future),
    T(loop_gather_error),
    T(loop_gather_return_exceptions),
    T(loop_gather_cancel),
    T(loop_gather_zero),
    T(loop_gather_other_loop),
    T(loop_gather_bad_child_last),
    T(wait_first_completed_and_all),
    T(wait_first_exception),
    T(wait_timeout_no_cancel),
    T(as_completed_order),
    T(as_completed_timeout),
    T(as_completed_done_already),
    T(as_completed_early_free),
    T(gather_later_errors_not_reported),
    T(gather_duplicates),
    T(as_completed_empty),
    T(gather_all_cancel_caller),
    WT_END,
};
