/* review: adversarial tests of the scheduler fast paths (sched_leave, task_main's hand-over of
 * its stack to the next fresh task), cancellation levels, and reference counting/lifetimes.
 * Each test states what asyncio (or weft.h) specifies; failing ones document library bugs. */
#include "wt.h"

static weft_loop_t *L(void) { return weft_get_running_loop(); }
static weft_task_t *me(void) { return weft_current_task(); }

static int log_and_ret(void *arg, void **res) {
    wt_log((int)(intptr_t)arg);
    *res = arg;
    return 0;
}

static int fail_now(void *arg, void **res) {
    return weft_fail(WEFT_EIO, "fail %d", (int)(intptr_t)arg);
}

/* ---- task_main fast path: a finishing task runs the next fresh task on its stack --------- */

/* A TaskGroup whose first child fails at once cancels its sibling before the sibling ever ran:
 * asyncio throws CancelledError into the sibling's coroutine at its first step, so its body
 * never runs (weft.h: "cancelled before it ever ran: the body never starts"). */
static int tg_sibling_parent(void *arg, void **res) {
    size_t stack = (size_t)(intptr_t)arg;
    weft_task_options_t o = {"sibling", stack};
    weft_taskgroup_t *tg;
    weft_task_t *bad = NULL, *sib = NULL;
    ASSERT_OK(weft_taskgroup_new(&tg));
    ASSERT_OK(weft_taskgroup_create_task(tg, &bad, fail_now, (void *)1, NULL));
    ASSERT_OK(weft_taskgroup_create_task(tg, &sib, log_and_ret, (void *)77, &o));
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    ASSERT_EQ_STR(weft_error_message(), "fail 1");
    ASSERT_EQ_INT(weft_future_cancelled(sib), 1);
    WT_ASSERT_LOG(); /* the sibling's body never ran */
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    weft_unref(bad);
    weft_unref(sib);
    weft_taskgroup_free(tg);
    *res = (void *)1;
    return 0;
}

/* Same stack size as the failing child: the fast path hands the stack to the sibling. */
TEST(tg_sibling_cancelled_before_start_same_stack) { wt_run_body(tg_sibling_parent, (void *)0); }

/* A different stack size: the finishing child goes back to the loop (the slow path). */
TEST(tg_sibling_cancelled_before_start_other_stack) {
    wt_run_body(tg_sibling_parent, (void *)(intptr_t)(128 * 1024));
}

/* A chain of fresh tasks run back to back on one stack, each ending differently: every one
 * keeps its own outcome and message, nothing leaks from one to the next. */
static int varied(void *arg, void **res) {
    intptr_t i = (intptr_t)arg;
    wt_log((int)i);
    ASSERT_EQ_STR(weft_error_message(), ""); /* nothing inherited from the previous task */
    switch (i % 4) {
    case 0:
        *res = arg;
        return 0;
    case 1:
        return weft_fail(WEFT_EINVAL, "task %d failed", (int)i);
    case 2:
        return WEFT_ECANCELED;
    default:
        weft_fail(WEFT_EIO, "ignored %d", (int)i); /* failed, then recovered */
        *res = arg;
        return 0;
    }
}

TEST(fast_path_outcomes_and_messages) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t[12];
    weft_loop_stats_t st;
    for (intptr_t i = 0; i < 12; i++)
        t[i] = wt_spawn(loop, varied, (void *)i, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t[11], NULL));
    WT_ASSERT_LOG(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.iterations, 2); /* all in one iteration, plus the stop callback's */
    for (intptr_t i = 0; i < 12; i++) {
        void *v = NULL;
        char want[32];
        switch (i % 4) {
        case 0:
        case 3:
            ASSERT_OK(weft_future_result(t[i], &v));
            ASSERT_EQ_PTR(v, (void *)i);
            ASSERT_NULL(weft_future_error_message(t[i]));
            break;
        case 1:
            ASSERT_EQ_INT(weft_future_result(t[i], &v), WEFT_EINVAL);
            snprintf(want, sizeof want, "task %d failed", (int)i);
            ASSERT_EQ_STR(weft_future_error_message(t[i]), want);
            break;
        case 2:
            ASSERT_EQ_INT(weft_future_cancelled(t[i]), 1);
            break;
        }
        weft_unref(t[i]);
    }
    WT_CLOSE_LOOP(loop);
}

/* Fire-and-forget tasks failing in a fast-path chain: each is reported exactly once, with its
 * own message. */
TEST(fast_path_never_retrieved_reports) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *last;
    char *out;
    wt_capture_begin();
    for (intptr_t i = 1; i <= 3; i++)
        ASSERT_OK(weft_loop_create_task(loop, NULL, fail_now, (void *)i, NULL));
    last = wt_spawn(loop, log_and_ret, (void *)9, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, last, NULL));
    weft_unref(last);
    out = wt_capture_end();
    ASSERT_CONTAINS(out, "fail 1");
    ASSERT_CONTAINS(out, "fail 2");
    ASSERT_CONTAINS(out, "fail 3");
    {
        int n = 0;
        for (const char *p = out; (p = strstr(p, "never retrieved")); p++)
            n++;
        ASSERT_EQ_INT(n, 3);
    }
    free(out);
    WT_CLOSE_LOOP(loop);
}

/* Fresh tasks with alternating stack sizes, some cancelled before they start, with a callback
 * in the middle of the batch: FIFO order kept, cancelled ones never run, stacks all return. */
static void log_cb(void *arg) { wt_log((int)(intptr_t)arg); }

TEST(fast_path_mixed_batch) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t[8];
    weft_loop_stats_t st;
    for (intptr_t i = 0; i < 8; i++) {
        weft_task_options_t o = {NULL, (i % 3 == 0) ? (size_t)32 * 1024 : 0};
        ASSERT_OK(weft_loop_create_task(loop, &t[i], log_and_ret, (void *)i, &o));
        if (i == 4)
            ASSERT_OK(weft_call_soon(loop, log_cb, (void *)100, NULL));
    }
    ASSERT_EQ_INT(weft_cancel(t[2], NULL), 1);
    ASSERT_EQ_INT(weft_cancel(t[6], NULL), 1);
    ASSERT_OK(weft_loop_run_until_complete(loop, t[7], NULL));
    WT_ASSERT_LOG(0, 1, 3, 4, 100, 5, 7);
    ASSERT_EQ_INT(weft_future_cancelled(t[2]), 1);
    ASSERT_EQ_INT(weft_future_cancelled(t[6]), 1);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.stacks, 0);
    ASSERT_EQ_INT(st.pending_tasks, 0);
    for (int i = 0; i < 8; i++)
        weft_unref(t[i]);
    WT_CLOSE_LOOP(loop);
}

/* A task cancelled and then uncancelled before its first step runs normally. */
TEST(uncancel_before_start_runs) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *a = wt_spawn(loop, log_and_ret, (void *)1, NULL);
    weft_task_t *b = wt_spawn(loop, log_and_ret, (void *)2, NULL);
    void *v = NULL;
    ASSERT_EQ_INT(weft_cancel(b, NULL), 1);
    ASSERT_EQ_INT(weft_task_uncancel(b), 0);
    ASSERT_OK(weft_loop_run_until_complete(loop, b, &v));
    ASSERT_EQ_PTR(v, (void *)2);
    WT_ASSERT_LOG(1, 2);
    weft_unref(a);
    weft_unref(b);
    WT_CLOSE_LOOP(loop);
}

/* ---- sched_leave: direct hand-over between tasks and inline iterations -------------------- */

/* sleep(0) loops of two tasks and a self-rescheduling callback: asyncio's order, one
 * iteration at a time. */
static int yielder(void *arg, void **res) {
    for (int i = 0; i < 3; i++) {
        wt_log((int)(intptr_t)arg + i);
        ASSERT_OK(weft_sleep(0));
    }
    return 0;
}

static int cb_left;
static void resched_cb(void *arg) {
    wt_log(100 + cb_left);
    if (--cb_left > 0)
        ASSERT_OK(weft_call_soon(arg, resched_cb, arg, NULL));
}

TEST(sleep0_interleaves_with_callbacks) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *a = wt_spawn(loop, yielder, (void *)10, NULL);
    weft_task_t *b = wt_spawn(loop, yielder, (void *)20, NULL);
    weft_future_t *g;
    cb_left = 3;
    ASSERT_OK(weft_call_soon(loop, resched_cb, loop, NULL));
    {
        weft_future_t *fs[2] = {a, b};
        ASSERT_OK(weft_loop_gather(loop, fs, 2, 0, &g));
    }
    ASSERT_OK(weft_loop_run_until_complete(loop, g, NULL));
    WT_ASSERT_LOG(10, 20, 103, 11, 21, 102, 12, 22, 101);
    weft_unref(g);
    weft_unref(a);
    weft_unref(b);
    WT_CLOSE_LOOP(loop);
}

/* stop() from a task: the rest of this iteration (tasks handed over directly included) runs,
 * what they schedule waits for the next run. */
static int stopper(void *arg, void **res) {
    weft_loop_stop(L());
    wt_log(1);
    ASSERT_OK(weft_sleep(0));
    wt_log(10);
    return 0;
}

static int spawns_then_yields(void *arg, void **res) {
    wt_log(2);
    ASSERT_OK(weft_create_task(NULL, log_and_ret, (void *)20, NULL));
    ASSERT_OK(weft_sleep(0));
    wt_log(11);
    return 0;
}

TEST(stop_from_task_keeps_iteration) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *a = wt_spawn(loop, stopper, NULL, NULL);
    weft_task_t *b = wt_spawn(loop, spawns_then_yields, NULL, NULL);
    weft_task_t *c = wt_spawn(loop, log_and_ret, (void *)3, NULL);
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(1, 2, 3);
    ASSERT_OK(weft_loop_run_until_complete(loop, b, NULL));
    WT_ASSERT_LOG(1, 2, 3, 10, 20, 11);
    weft_unref(a);
    weft_unref(b);
    weft_unref(c);
    WT_CLOSE_LOOP(loop);
}

/* run_until_complete of a task that ends in a fast-path chain, with timers armed elsewhere:
 * returns its value; the stop item leaves nothing queued. */
static int sleeper(void *arg, void **res) {
    int rc = weft_sleep((double)(intptr_t)arg);
    wt_log(rc < 0 ? rc : (int)(intptr_t)arg);
    return rc;
}

TEST(run_until_complete_fast_chain_with_timers) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *s = wt_spawn(loop, sleeper, (void *)5, NULL);
    weft_task_t *t[4];
    weft_loop_stats_t st;
    void *v = NULL;
    for (intptr_t i = 0; i < 4; i++)
        t[i] = wt_spawn(loop, log_and_ret, (void *)i, NULL);
    ASSERT_OK(weft_loop_run_until_complete(loop, t[1], &v));
    ASSERT_EQ_PTR(v, (void *)1);
    WT_ASSERT_LOG(0, 1, 2, 3); /* the whole first iteration ran */
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.ready, 0);
    ASSERT_EQ_INT(st.timers, 1);
    ASSERT_EQ_INT(st.pending_tasks, 1);
    ASSERT_OK(weft_loop_run_until_complete(loop, s, NULL));
    ASSERT_EQ_DBL(weft_loop_time(loop), 5.0);
    for (int i = 0; i < 4; i++)
        weft_unref(t[i]);
    weft_unref(s);
    WT_CLOSE_LOOP(loop);
}

/* Loop close with tasks suspended in every kind of wait, most of them started by the fast
 * paths (direct hand-over, fresh start from sched_leave): reported, abandoned, nothing left. */
static weft_future_t *never_f;

static int wait_await(void *arg, void **res) { return weft_await(never_f, NULL); }
static int wait_sleep(void *arg, void **res) { return weft_sleep(1000); }
static int wait_gather(void *arg, void **res) {
    weft_future_t *fs[2] = {never_f, never_f};
    return weft_gather(fs, 2, NULL);
}
static int wait_wait(void *arg, void **res) {
    weft_future_t *fs[1] = {never_f};
    return weft_wait(fs, 1, WEFT_ALL_COMPLETED, 500);
}
static int wait_timeout(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 100));
    rc = weft_await(never_f, NULL);
    return weft_timeout_end(&to, rc);
}
/* The task's own reference to the shield is a local: it is released by the test after the
 * close (an abandoned task never runs the rest of its body). */
static weft_future_t *shield_outer;
static int wait_shielded(void *arg, void **res) {
    int rc;
    ASSERT_OK(weft_shield(never_f, &shield_outer));
    rc = weft_await(shield_outer, NULL);
    weft_unref(shield_outer);
    return rc;
}

TEST(close_with_fast_path_tasks_suspended) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_fn fns[] = {wait_await, wait_sleep, wait_gather, wait_wait, wait_timeout,
                          wait_shielded};
    weft_task_t *held;
    weft_loop_stats_t st;
    char *out;
    ASSERT_OK(weft_loop_create_future(loop, &never_f));
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        ASSERT_OK(weft_loop_create_task(loop, NULL, fns[i], NULL, NULL));
    held = wt_spawn(loop, wait_await, NULL, "held");
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.pending_tasks, 7);
    ASSERT_EQ_INT(st.ready, 0);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    out = wt_capture_end();
    {
        int n = 0;
        for (const char *p = out; (p = strstr(p, "destroyed but it is pending")); p++)
            n++;
        ASSERT_EQ_INT(n, 7);
    }
    free(out);
    ASSERT_EQ_INT(weft_future_cancelled(held), 1);
    weft_loop_stats(loop, &st); /* the loop is alive while we hold futures */
    ASSERT_EQ_INT(st.tasks, 1);
    ASSERT_EQ_INT(st.futures, 2); /* never_f and the shield */
    ASSERT_EQ_INT(st.timers, 0);
    ASSERT_EQ_INT(st.stacks, 0);
    ASSERT_EQ_INT(st.handles, 0);
    weft_unref(held);
    weft_unref(shield_outer);
    weft_unref(never_f);
}

/* weft_run cancels what main left behind. The two tasks created last start in the iteration
 * that runs the stop callback (they were queued before it, as in asyncio), so all five end
 * cancelled from their sleep. */
static int leftover(void *arg, void **res) {
    int rc = weft_sleep(100);
    wt_log(rc);
    return rc;
}

static int main_leaves_tasks(void *arg, void **res) {
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_create_task(NULL, leftover, NULL, NULL));
    ASSERT_OK(weft_sleep(0)); /* they started, and sleep */
    for (int i = 0; i < 2; i++)
        ASSERT_OK(weft_create_task(NULL, leftover, NULL, NULL));
    *res = (void *)7;
    return 0;
}

TEST(run_cancels_fast_path_leftovers) {
    weft_loop_options_t o = {.virtual_clock = 1};
    void *v = NULL;
    char *out;
    wt_capture_begin();
    ASSERT_OK(weft_run_with(&o, main_leaves_tasks, NULL, &v));
    out = wt_capture_end();
    ASSERT_EQ_PTR(v, (void *)7);
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED,
                  WEFT_ECANCELED);
    ASSERT_NOT_CONTAINS(out, "destroyed but it is pending");
    ASSERT_NOT_CONTAINS(out, "never retrieved");
    free(out);
}

/* ---- cancellation: levels, shields, timeouts, uncancel ------------------------------------ */

/* An outside cancel held back by a shield, a timeout inside the shield expiring, its end
 * taking back only its own cancellation: the outside one arrives once the shield ends. */
static int levels_body(void *arg, void **res) {
    weft_timeout_t to;
    int rc;
    ASSERT_EQ_INT(weft_cancel(me(), "outside"), 1);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(1)); /* held back */
    ASSERT_OK(weft_timeout_begin(&to, 1));
    rc = weft_sleep(5);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 2);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 1);
    ASSERT_OK(weft_sleep(1)); /* the outside request is still held back */
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    weft_shield_end();
    ASSERT_EQ_INT(weft_sleep(1), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_sleep(1), WEFT_ECANCELED); /* sticky */
    ASSERT_EQ_INT(weft_task_uncancel(me()), 0);
    ASSERT_OK(weft_sleep(1));
    ASSERT_EQ_DBL(wt_loop_now(), 4.0);
    *res = (void *)1;
    return 0;
}

TEST(cancel_levels_shield_timeout) { wt_run_body(levels_body, NULL); }

/* asyncio's Timeout.reschedule() on a timeout that has exited raises RuntimeError. A scope that
 * has ended is off the task's list; re-arming it must not cancel the task later (and a scope
 * on a stack frame that has returned would be a use after free when it fires). */
static int reschedule_after_end(void *arg, void **res) {
    weft_timeout_t to;
    int rc, sleep_rc;
    ASSERT_OK(weft_timeout_begin(&to, 10));
    ASSERT_OK(weft_timeout_end(&to, 0));
    rc = weft_timeout_reschedule(&to, wt_loop_now() + 1);
    sleep_rc = weft_sleep(2);
    ASSERT_EQ_INT(sleep_rc, 0);   /* not cancelled by a scope that has ended */
    ASSERT_NE_INT(rc, 0);         /* refused */
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    *res = (void *)1;
    return 0;
}

TEST(timeout_reschedule_after_end) { wt_run_body(reschedule_after_end, NULL); }

/* Awaiting a task while being cancelled: the cancel is passed on and the awaiter waits for the
 * awaited task's clean-up; the awaited task's cancellation does not leak into the awaiter's
 * count beyond its own request. */
static int slow_cleanup(void *arg, void **res) {
    int rc = weft_sleep(10);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    weft_shield_begin();
    ASSERT_OK(weft_sleep(2)); /* clean-up */
    weft_shield_end();
    wt_log(1);
    return rc;
}

static int awaiter_cancelled(void *arg, void **res) {
    weft_task_t *child = wt_spawn(NULL, slow_cleanup, NULL, "child");
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1));
    rc = weft_await(child, NULL);
    wt_log(2);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0); /* waited for the clean-up */
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(child), 1);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_OK(weft_sleep(1));
    WT_ASSERT_LOG(1, 2);
    weft_unref(child);
    *res = (void *)1;
    return 0;
}

TEST(await_while_cancelled_waits_cleanup) { wt_run_body(awaiter_cancelled, NULL); }

/* TaskGroup: a failure while the parent is inside a shielded clean-up: the parent is not
 * interrupted, wait() takes the group's cancellation back. */
static int tg_sleep_kid(void *arg, void **res) {
    int rc = weft_sleep((double)(intptr_t)arg);
    wt_log(rc < 0 ? rc : (int)(intptr_t)arg);
    return rc;
}

static int tg_fail_after(void *arg, void **res) {
    int rc = weft_sleep((double)(intptr_t)arg);
    if (rc < 0)
        return rc;
    return weft_fail(WEFT_EIO, "late");
}

static int tg_shielded_parent(void *arg, void **res) {
    weft_taskgroup_t *tg;
    ASSERT_OK(weft_taskgroup_new(&tg));
    ASSERT_OK(weft_taskgroup_create_task(tg, NULL, tg_sleep_kid, (void *)10, NULL));
    ASSERT_OK(weft_taskgroup_create_task(tg, NULL, tg_fail_after, (void *)1, NULL));
    weft_shield_begin();
    ASSERT_OK(weft_sleep(3)); /* not interrupted */
    weft_shield_end();
    ASSERT_EQ_INT(weft_task_cancelling(me()), 1);
    ASSERT_EQ_INT(weft_taskgroup_wait(tg), WEFT_EIO);
    ASSERT_EQ_INT(weft_task_cancelling(me()), 0);
    ASSERT_EQ_DBL(wt_loop_now(), 3.0);
    WT_ASSERT_LOG(WEFT_ECANCELED);
    weft_taskgroup_free(tg);
    ASSERT_OK(weft_sleep(1));
    *res = (void *)1;
    return 0;
}

TEST(tg_failure_while_parent_shielded) { wt_run_body(tg_shielded_parent, NULL); }

/* gather cancelled from the caller while children are NEW (never ran): they end cancelled
 * without running, the caller gets -ECANCELED, nothing leaks. */
static int gather_cancel_new_children(void *arg, void **res) {
    weft_task_t *t[3];
    weft_timeout_t to;
    int rc;
    for (intptr_t i = 0; i < 3; i++)
        t[i] = wt_spawn(NULL, sleeper, (void *)(i + 5), NULL);
    ASSERT_OK(weft_timeout_begin(&to, 0));
    rc = weft_gather(t, 3, NULL);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(weft_future_cancelled(t[i]), 1);
        weft_unref(t[i]);
    }
    /* They started (first iteration) then were cancelled by the timeout at once. */
    WT_ASSERT_LOG(WEFT_ECANCELED, WEFT_ECANCELED, WEFT_ECANCELED);
    *res = (void *)1;
    return 0;
}

TEST(gather_timeout_cancels_children) { wt_run_body(gather_cancel_new_children, NULL); }

/* as_completed: once the timeout has passed, next() keeps returning -ETIMEDOUT (weft.h:
 * "-ETIMEDOUT once the timeout passes"; asyncio queues a timeout for every future still
 * pending at the deadline), even for a future that finishes later. */
static int as_completed_late(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, sleeper, (void *)2, NULL);
    weft_as_completed_t *ac;
    weft_future_t *f = NULL;
    ASSERT_OK(weft_as_completed_new(&ac, &t, 1, 1.0));
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), WEFT_ETIMEDOUT);
    ASSERT_EQ_DBL(wt_loop_now(), 1.0);
    ASSERT_OK(weft_sleep(2)); /* t finishes at 2.0 */
    ASSERT_EQ_INT(weft_future_done(t), 1);
    f = NULL;
    ASSERT_EQ_INT(weft_as_completed_next(ac, &f), WEFT_ETIMEDOUT);
    weft_as_completed_free(ac);
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_after_timeout_stays_timed_out) { wt_run_body(as_completed_late, NULL); }

/* Bad arguments are refused with -EINVAL (weft.h's convention), not dereferenced: a NULL
 * array, or a NULL entry. */
static int as_completed_bad_args(void *arg, void **res) {
    weft_as_completed_t *ac = NULL;
    weft_future_t *fs[1] = {NULL};
    ASSERT_EQ_INT(weft_as_completed_new(&ac, fs, 1, WEFT_NEVER), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_as_completed_new(&ac, NULL, 1, WEFT_NEVER), WEFT_EINVAL);
    ASSERT_NULL(ac);
    *res = (void *)1;
    return 0;
}

TEST(as_completed_null_args) { wt_run_body(as_completed_bad_args, NULL); }

/* wait() with a timeout, cancelled while waiting: -ECANCELED, its timer gone, the futures not
 * cancelled. */
static int wait_cancelled(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, sleeper, (void *)5, NULL);
    weft_timeout_t to;
    weft_loop_stats_t st;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 1));
    rc = weft_wait(&t, 1, WEFT_ALL_COMPLETED, 3);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    weft_loop_stats(L(), &st);
    ASSERT_EQ_INT(st.timers, 1); /* only the child's sleep */
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_OK(weft_await(t, NULL));
    ASSERT_EQ_DBL(wt_loop_now(), 5.0);
    weft_unref(t);
    *res = (void *)1;
    return 0;
}

TEST(wait_timeout_cancelled_cleans_timer) { wt_run_body(wait_cancelled, NULL); }

/* ---- reference counting and lifetimes ----------------------------------------------------- */

/* gather drops each child as it completes: with no other reference, a finished child is
 * destroyed while the gather still waits for the others. */
static int gather_drops(void *arg, void **res) {
    weft_task_t *t[3];
    weft_future_t *g;
    weft_loop_stats_t st;
    void **vals;
    for (intptr_t i = 0; i < 3; i++)
        t[i] = wt_spawn(NULL, sleeper, (void *)(i + 1), NULL);
    ASSERT_OK(weft_loop_gather(L(), t, 3, 0, &g));
    for (int i = 0; i < 3; i++)
        weft_unref(t[i]);
    ASSERT_OK(weft_sleep(1.5));
    weft_loop_stats(L(), &st);
    ASSERT_EQ_INT(st.tasks, 3); /* me + the two still running */
    ASSERT_OK(weft_await(g, (void **)&vals));
    ASSERT_EQ_PTR(vals[0], NULL);
    weft_loop_stats(L(), &st);
    ASSERT_EQ_INT(st.tasks, 1);
    weft_unref(g);
    *res = (void *)1;
    return 0;
}

TEST(gather_drops_children_as_they_complete) { wt_run_body(gather_drops, NULL); }

/* shield: the outer released while the inner still runs; the inner finishes on its own. */
static int shield_outer_released(void *arg, void **res) {
    weft_task_t *inner = wt_spawn(NULL, sleeper, (void *)2, NULL);
    weft_future_t *outer;
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_shield(inner, &outer));
    ASSERT_OK(weft_timeout_begin(&to, 1));
    rc = weft_await(outer, NULL);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_future_cancelled(outer), 1);
    ASSERT_EQ_INT(weft_future_done(inner), 0);
    weft_unref(outer);
    ASSERT_OK(weft_await(inner, NULL));
    ASSERT_EQ_DBL(wt_loop_now(), 2.0);
    WT_ASSERT_LOG(2);
    weft_unref(inner);
    *res = (void *)1;
    return 0;
}

TEST(shield_outer_released_early) { wt_run_body(shield_outer_released, NULL); }

/* Handles: cancel after the callback ran returns 0 and changes nothing; a timer handle
 * cancelled after its timer fired but before its callback ran: the callback does not run. */
static weft_handle_t *late_h;
static void cancel_late_cb(void *arg) { wt_log(weft_handle_cancel(late_h) ? 1 : 0); }

TEST(handle_cancel_after_run_and_after_fire) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_handle_t *h, *c;
    weft_loop_stats_t st;
    ASSERT_OK(weft_call_soon(loop, log_cb, (void *)5, &h));
    ASSERT_OK(weft_call_later(loop, 1.0, cancel_late_cb, NULL, &c));
    ASSERT_OK(weft_call_later(loop, 1.0, log_cb, (void *)6, &late_h));
    ASSERT_OK(weft_call_later(loop, 2.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    WT_ASSERT_LOG(5, 1); /* 6 never ran */
    ASSERT_EQ_INT(weft_handle_cancel(h), 0);
    ASSERT_EQ_INT(weft_handle_cancelled(h), 0);
    ASSERT_EQ_INT(weft_handle_cancelled(late_h), 1);
    ASSERT_EQ_INT(weft_handle_cancel(late_h), 0);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.handles, 3);
    weft_handle_unref(h);
    weft_handle_unref(c);
    weft_handle_unref(late_h);
    WT_CLOSE_LOOP(loop);
}

/* A done callback on a task that finishes in a fast-path chain runs once, from the loop. */
static int done_calls;
static void count_done(weft_future_t *f, void *arg) {
    done_calls++;
    ASSERT_EQ_INT(weft_future_done(f), 1);
    ASSERT_NULL(weft_current_task());
}

TEST(done_callback_fast_path_task) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *t[3];
    for (intptr_t i = 0; i < 3; i++) {
        t[i] = wt_spawn(loop, log_and_ret, (void *)i, NULL);
        ASSERT_OK(weft_future_add_done_callback(t[i], count_done, NULL));
    }
    done_calls = 0;
    ASSERT_OK(weft_loop_run_until_complete(loop, t[2], NULL));
    ASSERT_EQ_INT(done_calls, 3);
    for (int i = 0; i < 3; i++)
        weft_unref(t[i]);
    WT_CLOSE_LOOP(loop);
}

/* A future that outlives its closed loop, with a done callback registered before the close:
 * completing it must not queue work on the closed loop (nothing will ever run it, and the
 * queued callback's reference keeps the future and the loop alive forever). */
static void never_cb(weft_future_t *f, void *arg) { WT_FAIL("callback ran after close"); }

TEST(closed_loop_future_done_callback) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_loop_stats_t st;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_add_done_callback(f, never_cb, NULL));
    ASSERT_OK(weft_loop_close(loop));
    (void)weft_future_set_result(f, NULL); /* refused or accepted: either way, nothing queued */
    weft_loop_stats(loop, &st);             /* the loop is alive while f is */
    ASSERT_EQ_INT(st.ready, 0);
    ASSERT_EQ_INT(st.futures, 1);
    weft_unref(f); /* the last reference: the future and the loop must go */
}

const wt_test_t wt_tests[] = {
    T(tg_sibling_cancelled_before_start_same_stack),
    T(tg_sibling_cancelled_before_start_other_stack),
    T(fast_path_outcomes_and_messages),
    T(fast_path_never_retrieved_reports),
    T(fast_path_mixed_batch),
    T(uncancel_before_start_runs),
    T(sleep0_interleaves_with_callbacks),
    T(stop_from_task_keeps_iteration),
    T(run_until_complete_fast_chain_with_timers),
    T(close_with_fast_path_tasks_suspended),
    T(run_cancels_fast_path_leftovers),
    T(cancel_levels_shield_timeout),
    T(timeout_reschedule_after_end),
    T(await_while_cancelled_waits_cleanup),
    T(tg_failure_while_parent_shielded),
    T(gather_timeout_cancels_children),
    T(as_completed_after_timeout_stays_timed_out),
    T(as_completed_null_args),
    T(wait_timeout_cancelled_cleans_timer),
    T(gather_drops_children_as_they_complete),
    T(shield_outer_released_early),
    T(handle_cancel_after_run_and_after_fire),
    T(done_callback_fast_path_task),
    T(closed_loop_future_done_callback),
    WT_END,
};
