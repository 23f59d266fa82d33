/* The loop's watched file descriptors: task waits, add_reader / add_writer, and the objects
 * closed with the loop. See net.h for the readiness model. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "net.h"

#define DIR_BIT(dir) ((dir) == WEFT__RD ? (unsigned)WEFT__POLL_IN : (unsigned)WEFT__POLL_OUT)

int weft__net_task(weft_loop_t **loop, weft_task_t **task) {
    weft_task_t *t = weft__current();
    if (!t)
        return WEFT_EPERM;
    *task = t;
    *loop = t->loop;
    return 0;
}

/* Edge-triggered for both directions unless a callback is installed: then level-triggered
 * for the directions that have a callback or a waiting task (a level-triggered direction
 * nobody waits on would report readiness on every poll). */
static unsigned wanted_events(const weft__fd_t *e) {
    unsigned ev = 0;
    if (!e->cbs[WEFT__RD].cb && !e->cbs[WEFT__WR].cb)
        return WEFT__POLL_IN | WEFT__POLL_OUT | WEFT__POLL_EDGE;
    for (int dir = 0; dir < 2; dir++)
        if (e->cbs[dir].cb || e->waiter[dir])
            ev |= DIR_BIT(dir);
    return ev;
}

static int fd_update(weft__fd_t *e) {
    e->io.events = wanted_events(e);
    return weft__poll_update(&e->loop->poll, &e->io);
}

static void fd_unref(weft__fd_t *e) {
    if (--e->refs == 0) {
        weft__loop_unref(e->loop);
        free(e);
    }
}

static void cb_run(weft__work_t *w, int dir) {
    weft__fd_cb_t *c = weft__container_of(w, weft__fd_cb_t, work);
    weft__fd_t *e = dir == WEFT__RD ? weft__container_of(c, weft__fd_t, cbs[WEFT__RD])
                                    : weft__container_of(c, weft__fd_t, cbs[WEFT__WR]);
    c->queued = false;
    if (!e->dead && c->cb)
        c->cb(c->arg);
    fd_unref(e);
}
static void cb_run_rd(weft__work_t *w) { cb_run(w, WEFT__RD); }
static void cb_run_wr(weft__work_t *w) { cb_run(w, WEFT__WR); }

void *weft__net_work_fn(const weft__work_t *w) {
    if (w->run != cb_run_rd && w->run != cb_run_wr)
        return NULL;
    return (void *)(uintptr_t)weft__container_of(w, weft__fd_cb_t, work)->cb;
}

bool weft__net_drop_work(weft__work_t *w) {
    if (w->run == cb_run_rd || w->run == cb_run_wr) {
        weft__fd_cb_t *c = weft__container_of(w, weft__fd_cb_t, work);
        weft__fd_t *e = w->run == cb_run_rd ? weft__container_of(c, weft__fd_t, cbs[WEFT__RD])
                                             : weft__container_of(c, weft__fd_t, cbs[WEFT__WR]);
        c->queued = false;
        fd_unref(e);
        return true;
    }
    return weft__stream_drop_work(w);
}

static void fd_event(weft__io_t *io, unsigned events) {
    weft__fd_t *e = weft__container_of(io, weft__fd_t, io);
    /* A hang-up or error makes both directions "ready": the next operation reports it. */
    if (events & (WEFT__POLL_ERR | WEFT__POLL_HUP)) {
        events |= WEFT__POLL_IN | WEFT__POLL_OUT;
        e->hup = true;
    }
    e->ready |= events & (WEFT__POLL_IN | WEFT__POLL_OUT);
    for (int dir = 0; dir < 2; dir++) {
        if (!(events & DIR_BIT(dir)))
            continue;
        if (e->waiter[dir]) {
            weft__task_wake(e->waiter[dir], 0);
            e->waiter[dir] = NULL;
        }
        if (e->cbs[dir].cb && !e->cbs[dir].queued) {
            e->cbs[dir].queued = true;
            e->refs++;
            weft__schedule(e->loop, &e->cbs[dir].work);
        }
    }
    /* The waiters are gone: a level-triggered direction must stop reporting. */
    if (e->io.events != wanted_events(e))
        fd_update(e);
    if (e->on_event)
        e->on_event(e, events);
}

static int set_nonblock(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int weft__fd_recheck(weft__fd_t *e, bool rearm) {
    int rc;
    if (e->owner)
        return 0;
    if ((rc = set_nonblock(e->io.fd)) < 0)
        return rc;
    if (rearm && (e->io.events & WEFT__POLL_EDGE)) {
        e->ready = WEFT__POLL_IN | WEFT__POLL_OUT; /* as a new entry starts */
        return weft__poll_rearm(&e->loop->poll, &e->io);
    }
    return 0;
}

int weft__fd_get(weft_loop_t *loop, int fd, weft__fd_t **out) {
    return weft__fd_adopt(loop, fd, false, out);
}

int weft__fd_adopt(weft_loop_t *loop, int fd, bool nonblocking, weft__fd_t **out) {
    weft__fd_t *e;
    int rc;
    if (fd < 0)
        return WEFT_EBADF;
    if (fd < loop->nfds && (e = loop->fds[fd])) {
        *out = e;
        return 0;
    }
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if (!nonblocking && (rc = set_nonblock(fd)) < 0)
        return rc;
    if (fd >= loop->nfds) {
        int n = loop->nfds ? loop->nfds : 64;
        while (n <= fd)
            n *= 2;
        weft__fd_t **fds = realloc(loop->fds, (size_t)n * sizeof *fds);
        if (!fds)
            return WEFT_ENOMEM;
        memset(fds + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof *fds);
        loop->fds = fds;
        loop->nfds = n;
    }
    if (!(e = calloc(1, sizeof *e)))
        return WEFT_ENOMEM;
    e->loop = loop;
    e->io.fd = fd;
    e->io.cb = fd_event;
    e->cbs[WEFT__RD].work.run = cb_run_rd;
    e->cbs[WEFT__WR].work.run = cb_run_wr;
    e->refs = 1;
    /* Until the kernel says otherwise, try the operation first: it costs one EAGAIN at most. */
    e->ready = WEFT__POLL_IN | WEFT__POLL_OUT;
    if ((rc = fd_update(e)) < 0) {
        free(e);
        return rc == WEFT_EPERM ? WEFT_ENOTSUP : rc; /* a regular file: epoll refuses it */
    }
    loop->refs++;
    loop->fds[fd] = e;
    *out = e;
    return 0;
}

/* A wait in progress, on the waiting task's stack. `release` is the caller's clean-up for a
 * task abandoned while it waits (its loop closed): the task never returns to do it itself. */
typedef struct fd_waiting {
    weft__fd_t *e;
    void (*release)(void *arg);
    void *arg;
} fd_waiting_t;

static void wait_abort(weft__run_t *run, void *arg) {
    fd_waiting_t *w = arg;
    weft__fd_t *e = w->e;
    for (int dir = 0; dir < 2; dir++)
        if (e->waiter[dir] == run->task)
            e->waiter[dir] = NULL;
    if (!e->dead)
        fd_update(e);
    fd_unref(e);
    if (w->release)
        w->release(w->arg);
}

/* Waits for any direction in `dirs` (bits 1 << WEFT__RD, 1 << WEFT__WR). */
static int fd_wait_dirs(weft__fd_t *e, unsigned dirs, void (*release)(void *), void *arg) {
    weft_task_t *t = weft__current();
    fd_waiting_t w = {e, release, arg};
    int rc;
    for (int dir = 0; dir < 2; dir++)
        if ((dirs & (1u << dir)) && weft__fd_ready(e, dir))
            return 0;
    if (e->dead)
        return WEFT_EBADF;
    for (int dir = 0; dir < 2; dir++)
        if ((dirs & (1u << dir)) && e->waiter[dir])
            return WEFT_EBUSY;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    for (int dir = 0; dir < 2; dir++)
        if (dirs & (1u << dir))
            e->waiter[dir] = t;
    e->refs++;
    if (!(e->io.events & WEFT__POLL_EDGE) && (rc = fd_update(e)) < 0) {
        e->waiter[WEFT__RD] = e->waiter[WEFT__WR] = NULL;
        fd_unref(e);
        return rc;
    }
    t->run->abort_wait = wait_abort;
    t->run->abort_arg = &w;
    WEFT__WAITING(t, "fd", e);
    rc = weft__suspend(t);
    t->run->abort_wait = NULL;
    for (int dir = 0; dir < 2; dir++) /* cancelled, or woken for the other direction */
        if (e->waiter[dir] == t)
            e->waiter[dir] = NULL;
    if (!e->dead && !(e->io.events & WEFT__POLL_EDGE))
        fd_update(e);
    if (rc >= 0 && e->dead)
        rc = WEFT_EBADF;
    fd_unref(e);
    return rc < 0 ? rc : 0;
}

int weft__fd_wait(weft__fd_t *e, int dir) { return fd_wait_dirs(e, 1u << dir, NULL, NULL); }
int weft__fd_wait_release(weft__fd_t *e, int dir, void (*release)(void *), void *arg) {
    return fd_wait_dirs(e, 1u << dir, release, arg);
}

void weft__fd_wake(weft__fd_t *e, int dir) {
    if (e->waiter[dir]) {
        weft__task_wake(e->waiter[dir], 0);
        e->waiter[dir] = NULL;
    }
}

void weft__fd_forget(weft_loop_t *loop, int fd) {
    weft__fd_t *e;
    if (fd < 0 || fd >= loop->nfds || !(e = loop->fds[fd]))
        return;
    loop->fds[fd] = NULL;
    e->dead = true;
    e->cbs[WEFT__RD].cb = e->cbs[WEFT__WR].cb = NULL;
    e->io.events = 0;
    weft__poll_update(&loop->poll, &e->io);
    weft__fd_wake(e, WEFT__RD);
    weft__fd_wake(e, WEFT__WR);
    fd_unref(e);
}

/* ---- public: waits and callbacks ------------------------------------------------------- */

int weft_wait_fd(int fd, unsigned events) {
    weft_loop_t *loop;
    weft_task_t *t;
    weft__fd_t *e;
    int rc;
    unsigned bits, dirs;
    if ((rc = weft__net_task(&loop, &t)) < 0)
        return rc;
    events &= WEFT_READABLE | WEFT_WRITABLE;
    if (!events)
        return WEFT_EINVAL;
    bits = (events & WEFT_READABLE ? WEFT__POLL_IN : 0) |
           (events & WEFT_WRITABLE ? WEFT__POLL_OUT : 0);
    dirs = (events & WEFT_READABLE ? 1u << WEFT__RD : 0) |
           (events & WEFT_WRITABLE ? 1u << WEFT__WR : 0);
    if ((rc = weft__fd_get(loop, fd, &e)) < 0)
        return rc;
    for (;;) {
        /* `ready` may be stale: the caller's own reads and writes do not tell us of EAGAIN.
         * Ask the kernel, then wait for its next edge. */
        struct pollfd p = {fd, (short)((events & WEFT_READABLE ? POLLIN : 0) |
                                       (events & WEFT_WRITABLE ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 0) > 0) {
            int got = 0;
            if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
                return (int)events;
            if (p.revents & POLLIN)
                got |= WEFT_READABLE;
            if (p.revents & POLLOUT)
                got |= WEFT_WRITABLE;
            if (got)
                return got;
        }
        e->ready &= ~bits;
        /* Re-arming also re-adds an fd closed and reused behind the loop's back. */
        if ((e->io.events & WEFT__POLL_EDGE) && (rc = weft__poll_rearm(&loop->poll, &e->io)) < 0)
            return rc;
        if ((rc = fd_wait_dirs(e, dirs, NULL, NULL)) < 0)
            return rc;
    }
}

static int set_cb(weft_loop_t *loop, int fd, int dir, weft_callback_fn cb, void *arg) {
    weft__fd_t *e;
    int rc;
    if (!loop || !cb)
        return WEFT_EINVAL;
    if ((rc = weft__fd_get(loop, fd, &e)) < 0)
        return rc;
    e->cbs[dir].cb = cb;
    e->cbs[dir].arg = arg;
    if ((rc = fd_update(e)) < 0) {
        e->cbs[dir].cb = NULL;
        return rc;
    }
    return 0;
}

static int clear_cb(weft_loop_t *loop, int fd, int dir) {
    weft__fd_t *e;
    if (!loop || fd < 0 || fd >= loop->nfds || !(e = loop->fds[fd]) || !e->cbs[dir].cb)
        return 0;
    e->cbs[dir].cb = NULL;
    if (e->io.events != wanted_events(e)) {
        /* Back to edge-triggered: we missed the edges meanwhile, so assume ready. */
        if (wanted_events(e) & WEFT__POLL_EDGE)
            e->ready = WEFT__POLL_IN | WEFT__POLL_OUT;
        fd_update(e);
    }
    return 1;
}

int weft_add_reader(weft_loop_t *loop, int fd, weft_callback_fn cb, void *arg) {
    return set_cb(loop, fd, WEFT__RD, cb, arg);
}
int weft_add_writer(weft_loop_t *loop, int fd, weft_callback_fn cb, void *arg) {
    return set_cb(loop, fd, WEFT__WR, cb, arg);
}
int weft_remove_reader(weft_loop_t *loop, int fd) { return clear_cb(loop, fd, WEFT__RD); }
int weft_remove_writer(weft_loop_t *loop, int fd) { return clear_cb(loop, fd, WEFT__WR); }

void weft_fd_forget(weft_loop_t *loop, int fd) {
    if (loop)
        weft__fd_forget(loop, fd);
}

int weft_close(int fd) {
    weft_loop_t *loop = weft__tls_loop;
    if (loop)
        weft__fd_forget(loop, fd);
    return close(fd) < 0 ? -errno : 0;
}

/* ---- closing with the loop --------------------------------------------------------------- */

void weft__closer_add(weft_loop_t *loop, weft__closer_t *c, void (*close_fn)(weft__closer_t *c)) {
    c->close = close_fn;
    c->prev = NULL;
    c->next = loop->closers;
    if (c->next)
        c->next->prev = c;
    loop->closers = c;
}

void weft__closer_remove(weft_loop_t *loop, weft__closer_t *c) {
    if (c->prev)
        c->prev->next = c->next;
    else if (loop->closers == c)
        loop->closers = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void weft__net_loop_close(weft_loop_t *loop) {
    /* Each close removes its own entry (and may remove others it owns). */
    while (loop->closers) {
        weft__closer_t *c = loop->closers;
        weft__closer_remove(loop, c);
        c->close(c);
    }
    weft__dns_loop_close(loop);
    for (int fd = 0; fd < loop->nfds; fd++)
        weft__fd_forget(loop, fd);
    free(loop->fds);
    loop->fds = NULL;
    loop->nfds = 0;
}
