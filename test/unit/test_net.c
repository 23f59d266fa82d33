/* Networking on real sockets, loopback only (127.0.0.1, ::1, Unix sockets in a mkdtemp
 * directory): servers and connections, the stream reader and writer (limits, backpressure,
 * half-close, resets), cancellation and timeouts at every wait, EMFILE on accept, the sock_*
 * calls, add_reader / add_writer / wait_fd, forgetting descriptors, and the loop closing with
 * all of it open. Real-clock loops: the kernel's sockets do not follow a virtual clock. Ports
 * are always 0 (the server's own choice, read back with weft_server_port). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "wt.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Runs fn(arg) as the main task of a fresh real-clock loop, which must end clean. */
static void net_run(weft_task_fn fn, void *arg) {
    weft_loop_t *loop = wt_loop_real();
    ASSERT_OK(wt_run_task(loop, fn, arg, NULL));
    WT_CLOSE_LOOP(loop);
}

/* Yields until `cond` holds, for states no event announces (bytes reaching a stream's buffer).
 * The loop polls at least every 64 steps, so this is a few polls, never a timed wait. */
#define WAIT_UNTIL(cond)                                                          \
    do {                                                                          \
        long wt_spins_ = 0;                                                       \
        while (!(cond)) {                                                         \
            if (++wt_spins_ > 2000000)                                            \
                WT_FAIL("WAIT_UNTIL(%s): never became true", #cond);              \
            ASSERT_OK(weft_sleep(0));                                             \
        }                                                                         \
    } while (0)

static uint64_t loop_iterations(void) {
    weft_loop_stats_t st;
    weft_loop_stats(weft_get_running_loop(), &st);
    return st.iterations;
}

/* Test data: byte i of a stream. */
static inline char pat(size_t i) { return (char)((i * 131u) ^ (i >> 9) ^ (i >> 17)); }
static void pat_fill(char *buf, size_t off, size_t n) {
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(off + i);
}
/* Index of the first byte that differs, or n. */
static size_t pat_check(const char *buf, size_t off, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(off + i))
            return i;
    return n;
}

/* Open descriptors of this process. */
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;
    if (!d)
        WT_FAIL("opendir /proc/self/fd: %s", strerror(errno));
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

static char tmpdir[64];
static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/weft-net-XXXXXX");
    if (!mkdtemp(tmpdir))
        WT_FAIL("mkdtemp: %s", strerror(errno));
}

static struct sockaddr_in lo4(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int addr_port(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

static void assert_loopback(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET)
        ASSERT_EQ_INT(ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr), INADDR_LOOPBACK);
    else if (a->ss_family == AF_INET6)
        ASSERT(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr));
    else
        WT_FAIL("not an IP address: family %d", a->ss_family);
}

static void assert_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
    ASSERT_EQ_INT(a->ss_family, b->ss_family);
    if (a->ss_family == AF_UNIX) {
        ASSERT_EQ_STR(((const struct sockaddr_un *)a)->sun_path,
                      ((const struct sockaddr_un *)b)->sun_path);
        return;
    }
    ASSERT_EQ_INT(addr_port(a), addr_port(b));
    if (a->ss_family == AF_INET)
        ASSERT(memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0);
    else
        ASSERT(memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0);
}

/* A raw listening socket on 127.0.0.1, port 0 (*port gets the one chosen). */
static int raw_listener(int backlog, int *port) {
    struct sockaddr_in a = lo4(0);
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE_INT(l, 0);
    ASSERT_OK(bind(l, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(listen(l, backlog));
    ASSERT_OK(getsockname(l, (struct sockaddr *)&a, &len));
    *port = ntohs(a.sin_port);
    return l;
}

/* A connected TCP pair over loopback, made with blocking calls: the listener has room, so the
 * connect completes at once. */
static void tcp_pair(int fds[2]) {
    int port, l = raw_listener(1, &port);
    struct sockaddr_in a = lo4(port);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE_INT(fds[0], 0);
    ASSERT_OK(connect(fds[0], (struct sockaddr *)&a, sizeof a));
    fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    ASSERT_GE_INT(fds[1], 0);
    close(l);
}

/* A stream over one end of a TCP pair (limit 0: the default); *peer gets the other, raw end. */
static weft_stream_t *stream_pair(size_t limit, int *peer) {
    int fds[2];
    weft_stream_t *s = NULL;
    tcp_pair(fds);
    ASSERT_OK(weft_stream_from_fd(&s, fds[0], limit));
    ASSERT_NOT_NULL(s);
    *peer = fds[1];
    return s;
}

static void peer_send(int fd, const char *data) {
    size_t n = strlen(data);
    ASSERT_EQ_INT(send(fd, data, n, MSG_NOSIGNAL), (long long)n);
}

static void set_linger0(int fd) {
    struct linger lg = {1, 0};
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
}

static void set_buf(int fd, int opt, int size) {
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size));
}

/* Raises the soft RLIMIT_NOFILE to at least `need` (up to the hard limit), or skips. */
static void ensure_nofile(rlim_t need) {
    struct rlimit rl;
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            wt_skip("RLIMIT_NOFILE: hard limit %llu, %llu descriptors needed",
                    (unsigned long long)rl.rlim_max, (unsigned long long)need);
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            wt_skip("cannot raise RLIMIT_NOFILE to %llu: %s", (unsigned long long)rl.rlim_max,
                    strerror(errno));
    }
}

/* A listener whose accept queue is full (backlog 1, never accepted): Linux drops the SYN of any
 * further connect, which then stays in progress (the next retransmission is 1 s away). The
 * connections that filled the queue go to fillers[]. Found with a timeout scope around
 * weft_sock_connect: the first attempt that times out is the one that hit the full queue. */
static int blackhole(int *port, int fillers[8], int *nfill) {
    int l = raw_listener(1, port);
    struct sockaddr_in a = lo4(*port);
    *nfill = 0;
    for (int i = 0; i < 8; i++) {
        weft_timeout_t to;
        int rc, c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ASSERT_GE_INT(c, 0);
        ASSERT_OK(weft_timeout_begin(&to, 0.25));
        rc = weft_timeout_end(&to, weft_sock_connect(c, (struct sockaddr *)&a, sizeof a));
        if (rc == WEFT_ETIMEDOUT) {
            ASSERT_OK(weft_close(c));
            ASSERT_GT_INT(*nfill, 0);
            return l;
        }
        ASSERT_OK(rc);
        fillers[(*nfill)++] = c;
    }
    WT_FAIL("a listener with backlog 1 took 8 connections without accept()");
}

static void blackhole_close(int l, int fillers[8], int nfill) {
    for (int i = 0; i < nfill; i++)
        ASSERT_OK(weft_close(fillers[i]));
    close(l);
}

/* ---- server handlers ------------------------------------------------------------------------ */

/* What the handlers saw, for the test to compare. */
typedef struct srv_info {
    struct sockaddr_storage peer, sock; /* the latest connection's, from its handler */
    socklen_t peerlen, socklen;
    weft_stream_t *s;                   /* the latest connection's stream */
    int accepted, active, max_active, finished;
    int started_at;                     /* `started` is set when this many have started */
    weft_event_t *started, *release, *done;
    int rc[4];                          /* handler-specific outcomes */
    size_t n;
} srv_info_t;

static srv_info_t info;

static void info_reset(void) { memset(&info, 0, sizeof info); }

static void handler_enter(weft_stream_t *s) {
    info.accepted++;
    info.s = s;
    if (++info.active > info.max_active)
        info.max_active = info.active;
    ASSERT_OK(weft_stream_peername(s, &info.peer, &info.peerlen));
    ASSERT_OK(weft_stream_sockname(s, &info.sock, &info.socklen));
    if (info.started && info.accepted == info.started_at)
        weft_event_set(info.started);
}

static void handler_leave(void) {
    info.active--;
    info.finished++;
    if (info.done)
        weft_event_set(info.done);
}

/* Echoes until the end of the stream. */
static int echo_handler(weft_stream_t *s, void *arg) {
    char *buf = malloc(16384);
    ssize_t n;
    int rc = 0;
    ASSERT_NOT_NULL(buf);
    handler_enter(s);
    while ((n = weft_stream_read(s, buf, 16384)) > 0)
        if ((rc = weft_stream_write(s, buf, (size_t)n)) < 0 || (rc = weft_stream_drain(s)) < 0)
            break;
    info.rc[0] = n < 0 ? (int)n : rc;
    free(buf);
    handler_leave();
    return 0;
}

/* Waits for `release`, says "bye", ends. */
static int hold_handler(weft_stream_t *s, void *arg) {
    handler_enter(s);
    if (weft_event_wait(info.release) == 0)
        ASSERT_OK(weft_stream_write(s, "bye", 3));
    handler_leave();
    return 0;
}

/* Reads until the end of the stream; info.rc[0] gets how it ended. */
static int read_handler(weft_stream_t *s, void *arg) {
    char buf[256];
    ssize_t n;
    handler_enter(s);
    while ((n = weft_stream_read(s, buf, sizeof buf)) > 0)
        ;
    info.rc[0] = (int)n;
    handler_leave();
    return 0;
}

/* ---- echo: TCP, IPv6, Unix ----------------------------------------------------------------- */

static int echo_main(void *arg, void **res) {
    const char *host = arg;
    int family = strchr(host, ':') ? AF_INET6 : AF_INET, rc, port, nodelay = 0;
    static const size_t sizes[] = {1, 5, 1000, 65536, 300000};
    char *out = malloc(300000), *in = malloc(300000);
    struct sockaddr_storage sa, pa, ca;
    socklen_t sl, pl, cl, ol = sizeof nodelay;
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    ASSERT_NOT_NULL(out);
    ASSERT_NOT_NULL(in);
    info_reset();
    rc = weft_start_server(&srv, echo_handler, NULL, host, 0, NULL);
    if (family == AF_INET6 && (rc == WEFT_EADDRNOTAVAIL || rc == WEFT_EAFNOSUPPORT))
        wt_skip("no IPv6 loopback: %s", weft_strerror(rc));
    ASSERT_OK(rc);
    ASSERT_EQ_INT(weft_server_is_serving(srv), 1);
    ASSERT_EQ_INT(weft_server_nsockets(srv), 1);
    port = weft_server_port(srv);
    ASSERT_GT_INT(port, 0);
    ASSERT_OK(weft_server_address(srv, 0, &sa, &sl));
    ASSERT_EQ_INT(sa.ss_family, family);
    ASSERT_EQ_INT(addr_port(&sa), port);
    assert_loopback(&sa);
    ASSERT_EQ_INT(weft_server_address(srv, 1, &sa, &sl), WEFT_EINVAL);

    ASSERT_OK(weft_open_connection(&c, host, port, NULL));
    ASSERT_OK(getsockopt(weft_stream_fd(c), IPPROTO_TCP, TCP_NODELAY, &nodelay, &ol));
    ASSERT_EQ_INT(nodelay, 1);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k], got = 0;
        pat_fill(out, k * 7, n);
        memset(in, 0, n);
        /* write never suspends; what the socket does not take goes in the background while we
         * read the echo (draining first could deadlock both sides on a large message) */
        ASSERT_OK(weft_stream_write(c, out, n));
        ASSERT_OK(weft_stream_readexactly(c, in, n, &got));
        ASSERT_EQ_INT(got, n);
        ASSERT(memcmp(in, out, n) == 0);
        ASSERT_OK(weft_stream_drain(c));
        ASSERT_EQ_INT(weft_stream_write_buffer_size(c), 0);
    }
    /* Each end's names, as the other end sees them. */
    ASSERT_OK(weft_stream_peername(c, &pa, &pl));
    ASSERT_EQ_INT(pa.ss_family, family);
    ASSERT_EQ_INT(addr_port(&pa), port);
    assert_loopback(&pa);
    ASSERT_OK(weft_stream_sockname(c, &ca, &cl));
    assert_loopback(&ca);
    ASSERT_NE_INT(addr_port(&ca), port);
    ASSERT_EQ_INT(info.accepted, 1);
    assert_same_addr(&ca, &info.peer);
    assert_same_addr(&pa, &info.sock);
    /* Our end of stream ends the handler, whose stream the server then closes. */
    ASSERT_OK(weft_stream_write_eof(c));
    ASSERT_EQ_INT(weft_stream_read(c, in, 10), 0);
    ASSERT_EQ_INT(weft_stream_at_eof(c), 1);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_EQ_INT(weft_server_is_serving(srv), 0);
    ASSERT_EQ_INT(weft_server_nsockets(srv), 0);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_EQ_INT(info.finished, 1);
    ASSERT_EQ_INT(info.rc[0], 0);
    ASSERT_OK(weft_server_free(srv));
    free(out);
    free(in);
    return 0;
}

/* Round trips of 1 byte to 300 kB through weft_start_server + weft_open_connection on
 * 127.0.0.1, peername / sockname on both ends, end of stream both ways. */
TEST(echo_tcp) { net_run(echo_main, "127.0.0.1"); }

/* The same over IPv6 (::1); skipped where the machine has no IPv6 loopback. */
TEST(echo_ipv6) { net_run(echo_main, "::1"); }

static int unix_main(void *arg, void **res) {
    char path[128], msg[] = "hello over a unix socket";
    char *big = malloc(100000), *in = malloc(100000);
    struct sockaddr_storage pa, ca;
    struct sockaddr_un sun;
    socklen_t pl, cl;
    struct stat st;
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    int stale;
    info_reset();
    make_tmpdir();
    snprintf(path, sizeof path, "%s/sock", tmpdir);
    /* A stale socket file (a server that died) is replaced. */
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_OK(bind(stale, (struct sockaddr *)&sun, sizeof sun));
    close(stale);
    ASSERT_OK(stat(path, &st));
    ASSERT(S_ISSOCK(st.st_mode));

    ASSERT_OK(weft_start_unix_server(&srv, echo_handler, NULL, path, NULL));
    ASSERT_EQ_INT(weft_server_nsockets(srv), 1);
    ASSERT_OK(weft_open_unix_connection(&c, path, NULL));
    ASSERT_OK(weft_stream_write(c, msg, sizeof msg));
    ASSERT_OK(weft_stream_readexactly(c, in, sizeof msg, NULL));
    ASSERT(memcmp(in, msg, sizeof msg) == 0);
    pat_fill(big, 3, 100000);
    ASSERT_OK(weft_stream_write(c, big, 100000));
    ASSERT_OK(weft_stream_readexactly(c, in, 100000, NULL));
    ASSERT(memcmp(in, big, 100000) == 0);

    ASSERT_OK(weft_stream_peername(c, &pa, &pl));
    ASSERT_EQ_INT(pa.ss_family, AF_UNIX);
    ASSERT_EQ_STR(((struct sockaddr_un *)&pa)->sun_path, path);
    ASSERT_OK(weft_stream_sockname(c, &ca, &cl));
    ASSERT_EQ_INT(ca.ss_family, AF_UNIX);
    ASSERT_EQ_INT(cl, sizeof(sa_family_t)); /* the client's end is unnamed */
    ASSERT_EQ_INT(info.peerlen, sizeof(sa_family_t));
    assert_same_addr(&info.sock, &pa);

    ASSERT_OK(weft_stream_write_eof(c));
    ASSERT_EQ_INT(weft_stream_read(c, in, 10), 0);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_EQ_INT(stat(path, &st), -1); /* the server removes its socket file */
    ASSERT_EQ_INT(errno, ENOENT);
    ASSERT_EQ_INT(weft_open_unix_connection(&c, path, NULL), WEFT_ENOENT);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_EQ_INT(info.rc[0], 0);
    ASSERT_OK(rmdir(tmpdir));
    free(big);
    free(in);
    return 0;
}

/* weft_start_unix_server + weft_open_unix_connection: round trips, names, the socket file
 * replaced at start and removed at close. */
TEST(echo_unix) { net_run(unix_main, NULL); }

/* ---- 1,000 concurrent clients --------------------------------------------------------------- */

#define NCLIENTS 1000
static int mc_port, mc_connected, mc_done;
static weft_event_t *mc_all_connected;
static weft_semaphore_t *mc_connecting;

static int mc_client(void *arg, void **res) {
    int i = (int)(intptr_t)arg, n;
    char msg[64], back[64];
    weft_stream_t *c = NULL;
    ASSERT_OK(weft_semaphore_acquire(mc_connecting));
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", mc_port, NULL));
    ASSERT_OK(weft_semaphore_release(mc_connecting));
    if (++mc_connected == NCLIENTS)
        weft_event_set(mc_all_connected);
    ASSERT_OK(weft_event_wait(mc_all_connected)); /* all 1,000 connections open at once */
    n = snprintf(msg, sizeof msg, "client %04d: %08x\n", i, (unsigned)i * 2654435761u);
    ASSERT_OK(weft_stream_write(c, msg, (size_t)n));
    ASSERT_OK(weft_stream_readexactly(c, back, (size_t)n, NULL));
    ASSERT(memcmp(msg, back, (size_t)n) == 0);
    weft_stream_free(c);
    mc_done++;
    return 0;
}

static int many_clients_main(void *arg, void **res) {
    weft_server_options_t opts = {.backlog = 2048};
    weft_server_t *srv = NULL;
    weft_task_t **ts = calloc(NCLIENTS, sizeof *ts);
    unsigned somaxconn = 128;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (f) {
        if (fscanf(f, "%u", &somaxconn) != 1)
            somaxconn = 128;
        fclose(f);
    }
    info_reset();
    /* Connections wait in the accept queue until the loop polls: keep them within it. */
    ASSERT_OK(weft_semaphore_new(&mc_connecting, somaxconn / 2 < NCLIENTS ? somaxconn / 2 : NCLIENTS, 0));
    ASSERT_OK(weft_event_new(&mc_all_connected));
    ASSERT_OK(weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, &opts));
    mc_port = weft_server_port(srv);
    for (int i = 0; i < NCLIENTS; i++)
        ts[i] = wt_spawn_arg(mc_client, i);
    for (int i = 0; i < NCLIENTS; i++)
        ASSERT_OK(wt_join(ts[i]));
    ASSERT_EQ_INT(mc_connected, NCLIENTS);
    ASSERT_EQ_INT(mc_done, NCLIENTS);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_EQ_INT(info.accepted, NCLIENTS);
    ASSERT_EQ_INT(info.finished, NCLIENTS);
    ASSERT_EQ_INT(info.max_active, NCLIENTS); /* every handler ran at the same time */
    ASSERT_EQ_INT(info.rc[0], 0);
    ASSERT_OK(weft_server_free(srv));
    ASSERT_OK(weft_event_free(mc_all_connected));
    ASSERT_OK(weft_semaphore_free(mc_connecting));
    free(ts);
    return 0;
}

/* 1,000 clients connected at once, each sending a distinct message and reading its echo. */
TEST(many_clients_1000) {
    ensure_nofile(2 * NCLIENTS + 64);
    net_run(many_clients_main, NULL);
}

/* ---- the reader --------------------------------------------------------------------------- */

static weft_stream_t *rs;            /* the stream a reader task reads */
static int r_rc;
static size_t r_len;
static char r_data[256];

static int readuntil_task(void *arg, void **res) {
    const char *sep = arg, *d = NULL;
    size_t len = 0;
    r_rc = weft_stream_readuntil(rs, sep, strlen(sep), &d, &len);
    r_len = len;
    if (r_rc == 0 || r_rc == WEFT_EINCOMPLETE)
        memcpy(r_data, d, len < sizeof r_data ? len : sizeof r_data);
    return 0;
}

static int readexactly_task(void *arg, void **res) {
    r_len = 0;
    r_rc = weft_stream_readexactly(rs, r_data, (size_t)(intptr_t)arg, &r_len);
    return 0;
}

static int read_task(void *arg, void **res) {
    ssize_t n = weft_stream_read(rs, r_data, sizeof r_data);
    r_rc = n < 0 ? (int)n : 0;
    r_len = n > 0 ? (size_t)n : 0;
    return 0;
}

static int read_partial_main(void *arg, void **res) {
    int peer;
    char buf[128];
    rs = stream_pair(0, &peer);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 0);
    ASSERT_EQ_INT(weft_stream_read(rs, buf, 0), 0);
    peer_send(peer, "hello world");
    ASSERT_EQ_INT(weft_stream_read(rs, buf, 5), 5); /* at most n */
    ASSERT(memcmp(buf, "hello", 5) == 0);
    ASSERT_EQ_INT(weft_stream_read(rs, buf, sizeof buf), 6); /* what there is, not n */
    ASSERT(memcmp(buf, " world", 6) == 0);
    /* A read with nothing there waits for the next bytes. */
    weft_task_t *t = wt_spawn_arg(read_task, 0);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    /* One reader at a time. */
    ASSERT_EQ_INT(weft_stream_read(rs, buf, 1), WEFT_EBUSY);
    peer_send(peer, "more");
    ASSERT_OK(wt_join(t));
    ASSERT_OK(r_rc);
    ASSERT_EQ_INT(r_len, 4);
    ASSERT(memcmp(r_data, "more", 4) == 0);
    /* End of stream: 0, for good. */
    ASSERT_OK(shutdown(peer, SHUT_WR));
    ASSERT_EQ_INT(weft_stream_read(rs, buf, sizeof buf), 0);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 1);
    ASSERT_EQ_INT(weft_stream_read(rs, buf, sizeof buf), 0);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* read(n): up to n bytes, what is there without waiting for n, 0 at the end; one reader. */
TEST(reader_read_partial) { net_run(read_partial_main, NULL); }

static int peer_sendall_task(void *arg, void **res) {
    intptr_t *a = arg; /* fd, length, close after */
    char *buf = malloc((size_t)a[1]);
    size_t sent = 0;
    pat_fill(buf, 0, (size_t)a[1]);
    ASSERT_OK(weft_sock_sendall((int)a[0], buf, (size_t)a[1], &sent));
    ASSERT_EQ_INT(sent, a[1]);
    if (a[2])
        ASSERT_OK(shutdown((int)a[0], SHUT_WR));
    free(buf);
    return 0;
}

static int read_all_main(void *arg, void **res) {
    int peer;
    char *data = NULL;
    size_t len = 0;
    intptr_t a[3];
    rs = stream_pair(0, &peer);
    a[0] = peer, a[1] = 3000000 + 17, a[2] = 1;
    weft_task_t *t = wt_spawn_arg(peer_sendall_task, (intptr_t)a);
    ASSERT_OK(weft_stream_read_all(rs, &data, &len));
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(len, 3000017);
    ASSERT_EQ_INT(pat_check(data, 0, len), len);
    ASSERT_EQ_INT(data[len], 0);
    free(data);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 1);
    /* Again at the end: nothing. */
    ASSERT_OK(weft_stream_read_all(rs, &data, &len));
    ASSERT_EQ_INT(len, 0);
    ASSERT_EQ_INT(data[0], 0);
    free(data);
    weft_stream_free(rs);
    ASSERT_OK(weft_close(peer));
    return 0;
}

/* read_all: 3 MB, sent while it reads, everything up to the end of the stream. */
TEST(reader_read_all_until_eof) { net_run(read_all_main, NULL); }

static int readexactly_main(void *arg, void **res) {
    int peer;
    char buf[16];
    size_t got = 99;
    weft_task_t *t;
    rs = stream_pair(0, &peer);
    ASSERT_OK(weft_stream_readexactly(rs, buf, 0, &got));
    ASSERT_EQ_INT(got, 0);
    /* 10 bytes in three pieces. */
    t = wt_spawn_arg(readexactly_task, 10);
    peer_send(peer, "abc");
    WAIT_UNTIL(weft_stream_buffered(rs) == 3);
    peer_send(peer, "defg");
    WAIT_UNTIL(weft_stream_buffered(rs) == 7);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    peer_send(peer, "hijKLM");
    ASSERT_OK(wt_join(t));
    ASSERT_OK(r_rc);
    ASSERT_EQ_INT(r_len, 10);
    ASSERT(memcmp(r_data, "abcdefghij", 10) == 0);
    ASSERT_EQ_INT(weft_stream_buffered(rs), 3); /* "KLM" stays for the next call */
    /* The end comes first: WEFT_EINCOMPLETE with what did arrive. */
    peer_send(peer, "xyz1");
    ASSERT_OK(shutdown(peer, SHUT_WR));
    memset(buf, 0, sizeof buf);
    ASSERT_EQ_INT(weft_stream_readexactly(rs, buf, 10, &got), WEFT_EINCOMPLETE);
    ASSERT_EQ_INT(got, 7);
    ASSERT(memcmp(buf, "KLMxyz1", 7) == 0);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 1);
    ASSERT_EQ_INT(weft_stream_readexactly(rs, buf, 1, &got), WEFT_EINCOMPLETE);
    ASSERT_EQ_INT(got, 0);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* readexactly: waits across pieces; at the end of the stream WEFT_EINCOMPLETE with the bytes
 * that came and their count. */
TEST(reader_readexactly) { net_run(readexactly_main, NULL); }

/* Sends `chunks` one at a time to a task blocked in readuntil(sep), each only once the stream
 * has buffered the previous one, so that the separator is split across receives. */
static void readuntil_split(int peer, const char *sep, const char *const *chunks, int n) {
    size_t sent = 0;
    weft_task_t *t = wt_spawn_arg(readuntil_task, (intptr_t)sep);
    for (int i = 0; i < n - 1; i++) {
        peer_send(peer, chunks[i]);
        sent += strlen(chunks[i]);
        WAIT_UNTIL(weft_stream_buffered(rs) == sent);
        ASSERT_EQ_INT(weft_future_done(t), 0);
    }
    peer_send(peer, chunks[n - 1]);
    ASSERT_OK(wt_join(t));
}

static int readuntil_split_main(void *arg, void **res) {
    static const char *const http[] = {"GET / HTTP/1.0\r", "\n\r", "\nbody"};
    static const char *const end[] = {"xxE", "N", "Dtail"};
    int peer;
    char buf[64];
    rs = stream_pair(0, &peer);
    readuntil_split(peer, "\r\n\r\n", http, 3);
    ASSERT_OK(r_rc);
    ASSERT_EQ_INT(r_len, 18);
    ASSERT(memcmp(r_data, "GET / HTTP/1.0\r\n\r\n", 18) == 0);
    ASSERT_EQ_INT(weft_stream_readexactly(rs, buf, 4, NULL), 0);
    ASSERT(memcmp(buf, "body", 4) == 0);
    readuntil_split(peer, "END", end, 3);
    ASSERT_OK(r_rc);
    ASSERT_EQ_INT(r_len, 5);
    ASSERT(memcmp(r_data, "xxEND", 5) == 0);
    /* The end of the stream first: WEFT_EINCOMPLETE, the partial chunk consumed. */
    ASSERT_OK(shutdown(peer, SHUT_WR));
    readuntil_task("\n", NULL);
    ASSERT_EQ_INT(r_rc, WEFT_EINCOMPLETE);
    ASSERT_EQ_INT(r_len, 4);
    ASSERT(memcmp(r_data, "tail", 4) == 0);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 1);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* readuntil with multi-byte separators split over two and three receives; at the end of the
 * stream, WEFT_EINCOMPLETE with the partial chunk. */
TEST(reader_readuntil_split_separator) { net_run(readuntil_split_main, NULL); }

static int readuntil_limit_main(void *arg, void **res) {
    int peer;
    char *data = NULL, buf[64];
    const char *d;
    size_t len = 0;
    rs = stream_pair(16, &peer);
    peer_send(peer, "short\n");
    ASSERT_OK(weft_stream_readuntil(rs, "\n", 1, &d, &len));
    ASSERT_EQ_INT(len, 6);
    ASSERT(memcmp(d, "short\n", 6) == 0);
    /* asyncio's boundary: a separator that starts exactly at the limit is accepted (16 bytes,
     * then the separator), one byte later is over (below). */
    peer_send(peer, "0123456789abcdef\r\n");
    ASSERT_OK(weft_stream_readuntil(rs, "\r\n", 2, &d, &len));
    ASSERT_EQ_INT(len, 18);
    peer_send(peer, "0123456789abcdefg\n");
    ASSERT_EQ_INT(weft_stream_readuntil(rs, "\n", 1, &d, &len), WEFT_ELIMIT);
    ASSERT_EQ_INT(weft_stream_readexactly(rs, buf, 18, NULL), 0);
    /* No separator within the limit: WEFT_ELIMIT, and the bytes stay. */
    peer_send(peer, "0123456789abcdefghij");
    ASSERT_EQ_INT(weft_stream_readuntil(rs, "\n", 1, &d, &len), WEFT_ELIMIT);
    ASSERT_EQ_INT(len, 20);
    ASSERT_EQ_INT(weft_stream_buffered(rs), 20);
    ASSERT_EQ_INT(weft_stream_readexactly(rs, buf, 20, NULL), 0);
    ASSERT(memcmp(buf, "0123456789abcdefghij", 20) == 0);
    /* A separator found beyond the limit: the same. */
    peer_send(peer, "0123456789ABCDEFGHIJ\nrest");
    ASSERT_EQ_INT(weft_stream_readuntil(rs, "\n", 1, &d, &len), WEFT_ELIMIT);
    ASSERT_EQ_INT(len, 25);
    /* A later read gets it all. */
    ASSERT_OK(shutdown(peer, SHUT_WR));
    ASSERT_OK(weft_stream_read_all(rs, &data, &len));
    ASSERT_EQ_INT(len, 25);
    ASSERT_EQ_STR(data, "0123456789ABCDEFGHIJ\nrest");
    free(data);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* readuntil over the stream's limit (16 here): WEFT_ELIMIT with the data left in the buffer,
 * whether the separator is missing or beyond the limit. */
TEST(reader_readuntil_limit_keeps_data) { net_run(readuntil_limit_main, NULL); }

static int readline_eof_main(void *arg, void **res) {
    int peer;
    const char *d;
    size_t len = 99;
    rs = stream_pair(0, &peer);
    peer_send(peer, "line one\nparti");
    ASSERT_OK(shutdown(peer, SHUT_WR));
    ASSERT_OK(weft_stream_readline(rs, &d, &len));
    ASSERT_EQ_INT(len, 9);
    ASSERT(memcmp(d, "line one\n", 9) == 0);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 0); /* "parti" is still to be read */
    ASSERT_OK(weft_stream_readline(rs, &d, &len));
    ASSERT_EQ_INT(len, 5);
    ASSERT(memcmp(d, "parti", 5) == 0);
    ASSERT_EQ_INT(weft_stream_at_eof(rs), 1);
    ASSERT_OK(weft_stream_readline(rs, &d, &len));
    ASSERT_EQ_INT(len, 0);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* readline at the end of the stream: the partial line with 0, then 0 with length 0. */
TEST(reader_readline_eof_partial) { net_run(readline_eof_main, NULL); }

static int readline_limit_main(void *arg, void **res) {
    int peer;
    const char *d;
    size_t len;
    char line[64];
    rs = stream_pair(16, &peer);
    /* One send: the whole over-long line is in the buffer when readline looks. */
    memset(line, 'x', 30);
    strcpy(line + 30, "\nnext\n");
    peer_send(peer, line);
    ASSERT_EQ_INT(weft_stream_readline(rs, &d, &len), WEFT_ELIMIT);
    ASSERT_OK(weft_stream_readline(rs, &d, &len)); /* the long line was discarded */
    ASSERT_EQ_INT(len, 5);
    ASSERT(memcmp(d, "next\n", 5) == 0);
    ASSERT_EQ_INT(weft_stream_buffered(rs), 0);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* readline over the limit: WEFT_ELIMIT, the line discarded, the next line intact. */
TEST(reader_readline_over_limit_discards) { net_run(readline_limit_main, NULL); }

/* ---- the writer: backpressure -------------------------------------------------------------- */

typedef struct bp {
    weft_event_t *started, *go, *done;
    size_t received, mismatch;
    int read_rc;
} bp_t;
static bp_t bp;

/* Reads nothing until `go`, then everything to the end, checking each byte. */
static int slow_handler(weft_stream_t *s, void *arg) {
    char *buf = malloc(65536);
    ssize_t n;
    set_buf(weft_stream_fd(s), SO_RCVBUF, 65536); /* a bounded kernel buffer */
    weft_event_set(bp.started);
    ASSERT_OK(weft_event_wait(bp.go));
    while ((n = weft_stream_read(s, buf, 65536)) > 0) {
        size_t at = pat_check(buf, bp.received, (size_t)n);
        if (at < (size_t)n && bp.mismatch == SIZE_MAX)
            bp.mismatch = bp.received + at;
        bp.received += (size_t)n;
    }
    bp.read_rc = (int)n;
    free(buf);
    weft_event_set(bp.done);
    return 0;
}

static int drain_task(void *arg, void **res) { return weft_stream_drain(arg); }

/* The end of a backpressure test: the slow reader got all `total` bytes intact; the server
 * and the events go. */
static void bp_finish(weft_server_t *srv, size_t total) {
    ASSERT_OK(weft_event_wait(bp.done));
    ASSERT_EQ_INT(bp.read_rc, 0);
    ASSERT_EQ_INT(bp.received, total);
    ASSERT_EQ_INT(bp.mismatch, SIZE_MAX);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_OK(weft_event_free(bp.started));
    ASSERT_OK(weft_event_free(bp.go));
    ASSERT_OK(weft_event_free(bp.done));
}

static int backpressure_main(void *arg, void **res) {
    const int custom = arg != NULL;
    const size_t high = custom ? 256 * 1024 : WEFT_WRITE_HIGH_WATER;
    const size_t low = custom ? 32 * 1024 : WEFT_WRITE_LOW_WATER;
    const size_t chunk = 50000, total = (size_t)10 * 1024 * 1024 + 12345;
    char *buf = malloc(chunk);
    size_t off = 0, w, maxw = 0, released_at = 0;
    int paused_drains = 0, released = 0, rc;
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    memset(&bp, 0, sizeof bp);
    bp.mismatch = SIZE_MAX;
    ASSERT_OK(weft_event_new(&bp.started));
    ASSERT_OK(weft_event_new(&bp.go));
    ASSERT_OK(weft_event_new(&bp.done));
    ASSERT_OK(weft_start_server(&srv, slow_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", weft_server_port(srv), NULL));
    set_buf(weft_stream_fd(c), SO_SNDBUF, 65536);
    if (custom) {
        ASSERT_EQ_INT(weft_stream_set_write_buffer_limits(c, 10, 20), WEFT_EINVAL);
        ASSERT_OK(weft_stream_set_write_buffer_limits(c, high, low));
    }
    ASSERT_OK(weft_event_wait(bp.started)); /* its receive buffer is set: nothing moves now */
    while (off < total) {
        size_t n = total - off < chunk ? total - off : chunk;
        int paused;
        pat_fill(buf, off, n);
        ASSERT_OK(weft_stream_write(c, buf, n));
        off += n;
        w = weft_stream_write_buffer_size(c);
        ASSERT_LE_INT(w, high + n); /* it was at most `high` before this write */
        if (w > maxw)
            maxw = w;
        paused = w > high;
        if (!released) {
            /* The reader reads nothing yet: once the kernel's buffers are full, a drain that
             * has to wait cannot end. Time-boxed, that tells when they are. */
            weft_timeout_t to;
            ASSERT_OK(weft_timeout_begin(&to, 0.2));
            rc = weft_timeout_end(&to, weft_stream_drain(c));
            if (rc == WEFT_ETIMEDOUT) {
                ASSERT(paused);
                w = weft_stream_write_buffer_size(c);
                ASSERT_GT_INT(w, low); /* the timed-out drain lost nothing */
                if (custom) {
                    /* drain wakes at the low-water mark, not when the buffer is empty: lift
                     * the mark to what is buffered and a blocked drain returns. */
                    weft_task_t *t = wt_spawn_arg(drain_task, (intptr_t)c);
                    wt_yield_n(5);
                    ASSERT_EQ_INT(weft_future_done(t), 0);
                    ASSERT_OK(weft_stream_set_write_buffer_limits(c, 0, w));
                    ASSERT_OK(wt_join(t));
                    ASSERT_GT_INT(weft_stream_write_buffer_size(c), 0); /* not emptied */
                    ASSERT_LE_INT(weft_stream_write_buffer_size(c), w);
                    ASSERT_OK(weft_stream_set_write_buffer_limits(c, high, low));
                }
                released = 1;
                released_at = off;
                weft_event_set(bp.go);
                rc = weft_stream_drain(c);
            }
            ASSERT_OK(rc);
        } else {
            ASSERT_OK(weft_stream_drain(c));
        }
        w = weft_stream_write_buffer_size(c);
        if (paused) {
            ASSERT_LE_INT(w, low); /* drain returned at or below the low-water mark */
            paused_drains++;
        } else {
            ASSERT_LE_INT(w, high);
        }
    }
    ASSERT(released);
    ASSERT_LT_INT(released_at, total / 2); /* the writer was held back long before the end */
    ASSERT_GT_INT(paused_drains, 2);
    ASSERT_GT_INT(maxw, high);
    weft_stream_free(c); /* the rest goes in the background, then the end of stream */
    bp_finish(srv, total);
    free(buf);
    return 0;
}

/* 10 MB in a write + drain loop to a reader that reads nothing for a while: the buffer never
 * exceeds high water + one write, drain returns at or below low water, nothing is lost. */
TEST(writer_backpressure_default_limits) { net_run(backpressure_main, NULL); }

/* The same with set_write_buffer_limits(256 kB, 32 kB), and a drain woken by lifting the
 * low-water mark over what is buffered. */
TEST(writer_backpressure_custom_limits) { net_run(backpressure_main, (void *)1); }

/* ---- half-close ---------------------------------------------------------------------------- */

static int halfclose_handler(weft_stream_t *s, void *arg) {
    char *data = NULL, reply[96];
    size_t len = 0;
    int n;
    handler_enter(s);
    info.rc[0] = weft_stream_read_all(s, &data, &len);
    if (info.rc[0] == 0) {
        n = snprintf(reply, sizeof reply, "got %zu bytes: %s", len, data);
        info.rc[1] = weft_stream_write(s, reply, (size_t)n);
        info.rc[2] = weft_stream_drain(s);
    }
    free(data);
    handler_leave();
    return 0;
}

static int halfclose_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    char *data = NULL;
    size_t len = 0;
    info_reset();
    ASSERT_OK(weft_start_server(&srv, halfclose_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", weft_server_port(srv), NULL));
    ASSERT_EQ_INT(weft_stream_can_write_eof(c), 1);
    ASSERT_OK(weft_stream_write(c, "request body", 12));
    ASSERT_OK(weft_stream_write_eof(c));
    ASSERT_EQ_INT(weft_stream_write(c, "late", 4), WEFT_EPIPE);
    ASSERT_OK(weft_stream_write_eof(c)); /* again: nothing to do */
    ASSERT_OK(weft_stream_read_all(c, &data, &len));
    ASSERT_EQ_STR(data, "got 12 bytes: request body");
    ASSERT_EQ_INT(len, strlen("got 12 bytes: request body"));
    free(data);
    ASSERT_EQ_INT(info.rc[0], 0);
    ASSERT_EQ_INT(info.rc[1], 0);
    ASSERT_EQ_INT(info.rc[2], 0);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    return 0;
}

/* The client's write_eof; the server reads to the end, then still writes its reply. */
TEST(half_close) { net_run(halfclose_main, NULL); }

/* ---- resets and SIGPIPE ---------------------------------------------------------------------- */

/* Blocks in readexactly(100) with 10 bytes in, then tries the other calls. */
static int reset_read_handler(weft_stream_t *s, void *arg) {
    char buf[100];
    handler_enter(s);
    info.rc[0] = weft_stream_readexactly(s, buf, sizeof buf, &info.n);
    info.n = weft_stream_buffered(s);
    /* The bytes that came before the reset are still delivered, then the error. */
    ASSERT_EQ_INT(weft_stream_read(s, buf, sizeof buf), 10);
    ASSERT(memcmp(buf, "0123456789", 10) == 0);
    info.rc[1] = (int)weft_stream_read(s, buf, sizeof buf);
    info.rc[2] = weft_stream_write(s, "x", 1);
    info.rc[3] = weft_stream_drain(s);
    handler_leave();
    return 0;
}

static int reset_read_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    char b;
    signal(SIGPIPE, SIG_DFL);
    info_reset();
    ASSERT_OK(weft_event_new(&info.done));
    ASSERT_OK(weft_start_server(&srv, reset_read_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", weft_server_port(srv), NULL));
    ASSERT_OK(weft_stream_write(c, "0123456789", 10));
    WAIT_UNTIL(info.s && weft_stream_buffered(info.s) == 10);
    set_linger0(weft_stream_fd(c));
    weft_stream_abort(c); /* RST */
    ASSERT_OK(weft_event_wait(info.done));
    ASSERT_EQ_INT(info.rc[0], WEFT_ECONNRESET);
    ASSERT_EQ_INT(info.n, 10);                  /* readexactly's bytes stayed buffered */
    ASSERT_EQ_INT(info.rc[1], WEFT_ECONNRESET); /* sticky */
    ASSERT(info.rc[2] == WEFT_EPIPE || info.rc[2] == WEFT_ECONNRESET);
    ASSERT_EQ_INT(info.rc[3], info.rc[2]);
    /* Our side, aborted: end of stream for reads, EPIPE for writes. */
    ASSERT_EQ_INT(weft_stream_is_closing(c), 1);
    ASSERT_EQ_INT(weft_stream_fd(c), -1);
    ASSERT_EQ_INT(weft_stream_read(c, &b, 1), 0);
    ASSERT_EQ_INT(weft_stream_write(c, "x", 1), WEFT_EPIPE);
    ASSERT_EQ_INT(weft_stream_drain(c), WEFT_EPIPE);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_OK(weft_event_free(info.done));
    return 0;
}

/* The peer resets (SO_LINGER {1, 0} + close) while the handler waits in readexactly: it returns
 * ECONNRESET, the 10 bytes received before stay readable, then every read returns ECONNRESET;
 * write and drain a negative code. */
TEST(peer_reset_while_reading) { net_run(reset_read_main, NULL); }

/* Writes 64 kB chunks with drain until something fails (bounded). */
static int flood_handler(weft_stream_t *s, void *arg) {
    char *buf = malloc(65536);
    size_t off = 0;
    int rc = 0;
    handler_enter(s);
    for (int i = 0; i < 100000 && rc == 0; i++) {
        pat_fill(buf, off, 65536);
        if ((rc = weft_stream_write(s, buf, 65536)) == 0) {
            off += 65536;
            rc = weft_stream_drain(s);
        }
    }
    info.rc[0] = rc;
    info.n = off;
    free(buf);
    handler_leave();
    return 0;
}

static int reset_write_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    char *buf = malloc(200000);
    signal(SIGPIPE, SIG_DFL);
    info_reset();
    ASSERT_OK(weft_event_new(&info.done));
    ASSERT_OK(weft_start_server(&srv, flood_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", weft_server_port(srv), NULL));
    ASSERT_OK(weft_stream_readexactly(c, buf, 200000, NULL));
    ASSERT_EQ_INT(pat_check(buf, 0, 200000), 200000);
    set_linger0(weft_stream_fd(c));
    weft_stream_abort(c);
    ASSERT_OK(weft_event_wait(info.done));
    ASSERT(info.rc[0] == WEFT_ECONNRESET || info.rc[0] == WEFT_EPIPE);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_OK(weft_event_free(info.done));
    free(buf);
    return 0;
}

/* The peer resets mid-transfer while the handler writes and drains: a negative code, no
 * crash, no SIGPIPE. */
TEST(peer_reset_while_writing) { net_run(reset_write_main, NULL); }

/* A pair whose other end has been closed normally: its first write is answered with an RST. */
static int closed_peer_pair(void) {
    int fds[2];
    tcp_pair(fds);
    close(fds[1]);
    return fds[0];
}

static int sigpipe_main(void *arg, void **res) {
    char *buf = calloc(1, 4096);
    weft_stream_t *s = NULL;
    char path[128];
    off_t off;
    int rc = 0, fd, file, i;
    size_t sent;
    ssize_t r;
    signal(SIGPIPE, SIG_DFL); /* as a program that did not ignore it: SIGPIPE would kill us */

    /* A stream. The bounded retry waits for the RST, which no readiness announces here. */
    ASSERT_OK(weft_stream_from_fd(&s, closed_peer_pair(), 0));
    for (i = 0; i < 400 && rc == 0; i++)
        if ((rc = weft_stream_write(s, buf, 4096)) == 0 && (rc = weft_stream_drain(s)) == 0)
            ASSERT_OK(weft_sleep(0.005));
    ASSERT(rc == WEFT_EPIPE || rc == WEFT_ECONNRESET);
    ASSERT_EQ_INT(weft_stream_write(s, buf, 1), rc); /* sticky */
    weft_stream_free(s);

    /* weft_sock_sendall. */
    fd = closed_peer_pair();
    for (rc = 0, i = 0; i < 400 && rc == 0; i++)
        if ((rc = weft_sock_sendall(fd, buf, 4096, &sent)) == 0)
            ASSERT_OK(weft_sleep(0.005));
    ASSERT(rc == WEFT_EPIPE || rc == WEFT_ECONNRESET);
    ASSERT_EQ_INT(weft_sock_sendall(fd, buf, 4096, &sent), WEFT_EPIPE);
    ASSERT_EQ_INT(sent, 0);
    ASSERT_OK(weft_close(fd));

    /* weft_sock_sendfile: sendfile(2) has no MSG_NOSIGNAL. */
    make_tmpdir();
    snprintf(path, sizeof path, "%s/file", tmpdir);
    file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE_INT(file, 0);
    ASSERT_EQ_INT(write(file, buf, 4096), 4096);
    fd = closed_peer_pair();
    for (r = 1, i = 0; i < 400 && r > 0; i++) {
        off = 0;
        if ((r = weft_sock_sendfile(fd, file, &off, 0)) > 0)
            ASSERT_OK(weft_sleep(0.005));
    }
    ASSERT(r == WEFT_EPIPE || r == WEFT_ECONNRESET);
    off = 0;
    ASSERT_EQ_INT(weft_sock_sendfile(fd, file, &off, 0), WEFT_EPIPE);
    ASSERT_EQ_INT(off, 0);
    ASSERT_OK(weft_close(fd));
    close(file);
    unlink(path);
    rmdir(tmpdir);
    free(buf);
    return 0;
}

/* Writing to a peer that closed, through a stream, sendall and sendfile, with SIGPIPE's default
 * action: error codes, never death by SIGPIPE. */
TEST(sigpipe_never_kills) { net_run(sigpipe_main, NULL); }

/* ---- refused connections --------------------------------------------------------------------- */

static int refused_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    struct sockaddr_in a;
    struct sockaddr_un sun;
    char path[128];
    int port, fd, before = count_fds();
    ASSERT_OK(weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL));
    port = weft_server_port(srv);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_EQ_INT(weft_open_connection(&c, "127.0.0.1", port, NULL), WEFT_ECONNREFUSED);
    ASSERT_NULL(c);
    a = lo4(port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_EQ_INT(weft_sock_connect(fd, (struct sockaddr *)&a, sizeof a), WEFT_ECONNREFUSED);
    ASSERT_OK(weft_close(fd));
    /* A Unix socket file nobody listens on. */
    make_tmpdir();
    snprintf(path, sizeof path, "%s/sock", tmpdir);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_OK(bind(fd, (struct sockaddr *)&sun, sizeof sun));
    ASSERT_EQ_INT(weft_open_unix_connection(&c, path, NULL), WEFT_ECONNREFUSED);
    close(fd);
    unlink(path);
    rmdir(tmpdir);
    ASSERT_EQ_INT(count_fds(), before); /* failed attempts leave no socket behind */
    return 0;
}

/* Connecting to a port whose server just closed: WEFT_ECONNREFUSED (open_connection and
 * sock_connect); a Unix socket without a listener too. */
TEST(connection_refused) { net_run(refused_main, NULL); }

/* ---- cancellation and timeouts ------------------------------------------------------------ */

static int bh_port;

static int connect_task(void *arg, void **res) {
    weft_stream_t *s = NULL;
    int rc = weft_open_connection(&s, "127.0.0.1", bh_port, NULL);
    ASSERT_NULL(s);
    return rc;
}

static int cancel_connect_main(void *arg, void **res) {
    int fillers[8], nfill, l, before;
    weft_task_t *t;
    double t0;
    weft_timeout_t to;
    weft_stream_t *s = NULL;
    l = blackhole(&bh_port, fillers, &nfill);
    before = count_fds();
    /* Cancelled while the handshake is in progress. */
    t = wt_spawn_arg(connect_task, 0);
    WAIT_UNTIL(count_fds() == before + 1); /* its socket exists: it waits in connect */
    wt_yield_n(2);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    ASSERT_EQ_INT(count_fds(), before); /* the attempt's socket is closed */
    /* A timeout scope around the connect. */
    t0 = wt_now();
    ASSERT_OK(weft_timeout_begin(&to, 0.1));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_open_connection(&s, "127.0.0.1", bh_port, NULL)),
                  WEFT_ETIMEDOUT);
    ASSERT_NULL(s);
    ASSERT_GE_INT((wt_now() - t0) * 1000, 99);
    ASSERT_EQ_INT(count_fds(), before);
    blackhole_close(l, fillers, nfill);
    return 0;
}

/* open_connection to a listener whose accept queue is full (no answer): cancelled, and in a
 * timeout scope (WEFT_ETIMEDOUT); neither leaves a socket open. */
TEST(cancel_during_connect) { net_run(cancel_connect_main, NULL); }

static int he_connect_task(void *arg, void **res) {
    weft_connect_options_t o = {.happy_eyeballs_delay = 0.25};
    weft_stream_t *s = NULL;
    int rc = weft_open_connection(&s, "127.0.0.1", bh_port, &o);
    ASSERT_NULL(s);
    return rc;
}

static int happy_eyeballs_main(void *arg, void **res) {
    weft_connect_options_t o = {.happy_eyeballs_delay = 0.25};
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    weft_task_t *t;
    char buf[8];
    int port, fillers[8], nfill, l, before;
    info_reset();
    ASSERT_OK(weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL));
    port = weft_server_port(srv);
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", port, &o));
    ASSERT_OK(weft_stream_write(c, "he", 2));
    ASSERT_OK(weft_stream_readexactly(c, buf, 2, NULL));
    weft_stream_free(c);
    /* "localhost": both families, whichever comes first; only 127.0.0.1 listens. */
    ASSERT_OK(weft_open_connection(&c, "localhost", port, &o));
    ASSERT_OK(weft_stream_write(c, "lh", 2));
    ASSERT_OK(weft_stream_readexactly(c, buf, 2, NULL));
    ASSERT(memcmp(buf, "lh", 2) == 0);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_EQ_INT(weft_open_connection(&c, "127.0.0.1", port, &o), WEFT_ECONNREFUSED);
    /* Cancelled while its attempt waits: no socket left. */
    l = blackhole(&bh_port, fillers, &nfill);
    before = count_fds();
    t = wt_spawn_arg(he_connect_task, 0);
    WAIT_UNTIL(count_fds() == before + 1);
    wt_yield_n(2);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    weft_cancel(t, NULL);
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    ASSERT_EQ_INT(count_fds(), before);
    blackhole_close(l, fillers, nfill);
    return 0;
}

/* open_connection with Happy Eyeballs (happy_eyeballs_delay): connects (127.0.0.1, and
 * "localhost" with both families), refused, cancelled without leaving a socket. */
TEST(happy_eyeballs_connect) { net_run(happy_eyeballs_main, NULL); }

static int read_all_task(void *arg, void **res) {
    char *d = NULL;
    size_t len = 0;
    r_rc = weft_stream_read_all(rs, &d, &len);
    free(d);
    return 0;
}

static int cancel_read_main(void *arg, void **res) {
    int peer;
    char buf[64], *all = NULL;
    const char *d;
    size_t len, got;
    weft_task_t *t;
    rs = stream_pair(0, &peer);

    /* read(): cancelled while waiting; bytes sent afterwards all reach the next read. */
    t = wt_spawn_arg(read_task, 0);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    weft_cancel(t, NULL);
    ASSERT_OK(wt_join(t)); /* the task returns 0 after recording */
    ASSERT_EQ_INT(r_rc, WEFT_ECANCELED);
    peer_send(peer, "after cancel");
    ASSERT_EQ_INT(weft_stream_read(rs, buf, sizeof buf), 12);
    ASSERT(memcmp(buf, "after cancel", 12) == 0);

    /* Cancelled in the same iteration as its bytes arrive: they stay for the next read. */
    t = wt_spawn_arg(read_task, 0);
    wt_yield_n(3);
    peer_send(peer, "racing");
    weft_cancel(t, NULL);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(r_rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_stream_read(rs, buf, sizeof buf), 6);
    ASSERT(memcmp(buf, "racing", 6) == 0);

    /* readexactly with 3 of 10 bytes buffered. */
    t = wt_spawn_arg(readexactly_task, 10);
    peer_send(peer, "abc");
    WAIT_UNTIL(weft_stream_buffered(rs) == 3);
    weft_cancel(t, NULL);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(r_rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_stream_buffered(rs), 3);
    peer_send(peer, "defghij");
    ASSERT_OK(weft_stream_readexactly(rs, buf, 10, &got));
    ASSERT(memcmp(buf, "abcdefghij", 10) == 0);

    /* readuntil with a partial line buffered. */
    t = wt_spawn_arg(readuntil_task, (intptr_t)"\n");
    peer_send(peer, "partial ");
    WAIT_UNTIL(weft_stream_buffered(rs) == 8);
    weft_cancel(t, NULL);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(r_rc, WEFT_ECANCELED);
    peer_send(peer, "line\n");
    ASSERT_OK(weft_stream_readuntil(rs, "\n", 1, &d, &len));
    ASSERT_EQ_INT(len, 13);
    ASSERT(memcmp(d, "partial line\n", 13) == 0);

    /* read_all with 1000 bytes buffered. */
    t = wt_spawn_arg(read_all_task, 0);
    pat_fill(buf, 0, 50);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ_INT(send(peer, buf, 50, 0), 50);
    WAIT_UNTIL(weft_stream_buffered(rs) == 1000);
    weft_cancel(t, NULL);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(r_rc, WEFT_ECANCELED);
    peer_send(peer, "end");
    ASSERT_OK(shutdown(peer, SHUT_WR));
    ASSERT_OK(weft_stream_read_all(rs, &all, &len));
    ASSERT_EQ_INT(len, 1003);
    ASSERT_EQ_INT(pat_check(all, 0, 50), 50);
    ASSERT(memcmp(all + 1000, "end", 3) == 0);
    free(all);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* Cancelling read, readexactly, readuntil and read_all never loses a byte: what was buffered
 * and what comes after the cancellation is all there for the next read. */
TEST(cancel_during_read_loses_nothing) { net_run(cancel_read_main, NULL); }

static int cancel_drain_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    char *buf = malloc(65536);
    size_t off = 0, w;
    weft_task_t *t;
    int rc = 0;
    memset(&bp, 0, sizeof bp);
    bp.mismatch = SIZE_MAX;
    ASSERT_OK(weft_event_new(&bp.started));
    ASSERT_OK(weft_event_new(&bp.go));
    ASSERT_OK(weft_event_new(&bp.done));
    ASSERT_OK(weft_start_server(&srv, slow_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", weft_server_port(srv), NULL));
    set_buf(weft_stream_fd(c), SO_SNDBUF, 65536);
    ASSERT_OK(weft_event_wait(bp.started));
    /* Fill the kernel's buffers: until a (time-boxed) drain cannot end. */
    while (rc == 0) {
        weft_timeout_t to;
        pat_fill(buf, off, 65536);
        ASSERT_OK(weft_stream_write(c, buf, 65536));
        off += 65536;
        ASSERT_LT_INT(off, 8 << 20);
        ASSERT_OK(weft_timeout_begin(&to, 0.2));
        rc = weft_timeout_end(&to, weft_stream_drain(c));
        ASSERT(rc == 0 || rc == WEFT_ETIMEDOUT);
    }
    /* A drain that waits, cancelled: the buffer stays as it was. */
    w = weft_stream_write_buffer_size(c);
    t = wt_spawn_arg(drain_task, (intptr_t)c);
    wt_yield_n(5);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    weft_cancel(t, NULL);
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    ASSERT_GT_INT(weft_stream_write_buffer_size(c), 0); /* still buffered (checked at the end) */
    ASSERT_LE_INT(weft_stream_write_buffer_size(c), w);
    /* Once the reader reads, everything arrives. */
    weft_event_set(bp.go);
    ASSERT_OK(weft_stream_drain(c));
    weft_stream_free(c);
    bp_finish(srv, off);
    free(buf);
    return 0;
}

/* A drain blocked on a peer that does not read, cancelled (and time-boxed): nothing buffered is
 * lost, every byte arrives once the peer reads. */
TEST(cancel_during_drain) { net_run(cancel_drain_main, NULL); }

static int timeout_read_main(void *arg, void **res) {
    int peer;
    char buf[64];
    const char *d;
    size_t len;
    weft_timeout_t to;
    double t0 = wt_now();
    rs = stream_pair(0, &peer);
    ASSERT_OK(weft_timeout_begin(&to, 0.05));
    ASSERT_EQ_INT(weft_timeout_end(&to, (int)weft_stream_read(rs, buf, sizeof buf)),
                  WEFT_ETIMEDOUT);
    ASSERT_GE_INT((wt_now() - t0) * 1000, 49);
    ASSERT_EQ_INT(weft_task_cancelling(weft_current_task()), 0);
    /* Still usable. */
    peer_send(peer, "ok");
    ASSERT_EQ_INT(weft_stream_read(rs, buf, sizeof buf), 2);
    ASSERT(memcmp(buf, "ok", 2) == 0);
    /* readline with a partial line in: times out, keeps it. */
    peer_send(peer, "par");
    ASSERT_OK(weft_timeout_begin(&to, 0.05));
    ASSERT_EQ_INT(weft_timeout_end(&to, weft_stream_readline(rs, &d, &len)), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_stream_buffered(rs), 3);
    peer_send(peer, "tial\n");
    ASSERT_OK(weft_stream_readline(rs, &d, &len));
    ASSERT_EQ_INT(len, 8);
    ASSERT(memcmp(d, "partial\n", 8) == 0);
    weft_stream_free(rs);
    close(peer);
    return 0;
}

/* A timeout scope around read and readline: WEFT_ETIMEDOUT, the stream still usable, nothing
 * lost. */
TEST(timeout_read_then_usable) { net_run(timeout_read_main, NULL); }

/* ---- servers: close, wait_closed, serve_forever, close_clients, free ------------------------ */

static int srv_wait_task(void *arg, void **res) { return weft_server_wait_closed(arg); }
static int serve_task(void *arg, void **res) { return weft_server_serve_forever(arg); }

/* Starts a server with `handler` and n clients, and waits until all n handlers run. */
static weft_server_t *server_with_clients(weft_stream_handler_fn handler, weft_stream_t **cs,
                                          int n) {
    weft_server_t *srv = NULL;
    info.started_at = n;
    ASSERT_OK(weft_event_new(&info.started));
    ASSERT_OK(weft_event_new(&info.release));
    ASSERT_OK(weft_start_server(&srv, handler, NULL, "127.0.0.1", 0, NULL));
    for (int i = 0; i < n; i++)
        ASSERT_OK(weft_open_connection(&cs[i], "127.0.0.1", weft_server_port(srv), NULL));
    ASSERT_OK(weft_event_wait(info.started));
    ASSERT_EQ_INT(info.active, n);
    return srv;
}

static void info_free_events(void) {
    ASSERT_OK(weft_event_free(info.started));
    ASSERT_OK(weft_event_free(info.release));
}

static int server_close_main(void *arg, void **res) {
    weft_stream_t *cs[3], *late = NULL;
    weft_server_t *srv;
    weft_task_t *w;
    char buf[8];
    int port;
    info_reset();
    srv = server_with_clients(hold_handler, cs, 3);
    port = weft_server_port(srv);
    weft_server_close(srv);
    ASSERT_EQ_INT(weft_server_is_serving(srv), 0);
    ASSERT_EQ_INT(weft_open_connection(&late, "127.0.0.1", port, NULL), WEFT_ECONNREFUSED);
    ASSERT_EQ_INT(weft_server_free(srv), WEFT_EBUSY); /* handlers still run */
    w = wt_spawn_arg(srv_wait_task, (intptr_t)srv);
    wt_yield_n(10);
    ASSERT_EQ_INT(weft_future_done(w), 0); /* waits for the handlers */
    ASSERT_EQ_INT(weft_server_free(srv), WEFT_EBUSY);
    weft_event_set(info.release);
    ASSERT_OK(wt_join(w));
    ASSERT_EQ_INT(info.finished, 3); /* every handler had ended */
    ASSERT_EQ_INT(info.active, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_stream_readexactly(cs[i], buf, 3, NULL));
        ASSERT(memcmp(buf, "bye", 3) == 0);
        ASSERT_EQ_INT(weft_stream_read(cs[i], buf, sizeof buf), 0); /* closed after the handler */
        weft_stream_free(cs[i]);
    }
    ASSERT_OK(weft_server_wait_closed(srv)); /* at once now */
    ASSERT_OK(weft_server_free(srv));
    info_free_events();
    return 0;
}

/* Server close stops listening (refused), lets handlers run; wait_closed waits for them; free is
 * -EBUSY until then. */
TEST(server_close_wait_closed) { net_run(server_close_main, NULL); }

static int serve_forever_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    weft_task_t *t;
    char buf[8];
    info_reset();
    ASSERT_OK(weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL));
    t = wt_spawn_arg(serve_task, (intptr_t)srv);
    ASSERT_OK(weft_open_connection(&c, "127.0.0.1", weft_server_port(srv), NULL));
    ASSERT_OK(weft_stream_write(c, "ping", 4));
    ASSERT_OK(weft_stream_readexactly(c, buf, 4, NULL));
    ASSERT_EQ_INT(weft_future_done(t), 0);
    weft_server_close(srv);
    ASSERT_OK(wt_join(t)); /* returns on close, handlers or not */
    ASSERT_EQ_INT(info.finished, 0);
    ASSERT_EQ_INT(weft_server_serve_forever(srv), WEFT_ESHUTDOWN);
    weft_stream_free(c);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    return 0;
}

/* serve_forever returns 0 when the server is closed; on a closed server, -ESHUTDOWN. */
TEST(serve_forever_returns_on_close) { net_run(serve_forever_main, NULL); }

static int serve_cancel_main(void *arg, void **res) {
    weft_stream_t *c;
    weft_server_t *srv;
    weft_task_t *t;
    info_reset();
    srv = server_with_clients(hold_handler, &c, 1);
    weft_task_t *w;
    t = wt_spawn_arg(serve_task, (intptr_t)srv);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    weft_cancel(t, NULL);
    /* It closes the server and returns at once: the handler (which may wait on an idle client
     * for ever) goes on, and wait_closed is what waits for it. */
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_server_is_serving(srv), 0);
    ASSERT_EQ_INT(info.active, 1);
    ASSERT_EQ_INT(weft_server_free(srv), WEFT_EBUSY);
    w = wt_spawn_arg(srv_wait_task, (intptr_t)srv);
    wt_yield_n(10);
    ASSERT_EQ_INT(weft_future_done(w), 0);
    weft_event_set(info.release);
    ASSERT_OK(wt_join(w));
    ASSERT_EQ_INT(info.finished, 1);
    weft_stream_free(c);
    ASSERT_OK(weft_server_free(srv));
    info_free_events();
    return 0;
}

/* serve_forever cancelled: closes the server, returns -ECANCELED without waiting for the
 * handlers (wait_closed does). */
TEST(serve_forever_cancelled) { net_run(serve_cancel_main, NULL); }

/* Writes 1 MB (most of it stays buffered: the client does not read), then reads. */
static int write_then_read_handler(weft_stream_t *s, void *arg) {
    char *buf = malloc(1 << 20), small[64];
    ssize_t n;
    handler_enter(s);
    set_buf(weft_stream_fd(s), SO_SNDBUF, 65536);
    pat_fill(buf, 0, 1 << 20);
    ASSERT_OK(weft_stream_write(s, buf, 1 << 20));
    free(buf);
    while ((n = weft_stream_read(s, small, sizeof small)) > 0)
        ;
    info.rc[0] = (int)n;
    handler_leave();
    return 0;
}

static size_t read_to_end(weft_stream_t *c, size_t *mismatch) {
    char *buf = malloc(65536);
    size_t total = 0;
    ssize_t n;
    *mismatch = SIZE_MAX;
    while ((n = weft_stream_read(c, buf, 65536)) > 0) {
        size_t at = pat_check(buf, total, (size_t)n);
        if (at < (size_t)n && *mismatch == SIZE_MAX)
            *mismatch = total + at;
        total += (size_t)n;
    }
    ASSERT_EQ_INT(n, 0);
    free(buf);
    return total;
}

static int close_clients_main(void *arg, void **res) {
    weft_stream_t *cs[2];
    weft_server_t *srv;
    size_t mismatch, got;
    int abort = arg != NULL;
    info_reset();
    srv = server_with_clients(write_then_read_handler, cs, 2);
    for (int i = 0; i < 2; i++)
        set_buf(weft_stream_fd(cs[i]), SO_RCVBUF, 65536);
    WAIT_UNTIL(info.accepted == 2 && weft_stream_write_buffer_size(info.s) > 0);
    if (abort)
        weft_server_abort_clients(srv);
    else
        weft_server_close_clients(srv);
    ASSERT_EQ_INT(weft_server_is_serving(srv), 1); /* still listening */
    for (int i = 0; i < 2; i++) {
        got = read_to_end(cs[i], &mismatch);
        ASSERT_EQ_INT(mismatch, SIZE_MAX);
        if (abort)
            ASSERT_LT_INT(got, 1 << 20); /* the buffered part was dropped */
        else
            ASSERT_EQ_INT(got, 1 << 20); /* everything buffered was still sent */
        weft_stream_free(cs[i]);
    }
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_EQ_INT(info.finished, 2);
    ASSERT_EQ_INT(info.rc[0], 0); /* the handlers' reads saw the end of the stream */
    ASSERT_OK(weft_server_free(srv));
    info_free_events();
    return 0;
}

/* close_clients: each handler's read sees the end, buffered data is still sent. */
TEST(server_close_clients) { net_run(close_clients_main, NULL); }

/* abort_clients: the same, but what was buffered is dropped. */
TEST(server_abort_clients) { net_run(close_clients_main, (void *)1); }

/* ---- EMFILE on accept ---------------------------------------------------------------------- */

static int emfile_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    struct rlimit old, low;
    struct sockaddr_in a;
    struct rusage ru0, ru1;
    uint64_t it0, it1;
    int c, fillers[4096], nfill = 0, maxfd = 0, f;
    char buf[8], *log;
    double cpu;
    DIR *d;
    struct dirent *de;
    info_reset();
    ASSERT_OK(weft_event_new(&info.done));
    ASSERT_OK(weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL));
    a = lo4(weft_server_port(srv));
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE_INT(c, 0);
    wt_capture_begin(); /* before the limit: it opens files */

    /* No descriptor left: the limit just above the highest open one, the holes below filled. */
    ASSERT_NOT_NULL(d = opendir("/proc/self/fd"));
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && atoi(de->d_name) > maxfd)
            maxfd = atoi(de->d_name);
    closedir(d);
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &old));
    low = old;
    low.rlim_cur = (rlim_t)maxfd + 1;
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &low));
    while ((f = dup(0)) >= 0) {
        ASSERT_LT_INT(nfill, 4096);
        fillers[nfill++] = f;
    }
    ASSERT_EQ_INT(errno, EMFILE);

    /* The connection is made (the kernel's backlog), the server cannot accept it. */
    ASSERT_OK(weft_sock_connect(c, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(weft_sock_sendall(c, "ping", 4, NULL));
    it0 = loop_iterations();
    getrusage(RUSAGE_SELF, &ru0);
    ASSERT_OK(weft_sleep(0.3));
    it1 = loop_iterations();
    getrusage(RUSAGE_SELF, &ru1);
    cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                   ru0.ru_stime.tv_sec) +
          (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                   ru0.ru_stime.tv_usec) * 1e-6;
    ASSERT_EQ_INT(info.accepted, 0);
    ASSERT_LT_INT(it1 - it0, 30); /* backing off (0.1 s), not spinning */
    ASSERT_LT_INT(cpu * 1000, 150);

    /* A descriptor free again: accepting resumes. */
    ASSERT_OK(close(fillers[--nfill]));
    ASSERT_EQ_INT(weft_sock_recv(c, buf, sizeof buf), 4);
    ASSERT(memcmp(buf, "ping", 4) == 0);
    ASSERT_EQ_INT(info.accepted, 1);
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &old));
    while (nfill)
        close(fillers[--nfill]);
    log = wt_capture_end();
    ASSERT_CONTAINS(log, "accept failed");
    ASSERT_NULL(strstr(strstr(log, "accept failed") + 1, "accept failed")); /* logged once */
    free(log);
    ASSERT_OK(weft_close(c));
    ASSERT_OK(weft_event_wait(info.done)); /* the handler saw our end */
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    ASSERT_OK(weft_event_free(info.done));
    return 0;
}

/* accept hitting EMFILE (RLIMIT_NOFILE lowered in the test): logged once, the loop backs off
 * instead of spinning (iterations and CPU time over 0.3 s), and accepting resumes once a
 * descriptor is free. */
TEST(accept_emfile_backs_off) { net_run(emfile_main, NULL); }

/* ---- low level: sock_* ------------------------------------------------------------------------ */

static int acc_listener;
static struct sockaddr_storage acc_peer;
static size_t acc_total;

static int acceptor_task(void *arg, void **res) {
    socklen_t len = sizeof acc_peer;
    char *buf = malloc(65536);
    ssize_t n;
    size_t mismatch = SIZE_MAX;
    int c = weft_sock_accept(acc_listener, (struct sockaddr *)&acc_peer, &len);
    if (c < 0) {
        free(buf);
        return c;
    }
    ASSERT(fcntl(c, F_GETFL) & O_NONBLOCK);
    ASSERT(fcntl(c, F_GETFD) & FD_CLOEXEC);
    acc_total = 0;
    while ((n = weft_sock_recv(c, buf, 65536)) > 0) {
        size_t at = pat_check(buf, acc_total, (size_t)n);
        if (at < (size_t)n && mismatch == SIZE_MAX)
            mismatch = acc_total + at;
        acc_total += (size_t)n;
    }
    ASSERT_EQ_INT(n, 0);
    ASSERT_EQ_INT(mismatch, SIZE_MAX);
    ASSERT_OK(weft_close(c));
    free(buf);
    return 0;
}

static int sock_main(void *arg, void **res) {
    const size_t total = 2000003;
    char *buf = malloc(total);
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    struct sockaddr_in a;
    weft_task_t *t;
    size_t sent = 0;
    int port, c;
    acc_listener = raw_listener(8, &port);
    /* An accept that waits, cancelled. */
    t = wt_spawn_arg(acceptor_task, 0);
    wt_yield_n(3);
    weft_cancel(t, NULL);
    ASSERT_EQ_INT(wt_join(t), WEFT_ECANCELED);

    t = wt_spawn_arg(acceptor_task, 0);
    a = lo4(port);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_OK(weft_sock_connect(c, (struct sockaddr *)&a, sizeof a));
    pat_fill(buf, 0, total);
    ASSERT_OK(weft_sock_sendall(c, buf, total, &sent));
    ASSERT_EQ_INT(sent, total);
    ASSERT_OK(weft_sock_sendall(c, buf, 0, NULL));
    ASSERT_OK(shutdown(c, SHUT_WR));
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(acc_total, total);
    ASSERT_OK(getsockname(c, (struct sockaddr *)&me, &ml));
    ASSERT_EQ_INT(acc_peer.ss_family, AF_INET);
    assert_same_addr(&acc_peer, &me);
    ASSERT_EQ_INT(weft_sock_recv(c, buf, 16), 0); /* the acceptor closed its end */
    ASSERT_OK(weft_close(c));
    ASSERT_OK(weft_close(acc_listener));
    free(buf);
    return 0;
}

/* sock_connect / sock_accept / sock_sendall / sock_recv on raw non-blocking sockets: 2 MB
 * through, the accepted socket non-blocking and close-on-exec, the peer's address; an accept
 * cancelled. */
TEST(sock_connect_accept_sendall_recv) { net_run(sock_main, NULL); }

static int sf_fd;
static size_t sf_total, sf_mismatch;

static int sf_reader_task(void *arg, void **res) {
    const char *file = arg; /* what should arrive */
    char *buf = malloc(65536);
    ssize_t n;
    sf_total = 0;
    sf_mismatch = SIZE_MAX;
    while ((n = weft_sock_recv(sf_fd, buf, 65536)) > 0) {
        for (ssize_t i = 0; i < n && sf_mismatch == SIZE_MAX; i++)
            if (buf[i] != file[sf_total + (size_t)i])
                sf_mismatch = sf_total + (size_t)i;
        sf_total += (size_t)n;
    }
    ASSERT_EQ_INT(n, 0);
    free(buf);
    return 0;
}

static int sendfile_main(void *arg, void **res) {
    const size_t size = 3000000;
    char path[128], *expect = malloc(size + 5000 + 10);
    int fds[2], file;
    off_t off;
    weft_task_t *t;
    make_tmpdir();
    snprintf(path, sizeof path, "%s/data", tmpdir);
    file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE_INT(file, 0);
    pat_fill(expect, 0, size);
    ASSERT_EQ_INT(write(file, expect, size), (long long)size);
    memcpy(expect + size, expect + 1000, 5000);          /* then [1000, 6000) */
    memcpy(expect + size + 5000, expect + size - 10, 10); /* then the last 10 */
    tcp_pair(fds);
    sf_fd = fds[1];
    t = wt_spawn_arg(sf_reader_task, (intptr_t)expect);
    off = 0;
    ASSERT_EQ_INT(weft_sock_sendfile(fds[0], file, &off, 0), (long long)size); /* whole file */
    ASSERT_EQ_INT(off, (long long)size);
    off = 1000;
    ASSERT_EQ_INT(weft_sock_sendfile(fds[0], file, &off, 5000), 5000);
    ASSERT_EQ_INT(off, 6000);
    off = (off_t)size - 10;
    ASSERT_EQ_INT(weft_sock_sendfile(fds[0], file, &off, 100), 10); /* the file is shorter */
    ASSERT_EQ_INT(off, (long long)size);
    ASSERT_EQ_INT(weft_sock_sendfile(fds[0], file, &off, 0), 0);   /* at its end */
    ASSERT_OK(shutdown(fds[0], SHUT_WR));
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(sf_total, size + 5010);
    ASSERT_EQ_INT(sf_mismatch, SIZE_MAX);
    ASSERT_OK(weft_close(fds[0]));
    ASSERT_OK(weft_close(fds[1]));
    close(file);
    unlink(path);
    rmdir(tmpdir);
    free(expect);
    return 0;
}

/* sock_sendfile of a 3 MB temporary file (more than the socket takes at once), a range, a count
 * past the end of the file, and at its end. */
TEST(sock_sendfile) { net_run(sendfile_main, NULL); }

/* ---- low level: add_reader / add_writer / wait_fd --------------------------------------- */

typedef struct cbstate {
    int fd, calls, ev_at;
    uint64_t iter[8];
    weft_event_t *ev;
} cbstate_t;
static cbstate_t cbs;

static void counting_cb(void *arg) {
    cbstate_t *c = arg;
    if (c->calls < 8)
        c->iter[c->calls] = loop_iterations();
    if (++c->calls == c->ev_at)
        weft_event_set(c->ev);
}

static void draining_cb(void *arg) {
    cbstate_t *c = arg;
    char b[64];
    while (read(c->fd, b, sizeof b) > 0)
        ;
    c->calls++;
    weft_event_set(c->ev);
}

static int add_reader_main(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    uint64_t at;
    int p[2];
    ASSERT_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
    memset(&cbs, 0, sizeof cbs);
    cbs.fd = p[0];
    cbs.ev_at = 3;
    ASSERT_OK(weft_event_new(&cbs.ev));
    ASSERT_EQ_INT(weft_add_reader(loop, p[0], NULL, NULL), WEFT_EINVAL);
    /* Not readable: not called (200 yields are 3 polls at least). */
    ASSERT_OK(weft_add_reader(loop, p[0], counting_cb, &cbs));
    wt_yield_n(200);
    ASSERT_EQ_INT(cbs.calls, 0);
    /* Readable: scheduled, never run inline; level-triggered, so a callback that does not
     * drain runs again in the very next iteration. */
    ASSERT_EQ_INT(write(p[1], "x", 1), 1);
    ASSERT_OK(weft_add_reader(loop, p[0], counting_cb, &cbs)); /* re-adding: same */
    at = loop_iterations();
    ASSERT_EQ_INT(cbs.calls, 0);
    ASSERT_OK(weft_event_wait(cbs.ev));
    ASSERT_EQ_INT(cbs.calls, 3);
    ASSERT_GT_INT(cbs.iter[0], at);
    ASSERT_EQ_INT(cbs.iter[1], cbs.iter[0] + 1);
    ASSERT_EQ_INT(cbs.iter[2], cbs.iter[1] + 1);
    /* Removed: never again, even readable. */
    ASSERT_EQ_INT(weft_remove_reader(loop, p[0]), 1);
    ASSERT_EQ_INT(weft_remove_reader(loop, p[0]), 0);
    ASSERT_EQ_INT(write(p[1], "y", 1), 1);
    wt_yield_n(200);
    ASSERT_EQ_INT(cbs.calls, 3);
    /* Adding replaces: only the draining callback runs, once (then nothing is readable). */
    ASSERT_OK(weft_add_reader(loop, p[0], counting_cb, &cbs));
    ASSERT_OK(weft_add_reader(loop, p[0], draining_cb, &cbs));
    cbs.calls = 0;
    weft_event_clear(cbs.ev);
    ASSERT_OK(weft_event_wait(cbs.ev));
    ASSERT_EQ_INT(cbs.calls, 1);
    wt_yield_n(200);
    ASSERT_EQ_INT(cbs.calls, 1);
    /* Readable again later: called again. */
    ASSERT_EQ_INT(write(p[1], "z", 1), 1);
    weft_event_clear(cbs.ev);
    ASSERT_OK(weft_event_wait(cbs.ev));
    ASSERT_EQ_INT(cbs.calls, 2);
    ASSERT_EQ_INT(weft_remove_reader(loop, p[0]), 1);
    weft_fd_forget(loop, p[0]);
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_event_free(cbs.ev));
    return 0;
}

/* add_reader on a pipe: scheduled, not inline; level-triggered (called again next iteration
 * while not drained); stops after remove; adding replaces. */
TEST(fd_add_reader_pipe) { net_run(add_reader_main, NULL); }

static void writer_cb(void *arg) {
    cbstate_t *c = arg;
    c->calls++;
    if (c->ev_at == -1) /* one-shot */
        weft_remove_writer(weft_get_running_loop(), c->fd);
    weft_event_set(c->ev);
}

static int add_writer_main(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    char *buf = calloc(1, 65536);
    int sv[2];
    ssize_t n;
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    memset(&cbs, 0, sizeof cbs);
    cbs.fd = sv[0];
    cbs.ev_at = -1;
    ASSERT_OK(weft_event_new(&cbs.ev));
    /* Writable: called, not inline; it removes itself. */
    ASSERT_OK(weft_add_writer(loop, sv[0], writer_cb, &cbs));
    ASSERT_EQ_INT(cbs.calls, 0);
    ASSERT_OK(weft_event_wait(cbs.ev));
    ASSERT_EQ_INT(cbs.calls, 1);
    wt_yield_n(200);
    ASSERT_EQ_INT(cbs.calls, 1);
    ASSERT_EQ_INT(weft_remove_writer(loop, sv[0]), 0);
    /* Full: not called until the other end reads. */
    while (write(sv[0], buf, 65536) > 0)
        ;
    ASSERT_EQ_INT(errno, EAGAIN);
    weft_event_clear(cbs.ev);
    ASSERT_OK(weft_add_writer(loop, sv[0], writer_cb, &cbs));
    wt_yield_n(200);
    ASSERT_EQ_INT(cbs.calls, 1);
    while ((n = read(sv[1], buf, 65536)) > 0)
        ;
    ASSERT_OK(weft_event_wait(cbs.ev));
    ASSERT_EQ_INT(cbs.calls, 2);
    ASSERT_OK(weft_close(sv[0]));
    ASSERT_OK(weft_close(sv[1]));
    ASSERT_OK(weft_event_free(cbs.ev));
    free(buf);
    return 0;
}

/* add_writer: called when writable (scheduled), not while the socket is full, again once the
 * other end reads. */
TEST(fd_add_writer) { net_run(add_writer_main, NULL); }

static int wf_rc;
static int wait_fd_task(void *arg, void **res) {
    wf_rc = weft_wait_fd((int)(intptr_t)arg, WEFT_READABLE);
    return 0;
}

static int wait_fd_main(void *arg, void **res) {
    int p[2];
    char b;
    weft_task_t *t;
    ASSERT_OK(pipe2(p, O_CLOEXEC));
    ASSERT_EQ_INT(weft_wait_fd(p[1], WEFT_WRITABLE), WEFT_WRITABLE);
    ASSERT_EQ_INT(weft_wait_fd(p[1], 0), WEFT_EINVAL);
    t = wt_spawn_arg(wait_fd_task, p[0]);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_EQ_INT(write(p[1], "x", 1), 1);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(wf_rc, WEFT_READABLE);
    /* Still readable: at once, and only what is ready of what was asked. */
    ASSERT_EQ_INT(weft_wait_fd(p[0], WEFT_READABLE | WEFT_WRITABLE), WEFT_READABLE);
    ASSERT_EQ_INT(read(p[0], &b, 1), 1);
    /* Cancelled while waiting. */
    t = wt_spawn_arg(wait_fd_task, p[0]);
    wt_yield_n(3);
    weft_cancel(t, NULL);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(wf_rc, WEFT_ECANCELED);
    /* A hang-up counts as ready. */
    t = wt_spawn_arg(wait_fd_task, p[0]);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_OK(weft_close(p[1]));
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(wf_rc, WEFT_READABLE);
    ASSERT_OK(weft_close(p[0]));
    return 0;
}

/* wait_fd on a pipe: waits for readability, reports what is ready, cancellable, hang-up. */
TEST(fd_wait_fd_pipe) {
    ASSERT_EQ_INT(weft_wait_fd(0, WEFT_READABLE), WEFT_EPERM); /* outside a task */
    net_run(wait_fd_main, NULL);
}

static int recv_rc;
static char recv_buf[16];
static int recv_task(void *arg, void **res) {
    recv_rc = (int)weft_sock_recv((int)(intptr_t)arg, recv_buf, sizeof recv_buf);
    return 0;
}

static int forget_main(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    weft_task_t *t;
    int p[2], sv[2];
    ASSERT_OK(pipe2(p, O_CLOEXEC));
    /* weft_fd_forget: a task waiting on it wakes with -EBADF; the fd stays open. */
    t = wt_spawn_arg(wait_fd_task, p[0]);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    weft_fd_forget(loop, p[0]);
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(wf_rc, WEFT_EBADF);
    ASSERT_GE_INT(fcntl(p[0], F_GETFD), 0);
    /* Forgetting also removes callbacks, queued or not. */
    memset(&cbs, 0, sizeof cbs);
    ASSERT_OK(weft_add_reader(loop, p[0], counting_cb, &cbs));
    ASSERT_EQ_INT(write(p[1], "x", 1), 1);
    wt_yield_n(100);
    ASSERT_GT_INT(cbs.calls, 0);
    weft_fd_forget(loop, p[0]);
    cbs.calls = 0;
    wt_yield_n(200);
    ASSERT_EQ_INT(cbs.calls, 0);
    ASSERT_EQ_INT(weft_remove_reader(loop, p[0]), 0);
    weft_fd_forget(loop, 12345); /* never seen: nothing */
    close(p[0]);
    close(p[1]);
    /* weft_close: a task in sock_recv wakes with -EBADF and the fd is closed. */
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    t = wt_spawn_arg(recv_task, sv[0]);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    ASSERT_OK(weft_close(sv[0]));
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(recv_rc, WEFT_EBADF);
    ASSERT_EQ_INT(fcntl(sv[0], F_GETFD), -1);
    ASSERT_EQ_INT(errno, EBADF);
    close(sv[1]);
    return 0;
}

/* weft_fd_forget and weft_close wake a waiting task with -EBADF and drop callbacks. */
TEST(fd_forget_and_close_wake_waiter) { net_run(forget_main, NULL); }

static int stream_read_task(void *arg, void **res) {
    ssize_t n = weft_stream_read(arg, recv_buf, sizeof recv_buf);
    recv_rc = (int)n;
    return 0;
}

/* Replaces descriptor `num` (closed behind the loop's back) with one end of a new pair whose
 * other end it returns. */
static int reuse_number(int num) {
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    if (sv[1] == num) { /* keep the new socket at `num` as the one the loop will use */
        int t = sv[0];
        sv[0] = sv[1];
        sv[1] = t;
    }
    if (sv[0] != num) {
        ASSERT_EQ_INT(dup3(sv[0], num, O_CLOEXEC), num);
        close(sv[0]);
    }
    return sv[1];
}

/* Leaves a stale entry under a descriptor number: used by the loop, closed behind its back.
 * Returns the number, now free. */
static int stale_number(void) {
    int sv[2];
    weft_task_t *t;
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    t = wt_spawn_arg(recv_task, sv[0]);
    wt_yield_n(3);
    peer_send(sv[1], "x");
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(recv_rc, 1);
    close(sv[0]);
    close(sv[1]);
    return sv[0];
}

static int accept_rc;
static int accept_task(void *arg, void **res) {
    accept_rc = weft_sock_accept((int)(intptr_t)arg, NULL, NULL);
    return 0;
}

static int rearm_main(void *arg, void **res) {
    int sv[2], num, peer;
    weft_stream_t *s = NULL;
    weft_task_t *t;
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    num = sv[0];
    /* The loop watches it: a recv that waited. */
    t = wt_spawn_arg(recv_task, num);
    wt_yield_n(3);
    peer_send(sv[1], "one");
    ASSERT_OK(wt_join(t));
    ASSERT_EQ_INT(recv_rc, 3);
    /* Closed without weft_fd_forget (the kernel drops its registration), and the number given
     * to a new socket: sock_recv still sees its data. */
    close(num);
    close(sv[1]);
    peer = reuse_number(num);
    t = wt_spawn_arg(recv_task, num);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    peer_send(peer, "two");
    ASSERT_OK(weft_wait_for(t, 2.0, NULL));
    weft_unref(t);
    ASSERT_EQ_INT(recv_rc, 3);
    ASSERT(memcmp(recv_buf, "two", 3) == 0);
    /* The same, with a stream wrapped around the reused number. */
    close(num);
    close(peer);
    peer = reuse_number(num);
    ASSERT_OK(weft_stream_from_fd(&s, num, 0));
    t = wt_spawn_arg(stream_read_task, (intptr_t)s);
    wt_yield_n(3);
    ASSERT_EQ_INT(weft_future_done(t), 0);
    peer_send(peer, "three");
    ASSERT_OK(weft_wait_for(t, 2.0, NULL));
    weft_unref(t);
    ASSERT_EQ_INT(recv_rc, 5);
    ASSERT(memcmp(recv_buf, "three", 5) == 0);
    weft_stream_free(s);
    close(peer);
    /* A blocking listener under a stale number: sock_accept makes it non-blocking and waits
     * (a blocking accept4 would freeze the loop's thread). */
    {
        int port, l, c;
        struct sockaddr_in a;
        num = stale_number();
        l = raw_listener(4, &port);
        ASSERT_EQ_INT(l, num);
        t = wt_spawn_arg(accept_task, l);
        wt_yield_n(3);
        ASSERT_EQ_INT(weft_future_done(t), 0);
        a = lo4(port);
        c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_OK(connect(c, (struct sockaddr *)&a, sizeof a));
        ASSERT_OK(wt_join(t));
        ASSERT_GE_INT(accept_rc, 0);
        close(accept_rc);
        close(c);
        ASSERT_OK(weft_close(l));
    }
    return 0;
}

static int rearm_weft_sockets_main(void *arg, void **res) {
    weft_server_t *srv = NULL;
    weft_stream_t *c = NULL;
    struct sockaddr_in a;
    char buf[8], path[128];
    int num, raw;
    info_reset();
    /* A connection the server accepts under a stale number. */
    ASSERT_OK(weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL));
    a = lo4(weft_server_port(srv));
    raw = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    num = stale_number();
    ASSERT_OK(weft_sock_connect(raw, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(weft_sock_sendall(raw, "ping", 4, NULL));
    ASSERT_EQ_INT(weft_sock_recv(raw, buf, sizeof buf), 4); /* echoed: its handler read it */
    ASSERT_EQ_INT(weft_stream_fd(info.s), num);
    ASSERT_OK(weft_close(raw));
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    /* A client connection under a stale number; a Unix connect completes at once (no wait
     * that would re-arm it). */
    make_tmpdir();
    snprintf(path, sizeof path, "%s/sock", tmpdir);
    ASSERT_OK(weft_start_unix_server(&srv, echo_handler, NULL, path, NULL));
    num = stale_number();
    ASSERT_OK(weft_open_unix_connection(&c, path, NULL));
    ASSERT_EQ_INT(weft_stream_fd(c), num);
    ASSERT_OK(weft_stream_write(c, "pong", 4));
    ASSERT_OK(weft_stream_readexactly(c, buf, 4, NULL));
    ASSERT(memcmp(buf, "pong", 4) == 0);
    weft_stream_free(c);
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
    rmdir(tmpdir);
    return 0;
}

/* A descriptor closed without weft_fd_forget and its number reused for a new, blocking socket:
 * sock_recv, a stream made on it and sock_accept neither block the loop nor miss readiness
 * (the re-arm path). */
TEST(fd_reused_number_rearm) { net_run(rearm_main, NULL); }

/* The same for the sockets weft makes: a server's accepted connection and a client's socket
 * that get a stale number still work. */
TEST(fd_reused_number_weft_sockets) { net_run(rearm_weft_sockets_main, NULL); }

/* ---- the loop closing with everything open ------------------------------------------------ */

static weft_server_t *lc_srv, *lc_srv2;
static weft_stream_t *lc_client, *lc_client2, *lc_full, *lc_other;
static weft_event_t *lc_never;
static int lc_sp[2], lc_pipe[2], lc_pipe2[2], lc_listener, lc_bh, lc_fillers[8], lc_nfill;

static int lc_readline(void *arg, void **res) {
    const char *d;
    size_t len;
    return weft_stream_readline(arg, &d, &len);
}
static int lc_read(void *arg, void **res) {
    char b[16];
    return (int)weft_stream_read(arg, b, sizeof b);
}
static int lc_drain(void *arg, void **res) { return weft_stream_drain(arg); }
static int lc_wait_closed(void *arg, void **res) { return weft_stream_wait_closed(arg); }
static int lc_serve(void *arg, void **res) { return weft_server_serve_forever(arg); }
static int lc_srv_wait(void *arg, void **res) { return weft_server_wait_closed(arg); }
static int lc_recv(void *arg, void **res) {
    char b[16];
    return (int)weft_sock_recv(lc_sp[0], b, sizeof b);
}
static int lc_wait_fd(void *arg, void **res) { return weft_wait_fd(lc_pipe[0], WEFT_READABLE); }
static int lc_accept(void *arg, void **res) { return weft_sock_accept(lc_listener, NULL, NULL); }
static void lc_cb(void *arg) { (void)arg; }

static void spawn(weft_task_fn fn, void *arg) { ASSERT_OK(weft_create_task(NULL, fn, arg, NULL)); }

static int lc_main(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    const size_t big = 4 << 20;
    char *buf;
    int fds[2], port;
    info_reset();
    ASSERT_OK(weft_event_new(&lc_never));
    /* A serving server (serve_forever) with a client: its handler and the client's readline
     * wait for bytes that never come. */
    ASSERT_OK(weft_start_server(&lc_srv, read_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&lc_client, "127.0.0.1", weft_server_port(lc_srv), NULL));
    spawn(lc_serve, lc_srv);
    spawn(lc_readline, lc_client);
    /* A closed server whose handler still runs: wait_closed waits. */
    ASSERT_OK(weft_start_server(&lc_srv2, read_handler, NULL, "127.0.0.1", 0, NULL));
    ASSERT_OK(weft_open_connection(&lc_client2, "127.0.0.1", weft_server_port(lc_srv2), NULL));
    WAIT_UNTIL(info.accepted == 2);
    weft_server_close(lc_srv2);
    spawn(lc_srv_wait, lc_srv2);
    spawn(lc_read, lc_client2);
    /* A stream with 4 MB buffered that nobody reads, closing: drain and wait_closed wait. */
    tcp_pair(fds);
    set_buf(fds[0], SO_SNDBUF, 65536);
    set_buf(fds[1], SO_RCVBUF, 65536);
    ASSERT_OK(weft_stream_from_fd(&lc_full, fds[0], 0));
    ASSERT_OK(weft_stream_from_fd(&lc_other, fds[1], 0));
    buf = calloc(1, big);
    ASSERT_OK(weft_stream_write(lc_full, buf, big));
    free(buf);
    ASSERT_GT_INT(weft_stream_write_buffer_size(lc_full), WEFT_WRITE_HIGH_WATER);
    spawn(lc_drain, lc_full);
    weft_stream_close(lc_full);
    spawn(lc_wait_closed, lc_full);
    /* Raw descriptors: sock_recv, wait_fd, sock_accept, a callback, a connect in progress. */
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, lc_sp));
    spawn(lc_recv, NULL);
    ASSERT_OK(pipe2(lc_pipe, O_CLOEXEC));
    spawn(lc_wait_fd, NULL);
    lc_listener = raw_listener(4, &port);
    spawn(lc_accept, NULL);
    ASSERT_OK(pipe2(lc_pipe2, O_CLOEXEC));
    ASSERT_EQ_INT(write(lc_pipe2[1], "x", 1), 1); /* readable: its callback keeps being queued */
    ASSERT_OK(weft_add_reader(loop, lc_pipe2[0], lc_cb, NULL));
    lc_bh = blackhole(&bh_port, lc_fillers, &lc_nfill);
    spawn(connect_task, NULL);
    spawn(he_connect_task, NULL);
    wt_yield_n(10); /* everyone reaches its wait */
    weft_loop_stop(loop);
    return weft_event_wait(lc_never);
}

/* The loop closes with servers, streams (buffered data, closing), and tasks blocked in every
 * networking wait: tasks are reported destroyed, every socket weft owns is closed, the user's
 * handles stay valid and free, nothing leaks (LeakSanitizer in the ASan build). */
TEST(loop_close_with_open_objects) {
    int before = count_fds();
    weft_loop_t *loop = wt_loop_real();
    weft_task_t *t = wt_spawn(loop, lc_main, NULL, NULL);
    char *out;
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(weft_future_done(t), 0);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    out = wt_capture_end();
    ASSERT_CONTAINS(out, "Task was destroyed but it is pending");
    free(out);
    ASSERT_EQ_INT(weft_future_cancelled(t), 1);
    weft_unref(t);
    ASSERT_OK(weft_server_free(lc_srv));
    ASSERT_OK(weft_server_free(lc_srv2));
    weft_stream_free(lc_client);
    weft_stream_free(lc_client2);
    weft_stream_free(lc_full);
    weft_stream_free(lc_other);
    ASSERT_OK(weft_event_free(lc_never));
    /* No pointer left in a global: LeakSanitizer reports only what nothing points to. */
    lc_srv = lc_srv2 = NULL;
    lc_client = lc_client2 = lc_full = lc_other = NULL;
    lc_never = NULL;
    info_reset();
    close(lc_sp[0]);
    close(lc_sp[1]);
    close(lc_pipe[0]);
    close(lc_pipe[1]);
    close(lc_pipe2[0]);
    close(lc_pipe2[1]);
    close(lc_listener);
    for (int i = 0; i < lc_nfill; i++)
        close(lc_fillers[i]);
    close(lc_bh);
    ASSERT_EQ_INT(count_fds(), before); /* every socket weft owned was closed */
}

const wt_test_t wt_tests[] = {
    T(echo_tcp),
    T(echo_ipv6),
    T(echo_unix),
    T(many_clients_1000),
    T(reader_read_partial),
    T(reader_read_all_until_eof),
    T(reader_readexactly),
    T(reader_readuntil_split_separator),
    T(reader_readuntil_limit_keeps_data),
    T(reader_readline_eof_partial),
    T(reader_readline_over_limit_discards),
    T(writer_backpressure_default_limits),
    T(writer_backpressure_custom_limits),
    T(half_close),
    T(peer_reset_while_reading),
    T(peer_reset_while_writing),
    T(sigpipe_never_kills),
    T(connection_refused),
    T(cancel_during_connect),
    T(happy_eyeballs_connect),
    T(cancel_during_read_loses_nothing),
    T(cancel_during_drain),
    T(timeout_read_then_usable),
    T(server_close_wait_closed),
    T(serve_forever_returns_on_close),
    T(serve_forever_cancelled),
    T(server_close_clients),
    T(server_abort_clients),
    T(accept_emfile_backs_off),
    T(sock_connect_accept_sendall_recv),
    T(sock_sendfile),
    T(fd_add_reader_pipe),
    T(fd_add_writer),
    T(fd_wait_fd_pipe),
    T(fd_forget_and_close_wake_waiter),
    T(fd_reused_number_rearm),
    T(fd_reused_number_weft_sockets),
    T(loop_close_with_open_objects),
    WT_END,
};
