/* The unit-test runner shared by every group: `runner` runs the whole table, `runner NAME...`
 * the named tests, `runner --list` prints the table. Each test runs in a forked child with a
 * timeout (WT_TIMEOUT_MULT scales it for slow tools); WT_NOFORK=1 runs them in-process, for a
 * debugger. Exit status: 0 all passed, 77 all skipped, 1 otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wt.h"

#define DEFAULT_TIMEOUT 20

static const char *current_test = "?";

void wt_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: [%s] ", file, line, current_test);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1); /* no leak report for a test that already failed */
}

void wt_skip(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[%s] SKIP: ", current_test);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(77);
}

const char *wt_errname(long long code) {
    if (code < 0 && code > -4096) {
        const char *n = weft_err_name((int)code);
        return strcmp(n, "UNKNOWN") ? n : "";
    }
    return "";
}

double wt_time_tolerance(void) {
    const char *s = getenv("WT_TIME_TOLERANCE");
    return s ? atof(s) : 0.020;
}

double wt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static weft_loop_t *loop_with(int virtual_clock) {
    weft_loop_options_t o = {.virtual_clock = virtual_clock};
    weft_loop_t *loop = NULL;
    int rc = weft_loop_new(&loop, &o);
    if (rc != 0 || !loop)
        WT_FAIL("weft_loop_new: %d", rc);
    return loop;
}

weft_loop_t *wt_loop_virtual(void) { return loop_with(1); }
weft_loop_t *wt_loop_real(void) { return loop_with(0); }

void wt_check_clean(const char *file, int line, weft_loop_t *loop) {
    weft_loop_stats_t st;
    memset(&st, 0xa5, sizeof st);
    weft_loop_stats(loop, &st);
    if (st.tasks || st.pending_tasks || st.futures || st.timers || st.ready || st.handles ||
        st.stacks)
        wt_fail(file, line,
                "loop not clean: tasks=%zu pending_tasks=%zu futures=%zu timers=%zu ready=%zu "
                "handles=%zu stacks=%zu",
                st.tasks, st.pending_tasks, st.futures, st.timers, st.ready, st.handles,
                st.stacks);
}

void wt_close_loop(const char *file, int line, weft_loop_t *loop) {
    int rc;
    wt_check_clean(file, line, loop);
    if (weft_loop_is_running(loop))
        wt_fail(file, line, "loop still running at close");
    rc = weft_loop_close(loop);
    if (rc != 0)
        wt_fail(file, line, "weft_loop_close: %d (%s)", rc, wt_errname(rc));
}

int wt_run_task(weft_loop_t *loop, weft_task_fn fn, void *arg, void **result) {
    weft_task_t *t = NULL;
    int rc = weft_loop_create_task(loop, &t, fn, arg, NULL);
    if (rc != 0)
        WT_FAIL("weft_loop_create_task: %d (%s)", rc, wt_errname(rc));
    rc = weft_loop_run_until_complete(loop, t, result);
    weft_unref(t);
    return rc;
}

weft_task_t *wt_spawn(weft_loop_t *loop, weft_task_fn fn, void *arg, const char *name) {
    weft_task_options_t o = {name, 0};
    weft_task_t *t = NULL;
    int rc = loop ? weft_loop_create_task(loop, &t, fn, arg, &o)
                  : weft_create_task(&t, fn, arg, &o);
    if (rc != 0 || !t)
        WT_FAIL("create_task: %d (%s)", rc, wt_errname(rc));
    return t;
}

/* ---- the event log ------------------------------------------------------------------------ */

#define LOG_MAX 4096
static int log_events[LOG_MAX];
static int log_len;

void wt_log(int event) {
    if (log_len == LOG_MAX)
        WT_FAIL("event log full");
    log_events[log_len++] = event;
}
int wt_log_len(void) { return log_len; }
int wt_log_at(int i) { return i < log_len ? log_events[i] : -1; }
void wt_log_reset(void) { log_len = 0; }

void wt_assert_log(const char *file, int line, const int *expected, int n) {
    int ok = n == log_len;
    for (int i = 0; ok && i < n; i++)
        ok = expected[i] == log_events[i];
    if (!ok) {
        char got[1024] = "", exp[1024] = "";
        size_t g = 0, e = 0;
        for (int i = 0; i < log_len && g < sizeof got - 16; i++)
            g += (size_t)snprintf(got + g, sizeof got - g, "%d ", log_events[i]);
        for (int i = 0; i < n && e < sizeof exp - 16; i++)
            e += (size_t)snprintf(exp + e, sizeof exp - e, "%d ", expected[i]);
        wt_fail(file, line, "event log mismatch:\n  expected: %s\n  got:      %s", exp, got);
    }
}

/* ---- stderr capture ------------------------------------------------------------------------ */

static int saved_stderr = -1;
static FILE *capture_file;

void wt_capture_begin(void) {
    fflush(stderr);
    capture_file = tmpfile();
    if (!capture_file)
        WT_FAIL("tmpfile: %s", strerror(errno));
    saved_stderr = dup(2);
    dup2(fileno(capture_file), 2);
}

char *wt_capture_end(void) {
    long len;
    char *buf;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    len = lseek(fileno(capture_file), 0, SEEK_END);
    buf = malloc((size_t)len + 1);
    if (!buf)
        WT_FAIL("out of memory");
    if (len > 0 && pread(fileno(capture_file), buf, (size_t)len, 0) != len)
        WT_FAIL("pread: %s", strerror(errno));
    buf[len] = 0;
    fclose(capture_file);
    capture_file = NULL;
    /* Show it too, so that a failing test's output is not lost. */
    fputs(buf, stderr);
    return buf;
}

char *wt_run_child(void (*fn)(void), int *status) {
    FILE *f = tmpfile();
    pid_t pid;
    long len;
    char *buf;
    if (!f)
        WT_FAIL("tmpfile: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        WT_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fileno(f), 2);
        fn();
        _exit(0);
    }
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    len = lseek(fileno(f), 0, SEEK_END);
    buf = malloc((size_t)len + 1);
    if (!buf)
        WT_FAIL("out of memory");
    if (len > 0 && pread(fileno(f), buf, (size_t)len, 0) != len)
        WT_FAIL("pread: %s", strerror(errno));
    buf[len] = 0;
    fclose(f);
    return buf;
}

void wt_stop_cb(void *loop) { weft_loop_stop(loop); }

long wt_max_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ---- running ------------------------------------------------------------------------------- */

static unsigned timeout_of(const wt_test_t *t) {
    const char *m = getenv("WT_TIMEOUT_MULT");
    unsigned base = t->timeout ? t->timeout : DEFAULT_TIMEOUT;
    double mult = m ? atof(m) : 1.0;
    return (unsigned)(base * (mult > 0 ? mult : 1.0));
}

/* 0 pass, 77 skip, else fail. */
static int run_one(const wt_test_t *t) {
    pid_t pid;
    int status;
    double t0 = wt_now();
    current_test = t->name;
    wt_log_reset();
    if (getenv("WT_NOFORK")) {
        t->fn();
        printf("ok %s\n", t->name);
        return 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        alarm(timeout_of(t));
        t->fn();
        fflush(stdout);
        exit(0); /* exit(), not _exit(): LeakSanitizer checks at exit */
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("waitpid");
            return 1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok %s (%.3f s)\n", t->name, wt_now() - t0);
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("skip %s\n", t->name);
        return 77;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("not ok %s: timed out after %u s\n", t->name, timeout_of(t));
    else if (WIFSIGNALED(status))
        printf("not ok %s: killed by signal %d (%s)\n", t->name, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
    else
        printf("not ok %s: exit status %d\n", t->name, WEXITSTATUS(status));
    return 1;
}

int main(int argc, char **argv) {
    int failed = 0, skipped = 0, ran = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (const wt_test_t *t = wt_tests; t->name; t++)
            printf("%s\n", t->name);
        return 0;
    }
    if (argc == 1) {
        for (const wt_test_t *t = wt_tests; t->name; t++, ran++) {
            int rc = run_one(t);
            failed += rc != 0 && rc != 77;
            skipped += rc == 77;
        }
    } else {
        for (int i = 1; i < argc; i++, ran++) {
            const wt_test_t *t = wt_tests;
            while (t->name && strcmp(t->name, argv[i]) != 0)
                t++;
            if (!t->name) {
                fprintf(stderr, "no such test: %s\n", argv[i]);
                failed++;
                continue;
            }
            int rc = run_one(t);
            failed += rc != 0 && rc != 77;
            skipped += rc == 77;
        }
    }
    printf("# %d tests, %d failed, %d skipped\n", ran, failed, skipped);
    if (failed)
        return 1;
    return ran > 0 && skipped == ran ? 77 : 0;
}

void wt_run_body(weft_task_fn body, void *arg) { wt_run_body_on(wt_loop_virtual(), body, arg); }

void wt_run_body_on(weft_loop_t *loop, weft_task_fn body, void *arg) {
    void *v = NULL;
    ASSERT_OK(wt_run_task(loop, body, arg, &v));
    ASSERT_EQ_PTR(v, (void *)1);
    WT_CLOSE_LOOP(loop);
}

weft_task_t *wt_spawn_arg(weft_task_fn fn, intptr_t arg) {
    return wt_spawn(NULL, fn, (void *)arg, NULL);
}

int wt_join(weft_task_t *t) {
    int rc = weft_await(t, NULL);
    weft_unref(t);
    return rc;
}

void wt_yield_n(int n) {
    while (n-- > 0)
        ASSERT_OK(weft_sleep(0));
}

void wt_run_main(weft_task_fn fn, intptr_t arg) {
    weft_loop_t *loop = wt_loop_virtual();
    ASSERT_OK(wt_run_task(loop, fn, (void *)arg, NULL));
    WT_CLOSE_LOOP(loop);
}
