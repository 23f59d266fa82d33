/* The event loop: callback ordering, handles, run/stop, the clocks, close, errors. */
#include "wt.h"

#include <unistd.h>

/* ---- shared callbacks --------------------------------------------------------------------- */

static void log_cb(void *arg) { wt_log((int)(intptr_t)arg); }

typedef struct {
    weft_loop_t *loop;
    weft_future_t *fut;
    int n;
    double t[16];
} rec_t;

static void set_result_cb(void *arg) {
    rec_t *r = arg;
    ASSERT_OK(weft_future_set_result(r->fut, (void *)(intptr_t)42));
}

/* ---- errors and version ------------------------------------------------------------------- */

TEST(strerror_names) {
    ASSERT_EQ_STR(weft_strerror(WEFT_ETIMEDOUT), "timed out");
    ASSERT_EQ_STR(weft_err_name(WEFT_ETIMEDOUT), "ETIMEDOUT");
    ASSERT_EQ_STR(weft_err_name(WEFT_ECANCELED), "ECANCELED");
    ASSERT_EQ_STR(weft_strerror(WEFT_ECANCELED), "cancelled");
    ASSERT_EQ_INT(WEFT_ECANCELED, -ECANCELED);
    ASSERT_EQ_INT(WEFT_EDEADLK, -EDEADLK);
    /* Never NULL, even for codes outside the table. */
    ASSERT_NOT_NULL(weft_strerror(-99999));
    ASSERT_NOT_NULL(weft_err_name(-99999));
    ASSERT_NOT_NULL(weft_strerror(12345));
}

TEST(version) {
    ASSERT_EQ_INT(weft_version(), WEFT_VERSION_HEX);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
             WEFT_VERSION_PATCH);
    ASSERT_EQ_STR(weft_version_string(), want);
}

TEST(fail_outside_task) {
    ASSERT_EQ_INT(weft_fail(WEFT_EINVAL, "Invalid delay: %d", 7), WEFT_EINVAL);
    ASSERT_EQ_STR(weft_error_message(), "Invalid delay: 7");
}

/* ---- creation, data, state ---------------------------------------------------------------- */

TEST(loop_new_close) {
    weft_loop_t *loop = NULL;
    weft_loop_stats_t st;
    ASSERT_OK(weft_loop_new(&loop, NULL));
    ASSERT_NOT_NULL(loop);
    ASSERT_EQ_INT(weft_loop_is_running(loop), 0);
    ASSERT_EQ_INT(weft_loop_is_closed(loop), 0);
    ASSERT_NULL(weft_get_running_loop());
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.iterations, 0);
    WT_CLOSE_LOOP(loop);
}

TEST(loop_data) {
    weft_loop_t *loop = wt_loop_virtual();
    int x;
    ASSERT_NULL(weft_loop_data(loop));
    weft_loop_set_data(loop, &x);
    ASSERT_EQ_PTR(weft_loop_data(loop), &x);
    WT_CLOSE_LOOP(loop);
}

static int noop_task(void *arg, void **res) { return 0; }

/* After close, a loop kept alive by a future the user holds reports closed and refuses work. */
TEST(closed_loop_refuses_work) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_loop_close(loop));
    ASSERT_EQ_INT(weft_loop_is_closed(loop), 1);
    ASSERT_EQ_PTR(weft_future_loop(f), loop);
    ASSERT_EQ_INT(weft_loop_run_forever(loop), WEFT_ESHUTDOWN);
    ASSERT_EQ_INT(weft_loop_create_task(loop, &t, NULL, NULL, NULL) < 0, 1);
    ASSERT_EQ_INT(weft_loop_create_task(loop, &t, noop_task, NULL, NULL), WEFT_ESHUTDOWN);
    ASSERT_NULL(t);
    ASSERT_EQ_INT(weft_loop_close(loop), 0); /* closing twice is harmless */
    weft_unref(f);
}

/* ---- call_soon ---------------------------------------------------------------------------- */

TEST(call_soon_fifo) {
    weft_loop_t *loop = wt_loop_virtual();
    for (intptr_t i = 0; i < 10; i++)
        ASSERT_OK(weft_call_soon(loop, log_cb, (void *)i, NULL));
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    WT_CLOSE_LOOP(loop);
}

static uint64_t iterations(weft_loop_t *loop) {
    weft_loop_stats_t st;
    weft_loop_stats(loop, &st);
    return st.iterations;
}

static uint64_t iter_a, iter_b;
static weft_loop_t *the_loop;

static void cb_b(void *arg) {
    wt_log(2);
    iter_b = iterations(the_loop);
}

static void cb_a(void *arg) {
    wt_log(1);
    iter_a = iterations(the_loop);
    ASSERT_OK(weft_call_soon(the_loop, cb_b, NULL, NULL));
}

/* One iteration runs only what was ready when it began: B, scheduled by A, runs after C (which
 * was already queued) and in the next iteration. */
TEST(call_soon_next_iteration) {
    weft_loop_t *loop = the_loop = wt_loop_virtual();
    ASSERT_OK(weft_call_soon(loop, cb_a, NULL, NULL));
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)3, NULL));
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 3, 2);
    ASSERT_EQ_INT(iter_b, iter_a + 1);
    WT_CLOSE_LOOP(loop);
}

/* A callback that re-schedules itself forever must not starve the others or the stop. */
static int spins;
static void spin_cb(void *arg) {
    spins++;
    ASSERT_OK(weft_call_soon(arg, spin_cb, arg, NULL));
}

TEST(call_soon_self_rescheduling) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h;
    ASSERT_OK(weft_call_soon(loop, spin_cb, loop, NULL));
    ASSERT_OK(weft_call_later(loop, 0.0, wt_stop_cb, loop, &h));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_LE_INT(spins, 3);
    ASSERT_GE_INT(spins, 1);
    weft_handle_unref(h);
    /* One respin is still queued: run it out by closing (close drops pending callbacks). */
    ASSERT_OK(weft_loop_close(loop));
}

/* stop: the current iteration's callbacks still run, the next iteration's do not. */
static void stop_then_schedule(void *arg) {
    wt_log(1);
    weft_loop_stop(the_loop);
    ASSERT_OK(weft_call_soon(the_loop, log_cb, (void *)3, NULL));
}

TEST(stop_finishes_iteration) {
    weft_loop_t *loop = the_loop = wt_loop_virtual();
    ASSERT_OK(weft_call_soon(loop, stop_then_schedule, NULL, NULL));
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)2, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 2);
    ASSERT_EQ_INT(weft_loop_is_running(loop), 0);
    /* The callback scheduled after the stop runs on the next run. */
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 2, 3);
    WT_CLOSE_LOOP(loop);
}

/* stop() before run_forever(): asyncio runs one iteration and returns. */
TEST(stop_before_run) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)1, NULL));
    weft_loop_stop(loop);
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1);
    WT_CLOSE_LOOP(loop);
}

/* ---- call_later / call_at ----------------------------------------------------------------- */

static void time_log_cb(void *arg) {
    rec_t *r = arg;
    r->t[r->n++] = weft_loop_time(r->loop);
}

static void log_time_cb(void *arg) {
    wt_log((int)(intptr_t)arg);
    wt_log((int)(weft_loop_time(the_loop) * 1000 + 0.5));
}

/* Timers fire by deadline, then in scheduling order for equal deadlines; under the virtual
 * clock each fires exactly at its deadline. */
TEST(call_later_order) {
    weft_loop_t *loop = the_loop = wt_loop_virtual();
    ASSERT_EQ_DBL(weft_loop_time(loop), 0.0);
    ASSERT_OK(weft_call_later(loop, 3.0, log_time_cb, (void *)1, NULL));
    ASSERT_OK(weft_call_later(loop, 1.0, log_time_cb, (void *)2, NULL));
    ASSERT_OK(weft_call_later(loop, 2.0, log_time_cb, (void *)3, NULL));
    ASSERT_OK(weft_call_later(loop, 1.0, log_time_cb, (void *)4, NULL));
    ASSERT_OK(weft_call_later(loop, 1.0, log_time_cb, (void *)5, NULL));
    ASSERT_OK(weft_call_later(loop, 0.5, log_time_cb, (void *)6, NULL));
    ASSERT_OK(weft_call_later(loop, 3.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(6, 500, 2, 1000, 4, 1000, 5, 1000, 3, 2000, 1, 3000);
    ASSERT_EQ_DBL(weft_loop_time(loop), 3.0);
    WT_CLOSE_LOOP(loop);
}

/* A timer already due runs after the callbacks queued before it (call_later(0) is not
 * call_soon's head of the queue). */
TEST(call_later_zero_after_soon) {
    weft_loop_t *loop = the_loop = wt_loop_virtual();
    ASSERT_OK(weft_call_later(loop, 0.0, log_cb, (void *)1, NULL));
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)2, NULL));
    ASSERT_OK(weft_call_later(loop, -5.0, log_cb, (void *)3, NULL));
    ASSERT_OK(weft_call_later(loop, 0.001, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(2, 3, 1);
    WT_CLOSE_LOOP(loop);
}

TEST(call_at_when) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h1, *h2, *hs;
    rec_t r = {loop, NULL, 0, {0}};
    ASSERT_OK(weft_call_at(loop, 5.0, time_log_cb, &r, &h1));
    ASSERT_OK(weft_call_later(loop, 2.5, time_log_cb, &r, &h2));
    ASSERT_OK(weft_call_soon(loop, time_log_cb, &r, &hs));
    ASSERT_EQ_DBL(weft_handle_when(h1), 5.0);
    ASSERT_EQ_DBL(weft_handle_when(h2), 2.5);
    ASSERT(isnan(weft_handle_when(hs)));
    ASSERT_OK(weft_call_at(loop, 5.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(r.n, 3);
    ASSERT_EQ_DBL(r.t[0], 0.0);
    ASSERT_EQ_DBL(r.t[1], 2.5);
    ASSERT_EQ_DBL(r.t[2], 5.0);
    ASSERT_EQ_INT(weft_handle_cancelled(h1), 0);
    weft_handle_unref(h1);
    weft_handle_unref(h2);
    weft_handle_unref(hs);
    WT_CLOSE_LOOP(loop);
}

TEST(call_later_bad_args) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h = NULL;
    ASSERT_EQ_INT(weft_call_later(loop, NAN, log_cb, NULL, &h), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_call_at(loop, NAN, log_cb, NULL, &h), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_call_soon(loop, NULL, NULL, &h), WEFT_EINVAL);
    ASSERT_NULL(h);
    WT_CLOSE_LOOP(loop);
}

/* ---- handles ------------------------------------------------------------------------------ */

TEST(handle_cancel_soon) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h1, *h2;
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)1, &h1));
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)2, &h2));
    ASSERT_EQ_INT(weft_handle_cancelled(h1), 0);
    ASSERT_EQ_INT(weft_handle_cancel(h1), 1);
    ASSERT_EQ_INT(weft_handle_cancelled(h1), 1);
    ASSERT_EQ_INT(weft_handle_cancel(h1), 0);
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(2);
    /* Cancelling a handle whose callback already ran: nothing was pending. */
    ASSERT_EQ_INT(weft_handle_cancel(h2), 0);
    weft_handle_unref(h1);
    weft_handle_unref(h2);
    WT_CLOSE_LOOP(loop);
}

TEST(handle_cancel_later) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h1, *h2;
    weft_loop_stats_t st;
    ASSERT_OK(weft_call_later(loop, 1.0, log_cb, (void *)1, &h1));
    ASSERT_OK(weft_call_later(loop, 2.0, log_cb, (void *)2, &h2));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.timers, 2);
    ASSERT_EQ_INT(st.handles, 2);
    ASSERT_EQ_INT(weft_handle_cancel(h1), 1);
    ASSERT_EQ_INT(weft_handle_cancelled(h1), 1);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.timers, 1);
    ASSERT_OK(weft_call_later(loop, 3.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(2);
    ASSERT_EQ_INT(weft_handle_cancel(h2), 0);
    ASSERT_EQ_INT(weft_handle_cancelled(h2), 0);
    weft_handle_unref(h1);
    weft_handle_unref(h2);
    WT_CLOSE_LOOP(loop);
}

/* Cancelling, from a callback, a timer due in the same iteration: it must not run. */
static weft_handle_t *victim;
static void cancel_victim_cb(void *arg) {
    wt_log(1);
    ASSERT_EQ_INT(weft_handle_cancel(victim), 1);
}

TEST(handle_cancel_same_iteration) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_victim_cb, NULL, NULL));
    ASSERT_OK(weft_call_later(loop, 1.0, log_cb, (void *)2, &victim));
    ASSERT_OK(weft_call_later(loop, 2.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1);
    weft_handle_unref(victim);
    WT_CLOSE_LOOP(loop);
}

/* Releasing the handle does not cancel: the loop keeps its own reference until it ran. */
TEST(handle_unref_before_run) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h1, *h2;
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)1, &h1));
    ASSERT_OK(weft_call_later(loop, 1.0, log_cb, (void *)2, &h2));
    weft_handle_unref(h1);
    weft_handle_unref(h2);
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 2);
    WT_CLOSE_LOOP(loop);
}

/* ---- run_until_complete / run_forever ----------------------------------------------------- */

TEST(run_until_complete_result) {
    weft_loop_t *loop = wt_loop_virtual();
    rec_t r = {loop, NULL, 0, {0}};
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &r.fut));
    ASSERT_OK(weft_call_later(loop, 2.0, set_result_cb, &r, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, r.fut, &v));
    ASSERT_EQ_PTR(v, (void *)42);
    ASSERT_EQ_DBL(weft_loop_time(loop), 2.0);
    ASSERT_EQ_INT(weft_loop_is_running(loop), 0);
    /* Already done: returns its outcome at once; result may be NULL. */
    ASSERT_OK(weft_loop_run_until_complete(loop, r.fut, NULL));
    weft_unref(r.fut);
    WT_CLOSE_LOOP(loop);
}

static void set_error_cb(void *arg) {
    rec_t *r = arg;
    ASSERT_OK(weft_future_set_error(r->fut, WEFT_EPROTO, "bad frame %d", 3));
}

TEST(run_until_complete_error) {
    weft_loop_t *loop = wt_loop_virtual();
    rec_t r = {loop, NULL, 0, {0}};
    void *v = (void *)1;
    ASSERT_OK(weft_loop_create_future(loop, &r.fut));
    ASSERT_OK(weft_call_soon(loop, set_error_cb, &r, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, r.fut, &v), WEFT_EPROTO);
    ASSERT_EQ_STR(weft_error_message(), "bad frame 3");
    ASSERT_EQ_PTR(v, (void *)1);
    weft_unref(r.fut);
    WT_CLOSE_LOOP(loop);
}

/* Nothing is ready, scheduled or watched: the future can never complete. */
TEST(run_until_complete_deadlock) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, f, NULL), WEFT_EDEADLK);
    ASSERT_EQ_INT(weft_future_done(f), 0);
    ASSERT_EQ_INT(weft_loop_is_running(loop), 0);
    /* The loop is still usable. */
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, f, NULL));
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* A task waiting on a future nobody will resolve is the same deadlock. */
static int wait_forever(void *arg, void **res) { return weft_await(arg, NULL); }

TEST(run_until_complete_deadlock_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    t = wt_spawn(loop, wait_forever, f, NULL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EDEADLK);
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    weft_unref(t);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

TEST(run_until_complete_stopped) {
    weft_loop_t *loop = wt_loop_virtual();
    rec_t r = {loop, NULL, 0, {0}};
    void *v = NULL;
    ASSERT_OK(weft_loop_create_future(loop, &r.fut));
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_call_later(loop, 2.0, set_result_cb, &r, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, r.fut, &v), WEFT_EINTR);
    ASSERT_EQ_INT(weft_future_done(r.fut), 0);
    ASSERT_EQ_DBL(weft_loop_time(loop), 1.0);
    ASSERT_OK(weft_loop_run_until_complete(loop, r.fut, &v));
    ASSERT_EQ_PTR(v, (void *)42);
    weft_unref(r.fut);
    WT_CLOSE_LOOP(loop);
}

TEST(run_until_complete_other_loop) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(a, &f));
    ASSERT_EQ_INT(weft_loop_run_until_complete(b, f, NULL), WEFT_EINVAL);
    weft_unref(f);
    WT_CLOSE_LOOP(a);
    WT_CLOSE_LOOP(b);
}

static int running_seen, closed_rc, rerun_rc, rerun2_rc;
static weft_loop_t *running_loop_seen;

static void inside_cb(void *arg) {
    weft_loop_t *loop = arg;
    weft_future_t *f;
    running_seen = weft_loop_is_running(loop);
    running_loop_seen = weft_get_running_loop();
    closed_rc = weft_loop_close(loop);
    rerun_rc = weft_loop_run_forever(loop);
    ASSERT_OK(weft_loop_create_future(loop, &f));
    rerun2_rc = weft_loop_run_until_complete(loop, f, NULL);
    weft_unref(f);
    weft_loop_stop(loop);
}

TEST(running_state_and_reentry) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_EQ_INT(weft_loop_is_running(loop), 0);
    ASSERT_OK(weft_call_soon(loop, inside_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(running_seen, 1);
    ASSERT_EQ_PTR(running_loop_seen, loop);
    ASSERT_EQ_INT(closed_rc, WEFT_EBUSY);
    ASSERT_EQ_INT(rerun_rc, WEFT_EBUSY);
    ASSERT_EQ_INT(rerun2_rc, WEFT_EBUSY);
    ASSERT_EQ_INT(weft_loop_is_running(loop), 0);
    ASSERT_EQ_INT(weft_loop_is_closed(loop), 0);
    ASSERT_NULL(weft_get_running_loop());
    WT_CLOSE_LOOP(loop);
}

/* asyncio: "Cannot run the event loop while another loop is running". */
static int other_rc;
static void run_other_cb(void *arg) {
    weft_loop_t *other = arg;
    weft_future_t *f;
    ASSERT_OK(weft_loop_create_future(other, &f));
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_call_soon(other, wt_stop_cb, other, NULL));
    other_rc = weft_loop_run_forever(other);
    weft_unref(f);
}

TEST(nested_loops_refused) {
    weft_loop_t *a = wt_loop_virtual(), *b = wt_loop_virtual();
    ASSERT_OK(weft_call_soon(a, run_other_cb, b, NULL));
    ASSERT_OK(weft_call_soon(a, wt_stop_cb, a, NULL));
    ASSERT_OK(weft_loop_run_forever(a));
    ASSERT_LT_INT(other_rc, 0);
    /* b still works afterwards (and runs the stop callback left queued). */
    ASSERT_OK(weft_loop_run_forever(b));
    WT_CLOSE_LOOP(a);
    WT_CLOSE_LOOP(b);
}

/* Loops run one after another on the same thread. */
TEST(sequential_loops) {
    for (int i = 0; i < 3; i++) {
        weft_loop_t *loop = wt_loop_virtual();
        ASSERT_OK(weft_call_soon(loop, log_cb, (void *)(intptr_t)i, NULL));
        ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
        ASSERT_OK(weft_loop_run_forever(loop));
        WT_CLOSE_LOOP(loop);
    }
    WT_ASSERT_LOG(0, 1, 2);
}

TEST(stats_iterations) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_loop_stats_t st;
    ASSERT_OK(weft_call_later(loop, 1.0, log_cb, (void *)1, NULL));
    ASSERT_OK(weft_call_later(loop, 2.0, log_cb, (void *)2, NULL));
    ASSERT_OK(weft_call_later(loop, 3.0, wt_stop_cb, loop, NULL));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.handles, 3);
    ASSERT_EQ_INT(st.timers, 3);
    ASSERT_EQ_INT(st.ready, 0);
    ASSERT_EQ_INT(st.tasks, 0);
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)0, NULL));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.ready, 1);
    ASSERT_OK(weft_loop_run_forever(loop));
    weft_loop_stats(loop, &st);
    ASSERT_GE_INT(st.iterations, 4);
    ASSERT_LE_INT(st.iterations, 5);
    WT_CLOSE_LOOP(loop);
}

/* ---- clocks -------------------------------------------------------------------------------- */

TEST(virtual_clock_jumps) {
    weft_loop_t *loop = wt_loop_virtual();
    double t0 = wt_now();
    ASSERT_EQ_DBL(weft_loop_time(loop), 0.0);
    ASSERT_OK(weft_call_later(loop, 1000.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_DBL(weft_loop_time(loop), 1000.0);
    ASSERT_LT_INT((wt_now() - t0) * 1000, 1000);
    /* The clock does not move while the loop is idle. */
    usleep(2000);
    ASSERT_EQ_DBL(weft_loop_time(loop), 1000.0);
    WT_CLOSE_LOOP(loop);
}

TEST(real_clock_monotonic) {
    weft_loop_t *loop = wt_loop_real();
    double prev = weft_loop_time(loop), t0 = prev;
    for (int i = 0; i < 100000; i++) {
        double t = weft_loop_time(loop);
        ASSERT(t >= prev);
        prev = t;
    }
    usleep(30000);
    ASSERT_TIME(weft_loop_time(loop) - t0, 0.030 + (prev - t0));
    WT_CLOSE_LOOP(loop);
}

TEST(real_clock_call_later) {
    weft_loop_t *loop = wt_loop_real();
    rec_t r = {loop, NULL, 0, {0}};
    double t0 = weft_loop_time(loop), w0 = wt_now();
    ASSERT_OK(weft_call_later(loop, 0.100, time_log_cb, &r, NULL));
    ASSERT_OK(weft_call_later(loop, 0.050, time_log_cb, &r, NULL));
    ASSERT_OK(weft_call_later(loop, 0.100, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(r.n, 2);
    ASSERT_TIME(r.t[0] - t0, 0.050);
    ASSERT_TIME(r.t[1] - t0, 0.100);
    ASSERT_TIME(wt_now() - w0, 0.100);
    /* Never early. */
    ASSERT(r.t[0] - t0 >= 0.050);
    WT_CLOSE_LOOP(loop);
}

/* ---- close ---------------------------------------------------------------------------------- */

static int sleeper(void *arg, void **res) {
    wt_log(1);
    weft_sleep(100.0);
    wt_log(2); /* never: the loop closes while the task sleeps */
    return 0;
}

/* Closing with a task still pending reports it and destroys it; the reference the user holds
 * stays valid; pending callbacks are dropped, not run. */
TEST(loop_close_pending_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, sleeper, NULL, "sleepy");
    weft_handle_t *h;
    char *err;
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)3, &h));
    ASSERT_OK(weft_call_later(loop, 5.0, log_cb, (void *)4, NULL));
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "Task was destroyed but it is pending");
    ASSERT_CONTAINS(err, "sleepy");
    free(err);
    WT_ASSERT_LOG(1);
    ASSERT_EQ_STR(weft_task_name(t), "sleepy");
    weft_handle_unref(h);
    weft_unref(t);
}

/* A task created and never run is dropped at close without running. */
TEST(loop_close_never_started_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, sleeper, NULL, "never");
    char *err;
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "never");
    free(err);
    ASSERT_EQ_INT(wt_log_len(), 0);
    weft_unref(t);
}

/* Closing a loop whose tasks are suspended in await, gather, wait, wait_for and a timeout
 * scope: every task is destroyed without leaking what its suspension allocated (LeakSanitizer
 * checks in the ASan build), and the futures the user still holds can be resolved afterwards
 * without touching the destroyed tasks' stacks. */
static int in_await(void *arg, void **res) { return weft_await(arg, NULL); }
static int in_gather(void *arg, void **res) {
    weft_future_t *fs[2] = {arg, arg};
    return weft_gather(fs, 2, NULL);
}
static int in_gather_all(void *arg, void **res) {
    int codes[1];
    return weft_gather_all((weft_future_t **)&arg, 1, NULL, codes);
}
static int in_wait(void *arg, void **res) {
    return weft_wait((weft_future_t **)&arg, 1, WEFT_ALL_COMPLETED, 100.0);
}
static int in_wait_for(void *arg, void **res) { return weft_wait_for(arg, 100.0, NULL); }
static int in_timeout(void *arg, void **res) {
    weft_timeout_t to;
    ASSERT_OK(weft_timeout_begin(&to, 50.0));
    return weft_timeout_end(&to, weft_sleep(100.0));
}
TEST(loop_close_suspended_everywhere) {
    weft_loop_t *loop = wt_loop_virtual();
    /* (Not as_completed, TaskGroup or shield: there the task body itself holds what it
     * allocated, which only the body could free.) */
    weft_task_fn fns[] = {in_await, in_gather, in_gather_all, in_wait, in_wait_for, in_timeout};
    enum { N = sizeof fns / sizeof fns[0] };
    weft_future_t *f[N];
    weft_task_t *t[N];
    char *err;
    for (int i = 0; i < N; i++) {
        ASSERT_OK(weft_loop_create_future(loop, &f[i]));
        t[i] = wt_spawn(loop, fns[i], f[i], NULL);
    }
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    for (int i = 0; i < N; i++)
        ASSERT_EQ_INT(weft_future_done(t[i]), 0);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    err = wt_capture_end();
    free(err);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(weft_future_done(t[i]), 1);
        ASSERT_EQ_INT(weft_future_set_result(f[i], NULL) <= 0, 1);
        weft_unref(t[i]);
        weft_unref(f[i]);
    }
}

/* WEFT_NEVER is "a deadline that never comes": a timer at WEFT_NEVER never fires, even on the
 * virtual clock, whose time must never jump to infinity. With nothing else to do, the future
 * can never complete: -EDEADLK. */
TEST(call_later_never_virtual) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_handle_t *h;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_call_later(loop, 2.0, log_cb, (void *)1, NULL));
    ASSERT_OK(weft_call_later(loop, WEFT_NEVER, log_cb, (void *)2, &h));
    ASSERT(isinf(weft_handle_when(h)));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, f, NULL), WEFT_EDEADLK);
    WT_ASSERT_LOG(1);
    ASSERT(isfinite(weft_loop_time(loop)));
    ASSERT_EQ_DBL(weft_loop_time(loop), 2.0);
    ASSERT_EQ_INT(weft_handle_cancel(h), 1);
    weft_handle_unref(h);
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, f, NULL));
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

const wt_test_t wt_tests[] = {
    T(strerror_names),
    T(version),
    T(fail_outside_task),
    T(loop_new_close),
    T(loop_data),
    T(closed_loop_refuses_work),
    T(call_soon_fifo),
    T(call_soon_next_iteration),
    T(call_soon_self_rescheduling),
    T(stop_finishes_iteration),
    T(stop_before_run),
    T(call_later_order),
    T(call_later_zero_after_soon),
    T(call_at_when),
    T(call_later_bad_args),
    T(handle_cancel_soon),
    T(handle_cancel_later),
    T(handle_cancel_same_iteration),
    T(handle_unref_before_run),
    T(run_until_complete_result),
    T(run_until_complete_error),
    T(run_until_complete_deadlock),
    T(run_until_complete_deadlock_task),
    T(run_until_complete_stopped),
    T(run_until_complete_other_loop),
    T(running_state_and_reentry),
    T(nested_loops_refused),
    T(sequential_loops),
    T(stats_iterations),
    T(virtual_clock_jumps),
    T(real_clock_monotonic),
    T(real_clock_call_later),
    T(loop_close_pending_task),
    T(loop_close_never_started_task),
    T(loop_close_suspended_everywhere),
    T(call_later_never_virtual),
    WT_END,
};
