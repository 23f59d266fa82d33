/* Private to src/net: the stream object, and the transport interface TLS plugs into. */
#ifndef WEFT_NET_STREAM_H
#define WEFT_NET_STREAM_H

#include "net.h"
#include "../sync/wait.h"

/* Transport results besides byte counts and error codes: wait for this direction, then call
 * again (TLS may need to write in order to read, and the reverse). Positive, so they never
 * collide with a -errno. */
#define WEFT__WANT_READ (-1000001)
#define WEFT__WANT_WRITE (-1000002)
static inline bool weft__want(ssize_t r) { return r == WEFT__WANT_READ || r == WEFT__WANT_WRITE; }

/* How bytes cross the socket: plain (stream.c) or TLS (tls.c). recv returns > 0 bytes, 0 at
 * the end of the stream, WEFT__WANT_*, or a negative code (the message, if any, set with
 * weft__set_errmsg). send returns > 0 bytes taken, WEFT__WANT_*, or a negative code; it may
 * run from the poller (a background flush), so it never suspends. A transport that hits EAGAIN
 * clears the fd's readiness for that direction (weft__fd_clear) before returning WANT. */
typedef struct weft__transport {
    ssize_t (*recv)(weft_stream_t *s, void *buf, size_t n);
    ssize_t (*send)(weft_stream_t *s, const void *buf, size_t n);
    /* Ends the write side once everything is sent: shutdown(SHUT_WR), or TLS close_notify.
     * Never suspends; best effort. */
    void (*shutdown)(weft_stream_t *s);
    /* Releases the transport's state (the socket is closed by the stream). */
    void (*free)(weft_stream_t *s);
} weft__transport_t;

extern const weft__transport_t weft__plain_transport;

struct weft_stream {
    weft__closer_t closer;       /* closed with the loop */
    weft_loop_t *loop;
    weft__fd_t *fde;             /* NULL once the socket is closed */
    int fd;
    const weft__transport_t *tp;
    void *tls;                   /* the transport's state: an SSL * */
    char *alpn;                  /* agreed ALPN protocol, or NULL */
    /* A handshake in progress (its SSL *, its context): freed with the stream if the task
     * doing it is abandoned (its loop closed). */
    void *hs_ssl;
    weft_tls_t *hs_tls;
    int refs;                    /* the handle, the open socket, each task inside a call */

    /* Reading: buffered bytes are rbuf[rpos, rpos + rlen). */
    char *rbuf;
    size_t rpos, rlen, rcap;
    size_t limit;
    int rerr;                    /* sticky read error */
    bool eof;                    /* the peer's end of stream was seen */
    bool reading;                /* a task is inside a read call */

    /* Writing: unsent bytes are wbuf[wpos, wpos + wlen). */
    char *wbuf;
    size_t wpos, wlen, wcap;
    size_t high, low;
    int werr;                    /* sticky write error: every later write and drain returns it */
    bool paused;                 /* above the high-water mark: drain waits */
    bool eof_pending, eof_sent;  /* write_eof asked / done */
    bool closing, closed;
    weft__wlist_t drainers;
    weft__wlist_t close_waiters;

    /* A server's connection: its server and siblings. */
    struct weft_server *server;
    weft__list_t srv_link;   /* in its server's conns */
};

/* A stream over connected socket fd, plain transport. nonblocking: fd is known to be. */
int weft__stream_new(weft_loop_t *loop, int fd, bool nonblocking, size_t limit,
                     weft_stream_t **out);
/* [suspends] Waits for the direction a transport asked for (WEFT__WANT_*). 0, or the error that
 * ended the wait (-ECANCELED, -EBADF once the stream is closed). The caller holds a reference on
 * s for its call (every caller does: the stream calls' enter(), the TLS handshake); if the task
 * is abandoned while it waits (its loop closes), that reference is released for it. */
int weft__stream_wait(weft_stream_t *s, ssize_t want);
/* The socket is gone: closes it now, wakes everyone waiting. */
void weft__stream_finish_close(weft_stream_t *s);
void weft__stream_unref(weft_stream_t *s);

/* TLS (tls.c): the handshake on an open stream, as client (server_hostname for SNI and
 * verification) or server, with a timeout in seconds. Installs the TLS transport. */
int weft__tls_handshake(weft_stream_t *s, weft_tls_t *tls, const char *server_hostname,
                        double timeout);
weft_tls_t *weft__tls_ref(weft_tls_t *tls);
/* Frees s->hs_ssl and releases s->hs_tls. */
void weft__tls_drop_handshake(weft_stream_t *s);

#endif
