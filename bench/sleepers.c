/* sleepers: N tasks, task i sleeps delay_i ms and finishes; all gathered.
 * Delays: x = 12345; per task x = (1664525*x + 1013904223) mod 2^32,
 * delay_ms = ((x >> 16) * 1001) >> 16.
 * usage: sleepers [N=1000000]
 * Prints: RESULT sleepers-wall weft <s> s   and   RESULT sleepers-mem weft <bytes> B/task */
#include <stdint.h>
#include <weft.h>

#include "bench_util.h"

typedef struct {
    long n;
    uint32_t *delays;
} params_t;

static int sleeper(void *arg, void **result) {
    return weft_sleep((double)(uintptr_t)arg / 1000.0);
}

static int bench(void *arg, void **result) {
    params_t *p = arg;
    long n = p->n;
    weft_task_t **tasks = malloc((size_t)n * sizeof *tasks);
    if (!tasks)
        return WEFT_ENOMEM;
    long rss0 = bench_status_kb("VmRSS");
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        if (weft_create_task(&tasks[i], sleeper, (void *)(uintptr_t)p->delays[i], NULL) < 0)
            return WEFT_ENOMEM;
    int rc = weft_gather(tasks, (size_t)n, NULL);
    double wall = bench_now() - t0;
    long hwm = bench_status_kb("VmHWM");
    for (long i = 0; i < n; i++)
        weft_unref(tasks[i]);
    free(tasks);
    if (rc < 0) {
        fprintf(stderr, "sleepers: %s\n", weft_strerror(rc));
        return rc;
    }
    printf("RESULT sleepers-wall weft %.3f s\n", wall);
    printf("RESULT sleepers-mem weft %.0f B/task\n", (double)(hwm - rss0) * 1024.0 / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    params_t p = {bench_arg(argc, argv, 1000000), NULL};
    uint32_t x = 12345;
    p.delays = malloc((size_t)p.n * sizeof *p.delays);
    if (!p.delays)
        return 1;
    for (long i = 0; i < p.n; i++) {
        x = 1664525u * x + 1013904223u;
        p.delays[i] = ((x >> 16) * 1001u) >> 16;
    }
    int rc = weft_run(bench, &p, NULL);
    free(p.delays);
    return rc == 0 ? 0 : 1;
}
