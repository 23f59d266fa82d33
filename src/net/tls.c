/* TLS for streams (asyncio's SSLContext and start_tls), with OpenSSL 3.
 *
 * OpenSSL talks to the stream's non-blocking socket itself: no memory BIOs, no second copy of
 * the bytes. The stream keeps its buffers and its readiness model; this file only supplies a
 * transport (recv / send / shutdown / free, see stream.h) that runs SSL_read / SSL_write and
 * turns OpenSSL's WANT_READ / WANT_WRITE into the stream's WEFT__WANT_*, and the handshake,
 * which is the one place TLS suspends a task.
 *
 * Contexts are reference counted with atomics so that loops on several threads may share one
 * (a server per thread with SO_REUSEPORT). Configure a context before its first handshake:
 * like ssl.SSLContext, changing it while handshakes run is the caller's race. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "stream.h"

#define HANDSHAKE_TIMEOUT_DEFAULT 60.0 /* asyncio's ssl_handshake_timeout */

struct weft_tls {
    SSL_CTX *ctx;
    /* Writes go through this method rather than OpenSSL's socket BIO, whose write(2) raises
     * SIGPIPE on a connection the peer reset: a library must not kill its host process, so we
     * send with MSG_NOSIGNAL. Per context, since the only alternative is global state. */
    BIO_METHOD *wmethod;
    unsigned char *alpn;       /* wire format (length-prefixed names), or NULL */
    size_t alpn_len;
    pthread_mutex_t lock;      /* trust store set-up, once per context */
    int refs;                  /* atomic */
    int role;
    bool verify;
    bool trust_loaded;         /* the system store, or load_verify's */
    bool own_store;            /* load_verify replaced the store */
};

/* ---- errors --------------------------------------------------------------------------------- */

/* Sets the task's message to "what: <OpenSSL's reason>" and empties the thread's OpenSSL error
 * queue, so the next call starts clean. */
static int ssl_fail(int code, const char *what) {
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    char buf[256], msg[512];
    if (e && !reason) {
        ERR_error_string_n(e, buf, sizeof buf);
        reason = buf;
    }
    snprintf(msg, sizeof msg, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
    weft__set_errmsg(msg);
    ERR_clear_error();
    return code;
}

/* The task's message, without weft_fail()'s side effect of naming the task's own failure. */
static int fail(int code, const char *msg) {
    weft__set_errmsg(msg);
    return code;
}

static int errno_fail(int code, const char *what, const char *file) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s: %s", what, file, weft_strerror(code));
    weft__set_errmsg(msg);
    ERR_clear_error();
    return code;
}

/* ---- the write BIO -------------------------------------------------------------------------- */

static int bio_write(BIO *b, const char *buf, int n) {
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t w;
    BIO_clear_retry_flags(b);
    do
        w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)w;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    return cmd == BIO_CTRL_FLUSH; /* nothing is buffered here */
}

/* ---- contexts ------------------------------------------------------------------------------- */

/* Server side of ALPN: the server's most preferred protocol that the client offers; none in
 * common goes on without ALPN, as Python's ssl module does. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
    weft_tls_t *tls = arg;
    for (size_t i = 0; i < tls->alpn_len; i += 1u + tls->alpn[i]) {
        const unsigned char *p = tls->alpn + i;
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break;
            if (in[j] == p[0] && memcmp(in + j + 1, p + 1, p[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int weft_tls_new(weft_tls_t **out, int role) {
    weft_tls_t *tls;
    long opts;
    if (!out || (role != WEFT_TLS_CLIENT && role != WEFT_TLS_SERVER))
        return WEFT_EINVAL;
    if (!OPENSSL_init_ssl(0, NULL)) /* thread-safe, and a no-op after the first call */
        return ssl_fail(WEFT_ENOMEM, "cannot initialize OpenSSL");
    if (!(tls = calloc(1, sizeof *tls)))
        return WEFT_ENOMEM;
    tls->role = role;
    tls->refs = 1;
    tls->ctx = SSL_CTX_new(role == WEFT_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
    tls->wmethod = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "weft socket write");
    if (!tls->ctx || !tls->wmethod || !BIO_meth_set_write(tls->wmethod, bio_write) ||
        !BIO_meth_set_ctrl(tls->wmethod, bio_ctrl) || pthread_mutex_init(&tls->lock, NULL)) {
        SSL_CTX_free(tls->ctx);
        BIO_meth_free(tls->wmethod);
        free(tls);
        return ssl_fail(WEFT_ENOMEM, "cannot create a TLS context");
    }
    SSL_CTX_set_app_data(tls->ctx, tls);
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    /* The stream retries a write from its own buffer, which moves as it grows, and wants each
     * record's worth acknowledged as soon as it is on the socket. */
    SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* A TCP end of stream without close_notify reads as the end of the stream, as asyncio's
     * SSL transport delivers it (eof_received) and Python's ssl does (suppress_ragged_eofs):
     * many peers close without close_notify, and refusing their last response helps nobody.
     * Protocols that can be truncated to their harm carry their own framing (HTTP's
     * Content-Length). The option also stops OpenSSL answering the EOF with an alert. */
    opts = SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
    if (role == WEFT_TLS_CLIENT) {
        tls->verify = true;
        SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
        SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_alpn_select_cb(tls->ctx, alpn_select, tls);
        /* No TLS 1.3 session tickets: weft's client cannot resume a session, and tickets are
         * records the client never asked for. A client that writes and closes without reading
         * them closes with unread bytes, so its kernel answers with a reset that can destroy
         * the data it just sent. weft_tls_native() gives them back to those who want them. */
        SSL_CTX_set_num_tickets(tls->ctx, 0);
    }
    SSL_CTX_set_options(tls->ctx, opts);
    *out = tls;
    return 0;
}

weft_tls_t *weft__tls_ref(weft_tls_t *tls) {
    __atomic_add_fetch(&tls->refs, 1, __ATOMIC_RELAXED);
    return tls;
}

void weft_tls_unref(weft_tls_t *tls) {
    if (!tls || __atomic_sub_fetch(&tls->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(tls->ctx);
    BIO_meth_free(tls->wmethod);
    pthread_mutex_destroy(&tls->lock);
    free(tls->alpn);
    free(tls);
}

void *weft_tls_native(weft_tls_t *tls) { return tls ? tls->ctx : NULL; }

int weft_tls_use_certificate(weft_tls_t *tls, const char *cert_file, const char *key_file) {
    if (!tls || !cert_file)
        return WEFT_EINVAL;
    if (!key_file)
        key_file = cert_file; /* one PEM file with both, as load_cert_chain(certfile) */
    ERR_clear_error();
    if (access(cert_file, R_OK) < 0)
        return errno_fail(-errno, "cannot read the certificate", cert_file);
    if (access(key_file, R_OK) < 0)
        return errno_fail(-errno, "cannot read the private key", key_file);
    if (SSL_CTX_use_certificate_chain_file(tls->ctx, cert_file) != 1)
        return ssl_fail(WEFT_EINVAL, "cannot load the certificate");
    if (SSL_CTX_use_PrivateKey_file(tls->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL checks the pair here already when the certificate came first. */
        unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            return ssl_fail(WEFT_EINVAL, "the private key does not match the certificate");
        return ssl_fail(WEFT_EINVAL, "cannot load the private key");
    }
    if (SSL_CTX_check_private_key(tls->ctx) != 1)
        return ssl_fail(WEFT_EINVAL, "the private key does not match the certificate");
    return 0;
}

int weft_tls_load_verify(weft_tls_t *tls, const char *ca_file, const char *ca_dir) {
    int rc = 0;
    if (!tls || (!ca_file && !ca_dir))
        return WEFT_EINVAL;
    ERR_clear_error();
    if (ca_file && access(ca_file, R_OK) < 0)
        return errno_fail(-errno, "cannot read the CA file", ca_file);
    if (ca_dir && access(ca_dir, R_OK | X_OK) < 0)
        return errno_fail(-errno, "cannot read the CA directory", ca_dir);
    pthread_mutex_lock(&tls->lock);
    /* "Instead of the system store": a fresh store the first time, added to afterwards (as
     * repeated load_verify_locations calls add up). */
    if (!tls->own_store) {
        X509_STORE *st = X509_STORE_new();
        if (!st)
            rc = WEFT_ENOMEM;
        else
            SSL_CTX_set_cert_store(tls->ctx, st);
    }
    if (rc == 0) {
        tls->own_store = tls->trust_loaded = true;
        if (SSL_CTX_load_verify_locations(tls->ctx, ca_file, ca_dir) != 1)
            rc = WEFT_EINVAL;
    }
    pthread_mutex_unlock(&tls->lock);
    if (rc < 0)
        return ssl_fail(rc, "cannot load the CA certificates");
    return 0;
}

int weft_tls_set_verify(weft_tls_t *tls, int verify) {
    int mode;
    if (!tls)
        return WEFT_EINVAL;
    tls->verify = verify != 0;
    if (!verify)
        mode = SSL_VERIFY_NONE;
    else if (tls->role == WEFT_TLS_CLIENT)
        mode = SSL_VERIFY_PEER;
    else /* a server that verifies requires a client certificate (ssl.CERT_REQUIRED) */
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(tls->ctx, mode, NULL);
    return 0;
}

int weft_tls_set_alpn(weft_tls_t *tls, const char *const *protocols, size_t n) {
    unsigned char *wire = NULL;
    size_t len = 0;
    if (!tls || (n && !protocols))
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        size_t l = protocols[i] ? strlen(protocols[i]) : 0;
        if (l == 0 || l > 255)
            return fail(WEFT_EINVAL, "ALPN protocol names are 1 to 255 bytes long");
        len += 1 + l;
    }
    if (len > 65535)
        return WEFT_EINVAL;
    if (len) {
        if (!(wire = malloc(len)))
            return WEFT_ENOMEM;
        len = 0;
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(protocols[i]);
            wire[len++] = (unsigned char)l;
            memcpy(wire + len, protocols[i], l);
            len += l;
        }
    }
    /* The client sends its list in the ClientHello; the server's is read by alpn_select. */
    if (tls->role == WEFT_TLS_CLIENT && SSL_CTX_set_alpn_protos(tls->ctx, wire, (unsigned)len)) {
        free(wire);
        return ssl_fail(WEFT_ENOMEM, "cannot set the ALPN protocols");
    }
    free(tls->alpn);
    tls->alpn = wire;
    tls->alpn_len = len;
    return 0;
}

/* The system's CA store, loaded at the first handshake that needs it rather than at creation:
 * a context given load_verify() never reads it, and a test suite creating many contexts does
 * not parse the system bundle each time. */
static void load_trust(weft_tls_t *tls) {
    pthread_mutex_lock(&tls->lock);
    if (!tls->trust_loaded) {
        /* Without a system store the handshake's verification reports it, with its reason. */
        SSL_CTX_set_default_verify_paths(tls->ctx);
        ERR_clear_error();
        tls->trust_loaded = true;
    }
    pthread_mutex_unlock(&tls->lock);
}

/* ---- the transport -------------------------------------------------------------------------- */

/* The outcome of an SSL_read / SSL_write that did not succeed. `sys` is errno right after it. */
static ssize_t io_error(weft_stream_t *s, int ret, int sys, bool reading) {
    SSL *ssl = s->tls;
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        weft__fd_clear(s->fde, WEFT__RD);
        return WEFT__WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        weft__fd_clear(s->fde, WEFT__WR);
        return WEFT__WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify */
        return reading ? 0 : WEFT_EPIPE;
    case SSL_ERROR_SYSCALL:
        /* OpenSSL is done with this connection: no close_notify on a dead one. */
        SSL_set_quiet_shutdown(ssl, 1);
        if (ERR_peek_error())
            return ssl_fail(WEFT_ETLS, "TLS error");
        if (sys == 0) /* an unclean end (OpenSSL without SSL_OP_IGNORE_UNEXPECTED_EOF) */
            return reading ? 0 : WEFT_EPIPE;
        weft__set_errmsg(weft_strerror(-sys));
        return -sys;
    default:
        SSL_set_quiet_shutdown(ssl, 1);
        return ssl_fail(WEFT_ETLS, "TLS error");
    }
}

/* Always asks OpenSSL, whatever the fd's readiness: decrypted bytes may be waiting in the SSL
 * object, which a readable-only check would strand. */
static ssize_t tls_recv(weft_stream_t *s, void *buf, size_t n) {
    size_t got;
    int r;
    ERR_clear_error();
    errno = 0;
    if ((r = SSL_read_ex(s->tls, buf, n, &got)) == 1)
        return (ssize_t)got;
    return io_error(s, r, errno, true);
}

/* Never suspends: the stream's background flush calls it from the poller.
 *
 * With partial writes, each SSL_write returns once a record (16 KiB at most) is on the socket.
 * We go on until OpenSSL reports EAGAIN: the stream's background flush waits for the socket's
 * next writable edge, and a socket that never said EAGAIN gives no such edge, so stopping
 * early would strand the rest of the buffer. What was taken is returned even if the next
 * record failed: the failure comes back on the next call. */
static ssize_t tls_send(weft_stream_t *s, const void *buf, size_t n) {
    size_t done = 0, put;
    ssize_t rc;
    int r;
    /* Not writable since the last EAGAIN: the write would only say EAGAIN again (unless
     * OpenSSL needs to read first, a TLS 1.2 renegotiation). Spares a system call on each
     * poller event while the peer does not read. */
    if (!weft__fd_ready(s->fde, WEFT__WR) && SSL_want(s->tls) == SSL_WRITING)
        return WEFT__WANT_WRITE;
    while (done < n) {
        ERR_clear_error();
        errno = 0;
        if ((r = SSL_write_ex(s->tls, (const char *)buf + done, n - done, &put)) == 1) {
            done += put;
            continue;
        }
        rc = io_error(s, r, errno, false);
        return done ? (ssize_t)done : rc;
    }
    return (ssize_t)done;
}

/* Bytes still unread when the socket closes make the kernel send a reset instead of a FIN, and
 * a reset may destroy what we sent last (our close_notify included) before the peer reads it.
 * With TLS, "the application read all it expected" no longer means "nothing is left": records
 * it never asked for (session tickets, key updates, the peer's own close_notify) arrive too.
 * Whatever is there now is discarded, a bounded amount. */
static void discard_input(int fd) {
    char junk[16384];
    for (int i = 0; i < 16; i++)
        if (recv(fd, junk, sizeof junk, MSG_DONTWAIT) <= 0)
            break;
}

/* write_eof() and close(): close_notify, then the TCP FIN. TLS 1.3 lets the peer go on sending
 * after our close_notify (a half-close), and OpenSSL goes on reading, so write_eof keeps its
 * meaning. The FIN follows in every case: nothing may follow close_notify anyway, and if the
 * alert could not be sent (a full socket; we never wait), the peer still sees the end of the
 * stream, unclean but an end. */
static void tls_shutdown(weft_stream_t *s) {
    SSL *ssl = s->tls;
    ERR_clear_error();
    if (!(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl);
    ERR_clear_error();
    if (s->closing)
        discard_input(s->fd);
    shutdown(s->fd, SHUT_WR);
}

static void tls_free(weft_stream_t *s) {
    SSL *ssl = s->tls;
    weft_tls_t *tls = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    SSL_free(ssl);
    weft_tls_unref(tls);
    s->tls = NULL;
    free(s->alpn);
    s->alpn = NULL;
}

static const weft__transport_t tls_transport = {tls_recv, tls_send, tls_shutdown, tls_free};

/* ---- the handshake -------------------------------------------------------------------------- */

static bool is_ip_literal(const char *host) {
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* A new SSL for s: SNI and the name to verify (client), the socket. */
static int conn_new(weft_stream_t *s, weft_tls_t *tls, const char *host, SSL **out) {
    SSL *ssl;
    BIO *wbio;
    if (host && !*host)
        host = NULL;
    if (tls->role == WEFT_TLS_CLIENT && tls->verify && !host)
        /* ssl: "check_hostname requires server_hostname" */
        return fail(WEFT_EINVAL, "a server_hostname is needed to verify the server's "
                                 "certificate (or turn verification off)");
    if (tls->verify)
        load_trust(tls);
    ERR_clear_error();
    if (!(ssl = SSL_new(tls->ctx)))
        return ssl_fail(WEFT_ENOMEM, "cannot start TLS");
    if (tls->role == WEFT_TLS_CLIENT) {
        SSL_set_connect_state(ssl);
        if (host) {
            bool ip = is_ip_literal(host);
            int ok = 1;
            if (!ip) /* RFC 6066: SNI carries host names only */
                ok = SSL_set_tlsext_host_name(ssl, host);
            if (ok && tls->verify) {
                if (ip) {
                    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
                } else {
                    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                    ok = SSL_set1_host(ssl, host);
                }
            }
            if (!ok) {
                SSL_free(ssl);
                return ssl_fail(WEFT_EINVAL, "invalid server_hostname");
            }
        }
    } else {
        SSL_set_accept_state(ssl);
    }
    if (!SSL_set_rfd(ssl, s->fd) || !(wbio = BIO_new(tls->wmethod))) {
        SSL_free(ssl);
        return ssl_fail(WEFT_ENOMEM, "cannot start TLS");
    }
    BIO_set_data(wbio, (void *)(intptr_t)s->fd);
    BIO_set_init(wbio, 1);
    SSL_set0_wbio(ssl, wbio);
    weft__tls_ref(tls);
    *out = ssl;
    return 0;
}

/* Why the handshake failed, as a code and the task's message. */
static int handshake_error(SSL *ssl, int ret, int sys, const char *host) {
    int err = SSL_get_error(ssl, ret);
    long v = SSL_get_verify_result(ssl);
    char msg[512];
    if (err == SSL_ERROR_SSL && v != X509_V_OK) {
        const char *why = X509_verify_cert_error_string(v);
        if ((v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) && host)
            snprintf(msg, sizeof msg, "certificate verify failed: %s, certificate is not valid "
                     "for '%s'", why, host);
        else
            snprintf(msg, sizeof msg, "certificate verify failed: %s", why);
        weft__set_errmsg(msg);
        ERR_clear_error();
        return WEFT_ECERTIFICATE;
    }
    if (err == SSL_ERROR_SSL || (err == SSL_ERROR_SYSCALL && ERR_peek_error()))
        return ssl_fail(WEFT_ETLS, "TLS handshake failed");
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL && sys) {
        snprintf(msg, sizeof msg, "TLS handshake failed: %s", weft_strerror(-sys));
        weft__set_errmsg(msg);
        return -sys;
    }
    /* The end of the stream (SSL_ERROR_ZERO_RETURN or SYSCALL without errno): asyncio's
     * ConnectionResetError("Connection lost") during the handshake. */
    weft__set_errmsg("the connection was closed during the TLS handshake");
    return WEFT_ECONNRESET;
}

static int handshake_loop(weft_stream_t *s, SSL *ssl, const char *host) {
    for (;;) {
        int r, sys, err, rc;
        ERR_clear_error();
        errno = 0;
        if ((r = SSL_do_handshake(ssl)) == 1)
            return 0;
        sys = errno;
        err = SSL_get_error(ssl, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            return handshake_error(ssl, r, sys, host);
        weft__fd_clear(s->fde, err == SSL_ERROR_WANT_READ ? WEFT__RD : WEFT__WR);
        rc = weft__stream_wait(s, err == SSL_ERROR_WANT_READ ? WEFT__WANT_READ : WEFT__WANT_WRITE);
        if (rc == 0 && s->closing)
            rc = WEFT_EBADF;
        if (rc < 0) {
            if (rc == WEFT_EBADF)
                weft__set_errmsg("the stream was closed during the TLS handshake");
            return rc;
        }
    }
}

int weft__tls_handshake(weft_stream_t *s, weft_tls_t *tls, const char *server_hostname,
                        double timeout) {
    weft_timeout_t to;
    SSL *ssl = NULL;
    int rc;
    if (!s || !tls || s->tls)
        return WEFT_EINVAL;
    if (timeout == 0)
        timeout = HANDSHAKE_TIMEOUT_DEFAULT;
    if (!(timeout > 0)) /* asyncio: "ssl_handshake_timeout should be a positive number" */
        return fail(WEFT_EINVAL, "the TLS handshake timeout must be positive");
    if (s->closing || !s->fde)
        return WEFT_EBADF;
    if ((rc = conn_new(s, tls, server_hostname, &ssl)) < 0)
        return rc;
    s->refs++; /* the stream outlives a free() made meanwhile */
    s->hs_ssl = ssl;
    s->hs_tls = tls;
    if ((rc = weft_timeout_begin(&to, timeout)) == 0) {
        rc = handshake_loop(s, ssl, server_hostname);
        rc = weft_timeout_end(&to, rc);
        if (rc == WEFT_ETIMEDOUT) {
            char msg[128];
            snprintf(msg, sizeof msg, "the TLS handshake timed out (%g s)", timeout);
            weft__set_errmsg(msg);
        }
    }
    if (rc == 0) {
        const unsigned char *p;
        unsigned len = 0;
        SSL_get0_alpn_selected(ssl, &p, &len);
        if (len && !(s->alpn = strndup((const char *)p, len)))
            rc = WEFT_ENOMEM;
    }
    s->hs_ssl = NULL;
    s->hs_tls = NULL;
    if (rc == 0) {
        s->tls = ssl;
        s->tp = &tls_transport;
    } else {
        /* The stream stays plain; its caller closes it. */
        SSL_free(ssl);
        weft_tls_unref(tls);
    }
    weft__stream_unref(s);
    return rc;
}

void weft__tls_drop_handshake(weft_stream_t *s) {
    SSL_free(s->hs_ssl);
    weft_tls_unref(s->hs_tls);
    s->hs_ssl = NULL;
    s->hs_tls = NULL;
}

/* ---- streams -------------------------------------------------------------------------------- */

int weft_stream_start_tls(weft_stream_t *s, weft_tls_t *tls, const char *server_hostname,
                          double handshake_timeout) {
    weft_task_t *t = weft__current();
    if (!s || !tls)
        return WEFT_EINVAL;
    if (!t)
        return WEFT_EPERM;
    if (t->loop != s->loop)
        return WEFT_EINVAL;
    if (s->tls)
        return fail(WEFT_EINVAL, "the stream already uses TLS");
    if (s->closing)
        return WEFT_EBADF;
    if (s->werr)
        return s->werr;
    /* Bytes already buffered in the clear would be sent after, or read as, TLS records; a read
     * in progress would take the handshake's bytes. */
    if (s->wlen || s->rlen || s->reading)
        return fail(WEFT_EBUSY, "start_tls needs a stream with nothing buffered and no read "
                                "in progress");
    return weft__tls_handshake(s, tls, server_hostname, handshake_timeout);
}

const char *weft_stream_alpn(const weft_stream_t *s) { return s ? s->alpn : NULL; }
