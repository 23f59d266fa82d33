/* Michael Kennedy's producer-consumer demonstration (seed 002), three ways:
 *   1. synchronous: generate every item (blocking sleeps), then process them one by one;
 *   2. async, 2 producers and 1 consumer sharing a weft queue;
 *   3. async, 2 producers and 3 consumers.
 * Producers make numbered items (value idx*idx) stamped with the time they were generated and
 * wait a pseudo-random delay between items (fixed seed: every run sees the same delays);
 * consumers take a fixed time per item and measure each item's latency, from generation to
 * the start of its processing. The runs' timings are printed side by side at the end.
 * usage: producer_consumer [-v]   (-v: print every item as in the original) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define PRODUCERS 2
#define ITEMS_PER_PRODUCER 5
#define NITEMS (PRODUCERS * ITEMS_PER_PRODUCER)
#define PROCESS_TIME 0.08  /* seconds a consumer spends per item */

static int verbose;

typedef struct item {
    int idx;
    long value;
    double generated;      /* time stamp, seconds */
} item_t;

/* One run's state, shared by its producers and consumers. */
typedef struct run {
    item_t items[NITEMS];
    uint32_t rng[PRODUCERS]; /* each producer's own sequence: the same in every run */
    weft_queue_t *queue;
    int next_item;
    double latency_sum;
    int processed;
} run_t;

/* Delays in [0.05, 0.15) s from a linear congruential generator (numbers as the shared
 * benchmarks draw them): random.random() + .5 in the original, scaled down tenfold. */
static double next_delay(uint32_t *x) {
    *x = 1664525u * *x + 1013904223u;
    return 0.05 + 0.1 * (double)(*x >> 8) / (double)(1u << 24);
}

static void run_init(run_t *r) {
    memset(r, 0, sizeof *r);
    for (int p = 0; p < PRODUCERS; p++)
        r->rng[p] = 12345u + 1000u * (uint32_t)p;
}

static item_t *make_item(run_t *r, int producer, int idx, double now) {
    item_t *it = &r->items[r->next_item++];
    it->idx = idx;
    it->value = (long)idx * idx;
    it->generated = now;
    if (verbose)
        printf("  -- producer %d generated item %d\n", producer, idx);
    return it;
}

static void process_item(run_t *r, const item_t *it, double now, int consumer) {
    double dt = now - it->generated;
    r->latency_sum += dt;
    r->processed++;
    if (verbose)
        printf("  +++ consumer %d processed value %ld after %.2f sec.\n", consumer, it->value, dt);
}

/* ---- 1. synchronous --------------------------------------------------------------------- */

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void blocking_sleep(double s) { /* time.sleep */
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double run_sync(run_t *r) {
    item_t *made[NITEMS];
    int n = 0;
    double t0 = wall_now();
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 1; i <= ITEMS_PER_PRODUCER; i++) {
            made[n++] = make_item(r, p, i, wall_now());
            blocking_sleep(next_delay(&r->rng[p]));
        }
    for (int i = 0; i < n; i++) {
        process_item(r, made[i], wall_now(), 0);
        blocking_sleep(PROCESS_TIME);
    }
    return wall_now() - t0;
}

/* ---- 2 and 3. async ------------------------------------------------------------------------ */

typedef struct worker {
    run_t *run;
    int id;
} worker_t;

static int generate_data(void *arg, void **result) {
    worker_t *w = arg;
    run_t *r = w->run;
    for (int i = 1; i <= ITEMS_PER_PRODUCER; i++) {
        item_t *it = make_item(r, w->id, i, weft_loop_time(weft_get_running_loop()));
        int rc = weft_queue_put(r->queue, it);
        if (rc < 0 || (rc = weft_sleep(next_delay(&r->rng[w->id]))) < 0)
            return rc;
    }
    return 0;
}

/* Processes items until the queue is shut down and drained. */
static int process_data(void *arg, void **result) {
    worker_t *w = arg;
    run_t *r = w->run;
    for (;;) {
        void *it;
        int rc = weft_queue_get(r->queue, &it);
        if (rc == WEFT_EQUEUESHUTDOWN)
            return 0;
        if (rc < 0)
            return rc;
        process_item(r, it, weft_loop_time(weft_get_running_loop()), w->id);
        if ((rc = weft_sleep(PROCESS_TIME)) < 0)
            return rc;
        weft_queue_task_done(r->queue);
    }
}

typedef struct async_args {
    run_t *run;
    int consumers;
} async_args_t;

/* Producers and consumers as tasks; when the producers are done and every item has been
 * processed (join), the queue is shut down, which ends the consumers. */
static int run_async_main(void *arg, void **result) {
    async_args_t *a = arg;
    worker_t producers[PRODUCERS], consumers[8];
    weft_task_t *ptasks[PRODUCERS] = {0}, *ctasks[8] = {0};
    int rc;
    if ((rc = weft_queue_new(&a->run->queue, NULL)) < 0)
        return rc;
    for (int i = 0; i < a->consumers && rc == 0; i++) {
        consumers[i] = (worker_t){a->run, i};
        rc = weft_create_task(&ctasks[i], process_data, &consumers[i], NULL);
    }
    for (int i = 0; i < PRODUCERS && rc == 0; i++) {
        producers[i] = (worker_t){a->run, i};
        rc = weft_create_task(&ptasks[i], generate_data, &producers[i], NULL);
    }
    if (rc == 0)
        rc = weft_gather(ptasks, PRODUCERS, NULL);
    if (rc == 0)
        rc = weft_queue_join(a->run->queue);
    weft_queue_shutdown(a->run->queue, rc != 0);
    if (rc == 0)
        rc = weft_gather(ctasks, (size_t)a->consumers, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        weft_unref(ptasks[i]);
    for (int i = 0; i < a->consumers; i++)
        weft_unref(ctasks[i]);
    weft_queue_free(a->run->queue);
    return rc;
}

static double run_async(run_t *r, int consumers) {
    async_args_t a = {r, consumers};
    double t0 = wall_now();
    int rc = weft_run(run_async_main, &a, NULL);
    if (rc < 0) {
        fprintf(stderr, "producer_consumer: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return -1;
    }
    return wall_now() - t0;
}

int main(int argc, char **argv) {
    static const char *names[3] = {"synchronous", "async, 2 producers, 1 consumer",
                                   "async, 2 producers, 3 consumers"};
    run_t runs[3];
    double elapsed[3];
    verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < 3; i++) {
        run_init(&runs[i]);
        printf("Running %s...\n", names[i]);
        elapsed[i] = i == 0 ? run_sync(&runs[i]) : run_async(&runs[i], i == 1 ? 1 : 3);
        if (elapsed[i] < 0)
            return 1;
        printf("  done in %.2f sec.\n", elapsed[i]);
    }
    printf("\n%-34s %6s %9s %13s %8s\n", "run", "items", "elapsed", "avg latency", "speed-up");
    for (int i = 0; i < 3; i++)
        printf("%-34s %6d %7.2f s %11.2f s %7.2fx\n", names[i], runs[i].processed, elapsed[i],
               runs[i].latency_sum / runs[i].processed, elapsed[0] / elapsed[i]);
    return 0;
}
