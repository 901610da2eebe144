/*
 * Portable half of stack slicing.  The register switch itself lives in
 * platform/; it calls back into stack_save_for_switch() before moving the
 * stack pointer and stack_restore_after_switch() after.
 *
 * Nothing on the C stack survives the move, so the two states involved are
 * handed over through thread-local variables.
 */
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"
#include "faults.h"

#ifdef GREENLET_ASAN
#  include <sanitizer/asan_interface.h>
#endif

static _Thread_local StackState *switch_origin;
static _Thread_local StackState *switch_target;
static _Thread_local int forced_failure;

/* Buffers larger than this are given back after a restore instead of being
   kept for the next switch, so that one deep excursion does not pin memory. */
#define STACK_KEEP_LIMIT (64 * 1024)

static inline int
below(const char *a, const char *b)
{
    return (uintptr_t)a < (uintptr_t)b;
}

/* Make sure the lowest bytes of 's' up to 'stop' are on the heap. */
static GREENLET_NO_ASAN int
save_up_to(StackState *s, const char *stop)
{
    if (!below(s->start, stop)) {
        return 0;   /* the region needed lies wholly below this slice */
    }
    size_t need = (size_t)((uintptr_t)stop - (uintptr_t)s->start);
    if (need <= s->saved) {
        return 0;
    }
    if (need > s->capacity) {
        /* Grow by at least half again, so a slice that deepens a little at
           every switch does not realloc every time. */
        size_t cap = s->capacity + s->capacity / 2;
        if (cap < need) {
            cap = need;
        }
        char *c = (char *)FAULT_ALLOC(FAULT_STACK_SAVE, PyMem_RawRealloc(s->copy, cap));
        if (c == NULL) {
            return -1;
        }
        s->copy = c;
        s->capacity = cap;
    }
    memcpy(s->copy + s->saved, s->start + s->saved, need - s->saved);
    s->saved = need;
    return 0;
}

/* Called by platform_switch() on the origin's stack, with the stack pointer
   of its frame.  Saves whatever the target is about to overwrite. */
GREENLET_NOINLINE GREENLET_NO_ASAN static int
stack_save_for_switch(char *stackref, intptr_t *delta)
{
    StackState *target = switch_target;
    StackState *current = switch_origin;

    if (GREENLET_UNLIKELY(forced_failure)) {
        forced_failure = 0;
        return -1;
    }
#ifdef GREENLET_ASAN
    /* The switch takes the origin's frames out of the running stack without
       returning from them, as a longjmp does, and the bytes of suspended
       slices move between the stack and the heap while AddressSanitizer's
       shadow keeps the redzone poison of whichever frames were there last.
       Stale poison gives false reports (the runtime's memcpy check in
       save_up_to, or interpreter code handing a stack buffer to an
       intercepted libc call).  So, as compilers do before a longjmp, tell
       the runtime from this deepest point of the origin to unpoison the
       thread's stack above it. */
    __asan_handle_no_return();
#endif
    if (current->start == NULL) {
        /* The origin has finished: its slice is garbage and needs no copy. */
        current = current->prev;
    }
    else {
        current->start = stackref;
    }
    StackState *owner = current;
    /* Slices wholly inside the region the target needs go to the heap... */
    while (below(owner->stop, target->stop)) {
        if (save_up_to(owner, owner->stop) < 0) {
            return -1;
        }
        owner = owner->prev;
    }
    /* ...and the one straddling the target's upper bound goes in part. */
    if (owner != target && save_up_to(owner, target->stop) < 0) {
        return -1;
    }
    if (target->start == NULL) {
        /* A new greenlet: it starts right here, below 'stop'. */
        target->prev = owner;
        return 1;
    }
    *delta = target->start - stackref;
    return 0;
}

/* Called by platform_switch() after the stack pointer has moved into the
   target's slice: bring its bytes back and relink the owner chain. */
GREENLET_NOINLINE GREENLET_NO_ASAN static void
stack_restore_after_switch(void)
{
    StackState *target = switch_target;
    StackState *owner = switch_origin;

    if (target->saved) {
        memcpy(target->start, target->copy, target->saved);
        target->saved = 0;
        if (target->capacity > STACK_KEEP_LIMIT) {
            PyMem_RawFree(target->copy);
            target->copy = NULL;
            target->capacity = 0;
        }
    }
    if (owner->start == NULL) {
        owner = owner->prev;
    }
    while (owner != NULL && !below(target->stop, owner->stop)) {
        owner = owner->prev;
    }
    target->prev = owner;
}

#define GREENLET_WANT_SWITCH
#include "platform/select.h"

int
stack_switch(StackState *origin, StackState *target)
{
    switch_origin = origin;
    switch_target = target;
    return platform_switch();
}

GREENLET_NO_ASAN void
stack_read(const StackState *s, const void *addr, void *out, size_t n)
{
    const char *a = (const char *)addr;
    char *o = (char *)out;
    const char *saved_end = s->start + s->saved;
    if (s->saved && !below(a, s->start) && below(a, saved_end)) {
        size_t from_copy = (size_t)(saved_end - a);
        if (from_copy > n) {
            from_copy = n;
        }
        memcpy(o, s->copy + (a - s->start), from_copy);
        a += from_copy;
        o += from_copy;
        n -= from_copy;
    }
    if (n) {
        memcpy(o, a, n);
    }
}

void
stack_release(StackState *s)
{
    PyMem_RawFree(s->copy);
    s->copy = NULL;
    s->capacity = 0;
    s->saved = 0;
    s->start = NULL;
    s->prev = NULL;
}

void
stack_force_failure(void)
{
    forced_failure = 1;
}
