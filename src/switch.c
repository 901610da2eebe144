/*
 * The switch protocol: find where control goes, move the stack, deliver the
 * arguments or the exception, start new greenlets and end finished ones.
 *
 * A transfer always has the same shape:
 *   1. the values travel in the thread record (pass_args / pass_kwargs, or
 *      the pending exception when pass_args is NULL);
 *   2. the running greenlet's interpreter state is saved and the C stack is
 *      switched (stack.c);
 *   3. the greenlet that now runs restores its interpreter state, becomes
 *      current, is counted (observe.h), calls the tracer if one is set and
 *      returns the values from its own earlier switch() call.
 * Nothing that lives on the C stack survives step 2, which is why the
 * functions around it are never inlined.
 */
#include "greenlet_internal.h"
#include "faults.h"
#include "threads.h"
#include "observe.h"

static PyObject *str_run;
static PyObject *str_switch;
static PyObject *str_throw;

static const char KILL_MESSAGE[] = "Killing the greenlet because all references have vanished.";

static PyObject *switch_to(ThreadRec *rec, GreenletImpl *target, PyObject *args,
                           PyObject *kwargs, int kind);

PyGreenlet *
greenlet_lineage_main(GreenletImpl *g)
{
    for (GreenletImpl *p = g; p != NULL; p = p->parent ? p->parent->pimpl : NULL) {
        if (p->is_main) {
            return p->self;
        }
        if (p->main != NULL) {
            return p->main;
        }
    }
    return NULL;
}

static int
check_same_thread(ThreadRec *rec, GreenletImpl *target)
{
    PyGreenlet *m = greenlet_lineage_main(target);
    if (GREENLET_LIKELY(m == rec->main)) {
        return 0;
    }
    if (m == NULL) {
        PyErr_SetString(PyExc_GreenletError, "cannot switch to a garbage collected greenlet");
    }
    else if (m->pimpl->thread == NULL) {
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a different thread (which happens to have exited)");
    }
    else {
        PyErr_Format(PyExc_GreenletError,
                     "Cannot switch to a different thread\n\tCurrent:  %R\n\tExpected: %R",
                     rec->current, m);
    }
    return -1;
}

/* The values a resumed switch() returns: args alone, kwargs alone, or
   (args, kwargs); a 1-tuple is unwrapped.  Steals both references. */
static PyObject *
pack_result(PyObject *args, PyObject *kwargs)
{
    if (args == NULL) {
        Py_XDECREF(kwargs);
        return NULL;
    }
    if (kwargs != NULL && PyDict_Check(kwargs) && PyDict_GET_SIZE(kwargs) == 0) {
        Py_CLEAR(kwargs);
    }
    if (kwargs == NULL) {
        if (PyTuple_Check(args) && PyTuple_GET_SIZE(args) == 1) {
            PyObject *item = PyTuple_GET_ITEM(args, 0);
            Py_INCREF(item);
            Py_DECREF(args);
            return item;
        }
        return args;
    }
    if (PyTuple_Check(args) && PyTuple_GET_SIZE(args) == 0) {
        Py_DECREF(args);
        return kwargs;
    }
    PyObject *both = FAULT_ALLOC(FAULT_SWITCH_RESULT, PyTuple_Pack(2, args, kwargs));
    if (both == NULL && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    Py_DECREF(args);
    Py_DECREF(kwargs);
    return both;
}

/* Call the thread's greenlet tracer as callback(event, (origin, target)).
   The exception being delivered (if any) is kept aside during the call.
   If the tracer fails it is removed and its exception replaces whatever
   was being delivered: -1. */
static int
call_tracer(ThreadRec *rec, PyGreenlet *origin, PyGreenlet *target, int throwing)
{
    PyObject *tracer = rec->tracer;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    Py_INCREF(tracer);
    pystate_enter_tracing(rec->tstate);
    PyObject *pair = FAULT_ALLOC(FAULT_TRACER_ARGS,
                                 PyTuple_Pack(2, (PyObject *)origin, (PyObject *)target));
    if (pair == NULL && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    PyObject *r = NULL;
    if (pair != NULL) {
        r = PyObject_CallFunctionObjArgs(tracer, throwing ? str_throw : str_switch, pair, NULL);
        Py_DECREF(pair);
    }
    pystate_leave_tracing(rec->tstate);
    Py_DECREF(tracer);
    if (r == NULL) {
        Py_CLEAR(rec->tracer);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return -1;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return 0;
}

/* Step 3 for a greenlet that has just been resumed (or started). */
static inline void
arrive(ThreadRec *rec, GreenletImpl *me)
{
    GreenletImpl *from = rec->switch_from->pimpl;
    Py_INCREF(me->self);
    rec->current = me->self;    /* the previous reference is in switch_from */
    observe_arrive(from, me, rec->switch_kind);
}

/* Step 3, second half, back in the caller of switch_to(): fetch the
   values, call the tracer, let go of the origin. */
static PyObject *
take_delivery(ThreadRec *rec)
{
    PyObject *args = rec->pass_args;
    PyObject *kwargs = rec->pass_kwargs;
    PyGreenlet *origin = rec->switch_from;
    rec->pass_args = NULL;
    rec->pass_kwargs = NULL;
    rec->switch_from = NULL;
    if (rec->tracer != NULL
        && call_tracer(rec, origin, rec->current, args == NULL) < 0) {
        Py_CLEAR(args);
        Py_CLEAR(kwargs);
    }
    Py_XDECREF(origin);
    return pack_result(args, kwargs);
}

/* Switch to a greenlet that has run before.  Returns 0 once this greenlet
   is resumed, -1 (nothing moved) on failure. */
static GREENLET_NOINLINE int
switch_stacks(ThreadRec *rec, GreenletImpl *target, int kind)
{
    PyThreadState *ts = rec->tstate;
    GreenletImpl *origin = rec->current->pimpl;

    pystate_save(&origin->py, ts);
    rec->switch_from = rec->current;
    rec->switch_kind = kind;
    if (GREENLET_UNLIKELY(target->force_slp_switch_error)) {
        stack_force_failure();
    }
    int err = stack_switch(&origin->stack, &target->stack);
    if (GREENLET_UNLIKELY(err < 0)) {
        if (target->force_slp_switch_error) {
            Py_FatalError("greenlet: the low-level stack switch failed");
        }
        pystate_restore(&origin->py, ts);
        rec->switch_from = NULL;
        PyErr_NoMemory();
        return -1;
    }
    /* 'origin' in this frame is the greenlet that called us earlier: the
       one being resumed now. */
    pystate_restore(&origin->py, ts);
    arrive(rec, origin);
    return 0;
}

/* The pending GreenletExit, taken as the value a finishing greenlet hands
   on: the bare instance (see greenlet_finish()).  A new reference. */
static PyObject *
greenlet_exit_as_value(void)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    Py_XDECREF(et);
    Py_XDECREF(etb);
    return ev ? ev : Py_NewRef(Py_None);
}

static GREENLET_NORETURN void greenlet_finish(ThreadRec *rec, GreenletImpl *self, PyObject *result);

/* Runs as the new greenlet, on the stack just below where it was started;
   never returns. */
static GREENLET_NOINLINE GREENLET_NORETURN void
greenlet_bootstrap(ThreadRec *rec, GreenletImpl *self)
{
    PyStateRoot root;   /* lives as long as this greenlet runs */

    pystate_start(&self->py, rec->tstate, &root);
    self->stack.start = STACK_START_RUNNING;
    arrive(rec, self);

    PyObject *args = rec->pass_args;
    PyObject *kwargs = rec->pass_kwargs;
    PyGreenlet *origin = rec->switch_from;
    rec->pass_args = NULL;
    rec->pass_kwargs = NULL;
    rec->switch_from = NULL;
    if (rec->tracer != NULL && call_tracer(rec, origin, self->self, args == NULL) < 0) {
        Py_CLEAR(args);
        Py_CLEAR(kwargs);
    }
    Py_XDECREF(origin);

    PyObject *result = NULL;
    if (args != NULL && self->run != NULL) {
        /* Borrowed: self->run stays set until greenlet_finish() (it cannot
           be replaced once started, nor cleared while the greenlet can
           run), and the collector sees it there.  A reference of our own
           here would hide cycles through run from the collector, such as a
           bound method of the greenlet itself. */
        PyObject *run = self->run;
        if (kwargs != NULL && !PyDict_Check(kwargs)) {
            Py_CLEAR(kwargs);
        }
        if (!PyTuple_Check(args)) {
            /* A GreenletExit handed on by a child: start with no arguments. */
            Py_SETREF(args, PyTuple_New(0));
        }
        result = args ? PyObject_Call(run, args, kwargs) : NULL;
    }
    else if (args != NULL) {
        PyErr_SetString(PyExc_AttributeError, "run");
        Py_CLEAR(args);
    }
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    greenlet_finish(rec, self, result);
}

/* run() has returned (result) or raised (NULL): the greenlet is dead.  Its
   result goes to the first live ancestor, starting unstarted ones; if a
   switch fails, that error goes up instead. */
static GREENLET_NORETURN void
greenlet_finish(ThreadRec *rec, GreenletImpl *self, PyObject *result)
{
    /* The values for the parent: (result,), or -- when run() ended with
       GreenletExit -- the exception instance itself, not in a tuple, which a
       suspended parent's switch() returns as it is and an unstarted parent
       takes as "no arguments". */
    PyObject *args = NULL;
    if (result == NULL && PyErr_ExceptionMatches(PyExc_GreenletExit)) {
        args = greenlet_exit_as_value();
    }
    else if (result != NULL) {
        args = FAULT_ALLOC(FAULT_FINISH_RESULT, PyTuple_Pack(1, result));
        if (args == NULL && !PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        Py_DECREF(result);
    }
    Py_CLEAR(self->run);
    pystate_finish(&self->py, rec->tstate);
    self->stack.start = NULL;   /* dead: nothing of our stack is worth saving */

    GreenletImpl *p = self->parent ? self->parent->pimpl : NULL;
    while (p != NULL) {
        PyObject *r = switch_to(rec, p, args, NULL, SWITCH_KIND_FINISH);
        /* Only a failed switch comes back here. */
        Py_XDECREF(r);
        args = NULL;
        p = p->parent ? p->parent->pimpl : NULL;
    }
    Py_FatalError("greenlet: a finished greenlet has no parent to return to");
}

/* First switch into 'target'.  'marker' lies in the caller's frame: the new
   greenlet owns the stack below it.  0 once the caller is resumed, 1 if the
   greenlet was started by someone else meanwhile (switch again), -1 on
   failure (nothing moved). */
static GREENLET_NOINLINE int
start_greenlet(ThreadRec *rec, GreenletImpl *target, char *marker)
{
    /* run is looked up even when an exception is thrown in (it is then
       never called).  The lookup may run any code, even switches: the
       values in flight are kept aside meanwhile. */
    PyObject *args = rec->pass_args;
    PyObject *kwargs = rec->pass_kwargs;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    rec->pass_args = NULL;
    rec->pass_kwargs = NULL;
    if (args == NULL) {
        PyErr_Fetch(&et, &ev, &etb);
    }
    PyObject *run = PyObject_GetAttr((PyObject *)target->self, str_run);
    rec->pass_args = args;
    rec->pass_kwargs = kwargs;
    if (run == NULL) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return -1;
    }
    if (args == NULL) {
        PyErr_Restore(et, ev, etb);
    }
    if (greenlet_is_started(target)) {
        Py_DECREF(run);
        return 1;
    }
    if (pystate_prepare(&target->py) < 0) {
        Py_DECREF(run);
        return -1;
    }
    Py_XSETREF(target->run, run);

    PyThreadState *ts = rec->tstate;
    GreenletImpl *origin = rec->current->pimpl;
    target->stack.stop = marker;
    target->stack.start = NULL;
    target->thread_id = rec->ident;
    Py_INCREF(rec->main);
    Py_XSETREF(target->main, rec->main);

    if (GREENLET_UNLIKELY(observe_active_logs) && origin->stack.start == NULL) {
        /* A finished greenlet starting its parent: its end is an event too. */
        observe_log_event(SWITCH_KIND_FINISH, origin, target, observe_ticks());
    }
    pystate_save(&origin->py, ts);
    rec->switch_from = rec->current;
    rec->switch_kind = SWITCH_KIND_START;
    if (GREENLET_UNLIKELY(target->force_slp_switch_error)) {
        stack_force_failure();
    }
    int err = stack_switch(&origin->stack, &target->stack);
    if (err == 1) {
        greenlet_bootstrap(rec, target);
    }
    if (GREENLET_UNLIKELY(err < 0)) {
        if (target->force_slp_switch_error) {
            Py_FatalError("greenlet: the low-level stack switch failed");
        }
        target->stack.stop = NULL;
        Py_CLEAR(target->main);
        pystate_restore(&origin->py, ts);
        rec->switch_from = NULL;
        PyErr_NoMemory();
        return -1;
    }
    pystate_restore(&origin->py, ts);
    arrive(rec, origin);
    return 0;
}

/* Steps 1-3 for a switch from the running greenlet of 'rec' to 'target',
   carrying args/kwargs (stolen; args NULL means the pending exception
   travels).  Returns what this greenlet receives when it runs again. */
static PyObject *
switch_to(ThreadRec *rec, GreenletImpl *target, PyObject *args, PyObject *kwargs, int kind)
{
    for (;;) {
        if (check_same_thread(rec, target) < 0) {
            goto fail;
        }
        /* A dead greenlet passes what it receives on to its parents, as if
           it had just finished with it. */
        while (greenlet_is_started(target) && !greenlet_is_active(target)) {
            if (args == NULL && PyErr_ExceptionMatches(PyExc_GreenletExit)) {
                args = greenlet_exit_as_value();
            }
            if (target->parent == NULL) {
                PyErr_SetString(PyExc_GreenletError,
                                "cannot switch to a garbage collected greenlet");
                goto fail;
            }
            target = target->parent->pimpl;
        }
        if (GREENLET_UNLIKELY(target->force_switch_error)) {
            PyErr_SetString(PyExc_SystemError,
                            greenlet_is_started(target)
                                ? "Failed to switch stacks into a running greenlet."
                                : "Failed to switch stacks into a greenlet for the first time.");
            goto fail;
        }

        rec->pass_args = args;
        rec->pass_kwargs = kwargs;
        args = kwargs = NULL;
        int err;
        if (target->self == rec->current) {
            Py_INCREF(rec->current);
            rec->switch_from = rec->current;
            err = 0;
        }
        else if (greenlet_is_started(target)) {
            err = switch_stacks(rec, target, kind);
        }
        else {
            char marker;
            err = start_greenlet(rec, target, &marker);
        }
        if (err == 0) {
            return take_delivery(rec);
        }
        args = rec->pass_args;
        kwargs = rec->pass_kwargs;
        rec->pass_args = NULL;
        rec->pass_kwargs = NULL;
        if (err < 0) {
            goto fail;
        }
        /* err == 1: the target was started behind our back; go again. */
    }
fail:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return NULL;
}

PyObject *
greenlet_switch(GreenletImpl *target, PyObject *args, PyObject *kwargs)
{
    ThreadRec *rec = threads_current();
    if (rec == NULL) {
        Py_XDECREF(args);
        Py_XDECREF(kwargs);
        return NULL;
    }
    threads_poll(rec);
    return switch_to(rec, target, args, kwargs, SWITCH_KIND_SWITCH);
}

PyObject *
greenlet_throw(GreenletImpl *target, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (tb == Py_None) {
        tb = NULL;
    }
    else if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return NULL;
    }
    if (val == Py_None) {
        val = NULL;
    }
    Py_INCREF(typ);
    Py_XINCREF(val);
    Py_XINCREF(tb);
    if (PyExceptionClass_Check(typ)) {
        PyErr_NormalizeException(&typ, &val, &tb);
        if (val == NULL || PyErr_Occurred()) {
            /* Instantiating the class failed: that error is the result. */
            Py_XDECREF(typ);
            Py_XDECREF(val);
            Py_XDECREF(tb);
            return NULL;
        }
        if (!PyExceptionInstance_Check(val)) {
            PyErr_Format(PyExc_TypeError,
                         "calling %R should have returned an instance of BaseException, not %s",
                         typ, Py_TYPE(val)->tp_name);
            Py_DECREF(typ);
            Py_DECREF(val);
            Py_XDECREF(tb);
            return NULL;
        }
    }
    else if (PyExceptionInstance_Check(typ)) {
        if (val != NULL) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            Py_DECREF(typ);
            Py_DECREF(val);
            Py_XDECREF(tb);
            return NULL;
        }
        val = typ;
        typ = (PyObject *)Py_TYPE(val);
        Py_INCREF(typ);
        if (tb == NULL) {
            tb = PyException_GetTraceback(val);
        }
    }
    else {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s",
                     Py_TYPE(typ)->tp_name);
        Py_DECREF(typ);
        Py_XDECREF(val);
        Py_XDECREF(tb);
        return NULL;
    }

    ThreadRec *rec = threads_current();
    if (rec == NULL) {
        Py_DECREF(typ);
        Py_DECREF(val);
        Py_XDECREF(tb);
        return NULL;
    }
    threads_poll(rec);
    PyErr_Restore(typ, val, tb);
    return switch_to(rec, target, NULL, NULL, SWITCH_KIND_THROW);
}

void
greenlet_kill(ThreadRec *rec, GreenletImpl *g)
{
    if (g->is_main || !greenlet_is_started(g) || !greenlet_is_active(g)) {
        return;
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    /* The victim's result (or failure) comes back here. */
    PyGreenlet *parent = g->parent;
    Py_INCREF(rec->current);
    g->parent = rec->current;
    PyErr_SetString(PyExc_GreenletExit, KILL_MESSAGE);
    PyObject *r = switch_to(rec, g, NULL, NULL, SWITCH_KIND_KILL);
    PyGreenlet *tmp = g->parent;
    g->parent = parent;
    Py_XDECREF(tmp);
    if (r == NULL) {
        if (PyErr_ExceptionMatches(PyExc_GreenletExit)) {
            PyErr_Clear();
        }
        else {
            PyErr_WriteUnraisable((PyObject *)g->self);
        }
    }
    else {
        Py_DECREF(r);
    }
    PyErr_Restore(et, ev, etb);
}

int
greenlet_switch_setup(void)
{
    str_run = PyUnicode_InternFromString("run");
    str_switch = PyUnicode_InternFromString("switch");
    str_throw = PyUnicode_InternFromString("throw");
    return (str_run && str_switch && str_throw) ? 0 : -1;
}
