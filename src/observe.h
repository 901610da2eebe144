/*
 * The observation layer: ids, the registry of live greenlets, per-greenlet
 * counters, spawn sites and switch-event logs.
 *
 * The switch path calls observe_arrive() once per transfer of control; with
 * no log active it is a clock read, a few adds and one predictable branch.
 */
#ifndef GREENLET_OBSERVE_H
#define GREENLET_OBSERVE_H

#include "greenlet_internal.h"
#include "platform/select.h"

extern int observe_active_logs;      /* number of SwitchLogs recording */
/* Nonzero when a switch has more to do than count: run-time accounting is
   on (bit 0) or a SwitchLog records (bit 1).  One test on the fast path. */
extern int observe_switch_work;
extern int observe_spawn_depth;      /* 0: spawn tracking off */

static inline uint64_t
observe_ticks(void)
{
    return platform_ticks();
}

void observe_log_event(int kind, GreenletImpl *origin, GreenletImpl *target, uint64_t now);
void observe_arrive_slow(GreenletImpl *origin, GreenletImpl *target, int kind);

/*
 * GREENLET_NO_OBSERVE (benchmark-only build, GREENLET_CFLAGS=-DGREENLET_NO_OBSERVE):
 * compiles the per-switch and per-creation bookkeeping out, so the benchmark
 * suite can measure what the observation layer costs when it is off.  The
 * observation API still exists in such a build but its counters stay at zero
 * and all_greenlets() is empty; never ship it.
 */

/* Control has just moved from 'origin' to 'target' (now running) on the
   calling thread.  'origin' may be the same as 'target' for a kill whose
   victim was resumed by its own thread. */
static inline void
observe_arrive(GreenletImpl *origin, GreenletImpl *target, int kind)
{
#ifdef GREENLET_NO_OBSERVE
    (void)origin;
    (void)target;
    (void)kind;
#else
    target->switches++;
    if (GREENLET_UNLIKELY(observe_switch_work)) {
        observe_arrive_slow(origin, target, kind);
    }
#endif
}

/* Registry: called from tp_new / tp_dealloc. */
void observe_register(GreenletImpl *g);
void observe_unregister(GreenletImpl *g);

/* Spawn site of a greenlet being created by the running code. */
int observe_capture_spawn(GreenletImpl *g);
void observe_free_spawn(GreenletImpl *g);
PyObject *observe_spawn_site(GreenletImpl *g);

/* Counters as Python sees them. */
PyObject *observe_run_ns(GreenletImpl *g);

/* A thread record is going away: close its running greenlet's time slice. */
void observe_thread_exit(ThreadRec *rec);

int observe_setup(PyObject *module);

#endif
