/*
 * Test-only fault injection: make one allocation of the switch, start,
 * finish, tracer, thread-record, frame and spawn-site paths fail, to prove
 * each failure becomes a Python exception.  Armed from Python through
 * greenlet._greenlet._inject_fault(); when nothing is armed a check costs
 * one load and a predictable branch, and the checks sit next to
 * allocations, off the fast switch path.
 *
 * The state is process-global on purpose: a test arms a point, runs the
 * code under test, and disarms it, all with the GIL held.
 */
#ifndef GREENLET_FAULTS_H
#define GREENLET_FAULTS_H

#include <Python.h>
#include "stack.h"

enum {
    FAULT_NONE = 0,
    FAULT_STACK_SAVE,       /* growing a greenlet's heap copy of its stack */
    FAULT_ROOT_CHUNK,       /* a new greenlet's first data-stack chunk */
    FAULT_THREAD_RECORD,    /* a thread's record, on its first use */
    FAULT_GREENLET_ALLOC,   /* a greenlet's implementation struct */
    FAULT_SWITCH_RESULT,    /* packing (args, kwargs) for the receiver */
    FAULT_TRACER_ARGS,      /* the (origin, target) pair for a tracer */
    FAULT_FINISH_RESULT,    /* packing run()'s result for the parent */
    FAULT_FRAME_EXPOSURE,   /* 3.12+: the table of relinked frames */
    FAULT_SPAWN_SITE,       /* recording a spawn site */
    FAULT_DEFERRED_KILL,    /* the list of greenlets a thread must kill */
    FAULT_COUNT
};

extern int faults_armed;        /* the armed point, or FAULT_NONE */

/* The armed point was reached: 1 if this is the time it must fail. */
int faults_fire(void);

static inline int
fault_here(int point)
{
    return GREENLET_UNLIKELY(faults_armed == point) && faults_fire();
}

/* An allocation that fails (evaluates to NULL) when 'point' fires. */
#define FAULT_ALLOC(point, expr) (fault_here(point) ? NULL : (expr))

/* Module functions _inject_fault() and _fault_points(). */
int faults_setup(PyObject *module);

#endif
