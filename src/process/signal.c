/* Signals: loop.add_signal_handler, internal signal watchers, and weft_run()'s SIGINT / SIGTERM. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/internal.h"

/* One process-wide handler serves every loop. It may run on any thread, at any moment, so it
 * touches only atomics and the loops' eventfds: it counts the arrival, then wakes each loop whose
 * wake mask has the signal. Each loop compares the counters with what it saw last time, on its
 * own thread, and runs what the new arrivals call for.
 *
 * The loops that want signals form a list the handler walks without a lock. Registrations take
 * `reg_lock`; a loop's entry is only freed after a grace period: `active` counts handlers running
 * right now, and whoever unlinks an entry waits for it to drop to zero (the handler never blocks,
 * so the wait is short, even when it interrupted the waiting thread itself). */

#define NSIGS 65 /* signals 1..64: one bit each in a 64-bit mask */
#define SIGBIT(s) ((uint64_t)1 << ((s) - 1))

struct user_handler {
    weft_callback_fn cb;       /* NULL: none */
    void *arg;
    weft_handle_t *queued;     /* the call scheduled for the last arrivals, until it runs */
};

struct weft__signals {
    struct weft__signals *_Atomic next;     /* the process-wide list, walked by the handler */
    weft_loop_t *loop;
    _Atomic uint64_t wake_mask;             /* wake the loop for these: read by the handler */
    uint64_t user_mask, watch_mask, run_mask;
    unsigned long seen[NSIGS];              /* the counters at the last dispatch */
    struct user_handler user[NSIGS];
    weft__sigwatch_t *watchers[NSIGS];
    weft__sigwatch_t *iter_next;            /* the watcher a dispatch calls next */
    /* weft_run(): the main task, and the first SIGINT / SIGTERM caught (set by the handler). */
    weft_task_t *run_task;
    _Atomic int run_signo;
    bool run_cancelled;
};

struct sigslot {
    _Atomic unsigned long count;            /* arrivals, ever */
    _Atomic(weft_loop_t *) owner;           /* the loop with a user handler */
    _Atomic(weft_loop_t *) runner;          /* the weft_run() catching it */
    /* User handlers and watchers of every loop: the handler lets the first weft_run() signal
     * put back SIG_DFL only when there are none. */
    _Atomic unsigned nusers;
    bool installed;                         /* our handler is the disposition (reg_lock) */
    struct sigaction saved;                 /* the disposition before ours */
};

static struct sigslot slots[NSIGS];
static struct weft__signals *_Atomic loops;
static _Atomic unsigned active;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

__thread int weft__run_signo __attribute__((tls_model("initial-exec")));

static void on_signal(int signo);

/* A fork while another thread registers, or runs the handler, must not leave the child with the
 * lock taken or a handler counted forever: only the forking thread goes on in the child. */
static void fork_prepare(void) { pthread_mutex_lock(&reg_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&reg_lock); }
static void fork_child(void) {
    pthread_mutex_init(&reg_lock, NULL);
    atomic_store(&active, 0);
}
static void at_fork_once(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

static void lock(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, at_fork_once);
    pthread_mutex_lock(&reg_lock);
}

static void unlock(void) { pthread_mutex_unlock(&reg_lock); }

static bool valid_signal(int signo) {
    /* 32 and 33 (between the standard and the real-time ones) are glibc's own. */
    return signo > 0 && signo < NSIGS && signo != SIGKILL && signo != SIGSTOP &&
           (signo < 32 || (signo >= SIGRTMIN && signo <= SIGRTMAX));
}

/* Waits until no handler is in the middle of reading what was just unpublished. */
static void quiesce(void) {
    while (atomic_load(&active))
        sched_yield();
}

/* The first weft_run() signal: the next one must find the default action (asyncio.Runner's
 * second Ctrl-C), unless someone still handles it. */
static void run_signal_fired(weft_loop_t *runner) {
    static const int caught[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) {
        int s = caught[i];
        if (atomic_load(&slots[s].runner) == runner && atomic_load(&slots[s].nusers) == 0) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigaction(s, &dfl, NULL);
        }
    }
}

static void on_signal(int signo) {
    int saved_errno = errno;
    struct sigslot *slot = &slots[signo];
    uint64_t bit = SIGBIT(signo);
    weft_loop_t *runner;

    atomic_fetch_add(&active, 1);
    atomic_fetch_add(&slot->count, 1);
    runner = atomic_load(&slot->runner);
    if (runner && !atomic_load(&slot->owner)) {
        int none = 0;
        if (atomic_compare_exchange_strong(&runner->signals->run_signo, &none, signo))
            run_signal_fired(runner);
    }
    for (struct weft__signals *s = atomic_load(&loops); s; s = atomic_load(&s->next))
        if (atomic_load(&s->wake_mask) & bit)
            weft__loop_wake(s->loop, WEFT__PENDING_SIGNAL);
    atomic_fetch_sub(&active, 1);
    errno = saved_errno;
}

/* Makes the signal's disposition match what is registered: our handler while anyone wants it,
 * the saved one after. Under reg_lock. */
static int sync_disposition(int signo) {
    struct sigslot *slot = &slots[signo];
    weft_loop_t *runner = atomic_load(&slot->runner);
    bool armed = runner && atomic_load(&runner->signals->run_signo) == 0;
    bool need = atomic_load(&slot->nusers) > 0 || armed;
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    if (need && !slot->installed) {
        if (sigaction(signo, &sa, &slot->saved) < 0)
            return -errno;
        slot->installed = true;
    } else if (need && runner && !armed) {
        /* A handler may have put SIG_DFL back after the first weft_run() signal: once it is
         * done, ours goes back for the handlers and watchers registered since. */
        quiesce();
        if (sigaction(signo, &sa, NULL) < 0)
            return -errno;
    } else if (!need && slot->installed) {
        sigaction(signo, &slot->saved, NULL);
        slot->installed = false;
    }
    return 0;
}

static void publish_mask(struct weft__signals *s) {
    atomic_store(&s->wake_mask, s->user_mask | s->watch_mask | s->run_mask);
}

/* The loop's entry, created on first use. */
static struct weft__signals *loop_signals(weft_loop_t *loop) {
    struct weft__signals *s = loop->signals;
    if (s)
        return s;
    if (!(s = calloc(1, sizeof *s)))
        return NULL;
    s->loop = loop;
    loop->signals = s;
    lock();
    atomic_store(&s->next, atomic_load(&loops));
    atomic_store(&loops, s);
    unlock();
    return s;
}

/* Before the loop starts listening for signo: arrivals counted until now are not its own. */
static void start_listening(struct weft__signals *s, int signo) {
    if (!((s->user_mask | s->watch_mask) & SIGBIT(signo)))
        s->seen[signo] = atomic_load(&slots[signo].count);
}

/* A signal that came while the registration was being made (our handler was already there for
 * another loop) did not wake this one: make sure it is looked at. */
static void catch_up(struct weft__signals *s, int signo) {
    if (atomic_load(&slots[signo].count) != s->seen[signo])
        weft__loop_wake(s->loop, WEFT__PENDING_SIGNAL);
}

/* ---- user handlers ------------------------------------------------------------------------ */

static void user_call(void *arg) {
    struct user_handler *u = arg;
    weft_handle_unref(u->queued);
    u->queued = NULL;
    u->cb(u->arg);
}

static void user_cancel(struct user_handler *u) {
    if (u->queued) {
        weft_handle_cancel(u->queued);
        weft_handle_unref(u->queued);
        u->queued = NULL;
    }
}

int weft_add_signal_handler(weft_loop_t *loop, int signo, weft_callback_fn cb, void *arg) {
    struct weft__signals *s;
    weft_loop_t *owner;
    int rc;
    if (!loop || !cb || !valid_signal(signo))
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if (!(s = loop_signals(loop)))
        return WEFT_ENOMEM;
    lock();
    owner = atomic_load(&slots[signo].owner);
    if (owner && owner != loop) {
        unlock();
        return WEFT_EBUSY;
    }
    s->user[signo].cb = cb;
    s->user[signo].arg = arg;
    if (owner == loop) { /* a new handler in place of the old one */
        unlock();
        return 0;
    }
    start_listening(s, signo);
    s->user_mask |= SIGBIT(signo);
    publish_mask(s);
    atomic_store(&slots[signo].owner, loop);
    atomic_fetch_add(&slots[signo].nusers, 1);
    if ((rc = sync_disposition(signo)) < 0) {
        atomic_fetch_sub(&slots[signo].nusers, 1);
        atomic_store(&slots[signo].owner, NULL);
        s->user_mask &= ~SIGBIT(signo);
        publish_mask(s);
        s->user[signo].cb = NULL;
        unlock();
        return rc;
    }
    unlock();
    catch_up(s, signo);
    return 0;
}

int weft_remove_signal_handler(weft_loop_t *loop, int signo) {
    struct weft__signals *s;
    if (!loop || !valid_signal(signo))
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    s = loop->signals;
    if (!s || !s->user[signo].cb)
        return 0;
    lock();
    atomic_store(&slots[signo].owner, NULL);
    atomic_fetch_sub(&slots[signo].nusers, 1);
    sync_disposition(signo); /* restoring a disposition we could set cannot fail */
    s->user_mask &= ~SIGBIT(signo);
    publish_mask(s);
    unlock();
    user_cancel(&s->user[signo]);
    s->user[signo].cb = NULL;
    s->user[signo].arg = NULL;
    return 1;
}

/* ---- internal watchers -------------------------------------------------------------------- */

int weft__signal_watch(weft_loop_t *loop, weft__sigwatch_t *w) {
    struct weft__signals *s;
    int signo, rc;
    if (!loop || !w || !w->cb || !valid_signal(w->signo))
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if (!(s = loop_signals(loop)))
        return WEFT_ENOMEM;
    signo = w->signo;
    lock();
    start_listening(s, signo);
    w->next = s->watchers[signo];
    s->watchers[signo] = w;
    s->watch_mask |= SIGBIT(signo);
    publish_mask(s);
    atomic_fetch_add(&slots[signo].nusers, 1);
    if ((rc = sync_disposition(signo)) < 0) {
        atomic_fetch_sub(&slots[signo].nusers, 1);
        s->watchers[signo] = w->next;
        if (!s->watchers[signo])
            s->watch_mask &= ~SIGBIT(signo);
        publish_mask(s);
        unlock();
        return rc;
    }
    unlock();
    catch_up(s, signo);
    return 0;
}

void weft__signal_unwatch(weft_loop_t *loop, weft__sigwatch_t *w) {
    struct weft__signals *s;
    weft__sigwatch_t **p;
    int signo;
    if (!loop || !w || !valid_signal(w->signo) || !(s = loop->signals))
        return;
    WEFT__LOOP_THREAD(loop);
    signo = w->signo;
    for (p = &s->watchers[signo]; *p && *p != w; p = &(*p)->next)
        ;
    if (!*p)
        return; /* not watching */
    *p = w->next;
    if (s->iter_next == w) /* removed by the watcher a dispatch is calling */
        s->iter_next = w->next;
    lock();
    atomic_fetch_sub(&slots[signo].nusers, 1);
    sync_disposition(signo);
    if (!s->watchers[signo]) {
        s->watch_mask &= ~SIGBIT(signo);
        publish_mask(s);
    }
    unlock();
}

/* ---- on the loop's thread ----------------------------------------------------------------- */

static void run_interrupt(struct weft__signals *s) {
    int signo = atomic_load(&s->run_signo);
    if (!signo || s->run_cancelled || !s->run_task)
        return;
    s->run_cancelled = true;
    weft_cancel(s->run_task, signo == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM");
}

void weft__signal_dispatch(weft_loop_t *loop) {
    struct weft__signals *s = loop->signals;
    uint64_t mask;
    if (!s)
        return;
    run_interrupt(s);
    mask = s->user_mask | s->watch_mask;
    while (mask) {
        int signo = __builtin_ctzll(mask) + 1;
        unsigned long count = atomic_load(&slots[signo].count);
        struct user_handler *u = &s->user[signo];
        mask &= mask - 1;
        if (count == s->seen[signo])
            continue;
        s->seen[signo] = count;
        /* A burst of arrivals before the callback ran is one call, as asyncio's wake-up fd
         * gives one _handle_signal per read batch. */
        if (u->cb && !u->queued && weft_call_soon(loop, user_call, u, &u->queued) < 0)
            weft__log("signal %d: out of memory: its handler does not run", signo);
        /* A watcher may unwatch itself or another one: iter_next follows. */
        for (weft__sigwatch_t *w = s->watchers[signo]; w; w = s->iter_next) {
            s->iter_next = w->next;
            w->cb(w);
        }
        s->iter_next = NULL;
    }
}

bool weft__signal_expected(weft_loop_t *loop) {
    const struct weft__signals *s = loop->signals;
    if (!s)
        return false;
    if (s->user_mask)
        return true;
    /* Only asked when the loop has nothing else to wait for: walking the watchers is cheap. */
    for (uint64_t m = s->watch_mask; m; m &= m - 1)
        for (const weft__sigwatch_t *w = s->watchers[__builtin_ctzll(m) + 1]; w; w = w->next)
            if (!w->quiet)
                return true;
    return false;
}

void weft__signal_loop_close(weft_loop_t *loop) {
    struct weft__signals *s = loop->signals, *_Atomic *p;
    if (!s)
        return;
    lock();
    for (int signo = 1; signo < NSIGS; signo++) {
        unsigned n = 0;
        for (weft__sigwatch_t *w = s->watchers[signo]; w; w = w->next)
            n++;
        s->watchers[signo] = NULL;
        if (s->user[signo].cb) {
            atomic_store(&slots[signo].owner, NULL);
            n++;
        }
        if (atomic_load(&slots[signo].runner) == loop)
            atomic_store(&slots[signo].runner, NULL);
        if (n || (s->run_mask & SIGBIT(signo))) {
            atomic_fetch_sub(&slots[signo].nusers, n);
            sync_disposition(signo);
        }
    }
    s->user_mask = s->watch_mask = s->run_mask = 0;
    publish_mask(s);
    for (p = &loops; atomic_load(p) != s; p = &atomic_load(p)->next)
        ;
    atomic_store(p, atomic_load(&s->next));
    quiesce(); /* no handler is using s, nor the loop's eventfd, from now on */
    unlock();
    for (int signo = 1; signo < NSIGS; signo++)
        user_cancel(&s->user[signo]);
    loop->signals = NULL;
    free(s);
}

/* ---- weft_run() --------------------------------------------------------------------------- */

static bool on_main_thread(void) {
    return getpid() == (pid_t)syscall(SYS_gettid);
}

void weft__signal_run_begin(weft_loop_t *loop, weft_task_t *main_task) {
    static const int caught[] = {SIGINT, SIGTERM};
    struct weft__signals *s;
    /* As asyncio.Runner: only the main thread's run turns Ctrl-C into a cancellation. */
    if (!on_main_thread() || !(s = loop_signals(loop)))
        return;
    s->run_task = main_task;
    lock();
    for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) {
        int signo = caught[i];
        struct sigaction cur;
        /* Never in place of a disposition the application chose (or of our own handler, which
         * serves another loop's handler or another run). */
        if (slots[signo].installed || sigaction(signo, NULL, &cur) < 0 ||
            (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
            continue;
        atomic_store(&slots[signo].runner, loop);
        s->run_mask |= SIGBIT(signo);
        publish_mask(s);
        if (sync_disposition(signo) < 0) {
            atomic_store(&slots[signo].runner, NULL);
            s->run_mask &= ~SIGBIT(signo);
            publish_mask(s);
        }
    }
    unlock();
}

int weft__signal_run_end(weft_loop_t *loop) {
    struct weft__signals *s = loop->signals;
    int signo;
    if (!s || !s->run_task)
        return 0;
    lock();
    for (int i = 1; i < NSIGS; i++)
        if (s->run_mask & SIGBIT(i)) {
            atomic_store(&slots[i].runner, NULL);
            sync_disposition(i);
        }
    s->run_mask = 0;
    publish_mask(s);
    quiesce(); /* run_signo is final */
    unlock();
    signo = atomic_load(&s->run_signo);
    s->run_task = NULL;
    s->run_cancelled = false;
    atomic_store(&s->run_signo, 0);
    return signo;
}

int weft_run_signal(void) { return weft__run_signo; }

int weft_exit_status(int rc) {
    if (rc == 0)
        return 0;
    if (rc == WEFT_EINTR && weft__run_signo > 0)
        return 128 + weft__run_signo;
    return 1;
}
