/*
 * One record per OS thread that uses greenlets: its main greenlet, the
 * current greenlet, its tracer, and greenlets other threads asked it to kill.
 */
#ifndef GREENLET_THREADS_H
#define GREENLET_THREADS_H

#include "greenlet_internal.h"

extern _Thread_local ThreadRec *threads_tls;

ThreadRec *threads_attach(void);

/* The calling thread's record, created (with its main greenlet) on first
   use; NULL with an exception once the interpreter is finalizing. */
static inline ThreadRec *
threads_current(void)
{
    ThreadRec *r = threads_tls;
    if (GREENLET_LIKELY(r != NULL && r->alive)) {
        return r;
    }
    return threads_attach();
}

/* Greenlets released in another thread wait here to be killed in their own. */
int threads_defer_kill(ThreadRec *owner, PyGreenlet *g);
void threads_run_deferred_kills(ThreadRec *rec);

/* A greenlet the cyclic collector found unreachable: it must not run while
   the collection is in progress (the collector's lists live on the C stack
   that running it would swap out), so it is kept on its thread's list and
   killed as soon as the collection is over. */
int threads_kill_after_collection(ThreadRec *owner, PyGreenlet *g);

static inline void
threads_poll(ThreadRec *rec)
{
    if (GREENLET_UNLIKELY(rec->deleteme != NULL)) {
        threads_run_deferred_kills(rec);
    }
}

Py_ssize_t threads_total_main_greenlets(void);
void threads_main_greenlet_gone(void);
int threads_setup(PyObject *module);

#endif
