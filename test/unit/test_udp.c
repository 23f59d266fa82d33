/* Datagram endpoints on loopback: round trips over IPv4 and IPv6, truncation reported, a
 * cancelled or timed-out receive that loses nothing, many datagrams in order, and endpoints
 * left open when the loop closes. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "wt.h"

/* A bound endpoint on host:0 and its address. */
static weft_udp_t *bound(const char *host, struct sockaddr_storage *addr, socklen_t *len) {
    weft_udp_t *u;
    weft_udp_options_t o = {.local_host = host};
    ASSERT_OK(weft_udp_open(&u, &o));
    ASSERT_OK(weft_udp_sockname(u, addr, len));
    return u;
}

static int port_of(const struct sockaddr_storage *a) {
    return ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                         : ((const struct sockaddr_in6 *)a)->sin6_port);
}

static int round_trip_main(void *arg, void **result) {
    const char *host = arg;
    struct sockaddr_storage saddr, from;
    socklen_t slen, flen;
    weft_udp_t *srv = bound(host, &saddr, &slen), *cli;
    weft_udp_options_t co = {.remote_host = host, .remote_port = port_of(&saddr)};
    char buf[64];
    ASSERT_OK(weft_udp_open(&cli, &co));
    ASSERT_EQ_INT(weft_udp_sendto(cli, "ping", 4, NULL, 0), 4);
    ASSERT_EQ_INT(weft_udp_recvfrom(srv, buf, sizeof buf, &from, &flen), 4);
    ASSERT(memcmp(buf, "ping", 4) == 0);
    ASSERT_EQ_INT(from.ss_family, saddr.ss_family);
    ASSERT_EQ_INT(weft_udp_sendto(srv, "pong!", 5, (struct sockaddr *)&from, flen), 5);
    ASSERT_EQ_INT(weft_udp_recvfrom(cli, buf, sizeof buf, NULL, NULL), 5);
    ASSERT(memcmp(buf, "pong!", 5) == 0);
    weft_udp_close(cli);
    weft_udp_close(srv);
    *result = (void *)1;
    return 0;
}

static void run_real(weft_task_fn fn, void *arg) {
    weft_loop_t *loop = wt_loop_real();
    void *res = NULL;
    ASSERT_OK(wt_run_task(loop, fn, arg, &res));
    ASSERT_EQ_PTR(res, (void *)1);
    WT_CLOSE_LOOP(loop);
}

TEST(udp_round_trip_ipv4) { run_real(round_trip_main, "127.0.0.1"); }
TEST(udp_round_trip_ipv6) { run_real(round_trip_main, "::1"); }

/* A datagram larger than the buffer: -EMSGSIZE, never a silent truncation. */
static int truncation_main(void *arg, void **result) {
    struct sockaddr_storage a;
    socklen_t l;
    weft_udp_t *u = bound("127.0.0.1", &a, &l);
    char big[100], small[10];
    for (int i = 0; i < 100; i++)
        big[i] = (char)i;
    ASSERT_EQ_INT(weft_udp_sendto(u, big, sizeof big, (struct sockaddr *)&a, l), 100);
    ASSERT_EQ_INT(weft_udp_recvfrom(u, small, sizeof small, NULL, NULL), WEFT_EMSGSIZE);
    ASSERT(memcmp(small, big, sizeof small) == 0);
    weft_udp_close(u);
    *result = (void *)1;
    return 0;
}
TEST(udp_truncation_reported) { run_real(truncation_main, NULL); }

static int recv_one(void *arg, void **result) {
    char buf[16];
    return (int)weft_udp_recvfrom(arg, buf, sizeof buf, NULL, NULL);
}

/* A receive cancelled while it waits, then one under a timeout scope: neither takes the
 * datagram sent afterwards, which the next receive gets. */
static int cancel_main(void *arg, void **result) {
    struct sockaddr_storage a;
    socklen_t l;
    weft_udp_t *u = bound("127.0.0.1", &a, &l);
    weft_task_t *t = wt_spawn(weft_get_running_loop(), recv_one, u, "receiver");
    weft_timeout_t to;
    char buf[16];
    int rc;
    ASSERT_OK(weft_sleep(0.01));
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    ASSERT_OK(weft_timeout_begin(&to, 0.02));
    rc = weft_timeout_end(&to, (int)weft_udp_recvfrom(u, buf, sizeof buf, NULL, NULL));
    ASSERT_EQ_INT(rc, WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(weft_udp_sendto(u, "late", 4, (struct sockaddr *)&a, l), 4);
    ASSERT_EQ_INT(weft_udp_recvfrom(u, buf, sizeof buf, NULL, NULL), 4);
    ASSERT(memcmp(buf, "late", 4) == 0);
    weft_udp_close(u);
    *result = (void *)1;
    return 0;
}
TEST(udp_cancel_and_timeout_lose_nothing) { run_real(cancel_main, NULL); }

/* 500 datagrams from a sender task arrive in order at a receiver task. The sender waits for
 * the receiver after every 50: UDP has no backpressure, and a full receive buffer drops. */
#define MANY 500
static weft_semaphore_t *credit;
static int many_sender(void *arg, void **result) {
    weft_udp_t *u = arg;
    for (uint32_t i = 0; i < MANY; i++) {
        if (i % 50 == 0)
            ASSERT_OK(weft_semaphore_acquire(credit));
        ASSERT_EQ_INT(weft_udp_sendto(u, &i, sizeof i, NULL, 0), (int)sizeof i);
    }
    return 0;
}

static int many_main(void *arg, void **result) {
    struct sockaddr_storage a;
    socklen_t l;
    weft_udp_t *rx = bound("127.0.0.1", &a, &l), *tx;
    weft_udp_options_t o = {.remote_host = "127.0.0.1", .remote_port = port_of(&a)};
    ASSERT_OK(weft_udp_open(&tx, &o));
    ASSERT_OK(weft_semaphore_new(&credit, 1, 0));
    weft_task_t *t = wt_spawn(weft_get_running_loop(), many_sender, tx, "sender");
    for (uint32_t i = 0; i < MANY; i++) {
        uint32_t v;
        ASSERT_EQ_INT(weft_udp_recvfrom(rx, &v, sizeof v, NULL, NULL), (int)sizeof v);
        ASSERT_EQ_INT(v, i);
        if (i % 50 == 49)
            ASSERT_OK(weft_semaphore_release(credit));
    }
    ASSERT_OK(weft_await(t, NULL));
    weft_unref(t);
    ASSERT_OK(weft_semaphore_free(credit));
    weft_udp_close(tx);
    weft_udp_close(rx);
    *result = (void *)1;
    return 0;
}
TEST(udp_many_in_order) { run_real(many_main, NULL); }

/* Bad input: a port out of range, a name that is not numeric for a family it lacks. */
static int bad_input_main(void *arg, void **result) {
    weft_udp_t *u = NULL;
    weft_udp_options_t o = {.local_host = "127.0.0.1", .local_port = 70000};
    ASSERT_EQ_INT(weft_udp_open(&u, &o), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_udp_open(NULL, NULL), WEFT_EINVAL);
    ASSERT(u == NULL);
    *result = (void *)1;
    return 0;
}
TEST(udp_bad_input) { run_real(bad_input_main, NULL); }

TEST(udp_outside_task) {
    weft_udp_t *u;
    ASSERT_EQ_INT(weft_udp_open(&u, NULL), WEFT_EPERM);
}

/* The loop closes with an endpoint open and a task blocked in recvfrom: the socket is closed
 * with the loop, the handle stays valid until weft_udp_close. */
static weft_udp_t *left_open;
static int blocked_main(void *arg, void **result) {
    struct sockaddr_storage a;
    socklen_t l;
    left_open = bound("127.0.0.1", &a, &l);
    weft_create_task(NULL, recv_one, left_open, NULL);
    weft_sleep(0.01);
    weft_loop_stop(weft_get_running_loop());
    return 0;
}

TEST(udp_loop_close_with_open_endpoint) {
    weft_loop_t *loop = wt_loop_real();
    weft_task_t *t;
    ASSERT_OK(weft_loop_create_task(loop, &t, blocked_main, NULL, NULL));
    weft_loop_run_forever(loop);
    weft_unref(t);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop)); /* reports the pending receiver, as asyncio would */
    char *err = wt_capture_end();
    ASSERT(strstr(err, "destroyed but it is pending") != NULL);
    free(err);
    ASSERT_EQ_INT(weft_udp_fd(left_open), -1);
    weft_udp_close(left_open);
}

const wt_test_t wt_tests[] = {
    T(udp_round_trip_ipv4),
    T(udp_round_trip_ipv6),
    T(udp_truncation_reported),
    T(udp_cancel_and_timeout_lose_nothing),
    T(udp_many_in_order),
    T(udp_bad_input),
    T(udp_outside_task),
    T(udp_loop_close_with_open_endpoint),
    WT_END,
};
