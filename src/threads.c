/*
 * Per-thread records and what happens when a thread goes away.
 *
 * A record is created the first time a thread touches greenlets.  Its end
 * is tied to the interpreter's thread state: a small holder object is put
 * in the thread state's dict, and the interpreter clears that dict when the
 * thread state is cleared -- with the GIL held, in the exiting thread for a
 * normal thread exit, or in the finalizing thread for daemon threads.  So
 * no OS-level thread destructor ever touches Python objects.
 */
#include "threads.h"
#include "faults.h"
#include "observe.h"

_Thread_local ThreadRec *threads_tls;

static Py_ssize_t total_main_greenlets;

typedef struct {
    PyObject_HEAD
    ThreadRec *rec;
} ThreadHolder;

static void threads_detach(ThreadRec *rec);

static void
holder_dealloc(ThreadHolder *h)
{
    ThreadRec *rec = h->rec;
    h->rec = NULL;
    if (rec != NULL) {
        threads_detach(rec);
    }
    PyObject_Free(h);
}

static PyTypeObject ThreadHolder_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet._greenlet._ThreadStateHolder",
    .tp_basicsize = sizeof(ThreadHolder),
    .tp_dealloc = (destructor)holder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ends the thread's greenlet record when its thread state is cleared.",
};

ThreadRec *
threads_attach(void)
{
    if (pystate_is_finalizing()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    PyThreadState *ts = PyThreadState_Get();
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "greenlet: the thread state has no dict");
        }
        return NULL;
    }
    ThreadRec *rec =
        (ThreadRec *)FAULT_ALLOC(FAULT_THREAD_RECORD, PyMem_RawCalloc(1, sizeof(ThreadRec)));
    if (rec == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    rec->tstate = ts;
    rec->ident = PyThread_get_thread_ident();
    rec->alive = 1;
    PyGreenlet *main = greenlet_new_main(rec);
    if (main == NULL) {
        PyMem_RawFree(rec);
        return NULL;
    }
    rec->main = main;
    Py_INCREF(main);
    rec->current = main;

    ThreadHolder *holder = PyObject_New(ThreadHolder, &ThreadHolder_Type);
    if (holder == NULL) {
        goto fail;
    }
    holder->rec = rec;
    int rc = PyDict_SetItem(dict, (PyObject *)&ThreadHolder_Type, (PyObject *)holder);
    if (rc < 0) {
        holder->rec = NULL;
        Py_DECREF(holder);
        goto fail;
    }
    Py_DECREF(holder);   /* the dict owns it now */
    threads_tls = rec;
    total_main_greenlets++;
    return rec;

fail:
    rec->alive = 0;
    main->pimpl->thread = NULL;
    Py_CLEAR(rec->current);
    Py_CLEAR(rec->main);
    PyMem_RawFree(rec);
    return NULL;
}

/* The thread state is being cleared: this thread will run no more Python.
   Its greenlets are not run again: greenlets still referenced elsewhere
   report themselves dead and give back their memory when collected. */
static void
threads_detach(ThreadRec *rec)
{
    int own_thread = (threads_tls == rec);
    GreenletImpl *main = rec->main->pimpl;
    GreenletImpl *current = rec->current->pimpl;

    rec->alive = 0;
    if (own_thread) {
        threads_tls = NULL;
    }
    observe_thread_exit(rec);
    if (current != main) {
        /* Only seen for daemon threads cleared at shutdown while inside a
           greenlet: give the interpreter back the thread's own data stack. */
        pystate_detach_thread(rec->tstate, &current->py, &main->py);
    }
    main->thread = NULL;
    stack_release(&main->stack);
    pystate_clear(&main->py);

    Py_CLEAR(rec->tracer);
    Py_CLEAR(rec->deleteme);
    Py_CLEAR(rec->switch_from);
    Py_CLEAR(rec->pass_args);
    Py_CLEAR(rec->pass_kwargs);
    Py_CLEAR(rec->current);
    Py_CLEAR(rec->main);
    if (own_thread) {
        PyMem_RawFree(rec);
    }
    /* Otherwise the exited thread's thread-local slot may still name the
       record: it stays allocated (marked dead) so that slot never dangles. */
}

int
threads_defer_kill(ThreadRec *owner, PyGreenlet *g)
{
    if (owner->deleteme == NULL) {
        owner->deleteme = FAULT_ALLOC(FAULT_DEFERRED_KILL, PyList_New(0));
        if (owner->deleteme == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_NoMemory();
            }
            return -1;
        }
    }
    return PyList_Append(owner->deleteme, (PyObject *)g);
}

/* gc.callbacks, and our callback while it is in that list. */
static PyObject *gc_callbacks;
static PyObject *after_collection;

static void
forget_after_collection(void)
{
    /* From the end: ours was appended last, so nothing after it shifts. */
    for (Py_ssize_t i = PyList_GET_SIZE(gc_callbacks) - 1; i >= 0; i--) {
        if (PyList_GET_ITEM(gc_callbacks, i) == after_collection) {
            if (PySequence_DelItem(gc_callbacks, i) < 0) {
                PyErr_WriteUnraisable(after_collection);
            }
            return;
        }
    }
}

static PyObject *
run_after_collection(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *phase = PyTuple_Check(args) && PyTuple_GET_SIZE(args) > 0
                          ? PyTuple_GET_ITEM(args, 0) : NULL;
    if (phase == NULL || !PyUnicode_Check(phase)
        || PyUnicode_CompareWithASCIIString(phase, "stop") != 0) {
        Py_RETURN_NONE;
    }
    forget_after_collection();
    ThreadRec *rec = threads_tls;
    /* Not while the running greenlet is between the end of its run() and
       its last switch: the next switch of this thread does it then. */
    if (rec != NULL && rec->alive && greenlet_is_active(rec->current->pimpl)) {
        threads_poll(rec);
    }
    Py_RETURN_NONE;
}

static PyMethodDef after_collection_def = {
    "_kill_collected_greenlets", run_after_collection, METH_VARARGS,
    "Kills the suspended greenlets the collection just found unreachable.",
};

int
threads_kill_after_collection(ThreadRec *owner, PyGreenlet *g)
{
    if (threads_defer_kill(owner, g) < 0) {
        return -1;
    }
    int present = PySequence_Contains(gc_callbacks, after_collection);
    if (present < 0) {
        return -1;
    }
    return present ? 0 : PyList_Append(gc_callbacks, after_collection);
}

void
threads_run_deferred_kills(ThreadRec *rec)
{
    while (rec->deleteme != NULL) {
        PyObject *list = rec->deleteme;
        rec->deleteme = NULL;
        Py_ssize_t n = PyList_GET_SIZE(list);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyGreenlet *g = (PyGreenlet *)PyList_GET_ITEM(list, i);
            greenlet_kill(rec, g->pimpl);
        }
        Py_DECREF(list);
    }
}

Py_ssize_t
threads_total_main_greenlets(void)
{
    return total_main_greenlets;
}

void
threads_main_greenlet_gone(void)
{
    total_main_greenlets--;
}

int
threads_setup(PyObject *module)
{
    (void)module;
    PyObject *gc = PyImport_ImportModule("gc");
    if (gc == NULL) {
        return -1;
    }
    gc_callbacks = PyObject_GetAttrString(gc, "callbacks");
    Py_DECREF(gc);
    if (gc_callbacks == NULL) {
        return -1;
    }
    if (!PyList_Check(gc_callbacks)) {
        PyErr_SetString(PyExc_TypeError, "gc.callbacks is not a list");
        return -1;
    }
    after_collection = PyCFunction_New(&after_collection_def, NULL);
    if (after_collection == NULL) {
        return -1;
    }
    return PyType_Ready(&ThreadHolder_Type);
}
