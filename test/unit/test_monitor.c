/* The monitor driven over real sockets (a Unix socket in a fresh directory, loopback TCP) by a
 * client on another thread while the loop serves it: ps, where, cancel, stats, errors; that it
 * never keeps a loop alive nor shows in listings; backtraces of tasks in every state; task dumps
 * to a pipe; the SIGQUIT dump of debug mode and of the monitor, in child processes; the
 * WEFT_MONITOR variable. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wt.h"

/* ---- a client ------------------------------------------------------------------------------ */

/* Connects to a monitor address as the monitor reads it: a path, or 127.0.0.1:PORT /
 * [::1]:PORT. Blocking, with 10 s receive and send timeouts so that a test cannot hang. */
static int client_connect(const char *address) {
    struct sockaddr_storage ss;
    socklen_t len;
    struct timeval tv = {10, 0};
    const char *colon = strrchr(address, ':');
    int fd;
    memset(&ss, 0, sizeof ss);
    if (strchr(address, '/')) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        sun->sun_family = AF_UNIX;
        snprintf(sun->sun_path, sizeof sun->sun_path, "%s", address);
        len = sizeof *sun;
    } else if (address[0] == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)atoi(colon + 1));
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)atoi(colon + 1));
        len = sizeof *a;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* Everything until the end (the peer closed): malloc'd, NUL-terminated. A socket that stays
 * silent for its receive timeout fails the test. */
static char *read_to_end(int fd) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ASSERT_NOT_NULL(buf);
    for (;;) {
        ssize_t r;
        if (cap - len < 1024) {
            buf = realloc(buf, cap *= 2);
            ASSERT_NOT_NULL(buf);
        }
        r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            WT_FAIL("read: %s (after %zu bytes)", strerror(errno), len);
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    return buf;
}

typedef struct ask {
    const char *address;
    const char *input;
    char *reply;
    int err;
} ask_t;

/* On an executor thread: sends the commands, ends its input, reads the whole conversation
 * (the monitor closes after the last command). */
static int ask_job(void *arg, void **result) {
    ask_t *a = arg;
    int fd = client_connect(a->address);
    (void)result;
    if (fd < 0) {
        a->err = fd;
        return 0;
    }
    if (send(fd, a->input, strlen(a->input), MSG_NOSIGNAL) != (ssize_t)strlen(a->input))
        a->err = -errno;
    shutdown(fd, SHUT_WR);
    a->reply = read_to_end(fd);
    close(fd);
    return 0;
}

/* [from a task] The monitor's whole answer to `input` (one or more command lines); the loop
 * serves it meanwhile. The caller frees it. */
static char *ask(const char *address, const char *input) {
    ask_t a = {address, input, NULL, 0};
    ASSERT_OK(weft_to_thread(ask_job, &a, NULL));
    ASSERT_OK(a.err);
    ASSERT_NOT_NULL(a.reply);
    ASSERT_CONTAINS(a.reply, "weft> ");
    return a.reply;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A Unix socket path in a directory of its own. */
typedef struct sockdir {
    char dir[64];
    char path[96];
} sockdir_t;

static void sockdir_make(sockdir_t *d) {
    snprintf(d->dir, sizeof d->dir, "/tmp/weft-monitor-XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(d->dir));
    snprintf(d->path, sizeof d->path, "%s/monitor.sock", d->dir);
}

/* The directory must be empty: the monitor removed its socket file. */
static void sockdir_remove(sockdir_t *d) {
    ASSERT_OK(rmdir(d->dir) < 0 ? -errno : 0);
}

/* ---- tasks to look at ------------------------------------------------------------------------ */

/* A recognisable frame between the task's body and the wait: `where` must name it. The store
 * after the call keeps the compiler from turning the call into a jump. */
static __attribute__((noinline, noclone)) int deep_wait_here(weft_event_t *ev, int *out) {
    int rc = weft_event_wait(ev);
    *out = rc;
    return rc;
}

static int deep_waiter(void *arg, void **result) {
    int rc;
    (void)result;
    return deep_wait_here(arg, &rc);
}

static int long_sleeper(void *arg, void **result) {
    int rc = weft_sleep(1000);
    (void)arg;
    *result = NULL; /* after the call: the frame stays (no tail call) */
    return rc;
}

static int queue_getter(void *arg, void **result) {
    return weft_queue_get(arg, result);
}

/* Cancelled, it says so and returns normally. */
static int stubborn(void *arg, void **result) {
    int rc = weft_event_wait(arg);
    (void)result;
    if (rc == WEFT_ECANCELED)
        weft_task_uncancel(weft_current_task());
    return 0;
}

/* Cancelled, it goes on for a while in a shielded clean-up. */
static int slow_cleanup(void *arg, void **result) {
    int rc = weft_event_wait(arg);
    (void)result;
    if (rc == WEFT_ECANCELED) {
        weft_shield_begin();
        weft_sleep(1.5);
        weft_shield_end();
    }
    return rc;
}

/* The tasks most tests look at, and their clean-up. */
typedef struct scene {
    weft_event_t *ev;
    weft_queue_t *q;
    weft_task_t *t[3];
} scene_t;

static void scene_start(scene_t *s) {
    ASSERT_OK(weft_event_new(&s->ev));
    ASSERT_OK(weft_queue_new(&s->q, NULL));
    /* Created here (not by a helper of the runner): "created at" names this file. */
    ASSERT_OK(weft_create_task(&s->t[0], long_sleeper, NULL,
                               &(weft_task_options_t){.name = "long_sleeper"}));
    ASSERT_OK(weft_create_task(&s->t[1], deep_waiter, s->ev,
                               &(weft_task_options_t){.name = "deep_waiter"}));
    ASSERT_OK(weft_create_task(&s->t[2], queue_getter, s->q,
                               &(weft_task_options_t){.name = "queue_getter"}));
    ASSERT_OK(weft_sleep(0.01)); /* all three suspended */
}

static void scene_end(scene_t *s) {
    for (int i = 0; i < 3; i++)
        weft_cancel(s->t[i], NULL);
    ASSERT_OK(weft_gather_all(s->t, 3, NULL, NULL));
    for (int i = 0; i < 3; i++)
        weft_unref(s->t[i]);
    ASSERT_OK(weft_queue_free(s->q));
    ASSERT_OK(weft_event_free(s->ev));
}

static void run_main(weft_loop_t *loop, weft_task_fn fn, void *arg) {
    void *res = NULL;
    ASSERT_OK(wt_run_task(loop, fn, arg, &res));
    ASSERT_EQ_PTR(res, (void *)1);
}

/* ---- ps ------------------------------------------------------------------------------------ */

static int ps_main(void *arg, void **result) {
    const char *path = arg;
    scene_t s;
    char *reply;
    scene_start(&s);
    reply = ask(path, "ps\n");
    ASSERT_CONTAINS(reply, "ID");
    ASSERT_CONTAINS(reply, "NAME");
    ASSERT_CONTAINS(reply, "STATE");
    ASSERT_CONTAINS(reply, "WAITING ON");
    ASSERT_CONTAINS(reply, "AGE");
    ASSERT_CONTAINS(reply, "STACK");
    ASSERT_CONTAINS(reply, "long_sleeper");
    ASSERT_CONTAINS(reply, "deep_waiter");
    ASSERT_CONTAINS(reply, "queue_getter");
    ASSERT_CONTAINS(reply, "sleep (");
    ASSERT_CONTAINS(reply, "event");
    ASSERT_CONTAINS(reply, "queue");
    ASSERT_CONTAINS(reply, "executor job"); /* this task, waiting for the client's thread */
    ASSERT_CONTAINS(reply, "KiB");
    ASSERT_CONTAINS(reply, "4 tasks\n"); /* the three and this one: the console's is hidden */
    ASSERT_NOT_CONTAINS(reply, "weft-monitor");
    ASSERT_EQ_INT(count(reply, "weft> "), 2); /* after the greeting, after the answer */
    free(reply);
    scene_end(&s);
    *result = (void *)1;
    return 0;
}

TEST(ps_over_unix_socket) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    struct stat st;
    sockdir_make(&d);
    /* Before the loop runs: the socket is there at once. */
    ASSERT_OK(weft_monitor_start(loop, d.path));
    ASSERT_OK(stat(d.path, &st));
    ASSERT(S_ISSOCK(st.st_mode));
    ASSERT_EQ_INT(st.st_mode & 0777, 0600); /* only its user may cancel tasks */
    ASSERT_EQ_INT(weft_monitor_port(loop), 0);
    run_main(loop, ps_main, d.path);
    weft_monitor_stop(loop);
    weft_monitor_stop(loop); /* harmless */
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

typedef struct tcp_ctx {
    const char *host; /* "127.0.0.1" or "[::1]" */
    int skipped;
} tcp_ctx_t;

static int tcp_main(void *arg, void **result) {
    tcp_ctx_t *c = arg;
    weft_loop_t *loop = weft_get_running_loop();
    char address[64];
    int rc, port;
    scene_t s;
    char *reply;
    snprintf(address, sizeof address, "%s:0", c->host);
    /* From inside a task this time. */
    rc = weft_monitor_start(loop, address);
    if (c->host[0] == '[' && (rc == WEFT_EADDRNOTAVAIL || rc == WEFT_EAFNOSUPPORT)) {
        c->skipped = 1; /* no IPv6 on this machine */
        *result = (void *)1;
        return 0;
    }
    ASSERT_OK(rc);
    port = weft_monitor_port(loop);
    ASSERT_GT_INT(port, 0);
    snprintf(address, sizeof address, "%s:%d", c->host, port);
    scene_start(&s);
    reply = ask(address, "ps\nstats\n");
    ASSERT_CONTAINS(reply, "deep_waiter");
    ASSERT_CONTAINS(reply, "WAITING ON");
    ASSERT_CONTAINS(reply, "iterations");
    ASSERT_CONTAINS(reply, "pending tasks");
    ASSERT_CONTAINS(reply, "timers");
    ASSERT_CONTAINS(reply, "stacks");
    ASSERT_CONTAINS(reply, "watched fds    0\n"); /* the monitor's own are not counted */
    ASSERT_CONTAINS(reply, "KiB resident");
    ASSERT_CONTAINS(reply, "loop time");
    ASSERT_EQ_INT(count(reply, "weft> "), 3);
    free(reply);
    scene_end(&s);
    weft_monitor_stop(loop);
    ASSERT_EQ_INT(weft_monitor_port(loop), 0);
    /* Stopped: nobody listens there any more. */
    ASSERT_EQ_INT(client_connect(address), WEFT_ECONNREFUSED);
    *result = (void *)1;
    return 0;
}

TEST(ps_and_stats_over_tcp) {
    weft_loop_t *loop = wt_loop_real();
    tcp_ctx_t c = {"127.0.0.1", 0};
    run_main(loop, tcp_main, &c);
    c.host = "[::1]";
    run_main(loop, tcp_main, &c);
    WT_CLOSE_LOOP(loop);
}

/* ---- the console's task is weft's own ------------------------------------------------------ */

typedef struct hold {
    const char *address;
    atomic_int connected, release;
    int err;
} hold_t;

/* On an executor thread: opens a console and keeps it open, idle at its prompt, until told. */
static int hold_job(void *arg, void **result) {
    hold_t *h = arg;
    char buf[512];
    size_t len = 0;
    int fd = client_connect(h->address);
    (void)result;
    if (fd < 0) {
        h->err = fd;
        atomic_store(&h->connected, 1);
        return 0;
    }
    while (len < sizeof buf - 1) { /* the greeting ends with the prompt */
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) {
            h->err = r < 0 ? -errno : WEFT_ECONNRESET;
            break;
        }
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, "weft> "))
            break;
    }
    atomic_store(&h->connected, 1);
    for (int i = 0; i < 10000 && !atomic_load(&h->release); i++)
        usleep(1000);
    close(fd);
    return 0;
}

static int hidden_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    hold_t h = {arg, 0, 0, 0};
    weft_future_t *job;
    weft_task_t *all[8];
    weft_loop_stats_t st;
    ASSERT_OK(weft_run_in_executor(NULL, hold_job, &h, &job));
    for (int i = 0; i < 10000 && !atomic_load(&h.connected); i++)
        ASSERT_OK(weft_sleep(0.001));
    ASSERT_OK(h.err);
    ASSERT_OK(weft_sleep(0.01)); /* the console's task is running now, waiting for a line */
    ASSERT_EQ_INT((int)weft_all_tasks(loop, all, 8), 1); /* this task only */
    ASSERT_EQ_PTR(all[0], weft_current_task());
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT((int)st.tasks, 1);
    ASSERT_EQ_INT((int)st.pending_tasks, 1);
    atomic_store(&h.release, 1);
    ASSERT_OK(weft_await(job, NULL));
    weft_unref(job);
    *result = (void *)1;
    return 0;
}

TEST(console_tasks_are_not_counted) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    weft_loop_stats_t st;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    run_main(loop, hidden_main, d.path);
    weft_monitor_stop(loop);
    sockdir_remove(&d);
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT((int)st.pending_tasks, 0);
    WT_CLOSE_LOOP(loop);
}

/* ---- where, cancel ------------------------------------------------------------------------- */

static int where_main(void *arg, void **result) {
    const char *path = arg;
    char cmd[64], *reply;
    scene_t s;
    scene_start(&s);
    snprintf(cmd, sizeof cmd, "where %llu\n", (unsigned long long)weft_task_id(s.t[1]));
    reply = ask(path, cmd);
    ASSERT_CONTAINS(reply, "'deep_waiter': waiting on event");
    ASSERT_CONTAINS(reply, "deep_wait_here+0x");
    ASSERT_CONTAINS(reply, "weft_event_wait");
    ASSERT_CONTAINS(reply, "test_monitor"); /* the object: this program */
    ASSERT_CONTAINS(reply, "created at ");
    ASSERT_CONTAINS(reply, "test_monitor.c:");
    ASSERT_CONTAINS(reply, "in scene_start");
    free(reply);
    /* "#ID" too, for the sleeper. */
    snprintf(cmd, sizeof cmd, "where #%llu\n", (unsigned long long)weft_task_id(s.t[0]));
    reply = ask(path, cmd);
    ASSERT_CONTAINS(reply, "'long_sleeper': waiting on sleep");
    ASSERT_CONTAINS(reply, "long_sleeper+0x");
    free(reply);
    scene_end(&s);
    *result = (void *)1;
    return 0;
}

TEST(where_shows_the_suspended_function) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    run_main(loop, where_main, d.path);
    weft_monitor_stop(loop);
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

static int cancel_main(void *arg, void **result) {
    const char *path = arg;
    weft_loop_t *loop = weft_get_running_loop();
    weft_event_t *ev;
    weft_task_t *victim, *swallower, *slow;
    char cmd[64], *reply;
    ASSERT_OK(weft_event_new(&ev));
    victim = wt_spawn(loop, deep_waiter, ev, "victim");
    swallower = wt_spawn(loop, stubborn, ev, "swallower");
    slow = wt_spawn(loop, slow_cleanup, ev, "slow");
    ASSERT_OK(weft_sleep(0.01));

    snprintf(cmd, sizeof cmd, "cancel %llu\n", (unsigned long long)weft_task_id(victim));
    reply = ask(path, cmd);
    ASSERT_CONTAINS(reply, "'victim' cancelled");
    free(reply);
    ASSERT(weft_future_done(victim));
    ASSERT(weft_future_cancelled(victim));
    ASSERT_EQ_STR(weft_future_error_message(victim), "cancelled from the monitor");

    snprintf(cmd, sizeof cmd, "cancel %llu\n", (unsigned long long)weft_task_id(swallower));
    reply = ask(path, cmd);
    ASSERT_CONTAINS(reply, "'swallower' caught the cancellation and returned a result");
    free(reply);
    ASSERT(weft_future_done(swallower) && !weft_future_cancelled(swallower));

    /* Still cleaning up when the monitor stops waiting (after 1 s). */
    snprintf(cmd, sizeof cmd, "cancel %llu\n", (unsigned long long)weft_task_id(slow));
    reply = ask(path, cmd);
    ASSERT_CONTAINS(reply, "'slow': cancellation requested; still running");
    free(reply);
    ASSERT(!weft_future_done(slow));
    ASSERT_EQ_INT(weft_await(slow, NULL), WEFT_ECANCELED);

    /* A finished task is no longer listed. */
    snprintf(cmd, sizeof cmd, "cancel %llu\n", (unsigned long long)weft_task_id(victim));
    reply = ask(path, cmd);
    ASSERT_CONTAINS(reply, "error: no task #");
    free(reply);
    weft_unref(victim);
    weft_unref(swallower);
    weft_unref(slow);
    ASSERT_OK(weft_event_free(ev));
    *result = (void *)1;
    return 0;
}

TEST(cancel_says_how_the_task_ended) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    run_main(loop, cancel_main, d.path);
    weft_monitor_stop(loop);
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

/* ---- errors ------------------------------------------------------------------------------- */

static int errors_main(void *arg, void **result) {
    const char *path = arg;
    char *reply, *input, *p;
    size_t n = 0;
    /* One session: every line gets its answer and a prompt, until quit. */
    input = malloc(4096);
    n += (size_t)sprintf(input + n, "\nfrobnicate\nwhere\nwhere abc\nwhere 99999999\n");
    n += (size_t)sprintf(input + n, "cancel\ncancel 1 2\ncancel 0\nps extra\nstats now\n");
    memset(input + n, 'x', 2000); /* longer than a command line may be */
    n += 2000;
    n += (size_t)sprintf(input + n, "\r\nhelp\r\nquit\nps\n");
    reply = ask(path, input);
    ASSERT_CONTAINS(reply, "error: unknown command 'frobnicate'");
    ASSERT_CONTAINS(reply, "error: usage: where ID");
    ASSERT_CONTAINS(reply, "error: no task #abc");
    ASSERT_CONTAINS(reply, "error: no task #99999999");
    ASSERT_CONTAINS(reply, "error: usage: cancel ID");
    ASSERT_EQ_INT(count(reply, "error: usage: cancel ID"), 2);
    ASSERT_CONTAINS(reply, "error: no task #0");
    ASSERT_CONTAINS(reply, "error: usage: ps (no argument)");
    ASSERT_CONTAINS(reply, "error: usage: stats (no argument)");
    ASSERT_CONTAINS(reply, "error: line too long");
    ASSERT_CONTAINS(reply, "where ID    ");
    ASSERT_CONTAINS(reply, "cancel ID   ");
    ASSERT_CONTAINS(reply, "bye\n");
    /* The empty line, the 11 other commands before quit: a prompt each, and the greeting's. */
    ASSERT_EQ_INT(count(reply, "weft> "), 13);
    p = strstr(reply, "bye\n");
    ASSERT_NOT_CONTAINS(p, "WAITING ON"); /* nothing after quit */
    free(reply);
    free(input);
    *result = (void *)1;
    return 0;
}

TEST(bad_commands_answer_errors) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    run_main(loop, errors_main, d.path);
    weft_monitor_stop(loop);
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

TEST(start_errors) {
    weft_loop_t *loop = wt_loop_real(), *other = wt_loop_real(), *closed = wt_loop_real();
    static const char *const refused[] = {
        "10.1.2.3:80", "0.0.0.0:0", "[::]:0", "192.168.1.1:5000", "example.com:80",
        "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:8x", "[::1:0", "[1.2.3.4]:0",
        "", "127.0.0.1:123456",
    };
    char longpath[200];
    weft_future_t *held;
    sockdir_t d;
    int fd;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (weft_monitor_start(loop, refused[i]) != WEFT_EINVAL)
            WT_FAIL("weft_monitor_start(\"%s\") was not refused", refused[i]);
    ASSERT_NULL(weft_get_running_loop());
    ASSERT_EQ_INT(weft_monitor_start(NULL, "127.0.0.1:0"), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_monitor_start(loop, NULL), WEFT_EINVAL);
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    ASSERT_EQ_INT(weft_monitor_start(loop, longpath), WEFT_ENAMETOOLONG);
    ASSERT_EQ_INT(weft_monitor_start(loop, "/nonexistent-dir-of-weft/m.sock"), WEFT_ENOENT);
    ASSERT_EQ_INT(weft_monitor_port(loop), 0);
    ASSERT_EQ_INT(weft_monitor_port(NULL), 0);
    weft_monitor_stop(loop); /* none: nothing happens */
    weft_monitor_stop(NULL);

    sockdir_make(&d);
    /* A socket file nobody serves (a program that died) is replaced... */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", d.path);
        ASSERT_OK(bind(fd, (struct sockaddr *)&sun, sizeof sun));
    }
    close(fd);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    /* ...one a live monitor serves is not; nor is a second monitor on one loop. */
    ASSERT_EQ_INT(weft_monitor_start(other, d.path), WEFT_EADDRINUSE);
    ASSERT_EQ_INT(weft_monitor_start(loop, "127.0.0.1:0"), WEFT_EALREADY);
    weft_monitor_stop(loop);
    /* A file that is not a socket is left alone. */
    fd = open(d.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE_INT(fd, 0);
    close(fd);
    ASSERT_EQ_INT(weft_monitor_start(loop, d.path), WEFT_EADDRINUSE);
    ASSERT_OK(unlink(d.path));
    sockdir_remove(&d);

    /* A busy TCP port. */
    ASSERT_OK(weft_monitor_start(loop, "127.0.0.1:0"));
    {
        char address[64];
        snprintf(address, sizeof address, "localhost:%d", weft_monitor_port(loop));
        ASSERT_EQ_INT(weft_monitor_start(other, address), WEFT_EADDRINUSE);
    }
    weft_monitor_stop(loop);

    /* A closed loop (kept by a future its user still holds). */
    ASSERT_OK(weft_loop_create_future(closed, &held));
    ASSERT_OK(weft_loop_close(closed));
    ASSERT_EQ_INT(weft_monitor_start(closed, "127.0.0.1:0"), WEFT_ESHUTDOWN);
    ASSERT_EQ_INT(weft_monitor_port(closed), 0);
    weft_unref(held);
    WT_CLOSE_LOOP(loop);
    WT_CLOSE_LOOP(other);
}

/* ---- the monitor never keeps a loop alive ---------------------------------------------------- */

static int await_forever_main(void *arg, void **result) {
    weft_future_t *f = arg;
    int rc;
    ASSERT_OK(weft_sleep(0.05)); /* the loop polls: the client's connection is accepted */
    rc = weft_await(f, NULL);
    ASSERT_OK(rc);
    wt_yield_n(3); /* the consoles cancelled by weft_monitor_stop() end */
    *result = (void *)1;
    return 0;
}

TEST(monitor_does_not_keep_the_loop_alive) {
    weft_loop_t *loop = wt_loop_real();
    weft_future_t *f;
    weft_task_t *t;
    sockdir_t d;
    char *log, *got, buf[256];
    int fd, rc;
    ssize_t r;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    fd = client_connect(d.path); /* a console is open, and waits for a command */
    ASSERT_GE_INT(fd, 0);
    ASSERT_OK(weft_loop_create_future(loop, &f));
    t = wt_spawn(loop, await_forever_main, f, "stuck_main");
    wt_capture_begin();
    rc = weft_loop_run_until_complete(loop, t, NULL);
    log = wt_capture_end();
    /* Nothing but the monitor is left: the deadlock is reported, not hidden. */
    ASSERT_EQ_INT(rc, WEFT_EDEADLK);
    ASSERT_NOT_CONTAINS(log, "weft-monitor"); /* the console's task is not in the report */
    free(log);
    r = recv(fd, buf, sizeof buf - 1, 0); /* it was served meanwhile */
    ASSERT_GT_INT(r, 0);
    buf[r] = '\0';
    ASSERT_CONTAINS(buf, "weft monitor");
    weft_monitor_stop(loop);
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    got = read_to_end(fd); /* the console was closed by the stop: the end comes */
    free(got);
    close(fd);
    weft_unref(t);
    weft_unref(f);
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

static int run_main_with_monitor(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    char address[64];
    int *fd = arg;
    ASSERT_OK(weft_monitor_start(loop, "127.0.0.1:0"));
    snprintf(address, sizeof address, "127.0.0.1:%d", weft_monitor_port(loop));
    *fd = client_connect(address);
    ASSERT_GE_INT(*fd, 0);
    ASSERT_OK(weft_sleep(0.05)); /* its console runs */
    *result = (void *)7;
    return 0;
}

/* weft_run() ends when main does, with a console open: the console is cancelled with the
 * other tasks left, and the monitor stopped when the loop closes. */
TEST(weft_run_ends_with_a_console_open) {
    void *res = NULL;
    int fd = -1;
    double t0 = wt_now();
    char *got;
    ASSERT_OK(weft_run(run_main_with_monitor, &fd, &res));
    ASSERT_EQ_PTR(res, (void *)7);
    ASSERT_LT_INT((long)((wt_now() - t0) * 1000), 2000);
    got = read_to_end(fd);
    ASSERT_CONTAINS(got, "weft monitor");
    free(got);
    close(fd);
}

/* ---- backtraces and dumps -------------------------------------------------------------------- */

static int waits_then_returns(void *arg, void **result) {
    int rc;
    (void)result;
    return deep_wait_here(arg, &rc);
}

static int backtrace_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    weft_event_t *ev;
    weft_future_t *plain;
    weft_task_t *t;
    char buf[4096], small[16];
    int n;
    (void)arg;
    ASSERT_OK(weft_event_new(&ev));
    t = wt_spawn(loop, waits_then_returns, ev, "bt");
    /* Not started: no stack yet. */
    ASSERT_EQ_INT(weft_task_backtrace(t, buf, sizeof buf), WEFT_ENOENT);
    /* The running task (this one). */
    ASSERT_EQ_INT(weft_task_backtrace(weft_current_task(), buf, sizeof buf), WEFT_EBUSY);
    ASSERT_OK(weft_sleep(0.01));
    n = weft_task_backtrace(t, buf, sizeof buf);
    ASSERT_GT_INT(n, 2);
    ASSERT_LE_INT(n, 64);
    ASSERT(!strncmp(buf, "#0 ", 3));
    ASSERT_CONTAINS(buf, "deep_wait_here+0x");
    ASSERT_CONTAINS(buf, "waits_then_returns+0x");
    ASSERT_CONTAINS(buf, "(test_monitor)");
    ASSERT_CONTAINS(buf, "libweft");
    ASSERT_NOT_CONTAINS(buf, "weft__ctx_trampoline"); /* the stack's bottom is left out */
    ASSERT_NOT_CONTAINS(buf, "weft__ctx_switch");      /* so is the switch itself */
    ASSERT_EQ_INT(count(buf, "\n"), n);
    /* Cut to fit, still NUL-terminated; the count is the same. */
    ASSERT_EQ_INT(weft_task_backtrace(t, small, sizeof small), n);
    ASSERT_EQ_INT(strlen(small), sizeof small - 1);
    ASSERT(!strncmp(small, buf, sizeof small - 1));
    ASSERT_EQ_INT(weft_task_backtrace(t, NULL, 0), n);
    /* Bad arguments. */
    ASSERT_EQ_INT(weft_task_backtrace(NULL, buf, sizeof buf), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_task_backtrace(t, NULL, 10), WEFT_EINVAL);
    ASSERT_OK(weft_create_future(&plain));
    ASSERT_EQ_INT(weft_task_backtrace(plain, buf, sizeof buf), WEFT_EINVAL);
    weft_unref(plain);
    /* Woken, not yet resumed: still a saved context. */
    weft_event_set(ev);
    ASSERT_GT_INT(weft_task_backtrace(t, buf, sizeof buf), 0);
    ASSERT_OK(weft_await(t, NULL));
    /* Done: no stack any more. */
    ASSERT_EQ_INT(weft_task_backtrace(t, buf, sizeof buf), WEFT_ENOENT);
    weft_unref(t);
    ASSERT_OK(weft_event_free(ev));
    *result = (void *)1;
    return 0;
}

TEST(backtrace_in_every_state) {
    weft_loop_t *loop = wt_loop_real();
    run_main(loop, backtrace_main, NULL);
    WT_CLOSE_LOOP(loop);
}

/* Whatever a task's stack holds at the moment, unwinding it stays on that stack: many tasks,
 * stopped in many places, each asked many times. */
static int many_places(void *arg, void **result) {
    intptr_t i = (intptr_t)arg;
    (void)result;
    for (int k = 0; k < 20; k++) {
        int rc = (i + k) % 3 == 0 ? weft_sleep(0) : weft_sleep(0.001 * (double)(k % 4));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int fuzz_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    weft_task_t *ts[50];
    char buf[2048];
    (void)arg;
    for (intptr_t i = 0; i < 50; i++)
        ts[i] = wt_spawn_arg(many_places, i);
    for (int round = 0; round < 40; round++) {
        weft_task_t *all[64];
        size_t n = weft_all_tasks(loop, all, 64);
        for (size_t i = 0; i < n && i < 64; i++) {
            int rc = weft_task_backtrace(all[i], buf, sizeof buf);
            if (all[i] == weft_current_task())
                ASSERT_EQ_INT(rc, WEFT_EBUSY);
            else if (rc < 0)
                ASSERT_EQ_INT(rc, WEFT_ENOENT); /* not started yet */
            else
                ASSERT_CONTAINS(buf, "many_places+0x");
        }
        ASSERT_OK(weft_sleep(0));
    }
    ASSERT_OK(weft_gather(ts, 50, NULL));
    for (int i = 0; i < 50; i++)
        weft_unref(ts[i]);
    *result = (void *)1;
    return 0;
}

TEST(backtrace_of_many_tasks_anywhere) {
    weft_loop_t *loop = wt_loop_real();
    run_main(loop, fuzz_main, NULL);
    WT_CLOSE_LOOP(loop);
}

static int dump_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    const char *path = arg;
    char address[64], *dump;
    int p[2], fd;
    weft_task_t *fresh;
    scene_t s;
    scene_start(&s);
    /* A console open meanwhile: the monitor's task is not in the dump. */
    snprintf(address, sizeof address, "%s", path);
    fd = client_connect(address);
    ASSERT_GE_INT(fd, 0);
    ASSERT_OK(weft_sleep(0.05));
    fresh = wt_spawn(loop, long_sleeper, NULL, "fresh");
    ASSERT_OK(pipe2(p, O_CLOEXEC));
    weft_loop_dump_tasks(loop, p[1]);
    close(p[1]);
    dump = read_to_end(p[0]);
    close(p[0]);
    ASSERT_CONTAINS(dump, "weft: 5 tasks");
    ASSERT_CONTAINS(dump, "task #");
    ASSERT_CONTAINS(dump, "'long_sleeper': waiting on sleep");
    ASSERT_CONTAINS(dump, "'queue_getter': waiting on queue");
    ASSERT_CONTAINS(dump, "'deep_waiter': waiting on event, age ");
    ASSERT_CONTAINS(dump, " KiB in use\n");
    ASSERT_CONTAINS(dump, "    created at ");
    ASSERT_CONTAINS(dump, "test_monitor.c:");
    ASSERT_CONTAINS(dump, "    #0 ");
    ASSERT_CONTAINS(dump, "deep_wait_here+0x");
    ASSERT_CONTAINS(dump, "'fresh': not started");
    ASSERT_CONTAINS(dump, "(not started: no stack yet)");
    ASSERT_CONTAINS(dump, ": running, age ");     /* this task */
    ASSERT_CONTAINS(dump, "(running: no backtrace)");
    ASSERT_NOT_CONTAINS(dump, "weft-monitor");
    /* Oldest first: the sleeper was created before the queue getter. */
    ASSERT(strstr(dump, "long_sleeper") < strstr(dump, "queue_getter"));
    free(dump);
    weft_loop_dump_tasks(loop, -1); /* bad descriptor: nothing */
    weft_loop_dump_tasks(NULL, 2);
    close(fd);
    weft_cancel(fresh, NULL);
    ASSERT_EQ_INT(wt_join(fresh), WEFT_ECANCELED);
    scene_end(&s);
    ASSERT_OK(weft_sleep(0.02)); /* the console sees its client gone, and ends */
    *result = (void *)1;
    return 0;
}

TEST(dump_tasks_to_a_pipe) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    run_main(loop, dump_main, d.path);
    weft_monitor_stop(loop);
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

/* ---- SIGQUIT ------------------------------------------------------------------------------- */

static int sigquit_main(void *arg, void **result) {
    weft_event_t *ev;
    weft_task_t *t;
    int again = arg != NULL;
    ASSERT_OK(weft_event_new(&ev));
    t = wt_spawn(weft_get_running_loop(), deep_waiter, ev, "quit_sleeper");
    ASSERT_OK(weft_sleep(0.01));
    ASSERT_OK(raise(SIGQUIT));
    ASSERT_OK(weft_sleep(0.1)); /* the dump is written by the loop, between steps */
    fprintf(stderr, "still alive\n");
    if (again) {
        ASSERT_OK(raise(SIGQUIT));
        ASSERT_OK(weft_sleep(0.1));
        fprintf(stderr, "alive again\n");
    }
    weft_event_set(ev);
    ASSERT_OK(wt_join(t));
    ASSERT_OK(weft_event_free(ev));
    *result = (void *)1;
    return 0;
}

static void sigquit_debug_child(void) {
    weft_loop_t *loop = wt_loop_real();
    weft_loop_set_debug(loop, 1);
    run_main(loop, sigquit_main, (void *)1);
    WT_CLOSE_LOOP(loop);
}

static void check_quit_dump(const char *err, int status) {
    const char *dump;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        WT_FAIL("the child did not go on after SIGQUIT (status %#x); stderr:\n%s", status, err);
    dump = strstr(err, "'quit_sleeper': waiting on event");
    ASSERT_NOT_NULL(dump);
    ASSERT_CONTAINS(dump, "deep_wait_here+0x");
    ASSERT_CONTAINS(err, "still alive");
    ASSERT(dump < strstr(err, "still alive"));
}

TEST(sigquit_dumps_tasks_in_debug_mode) {
    int status;
    char *err = wt_run_child(sigquit_debug_child, &status);
    check_quit_dump(err, status);
    /* Each SIGQUIT dumps again. */
    ASSERT_EQ_INT(count(err, "'quit_sleeper': waiting on event"), 2);
    ASSERT_CONTAINS(err, "alive again");
    free(err);
}

static void sigquit_monitor_child(void) {
    weft_loop_t *loop = wt_loop_real();
    struct sigaction sa;
    ASSERT_OK(sigaction(SIGQUIT, NULL, &sa));
    ASSERT(sa.sa_handler == SIG_DFL);
    ASSERT_OK(weft_monitor_start(loop, "127.0.0.1:0"));
    ASSERT_OK(sigaction(SIGQUIT, NULL, &sa));
    ASSERT(sa.sa_handler != SIG_DFL);
    run_main(loop, sigquit_main, NULL);
    /* Without a monitor (and debug mode off) SIGQUIT gets its default action back. */
    weft_monitor_stop(loop);
    ASSERT_OK(sigaction(SIGQUIT, NULL, &sa));
    ASSERT(sa.sa_handler == SIG_DFL);
    WT_CLOSE_LOOP(loop);
}

TEST(sigquit_dumps_tasks_with_a_monitor) {
    int status;
    char *err = wt_run_child(sigquit_monitor_child, &status);
    check_quit_dump(err, status);
    free(err);
}

static volatile sig_atomic_t app_quits;
static void app_quit_handler(int signo) {
    (void)signo;
    app_quits++;
}

static int app_quit_main(void *arg, void **result) {
    (void)arg;
    ASSERT_OK(raise(SIGQUIT));
    ASSERT_OK(weft_sleep(0.05));
    ASSERT_EQ_INT(app_quits, 1);
    *result = (void *)1;
    return 0;
}

/* A SIGQUIT handler the application installed stays its own: no dump, no change. */
TEST(sigquit_handler_of_the_application_stays) {
    weft_loop_t *loop = wt_loop_real();
    struct sigaction sa, now;
    char *log;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = app_quit_handler;
    ASSERT_OK(sigaction(SIGQUIT, &sa, NULL));
    weft_loop_set_debug(loop, 1);
    ASSERT_OK(sigaction(SIGQUIT, NULL, &now));
    ASSERT(now.sa_handler == app_quit_handler);
    wt_capture_begin();
    run_main(loop, app_quit_main, NULL);
    log = wt_capture_end();
    ASSERT_NOT_CONTAINS(log, "task #");
    free(log);
    weft_loop_set_debug(loop, 0);
    WT_CLOSE_LOOP(loop);
}

static int deadlock_main(void *arg, void **result) {
    (void)result;
    return weft_await(arg, NULL);
}

/* The SIGQUIT watcher of debug mode is not "something expected from outside". */
TEST(debug_sigquit_does_not_hide_a_deadlock) {
    weft_loop_t *loop = wt_loop_real();
    weft_future_t *f;
    weft_task_t *t;
    char *log;
    weft_loop_set_debug(loop, 1);
    ASSERT_OK(weft_loop_create_future(loop, &f));
    t = wt_spawn(loop, deadlock_main, f, "deadlocked");
    wt_capture_begin();
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EDEADLK);
    log = wt_capture_end();
    free(log);
    ASSERT_OK(weft_future_set_result(f, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    weft_unref(t);
    weft_unref(f);
    weft_loop_set_debug(loop, 0);
    WT_CLOSE_LOOP(loop);
}

/* ---- WEFT_MONITOR, stop, close ---------------------------------------------------------- */

static int env_main(void *arg, void **result) {
    const char *path = arg;
    char *reply;
    ASSERT_EQ_INT(weft_monitor_port(weft_get_running_loop()), 0); /* a Unix socket */
    reply = ask(path, "ps\n");
    ASSERT_CONTAINS(reply, "env_main_task");
    free(reply);
    *result = (void *)1;
    return 0;
}

/* On the second loop: no monitor yet (one could be started). */
static int env_main_second(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    (void)arg;
    (void)result;
    ASSERT_OK(weft_monitor_start(loop, "127.0.0.1:0"));
    weft_monitor_stop(loop);
    return 0;
}

TEST(env_starts_the_monitor) {
    weft_loop_t *loop = wt_loop_real(), *second = wt_loop_real();
    weft_task_t *t;
    sockdir_t d;
    void *res = NULL;
    sockdir_make(&d);
    ASSERT_OK(setenv("WEFT_MONITOR", d.path, 1));
    t = wt_spawn(loop, env_main, d.path, "env_main_task");
    ASSERT_OK(weft_loop_run_until_complete(loop, t, &res));
    ASSERT_EQ_PTR(res, (void *)1);
    weft_unref(t);
    /* Only the first loop that runs gets it. */
    ASSERT_OK(wt_run_task(second, env_main_second, NULL, NULL));
    WT_CLOSE_LOOP(second);
    WT_CLOSE_LOOP(loop); /* stops it: the socket file goes */
    sockdir_remove(&d);
    unsetenv("WEFT_MONITOR");
}

static int env_tcp_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    char address[64], *reply;
    (void)arg;
    ASSERT_GT_INT(weft_monitor_port(loop), 0);
    snprintf(address, sizeof address, "127.0.0.1:%d", weft_monitor_port(loop));
    reply = ask(address, "stats\n");
    ASSERT_CONTAINS(reply, "iterations");
    free(reply);
    *result = (void *)1;
    return 0;
}

/* A TCP address with port 0: the port is logged (at INFO level) and weft_monitor_port() has it. */
TEST(env_tcp_port_is_logged) {
    void *res = NULL;
    char *log;
    int level = weft_log_get_level();
    ASSERT_OK(setenv("WEFT_MONITOR", "127.0.0.1:0", 1));
    weft_log_set_level(WEFT_LOG_INFO);
    wt_capture_begin();
    ASSERT_OK(weft_run(env_tcp_main, NULL, &res));
    log = wt_capture_end();
    weft_log_set_level(level);
    ASSERT_EQ_PTR(res, (void *)1);
    ASSERT_CONTAINS(log, "monitor listening on 127.0.0.1:");
    ASSERT_GT_INT(atoi(strstr(log, "127.0.0.1:") + 10), 0);
    free(log);
    unsetenv("WEFT_MONITOR");
}

static int no_monitor_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    (void)arg;
    ASSERT_EQ_INT(weft_monitor_port(loop), 0);
    ASSERT_OK(weft_monitor_start(loop, "127.0.0.1:0")); /* none was started */
    weft_monitor_stop(loop);
    *result = (void *)1;
    return 0;
}

/* A refused address is reported, and the program runs without a monitor. */
TEST(env_bad_address_is_reported) {
    void *res = NULL;
    char *log;
    ASSERT_OK(setenv("WEFT_MONITOR", "192.0.2.1:5000", 1));
    wt_capture_begin();
    ASSERT_OK(weft_run(no_monitor_main, NULL, &res));
    log = wt_capture_end();
    ASSERT_EQ_PTR(res, (void *)1);
    ASSERT_CONTAINS(log, "WEFT_MONITOR=192.0.2.1:5000");
    ASSERT_CONTAINS(log, "invalid argument");
    free(log);
    unsetenv("WEFT_MONITOR");
}

static int stop_main(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    const char *path = arg;
    int fd[3];
    char *got;
    for (int i = 0; i < 3; i++) {
        fd[i] = client_connect(path);
        ASSERT_GE_INT(fd[i], 0);
    }
    ASSERT_OK(weft_sleep(0.05)); /* three consoles, each waiting for a command */
    weft_monitor_stop(loop);
    ASSERT_EQ_INT(client_connect(path), WEFT_ENOENT); /* the socket file is gone at once */
    ASSERT_OK(weft_sleep(0.02)); /* their tasks see the cancellation and end */
    for (int i = 0; i < 3; i++) {
        got = read_to_end(fd[i]);
        ASSERT_CONTAINS(got, "weft monitor"); /* the greeting, then the end */
        free(got);
        close(fd[i]);
    }
    /* A new monitor on the same path. */
    ASSERT_OK(weft_monitor_start(loop, path));
    got = ask(path, "help\n");
    ASSERT_CONTAINS(got, "where ID");
    free(got);
    weft_monitor_stop(loop);
    *result = (void *)1;
    return 0;
}

TEST(stop_closes_the_consoles) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    run_main(loop, stop_main, d.path);
    sockdir_remove(&d);
    WT_CLOSE_LOOP(loop);
}

static int open_console_main(void *arg, void **result) {
    int *fd = arg;
    ASSERT_OK(weft_sleep(0.05)); /* the console starts, and waits for a command */
    ASSERT_GE_INT(*fd, 0);
    *result = (void *)1;
    return 0;
}

/* Closing the loop stops the monitor: the socket file goes, the open console is closed, and
 * nothing leaks (the sanitizer build checks). */
TEST(loop_close_stops_the_monitor) {
    weft_loop_t *loop = wt_loop_real();
    sockdir_t d;
    char *got, *log;
    int fd;
    sockdir_make(&d);
    ASSERT_OK(weft_monitor_start(loop, d.path));
    fd = client_connect(d.path);
    run_main(loop, open_console_main, &fd);
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    log = wt_capture_end();
    free(log);
    got = read_to_end(fd);
    ASSERT_CONTAINS(got, "weft monitor");
    free(got);
    close(fd);
    sockdir_remove(&d);
}

const wt_test_t wt_tests[] = {
    T(ps_over_unix_socket),
    T(ps_and_stats_over_tcp),
    T(console_tasks_are_not_counted),
    T(where_shows_the_suspended_function),
    T(cancel_says_how_the_task_ended),
    T(bad_commands_answer_errors),
    T(start_errors),
    T(monitor_does_not_keep_the_loop_alive),
    T(weft_run_ends_with_a_console_open),
    T(backtrace_in_every_state),
    T(backtrace_of_many_tasks_anywhere),
    T(dump_tasks_to_a_pipe),
    T(sigquit_dumps_tasks_in_debug_mode),
    T(sigquit_dumps_tasks_with_a_monitor),
    T(sigquit_handler_of_the_application_stays),
    T(debug_sigquit_does_not_hide_a_deadlock),
    T(env_starts_the_monitor),
    T(env_tcp_port_is_logged),
    T(env_bad_address_is_reported),
    T(stop_closes_the_consoles),
    T(loop_close_stops_the_monitor),
    WT_END,
};
