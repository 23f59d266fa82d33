/* queue: one bounded queue of capacity 128; a producer task puts the integers 0..N-1, a
 * consumer task gets N items and sums them (the sum is checked). Timed from creating the two
 * tasks until both have finished.
 * usage: queue [N=10000000]   Prints: RESULT queue weft <ns> ns/item */
#include <stdint.h>
#include <weft.h>

#include "bench_util.h"

static long n;
static long long sum;

static int producer(void *arg, void **result) {
    weft_queue_t *q = arg;
    for (long i = 0; i < n; i++) {
        int rc = weft_queue_put(q, (void *)(intptr_t)i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int consumer(void *arg, void **result) {
    weft_queue_t *q = arg;
    long long s = 0;
    for (long i = 0; i < n; i++) {
        void *v;
        int rc = weft_queue_get(q, &v);
        if (rc < 0)
            return rc;
        s += (intptr_t)v;
    }
    sum = s;
    return 0;
}

static int bench(void *arg, void **result) {
    weft_queue_options_t opts = {WEFT_QUEUE_FIFO, 128, NULL, NULL};
    weft_queue_t *q;
    double dt;
    int rc;
    if ((rc = weft_queue_new(&q, &opts)) < 0)
        return rc;
    rc = bench_run_pair(producer, q, consumer, q, &dt);
    weft_queue_free(q);
    if (rc < 0 || sum != (long long)n * (n - 1) / 2) {
        fprintf(stderr, "queue: bad result (rc %d, sum %lld)\n", rc, sum);
        return WEFT_EINVAL;
    }
    printf("RESULT queue weft %.2f ns/item\n", dt * 1e9 / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    n = bench_arg(argc, argv, 10000000);
    return weft_run(bench, NULL, NULL) == 0 ? 0 : 1;
}
