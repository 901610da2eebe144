/*
 * Stack slicing: every greenlet of a thread runs on the thread's own C
 * stack.  A greenlet owns the slice [start, stop) of it; when another
 * greenlet needs that memory, the overlapping part is copied to the heap and
 * copied back before the owner runs again.
 */
#ifndef GREENLET_STACK_H
#define GREENLET_STACK_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#  define GREENLET_NOINLINE __attribute__((noinline))
#  define GREENLET_NORETURN __attribute__((noreturn))
#  define GREENLET_LIKELY(x) __builtin_expect(!!(x), 1)
#  define GREENLET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define GREENLET_NOINLINE
#  define GREENLET_NORETURN
#  define GREENLET_LIKELY(x) (x)
#  define GREENLET_UNLIKELY(x) (x)
#endif

/* The stack copies read and write memory that the compiler believes belongs
   to other (dead) frames; AddressSanitizer would report every switch as a
   stack-buffer-underflow, so the few functions that move stack bytes are
   exempt from its instrumentation. */
#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define GREENLET_NO_ASAN __attribute__((no_sanitize_address))
#    define GREENLET_ASAN 1
#  endif
#endif
#if !defined(GREENLET_NO_ASAN) && defined(__SANITIZE_ADDRESS__)
#  define GREENLET_NO_ASAN __attribute__((no_sanitize_address))
#  define GREENLET_ASAN 1
#endif
#ifndef GREENLET_NO_ASAN
#  define GREENLET_NO_ASAN
#endif

/* Marks for 'stop': a main greenlet owns everything above its start. */
#define STACK_STOP_MAIN ((char *)(uintptr_t)-1)
/* Marks for 'start' while the owner is the running greenlet: the real value
   is only known when it next switches away. */
#define STACK_START_RUNNING ((char *)1)

typedef struct StackState {
    char *start;        /* lowest address of the live slice; NULL: not active */
    char *stop;         /* upper bound of the slice; NULL: never started */
    char *copy;         /* heap buffer holding the lowest 'saved' bytes */
    size_t saved;       /* bytes of the slice currently on the heap */
    size_t capacity;    /* size of 'copy' (kept between switches) */
    struct StackState *prev;   /* owner of the stack data just above ours */
} StackState;

/* Switch the CPU to 'target'.  'origin' is the running greenlet's state.
   Returns 0 when control comes back to the caller (as whoever is resumed),
   1 when 'target' was never started (the caller goes on as 'target', on
   the same stack; 'target->stop' must already be set), -1 on memory
   failure (nothing moved). */
int stack_switch(StackState *origin, StackState *target);

/* Copy 'n' bytes at 'addr' as they are seen by the suspended owner of
   's' (from its heap copy where the live stack has been reused). */
void stack_read(const StackState *s, const void *addr, void *out, size_t n);

/* Forget the saved slice (the greenlet is dead or abandoned). */
void stack_release(StackState *s);

/* Test hook: make the next low-level switch report failure. */
void stack_force_failure(void);

#endif
