/* A TLS client and the TLS server it talks to, in one program: the server answers each line
 * with the line reversed; the client verifies the server's certificate (for "localhost"),
 * agrees on an ALPN protocol, sends a few lines, half-closes (close_notify), and reads the
 * server's goodbye up to the end of the stream. It prints both sides of the exchange.
 *
 * Usage: tls_client [CERT.pem KEY.pem]
 * The certificate must be valid for "localhost"; the client trusts it as its own CA, so a
 * self-signed one does. Without arguments a throwaway one is made with the openssl command
 * line tool in a temporary directory, removed at the end. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

struct setup {
    const char *cert, *key;
};

static const char *const protocols[] = {"reverse/1"};

static const char *alpn_of(const weft_stream_t *s) {
    const char *p = weft_stream_alpn(s);
    return p ? p : "(none)";
}

/* The server's side of each connection: reversed lines, then a goodbye once the client has
 * finished sending. */
static int reverser(weft_stream_t *s, void *arg) {
    const char *line;
    size_t n;
    int rc;
    printf("server: client connected, ALPN %s\n", alpn_of(s));
    while ((rc = weft_stream_readline(s, &line, &n)) == 0 && n > 0) {
        char out[256];
        size_t len = n - (line[n - 1] == '\n');
        if (len >= sizeof out)
            len = sizeof out - 1;
        for (size_t i = 0; i < len; i++)
            out[i] = line[len - 1 - i];
        out[len] = '\n';
        printf("server: got \"%.*s\", answers \"%.*s\"\n", (int)len, line, (int)len, out);
        if ((rc = weft_stream_write(s, out, len + 1)) < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    printf("server: the client finished sending (close_notify); saying goodbye\n");
    return weft_stream_write(s, "goodbye\n", 8);
}

static int run(void *arg, void **result) {
    static const char *const words[] = {"hello", "stackful", "coroutines"};
    struct setup *st = arg;
    weft_tls_t *srv_tls = NULL, *cli_tls = NULL;
    weft_server_t *srv = NULL;
    weft_stream_t *s = NULL;
    weft_server_options_t so = {0};
    const char *line;
    size_t n;
    int port, rc;

    /* The server: certificate and key, and the protocol it speaks. */
    if ((rc = weft_tls_new(&srv_tls, WEFT_TLS_SERVER)) < 0 ||
        (rc = weft_tls_use_certificate(srv_tls, st->cert, st->key)) < 0 ||
        (rc = weft_tls_set_alpn(srv_tls, protocols, 1)) < 0)
        goto out;
    so.tls = srv_tls;
    if ((rc = weft_start_server(&srv, reverser, NULL, "127.0.0.1", 0, &so)) < 0)
        goto out;
    port = weft_server_port(srv);
    printf("server: listening on 127.0.0.1:%d with TLS\n", port);

    /* The client: trusts that certificate (instead of the system's CAs) and checks that it
     * names "localhost". */
    if ((rc = weft_tls_new(&cli_tls, WEFT_TLS_CLIENT)) < 0 ||
        (rc = weft_tls_load_verify(cli_tls, st->cert, NULL)) < 0 ||
        (rc = weft_tls_set_alpn(cli_tls, protocols, 1)) < 0)
        goto out;
    weft_connect_options_t co = {.tls = cli_tls, .server_hostname = "localhost",
                                 .tls_handshake_timeout = 10};
    if ((rc = weft_open_connection(&s, "127.0.0.1", port, &co)) < 0)
        goto out;
    printf("client: connected, certificate verified for localhost, ALPN %s\n", alpn_of(s));

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        struct iovec iov[2] = {{(void *)words[i], strlen(words[i])}, {"\n", 1}};
        printf("client: sends \"%s\"\n", words[i]);
        if ((rc = weft_stream_writelines(s, iov, 2)) < 0 || (rc = weft_stream_drain(s)) < 0 ||
            (rc = weft_stream_readline(s, &line, &n)) < 0)
            goto out;
        printf("client: received \"%.*s\"\n", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
    }
    /* Half-close: TLS's close_notify then the TCP FIN; the answer still comes back. */
    if ((rc = weft_stream_write_eof(s)) < 0)
        goto out;
    while ((rc = weft_stream_readline(s, &line, &n)) == 0 && n > 0)
        printf("client: received \"%.*s\"\n", (int)(line[n - 1] == '\n' ? n - 1 : n), line);
    if (rc == 0)
        printf("client: end of stream\n");

out:
    if (rc < 0)
        rc = weft_fail(rc, "%s", weft_error_message()); /* keep the reason past the clean-up */
    if (s) {
        weft_stream_close(s);
        weft_stream_wait_closed(s);
        weft_stream_free(s);
    }
    if (srv) {
        weft_server_close(srv);
        weft_server_wait_closed(srv);
        weft_server_free(srv);
    }
    weft_tls_unref(cli_tls); /* NULL is fine; streams and servers held their own references */
    weft_tls_unref(srv_tls);
    return rc;
}

int main(int argc, char **argv) {
    struct setup st;
    char dir[] = "/tmp/weft-tls-example-XXXXXX", cert[96], key[96], cmd[512];
    int made = 0, rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3) {
        st.cert = argv[1];
        st.key = argv[2];
    } else if (argc == 1) {
        /* A throwaway self-signed certificate for localhost and 127.0.0.1. */
        if (!mkdtemp(dir)) {
            perror("tls_client: mkdtemp");
            return 1;
        }
        made = 1;
        snprintf(cert, sizeof cert, "%s/cert.pem", dir);
        snprintf(key, sizeof key, "%s/key.pem", dir);
        snprintf(cmd, sizeof cmd,
                 "OPENSSL_CONF=/dev/null openssl req -x509 -newkey ec "
                 "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost "
                 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
                 "-addext basicConstraints=critical,CA:TRUE "
                 "-keyout '%s' -out '%s' 2>/dev/null", key, cert);
        if (system(cmd) != 0) {
            fprintf(stderr, "tls_client: could not make a certificate with the openssl tool; "
                            "give one: tls_client CERT.pem KEY.pem\n");
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            (void)!system(cmd);
            return 1;
        }
        printf("made a throwaway certificate in %s\n", dir);
        st.cert = cert;
        st.key = key;
    } else {
        fprintf(stderr, "usage: tls_client [CERT.pem KEY.pem]\n");
        return 2;
    }
    rc = weft_run(run, &st, NULL);
    if (rc < 0)
        fprintf(stderr, "tls_client: %s (%s)\n", weft_error_message(), weft_err_name(rc));
    if (made) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        (void)!system(cmd);
    }
    return rc < 0 ? 1 : 0;
}
