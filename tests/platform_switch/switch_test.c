/*
 * C-level test of the stack-switch primitive, without Python.
 *
 * It compiles the real src/stack.c (which includes the register-switching
 * header that src/platform/select.h picks for the target CPU) together with
 * a tiny greenlet runtime: greenlets with parents, started lazily by the
 * first switch into them, finishing into their first live ancestor, exactly
 * the way src/switch.c drives stack_switch().  Each scenario runs NG
 * greenlets that recurse to a random depth, then hop between each other
 * (and the main greenlet) from random extra depths, and starts unstarted
 * ones from wherever they happen to be, so stack slices overlap in every
 * way: wholly saved, partly saved, started on top of a dead greenlet's
 * stack.  After every switch, the resumed greenlet checks
 *   - that it is the greenlet the switch was meant to reach,
 *   - that every word of every one of its frames is intact,
 *   - that values held across the switch in callee-saved general and
 *     floating-point registers (or wherever the compiler keeps them) are
 *     intact,
 *   - that its own floating-point rounding mode is in force (the platform
 *     header saves and restores the FP control register per greenlet).
 * Exit status 0 and a line "ok: ..." on success; 1 and a message otherwise.
 *
 *   cc -O2 -I tests/platform_switch/shim -I src tests/platform_switch/switch_test.c
 *
 * (the shim directory supplies a <Python.h> that maps PyMem_Raw* to libc).
 */
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.c"

/* src/faults.h (test-only fault injection of the extension): never armed
   here. */
int faults_armed = 0;
int faults_fire(void) { return 0; }

#define NG 8             /* greenlets per scenario, besides main */
#define FRAME_WORDS 40   /* checked words in each frame */
#define MAX_FRAMES 1024

typedef struct G {
    StackState st;
    int id;
    int dead;
    int rounds;          /* hops before run() returns */
    int depth;           /* recursion before the first hop */
    int round_mode;      /* the FE_* rounding mode it runs under */
    struct G *parent;
    /* Its checked frames: pointers into its own stack, valid while it runs. */
    volatile long *frames[MAX_FRAMES];
    long frame_seed[MAX_FRAMES];
    int nframes;
} G;

static G main_g;
static G gs[NG];
static G *current;
static G *volatile intended;   /* where the switch in flight must arrive */
static unsigned long long rng;
static long total_switches, total_starts, total_frames_checked;
static int max_depth_seen;
static const int round_modes[4] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};

static void
fail(const char *what, long a, long b)
{
    fprintf(stderr, "FAIL: %s (%ld, %ld) after %ld switches\n", what, a, b, total_switches);
    fflush(stderr);
    _Exit(1);
}

static unsigned long
next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned long)(rng >> 11);
}

static long
pattern(long seed, int w)
{
    unsigned long x = (unsigned long)seed * 0x9E3779B97F4A7C15UL + (unsigned long)w * 0xBF58476D1CE4E5B9UL;
    return (long)(x ^ (x >> 29));
}

static void
verify_frames(G *self)
{
    for (int i = 0; i < self->nframes; i++) {
        for (int w = 0; w < FRAME_WORDS; w++) {
            if (self->frames[i][w] != pattern(self->frame_seed[i], w)) {
                fail("frame word changed", self->id, (long)i * 1000 + w);
            }
        }
        total_frames_checked++;
    }
}

static GREENLET_NORETURN void bootstrap(G *self);

/* First switch into 'target': it will own the stack below 'marker', which
   lies in the caller's frame. */
static GREENLET_NOINLINE int
start_it(G *target, char *marker)
{
    target->st.stop = marker;
    target->st.start = NULL;
    int err = stack_switch(&current->st, &target->st);
    if (err == 1) {
        bootstrap(target);
    }
    return err;
}

/* Switch to 'target' (started or not); returns when this greenlet runs again. */
static GREENLET_NOINLINE void
gswitch(G *target)
{
    char marker;
    G *origin = current;
    int err;

    intended = target;
    total_switches++;
    if (target->st.stop == NULL) {
        total_starts++;
        err = start_it(target, &marker);
    }
    else {
        err = stack_switch(&origin->st, &target->st);
    }
    if (err != 0) {
        fail("stack_switch did not report a completed switch", err, 0);
    }
    /* 'origin' is read from the resumed greenlet's own frame. */
    if (origin != intended) {
        fail("resumed the wrong greenlet", origin->id, intended->id);
    }
    current = origin;
}

#if defined(__aarch64__)
#  define OPAQUE_L(v) __asm__ __volatile__("" : "+r"(v))
#  define OPAQUE_D(v) __asm__ __volatile__("" : "+w"(v))
#elif defined(__x86_64__)
#  define OPAQUE_L(v) __asm__ __volatile__("" : "+r"(v))
#  define OPAQUE_D(v) __asm__ __volatile__("" : "+x"(v))
#else
#  define OPAQUE_L(v) __asm__ __volatile__("" : "+r"(v))
#  define OPAQUE_D(v) __asm__ __volatile__("" : "+r"(v))
#endif

/* Many integer and floating-point values live across the switch: the
   compiler keeps them in callee-saved registers (x19-x28 / d8-d15 on
   AArch64, rbx/r12-r15 on x86-64) or spills them; either way they must come
   back. */
static GREENLET_NOINLINE void
switch_and_check(G *self, G *target, long seed)
{
    long r0 = seed ^ 0x1111, r1 = seed * 3, r2 = seed + 7, r3 = ~seed;
    long r4 = seed * 5 + 1, r5 = seed ^ 0x5555, r6 = seed - 99, r7 = seed * 11;
    long r8 = seed ^ 0x7777, r9 = seed * 13 + 2, r10 = seed + 1234, r11 = seed * 17;
    double d0 = (double)seed * 0.5, d1 = (double)seed + 0.25, d2 = (double)seed * 3.0;
    double d3 = (double)seed - 0.75, d4 = (double)seed * 7.0, d5 = (double)seed + 9.5;
    double d6 = (double)seed * 0.125, d7 = (double)seed - 100.0;
    OPAQUE_L(r0); OPAQUE_L(r1); OPAQUE_L(r2); OPAQUE_L(r3); OPAQUE_L(r4); OPAQUE_L(r5);
    OPAQUE_L(r6); OPAQUE_L(r7); OPAQUE_L(r8); OPAQUE_L(r9); OPAQUE_L(r10); OPAQUE_L(r11);
    OPAQUE_D(d0); OPAQUE_D(d1); OPAQUE_D(d2); OPAQUE_D(d3);
    OPAQUE_D(d4); OPAQUE_D(d5); OPAQUE_D(d6); OPAQUE_D(d7);

    gswitch(target);

    if (r0 != (seed ^ 0x1111) || r1 != seed * 3 || r2 != seed + 7 || r3 != ~seed
        || r4 != seed * 5 + 1 || r5 != (seed ^ 0x5555) || r6 != seed - 99 || r7 != seed * 11
        || r8 != (seed ^ 0x7777) || r9 != seed * 13 + 2 || r10 != seed + 1234 || r11 != seed * 17) {
        fail("integer value held across the switch changed", self->id, seed);
    }
    if (d0 != (double)seed * 0.5 || d1 != (double)seed + 0.25 || d2 != (double)seed * 3.0
        || d3 != (double)seed - 0.75 || d4 != (double)seed * 7.0 || d5 != (double)seed + 9.5
        || d6 != (double)seed * 0.125 || d7 != (double)seed - 100.0) {
        fail("floating-point value held across the switch changed", self->id, seed);
    }
    if (fegetround() != self->round_mode) {
        fail("rounding mode not restored", self->id, fegetround());
    }
    verify_frames(self);
}

static int
alive_count(void)
{
    int n = 0;
    for (int i = 0; i < NG; i++) {
        n += !gs[i].dead;
    }
    return n;
}

/* A random live greenlet other than 'self' (main included for children). */
static G *
pick_target(G *self)
{
    G *choices[NG + 1];
    int n = 0;
    if (self != &main_g) {
        choices[n++] = &main_g;
    }
    for (int i = 0; i < NG; i++) {
        if (&gs[i] != self && !gs[i].dead) {
            choices[n++] = &gs[i];
        }
    }
    if (n == 0) {
        return NULL;
    }
    return choices[next_random() % (unsigned long)n];
}

enum leaf { LEAF_WORK, LEAF_HOP };

static void work(G *self);

/* Recurse 'level' frames, each holding FRAME_WORDS checked words, then do
   the leaf action; every frame checks itself again on the way out. */
static GREENLET_NOINLINE long
descend(G *self, int level, long seed, enum leaf leaf)
{
    volatile long buf[FRAME_WORDS];
    for (int w = 0; w < FRAME_WORDS; w++) {
        buf[w] = pattern(seed, w);
    }
    if (self->nframes >= MAX_FRAMES) {
        fail("too many frames", self->id, level);
    }
    self->frames[self->nframes] = buf;
    self->frame_seed[self->nframes] = seed;
    self->nframes++;
    if (self->nframes > max_depth_seen) {
        max_depth_seen = self->nframes;
    }

    if (level > 0) {
        descend(self, level - 1, seed * 31 + level, leaf);
    }
    else if (leaf == LEAF_HOP) {
        G *target = pick_target(self);
        if (target != NULL) {
            switch_and_check(self, target, (long)next_random());
        }
    }
    else {
        work(self);
    }

    for (int w = 0; w < FRAME_WORDS; w++) {
        if (buf[w] != pattern(seed, w)) {
            fail("frame word changed (on return)", self->id, w);
        }
    }
    self->nframes--;
    return buf[level % FRAME_WORDS];
}

static void
work(G *self)
{
    if (self == &main_g) {
        while (alive_count() > 0) {
            int depth = (int)(next_random() % 24);
            descend(self, depth, (long)next_random(), LEAF_HOP);
        }
        return;
    }
    for (int r = 0; r < self->rounds; r++) {
        int depth = (int)(next_random() % 48);
        descend(self, depth, (long)next_random(), LEAF_HOP);
    }
}

static GREENLET_NORETURN void
bootstrap(G *self)
{
    if (self != intended) {
        fail("started the wrong greenlet", self->id, intended->id);
    }
    self->st.start = STACK_START_RUNNING;
    current = self;
    fesetround(self->round_mode);
    descend(self, self->depth, (long)self->id * 1000003L, LEAF_WORK);
    if (self->nframes != 0) {
        fail("frames left behind", self->id, self->nframes);
    }
    self->dead = 1;
    self->st.start = NULL;   /* its stack is garbage from now on */
    G *p = self->parent;
    while (p->dead) {
        p = p->parent;
    }
    gswitch(p);
    fail("a finished greenlet was resumed", self->id, 0);
    abort();
}

static void
scenario(unsigned long long seed)
{
    rng = seed * 2654435761ULL + 1;
    for (int i = 0; i < NG; i++) {
        G *g = &gs[i];
        stack_release(&g->st);
        memset(g, 0, sizeof(*g));
        g->id = i + 1;
        g->rounds = 5 + (int)(next_random() % 60);
        g->depth = (int)(next_random() % 200);
        g->round_mode = round_modes[next_random() % 4];
        /* Parents: main or an earlier greenlet, so finishing walks chains
           that may hold dead and unstarted greenlets. */
        g->parent = (i == 0 || next_random() % 3 == 0) ? &main_g : &gs[next_random() % (unsigned long)i];
    }
    int depth = (int)(next_random() % 64);
    descend(&main_g, depth, (long)seed, LEAF_WORK);
    if (main_g.nframes != 0 || current != &main_g) {
        fail("main did not come back cleanly", main_g.nframes, current->id);
    }
}

int
main(int argc, char **argv)
{
    int scenarios = argc > 1 ? atoi(argv[1]) : 40;
    main_g.id = 0;
    main_g.st.start = STACK_START_RUNNING;
    main_g.st.stop = STACK_STOP_MAIN;
    main_g.round_mode = FE_TONEAREST;
    main_g.parent = NULL;
    current = &main_g;
    fesetround(FE_TONEAREST);

    for (int s = 0; s < scenarios; s++) {
        scenario((unsigned long long)s + 1);
    }
    for (int i = 0; i < NG; i++) {
        stack_release(&gs[i].st);
    }
    stack_release(&main_g.st);
    printf("ok: %s: %d scenarios, %ld switches (%ld starts), %ld frame checks, max depth %d\n",
           GREENLET_PLATFORM_NAME, scenarios, total_switches, total_starts,
           total_frames_checked, max_depth_seen);
    return 0;
}
