/* An echo client: connects, sends each argument as a line, prints each echoed line, then
 * half-closes and reads to the end. Usage: echo_client [HOST [PORT [WORDS...]]]
 * (default localhost 8889 "hello" "weft"). Runs against examples/echo_server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

struct args {
    const char *host;
    int port;
    char **words;
    int nwords;
};

static int client(void *arg, void **result) {
    struct args *a = arg;
    weft_connect_options_t opts = {.happy_eyeballs_delay = 0.25};
    weft_stream_t *s;
    const char *line;
    size_t n;
    int rc;
    if ((rc = weft_open_connection(&s, a->host, a->port, &opts)) < 0)
        return weft_fail(rc, "cannot connect to %s:%d: %s", a->host, a->port, weft_strerror(rc));
    for (int i = 0; i < a->nwords && rc == 0; i++) {
        struct iovec iov[2] = {{a->words[i], strlen(a->words[i])}, {"\n", 1}};
        if ((rc = weft_stream_writelines(s, iov, 2)) == 0 && (rc = weft_stream_drain(s)) == 0 &&
            (rc = weft_stream_readline(s, &line, &n)) == 0)
            printf("echo: %.*s", (int)n, line);
    }
    if (rc == 0)
        rc = weft_stream_write_eof(s);
    while (rc == 0 && (rc = weft_stream_readline(s, &line, &n)) == 0 && n > 0)
        printf("extra: %.*s", (int)n, line);
    weft_stream_close(s);
    weft_stream_wait_closed(s);
    weft_stream_free(s);
    return rc;
}

int main(int argc, char **argv) {
    static char *defaults[] = {"hello", "weft"};
    struct args a = {argc > 1 ? argv[1] : "localhost", argc > 2 ? atoi(argv[2]) : 8889,
                     argc > 3 ? argv + 3 : defaults, argc > 3 ? argc - 3 : 2};
    if (weft_run(client, &a, NULL) < 0) {
        fprintf(stderr, "echo_client: %s\n", weft_error_message());
        return 1;
    }
    return 0;
}
