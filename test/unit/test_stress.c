/* Stress: a million concurrent tasks, a hundred thousand random timers, many switches. */
#include <stdbool.h>
#include <unistd.h>

#include "wt.h"

/* ---- one million concurrent tasks ----------------------------------------------------------- */

/* Under a sanitizer every stack page and allocation costs several times more: scale down. */
#define MILLION (WT_SANITIZED ? 100000 : 1000000)

static size_t finished;
static weft_future_t *all_done;
static weft_loop_stats_t peak;

static int short_sleeper(void *arg, void **res) {
    int rc = weft_sleep(0.01);
    if (rc < 0)
        return rc;
    if (++finished == MILLION)
        ASSERT_OK(weft_future_set_result(all_done, NULL));
    return 0;
}

static void sample_stats(void *loop) { weft_loop_stats(loop, &peak); }

TEST(million_tasks) {
    if (WT_TSAN)
        wt_skip("ThreadSanitizer holds at most 8128 threads and fibers: one per live task");
    weft_loop_t *loop = wt_loop_virtual();
    long rss0 = wt_max_rss_kib(), grown;
    double t0 = wt_now();
    ASSERT_OK(weft_loop_create_future(loop, &all_done));
    for (size_t i = 0; i < MILLION; i++)
        ASSERT_OK(weft_loop_create_task(loop, NULL, short_sleeper, NULL, NULL));
    /* Halfway through the sleep every task is alive and suspended. */
    ASSERT_OK(weft_call_later(loop, 0.005, sample_stats, loop, NULL));
    ASSERT_OK(weft_loop_run_until_complete(loop, all_done, NULL));
    ASSERT_EQ_INT(finished, MILLION);
    ASSERT_EQ_INT(peak.pending_tasks, MILLION);
    ASSERT_EQ_INT(peak.tasks, MILLION);
    ASSERT_EQ_INT(peak.stacks, MILLION);
    ASSERT_EQ_DBL(weft_loop_time(loop), 0.01);
    grown = wt_max_rss_kib() - rss0;
    fprintf(stderr, "million_tasks: %d tasks in %.2f s, peak RSS grew by %ld MiB (%.1f KiB/task)\n",
            MILLION, wt_now() - t0, grown / 1024, (double)grown / MILLION);
    /* A suspended task costs its struct and the stack pages it touched: at most a few pages.
     * 12 KiB a task would be 12 GiB for a million: the bound that catches a stack committed
     * whole (64 KiB) or a leak per task. */
    if (!WT_SANITIZED)
        ASSERT_LE_INT(grown, (long)MILLION * 12);
    weft_unref(all_done);
    WT_CLOSE_LOOP(loop);
}

/* ---- 100,000 random timers ------------------------------------------------------------------ */

#define NTIMERS 100000

enum { PENDING, FIRED, CANCELLED };

static weft_loop_t *tloop;
static weft_handle_t *handles[NTIMERS];
static double when_of[NTIMERS];
static unsigned char state[NTIMERS];
static int sorted[NTIMERS];
static int cursor, nfired, ncancelled;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static int by_when_then_index(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (when_of[i] != when_of[j])
        return when_of[i] < when_of[j] ? -1 : 1;
    return i - j;
}

static void try_cancel(int j) {
    int rc = weft_handle_cancel(handles[j]);
    if (state[j] == PENDING) {
        ASSERT_EQ_INT(rc, 1);
        state[j] = CANCELLED;
        ncancelled++;
    } else {
        ASSERT_EQ_INT(rc, 0);
    }
    ASSERT_EQ_INT(weft_handle_cancelled(handles[j]), state[j] == CANCELLED);
}

static void timer_cb(void *arg) {
    int i = (int)(intptr_t)arg;
    ASSERT_EQ_INT(state[i], PENDING);
    while (cursor < NTIMERS && state[sorted[cursor]] == CANCELLED)
        cursor++;
    if (cursor >= NTIMERS || sorted[cursor] != i)
        WT_FAIL("timer %d (when %.3f) fired out of order: expected %d (when %.3f)", i, when_of[i],
                cursor < NTIMERS ? sorted[cursor] : -1, cursor < NTIMERS ? when_of[sorted[cursor]] : -1);
    ASSERT_EQ_DBL(weft_loop_time(tloop), when_of[i]);
    state[i] = FIRED;
    cursor++;
    nfired++;
    /* Every seventh callback cancels a random timer, pending or not. */
    if (i % 7 == 0)
        try_cancel((int)(rnd() % NTIMERS));
}

TEST(timers_random_100k) {
    weft_loop_t *loop = tloop = wt_loop_virtual();
    weft_loop_stats_t st;
    for (int i = 0; i < NTIMERS; i++) {
        /* Whole milliseconds below 1 s: many equal deadlines, which must fire FIFO. */
        when_of[i] = (double)(rnd() % 1000) / 1000.0;
        sorted[i] = i;
        if (i & 1)
            ASSERT_OK(weft_call_at(loop, when_of[i], timer_cb, (void *)(intptr_t)i, &handles[i]));
        else
            ASSERT_OK(weft_call_later(loop, when_of[i], timer_cb, (void *)(intptr_t)i, &handles[i]));
        ASSERT_EQ_DBL(weft_handle_when(handles[i]), when_of[i]);
    }
    qsort(sorted, NTIMERS, sizeof sorted[0], by_when_then_index);
    /* A third cancelled before the loop runs. */
    for (int i = 0; i < NTIMERS / 3; i++)
        try_cancel((int)(rnd() % NTIMERS));
    weft_loop_stats(loop, &st);
    ASSERT_EQ_INT(st.timers, NTIMERS - ncancelled);
    ASSERT_OK(weft_call_at(loop, 1.0, wt_stop_cb, loop, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    ASSERT_EQ_INT(nfired + ncancelled, NTIMERS);
    ASSERT_GT_INT(ncancelled, NTIMERS / 4);
    for (int i = 0; i < NTIMERS; i++) {
        ASSERT(state[i] != PENDING);
        weft_handle_unref(handles[i]);
    }
    WT_CLOSE_LOOP(loop);
}

/* ---- many switches ---------------------------------------------------------------------- */

#define NYIELDERS 1000
#define NYIELDS 200
static int turns[NYIELDERS];
static int round_no;

/* Every task yields NYIELDS times; each round, every task runs exactly once, in creation
 * order. */
static int yielder(void *arg, void **res) {
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < NYIELDS; r++) {
        ASSERT_EQ_INT(turns[id], r);
        if (id > 0)
            ASSERT_EQ_INT(turns[id - 1], r + 1);
        else if (r > 0)
            ASSERT_EQ_INT(turns[NYIELDERS - 1], r);
        turns[id]++;
        ASSERT_OK(weft_sleep(0));
    }
    return 0;
}

TEST(yield_storm) {
    weft_loop_t *loop = wt_loop_virtual();
    weft_task_t *last = NULL;
    for (intptr_t i = 0; i < NYIELDERS; i++) {
        if (i == NYIELDERS - 1)
            last = wt_spawn(loop, yielder, (void *)i, NULL);
        else
            ASSERT_OK(weft_loop_create_task(loop, NULL, yielder, (void *)i, NULL));
    }
    ASSERT_OK(weft_loop_run_until_complete(loop, last, NULL));
    for (int i = 0; i < NYIELDERS; i++)
        ASSERT_EQ_INT(turns[i], NYIELDS);
    (void)round_no;
    weft_unref(last);
    WT_CLOSE_LOOP(loop);
}

/* Waves of short tasks reuse stacks: memory stays flat. */
static int tiny(void *arg, void **res) {
    *res = arg;
    return weft_sleep(0);
}

static int waves(void *arg, void **res) {
    weft_task_t *t[1000];
    long rss_after_first = 0;
    for (int w = 0; w < (WT_TSAN ? 3 : WT_SANITIZED ? 20 : 200); w++) {
        for (int i = 0; i < 1000; i++)
            t[i] = wt_spawn(NULL, tiny, (void *)(intptr_t)i, NULL);
        ASSERT_OK(weft_gather(t, 1000, NULL));
        for (int i = 0; i < 1000; i++)
            weft_unref(t[i]);
        if (w == 0)
            rss_after_first = wt_max_rss_kib();
    }
    if (!WT_SANITIZED)
        ASSERT_LE_INT(wt_max_rss_kib() - rss_after_first, 16 * 1024);
    *res = (void *)1;
    return 0;
}

TEST(task_waves_reuse_stacks) { wt_run_body(waves, NULL); }

/* A burst of tasks holding their stacks at once: the stacks stay mapped while the burst winds
 * down, and go back to the system when the loop is idle. On a real clock that takes several
 * idle moments: each may spend half of its wait (1 ms here) unmapping, and unmapping 20,000
 * stacks takes longer (a few ms at least). The virtual clock's jumps have no time limit. */
static long rss_kib(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ_INT(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int burst(void *arg, void **res) {
    int n = 20000, idle = 0;
    bool real_clock = arg != NULL;
    weft_task_t **t = calloc((size_t)n, sizeof *t);
    long rss0 = rss_kib(), rss1, rss2;
    ASSERT_NOT_NULL(t);
    for (int i = 0; i < n; i++)
        t[i] = wt_spawn(NULL, tiny, (void *)(intptr_t)i, NULL); /* all suspended at once */
    ASSERT_OK(weft_gather(t, (size_t)n, NULL));
    for (int i = 0; i < n; i++)
        weft_unref(t[i]);
    free(t);
    rss1 = rss_kib();
    ASSERT_GE_INT(rss1 - rss0, (long)n * 3); /* a touched page per stack, still mapped */
    do { /* the loop has nothing to do for 2 ms */
        ASSERT_OK(weft_sleep(0.002));
        rss2 = rss_kib();
    } while (++idle < 1000 && rss1 - rss2 < (long)n * 2);
    fprintf(stderr, "burst: %d tasks, RSS +%ld KiB after, +%ld KiB after %d idle moments\n", n,
            rss1 - rss0, rss2 - rss0, idle);
    ASSERT_GE_INT(rss1 - rss2, (long)n * 2); /* most of them gone */
    if (real_clock)
        ASSERT_GE_INT(idle, 2); /* not all in one go */
    else
        ASSERT_EQ_INT(idle, 1);
    *res = (void *)1;
    return 0;
}

TEST(burst_stacks_go_back_when_idle) {
    if (WT_TSAN) /* and it holds at most 8128 fibers */
        wt_skip("ThreadSanitizer's memory per fiber (over 100 KiB) hides the stacks' pages");
    wt_run_body_on(wt_loop_real(), burst, (void *)1); /* the loop waits in the poller */
    wt_run_body(burst, NULL);                         /* the virtual clock jumps */
}

const wt_test_t wt_tests[] = {
    T_TIMEOUT(million_tasks, 240),
    T(timers_random_100k),
    T(yield_storm),
    T(task_waves_reuse_stacks),
    T(burst_stacks_go_back_when_idle),
    WT_END,
};
