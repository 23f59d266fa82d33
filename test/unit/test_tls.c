/* TLS streams on loopback, with certificates made for each test by gen_certs.sh (a CA, a
 * "localhost" / 127.0.0.1 certificate it signed, and a self-signed one nobody trusts): round
 * trips, a large transfer both ways, ALPN, verification failures and their messages, the
 * handshake's timeout and cancellation, start_tls on both sides, half-close and the end of
 * the stream. Every context is made before the loop runs and the certificate directory is
 * removed at once, so a failing test leaves nothing behind. */
#define _GNU_SOURCE
#include <libgen.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wt.h"

/* ---- certificates and contexts ---------------------------------------------------------------- */

static struct {
    weft_tls_t *srv;        /* server.pem, signed by the test CA */
    weft_tls_t *srv_self;   /* self.pem, self-signed */
    weft_tls_t *srv_alpn;   /* server.pem, ALPN h2 then http/1.1 */
    weft_tls_t *cli;        /* trusts the test CA */
    weft_tls_t *cli_noverify;
    weft_tls_t *cli_system; /* the system's CA store only */
    weft_tls_t *srv_mtls;   /* server.pem, requires a client certificate from the CA */
    weft_tls_t *cli_cert;   /* trusts the CA, presents server.pem as its own */
    char dir[64];
} C;

static void run_script(const char *dir) {
    char src[512], cmd[1200];
    int rc;
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        wt_skip("the openssl command line tool is not installed");
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(cmd, sizeof cmd, "sh '%s/gen_certs.sh' '%s'", dirname(src), dir);
    if ((rc = system(cmd)) != 0)
        WT_FAIL("%s: status %d", cmd, rc);
}

static void remove_dir(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        WT_FAIL("%s failed", cmd);
}

static const char *path(const char *name) {
    static char p[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", C.dir, name);
    return p[i];
}

static weft_tls_t *server_ctx(const char *cert, const char *key) {
    weft_tls_t *t;
    ASSERT_OK(weft_tls_new(&t, WEFT_TLS_SERVER));
    ASSERT_OK(weft_tls_use_certificate(t, path(cert), path(key)));
    return t;
}

static weft_tls_t *client_ctx(int trust_ca, int verify) {
    weft_tls_t *t;
    ASSERT_OK(weft_tls_new(&t, WEFT_TLS_CLIENT));
    if (trust_ca)
        ASSERT_OK(weft_tls_load_verify(t, path("ca.pem"), NULL));
    ASSERT_OK(weft_tls_set_verify(t, verify));
    return t;
}

/* Makes the certificates and every context the tests use, then removes the files. */
static void certs(void) {
    static const char *const alpn[] = {"h2", "http/1.1"};
    snprintf(C.dir, sizeof C.dir, "/tmp/weft-tls-XXXXXX");
    if (!mkdtemp(C.dir))
        WT_FAIL("mkdtemp failed");
    run_script(C.dir);
    C.srv = server_ctx("server.pem", "server.key");
    C.srv_self = server_ctx("self.pem", "self.key");
    C.srv_alpn = server_ctx("server.pem", "server.key");
    ASSERT_OK(weft_tls_set_alpn(C.srv_alpn, alpn, 2));
    C.cli = client_ctx(1, 1);
    C.cli_noverify = client_ctx(0, 0);
    C.cli_system = client_ctx(0, 1);
    C.srv_mtls = server_ctx("server.pem", "server.key");
    ASSERT_OK(weft_tls_load_verify(C.srv_mtls, path("ca.pem"), NULL));
    ASSERT_OK(weft_tls_set_verify(C.srv_mtls, 1));
    C.cli_cert = client_ctx(1, 1);
    ASSERT_OK(weft_tls_use_certificate(C.cli_cert, path("server.pem"), path("server.key")));
    remove_dir(C.dir);
}

static void certs_free(void) {
    weft_tls_unref(C.srv);
    weft_tls_unref(C.srv_self);
    weft_tls_unref(C.srv_alpn);
    weft_tls_unref(C.cli);
    weft_tls_unref(C.cli_noverify);
    weft_tls_unref(C.cli_system);
    weft_tls_unref(C.srv_mtls);
    weft_tls_unref(C.cli_cert);
}

/* ---- servers and connections ------------------------------------------------------------------- */

static weft_server_t *serve(weft_stream_handler_fn h, void *arg, weft_tls_t *tls, int *port) {
    weft_server_options_t o = {.tls = tls, .tls_handshake_timeout = 5};
    weft_server_t *srv;
    ASSERT_OK(weft_start_server(&srv, h, arg, "127.0.0.1", 0, &o));
    *port = weft_server_port(srv);
    ASSERT_GT_INT(*port, 0);
    return srv;
}

static void server_end(weft_server_t *srv) {
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_OK(weft_server_free(srv));
}

static int dial(weft_stream_t **s, int port, weft_tls_t *tls, const char *hostname,
                double timeout) {
    weft_connect_options_t o = {.tls = tls, .server_hostname = hostname,
                                .tls_handshake_timeout = timeout};
    return weft_open_connection(s, "127.0.0.1", port, &o);
}

static void close_stream(weft_stream_t *s) {
    weft_stream_close(s);
    ASSERT_OK(weft_stream_wait_closed(s));
    weft_stream_free(s);
}

/* Runs fn as the main task of a real-clock loop, which must end clean; fn returns (void *)1. */
static void run_real(weft_task_fn fn, void *arg) {
    weft_loop_t *loop = wt_loop_real();
    void *res = NULL;
    int rc = wt_run_task(loop, fn, arg, &res);
    if (rc != 0)
        WT_FAIL("main task: %d (%s): %s", rc, wt_errname(rc), weft_error_message());
    ASSERT_EQ_PTR(res, (void *)1);
    WT_CLOSE_LOOP(loop);
}

/* A line echo server: each line back, until the end of the stream. */
static int echo_lines(weft_stream_t *s, void *arg) {
    const char *line;
    size_t n;
    int rc;
    while ((rc = weft_stream_readline(s, &line, &n)) == 0 && n > 0)
        if ((rc = weft_stream_write(s, line, n)) < 0)
            break;
    return rc;
}

static void expect_line(weft_stream_t *s, const char *want) {
    const char *line;
    size_t n;
    ASSERT_OK(weft_stream_readline(s, &line, &n));
    ASSERT_EQ_INT(n, strlen(want));
    ASSERT(memcmp(line, want, n) == 0);
}

/* ---- round trips ---------------------------------------------------------------------------- */

static int echo_main(void *arg, void **result) {
    const char *hostname = arg;
    int port;
    weft_server_t *srv = serve(echo_lines, NULL, C.srv, &port);
    weft_stream_t *s;
    ASSERT_OK(dial(&s, port, C.cli, hostname, 0));
    ASSERT_NULL(weft_stream_alpn(s));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_stream_write(s, "hello over TLS\n", 15));
        expect_line(s, "hello over TLS\n");
    }
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_echo_round_trip) {
    certs();
    run_real(echo_main, "localhost");
    certs_free();
}

/* No server_hostname: the host, an IP literal, is checked against the IP subjectAltName (and
 * is not sent as SNI). */
TEST(tls_ip_address_verified) {
    certs();
    run_real(echo_main, NULL);
    certs_free();
}

/* open_connection("localhost"): the name both resolves and verifies. */
static int by_name_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(echo_lines, NULL, C.srv, &port);
    weft_connect_options_t o = {.tls = C.cli, .family = AF_INET};
    weft_stream_t *s;
    ASSERT_OK(weft_open_connection(&s, "localhost", port, &o));
    ASSERT_OK(weft_stream_write(s, "by name\n", 8));
    expect_line(s, "by name\n");
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}
TEST(tls_connect_by_name) {
    certs();
    run_real(by_name_main, NULL);
    certs_free();
}

/* ---- a large transfer ---------------------------------------------------------------------- */

#define BIG_CHUNK 65536

static size_t big_total(void) { return WT_SANITIZED ? (size_t)2 << 20 : (size_t)6 << 20; }

static unsigned char pattern(size_t i) { return (unsigned char)(i * 131 + (i >> 13)); }

/* Echoes everything back in chunks, with backpressure, until the end of the stream. */
static int echo_bytes(weft_stream_t *s, void *arg) {
    char *buf = malloc(BIG_CHUNK);
    ssize_t r;
    int rc = 0;
    ASSERT_NOT_NULL(buf);
    while ((r = weft_stream_read(s, buf, BIG_CHUNK)) > 0)
        if ((rc = weft_stream_write(s, buf, (size_t)r)) < 0 || (rc = weft_stream_drain(s)) < 0)
            break;
    free(buf);
    return r < 0 ? (int)r : rc;
}

static int big_reader(void *arg, void **result) {
    weft_stream_t *s = arg;
    unsigned char *buf = malloc(BIG_CHUNK);
    size_t got = 0;
    ssize_t r;
    ASSERT_NOT_NULL(buf);
    while ((r = weft_stream_read(s, buf, BIG_CHUNK)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern(got + (size_t)i))
                WT_FAIL("byte %zu differs", got + (size_t)i);
        got += (size_t)r;
    }
    free(buf);
    ASSERT_EQ_INT(r, 0);
    *result = (void *)got;
    return 0;
}

static int big_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(echo_bytes, NULL, C.srv, &port);
    weft_stream_t *s;
    weft_task_t *reader;
    size_t total = big_total();
    unsigned char *chunk = malloc(BIG_CHUNK);
    void *got = NULL;
    ASSERT_NOT_NULL(chunk);
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    reader = wt_spawn(NULL, big_reader, s, "reader");
    for (size_t off = 0; off < total; off += BIG_CHUNK) {
        for (size_t i = 0; i < BIG_CHUNK; i++)
            chunk[i] = pattern(off + i);
        ASSERT_OK(weft_stream_write(s, chunk, BIG_CHUNK));
        ASSERT_OK(weft_stream_drain(s));
    }
    /* close_notify: the server sees the end, echoes what is left, and closes in turn. */
    ASSERT_OK(weft_stream_write_eof(s));
    ASSERT_OK(weft_await(reader, &got));
    weft_unref(reader);
    ASSERT_EQ_INT((size_t)got, total);
    free(chunk);
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_large_transfer) {
    certs();
    run_real(big_main, NULL);
    certs_free();
}

/* ---- ALPN ---------------------------------------------------------------------------------- */

typedef struct alpn_case {
    const char *offer[2];
    size_t n;
    const char *expect;     /* NULL: none agreed */
    char server_saw[32];
} alpn_case_t;

static int alpn_handler(weft_stream_t *s, void *arg) {
    alpn_case_t *c = arg;
    const char *p = weft_stream_alpn(s);
    snprintf(c->server_saw, sizeof c->server_saw, "%s", p ? p : "(none)");
    return echo_lines(s, NULL);
}

static int alpn_main(void *arg, void **result) {
    alpn_case_t *c = arg;
    int port;
    weft_server_t *srv = serve(alpn_handler, c, C.srv_alpn, &port);
    weft_tls_t *cli = client_ctx(0, 0);
    weft_stream_t *s;
    ASSERT_OK(weft_tls_set_alpn(cli, c->offer, c->n));
    ASSERT_OK(dial(&s, port, cli, "localhost", 0));
    weft_tls_unref(cli); /* the stream holds its own reference */
    if (c->expect)
        ASSERT_EQ_STR(weft_stream_alpn(s), c->expect);
    else
        ASSERT_NULL(weft_stream_alpn(s));
    ASSERT_OK(weft_stream_write(s, "x\n", 2));
    expect_line(s, "x\n"); /* the handler has run */
    ASSERT_EQ_STR(c->server_saw, c->expect ? c->expect : "(none)");
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

/* The server's preference wins among what the client offers; nothing in common: no ALPN. */
TEST(tls_alpn_negotiated) {
    alpn_case_t both = {{"http/1.1", "h2"}, 2, "h2", ""};
    alpn_case_t h11 = {{"http/1.1", NULL}, 1, "http/1.1", ""};
    alpn_case_t none = {{"spdy/3", NULL}, 1, NULL, ""};
    alpn_case_t not_offered = {{NULL, NULL}, 0, NULL, ""};
    certs();
    run_real(alpn_main, &both);
    run_real(alpn_main, &h11);
    run_real(alpn_main, &none);
    run_real(alpn_main, &not_offered);
    certs_free();
}

/* ---- verification -------------------------------------------------------------------------- */

typedef struct refusal {
    weft_tls_t *srv, *cli;
    const char *hostname;
    int expect;
    const char *msg[2];
} refusal_t;

static int refusal_main(void *arg, void **result) {
    refusal_t *r = arg;
    int port;
    weft_server_t *srv = serve(echo_lines, NULL, r->srv, &port);
    weft_stream_t *s = NULL;
    int rc = dial(&s, port, r->cli, r->hostname, 0);
    ASSERT_EQ_INT(rc, r->expect);
    ASSERT_NULL(s);
    for (int i = 0; i < 2; i++)
        if (r->msg[i])
            ASSERT_CONTAINS(weft_error_message(), r->msg[i]);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

/* Runs the refusal; the server logs its side of the failed handshake. */
static void refused(refusal_t *r) {
    char *err;
    wt_capture_begin();
    run_real(refusal_main, r);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "TLS handshake with a client failed");
    free(err);
}

TEST(tls_wrong_hostname_refused) {
    certs();
    refusal_t r = {C.srv, C.cli, "wrong.example", WEFT_ECERTIFICATE,
                   {"certificate verify failed: hostname mismatch", "'wrong.example'"}};
    refused(&r);
    refusal_t ip = {C.srv, C.cli, "127.0.0.2", WEFT_ECERTIFICATE,
                    {"certificate verify failed: IP address mismatch", "'127.0.0.2'"}};
    refused(&ip);
    certs_free();
}

TEST(tls_untrusted_certificate_refused) {
    certs();
    refusal_t r = {C.srv_self, C.cli, "localhost", WEFT_ECERTIFICATE,
                   {"certificate verify failed: self-signed certificate", NULL}};
    refused(&r);
    /* Without load_verify the system's store is used: it does not know the test CA. */
    refusal_t sys = {C.srv, C.cli_system, "localhost", WEFT_ECERTIFICATE,
                     {"certificate verify failed: unable to get local issuer certificate", NULL}};
    refused(&sys);
    certs_free();
}

static int noverify_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(echo_lines, NULL, C.srv_self, &port);
    weft_stream_t *s;
    ASSERT_OK(dial(&s, port, C.cli_noverify, "wrong.example", 0));
    ASSERT_OK(weft_stream_write(s, "anyway\n", 7));
    expect_line(s, "anyway\n");
    close_stream(s);
    /* No server_hostname needed either when nothing is verified. */
    ASSERT_OK(dial(&s, port, C.cli_noverify, NULL, 0));
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_verify_off_accepts) {
    certs();
    run_real(noverify_main, NULL);
    certs_free();
}

/* A server that verifies requires a client certificate. In TLS 1.3 the client's handshake is
 * over before the server has checked it: the refusal comes as an alert on the first read. */
static int mtls_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(echo_lines, NULL, C.srv_mtls, &port);
    weft_stream_t *s;
    char c;
    ASSERT_OK(dial(&s, port, C.cli_cert, "localhost", 0));
    ASSERT_OK(weft_stream_write(s, "with a certificate\n", 19));
    expect_line(s, "with a certificate\n");
    close_stream(s);
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    ASSERT_EQ_INT(weft_stream_read(s, &c, 1), WEFT_ETLS);
    ASSERT_CONTAINS(weft_error_message(), "certificate required");
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_client_certificate_required) {
    char *err;
    certs();
    wt_capture_begin();
    run_real(mtls_main, NULL);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "peer did not return a certificate");
    free(err);
    certs_free();
}

/* ---- the handshake's timeout and cancellation ------------------------------------------------- */

/* A plain TCP server that never answers: it reads (the ClientHello) until the end. */
static int silent(weft_stream_t *s, void *arg) {
    char *data;
    size_t n;
    int rc = weft_stream_read_all(s, &data, &n);
    if (rc == 0)
        free(data);
    return 0;
}

static int timeout_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(silent, NULL, NULL, &port);
    weft_stream_t *s = NULL;
    double t0 = wt_now(), dt;
    ASSERT_EQ_INT(dial(&s, port, C.cli, "localhost", 0.2), WEFT_ETIMEDOUT);
    dt = wt_now() - t0;
    ASSERT_NULL(s);
    ASSERT_CONTAINS(weft_error_message(), "TLS handshake timed out");
    if (dt < 0.19 || dt > 1.0)
        WT_FAIL("the handshake gave up after %.3f s, expected 0.2 s", dt);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_handshake_timeout) {
    certs();
    run_real(timeout_main, NULL);
    certs_free();
}

static int dial_forever(void *arg, void **result) {
    weft_stream_t *s = NULL;
    int rc = dial(&s, (int)(intptr_t)arg, C.cli, "localhost", 0);
    ASSERT_NULL(s);
    return rc;
}

static int cancel_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(silent, NULL, NULL, &port);
    weft_task_t *t = wt_spawn(NULL, dial_forever, (void *)(intptr_t)port, "dialer");
    double t0 = wt_now();
    ASSERT_OK(weft_sleep(0.05)); /* connected, ClientHello sent, waiting for the answer */
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    ASSERT_LT_INT((wt_now() - t0) * 1000, 1000);
    weft_unref(t);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_cancel_during_handshake) {
    certs();
    run_real(cancel_main, NULL);
    certs_free();
}

/* The server's side: a client that connects and says nothing; close_clients() ends the
 * handshake at once (the stream is closed under it), the handler never runs. */
static int never_called(weft_stream_t *s, void *arg) {
    WT_FAIL("the handler ran without a handshake");
}

static int server_abandon_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(never_called, NULL, C.srv, &port);
    weft_stream_t *s;
    double t0;
    ASSERT_OK(dial(&s, port, NULL, NULL, 0)); /* plain */
    ASSERT_OK(weft_sleep(0.05));
    t0 = wt_now();
    weft_server_close_clients(srv);
    server_end(srv);
    ASSERT_LT_INT((wt_now() - t0) * 1000, 1000);
    close_stream(s);
    *result = (void *)1;
    return 0;
}

TEST(tls_server_handshake_closed) {
    char *err;
    certs();
    wt_capture_begin();
    run_real(server_abandon_main, NULL);
    err = wt_capture_end();
    ASSERT_CONTAINS(err, "the stream was closed during the TLS handshake");
    free(err);
    certs_free();
}

/* ---- start_tls ------------------------------------------------------------------------------ */

/* SMTP-like: a line in the clear, then both sides upgrade. */
static int starttls_server(weft_stream_t *s, void *arg) {
    ASSERT_NULL(weft_stream_alpn(s));
    expect_line(s, "STARTTLS\n");
    ASSERT_OK(weft_stream_write(s, "GO\n", 3));
    ASSERT_OK(weft_stream_drain(s));
    ASSERT_OK(weft_stream_start_tls(s, C.srv, NULL, 0));
    /* Once only. */
    ASSERT_EQ_INT(weft_stream_start_tls(s, C.srv, NULL, 0), WEFT_EINVAL);
    expect_line(s, "secret\n");
    ASSERT_OK(weft_stream_write(s, "kept\n", 5));
    return echo_lines(s, NULL);
}

static int starttls_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(starttls_server, NULL, NULL, &port);
    weft_stream_t *s;
    ASSERT_OK(dial(&s, port, NULL, NULL, 0));
    ASSERT_OK(weft_stream_write(s, "STARTTLS\n", 9));
    expect_line(s, "GO\n");
    ASSERT_OK(weft_stream_start_tls(s, C.cli, "localhost", 0));
    ASSERT_OK(weft_stream_write(s, "secret\n", 7));
    expect_line(s, "kept\n");
    ASSERT_OK(weft_stream_write(s, "more\n", 5));
    expect_line(s, "more\n");
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_start_tls_upgrade) {
    certs();
    run_real(starttls_main, NULL);
    certs_free();
}

/* Bytes already buffered in the clear: -EBUSY, and the stream stays usable in the clear. */
static int busy_server(weft_stream_t *s, void *arg) {
    ASSERT_OK(weft_stream_write(s, "one\ntwo\n", 8));
    return echo_lines(s, NULL);
}

static int starttls_busy_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(busy_server, NULL, NULL, &port);
    weft_stream_t *s;
    ASSERT_OK(dial(&s, port, NULL, NULL, 0));
    expect_line(s, "one\n");
    /* "two\n" came in the same segment and waits in the read buffer. */
    ASSERT_EQ_INT(weft_stream_buffered(s), 4);
    ASSERT_EQ_INT(weft_stream_start_tls(s, C.cli, "localhost", 0), WEFT_EBUSY);
    expect_line(s, "two\n");
    ASSERT_EQ_INT(weft_stream_start_tls(s, NULL, "localhost", 0), WEFT_EINVAL);
    ASSERT_OK(weft_stream_write(s, "still plain\n", 12));
    expect_line(s, "still plain\n");
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_start_tls_refused_when_buffered) {
    certs();
    run_real(starttls_busy_main, NULL);
    certs_free();
}

/* ---- the end of the stream ----------------------------------------------------------------- */

typedef struct eof_case {
    int unclean;         /* the client ends with a bare TCP FIN, no close_notify */
    int server_rc;
    char got[32];
} eof_case_t;

static int read_to_end(weft_stream_t *s, void *arg) {
    eof_case_t *c = arg;
    char *data = NULL;
    size_t n = 0;
    c->server_rc = weft_stream_read_all(s, &data, &n);
    if (c->server_rc == 0) {
        snprintf(c->got, sizeof c->got, "%.*s", (int)n, data);
        free(data);
    }
    return 0;
}

static int eof_main(void *arg, void **result) {
    eof_case_t *c = arg;
    int port;
    weft_server_t *srv = serve(read_to_end, c, C.srv, &port);
    weft_stream_t *s;
    c->server_rc = 1;
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    ASSERT_OK(weft_stream_write(s, "bye", 3));
    if (c->unclean) {
        ASSERT_EQ_INT(shutdown(weft_stream_fd(s), SHUT_WR), 0);
        ASSERT_OK(weft_sleep(0.05));
        weft_server_close(srv);
        ASSERT_OK(weft_server_wait_closed(srv)); /* the server read to the end */
    }
    close_stream(s);
    server_end(srv);
    ASSERT_EQ_INT(c->server_rc, 0);
    ASSERT_EQ_STR(c->got, "bye");
    *result = (void *)1;
    return 0;
}

/* The client closes: close_notify, then FIN; the server reads its data, then the end (0). */
TEST(tls_clean_shutdown_eof) {
    eof_case_t c = {0, 1, ""};
    certs();
    run_real(eof_main, &c);
    certs_free();
}

/* A peer that ends without close_notify: read as the end of the stream, as asyncio does. */
TEST(tls_unclean_eof_is_eof) {
    eof_case_t c = {1, 1, ""};
    certs();
    run_real(eof_main, &c);
    certs_free();
}

/* write_eof over TLS: the server sees the end (close_notify), answers, and the client, whose
 * reading side is still open, reads the answer and then the end. */
static int answer_after_eof(weft_stream_t *s, void *arg) {
    char *data;
    size_t n;
    ASSERT_OK(weft_stream_read_all(s, &data, &n));
    ASSERT_EQ_INT(n, 8);
    ASSERT(memcmp(data, "question", 8) == 0);
    free(data);
    return weft_stream_write(s, "answer", 6);
}

static int half_close_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(answer_after_eof, NULL, C.srv, &port);
    weft_stream_t *s;
    char *data;
    size_t n;
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    ASSERT(weft_stream_can_write_eof(s));
    ASSERT_OK(weft_stream_write(s, "question", 8));
    ASSERT_OK(weft_stream_write_eof(s));
    ASSERT_EQ_INT(weft_stream_write(s, "late", 4), WEFT_EPIPE);
    ASSERT_OK(weft_stream_read_all(s, &data, &n));
    ASSERT_EQ_INT(n, 6);
    ASSERT(memcmp(data, "answer", 6) == 0);
    free(data);
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_half_close) {
    certs();
    run_real(half_close_main, NULL);
    certs_free();
}

/* Reads smaller than a record: the rest of the record waits, decrypted, inside OpenSSL and not
 * on the socket, and must be read without any new readiness. */
static int one_record(weft_stream_t *s, void *arg) {
    ASSERT_OK(weft_stream_write(s, "abcdefgh", 8));
    return echo_lines(s, NULL);
}

static int small_reads_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(one_record, NULL, C.srv, &port);
    weft_stream_t *s;
    char c, all[9] = "";
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    for (int i = 0; i < 8; i++) {
        ASSERT_EQ_INT(weft_stream_read(s, &c, 1), 1);
        all[i] = c;
    }
    ASSERT_EQ_STR(all, "abcdefgh");
    close_stream(s);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_small_reads_drain_record) {
    certs();
    run_real(small_reads_main, NULL);
    certs_free();
}

/* close() right after a large write: the poller sends the buffer through TLS in the
 * background, then the socket closes; the server reads every byte, then the end. */
static int count_bytes(weft_stream_t *s, void *arg) {
    size_t *count = arg;
    char *buf = malloc(BIG_CHUNK);
    ssize_t r;
    ASSERT_NOT_NULL(buf);
    while ((r = weft_stream_read(s, buf, BIG_CHUNK)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            if ((unsigned char)buf[i] != pattern(*count + (size_t)i))
                WT_FAIL("byte %zu differs", *count + (size_t)i);
        *count += (size_t)r;
    }
    free(buf);
    ASSERT_EQ_INT(r, 0);
    return 0;
}

static int background_main(void *arg, void **result) {
    size_t count = 0, total = (size_t)4 << 20;
    int sndbuf = 32768;
    int port;
    weft_server_t *srv = serve(count_bytes, &count, C.srv, &port);
    weft_stream_t *s;
    unsigned char *data = malloc(total);
    ASSERT_NOT_NULL(data);
    for (size_t i = 0; i < total; i++)
        data[i] = pattern(i);
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    /* Small, so that the socket cannot take it all at once. */
    ASSERT_EQ_INT(setsockopt(weft_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    ASSERT_OK(weft_stream_write(s, data, total));
    ASSERT_GT_INT(weft_stream_write_buffer_size(s), 0); /* more than the socket took at once */
    free(data);
    weft_stream_free(s); /* closes once the buffer is sent */
    weft_server_close(srv);
    ASSERT_OK(weft_server_wait_closed(srv));
    ASSERT_EQ_INT(count, total);
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_close_flushes_in_background) {
    certs();
    run_real(background_main, NULL);
    certs_free();
}

/* A TLS stream still open when its loop closes: the loop closes it (and its TLS state); the
 * handle is released afterwards. */
static weft_stream_t *left_open;

static int handshake_only(weft_stream_t *s, void *arg) { return 0; }

static int left_open_main(void *arg, void **result) {
    int port;
    weft_server_t *srv = serve(handshake_only, NULL, C.srv, &port);
    ASSERT_OK(dial(&left_open, port, C.cli, "localhost", 0));
    server_end(srv);
    *result = (void *)1;
    return 0;
}

TEST(tls_loop_close_with_open_stream) {
    weft_loop_t *loop;
    void *res = NULL;
    certs();
    loop = wt_loop_real();
    ASSERT_OK(wt_run_task(loop, left_open_main, NULL, &res));
    ASSERT_EQ_PTR(res, (void *)1);
    WT_CLOSE_LOOP(loop);
    ASSERT_EQ_INT(weft_stream_fd(left_open), -1);
    weft_stream_free(left_open);
    certs_free();
}

/* Writing through TLS to a peer that has gone, with SIGPIPE's default action (a program that
 * does not ignore it): an error code, never death by SIGPIPE. The first write draws the
 * peer's reset, the read reports it (ECONNRESET), and the socket then answers writes with
 * EPIPE, which write(2), as OpenSSL's own socket BIO uses, would turn into SIGPIPE. */
static int abort_at_once(weft_stream_t *s, void *arg) {
    weft_stream_abort(s);
    return 0;
}

static int sigpipe_main(void *arg, void **result) {
    int port, rc;
    weft_server_t *srv = serve(abort_at_once, NULL, C.srv, &port);
    weft_stream_t *s;
    char block[4096] = {0};
    signal(SIGPIPE, SIG_DFL);
    ASSERT_OK(dial(&s, port, C.cli, "localhost", 0));
    server_end(srv); /* the server has closed its end */
    ASSERT_OK(weft_stream_write(s, block, sizeof block));
    ASSERT_OK(weft_sleep(0.05));
    rc = (int)weft_stream_read(s, block, sizeof block);
    if (rc != WEFT_ECONNRESET && rc != 0)
        WT_FAIL("reading from a reset connection: %d (%s)", rc, wt_errname(rc));
    rc = weft_stream_write(s, block, sizeof block);
    if (rc != WEFT_EPIPE && rc != WEFT_ECONNRESET)
        WT_FAIL("writing to a reset connection: %d (%s)", rc, wt_errname(rc));
    close_stream(s);
    *result = (void *)1;
    return 0;
}

TEST(tls_sigpipe_never_kills) {
    certs();
    run_real(sigpipe_main, NULL);
    certs_free();
}

/* ---- contexts -------------------------------------------------------------------------------- */

TEST(tls_context_errors) {
    weft_tls_t *t;
    static const char *const bad_alpn[] = {"h2", ""};
    int mismatch, missing, missing_ca;
    char msg[256];
    snprintf(C.dir, sizeof C.dir, "/tmp/weft-tls-XXXXXX");
    if (!mkdtemp(C.dir))
        WT_FAIL("mkdtemp failed");
    run_script(C.dir);
    ASSERT_EQ_INT(weft_tls_new(&t, 7), WEFT_EINVAL);
    ASSERT_OK(weft_tls_new(&t, WEFT_TLS_SERVER));
    ASSERT_NOT_NULL(weft_tls_native(t));
    missing = weft_tls_use_certificate(t, path("nope.pem"), NULL);
    mismatch = weft_tls_use_certificate(t, path("server.pem"), path("self.key"));
    snprintf(msg, sizeof msg, "%s", weft_error_message());
    missing_ca = weft_tls_load_verify(t, path("nope.pem"), NULL);
    remove_dir(C.dir);
    ASSERT_EQ_INT(missing, WEFT_ENOENT);
    ASSERT_EQ_INT(mismatch, WEFT_EINVAL);
    ASSERT_CONTAINS(msg, "the private key does not match the certificate");
    ASSERT_EQ_INT(missing_ca, WEFT_ENOENT);
    ASSERT_EQ_INT(weft_tls_load_verify(t, NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_tls_set_alpn(t, bad_alpn, 2), WEFT_EINVAL);
    ASSERT_OK(weft_tls_set_alpn(t, bad_alpn, 1));
    ASSERT_OK(weft_tls_set_alpn(t, NULL, 0));
    weft_tls_unref(t);
    weft_tls_unref(NULL);
}

/* A client that verifies needs a name to verify (a Unix socket has no host). */
static int unix_server(weft_stream_t *s, void *arg) { return 0; }

static int no_hostname_main(void *arg, void **result) {
    weft_server_t *srv;
    weft_stream_t *s = NULL;
    char p[64];
    weft_connect_options_t o = {.tls = C.cli};
    snprintf(p, sizeof p, "/tmp/weft-tls-sock-%d", (int)getpid());
    ASSERT_OK(weft_start_unix_server(&srv, unix_server, NULL, p, NULL));
    ASSERT_EQ_INT(weft_open_unix_connection(&s, p, &o), WEFT_EINVAL);
    ASSERT_CONTAINS(weft_error_message(), "server_hostname");
    ASSERT_NULL(s);
    server_end(srv);
    unlink(p);
    *result = (void *)1;
    return 0;
}

TEST(tls_verify_needs_hostname) {
    certs();
    run_real(no_hostname_main, NULL);
    certs_free();
}

const wt_test_t wt_tests[] = {
    T(tls_echo_round_trip),
    T(tls_ip_address_verified),
    T(tls_connect_by_name),
    T(tls_large_transfer),
    T(tls_alpn_negotiated),
    T(tls_wrong_hostname_refused),
    T(tls_untrusted_certificate_refused),
    T(tls_verify_off_accepts),
    T(tls_client_certificate_required),
    T(tls_handshake_timeout),
    T(tls_cancel_during_handshake),
    T(tls_server_handshake_closed),
    T(tls_start_tls_upgrade),
    T(tls_start_tls_refused_when_buffered),
    T(tls_clean_shutdown_eof),
    T(tls_unclean_eof_is_eof),
    T(tls_half_close),
    T(tls_small_reads_drain_record),
    T(tls_close_flushes_in_background),
    T(tls_loop_close_with_open_stream),
    T(tls_sigpipe_never_kills),
    T(tls_context_errors),
    T(tls_verify_needs_hostname),
    WT_END,
};
