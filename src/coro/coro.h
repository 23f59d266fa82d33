/* Coroutine contexts and stacks: the only code that knows how a task's stack is
 * made, switched to and given back. The scheduler (src/core) sees this header only. */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H

#include <stddef.h>
#include <stdint.h>

/* One mmap'd stack: [lo, lo + guard) is the guard, [lo + guard, hi) is usable.
 * Pages are committed lazily: a stack costs the pages its task actually touched. */
typedef struct weft__stack {
    char *lo;            /* lowest address of the mapping slot (the guard starts here) */
    char *hi;            /* one past the highest usable byte; the stack grows down from here */
    size_t size;         /* hi - lo, guard included */
    struct weft__stack_chunk *chunk; /* owning chunk, for the pool's bookkeeping */
    unsigned valgrind_id;
    uint32_t slot;       /* index of this stack in its chunk (saves a division in put) */
    uint32_t guard;      /* bytes of guard at lo (one page) */
} weft__stack_t;

typedef struct weft__stack_pool weft__stack_pool_t;

/* A pool hands out stacks of any size (rounded up to pages) and keeps freed ones warm
 * (most recently freed first). Stacks of the default size are carved from chunks so that a
 * million stacks need far fewer than vm.max_map_count mappings. One pool per loop; not
 * thread-safe.
 * Sizes are usable bytes (the guard page comes on top); 0 means the pool's default size.
 * default_size 0 means 64 KiB. Sizes below 16 KiB are raised to 16 KiB: signal handlers
 * that do not use the alternate stack run on the task's stack, and a kernel signal frame
 * alone takes up to a few KiB. */
weft__stack_pool_t *weft__stack_pool_new(size_t default_size); /* NULL: out of memory */
void weft__stack_pool_free(weft__stack_pool_t *pool);      /* every stack must be back */
int weft__stack_get(weft__stack_pool_t *pool, size_t size, weft__stack_t *out); /* 0 or -ENOMEM */
void weft__stack_put(weft__stack_pool_t *pool, weft__stack_t *stack);
size_t weft__stack_pool_in_use(const weft__stack_pool_t *pool);  /* stacks handed out */
/* Chunks whose stacks are all free beyond the pool's warm reserve, kept mapped (and handed out
 * again first) until weft__stack_pool_trim() unmaps them, `max` at most, and returns how many
 * it did (about 40 us each: SIZE_MAX only where nothing waits). */
size_t weft__stack_pool_retired(const weft__stack_pool_t *pool);
size_t weft__stack_pool_trim(weft__stack_pool_t *pool, size_t max);

typedef struct weft__stack_pool_stats {
    size_t in_use;      /* stacks handed out */
    size_t free;        /* stacks kept ready, default-size and odd-size */
    size_t chunks;      /* mappings holding default-size stacks, retired ones included */
    size_t retired;     /* chunks of free stacks waiting for weft__stack_pool_trim() */
    size_t solo;        /* mappings holding one odd-size stack each (handed out or kept) */
    int guard_mprotect; /* guards are mprotect'd (kernel < 6.13): two mappings per stack */
} weft__stack_pool_stats_t;
void weft__stack_pool_stats(const weft__stack_pool_t *pool, weft__stack_pool_stats_t *out);

/* A saved execution context. The loop's context lives on the thread's own stack
 * (weft__coro_init_thread); every task's lives on a pool stack. */
typedef struct weft__coro {
    void *sp;                   /* saved stack pointer (assembly backends); must stay first */
    void *uctx;                 /* ucontext_t * (fallback backend only) */
    const void *stack_lo;       /* usable stack bounds, for the sanitizers */
    size_t stack_size;
    void *asan_fake_stack;
    void *tsan_fiber;
    int tsan_owned;             /* tsan_fiber was created by us (destroy on release) */
} weft__coro_t;

typedef void (*weft__coro_entry)(void *arg);

/* Fills `c` for the calling thread's own stack (the loop runs there), and gives the thread
 * an alternate signal stack if it has none, so that a stack overflow can be reported.
 * Returns 0 or -ENOMEM. Release `c` with weft__coro_release when the loop is done. */
int weft__coro_init_thread(weft__coro_t *c);
/* Prepares `c` to run entry(arg) on `stack` at its first switch-in. entry must never return:
 * it ends with weft__coro_switch_final(). Returns 0 or -ENOMEM. */
int weft__coro_make(weft__coro_t *c, weft__stack_t *stack, weft__coro_entry entry, void *arg);
/* Releases what weft__coro_make or weft__coro_init_thread allocated (sanitizer fiber, ucontext);
 * the stack is the caller's. Never release the context that is running. */
void weft__coro_release(weft__coro_t *c);
/* Saves the current context into `from` and resumes `to`. Returns when something
 * switches back to `from`. Each context keeps its own floating-point control state
 * (rounding mode, exception masks). */
void weft__coro_switch(weft__coro_t *from, weft__coro_t *to);
/* Like weft__coro_switch, for a coroutine that will never run again (its stack may be
 * reused as soon as `to` runs). Does not return. */
__attribute__((noreturn)) void weft__coro_switch_final(weft__coro_t *from, weft__coro_t *to);

/* Stack-overflow reporting. The guard page of the running coroutine's stack is checked by a
 * SIGSEGV handler on an alternate stack; on a hit it calls the describe hook (to name the task)
 * and aborts. The scheduler sets the running stack before each switch-in.
 * The describe hook runs inside the signal handler, on the alternate stack, while the task's
 * stack is exhausted: it must be async-signal-safe (no malloc, no stdio, no locks) and only
 * copy a short NUL-terminated text into buf. */
typedef void (*weft__overflow_describe)(void *owner, char *buf, size_t len);
void weft__overflow_install(weft__overflow_describe describe); /* once per process; idempotent */

/* What the signal handler reads. Thread-local with the initial-exec model: setting it is two
 * plain stores (%fs-relative on x86-64), and reading it in the handler cannot call into the
 * dynamic linker (which a general-dynamic access may do, and which is not async-signal-safe).
 * Caveat: initial-exec TLS in a shared library takes a few bytes of the static TLS surplus,
 * which glibc reserves for exactly this; dlopen() of libweft still works. */
typedef struct weft__overflow_running {
    const weft__stack_t *stack;  /* NULL: the loop's own stack is running */
    void *owner;                 /* passed to the describe hook */
} weft__overflow_running_t;
extern __thread weft__overflow_running_t weft__overflow_running
    __attribute__((tls_model("initial-exec")));

static inline void weft__overflow_set_running(const weft__stack_t *stack, void *owner) /* NULL: the loop */
{
    weft__overflow_running.stack = stack;
    weft__overflow_running.owner = owner;
}

#endif
