/* The poller contract: the one place the loop meets the kernel's readiness API. Backends
 * (epoll.c now, io_uring later) implement it; the loop never knows which one runs. */
#ifndef WEFT_POLL_H
#define WEFT_POLL_H

#include <stdbool.h>
#include <stdint.h>

struct epoll_event;

enum {
    WEFT__POLL_IN = 1,
    WEFT__POLL_OUT = 2,
    WEFT__POLL_ERR = 4,
    WEFT__POLL_HUP = 8,
    /* Edge-triggered: `cb` hears of each change once, and the owner tracks readiness itself
     * until an operation reports EAGAIN. Without it, level-triggered. */
    WEFT__POLL_EDGE = 16,
    /* Not counted in nwatched: the loop's own wake-up fd, which must not make a busy loop poll
     * nor a loop with nothing else to wait for look alive. */
    WEFT__POLL_UNCOUNTED = 32,
};

/* A watched file descriptor. The owner embeds it and gets `cb` with the ready events. `cb`
 * runs while the poller dispatches: it may wake tasks, schedule work and do non-blocking I/O,
 * never run user code. An io may be unregistered (and freed) from any cb, even one dispatched in
 * the same batch: its pending events are dropped. */
typedef struct weft__io weft__io_t;
struct weft__io {
    int fd;
    unsigned events;       /* wanted: WEFT__POLL_IN | WEFT__POLL_OUT (| WEFT__POLL_EDGE) */
    unsigned registered;   /* what the kernel currently has */
    void (*cb)(weft__io_t *io, unsigned events);
};

typedef struct weft__poll {
    int fd;
    unsigned nwatched;     /* fds registered: with none, a loop with ready work never polls */
    struct epoll_event *batch;   /* the events being dispatched, and how many */
    int nbatch;
} weft__poll_t;

int weft__poll_init(weft__poll_t *p);
void weft__poll_close(weft__poll_t *p);
/* Registers, changes or (events == 0) removes io's interest. */
int weft__poll_update(weft__poll_t *p, weft__io_t *io);
/* Tells the kernel again even if nothing changed: re-arms an edge-triggered io (the kernel
 * reports its current state once more), and re-adds an fd closed and reused behind our back. */
int weft__poll_rearm(weft__poll_t *p, weft__io_t *io);
/* Waits up to timeout_ns (-1: forever, 0: just look) and calls each ready io's cb.
 * Returns the number of events or a negative code (never -EINTR: that is 0 events). */
int weft__poll_wait(weft__poll_t *p, int64_t timeout_ns);

#endif
