/* echo server, the `echo` workload of the shared peer suite: weft's streams, one handler task
 * per connection, read(65536) / write / drain, as the asyncio peer does. Listens on
 * 127.0.0.1:PORT (backlog 1024), prints `READY <port>`, runs until killed.
 * usage: echo PORT */
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

static int handle(weft_stream_t *s, void *arg) {
    char buf[65536];
    for (;;) {
        ssize_t n = weft_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return 0; /* end of stream or a connection error: the server closes it */
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            return 0;
    }
}

static int serve(void *arg, void **result) {
    int port = *(int *)arg, rc;
    weft_server_options_t opts = {.backlog = 1024, .stack_size = 128 * 1024};
    weft_server_t *srv;
    if ((rc = weft_start_server(&srv, handle, NULL, "127.0.0.1", port, &opts)) < 0)
        return weft_fail(rc, "listen on 127.0.0.1:%d: %s", port, weft_strerror(rc));
    printf("READY %d\n", port);
    fflush(stdout);
    rc = weft_server_serve_forever(srv);
    weft_server_wait_closed(srv);
    weft_server_free(srv);
    return rc;
}

int main(int argc, char **argv) {
    int port, rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    if ((rc = weft_run(serve, &port, NULL)) < 0) {
        fprintf(stderr, "echo: %s\n", weft_error_message());
        return 1;
    }
    return 0;
}
