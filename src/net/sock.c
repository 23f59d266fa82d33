/* loop.sock_*: socket operations that suspend only the calling task. Each tries the system
 * call first and waits for readiness only when it reports EAGAIN. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"

/* A descriptor closed without weft_fd_forget() can come back under the same number as a new
 * file, blocking, and its stale entry does not make it non-blocking as a new entry would (a
 * blocking call would then freeze the loop's thread). The recv / send calls pass MSG_DONTWAIT,
 * which costs nothing; the others (connect, accept, sendfile: check_nonblock) check the flag of
 * a descriptor the loop already knew and no weft object owns. */
static int sock_entry(int fd, weft__fd_t **e, bool check_nonblock) {
    weft_loop_t *loop;
    weft_task_t *t;
    bool known;
    int rc = weft__net_task(&loop, &t);
    if (rc < 0)
        return rc;
    known = fd >= 0 && fd < loop->nfds && loop->fds[fd];
    if ((rc = weft__fd_get(loop, fd, e)) < 0)
        return rc;
    /* sock_wait re-arms before it waits: the flag is all these calls need checked. */
    return check_nonblock && known ? weft__fd_recheck(*e, false) : 0;
}

/* After EAGAIN. A descriptor no weft object owns is re-armed first: if the caller closed it
 * and got the number back for a new socket without telling us, the kernel has forgotten it. */
static int sock_wait(weft__fd_t *e, int dir) {
    int rc;
    weft__fd_clear(e, dir);
    if (!e->owner && (e->io.events & WEFT__POLL_EDGE) &&
        (rc = weft__poll_rearm(&e->loop->poll, &e->io)) < 0)
        return rc;
    return weft__fd_wait(e, dir);
}

ssize_t weft_sock_recv(int fd, void *buf, size_t n) {
    weft__fd_t *e;
    int rc = sock_entry(fd, &e, false);
    return rc < 0 ? rc : weft__sock_recvfrom(e, buf, n, 0, NULL, NULL);
}

int weft_sock_sendall(int fd, const void *buf, size_t n, size_t *sent) {
    weft__fd_t *e;
    size_t done = 0;
    int rc = sock_entry(fd, &e, false);
    while (rc == 0 && done < n) {
        ssize_t w = send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            done += (size_t)w;
        else if (errno == EAGAIN)
            rc = sock_wait(e, WEFT__WR);
        else if (errno != EINTR)
            rc = -errno;
    }
    if (sent)
        *sent = done;
    return rc;
}

int weft_sock_connect(int fd, const struct sockaddr *addr, socklen_t len) {
    weft__fd_t *e;
    int rc = sock_entry(fd, &e, true), err;
    socklen_t elen = sizeof err;
    if (rc < 0)
        return rc;
    if (connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    /* Writable once the handshake is over, either way; SO_ERROR says which way. */
    for (;;) {
        weft__fd_clear(e, WEFT__WR);
        if ((rc = sock_wait(e, WEFT__WR)) < 0)
            return rc;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            return -errno;
        if (err)
            return -err;
        /* A spurious readiness (the optimistic initial one): connected only if it says so. */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
            return 0;
        if (errno != ENOTCONN)
            return -errno;
    }
}

int weft_sock_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    weft__fd_t *e;
    int rc = sock_entry(fd, &e, true);
    if (rc < 0)
        return rc;
    for (;;) {
        int c = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN)
            return -errno;
        if ((rc = sock_wait(e, WEFT__RD)) < 0)
            return rc;
    }
}

/* sendfile(2) has no MSG_NOSIGNAL: to a peer that has gone it raises SIGPIPE, which kills a
 * program that did not ignore it. SIGPIPE is blocked on this thread around the call, and the
 * one the call raised is taken back (one already pending before is left alone). */
static ssize_t sendfile_nosigpipe(int sock, int file, off_t *off, size_t n) {
    sigset_t pipe_set, old, pending;
    bool was_pending;
    ssize_t w;
    int err;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    w = sendfile(sock, file, off, n);
    err = errno;
    if (w < 0 && err == EPIPE && !was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return w;
}

ssize_t weft_sock_sendfile(int sock, int file, off_t *offset, size_t count) {
    weft__fd_t *e;
    off_t off = offset ? *offset : 0;
    size_t done = 0;
    int rc = sock_entry(sock, &e, true);
    if (rc < 0)
        return rc;
    if (count == 0) {
        struct stat st;
        if (fstat(file, &st) < 0)
            return -errno;
        if (st.st_size <= off)
            return 0;
        count = (size_t)(st.st_size - off);
    }
    while (done < count) {
        ssize_t w = sendfile_nosigpipe(sock, file, &off, count - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w == 0) {
            break; /* the file is shorter than asked */
        } else if (errno == EAGAIN) {
            if ((rc = sock_wait(e, WEFT__WR)) < 0)
                break;
        } else if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    if (offset)
        *offset = off;
    return done || rc == 0 ? (ssize_t)done : rc;
}

ssize_t weft__sock_recvfrom(weft__fd_t *e, void *buf, size_t n, int flags, struct sockaddr *addr,
                            socklen_t *len) {
    int rc;
    for (;;) {
        ssize_t got = recvfrom(e->io.fd, buf, n, flags | MSG_DONTWAIT, addr, len);
        if (got >= 0)
            return (flags & MSG_TRUNC) && (size_t)got > n ? WEFT_EMSGSIZE : got;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        if ((rc = sock_wait(e, WEFT__RD)) < 0)
            return rc;
    }
}

ssize_t weft__dgram_send(weft__fd_t *e, const void *buf, size_t n, const struct sockaddr *addr,
                         socklen_t len) {
    int rc;
    for (;;) {
        ssize_t w = sendto(e->io.fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT, addr, addr ? len : 0);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        if ((rc = sock_wait(e, WEFT__WR)) < 0)
            return rc;
    }
}

ssize_t weft_sock_recvfrom(int fd, void *buf, size_t n, struct sockaddr *addr, socklen_t *len) {
    weft__fd_t *e;
    int rc = sock_entry(fd, &e, false);
    return rc < 0 ? rc : weft__sock_recvfrom(e, buf, n, MSG_TRUNC, addr, len);
}

ssize_t weft_sock_sendto(int fd, const void *buf, size_t n, const struct sockaddr *addr,
                         socklen_t len) {
    weft__fd_t *e;
    int rc = sock_entry(fd, &e, false);
    return rc < 0 ? rc : weft__dgram_send(e, buf, n, addr, len);
}
