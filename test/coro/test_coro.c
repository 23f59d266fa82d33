/* Tests for src/coro: contexts, the stack pool, stack-overflow reporting.
 *
 *   test_coro          run every test; exit status 0 when all pass
 *   test_coro bench    print the cost of a switch and of a task's stack life cycle
 *   test_coro gdb      run one coroutine that calls gdb_break_here(), for checking backtraces:
 *                      gdb -batch -ex 'break gdb_break_here' -ex run -ex bt --args test_coro gdb
 *
 * Standalone: it needs only src/coro and libc/libm. Under valgrind, the million-stack test is
 * scaled down (valgrind tracks each registered stack in a list).
 */
#define _GNU_SOURCE
#include "coro.h"

#include <errno.h>
#include <execinfo.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#  if __has_include(<valgrind/valgrind.h>)
#    include <valgrind/valgrind.h>
#  endif
#endif
#ifndef RUNNING_ON_VALGRIND
#  define RUNNING_ON_VALGRIND 0
#endif
#if defined(__SANITIZE_THREAD__)
#  define UNDER_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define UNDER_TSAN 1
#  endif
#endif
#ifndef UNDER_TSAN
#  define UNDER_TSAN 0
#endif

static int failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

#define CHECKF(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- ping-pong between the thread and three coroutines ---- */

static __thread weft__coro_t pp_main, pp_co[3];
static __thread int pp_trace[32], pp_ntrace, pp_done[3];
static __thread int pp_misaligned;

static void pp_entry(void *arg)
{
    int id = (int)(intptr_t)arg;
    _Alignas(16) char probe[16];
    if ((uintptr_t)probe & 15)
        pp_misaligned = 1;
    /* Values the compiler keeps in callee-saved registers across the switches. */
    unsigned long a = 1u + (unsigned)id, b = 7, c = 13, d = 0x55;
    for (int round = 0; round < 3; round++) {
        pp_trace[pp_ntrace++] = id * 10 + round;
        a = a * 3 + 1;
        b ^= a;
        c += b;
        d = d * 5 + c;
        weft__coro_switch(&pp_co[id], id < 2 ? &pp_co[id + 1] : &pp_main);
    }
    /* The same computation, without switches, must give the same result. */
    unsigned long a2 = 1u + (unsigned)id, b2 = 7, c2 = 13, d2 = 0x55;
    for (int round = 0; round < 3; round++) {
        a2 = a2 * 3 + 1;
        b2 ^= a2;
        c2 += b2;
        d2 = d2 * 5 + c2;
    }
    pp_done[id] = (a == a2 && b == b2 && c == c2 && d == d2) ? 1 : -1;
    weft__coro_switch_final(&pp_co[id], &pp_main);
}

static void test_ping_pong_once(weft__stack_pool_t *pool)
{
    weft__stack_t st[3];
    pp_ntrace = 0;
    CHECK(weft__coro_init_thread(&pp_main) == 0);
    for (int i = 0; i < 3; i++) {
        pp_done[i] = 0;
        CHECK(weft__stack_get(pool, 0, &st[i]) == 0);
        CHECK(weft__coro_make(&pp_co[i], &st[i], pp_entry, (void *)(intptr_t)i) == 0);
    }
    /* The thread's own values, in callee-saved registers across the switches. */
    unsigned long x = (unsigned long)pp_ntrace + 42, y = x * 7, z = y ^ 0xabc;
    for (int round = 0; round < 3; round++) {
        weft__coro_switch(&pp_main, &pp_co[0]); /* 0 -> 1 -> 2 -> back here */
        x += y;
        y ^= z;
        z = z * 3 + x;
    }
    for (int i = 0; i < 3; i++)
        weft__coro_switch(&pp_main, &pp_co[i]); /* each finishes */
    static const int expect[] = {0, 10, 20, 1, 11, 21, 2, 12, 22};
    CHECK(pp_ntrace == 9);
    CHECK(memcmp(pp_trace, expect, sizeof expect) == 0);
    for (int i = 0; i < 3; i++) {
        CHECKF(pp_done[i] == 1, "coroutine %d: %d", i, pp_done[i]);
        weft__coro_release(&pp_co[i]);
        weft__stack_put(pool, &st[i]);
    }
    unsigned long x2 = 42, y2 = x2 * 7, z2 = y2 ^ 0xabc;
    for (int round = 0; round < 3; round++) {
        x2 += y2;
        y2 ^= z2;
        z2 = z2 * 3 + x2;
    }
    CHECK(x == x2 && y == y2 && z == z2);
    CHECK(!pp_misaligned);
    weft__coro_release(&pp_main);
}

static void test_ping_pong(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    CHECK(pool);
    test_ping_pong_once(pool);
    CHECK(weft__stack_pool_in_use(pool) == 0);
    weft__stack_pool_free(pool);
}

/* ---- each context keeps its own FP control state ---- */

static weft__coro_t fp_main, fp_co[3];
static int fp_seen[3];         /* rounding mode each coroutine saw after others ran */
static double fp_sse[3];       /* 1/3 computed with SSE (MXCSR) */
static long double fp_x87[3];  /* 1/3 computed with x87 (control word) on x86 */
static volatile double fp_one = 1.0, fp_three = 3.0;

struct fp_arg {
    int id;
    int set_mode; /* -1: keep the inherited mode */
};

static void fp_entry(void *p)
{
    struct fp_arg *a = p;
    if (a->set_mode >= 0)
        fesetround(a->set_mode);
    weft__coro_switch(&fp_co[a->id], &fp_main);
    fp_seen[a->id] = fegetround();
    fp_sse[a->id] = fp_one / fp_three;
    fp_x87[a->id] = (long double)fp_one / (long double)fp_three;
    weft__coro_switch_final(&fp_co[a->id], &fp_main);
}

static void test_fp_env(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    weft__stack_t st[3];
    CHECK(weft__coro_init_thread(&fp_main) == 0);
    struct fp_arg args[3] = {{0, FE_UPWARD}, {1, FE_DOWNWARD}, {2, -1}};

    fesetround(FE_TONEAREST);
    for (int i = 0; i < 2; i++) {
        CHECK(weft__stack_get(pool, 0, &st[i]) == 0);
        CHECK(weft__coro_make(&fp_co[i], &st[i], fp_entry, &args[i]) == 0);
    }
    /* Coroutine 2 is made while the thread rounds toward zero: it inherits that mode. */
    fesetround(FE_TOWARDZERO);
    CHECK(weft__stack_get(pool, 0, &st[2]) == 0);
    CHECK(weft__coro_make(&fp_co[2], &st[2], fp_entry, &args[2]) == 0);
    fesetround(FE_TONEAREST);

    for (int i = 0; i < 3; i++) {
        weft__coro_switch(&fp_main, &fp_co[i]);
        CHECKF(fegetround() == FE_TONEAREST, "thread's mode changed by coroutine %d", i);
    }
    for (int i = 0; i < 3; i++)
        weft__coro_switch(&fp_main, &fp_co[i]);
    CHECK(fegetround() == FE_TONEAREST);
    CHECK(fp_seen[0] == FE_UPWARD);
    CHECK(fp_seen[1] == FE_DOWNWARD);
    CHECK(fp_seen[2] == FE_TOWARDZERO);
    /* The modes really applied to arithmetic, through MXCSR and the x87 control word.
     * (valgrind's CPU ignores the rounding mode in arithmetic: only the words are checked.) */
    if (!RUNNING_ON_VALGRIND) {
        CHECK(fp_sse[0] > fp_sse[1]);
        CHECK(fp_sse[1] == fp_sse[2]);
        CHECK(fp_x87[0] > fp_x87[1] || sizeof(long double) == sizeof(double));
        double near = fp_one / fp_three;
        CHECK(near == fp_sse[0] || near == fp_sse[1]);
    }

    for (int i = 0; i < 3; i++) {
        weft__coro_release(&fp_co[i]);
        weft__stack_put(pool, &st[i]);
    }
    weft__coro_release(&fp_main);
    weft__stack_pool_free(pool);
}

/* ---- 100,000 short tasks reuse one warm stack ---- */

static weft__coro_t cyc_main, cyc_co;
static long cyc_count;

static void cyc_entry(void *arg)
{
    cyc_count += (long)(intptr_t)arg;
    weft__coro_switch_final(&cyc_co, &cyc_main);
}

/* Whether reading `addr` kills a child process with SIGSEGV (or SIGBUS): a guard page. */
static int guard_faults(const char *addr)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* ASan's handler would report and exit instead */
        signal(SIGBUS, SIG_DFL);
        volatile char c = *(volatile const char *)addr;
        (void)c;
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

static void test_cycles(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    CHECK(weft__coro_init_thread(&cyc_main) == 0);
    const int n = 100000;
    char *first_lo = NULL;
    int moved = 0;
    cyc_count = 0;
    for (int i = 0; i < n; i++) {
        weft__stack_t st;
        if (weft__stack_get(pool, 0, &st) != 0) {
            CHECK(!"stack_get failed");
            break;
        }
        if (!first_lo)
            first_lo = st.lo;
        else if (st.lo != first_lo)
            moved++;
        CHECK(weft__coro_make(&cyc_co, &st, cyc_entry, (void *)(intptr_t)1) == 0);
        weft__overflow_set_running(&st, NULL);
        weft__coro_switch(&cyc_main, &cyc_co);
        weft__overflow_set_running(NULL, NULL);
        weft__coro_release(&cyc_co);
        weft__stack_put(pool, &st);
    }
    CHECK(cyc_count == n);
    CHECKF(moved == 0, "%d tasks did not get the most recently freed stack", moved);
    weft__stack_pool_stats_t s;
    weft__stack_pool_stats(pool, &s);
    CHECK(s.in_use == 0 && weft__stack_pool_in_use(pool) == 0);
    CHECKF(s.chunks == 1, "%zu chunks", s.chunks);

    /* Most recently freed first, across several outstanding stacks. */
    weft__stack_t a, b, c, x, y;
    CHECK(weft__stack_get(pool, 0, &a) == 0);
    CHECK(weft__stack_get(pool, 0, &b) == 0);
    CHECK(weft__stack_get(pool, 0, &c) == 0);
    CHECK(a.lo != b.lo && b.lo != c.lo && a.lo != c.lo);
    CHECK(a.lo + a.guard + 64 * 1024 == a.hi && a.size == a.guard + (size_t)64 * 1024);
    weft__stack_put(pool, &a);
    weft__stack_put(pool, &c);
    CHECK(weft__stack_get(pool, 0, &x) == 0);
    CHECK(weft__stack_get(pool, 0, &y) == 0);
    CHECK(x.lo == c.lo && y.lo == a.lo);
    weft__stack_put(pool, &x);
    weft__stack_put(pool, &y);
    weft__stack_put(pool, &b);

    /* Odd sizes: own mapping, kept and reused. */
    weft__stack_t big, big2, small;
    CHECK(weft__stack_get(pool, 1 << 20, &big) == 0);
    CHECK((size_t)(big.hi - big.lo - big.guard) == (size_t)1 << 20);
    memset(big.hi - (512 << 10), 1, 512 << 10); /* the stack is usable */
    weft__stack_put(pool, &big);
    CHECK(weft__stack_get(pool, 1 << 20, &big2) == 0);
    CHECK(big2.lo == big.lo);
    CHECK(weft__stack_get(pool, 100, &small) == 0); /* raised to the 16 KiB minimum */
    CHECK((size_t)(small.hi - small.lo - small.guard) == 16 * 1024);
    weft__stack_pool_stats(pool, &s);
    CHECK(s.solo == 2 && s.in_use == 2);
    weft__stack_put(pool, &big2);
    weft__stack_put(pool, &small);
    CHECK(weft__stack_pool_in_use(pool) == 0);

    /* A burst beyond the warm reserve (256 stacks): the chunks it empties are retired, not
     * unmapped, and the next burst takes them again before mapping anything new. */
    enum { BURST = 64 * 10 };
    static weft__stack_t burst[BURST];
    for (int i = 0; i < BURST; i++)
        CHECK(weft__stack_get(pool, 0, &burst[i]) == 0);
    /* Every slot of a chunk has its guard (they are installed all at once). */
    for (int i = 0; i < BURST; i += 37)
        CHECKF(guard_faults(burst[i].lo), "no guard below stack %d of the burst", i);
    weft__stack_pool_stats(pool, &s);
    size_t mapped = s.chunks;
    CHECKF(mapped >= BURST / 64, "%zu chunks", mapped);
    for (int i = 0; i < BURST; i++)
        weft__stack_put(pool, &burst[i]);
    weft__stack_pool_stats(pool, &s);
    CHECKF(s.chunks == mapped && s.retired >= mapped - 256 / 64 - 1,
           "%zu chunks, %zu retired of %zu", s.chunks, s.retired, mapped);
    CHECK(s.free == mapped * 64 + s.solo); /* the two odd-size stacks above are kept too */
    for (int i = 0; i < BURST; i++)
        CHECK(weft__stack_get(pool, 0, &burst[i]) == 0);
    weft__stack_pool_stats(pool, &s);
    CHECKF(s.chunks == mapped && s.retired == 0, "%zu chunks (%zu before), %zu retired",
           s.chunks, mapped, s.retired);
    for (int i = 0; i < BURST; i++)
        weft__stack_put(pool, &burst[i]);
    weft__stack_pool_stats(pool, &s);
    CHECK(s.retired > 1);
    CHECK(weft__stack_pool_trim(pool, 1) == 1); /* at most what it is asked */
    CHECK(weft__stack_pool_retired(pool) == s.retired - 1);
    CHECK(weft__stack_pool_trim(pool, SIZE_MAX) == s.retired - 1);
    weft__stack_pool_stats(pool, &s);
    CHECKF(s.retired == 0 && s.chunks <= 256 / 64 + 1, "%zu chunks after the trim", s.chunks);
    CHECK(weft__stack_pool_trim(pool, SIZE_MAX) == 0); /* nothing left to trim */

    weft__coro_release(&cyc_main);
    weft__stack_pool_free(pool);
}

/* ---- a task dropped while suspended; its stack is reused ---- */

static weft__coro_t ab_main, ab_co;
static volatile long ab_sink;

__attribute__((noinline)) static void ab_deep(int depth)
{
    /* Arrays with redzones around them: under ASan, their frames poison shadow memory. */
    volatile char a[100], b[300];
    a[0] = (char)depth;
    b[0] = (char)depth;
    if (depth < 20)
        ab_deep(depth + 1);
    else
        weft__coro_switch(&ab_co, &ab_main); /* suspended here, never resumed */
    ab_sink += a[0] + b[0];
}

static void ab_entry_deep(void *arg)
{
    (void)arg;
    ab_deep(0);
    weft__coro_switch_final(&ab_co, &ab_main);
}

/* Not instrumented, like most of libc: its frame does not reset the shadow memory of its own
 * stack area, but the interceptor of memset checks that shadow. Stale poison from the dropped
 * task would show up here as a stack-buffer-overflow. */
__attribute__((noinline, no_sanitize_address)) static void ab_uninstrumented(void)
{
    char buf[16 * 1024];
    void *(*volatile do_memset)(void *, int, size_t) = memset; /* keep the call */
    do_memset(buf, 1, sizeof buf);
    ab_sink += buf[100];
}

static void ab_entry_flat(void *arg)
{
    (void)arg;
    ab_uninstrumented();
    weft__coro_switch_final(&ab_co, &ab_main);
}

static void test_abandon(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    CHECK(weft__coro_init_thread(&ab_main) == 0);
    weft__stack_t st, st2;
    CHECK(weft__stack_get(pool, 0, &st) == 0);
    CHECK(weft__coro_make(&ab_co, &st, ab_entry_deep, NULL) == 0);
    weft__coro_switch(&ab_main, &ab_co);
    weft__coro_release(&ab_co);
    weft__stack_put(pool, &st); /* dropped with 21 frames on it */
    CHECK(weft__stack_get(pool, 0, &st2) == 0);
    CHECK(st2.lo == st.lo);
    CHECK(weft__coro_make(&ab_co, &st2, ab_entry_flat, NULL) == 0);
    weft__coro_switch(&ab_main, &ab_co);
    weft__coro_release(&ab_co);
    weft__stack_put(pool, &st2);
    weft__coro_release(&ab_main);
    weft__stack_pool_free(pool);
}

/* ---- unwinding from inside a coroutine stops at its bottom frame ---- */

static weft__coro_t uw_main, uw_co;
static int uw_frames;

__attribute__((noinline)) static void uw_inner(void)
{
    void *frames[128];
    /* libgcc's unwinder (as used by C++ exceptions and profilers) follows the CFI down to
     * the trampoline, whose return address is undefined, and stops there. */
    uw_frames = backtrace(frames, 128);
}

static void uw_entry(void *arg)
{
    (void)arg;
    uw_inner();
    weft__coro_switch_final(&uw_co, &uw_main);
}

static void test_unwind(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    weft__stack_t st;
    CHECK(weft__coro_init_thread(&uw_main) == 0);
    CHECK(weft__stack_get(pool, 0, &st) == 0);
    CHECK(weft__coro_make(&uw_co, &st, uw_entry, NULL) == 0);
    weft__coro_switch(&uw_main, &uw_co);
    /* uw_inner, uw_entry, (boot,) trampoline: a handful, never the 128 of a runaway walk. */
    CHECKF(uw_frames >= 2 && uw_frames <= 8, "%d frames", uw_frames);
    weft__coro_release(&uw_co);
    weft__stack_put(pool, &st);
    weft__coro_release(&uw_main);
    weft__stack_pool_free(pool);
}

/* ---- a million stacks at once, under the default vm.max_map_count ---- */

static long count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long n = 0;
    int ch;
    while ((ch = getc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static long resident_mib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

static void test_million(void)
{
    size_t n = RUNNING_ON_VALGRIND ? 5000 : 1000000;
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    /* mmap'd, not malloc'd, so that it is really returned at the end whatever the allocator
     * (ASan's keeps freed memory in quarantine) and the RSS check below means something. */
    size_t st_bytes = n * sizeof(weft__stack_t);
    weft__stack_t *st = mmap(NULL, st_bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(st != MAP_FAILED);
    if (st == MAP_FAILED)
        return;
    long rss0 = resident_mib();
    double t0 = now_sec();
    size_t got = 0;
    int rc = 0;
    for (; got < n; got++) {
        rc = weft__stack_get(pool, 0, &st[got]);
        if (rc)
            break;
        st[got].hi[-1] = 1; /* commit the top page, as a running task would */
    }
    double t1 = now_sec();
    long maps = count_mappings();
    long rss1 = resident_mib();
    weft__stack_pool_stats_t s;
    weft__stack_pool_stats(pool, &s);
    if (s.guard_mprotect) {
        /* Kernel < 6.13 (or forced): two mappings per stack, so the kernel says no near 32k
         * under the default vm.max_map_count. That must be a clean -ENOMEM. */
        printf("  mprotect guards: %zu stacks before %s\n", got, rc ? "ENOMEM" : "the end");
        CHECK(rc == 0 || rc == -ENOMEM);
        CHECK(got >= (n < 20000 ? n : 20000));
    } else {
        CHECKF(rc == 0 && got == n, "rc %d after %zu stacks", rc, got);
    }
    printf("  %zu stacks: %.2f s (%.0f ns each, one page touched), %zu chunks, %ld mappings, "
           "RSS +%ld MiB\n",
           got, t1 - t0, (t1 - t0) * 1e9 / (double)(got ? got : 1), s.chunks, maps,
           rss1 - rss0);
    CHECK(s.in_use == got);
    for (size_t i = got; i-- > 0;)
        weft__stack_put(pool, &st[i]);
    double t2 = now_sec();
    weft__stack_pool_stats(pool, &s);
    /* Freeing unmaps nothing: the chunks beyond the warm reserve wait, retired, for a trim. */
    CHECK(s.in_use == 0);
    CHECKF(s.chunks - s.retired <= 256 / 64 + 1, "%zu chunks, %zu retired", s.chunks, s.retired);
    CHECK(s.retired == weft__stack_pool_retired(pool));
    CHECK(got < 64 * 8 || s.retired > 0);
    size_t trimmed = weft__stack_pool_trim(pool, SIZE_MAX);
    double t3 = now_sec();
    CHECKF(trimmed == s.retired, "%zu trimmed of %zu retired", trimmed, s.retired);
    weft__stack_pool_stats(pool, &s);
    munmap(st, st_bytes);
    long rss2 = resident_mib();
    printf("  freed in %.2f s, trimmed in %.2f s: %zu chunks and %zu free stacks kept, "
           "RSS +%ld MiB\n",
           t2 - t1, t3 - t2, s.chunks, s.free, rss2 - rss0);
    CHECK(s.retired == 0 && weft__stack_pool_retired(pool) == 0);
    CHECKF(s.chunks <= 256 / 64 + 1, "%zu chunks kept", s.chunks);
    /* The stacks' memory is back (TSan keeps metadata of its own for a while). */
    CHECKF(rss2 - rss0 < 32 || RUNNING_ON_VALGRIND || UNDER_TSAN, "RSS still +%ld MiB",
           rss2 - rss0);
    weft__stack_pool_free(pool);
}

/* ---- stack overflow: a child process recurses without end ---- */

static weft__coro_t ov_main, ov_co;
static volatile int ov_keep_going = 1;

struct ov_task {
    int id;
    const char *name;
};

static void ov_describe(void *owner, char *buf, size_t len)
{
    const struct ov_task *t = owner;
    /* Async-signal-safe formatting by hand, as the real hook must. */
    char tmp[64];
    size_t n = 0;
    tmp[n++] = '#';
    char digits[16];
    int nd = 0, v = t->id;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd)
        tmp[n++] = digits[--nd];
    tmp[n++] = ' ';
    tmp[n++] = '\'';
    for (const char *s = t->name; *s && n < sizeof tmp - 2; s++)
        tmp[n++] = *s;
    tmp[n++] = '\'';
    size_t i = 0;
    for (; i + 1 < len && i < n; i++)
        buf[i] = tmp[i];
    buf[i] = '\0';
}

__attribute__((noinline)) static int ov_recurse(int depth)
{
    volatile char pad[200];
    pad[0] = (char)depth;
    int r = ov_keep_going ? ov_recurse(depth + 1) : 0;
    return r + pad[0]; /* not a tail call */
}

static void ov_entry(void *arg)
{
    (void)arg;
    ov_recurse(0);
    weft__coro_switch_final(&ov_co, &ov_main);
}

static char *ov_other_guard;

static void ov_segv_entry(void *arg)
{
    (void)arg;
    /* A fault that is not an overflow of the running task: the guard page of another stack. */
    *(volatile char *)ov_other_guard = 1;
    weft__coro_switch_final(&ov_co, &ov_main);
}

/* Runs `entry` on a fresh stack in a child; returns the wait status, output in out. */
static int run_child(size_t stack_size, weft__coro_entry entry, char *out, size_t outlen)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        static struct ov_task task = {7, "recurser"};
        weft__overflow_install(ov_describe);
        weft__stack_pool_t *pool = weft__stack_pool_new(0);
        weft__stack_t st, other;
        if (!pool || weft__coro_init_thread(&ov_main) != 0 ||
            weft__stack_get(pool, stack_size, &st) != 0 ||
            weft__stack_get(pool, stack_size, &other) != 0 ||
            weft__coro_make(&ov_co, &st, entry, NULL) != 0)
            _exit(3);
        ov_other_guard = other.lo;
        weft__overflow_set_running(&st, &task);
        weft__coro_switch(&ov_main, &ov_co);
        _exit(4);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outlen && (r = read(fds[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    char sink[4096];
    while (read(fds[0], sink, sizeof sink) > 0) {
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void test_overflow(void)
{
    static char out[1 << 16];
    static const char expect[] = "weft: stack overflow in task #7 'recurser'\n";
    size_t sizes[] = {0, 1 << 20}; /* a default (chunked) and an odd-size stack */
    for (int i = 0; i < 2; i++) {
        int status = run_child(sizes[i], ov_entry, out, sizeof out);
        CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
               "stack size %zu: status 0x%x, output:\n%s", sizes[i], status, out);
        CHECKF(strstr(out, expect) != NULL, "stack size %zu: output:\n%s", sizes[i], out);
    }
    /* Not an overflow: passed on to the previous handler (the default action, or ASan's). */
    int status = run_child(0, ov_segv_entry, out, sizeof out);
    CHECKF(!strstr(out, "stack overflow"), "output:\n%s", out);
    CHECKF((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
               (strstr(out, "Sanitizer") && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)),
           "status 0x%x, output:\n%s", status, out);
}

/* ---- two loops on two threads ---- */

static void *thread_main(void *arg)
{
    weft__stack_pool_t *pool = arg;
    for (int i = 0; i < 2000; i++)
        test_ping_pong_once(pool);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[2];
    weft__stack_pool_t *pools[2];
    for (int i = 0; i < 2; i++) {
        pools[i] = weft__stack_pool_new(32 * 1024);
        CHECK(pthread_create(&t[i], NULL, thread_main, pools[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(weft__stack_pool_in_use(pools[i]) == 0);
        weft__stack_pool_free(pools[i]);
    }
}

/* ---- bench ---- */

static weft__coro_t b_main, b_co;
static volatile int b_stop;

static void bench_entry(void *arg)
{
    (void)arg;
    while (!b_stop)
        weft__coro_switch(&b_co, &b_main);
    weft__coro_switch_final(&b_co, &b_main);
}

static void bench_task_entry(void *arg)
{
    (void)arg;
    weft__coro_switch_final(&b_co, &b_main);
}

static int bench(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    weft__stack_t st;
    weft__coro_init_thread(&b_main);
    weft__stack_get(pool, 0, &st);
    weft__coro_make(&b_co, &st, bench_entry, NULL);
    const long n = RUNNING_ON_VALGRIND ? 100000 : 10000000;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_sec();
        for (long i = 0; i < n; i++)
            weft__coro_switch(&b_main, &b_co);
        double t1 = now_sec();
        printf("switch: %.2f ns (%ld round trips)\n", (t1 - t0) * 1e9 / (double)(2 * n), n);
    }
    b_stop = 1;
    weft__coro_switch(&b_main, &b_co);
    weft__coro_release(&b_co);
    weft__stack_put(pool, &st);

    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_sec();
        for (long i = 0; i < n; i++) {
            weft__stack_get(pool, 0, &st);
            weft__stack_put(pool, &st);
        }
        double t1 = now_sec();
        double t2 = t1;
        long tasks = UNDER_TSAN ? 20000 : n / 4; /* TSan makes fibers slowly */
        for (long i = 0; i < tasks; i++) {
            weft__stack_get(pool, 0, &st);
            weft__coro_make(&b_co, &st, bench_task_entry, NULL);
            weft__coro_switch(&b_main, &b_co);
            weft__coro_release(&b_co);
            weft__stack_put(pool, &st);
        }
        double t3 = now_sec();
        printf("stack get+put: %.2f ns; task life (get, make, switch in, final switch out, "
               "release, put): %.2f ns\n",
               (t1 - t0) * 1e9 / (double)n, (t3 - t2) * 1e9 / (double)tasks);
    }
    weft__coro_release(&b_main);
    weft__stack_pool_free(pool);
    return 0;
}

/* ---- for gdb ---- */

static weft__coro_t g_main, g_co;
static volatile int g_sink;

__attribute__((noinline)) void gdb_break_here(int x)
{
    g_sink = x;
}

__attribute__((noinline)) static void gdb_inner(int x)
{
    gdb_break_here(x + 1);
    g_sink += 1;
}

static void gdb_entry(void *arg)
{
    gdb_inner((int)(intptr_t)arg);
    weft__coro_switch_final(&g_co, &g_main);
}

static int gdb_mode(void)
{
    weft__stack_pool_t *pool = weft__stack_pool_new(0);
    weft__stack_t st;
    weft__coro_init_thread(&g_main);
    weft__stack_get(pool, 0, &st);
    weft__coro_make(&g_co, &st, gdb_entry, (void *)(intptr_t)41);
    weft__coro_switch(&g_main, &g_co);
    weft__coro_release(&g_co);
    weft__stack_put(pool, &st);
    weft__coro_release(&g_main);
    weft__stack_pool_free(pool);
    printf("gdb_break_here got %d\n", g_sink - 1);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return bench();
    if (argc > 1 && strcmp(argv[1], "gdb") == 0)
        return gdb_mode();

    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"ping_pong", test_ping_pong}, {"fp_env", test_fp_env},   {"cycles", test_cycles},
        {"abandon", test_abandon},     {"unwind", test_unwind},     {"million", test_million},     {"overflow", test_overflow}, {"threads", test_threads},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        int before = failures;
        double t0 = now_sec();
        tests[i].fn();
        int ok = failures == before;
        printf("%s %s (%.2f s)\n", ok ? "ok  " : "FAIL", tests[i].name, now_sec() - t0);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
