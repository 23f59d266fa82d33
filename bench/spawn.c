/* spawn: create N tasks that each return their index, then gather them all.
 * usage: spawn [N=1000000]   Prints: RESULT spawn weft <ns> ns/task */
#include <stdint.h>
#include <weft.h>

#include "bench_util.h"

static int child(void *arg, void **result) {
    *result = arg;
    return 0;
}

static int bench(void *arg, void **result) {
    long n = *(long *)arg;
    double t0 = bench_now();
    weft_task_t **tasks = malloc((size_t)n * sizeof *tasks);
    void **results = malloc((size_t)n * sizeof *results);
    long long sum = 0;
    if (!tasks || !results)
        return WEFT_ENOMEM;
    for (long i = 0; i < n; i++)
        if (weft_create_task(&tasks[i], child, (void *)(intptr_t)i, NULL) < 0)
            return WEFT_ENOMEM;
    int rc = weft_gather(tasks, (size_t)n, results);
    for (long i = 0; i < n; i++) {
        sum += (intptr_t)results[i];
        weft_unref(tasks[i]);
    }
    double dt = bench_now() - t0;
    free(tasks);
    free(results);
    if (rc < 0 || sum != (long long)n * (n - 1) / 2) {
        fprintf(stderr, "spawn: bad result (rc %d, sum %lld)\n", rc, sum);
        return WEFT_EINVAL;
    }
    printf("RESULT spawn weft %.1f ns/task\n", dt * 1e9 / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    long n = bench_arg(argc, argv, 1000000);
    return weft_run(bench, &n, NULL) == 0 ? 0 : 1;
}
