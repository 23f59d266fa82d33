/* The logger: sinks, levels, the default sink's lines, threads, WEFT_LOG_LEVEL. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wt.h"

/* ---- a sink that keeps what it gets ------------------------------------------------------- */

#define MAX_KEPT 64

static struct {
    int level[MAX_KEPT];
    char *msg[MAX_KEPT];
    int n;       /* kept */
    int calls;   /* all calls, kept or not */
} kept;

static void keep_sink(int level, const char *message, void *arg) {
    ASSERT_EQ_PTR(arg, &kept);
    if (kept.n < MAX_KEPT) {
        kept.level[kept.n] = level;
        kept.msg[kept.n] = strdup(message);
        kept.n++;
    }
    kept.calls++;
}

static void kept_reset(void) {
    for (int i = 0; i < kept.n; i++)
        free(kept.msg[i]);
    memset(&kept, 0, sizeof kept);
}

static void restore_logger(void) {
    weft_log_set_sink(NULL, NULL);
    weft_log_set_level(WEFT_LOG_WARNING);
    kept_reset();
}

/* ---- sinks and levels --------------------------------------------------------------------- */

TEST(sink_gets_messages_and_levels) {
    weft_log_set_sink(keep_sink, &kept);
    weft_log_set_level(WEFT_LOG_DEBUG);
    weft_log(WEFT_LOG_DEBUG, "debug %d", 1);
    weft_log(WEFT_LOG_INFO, "info %s", "two");
    weft_log(WEFT_LOG_WARNING, "warning %.1f", 3.0);
    weft_log(WEFT_LOG_ERROR, "error\n"); /* a sink gets the line without its newline */
    ASSERT_EQ_INT(kept.n, 4);
    ASSERT_EQ_INT(kept.level[0], WEFT_LOG_DEBUG);
    ASSERT_EQ_STR(kept.msg[0], "debug 1");
    ASSERT_EQ_INT(kept.level[1], WEFT_LOG_INFO);
    ASSERT_EQ_STR(kept.msg[1], "info two");
    ASSERT_EQ_INT(kept.level[2], WEFT_LOG_WARNING);
    ASSERT_EQ_STR(kept.msg[2], "warning 3.0");
    ASSERT_EQ_INT(kept.level[3], WEFT_LOG_ERROR);
    ASSERT_EQ_STR(kept.msg[3], "error");
    restore_logger();
}

TEST(level_filters_messages) {
    weft_log_set_sink(keep_sink, &kept);
    ASSERT_EQ_INT(weft_log_get_level(), WEFT_LOG_WARNING); /* the default */
    weft_log(WEFT_LOG_DEBUG, "no");
    weft_log(WEFT_LOG_INFO, "no");
    weft_log(WEFT_LOG_WARNING, "w");
    weft_log(WEFT_LOG_ERROR, "e");
    ASSERT_EQ_INT(kept.calls, 2);
    ASSERT_EQ_STR(kept.msg[0], "w");
    ASSERT_EQ_STR(kept.msg[1], "e");
    weft_log_set_level(WEFT_LOG_ERROR);
    ASSERT_EQ_INT(weft_log_get_level(), WEFT_LOG_ERROR);
    weft_log(WEFT_LOG_WARNING, "no");
    weft_log(WEFT_LOG_ERROR, "e2");
    ASSERT_EQ_INT(kept.calls, 3);
    ASSERT_EQ_STR(kept.msg[2], "e2");
    /* A level between the named ones, and one above them all. */
    weft_log_set_level(25);
    weft_log(WEFT_LOG_INFO, "no");
    weft_log(25, "at 25");
    weft_log(55, "at 55");
    ASSERT_EQ_INT(kept.calls, 5);
    ASSERT_EQ_INT(kept.level[3], 25);
    ASSERT_EQ_INT(kept.level[4], 55);
    restore_logger();
}

/* Below the level, the message is not formatted at all: an argument that would crash vsnprintf
 * is never touched. */
TEST(filtered_message_is_not_formatted) {
    const char *bad = (const char *)(uintptr_t)16; /* unmapped: %s on it faults */
    weft_log_set_sink(keep_sink, &kept);
    weft_log_set_level(WEFT_LOG_ERROR);
    weft_log(WEFT_LOG_WARNING, "%s", bad);
    weft_log(WEFT_LOG_DEBUG, "%s", bad);
    ASSERT_EQ_INT(kept.calls, 0);
    restore_logger();
}

/* The library's own reports go through the logger, at WARNING, and follow its level. */
TEST(library_reports_use_the_logger) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_future_t *f;
    weft_log_set_sink(keep_sink, &kept);
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_set_error(f, WEFT_EINVAL, "lost %d", 1));
    weft_unref(f);
    ASSERT_EQ_INT(kept.n, 1);
    ASSERT_EQ_INT(kept.level[0], WEFT_LOG_WARNING);
    ASSERT_CONTAINS(kept.msg[0], "Future error was never retrieved: lost 1 (EINVAL)");
    weft_log_set_level(WEFT_LOG_ERROR);
    ASSERT_OK(weft_loop_create_future(loop, &f));
    ASSERT_OK(weft_future_set_error(f, WEFT_EINVAL, "lost %d", 2));
    weft_unref(f);
    ASSERT_EQ_INT(kept.calls, 1);
    restore_logger();
    WT_CLOSE_LOOP(loop);
}

TEST(level_names) {
    ASSERT_EQ_STR(weft_log_level_name(WEFT_LOG_DEBUG), "DEBUG");
    ASSERT_EQ_STR(weft_log_level_name(WEFT_LOG_INFO), "INFO");
    ASSERT_EQ_STR(weft_log_level_name(WEFT_LOG_WARNING), "WARNING");
    ASSERT_EQ_STR(weft_log_level_name(WEFT_LOG_ERROR), "ERROR");
    ASSERT_EQ_STR(weft_log_level_name(25), "Level 25");
}

/* ---- the default sink --------------------------------------------------------------------- */

/* "YYYY-MM-DD HH:MM:SS.mmm weft LEVEL: message\n", local time, now. */
static void check_line(const char *line, const char *level, const char *message) {
    struct tm tm;
    int ms = -1, used = 0;
    char expect[256];
    time_t now = time(NULL), when;
    memset(&tm, 0, sizeof tm);
    if (sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d.%3d %n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used) != 7 || used != 24)
        WT_FAIL("not a timestamped line: \"%s\"", line);
    ASSERT(ms >= 0 && ms <= 999);
    ASSERT_EQ_INT(line[4], '-');
    ASSERT_EQ_INT(line[10], ' ');
    ASSERT_EQ_INT(line[19], '.');
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    when = mktime(&tm); /* local time: mktime reads it back as such */
    ASSERT_LE_INT(llabs((long long)(now - when)), 5);
    snprintf(expect, sizeof expect, "weft %s: %s\n", level, message);
    if (strncmp(line + 24, expect, strlen(expect)) != 0)
        WT_FAIL("line \"%s\" does not go on with \"%s\"", line, expect);
}

TEST(default_sink_format) {
    char *out, *second;
    wt_capture_begin();
    weft_log(WEFT_LOG_WARNING, "hello %s %d", "world", 42);
    weft_log(WEFT_LOG_ERROR, "ends with a newline\n");
    weft_log(WEFT_LOG_INFO, "below the level");
    out = wt_capture_end();
    check_line(out, "WARNING", "hello world 42");
    second = strchr(out, '\n') + 1;
    check_line(second, "ERROR", "ends with a newline");
    ASSERT_EQ_STR(strchr(second, '\n'), "\n"); /* two lines, nothing else */
    ASSERT_NOT_CONTAINS(out, "below the level");
    free(out);
}

/* A message longer than any fixed buffer arrives whole, in the sink and on stderr. */
TEST(long_message_whole) {
    size_t n = 20000;
    char *big = malloc(n + 1), *out;
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    weft_log_set_sink(keep_sink, &kept);
    weft_log(WEFT_LOG_WARNING, "[%s]", big);
    ASSERT_EQ_INT(kept.n, 1);
    ASSERT_EQ_INT(strlen(kept.msg[0]), n + 2);
    ASSERT(memcmp(kept.msg[0] + 1, big, n) == 0);
    restore_logger();
    wt_capture_begin();
    weft_log(WEFT_LOG_WARNING, "[%s]", big);
    out = wt_capture_end();
    ASSERT_EQ_INT(strlen(out), 24 + strlen("weft WARNING: ") + n + 3);
    ASSERT(memcmp(out + 24 + strlen("weft WARNING: ") + 1, big, n) == 0);
    free(out);
    free(big);
}

TEST(set_sink_null_restores_default) {
    char *out;
    weft_log_set_sink(keep_sink, &kept);
    wt_capture_begin();
    weft_log(WEFT_LOG_WARNING, "to the sink");
    weft_log_set_sink(NULL, NULL);
    weft_log(WEFT_LOG_WARNING, "to stderr");
    out = wt_capture_end();
    ASSERT_EQ_INT(kept.calls, 1);
    ASSERT_EQ_STR(kept.msg[0], "to the sink");
    ASSERT_NOT_CONTAINS(out, "to the sink");
    check_line(out, "WARNING", "to stderr");
    free(out);
    kept_reset();
}

/* A sink that logs (or calls something that does) does not wait for itself: what it logs goes
 * to the default sink. */
static void logging_sink(int level, const char *message, void *arg) {
    (*(int *)arg)++;
    weft_log(WEFT_LOG_ERROR, "from inside the sink: %s", message);
}

TEST(sink_that_logs_does_not_deadlock) {
    int calls = 0;
    char *out;
    weft_log_set_sink(logging_sink, &calls);
    wt_capture_begin();
    weft_log(WEFT_LOG_WARNING, "outer");
    out = wt_capture_end();
    weft_log_set_sink(NULL, NULL);
    ASSERT_EQ_INT(calls, 1);
    check_line(out, "ERROR", "from inside the sink: outer");
    free(out);
}

/* ---- threads ------------------------------------------------------------------------------ */

#define NTHREADS 8

static struct {
    int inside;                 /* plain ints: the logger's lock is what protects them */
    int overlaps;
    int count;
    int last_seq[NTHREADS];
    int out_of_order;
} conc;

static void counting_sink(int level, const char *message, void *arg) {
    int thread, seq;
    if (++conc.inside != 1)
        conc.overlaps++;
    if (sscanf(message, "thread %d message %d", &thread, &seq) == 2 && thread >= 0 &&
        thread < NTHREADS) {
        if (seq != conc.last_seq[thread] + 1)
            conc.out_of_order++;
        conc.last_seq[thread] = seq;
    }
    conc.count++;
    conc.inside--;
}

static int per_thread(void) { return WT_TSAN ? 300 : 3000; }

static void *log_many(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 1; i <= per_thread(); i++)
        weft_log(i % 2 ? WEFT_LOG_WARNING : WEFT_LOG_ERROR, "thread %d message %d", id, i);
    return NULL;
}

static void run_threads(void *(*fn)(void *)) {
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i));
    for (int i = 0; i < NTHREADS; i++)
        ASSERT_OK(pthread_join(th[i], NULL));
}

/* Many threads at once: the sink is called one message at a time, none lost, each thread's in
 * its order (ThreadSanitizer checks the sink's unsynchronised counters). */
TEST(many_threads_one_sink_call_at_a_time) {
    weft_log_set_sink(counting_sink, NULL);
    run_threads(log_many);
    weft_log_set_sink(NULL, NULL);
    ASSERT_EQ_INT(conc.overlaps, 0);
    ASSERT_EQ_INT(conc.out_of_order, 0);
    ASSERT_EQ_INT(conc.count, NTHREADS * per_thread());
    for (int i = 0; i < NTHREADS; i++)
        ASSERT_EQ_INT(conc.last_seq[i], per_thread());
}

/* Lines long enough for stdio to split: every line still arrives whole. */
static void *log_long_lines(void *arg) {
    char pad[301];
    memset(pad, 'a' + (int)(intptr_t)arg, 300);
    pad[300] = '\0';
    for (int i = 0; i < 100; i++)
        weft_log(WEFT_LOG_WARNING, "t%d %s", (int)(intptr_t)arg, pad);
    return NULL;
}

TEST(many_threads_default_sink_whole_lines) {
    char *out, *line, *save = NULL;
    int n = 0;
    wt_capture_begin();
    run_threads(log_long_lines);
    out = wt_capture_end();
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        int id = -1, used = 0;
        const char *body = line + 24 + strlen("weft WARNING: ");
        ASSERT_EQ_INT(strlen(line), 24 + strlen("weft WARNING: ") + 3 + 300);
        ASSERT(strncmp(line + 24, "weft WARNING: t", 15) == 0);
        ASSERT(sscanf(body, "t%d %n", &id, &used) == 1 && id >= 0 && id < NTHREADS);
        for (int i = 0; i < 300; i++)
            if (body[used + i] != 'a' + id)
                WT_FAIL("line %d is mixed: %s", n, line);
    }
    ASSERT_EQ_INT(n, NTHREADS * 100);
    free(out);
}

/* ---- WEFT_LOG_LEVEL ----------------------------------------------------------------------- */

static void env_error_child(void) {
    setenv("WEFT_LOG_LEVEL", "error", 1);
    weft_log(WEFT_LOG_WARNING, "dropped warning");
    weft_log(WEFT_LOG_ERROR, "kept error");
    /* Read once: changing the environment later changes nothing. */
    setenv("WEFT_LOG_LEVEL", "debug", 1);
    weft_log(WEFT_LOG_INFO, "dropped info");
    _exit(weft_log_get_level() == WEFT_LOG_ERROR ? 0 : 3);
}

static void env_debug_child(void) {
    setenv("WEFT_LOG_LEVEL", "DEBUG", 1);
    weft_log(WEFT_LOG_DEBUG, "kept debug");
    _exit(weft_log_get_level() == WEFT_LOG_DEBUG ? 0 : 3);
}

static void env_numeric_child(void) {
    setenv("WEFT_LOG_LEVEL", "20", 1);
    weft_log(WEFT_LOG_DEBUG, "dropped debug");
    weft_log(WEFT_LOG_INFO, "kept info");
    _exit(weft_log_get_level() == WEFT_LOG_INFO ? 0 : 3);
}

static void env_bogus_child(void) {
    setenv("WEFT_LOG_LEVEL", "loud", 1);
    weft_log(WEFT_LOG_INFO, "dropped info");
    weft_log(WEFT_LOG_WARNING, "kept warning");
    _exit(weft_log_get_level() == WEFT_LOG_WARNING ? 0 : 3);
}

/* weft_log_set_level() before the first message wins over the environment. */
static void env_overridden_child(void) {
    setenv("WEFT_LOG_LEVEL", "error", 1);
    weft_log_set_level(WEFT_LOG_INFO);
    weft_log(WEFT_LOG_INFO, "kept info");
    _exit(weft_log_get_level() == WEFT_LOG_INFO ? 0 : 3);
}

static char *run_env_child(void (*fn)(void)) {
    int status;
    char *err = wt_run_child(fn, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        WT_FAIL("child status %d, stderr:\n%s", status, err);
    return err;
}

TEST(env_log_level_in_child) {
    char *err;
    unsetenv("WEFT_LOG_LEVEL");
    err = run_env_child(env_error_child);
    ASSERT_CONTAINS(err, "weft ERROR: kept error\n");
    ASSERT_NOT_CONTAINS(err, "dropped");
    free(err);
    err = run_env_child(env_debug_child);
    ASSERT_CONTAINS(err, "weft DEBUG: kept debug\n");
    free(err);
    err = run_env_child(env_numeric_child);
    ASSERT_CONTAINS(err, "weft INFO: kept info\n");
    ASSERT_NOT_CONTAINS(err, "dropped");
    free(err);
    err = run_env_child(env_bogus_child);
    ASSERT_CONTAINS(err, "weft WARNING: kept warning\n");
    ASSERT_NOT_CONTAINS(err, "dropped");
    free(err);
    err = run_env_child(env_overridden_child);
    ASSERT_CONTAINS(err, "weft INFO: kept info\n");
    free(err);
}

const wt_test_t wt_tests[] = {
    T(sink_gets_messages_and_levels),
    T(level_filters_messages),
    T(filtered_message_is_not_formatted),
    T(library_reports_use_the_logger),
    T(level_names),
    T(default_sink_format),
    T(long_message_whole),
    T(set_sink_null_restores_default),
    T(sink_that_logs_does_not_deadlock),
    T(many_threads_one_sink_call_at_a_time),
    T(many_threads_default_sink_whole_lines),
    T(env_log_level_in_child),
    WT_END,
};
