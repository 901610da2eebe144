/*
 * Ids, the registry of live greenlets, counters, spawn sites and switch
 * logs.  All state here is protected by the GIL.
 */
#include "observe.h"
#include "faults.h"
#include "threads.h"
#include <string.h>
#include <time.h>

int observe_active_logs;
int observe_spawn_depth;
int observe_switch_work;

#define WORK_RUN_TIME 1
#define WORK_LOG 2

/* Run-time accounting counts from this tick on (0: off).  Slices that
   started before it was turned on count from here. */
static uint64_t run_time_since;

static void
update_switch_work(void)
{
    observe_switch_work = (run_time_since ? WORK_RUN_TIME : 0)
                          | (observe_active_logs ? WORK_LOG : 0);
}

static inline uint64_t
slice_begin(const GreenletImpl *g)
{
    return g->slice_start > run_time_since ? g->slice_start : run_time_since;
}

static uint64_t next_id = 1;
static GreenletImpl *registry_head;
static GreenletImpl *registry_tail;

/* ------------------------------------------------------------------ */
/* Clock: the switch path reads the CPU's tick counter; readers convert  */
/* ticks to nanoseconds of CLOCK_MONOTONIC (time.monotonic_ns()).        */

static uint64_t calib_ticks0;
static int64_t calib_ns0;
/* Durations (gr_run_ns) use one ratio measured at import, so a value that
   is not growing reads the same every time. */
static double duration_ns_per_tick = 1.0;
/* Timestamps are converted when an event is recorded, with a mapping that
   readers re-anchor (continuously, so it stays monotonic) and steer towards
   CLOCK_MONOTONIC over the longest baseline available. */
static uint64_t anchor_ticks;
static int64_t anchor_ns;
static double stamp_ns_per_tick = 1.0;
static int64_t last_stamp;

static int64_t
observe_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t
ticks_to_monotonic_ns(uint64_t t)
{
    return anchor_ns + (int64_t)((double)(int64_t)(t - anchor_ticks) * stamp_ns_per_tick);
}

/* Re-anchor the timestamp mapping on the clock itself, and take the ratio
   over the longest baseline.  Stamps never go backwards: an anchor is never
   set before a stamp already handed out. */
static void paired_reading(uint64_t *ticks, int64_t *ns);

static void
calibrate(void)
{
    uint64_t t;
    int64_t n;
    paired_reading(&t, &n);
    if (n - calib_ns0 < 10000000 || t <= calib_ticks0) {
        return;
    }
    stamp_ns_per_tick = (double)(n - calib_ns0) / (double)(t - calib_ticks0);
    anchor_ticks = t;
    anchor_ns = n > last_stamp ? n : last_stamp;
}

/* One (ticks, ns) pair read close together: a preemption between the two
   reads would skew the ratio, so the tick read is bracketed by two clock
   reads and retried while they are far apart. */
static void
paired_reading(uint64_t *ticks, int64_t *ns)
{
    for (int tries = 0; tries < 100; tries++) {
        int64_t a = observe_now_ns();
        uint64_t t = observe_ticks();
        int64_t b = observe_now_ns();
        *ticks = t;
        *ns = a + (b - a) / 2;
        if (b - a < 2000) {
            return;
        }
    }
}

static void
calibrate_initial(void)
{
    uint64_t t;
    int64_t n;
    paired_reading(&calib_ticks0, &calib_ns0);
    do {
        paired_reading(&t, &n);
    } while (n - calib_ns0 < 2000000);
    if (t > calib_ticks0) {
        duration_ns_per_tick = (double)(n - calib_ns0) / (double)(t - calib_ticks0);
    }
    stamp_ns_per_tick = duration_ns_per_tick;
    anchor_ticks = t;
    anchor_ns = n;
}

void
observe_arrive_slow(GreenletImpl *origin, GreenletImpl *target, int kind)
{
    uint64_t now = observe_ticks();
    if (run_time_since) {
        origin->run_ticks += now - slice_begin(origin);
        target->slice_start = now;
    }
    if (observe_active_logs) {
        observe_log_event(kind, origin, target, now);
    }
}

PyObject *
observe_run_ns(GreenletImpl *g)
{
    uint64_t ticks = g->run_ticks;
    ThreadRec *rec = greenlet_thread_of(g);
    if (run_time_since && rec != NULL && rec->current == g->self) {
        ticks += observe_ticks() - slice_begin(g);   /* the live slice */
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)((double)ticks * duration_ns_per_tick));
}

void
observe_thread_exit(ThreadRec *rec)
{
    GreenletImpl *cur = rec->current->pimpl;
    if (run_time_since) {
        uint64_t now = observe_ticks();
        cur->run_ticks += now - slice_begin(cur);
        cur->slice_start = now;
    }
}

/* ------------------------------------------------------------------ */
/* Registry                                                             */

void
observe_register(GreenletImpl *g)
{
    g->id = next_id++;
#ifdef GREENLET_NO_OBSERVE
    return;
#endif
    g->slice_start = run_time_since ? observe_ticks() : 0;
    g->reg_prev = registry_tail;
    g->reg_next = NULL;
    if (registry_tail) {
        registry_tail->reg_next = g;
    }
    else {
        registry_head = g;
    }
    registry_tail = g;
}

void
observe_unregister(GreenletImpl *g)
{
#ifdef GREENLET_NO_OBSERVE
    return;
#endif
    if (g->reg_prev) {
        g->reg_prev->reg_next = g->reg_next;
    }
    else if (registry_head == g) {
        registry_head = g->reg_next;
    }
    if (g->reg_next) {
        g->reg_next->reg_prev = g->reg_prev;
    }
    else if (registry_tail == g) {
        registry_tail = g->reg_prev;
    }
    g->reg_prev = g->reg_next = NULL;
}

static PyObject *
all_greenlets(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    Py_ssize_t n = 0;
    for (GreenletImpl *g = registry_head; g; g = g->reg_next) {
        n++;
    }
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    for (GreenletImpl *g = registry_head; g && i < n; g = g->reg_next) {
        /* An object in the middle of its deallocation is not offered. */
        if (Py_REFCNT(g->self) <= 0) {
            continue;
        }
        Py_INCREF(g->self);
        PyList_SET_ITEM(list, i++, (PyObject *)g->self);
    }
    if (i < n && PyList_SetSlice(list, i, n, NULL) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

/* ------------------------------------------------------------------ */
/* Spawn sites                                                          */

struct SpawnSite {
    int count;
    int *offsets;
    PyObject *codes[1];
};

int
observe_capture_spawn(GreenletImpl *g)
{
    int depth = observe_spawn_depth;
    SpawnSite *site = (SpawnSite *)FAULT_ALLOC(
        FAULT_SPAWN_SITE,
        PyMem_Malloc(sizeof(SpawnSite) + (size_t)depth * (sizeof(PyObject *) + sizeof(int))));
    if (site == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    site->offsets = (int *)(&site->codes[depth]);
    PyThreadState *ts = PyThreadState_Get();
    site->count = pystate_capture_stack(ts, depth, site->codes, site->offsets);
    if (site->count == 0) {
        PyMem_Free(site);
        return 0;
    }
    g->spawn = site;
    return 0;
}

void
observe_free_spawn(GreenletImpl *g)
{
    SpawnSite *site = g->spawn;
    if (site == NULL) {
        return;
    }
    g->spawn = NULL;
    for (int i = 0; i < site->count; i++) {
        Py_DECREF(site->codes[i]);
    }
    PyMem_Free(site);
}

static PyObject *
code_function_name(PyObject *code)
{
    PyObject *name = PyObject_GetAttrString(code, "co_qualname");
    if (name == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        name = PyObject_GetAttrString(code, "co_name");
    }
    return name;
}

PyObject *
observe_spawn_site(GreenletImpl *g)
{
    SpawnSite *site = g->spawn;
    if (site == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *result = PyTuple_New(site->count);
    if (result == NULL) {
        return NULL;
    }
    for (int i = 0; i < site->count; i++) {
        PyCodeObject *code = (PyCodeObject *)site->codes[i];
        PyObject *name = code_function_name((PyObject *)code);
        if (name == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyObject *item = Py_BuildValue(
            "(OiN)", code->co_filename, PyCode_Addr2Line(code, site->offsets[i]), name);
        if (item == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(result, i, item);
    }
    return result;
}

static PyObject *
set_spawn_tracking(PyObject *module, PyObject *arg)
{
    (void)module;
    long depth = PyLong_AsLong(arg);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (depth < 0) {
        PyErr_SetString(PyExc_ValueError, "spawn tracking depth must be >= 0");
        return NULL;
    }
    if (depth > 1000) {
        PyErr_SetString(PyExc_ValueError, "spawn tracking depth must be <= 1000");
        return NULL;
    }
    observe_spawn_depth = (int)depth;
    Py_RETURN_NONE;
}

static PyObject *
set_run_time_tracking(PyObject *module, PyObject *arg)
{
    (void)module;
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    if (on && !run_time_since) {
        calibrate();
        run_time_since = observe_ticks();
        if (run_time_since == 0) {
            run_time_since = 1;
        }
    }
    else if (!on && run_time_since) {
        /* The calling thread's live slice is kept; other threads' running
           greenlets lose the part of their slice since their last switch. */
        ThreadRec *rec = threads_tls;
        if (rec != NULL && rec->alive) {
            GreenletImpl *cur = rec->current->pimpl;
            cur->run_ticks += observe_ticks() - slice_begin(cur);
        }
        run_time_since = 0;
    }
    update_switch_work();
    Py_RETURN_NONE;
}

static PyObject *
get_run_time_tracking(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyBool_FromLong(run_time_since != 0);
}

static PyObject *
get_spawn_tracking(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(observe_spawn_depth);
}

/* ------------------------------------------------------------------ */
/* Switch logs                                                          */

typedef struct {
    int64_t t_ns;
    uint64_t origin;
    uint64_t target;
    unsigned long thread;
    int kind;
} LogEvent;

typedef struct {
    PyObject_HEAD
    LogEvent *ring;
    Py_ssize_t capacity;
    Py_ssize_t head;        /* index of the oldest event */
    Py_ssize_t count;
    unsigned long long dropped;
    int active;
} SwitchLogObject;

static SwitchLogObject **active_logs;
static int active_logs_capacity;

static PyObject *kind_names[SWITCH_KIND_COUNT];

void
observe_log_event(int kind, GreenletImpl *origin, GreenletImpl *target, uint64_t t)
{
    unsigned long thread = target->thread_id;
    int64_t stamp = ticks_to_monotonic_ns(t);
    if (stamp < last_stamp) {
        stamp = last_stamp;
    }
    last_stamp = stamp;
    for (int i = 0; i < observe_active_logs; i++) {
        SwitchLogObject *log = active_logs[i];
        Py_ssize_t slot;
        if (log->count == log->capacity) {
            slot = log->head;
            if (++log->head == log->capacity) {
                log->head = 0;
            }
            log->dropped++;
        }
        else {
            slot = log->head + log->count;
            if (slot >= log->capacity) {
                slot -= log->capacity;
            }
            log->count++;
        }
        LogEvent *e = &log->ring[slot];
        e->t_ns = stamp;
        e->origin = origin->id;
        e->target = target->id;
        e->thread = thread;
        e->kind = kind;
    }
}

static int
log_activate(SwitchLogObject *log)
{
    if (log->active) {
        return 0;
    }
    if (observe_active_logs == active_logs_capacity) {
        int cap = active_logs_capacity ? active_logs_capacity * 2 : 4;
        SwitchLogObject **n = (SwitchLogObject **)PyMem_Realloc(
            active_logs, (size_t)cap * sizeof(*n));
        if (n == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        active_logs = n;
        active_logs_capacity = cap;
    }
    active_logs[observe_active_logs++] = log;
    update_switch_work();
    log->active = 1;
    calibrate();
    return 0;
}

static void
log_deactivate(SwitchLogObject *log)
{
    if (!log->active) {
        return;
    }
    for (int i = 0; i < observe_active_logs; i++) {
        if (active_logs[i] == log) {
            memmove(&active_logs[i], &active_logs[i + 1],
                    (size_t)(observe_active_logs - i - 1) * sizeof(*active_logs));
            observe_active_logs--;
            update_switch_work();
            break;
        }
    }
    log->active = 0;
}

static PyObject *
switchlog_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"capacity", NULL};
    Py_ssize_t capacity = 65536;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:SwitchLog", kwlist, &capacity)) {
        return NULL;
    }
    if (capacity <= 0) {
        PyErr_SetString(PyExc_ValueError, "SwitchLog capacity must be > 0");
        return NULL;
    }
    if ((size_t)capacity > PY_SSIZE_T_MAX / sizeof(LogEvent)) {
        return PyErr_NoMemory();
    }
    SwitchLogObject *self = (SwitchLogObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* Allocated once: recording never allocates. */
    self->ring = (LogEvent *)PyMem_Malloc((size_t)capacity * sizeof(LogEvent));
    if (self->ring == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->capacity = capacity;
    return (PyObject *)self;
}

static void
switchlog_dealloc(SwitchLogObject *self)
{
    log_deactivate(self);
    PyMem_Free(self->ring);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
switchlog_start(SwitchLogObject *self, PyObject *unused)
{
    (void)unused;
    if (log_activate(self) < 0) {
        return NULL;
    }
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *
switchlog_stop(SwitchLogObject *self, PyObject *unused)
{
    (void)unused;
    log_deactivate(self);
    Py_RETURN_NONE;
}

static PyObject *
switchlog_exit(SwitchLogObject *self, PyObject *args)
{
    (void)args;
    log_deactivate(self);
    Py_RETURN_FALSE;
}

static PyObject *
switchlog_clear(SwitchLogObject *self, PyObject *unused)
{
    (void)unused;
    self->head = 0;
    self->count = 0;
    self->dropped = 0;
    Py_RETURN_NONE;
}

static PyObject *
switchlog_events(SwitchLogObject *self, void *closure)
{
    (void)closure;
    calibrate();
    /* Copied out first: building the tuples may run a collection, and
       whatever it runs (a killed orphan, a finalizer) may switch and so
       append to this very ring while we read it. */
    Py_ssize_t count = self->count;
    LogEvent *copy = (LogEvent *)PyMem_Malloc((size_t)(count ? count : 1) * sizeof(LogEvent));
    if (copy == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        copy[i] = self->ring[(self->head + i) % self->capacity];
    }
    PyObject *list = PyList_New(count);
    for (Py_ssize_t i = 0; list != NULL && i < count; i++) {
        LogEvent *e = &copy[i];
        PyObject *item = Py_BuildValue(
            "(LOKKk)", (long long)e->t_ns, kind_names[e->kind],
            (unsigned long long)e->origin, (unsigned long long)e->target, e->thread);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyMem_Free(copy);
    return list;
}

static PyObject *
switchlog_dropped(SwitchLogObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->dropped);
}

static PyObject *
switchlog_capacity(SwitchLogObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->capacity);
}

static PyObject *
switchlog_active(SwitchLogObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->active);
}

static Py_ssize_t
switchlog_len(SwitchLogObject *self)
{
    return self->count;
}

static PyObject *
switchlog_repr(SwitchLogObject *self)
{
    return PyUnicode_FromFormat("<greenlet.SwitchLog %s events=%zd capacity=%zd dropped=%llu>",
                                self->active ? "recording" : "stopped", self->count,
                                self->capacity, self->dropped);
}

static PyMethodDef switchlog_methods[] = {
    {"start", (PyCFunction)switchlog_start, METH_NOARGS,
     "Start recording (also what entering the with block does); returns the log."},
    {"stop", (PyCFunction)switchlog_stop, METH_NOARGS, "Stop recording; events stay readable."},
    {"clear", (PyCFunction)switchlog_clear, METH_NOARGS, "Forget the recorded events."},
    {"__enter__", (PyCFunction)switchlog_start, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)switchlog_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef switchlog_getset[] = {
    {"events", (getter)switchlog_events, NULL,
     "Recorded events, oldest first: (t_ns, kind, origin_id, target_id, thread_id).", NULL},
    {"dropped", (getter)switchlog_dropped, NULL, "Events lost because the ring was full.", NULL},
    {"capacity", (getter)switchlog_capacity, NULL, "Size of the ring, in events.", NULL},
    {"active", (getter)switchlog_active, NULL, "True while recording.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods switchlog_as_sequence = {
    .sq_length = (lenfunc)switchlog_len,
};

static PyTypeObject SwitchLog_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet.SwitchLog",
    .tp_basicsize = sizeof(SwitchLogObject),
    .tp_dealloc = (destructor)switchlog_dealloc,
    .tp_repr = (reprfunc)switchlog_repr,
    .tp_as_sequence = &switchlog_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SwitchLog(capacity=65536)\n\n"
              "Records every switch, throw, start, finish and kill of every thread\n"
              "into a ring buffer while active (use it as a context manager).  A full\n"
              "ring drops its oldest events and counts them in 'dropped'.",
    .tp_methods = switchlog_methods,
    .tp_getset = switchlog_getset,
    .tp_new = switchlog_new,
};

/* ------------------------------------------------------------------ */

static PyMethodDef observe_functions[] = {
    {"all_greenlets", all_greenlets, METH_NOARGS,
     "all_greenlets() -> list\n\nEvery greenlet alive in the process (all threads, every state,\n"
     "main greenlets included), in creation order."},
    {"set_run_time_tracking", set_run_time_tracking, METH_O,
     "set_run_time_tracking(on)\n\nAccount each greenlet's running time (gr_run_ns) from now on;\n"
     "off by default: it reads the CPU clock at every switch.  False stops it\n"
     "(the totals are kept)."},
    {"get_run_time_tracking", get_run_time_tracking, METH_NOARGS,
     "get_run_time_tracking() -> bool\n\nWhether gr_run_ns is being accounted."},
    {"set_spawn_tracking", set_spawn_tracking, METH_O,
     "set_spawn_tracking(depth)\n\nRecord the innermost 'depth' frames that create each new greenlet\n"
     "(gr_spawn_site); 0 turns it off."},
    {"get_spawn_tracking", get_spawn_tracking, METH_NOARGS,
     "get_spawn_tracking() -> int\n\nThe current spawn tracking depth (0: off)."},
    {NULL, NULL, 0, NULL},
};

int
observe_setup(PyObject *module)
{
    static const char *names[SWITCH_KIND_COUNT] = {"switch", "throw", "start", "finish", "kill"};
    for (int i = 0; i < SWITCH_KIND_COUNT; i++) {
        kind_names[i] = PyUnicode_InternFromString(names[i]);
        if (kind_names[i] == NULL) {
            return -1;
        }
    }
    calibrate_initial();
    if (PyType_Ready(&SwitchLog_Type) < 0) {
        return -1;
    }
    Py_INCREF(&SwitchLog_Type);
    if (PyModule_AddObject(module, "SwitchLog", (PyObject *)&SwitchLog_Type) < 0) {
        Py_DECREF(&SwitchLog_Type);
        return -1;
    }
    return PyModule_AddFunctions(module, observe_functions);
}
