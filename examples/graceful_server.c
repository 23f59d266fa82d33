/* A TCP server that shuts down gracefully on SIGTERM or SIGINT: it stops accepting, closes the
 * idle connections, lets the requests in flight finish (within a deadline, after which it aborts
 * what is left), and exits 0.
 *
 * Protocol: each line is a request; the answer, "done: <line>", comes after some simulated work:
 * 0.5 s, or as many seconds as the line says if it is a number.
 *
 * Usage: graceful_server [PORT [GRACE]]  (PORT 0 or none: any free port; GRACE: seconds the
 * requests in flight get once the signal came, 5 by default). Try: graceful_server 8890, then
 * `echo hello | nc 127.0.0.1 8890` and `kill -TERM <pid>` while it works. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

typedef struct conn conn_t;

typedef struct app {
    weft_server_t *srv;
    weft_event_t *stop;
    int signo;        /* the signal that asked us to stop */
    int stopping;
    conn_t *conns;    /* connections being served */
    int port;
    double grace;
} app_t;

/* One per connection, while its handler runs. */
struct conn {
    conn_t *next, **prevp;
    weft_task_t *task;
    int busy;         /* a request is in flight */
};

static double work_time(const char *line, size_t n) {
    char buf[32], *end;
    double secs;
    if (n >= sizeof buf)
        return 0.5;
    memcpy(buf, line, n);
    buf[n] = 0;
    secs = strtod(buf, &end);
    return end != buf && secs >= 0 && secs < 3600 ? secs : 0.5;
}

static int handle(weft_stream_t *s, void *arg) {
    app_t *app = arg;
    conn_t *c = malloc(sizeof *c);
    const char *line;
    size_t n;
    int rc = 0;
    if (!c)
        return WEFT_ENOMEM;
    *c = (conn_t){app->conns, &app->conns, weft_current_task(), 0};
    if (c->next)
        c->next->prevp = &c->next;
    app->conns = c;
    /* Once stopping, a connection takes no new request; the one it is working on is finished. */
    while (!app->stopping && (rc = weft_stream_readline(s, &line, &n)) == 0 && n > 0) {
        char answer[512];
        int len = snprintf(answer, sizeof answer, "done: %.*s", (int)n, line);
        if (len >= (int)sizeof answer)
            len = (int)sizeof answer - 1;
        c->busy = 1;
        rc = weft_sleep(work_time(line, n)); /* the work; cancelled only past the deadline */
        if (rc == 0 && (rc = weft_stream_write(s, answer, (size_t)len)) == 0)
            rc = weft_stream_drain(s);
        c->busy = 0;
        if (rc < 0)
            break;
    }
    *c->prevp = c->next;
    if (c->next)
        c->next->prevp = c->prevp;
    free(c);
    /* Cancelled while idle (the server is stopping): a normal end for this connection. */
    return rc == WEFT_ECANCELED && app->stopping ? 0 : rc;
}

static void on_signal(app_t *app, int signo) {
    if (!app->signo)
        app->signo = signo;
    weft_event_set(app->stop);
}
static void on_sigterm(void *app) { on_signal(app, SIGTERM); }
static void on_sigint(void *app) { on_signal(app, SIGINT); }

/* Cancels the connections' handlers: the idle ones only, or all of them. */
static int cancel_conns(app_t *app, int busy_too) {
    int n = 0;
    for (conn_t *c = app->conns; c; c = c->next)
        if (busy_too || !c->busy)
            n += weft_cancel(c->task, "server shutting down") == 1;
    return n;
}

static int count_busy(const app_t *app) {
    int n = 0;
    for (const conn_t *c = app->conns; c; c = c->next)
        n += c->busy;
    return n;
}

static int serve(void *arg, void **result) {
    app_t *app = arg;
    weft_loop_t *loop = weft_get_running_loop();
    weft_timeout_t to;
    int rc, idle;
    if ((rc = weft_event_new(&app->stop)) < 0)
        return rc;
    if ((rc = weft_start_server(&app->srv, handle, app, "127.0.0.1", app->port, NULL)) < 0) {
        weft_event_free(app->stop);
        return weft_fail(rc, "cannot listen on 127.0.0.1:%d: %s", app->port, weft_strerror(rc));
    }
    /* Our own handlers: weft_run() would otherwise turn these signals into a cancellation of
     * this task, which is the right default, but not the orderly shutdown wanted here. */
    if ((rc = weft_add_signal_handler(loop, SIGTERM, on_sigterm, app)) < 0 ||
        (rc = weft_add_signal_handler(loop, SIGINT, on_sigint, app)) < 0) {
        weft_server_free(app->srv);
        weft_event_free(app->stop);
        return weft_fail(rc, "cannot handle signals: %s", weft_strerror(rc));
    }
    printf("listening on 127.0.0.1:%d\n", weft_server_port(app->srv));
    fflush(stdout);

    weft_event_wait(app->stop);
    app->stopping = 1;
    weft_server_close(app->srv);
    idle = cancel_conns(app, 0);
    printf("%s: stopped accepting; %d request(s) in flight, %d idle connection(s) closed\n",
           app->signo == SIGINT ? "SIGINT" : "SIGTERM", count_busy(app), idle);
    fflush(stdout);

    weft_timeout_begin(&to, app->grace);
    rc = weft_server_wait_closed(app->srv);
    rc = weft_timeout_end(&to, rc);
    if (rc == WEFT_ETIMEDOUT) {
        int n = cancel_conns(app, 1);
        weft_server_abort_clients(app->srv);
        printf("deadline of %g s passed: aborted %d connection(s)\n", app->grace, n);
        rc = weft_server_wait_closed(app->srv);
    } else if (rc == 0) {
        printf("every request in flight finished\n");
    }
    weft_remove_signal_handler(loop, SIGTERM);
    weft_remove_signal_handler(loop, SIGINT);
    weft_server_free(app->srv);
    weft_event_free(app->stop);
    printf("bye\n");
    return rc;
}

int main(int argc, char **argv) {
    app_t app = {.port = argc > 1 ? atoi(argv[1]) : 0, .grace = argc > 2 ? atof(argv[2]) : 5.0};
    int rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = weft_run(serve, &app, NULL);
    if (rc < 0)
        fprintf(stderr, "graceful_server: %s\n", weft_error_message());
    return weft_exit_status(rc);
}
