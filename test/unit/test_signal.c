/* Signals for real: handlers run on the loop after kill()/raise(), bursts, the previous
 * disposition restored, repeated add/remove, bad input, several loops in several threads,
 * signals arriving on other threads and during loop close, internal watchers (SIGCHLD), and
 * weft_run()'s SIGINT / SIGTERM handling, with the real default actions where they matter. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wt.h"
#include "../../src/core/internal.h" /* the internal watchers (this group links weft_static) */

/* What a handler saw: how often it ran, on which thread and loop. */
typedef struct sigctx {
    weft_loop_t *loop;
    pthread_t thread;
    weft_event_t *ev;
    int calls;
    int wrong_place;
} sigctx_t;

static void on_sig(void *arg) {
    sigctx_t *c = arg;
    c->calls++;
    if (weft_get_running_loop() != c->loop || !pthread_equal(pthread_self(), c->thread))
        c->wrong_place++;
    if (c->ev)
        weft_event_set(c->ev);
}

static void ctx_init(sigctx_t *c, weft_loop_t *loop) {
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->thread = pthread_self();
}

/* Waits for the event for at most `secs` seconds, then clears it. */
static int wait_event(weft_event_t *ev, double secs) {
    weft_timeout_t to;
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, secs));
    rc = weft_event_wait(ev);
    rc = weft_timeout_end(&to, rc);
    weft_event_clear(ev);
    return rc;
}

/* Sleeps in small steps until *counter reaches `want` or `secs` pass. */
static int wait_count(const int *counter, int want, double secs) {
    double end = wt_now() + secs;
    while (*counter < want && wt_now() < end)
        ASSERT_OK(weft_sleep(0.001));
    return *counter;
}

static void handler_of(int signo, struct sigaction *sa) {
    ASSERT_OK(sigaction(signo, NULL, sa));
}

static void set_disposition(int signo, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    ASSERT_OK(sigaction(signo, &sa, NULL));
}

static void run_main_on(weft_loop_t *loop, weft_task_fn fn, void *arg) {
    void *res = NULL;
    ASSERT_OK(wt_run_task(loop, fn, arg, &res));
    ASSERT_EQ_PTR(res, (void *)1);
}

/* ---- handlers ------------------------------------------------------------------------------ */

static int runs_on_loop_main(void *arg, void **res) {
    sigctx_t *c = arg;
    ASSERT_OK(weft_event_new(&c->ev));
    ASSERT_OK(weft_add_signal_handler(c->loop, SIGUSR1, on_sig, c));
    ASSERT_OK(kill(getpid(), SIGUSR1));
    ASSERT_EQ_INT(c->calls, 0); /* a callback of the loop, never inside the signal handler */
    ASSERT_OK(wait_event(c->ev, 2));
    ASSERT_EQ_INT(c->calls, 1);
    ASSERT_OK(raise(SIGUSR1));
    ASSERT_OK(wait_event(c->ev, 2));
    ASSERT_EQ_INT(c->calls, 2);
    ASSERT_EQ_INT(c->wrong_place, 0);
    ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR1), 1);
    ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR1), 0);
    ASSERT_OK(weft_event_free(c->ev));
    *res = (void *)1;
    return 0;
}

TEST(handler_runs_on_loop) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c;
    ctx_init(&c, loop);
    run_main_on(loop, runs_on_loop_main, &c);
    WT_CLOSE_LOOP(loop);
}

/* A signal that arrives before the loop runs is handled once it does. */
static int before_run_main(void *arg, void **res) {
    sigctx_t *c = arg;
    ASSERT_EQ_INT(wait_count(&c->calls, 1, 2), 1);
    *res = (void *)1;
    return 0;
}

TEST(handler_signal_before_run) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c;
    ctx_init(&c, loop);
    ASSERT_OK(weft_add_signal_handler(loop, SIGUSR2, on_sig, &c));
    ASSERT_OK(raise(SIGUSR2));
    ASSERT_EQ_INT(c.calls, 0);
    run_main_on(loop, before_run_main, &c);
    ASSERT_EQ_INT(c.wrong_place, 0);
    ASSERT_EQ_INT(weft_remove_signal_handler(loop, SIGUSR2), 1);
    WT_CLOSE_LOOP(loop);
}

/* Three signals, each raised five times in a row: every handler runs, a burst of one signal
 * that arrives before its callback runs is one call, and the next arrival is a new call. */
static int burst_main(void *arg, void **res) {
    sigctx_t *c = arg; /* c[0..2]: SIGUSR1, SIGUSR2, SIGHUP */
    static const int sigs[3] = {SIGUSR1, SIGUSR2, SIGHUP};
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_add_signal_handler(c[0].loop, sigs[i], on_sig, &c[i]));
    for (int n = 0; n < 5; n++)
        for (int i = 0; i < 3; i++)
            ASSERT_OK(raise(sigs[i]));
    for (int i = 0; i < 3; i++)
        ASSERT_GE_INT(wait_count(&c[i].calls, 1, 2), 1);
    ASSERT_OK(weft_sleep(0.05));
    for (int i = 0; i < 3; i++) {
        ASSERT_LE_INT(c[i].calls, 5);
        if (!WT_TSAN) /* ThreadSanitizer may hold a signal back past the first dispatch */
            ASSERT_EQ_INT(c[i].calls, 1);
    }
    int before = c[0].calls;
    ASSERT_OK(kill(getpid(), SIGUSR1));
    ASSERT_EQ_INT(wait_count(&c[0].calls, before + 1, 2), before + 1);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(c[i].wrong_place, 0);
        ASSERT_EQ_INT(weft_remove_signal_handler(c[0].loop, sigs[i]), 1);
    }
    *res = (void *)1;
    return 0;
}

TEST(handler_burst_of_signals) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c[3];
    for (int i = 0; i < 3; i++)
        ctx_init(&c[i], loop);
    run_main_on(loop, burst_main, c);
    WT_CLOSE_LOOP(loop);
}

/* ---- dispositions -------------------------------------------------------------------------- */

static volatile sig_atomic_t app_calls;
static void app_handler(int signo) { (void)signo; app_calls++; }

static int restore_main(void *arg, void **res) {
    sigctx_t *c = arg;
    struct sigaction sa;
    ASSERT_OK(weft_event_new(&c->ev));
    ASSERT_OK(weft_add_signal_handler(c->loop, SIGUSR1, on_sig, c));
    handler_of(SIGUSR1, &sa);
    ASSERT(sa.sa_handler != app_handler && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
    ASSERT_OK(weft_add_signal_handler(c->loop, SIGUSR2, on_sig, c));
    ASSERT_OK(raise(SIGUSR1));
    ASSERT_OK(wait_event(c->ev, 2));
    ASSERT_EQ_INT(app_calls, 0); /* ours replaced the application's while registered */
    ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR1), 1);
    ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR2), 1);
    handler_of(SIGUSR1, &sa);
    ASSERT(sa.sa_handler == app_handler);
    handler_of(SIGUSR2, &sa);
    ASSERT(sa.sa_handler == SIG_IGN);
    ASSERT_OK(raise(SIGUSR1)); /* the application's handler again */
    ASSERT_EQ_INT(app_calls, 1);
    ASSERT_OK(raise(SIGUSR2)); /* ignored, as before */
    ASSERT_OK(weft_sleep(0.02));
    ASSERT_EQ_INT(c->calls, 1);
    ASSERT_OK(weft_event_free(c->ev));
    *res = (void *)1;
    return 0;
}

TEST(remove_restores_previous_disposition) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c;
    ctx_init(&c, loop);
    set_disposition(SIGUSR1, app_handler);
    set_disposition(SIGUSR2, SIG_IGN);
    run_main_on(loop, restore_main, &c);
    WT_CLOSE_LOOP(loop);
}

/* Adding and removing many times, with a signal while registered (handled, every time) and one
 * while not (it goes to the previous disposition, SIG_IGN): nothing missed, nothing left. */
static int repeat_main(void *arg, void **res) {
    sigctx_t *c = arg;
    int n = WT_SANITIZED ? 300 : 1000;
    struct sigaction sa;
    ASSERT_OK(weft_event_new(&c->ev));
    for (int i = 0; i < n; i++) {
        ASSERT_OK(weft_add_signal_handler(c->loop, SIGUSR1, on_sig, c));
        ASSERT_OK(kill(getpid(), SIGUSR1));
        ASSERT_OK(wait_event(c->ev, 2));
        ASSERT_EQ_INT(c->calls, i + 1);
        ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR1), 1);
        ASSERT_OK(kill(getpid(), SIGUSR1));
    }
    ASSERT_OK(weft_sleep(0.01));
    ASSERT_EQ_INT(c->calls, n);
    handler_of(SIGUSR1, &sa);
    ASSERT(sa.sa_handler == SIG_IGN);
    ASSERT_OK(weft_event_free(c->ev));
    *res = (void *)1;
    return 0;
}

TEST(add_remove_repeatedly) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c;
    ctx_init(&c, loop);
    set_disposition(SIGUSR1, SIG_IGN);
    run_main_on(loop, repeat_main, &c);
    WT_CLOSE_LOOP(loop);
}

/* Adding again replaces the callback; a callback may remove its own handler. */
static void remove_self(void *arg) {
    sigctx_t *c = arg;
    c->calls++;
    ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR2), 1);
}

static int replace_main(void *arg, void **res) {
    sigctx_t *c = arg; /* c[0]: the first callback's, c[1]: the second's */
    ASSERT_OK(weft_add_signal_handler(c[0].loop, SIGUSR2, on_sig, &c[0]));
    ASSERT_OK(weft_add_signal_handler(c[0].loop, SIGUSR2, remove_self, &c[1]));
    ASSERT_OK(raise(SIGUSR2));
    ASSERT_EQ_INT(wait_count(&c[1].calls, 1, 2), 1);
    ASSERT_EQ_INT(c[0].calls, 0);
    ASSERT_OK(raise(SIGUSR2)); /* removed: SIG_IGN again */
    ASSERT_OK(weft_sleep(0.02));
    ASSERT_EQ_INT(c[1].calls, 1);
    ASSERT_EQ_INT(weft_remove_signal_handler(c[0].loop, SIGUSR2), 0);
    *res = (void *)1;
    return 0;
}

TEST(add_replaces_and_remove_from_callback) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c[2];
    ctx_init(&c[0], loop);
    ctx_init(&c[1], loop);
    set_disposition(SIGUSR2, SIG_IGN);
    run_main_on(loop, replace_main, c);
    WT_CLOSE_LOOP(loop);
}

static void noop(void *arg) { (void)arg; }

TEST(bad_input) {
    weft_loop_t *loop = wt_loop_real();
    static const int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP, 32, 33};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ_INT(weft_add_signal_handler(loop, bad[i], noop, NULL), WEFT_EINVAL);
        ASSERT_EQ_INT(weft_remove_signal_handler(loop, bad[i]), WEFT_EINVAL);
    }
    ASSERT_EQ_INT(weft_add_signal_handler(NULL, SIGUSR1, noop, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_add_signal_handler(loop, SIGUSR1, NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_remove_signal_handler(NULL, SIGUSR1), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_remove_signal_handler(loop, SIGUSR1), 0);
    /* The real-time signals are fine. */
    ASSERT_OK(weft_add_signal_handler(loop, SIGRTMIN, noop, NULL));
    ASSERT_EQ_INT(weft_remove_signal_handler(loop, SIGRTMIN), 1);
    ASSERT_EQ_INT(weft_run_signal(), 0);
    ASSERT_EQ_INT(weft_exit_status(0), 0);
    ASSERT_EQ_INT(weft_exit_status(WEFT_EINVAL), 1);
    ASSERT_EQ_INT(weft_exit_status(WEFT_EINTR), 1); /* no signal behind it */
    WT_CLOSE_LOOP(loop);
}

/* One loop owns a signal's handler at a time; closing a loop releases everything it had. */
TEST(busy_and_loop_close_releases) {
    weft_loop_t *a = wt_loop_real(), *b = wt_loop_real();
    weft__sigwatch_t w = {NULL, SIGUSR2, NULL, false};
    struct sigaction sa;
    ASSERT_OK(weft_add_signal_handler(a, SIGUSR1, noop, NULL));
    ASSERT_EQ_INT(weft_add_signal_handler(b, SIGUSR1, noop, NULL), WEFT_EBUSY);
    ASSERT_OK(weft_add_signal_handler(a, SIGUSR1, noop, (void *)1)); /* replaces */
    ASSERT_EQ_INT(weft_remove_signal_handler(b, SIGUSR1), 0);
    ASSERT_OK(weft_add_signal_handler(b, SIGUSR2, noop, NULL));
    ASSERT_EQ_INT(weft__signal_watch(a, &w), WEFT_EINVAL); /* no callback */
    ASSERT_OK(weft_loop_close(a)); /* with its handler still registered */
    ASSERT_OK(weft_add_signal_handler(b, SIGUSR1, noop, NULL));
    WT_CLOSE_LOOP(b);
    handler_of(SIGUSR1, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
    handler_of(SIGUSR2, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
}

/* ---- deadlock detection ---------------------------------------------------------------------- */

static void *kill_later(void *arg) {
    usleep(100 * 1000);
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

static void set_event(void *arg) { weft_event_set(arg); }

static int wait_forever_main(void *arg, void **res) {
    weft_event_t **ev = arg;
    ASSERT_OK(weft_event_new(ev));
    return weft_event_wait(*ev);
}

/* A task waits on an event only a signal handler sets: without the handler that is a deadlock
 * (nothing can ever happen), with it the loop waits for the signal. */
TEST(handler_keeps_loop_waiting) {
    weft_loop_t *loop = wt_loop_real();
    weft_event_t *ev = NULL;
    weft_task_t *t;
    pthread_t th;
    ASSERT_OK(weft_loop_create_task(loop, &t, wait_forever_main, &ev, NULL));
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EDEADLK);
    ASSERT_NOT_NULL(ev);
    ASSERT_OK(weft_add_signal_handler(loop, SIGUSR1, set_event, ev));
    ASSERT_OK(pthread_create(&th, NULL, kill_later, (void *)(intptr_t)SIGUSR1));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ_INT(weft_remove_signal_handler(loop, SIGUSR1), 1);
    weft_unref(t);
    ASSERT_OK(weft_event_free(ev));
    WT_CLOSE_LOOP(loop);
}

/* weft_run()'s own SIGINT / SIGTERM catching is not something to wait for. */
TEST(run_catching_is_not_expected) {
    weft_event_t *ev = NULL;
    struct sigaction sa;
    ASSERT_EQ_INT(weft_run(wait_forever_main, &ev, NULL), WEFT_EDEADLK);
    ASSERT_OK(weft_event_free(ev)); /* main was cancelled, so nobody waits on it */
    handler_of(SIGINT, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
    handler_of(SIGTERM, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
}

/* ---- threads -------------------------------------------------------------------------------- */

typedef struct loop_thread {
    int signo;
    pthread_t thread;
    sigctx_t c;
    _Atomic int ready;
    int rc;
    /* internal watchers instead of a handler */
    bool watch;
    weft__sigwatch_t w;
    int watched;
} loop_thread_t;

static void count_watch(weft__sigwatch_t *w) {
    loop_thread_t *lt = weft__container_of(w, loop_thread_t, w);
    lt->watched++;
    if (weft_get_running_loop() != lt->c.loop || !pthread_equal(pthread_self(), lt->c.thread))
        lt->c.wrong_place++;
    weft_event_set(lt->c.ev);
}

static int thread_main(void *arg, void **res) {
    loop_thread_t *lt = arg;
    ASSERT_OK(weft_event_new(&lt->c.ev));
    if (lt->watch) {
        lt->w.signo = lt->signo;
        lt->w.cb = count_watch;
        ASSERT_OK(weft__signal_watch(lt->c.loop, &lt->w));
    } else {
        ASSERT_OK(weft_add_signal_handler(lt->c.loop, lt->signo, on_sig, &lt->c));
    }
    atomic_store(&lt->ready, 1);
    ASSERT_OK(wait_event(lt->c.ev, 5));
    if (lt->watch)
        weft__signal_unwatch(lt->c.loop, &lt->w);
    else
        ASSERT_EQ_INT(weft_remove_signal_handler(lt->c.loop, lt->signo), 1);
    ASSERT_OK(weft_event_free(lt->c.ev));
    *res = (void *)1;
    return 0;
}

static void *loop_thread(void *arg) {
    loop_thread_t *lt = arg;
    weft_loop_t *loop = wt_loop_real();
    ctx_init(&lt->c, loop);
    run_main_on(loop, thread_main, lt);
    WT_CLOSE_LOOP(loop);
    return NULL;
}

static void start_loops(loop_thread_t *lt, int n) {
    double end = wt_now() + 5;
    for (int i = 0; i < n; i++)
        ASSERT_OK(pthread_create(&lt[i].thread, NULL, loop_thread, &lt[i]));
    for (int i = 0; i < n; i++)
        while (!atomic_load(&lt[i].ready)) {
            if (wt_now() > end)
                WT_FAIL("loop thread %d did not start", i);
            usleep(1000);
        }
}

/* Two loops in two threads, each with its own signal: each handler runs once, on its own loop's
 * thread, whichever thread the kernel picked to run the signal handler. */
TEST(two_loops_two_threads) {
    loop_thread_t lt[2];
    memset(lt, 0, sizeof lt);
    lt[0].signo = SIGUSR1;
    lt[1].signo = SIGUSR2;
    start_loops(lt, 2);
    ASSERT_OK(kill(getpid(), SIGUSR1));
    ASSERT_OK(kill(getpid(), SIGUSR2));
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(pthread_join(lt[i].thread, NULL));
        ASSERT_EQ_INT(lt[i].c.calls, 1);
        ASSERT_EQ_INT(lt[i].c.wrong_place, 0);
    }
}

/* Internal watchers of one signal in two loops: one arrival wakes both. */
TEST(watchers_in_two_loops) {
    loop_thread_t lt[2];
    memset(lt, 0, sizeof lt);
    for (int i = 0; i < 2; i++) {
        lt[i].signo = SIGUSR2;
        lt[i].watch = true;
    }
    start_loops(lt, 2);
    ASSERT_OK(kill(getpid(), SIGUSR2));
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(pthread_join(lt[i].thread, NULL));
        ASSERT_EQ_INT(lt[i].watched, 1);
        ASSERT_EQ_INT(lt[i].c.wrong_place, 0);
    }
}

static void *raise_here(void *arg) {
    /* raise() directs the signal at this thread: the handler runs here, not on the loop's. */
    raise((int)(intptr_t)arg);
    return NULL;
}

static int other_thread_main(void *arg, void **res) {
    sigctx_t *c = arg;
    pthread_t th;
    ASSERT_OK(weft_event_new(&c->ev));
    ASSERT_OK(weft_add_signal_handler(c->loop, SIGUSR1, on_sig, c));
    ASSERT_OK(pthread_create(&th, NULL, raise_here, (void *)(intptr_t)SIGUSR1));
    ASSERT_OK(wait_event(c->ev, 2)); /* the loop sleeps in the poller until then */
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_OK(pthread_create(&th, NULL, kill_later, (void *)(intptr_t)SIGUSR1));
    ASSERT_OK(wait_event(c->ev, 2));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ_INT(c->calls, 2);
    ASSERT_EQ_INT(c->wrong_place, 0);
    ASSERT_EQ_INT(weft_remove_signal_handler(c->loop, SIGUSR1), 1);
    ASSERT_OK(weft_event_free(c->ev));
    *res = (void *)1;
    return 0;
}

TEST(signal_from_other_thread) {
    weft_loop_t *loop = wt_loop_real();
    sigctx_t c;
    ctx_init(&c, loop);
    run_main_on(loop, other_thread_main, &c);
    WT_CLOSE_LOOP(loop);
}

/* Signals keep coming, to the loop's thread and to the sending one (whose handler then reaches
 * into the loops from outside), while loops are created, handle them and close with their
 * handlers still registered: nothing crashes, no loop misses the signal it waits for, and the
 * previous disposition is back at the end. */
static _Atomic int storm_on;

static void *storm(void *arg) {
    (void)arg;
    for (unsigned i = 0; atomic_load(&storm_on); i++) {
        if (i & 1)
            raise(SIGUSR1);
        else
            kill(getpid(), SIGUSR1);
        usleep(100);
    }
    return NULL;
}

static int storm_main(void *arg, void **res) {
    sigctx_t *c = arg;
    ASSERT_OK(weft_event_new(&c->ev));
    ASSERT_OK(weft_add_signal_handler(c->loop, SIGUSR1, on_sig, c));
    if (WT_TSAN) /* signals that interrupt a task may wait for it there: send one from here */
        ASSERT_OK(raise(SIGUSR1));
    ASSERT_OK(wait_event(c->ev, 5));
    ASSERT_OK(weft_event_free(c->ev));
    c->ev = NULL; /* more calls may come before the loop closes */
    *res = (void *)1;
    return 0;
}

TEST(signal_storm_while_loops_close) {
    pthread_t th;
    struct sigaction sa;
    int rounds = WT_SANITIZED ? 100 : 300;
    set_disposition(SIGUSR1, SIG_IGN);
    atomic_store(&storm_on, 1);
    ASSERT_OK(pthread_create(&th, NULL, storm, NULL));
    for (int i = 0; i < rounds; i++) {
        weft_loop_t *loop = wt_loop_real();
        sigctx_t c;
        ctx_init(&c, loop);
        run_main_on(loop, storm_main, &c);
        ASSERT_GE_INT(c.calls, 1);
        ASSERT_EQ_INT(c.wrong_place, 0);
        ASSERT_OK(weft_loop_close(loop)); /* the handler is still registered */
    }
    atomic_store(&storm_on, 0);
    ASSERT_OK(pthread_join(th, NULL));
    handler_of(SIGUSR1, &sa);
    ASSERT(sa.sa_handler == SIG_IGN);
}

/* ---- internal watchers ----------------------------------------------------------------------- */

typedef struct watcher {
    weft__sigwatch_t w;
    int calls;
    weft_event_t *ev;
    struct watcher *also_remove;
} watcher_t;

static void watcher_cb(weft__sigwatch_t *w) {
    watcher_t *x = weft__container_of(w, watcher_t, w);
    x->calls++;
    if (x->also_remove) {
        weft__signal_unwatch(weft_get_running_loop(), &x->w);
        weft__signal_unwatch(weft_get_running_loop(), &x->also_remove->w);
    }
    if (x->ev)
        weft_event_set(x->ev);
}

/* A child that exits once the parent is out of fork(): ThreadSanitizer drops a signal that
 * arrives while its fork() interceptor runs, so the exit waits for a byte from the parent. */
static pid_t spawn_exiting_child(void) {
    int p[2];
    char c = 0;
    pid_t pid;
    ASSERT_OK(pipe(p));
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    ASSERT_EQ_INT(write(p[1], &c, 1), 1);
    close(p[1]);
    return pid;
}

static void reap(pid_t pid) {
    int status;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
}

/* Two SIGCHLD watchers on one loop: a child's exit calls both. The task waits on an event alone
 * (no timer): the watchers keep the loop from reporting a deadlock. */
static int sigchld_main(void *arg, void **res) {
    watcher_t *x = arg;
    weft_loop_t *loop = weft_get_running_loop();
    weft_event_t *ev;
    pid_t pid;
    ASSERT_OK(weft_event_new(&ev));
    for (int i = 0; i < 2; i++) {
        x[i].w.signo = SIGCHLD;
        x[i].w.cb = watcher_cb;
        ASSERT_OK(weft__signal_watch(loop, &x[i].w));
    }
    x[0].ev = ev;
    pid = spawn_exiting_child();
    ASSERT_OK(weft_event_wait(ev));
    weft_event_clear(ev);
    reap(pid);
    ASSERT_EQ_INT(x[0].calls, 1);
    ASSERT_EQ_INT(x[1].calls, 1);
    weft__signal_unwatch(loop, &x[0].w);
    weft__signal_unwatch(loop, &x[0].w); /* twice: no effect */
    x[1].ev = ev;
    pid = spawn_exiting_child();
    ASSERT_OK(wait_event(ev, 2));
    reap(pid);
    ASSERT_EQ_INT(x[0].calls, 1);
    ASSERT_EQ_INT(x[1].calls, 2);
    weft__signal_unwatch(loop, &x[1].w);
    ASSERT_OK(weft_event_free(ev));
    *res = (void *)1;
    return 0;
}

static void *take_signals(void *arg) {
    struct pollfd pfd = {(int)(intptr_t)arg, POLLIN, 0};
    while (poll(&pfd, 1, 50) == 0 || (pfd.revents == 0 && errno == EINTR)) /* until closed */
        ;
    return NULL;
}

TEST(watchers_sigchld) {
    weft_loop_t *loop = wt_loop_real();
    watcher_t x[2];
    struct sigaction sa;
    pthread_t th;
    sigset_t chld;
    int p[2];
    memset(x, 0, sizeof x);
    /* ThreadSanitizer holds back a signal that interrupts a task until that task calls into it
     * again, and this one waits for the signal: there, a helper thread takes SIGCHLD (blocked on
     * the loop's thread), which wakes the loop from outside as well. */
    ASSERT_OK(pipe(p));
    ASSERT_OK(pthread_create(&th, NULL, take_signals, (void *)(intptr_t)p[0]));
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (WT_TSAN)
        ASSERT_OK(pthread_sigmask(SIG_BLOCK, &chld, NULL));
    run_main_on(loop, sigchld_main, x);
    close(p[1]);
    ASSERT_OK(pthread_join(th, NULL));
    close(p[0]);
    ASSERT_OK(pthread_sigmask(SIG_UNBLOCK, &chld, NULL));
    handler_of(SIGCHLD, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
    WT_CLOSE_LOOP(loop);
}

/* A watcher that unwatches itself and the next one from its callback: the next one is not
 * called, the others are. */
static int unwatch_cb_main(void *arg, void **res) {
    watcher_t *x = arg;
    weft_loop_t *loop = weft_get_running_loop();
    ASSERT_OK(weft_event_new(&x[2].ev));
    for (int i = 2; i >= 0; i--) { /* newest first: called in the order 0, 1, 2 */
        x[i].w.signo = SIGUSR2;
        x[i].w.cb = watcher_cb;
        ASSERT_OK(weft__signal_watch(loop, &x[i].w));
    }
    x[0].also_remove = &x[1];
    ASSERT_OK(raise(SIGUSR2));
    ASSERT_OK(wait_event(x[2].ev, 2));
    ASSERT_EQ_INT(x[0].calls, 1);
    ASSERT_EQ_INT(x[1].calls, 0);
    ASSERT_EQ_INT(x[2].calls, 1);
    ASSERT_OK(raise(SIGUSR2));
    ASSERT_OK(wait_event(x[2].ev, 2));
    ASSERT_EQ_INT(x[0].calls, 1);
    ASSERT_EQ_INT(x[2].calls, 2);
    weft__signal_unwatch(loop, &x[2].w);
    ASSERT_OK(weft_event_free(x[2].ev));
    *res = (void *)1;
    return 0;
}

TEST(watcher_unwatch_from_callback) {
    weft_loop_t *loop = wt_loop_real();
    watcher_t x[3];
    memset(x, 0, sizeof x);
    run_main_on(loop, unwatch_cb_main, x);
    WT_CLOSE_LOOP(loop);
}

/* ---- weft_run() ------------------------------------------------------------------------------ */

static int cleanup_done;

static int background(void *arg, void **res) {
    int *ended = arg;
    int rc = weft_sleep(30); /* cancelled by weft_run() once main is done */
    *ended = 1;
    return rc;
}

static int term_main(void *arg, void **res) {
    static int bg_ended;
    pthread_t th;
    int rc;
    ASSERT_OK(weft_create_task(NULL, background, &bg_ended, NULL));
    ASSERT_OK(pthread_create(&th, NULL, kill_later, (void *)(intptr_t)SIGTERM));
    rc = weft_sleep(10); /* the work, interrupted */
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    weft_shield_begin(); /* clean-up that suspends */
    ASSERT_OK(weft_sleep(0.02));
    cleanup_done = 1;
    weft_shield_end();
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ_INT(bg_ended, 0);
    return rc;
}

static void sigterm_child(void) {
    struct sigaction sa;
    int rc = weft_run(term_main, NULL, NULL);
    ASSERT_EQ_INT(rc, WEFT_EINTR);
    ASSERT_EQ_STR(weft_error_message(), "interrupted by SIGTERM");
    ASSERT_EQ_INT(cleanup_done, 1);
    ASSERT_EQ_INT(weft_run_signal(), SIGTERM);
    ASSERT_EQ_INT(weft_exit_status(rc), 128 + SIGTERM);
    handler_of(SIGTERM, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
    handler_of(SIGINT, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
    exit(weft_exit_status(rc)); /* exit(): the leak checker runs */
}

TEST(run_sigterm_cancels_main) {
    int status = 0;
    char *err = wt_run_child(sigterm_child, &status);
    fputs(err, stderr);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ_INT(WEXITSTATUS(status), 143);
    free(err);
}

/* Main swallows the cancellation (uncancel) and returns a result: weft_run() returns it. */
static int swallow_main(void *arg, void **res) {
    weft_task_t *me = weft_current_task();
    ASSERT_OK(raise(SIGINT));
    ASSERT_EQ_INT(weft_sleep(5), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_task_cancelling(me), 1);
    ASSERT_EQ_INT(weft_task_uncancel(me), 0);
    ASSERT_OK(weft_sleep(0.01));
    *res = (void *)42;
    return 0;
}

TEST(run_sigint_swallowed) {
    void *v = NULL;
    struct sigaction sa;
    ASSERT_OK(weft_run(swallow_main, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)42);
    ASSERT_EQ_INT(weft_run_signal(), SIGINT);
    ASSERT_EQ_INT(weft_exit_status(0), 0);
    handler_of(SIGINT, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
    /* the next run starts afresh */
    ASSERT_OK(weft_run(swallow_main, NULL, &v));
    ASSERT_EQ_INT(weft_run_signal(), SIGINT);
}

/* A second SIGINT while main cleans up is not caught: the default action ends the process. */
static int twice_main(void *arg, void **res) {
    ASSERT_OK(raise(SIGINT));
    ASSERT_EQ_INT(weft_sleep(5), WEFT_ECANCELED);
    weft_shield_begin();
    kill(getpid(), SIGINT);
    weft_sleep(1);
    weft_shield_end();
    fprintf(stderr, "survived the second SIGINT\n");
    return WEFT_ECANCELED;
}

static void sigint_twice_child(void) {
    weft_run(twice_main, NULL, NULL);
    fprintf(stderr, "weft_run returned\n");
}

TEST(run_second_sigint_kills) {
    int status = 0;
    char *err = wt_run_child(sigint_twice_child, &status);
    fputs(err, stderr);
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ_INT(WTERMSIG(status), SIGINT);
    ASSERT_NOT_CONTAINS(err, "survived");
    free(err);
}

/* A SIGINT handler the application installed stays in charge. */
static int app_main(void *arg, void **res) {
    ASSERT_OK(raise(SIGINT));
    ASSERT_OK(weft_sleep(0.02));
    ASSERT_EQ_INT(app_calls, 1);
    *res = (void *)1;
    return 0;
}

TEST(run_keeps_application_handler) {
    struct sigaction sa;
    void *v = NULL;
    set_disposition(SIGINT, app_handler);
    ASSERT_OK(weft_run(app_main, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    ASSERT_EQ_INT(weft_run_signal(), 0);
    handler_of(SIGINT, &sa);
    ASSERT(sa.sa_handler == app_handler);
}

/* The loop's own handler for SIGTERM takes it while registered; once removed, weft_run()'s
 * catching is back. */
static int user_handler_main(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    weft_task_t *me = weft_current_task();
    sigctx_t c;
    ctx_init(&c, loop);
    ASSERT_OK(weft_event_new(&c.ev));
    ASSERT_OK(weft_add_signal_handler(loop, SIGTERM, on_sig, &c));
    ASSERT_OK(raise(SIGTERM));
    ASSERT_OK(wait_event(c.ev, 2));
    ASSERT_OK(weft_sleep(0.01)); /* not cancelled */
    ASSERT_EQ_INT(weft_remove_signal_handler(loop, SIGTERM), 1);
    ASSERT_OK(raise(SIGTERM));
    ASSERT_EQ_INT(weft_sleep(5), WEFT_ECANCELED);
    weft_task_uncancel(me);
    ASSERT_EQ_INT(c.calls, 1);
    ASSERT_OK(weft_event_free(c.ev));
    *res = (void *)1;
    return 0;
}

TEST(run_with_loop_handler) {
    void *v = NULL;
    struct sigaction sa;
    ASSERT_OK(weft_run(user_handler_main, NULL, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    ASSERT_EQ_INT(weft_run_signal(), SIGTERM);
    handler_of(SIGTERM, &sa);
    ASSERT(sa.sa_handler == SIG_DFL);
}

const wt_test_t wt_tests[] = {
    T(handler_runs_on_loop),
    T(handler_signal_before_run),
    T(handler_burst_of_signals),
    T(remove_restores_previous_disposition),
    T(add_remove_repeatedly),
    T(add_replaces_and_remove_from_callback),
    T(bad_input),
    T(busy_and_loop_close_releases),
    T(handler_keeps_loop_waiting),
    T(run_catching_is_not_expected),
    T(two_loops_two_threads),
    T(watchers_in_two_loops),
    T(signal_from_other_thread),
    T(signal_storm_while_loops_close),
    T_TIMEOUT(watchers_sigchld, 10),
    T(watcher_unwatch_from_callback),
    T(run_sigterm_cancels_main),
    T(run_sigint_swallowed),
    T(run_second_sigint_kills),
    T(run_keeps_application_handler),
    T(run_with_loop_handler),
    WT_END,
};
