/*
 * Module greenlet._greenlet: functions, constants, the C API capsule.
 */
#include "greenlet_internal.h"
#include <time.h>
#include "threads.h"
#include "observe.h"
#include "faults.h"

PyObject *PyExc_GreenletError;
PyObject *PyExc_GreenletExit;

int greenlet_switch_setup(void);

static int optional_cleanup_enabled = 1;
static long optional_cleanup_clocks;

static PyObject *
greenlet_getcurrent(void)
{
    if (pystate_is_finalizing()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    ThreadRec *rec = threads_current();
    if (rec == NULL) {
        return NULL;
    }
    threads_poll(rec);
    Py_INCREF(rec->current);
    return (PyObject *)rec->current;
}

static PyObject *
mod_getcurrent(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return greenlet_getcurrent();
}

static PyObject *
mod_settrace(PyObject *module, PyObject *tracer)
{
    (void)module;
    ThreadRec *rec = threads_current();
    if (rec == NULL) {
        return NULL;
    }
    PyObject *previous = rec->tracer;
    if (tracer == Py_None) {
        rec->tracer = NULL;
    }
    else {
        Py_INCREF(tracer);
        rec->tracer = tracer;
    }
    if (previous == NULL) {
        Py_RETURN_NONE;
    }
    return previous;   /* the record's reference becomes the caller's */
}

static PyObject *
mod_gettrace(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    ThreadRec *rec = threads_current();
    if (rec == NULL) {
        return NULL;
    }
    if (rec->tracer == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(rec->tracer);
    return rec->tracer;
}

static PyObject *
mod_set_thread_local(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *key, *value;
    if (!PyArg_ParseTuple(args, "OO:set_thread_local", &key, &value)) {
        return NULL;
    }
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "the thread state has no dict");
        }
        return NULL;
    }
    if (PyDict_SetItem(dict, key, value) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Upstream queues the records of exited threads for later destruction; ours
   are released when the thread's state is cleared, so nothing ever waits. */
static PyObject *
mod_get_pending_cleanup_count(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(0);
}

static PyObject *
mod_get_total_main_greenlets(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromSsize_t(threads_total_main_greenlets());
}

static PyObject *
mod_enable_optional_cleanup(PyObject *module, PyObject *flag)
{
    (void)module;
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return NULL;
    }
    optional_cleanup_enabled = on;
    Py_RETURN_NONE;
}

/* The cleanup heuristic upstream times here is not needed by this
   implementation, so no clock ticks are ever spent on it. */
static PyObject *
mod_get_clocks_used_doing_optional_cleanup(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (!optional_cleanup_enabled) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(optional_cleanup_clocks);
}

#if PY_VERSION_HEX < 0x030D0000
static PyObject *
mod_get_tstate_trash_delete_nesting(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(pystate_trash_delete_nesting(PyThreadState_Get()));
}
#endif

/* The top frame of any greenlet, wherever it is. */
static PyObject *
mod_frame_of(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyGreenlet_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "frame_of() expects a greenlet, not %s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    GreenletImpl *g = GREENLET_IMPL(arg);
    if (!greenlet_is_started(g) || !greenlet_is_active(g) || greenlet_thread_exited(g)) {
        Py_RETURN_NONE;
    }
    ThreadRec *rec = greenlet_thread_of(g);
    if (rec->current == (PyGreenlet *)arg) {
        /* Running: in this thread it is our caller; in another, whatever
           that thread is executing now. */
        return pystate_current_frame(rec->tstate);
    }
    return pystate_top_frame(&g->py, &g->stack);
}

static PyMethodDef module_functions[] = {
    {"getcurrent", mod_getcurrent, METH_NOARGS,
     "getcurrent() -> greenlet\n\nThe greenlet running in the calling thread."},
    {"settrace", mod_settrace, METH_O,
     "settrace(callback) -> previous\n\nSet this thread's greenlet tracer, called as\n"
     "callback(event, (origin, target)) with event 'switch' or 'throw'.\n"
     "None removes it.  Returns the previous tracer or None."},
    {"gettrace", mod_gettrace, METH_NOARGS,
     "gettrace() -> callback or None\n\nThis thread's greenlet tracer."},
    {"set_thread_local", mod_set_thread_local, METH_VARARGS,
     "set_thread_local(key, value)\n\nSet a value in the thread state's dict (debugging)."},
    {"get_pending_cleanup_count", mod_get_pending_cleanup_count, METH_NOARGS,
     "get_pending_cleanup_count() -> int\n\nThread records waiting to be destroyed (always 0 here)."},
    {"get_total_main_greenlets", mod_get_total_main_greenlets, METH_NOARGS,
     "get_total_main_greenlets() -> int\n\nNumber of live main greenlets."},
    {"enable_optional_cleanup", mod_enable_optional_cleanup, METH_O,
     "enable_optional_cleanup(bool)\n\nKept for compatibility."},
    {"get_clocks_used_doing_optional_cleanup", mod_get_clocks_used_doing_optional_cleanup,
     METH_NOARGS,
     "get_clocks_used_doing_optional_cleanup() -> int or None\n\nKept for compatibility."},
#if PY_VERSION_HEX < 0x030D0000
    {"get_tstate_trash_delete_nesting", mod_get_tstate_trash_delete_nesting, METH_NOARGS,
     "The thread state's trashcan nesting (debugging)."},
#endif
    {"frame_of", mod_frame_of, METH_O,
     "frame_of(g) -> frame or None\n\nThe top frame of any greenlet: a suspended one's gr_frame, the\n"
     "caller's frame for the greenlet running in the calling thread, or the\n"
     "frame another thread is executing for the greenlet running there.\n"
     "None for unstarted and dead greenlets."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ */
/* The C API (slots in the order of greenlet.h)                         */

static PyGreenlet *
capi_new(PyObject *run, PyGreenlet *parent)
{
    PyObject *kwargs = PyDict_New();
    if (kwargs == NULL) {
        return NULL;
    }
    if ((run != NULL && PyDict_SetItemString(kwargs, "run", run) < 0)
        || (parent != NULL && PyDict_SetItemString(kwargs, "parent", (PyObject *)parent) < 0)) {
        Py_DECREF(kwargs);
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        Py_DECREF(kwargs);
        return NULL;
    }
    PyObject *g = PyGreenlet_Type.tp_new(&PyGreenlet_Type, empty, kwargs);
    if (g != NULL && PyGreenlet_Type.tp_init(g, empty, kwargs) < 0) {
        Py_CLEAR(g);
    }
    Py_DECREF(empty);
    Py_DECREF(kwargs);
    return (PyGreenlet *)g;
}

static PyGreenlet *
capi_getcurrent(void)
{
    return (PyGreenlet *)greenlet_getcurrent();
}

static PyObject *
capi_throw(PyGreenlet *self, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (!PyGreenlet_Check(self) || typ == NULL) {
        PyErr_BadArgument();
        return NULL;
    }
    return greenlet_throw(self->pimpl, typ, val, tb);
}

static PyObject *
capi_switch(PyGreenlet *self, PyObject *args, PyObject *kwargs)
{
    if (!PyGreenlet_Check(self)) {
        PyErr_BadArgument();
        return NULL;
    }
    if (args == NULL) {
        args = PyTuple_New(0);
        if (args == NULL) {
            return NULL;
        }
    }
    else if (!PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "switch() arguments must be a tuple");
        return NULL;
    }
    else {
        Py_INCREF(args);
    }
    if (kwargs != NULL && PyDict_Check(kwargs)) {
        Py_INCREF(kwargs);
    }
    else {
        kwargs = NULL;
    }
    return greenlet_switch(self->pimpl, args, kwargs);
}

static int
capi_setparent(PyGreenlet *self, PyGreenlet *parent)
{
    if (!PyGreenlet_Check(self)) {
        PyErr_BadArgument();
        return -1;
    }
    return greenlet_set_parent(self, (PyObject *)parent);
}

static int
capi_main(PyGreenlet *self)
{
    if (!PyGreenlet_Check(self)) {
        PyErr_BadArgument();
        return -1;
    }
    return self->pimpl->is_main;
}

static int
capi_started(PyGreenlet *self)
{
    if (!PyGreenlet_Check(self)) {
        PyErr_BadArgument();
        return -1;
    }
    return greenlet_is_started(self->pimpl);
}

static int
capi_active(PyGreenlet *self)
{
    if (!PyGreenlet_Check(self)) {
        PyErr_BadArgument();
        return -1;
    }
    return greenlet_is_active(self->pimpl);
}

static PyGreenlet *
capi_getparent(PyGreenlet *self)
{
    if (!PyGreenlet_Check(self)) {
        PyErr_BadArgument();
        return NULL;
    }
    PyGreenlet *p = self->pimpl->parent;
    Py_XINCREF(p);
    return p;
}

static void *c_api[PyGreenlet_API_pointers];

/* ------------------------------------------------------------------ */

static struct PyModuleDef greenlet_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "greenlet._greenlet",
    .m_doc = "The C core of greenlet: stack-slicing coroutines with built-in observation.",
    .m_size = -1,
    .m_methods = module_functions,
};

static int
add_int(PyObject *m, const char *name, long v)
{
    return PyModule_AddIntConstant(m, name, v);
}

PyMODINIT_FUNC
PyInit__greenlet(void)
{
    PyObject *m = PyModule_Create(&greenlet_module);
    if (m == NULL) {
        return NULL;
    }
    pystate_setup();
    if (greenlet_switch_setup() < 0 || threads_setup(m) < 0 || greenlet_setup_types(m) < 0
        || observe_setup(m) < 0 || faults_setup(m) < 0) {
        goto fail;
    }
    PyExc_GreenletError = PyErr_NewException("greenlet.error", NULL, NULL);
    PyExc_GreenletExit = PyErr_NewException("greenlet.GreenletExit", PyExc_BaseException, NULL);
    if (PyExc_GreenletError == NULL || PyExc_GreenletExit == NULL) {
        goto fail;
    }
    Py_INCREF(PyExc_GreenletError);
    Py_INCREF(PyExc_GreenletExit);
    if (PyModule_AddObject(m, "error", PyExc_GreenletError) < 0
        || PyModule_AddObject(m, "GreenletExit", PyExc_GreenletExit) < 0) {
        goto fail;
    }
    if (add_int(m, "GREENLET_USE_GC", 1) < 0 || add_int(m, "GREENLET_USE_TRACING", 1) < 0
        || add_int(m, "GREENLET_USE_CONTEXT_VARS", 1) < 0
        || add_int(m, "GREENLET_USE_STANDARD_THREADING", 1) < 0
        || add_int(m, "CLOCKS_PER_SEC", (long)CLOCKS_PER_SEC) < 0) {
        goto fail;
    }

    /* Copies on the type, so that greenlet.greenlet.getcurrent() works. */
    PyObject *tdict = PyGreenlet_Type.tp_dict;
    static const char *copied[] = {"getcurrent", "error", "GreenletExit", "settrace", "gettrace"};
    for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        PyObject *o = PyObject_GetAttrString(m, copied[i]);
        if (o == NULL || PyDict_SetItemString(tdict, copied[i], o) < 0) {
            Py_XDECREF(o);
            goto fail;
        }
        Py_DECREF(o);
    }
    PyType_Modified(&PyGreenlet_Type);

    c_api[PyGreenlet_Type_NUM] = (void *)&PyGreenlet_Type;
    c_api[PyExc_GreenletError_NUM] = (void *)PyExc_GreenletError;
    c_api[PyExc_GreenletExit_NUM] = (void *)PyExc_GreenletExit;
    c_api[PyGreenlet_New_NUM] = (void *)capi_new;
    c_api[PyGreenlet_GetCurrent_NUM] = (void *)capi_getcurrent;
    c_api[PyGreenlet_Throw_NUM] = (void *)capi_throw;
    c_api[PyGreenlet_Switch_NUM] = (void *)capi_switch;
    c_api[PyGreenlet_SetParent_NUM] = (void *)capi_setparent;
    c_api[PyGreenlet_MAIN_NUM] = (void *)capi_main;
    c_api[PyGreenlet_STARTED_NUM] = (void *)capi_started;
    c_api[PyGreenlet_ACTIVE_NUM] = (void *)capi_active;
    c_api[PyGreenlet_GET_PARENT_NUM] = (void *)capi_getparent;
    PyObject *capsule = PyCapsule_New((void *)c_api, "greenlet._C_API", NULL);
    if (capsule == NULL || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        goto fail;
    }
    return m;

fail:
    Py_DECREF(m);
    return NULL;
}
