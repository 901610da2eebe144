/*
 * Definitions shared by the C files of the extension (not installed).
 */
#ifndef GREENLET_INTERNAL_H
#define GREENLET_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define GREENLET_MODULE
struct GreenletImpl;
#define implementation_ptr_t struct GreenletImpl *
#include "greenlet.h"

#include "stack.h"
#include "pystate.h"

typedef struct ThreadRec ThreadRec;
typedef struct SpawnSite SpawnSite;

/* What a greenlet object points to (PyGreenlet.pimpl).  Kept out of the
   object itself because the object's layout is frozen by the ABI. */
typedef struct GreenletImpl {
    PyGreenlet *self;           /* back pointer, borrowed */
    StackState stack;
    PyStateSaved py;
    PyObject *run;              /* the callable until run() ends */
    PyGreenlet *parent;         /* strong; NULL for main greenlets */
    PyGreenlet *main;           /* strong: main greenlet of its thread, once started */
    ThreadRec *thread;          /* main greenlets: their thread while it lives */
    unsigned long thread_id;    /* ident of its thread, once started */
    unsigned char is_main;
    unsigned char force_switch_error;     /* UnswitchableGreenlet test hooks */
    unsigned char force_slp_switch_error;
    /* observation */
    uint64_t id;
    struct GreenletImpl *reg_prev, *reg_next;
    uint64_t switches;
    uint64_t run_ticks;
    uint64_t slice_start;
    PyObject *name;
    SpawnSite *spawn;
} GreenletImpl;

/* Per-thread record: created when the thread first uses greenlets,
   released when its thread state is cleared. */
struct ThreadRec {
    PyGreenlet *main;           /* strong */
    PyGreenlet *current;        /* strong */
    PyObject *tracer;           /* strong, or NULL */
    PyObject *deleteme;         /* list of greenlets released by other threads */
    PyThreadState *tstate;
    unsigned long ident;
    int alive;
    /* The switch in flight: set before the stack moves, read after. */
    PyGreenlet *switch_from;    /* strong: the greenlet control came from */
    PyObject *pass_args;        /* strong; NULL when an exception travels */
    PyObject *pass_kwargs;      /* strong or NULL */
    int switch_kind;
};

/* Kinds of control transfer; also the kinds of switch-log events. */
enum {
    SWITCH_KIND_SWITCH = 0,
    SWITCH_KIND_THROW = 1,
    SWITCH_KIND_START = 2,
    SWITCH_KIND_FINISH = 3,
    SWITCH_KIND_KILL = 4,
    SWITCH_KIND_COUNT
};

extern PyTypeObject PyGreenlet_Type;
extern PyTypeObject PyGreenletUnswitchable_Type;
extern PyObject *PyExc_GreenletError;
extern PyObject *PyExc_GreenletExit;

#define GREENLET_IMPL(g) (((PyGreenlet *)(g))->pimpl)

static inline int
greenlet_is_started(const GreenletImpl *g)
{
    return g->stack.stop != NULL;
}

static inline int
greenlet_is_active(const GreenletImpl *g)
{
    return g->stack.start != NULL;
}

/* The main greenlet of the thread a started greenlet belongs to. */
static inline PyGreenlet *
greenlet_main_of(GreenletImpl *g)
{
    return g->is_main ? g->self : g->main;
}

/* Its thread record, or NULL if unstarted or its thread has exited. */
static inline ThreadRec *
greenlet_thread_of(GreenletImpl *g)
{
    PyGreenlet *m = greenlet_main_of(g);
    return m ? m->pimpl->thread : NULL;
}

/* Started, and its thread has gone away. */
static inline int
greenlet_thread_exited(GreenletImpl *g)
{
    PyGreenlet *m = greenlet_main_of(g);
    return m != NULL && m->pimpl->thread == NULL;
}

/* greenlet_type.c */
PyGreenlet *greenlet_new_main(ThreadRec *rec);
int greenlet_set_parent(PyGreenlet *self, PyObject *value);
int greenlet_setup_types(PyObject *module);

/* switch.c */
PyObject *greenlet_switch(GreenletImpl *target, PyObject *args, PyObject *kwargs);
PyObject *greenlet_throw(GreenletImpl *target, PyObject *typ, PyObject *val, PyObject *tb);
void greenlet_kill(ThreadRec *rec, GreenletImpl *g);
PyGreenlet *greenlet_lineage_main(GreenletImpl *g);

#endif
