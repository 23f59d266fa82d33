/* start_server / start_unix_server: listening sockets whose connections each run the handler
 * in a task of their own. Accepting happens in the poller's callback (no task per listener):
 * each ready listener is drained with accept4 until EAGAIN. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "stream.h"

typedef struct listener {
    weft_server_t *srv;
    int fd;
    weft__fd_t *e;
    struct sockaddr_storage addr;
    socklen_t len;
} listener_t;

struct weft_server {
    weft__closer_t closer;
    weft_loop_t *loop;
    weft_stream_handler_fn handler;
    void *arg;
    weft_server_options_t opts;
    listener_t *ls;
    size_t nls;
    char *unix_path;          /* removed on close */
    weft__list_t conns;       /* connections whose handler runs, newest first */
    size_t nconns;
    weft_handle_t *retry;     /* accepting again after EMFILE */
    weft__wlist_t waiters;    /* wait_closed and serve_forever */
    size_t users;             /* tasks inside its calls */
    bool closed;
    bool emfile_logged;
};

static void accept_ready(weft_server_t *srv, listener_t *l);

/* ---- connections --------------------------------------------------------------------------- */

static void conn_unlink(weft_server_t *srv, weft_stream_t *s) {
    weft__list_remove(&s->srv_link);
    s->server = NULL;
    srv->nconns--;
    if (srv->closed && !srv->nconns)
        weft__wlist_grant_all(&srv->waiters);
}

static int conn_main(void *arg, void **result) {
    weft_stream_t *s = arg;
    weft_server_t *srv = s->server;
    int rc = 0;
    if (srv->opts.tls) {
        rc = weft__tls_handshake(s, srv->opts.tls, NULL, srv->opts.tls_handshake_timeout);
        if (rc < 0 && rc != WEFT_ECANCELED) { /* asyncio logs it once; no handler runs */
            weft__log("TLS handshake with a client failed: %s", weft_error_message());
            rc = 1;
        }
    }
    if (rc == 0)
        rc = srv->handler(s, srv->arg);
    if (s->server) /* the loop may have closed the server meanwhile */
        conn_unlink(s->server, s);
    weft_stream_free(s);
    return rc < 0 ? rc : 0; /* 1: a failed handshake, already reported */
}

static void start_conn(weft_server_t *srv, int fd, int family) {
    weft_stream_t *s;
    weft_task_t *t;
    weft_task_options_t topts = {.stack_size = srv->opts.stack_size};
    int one = 1;
    if (family != AF_UNIX) /* asyncio turns Nagle off on every TCP transport */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (weft__stream_new(srv->loop, fd, true, srv->opts.limit, &s) < 0) {
        close(fd);
        return;
    }
    s->server = srv;
    weft__list_push_front(&srv->conns, &s->srv_link);
    srv->nconns++;
    if (weft_loop_create_task(srv->loop, &t, conn_main, s, &topts) < 0) {
        conn_unlink(srv, s);
        weft_stream_abort(s);
        weft_stream_free(s);
        return;
    }
    weft_unref(t); /* the loop keeps it until it ends */
}

/* ---- accepting ----------------------------------------------------------------------------- */

static void retry_accept(void *arg) {
    weft_server_t *srv = arg;
    weft_handle_unref(srv->retry);
    srv->retry = NULL;
    for (size_t i = 0; i < srv->nls; i++)
        if (srv->ls[i].e)
            accept_ready(srv, &srv->ls[i]);
}

static void accept_ready(weft_server_t *srv, listener_t *l) {
    while (!srv->closed && !srv->retry) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            weft__fd_fresh(srv->loop, fd); /* a stale entry under its number */
            start_conn(srv, fd, l->addr.ss_family);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN) {
            weft__fd_clear(l->e, WEFT__RD);
            return;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: the pending connection stays in the backlog and the listener
             * stays readable. Retrying at once would spin; back off as asyncio does. */
            if (!srv->emfile_logged)
                weft__log("accept failed (%s); accepting again in 0.1 s", weft_strerror(-errno));
            srv->emfile_logged = true;
            weft_call_later(srv->loop, 0.1, retry_accept, srv, &srv->retry);
            return;
        }
        weft__log("accept failed: %s", weft_strerror(-errno));
        return;
    }
}

static void listener_event(weft__fd_t *e, unsigned events) {
    listener_t *l = e->owner;
    if (events & (WEFT__POLL_IN | WEFT__POLL_ERR | WEFT__POLL_HUP))
        accept_ready(l->srv, l);
}

static in_port_t port_of(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_port;
    if (a->ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)a)->sin6_port;
    return 0;
}

static void set_port(struct sockaddr *a, in_port_t port) {
    if (a->sa_family == AF_INET)
        ((struct sockaddr_in *)a)->sin_port = port;
    else if (a->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)a)->sin6_port = port;
}

/* ---- creating ----------------------------------------------------------------------------- */

static int listen_on(weft_server_t *srv, const struct sockaddr *addr, socklen_t len) {
    listener_t *l = &srv->ls[srv->nls];
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rc;
    if (fd < 0)
        return -errno;
    if (addr->sa_family != AF_UNIX) {
        if (srv->opts.reuse_address >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (srv->opts.reuse_port > 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
            rc = -errno;
            goto fail;
        }
        /* Both families listening on one port: the IPv6 socket must not claim IPv4 too. */
        if (addr->sa_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, addr, len) < 0 || listen(fd, srv->opts.backlog ? srv->opts.backlog : 100) < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = weft__fd_get(srv->loop, fd, &l->e)) < 0)
        goto fail;
    l->srv = srv;
    l->fd = fd;
    l->len = sizeof l->addr;
    getsockname(fd, (struct sockaddr *)&l->addr, &l->len);
    l->e->owner = l;
    l->e->on_event = listener_event;
    srv->nls++;
    return 0;
fail:
    close(fd);
    return rc;
}

static void close_listeners(weft_server_t *srv) {
    for (size_t i = 0; i < srv->nls; i++) {
        listener_t *l = &srv->ls[i];
        if (!l->e)
            continue;
        weft__fd_forget(srv->loop, l->fd);
        close(l->fd);
        l->e = NULL;
    }
    if (srv->retry) {
        weft_handle_cancel(srv->retry);
        weft_handle_unref(srv->retry);
        srv->retry = NULL;
    }
    if (srv->unix_path) {
        unlink(srv->unix_path);
        free(srv->unix_path);
        srv->unix_path = NULL;
    }
}

/* Debug mode: a server still serving when its loop closes, named by its addresses. */
static void report_unclosed(weft_server_t *srv) {
    char where[512];
    size_t n = 0;
    where[0] = '\0';
    for (size_t i = 0; i < srv->nls && n + 2 < sizeof where; i++) {
        if (n)
            n += (size_t)snprintf(where + n, sizeof where - n, ", ");
        n += weft__format_sockaddr(where + n, sizeof where - n,
                                   (const struct sockaddr *)&srv->ls[i].addr, srv->ls[i].len);
    }
    weft__log("unclosed server %s", n ? where : srv->unix_path ? srv->unix_path : "(unbound)");
}

static void server_loop_close(weft__closer_t *c) {
    weft_server_t *srv = weft__container_of(c, weft_server_t, closer);
    if (weft__unlikely(srv->loop->debug) && !srv->closed)
        report_unclosed(srv);
    srv->closed = true;
    close_listeners(srv);
    /* The handlers' tasks are gone (the loop abandoned them): their streams go with us. */
    weft_stream_t *s;
    while ((s = weft__list_first_entry(&srv->conns, weft_stream_t, srv_link))) {
        conn_unlink(srv, s);
        weft_stream_abort(s);
        weft__stream_unref(s);
    }
}

static int server_new(weft_server_t **out, weft_stream_handler_fn handler, void *arg,
                      const weft_server_options_t *opts, size_t naddrs) {
    weft_loop_t *loop = weft__tls_loop;
    weft_server_t *srv;
    if (!out || !handler)
        return WEFT_EINVAL;
    if (!loop || !weft__current())
        return WEFT_EPERM;
    if (!(srv = calloc(1, sizeof *srv)) ||
        !(srv->ls = calloc(naddrs ? naddrs : 1, sizeof *srv->ls))) {
        free(srv);
        return WEFT_ENOMEM;
    }
    srv->loop = loop;
    loop->refs++;
    srv->handler = handler;
    srv->arg = arg;
    if (opts)
        srv->opts = *opts;
    if (srv->opts.tls)
        weft__tls_ref(srv->opts.tls);
    weft__wlist_init(&srv->waiters);
    weft__list_init(&srv->conns);
    weft__closer_add(loop, &srv->closer, server_loop_close);
    *out = srv;
    return 0;
}

static void server_destroy(weft_server_t *srv) {
    weft__closer_remove(srv->loop, &srv->closer);
    close_listeners(srv);
    if (srv->opts.tls)
        weft_tls_unref(srv->opts.tls);
    weft__loop_unref(srv->loop);
    free(srv->ls);
    free(srv);
}

int weft_start_server(weft_server_t **server, weft_stream_handler_fn handler, void *arg,
                      const char *host, int port, const weft_server_options_t *opts) {
    struct addrinfo hints = {.ai_family = opts ? opts->family : 0, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    weft_server_t *srv;
    char portstr[16];
    size_t n = 0;
    int rc;
    if (port < 0 || port > 65535 || !server)
        return WEFT_EINVAL;
    snprintf(portstr, sizeof portstr, "%d", port);
    if (!weft__current())
        return WEFT_EPERM;
    if ((rc = weft_getaddrinfo(host, portstr, &hints, &res)) < 0)
        return rc;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    if ((rc = server_new(&srv, handler, arg, opts, n)) < 0) {
        weft_freeaddrinfo(res);
        return rc;
    }
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        /* Port 0 on several addresses ("localhost": 127.0.0.1 and ::1): all listen on the
         * port the first one got, so that one number reaches the server. */
        if (port == 0 && srv->nls)
            set_port(ai->ai_addr, port_of(&srv->ls[0].addr));
        rc = listen_on(srv, ai->ai_addr, ai->ai_addrlen);
        /* A host without IPv6 support still serves IPv4. */
        if (rc == WEFT_EAFNOSUPPORT ||
            (rc == WEFT_EADDRNOTAVAIL && ai->ai_family == AF_INET6 && !host))
            rc = 0;
    }
    weft_freeaddrinfo(res);
    if (rc == 0 && !srv->nls)
        rc = WEFT_EADDRNOTAVAIL;
    if (rc < 0) {
        server_destroy(srv);
        return rc;
    }
    /* Connections that arrived between listen and now are taken in the next poll. */
    *server = srv;
    return 0;
}

int weft_start_unix_server(weft_server_t **server, weft_stream_handler_fn handler, void *arg,
                           const char *path, const weft_server_options_t *opts) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    weft_server_t *srv;
    int rc;
    if (!path || !server)
        return WEFT_EINVAL;
    if (strlen(path) >= sizeof sun.sun_path)
        return WEFT_ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    if ((rc = server_new(&srv, handler, arg, opts, 1)) < 0)
        return rc;
    /* A stale socket file from an earlier run (asyncio removes it too); anything else at
     * that path is left alone and bind reports it. */
    if (path[0] && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if ((rc = listen_on(srv, (struct sockaddr *)&sun, sizeof sun)) < 0 ||
        (path[0] && !(srv->unix_path = strdup(path)) && (rc = WEFT_ENOMEM))) {
        server_destroy(srv);
        return rc;
    }
    *server = srv;
    return 0;
}

/* ---- the server object ----------------------------------------------------------------------- */

void weft_server_close(weft_server_t *srv) {
    if (!srv || srv->closed)
        return;
    srv->closed = true;
    close_listeners(srv);
    weft__wlist_grant_all(&srv->waiters); /* serve_forever returns; wait_closed checks nconns */
}

static void close_clients(weft_server_t *srv, bool abort) {
    weft__list_t *l, *next;
    for (l = srv->conns.next; l != &srv->conns; l = next) {
        weft_stream_t *s = weft__list_entry(l, weft_stream_t, srv_link);
        next = l->next;
        abort ? weft_stream_abort(s) : weft_stream_close(s);
    }
}
void weft_server_close_clients(weft_server_t *srv) { close_clients(srv, false); }
void weft_server_abort_clients(weft_server_t *srv) { close_clients(srv, true); }

static int server_wait(weft_server_t *srv, bool until_idle) {
    weft_task_t *t = weft__current();
    weft__wnode_t n;
    int rc = 0;
    if (!t)
        return WEFT_EPERM;
    srv->users++;
    while (rc == 0 && (!srv->closed || (until_idle && srv->nconns))) {
        WEFT__WAITING(t, "server wait_closed", srv);
        if (weft__cancel_visible(t))
            rc = WEFT_ECANCELED;
        else
            rc = weft__wlist_wait(&srv->waiters, &n, t, srv, false, weft__wnode_abort_unlink,
                                  &srv->users);
    }
    srv->users--;
    return rc < 0 ? rc : 0;
}

int weft_server_wait_closed(weft_server_t *srv) {
    if (!srv)
        return WEFT_EINVAL;
    return server_wait(srv, true);
}

int weft_server_serve_forever(weft_server_t *srv) {
    int rc;
    if (!srv)
        return WEFT_EINVAL;
    if (srv->closed)
        return WEFT_ESHUTDOWN; /* asyncio: "server is closed" */
    rc = server_wait(srv, false);
    /* Cancelled: asyncio closes the server. It does not wait here for the handlers (they may
     * be blocked on idle clients for ever); wait_closed() does, for who wants it. */
    if (rc == WEFT_ECANCELED)
        weft_server_close(srv);
    return rc;
}

int weft_server_is_serving(const weft_server_t *srv) { return srv && !srv->closed; }
size_t weft_server_nsockets(const weft_server_t *srv) { return srv && !srv->closed ? srv->nls : 0; }

int weft_server_address(const weft_server_t *srv, size_t i, struct sockaddr_storage *addr,
                        socklen_t *len) {
    if (!srv || !addr || !len || i >= srv->nls)
        return WEFT_EINVAL;
    *addr = srv->ls[i].addr;
    *len = srv->ls[i].len;
    return 0;
}

int weft_server_port(const weft_server_t *srv) {
    if (!srv || !srv->nls)
        return WEFT_EINVAL;
    return ntohs(port_of(&srv->ls[0].addr));
}

int weft_server_free(weft_server_t *srv) {
    if (!srv)
        return 0;
    if (srv->nconns || srv->users)
        return WEFT_EBUSY;
    server_destroy(srv);
    return 0;
}
