/* Futures: results, errors, cancellation, done callbacks, await, unretrieved errors. */
#include "wt.h"

static int noop_task(void *arg, void **res) { return 0; }

TEST(future_set_result) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    void *v = NULL;
    weft_loop_stats_t st;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.futures, 1);
    ASSERT_EQ_INT(st.tasks, 0);
    ASSERT_EQ_PTR(weft_future_loop(f), loop);
    ASSERT_EQ_INT(weft_is_task(f), 0);
    ASSERT_EQ_INT(weft_future_done(f), 0);
    ASSERT_EQ_INT(weft_future_result(f, &v), WEFT_EINPROGRESS);
    ASSERT_EQ_INT(weft_future_error(f), 0);
    ASSERT_OK(weft_future_set_result(f, (void *)7));
    ASSERT_EQ_INT(weft_future_done(f), 1);
    ASSERT_EQ_INT(weft_future_cancelled(f), 0);
    ASSERT_OK(weft_future_result(f, &v));
    ASSERT_EQ_PTR(v, (void *)7);
    ASSERT_OK(weft_future_result(f, NULL));
    ASSERT_EQ_INT(weft_future_error(f), 0);
    ASSERT_NULL(weft_future_error_message(f));
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* asyncio's InvalidStateError. */
TEST(future_set_twice) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_set_result(f, (void *)1));
    ASSERT_EQ_INT(weft_future_set_result(f, (void *)2), WEFT_EALREADY);
    ASSERT_EQ_INT(weft_future_set_error(f, WEFT_EIO, "x"), WEFT_EALREADY);
    ASSERT_EQ_INT(weft_cancel(f, NULL), 0);
    ASSERT_EQ_INT(weft_future_cancelled(f), 0);
    ASSERT_OK(weft_future_result(f, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

TEST(future_set_error_message) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f, *g;
    void *v = (void *)3;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_set_error(f, WEFT_EINVAL, "boom %d", 7));
    ASSERT_EQ_INT(weft_future_done(f), 1);
    ASSERT_EQ_INT(weft_future_cancelled(f), 0);
    ASSERT_EQ_STR(weft_future_error_message(f), "boom 7");
    ASSERT_EQ_INT(weft_future_result(f, &v), WEFT_EINVAL);
    ASSERT_EQ_PTR(v, (void *)3);
    ASSERT_EQ_INT(weft_future_error(f), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_future_set_error(f, WEFT_EIO, NULL), WEFT_EALREADY);
    ASSERT_EQ_STR(weft_future_error_message(f), "boom 7");
    /* NULL fmt: the message is weft_strerror(code). */
    ASSERT_OK(weft_loop_create_future(loop, &g));
    ASSERT_OK(weft_future_set_error(g, WEFT_ECONNRESET, NULL));
    ASSERT_EQ_STR(weft_future_error_message(g), weft_strerror(WEFT_ECONNRESET));
    ASSERT_EQ_INT(weft_future_error(g), WEFT_ECONNRESET);
    weft_unref(f);
    weft_unref(g);
    WT_CLOSE_LOOP(loop);
}

TEST(future_set_error_ecanceled_cancels) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_set_error(f, WEFT_ECANCELED, "stop it"));
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_INT(weft_future_result(f, NULL), WEFT_ECANCELED);
    ASSERT_EQ_STR(weft_future_error_message(f), "stop it");
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

TEST(future_set_error_bad_code) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_LT_INT(weft_future_set_error(f, 5, "positive"), 0);
    ASSERT_EQ_INT(weft_future_done(f), 0);
    ASSERT_OK(weft_future_set_result(f, NULL));
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

TEST(future_cancel) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f, *g;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_EQ_INT(weft_cancel(f, "bye"), 1);
    ASSERT_EQ_INT(weft_future_done(f), 1);
    ASSERT_EQ_INT(weft_future_cancelled(f), 1);
    ASSERT_EQ_INT(weft_future_result(f, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_future_error(f), WEFT_ECANCELED);
    ASSERT_EQ_STR(weft_future_error_message(f), "bye");
    ASSERT_EQ_INT(weft_cancel(f, NULL), 0);
    ASSERT_EQ_INT(weft_future_set_result(f, NULL), WEFT_EALREADY);
    /* Without a message. */
    ASSERT_OK(weft_loop_create_future(loop, &g));
    ASSERT_EQ_INT(weft_cancel(g, NULL), 1);
    ASSERT_EQ_INT(weft_future_cancelled(g), 1);
    weft_unref(f);
    weft_unref(g);
    WT_CLOSE_LOOP(loop);
}

/* A task resolves itself by returning. */
TEST(set_result_on_task_refused) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, noop_task, NULL, NULL);
    ASSERT_EQ_INT(weft_future_set_result(t, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_future_set_error(t, WEFT_EIO, NULL), WEFT_EINVAL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

TEST(future_ref_unref) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_loop_stats_t st;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_EQ_PTR(weft_ref(f), f);
    weft_unref(f);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.futures, 1); /* one reference left */
    ASSERT_OK(weft_future_set_result(f, NULL));
    weft_unref(f);
    weft_unref(NULL);
    WT_CLOSE_LOOP(loop);
}

/* ---- done callbacks --------------------------------------------------------------------- */

typedef struct {
    weft_future_t *f;
    int calls;
    int seen_in_set_result; /* the callback ran before set_result returned */
    int in_set_result;
    weft_future_t *got;
    void *got_arg;
} dc_t;

static void done_cb(weft_future_t *f, void *arg) {
    dc_t *d = arg;
    d->calls++;
    d->got = f;
    d->got_arg = arg;
    if (d->in_set_result)
        d->seen_in_set_result = 1;
    ASSERT_EQ_INT(weft_future_done(f), 1);
}

static void resolve_cb(void *arg) {
    dc_t *d = arg;
    d->in_set_result = 1;
    ASSERT_OK(weft_future_set_result(d->f, (void *)5));
    d->in_set_result = 0;
    ASSERT_EQ_INT(d->calls, 0); /* scheduled, not called inline */
}

TEST(done_callbacks_scheduled) {
    weft_loop_t *loop = wt_loop_virtual();
    dc_t d = {0};
    ASSERT_OK(weft_loop_create_future(loop, &d.f));
    ASSERT_OK(weft_future_add_done_callback(d.f, done_cb, &d));
    ASSERT_EQ_INT(d.calls, 0);
    ASSERT_OK(weft_call_soon(loop, resolve_cb, &d, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, d.f, NULL));
    /* run_until_complete may return before or after the callback's iteration: run one more. */
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(d.calls, 1);
    ASSERT_EQ_INT(d.seen_in_set_result, 0);
    ASSERT_EQ_PTR(d.got, d.f);
    ASSERT_EQ_PTR(d.got_arg, &d);
    weft_unref(d.f);
    WT_CLOSE_LOOP(loop);
}

/* Outside the loop too, set_result only schedules: the callback runs when the loop runs. */
TEST(done_callback_set_outside_loop) {
    weft_loop_t *loop = wt_loop_virtual();
    dc_t d = {0};
    ASSERT_OK(weft_loop_create_future(loop, &d.f));
    ASSERT_OK(weft_future_add_done_callback(d.f, done_cb, &d));
    ASSERT_OK(weft_future_set_result(d.f, NULL));
    ASSERT_EQ_INT(d.calls, 0);
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(d.calls, 1);
    weft_unref(d.f);
    WT_CLOSE_LOOP(loop);
}

/* On a future already done: scheduled at once, still not inline. */
TEST(done_callback_already_done) {
    weft_loop_t *loop = wt_loop_virtual();
    dc_t d = {0};
    weft_loop_stats_t st;
    ASSERT_OK(weft_loop_create_future(loop, &d.f));
    ASSERT_OK(weft_future_set_result(d.f, NULL));
    ASSERT_OK(weft_future_add_done_callback(d.f, done_cb, &d));
    ASSERT_EQ_INT(d.calls, 0);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.ready, 1);
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(d.calls, 1);
    weft_unref(d.f);
    WT_CLOSE_LOOP(loop);
}

static void order_cb(weft_future_t *f, void *arg) { wt_log((int)(intptr_t)arg); }

TEST(done_callbacks_order) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    for (intptr_t i = 1; i <= 5; i++)
        ASSERT_OK(weft_future_add_done_callback(f, order_cb, (void *)i));
    ASSERT_EQ_INT(weft_cancel(f, NULL), 1);
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 2, 3, 4, 5);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

TEST(remove_done_callback) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_add_done_callback(f, order_cb, (void *)1));
    ASSERT_OK(weft_future_add_done_callback(f, order_cb, (void *)2));
    ASSERT_OK(weft_future_add_done_callback(f, order_cb, (void *)1));
    ASSERT_OK(weft_future_add_done_callback(f, order_cb, (void *)3));
    ASSERT_EQ_INT(weft_future_remove_done_callback(f, order_cb, (void *)1), 2);
    ASSERT_EQ_INT(weft_future_remove_done_callback(f, order_cb, (void *)1), 0);
    ASSERT_EQ_INT(weft_future_remove_done_callback(f, order_cb, (void *)9), 0);
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(2, 3);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* Releasing the future while its callback is queued: the callback still gets a valid one. */
static void check_done_cb(weft_future_t *f, void *arg) {
    void *v = NULL;
    ASSERT_OK(weft_future_result(f, &v));
    wt_log((int)(intptr_t)v);
}

TEST(done_callback_outlives_user_ref) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_add_done_callback(f, check_done_cb, NULL));
    ASSERT_OK(weft_future_set_result(f, (void *)77));
    weft_unref(f);
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(77);
    WT_CLOSE_LOOP(loop);
}

/* ---- await ------------------------------------------------------------------------------ */

TEST(await_outside_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f, *g = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_EQ_INT(weft_await(f, NULL), WEFT_EPERM);
    ASSERT_EQ_INT(weft_create_future(&g), WEFT_EPERM);
    ASSERT_NULL(g);
    ASSERT_EQ_INT(weft_sleep(0), WEFT_EPERM);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

static void set_later_cb(void *arg) { ASSERT_OK(weft_future_set_result(arg, (void *)99)); }

static int await_body(void *arg, void **res) {
    weft_future_t *f;
    void *v = NULL;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_EQ_PTR(weft_future_loop(f), weft_get_running_loop());
    ASSERT_OK(weft_call_later(weft_get_running_loop(), 2.0, set_later_cb, f, NULL));
    ASSERT_OK(weft_await(f, &v));
    ASSERT_EQ_PTR(v, (void *)99);
    ASSERT_EQ_DBL(weft_loop_time(weft_get_running_loop()), 2.0);
    /* Awaiting a done future again gives the same outcome. */
    v = NULL;
    ASSERT_OK(weft_await(f, &v));
    ASSERT_EQ_PTR(v, (void *)99);
    ASSERT_OK(weft_await(f, NULL));
    weft_unref(f);
    *res = (void *)1;
    return 0;
}

TEST(await_future) {
    weft_loop_t *loop = wt_loop_virtual();
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, await_body, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    WT_CLOSE_LOOP(loop);
}

static void fail_later_cb(void *arg) {
    ASSERT_OK(weft_future_set_error(arg, WEFT_ECONNREFUSED, "server %s said no", "db1"));
}

static int await_error_body(void *arg, void **res) {
    weft_future_t *f;
    void *v = (void *)5;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_call_later(weft_get_running_loop(), 1.0, fail_later_cb, f, NULL));
    ASSERT_EQ_INT(weft_await(f, &v), WEFT_ECONNREFUSED);
    ASSERT_EQ_STR(weft_error_message(), "server db1 said no");
    ASSERT_EQ_PTR(v, (void *)5);
    weft_unref(f);
    return 0;
}

TEST(await_future_error) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, await_error_body, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* Awaiting a future that is already done does not suspend (asyncio's await of a done future
 * does not yield). */
static int await_done_body(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    weft_future_t *f;
    weft_loop_stats_t a, b;
    void *v = NULL;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_future_set_result(f, (void *)3));
    weft_loop_stats(loop, &a);
    ASSERT_OK(weft_await(f, &v));
    weft_loop_stats(loop, &b);
    ASSERT_EQ_INT(b.iterations, a.iterations);
    ASSERT_EQ_PTR(v, (void *)3);
    weft_unref(f);
    return 0;
}

TEST(await_done_future_no_suspend) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, await_done_body, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* Many tasks await one future: all wake, in the order they started awaiting. */
static int await_and_log(void *arg, void **res) {
    void *v = NULL;
    ASSERT_OK(weft_await(arg, &v));
    wt_log((int)weft_task_id(weft_current_task()));
    *res = v;
    return 0;
}

TEST(await_many_waiters) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t[5];
    ASSERT_OK(weft_loop_create_future(loop, &f));
    for (int i = 0; i < 5; i++)
        t[i] = wt_spawn(loop, await_and_log, f, NULL);
    ASSERT_OK(weft_call_later(loop, 1.0, set_later_cb, f, NULL));
    for (int i = 0; i < 5; i++) {
        void *v = NULL;
        ASSERT_OK(weft_loop_run_until_complete(loop, t[i], &v));
        ASSERT_EQ_PTR(v, (void *)99);
    }
    ASSERT_EQ_INT(wt_log_len(), 5);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(wt_log_at(i), weft_task_id(t[i]));
    for (int i = 0; i < 5; i++)
        weft_unref(t[i]);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* ---- unretrieved errors ----------------------------------------------------------------- */

TEST(future_error_never_retrieved_report) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    char *err;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_set_error(f, WEFT_EIO, "disk on fire"));
    wt_capture_begin();
    weft_unref(f);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "never retrieved");
    ASSERT_CONTAINS(err, "disk on fire");
    free(err);
    WT_CLOSE_LOOP(loop);
}

TEST(future_error_retrieved_no_report) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f, *g, *c;
    char *err;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_loop_create_future(loop, &g));
    ASSERT_OK(weft_loop_create_future(loop, &c));
    ASSERT_OK(weft_future_set_error(f, WEFT_EIO, "seen by result"));
    ASSERT_OK(weft_future_set_error(g, WEFT_EIO, "seen by error"));
    ASSERT_EQ_INT(weft_future_result(f, NULL), WEFT_EIO);
    ASSERT_EQ_INT(weft_future_error(g), WEFT_EIO);
    ASSERT_EQ_INT(weft_cancel(c, "cancelled is not an error"), 1);
    wt_capture_begin();
    weft_unref(f);
    weft_unref(g);
    weft_unref(c);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
    WT_CLOSE_LOOP(loop);
}

/* Once the future is done its callbacks are already scheduled: removing one then finds nothing
 * (asyncio clears the list at completion) and the callback still runs. */
TEST(remove_done_callback_after_completion) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_add_done_callback(f, order_cb, (void *)1));
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_EQ_INT(weft_future_remove_done_callback(f, order_cb, (void *)1), 0);
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

const wt_test_t wt_tests[] = {
    T(future_set_result),
    T(future_set_twice),
    T(future_set_error_message),
    T(future_set_error_ecanceled_cancels),
    T(future_set_error_bad_code),
    T(future_cancel),
    T(set_result_on_task_refused),
    T(future_ref_unref),
    T(done_callbacks_scheduled),
    T(done_callback_set_outside_loop),
    T(done_callback_already_done),
    T(done_callbacks_order),
    T(remove_done_callback),
    T(done_callback_outlives_user_ref),
    T(await_outside_task),
    T(await_future),
    T(await_future_error),
    T(await_done_future_no_suspend),
    T(await_many_waiters),
    T(future_error_never_retrieved_report),
    T(future_error_retrieved_no_report),
    T(remove_done_callback_after_completion),
    WT_END,
};
