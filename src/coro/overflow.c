/* Stack-overflow reporting.
 *
 * A task that overflows its stack touches the guard page below it and gets a SIGSEGV. Left
 * alone, the process dies with "Segmentation fault" and nothing says which of a million
 * tasks did it. So a SIGSEGV/SIGBUS handler looks at the faulting address: if it is in the
 * guard page of the stack that is running, it prints
 *
 *     weft: stack overflow in task #42 'fetch'
 *
 * (the text after "task " comes from the scheduler's describe hook) and aborts. Any other
 * fault is passed on to whatever handler was there before, or to the default action.
 *
 * The handler has to run on an alternate signal stack: the task's own stack is exactly what
 * has run out. Every thread that runs a loop gets one in weft__coro_init_thread, unless it
 * already has one (ASan gives each thread its own; so may the application). It is an mmap of
 * 64 KiB plus a guard page, committed only where touched, and it is unmapped by a
 * thread-specific-data destructor when the thread exits (the main thread's simply lives as
 * long as the process).
 *
 * Everything the handler does is async-signal-safe: it reads the thread-local
 * weft__overflow_running (initial-exec TLS, a plain %fs-relative load), formats into a buffer
 * on the alternate stack, and calls write(2) and abort().
 *
 * Under AddressSanitizer, ASan's SIGSEGV handler is installed before main; ours is installed
 * later, so it runs first and passes other faults to ASan's. This needs ASan's default
 * allow_user_segv_handler=1 (with allow_user_segv_handler=0 ASan ignores our sigaction and
 * reports the overflow itself, as a plain stack-overflow without the task's name).
 * Under valgrind, stacks get mprotect'd guards (see stack.c), which valgrind follows; it
 * passes the fault to this handler like any other.
 */
#include "coro_impl.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__thread weft__overflow_running_t weft__overflow_running
    __attribute__((tls_model("initial-exec")));

static _Atomic(weft__overflow_describe) weft__describe;
static atomic_int weft__installed;
static struct sigaction weft__prev_segv, weft__prev_bus;

/* ---- the handler ---- */

static size_t weft__append(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s && pos + 1 < cap)
        buf[pos++] = *s++;
    buf[pos] = '\0';
    return pos;
}

static size_t weft__append_hex(char *buf, size_t pos, size_t cap, uintptr_t v)
{
    char digits[2 + 2 * sizeof v + 1];
    size_t n = sizeof digits - 1;
    digits[n] = '\0';
    do {
        digits[--n] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    digits[--n] = 'x';
    digits[--n] = '0';
    return weft__append(buf, pos, cap, digits + n);
}

__attribute__((noreturn)) static void weft__overflow_report(const weft__stack_t *stack,
                                                           void *owner)
{
    char desc[256];
    desc[0] = '\0';
    weft__overflow_describe describe = atomic_load_explicit(&weft__describe,
                                                            memory_order_acquire);
    if (describe && owner) {
        describe(owner, desc, sizeof desc);
        desc[sizeof desc - 1] = '\0';
    }

    char msg[384];
    size_t n = weft__append(msg, 0, sizeof msg, "weft: stack overflow in task ");
    if (desc[0]) {
        n = weft__append(msg, n, sizeof msg, desc);
    } else {
        n = weft__append(msg, n, sizeof msg, "with stack at ");
        n = weft__append_hex(msg, n, sizeof msg, (uintptr_t)stack->lo);
    }
    n = weft__append(msg, n, sizeof msg, "\n");
    /* Straight to fd 2, not through weft's logger: the logger takes a lock and formats with
     * stdio, neither of which a signal handler may do (the faulting thread may hold them). */
    ssize_t r = write(STDERR_FILENO, msg, n); /* one write: the line is not interleaved */
    (void)r;
    abort();
}

/* Not our fault: hand it to the previous handler, or let the default action happen. */
static void weft__overflow_chain(int sig, siginfo_t *si, void *uctx)
{
    const struct sigaction *prev = sig == SIGBUS ? &weft__prev_bus : &weft__prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction) {
            prev->sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    /* Default action (an ignored SIGSEGV from a real fault cannot be ignored either). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    /* A fault re-raises itself: returning re-executes the faulting instruction. A signal
     * sent by kill() or raise() does not, so send it again; it is blocked until we return. */
    if (si->si_code <= 0)
        raise(sig);
}

static void weft__overflow_handler(int sig, siginfo_t *si, void *uctx)
{
    int saved_errno = errno;
    const weft__stack_t *stack = weft__overflow_running.stack;
    /* si_code > 0: sent by the kernel for a fault, so si_addr is the faulting address. */
    if (stack && si->si_code > 0) {
        const char *addr = si->si_addr;
        if (addr >= stack->lo && addr < stack->lo + stack->guard)
            weft__overflow_report(stack, weft__overflow_running.owner);
    }
    errno = saved_errno;
    weft__overflow_chain(sig, si, uctx);
}

void weft__overflow_install(weft__overflow_describe describe)
{
    atomic_store_explicit(&weft__describe, describe, memory_order_release);
    if (atomic_exchange(&weft__installed, 1))
        return;
    /* Read the previous handlers before ours can run, so a fault in another thread never
     * finds them unset. */
    sigaction(SIGSEGV, NULL, &weft__prev_segv);
    sigaction(SIGBUS, NULL, &weft__prev_bus);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = weft__overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* ---- per-thread alternate signal stack ---- */

#define WEFT__ALTSTACK_SIZE ((size_t)64 * 1024)

static pthread_key_t weft__altstack_key;
static pthread_once_t weft__altstack_once = PTHREAD_ONCE_INIT;
static int weft__altstack_key_ok;
static __thread int weft__altstack_checked;

static size_t weft__altstack_size(void)
{
    size_t size = WEFT__ALTSTACK_SIZE;
#ifdef _SC_SIGSTKSZ
    /* The kernel's signal frame grows with the CPU's vector state (AVX-512, AMX). */
    long k = sysconf(_SC_SIGSTKSZ);
    if (k > 0 && (size_t)k * 4 > size)
        size = (size_t)k * 4;
#endif
    size_t page = weft__page_size();
    return (size + page - 1) & ~(page - 1);
}

/* Thread exit: stop using the alternate stack, then unmap it. */
static void weft__altstack_free(void *mem)
{
    size_t page = weft__page_size();
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == (char *)mem + page) {
        stack_t off;
        memset(&off, 0, sizeof off);
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, NULL);
    }
    munmap(mem, page + weft__altstack_size());
}

static void weft__altstack_make_key(void)
{
    weft__altstack_key_ok = pthread_key_create(&weft__altstack_key, weft__altstack_free) == 0;
}

int weft__overflow_init_thread(void)
{
    if (weft__altstack_checked)
        return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) {
        weft__altstack_checked = 1; /* the thread already has one: use it */
        return 0;
    }
    size_t page = weft__page_size();
    size_t size = weft__altstack_size();
    char *mem = mmap(NULL, page + size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    /* A guard below it, so that a handler overflowing the alternate stack faults instead of
     * writing over whatever is mapped below. */
    if (weft__guard_install(mem, page) != 0) {
        munmap(mem, page + size);
        return -ENOMEM;
    }
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = mem + page;
    ss.ss_size = size;
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, page + size);
        return -ENOMEM;
    }
    pthread_once(&weft__altstack_once, weft__altstack_make_key);
    if (weft__altstack_key_ok)
        pthread_setspecific(weft__altstack_key, mem);
    weft__altstack_checked = 1;
    return 0;
}
