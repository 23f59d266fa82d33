/* Context switch for AArch64, AAPCS64 (Linux, ELF).
 *
 * Same idea as switch_x86_64.S: a suspended context is a stack pointer, and below it lies
 * everything AAPCS64 says survives a call, in a 176-byte frame (sp stays 16-byte aligned):
 *
 *      sp+160  FPCR (8 bytes), 8 bytes unused
 *      sp+96   d8 .. d15       (only the low 64 bits of v8-v15 are callee-saved)
 *      sp+80   x29 (fp), x30 (lr: where weft__ctx_switch returns to)
 *      sp+0    x19 .. x28
 *
 * x18 is a temporary on Linux and is not saved. FPCR holds the rounding mode and trap
 * enables, per-thread state in C, so each context keeps its own; it is written back only
 * when it differs, because an MSR to FPCR can be slow.
 *
 * BTI: the entry points start with `bti c`; the trampoline is only reached by `ret`, which
 * BTI does not check. PAC: nothing here signs or authenticates; a return address that the
 * compiler signed stays in its own function's frame, with the same sp to verify it against.
 */
#include "coro_impl.h"

#if WEFT__CTX_AARCH64

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#  define WEFT__BTI_C hint #34          /* bti c; a nop on cores without BTI */
#else
#  define WEFT__BTI_C
#endif

        .text

/* void weft__ctx_switch(weft__coro_t *from (x0), weft__coro_t *to (x1))
 * weft__coro_t.sp is at offset 0 of both. */
        .p2align 4
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, %function
weft__ctx_switch:
        .cfi_startproc
        WEFT__BTI_C
        sub     sp, sp, #176
        .cfi_def_cfa_offset 176
        stp     x19, x20, [sp, #0]
        .cfi_offset x19, -176
        .cfi_offset x20, -168
        stp     x21, x22, [sp, #16]
        .cfi_offset x21, -160
        .cfi_offset x22, -152
        stp     x23, x24, [sp, #32]
        .cfi_offset x23, -144
        .cfi_offset x24, -136
        stp     x25, x26, [sp, #48]
        .cfi_offset x25, -128
        .cfi_offset x26, -120
        stp     x27, x28, [sp, #64]
        .cfi_offset x27, -112
        .cfi_offset x28, -104
        stp     x29, x30, [sp, #80]
        .cfi_offset x29, -96
        .cfi_offset x30, -88
        stp     d8, d9, [sp, #96]
        .cfi_offset d8, -80
        .cfi_offset d9, -72
        stp     d10, d11, [sp, #112]
        .cfi_offset d10, -64
        .cfi_offset d11, -56
        stp     d12, d13, [sp, #128]
        .cfi_offset d12, -48
        .cfi_offset d13, -40
        stp     d14, d15, [sp, #144]
        .cfi_offset d14, -32
        .cfi_offset d15, -24
        mrs     x9, fpcr
        str     x9, [sp, #160]

        mov     x10, sp
        str     x10, [x0]
        ldr     x10, [x1]
        mov     sp, x10
        /* Now on `to`'s stack. Its frame has the layout above, so the CFI stays true: an
         * unwinder stopped between here and the `ret` sees `to`'s suspended caller. */

        ldr     x10, [sp, #160]
        cmp     x9, x10
        b.eq    1f
        msr     fpcr, x10
1:
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
        .cfi_def_cfa_offset 0
        .cfi_restore x19
        .cfi_restore x20
        .cfi_restore x21
        .cfi_restore x22
        .cfi_restore x23
        .cfi_restore x24
        .cfi_restore x25
        .cfi_restore x26
        .cfi_restore x27
        .cfi_restore x28
        .cfi_restore x29
        .cfi_restore x30
        .cfi_restore d8
        .cfi_restore d9
        .cfi_restore d10
        .cfi_restore d11
        .cfi_restore d12
        .cfi_restore d13
        .cfi_restore d14
        .cfi_restore d15
        ret
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* void *weft__ctx_prepare(void *top (x0), weft__coro_entry fn (x1), void *arg (x2))
 * Writes a frame that weft__ctx_switch restores as if the new context had been suspended:
 * fn and arg land in x19 and x20, lr is the trampoline, fp is 0 (ends frame-record chains),
 * and after the frame is popped sp == top rounded down to 16. */
        .p2align 4
        .globl  weft__ctx_prepare
        .hidden weft__ctx_prepare
        .type   weft__ctx_prepare, %function
weft__ctx_prepare:
        .cfi_startproc
        WEFT__BTI_C
        and     x0, x0, #-16
        sub     x0, x0, #176
        stp     x1, x2, [x0, #0]        /* x19 = fn, x20 = arg */
        stp     xzr, xzr, [x0, #16]
        stp     xzr, xzr, [x0, #32]
        stp     xzr, xzr, [x0, #48]
        stp     xzr, xzr, [x0, #64]
        adr     x9, .Ltrampoline_entry
        stp     xzr, x9, [x0, #80]      /* x29 = 0, x30 = trampoline */
        stp     xzr, xzr, [x0, #96]
        stp     xzr, xzr, [x0, #112]
        stp     xzr, xzr, [x0, #128]
        stp     xzr, xzr, [x0, #144]
        mrs     x9, fpcr                /* inherit the creator's FP control state */
        stp     x9, xzr, [x0, #160]
        ret
        .cfi_endproc
        .size   weft__ctx_prepare, .-weft__ctx_prepare

/* First code of every new context: fn(arg), with sp 16-byte aligned. The bottom frame of
 * every coroutine stack; `.cfi_undefined x30` says it has no caller, so unwinders stop.
 * The frame made by weft__ctx_prepare "returns" to .Ltrampoline_entry, one instruction in:
 * an unwinder looks up a return address minus one, and that must still be inside this
 * function and its CFI, not in the function before it. */
        .p2align 4
        .type   weft__ctx_trampoline, %function
weft__ctx_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        nop
.Ltrampoline_entry:
        mov     x0, x20
        blr     x19
        /* fn must end with weft__coro_switch_final and never come back here. */
        bl      weft__ctx_entry_returned
        brk     #0
        .cfi_endproc
        .size   weft__ctx_trampoline, .-weft__ctx_trampoline

/* Tell the linker this object is BTI / PAC compatible when the compiler builds everything
 * else that way; without the note, linking this file would turn BTI off for the binary. */
#if (defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT) || \
    (defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT)
#  if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#    define WEFT__FEATURE_BTI 1
#  else
#    define WEFT__FEATURE_BTI 0
#  endif
#  if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#    define WEFT__FEATURE_PAC 2
#  else
#    define WEFT__FEATURE_PAC 0
#  endif
        .pushsection .note.gnu.property, "a"
        .p2align 3
        .word   4                       /* name size */
        .word   16                      /* descriptor size */
        .word   5                       /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .word   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
        .word   4
        .word   WEFT__FEATURE_BTI | WEFT__FEATURE_PAC
        .word   0
        .popsection
#endif

#endif /* WEFT__CTX_AARCH64 */

/* Non-executable stack. %progbits, not @progbits: on ARM "@" starts a comment, and this line
 * is assembled on every architecture. */
        .section .note.GNU-stack, "", %progbits
