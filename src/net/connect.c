/* open_connection / open_unix_connection: resolve, connect (one address after another, or
 * RFC 8305 Happy Eyeballs), wrap in a stream, optionally TLS. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "stream.h"

static int bind_local(int fd, const weft_connect_options_t *o, int family) {
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res, *ai;
    char port[16];
    int rc;
    snprintf(port, sizeof port, "%d", o->local_port);
    if ((rc = weft_getaddrinfo(o->local_host, port, &hints, &res)) < 0)
        return rc;
    rc = WEFT_EADDRNOTAVAIL;
    for (ai = res; ai; ai = ai->ai_next)
        if ((rc = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0) == 0)
            break;
    weft_freeaddrinfo(res);
    return rc;
}

/* [suspends] One attempt: a connected non-blocking socket, or an error. *inflight shows the
 * socket while the attempt waits (-1 otherwise), for a guard to close if the loop closes. */
static int connect_one(const struct addrinfo *ai, const weft_connect_options_t *o, int *inflight) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int rc, one = 1;
    if (fd < 0)
        return -errno;
    weft__fd_fresh(weft__tls_loop, fd); /* a stale entry under its number */
    *inflight = fd;
    if ((o->local_host || o->local_port) && (rc = bind_local(fd, o, ai->ai_family)) < 0)
        goto fail;
    if ((rc = weft_sock_connect(fd, ai->ai_addr, ai->ai_addrlen)) < 0)
        goto fail;
    if (ai->ai_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *inflight = -1;
    return fd;
fail:
    *inflight = -1;
    weft_close(fd);
    return rc;
}

/* ---- Happy Eyeballs (RFC 8305): staggered attempts, the first to connect wins ------------ */

typedef struct attempt {
    const struct addrinfo *ai;
    const weft_connect_options_t *o;
    int fd; /* its socket while it connects, or -1 */
} attempt_t;

/* ---- a call's guard against the loop closing -------------------------------------------- *
 * The loop closing abandons a task where it waits, without returning: what an open_connection
 * call holds across its suspensions (the addresses, the socket being connected, Happy
 * Eyeballs' attempts, the stream of a TLS handshake) would leak. The call registers this record
 * as one of the loop's closers while it runs; if the loop closes first, it frees all that. */
typedef struct conn_guard {
    weft__closer_t closer;
    weft_loop_t *loop;
    struct addrinfo *res;
    const struct addrinfo **order;
    int fd;                   /* the sequential attempt's socket while it connects, or -1 */
    weft_task_t **tasks;      /* Happy Eyeballs: the attempts (n of them) and their states */
    weft_task_t **pending;
    attempt_t *as;
    size_t n;
    weft_stream_t *s;         /* the stream while its TLS handshake runs */
} conn_guard_t;

static int attempt_outcome(weft_task_t *t);

static void close_inflight(weft_loop_t *loop, int fd) {
    weft__fd_forget(loop, fd);
    close(fd);
}

static void guard_loop_close(weft__closer_t *c) {
    conn_guard_t *g = weft__container_of(c, conn_guard_t, closer);
    if (g->fd >= 0)
        close_inflight(g->loop, g->fd);
    for (size_t i = 0; g->tasks && i < g->n; i++) {
        int r;
        if (!g->tasks[i])
            continue;
        if ((r = attempt_outcome(g->tasks[i])) >= 0) /* connected, not yet collected */
            close(r);
        else if (g->as[i].fd >= 0)
            close_inflight(g->loop, g->as[i].fd);
        weft_unref(g->tasks[i]);
    }
    free(g->tasks);
    free(g->pending);
    free(g->as);
    if (g->s) /* the loop closed its socket; this was the call's handle */
        weft_stream_free(g->s);
    weft_freeaddrinfo(g->res);
    free(g->order);
    free(g);
}

static conn_guard_t *guard_new(weft_loop_t *loop) {
    conn_guard_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->loop = loop;
    g->fd = -1;
    weft__closer_add(loop, &g->closer, guard_loop_close);
    return g;
}

/* The call is over (everything it held was handed on or freed). */
static void guard_end(conn_guard_t *g) {
    weft__closer_remove(g->loop, &g->closer);
    weft_freeaddrinfo(g->res);
    free(g->order);
    free(g);
}

static int attempt_main(void *arg, void **result) {
    attempt_t *a = arg;
    int fd = connect_one(a->ai, a->o, &a->fd);
    if (fd < 0)
        return fd;
    *result = (void *)(intptr_t)fd;
    return 0;
}

/* Collects a finished attempt: its socket (>= 0) or its error. */
static int attempt_outcome(weft_task_t *t) {
    void *v = NULL;
    int rc = weft_future_result(t, &v);
    return rc < 0 ? rc : (int)(intptr_t)v;
}

static int happy_eyeballs(conn_guard_t *g, const struct addrinfo **ais, size_t n,
                          const weft_connect_options_t *o) {
    /* In the guard while the attempts run (see conn_guard_t). */
    weft_task_t **tasks = g->tasks = calloc(n, sizeof *tasks);
    weft_task_t **pending = g->pending = calloc(n, sizeof *pending);
    attempt_t *as = g->as = calloc(n, sizeof *as);
    size_t started = 0, npending = 0;
    int winner = -1, first_err = 0, rc = 0;
    if (!tasks || !pending || !as) {
        rc = WEFT_ENOMEM;
        goto out;
    }
    while (winner < 0) {
        if (started < n) { /* start the next attempt */
            as[started] = (attempt_t){ais[started], o, -1};
            g->n = started + 1;
            if ((rc = weft_create_task(&tasks[started], attempt_main, &as[started], NULL)) < 0)
                break;
            started++;
        } else if (!npending) {
            break; /* all failed */
        }
        npending = 0;
        for (size_t i = 0; i < started; i++)
            if (tasks[i] && !weft_future_done(tasks[i]))
                pending[npending++] = tasks[i];
        if (npending) {
            rc = weft_wait(pending, npending, WEFT_FIRST_COMPLETED,
                           started < n ? o->happy_eyeballs_delay : WEFT_NEVER);
            if (rc < 0)
                break;
            rc = 0;
        }
        for (size_t i = 0; i < started; i++) {
            if (!tasks[i] || !weft_future_done(tasks[i]))
                continue;
            int r = attempt_outcome(tasks[i]);
            if (r >= 0 && winner < 0)
                winner = r;
            else if (r >= 0)
                weft_close(r);
            else if (!first_err)
                first_err = r;
            weft_unref(tasks[i]);
            tasks[i] = NULL;
        }
        /* Round again: a failure starts the next attempt at once, as the RFC asks. */
    }
    /* The losers: cancel, wait, close any that connected anyway. */
    for (size_t i = 0; i < started; i++) {
        if (!tasks[i])
            continue;
        weft_cancel(tasks[i], NULL);
        weft_shield_begin();
        weft_wait(&tasks[i], 1, WEFT_ALL_COMPLETED, WEFT_NEVER);
        weft_shield_end();
        int r = attempt_outcome(tasks[i]);
        if (r >= 0 && winner < 0 && rc == 0)
            winner = r;
        else if (r >= 0)
            weft_close(r);
        weft_unref(tasks[i]);
    }
    if (rc < 0 && winner >= 0) { /* cancelled after all: nobody takes the socket */
        weft_close(winner);
        winner = -1;
    }
out:
    free(tasks);
    free(pending);
    free(as);
    g->tasks = g->pending = NULL;
    g->as = NULL;
    g->n = 0;
    return winner >= 0 ? winner : rc < 0 ? rc : first_err ? first_err : WEFT_ECONNREFUSED;
}

/* RFC 8305 section 4: alternate families, starting with the first address's. */
static size_t interleave(struct addrinfo *res, const struct addrinfo **out) {
    size_t n = 0;
    struct addrinfo *a, *b;
    int first;
    if (!res)
        return 0;
    first = res->ai_family;
    a = res;
    b = res;
    for (;;) {
        while (a && a->ai_family != first)
            a = a->ai_next;
        while (b && b->ai_family == first)
            b = b->ai_next;
        if (!a && !b)
            break;
        if (a) {
            out[n++] = a;
            a = a->ai_next;
        }
        if (b) {
            out[n++] = b;
            b = b->ai_next;
        }
    }
    return n;
}

static int finish(weft_stream_t **stream, int fd, const weft_connect_options_t *o,
                  const char *host, conn_guard_t *g) {
    weft_loop_t *loop = weft__tls_loop;
    weft_stream_t *s;
    int rc = weft__stream_new(loop, fd, true, o->limit, &s);
    if (rc < 0) {
        weft_close(fd);
        return rc;
    }
    if (o->tls) {
        g->s = s;
        rc = weft__tls_handshake(s, o->tls, o->server_hostname ? o->server_hostname : host,
                                 o->tls_handshake_timeout);
        g->s = NULL;
        if (rc < 0) {
            const char *msg = weft_error_message();
            char *keep = msg && *msg ? strdup(msg) : NULL;
            weft_stream_abort(s);
            weft_stream_free(s);
            if (keep) { /* closing must not lose why the handshake failed */
                weft__set_errmsg(keep);
                free(keep);
            }
            return rc;
        }
    }
    *stream = s;
    return 0;
}

int weft_open_connection(weft_stream_t **stream, const char *host, int port,
                         const weft_connect_options_t *opts) {
    static const weft_connect_options_t defaults;
    const weft_connect_options_t *o = opts ? opts : &defaults;
    struct addrinfo hints = {.ai_family = o->family, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    const struct addrinfo **order = NULL;
    weft_loop_t *loop;
    weft_task_t *t;
    conn_guard_t *g;
    char portstr[16];
    size_t n;
    int rc, fd = WEFT_ECONNREFUSED;
    if (!stream || !host || port < 0 || port > 65535)
        return WEFT_EINVAL;
    if ((rc = weft__net_task(&loop, &t)) < 0)
        return rc;
    if (!(g = guard_new(loop)))
        return WEFT_ENOMEM;
    snprintf(portstr, sizeof portstr, "%d", port);
    if ((rc = weft_getaddrinfo(host, portstr, &hints, &res)) < 0) {
        guard_end(g);
        return rc;
    }
    g->res = res;
    n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    if (!(order = g->order = calloc(n ? n : 1, sizeof *order))) {
        guard_end(g);
        return WEFT_ENOMEM;
    }
    if (o->happy_eyeballs_delay > 0) {
        n = interleave(res, order);
        fd = happy_eyeballs(g, order, n, o);
    } else {
        size_t i = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            int r = connect_one(ai, o, &g->fd);
            if (r >= 0 || r == WEFT_ECANCELED) {
                fd = r;
                break;
            }
            if (i++ == 0) /* asyncio reports the first address's error (of one address) */
                fd = r;
        }
    }
    if (fd >= 0)
        rc = finish(stream, fd, o, host, g);
    guard_end(g); /* frees res and order */
    return fd < 0 ? fd : rc;
}

int weft_open_unix_connection(weft_stream_t **stream, const char *path,
                              const weft_connect_options_t *opts) {
    static const weft_connect_options_t defaults;
    const weft_connect_options_t *o = opts ? opts : &defaults;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct addrinfo ai = {.ai_family = AF_UNIX, .ai_socktype = SOCK_STREAM,
                          .ai_addr = (struct sockaddr *)&sun, .ai_addrlen = sizeof sun};
    weft_loop_t *loop;
    weft_task_t *t;
    conn_guard_t *g;
    int rc, fd;
    if (!stream || !path)
        return WEFT_EINVAL;
    if (strlen(path) >= sizeof sun.sun_path)
        return WEFT_ENAMETOOLONG;
    if ((rc = weft__net_task(&loop, &t)) < 0)
        return rc;
    strcpy(sun.sun_path, path);
    weft_connect_options_t plain = *o;
    plain.local_host = NULL; /* no local_addr for a Unix socket */
    plain.local_port = 0;
    if (!(g = guard_new(loop)))
        return WEFT_ENOMEM;
    if ((fd = connect_one(&ai, &plain, &g->fd)) >= 0)
        rc = finish(stream, fd, o, NULL, g);
    guard_end(g);
    return fd < 0 ? fd : rc;
}
