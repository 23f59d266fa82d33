/* Debug mode: slow task steps and callbacks, creation sites in reports, WEFT_DEBUG, the
 * wrong-thread check, objects left open when the loop closes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wt.h"

/* ---- a sink that keeps the messages ----------------------------------------------------- */

#define MAX_KEPT 64

static struct {
    int level[MAX_KEPT];
    char *msg[MAX_KEPT];
    int n;
} kept;

static void keep_sink(int level, const char *message, void *arg) {
    if (kept.n < MAX_KEPT) {
        kept.level[kept.n] = level;
        kept.msg[kept.n] = strdup(message);
        kept.n++;
    }
}

static void keep_begin(void) { weft_log_set_sink(keep_sink, NULL); }

static void keep_end(void) {
    weft_log_set_sink(NULL, NULL);
    for (int i = 0; i < kept.n; i++)
        free(kept.msg[i]);
    memset(&kept, 0, sizeof kept);
}

/* The kept messages that contain `needle`: how many, and the first. */
static int kept_with(const char *needle, const char **first) {
    int n = 0;
    if (first)
        *first = NULL;
    for (int i = 0; i < kept.n; i++)
        if (strstr(kept.msg[i], needle)) {
            if (first && !*first)
                *first = kept.msg[i];
            n++;
        }
    return n;
}

/* How many kept messages are exactly `text` or start with `text` and a space. */
static int kept_word(const char *text) {
    size_t len = strlen(text);
    int n = 0;
    for (int i = 0; i < kept.n; i++)
        if (strncmp(kept.msg[i], text, len) == 0 &&
            (kept.msg[i][len] == '\0' || kept.msg[i][len] == ' '))
            n++;
    return n;
}

/* The seconds of "... took 0.153 seconds". */
static double took_of(const char *msg) {
    const char *p = strstr(msg, " took ");
    if (!p)
        WT_FAIL("no duration in \"%s\"", msg);
    return atof(p + 6);
}

static void block_for(double seconds) { usleep((useconds_t)(seconds * 1e6)); }

/* A loop in debug mode, whatever WEFT_DEBUG says. */
static weft_loop_t *debug_loop(void) {
    weft_loop_t *loop = wt_loop_real();
    weft_loop_set_debug(loop, 1);
    ASSERT_EQ_INT(weft_loop_get_debug(loop), 1);
    return loop;
}

/* ---- slow task steps ---------------------------------------------------------------------- */

/* First step quick, second step blocks 0.15 s and ends in a suspension, last step quick. */
static int blocks_in_middle_step(void *arg, void **result) {
    ASSERT_OK(weft_sleep(0));
    block_for(0.15);
    ASSERT_OK(weft_sleep(0));
    return 0;
}

TEST(slow_task_step_names_task_and_site) {
    weft_loop_t *loop = debug_loop();
    weft_task_options_t o = {"sleepy", 0};
    weft_task_t *t;
    const char *msg;
    char expect[256];
    int line = __LINE__ + 1;
    ASSERT_OK(weft_loop_create_task(loop, &t, blocks_in_middle_step, NULL, &o));
    keep_begin();
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    snprintf(expect, sizeof expect, "Executing <Task 'sleepy' #%llu created at ",
             (unsigned long long)weft_task_id(t));
    ASSERT(strncmp(msg, expect, strlen(expect)) == 0);
    snprintf(expect, sizeof expect, "test_debug.c:%d in test_slow_task_step_names_task_and_site> "
             "took 0.", line);
    ASSERT_CONTAINS(msg, expect);
    ASSERT(took_of(msg) >= 0.15 && took_of(msg) < 1.0);
    ASSERT_EQ_INT(kept.level[0], WEFT_LOG_WARNING);
    keep_end();
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* The slow step is the task's only one: it ends by returning, not by suspending. */
static int blocks_first_step(void *arg, void **result) {
    block_for(0.12);
    return 0;
}

static int quick_yields(void *arg, void **result) {
    for (int i = 0; i < 5; i++)
        ASSERT_OK(weft_sleep(0));
    return 0;
}

static int quick_returns(void *arg, void **result) { return 0; }

/* Tasks around the slow one hand over to each other directly (no trip through the loop), and
 * the task after it, not started yet, runs on the slow one's stack as soon as it returns: only
 * the slow one is named. */
TEST(only_the_slow_task_is_named) {
    weft_loop_t *loop = debug_loop();
    weft_task_t *t[5];
    const char *msg;
    t[0] = wt_spawn(loop, quick_yields, NULL, "fast-a");
    t[1] = wt_spawn(loop, blocks_first_step, NULL, "slow");
    t[2] = wt_spawn(loop, quick_returns, NULL, "fresh-after-slow");
    t[3] = wt_spawn(loop, quick_yields, NULL, "fast-b");
    t[4] = wt_spawn(loop, quick_returns, NULL, "fresh-last");
    keep_begin();
    for (int i = 0; i < 5; i++)
        ASSERT_OK(weft_loop_run_until_complete(loop, t[i], NULL));
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    ASSERT_CONTAINS(msg, "Executing <Task 'slow' #");
    ASSERT(took_of(msg) >= 0.12 && took_of(msg) < 1.0);
    keep_end();
    for (int i = 0; i < 5; i++)
        weft_unref(t[i]);
    WT_CLOSE_LOOP(loop);
}

/* A task made with the function rather than the macro has no site: the report says so by
 * leaving it out. */

TEST(slow_task_without_site) {
    weft_loop_t *loop = debug_loop();
    weft_task_options_t o = {"no-site", 0};
    weft_task_t *t;
    const char *msg;
    ASSERT_OK((weft_loop_create_task)(loop, &t, blocks_first_step, NULL, &o));
    keep_begin();
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    ASSERT_CONTAINS(msg, "Executing <Task 'no-site' #");
    ASSERT_NOT_CONTAINS(msg, "created at");
    keep_end();
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- slow callbacks ----------------------------------------------------------------------- */

/* Not static: a program linked with -rdynamic would show its name; either way the report
 * carries the function's name or its address. */
void debug_test_slow_cb(void *loop);
void debug_test_slow_cb(void *loop) {
    block_for(0.12);
    weft_loop_stop(loop);
}

static void assert_names_fn(const char *msg, void *fn, const char *name) {
    char addr[32];
    snprintf(addr, sizeof addr, "%p", fn);
    if (!strstr(msg, name) && !strstr(msg, addr))
        WT_FAIL("\"%s\" names neither %s nor %s", msg, name, addr);
}

TEST(slow_call_soon_callback) {
    weft_loop_t *loop = debug_loop();
    const char *msg;
    ASSERT_OK(weft_call_soon(loop, debug_test_slow_cb, loop, NULL));
    keep_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    ASSERT(strncmp(msg, "Executing <Handle ", 18) == 0);
    assert_names_fn(msg, (void *)(uintptr_t)debug_test_slow_cb, "debug_test_slow_cb");
    ASSERT(took_of(msg) >= 0.12 && took_of(msg) < 1.0);
    keep_end();
    WT_CLOSE_LOOP(loop);
}

static void slow_done(weft_future_t *f, void *loop) {
    block_for(0.12);
    weft_loop_stop(loop);
}

/* A done callback is named by the user's function, not by weft's wrapper around it. */
TEST(slow_done_callback) {
    weft_loop_t *loop = debug_loop();
    weft_future_t *f;
    const char *msg;
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_add_done_callback(f, slow_done, loop));
    ASSERT_OK(weft_future_set_result(f, NULL));
    keep_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    assert_names_fn(msg, (void *)(uintptr_t)slow_done, "slow_done");
    keep_end();
    weft_unref(f);
    WT_CLOSE_LOOP(loop);
}

/* A call_soon_threadsafe callback too (its wrapper is weft's). */
TEST(slow_threadsafe_callback) {
    weft_loop_t *loop = debug_loop();
    const char *msg;
    ASSERT_OK(weft_call_soon_threadsafe(loop, debug_test_slow_cb, loop));
    keep_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    assert_names_fn(msg, (void *)(uintptr_t)debug_test_slow_cb, "debug_test_slow_cb");
    keep_end();
    WT_CLOSE_LOOP(loop);
}

/* ---- no report ---------------------------------------------------------------------------- */

static void blocks_50ms(void *loop) { block_for(0.05); }

static int blocks_each_step(void *arg, void **result) {
    double each = *(double *)arg;
    block_for(each);
    ASSERT_OK(weft_sleep(0));
    block_for(each);
    return 0;
}

/* Under the duration: nothing. A negative duration is ignored (it would report every step). */
TEST(no_warning_under_duration) {
    weft_loop_t *loop = debug_loop();
    double each = 0.05;
    weft_task_t *t;
    weft_loop_set_slow_callback_duration(loop, 0.5);
    weft_loop_set_slow_callback_duration(loop, -1);
    t = wt_spawn(loop, blocks_each_step, &each, "under");
    ASSERT_OK(weft_call_soon(loop, blocks_50ms, loop, NULL));
    keep_begin();
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_EQ_INT(kept.n, 0);
    keep_end();
    /* The same steps with a duration below them are reported: the check above could fail. */
    weft_unref(t);
    weft_loop_set_slow_callback_duration(loop, 0.01);
    t = wt_spawn(loop, blocks_each_step, &each, "over");
    ASSERT_OK(weft_call_soon(loop, blocks_50ms, loop, NULL));
    keep_begin();
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_EQ_INT(kept_with("Executing <Task 'over'", NULL), 2);
    ASSERT_EQ_INT(kept_with("Executing <Handle", NULL), 1);
    keep_end();
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

static void blocks_150ms_stop(void *loop) {
    block_for(0.15);
    weft_loop_stop(loop);
}

TEST(no_warning_with_debug_off) {
    weft_loop_t *loop = wt_loop_real();
    double each = 0.15;
    weft_task_t *t;
    weft_loop_set_debug(loop, 0);
    ASSERT_EQ_INT(weft_loop_get_debug(loop), 0);
    t = wt_spawn(loop, blocks_each_step, &each, "not-watched");
    keep_begin();
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    ASSERT_OK(weft_call_soon(loop, blocks_150ms_stop, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(kept.n, 0);
    keep_end();
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* Debug mode turned on in the middle of a step times that step from then on, not from a start
 * it never recorded. */
static int enables_debug_mid_step(void *arg, void **result) {
    weft_loop_t *loop = weft_get_running_loop();
    block_for(0.3);
    weft_loop_set_debug(loop, 1);
    ASSERT_OK(weft_sleep(0));
    block_for(0.12);
    return 0;
}

TEST(debug_turned_on_mid_step) {
    weft_loop_t *loop = wt_loop_real();
    weft_task_t *t;
    const char *msg;
    weft_loop_set_debug(loop, 0);
    t = wt_spawn(loop, enables_debug_mid_step, NULL, "late");
    keep_begin();
    ASSERT_OK(weft_loop_run_until_complete(loop, t, NULL));
    /* Only the second step (0.12 s), not the first (0.3 s, before debug mode). */
    ASSERT_EQ_INT(kept_with("Executing", &msg), 1);
    ASSERT(took_of(msg) >= 0.12 && took_of(msg) < 0.25);
    keep_end();
    weft_unref(t);
    WT_CLOSE_LOOP(loop);
}

/* ---- WEFT_DEBUG --------------------------------------------------------------------------- */

static int env_debug_of(const char *value) {
    weft_loop_t *loop;
    int on;
    if (value)
        setenv("WEFT_DEBUG", value, 1);
    else
        unsetenv("WEFT_DEBUG");
    ASSERT_OK(weft_loop_new(&loop, NULL));
    on = weft_loop_get_debug(loop);
    ASSERT_OK(weft_loop_close(loop));
    return on;
}

static int slow_main(void *arg, void **result) {
    block_for(0.12);
    return 0;
}

static void env_debug_child(void) {
    if (env_debug_of("1") != 1 || env_debug_of("true") != 1 || env_debug_of("YES") != 1 ||
        env_debug_of("0") != 0 || env_debug_of("no") != 0 || env_debug_of("") != 0 ||
        env_debug_of(NULL) != 0)
        _exit(3);
    /* Read by every new loop, weft_run()'s too: its main task's slow step is reported. */
    setenv("WEFT_DEBUG", "1", 1);
    _exit(weft_run(slow_main, NULL, NULL) == 0 ? 0 : 4);
}

static void env_no_debug_child(void) {
    unsetenv("WEFT_DEBUG");
    _exit(weft_run(slow_main, NULL, NULL) == 0 ? 0 : 4);
}

TEST(weft_debug_env_turns_it_on) {
    int status;
    char *err = wt_run_child(env_debug_child, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        WT_FAIL("child status %d, stderr:\n%s", status, err);
    ASSERT_CONTAINS(err, " weft WARNING: Executing <Task 'Task-");
    ASSERT_CONTAINS(err, "> took 0.1");
    free(err);
    err = wt_run_child(env_no_debug_child, &status);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_NOT_CONTAINS(err, "Executing");
    free(err);
}

/* ---- creation sites in the reports (any mode) --------------------------------------------- */

static int fails(void *arg, void **result) { return weft_fail(WEFT_EINVAL, "lost error"); }

TEST(never_retrieved_report_has_site) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_options_t o = {"forgotten", 0};
    const char *msg;
    char expect[160];
    int line = __LINE__ + 1;
    ASSERT_OK(weft_loop_create_task(loop, NULL, fails, NULL, &o));
    ASSERT_OK(weft_call_later(loop, 1.0, wt_stop_cb, loop, NULL));
    weft_loop_set_debug(loop, 0); /* reported with the site in any mode */
    keep_begin();
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(kept_with("Task error was never retrieved", &msg), 1);
    ASSERT_CONTAINS(msg, "'forgotten': lost error (EINVAL) (created at ");
    snprintf(expect, sizeof expect, "test_debug.c:%d in test_never_retrieved_report_has_site)",
             line);
    ASSERT_CONTAINS(msg, expect);
    keep_end();
    WT_CLOSE_LOOP(loop);
}

static int waits_forever(void *arg, void **result) { return weft_sleep(WEFT_NEVER); }

TEST(destroyed_pending_report_has_site) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_options_t o = {"stuck", 0};
    weft_task_t *t;
    const char *msg;
    char expect[160];
    int line = __LINE__ + 1;
    ASSERT_OK(weft_loop_create_task(loop, &t, waits_forever, NULL, &o));
    ASSERT_OK(weft_call_soon(loop, wt_stop_cb, loop, NULL));
    weft_loop_set_debug(loop, 0);
    ASSERT_OK(weft_loop_run_forever(loop));
    keep_begin();
    ASSERT_OK(weft_loop_close(loop));
    ASSERT_EQ_INT(kept_with("Task was destroyed but it is pending", &msg), 1);
    snprintf(expect, sizeof expect, "task #%llu 'stuck' (created at ",
             (unsigned long long)weft_task_id(t));
    ASSERT_CONTAINS(msg, expect);
    snprintf(expect, sizeof expect, "test_debug.c:%d in test_destroyed_pending_report_has_site)",
             line);
    ASSERT_CONTAINS(msg, expect);
    keep_end();
    weft_unref(t);
}

/* ---- the wrong-thread check --------------------------------------------------------------- */

static weft_loop_t *checked_loop;

static void nothing(void *arg) {}

static void *calls_from_other_thread(void *arg) {
    weft_call_soon(checked_loop, nothing, NULL, NULL);
    return NULL;
}

static int starts_wrong_thread(void *arg, void **result) {
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, calls_from_other_thread, NULL));
    pthread_join(th, NULL);
    return 0;
}

static void wrong_thread_child(void) {
    checked_loop = wt_loop_real();
    weft_loop_set_debug(checked_loop, 1);
    wt_run_task(checked_loop, starts_wrong_thread, NULL, NULL);
    _exit(0);
}

/* Debug mode checks [loop thread] calls in any build, WEFT_THREAD_CHECKS or not. */
TEST(wrong_thread_aborts_in_debug_mode) {
    int status;
    char *err = wt_run_child(wrong_thread_child, &status);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        WT_FAIL("child status %d, not SIGABRT; stderr:\n%s", status, err);
    ASSERT_CONTAINS(err, " weft ERROR: weft_call_soon() called on a thread other than the one "
                         "running its loop");
    free(err);
}

/* ---- objects left open when the loop closes ----------------------------------------------- */

static struct {
    weft_server_t *srv;
    weft_stream_t *client, *pair, *closed;
    weft_udp_t *udp;
    weft_process_t *proc;
    int port, udp_port, client_fd, pair_fd, closed_fd, other_end, closed_other, pid;
} open_objs;

static int quick_handler(weft_stream_t *s, void *arg) { return 0; }

static int leaves_objects_open(void *arg, void **result) {
    int sv[2];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char *const argv[] = {"true", NULL};
    char c;
    weft_udp_options_t uo = {.local_host = "127.0.0.1"};
    ASSERT_OK(weft_start_server(&open_objs.srv, quick_handler, NULL, "127.0.0.1", 0, NULL));
    open_objs.port = weft_server_port(open_objs.srv);
    ASSERT_OK(weft_open_connection(&open_objs.client, "127.0.0.1", open_objs.port, NULL));
    open_objs.client_fd = weft_stream_fd(open_objs.client);
    /* The end of the stream: the handler has returned and the server closed its side. */
    ASSERT_EQ_INT(weft_stream_read(open_objs.client, &c, 1), 0);
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_OK(weft_stream_from_fd(&open_objs.pair, sv[0], 0));
    open_objs.pair_fd = sv[0];
    open_objs.other_end = sv[1];
    /* Closed but not freed: not "unclosed". */
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_OK(weft_stream_from_fd(&open_objs.closed, sv[0], 0));
    open_objs.closed_fd = sv[0];
    open_objs.closed_other = sv[1];
    weft_stream_close(open_objs.closed);
    ASSERT_OK(weft_stream_wait_closed(open_objs.closed));
    ASSERT_OK(weft_udp_open(&open_objs.udp, &uo));
    ASSERT_OK(weft_udp_sockname(open_objs.udp, &ss, &len));
    open_objs.udp_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    ASSERT_OK(weft_create_subprocess_exec(&open_objs.proc, "true", argv, NULL));
    open_objs.pid = weft_process_pid(open_objs.proc);
    ASSERT_OK(weft_process_wait(open_objs.proc, NULL));
    return 0;
}

static void free_objects(void) {
    ASSERT_OK(weft_server_free(open_objs.srv));
    weft_stream_free(open_objs.client);
    weft_stream_free(open_objs.pair);
    weft_stream_free(open_objs.closed);
    weft_udp_close(open_objs.udp);
    weft_process_free(open_objs.proc);
    close(open_objs.other_end);
    close(open_objs.closed_other);
    memset(&open_objs, 0, sizeof open_objs);
}

static void close_with_open_objects(bool debug) {
    weft_loop_t *loop = wt_loop_real();
    weft_loop_set_debug(loop, debug);
    ASSERT_OK(wt_run_task(loop, leaves_objects_open, NULL, NULL));
    keep_begin();
    ASSERT_OK(weft_loop_close(loop));
}

TEST(unclosed_objects_reported_at_loop_close) {
    char expect[160];
    close_with_open_objects(true);
    snprintf(expect, sizeof expect, "unclosed stream fd %d (peer 127.0.0.1:%d)",
             open_objs.client_fd, open_objs.port);
    ASSERT_EQ_INT(kept_with(expect, NULL), 1);
    snprintf(expect, sizeof expect, "unclosed stream fd %d", open_objs.pair_fd);
    ASSERT_EQ_INT(kept_word(expect), 1); /* a socket pair's end has no peer address */
    snprintf(expect, sizeof expect, "unclosed stream fd %d", open_objs.closed_fd);
    ASSERT_EQ_INT(kept_word(expect), 0);
    snprintf(expect, sizeof expect, "unclosed server 127.0.0.1:%d", open_objs.port);
    ASSERT_EQ_INT(kept_with(expect, NULL), 1);
    snprintf(expect, sizeof expect, "(local 127.0.0.1:%d)", open_objs.udp_port);
    ASSERT_EQ_INT(kept_with(expect, NULL), 1);
    snprintf(expect, sizeof expect, "unclosed subprocess pid %d (exited)", open_objs.pid);
    ASSERT_EQ_INT(kept_with(expect, NULL), 1);
    /* The two streams, the server, the endpoint, the process; all warnings. */
    ASSERT_EQ_INT(kept_with("unclosed ", NULL), 5);
    for (int i = 0; i < kept.n; i++)
        ASSERT_EQ_INT(kept.level[i], WEFT_LOG_WARNING);
    keep_end();
    free_objects();
}

TEST(unclosed_objects_silent_without_debug) {
    close_with_open_objects(false);
    ASSERT_EQ_INT(kept_with("unclosed", NULL), 0);
    keep_end();
    free_objects();
}

const wt_test_t wt_tests[] = {
    T(slow_task_step_names_task_and_site),
    T(only_the_slow_task_is_named),
    T(slow_task_without_site),
    T(slow_call_soon_callback),
    T(slow_done_callback),
    T(slow_threadsafe_callback),
    T(no_warning_under_duration),
    T(no_warning_with_debug_off),
    T(debug_turned_on_mid_step),
    T(weft_debug_env_turns_it_on),
    T(never_retrieved_report_has_site),
    T(destroyed_pending_report_has_site),
    T(wrong_thread_aborts_in_debug_mode),
    T(unclosed_objects_reported_at_loop_close),
    T(unclosed_objects_silent_without_debug),
    WT_END,
};
