/* Coroutine contexts: creation, switching, and the sanitizer bookkeeping around a switch.
 *
 * The switch itself is in the backend (switch_<arch>.S, or ctx_ucontext.c). What this file
 * adds is what tools need to follow a program that changes stacks under their feet:
 *
 *  - AddressSanitizer keeps shadow memory and "fake stacks" per stack; it must be told
 *    before a switch which stack comes next (__sanitizer_start_switch_fiber) and after
 *    it which stack we left (__sanitizer_finish_switch_fiber).
 *  - ThreadSanitizer keeps a shadow call stack and a vector clock per thread; each
 *    coroutine gets its own "fiber" so that those stay consistent.
 *  - valgrind is told about each stack by the pool (stack.c), when a stack is handed out.
 *
 * In a normal build all of that compiles away and weft__coro_switch is a jump into the
 * assembly.
 */
#include "coro_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if WEFT__ASAN
#  include <sanitizer/common_interface_defs.h>
#endif
#if WEFT__TSAN
#  include <pthread.h>
#  include <signal.h>
#  include <sanitizer/tsan_interface.h>
#endif

_Static_assert(offsetof(weft__coro_t, sp) == 0, "the assembly reads and writes sp at offset 0");

/* ---- sanitizer hooks: empty inline functions in a normal build ----
 *
 * They are always inlined, and that matters under TSan: an instrumented helper pushes an entry
 * on TSan's shadow call stack of the current fiber when it is called, and pops one when it
 * returns, by which time __tsan_switch_to_fiber has made the other fiber current. Inlined,
 * the push and pop belong to weft__coro_switch, which returns on the fiber it was called on.
 */
#define WEFT__HOOK static inline __attribute__((always_inline))

#if WEFT__ASAN
/* The context that is switching away, for the code that runs just after the switch: ASan
 * tells the arriving side the bounds of the stack it left, and a thread context, whose
 * bounds we never computed, learns them that way the first time a coroutine leaves it. */
static __thread weft__coro_t *weft__asan_leaving;

WEFT__HOOK void weft__san_before(weft__coro_t *from, weft__coro_t *to, int from_finished)
{
    weft__asan_leaving = from;
    /* NULL for a finished coroutine: ASan frees its fake stack instead of keeping it. */
    __sanitizer_start_switch_fiber(from_finished ? NULL : &from->asan_fake_stack, to->stack_lo,
                                   to->stack_size);
}

/* fake_stack: the arriving context's saved fake stack, NULL on its first entry. */
WEFT__HOOK void weft__san_after(void *fake_stack)
{
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(fake_stack, &bottom, &size);
    weft__coro_t *left = weft__asan_leaving;
    if (left && !left->stack_lo) {
        left->stack_lo = bottom;
        left->stack_size = size;
    }
}
#elif WEFT__TSAN
/* TSan defers an asynchronous signal that arrives while a fiber runs to that fiber's next
 * intercepted call: one landing in a task that then finishes (its fiber destroyed) or stays
 * suspended would never reach its handler (a SIGCHLD, say). So signals are blocked across each
 * switch: the blocking call delivers what the leaving fiber holds, and the arriving side puts
 * the mask back, which delivers what came meanwhile on the fiber that now runs. Costs two
 * system calls per switch, in TSan builds only. */
static __thread sigset_t weft__tsan_sigmask;

WEFT__HOOK void weft__san_before(weft__coro_t *from, weft__coro_t *to, int from_finished)
{
    sigset_t all;
    (void)from;
    (void)from_finished;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &weft__tsan_sigmask);
    /* Must come immediately before the switch, with no instrumented code in between. The
     * default (synchronising) mode orders the two contexts' memory accesses, which is what
     * running on one thread guarantees. */
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
}
WEFT__HOOK void weft__san_after(void *fake_stack)
{
    (void)fake_stack;
    pthread_sigmask(SIG_SETMASK, &weft__tsan_sigmask, NULL);
}
/* TSan allocates a fiber's signal state on first use, and drops a signal that arrives while it
 * does. kill()'s interceptor allocates it (signal 0 sends nothing): at a fiber's first entry,
 * and for the thread's own context, while signals are blocked. */
WEFT__HOOK void weft__tsan_signal_state(void)
{
    kill(getpid(), 0);
}
#else
WEFT__HOOK void weft__san_before(weft__coro_t *from, weft__coro_t *to, int from_finished)
{
    (void)from;
    (void)to;
    (void)from_finished;
}
WEFT__HOOK void weft__san_after(void *fake_stack)
{
    (void)fake_stack;
}
#endif

#if WEFT__ASAN || WEFT__TSAN
/* Under ASan a new coroutine must run a little code of ours before entry(arg): the
 * finish_switch_fiber of the switch that started it (under TSan: the signal mask put back).
 * entry and arg wait at the top of the new stack, above the first frame, so weft__coro_t needs
 * no room for them. */
struct weft__boot {
    weft__coro_entry entry;
    void *arg;
};

static void weft__coro_boot(void *p)
{
    struct weft__boot *b = p;
#if WEFT__TSAN
    weft__tsan_signal_state(); /* signals are still blocked by the switch that started us */
#endif
    weft__san_after(NULL);
    b->entry(b->arg);
    weft__ctx_entry_returned();
}
#endif

void weft__ctx_entry_returned(void)
{
    static const char msg[] = "weft: a coroutine's entry function returned; it must end with "
                              "weft__coro_switch_final()\n";
    /* Straight to fd 2: the coroutine layer stands alone (its tests build it without the rest
     * of the library), so it cannot use weft's logger; and this is a bug about to abort. */
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    abort();
}

/* ---- the interface ---- */

int weft__coro_init_thread(weft__coro_t *c)
{
    memset(c, 0, sizeof *c);
    /* stack_lo stays NULL: under ASan it is learnt on the first switch away (above). */
#if WEFT__TSAN
    c->tsan_fiber = __tsan_get_current_fiber();
    c->tsan_owned = 0;
    {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        weft__tsan_signal_state();
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
#endif
    int err = weft__overflow_init_thread();
    if (err)
        return err;
#if WEFT__CTX_UCONTEXT
    return weft__ctx_uc_init_thread(c);
#else
    return 0;
#endif
}

int weft__coro_make(weft__coro_t *c, weft__stack_t *stack, weft__coro_entry entry, void *arg)
{
    memset(c, 0, sizeof *c);
    char *usable_lo = stack->lo + stack->guard;
    c->stack_lo = usable_lo;
    c->stack_size = (size_t)(stack->hi - usable_lo);

    char *top = stack->hi;
    weft__coro_entry fn = entry;
    void *fn_arg = arg;
#if WEFT__ASAN || WEFT__TSAN
    struct weft__boot *b = (struct weft__boot *)(((uintptr_t)top - sizeof *b) & ~(uintptr_t)15);
    b->entry = entry;
    b->arg = arg;
    top = (char *)b;
    fn = weft__coro_boot;
    fn_arg = b;
#endif

#if WEFT__CTX_UCONTEXT
    int err = weft__ctx_uc_make(c, usable_lo, top, fn, fn_arg);
    if (err)
        return err;
#else
    c->sp = weft__ctx_prepare(top, fn, fn_arg);
#endif

#if WEFT__TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
    c->tsan_owned = 1;
#endif
    return 0;
}

void weft__coro_release(weft__coro_t *c)
{
#if WEFT__TSAN
    if (c->tsan_owned && c->tsan_fiber)
        __tsan_destroy_fiber(c->tsan_fiber);
#endif
#if WEFT__CTX_UCONTEXT
    weft__ctx_uc_release(c);
#endif
    c->tsan_fiber = NULL;
    c->tsan_owned = 0;
}

void weft__coro_switch(weft__coro_t *from, weft__coro_t *to)
{
    weft__san_before(from, to, 0);
    weft__ctx_switch(from, to);
    /* Back in `from`, resumed by whoever switched to it. */
    weft__san_after(from->asan_fake_stack);
}

void weft__coro_switch_final(weft__coro_t *from, weft__coro_t *to)
{
    weft__san_before(from, to, 1);
#if WEFT__CTX_UCONTEXT
    (void)from;
    weft__ctx_uc_jump(to);
#else
    /* Saving into `from` is useless but harmless (the stack is still ours until `to` runs),
     * and one switch routine is simpler than two. */
    weft__ctx_switch(from, to);
    __builtin_trap(); /* nothing switches to a finished coroutine */
#endif
}
