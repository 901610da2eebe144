/*
 * _test_capi: a test extension that uses greenlet's public C API.
 *
 * It is compiled at test time against the greenlet.h installed with the
 * greenlet under test, the way gevent and other C clients compile against
 * it, and it reaches every slot of the capsule through the header's macros.
 * Every wrapper hands C NULL results back to Python in a checkable form:
 * a NULL result with an exception raises it, a NULL result without one
 * returns the sentinel _test_capi.NULL, and a result that comes back with an
 * exception still set raises AssertionError.  The same sentinel passed as an
 * argument stands for a C NULL argument.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#include "greenlet/greenlet.h"

/* Both a return marker (NULL without exception) and an argument (C NULL). */
static PyObject *null_sentinel = NULL;

static PyObject *
or_null(PyObject *arg)
{
    return arg == null_sentinel ? NULL : arg;
}

static PyObject *
check_object_result(PyObject *result, const char *what)
{
    if (result == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_INCREF(null_sentinel);
        return null_sentinel;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(result);
        PyErr_Clear();
        return PyErr_Format(PyExc_AssertionError,
                            "%s returned a result with an exception set",
                            what);
    }
    return result;
}

static PyObject *
check_int_result(int result, const char *what)
{
    if (result == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return PyErr_Format(PyExc_AssertionError,
                            "%s returned %d with an exception set",
                            what, result);
    }
    return PyLong_FromLong(result);
}

/* ---- the capsule and the header ---------------------------------------- */

static PyObject *
api_address(PyObject *module, PyObject *unused)
{
    return PyLong_FromVoidPtr((void *)_PyGreenlet_API);
}

static PyObject *
slot_address(PyObject *module, PyObject *arg)
{
    Py_ssize_t index = PyLong_AsSsize_t(arg);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (index < 0 || index >= PyGreenlet_API_pointers) {
        PyErr_SetString(PyExc_IndexError, "slot index out of range");
        return NULL;
    }
    return PyLong_FromVoidPtr(_PyGreenlet_API[index]);
}

static PyObject *
header_constants(PyObject *module, PyObject *unused)
{
    return Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s}",
        "PyGreenlet_API_pointers", PyGreenlet_API_pointers,
        "PyGreenlet_Type_NUM", PyGreenlet_Type_NUM,
        "PyExc_GreenletError_NUM", PyExc_GreenletError_NUM,
        "PyExc_GreenletExit_NUM", PyExc_GreenletExit_NUM,
        "PyGreenlet_New_NUM", PyGreenlet_New_NUM,
        "PyGreenlet_GetCurrent_NUM", PyGreenlet_GetCurrent_NUM,
        "PyGreenlet_Throw_NUM", PyGreenlet_Throw_NUM,
        "PyGreenlet_Switch_NUM", PyGreenlet_Switch_NUM,
        "PyGreenlet_SetParent_NUM", PyGreenlet_SetParent_NUM,
        "PyGreenlet_MAIN_NUM", PyGreenlet_MAIN_NUM,
        "PyGreenlet_STARTED_NUM", PyGreenlet_STARTED_NUM,
        "PyGreenlet_ACTIVE_NUM", PyGreenlet_ACTIVE_NUM,
        "PyGreenlet_GET_PARENT_NUM", PyGreenlet_GET_PARENT_NUM,
        "GREENLET_VERSION", GREENLET_VERSION);
}

static PyObject *
layout(PyObject *module, PyObject *unused)
{
    return Py_BuildValue(
        "{s:n,s:n,s:n,s:n,s:n}",
        "sizeof", (Py_ssize_t)sizeof(PyGreenlet),
        "weakreflist", (Py_ssize_t)offsetof(PyGreenlet, weakreflist),
        "dict", (Py_ssize_t)offsetof(PyGreenlet, dict),
        "pimpl", (Py_ssize_t)offsetof(PyGreenlet, pimpl),
        "sizeof_pointer", (Py_ssize_t)sizeof(void *));
}

static PyObject *
get_type(PyObject *module, PyObject *unused)
{
    PyObject *type = (PyObject *)&PyGreenlet_Type;
    Py_INCREF(type);
    return type;
}

static PyObject *
get_error(PyObject *module, PyObject *unused)
{
    Py_INCREF(PyExc_GreenletError);
    return PyExc_GreenletError;
}

static PyObject *
get_exit(PyObject *module, PyObject *unused)
{
    Py_INCREF(PyExc_GreenletExit);
    return PyExc_GreenletExit;
}

static PyObject *
check(PyObject *module, PyObject *arg)
{
    return PyBool_FromLong(PyGreenlet_Check(or_null(arg)) ? 1 : 0);
}

/* The struct fields as a C client reads them, to prove the layout is live. */
static PyObject *
raw_fields(PyObject *module, PyObject *arg)
{
    PyGreenlet *g;
    if (!PyGreenlet_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "raw_fields needs a greenlet");
        return NULL;
    }
    g = (PyGreenlet *)arg;
    return Py_BuildValue("{s:O,s:O,s:O}",
                         "dict", g->dict ? g->dict : Py_None,
                         "has_weakrefs", g->weakreflist ? Py_True : Py_False,
                         "has_pimpl", g->pimpl ? Py_True : Py_False);
}

/* ---- slot 3: PyGreenlet_New -------------------------------------------- */

static PyObject *
new_greenlet(PyObject *module, PyObject *args)
{
    PyObject *run, *parent;
    if (!PyArg_ParseTuple(args, "OO:new", &run, &parent)) {
        return NULL;
    }
    return check_object_result(
        (PyObject *)PyGreenlet_New(or_null(run), (PyGreenlet *)or_null(parent)),
        "PyGreenlet_New");
}

/* ---- slot 4: PyGreenlet_GetCurrent ------------------------------------- */

static PyObject *
getcurrent(PyObject *module, PyObject *unused)
{
    return check_object_result((PyObject *)PyGreenlet_GetCurrent(),
                               "PyGreenlet_GetCurrent");
}

/* How much one call raises the refcount of the current greenlet (a new
 * reference: exactly 1). */
static PyObject *
getcurrent_refcount_delta(PyObject *module, PyObject *unused)
{
    PyGreenlet *held, *again;
    Py_ssize_t before, after;

    held = PyGreenlet_GetCurrent();
    if (held == NULL) {
        return NULL;
    }
    before = Py_REFCNT(held);
    again = PyGreenlet_GetCurrent();
    if (again == NULL) {
        Py_DECREF(held);
        return NULL;
    }
    after = Py_REFCNT(held);
    if (again != held) {
        Py_DECREF(again);
        Py_DECREF(held);
        PyErr_SetString(PyExc_AssertionError,
                        "two calls gave two different greenlets");
        return NULL;
    }
    Py_DECREF(again);
    Py_DECREF(held);
    return PyLong_FromSsize_t(after - before);
}

/* Call GetCurrent `count` times, releasing each reference; return the
 * refcount of the current greenlet before and after. */
static PyObject *
getcurrent_many(PyObject *module, PyObject *arg)
{
    PyGreenlet *held, *each;
    Py_ssize_t before, after, i, count;

    count = PyLong_AsSsize_t(arg);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    held = PyGreenlet_GetCurrent();
    if (held == NULL) {
        return NULL;
    }
    before = Py_REFCNT(held);
    for (i = 0; i < count; i++) {
        each = PyGreenlet_GetCurrent();
        if (each == NULL) {
            Py_DECREF(held);
            return NULL;
        }
        Py_DECREF(each);
    }
    after = Py_REFCNT(held);
    Py_DECREF(held);
    return Py_BuildValue("(nn)", before, after);
}

/* ---- slot 5: PyGreenlet_Throw ------------------------------------------ */

static PyObject *
throw_(PyObject *module, PyObject *args)
{
    PyObject *g, *typ, *val, *tb;
    if (!PyArg_ParseTuple(args, "OOOO:throw", &g, &typ, &val, &tb)) {
        return NULL;
    }
    return check_object_result(
        PyGreenlet_Throw((PyGreenlet *)or_null(g), or_null(typ), or_null(val),
                         or_null(tb)),
        "PyGreenlet_Throw");
}

/* ---- slot 6: PyGreenlet_Switch ----------------------------------------- */

static PyObject *
switch_(PyObject *module, PyObject *args)
{
    PyObject *g, *sargs, *skwargs;
    if (!PyArg_ParseTuple(args, "OOO:switch", &g, &sargs, &skwargs)) {
        return NULL;
    }
    return check_object_result(
        PyGreenlet_Switch((PyGreenlet *)or_null(g), or_null(sargs),
                          or_null(skwargs)),
        "PyGreenlet_Switch");
}

/* Switch to `g` `count` times from one C frame, passing (i,) each time, and
 * collect what comes back.  A canary array in this frame must survive every
 * switch: the C stack of this call is saved and restored around each one. */
static PyObject *
switch_loop_in_c(PyObject *module, PyObject *args)
{
    PyObject *g, *results, *sargs, *value;
    Py_ssize_t count, i, k;
    volatile Py_ssize_t canary[64];

    if (!PyArg_ParseTuple(args, "On:switch_loop_in_c", &g, &count)) {
        return NULL;
    }
    results = PyList_New(0);
    if (results == NULL) {
        return NULL;
    }
    for (k = 0; k < 64; k++) {
        canary[k] = k * 7919 + count;
    }
    for (i = 0; i < count; i++) {
        sargs = Py_BuildValue("(n)", i);
        if (sargs == NULL) {
            goto fail;
        }
        value = PyGreenlet_Switch((PyGreenlet *)g, sargs, NULL);
        Py_DECREF(sargs);
        if (value == NULL) {
            goto fail;
        }
        for (k = 0; k < 64; k++) {
            if (canary[k] != k * 7919 + count) {
                Py_DECREF(value);
                PyErr_Format(PyExc_AssertionError,
                             "C stack not restored: canary[%zd] changed", k);
                goto fail;
            }
        }
        if (PyList_Append(results, value) < 0) {
            Py_DECREF(value);
            goto fail;
        }
        Py_DECREF(value);
    }
    return results;
fail:
    Py_DECREF(results);
    return NULL;
}

/* ---- slot 7: PyGreenlet_SetParent -------------------------------------- */

static PyObject *
set_parent(PyObject *module, PyObject *args)
{
    PyObject *g, *parent;
    if (!PyArg_ParseTuple(args, "OO:set_parent", &g, &parent)) {
        return NULL;
    }
    return check_int_result(
        PyGreenlet_SetParent((PyGreenlet *)or_null(g),
                             (PyGreenlet *)or_null(parent)),
        "PyGreenlet_SetParent");
}

/* ---- slots 8-10: MAIN, STARTED, ACTIVE --------------------------------- */

static PyObject *
is_main(PyObject *module, PyObject *arg)
{
    return check_int_result(PyGreenlet_MAIN((PyGreenlet *)or_null(arg)),
                            "PyGreenlet_MAIN");
}

static PyObject *
is_started(PyObject *module, PyObject *arg)
{
    return check_int_result(PyGreenlet_STARTED((PyGreenlet *)or_null(arg)),
                            "PyGreenlet_STARTED");
}

static PyObject *
is_active(PyObject *module, PyObject *arg)
{
    return check_int_result(PyGreenlet_ACTIVE((PyGreenlet *)or_null(arg)),
                            "PyGreenlet_ACTIVE");
}

/* ---- slot 11: PyGreenlet_GetParent ------------------------------------- */

static PyObject *
get_parent(PyObject *module, PyObject *arg)
{
    return check_object_result(
        (PyObject *)PyGreenlet_GetParent((PyGreenlet *)or_null(arg)),
        "PyGreenlet_GetParent");
}

static PyObject *
get_parent_alias(PyObject *module, PyObject *arg)
{
    return check_object_result(
        (PyObject *)PyGreenlet_GET_PARENT((PyGreenlet *)or_null(arg)),
        "PyGreenlet_GET_PARENT");
}

/* How much one call raises the refcount of the parent (new reference: 1). */
static PyObject *
get_parent_refcount_delta(PyObject *module, PyObject *arg)
{
    PyGreenlet *first, *second;
    Py_ssize_t before, after;

    first = PyGreenlet_GetParent((PyGreenlet *)arg);
    if (first == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "greenlet has no parent");
        }
        return NULL;
    }
    before = Py_REFCNT(first);
    second = PyGreenlet_GetParent((PyGreenlet *)arg);
    if (second == NULL) {
        Py_DECREF(first);
        return NULL;
    }
    after = Py_REFCNT(first);
    Py_DECREF(second);
    Py_DECREF(first);
    return PyLong_FromSsize_t(after - before);
}

static PyMethodDef methods[] = {
    {"api_address", api_address, METH_NOARGS, NULL},
    {"slot_address", slot_address, METH_O, NULL},
    {"header_constants", header_constants, METH_NOARGS, NULL},
    {"layout", layout, METH_NOARGS, NULL},
    {"get_type", get_type, METH_NOARGS, NULL},
    {"get_error", get_error, METH_NOARGS, NULL},
    {"get_exit", get_exit, METH_NOARGS, NULL},
    {"check", check, METH_O, NULL},
    {"raw_fields", raw_fields, METH_O, NULL},
    {"new", new_greenlet, METH_VARARGS, NULL},
    {"getcurrent", getcurrent, METH_NOARGS, NULL},
    {"getcurrent_refcount_delta", getcurrent_refcount_delta, METH_NOARGS,
     NULL},
    {"getcurrent_many", getcurrent_many, METH_O, NULL},
    {"throw", throw_, METH_VARARGS, NULL},
    {"switch", switch_, METH_VARARGS, NULL},
    {"switch_loop_in_c", switch_loop_in_c, METH_VARARGS, NULL},
    {"set_parent", set_parent, METH_VARARGS, NULL},
    {"is_main", is_main, METH_O, NULL},
    {"is_started", is_started, METH_O, NULL},
    {"is_active", is_active, METH_O, NULL},
    {"get_parent", get_parent, METH_O, NULL},
    {"get_parent_alias", get_parent_alias, METH_O, NULL},
    {"get_parent_refcount_delta", get_parent_refcount_delta, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    "_test_capi",
    "Exercises every slot of greenlet's C API capsule.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__test_capi(void)
{
    PyObject *module;

    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL) {
        return NULL;
    }
    module = PyModule_Create(&moduledef);
    if (module == NULL) {
        return NULL;
    }
    if (null_sentinel == NULL) {
        /* A fresh object nobody else can pass by accident. */
        null_sentinel = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
        if (null_sentinel == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    Py_INCREF(null_sentinel);
    if (PyModule_AddObject(module, "NULL", null_sentinel) < 0) {
        Py_DECREF(null_sentinel);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
