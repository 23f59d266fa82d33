/* An echo server: every connection gets its own task, which sends back what it reads, line by
 * line. Usage: echo_server [PORT] (default 8889; listens on 127.0.0.1 and ::1). Stop it with
 * Ctrl-C. Try it with examples/echo_client, or `nc localhost 8889`. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

static int handle(weft_stream_t *s, void *arg) {
    struct sockaddr_storage peer;
    socklen_t len;
    char host[INET6_ADDRSTRLEN] = "?";
    const char *line;
    size_t n;
    int rc;
    if (weft_stream_peername(s, &peer, &len) == 0)
        inet_ntop(peer.ss_family,
                  peer.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&peer)->sin_addr
                                            : (void *)&((struct sockaddr_in6 *)&peer)->sin6_addr,
                  host, sizeof host);
    printf("%s connected\n", host);
    /* readline returns the partial last line at the end of the stream, then n == 0. */
    while ((rc = weft_stream_readline(s, &line, &n)) == 0 && n > 0) {
        if ((rc = weft_stream_write(s, line, n)) < 0 || (rc = weft_stream_drain(s)) < 0)
            break;
    }
    printf("%s gone%s%s\n", host, rc < 0 ? ": " : "", rc < 0 ? weft_strerror(rc) : "");
    return 0;
}

static int serve(void *arg, void **result) {
    int port = *(int *)arg, rc;
    weft_server_t *srv;
    if ((rc = weft_start_server(&srv, handle, NULL, "localhost", port, NULL)) < 0)
        return weft_fail(rc, "cannot listen on localhost:%d: %s", port, weft_strerror(rc));
    printf("listening on localhost:%d (%zu sockets)\n", weft_server_port(srv), weft_server_nsockets(srv));
    fflush(stdout);
    rc = weft_server_serve_forever(srv);
    weft_server_wait_closed(srv);
    weft_server_free(srv);
    return rc;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8889;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = weft_run(serve, &port, NULL);
    if (rc < 0 && rc != WEFT_EINTR) /* Ctrl-C or SIGTERM: main was cancelled, closed the server */
        fprintf(stderr, "echo_server: %s\n", weft_error_message());
    return weft_exit_status(rc);
}
