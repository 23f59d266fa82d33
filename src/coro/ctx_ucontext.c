/* Portable fallback backend: getcontext/makecontext/swapcontext.
 *
 * Used on targets without an assembly backend, or everywhere with -DWEFT_CORO_UCONTEXT (to
 * test this file on x86-64). It is correct but slow: glibc's swapcontext makes an
 * rt_sigprocmask system call on every switch (~250 ns instead of ~12). A ucontext_t is about
 * 1 KiB, so it is allocated beside the context rather than inside weft__coro_t.
 */
#include "coro_impl.h"

#if WEFT__CTX_UCONTEXT

#include <errno.h>
#include <stdlib.h>
#include <ucontext.h>

struct weft__uc {
    ucontext_t uc;
    weft__coro_entry fn;
    void *arg;
};

/* makecontext passes only int arguments, so the pointer travels in two halves. */
static void weft__uc_boot(int hi, int lo)
{
    uintptr_t p = (uintptr_t)(((uint64_t)(unsigned)hi << 32) | (uint64_t)(unsigned)lo);
    struct weft__uc *u = (struct weft__uc *)p;
    u->fn(u->arg);
    weft__ctx_entry_returned();
}

int weft__ctx_uc_init_thread(weft__coro_t *c)
{
    /* calloc, not malloc: ASan's swapcontext interceptor reads uc_stack of the context it
     * switches to, and must find it empty for a context that swapcontext filled. */
    c->uctx = calloc(1, sizeof(struct weft__uc));
    return c->uctx ? 0 : -ENOMEM;
}

int weft__ctx_uc_make(weft__coro_t *c, char *lo, char *top, weft__coro_entry fn, void *arg)
{
    struct weft__uc *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    if (getcontext(&u->uc) != 0) {
        free(u);
        return -ENOMEM;
    }
    u->fn = fn;
    u->arg = arg;
    u->uc.uc_link = NULL;
    u->uc.uc_stack.ss_sp = lo;
    u->uc.uc_stack.ss_size = (size_t)(top - lo);
    uint64_t p = (uint64_t)(uintptr_t)u;
    makecontext(&u->uc, (void (*)(void))weft__uc_boot, 2, (int)(unsigned)(p >> 32),
                (int)(unsigned)p);
    /* makecontext has used uc_stack; clear it so that ASan's swapcontext interceptor does
     * not wipe the shadow of the whole stack (live frames' redzones included) each time this
     * context is resumed. */
    u->uc.uc_stack.ss_sp = NULL;
    u->uc.uc_stack.ss_size = 0;
    c->uctx = u;
    return 0;
}

void weft__ctx_uc_release(weft__coro_t *c)
{
    free(c->uctx);
    c->uctx = NULL;
}

void weft__ctx_switch(weft__coro_t *from, weft__coro_t *to)
{
    swapcontext(&((struct weft__uc *)from->uctx)->uc, &((struct weft__uc *)to->uctx)->uc);
}

void weft__ctx_uc_jump(weft__coro_t *to)
{
    setcontext(&((struct weft__uc *)to->uctx)->uc);
    abort(); /* setcontext returns only on failure, which a valid context cannot produce */
}

#else
/* ISO C wants at least one declaration per translation unit. */
typedef int weft__ctx_ucontext_unused;
#endif
