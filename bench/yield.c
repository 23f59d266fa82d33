/* yield: one task yields to the loop N times (asyncio.sleep(0)); main awaits it.
 * usage: yield [N=10000000]   Prints: RESULT yield weft <ns> ns/yield */
#include <weft.h>

#include "bench_util.h"

static int yielder(void *arg, void **result) {
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        if (weft_sleep(0) < 0)
            return WEFT_ECANCELED;
    return 0;
}

static int bench(void *arg, void **result) {
    long n = *(long *)arg;
    weft_task_t *t;
    double t0 = bench_now();
    int rc = weft_create_task(&t, yielder, arg, NULL);
    if (rc < 0)
        return rc;
    rc = weft_await(t, NULL);
    double dt = bench_now() - t0;
    weft_unref(t);
    if (rc < 0)
        return rc;
    printf("RESULT yield weft %.1f ns/yield\n", dt * 1e9 / (double)n);
    return 0;
}

int main(int argc, char **argv) {
    long n = bench_arg(argc, argv, 10000000);
    return weft_run(bench, &n, NULL) == 0 ? 0 : 1;
}
