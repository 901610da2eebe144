/*
 * Register switching for AArch64 (AAPCS64), GCC and Clang.
 *
 * Same shape as the x86-64 version (see switch_x86_64_sysv.h for the idea):
 * the callee-saved general registers x19-x28, the link register and the
 * callee-saved halves of v8-v15 are declared clobbered so that they are
 * spilled into this frame, which is part of the copied stack slice.  The
 * frame pointer x29 is saved by hand and moved together with sp.  The
 * status of a completed switch is produced by an explicit instruction so
 * that no stale value from the target's frame can leak into the return
 * register.
 */
#ifndef GREENLET_SWITCH_AARCH64_GCC_H
#define GREENLET_SWITCH_AARCH64_GCC_H

#include <stdint.h>

#define GREENLET_PLATFORM_NAME "AArch64 AAPCS64"

#define GREENLET_CLOBBERED_REGS \
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", \
    "x30", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15"

static inline uint64_t
platform_ticks(void)
{
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}

#ifdef GREENLET_WANT_SWITCH
static GREENLET_NOINLINE GREENLET_NO_ASAN int
platform_switch(void)
{
    int status;
    void *saved_fp;
    uint64_t saved_fpcr;
    char *stackref;
    intptr_t delta;

    __asm__ __volatile__("" : : : GREENLET_CLOBBERED_REGS);
    __asm__ __volatile__("str x29, %0" : "=m"(saved_fp));
    /* Through memory: a register would still hold the origin's value after
       the switch. */
    __asm__ __volatile__("mrs x9, fpcr\n\tstr x9, %0" : "=m"(saved_fpcr) : : "x9");
    __asm__ __volatile__("mov %0, sp" : "=r"(stackref));

    status = stack_save_for_switch(stackref, &delta);
    if (status == 0) {
        __asm__ __volatile__(
            "add sp, sp, %0\n\t"
            "add x29, x29, %0\n\t"
            :
            : "r"(delta)
            : "memory");
        stack_restore_after_switch();
        __asm__ __volatile__("mov %w0, #0" : "=r"(status));
    }

    __asm__ __volatile__("ldr x9, %0\n\tmsr fpcr, x9" : : "m"(saved_fpcr) : "x9");
    __asm__ __volatile__("ldr x29, %0" : : "m"(saved_fp));
    __asm__ __volatile__("" : : : GREENLET_CLOBBERED_REGS);
    return status;
}

#endif /* GREENLET_WANT_SWITCH */

#endif /* GREENLET_SWITCH_AARCH64_GCC_H */
