/* Seed 27 (seed 001's chat server): every message a client sends is broadcast to every
 * connected client. Usage: 27_chat_server [PORT] (default 8888; listens on 127.0.0.1).
 * Port of 27_chat_server.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

/* clients = [] */
static weft_stream_t **clients;
static size_t nclients, cap;

static int add_client(weft_stream_t *w) {
    if (nclients == cap) {
        size_t ncap = cap ? 2 * cap : 16;
        weft_stream_t **c = realloc(clients, ncap * sizeof *c);
        if (!c)
            return WEFT_ENOMEM;
        clients = c;
        cap = ncap;
    }
    clients[nclients++] = w;
    return 0;
}

static void remove_client(weft_stream_t *w) {
    for (size_t i = 0; i < nclients; i++)
        if (clients[i] == w) {
            clients[i] = clients[--nclients];
            return;
        }
}

static int handle_client(weft_stream_t *s, void *arg) {
    char data[100];
    int rc = add_client(s);
    if (rc < 0)
        return rc;
    for (;;) {
        ssize_t n = weft_stream_read(s, data, sizeof data);
        if (n <= 0) { /* end of stream (or the connection failed) */
            weft_stream_close(s);
            weft_stream_wait_closed(s);
            remove_client(s);
            return n < 0 && n != WEFT_ECONNRESET ? (int)n : 0;
        }
        /* A client that went away meanwhile only fails its own write; the others still get it.
         * Iterate over a copy: drain suspends, and the list may change meanwhile. */
        size_t k = nclients;
        weft_stream_t **snapshot = malloc(k * sizeof *snapshot);
        if (!snapshot)
            return WEFT_ENOMEM;
        memcpy(snapshot, clients, k * sizeof *snapshot);
        for (size_t i = 0; i < k; i++) {
            if (weft_stream_write(snapshot[i], data, (size_t)n) == 0)
                weft_stream_drain(snapshot[i]);
        }
        free(snapshot);
    }
}

/* async def main() */
static int async_main(void *arg, void **result) {
    int port = *(int *)arg, rc;
    weft_server_t *server;
    if ((rc = weft_start_server(&server, handle_client, NULL, "127.0.0.1", port, NULL)) < 0)
        return weft_fail(rc, "cannot listen on 127.0.0.1:%d: %s", port, weft_strerror(rc));
    printf("READY %d\n", port);
    fflush(stdout);
    /* async with server: await server.serve_forever() */
    rc = weft_server_serve_forever(server);
    weft_server_close(server);
    weft_server_wait_closed(server);
    weft_server_free(server);
    return rc;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8888;
    int rc = weft_run(async_main, &port, NULL);
    if (rc == WEFT_EINTR) /* SIGINT / SIGTERM: main was cancelled and closed the server */
        return weft_exit_status(rc);
    if (rc < 0 && rc != WEFT_ECANCELED) {
        fprintf(stderr, "27_chat_server: %s\n", weft_error_message());
        return 1;
    }
    return 0;
}
