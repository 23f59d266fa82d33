/* The deadlock report (run_until_complete when nothing can ever complete what it waits for)
 * and the descriptions it is made of: what each task waits on, where it was created. The
 * report must fire when nothing can happen, and must not when a timer, a socket or an executor
 * job can still wake someone. */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wt.h"

/* ---- it fires ---------------------------------------------------------------------------- */

typedef struct pair {
    weft_lock_t *a, *b;
} pair_t;

static int take(weft_lock_t *first, weft_lock_t *second) {
    int rc = weft_lock_acquire(first);
    if (rc < 0)
        return rc;
    if ((rc = weft_sleep(0.01)) == 0 && (rc = weft_lock_acquire(second)) == 0)
        weft_lock_release(second);
    weft_lock_release(first);
    return rc;
}

static int alice(void *arg, void **result) {
    pair_t *p = arg;
    return take(p->a, p->b);
}

static int bob(void *arg, void **result) {
    pair_t *p = arg;
    return take(p->b, p->a);
}

/* Creates the locks and the two tasks, and waits for both; after the deadlock it is cancelled,
 * passes that on to both, waits for their clean-up and frees the locks. */
static int lock_main(void *arg, void **result) {
    pair_t p;
    weft_task_t *t[2];
    int rc;
    ASSERT_OK(weft_lock_new(&p.a));
    ASSERT_OK(weft_lock_new(&p.b));
    t[0] = wt_spawn(NULL, alice, &p, "alice");
    t[1] = wt_spawn(NULL, bob, &p, "bob");
    rc = weft_gather(t, 2, NULL);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(weft_await(t[i], NULL), WEFT_ECANCELED);
        weft_unref(t[i]);
    }
    ASSERT_OK(weft_lock_free(p.a));
    ASSERT_OK(weft_lock_free(p.b));
    return rc;
}

TEST(lock_order_deadlock_reported) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *m = wt_spawn(loop, lock_main, NULL, "main");
    char *err;
    wt_capture_begin();
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, m, NULL), WEFT_EDEADLK);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "deadlock: the loop waits for task #");
    ASSERT_CONTAINS(err, "3 tasks are asleep");
    ASSERT_CONTAINS(err, "'main': waiting on gather");
    ASSERT_CONTAINS(err, "'alice': waiting on lock");
    ASSERT_CONTAINS(err, "'bob': waiting on lock");
    ASSERT_CONTAINS(err, "(created at "); /* wt_spawn's own call site */
    free(err);
    /* The tasks are still there, each holding a lock: cancel main, which cleans up. */
    weft_cancel(m, NULL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, m, NULL), WEFT_ECANCELED);
    weft_unref(m);
    WT_CLOSE_LOOP(loop);
}

/* A task awaiting a future nobody holds: the report names the task and what it awaits, with
 * the site of the weft_loop_create_task() call in this file. */
static int await_forever(void *arg, void **result) { return weft_await(arg, NULL); }

TEST(await_orphan_future_reported) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_task_t *t;
    char *err;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_loop_create_task(loop, &t, await_forever, f,
                                    &(weft_task_options_t){.name = "stuck"}));
    wt_capture_begin();
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EDEADLK);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "deadlock: the loop waits for task #");
    ASSERT_CONTAINS(err, "1 task is asleep");
    ASSERT_CONTAINS(err, "'stuck': waiting on future (created at ");
    ASSERT_CONTAINS(err, "test_deadlock.c:");
    ASSERT_CONTAINS(err, "in test_await_orphan_future_reported");
    free(err);
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    weft_unref(t);
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* ---- it does not fire ----------------------------------------------------------------------- */

static int sleeps(void *arg, void **result) {
    ASSERT_OK(weft_sleep(0.02));
    *result = (void *)1;
    return 0;
}

static int awaits(void *arg, void **result) { return weft_await(arg, result); }

/* A task waiting on a timer: the awaiter of that task is not deadlocked. */
TEST(timer_is_not_a_deadlock) {
    weft_loop_t *loop = wt_loop_real();
    weft_task_t *s = wt_spawn(loop, sleeps, NULL, "sleeper"), *w;
    void *v = NULL;
    w = wt_spawn(loop, awaits, s, "awaiter");
    ASSERT_OK(weft_loop_run_until_complete(loop, w, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    weft_unref(s);
    weft_unref(w);
    WT_CLOSE_LOOP(loop);
}

/* A task waiting to read a socket that a thread writes to later. */
static void *write_later(void *arg) {
    usleep(30000);
    if (write(*(int *)arg, "x", 1) != 1)
        abort();
    return NULL;
}

static int reads(void *arg, void **result) {
    char c;
    ASSERT_EQ_INT(weft_sock_recv(*(int *)arg, &c, 1), 1);
    *result = (void *)1;
    return 0;
}

TEST(socket_is_not_a_deadlock) {
    weft_loop_t *loop = wt_loop_real();
    int sv[2];
    pthread_t th;
    void *v = NULL;
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    pthread_create(&th, NULL, write_later, &sv[1]);
    ASSERT_OK(wt_run_task(loop, reads, &sv[0], &v));
    ASSERT_EQ_PTR(v, (void *)1);
    pthread_join(th, NULL);
    weft_fd_forget(loop, sv[0]);
    close(sv[0]);
    close(sv[1]);
    WT_CLOSE_LOOP(loop);
}

/* A task waiting on an executor job (which sleeps on its worker). */
static int slow_job(void *arg, void **result) {
    usleep(30000);
    *result = (void *)7;
    return 0;
}

static int to_thread(void *arg, void **result) { return weft_to_thread(slow_job, NULL, result); }

TEST(executor_job_is_not_a_deadlock) {
    weft_loop_t *loop = wt_loop_real();
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, to_thread, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)7);
    WT_CLOSE_LOOP(loop);
}

/* ---- the descriptions ------------------------------------------------------------------------ */

static int wait_event(void *arg, void **result) { return weft_event_wait(arg); }
static int wait_queue(void *arg, void **result) { return weft_queue_get(arg, result); }
static int sleep_long(void *arg, void **result) { return weft_sleep(10); }

static int make_event(void *arg, void **result) { return weft_event_new(arg); }

typedef struct seen {
    weft_task_t *sleeper, *eventer, *queuer, *reader, *awaiter;
    int fd;
} seen_t;

static int describe(void *arg, void **result) {
    seen_t *s = arg;
    char buf[128];
    ASSERT_OK(weft_sleep(0)); /* let them all start and suspend */
    ASSERT_OK(weft_sleep(0));
    ASSERT_EQ_STR(weft_task_waiting_on(s->sleeper, buf, sizeof buf), "sleep (10.00 s left)");
    ASSERT_EQ_STR(weft_task_waiting_on(s->eventer, buf, sizeof buf), "event");
    ASSERT_EQ_STR(weft_task_waiting_on(s->queuer, buf, sizeof buf), "queue");
    snprintf(buf, sizeof buf, "fd %d readable", s->fd);
    {
        char got[128];
        ASSERT_EQ_STR(weft_task_waiting_on(s->reader, got, sizeof got), buf);
    }
    snprintf(buf, sizeof buf, "task #%llu 'sleeper'",
             (unsigned long long)weft_task_id(s->sleeper));
    {
        char got[128];
        ASSERT_EQ_STR(weft_task_waiting_on(s->awaiter, got, sizeof got), buf);
    }
    ASSERT_EQ_STR(weft_task_waiting_on(weft_current_task(), buf, sizeof buf), "running");
    return 0;
}

TEST(waiting_on_descriptions) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_event_t *ev;
    weft_queue_t *q;
    seen_t s;
    int sv[2];
    weft_task_t *d;
    char buf[128];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    ASSERT_OK(wt_run_task(loop, make_event, &ev, NULL));
    ASSERT_OK(weft_loop_queue_new(loop, &q, NULL));
    s.fd = sv[0];
    s.sleeper = wt_spawn(loop, sleep_long, NULL, "sleeper");
    s.eventer = wt_spawn(loop, wait_event, ev, "eventer");
    s.queuer = wt_spawn(loop, wait_queue, q, "queuer");
    s.reader = wt_spawn(loop, reads, &s.fd, "reader");
    s.awaiter = wt_spawn(loop, awaits, s.sleeper, "awaiter");
    ASSERT_EQ_STR(weft_task_waiting_on(s.sleeper, buf, sizeof buf), "not started");
    d = wt_spawn(loop, describe, &s, "describer");
    ASSERT_OK(weft_loop_run_until_complete(loop, d, NULL));
    ASSERT_EQ_STR(weft_task_waiting_on(d, buf, sizeof buf), "done");
    ASSERT_NOT_NULL(weft_task_created_at(d, buf, sizeof buf));
    ASSERT_CONTAINS(buf, "runner.c:"); /* wt_spawn creates it */
    /* Wake them all and finish clean. */
    weft_event_set(ev);
    ASSERT_OK(weft_queue_put_nowait(q, NULL));
    ASSERT_EQ_INT(write(sv[1], "x", 1), 1);
    weft_cancel(s.sleeper, NULL);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, s.awaiter, NULL), WEFT_ECANCELED);
    weft_task_t *all[] = {s.sleeper, s.eventer, s.queuer, s.reader, s.awaiter, d};
    for (size_t i = 0; i < 6; i++) {
        weft_loop_run_until_complete(loop, all[i], NULL);
        weft_unref(all[i]);
    }
    ASSERT_OK(weft_event_free(ev));
    ASSERT_OK(weft_queue_free(q));
    weft_fd_forget(loop, sv[0]);
    close(sv[0]);
    close(sv[1]);
    WT_CLOSE_LOOP(loop);
}

TEST(descriptions_bad_input) {
    char buf[16];
    ASSERT_NULL(weft_task_created_at(NULL, buf, sizeof buf));
    ASSERT_EQ_STR(weft_task_waiting_on(NULL, buf, sizeof buf), "not a task");
    ASSERT_NULL(weft_task_waiting_on(NULL, NULL, 0));
}

const wt_test_t wt_tests[] = {
    T(lock_order_deadlock_reported),
    T(await_orphan_future_reported),
    T(timer_is_not_a_deadlock),
    T(socket_is_not_a_deadlock),
    T(executor_job_is_not_a_deadlock),
    T(waiting_on_descriptions),
    T(descriptions_bad_input),
    WT_END,
};
