/* epoll backend of the poller contract (poll.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "poll.h"

int weft__poll_init(weft__poll_t *p) {
    p->nwatched = 0;
    p->batch = NULL;
    p->nbatch = 0;
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    return p->fd < 0 ? -errno : 0;
}

void weft__poll_close(weft__poll_t *p) {
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static uint32_t to_epoll(unsigned ev) {
    uint32_t e = (ev & WEFT__POLL_IN ? EPOLLIN | EPOLLRDHUP : 0) |
                 (ev & WEFT__POLL_OUT ? EPOLLOUT : 0);
    return ev & WEFT__POLL_EDGE ? e | EPOLLET : e;
}

/* An io removed while its batch is dispatched must not get the events still queued for it. */
static void drop_from_batch(weft__poll_t *p, weft__io_t *io) {
    for (int i = 0; i < p->nbatch; i++)
        if (p->batch[i].data.ptr == io)
            p->batch[i].data.ptr = NULL;
}

static int ctl(weft__poll_t *p, weft__io_t *io, bool force) {
    struct epoll_event ev = {.events = to_epoll(io->events), .data.ptr = io};
    unsigned counted = !((io->events | io->registered) & WEFT__POLL_UNCOUNTED);
    int op;
    if (io->events == io->registered && !force)
        return 0;
    if (io->events == 0) {
        if (!io->registered)
            return 0;
        op = EPOLL_CTL_DEL;
    } else {
        op = io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    }
    if (epoll_ctl(p->fd, op, io->fd, &ev) < 0) {
        /* The fd was closed and its number reused without us being told: the kernel forgot
         * the old registration (ENOENT), or has one we did not know of (EEXIST). */
        if (op == EPOLL_CTL_MOD && errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
            goto removed;
        else
            return -errno;
        if (epoll_ctl(p->fd, op, io->fd, &ev) < 0)
            return -errno;
        /* Counted as watched already if we thought it registered (a MOD turned ADD); an ADD
         * turned MOD was not counted yet. */
        if (op == EPOLL_CTL_MOD)
            p->nwatched += counted;
        goto done;
    }
    if (op == EPOLL_CTL_ADD) {
        p->nwatched += counted;
    } else if (op == EPOLL_CTL_DEL) {
    removed:
        p->nwatched -= counted;
        drop_from_batch(p, io);
    }
done:
    io->registered = io->events;
    return 0;
}

int weft__poll_update(weft__poll_t *p, weft__io_t *io) { return ctl(p, io, false); }
int weft__poll_rearm(weft__poll_t *p, weft__io_t *io) { return ctl(p, io, true); }

int weft__poll_wait(weft__poll_t *p, int64_t timeout_ns) {
    struct epoll_event evs[256];
    int n;
    if (timeout_ns < 0) {
        n = epoll_wait(p->fd, evs, 256, -1);
    } else {
        /* epoll_pwait2 takes nanoseconds: a timer is never missed by rounding to ms. */
        struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
        n = epoll_pwait2(p->fd, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS) /* kernels before 5.11: round up, never wake early */
            n = epoll_wait(p->fd, evs, 256, (int)((timeout_ns + 999999) / 1000000));
    }
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    p->batch = evs;
    p->nbatch = n;
    for (int i = 0; i < n; i++) {
        weft__io_t *io = evs[i].data.ptr;
        unsigned e = 0;
        if (!io)
            continue;
        if (evs[i].events & (EPOLLIN | EPOLLPRI)) e |= WEFT__POLL_IN;
        if (evs[i].events & EPOLLOUT) e |= WEFT__POLL_OUT;
        if (evs[i].events & EPOLLERR) e |= WEFT__POLL_ERR;
        if (evs[i].events & (EPOLLHUP | EPOLLRDHUP)) e |= WEFT__POLL_HUP;
        io->cb(io, e);
    }
    p->batch = NULL;
    p->nbatch = 0;
    return n;
}
