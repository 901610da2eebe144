/*
 * Register switching for x86-64, System V ABI (Linux, BSD, macOS).
 *
 * platform_switch() is the single place where the CPU moves from one
 * greenlet's slice of the C stack to another's.  The trick, common to every
 * stack-slicing implementation: the compiler is told that the callee-saved
 * registers are clobbered, so it spills them into this function's own frame
 * in the prologue and reloads them in the epilogue.  That frame lies inside
 * the slice that stack.c copies to and from the heap, so after the stack
 * pointer has been moved by the difference between the two slices, the
 * epilogue reloads the *target's* registers.  rbp, the x87 control word and
 * MXCSR are saved by hand in locals of the same frame.
 *
 * The function reports:
 *    0  the switch happened (we are now running as the target),
 *    1  the target had not started: nothing moved, the caller continues on
 *       this stack as the new greenlet,
 *   -1  saving the current stack failed (out of memory); nothing moved.
 */
#ifndef GREENLET_SWITCH_X86_64_SYSV_H
#define GREENLET_SWITCH_X86_64_SYSV_H

#include <stdint.h>

#define GREENLET_PLATFORM_NAME "x86-64 SysV"

/* rbx and r12-r15 go through the prologue/epilogue; rbp is saved by hand
   because it cannot be named as clobbered when it is the frame pointer. */
#define GREENLET_CLOBBERED_REGS "rbx", "r12", "r13", "r14", "r15"

static inline uint64_t
platform_ticks(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#if defined(__GNUC__) && !defined(__clang__)
#  define GREENLET_KEEP_FRAME_POINTER __attribute__((optimize("no-omit-frame-pointer")))
#else
#  define GREENLET_KEEP_FRAME_POINTER
#endif

#ifdef GREENLET_WANT_SWITCH
static GREENLET_NOINLINE GREENLET_KEEP_FRAME_POINTER GREENLET_NO_ASAN int
platform_switch(void)
{
    int status;
    void *saved_rbp;
    uint32_t saved_mxcsr;
    uint16_t saved_x87cw;
    char *stackref;
    intptr_t delta;

    __asm__ __volatile__("" : : : GREENLET_CLOBBERED_REGS);
    __asm__ __volatile__("fstcw %0" : "=m"(saved_x87cw));
    __asm__ __volatile__("stmxcsr %0" : "=m"(saved_mxcsr));
    __asm__ __volatile__("movq %%rbp, %0" : "=m"(saved_rbp));
    __asm__ __volatile__("movq %%rsp, %0" : "=g"(stackref));

    status = stack_save_for_switch(stackref, &delta);
    if (status == 0) {
        /* From here on every frame-relative access reads the target's copy
           of this very frame. */
        __asm__ __volatile__(
            "addq %0, %%rsp\n\t"
            "addq %0, %%rbp\n\t"
            :
            : "r"(delta)
            : "memory");
        stack_restore_after_switch();
        /* Whatever 'status' held in the target's saved frame is stale: the
           target is resuming a successful switch. */
        __asm__ __volatile__("xorl %0, %0" : "=r"(status));
    }

    __asm__ __volatile__("movq %0, %%rbp" : : "m"(saved_rbp));
    __asm__ __volatile__("ldmxcsr %0" : : "m"(saved_mxcsr));
    __asm__ __volatile__("fldcw %0" : : "m"(saved_x87cw));
    __asm__ __volatile__("" : : : GREENLET_CLOBBERED_REGS);
    return status;
}

#endif /* GREENLET_WANT_SWITCH */

#endif /* GREENLET_SWITCH_X86_64_SYSV_H */
