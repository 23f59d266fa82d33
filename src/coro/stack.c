/* The stack pool.
 *
 * What a task's stack costs is what decides how many tasks fit in a process, so the pool is
 * built around three facts of Linux:
 *
 *  1. Address space is nearly free, memory is not. Stacks are mapped MAP_NORESERVE and
 *     committed page by page as the task touches them: a task that uses 3 KiB of a 64 KiB
 *     stack costs one page.
 *  2. Mappings are counted. vm.max_map_count (65530 by default) limits the number of
 *     mappings (VMAs) in a process, so one mmap per stack would stop near 65k tasks, or
 *     near 32k with an mprotect'd guard page, which splits each mapping in two. Default-size
 *     stacks are therefore carved from chunks of WEFT__CHUNK_SLOTS stacks per mmap, and the
 *     guard pages are made with MADV_GUARD_INSTALL (Linux >= 6.13), which guards pages
 *     without splitting the mapping: a million stacks take at most ~16k mappings (the kernel
 *     usually merges adjacent chunks, leaving a few dozen).
 *     On older kernels the guards fall back to mprotect(PROT_NONE), and every stack costs two
 *     mappings again: about 32k guarded stacks under the default vm.max_map_count (raise it,
 *     e.g. sysctl vm.max_map_count=2000000, for more). The pool then returns -ENOMEM when the
 *     kernel refuses a new chunk.
 *  3. The first touch of a page is expensive (a page fault, 1.5-10 us on a VM) and a system
 *     call is too. So a freed stack is kept and handed out again, most recently freed first:
 *     its top pages are still committed and in cache, and a million short tasks run one
 *     after another on a handful of warm stacks, without a system call. The bookkeeping of
 *     free stacks lives in malloc'd chunk headers, never in the stacks, so a stack nobody
 *     touched stays uncommitted.
 *
 * Memory goes back to the system a chunk at a time (one munmap for 64 stacks), but not at
 * once: when every stack of a chunk is free and the pool would still keep WEFT__WARM_RESERVE
 * free stacks without it, the chunk is retired. A retired chunk is handed out again before a
 * new one is mapped, and is unmapped by weft__stack_pool_trim(), which the loop calls when it
 * is about to wait with nothing to do (or after a while, if it never is). Unmapping a million
 * stacks costs about 0.7 s of system time; done as a burst winds down, it would slow the last
 * tasks of the burst, and a second burst would pay the page faults and guard installation
 * again. Allocators defer purging for the same reasons (jemalloc's decay, mimalloc's delay).
 * After a burst of a million tasks and one idle moment, the pool is back to the reserve.
 *
 * Stacks of another size ("odd" sizes) get a mapping each; the last few freed are kept for
 * reuse, the rest unmapped.
 *
 * A chunk, one mmap, slots of equal size, each with its guard page at the low end:
 *
 *     base                                                              base + map_size
 *     | guard | stack 0 ...  | guard | stack 1 ...  |  ...  | guard | stack 63 ...  |
 *                        hi0 ^                 hi1 ^      stacks grow down from hi
 *
 * A stack that overflows hits its own guard page. A frame larger than a page could step over
 * it into the stack below; compile with -fstack-clash-protection (gcc, clang), which probes
 * large frames page by page, to make the guard catch those too.
 */
#include "coro_impl.h"
#include "../core/list.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if WEFT__ASAN
#  include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#  define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif

enum {
    WEFT__CHUNK_SLOTS = 64,   /* default-size stacks per mmap */
    WEFT__WARM_RESERVE = 256, /* free default-size stacks always kept */
    WEFT__SOLO_KEEP = 16,     /* free odd-size stacks kept */
};
#define WEFT__DEFAULT_STACK ((size_t)64 * 1024)
#define WEFT__MIN_STACK ((size_t)16 * 1024)

struct weft__stack_chunk {
    weft__list_t link;       /* in the pool's avail, retired or solo_free */
    char *base;              /* the mmap */
    size_t map_size;
    size_t slot_size;        /* guard + usable */
    uint32_t nslots;         /* 1 for an odd-size stack */
    uint32_t nfree;
    uint16_t free_slot[];    /* LIFO of free slot indexes: [nfree - 1] was freed last */
};

struct weft__stack_pool {
    size_t page;
    size_t default_usable;
    /* Chunks with at least one free slot, the one freed into last at the front: its last
     * freed slot is the warmest stack of the pool, and the next one handed out. Beyond that
     * first stack the order is LIFO per chunk rather than across chunks, which is as warm
     * in practice and keeps the bookkeeping to a few bytes per chunk. */
    weft__list_t avail;
    /* Chunks whose stacks are all free, beyond the reserve: waiting for weft__stack_pool_trim,
     * most recently retired first. Not counted in nfree. */
    weft__list_t retired;
    size_t nretired;
    /* Free odd-size stacks (one-slot chunks), most recently freed first. */
    weft__list_t solo_free;
    size_t solo_free_count;
    size_t in_use;           /* stacks handed out */
    size_t nfree;            /* free default-size stacks */
    size_t nchunks;          /* default-size chunks mapped */
    size_t nsolo;            /* odd-size mappings, handed out or kept */
};

static inline struct weft__stack_chunk *weft__chunk_of(weft__list_t *l)
{
    return weft__list_entry(l, struct weft__stack_chunk, link);
}

/* ---- pages and guards (also used for the alternate signal stacks, overflow.c) ---- */

size_t weft__page_size(void)
{
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

/* Set once the kernel has refused MADV_GUARD_INSTALL: every later guard uses mprotect. */
static atomic_int weft__guard_mprotect;

int weft__guard_uses_mprotect(void)
{
    return atomic_load_explicit(&weft__guard_mprotect, memory_order_relaxed);
}

static int weft__guard_madvise_allowed(void)
{
#if defined(WEFT_CORO_GUARD_MPROTECT)
    return 0; /* test knob: behave as on a kernel older than 6.13 */
#elif WEFT__VALGRIND
    /* valgrind does not know guard regions: it takes the page for ordinary memory, reads it
     * when it walks a stack (to print the backtrace of a fatal signal) and dies of the fault.
     * It does follow mprotect. */
    return !RUNNING_ON_VALGRIND;
#else
    return 1;
#endif
}

int weft__guard_install(void *addr, size_t len)
{
    if (!atomic_load_explicit(&weft__guard_mprotect, memory_order_relaxed)) {
        if (weft__guard_madvise_allowed()) {
            if (madvise(addr, len, MADV_GUARD_INSTALL) == 0)
                return 0;
            /* EINVAL: a kernel without guard regions (or a mapping they do not support).
             * Anything else (ENOMEM, EINTR...) is a real failure. */
            if (errno != EINVAL)
                return -errno;
        }
        atomic_store_explicit(&weft__guard_mprotect, 1, memory_order_relaxed);
    }
    return mprotect(addr, len, PROT_NONE) == 0 ? 0 : -errno;
}

/* Set once process_madvise has refused guards: chunks install them one madvise at a time. */
static atomic_int weft__guard_batch_off;

/* All the guards of a chunk in one process_madvise call (Linux >= 6.13 takes any advice for the
 * calling process) instead of one madvise each: a million stacks spend about a second in guard
 * installation on a VM, and the system call entries are a good part of it. Returns 1 if every
 * guard is in place, 0 if the caller must install them one by one (an older kernel, a seccomp
 * filter, valgrind, or the mprotect fallback): installing a guard twice is harmless. The pidfd
 * is opened for the call and closed after it, so that nothing lingers in the process's
 * descriptor table and a fork()ed child never advises its parent. */
static int weft__guards_install_batch(char *base, size_t slot_size, uint32_t nslots, size_t page)
{
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
    struct iovec iov[WEFT__CHUNK_SLOTS];
    long done;
    int pidfd;
    if (nslots < 2 || nslots > WEFT__CHUNK_SLOTS ||
        atomic_load_explicit(&weft__guard_batch_off, memory_order_relaxed) ||
        atomic_load_explicit(&weft__guard_mprotect, memory_order_relaxed) ||
        !weft__guard_madvise_allowed())
        return 0;
    for (uint32_t i = 0; i < nslots; i++) {
        iov[i].iov_base = base + (size_t)i * slot_size;
        iov[i].iov_len = page;
    }
    pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd < 0) {
        atomic_store_explicit(&weft__guard_batch_off, 1, memory_order_relaxed);
        return 0;
    }
    done = syscall(SYS_process_madvise, pidfd, iov, (size_t)nslots, MADV_GUARD_INSTALL, 0);
    close(pidfd);
    if (done == (long)(nslots * page))
        return 1;
    if (done < 0 && errno != ENOMEM && errno != EINTR && errno != EAGAIN)
        atomic_store_explicit(&weft__guard_batch_off, 1, memory_order_relaxed);
#else
    (void)base, (void)slot_size, (void)nslots, (void)page;
#endif
    return 0;
}

/* ---- chunks ---- */

static struct weft__stack_chunk *weft__chunk_new(size_t page, size_t slot_size, uint32_t nslots)
{
    struct weft__stack_chunk *c = malloc(sizeof *c + nslots * sizeof c->free_slot[0]);
    if (!c)
        return NULL;
    size_t map_size = slot_size * nslots;
    char *base = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        free(c);
        return NULL;
    }
    /* Stacks are committed a 4 KiB page at a time; a transparent huge page would commit 2 MiB
     * for one touched byte. (Guard pages already keep THP away; this makes it explicit.) */
    (void)madvise(base, map_size, MADV_NOHUGEPAGE);
    if (!weft__guards_install_batch(base, slot_size, nslots, page)) {
        for (uint32_t i = 0; i < nslots; i++) {
            if (weft__guard_install(base + (size_t)i * slot_size, page) != 0) {
                munmap(base, map_size);
                free(c);
                return NULL;
            }
        }
    }
    c->base = base;
    c->map_size = map_size;
    c->slot_size = slot_size;
    c->nslots = nslots;
    c->nfree = nslots;
    /* Slot 0 on top of the LIFO: a fresh chunk is used from its low end up. */
    for (uint32_t i = 0; i < nslots; i++)
        c->free_slot[i] = (uint16_t)(nslots - 1 - i);
    return c;
}

static void weft__chunk_unmap(struct weft__stack_chunk *c)
{
    munmap(c->base, c->map_size);
    free(c);
}

/* ---- handing out and taking back ---- */

static void weft__stack_fill(weft__stack_t *out, struct weft__stack_chunk *c, uint32_t slot,
                             size_t page)
{
    out->lo = c->base + (size_t)slot * c->slot_size;
    out->hi = out->lo + c->slot_size;
    out->size = c->slot_size;
    out->chunk = c;
    out->slot = slot;
    out->guard = (uint32_t)page;
#if WEFT__VALGRIND
    /* Without this, valgrind takes a switch between two stacks of a chunk (68 KiB apart)
     * for a huge frame being pushed or popped, and reports nonsense. */
    out->valgrind_id = VALGRIND_STACK_REGISTER(out->lo + out->guard, out->hi - 1);
#else
    out->valgrind_id = 0;
#endif
}

/* Usable size for a request: 0 is the default, others round up to pages. 0 if impossible. */
static size_t weft__stack_usable(const weft__stack_pool_t *pool, size_t size)
{
    if (size == 0)
        return pool->default_usable;
    if (size > SIZE_MAX / 4)
        return 0;
    if (size < WEFT__MIN_STACK)
        size = WEFT__MIN_STACK;
    return (size + pool->page - 1) & ~(pool->page - 1);
}

weft__stack_pool_t *weft__stack_pool_new(size_t default_size)
{
    weft__stack_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->page = weft__page_size();
    weft__list_init(&pool->avail);
    weft__list_init(&pool->retired);
    weft__list_init(&pool->solo_free);
    pool->default_usable = weft__stack_usable(pool, default_size ? default_size
                                                                 : WEFT__DEFAULT_STACK);
    if (!pool->default_usable) {
        free(pool);
        return NULL;
    }
    return pool;
}

void weft__stack_pool_free(weft__stack_pool_t *pool)
{
    if (!pool)
        return;
    assert(pool->in_use == 0 && "every stack must be back before the pool is freed");
    /* With every stack back, every chunk has a free slot, so these lists hold them all. */
    struct weft__stack_chunk *c;
    weft__stack_pool_trim(pool, SIZE_MAX);
    while ((c = weft__list_first_entry(&pool->avail, struct weft__stack_chunk, link))) {
        weft__list_remove(&c->link);
        weft__chunk_unmap(c);
    }
    while ((c = weft__list_first_entry(&pool->solo_free, struct weft__stack_chunk, link))) {
        weft__list_remove(&c->link);
        weft__chunk_unmap(c);
    }
    free(pool);
}

static int weft__stack_get_solo(weft__stack_pool_t *pool, size_t usable, weft__stack_t *out)
{
    size_t slot_size = usable + pool->page;
    struct weft__stack_chunk *c = NULL;
    weft__list_t *l;
    weft__list_foreach(l, &pool->solo_free) {
        if (weft__chunk_of(l)->slot_size == slot_size) {
            c = weft__chunk_of(l);
            weft__list_remove(l);
            pool->solo_free_count--;
            break;
        }
    }
    if (!c) {
        c = weft__chunk_new(pool->page, slot_size, 1);
        if (!c)
            return -ENOMEM;
        pool->nsolo++;
    }
    c->nfree = 0;
    pool->in_use++;
    weft__stack_fill(out, c, 0, pool->page);
    return 0;
}

int weft__stack_get(weft__stack_pool_t *pool, size_t size, weft__stack_t *out)
{
    size_t usable = weft__stack_usable(pool, size);
    if (!usable)
        return -ENOMEM;
    if (usable != pool->default_usable)
        return weft__stack_get_solo(pool, usable, out);

    struct weft__stack_chunk *c;
    if (weft__list_empty(&pool->avail)) {
        c = weft__list_first_entry(&pool->retired, struct weft__stack_chunk, link);
        if (c) { /* its stacks are mapped, guarded, their top pages most likely committed */
            weft__list_remove(&c->link);
            pool->nretired--;
        } else {
            c = weft__chunk_new(pool->page, usable + pool->page, WEFT__CHUNK_SLOTS);
            if (!c)
                return -ENOMEM;
            pool->nchunks++;
        }
        weft__list_push_front(&pool->avail, &c->link);
        pool->nfree += c->nslots;
    } else {
        c = weft__list_first_entry(&pool->avail, struct weft__stack_chunk, link);
    }
    uint32_t slot = c->free_slot[--c->nfree];
    if (c->nfree == 0)
        weft__list_remove(&c->link); /* invariant: a chunk is in `avail` iff nfree > 0 */
    pool->nfree--;
    pool->in_use++;
    weft__stack_fill(out, c, slot, pool->page);
    return 0;
}

void weft__stack_put(weft__stack_pool_t *pool, weft__stack_t *stack)
{
#if WEFT__VALGRIND
    VALGRIND_STACK_DEREGISTER(stack->valgrind_id);
#endif
#if WEFT__ASAN
    /* A task's frames leave poisoned redzones in the shadow memory when the stack is dropped
     * with frames still on it (a finished task's last frames, or a task that is never
     * resumed). The next user of these addresses, a task or anything mapped here after an
     * munmap, would trip over them with a false stack-buffer-overflow. The poisoned part
     * starts at the deepest frame still live and ends at the top, so clearing from the first
     * poisoned byte up is enough, and leaves the shadow of untouched pages untouched. */
    {
        char *usable = stack->lo + stack->guard;
        char *p = __asan_region_is_poisoned(usable, (size_t)(stack->hi - usable));
        if (p)
            ASAN_UNPOISON_MEMORY_REGION(p, (size_t)(stack->hi - p));
    }
#endif
    struct weft__stack_chunk *c = stack->chunk;
    pool->in_use--;

    if (c->nslots == 1) {
        c->nfree = 1;
        weft__list_push_front(&pool->solo_free, &c->link);
        if (++pool->solo_free_count > WEFT__SOLO_KEEP) {
            struct weft__stack_chunk *oldest =
                weft__list_last_entry(&pool->solo_free, struct weft__stack_chunk, link);
            weft__list_remove(&oldest->link);
            weft__chunk_unmap(oldest);
            pool->solo_free_count--;
            pool->nsolo--;
        }
        return;
    }

    c->free_slot[c->nfree++] = (uint16_t)stack->slot;
    pool->nfree++;
    if (c->nfree > 1)
        weft__list_remove(&c->link);
    weft__list_push_front(&pool->avail, &c->link);

    if (c->nfree == c->nslots && pool->nfree - c->nslots >= WEFT__WARM_RESERVE) {
        weft__list_remove(&c->link);
        pool->nfree -= c->nslots;
        weft__list_push_front(&pool->retired, &c->link);
        pool->nretired++;
    }
}

size_t weft__stack_pool_retired(const weft__stack_pool_t *pool)
{
    return pool->nretired;
}

size_t weft__stack_pool_trim(weft__stack_pool_t *pool, size_t max)
{
    size_t n = 0;
    struct weft__stack_chunk *c;
    /* The least recently retired first: the others are the likelier to be warm. */
    while (n < max && (c = weft__list_last_entry(&pool->retired, struct weft__stack_chunk, link))) {
        weft__list_remove(&c->link);
        weft__chunk_unmap(c);
        n++;
    }
    pool->nchunks -= n;
    pool->nretired -= n;
    return n;
}

size_t weft__stack_pool_in_use(const weft__stack_pool_t *pool)
{
    return pool->in_use;
}

void weft__stack_pool_stats(const weft__stack_pool_t *pool, weft__stack_pool_stats_t *out)
{
    out->in_use = pool->in_use;
    out->free = pool->nfree + pool->nretired * WEFT__CHUNK_SLOTS + pool->solo_free_count;
    out->chunks = pool->nchunks;
    out->retired = pool->nretired;
    out->solo = pool->nsolo;
    out->guard_mprotect = weft__guard_uses_mprotect();
}
