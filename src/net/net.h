/* Private to src/net: the loop's table of watched file descriptors, and what streams, servers,
 * TLS and the resolver share. */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <netdb.h>

#include "../core/internal.h"

/* Directions, as indexes. */
enum { WEFT__RD = 0, WEFT__WR = 1 };

/* A watched file descriptor: one per fd per loop, in loop->fds[fd].
 *
 * Readiness is edge-triggered: the fd is registered once, for both directions, and `ready`
 * remembers what the kernel reported until an operation hits EAGAIN (weft__fd_clear). Waiting
 * then costs no system call beyond the operation itself. Level-triggered callbacks
 * (add_reader / add_writer, the hook libcurl, libpq and c-ares expect) switch the fd to
 * level-triggered registration while they are installed. */
typedef struct weft__fd weft__fd_t;

typedef struct weft__fd_cb {
    weft_callback_fn cb;
    void *arg;
    weft__work_t work;        /* the scheduled call */
    bool queued;
} weft__fd_cb_t;

struct weft__fd {
    weft__io_t io;
    weft_loop_t *loop;
    unsigned ready;           /* WEFT__POLL_IN / OUT seen and not yet used up */
    weft_task_t *waiter[2];   /* the task waiting to read / to write */
    weft__fd_cb_t cbs[2];     /* add_reader / add_writer */
    /* The owner's hook (a stream flushing its buffer, a server accepting), called from the
     * poller after the waiters are woken. */
    void (*on_event)(weft__fd_t *e, unsigned events);
    void *owner;
    int refs;                 /* the table's + one per queued callback */
    bool dead;                /* forgotten: freed when the last reference goes */
    /* A hang-up or error was reported: reads never block again (they return the rest, then 0
     * or the error), and no new edge will say so. */
    bool hup;
};

/* The fd's entry, created (non-blocking, registered) on first use. */
int weft__fd_get(weft_loop_t *loop, int fd, weft__fd_t **e);
/* The same for an fd known to be non-blocking already (accept4 / socket with SOCK_NONBLOCK). */
int weft__fd_adopt(weft_loop_t *loop, int fd, bool nonblocking, weft__fd_t **e);
/* [suspends] until `dir` is ready (or a hang-up / error). 0, -ECANCELED, or -EBADF if the fd
 * was forgotten meanwhile. One task per direction: another gets -EBUSY. */
int weft__fd_wait(weft__fd_t *e, int dir);
/* The same, and if the task is abandoned while it waits (its loop closes), release(arg) is
 * called: the clean-up the task will never do itself (a reference it holds). */
int weft__fd_wait_release(weft__fd_t *e, int dir, void (*release)(void *), void *arg);
static inline void weft__fd_clear(weft__fd_t *e, int dir) {
    e->ready &= ~(unsigned)(dir == WEFT__RD ? WEFT__POLL_IN : WEFT__POLL_OUT);
}
static inline bool weft__fd_ready(const weft__fd_t *e, int dir) {
    return e->ready & (dir == WEFT__RD ? WEFT__POLL_IN : WEFT__POLL_OUT);
}
/* An entry the loop already had, nobody owns, for a descriptor handed in again: it may belong
 * to a file closed behind the loop's back whose number came back for a new, blocking socket.
 * Makes the fd non-blocking again and, with `rearm`, registers it anew from "ready" (the
 * kernel dropped the old registration). Does nothing for an owned entry. */
int weft__fd_recheck(weft__fd_t *e, bool rearm);
/* Drops fd's entry: waiters return -EBADF, callbacks are removed, the kernel forgets it. */
void weft__fd_forget(weft_loop_t *loop, int fd);
/* fd was just created (socket, accept4): an entry the loop still has under that number is
 * stale, left by a descriptor closed without weft_fd_forget() (the kernel dropped its
 * registration, and the entry's state is the old file's). Drops it, so that the new socket
 * gets an entry of its own. Costs nothing in the usual case. */
static inline void weft__fd_fresh(weft_loop_t *loop, int fd) {
    if (fd >= 0 && fd < loop->nfds && loop->fds[fd] && !loop->fds[fd]->owner)
        weft__fd_forget(loop, fd);
}
/* Wakes the task waiting on `dir`, if any, as if the fd were ready (a closing stream). */
void weft__fd_wake(weft__fd_t *e, int dir);

/* [suspends] One receive / one datagram sent on a watched socket (sock.c): the sock_* calls and
 * UDP endpoints share them. With MSG_TRUNC in flags (datagrams), one longer than n is reported
 * as -EMSGSIZE, never cut silently. */
ssize_t weft__sock_recvfrom(weft__fd_t *e, void *buf, size_t n, int flags, struct sockaddr *addr,
                            socklen_t *len);
ssize_t weft__dgram_send(weft__fd_t *e, const void *buf, size_t n, const struct sockaddr *addr,
                         socklen_t len);

/* Objects that must be closed when their loop closes (streams, servers, UDP endpoints, the
 * resolver): a list per loop, walked by weft__net_loop_close(). */
typedef struct weft__closer weft__closer_t;
struct weft__closer {
    weft__closer_t *prev, *next;
    void (*close)(weft__closer_t *c);
};
void weft__closer_add(weft_loop_t *loop, weft__closer_t *c, void (*close)(weft__closer_t *c));
void weft__closer_remove(weft_loop_t *loop, weft__closer_t *c);

/* Streams' own queued work (stream.c), for weft__net_drop_work. */
bool weft__stream_drop_work(weft__work_t *w);

/* Resolver: frees the loop's c-ares channel (dns.c). */
void weft__dns_loop_close(weft_loop_t *loop);
/* weft_getaddrinfo's argument checks (-EPERM outside a task) and its hints as it applies them
 * (*h); *res set to NULL. */
int weft__addrinfo_hints(const char *host, const char *port, const struct addrinfo *hints,
                         struct addrinfo **res, struct addrinfo *h);
/* A copy of libc's list that weft_freeaddrinfo() frees. */
int weft__addrinfo_copy(const struct addrinfo *src, struct addrinfo **res);
/* getaddrinfo(3)'s EAI_* code (and errno for EAI_SYSTEM) as a WEFT_E* code, message set. */
int weft__gai_fail(int eai, int err, const char *host, const char *port);
/* nsswitch.conf's "hosts:" names a source other than files and dns (src/thread/files.c). */
bool weft__nss_hosts_beyond_dns(void);

/* Called by weft_loop_close(): closes what is left and frees the fd table. */
void weft__net_loop_close(weft_loop_t *loop);

/* The running loop and task, for [suspends] calls: -EPERM outside a task. */
int weft__net_task(weft_loop_t **loop, weft_task_t **task);

#endif
