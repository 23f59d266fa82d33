/* Streams: asyncio's StreamReader and StreamWriter over one connected socket.
 *
 * Reading fills a buffer only when a call needs more than is buffered (read(n) on an empty
 * buffer receives straight into the caller's memory). Writing sends at once while the socket
 * takes it and buffers the rest; the poller sends the buffer in the background as the socket
 * drains (no task involved), and wakes drain() at the low-water mark. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"

/* ---- the plain transport ----------------------------------------------------------------- */

static ssize_t plain_recv(weft_stream_t *s, void *buf, size_t n) {
    ssize_t r;
    if (!weft__fd_ready(s->fde, WEFT__RD))
        return WEFT__WANT_READ;
    do
        r = recv(s->fd, buf, n, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno != EAGAIN)
            return -errno;
        weft__fd_clear(s->fde, WEFT__RD);
        return WEFT__WANT_READ;
    }
    /* A short read emptied the socket: the next bytes will come with a new edge, so skip the
     * recv that would only say EAGAIN. Not after a hang-up or error: the FIN or RST often
     * comes in the same edge as the last bytes, and nothing would ever wake the reader for
     * the end of the stream. */
    if ((size_t)r < n && r > 0 && !s->fde->hup)
        weft__fd_clear(s->fde, WEFT__RD);
    return r;
}

static ssize_t plain_send(weft_stream_t *s, const void *buf, size_t n) {
    ssize_t w;
    if (!weft__fd_ready(s->fde, WEFT__WR))
        return WEFT__WANT_WRITE;
    do
        w = send(s->fd, buf, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno != EAGAIN)
            return -errno;
        weft__fd_clear(s->fde, WEFT__WR);
        return WEFT__WANT_WRITE;
    }
    if ((size_t)w < n)
        weft__fd_clear(s->fde, WEFT__WR);
    return w;
}

static void plain_shutdown(weft_stream_t *s) { shutdown(s->fd, SHUT_WR); }
static void plain_free(weft_stream_t *s) {}

const weft__transport_t weft__plain_transport = {plain_recv, plain_send, plain_shutdown,
                                                  plain_free};

/* ---- life cycle --------------------------------------------------------------------------- */

static void stream_free(weft_stream_t *s) {
    if (s->hs_ssl)
        weft__tls_drop_handshake(s);
    free(s->rbuf);
    free(s->wbuf);
    weft__loop_unref(s->loop);
    free(s);
}

void weft__stream_unref(weft_stream_t *s) {
    if (--s->refs == 0)
        stream_free(s);
}

static void wake_drainers(weft_stream_t *s) {
    s->paused = false;
    weft__wlist_grant_all(&s->drainers);
}

void weft__stream_finish_close(weft_stream_t *s) {
    if (s->closed)
        return;
    s->closing = s->closed = true;
    s->wlen = s->wpos = 0;
    weft__closer_remove(s->loop, &s->closer);
    s->tp->free(s);
    s->tp = &weft__plain_transport;
    weft__fd_forget(s->loop, s->fd); /* wakes a waiting reader or writer with -EBADF */
    close(s->fd);
    s->fde = NULL;
    wake_drainers(s);
    weft__wlist_grant_all(&s->close_waiters);
    weft__stream_unref(s); /* the open socket's reference */
}

static void set_werr(weft_stream_t *s, int err) {
    if (!s->werr)
        s->werr = err;
    s->wlen = s->wpos = 0;
    wake_drainers(s);
    if (s->closing)
        weft__stream_finish_close(s);
}

/* Sends what the socket takes; never suspends (runs from the poller too). */
static void flush(weft_stream_t *s) {
    while (s->wlen) {
        ssize_t w = s->tp->send(s, s->wbuf + s->wpos, s->wlen);
        if (weft__want(w))
            break;
        if (w < 0) {
            set_werr(s, (int)w);
            return;
        }
        s->wpos += (size_t)w;
        s->wlen -= (size_t)w;
    }
    if (s->paused && s->wlen <= s->low)
        wake_drainers(s);
    if (s->wlen)
        return;
    s->wpos = 0;
    if (s->eof_pending && !s->eof_sent) {
        s->eof_sent = true;
        s->tp->shutdown(s);
    }
    if (s->closing) {
        if (!s->eof_sent && !s->werr) { /* FIN / close_notify: the peer sees a clean end */
            s->eof_sent = true;
            s->tp->shutdown(s);
        }
        weft__stream_finish_close(s);
    }
}

static void stream_event(weft__fd_t *e, unsigned events) {
    weft_stream_t *s = e->owner;
    /* TLS may need to read before it can write: any event may unblock the buffer. */
    if (s->wlen && !s->closed)
        flush(s);
}

static void stream_loop_close(weft__closer_t *c) {
    weft_stream_t *s = weft__container_of(c, weft_stream_t, closer);
    if (weft__unlikely(s->loop->debug) && !s->closing) /* asyncio's "unclosed transport" */
        weft__log_unclosed_socket("stream", s->fd, true);
    weft__stream_finish_close(s);
}

bool weft__stream_drop_work(weft__work_t *w) { return false; }

int weft__stream_new(weft_loop_t *loop, int fd, bool nonblocking, size_t limit,
                     weft_stream_t **out) {
    weft_stream_t *s = calloc(1, sizeof *s);
    /* A caller's descriptor (not one weft just made, `nonblocking`: a stale entry was dropped
     * at creation, see weft__fd_fresh) may come with a stale entry: see weft__fd_recheck. */
    bool known = !nonblocking && fd >= 0 && fd < loop->nfds && loop->fds[fd];
    int rc;
    if (!s)
        return WEFT_ENOMEM;
    if ((rc = weft__fd_adopt(loop, fd, nonblocking, &s->fde)) < 0 ||
        (known && (rc = weft__fd_recheck(s->fde, true)) < 0)) {
        free(s);
        return rc;
    }
    s->fde->owner = s;
    s->fde->on_event = stream_event;
    s->loop = loop;
    loop->refs++;
    s->fd = fd;
    s->tp = &weft__plain_transport;
    s->refs = 2; /* the handle and the open socket */
    s->limit = limit ? limit : WEFT_STREAM_LIMIT;
    s->high = WEFT_WRITE_HIGH_WATER;
    s->low = WEFT_WRITE_LOW_WATER;
    weft__wlist_init(&s->drainers);
    weft__wlist_init(&s->close_waiters);
    weft__closer_add(loop, &s->closer, stream_loop_close);
    *out = s;
    return 0;
}

int weft_stream_from_fd(weft_stream_t **stream, int fd, size_t limit) {
    weft_loop_t *loop = weft__tls_loop;
    if (!stream)
        return WEFT_EINVAL;
    if (!loop)
        return WEFT_EPERM;
    return weft__stream_new(loop, fd, false, limit, stream);
}

void weft_stream_close(weft_stream_t *s) {
    if (!s || s->closing)
        return;
    s->closing = true;
    /* Reading stops: a waiting reader sees the end of the stream. */
    if (s->fde)
        weft__fd_wake(s->fde, WEFT__RD);
    if (!s->wlen) {
        if (!s->werr)
            s->tp->shutdown(s);
        weft__stream_finish_close(s);
    }
}

void weft_stream_abort(weft_stream_t *s) {
    if (!s)
        return;
    s->closing = true;
    weft__stream_finish_close(s);
}

void weft_stream_free(weft_stream_t *s) {
    if (!s)
        return;
    weft_stream_close(s);
    weft__stream_unref(s);
}

int weft_stream_is_closing(const weft_stream_t *s) { return s->closing; }
int weft_stream_fd(const weft_stream_t *s) { return s->closed ? -1 : s->fd; }

/* A task inside a call holds a reference: the stream outlives a free() made meanwhile. */
static int enter(weft_stream_t *s, weft_task_t **t) {
    if (!s)
        return WEFT_EINVAL;
    if (!(*t = weft__current()))
        return WEFT_EPERM;
    if ((*t)->loop != s->loop)
        return WEFT_EINVAL;
    s->refs++;
    return 0;
}

/* A task abandoned inside a stream call (its loop closed) never returns to drop the reference
 * its call took: these drop it for it, or the stream (and the loop) would never be freed. */
static void stream_release(void *s) { weft__stream_unref(s); }
static void stream_wnode_abort(weft__run_t *run, void *arg) {
    weft__wnode_t *n = arg;
    weft__wnode_abort_unlink(run, n);
    weft__stream_unref(n->obj);
}

int weft_stream_wait_closed(weft_stream_t *s) {
    weft_task_t *t;
    weft__wnode_t n;
    int rc = enter(s, &t);
    if (rc < 0)
        return rc;
    while (!s->closed && rc == 0) {
        WEFT__WAITING(t, "stream wait_closed", s);
        if (weft__cancel_visible(t))
            rc = WEFT_ECANCELED;
        else
            rc = weft__wlist_wait(&s->close_waiters, &n, t, s, false, stream_wnode_abort, NULL);
    }
    weft__stream_unref(s);
    return rc < 0 ? rc : 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

int weft__stream_wait(weft_stream_t *s, ssize_t want) {
    int rc;
    if (!s->fde)
        return WEFT_EBADF;
    rc = weft__fd_wait_release(s->fde, want == WEFT__WANT_READ ? WEFT__RD : WEFT__WR,
                               stream_release, s);
    /* The socket went while we waited: for a reader that is the end of the stream. */
    return rc == WEFT_EBADF || s->closed ? WEFT_EBADF : rc;
}

/* [suspends] One receive of up to n bytes into buf: > 0, 0 at the end of the stream (or once
 * closing), or an error. */
static ssize_t recv_some(weft_stream_t *s, void *buf, size_t n) {
    for (;;) {
        ssize_t r;
        int rc;
        if (s->rerr)
            return s->rerr;
        if (s->eof || s->closing)
            return 0;
        r = s->tp->recv(s, buf, n);
        if (r > 0)
            return r;
        if (r == 0) {
            s->eof = true;
            return 0;
        }
        if (!weft__want(r)) {
            s->rerr = (int)r;
            return r;
        }
        if ((rc = weft__stream_wait(s, r)) < 0)
            return rc == WEFT_EBADF ? 0 : rc;
    }
}

/* [suspends] Receives more into the buffer, keeping at least `room` bytes free. > 0, 0 at end
 * of stream, or an error. */
static ssize_t fill(weft_stream_t *s, size_t room) {
    ssize_t r;
    if (s->rpos && s->rpos + s->rlen + room > s->rcap) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
    }
    if (s->rlen + room > s->rcap) {
        size_t cap = s->rcap ? s->rcap : 16384;
        char *b;
        while (cap < s->rlen + room)
            cap *= 2;
        if (!(b = realloc(s->rbuf, cap)))
            return WEFT_ENOMEM;
        s->rbuf = b;
        s->rcap = cap;
    }
    r = recv_some(s, s->rbuf + s->rpos + s->rlen, s->rcap - s->rpos - s->rlen);
    if (r > 0)
        s->rlen += (size_t)r;
    return r;
}

static int begin_read(weft_stream_t *s, weft_task_t **t) {
    int rc = enter(s, t);
    if (rc < 0)
        return rc;
    if (s->reading) {
        weft__stream_unref(s);
        return WEFT_EBUSY; /* asyncio: "read() called while another coroutine is waiting" */
    }
    s->reading = true;
    return 0;
}

static void end_read(weft_stream_t *s) {
    s->reading = false;
    weft__stream_unref(s);
}

static void consume(weft_stream_t *s, size_t n) {
    s->rpos += n;
    s->rlen -= n;
    if (!s->rlen)
        s->rpos = 0;
}

ssize_t weft_stream_read(weft_stream_t *s, void *buf, size_t n) {
    weft_task_t *t;
    ssize_t r;
    int rc;
    if (n == 0)
        return 0;
    if ((rc = begin_read(s, &t)) < 0)
        return rc;
    if (s->rlen) {
        r = (ssize_t)(n < s->rlen ? n : s->rlen);
        memcpy(buf, s->rbuf + s->rpos, (size_t)r);
        consume(s, (size_t)r);
    } else {
        r = recv_some(s, buf, n);
    }
    end_read(s);
    return r;
}

int weft_stream_read_all(weft_stream_t *s, char **data, size_t *len) {
    weft_task_t *t;
    ssize_t r;
    int rc;
    if (!data || !len)
        return WEFT_EINVAL;
    if ((rc = begin_read(s, &t)) < 0)
        return rc;
    /* Everything stays in the buffer until the end: a cancelled call loses nothing. */
    while ((r = fill(s, 65536)) > 0)
        ;
    if (r == 0) {
        char *out = malloc(s->rlen + 1);
        if (!out) {
            r = WEFT_ENOMEM;
        } else {
            memcpy(out, s->rbuf + s->rpos, s->rlen);
            out[s->rlen] = 0;
            *data = out;
            *len = s->rlen;
            consume(s, s->rlen);
        }
    }
    end_read(s);
    return r < 0 ? (int)r : 0;
}

int weft_stream_readexactly(weft_stream_t *s, void *buf, size_t n, size_t *got) {
    weft_task_t *t;
    ssize_t r = 1;
    int rc;
    if (got)
        *got = 0;
    if ((rc = begin_read(s, &t)) < 0)
        return rc;
    while (s->rlen < n && (r = fill(s, n - s->rlen)) > 0)
        ;
    if (r >= 0) {
        size_t k = s->rlen < n ? s->rlen : n;
        if (k) /* n == 0 before anything was buffered: rbuf is still NULL (memcpy's UB) */
            memcpy(buf, s->rbuf + s->rpos, k);
        consume(s, k);
        if (got)
            *got = k;
        r = k < n ? WEFT_EINCOMPLETE : 0;
    }
    end_read(s);
    return (int)r;
}

/* Finds sep in the buffer from `from`; returns the end of the match (offset past sep) or 0. */
static size_t find_sep(const weft_stream_t *s, const void *sep, size_t seplen, size_t from) {
    const char *base = s->rbuf + s->rpos;
    const char *hit;
    if (s->rlen < seplen || from > s->rlen - seplen)
        return 0;
    hit = memmem(base + from, s->rlen - from, sep, seplen);
    return hit ? (size_t)(hit - base) + seplen : 0;
}

/* readuntil / readline. discard_on_limit: readline's handling of an over-long line. */
static int read_until(weft_stream_t *s, const void *sep, size_t seplen, const char **data,
                      size_t *len, bool is_readline) {
    weft_task_t *t;
    size_t scanned = 0, end;
    ssize_t r = 1;
    int rc;
    if (!sep || !seplen || !data || !len)
        return WEFT_EINVAL;
    if ((rc = begin_read(s, &t)) < 0)
        return rc;
    for (;;) {
        if ((end = find_sep(s, sep, seplen, scanned))) {
            /* asyncio compares where the separator starts with the limit: "Separator is found,
             * but chunk is longer than limit". */
            if (end - seplen > s->limit) {
                rc = WEFT_ELIMIT;
                if (is_readline)
                    consume(s, end);
            } else {
                *data = s->rbuf + s->rpos;
                *len = end;
                consume(s, end);
                rc = 0;
            }
            break;
        }
        /* "Separator is not found, and chunk exceed the limit": no separator can start at or
         * before the limit any more. */
        if (s->rlen + 1 > s->limit + seplen) {
            rc = WEFT_ELIMIT;
            if (is_readline)
                consume(s, s->rlen);
            break;
        }
        /* Resume the search where a separator could still start. */
        scanned = s->rlen >= seplen ? s->rlen - seplen + 1 : 0;
        if ((r = fill(s, 4096)) <= 0) {
            rc = (int)r;
            if (r == 0) { /* end of stream: what is left is the partial chunk */
                *data = s->rbuf + s->rpos;
                *len = s->rlen;
                consume(s, s->rlen);
                rc = is_readline ? 0 : WEFT_EINCOMPLETE;
            }
            break;
        }
    }
    if (rc == WEFT_ELIMIT)
        *len = s->rlen;
    end_read(s);
    return rc;
}

int weft_stream_readuntil(weft_stream_t *s, const void *sep, size_t seplen, const char **data,
                          size_t *len) {
    return read_until(s, sep, seplen, data, len, false);
}

int weft_stream_readline(weft_stream_t *s, const char **data, size_t *len) {
    return read_until(s, "\n", 1, data, len, true);
}

int weft_stream_at_eof(const weft_stream_t *s) { return (s->eof || s->closed) && !s->rlen; }
size_t weft_stream_buffered(const weft_stream_t *s) { return s->rlen; }

/* ---- writing ------------------------------------------------------------------------------ */

static int write_check(weft_stream_t *s) {
    if (!s)
        return WEFT_EINVAL;
    if (s->werr)
        return s->werr;
    if (s->closing || s->eof_pending)
        return WEFT_EPIPE;
    return 0;
}

static int buffer(weft_stream_t *s, const char *p, size_t n) {
    if (s->wpos + s->wlen + n > s->wcap) {
        if (s->wpos) {
            memmove(s->wbuf, s->wbuf + s->wpos, s->wlen);
            s->wpos = 0;
        }
        if (s->wlen + n > s->wcap) {
            size_t cap = s->wcap ? s->wcap : 16384;
            char *b;
            while (cap < s->wlen + n)
                cap *= 2;
            if (!(b = realloc(s->wbuf, cap)))
                return WEFT_ENOMEM;
            s->wbuf = b;
            s->wcap = cap;
        }
    }
    memcpy(s->wbuf + s->wpos + s->wlen, p, n);
    s->wlen += n;
    if (s->wlen > s->high)
        s->paused = true;
    return 0;
}

int weft_stream_write(weft_stream_t *s, const void *buf, size_t n) {
    const char *p = buf;
    int rc = write_check(s);
    if (rc < 0 || n == 0)
        return rc;
    if (!s->wlen) { /* nothing queued: straight to the socket */
        ssize_t w = s->tp->send(s, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (!weft__want(w)) {
            set_werr(s, (int)w);
            return (int)w;
        }
    }
    return n ? buffer(s, p, n) : 0;
}

int weft_stream_writelines(weft_stream_t *s, const struct iovec *iov, int iovcnt) {
    int rc = write_check(s);
    if (rc < 0)
        return rc;
    if (iovcnt < 0 || (iovcnt && !iov))
        return WEFT_EINVAL;
    /* Coalesced into the buffer first when anything is queued; else one call each. */
    for (int i = 0; i < iovcnt && rc == 0; i++)
        rc = weft_stream_write(s, iov[i].iov_base, iov[i].iov_len);
    return rc;
}

int weft_stream_drain(weft_stream_t *s) {
    weft_task_t *t;
    weft__wnode_t n;
    int rc = enter(s, &t);
    if (rc < 0)
        return rc;
    while (rc == 0 && s->paused && !s->werr && !s->closed) {
        WEFT__WAITING(t, "stream drain", s);
        if (weft__cancel_visible(t))
            rc = WEFT_ECANCELED;
        else
            rc = weft__wlist_wait(&s->drainers, &n, t, s, false, stream_wnode_abort, NULL);
    }
    if (rc == 0)
        rc = s->werr ? s->werr : s->closed ? WEFT_EPIPE : 0;
    weft__stream_unref(s);
    return rc < 0 ? rc : 0;
}

int weft_stream_set_write_buffer_limits(weft_stream_t *s, size_t high, size_t low) {
    if (!s)
        return WEFT_EINVAL;
    if (!high)
        high = low ? 4 * low : WEFT_WRITE_HIGH_WATER; /* asyncio: high = 4 * low */
    if (low > high)
        return WEFT_EINVAL;
    s->high = high;
    s->low = low;
    if (s->wlen > high)
        s->paused = true;
    else if (s->paused && s->wlen <= low)
        wake_drainers(s);
    return 0;
}

size_t weft_stream_write_buffer_size(const weft_stream_t *s) { return s->wlen; }

int weft_stream_write_eof(weft_stream_t *s) {
    int rc = write_check(s);
    if (rc < 0)
        return rc == WEFT_EPIPE && s->eof_pending ? 0 : rc;
    s->eof_pending = true;
    if (!s->wlen) {
        s->eof_sent = true;
        s->tp->shutdown(s);
    }
    return 0;
}

int weft_stream_can_write_eof(const weft_stream_t *s) { return s && !s->closed; }

int weft_stream_peername(const weft_stream_t *s, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    if (s->closed)
        return WEFT_EBADF;
    return getpeername(s->fd, (struct sockaddr *)addr, len) < 0 ? -errno : 0;
}

int weft_stream_sockname(const weft_stream_t *s, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    if (s->closed)
        return WEFT_EBADF;
    return getsockname(s->fd, (struct sockaddr *)addr, len) < 0 ? -errno : 0;
}
