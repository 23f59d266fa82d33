/* Tasks: creation, identity, await, errors and their reports, sleep, weft_run, stacks. */
#include "wt.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static weft_loop_t *L(void) { return weft_get_running_loop(); }

static int ret_arg(void *arg, void **res) {
    *res = arg;
    return 0;
}

static int log_and_ret(void *arg, void **res) {
    wt_log((int)(intptr_t)arg);
    *res = arg;
    return 0;
}

/* ---- creation ------------------------------------------------------------------------------ */

TEST(task_runs_later) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t;
    weft_loop_stats_t st;
    void *v = NULL;
    ASSERT_OK(weft_loop_create_task(loop, &t, log_and_ret, (void *)5, NULL));
    ASSERT_EQ_INT(wt_log_len(), 0); /* scheduled, not started */
    ASSERT_EQ_INT(weft_is_task(t), 1);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_EQ_INT(weft_future_result(t, &v), WEFT_EINPROGRESS);
    ASSERT_EQ_PTR(weft_future_loop(t), loop);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.tasks, 1);
    ASSERT_EQ_INT(st.pending_tasks, 1);
    ASSERT_EQ_INT(st.futures, 0);
    ASSERT_EQ_INT(st.ready, 1);
    ASSERT_EQ_INT(st.stacks, 0);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &v));
    ASSERT_EQ_PTR(v, (void *)5);
    WT_ASSERT_LOG(5);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.tasks, 1); /* we still hold it */
    ASSERT_EQ_INT(st.pending_tasks, 0);
    ASSERT_EQ_INT(weft_future_done(t), 1);
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    v = NULL;
    ASSERT_OK(weft_future_result(t, &v));
    ASSERT_EQ_PTR(v, (void *)5);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* A body that leaves *result alone: the value is NULL. */
static int no_result(void *arg, void **res) { return 0; }

TEST(task_result_default_null) {
    weft_loop_t *loop = wt_loop_virtual();
    void *v = (void *)1;
    ASSERT_OK(wt_run_task(loop, no_result, NULL, &v));
    ASSERT_NULL(v);
    WT_CLOSE_LOOP(loop);
}

TEST(tasks_start_fifo) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t[5];
    for (intptr_t i = 0; i < 5; i++)
        t[i] = wt_spawn(loop, log_and_ret, (void *)i, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t[4], NULL));
    WT_ASSERT_LOG(0, 1, 2, 3, 4);
    for (int i = 0; i < 5; i++)
        weft_unref(t[i]);
    WT_CLOSE_LOOP(loop);
}

TEST(create_task_outside_loop) {
    weft_task_t *t = NULL;
    ASSERT_EQ_INT(weft_create_task(&t, ret_arg, NULL, NULL), WEFT_EPERM);
    ASSERT_NULL(t);
    ASSERT_NULL(weft_current_task());
}

static int spawner(void *arg, void **res) {
    weft_task_t *child;
    void *v = NULL;
    ASSERT_OK(weft_create_task(&child, ret_arg, (void *)11, NULL));
    ASSERT_EQ_PTR(weft_future_loop(child), L());
    ASSERT_OK(weft_await(child, &v));
    ASSERT_EQ_PTR(v, (void *)11);
    weft_unref(child);
    /* Fire and forget from a task. */
    ASSERT_OK(weft_create_task(NULL, log_and_ret, (void *)1, NULL));
    ASSERT_OK(weft_sleep(0));
    WT_ASSERT_LOG(1);
    return 0;
}

TEST(create_task_from_task) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, spawner, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* Fire and forget: no reference; the loop keeps the task until it ends. */
static int sleep_then_log(void *arg, void **res) {
    ASSERT_OK(weft_sleep(1.0));
    wt_log((int)(intptr_t)arg);
    return 0;
}

TEST(fire_and_forget) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t;
    ASSERT_OK(weft_loop_create_task(loop, NULL, sleep_then_log, (void *)1, NULL));
    /* Releasing our reference to a running task is fire-and-forget too. */
    ASSERT_OK(weft_loop_create_task(loop, &t, sleep_then_log, (void *)2, NULL));
    weft_unref(t);
    ASSERT_OK(weft_call_later(loop, 2.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 2);
    WT_CLOSE_LOOP(loop);
}

/* ---- identity --------------------------------------------------------------------------- */

TEST(task_names) {
    weft_loop_t *loop = wt_loop_virtual();
    char name[32] = "worker-1";
    weft_task_options_t o = {name, 0};
    weft_task_t *a, *b;
    char want[64];
    ASSERT_OK(weft_loop_create_task(loop, &a, ret_arg, NULL, NULL));
    ASSERT_OK(weft_loop_create_task(loop, &b, ret_arg, NULL, &o));
    strcpy(name, "clobbered"); /* the name was copied */
    snprintf(want, sizeof want, "Task-%llu", (unsigned long long)weft_task_id(a));
    ASSERT_EQ_STR(weft_task_name(a), want);
    ASSERT_EQ_STR(weft_task_name(b), "worker-1");
    ASSERT_OK(weft_task_set_name(a, "renamed"));
    ASSERT_EQ_STR(weft_task_name(a), "renamed");
    ASSERT_OK(weft_loop_run_until_complete(loop, b, NULL));
    ASSERT_OK(weft_task_set_name(b, "after-done"));
    ASSERT_EQ_STR(weft_task_name(b), "after-done");
    weft_unref(a);
    weft_unref(b);
    WT_CLOSE_LOOP(loop);
}

TEST(task_ids_increase) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = wt_spawn(loop, ret_arg, NULL, NULL);
    ASSERT_GT_INT(weft_task_id(t[0]), 0);
    for (int i = 1; i < 4; i++)
        ASSERT_GT_INT(weft_task_id(t[i]), weft_task_id(t[i - 1]));
    ASSERT_OK(weft_loop_run_until_complete(loop, t[3], NULL));
    for (int i = 0; i < 4; i++)
        weft_unref(t[i]);
    /* Ids are per process, never reused across loops. */
    weft_loop_t *loop2 = wt_loop_virtual();
    weft_task_t *u = wt_spawn(loop2, ret_arg, NULL, NULL);
    ASSERT_GT_INT(weft_task_id(u), 4);
    ASSERT_OK(weft_loop_run_until_complete(loop2, u, NULL));
    weft_unref(u);
    WT_CLOSE_LOOP(loop2);
    WT_CLOSE_LOOP(loop);
}

static weft_task_t *seen_current;
static int current_body(void *arg, void **res) {
    seen_current = weft_current_task();
    ASSERT_OK(weft_sleep(0.5));
    ASSERT_EQ_PTR(weft_current_task(), seen_current);
    return 0;
}
static void current_cb(void *arg) { wt_log(weft_current_task() == NULL); }

TEST(current_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, current_body, NULL, NULL);
    ASSERT_NULL(weft_current_task());
    ASSERT_OK(weft_call_later(loop, 0.25, current_cb, NULL, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_EQ_PTR(seen_current, t);
    WT_ASSERT_LOG(1); /* NULL in a callback, even while a task is suspended */
    ASSERT_NULL(weft_current_task());
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int sleep_ms(void *arg, void **res) {
    return weft_sleep((double)(intptr_t)arg / 1000.0);
}

static int all_tasks_body(void *arg, void **res) {
    weft_task_t *list[8];
    weft_task_t **kids = arg;
    size_t n = weft_all_tasks(L(), list, 8);
    int found = 0;
    ASSERT_EQ_INT(n, 4); /* this one and three children */
    for (size_t i = 0; i < n; i++)
        found += list[i] == weft_current_task() || list[i] == kids[0] || list[i] == kids[1] ||
                 list[i] == kids[2];
    ASSERT_EQ_INT(found, 4);
    /* max smaller than the count: still returns the count. */
    ASSERT_EQ_INT(weft_all_tasks(L(), list, 1), 4);
    ASSERT_EQ_INT(weft_all_tasks(L(), NULL, 0), 4);
    ASSERT_OK(weft_await(kids[0], NULL));
    ASSERT_EQ_INT(weft_all_tasks(L(), list, 8), 3); /* finished ones are gone */
    return 0;
}

TEST(all_tasks) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *kids[3], *t;
    ASSERT_EQ_INT(weft_all_tasks(loop, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        kids[i] = wt_spawn(loop, sleep_ms, (void *)(intptr_t)(1000 * (i + 1)), NULL);
    t = wt_spawn(loop, all_tasks_body, kids, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_loop_run_until_complete(loop, kids[i], NULL));
        weft_unref(kids[i]);
    }
    ASSERT_EQ_INT(weft_all_tasks(loop, NULL, 0), 0);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- await ------------------------------------------------------------------------------ */

static int runs;
static int counted(void *arg, void **res) {
    runs++;
    ASSERT_OK(weft_sleep(1.0));
    *res = (void *)0x77;
    return 0;
}

static int await_it(void *arg, void **res) {
    void *v = NULL;
    int rc = weft_await(arg, &v);
    *res = v;
    return rc;
}

/* Two tasks await one task; later a third awaits it once done: one run, one outcome. */
TEST(await_task_twice) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, counted, NULL, NULL);
    weft_task_t *a = wt_spawn(loop, await_it, t, NULL);
    weft_task_t *b = wt_spawn(loop, await_it, t, NULL);
    void *va = NULL, *vb = NULL, *vc = NULL;
    ASSERT_OK(weft_loop_run_until_complete(loop, a, &va));
    ASSERT_OK(weft_loop_run_until_complete(loop, b, &vb));
    ASSERT_EQ_PTR(va, (void *)0x77);
    ASSERT_EQ_PTR(vb, (void *)0x77);
    ASSERT_OK(wt_run_task(loop, await_it, t, &vc));
    ASSERT_EQ_PTR(vc, (void *)0x77);
    ASSERT_EQ_INT(runs, 1);
    weft_unref(a);
    weft_unref(b);
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int fails_later(void *arg, void **res) {
    ASSERT_OK(weft_sleep(1.0));
    return weft_fail(WEFT_EINVAL, "Invalid delay: %d", (int)(intptr_t)arg);
}

static int await_failing(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, fails_later, (void *)-3, "failer");
    int rc = weft_await(t, NULL);
    ASSERT_EQ_INT(rc, WEFT_EINVAL);
    ASSERT_EQ_STR(weft_error_message(), "Invalid delay: -3");
    ASSERT_EQ_INT(weft_future_error(t), WEFT_EINVAL);
    ASSERT_EQ_STR(weft_future_error_message(t), "Invalid delay: -3");
    ASSERT_EQ_INT(weft_future_cancelled(t), 0);
    /* Awaiting it again gives the same error. */
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_EINVAL);
    ASSERT_EQ_STR(weft_error_message(), "Invalid delay: -3");
    weft_unref(t);
    return 0;
}

TEST(task_fail_message) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, await_failing, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* The message outlives the task that failed: the awaiter keeps its own copy. */
static int await_and_drop(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, fails_later, (void *)8, NULL);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_EINVAL);
    weft_unref(t);
    ASSERT_EQ_STR(weft_error_message(), "Invalid delay: 8");
    return 0;
}

TEST(error_message_outlives_task) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, await_and_drop, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int plain_error(void *arg, void **res) { return WEFT_EIO; }

TEST(task_error_default_message) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, plain_error, NULL, NULL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EIO);
    ASSERT_EQ_STR(weft_error_message(), weft_strerror(WEFT_EIO));
    ASSERT_EQ_STR(weft_future_error_message(t), weft_strerror(WEFT_EIO));
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* Each task has its own message: one task's failure does not overwrite another's. */
static int msg_a(void *arg, void **res) {
    weft_future_t *f;
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_future_set_error(f, WEFT_EIO, "message A"));
    ASSERT_EQ_INT(weft_await(f, NULL), WEFT_EIO);
    ASSERT_OK(weft_sleep(1.0)); /* task B fails meanwhile */
    ASSERT_EQ_STR(weft_error_message(), "message A");
    weft_unref(f);
    return 0;
}
static int msg_b(void *arg, void **res) {
    weft_future_t *f;
    ASSERT_OK(weft_sleep(0.5));
    ASSERT_OK(weft_create_future(&f));
    ASSERT_OK(weft_future_set_error(f, WEFT_EPIPE, "message B"));
    ASSERT_EQ_INT(weft_await(f, NULL), WEFT_EPIPE);
    ASSERT_EQ_STR(weft_error_message(), "message B");
    weft_unref(f);
    return 0;
}

TEST(error_message_per_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *a = wt_spawn(loop, msg_a, NULL, NULL), *b = wt_spawn(loop, msg_b, NULL, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, a, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, b, NULL));
    weft_unref(a);
    weft_unref(b);
    WT_CLOSE_LOOP(loop);
}

/* ---- "Task error was never retrieved" ------------------------------------------------------ */

/* Runs the loop until `t` is done without retrieving its outcome (done callbacks do not). */
static void stop_when_done(weft_future_t *f, void *loop) { weft_loop_stop(loop); }
static void run_until_done_unretrieved(weft_loop_t *loop, weft_task_t *t) {
    ASSERT_OK(weft_future_add_done_callback(t, stop_when_done, loop));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(weft_future_done(t), 1);
}

TEST(error_never_retrieved_report) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, fails_later, (void *)42, "lost-error");
    char *err;
    run_until_done_unretrieved(loop, t);
    wt_capture_begin();
    weft_unref(t);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "Task error was never retrieved");
    ASSERT_CONTAINS(err, "lost-error");
    ASSERT_CONTAINS(err, "Invalid delay: 42");
    free(err);
    WT_CLOSE_LOOP(loop);
}

/* Fire and forget: the report comes when the loop drops its reference. */
TEST(error_never_retrieved_fire_and_forget) {
    weft_loop_t *loop = wt_loop_virtual();
    char *err;
    weft_task_options_t o = {"forgotten", 0};
    ASSERT_OK(weft_loop_create_task(loop, NULL, fails_later, (void *)1, &o));
    ASSERT_OK(weft_call_later(loop, 2.0, wt_stop_cb, loop, NULL));
    wt_capture_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "Task error was never retrieved");
    ASSERT_CONTAINS(err, "forgotten");
    free(err);
    WT_CLOSE_LOOP(loop);
}

TEST(error_retrieved_no_report) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *a = wt_spawn(loop, fails_later, (void *)1, "by-error");
    weft_task_t *b = wt_spawn(loop, fails_later, (void *)2, "by-result");
    weft_task_t *c = wt_spawn(loop, fails_later, (void *)3, "by-run");
    weft_task_t *d = wt_spawn(loop, fails_later, (void *)4, "by-await");
    weft_task_t *w = wt_spawn(loop, await_it, d, NULL);
    char *err;
    run_until_done_unretrieved(loop, a);
    ASSERT_EQ_INT(weft_future_error(a), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_future_result(b, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, c, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, w, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_future_error(w), WEFT_EINVAL);
    wt_capture_begin();
    weft_unref(a);
    weft_unref(b);
    weft_unref(c);
    weft_unref(d);
    weft_unref(w);
    err = wt_capture_end();
    ASSERT_NOT_CONTAINS(err, "never retrieved");
    free(err);
    WT_CLOSE_LOOP(loop);
}

/* ---- sleep ------------------------------------------------------------------------------- */

static int yielder(void *arg, void **res) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 3; i++) {
        wt_log(id * 10 + i);
        ASSERT_OK(weft_sleep(0));
    }
    return 0;
}

TEST(sleep_zero_interleaves) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *a = wt_spawn(loop, yielder, (void *)1, NULL);
    weft_task_t *b = wt_spawn(loop, yielder, (void *)2, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, b, NULL));
    WT_ASSERT_LOG(10, 20, 11, 21, 12, 22);
    ASSERT_EQ_DBL(weft_loop_time(loop), 0.0);
    weft_unref(a);
    weft_unref(b);
    WT_CLOSE_LOOP(loop);
}

/* sleep(0) runs again after everything ready now, including what the task itself queued. */
static void log_cb(void *arg) { wt_log((int)(intptr_t)arg); }
static int sleep0_after_ready(void *arg, void **res) {
    ASSERT_OK(weft_call_soon(L(), log_cb, (void *)1, NULL));
    ASSERT_OK(weft_call_soon(L(), log_cb, (void *)2, NULL));
    ASSERT_OK(weft_sleep(0));
    wt_log(3);
    ASSERT_OK(weft_sleep(-1.0)); /* negative: same as 0 */
    wt_log(4);
    return 0;
}

TEST(sleep_zero_after_ready) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, sleep0_after_ready, NULL, NULL));
    WT_ASSERT_LOG(1, 2, 3, 4);
    WT_CLOSE_LOOP(loop);
}

static int sleep_for(void *arg, void **res) {
    double d = (double)(intptr_t)arg / 1000.0;
    ASSERT_OK(weft_sleep(d));
    ASSERT_EQ_DBL(weft_loop_time(L()), d);
    wt_log((int)(intptr_t)arg);
    return 0;
}

TEST(sleep_order_virtual) {
    weft_loop_t *loop = wt_loop_virtual();
    intptr_t ms[] = {3000, 1000, 2000, 1000, 500};
    weft_task_t *t[5];
    for (int i = 0; i < 5; i++)
        t[i] = wt_spawn(loop, sleep_for, (void *)ms[i], NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t[0], NULL));
    WT_ASSERT_LOG(500, 1000, 1000, 2000, 3000);
    ASSERT_EQ_DBL(weft_loop_time(loop), 3.0);
    for (int i = 0; i < 5; i++)
        weft_unref(t[i]);
    WT_CLOSE_LOOP(loop);
}

static int sleep_until_body(void *arg, void **res) {
    ASSERT_OK(weft_sleep(1.0));
    ASSERT_OK(weft_sleep_until(4.5));
    ASSERT_EQ_DBL(weft_loop_time(L()), 4.5);
    ASSERT_OK(weft_sleep_until(2.0)); /* in the past: returns at once (after a yield) */
    ASSERT_EQ_DBL(weft_loop_time(L()), 4.5);
    ASSERT_EQ_INT(weft_sleep_until(NAN), WEFT_EINVAL);
    return 0;
}

TEST(sleep_until) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, sleep_until_body, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

static int real_sleeper(void *arg, void **res) {
    double t0 = wt_now();
    ASSERT_OK(weft_sleep(0.050));
    ASSERT_TIME(wt_now() - t0, 0.050);
    return 0;
}

TEST(sleep_real_clock) {
    weft_loop_t *loop = wt_loop_real();
    double t0 = wt_now();
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = wt_spawn(loop, real_sleeper, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_loop_run_until_complete(loop, t[i], NULL));
        weft_unref(t[i]);
    }
    ASSERT_TIME(wt_now() - t0, 0.050); /* concurrently, not one after the other */
    WT_CLOSE_LOOP(loop);
}

/* ---- chains and stacks -------------------------------------------------------------------- */

static int chain(void *arg, void **res) {
    intptr_t depth = (intptr_t)arg;
    weft_task_t *child;
    void *v = NULL;
    if (depth == 0) {
        ASSERT_OK(weft_sleep(1.0));
        *res = (void *)1;
        return 0;
    }
    child = wt_spawn(NULL, chain, (void *)(depth - 1), NULL);
    ASSERT_OK(weft_await(child, &v));
    weft_unref(child);
    *res = (void *)((intptr_t)v + 1);
    return 0;
}

TEST(await_chain) {
    weft_loop_t *loop = wt_loop_virtual();
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, chain, (void *)100, &v));
    ASSERT_EQ_PTR(v, (void *)101);
    ASSERT_EQ_DBL(weft_loop_time(loop), 1.0);
    WT_CLOSE_LOOP(loop);
}

static int big_frame(void *arg, void **res) {
    size_t n = (size_t)(intptr_t)arg;
    volatile char *buf = __builtin_alloca(n);
    for (size_t i = 0; i < n; i += 512)
        buf[i] = (char)i;
    ASSERT_OK(weft_sleep(0));
    for (size_t i = 0; i < n; i += 512)
        ASSERT_EQ_INT(buf[i], (char)i);
    return 0;
}

/* A task asking for a bigger stack gets it; so do a loop's tasks with a bigger default. */
TEST(task_stack_size) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_options_t o = {"big", 512 * 1024};
    weft_task_t *t;
    weft_loop_stats_t st;
    ASSERT_OK(weft_loop_create_task(loop, &t, big_frame, (void *)(intptr_t)(400 * 1024), &o));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    weft_unref(t);
    WT_CLOSE_LOOP(loop);

    weft_loop_options_t lo = {.stack_size = 1024 * 1024, .virtual_clock = 1};
    ASSERT_OK(weft_loop_new(&loop, &lo));
    ASSERT_OK(weft_loop_create_task(loop, &t, big_frame, (void *)(intptr_t)(800 * 1024), NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.stacks, 0); /* given back when the body returned */
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static int stacks_seen;
static int hold_stack(void *arg, void **res) {
    weft_loop_stats_t st;
    ASSERT_OK(weft_sleep(1.0));
    weft_loop_stats(L(), &st);
    if ((int)st.stacks > stacks_seen)
        stacks_seen = (int)st.stacks;
    return 0;
}

TEST(stacks_counted) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t[10];
    for (int i = 0; i < 10; i++)
        t[i] = wt_spawn(loop, hold_stack, NULL, NULL);
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(weft_loop_run_until_complete(loop, t[i], NULL));
        weft_unref(t[i]);
    }
    ASSERT_EQ_INT(stacks_seen, 10);
    WT_CLOSE_LOOP(loop);
}

/* ---- stack overflow ------------------------------------------------------------------------ */

static volatile int recursion_limit; /* 0: none; volatile, so the recursion is not elided */

__attribute__((noinline)) static int recurse(int n) {
    volatile char pad[512];
    if (recursion_limit && n > recursion_limit)
        return 0;
    pad[0] = (char)n;
    pad[511] = (char)n;
    return recurse(n + 1) + pad[0] + pad[511];
}

static int overflow_body(void *arg, void **res) { return recurse(0); }

static void overflow_child(void) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_options_t o = {"deep-recursion", 0};
    weft_task_t *t;
    ASSERT_OK(weft_loop_create_task(loop, &t, overflow_body, NULL, &o));
    weft_loop_run_until_complete(loop, t, NULL);
    _exit(3); /* not reached */
}

TEST(task_stack_overflow) {
    int status = 0;
    char *err = wt_run_child(overflow_child, &status);
    fputs(err, stderr);
    ASSERT_CONTAINS(err, "stack overflow in task");
    ASSERT_CONTAINS(err, "deep-recursion");
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ_INT(WTERMSIG(status), SIGABRT);
    free(err);
}

/* ---- weft_run ------------------------------------------------------------------------------ */

static int run_main(void *arg, void **res) {
    ASSERT_NOT_NULL(weft_get_running_loop());
    ASSERT_OK(weft_sleep(0.001));
    *res = arg;
    return 0;
}

TEST(run_returns_result) {
    void *v = NULL;
    ASSERT_OK(weft_run(run_main, (void *)123, &v));
    ASSERT_EQ_PTR(v, (void *)123);
    ASSERT_NULL(weft_get_running_loop());
    ASSERT_OK(weft_run(run_main, (void *)5, NULL));
}

static int run_main_virtual(void *arg, void **res) {
    ASSERT_OK(weft_sleep(3600.0));
    ASSERT_EQ_DBL(weft_loop_time(L()), 3600.0);
    return 0;
}

TEST(run_with_virtual_clock) {
    weft_loop_options_t o = {.virtual_clock = 1};
    double t0 = wt_now();
    ASSERT_OK(weft_run_with(&o, run_main_virtual, NULL, NULL));
    ASSERT_LT_INT((wt_now() - t0) * 1000, 1000);
}

static int run_main_fails(void *arg, void **res) {
    ASSERT_OK(weft_sleep(0.001));
    return weft_fail(WEFT_EPROTO, "main said %s", "no");
}

TEST(run_error_message) {
    void *v = (void *)9;
    ASSERT_EQ_INT(weft_run(run_main_fails, NULL, &v), WEFT_EPROTO);
    ASSERT_EQ_STR(weft_error_message(), "main said no");
    ASSERT_EQ_PTR(v, (void *)9);
}

static int cleanups;
static int leftover(void *arg, void **res) {
    int rc = weft_sleep(1000.0);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(0.5)); /* clean-up that needs the loop */
    cleanups++;
    weft_shield_end();
    return rc;
}

static int leftover_fails(void *arg, void **res) {
    weft_sleep(1000.0);
    return weft_fail(WEFT_EIO, "failed during shutdown");
}

static int run_main_spawns(void *arg, void **res) {
    ASSERT_OK(weft_create_task(NULL, leftover, NULL, NULL));
    ASSERT_OK(weft_create_task(NULL, leftover, NULL, NULL));
    ASSERT_OK(weft_create_task(NULL, leftover_fails, NULL, NULL));
    ASSERT_OK(weft_sleep(0.01));
    *res = (void *)7;
    return 0;
}

/* Leftover tasks are cancelled and allowed to finish their clean-up before the loop closes. */
TEST(run_cancels_leftover_tasks) {
    weft_loop_options_t o = {.virtual_clock = 1};
    void *v = NULL;
    char *err;
    wt_capture_begin();
    ASSERT_OK(weft_run_with(&o, run_main_spawns, NULL, &v));
    err = wt_capture_end();
    ASSERT_EQ_PTR(v, (void *)7);
    ASSERT_EQ_INT(cleanups, 2);
    ASSERT_NOT_CONTAINS(err, "destroyed but it is pending");
    ASSERT_CONTAINS(err, "failed during shutdown"); /* asyncio logs such errors */
    free(err);
}

static int nested_run_rc;
static int run_nested(void *arg, void **res) {
    nested_run_rc = weft_run(run_main, NULL, NULL);
    return 0;
}

TEST(run_inside_loop_refused) {
    ASSERT_OK(weft_run(run_nested, NULL, NULL));
    ASSERT_LT_INT(nested_run_rc, 0);
}

/* sleep(WEFT_NEVER) sleeps until cancelled; on the virtual clock with nothing else to do the
 * loop reports the deadlock instead of jumping to infinity and waking the sleeper. */
static int sleep_never(void *arg, void **res) {
    int rc = weft_sleep(WEFT_NEVER);
    wt_log(rc);
    return rc;
}

static void cancel_cb(void *arg) { weft_cancel(arg, NULL); }

TEST(sleep_never) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t = wt_spawn(loop, sleep_never, NULL, NULL);
    weft_task_t *u = wt_spawn(loop, sleep_never, NULL, NULL);
    /* Cancelled at 5 s: the sleep ends then. */
    ASSERT_OK(weft_call_later(loop, 5.0, cancel_cb, u, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, u, NULL), WEFT_ECANCELED);
    ASSERT_EQ_DBL(weft_loop_time(loop), 5.0);
    /* Alone: it can never wake. */
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EDEADLK);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT(isfinite(weft_loop_time(loop)));
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED);
    weft_unref(t);
    weft_unref(u);
    WT_CLOSE_LOOP(loop);
}

/* A task awaiting itself would wait forever: refused (asyncio raises RuntimeError). */
static int await_self(void *arg, void **res) {
    int rc = weft_await(weft_current_task(), NULL);
    ASSERT_LT_INT(rc, 0);
    ASSERT_NE_INT(rc, WEFT_ECANCELED);
    *res = (void *)1;
    return 0;
}

TEST(await_self_refused) {
    weft_loop_t *loop = wt_loop_virtual();
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, await_self, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    WT_CLOSE_LOOP(loop);
}

/* A task that never received an error: the message is "" (never NULL). */
static int fresh_message(void *arg, void **res) {
    ASSERT_NOT_NULL(weft_error_message());
    ASSERT_EQ_STR(weft_error_message(), "");
    *res = (void *)1;
    return 0;
}

TEST(error_message_never_null) {
    weft_loop_t *loop = wt_loop_virtual();
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, fresh_message, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    WT_CLOSE_LOOP(loop);
}

/* main's message survives the shutdown, even when a leftover task fails with its own. */
static int run_main_fails_with_leftover(void *arg, void **res) {
    ASSERT_OK(weft_create_task(NULL, leftover_fails, NULL, NULL));
    ASSERT_OK(weft_sleep(0.001));
    return weft_fail(WEFT_EPROTO, "main failed first");
}

TEST(run_error_message_with_leftovers) {
    char *err;
    wt_capture_begin();
    ASSERT_EQ_INT(weft_run(run_main_fails_with_leftover, NULL, NULL), WEFT_EPROTO);
    err = wt_capture_end();
    ASSERT_EQ_STR(weft_error_message(), "main failed first");
    ASSERT_CONTAINS(err, "failed during shutdown");
    free(err);
}

const wt_test_t wt_tests[] = {
    T(task_runs_later),
    T(task_result_default_null),
    T(tasks_start_fifo),
    T(create_task_outside_loop),
    T(create_task_from_task),
    T(fire_and_forget),
    T(task_names),
    T(task_ids_increase),
    T(current_task),
    T(all_tasks),
    T(await_task_twice),
    T(task_fail_message),
    T(error_message_outlives_task),
    T(task_error_default_message),
    T(error_message_per_task),
    T(error_never_retrieved_report),
    T(error_never_retrieved_fire_and_forget),
    T(error_retrieved_no_report),
    T(sleep_zero_interleaves),
    T(sleep_zero_after_ready),
    T(sleep_order_virtual),
    T(sleep_until),
    T(sleep_real_clock),
    T(await_chain),
    T(task_stack_size),
    T(stacks_counted),
    T(task_stack_overflow),
    T(run_returns_result),
    T(run_with_virtual_clock),
    T(run_error_message),
    T(run_cancels_leftover_tasks),
    T(run_inside_loop_refused),
    T(sleep_never),
    T(await_self_refused),
    T(error_message_never_null),
    T(run_error_message_with_leftovers),
    WT_END,
};
