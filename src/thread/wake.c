/* How other threads and signal handlers reach a loop: an inbox of posted work, a `pending`
 * word the loop reads once per iteration, and an eventfd that wakes it when it sleeps in the
 * poller. Also call_soon_threadsafe, holds, and the [loop thread] check. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../core/internal.h"

static void wake_io_cb(weft__io_t *io, unsigned events) {
    weft_loop_t *loop = weft__container_of(io, weft_loop_t, wake_io);
    uint64_t n;
    (void)events;
    /* Level-triggered: read it empty, or the poller reports it again at once. */
    while (read(loop->wake_fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    weft__wake_dispatch(loop);
}

int weft__wake_init(weft_loop_t *loop) {
    int rc;
    weft__queue_init(&loop->inbox);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0)
        return -errno;
    if ((rc = pthread_mutex_init(&loop->inbox_lock, NULL)) != 0) {
        close(loop->wake_fd);
        return -rc;
    }
    loop->wake_io.fd = loop->wake_fd;
    loop->wake_io.events = WEFT__POLL_IN | WEFT__POLL_UNCOUNTED;
    loop->wake_io.registered = 0;
    loop->wake_io.cb = wake_io_cb;
    if ((rc = weft__poll_update(&loop->poll, &loop->wake_io)) < 0) {
        pthread_mutex_destroy(&loop->inbox_lock);
        close(loop->wake_fd);
        return rc;
    }
    return 0;
}

void weft__wake_free(weft_loop_t *loop) {
    close(loop->wake_fd); /* the poller is closed with the loop: no need to unregister */
    loop->wake_fd = -1;
    pthread_mutex_destroy(&loop->inbox_lock);
}

void weft__loop_wake(weft_loop_t *loop, unsigned what) {
    if (atomic_fetch_or_explicit(&loop->pending, what, memory_order_acq_rel) == 0) {
        uint64_t one = 1;
        int saved = errno; /* may run in a signal handler */
        /* Only fails with EAGAIN when the counter is about to overflow: it is readable then. */
        while (write(loop->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        errno = saved;
    }
}

int weft__loop_post(weft_loop_t *loop, weft__work_t *w) {
    pthread_mutex_lock(&loop->inbox_lock);
    if (loop->inbox_closed) {
        pthread_mutex_unlock(&loop->inbox_lock);
        return WEFT_ESHUTDOWN;
    }
    weft__queue_push(&loop->inbox, w);
    /* Woken under the lock: once the loop has the item it may finish and close, and closing
     * takes this lock, so the loop (and its eventfd) outlives this call. */
    weft__loop_wake(loop, WEFT__PENDING_INBOX);
    pthread_mutex_unlock(&loop->inbox_lock);
    return 0;
}

bool weft__loop_unpost(weft_loop_t *loop, weft__work_t *w) {
    bool found = false;
    pthread_mutex_lock(&loop->inbox_lock);
    for (weft__work_t **p = &loop->inbox.head; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            if (!*p)
                loop->inbox.tailp = p;
            loop->inbox.len--;
            found = true;
            break;
        }
    pthread_mutex_unlock(&loop->inbox_lock);
    return found;
}

void weft__wake_dispatch(weft_loop_t *loop) {
    unsigned what = atomic_exchange_explicit(&loop->pending, 0, memory_order_acq_rel);
    if (what & WEFT__PENDING_INBOX) {
        weft__work_t *head, **tailp;
        size_t len;
        pthread_mutex_lock(&loop->inbox_lock);
        head = loop->inbox.head;
        tailp = loop->inbox.tailp;
        len = loop->inbox.len;
        weft__queue_init(&loop->inbox);
        pthread_mutex_unlock(&loop->inbox_lock);
        if (head) { /* append the whole chain, order kept */
            *loop->ready.tailp = head;
            loop->ready.tailp = tailp;
            loop->ready.len += len;
        }
    }
    if (what & WEFT__PENDING_SIGNAL)
        weft__signal_dispatch(loop);
}

bool weft__loop_expects_outside(weft_loop_t *loop) {
    return loop->nexternal > 0 || atomic_load_explicit(&loop->holds, memory_order_acquire) > 0 ||
           atomic_load_explicit(&loop->pending, memory_order_acquire) != 0 ||
           weft__signal_expected(loop);
}

void weft__thread_loop_close(weft_loop_t *loop) {
    weft__work_t *w;
    /* Children and signal handlers first (they may post), then the executor's jobs: queued ones
     * are dropped, running ones waited for, and their completions come through the inbox. */
    weft__process_loop_close(loop);
    weft__signal_loop_close(loop);
    weft__executor_loop_close(loop);
    pthread_mutex_lock(&loop->inbox_lock);
    loop->inbox_closed = true;
    pthread_mutex_unlock(&loop->inbox_lock);
    atomic_store(&loop->pending, 0);
    /* Nobody can post now: run what was posted, each item seeing loop->closed. */
    while ((w = loop->inbox.head)) {
        loop->inbox.head = w->next;
        if (!loop->inbox.head)
            weft__queue_init(&loop->inbox);
        w->run(w);
    }
}

void weft__deadline(struct timespec *dl, double timeout) {
    double s = timeout > 0 ? timeout : 0;
    clock_gettime(CLOCK_MONOTONIC, dl);
    dl->tv_sec += (time_t)s;
    dl->tv_nsec += (long)((s - floor(s)) * 1e9);
    if (dl->tv_nsec >= 1000000000L) {
        dl->tv_sec++;
        dl->tv_nsec -= 1000000000L;
    }
}

/* ---- call_soon_threadsafe -------------------------------------------------------------- */

typedef struct ts_call {
    weft__work_t work;
    weft_loop_t *loop;
    weft_callback_fn cb;
    void *arg;
} ts_call_t;

static void ts_call_run(weft__work_t *w) {
    ts_call_t *c = weft__container_of(w, ts_call_t, work);
    if (!c->loop->closed) /* asyncio's close drops callbacks still pending */
        c->cb(c->arg);
    free(c);
}

void *weft__posted_work_fn(const weft__work_t *w) {
    return w->run == ts_call_run
               ? (void *)(uintptr_t)weft__container_of(w, ts_call_t, work)->cb
               : NULL;
}

int weft_call_soon_threadsafe(weft_loop_t *loop, weft_callback_fn cb, void *arg) {
    ts_call_t *c;
    int rc;
    if (!loop || !cb)
        return WEFT_EINVAL;
    if (!(c = malloc(sizeof *c)))
        return WEFT_ENOMEM;
    c->work.run = ts_call_run;
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    if ((rc = weft__loop_post(loop, &c->work)) < 0)
        free(c);
    return rc;
}

static void stop_cb(void *loop) { weft_loop_stop(loop); }

int weft_loop_stop_threadsafe(weft_loop_t *loop) {
    return weft_call_soon_threadsafe(loop, stop_cb, loop);
}

void weft_loop_hold(weft_loop_t *loop) {
    atomic_fetch_add_explicit(&loop->holds, 1, memory_order_acq_rel);
}

void weft_loop_release(weft_loop_t *loop) {
    /* The last release must wake a loop that waits only because of the hold: it may now have
     * to report that nothing can happen. Under the inbox lock, as in weft__loop_post: the
     * loop may close as soon as the hold is gone. */
    pthread_mutex_lock(&loop->inbox_lock);
    if (atomic_fetch_sub_explicit(&loop->holds, 1, memory_order_acq_rel) == 1)
        weft__loop_wake(loop, WEFT__PENDING_INBOX);
    pthread_mutex_unlock(&loop->inbox_lock);
}

/* Checked in WEFT_THREAD_CHECKS builds and in debug mode (WEFT__LOOP_THREAD). */
void weft__wrong_thread(const weft_loop_t *loop, const char *fn) {
    weft__log_at(WEFT_LOG_ERROR, "%s() called on a thread other than the one running its loop "
                 "%p; use weft_call_soon_threadsafe()", fn, (const void *)loop);
    abort();
}
