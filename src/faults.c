/*
 * Test-only fault injection (see faults.h).
 */
#include "faults.h"

int faults_armed;
static long faults_countdown;    /* passes of the armed point to let through */
static int faults_fired;

static const char *const fault_names[FAULT_COUNT] = {
    [FAULT_NONE] = NULL,
    [FAULT_STACK_SAVE] = "stack_save",
    [FAULT_ROOT_CHUNK] = "root_chunk",
    [FAULT_THREAD_RECORD] = "thread_record",
    [FAULT_GREENLET_ALLOC] = "greenlet_alloc",
    [FAULT_SWITCH_RESULT] = "switch_result",
    [FAULT_TRACER_ARGS] = "tracer_args",
    [FAULT_FINISH_RESULT] = "finish_result",
    [FAULT_FRAME_EXPOSURE] = "frame_exposure",
    [FAULT_SPAWN_SITE] = "spawn_site",
    [FAULT_DEFERRED_KILL] = "deferred_kill",
};

int
faults_fire(void)
{
    if (faults_countdown > 0) {
        faults_countdown--;
        return 0;
    }
    faults_armed = FAULT_NONE;
    faults_fired = 1;
    return 1;
}

static PyObject *
inject_fault(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *name;
    long after = 0;
    if (!PyArg_ParseTuple(args, "O|l:_inject_fault", &name, &after)) {
        return NULL;
    }
    int point = FAULT_NONE;
    if (name != Py_None) {
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "fault point must be a str or None, not %s",
                         Py_TYPE(name)->tp_name);
            return NULL;
        }
        for (int i = 1; i < FAULT_COUNT; i++) {
            if (PyUnicode_CompareWithASCIIString(name, fault_names[i]) == 0) {
                point = i;
            }
        }
        if (point == FAULT_NONE) {
            PyErr_Format(PyExc_ValueError, "unknown fault point %R", name);
            return NULL;
        }
        if (after < 0) {
            PyErr_SetString(PyExc_ValueError, "after must be >= 0");
            return NULL;
        }
    }
    /* The answer is about the fault armed before: did it fire? */
    PyObject *fired = PyBool_FromLong(faults_fired);
    faults_fired = 0;
    faults_countdown = after;
    faults_armed = point;
    return fired;
}

static PyObject *
fault_points(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *t = PyTuple_New(FAULT_COUNT - 1);
    for (int i = 1; t != NULL && i < FAULT_COUNT; i++) {
        PyObject *s = PyUnicode_FromString(fault_names[i]);
        if (s == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i - 1, s);
    }
    return t;
}

static PyMethodDef fault_methods[] = {
    {"_inject_fault", inject_fault, METH_VARARGS,
     "_inject_fault(point, after=0) -> bool\n\n"
     "Test only: make the allocation at 'point' fail (MemoryError) the\n"
     "time after+1 it is reached; None disarms.  Returns whether the fault\n"
     "armed before this call fired."},
    {"_fault_points", fault_points, METH_NOARGS,
     "Test only: the names of the fault injection points."},
    {NULL, NULL, 0, NULL},
};

int
faults_setup(PyObject *module)
{
    return PyModule_AddFunctions(module, fault_methods);
}
