/*
 * The part of the interpreter's thread state that belongs to one greenlet.
 *
 * This header and pystate.c are the only places that know how CPython
 * versions differ.  Everything else goes through the functions below.
 */
#ifndef GREENLET_PYSTATE_H
#define GREENLET_PYSTATE_H

#include <Python.h>
#include "stack.h"

#if PY_VERSION_HEX < 0x030A0000
#  error "greenlet needs CPython 3.10 or newer"
#endif

/* Storage the interpreter needs on a new greenlet's own C stack (its root
   CFrame on 3.10-3.12); pystate_start() links it into the thread state. */
typedef struct {
#if PY_VERSION_HEX < 0x030B0000
    CFrame cframe;
#elif PY_VERSION_HEX < 0x030D0000
    _PyCFrame cframe;
#else
    char unused;
#endif
} PyStateRoot;

struct PyStateExposure;

typedef struct PyStateSaved {
    PyObject *context;              /* strong */
    _PyErr_StackItem *exc_info;     /* NULL means the thread's base item */
#if PY_VERSION_HEX < 0x030B0000
    PyObject *exc_type, *exc_value, *exc_traceback;   /* strong */
    PyFrameObject *frame;           /* borrowed: owned by the suspended C stack */
    CFrame *cframe;
    int recursion_depth;
    int trash_delete_nesting;
#else
    PyObject *exc_value;            /* strong */
    struct _PyInterpreterFrame *frame;   /* top interpreter frame */
    int py_recursion_depth;
#  if PY_VERSION_HEX < 0x030D0000
    _PyCFrame *cframe;
    int trash_delete_nesting;
#  endif
#  if PY_VERSION_HEX >= 0x030C0000
    int c_recursion_remaining;
#  endif
#  if PY_VERSION_HEX >= 0x030D0000
    uintptr_t critical_section;
#  endif
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyStackChunk *root_chunk;      /* our own first chunk, see pystate.c */
    struct PyStateExposure *exposure;   /* 3.12+: frames relinked for gr_frame */
#endif
} PyStateSaved;

/* Once per process, at module import. */
void pystate_setup(void);

/* Switching out of / into the greenlet owning 's' on thread state 'ts'. */
void pystate_save(PyStateSaved *s, PyThreadState *ts);
void pystate_restore(PyStateSaved *s, PyThreadState *ts);

/* Before a greenlet's first switch: allocate what it will need, so that
   starting cannot fail once the stack has moved.  -1 with MemoryError. */
int pystate_prepare(PyStateSaved *s);

/* First entry into a new greenlet, called on its own stack; 'root' must
   live as long as the greenlet runs. */
void pystate_start(PyStateSaved *s, PyThreadState *ts, PyStateRoot *root);

/* The greenlet owning 's' has returned from run() and is the current one:
   give back its interpreter data stack before it switches away. */
void pystate_finish(PyStateSaved *s, PyThreadState *ts);

/* The greenlet will never run again but did not finish (its thread is gone,
   or the interpreter is finalizing): drop what it owns without running any
   of its code. */
void pystate_abandon(PyStateSaved *s, const StackState *stack);

/* The thread is going away while a greenlet other than its main one is
   current: save that one's state and put the main greenlet's back, so the
   interpreter tears down the state (and data stack) it created itself. */
void pystate_detach_thread(PyThreadState *ts, PyStateSaved *current_saved,
                           PyStateSaved *main_saved);

/* A new reference to the top frame of a suspended greenlet, or None.
   'stack' is the greenlet's stack state, used to read frames that sit on
   its (possibly saved) C stack. */
PyObject *pystate_top_frame(PyStateSaved *s, const StackState *stack);

/* "file:line in function" for a frame object; NULL (no error set) for
   anything else. */
PyObject *pystate_frame_location(PyObject *frame);

/* The current frame of the running greenlet ('ts' must be current). */
PyObject *pystate_current_frame(PyThreadState *ts);

/* Code objects and instruction offsets of the innermost 'depth' frames
   running in 'ts'; returns how many were stored (new references). */
int pystate_capture_stack(PyThreadState *ts, int depth, PyObject **codes, int *offsets);

int pystate_traverse(PyStateSaved *s, visitproc visit, void *arg);

/* Visit what the frames of a suspended (non-main) greenlet own, so that the
   cyclic collector can find a greenlet kept alive only by its own frames.
   Only frames the greenlet owns alone are visited: generator frames and
   frames whose frame object someone else holds are skipped, which keeps
   those greenlets alive (never the other way round). */
int pystate_traverse_frames(PyStateSaved *s, const StackState *stack,
                            visitproc visit, void *arg);
void pystate_clear(PyStateSaved *s);

/* Context of the running greenlet. */
PyObject *pystate_get_context(PyThreadState *ts);     /* borrowed */
void pystate_set_context(PyThreadState *ts, PyObject *ctx);   /* steals */

/* Tracing state around a greenlet trace callback. */
void pystate_enter_tracing(PyThreadState *ts);
void pystate_leave_tracing(PyThreadState *ts);

int pystate_is_finalizing(void);

#if PY_VERSION_HEX < 0x030D0000
int pystate_trash_delete_nesting(PyThreadState *ts);
#endif

#endif
