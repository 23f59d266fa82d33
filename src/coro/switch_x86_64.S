/* Context switch for x86-64, System V ABI (Linux, ELF).
 *
 * A suspended context is nothing but a stack pointer: everything the ABI says survives a
 * call (rbx, rbp, r12-r15, the MXCSR and the x87 control word) is pushed on the context's own
 * stack, in this order from the top:
 *
 *      sp+56  return address     (into weft__coro_switch; the trampoline the first time)
 *      sp+48  rbp
 *      sp+40  rbx
 *      sp+32  r12
 *      sp+24  r13
 *      sp+16  r14
 *      sp+8   r15
 *      sp+0   MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes unused
 *
 * Caller-saved registers need no saving: weft__ctx_switch is an ordinary call to the code
 * that calls it. The FP control words are saved because the rounding mode and exception
 * masks are per-thread state in C (fesetround), and each task is a thread to its code.
 * The x87/SSE data registers are caller-saved, so they are not.
 *
 * Shadow stacks (CET SHSTK) would break on the `ret` into another stack. This file carries
 * no .note.gnu.property, so a binary that links it is never marked shadow-stack compatible.
 */
#include "coro_impl.h"

#if WEFT__CTX_X86_64

#if defined(__CET__) && (__CET__ & 1)
#  define WEFT__ENDBR endbr64
#else
#  define WEFT__ENDBR
#endif

        .text

/* void weft__ctx_switch(weft__coro_t *from (rdi), weft__coro_t *to (rsi))
 * weft__coro_t.sp is at offset 0 of both. */
        .p2align 4
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, @function
weft__ctx_switch:
        .cfi_startproc
        WEFT__ENDBR
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r15, 0
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)

        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        /* Now on `to`'s stack. Its frame has the layout written above, so the CFI that
         * describes this function's frame stays true: an unwinder stopped between here and
         * the `ret` sees `to`'s suspended caller, which is where we are going. */

        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        ret
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* void *weft__ctx_prepare(void *top (rdi), weft__coro_entry fn (rsi), void *arg (rdx))
 * Writes a frame that weft__ctx_switch pops as if the new context had been suspended in it:
 * fn and arg go where rbx and r12 are restored from, the return address is the trampoline.
 * The frame is placed so that the trampoline starts with rsp == top rounded down to 16,
 * which makes its `call` leave the callee the 16-byte alignment the ABI promises. */
        .p2align 4
        .globl  weft__ctx_prepare
        .hidden weft__ctx_prepare
        .type   weft__ctx_prepare, @function
weft__ctx_prepare:
        .cfi_startproc
        WEFT__ENDBR
        andq    $-16, %rdi
        leaq    -64(%rdi), %rax
        stmxcsr (%rax)                  /* inherit the creator's FP control state */
        fnstcw  4(%rax)
        movw    $0, 6(%rax)
        movq    $0, 8(%rax)             /* r15 */
        movq    $0, 16(%rax)            /* r14 */
        movq    $0, 24(%rax)            /* r13 */
        movq    %rdx, 32(%rax)          /* r12 = arg */
        movq    %rsi, 40(%rax)          /* rbx = fn */
        movq    $0, 48(%rax)            /* rbp = 0 ends frame-pointer chains (perf, gdb) */
        leaq    .Ltrampoline_entry(%rip), %rcx
        movq    %rcx, 56(%rax)
        ret
        .cfi_endproc
        .size   weft__ctx_prepare, .-weft__ctx_prepare

/* First code of every new context: fn(arg). The bottom frame of every coroutine stack.
 * `.cfi_undefined %rip` says it has no caller, so debuggers and unwinders stop here instead
 * of reading whatever lies above the stack's top.
 * The frame made by weft__ctx_prepare "returns" to .Ltrampoline_entry, one byte in: an
 * unwinder looks up a return address minus one (the call instruction), and that byte must
 * still be inside this function and its CFI, not in the function before it. */
        .p2align 4
        .type   weft__ctx_trampoline, @function
weft__ctx_trampoline:
        .cfi_startproc
        .cfi_undefined %rip
        nop
.Ltrampoline_entry:
        movq    %r12, %rdi
        call    *%rbx
        /* fn must end with weft__coro_switch_final and never come back here. */
        call    weft__ctx_entry_returned
        ud2
        .cfi_endproc
        .size   weft__ctx_trampoline, .-weft__ctx_trampoline

#endif /* WEFT__CTX_X86_64 */

/* Non-executable stack. %progbits, not @progbits: on ARM "@" starts a comment, and this line
 * is assembled on every architecture. */
        .section .note.GNU-stack, "", %progbits
