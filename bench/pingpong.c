/* pingpong: two tasks and two queues of capacity 1. Ping does put(q1, i); v = get(q2) (checks
 * v == i) N times; pong does put(q2, get(q1)) N times. Timed from creating the two tasks until
 * both have finished.
 * usage: pingpong [N=2000000]   Prints: RESULT pingpong weft <ns> ns/roundtrip */
#include <stdint.h>
#include <weft.h>

#include "bench_util.h"

static long n;
static weft_queue_t *q1, *q2;

static int ping(void *arg, void **result) {
    for (long i = 0; i < n; i++) {
        void *v;
        int rc;
        if ((rc = weft_queue_put(q1, (void *)(intptr_t)i)) < 0 ||
            (rc = weft_queue_get(q2, &v)) < 0)
            return rc;
        if ((intptr_t)v != i) {
            fprintf(stderr, "pingpong: got %ld, expected %ld\n", (long)(intptr_t)v, i);
            return WEFT_EINVAL;
        }
    }
    return 0;
}

static int pong(void *arg, void **result) {
    for (long i = 0; i < n; i++) {
        void *v;
        int rc;
        if ((rc = weft_queue_get(q1, &v)) < 0 || (rc = weft_queue_put(q2, v)) < 0)
            return rc;
    }
    return 0;
}

static int bench(void *arg, void **result) {
    weft_queue_options_t opts = {WEFT_QUEUE_FIFO, 1, NULL, NULL};
    double dt;
    int rc;
    if ((rc = weft_queue_new(&q1, &opts)) < 0 || (rc = weft_queue_new(&q2, &opts)) < 0)
        return rc;
    rc = bench_run_pair(ping, NULL, pong, NULL, &dt);
    weft_queue_free(q1);
    weft_queue_free(q2);
    if (rc < 0) {
        fprintf(stderr, "pingpong: %s\n", weft_strerror(rc));
        return rc;
    }
    printf("RESULT pingpong weft %.1f ns/roundtrip\n", dt * 1e9 / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    n = bench_arg(argc, argv, 2000000);
    return weft_run(bench, NULL, NULL) == 0 ? 0 : 1;
}
