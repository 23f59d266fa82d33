/* Private to src/coro: which context-switch backend is built, and the few functions the
 * files of this directory share. Included by the assembly files too, so everything that is
 * not a preprocessor definition sits under !__ASSEMBLER__. */
#ifndef WEFT_CORO_IMPL_H
#define WEFT_CORO_IMPL_H

/* Backend choice. Every file of this directory is always compiled; the ones that do not
 * apply come out empty. WEFT_CORO_UCONTEXT forces the portable fallback (for testing it on a
 * machine that has an assembly backend). The assembly backends are ELF/LP64 only: x32
 * (__ILP32__ on x86-64) has 4-byte pointers, which the frame layouts below do not expect. */
#if defined(WEFT_CORO_UCONTEXT)
#  define WEFT__CTX_UCONTEXT 1
#  define WEFT__CTX_X86_64 0
#  define WEFT__CTX_AARCH64 0
#elif defined(__ELF__) && defined(__x86_64__) && !defined(__ILP32__)
#  define WEFT__CTX_UCONTEXT 0
#  define WEFT__CTX_X86_64 1
#  define WEFT__CTX_AARCH64 0
#elif defined(__ELF__) && defined(__aarch64__) && !defined(__ILP32__)
#  define WEFT__CTX_UCONTEXT 0
#  define WEFT__CTX_X86_64 0
#  define WEFT__CTX_AARCH64 1
#else
#  define WEFT__CTX_UCONTEXT 1
#  define WEFT__CTX_X86_64 0
#  define WEFT__CTX_AARCH64 0
#endif

#ifndef __ASSEMBLER__

#include "coro.h"

/* Sanitizers and valgrind, tested once here: the .c files only say #if WEFT__ASAN etc.
 * Each macro is always defined, to 0 or 1. */
#if defined(__SANITIZE_ADDRESS__)
#  define WEFT__ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define WEFT__ASAN 1
#  endif
#endif
#ifndef WEFT__ASAN
#  define WEFT__ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#  define WEFT__TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define WEFT__TSAN 1
#  endif
#endif
#ifndef WEFT__TSAN
#  define WEFT__TSAN 0
#endif

/* valgrind's client requests are a few no-op instructions when not under valgrind. They are
 * used only where a stack is handed out or given back, never on the switch path.
 * -DNVALGRIND removes them. */
#if !defined(NVALGRIND) && defined(__has_include)
#  if __has_include(<valgrind/valgrind.h>)
#    include <valgrind/valgrind.h>
#    define WEFT__VALGRIND 1
#  endif
#endif
#ifndef WEFT__VALGRIND
#  define WEFT__VALGRIND 0
#endif

/* ---- context-switch backend (switch_x86_64.S, switch_aarch64.S or ctx_ucontext.c) ---- */

/* Saves the callee-saved registers and the FP control state of the running context on its
 * stack, stores its stack pointer in from->sp, and resumes `to` the same way. */
void weft__ctx_switch(weft__coro_t *from, weft__coro_t *to);

#if WEFT__CTX_UCONTEXT
int weft__ctx_uc_init_thread(weft__coro_t *c);
int weft__ctx_uc_make(weft__coro_t *c, char *lo, char *top, weft__coro_entry fn, void *arg);
void weft__ctx_uc_release(weft__coro_t *c);
__attribute__((noreturn)) void weft__ctx_uc_jump(weft__coro_t *to);
#else
/* Builds, just below `top`, a frame that weft__ctx_switch can "resume": it returns into
 * weft__ctx_trampoline, which calls fn(arg) on a 16-byte aligned stack. The new context
 * starts with the FP control state of the caller (as a new thread inherits its creator's).
 * Returns the stack pointer to store in weft__coro_t.sp. */
void *weft__ctx_prepare(void *top, weft__coro_entry fn, void *arg);
#endif

/* Called by the trampoline if fn returns, which the contract forbids. */
__attribute__((noreturn)) void weft__ctx_entry_returned(void);

/* ---- shared helpers ---- */

size_t weft__page_size(void);
/* Makes [addr, addr + len) fault on access: MADV_GUARD_INSTALL where the kernel has it (no
 * new mapping), else mprotect(PROT_NONE) (splits the mapping). 0 or -errno. */
int weft__guard_install(void *addr, size_t len);
int weft__guard_uses_mprotect(void);
/* Gives the calling thread an alternate signal stack if it has none. 0 or -ENOMEM. */
int weft__overflow_init_thread(void);

#endif /* !__ASSEMBLER__ */
#endif
