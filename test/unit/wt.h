/* wt: the unit tests' framework. Each runner links one group's file (a table `wt_tests`) with
 * runner.c, which forks every test with a timeout so that a crash or a hang fails that test
 * only (libuv's runner). Assertions print file:line and the values, then end the test.
 *
 * Every test ends with WT_CLOSE_LOOP(loop): the loop must be clean (no task, future, handle,
 * timer, queued callback or stack left) before it is closed; the ASan build's LeakSanitizer
 * catches what was allocated and never freed. */
#ifndef WT_H
#define WT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

typedef struct wt_test {
    const char *name;
    void (*fn)(void);
    unsigned timeout;   /* seconds; 0: the default */
} wt_test_t;

/* The group's table, ended by an entry whose name is NULL. */
extern const wt_test_t wt_tests[];

#define TEST(name) static void test_##name(void)
#define T(name) {#name, test_##name, 0}
#define T_TIMEOUT(name, secs) {#name, test_##name, secs}
#define WT_END {NULL, NULL, 0}

/* ---- failing -------------------------------------------------------------------------- */

__attribute__((noreturn, format(printf, 3, 4))) void wt_fail(const char *file, int line,
                                                            const char *fmt, ...);
/* Exit status 77: skipped (the machine lacks something). */
__attribute__((noreturn, format(printf, 1, 2))) void wt_skip(const char *fmt, ...);

#define WT_FAIL(...) wt_fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                   \
    do {                                                               \
        if (!(cond))                                                   \
            wt_fail(__FILE__, __LINE__, "ASSERT(%s) failed", #cond);   \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                 \
    do {                                                                                    \
        long long wt_a_ = (long long)(a), wt_b_ = (long long)(b);                           \
        if (wt_a_ != wt_b_)                                                                 \
            wt_fail(__FILE__, __LINE__, "ASSERT_EQ_INT(%s, %s) failed: %lld (%s) != %lld (%s)", \
                    #a, #b, wt_a_, wt_errname(wt_a_), wt_b_, wt_errname(wt_b_));           \
    } while (0)

#define ASSERT_NE_INT(a, b)                                                                \
    do {                                                                                   \
        long long wt_a_ = (long long)(a), wt_b_ = (long long)(b);                          \
        if (wt_a_ == wt_b_)                                                                \
            wt_fail(__FILE__, __LINE__, "ASSERT_NE_INT(%s, %s) failed: both %lld", #a, #b, \
                    wt_a_);                                                                \
    } while (0)

#define WT__CMP_INT(op, name, a, b)                                                          \
    do {                                                                                     \
        long long wt_a_ = (long long)(a), wt_b_ = (long long)(b);                            \
        if (!(wt_a_ op wt_b_))                                                               \
            wt_fail(__FILE__, __LINE__, name "(%s, %s) failed: %lld vs %lld", #a, #b, wt_a_, \
                    wt_b_);                                                                  \
    } while (0)
#define ASSERT_LT_INT(a, b) WT__CMP_INT(<, "ASSERT_LT_INT", a, b)
#define ASSERT_LE_INT(a, b) WT__CMP_INT(<=, "ASSERT_LE_INT", a, b)
#define ASSERT_GT_INT(a, b) WT__CMP_INT(>, "ASSERT_GT_INT", a, b)
#define ASSERT_GE_INT(a, b) WT__CMP_INT(>=, "ASSERT_GE_INT", a, b)

/* Return codes: 0 or a WEFT_E*, printed by name. */
#define ASSERT_OK(expr) ASSERT_EQ_INT(expr, 0)

#define ASSERT_EQ_PTR(a, b)                                                                \
    do {                                                                                   \
        const void *wt_a_ = (const void *)(a), *wt_b_ = (const void *)(b);                 \
        if (wt_a_ != wt_b_)                                                                \
            wt_fail(__FILE__, __LINE__, "ASSERT_EQ_PTR(%s, %s) failed: %p != %p", #a, #b, \
                    wt_a_, wt_b_);                                                         \
    } while (0)

#define ASSERT_NULL(a) ASSERT_EQ_PTR(a, NULL)
#define ASSERT_NOT_NULL(a)                                                              \
    do {                                                                                \
        if ((a) == NULL)                                                                \
            wt_fail(__FILE__, __LINE__, "ASSERT_NOT_NULL(%s) failed", #a);              \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                                  \
    do {                                                                                     \
        const char *wt_a_ = (a), *wt_b_ = (b);                                               \
        if (!wt_a_ || !wt_b_ || strcmp(wt_a_, wt_b_) != 0)                                   \
            wt_fail(__FILE__, __LINE__, "ASSERT_EQ_STR(%s, %s) failed: \"%s\" != \"%s\"", #a, \
                    #b, wt_a_ ? wt_a_ : "(null)", wt_b_ ? wt_b_ : "(null)");                 \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                        \
    do {                                                                                    \
        const char *wt_h_ = (hay), *wt_n_ = (needle);                                       \
        if (!wt_h_ || !strstr(wt_h_, wt_n_))                                                \
            wt_fail(__FILE__, __LINE__, "ASSERT_CONTAINS(%s, \"%s\") failed; text was:\n%s", \
                    #hay, wt_n_, wt_h_ ? wt_h_ : "(null)");                                 \
    } while (0)

#define ASSERT_NOT_CONTAINS(hay, needle)                                                     \
    do {                                                                                     \
        const char *wt_h_ = (hay), *wt_n_ = (needle);                                        \
        if (wt_h_ && strstr(wt_h_, wt_n_))                                                   \
            wt_fail(__FILE__, __LINE__,                                                      \
                    "ASSERT_NOT_CONTAINS(%s, \"%s\") failed; text was:\n%s", #hay, wt_n_, wt_h_); \
    } while (0)

/* Exact double comparison: for the virtual clock, whose times are sums of the delays. */
#define ASSERT_EQ_DBL(a, b)                                                                 \
    do {                                                                                    \
        double wt_a_ = (a), wt_b_ = (b);                                                    \
        if (!(fabs(wt_a_ - wt_b_) <= 1e-9 || wt_a_ == wt_b_))                               \
            wt_fail(__FILE__, __LINE__, "ASSERT_EQ_DBL(%s, %s) failed: %.9f != %.9f", #a, #b, \
                    wt_a_, wt_b_);                                                          \
    } while (0)

/* libdill's time_assert: a real-clock duration within ±20 ms of what is expected (the
 * tolerance can be widened with WT_TIME_TOLERANCE=seconds for slow tools such as valgrind). */
double wt_time_tolerance(void);
#define ASSERT_TIME(actual, expected)                                                          \
    do {                                                                                       \
        double wt_a_ = (actual), wt_e_ = (expected), wt_t_ = wt_time_tolerance();              \
        if (wt_a_ < wt_e_ - wt_t_ || wt_a_ > wt_e_ + wt_t_)                                    \
            wt_fail(__FILE__, __LINE__, "ASSERT_TIME(%s, %s) failed: %.4f s, expected %.4f s " \
                    "± %.3f", #actual, #expected, wt_a_, wt_e_, wt_t_);                        \
    } while (0)

const char *wt_errname(long long code); /* "ECANCELED" for small negatives, else "" */

/* ---- helpers ---------------------------------------------------------------------------- */

double wt_now(void); /* CLOCK_MONOTONIC, seconds */

/* A loop with the virtual clock (the default for timing logic) or the real one. */
weft_loop_t *wt_loop_virtual(void);
weft_loop_t *wt_loop_real(void);

/* Asserts that the loop is clean (no task, future, handle, timer, ready callback or stack
 * left), then closes it. */
void wt_close_loop(const char *file, int line, weft_loop_t *loop);
#define WT_CLOSE_LOOP(loop) wt_close_loop(__FILE__, __LINE__, loop)
/* Asserts the same, without closing. */
void wt_check_clean(const char *file, int line, weft_loop_t *loop);
#define WT_CHECK_CLEAN(loop) wt_check_clean(__FILE__, __LINE__, loop)

/* Runs fn(arg) as a task of `loop` until it is done and returns its outcome; the task
 * reference is released. */
int wt_run_task(weft_loop_t *loop, weft_task_fn fn, void *arg, void **result);
/* Runs body(arg) as the main task of a fresh virtual-clock loop, asserts it returned the value
 * (void *)1, then closes the loop clean. */
void wt_run_body(weft_task_fn body, void *arg);
/* The same on `loop` (wt_loop_real(), say), which it closes. */
void wt_run_body_on(weft_loop_t *loop, weft_task_fn body, void *arg);
/* Short forms for tests of one loop: a task of the running loop with an integer argument (the
 * caller owns the reference); await it and release it; yield n times; run fn(arg) as the main
 * task of a fresh virtual-clock loop, which must end clean. */
weft_task_t *wt_spawn_arg(weft_task_fn fn, intptr_t arg);
int wt_join(weft_task_t *t);
void wt_yield_n(int n);
void wt_run_main(weft_task_fn fn, intptr_t arg);
/* The running loop's time (virtual in most tests), as opposed to wt_now(). */
static inline double wt_loop_now(void) { return weft_loop_time(weft_get_running_loop()); }
/* Creates a task (ASSERTing success) with an optional name; the caller owns the reference. */
weft_task_t *wt_spawn(weft_loop_t *loop, weft_task_fn fn, void *arg, const char *name);

/* An ordered log of events, for checks of ordering: wt_log(x) appends; WT_ASSERT_LOG(...)
 * compares the whole log with the expected sequence. */
void wt_log(int event);
int wt_log_len(void);
int wt_log_at(int i);
void wt_log_reset(void);
void wt_assert_log(const char *file, int line, const int *expected, int n);
#define WT_ASSERT_LOG(...)                                                          \
    do {                                                                            \
        static const int wt_exp_[] = {__VA_ARGS__};                                 \
        wt_assert_log(__FILE__, __LINE__, wt_exp_, (int)(sizeof wt_exp_ / sizeof wt_exp_[0])); \
    } while (0)

/* Redirects stderr (fd 2) to a temporary file until wt_capture_end(), which restores it and
 * returns what was written (malloc'd, NUL-terminated; the caller frees). */
void wt_capture_begin(void);
char *wt_capture_end(void);

/* Runs fn() in a forked child with stderr captured. *status gets waitpid's status; returns
 * the child's stderr (malloc'd). */
char *wt_run_child(void (*fn)(void), int *status);

/* A callback that stops the loop it is given. */
void wt_stop_cb(void *loop);

/* Peak resident set size of this process, in KiB. */
long wt_max_rss_kib(void);

/* Set when the library and tests were built with a sanitizer: heavy tests scale down. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WT_SANITIZED 1
#endif
#endif
#ifndef WT_SANITIZED
#define WT_SANITIZED 0
#endif

#if defined(__SANITIZE_THREAD__)
#define WT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WT_TSAN 1
#endif
#endif
#ifndef WT_TSAN
#define WT_TSAN 0
#endif

#endif
