/* The monitor (aiomonitor for weft): a line-oriented console served by the loop itself on a Unix
 * socket or a loopback TCP port, listing the tasks, showing where one is suspended, cancelling
 * one, and the loop's counters.
 *
 * It must never change what the program does, so it stays out of the loop's bookkeeping: its
 * sockets are registered with the poller directly as WEFT__POLL_UNCOUNTED (as the loop's own
 * wake-up fd is), so they never keep a loop alive nor hide a deadlock, and its tasks (one per
 * connection) are hidden: left out of listings, dumps and the deadlock report. The listening
 * socket is made at once, without a task, so weft_monitor_start() works before the loop runs
 * as well as from a task or a callback, and reports a bind error to its caller. The console is
 * served whenever the loop polls: at every wait, and every few dozen steps of a loop busy with
 * other descriptors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../net/net.h"
#include "dump.h"

#define PROMPT "weft> "
#define LINE_LEN 1024            /* longest command line */
#define CANCEL_WAIT 1.0          /* seconds `cancel` waits for the task to end */
#define CONN_EVENTS (WEFT__POLL_IN | WEFT__POLL_OUT | WEFT__POLL_EDGE | WEFT__POLL_UNCOUNTED)

typedef struct conn conn_t;

struct weft__monitor {
    weft_loop_t *loop;
    weft__closer_t closer;       /* stopped when the loop closes */
    weft__io_t io;               /* the listening socket; fd -1 once closed */
    char *unix_path;             /* removed when it stops */
    char address[128];           /* where it listens, for messages */
    int port;
    conn_t *conns;
    /* weft_monitor_stop() was called: the connections' tasks are cancelled, and the last one
     * to end frees the monitor. */
    bool stopped;
    bool accept_failed_logged;
};

/* One console. Lives exactly as long as its task: the task's end, however it comes (its body
 * returns, it is cancelled before it started, its loop closes), frees it. */
struct conn {
    conn_t *prev, *next;
    struct weft__monitor *mon;
    weft_loop_t *loop;
    weft__io_t io;
    weft__waiter_t done;
    weft_task_t *task;           /* the loop's reference keeps it while the connection lives */
    weft_task_t *waiter;         /* the task waiting for `want` */
    unsigned ready, want;        /* WEFT__POLL_IN / OUT */
    size_t inlen, taken;         /* in[0, inlen) received; the first `taken` bytes were used */
    bool discarding;             /* in a line longer than LINE_LEN: dropped up to its end */
    char in[LINE_LEN];
    weft__text_t out;
};

/* ---- listening address -------------------------------------------------------------------- */

static bool loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static int parse_port(const char *s) {
    long port = 0;
    if (!*s || strlen(s) > 5)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        port = port * 10 + (*s - '0');
    }
    return port <= 65535 ? (int)port : -1;
}

/* A path (anything with a slash, or without a colon) is a Unix socket; "HOST:PORT" with HOST
 * 127.x.y.z, [::1] or localhost is TCP. Any other host is refused: the console can cancel
 * tasks, so it is never offered to the network. */
static int parse_address(const char *address, struct sockaddr_storage *ss, socklen_t *len) {
    const char *colon = strrchr(address, ':');
    char host[64];
    int port;
    memset(ss, 0, sizeof *ss);
    if (!*address)
        return WEFT_EINVAL;
    if (strchr(address, '/') || !colon) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        if (strlen(address) >= sizeof sun->sun_path)
            return WEFT_ENAMETOOLONG;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, address);
        *len = sizeof *sun;
        return 0;
    }
    if ((port = parse_port(colon + 1)) < 0 || (size_t)(colon - address) >= sizeof host)
        return WEFT_EINVAL;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    if (host[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']')
            return WEFT_EINVAL;
        host[n - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return WEFT_EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        if (!strcmp(host, "localhost"))
            strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return WEFT_EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
    }
    return loopback(ss) ? 0 : WEFT_EINVAL;
}

/* A socket file left at the path: removed if nobody listens on it any more (a program that
 * ended without cleaning up), kept (-EADDRINUSE) if a live process serves it. */
static int clear_stale_socket(const struct sockaddr_un *sun) {
    struct stat st;
    int probe, refused;
    if (stat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0; /* nothing there, or not a socket: bind reports it */
    /* Non-blocking: a live server with a full backlog answers EAGAIN instead of making us
     * wait. Only a refusal says nobody listens. */
    if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    refused = connect(probe, (const struct sockaddr *)sun, sizeof *sun) < 0 &&
              errno == ECONNREFUSED;
    close(probe);
    if (!refused)
        return WEFT_EADDRINUSE;
    unlink(sun->sun_path);
    return 0;
}

/* ---- connections: waiting, reading lines, writing ------------------------------------------ */

static void conn_event(weft__io_t *io, unsigned events) {
    conn_t *c = weft__container_of(io, conn_t, io);
    if (events & (WEFT__POLL_ERR | WEFT__POLL_HUP))
        events |= WEFT__POLL_IN | WEFT__POLL_OUT; /* the next call reports it */
    c->ready |= events & (WEFT__POLL_IN | WEFT__POLL_OUT);
    if (c->waiter && (c->ready & c->want)) {
        weft__task_wake(c->waiter, 0);
        c->waiter = NULL;
    }
}

static void conn_wait_abort(weft__run_t *run, void *arg) {
    conn_t *c = arg;
    (void)run;
    c->waiter = NULL;
}

/* [suspends] until the socket is ready for `bit` (edge-triggered: after an EAGAIN). */
static int conn_wait(conn_t *c, unsigned bit) {
    weft_task_t *t = weft__current();
    int rc;
    if (c->ready & bit)
        return 0;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    c->want = bit;
    c->waiter = t;
    WEFT__WAITING(t, "monitor client", c);
    t->run->abort_wait = conn_wait_abort;
    t->run->abort_arg = c;
    rc = weft__suspend(t);
    t->run->abort_wait = NULL;
    c->waiter = NULL;
    return rc < 0 ? rc : 0;
}

enum { LINE_EOF = 0, LINE_OK = 1, LINE_TOO_LONG = 2 };

/* The next line, NUL-terminated without its end of line (CR LF too), valid until the next call.
 * A last line without a newline counts. LINE_TOO_LONG for a line over LINE_LEN (dropped). */
static int conn_readline(conn_t *c, char **line) {
    if (c->taken) {
        memmove(c->in, c->in + c->taken, c->inlen - c->taken);
        c->inlen -= c->taken;
        c->taken = 0;
    }
    for (;;) {
        char *nl = memchr(c->in, '\n', c->inlen);
        ssize_t r;
        int rc;
        if (nl) {
            c->taken = (size_t)(nl - c->in) + 1;
            if (c->discarding) {
                c->discarding = false;
                return LINE_TOO_LONG;
            }
            *nl = '\0';
            if (nl > c->in && nl[-1] == '\r')
                nl[-1] = '\0';
            *line = c->in;
            return LINE_OK;
        }
        if (c->inlen == sizeof c->in) {
            c->discarding = true;
            c->inlen = 0;
        }
        r = recv(c->io.fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
        if (r > 0) {
            c->inlen += (size_t)r;
            continue;
        }
        if (r == 0) {
            if (c->inlen == 0 || c->discarding)
                return LINE_EOF;
            c->in[c->inlen] = '\n'; /* there is room: a full buffer was emptied above */
            c->inlen++;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        c->ready &= ~(unsigned)WEFT__POLL_IN;
        if ((rc = conn_wait(c, WEFT__POLL_IN)) < 0)
            return rc;
    }
}

/* [suspends] Sends what the commands wrote, all of it. */
static int conn_flush(conn_t *c) {
    static const char oom[] = "error: out of memory\n" PROMPT;
    const char *p = c->out.p;
    size_t n = c->out.len, off = 0;
    int rc = 0;
    if (c->out.oom) {
        p = oom;
        n = sizeof oom - 1;
    }
    while (off < n) {
        ssize_t w = send(c->io.fd, p + off, n - off, MSG_NOSIGNAL);
        if (w >= 0) {
            off += (size_t)w;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            break;
        }
        c->ready &= ~(unsigned)WEFT__POLL_OUT;
        if ((rc = conn_wait(c, WEFT__POLL_OUT)) < 0)
            break;
    }
    if (c->out.oom)
        weft__text_free(&c->out);
    c->out.len = 0;
    return rc;
}

/* ---- commands ------------------------------------------------------------------------------- */

#define OUT(...) weft__text_printf(&c->out, __VA_ARGS__)

/* A task of the loop by id ("12" or "#12"); the monitor's own are not offered. */
static weft_task_t *find_task(weft_loop_t *loop, const char *s) {
    unsigned long long id = 0;
    if (*s == '#')
        s++;
    if (!*s || strlen(s) > 19)
        return NULL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return NULL;
        id = id * 10 + (unsigned long long)(*s - '0');
    }
    for (weft_task_t *t = loop->all_tasks; t; t = t->all_next)
        if (t->id == id && !weft__task_hidden(t))
            return t;
    return NULL;
}

typedef struct row {
    char id[24], name[48], state[16], waiting[64], age[24], stack[24];
} row_t;

static void cut(char *dst, size_t len, const char *src) {
    size_t n = strlen(src);
    if (n < len) {
        memcpy(dst, src, n + 1);
    } else { /* shortened, and said so */
        memcpy(dst, src, len - 4);
        strcpy(dst + len - 4, "...");
    }
}

static void cmd_ps(conn_t *c) {
    static const char *const head[] = {"ID", "NAME", "STATE", "WAITING ON", "AGE", "STACK"};
    size_t n = 0, i = 0, w[6];
    const weft_task_t *t, *last = NULL;
    row_t *rows;
    for (t = c->loop->all_tasks; t; t = t->all_next) {
        n += !weft__task_hidden(t);
        last = t;
    }
    if (!(rows = calloc(n ? n : 1, sizeof *rows))) {
        OUT("error: out of memory\n");
        return;
    }
    for (size_t k = 0; k < 6; k++)
        w[k] = strlen(head[k]);
    for (t = last; t; t = t->all_prev) { /* oldest first */
        row_t *r = &rows[i];
        char what[256];
        double age;
        size_t stack;
        if (weft__task_hidden(t))
            continue;
        snprintf(r->id, sizeof r->id, "%llu", (unsigned long long)t->id);
        cut(r->name, sizeof r->name, weft_task_name(t));
        snprintf(r->state, sizeof r->state, "%s", weft__task_state(t));
        cut(r->waiting, sizeof r->waiting,
            t->tstate == WEFT__T_WAITING ? weft_task_waiting_on(t, what, sizeof what) : "-");
        age = weft__task_age(t);
        if (age >= 0)
            snprintf(r->age, sizeof r->age, "%.1fs", age);
        else
            snprintf(r->age, sizeof r->age, "?");
        stack = weft__task_stack_used(t);
        if (stack)
            snprintf(r->stack, sizeof r->stack, "%zu KiB", (stack + 1023) / 1024);
        else
            snprintf(r->stack, sizeof r->stack, "-");
        const char *cols[6] = {r->id, r->name, r->state, r->waiting, r->age, r->stack};
        for (size_t k = 0; k < 6; k++)
            if (strlen(cols[k]) > w[k])
                w[k] = strlen(cols[k]);
        i++;
    }
    OUT("%-*s  %-*s  %-*s  %-*s  %*s  %*s\n", (int)w[0], head[0], (int)w[1], head[1], (int)w[2],
        head[2], (int)w[3], head[3], (int)w[4], head[4], (int)w[5], head[5]);
    for (i = 0; i < n; i++) {
        row_t *r = &rows[i];
        OUT("%-*s  %-*s  %-*s  %-*s  %*s  %*s\n", (int)w[0], r->id, (int)w[1], r->name,
            (int)w[2], r->state, (int)w[3], r->waiting, (int)w[4], r->age, (int)w[5], r->stack);
    }
    OUT("%zu task%s\n", n, n == 1 ? "" : "s");
    free(rows);
}

static void cmd_where(conn_t *c, const char *arg) {
    weft_task_t *t = find_task(c->loop, arg);
    if (!t) {
        OUT("error: no task #%s (ps lists them)\n", arg[0] == '#' ? arg + 1 : arg);
        return;
    }
    weft__task_report(&c->out, t, "    ");
}

/* Cancels the task, waits a little for it to end, and says how it did. */
static void cmd_cancel(conn_t *c, const char *arg) {
    weft_task_t *t = find_task(c->loop, arg);
    unsigned long long id;
    char name[128];
    if (!t) {
        OUT("error: no task #%s (ps lists them)\n", arg[0] == '#' ? arg + 1 : arg);
        return;
    }
    id = (unsigned long long)t->id;
    snprintf(name, sizeof name, "%s", weft_task_name(t));
    if (!weft_cancel(t, "cancelled from the monitor")) {
        OUT("task #%llu '%s' was already done\n", id, name);
        return;
    }
    weft_ref(t);
    /* The outcome is read from the task itself, not with weft_future_error(): the monitor
     * must not mark an error as retrieved, which would silence its report. */
    (void)weft_wait(&t, 1, WEFT_ALL_COMPLETED, CANCEL_WAIT);
    switch (t->state) {
    case WEFT__CANCELLED:
        OUT("task #%llu '%s' cancelled\n", id, name);
        break;
    case WEFT__RESULT:
        OUT("task #%llu '%s' caught the cancellation and returned a result\n", id, name);
        break;
    case WEFT__ERROR:
        OUT("task #%llu '%s' ended with an error: %s (%s)\n", id, name,
            t->msg ? t->msg : weft_strerror(t->code), weft_err_name(t->code));
        break;
    default:
        OUT("task #%llu '%s': cancellation requested; still running after %.0f s (%s)\n", id,
            name, CANCEL_WAIT, weft__task_state(t));
        break;
    }
    weft_unref(t);
}

/* Resident memory in KiB from /proc/self/statm, or -1. */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long size, resident;
    int ok;
    if (!f)
        return -1;
    ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    return ok ? (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static void cmd_stats(conn_t *c) {
    weft_loop_stats_t st;
    long rss = rss_kib();
    weft_loop_stats(c->loop, &st);
    OUT("%-14s %llu\n", "iterations", (unsigned long long)st.iterations);
    OUT("%-14s %zu\n", "tasks", st.tasks);
    OUT("%-14s %zu\n", "pending tasks", st.pending_tasks);
    OUT("%-14s %zu\n", "futures", st.futures);
    OUT("%-14s %zu\n", "timers", st.timers);
    OUT("%-14s %zu\n", "ready", st.ready);
    OUT("%-14s %zu\n", "handles", st.handles);
    OUT("%-14s %zu\n", "stacks", st.stacks);
    OUT("%-14s %u\n", "watched fds", c->loop->poll.nwatched);
    if (rss >= 0)
        OUT("%-14s %ld KiB resident\n", "memory", rss);
    else
        OUT("%-14s unknown\n", "memory");
    OUT("%-14s %.3f s\n", "loop time", weft__now(c->loop));
    OUT("%-14s %s\n", "debug mode", c->loop->debug ? "on" : "off");
}

static void cmd_help(conn_t *c) {
    OUT("ps          the tasks: id, name, state, what each waits on, age, stack in use\n"
        "where ID    where task ID is suspended (its backtrace) and where it was created\n"
        "cancel ID   cancels task ID and tells how it ended\n"
        "stats       the loop's counters and the process's memory\n"
        "help        this list\n"
        "quit        closes the connection\n");
}

/* Runs one command line; false once the client asked to quit. */
static bool run_command(conn_t *c, char *line) {
    char *save = NULL, *cmd = strtok_r(line, " \t", &save);
    char *arg = cmd ? strtok_r(NULL, " \t", &save) : NULL;
    char *extra = arg ? strtok_r(NULL, " \t", &save) : NULL;
    bool takes_id;
    if (!cmd)
        return true; /* an empty line: a new prompt */
    takes_id = !strcmp(cmd, "where") || !strcmp(cmd, "cancel");
    if (takes_id && (!arg || extra)) {
        OUT("error: usage: %s ID\n", cmd);
    } else if (takes_id) {
        if (!strcmp(cmd, "where"))
            cmd_where(c, arg);
        else
            cmd_cancel(c, arg);
    } else if (!strcmp(cmd, "ps") || !strcmp(cmd, "stats") || !strcmp(cmd, "help") ||
               !strcmp(cmd, "quit") || !strcmp(cmd, "exit")) {
        if (arg)
            OUT("error: usage: %s (no argument)\n", cmd);
        else if (!strcmp(cmd, "ps"))
            cmd_ps(c);
        else if (!strcmp(cmd, "stats"))
            cmd_stats(c);
        else if (!strcmp(cmd, "help"))
            cmd_help(c);
        else
            return false;
    } else {
        OUT("error: unknown command '%s' (help lists them)\n", cmd);
    }
    return true;
}

static int console_main(void *arg, void **result) {
    conn_t *c = arg;
    size_t n = 0;
    int rc;
    (void)result;
    for (const weft_task_t *t = c->loop->all_tasks; t; t = t->all_next)
        n += !weft__task_hidden(t);
    OUT("weft monitor, pid %d, %zu task%s. Commands: ps, where ID, cancel ID, stats, help, "
        "quit.\n" PROMPT,
        (int)getpid(), n, n == 1 ? "" : "s");
    rc = conn_flush(c);
    while (rc >= 0) {
        char *line = NULL;
        rc = conn_readline(c, &line);
        if (rc == LINE_EOF || rc < 0)
            break;
        if (rc == LINE_TOO_LONG) {
            OUT("error: line too long\n");
        } else if (!run_command(c, line)) {
            OUT("bye\n");
            conn_flush(c);
            break;
        }
        OUT(PROMPT);
        rc = conn_flush(c);
    }
    /* A client's trouble (it went away, it reset) is not the program's: no error report. */
    return rc == WEFT_ECANCELED ? rc : 0;
}

#undef OUT

/* ---- accepting ---------------------------------------------------------------------------- */

static void monitor_free(struct weft__monitor *mon);

static void conn_free(conn_t *c) {
    struct weft__monitor *mon = c->mon;
    c->io.events = 0;
    weft__poll_update(&c->loop->poll, &c->io);
    close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        mon->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    weft__text_free(&c->out);
    free(c);
    if (mon->stopped && !mon->conns)
        monitor_free(mon);
}

/* The console's task has ended (its body returned, it was cancelled before it started, or its
 * loop closed and abandoned it). */
static void conn_task_done(weft__waiter_t *w, weft_future_t *f) {
    (void)f;
    conn_free(weft__container_of(w, conn_t, done));
}

static void conn_start(struct weft__monitor *mon, int fd) {
    weft_loop_t *loop = mon->loop;
    /* Its own stack size: unwinding needs a few KiB whatever the loop's default is. */
    weft_task_options_t opts = {.name = "weft-monitor", .stack_size = WEFT_STACK_DEFAULT};
    weft_task_t *t;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    weft__fd_fresh(loop, fd); /* a stale entry the loop kept under this number */
    c->mon = mon;
    c->loop = loop;
    c->io.fd = fd;
    c->io.events = CONN_EVENTS;
    c->io.cb = conn_event;
    c->ready = WEFT__POLL_IN | WEFT__POLL_OUT; /* try first: an EAGAIN costs one call */
    if (weft__poll_update(&loop->poll, &c->io) < 0) {
        close(fd);
        free(c);
        return;
    }
    if (weft_loop_create_task_at(NULL, loop, &t, console_main, c, &opts) < 0) {
        c->io.events = 0;
        weft__poll_update(&loop->poll, &c->io);
        close(fd);
        free(c);
        return;
    }
    (void)weft__task_hide(t); /* out of memory: it shows in ps, nothing worse */
    c->task = t;
    c->done.fire = conn_task_done;
    weft__waiter_add(t, &c->done);
    weft_unref(t); /* the loop keeps it until it ends, which frees the connection */
    c->next = mon->conns;
    if (mon->conns)
        mon->conns->prev = c;
    mon->conns = c;
}

static void listener_event(weft__io_t *io, unsigned events) {
    struct weft__monitor *mon = weft__container_of(io, struct weft__monitor, io);
    (void)events;
    while (io->fd >= 0) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_start(mon, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        /* Out of descriptors or memory: the client waits in the backlog until the next
         * connection's edge (a debugging console does not retry on a timer, which would keep
         * the loop awake). */
        if (errno != EAGAIN && !mon->accept_failed_logged) {
            mon->accept_failed_logged = true;
            weft__log("monitor on %s: accept failed: %s", mon->address, weft_strerror(-errno));
        }
        return;
    }
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void close_listener(struct weft__monitor *mon) {
    if (mon->io.fd < 0)
        return;
    mon->io.events = 0;
    weft__poll_update(&mon->loop->poll, &mon->io);
    close(mon->io.fd);
    mon->io.fd = -1;
    if (mon->unix_path) {
        unlink(mon->unix_path);
        free(mon->unix_path);
        mon->unix_path = NULL;
    }
}

static void monitor_free(struct weft__monitor *mon) {
    close_listener(mon);
    weft__closer_remove(mon->loop, &mon->closer);
    free(mon);
}

/* Stops listening and closes every console (their tasks are cancelled; the last to end frees
 * the monitor). */
static void monitor_shutdown(struct weft__monitor *mon) {
    weft_loop_t *loop = mon->loop;
    close_listener(mon);
    if (loop->monitor == mon)
        loop->monitor = NULL;
    mon->stopped = true;
    weft__quitdump_sync(loop);
    for (conn_t *c = mon->conns; c; c = c->next)
        weft_cancel(c->task, NULL); /* never completes it inline: the list stays as it is */
    if (!mon->conns)
        monitor_free(mon);
}

/* Loop close: the consoles' tasks were abandoned before, which freed them. */
static void monitor_loop_close(weft__closer_t *cl) {
    monitor_shutdown(weft__container_of(cl, struct weft__monitor, closer));
}

int weft_monitor_start(weft_loop_t *loop, const char *address) {
    struct sockaddr_storage ss;
    struct weft__monitor *mon;
    socklen_t len;
    int fd, rc, one = 1;
    if (!loop || !address)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if (loop->monitor)
        return WEFT_EALREADY;
    if ((rc = parse_address(address, &ss, &len)) < 0)
        return rc;
    if (ss.ss_family == AF_UNIX && (rc = clear_stale_socket((struct sockaddr_un *)&ss)) < 0)
        return rc;
    if (!(mon = calloc(1, sizeof *mon)))
        return WEFT_ENOMEM;
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        rc = -errno;
        free(mon);
        return rc;
    }
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        rc = -errno;
        goto fail;
    }
    if (ss.ss_family == AF_UNIX) {
        /* Only the user who runs the program may cancel its tasks. */
        if (!(mon->unix_path = strdup(address))) {
            unlink(address);
            rc = WEFT_ENOMEM;
            goto fail;
        }
        chmod(address, 0600);
        snprintf(mon->address, sizeof mon->address, "%s", address);
    }
    if (listen(fd, 16) < 0) {
        rc = -errno;
        goto fail;
    }
    if (ss.ss_family != AF_UNIX) {
        char host[INET6_ADDRSTRLEN];
        len = sizeof ss;
        getsockname(fd, (struct sockaddr *)&ss, &len);
        if (ss.ss_family == AF_INET) {
            mon->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
            snprintf(mon->address, sizeof mon->address, "%s:%d", host, mon->port);
        } else {
            mon->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
            snprintf(mon->address, sizeof mon->address, "[%s]:%d", host, mon->port);
        }
    }
    weft__fd_fresh(loop, fd);
    mon->loop = loop;
    mon->io.fd = fd;
    mon->io.events = WEFT__POLL_IN | WEFT__POLL_EDGE | WEFT__POLL_UNCOUNTED;
    mon->io.cb = listener_event;
    if ((rc = weft__poll_update(&loop->poll, &mon->io)) < 0)
        goto fail;
    weft__closer_add(loop, &mon->closer, monitor_loop_close);
    loop->monitor = mon;
    weft__quitdump_sync(loop);
    return 0;
fail:
    close(fd);
    if (mon->unix_path) {
        unlink(mon->unix_path);
        free(mon->unix_path);
    }
    free(mon);
    return rc;
}

void weft_monitor_stop(weft_loop_t *loop) {
    if (!loop || !loop->monitor)
        return;
    WEFT__LOOP_THREAD(loop);
    monitor_shutdown(loop->monitor);
}

int weft_monitor_port(const weft_loop_t *loop) {
    return loop && loop->monitor ? loop->monitor->port : 0;
}

/* ---- WEFT_MONITOR ------------------------------------------------------------------------- */

void weft__monitor_loop_enter(weft_loop_t *loop) {
    static _Atomic bool env_seen;
    /* Read once per process, by whichever loop runs first. */
    if (!atomic_load_explicit(&env_seen, memory_order_relaxed) &&
        !atomic_exchange(&env_seen, true)) {
        const char *address = getenv("WEFT_MONITOR");
        if (address && *address && !loop->monitor) {
            int rc = weft_monitor_start(loop, address);
            if (rc < 0)
                weft__log("WEFT_MONITOR=%s: the monitor did not start: %s", address,
                          weft_strerror(rc));
            else
                weft__log_at(WEFT_LOG_INFO, "monitor listening on %s", loop->monitor->address);
        }
    }
    weft__quitdump_sync(loop);
}
