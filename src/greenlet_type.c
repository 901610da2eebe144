/*
 * The Python type greenlet.greenlet: creation, attributes, repr,
 * deallocation (which kills a suspended greenlet), GC support, and the
 * test-only subclass UnswitchableGreenlet.
 */
#include "greenlet_internal.h"
#include "faults.h"
#include <stddef.h>
#include "threads.h"
#include "observe.h"

static int
is_dead(GreenletImpl *g)
{
    return greenlet_is_started(g) && (!greenlet_is_active(g) || greenlet_thread_exited(g));
}

/* Running: the current greenlet of its (live) thread. */
static int
is_running(GreenletImpl *g)
{
    ThreadRec *rec = greenlet_thread_of(g);
    return rec != NULL && rec->current == g->self;
}

static GreenletImpl *
new_impl(PyGreenlet *self)
{
    GreenletImpl *g =
        (GreenletImpl *)FAULT_ALLOC(FAULT_GREENLET_ALLOC, PyMem_Calloc(1, sizeof(GreenletImpl)));
    if (g == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    g->self = self;
    self->pimpl = g;
    return g;
}

PyGreenlet *
greenlet_new_main(ThreadRec *rec)
{
    PyGreenlet *self = (PyGreenlet *)PyGreenlet_Type.tp_alloc(&PyGreenlet_Type, 0);
    if (self == NULL) {
        return NULL;
    }
    GreenletImpl *g = new_impl(self);
    if (g == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    g->is_main = 1;
    g->stack.start = STACK_START_RUNNING;
    g->stack.stop = STACK_STOP_MAIN;
    g->thread = rec;
    g->thread_id = rec->ident;
    g->switches = 1;
    observe_register(g);
    return self;
}

static PyObject *
green_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    ThreadRec *rec = threads_current();
    if (rec == NULL) {
        return NULL;
    }
    PyGreenlet *self = (PyGreenlet *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    GreenletImpl *g = new_impl(self);
    if (g == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(rec->current);
    g->parent = rec->current;
    observe_register(g);
    if (observe_spawn_depth > 0 && observe_capture_spawn(g) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int green_setrun(PyGreenlet *self, PyObject *value, void *closure);

static int
green_init(PyGreenlet *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"run", "parent", NULL};
    PyObject *run = NULL;
    PyObject *parent = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:green", kwlist, &run, &parent)) {
        return -1;
    }
    if (run != NULL && green_setrun(self, run, NULL) < 0) {
        return -1;
    }
    if (parent != NULL && parent != Py_None && greenlet_set_parent(self, parent) < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */

/* Drop what a greenlet that will never run again owns.  Returns 1 if its
   implementation struct must outlive the object: a suspended greenlet of a
   live thread (freed without being killed: at interpreter shutdown, or when
   deferring its kill ran out of memory) may still be named as the owner of
   the stack just above some other greenlet's slice, and the next switch of
   that thread walks those links. */
static int
greenlet_abandon(GreenletImpl *g)
{
    int keep_stack = !g->is_main && greenlet_is_started(g) && greenlet_is_active(g)
                     && greenlet_thread_of(g) != NULL;
    if (g->is_main) {
        /* Its interpreter data stack belongs to the interpreter. */
        pystate_clear(&g->py);
    }
    else {
        pystate_abandon(&g->py, &g->stack);
    }
    if (!keep_stack) {
        stack_release(&g->stack);
    }
    Py_CLEAR(g->run);
    return keep_stack;
}

/* "file:line in function" of the innermost spawn-site entry, or NULL. */
static PyObject *
spawn_location(GreenletImpl *g)
{
    PyObject *site = observe_spawn_site(g);
    PyObject *r = NULL;
    if (site != NULL && PyTuple_Check(site) && PyTuple_GET_SIZE(site) > 0) {
        PyObject *first = PyTuple_GET_ITEM(site, 0);
        r = PyUnicode_FromFormat("%S:%S in %S", PyTuple_GET_ITEM(first, 0),
                                 PyTuple_GET_ITEM(first, 1), PyTuple_GET_ITEM(first, 2));
    }
    Py_XDECREF(site);
    return r;
}

/* The ResourceWarning for a suspended greenlet found by the collector:
   which greenlet, where it was suspended, where it was spawned. */
static void
warn_collected(PyObject *o)
{
    GreenletImpl *g = GREENLET_IMPL(o);
    PyObject *repr = PyObject_Repr(o);
    PyObject *frame = repr ? pystate_top_frame(&g->py, &g->stack) : NULL;
    PyObject *where = pystate_frame_location(frame);
    Py_XDECREF(frame);
    PyObject *spawned = spawn_location(g);
    PyErr_Clear();
    PyObject *msg = NULL;
    if (repr != NULL) {
        msg = PyUnicode_FromFormat(
            "unreachable suspended greenlet %U collected: suspended at %V, %s%V; "
            "GreenletExit was thrown into it",
            repr, where, "an unknown place", spawned ? "spawned at " : "", spawned,
            "spawn site not recorded (greenlet.set_spawn_tracking(1) records it)");
    }
    Py_XDECREF(repr);
    Py_XDECREF(where);
    Py_XDECREF(spawned);
    if (msg == NULL || PyErr_ResourceWarning(o, 1, "%U", msg) < 0) {
        PyErr_WriteUnraisable(o);
    }
    Py_XDECREF(msg);
}

/* Kill a suspended greenlet nobody references any more, like a generator
   is closed: by throwing GreenletExit into it.  'collected' is true when
   the cyclic collector found it (a ResourceWarning says so). */
static void
finalize_suspended(PyObject *o, int collected)
{
    GreenletImpl *g = GREENLET_IMPL(o);
    if (g == NULL || g->is_main || !greenlet_is_started(g) || !greenlet_is_active(g)) {
        return;
    }
    ThreadRec *owner = greenlet_thread_of(g);
    if (owner == NULL || pystate_is_finalizing() || owner->current == (PyGreenlet *)o) {
        return;    /* nothing may run: the memory is released in dealloc */
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    ThreadRec *here = threads_tls;
    if (collected) {
        warn_collected(o);
        if (threads_kill_after_collection(owner, (PyGreenlet *)o) < 0) {
            PyErr_WriteUnraisable(o);
        }
    }
    else if (here != owner || !greenlet_is_active(owner->current->pimpl)) {
        /* Only its own thread can run it, and not while the running
           greenlet is between the end of its run() and its last switch:
           the thread kills it the next time it touches greenlets.  The
           list keeps it alive meanwhile. */
        if (threads_defer_kill(owner, (PyGreenlet *)o) < 0) {
            PyErr_WriteUnraisable(o);
        }
    }
    else {
        greenlet_kill(owner, g);
    }
    PyErr_Restore(et, ev, etb);
}

/* PEP 442 finalizer.  Called with a reference count of 1 on the way to
   deallocation, higher when the collector found the greenlet in trash. */
static void
green_finalize(PyObject *o)
{
    finalize_suspended(o, Py_REFCNT(o) > 1);
}

/* Kill a suspended greenlet whose last reference is gone.  The object is
   resurrected for the duration (the kill switches into it and back). 0: go
   on freeing it; -1: it is alive again and must be left alone. */
static int
kill_from_dealloc(PyGreenlet *self)
{
    GreenletImpl *g = self->pimpl;
    Py_SET_REFCNT(self, 1);
    PyObject_GC_Track(self);
    finalize_suspended((PyObject *)self, 0);
    if (greenlet_is_active(g) && greenlet_thread_of(g) != NULL && Py_REFCNT(self) == 1
        && threads_tls == greenlet_thread_of(g)) {
        /* It caught GreenletExit and went on: it cannot be freed while its
           frames may still run, so it is kept, as upstream does. */
        PyObject *r = PyObject_Repr((PyObject *)self);
        PySys_WriteStderr("GreenletExit did not kill %s\n", r ? PyUnicode_AsUTF8(r) : "a greenlet");
        Py_XDECREF(r);
        PyErr_Clear();
        Py_SET_REFCNT(self, 2);
    }
    Py_SET_REFCNT(self, Py_REFCNT(self) - 1);
    if (Py_REFCNT(self) != 0) {
        /* Resurrected.  A heap subclass's dealloc drops a reference to the
           type after we return: the live object still needs it. */
        if (Py_TYPE(self)->tp_flags & Py_TPFLAGS_HEAPTYPE) {
            Py_INCREF(Py_TYPE(self));
        }
        return -1;
    }
    PyObject_GC_UnTrack(self);
    return 0;
}

static void
green_dealloc(PyGreenlet *self)
{
    PyObject_GC_UnTrack(self);
    GreenletImpl *g = self->pimpl;
    if (g != NULL && !g->is_main && greenlet_is_active(g) && greenlet_is_started(g)
        && greenlet_thread_of(g) != NULL && !pystate_is_finalizing()) {
        if (kill_from_dealloc(self) < 0) {
            return;
        }
    }
    if (g != NULL) {
        observe_unregister(g);
    }
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->dict);
    if (g != NULL) {
        int keep_stack = greenlet_abandon(g);
        Py_CLEAR(g->parent);
        Py_CLEAR(g->main);
        Py_CLEAR(g->name);
        observe_free_spawn(g);
        if (g->is_main) {
            threads_main_greenlet_gone();
        }
        self->pimpl = NULL;
        if (keep_stack) {
            g->self = NULL;   /* a few hundred bytes leaked on purpose */
        }
        else {
            PyMem_Free(g);
        }
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
green_traverse(PyGreenlet *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    GreenletImpl *g = self->pimpl;
    if (g == NULL) {
        return 0;
    }
    Py_VISIT(g->parent);
    Py_VISIT(g->main);
    Py_VISIT(g->run);
    int r = pystate_traverse(&g->py, visit, arg);
    if (r) {
        return r;
    }
    if (!g->is_main && greenlet_is_active(g) && greenlet_is_started(g) && !is_running(g)
        && greenlet_thread_of(g) != NULL) {
        /* Suspended: what its frames hold is its own.  This is how the
           collector finds a greenlet kept alive only by itself. */
        r = pystate_traverse_frames(&g->py, &g->stack, visit, arg);
        if (r) {
            return r;
        }
    }
    if (g->is_main && g->thread != NULL) {
        Py_VISIT(g->thread->current);
        Py_VISIT(g->thread->tracer);
    }
    return 0;
}

static int
green_clear(PyGreenlet *self)
{
    GreenletImpl *g = self->pimpl;
    if (g != NULL && Py_TYPE(self)->tp_finalize != green_finalize) {
        /* A subclass's __del__ took the place of our finalizer, so the
           collector has not killed this greenlet yet: do it now. */
        finalize_suspended((PyObject *)self, 1);
    }
    Py_CLEAR(self->dict);
    if (g == NULL) {
        return 0;
    }
    if (!greenlet_is_active(g) || greenlet_thread_exited(g)) {
        /* A greenlet that may still run needs its parent to finish, and
           its run() is being called with a borrowed reference. */
        Py_CLEAR(g->parent);
        Py_CLEAR(g->run);
    }
    pystate_clear(&g->py);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                           */

static PyObject *
green_getrun(PyGreenlet *self, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    if (g->is_main) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return NULL;
    }
    if (greenlet_is_started(g) || g->run == NULL) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return NULL;
    }
    Py_INCREF(g->run);
    return g->run;
}

static int
green_setrun(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    if (g->is_main) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return -1;
    }
    if (greenlet_is_started(g)) {
        PyErr_SetString(PyExc_AttributeError,
                        "run cannot be set after the start of the greenlet");
        return -1;
    }
    Py_XINCREF(value);
    Py_XSETREF(g->run, value);
    return 0;
}

static PyObject *
green_getparent(PyGreenlet *self, void *closure)
{
    (void)closure;
    PyObject *p = (PyObject *)self->pimpl->parent;
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(p);
    return p;
}

int
greenlet_set_parent(PyGreenlet *self, PyObject *value)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    GreenletImpl *g = self->pimpl;
    if (g->is_main) {
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main greenlet");
        return -1;
    }
    if (!PyGreenlet_Check(value)) {
        PyErr_Format(PyExc_TypeError, "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    PyGreenlet *main = NULL;
    for (GreenletImpl *p = GREENLET_IMPL(value); p != NULL;
         p = p->parent ? p->parent->pimpl : NULL) {
        if (p == g) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
        if (p->is_main) {
            main = p->self;
        }
    }
    if (main == NULL) {
        PyErr_SetString(PyExc_ValueError, "parent must not be garbage collected");
        return -1;
    }
    if (greenlet_is_started(g) && greenlet_main_of(g) != main) {
        PyErr_SetString(PyExc_ValueError, "parent cannot be on a different thread");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(g->parent, (PyGreenlet *)value);
    return 0;
}

static int
green_setparent(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    return greenlet_set_parent(self, value);
}

static PyObject *
green_getdead(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(is_dead(self->pimpl));
}

static PyObject *
green_getframe(PyGreenlet *self, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    if (!greenlet_is_started(g) || is_dead(g) || is_running(g)) {
        Py_RETURN_NONE;
    }
    return pystate_top_frame(&g->py, &g->stack);
}

static PyObject *
green_getcontext(PyGreenlet *self, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    PyObject *ctx;
    if (is_running(g)) {
        ThreadRec *owner = greenlet_thread_of(g);
        if (owner != threads_tls) {
            PyErr_SetString(PyExc_ValueError,
                            "cannot get context of a greenlet that is running in a different thread");
            return NULL;
        }
        ctx = pystate_get_context(owner->tstate);
    }
    else {
        ctx = g->py.context;
    }
    if (ctx == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(ctx);
    return ctx;
}

static int
green_setcontext(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete context attribute");
        return -1;
    }
    if (value == Py_None) {
        value = NULL;
    }
    else if (!PyContext_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "greenlet context must be a contextvars.Context or None");
        return -1;
    }
    Py_XINCREF(value);
    if (is_running(g)) {
        ThreadRec *owner = greenlet_thread_of(g);
        if (owner != threads_tls) {
            Py_XDECREF(value);
            PyErr_SetString(PyExc_ValueError,
                            "cannot set context of a greenlet that is running in a different thread");
            return -1;
        }
        pystate_set_context(owner->tstate, value);
    }
    else {
        Py_XSETREF(g->py.context, value);
    }
    return 0;
}

static PyObject *
green_getstack_saved(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(self->pimpl->stack.saved);
}

static PyObject *
green_getdict(PyGreenlet *self, void *closure)
{
    (void)closure;
    if (self->dict == NULL) {
        self->dict = PyDict_New();
        if (self->dict == NULL) {
            return NULL;
        }
    }
    Py_INCREF(self->dict);
    return self->dict;
}

static int
green_setdict(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "__dict__ may not be deleted");
        return -1;
    }
    if (!PyDict_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "__dict__ must be a dictionary");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->dict, value);
    return 0;
}

/* Observation attributes */

static PyObject *
green_getid(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->pimpl->id);
}

static PyObject *
green_getstate_name(PyGreenlet *self, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    const char *s;
    if (!greenlet_is_started(g)) {
        s = "unstarted";
    }
    else if (is_dead(g)) {
        s = "dead";
    }
    else if (is_running(g)) {
        s = "running";
    }
    else {
        s = "suspended";
    }
    return PyUnicode_InternFromString(s);
}

static PyObject *
green_getthread_id(PyGreenlet *self, void *closure)
{
    (void)closure;
    GreenletImpl *g = self->pimpl;
    if (!greenlet_is_started(g)) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(g->thread_id);
}

static PyObject *
green_getswitches(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->pimpl->switches);
}

static PyObject *
green_getrun_ns(PyGreenlet *self, void *closure)
{
    (void)closure;
    return observe_run_ns(self->pimpl);
}

static PyObject *
green_getname(PyGreenlet *self, void *closure)
{
    (void)closure;
    PyObject *name = self->pimpl->name;
    if (name == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(name);
    return name;
}

static int
green_setname(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    if (value == Py_None) {
        value = NULL;
    }
    if (value != NULL && !PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "gr_name must be a str or None, not %s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_XINCREF(value);
    Py_XSETREF(self->pimpl->name, value);
    return 0;
}

static PyObject *
green_getspawn_site(PyGreenlet *self, void *closure)
{
    (void)closure;
    return observe_spawn_site(self->pimpl);
}

static PyGetSetDef green_getsets[] = {
    {"run", (getter)green_getrun, (setter)green_setrun, "The callable this greenlet runs.", NULL},
    {"parent", (getter)green_getparent, (setter)green_setparent,
     "The greenlet that receives this one's result when it finishes.", NULL},
    {"dead", (getter)green_getdead, NULL, "True once the greenlet has finished.", NULL},
    {"gr_frame", (getter)green_getframe, NULL, "The top frame of a suspended greenlet.", NULL},
    {"gr_context", (getter)green_getcontext, (setter)green_setcontext,
     "The contextvars.Context this greenlet runs in.", NULL},
    {"_stack_saved", (getter)green_getstack_saved, NULL,
     "Bytes of this greenlet's C stack currently kept on the heap.", NULL},
    {"__dict__", (getter)green_getdict, (setter)green_setdict, NULL, NULL},
    {"gr_id", (getter)green_getid, NULL, "Unique id of this greenlet in the process.", NULL},
    {"gr_state", (getter)green_getstate_name, NULL,
     "'unstarted', 'running', 'suspended' or 'dead'.", NULL},
    {"gr_thread_id", (getter)green_getthread_id, NULL,
     "Ident of the thread this greenlet belongs to (None until started).", NULL},
    {"gr_switches", (getter)green_getswitches, NULL,
     "How many times control entered this greenlet.", NULL},
    {"gr_run_ns", (getter)green_getrun_ns, NULL,
     "Nanoseconds this greenlet has been the running greenlet of its thread.", NULL},
    {"gr_name", (getter)green_getname, (setter)green_setname,
     "A label for people (str or None).", NULL},
    {"gr_spawn_site", (getter)green_getspawn_site, NULL,
     "Frames (filename, lineno, function) that created this greenlet, innermost\n"
     "first, when spawn tracking was on; else None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------------ */
/* Methods                                                              */

static PyObject *
green_switch(PyGreenlet *self, PyObject *args, PyObject *kwargs)
{
    Py_INCREF(args);
    Py_XINCREF(kwargs);
    return greenlet_switch(self->pimpl, args, kwargs);
}

static PyObject *
green_throw(PyGreenlet *self, PyObject *args)
{
    PyObject *typ = PyExc_GreenletExit;
    PyObject *val = NULL;
    PyObject *tb = NULL;
    if (!PyArg_ParseTuple(args, "|OOO:throw", &typ, &val, &tb)) {
        return NULL;
    }
    return greenlet_throw(self->pimpl, typ, val, tb);
}

static PyObject *
green_getstate(PyGreenlet *self, PyObject *unused)
{
    (void)unused;
    PyErr_Format(PyExc_TypeError, "cannot serialize '%s' object", Py_TYPE(self)->tp_name);
    return NULL;
}

static int
green_bool(PyGreenlet *self)
{
    GreenletImpl *g = self->pimpl;
    return greenlet_is_started(g) && !is_dead(g);
}

static PyObject *
green_repr(PyGreenlet *self)
{
    GreenletImpl *g = self->pimpl;
    const char *tp = Py_TYPE(self)->tp_name;
    PyGreenlet *lineage = greenlet_lineage_main(g);
    int exited = greenlet_thread_exited(g);
    if (is_dead(g)) {
        return PyUnicode_FromFormat("<%s object at %p (otid=%p) %sdead>", tp, self, lineage,
                                    exited ? "(thread exited) " : "");
    }
    const char *where = exited ? " (thread exited)"
                        : is_running(g) ? " current"
                        : greenlet_is_active(g) ? " suspended"
                        : "";
    return PyUnicode_FromFormat("<%s object at %p (otid=%p)%s%s%s%s>", tp, self, lineage, where,
                                greenlet_is_active(g) ? " active" : "",
                                greenlet_is_started(g) ? " started" : " pending",
                                g->is_main ? " main" : "");
}

static PyMethodDef green_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))green_switch, METH_VARARGS | METH_KEYWORDS,
     "switch(*args, **kwargs)\n\nSwitch execution to this greenlet; its switch() (or run, on the\n"
     "first switch) receives the arguments."},
    {"throw", (PyCFunction)green_throw, METH_VARARGS,
     "throw(typ=GreenletExit, val=None, tb=None)\n\nRaise an exception in this greenlet, where it "
     "last switched away."},
    {"__getstate__", (PyCFunction)green_getstate, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyNumberMethods green_as_number = {
    .nb_bool = (inquiry)green_bool,
};

PyTypeObject PyGreenlet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet.greenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    .tp_dealloc = (destructor)green_dealloc,
    .tp_repr = (reprfunc)green_repr,
    .tp_as_number = &green_as_number,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VERSION_TAG | Py_TPFLAGS_HAVE_GC
                | Py_TPFLAGS_BASETYPE,
    .tp_doc = "greenlet(run=None, parent=None) -> greenlet\n\n"
              "Creates a new greenlet object (without running it).\n\n"
              " - *run* -- The callable to invoke.\n"
              " - *parent* -- The parent greenlet. The default is the current greenlet.",
    .tp_traverse = (traverseproc)green_traverse,
    .tp_clear = (inquiry)green_clear,
    .tp_weaklistoffset = offsetof(PyGreenlet, weakreflist),
    .tp_methods = green_methods,
    .tp_getset = green_getsets,
    .tp_dictoffset = offsetof(PyGreenlet, dict),
    .tp_init = (initproc)green_init,
    .tp_alloc = PyType_GenericAlloc,
    .tp_new = (newfunc)green_new,
    .tp_free = PyObject_GC_Del,
    .tp_finalize = green_finalize,
};

/* ------------------------------------------------------------------ */
/* UnswitchableGreenlet: exercises the switch's failure paths in tests. */

static PyObject *
unswitchable_get(PyGreenlet *self, void *closure)
{
    GreenletImpl *g = self->pimpl;
    return PyBool_FromLong(closure ? g->force_slp_switch_error : g->force_switch_error);
}

static int
unswitchable_set(PyGreenlet *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    int flag = PyObject_IsTrue(value);
    if (flag < 0) {
        return -1;
    }
    GreenletImpl *g = self->pimpl;
    if (closure) {
        g->force_slp_switch_error = (unsigned char)flag;
    }
    else {
        g->force_switch_error = (unsigned char)flag;
    }
    return 0;
}

static PyGetSetDef unswitchable_getsets[] = {
    {"force_switch_error", (getter)unswitchable_get, (setter)unswitchable_set,
     "Make switches into this greenlet fail with a Python exception.", NULL},
    {"force_slp_switch_error", (getter)unswitchable_get, (setter)unswitchable_set,
     "Make the low-level stack switch fail (a fatal error).", (void *)1},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PyGreenletUnswitchable_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet._greenlet.UnswitchableGreenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    /* GC support (traverse, clear, is_gc) is inherited from the base. */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VERSION_TAG | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Undocumented internal class used for testing error paths.",
    .tp_getset = unswitchable_getsets,
};

int
greenlet_setup_types(PyObject *module)
{
    if (PyType_Ready(&PyGreenlet_Type) < 0) {
        return -1;
    }
    PyGreenletUnswitchable_Type.tp_base = &PyGreenlet_Type;
    if (PyType_Ready(&PyGreenletUnswitchable_Type) < 0) {
        return -1;
    }
    Py_INCREF(&PyGreenlet_Type);
    if (PyModule_AddObject(module, "greenlet", (PyObject *)&PyGreenlet_Type) < 0) {
        Py_DECREF(&PyGreenlet_Type);
        return -1;
    }
    Py_INCREF(&PyGreenletUnswitchable_Type);
    if (PyModule_AddObject(module, "UnswitchableGreenlet",
                           (PyObject *)&PyGreenletUnswitchable_Type) < 0) {
        Py_DECREF(&PyGreenletUnswitchable_Type);
        return -1;
    }
    return 0;
}
