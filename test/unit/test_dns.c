/* Name resolution: numeric hosts parsed at once, /etc/hosts and "localhost", and DNS answers,
 * failures, cancellation, timeouts and loop close against a fake DNS server that each test
 * runs on 127.0.0.1 (a weft task on a UDP socket), so nothing depends on the machine's
 * resolver. Real clock: the server's datagrams are real I/O. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wt.h"

/* ---- a fake DNS server ------------------------------------------------------------------ *
 * Answers every query with NXDOMAIN, except:
 *   www.weft.test        A 192.0.2.7 / AAAA 2001:db8::7
 *   servfail.weft.test   SERVFAIL
 *   silent.weft.test     no answer at all
 *   race.weft.test       as www.weft.test, announced on race_fd first
 * Search domains appended by the resolver ("silent.weft.test.example") match too. */

typedef struct fake_dns {
    int fd;
    int port;
    int queries;          /* queries received */
    int silent;           /* of them, left unanswered */
    int race_fd;          /* race.weft.test: a byte is written here just before the answer */
    char servers[64];     /* for weft_resolver_set_servers */
    weft_task_t *task;
} fake_dns_t;

static fake_dns_t fake;

static bool name_is(const char *name, const char *want) {
    size_t n = strlen(want);
    return strncmp(name, want, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

/* Parses the question's name into `name` (dotted, lower case); returns the offset after the
 * question (type and class included) or -1. */
static int parse_question(const unsigned char *q, int len, char *name, size_t cap,
                          int *qtype) {
    int off = 12;
    size_t at = 0;
    for (;;) {
        int l;
        if (off >= len)
            return -1;
        l = q[off++];
        if (l == 0)
            break;
        if (l > 63 || off + l > len || at + (size_t)l + 2 > cap)
            return -1;
        if (at)
            name[at++] = '.';
        for (int i = 0; i < l; i++) {
            char c = (char)q[off + i];
            name[at++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        off += l;
    }
    name[at] = '\0';
    if (off + 4 > len)
        return -1;
    *qtype = q[off] << 8 | q[off + 1];
    return off + 4;
}

/* The reply to `q` in `out`; 0 for none. */
static int fake_reply(const unsigned char *q, int len, unsigned char *out) {
    char name[256];
    int qtype, end = parse_question(q, len, name, sizeof name, &qtype), rcode = 3, n;
    int ancount = 0;
    if (end < 0 || (q[4] << 8 | q[5]) != 1)
        return 0;
    fake.queries++;
    if (name_is(name, "silent.weft.test")) {
        fake.silent++;
        return 0;
    }
    if (name_is(name, "servfail.weft.test"))
        rcode = 2;
    if (strcmp(name, "race.weft.test") == 0 && qtype == 1)
        ASSERT_EQ_INT(write(fake.race_fd, "r", 1), 1);
    if ((strcmp(name, "www.weft.test") == 0 || strcmp(name, "race.weft.test") == 0) &&
        (qtype == 1 || qtype == 28)) {
        rcode = 0;
        ancount = 1;
    }
    memcpy(out, q, (size_t)end); /* header and question */
    out[2] = (unsigned char)(0x80 | (q[2] & 0x79));  /* QR, opcode and RD copied */
    out[3] = (unsigned char)(0x80 | rcode);            /* RA */
    out[6] = 0, out[7] = (unsigned char)ancount;
    out[8] = out[9] = out[10] = out[11] = 0;
    n = end;
    if (ancount) {
        static const unsigned char a[4] = {192, 0, 2, 7};
        static const unsigned char aaaa[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                               0,    0,    0,    0,    0, 0, 0, 7};
        int rdlen = qtype == 1 ? 4 : 16;
        unsigned char rr[10] = {0xc0, 12, 0, (unsigned char)qtype, 0, 1, 0, 0, 0, 60};
        memcpy(out + n, rr, sizeof rr);
        n += (int)sizeof rr;
        out[n++] = 0;
        out[n++] = (unsigned char)rdlen;
        memcpy(out + n, qtype == 1 ? a : aaaa, (size_t)rdlen);
        n += rdlen;
    }
    return n;
}

static int fake_main(void *arg, void **res) {
    unsigned char buf[512], out[600];
    (void)arg;
    for (;;) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(fake.fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        int rlen, rc;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            rc = weft_wait_fd(fake.fd, WEFT_READABLE);
            if (rc == WEFT_ECANCELED)
                return 0;
            if (rc < 0)
                return rc;
            continue;
        }
        if ((rlen = fake_reply(buf, (int)n, out)) > 0)
            ASSERT_EQ_INT(sendto(fake.fd, out, (size_t)rlen, 0, (struct sockaddr *)&from, flen),
                          rlen);
    }
}

/* Starts the server on `loop` and points the loop's resolver at it. */
static void fake_start(weft_loop_t *loop) {
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    memset(&fake, 0, sizeof fake);
    fake.race_fd = -1;
    fake.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT(fake.fd >= 0);
    ASSERT_OK(bind(fake.fd, (struct sockaddr *)&sin, sizeof sin));
    ASSERT_OK(getsockname(fake.fd, (struct sockaddr *)&sin, &len));
    fake.port = ntohs(sin.sin_port);
    snprintf(fake.servers, sizeof fake.servers, "127.0.0.1:%d", fake.port);
    ASSERT_OK(weft_resolver_set_servers(loop, fake.servers));
    fake.task = wt_spawn(loop, fake_main, NULL, "fake-dns");
}

/* From a task: stops the server and closes its socket. */
static void fake_stop(void) {
    weft_cancel(fake.task, NULL);
    ASSERT_OK(weft_await(fake.task, NULL));
    weft_unref(fake.task);
    fake.task = NULL;
    ASSERT_OK(weft_close(fake.fd));
}

/* ---- helpers ---------------------------------------------------------------------------- */

static struct addrinfo hints_of(int family, int socktype, int flags) {
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    h.ai_family = family;
    h.ai_socktype = socktype;
    h.ai_flags = flags;
    return h;
}

static int count(const struct addrinfo *ai) {
    int n = 0;
    for (; ai; ai = ai->ai_next)
        n++;
    return n;
}

/* The entry's address as text, and its port. */
static const char *addr_str(const struct addrinfo *ai, int *port) {
    static char buf[INET6_ADDRSTRLEN];
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ai->ai_addr;
        ASSERT_EQ_INT(ai->ai_addrlen, sizeof *s);
        inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
        if (port)
            *port = ntohs(s->sin_port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ai->ai_addr;
        ASSERT_EQ_INT(ai->ai_family, AF_INET6);
        ASSERT_EQ_INT(ai->ai_addrlen, sizeof *s);
        inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
        if (port)
            *port = ntohs(s->sin6_port);
    }
    return buf;
}

static uint64_t iterations(void) {
    weft_loop_stats_t st;
    weft_loop_stats(weft_get_running_loop(), &st);
    return st.iterations;
}

/* Runs body as the main task of a real-clock loop, with the fake server if `with_server`,
 * then checks that the loop is clean and closes it. */
static void run_real(weft_task_fn body, bool with_server) {
    weft_loop_t *loop = wt_loop_real();
    if (with_server)
        fake_start(loop);
    ASSERT_OK(wt_run_task(loop, body, NULL, NULL));
    WT_CLOSE_LOOP(loop);
}

/* ---- numeric hosts ---------------------------------------------------------------------- */

static int numeric_ipv4_main(void *arg, void **res) {
    struct addrinfo *ai = NULL, h = hints_of(AF_UNSPEC, SOCK_DGRAM, 0);
    uint64_t it = iterations();
    int port;
    ASSERT_OK(weft_getaddrinfo("127.0.0.1", "80", NULL, &ai));
    ASSERT_EQ_INT(count(ai), 1);
    ASSERT_EQ_INT(ai->ai_family, AF_INET);
    ASSERT_EQ_INT(ai->ai_socktype, SOCK_STREAM); /* socktype 0: stream only */
    ASSERT_EQ_INT(ai->ai_protocol, IPPROTO_TCP);
    ASSERT_EQ_STR(addr_str(ai, &port), "127.0.0.1");
    ASSERT_EQ_INT(port, 80);
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo("192.0.2.1", "5353", &h, &ai));
    ASSERT_EQ_INT(count(ai), 1);
    ASSERT_EQ_INT(ai->ai_socktype, SOCK_DGRAM);
    ASSERT_EQ_INT(ai->ai_protocol, IPPROTO_UDP);
    ASSERT_EQ_STR(addr_str(ai, &port), "192.0.2.1");
    ASSERT_EQ_INT(port, 5353);
    weft_freeaddrinfo(ai);
    /* No port: 0. A service name from /etc/services. */
    ASSERT_OK(weft_getaddrinfo("10.1.2.3", NULL, NULL, &ai));
    ASSERT_EQ_STR(addr_str(ai, &port), "10.1.2.3");
    ASSERT_EQ_INT(port, 0);
    weft_freeaddrinfo(ai);
    if (weft_getaddrinfo("127.0.0.1", "http", NULL, &ai) == 0) {
        addr_str(ai, &port);
        ASSERT_EQ_INT(port, 80);
        weft_freeaddrinfo(ai);
    }
    ASSERT_EQ_INT(iterations(), it); /* never suspended */
    return 0;
}

TEST(numeric_ipv4) { run_real(numeric_ipv4_main, false); }

static int numeric_ipv6_main(void *arg, void **res) {
    struct addrinfo *ai = NULL, h = hints_of(AF_INET6, SOCK_STREAM, AI_CANONNAME);
    uint64_t it = iterations();
    int port;
    ASSERT_OK(weft_getaddrinfo("::1", "443", NULL, &ai));
    ASSERT_EQ_INT(count(ai), 1);
    ASSERT_EQ_INT(ai->ai_family, AF_INET6);
    ASSERT_EQ_STR(addr_str(ai, &port), "::1");
    ASSERT_EQ_INT(port, 443);
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo("2001:db8::42", "8443", &h, &ai));
    ASSERT_EQ_STR(addr_str(ai, &port), "2001:db8::42");
    ASSERT_EQ_INT(port, 8443);
    ASSERT_NOT_NULL(ai->ai_canonname); /* copied into our own list */
    weft_freeaddrinfo(ai);
    /* An IPv4 address asked as IPv6 only. */
    ASSERT_EQ_INT(weft_getaddrinfo("127.0.0.1", "80", &h, &ai), WEFT_ENONAME);
    ASSERT_NULL(ai);
    ASSERT_EQ_INT(iterations(), it);
    return 0;
}

TEST(numeric_ipv6) { run_real(numeric_ipv6_main, false); }

static int passive_main(void *arg, void **res) {
    struct addrinfo *ai = NULL, h4 = hints_of(AF_INET, 0, AI_PASSIVE),
                    h6 = hints_of(AF_INET6, 0, AI_PASSIVE), hu = hints_of(AF_UNSPEC, 0, AI_PASSIVE);
    int port;
    ASSERT_OK(weft_getaddrinfo(NULL, "8080", &h4, &ai));
    ASSERT_EQ_INT(count(ai), 1);
    ASSERT_EQ_STR(addr_str(ai, &port), "0.0.0.0");
    ASSERT_EQ_INT(port, 8080);
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo(NULL, "8080", &h6, &ai));
    ASSERT_EQ_STR(addr_str(ai, &port), "::");
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo(NULL, "0", &hu, &ai));
    ASSERT_GE_INT(count(ai), 1);
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        const char *s = addr_str(p, &port);
        ASSERT(strcmp(s, "0.0.0.0") == 0 || strcmp(s, "::") == 0);
        ASSERT_EQ_INT(p->ai_socktype, SOCK_STREAM);
    }
    weft_freeaddrinfo(ai);
    /* Not passive: the loopback address. */
    h4.ai_flags = 0;
    ASSERT_OK(weft_getaddrinfo(NULL, "7", &h4, &ai));
    ASSERT_EQ_STR(addr_str(ai, &port), "127.0.0.1");
    weft_freeaddrinfo(ai);
    return 0;
}

TEST(passive_null_host) { run_real(passive_main, false); }

static void call_outside_task(void *arg) {
    struct addrinfo *ai = (void *)1;
    (void)arg;
    ASSERT_EQ_INT(weft_getaddrinfo("127.0.0.1", "80", NULL, &ai), WEFT_EPERM);
    ASSERT_NULL(ai);
    wt_log(1);
}

static int bad_args_main(void *arg, void **res) {
    struct addrinfo *ai = NULL, h = hints_of(AF_UNSPEC, 0, AI_NUMERICHOST);
    ASSERT_EQ_INT(weft_getaddrinfo(NULL, NULL, NULL, &ai), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_getaddrinfo("127.0.0.1", "80", NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_getaddrinfo("localhost", "80", &h, &ai), WEFT_ENONAME);
    ASSERT_CONTAINS(weft_error_message(), "localhost");
    h = hints_of(AF_UNIX, 0, 0);
    ASSERT_EQ_INT(weft_getaddrinfo("127.0.0.1", "80", &h, &ai), WEFT_EAFNOSUPPORT);
    h = hints_of(AF_UNSPEC, 0, 0x40000000);
    ASSERT_EQ_INT(weft_getaddrinfo("127.0.0.1", "80", &h, &ai), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_getaddrinfo("127.0.0.1", "no-such-service-here", NULL, &ai),
                  WEFT_ENONAME);
    ASSERT_NULL(ai);
    ASSERT_OK(weft_call_soon(weft_get_running_loop(), call_outside_task, NULL, NULL));
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_sleep(0));
    WT_ASSERT_LOG(1);
    /* The servers list must parse. */
    ASSERT_EQ_INT(weft_resolver_set_servers(weft_get_running_loop(), "not an address"),
                  WEFT_EINVAL);
    ASSERT_EQ_INT(weft_resolver_set_servers(weft_get_running_loop(), ""), WEFT_EINVAL);
    ASSERT_OK(weft_resolver_set_servers(weft_get_running_loop(), "127.0.0.1:53,[::1]:53"));
    ASSERT_OK(weft_resolver_set_servers(weft_get_running_loop(), NULL));
    return 0;
}

TEST(bad_arguments) { run_real(bad_args_main, false); }

/* ---- names ------------------------------------------------------------------------------ */

static int localhost_main(void *arg, void **res) {
    struct addrinfo *ai = NULL, h4 = hints_of(AF_INET, 0, AI_CANONNAME),
                    h6 = hints_of(AF_INET6, 0, 0);
    int port;
    ASSERT_OK(weft_getaddrinfo("localhost", "80", NULL, &ai));
    ASSERT_GE_INT(count(ai), 1);
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        const char *s = addr_str(p, &port);
        ASSERT(strcmp(s, "127.0.0.1") == 0 || strcmp(s, "::1") == 0);
        ASSERT_EQ_INT(port, 80);
        ASSERT_EQ_INT(p->ai_socktype, SOCK_STREAM);
        ASSERT_EQ_INT(p->ai_protocol, IPPROTO_TCP);
    }
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo("localhost", "80", &h4, &ai));
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        ASSERT_EQ_STR(addr_str(p, NULL), "127.0.0.1");
    ASSERT_EQ_STR(ai->ai_canonname, "localhost");
    weft_freeaddrinfo(ai);
    /* Loopback by RFC 6761 even where /etc/hosts has no ::1; the DNS server is never asked. */
    ASSERT_OK(weft_getaddrinfo("localhost", NULL, &h6, &ai));
    ASSERT_GE_INT(count(ai), 1);
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        ASSERT_EQ_STR(addr_str(p, NULL), "::1");
    weft_freeaddrinfo(ai);
    /* So does any name under .localhost. */
    h6 = hints_of(AF_UNSPEC, SOCK_DGRAM, AI_CANONNAME);
    ASSERT_OK(weft_getaddrinfo("app.LOCALHOST", "9", &h6, &ai));
    ASSERT_GE_INT(count(ai), 1);
    ASSERT_EQ_STR(ai->ai_canonname, "app.LOCALHOST");
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        const char *s = addr_str(p, &port);
        ASSERT(strcmp(s, "127.0.0.1") == 0 || strcmp(s, "::1") == 0);
        ASSERT_EQ_INT(port, 9);
        ASSERT_EQ_INT(p->ai_socktype, SOCK_DGRAM);
        ASSERT_EQ_INT(p->ai_protocol, IPPROTO_UDP);
    }
    weft_freeaddrinfo(ai);
    ASSERT_EQ_INT(fake.queries, 0);
    fake_stop();
    return 0;
}

TEST(localhost) { run_real(localhost_main, true); }

static int answer_main(void *arg, void **res) {
    struct addrinfo *ai = NULL, h4 = hints_of(AF_INET, 0, AI_CANONNAME),
                    h6 = hints_of(AF_INET6, SOCK_DGRAM, 0), hu = hints_of(AF_UNSPEC, 0, 0);
    int port, n4 = 0, n6 = 0;
    double t0 = wt_now();
    ASSERT_OK(weft_getaddrinfo("www.weft.test", "8080", &h4, &ai));
    ASSERT_EQ_INT(count(ai), 1);
    ASSERT_EQ_STR(addr_str(ai, &port), "192.0.2.7");
    ASSERT_EQ_INT(port, 8080);
    ASSERT_EQ_INT(ai->ai_socktype, SOCK_STREAM);
    ASSERT_EQ_STR(ai->ai_canonname, "www.weft.test");
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo("www.weft.test", "53", &h6, &ai));
    ASSERT_EQ_INT(count(ai), 1);
    ASSERT_EQ_STR(addr_str(ai, &port), "2001:db8::7");
    ASSERT_EQ_INT(port, 53);
    ASSERT_EQ_INT(ai->ai_socktype, SOCK_DGRAM);
    ASSERT_EQ_INT(ai->ai_protocol, IPPROTO_UDP);
    ASSERT_NULL(ai->ai_canonname);
    weft_freeaddrinfo(ai);
    ASSERT_OK(weft_getaddrinfo("WWW.weft.test", NULL, &hu, &ai));
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        const char *s = addr_str(p, NULL);
        if (p->ai_family == AF_INET) {
            n4++;
            ASSERT_EQ_STR(s, "192.0.2.7");
        } else {
            n6++;
            ASSERT_EQ_STR(s, "2001:db8::7");
        }
    }
    ASSERT_EQ_INT(n4, 1);
    ASSERT_EQ_INT(n6, 1);
    weft_freeaddrinfo(ai);
    ASSERT_GE_INT(fake.queries, 4);
    ASSERT_LT_INT((wt_now() - t0) * 1000, 500);
    fake_stop();
    return 0;
}

/* A real DNS answer path, with family filtering. */
TEST(dns_answer_and_family) { run_real(answer_main, true); }

static int nxdomain_main(void *arg, void **res) {
    struct addrinfo *ai = NULL;
    double t0 = wt_now();
    ASSERT_EQ_INT(weft_getaddrinfo("nonexistent.example", "80", NULL, &ai), WEFT_ENONAME);
    ASSERT_NULL(ai);
    ASSERT_CONTAINS(weft_error_message(), "nonexistent.example: Name or service not known");
    ASSERT_LT_INT((wt_now() - t0) * 1000, 500);
    ASSERT_GE_INT(fake.queries, 1);
    /* SERVFAIL: a temporary failure. */
    ASSERT_EQ_INT(weft_getaddrinfo("servfail.weft.test", "80", NULL, &ai), WEFT_EAGAIN);
    ASSERT_CONTAINS(weft_error_message(), "servfail.weft.test");
    ASSERT_LT_INT((wt_now() - t0) * 1000, 1000);
    fake_stop();
    return 0;
}

TEST(nxdomain) { run_real(nxdomain_main, true); }

/* ---- cancellation, timeouts, loop close -------------------------------------------------- */

static int silent_lookup(void *arg, void **res) {
    struct addrinfo *ai = NULL;
    int rc = weft_getaddrinfo("silent.weft.test", "80", NULL, &ai);
    ASSERT_NULL(ai);
    return rc;
}

/* Waits (real time) until the fake server has seen `n` unanswered queries. */
static void wait_silent(int n) {
    double t0 = wt_now();
    while (fake.silent < n) {
        ASSERT_LT_INT((wt_now() - t0) * 1000, 1000);
        ASSERT_OK(weft_sleep(0.005));
    }
}

static int cancel_main(void *arg, void **res) {
    weft_task_t *t = wt_spawn(NULL, silent_lookup, NULL, "lookup");
    struct addrinfo *ai = NULL;
    double t0;
    wait_silent(1);
    t0 = wt_now();
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    ASSERT_LT_INT((wt_now() - t0) * 1000, 50);
    weft_unref(t);
    /* The resolver goes on serving while the abandoned query is still in flight. */
    ASSERT_OK(weft_getaddrinfo("www.weft.test", "80", NULL, &ai));
    ASSERT_GE_INT(count(ai), 1);
    weft_freeaddrinfo(ai);
    /* A task cancelled before it asks does not ask. */
    {
        int before = fake.queries;
        t = wt_spawn(NULL, silent_lookup, NULL, "cancelled-first");
        weft_cancel(t, NULL);
        ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
        weft_unref(t);
        ASSERT_EQ_INT(fake.queries, before);
    }
    fake_stop();
    return 0;
}

/* Closes a loop whose resolver may still have abandoned queries in flight (its timer armed):
 * every task must be gone. ASan's leak check covers the rest. */
static void close_with_pending_queries(weft_loop_t *loop) {
    weft_loop_stats_t st;
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.tasks, 0);
    ASSERT_EQ_INT(st.pending_tasks, 0);
    ASSERT_EQ_INT(st.stacks, 0);
    ASSERT_EQ_INT(st.futures, 0);
    ASSERT_OK(weft_loop_close(loop));
}

TEST(cancel_in_flight) {
    weft_loop_t *loop = wt_loop_real();
    fake_start(loop);
    ASSERT_OK(wt_run_task(loop, cancel_main, NULL, NULL));
    close_with_pending_queries(loop);
}

static int race_lookup(void *arg, void **res) {
    struct addrinfo *ai = NULL, h = hints_of(AF_INET, 0, 0);
    int rc = weft_getaddrinfo("race.weft.test", "80", &h, &ai);
    ASSERT_NULL(ai);
    return rc;
}

static int race_main(void *arg, void **res) {
    int sp[2];
    weft_task_t *t;
    char c;
    ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp));
    fake.race_fd = sp[1];
    t = wt_spawn(NULL, race_lookup, NULL, "lookup");
    /* The byte and the answer arrive in one poll, the byte first: this task is woken ahead of
     * the lookup, which the answer makes ready but which has not run yet when it is
     * cancelled. Its answer must be dropped, not leaked, and the cancellation reported. */
    ASSERT_EQ_INT(weft_wait_fd(sp[0], WEFT_READABLE), WEFT_READABLE);
    ASSERT_EQ_INT(read(sp[0], &c, 1), 1);
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    ASSERT_OK(weft_close(sp[0]));
    ASSERT_OK(close(sp[1]));
    fake_stop();
    return 0;
}

TEST(cancel_after_answer) {
    weft_loop_t *loop = wt_loop_real();
    fake_start(loop);
    ASSERT_OK(wt_run_task(loop, race_main, NULL, NULL));
    close_with_pending_queries(loop);
}

static int timeout_main(void *arg, void **res) {
    struct addrinfo *ai = NULL;
    weft_timeout_t to;
    double t0 = wt_now();
    int rc;
    ASSERT_OK(weft_timeout_begin(&to, 0.1));
    rc = weft_getaddrinfo("silent.weft.test", "80", NULL, &ai);
    ASSERT_EQ_INT(rc, WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_NULL(ai);
    ASSERT_TIME(wt_now() - t0, 0.1);
    ASSERT_GE_INT(fake.silent, 1);
    fake_stop();
    return 0;
}

TEST(timeout_scope) {
    weft_loop_t *loop = wt_loop_real();
    fake_start(loop);
    ASSERT_OK(wt_run_task(loop, timeout_main, NULL, NULL));
    close_with_pending_queries(loop);
}

static int busy_main(void *arg, void **res) {
    weft_loop_t *loop = weft_get_running_loop();
    weft_task_t *t = wt_spawn(NULL, silent_lookup, NULL, "lookup");
    wait_silent(1);
    /* The server list cannot change under a pending query. */
    ASSERT_EQ_INT(weft_resolver_set_servers(loop, "127.0.0.1:1"), WEFT_EBUSY);
    weft_cancel(t, NULL);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    fake_stop();
    return 0;
}

TEST(set_servers_busy) {
    weft_loop_t *loop = wt_loop_real();
    fake_start(loop);
    ASSERT_OK(wt_run_task(loop, busy_main, NULL, NULL));
    close_with_pending_queries(loop);
}

static int wait_for_query(void *arg, void **res) {
    wait_silent(2);
    return 0;
}

/* The loop is closed while two tasks wait for answers that never come. */
TEST(loop_close_pending_query) {
    weft_loop_t *loop = wt_loop_real();
    weft_task_t *a, *b;
    char *out;
    fake_start(loop);
    a = wt_spawn(loop, silent_lookup, NULL, "lookup-a");
    b = wt_spawn(loop, silent_lookup, NULL, "lookup-b");
    ASSERT_OK(wt_run_task(loop, wait_for_query, NULL, NULL));
    ASSERT_EQ_INT(weft_future_done(a), 0);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    out = wt_capture_end();
    ASSERT_CONTAINS(out, "lookup-a");
    ASSERT_CONTAINS(out, "lookup-b");
    free(out);
    ASSERT_EQ_INT(weft_future_cancelled(a), 1);
    ASSERT_EQ_INT(weft_future_cancelled(b), 1);
    weft_unref(a);
    weft_unref(b);
    weft_unref(fake.task);
    ASSERT_OK(close(fake.fd));
}

const wt_test_t wt_tests[] = {
    T(numeric_ipv4),
    T(numeric_ipv6),
    T(passive_null_host),
    T(bad_arguments),
    T(localhost),
    T(dns_answer_and_family),
    T(nxdomain),
    T(cancel_in_flight),
    T(cancel_after_answer),
    T(timeout_scope),
    T(set_servers_busy),
    T(loop_close_pending_query),
    WT_END,
};
