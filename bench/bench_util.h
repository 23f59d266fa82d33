/* Shared by the benchmark programs: argument parsing, a monotonic clock, /proc/self/status. */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline long bench_arg(int argc, char **argv, long dflt) {
    long n = argc > 1 ? atol(argv[1]) : dflt;
    if (n <= 0) {
        fprintf(stderr, "usage: %s [N > 0]\n", argv[0]);
        exit(2);
    }
    return n;
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM), or -1. */
static inline long bench_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kl = strlen(key);
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = atol(line + kl + 1);
            break;
        }
    if (f)
        fclose(f);
    return v;
}

#ifdef WEFT_H
/* From a task: runs a(arg_a) and b(arg_b) as two tasks until both have finished; *seconds gets
 * the time from creating them to the end. Returns the first error, or 0. */
static inline int bench_run_pair(weft_task_fn a, void *arg_a, weft_task_fn b, void *arg_b,
                                 double *seconds) {
    weft_task_t *tasks[2] = {NULL, NULL};
    double t0 = bench_now();
    int rc = weft_create_task(&tasks[0], a, arg_a, NULL);
    if (rc == 0 && (rc = weft_create_task(&tasks[1], b, arg_b, NULL)) == 0)
        rc = weft_gather(tasks, 2, NULL);
    *seconds = bench_now() - t0;
    weft_unref(tasks[0]);
    weft_unref(tasks[1]);
    return rc;
}
#endif

#endif
