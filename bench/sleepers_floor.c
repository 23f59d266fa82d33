/* sleepers_floor: the least that any design giving each sleeping task one stack page of its own
 * pays for the sleepers workload, with no runtime at all. It maps room for N stacks of 64 KiB
 * plus a guard page, as weft lays them out, writes one byte at the top of each (the page a task
 * touches first), then sleeps 1 s (the longest delay of the workload).
 *
 * On a VM the first touch of a page the host has not backed yet costs microseconds, so this
 * figure, not the scheduler, bounds sleepers-wall there. Run it beside `sleepers` to see how
 * much of weft's figure is the memory itself.
 * usage: sleepers_floor [N=1000000]
 * Prints: RESULT sleepers-wall floor <s> s   and   RESULT sleepers-touch floor <s> s */
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"

int main(int argc, char **argv) {
    long n = bench_arg(argc, argv, 1000000);
    size_t slot = (size_t)68 * 1024;
    double t0 = bench_now(), touched;
    char *p = mmap(NULL, (size_t)n * slot, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("sleepers_floor: mmap");
        return 1;
    }
    (void)madvise(p, (size_t)n * slot, MADV_NOHUGEPAGE); /* as the stack pool does */
    for (long i = 0; i < n; i++)
        p[(size_t)(i + 1) * slot - 64] = 1;
    touched = bench_now() - t0;
    usleep(1000000);
    printf("RESULT sleepers-wall floor %.3f s\n", bench_now() - t0);
    printf("RESULT sleepers-touch floor %.3f s\n", touched);
    munmap(p, (size_t)n * slot);
    return 0;
}
