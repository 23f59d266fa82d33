/* Datagram endpoints (loop.create_datagram_endpoint), as calls that suspend the task rather
 * than as asyncio's protocol callbacks: recvfrom waits for a datagram, sendto for room. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "net.h"

struct weft_udp {
    weft__closer_t closer;
    weft_loop_t *loop;
    weft__fd_t *e;
    int fd;
};

static void udp_shut(weft_udp_t *u) {
    if (u->fd < 0)
        return;
    weft__fd_forget(u->loop, u->fd); /* tasks still waiting get -EBADF */
    close(u->fd);
    u->fd = -1;
    u->e = NULL;
}

static void udp_loop_close(weft__closer_t *c) {
    weft_udp_t *u = weft__container_of(c, weft_udp_t, closer);
    if (weft__unlikely(u->loop->debug) && u->fd >= 0)
        weft__log_unclosed_socket("UDP endpoint", u->fd, false);
    udp_shut(u);
}

static int resolve(const char *host, int port, int family, int flags, struct addrinfo **res) {
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_DGRAM, .ai_flags = flags};
    char portstr[16];
    if (port < 0 || port > 65535)
        return WEFT_EINVAL;
    snprintf(portstr, sizeof portstr, "%d", port);
    return weft_getaddrinfo(host, portstr, &hints, res);
}

int weft_udp_open(weft_udp_t **out, const weft_udp_options_t *opts) {
    static const weft_udp_options_t defaults;
    const weft_udp_options_t *o = opts ? opts : &defaults;
    struct addrinfo *local = NULL, *remote = NULL;
    weft_loop_t *loop;
    weft_task_t *t;
    weft_udp_t *u;
    int rc, fd = -1, one = 1, family = o->family;
    if (!out)
        return WEFT_EINVAL;
    if ((rc = weft__net_task(&loop, &t)) < 0)
        return rc;
    if (o->remote_host && (rc = resolve(o->remote_host, o->remote_port, family, 0, &remote)) < 0)
        return rc;
    if (remote)
        family = remote->ai_family;
    if ((o->local_host || o->local_port || !remote) &&
        (rc = resolve(o->local_host, o->local_port, family, AI_PASSIVE, &local)) < 0)
        goto out;
    if (!(u = calloc(1, sizeof *u))) {
        rc = WEFT_ENOMEM;
        goto out;
    }
    family = local ? local->ai_family : remote->ai_family;
    if ((fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        rc = -errno;
        goto fail;
    }
    if (o->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail_errno;
    if (o->allow_broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0)
        goto fail_errno;
    if (local && bind(fd, local->ai_addr, local->ai_addrlen) < 0)
        goto fail_errno;
    if (remote && connect(fd, remote->ai_addr, remote->ai_addrlen) < 0)
        goto fail_errno;
    if ((rc = weft__fd_get(loop, fd, &u->e)) < 0)
        goto fail;
    u->e->owner = u;
    u->fd = fd;
    u->loop = loop;
    loop->refs++;
    weft__closer_add(loop, &u->closer, udp_loop_close);
    *out = u;
    rc = 0;
    goto out;
fail_errno:
    rc = -errno;
fail:
    if (fd >= 0)
        close(fd);
    free(u);
out:
    weft_freeaddrinfo(local);
    weft_freeaddrinfo(remote);
    return rc;
}

void weft_udp_close(weft_udp_t *u) {
    if (!u)
        return;
    udp_shut(u);
    weft__closer_remove(u->loop, &u->closer);
    weft__loop_unref(u->loop);
    free(u);
}

/* [suspends] The endpoint's entry, checked for the calling task's loop. */
static int udp_enter(weft_udp_t *u) {
    weft_task_t *t = weft__current();
    if (!u)
        return WEFT_EINVAL;
    if (!t)
        return WEFT_EPERM;
    if (u->fd < 0)
        return WEFT_EBADF;
    return t->loop == u->loop ? 0 : WEFT_EINVAL;
}

ssize_t weft_udp_sendto(weft_udp_t *u, const void *buf, size_t n, const struct sockaddr *addr,
                        socklen_t len) {
    int rc = udp_enter(u);
    return rc < 0 ? rc : weft__dgram_send(u->e, buf, n, addr, len);
}

ssize_t weft_udp_recvfrom(weft_udp_t *u, void *buf, size_t n, struct sockaddr_storage *addr,
                          socklen_t *len) {
    int rc = udp_enter(u);
    if (rc < 0)
        return rc;
    if (!len)
        addr = NULL; /* nowhere to say how long it is */
    if (addr)
        *len = sizeof *addr;
    return weft__sock_recvfrom(u->e, buf, n, MSG_TRUNC, (struct sockaddr *)addr, addr ? len : NULL);
}

int weft_udp_sockname(const weft_udp_t *u, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    if (u->fd < 0)
        return WEFT_EBADF;
    return getsockname(u->fd, (struct sockaddr *)addr, len) < 0 ? -errno : 0;
}

int weft_udp_fd(const weft_udp_t *u) { return u->fd; }
