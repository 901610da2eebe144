/*
 * What each CPython version keeps in its thread state on behalf of the code
 * that is running, saved and restored when greenlets switch.  Every
 * PY_VERSION_HEX branch of the project lives in this file.
 *
 *   all      context (+context_ver), the handled-exception stack
 *   3.10     frame, recursion_depth, trash nesting, cframe (+use_tracing)
 *   3.11     cframe (+use_tracing, current_frame), recursion depth as
 *            limit - remaining, trash nesting, the interpreter data stack
 *   3.12     cframe (+current_frame), Python and C recursion, trash nesting,
 *            data stack; frames on the C stack are hidden on demand
 *   3.13     current_frame, Python and C recursion, critical section,
 *            data stack; frames on the C stack are hidden on demand
 */
#include "pystate.h"
#include "faults.h"

#if PY_VERSION_HEX < 0x030B0000
#  include <frameobject.h>
#endif

#if PY_VERSION_HEX >= 0x030B0000
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif
#  include "internal/pycore_frame.h"
#endif

#include <string.h>
#include <stdatomic.h>

/* 3.10 and 3.11 keep "is anything tracing" in the per-call CFrame; it is a
   property of the thread, so it follows the switch from origin to target. */
#if PY_VERSION_HEX < 0x030C0000
static _Thread_local int carried_use_tracing;
#endif

int
pystate_is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* ------------------------------------------------------------------ */
/* Exceptions being handled and the contextvars context                */

static inline void
save_common(PyStateSaved *s, PyThreadState *ts)
{
    s->context = ts->context;
    s->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
#if PY_VERSION_HEX < 0x030B0000
    s->exc_type = ts->exc_state.exc_type;
    s->exc_value = ts->exc_state.exc_value;
    s->exc_traceback = ts->exc_state.exc_traceback;
#else
    s->exc_value = ts->exc_state.exc_value;
#endif
}

static inline void
restore_common(PyStateSaved *s, PyThreadState *ts)
{
    ts->context = s->context;
    ts->context_ver++;
    s->context = NULL;
    ts->exc_info = s->exc_info ? s->exc_info : &ts->exc_state;
#if PY_VERSION_HEX < 0x030B0000
    ts->exc_state.exc_type = s->exc_type;
    ts->exc_state.exc_value = s->exc_value;
    ts->exc_state.exc_traceback = s->exc_traceback;
    s->exc_type = s->exc_value = s->exc_traceback = NULL;
#else
    ts->exc_state.exc_value = s->exc_value;
    s->exc_value = NULL;
#endif
}

/* A new greenlet handles no exception and has an empty context (unless
   one was given to it before it started).  The thread state's fields still
   name the origin's objects, whose references now belong to the origin's
   saved state. */
static inline void
start_common(PyStateSaved *s, PyThreadState *ts)
{
    ts->context = s->context;
    s->context = NULL;
    ts->context_ver++;
    ts->exc_info = &ts->exc_state;
#if PY_VERSION_HEX < 0x030B0000
    ts->exc_state.exc_type = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.exc_traceback = NULL;
#else
    ts->exc_state.exc_value = NULL;
#endif
}

/* ------------------------------------------------------------------ */
/* The interpreter data stack (3.11+)                                   */

#if PY_VERSION_HEX >= 0x030B0000

/* A new greenlet gets a small first chunk of our own instead of the
   16 KiB mapping the interpreter would create on its first call; deeper
   code spills into interpreter-allocated chunks as usual.  The interpreter
   never frees a chunk without a predecessor, so ours come back to us. */
#define ROOT_CHUNK_BYTES 1024

/* Deeper code spills into chunks the interpreter takes from the object
   arena allocator: 16 KiB each on 3.11-3.13 (DATA_STACK_CHUNK_SIZE in
   Python/pystate.c), freed again as soon as the frames in them return.  A
   greenlet whose calls go back and forth across the end of its first chunk
   would map and unmap 16 KiB on every such call, ten times the cost of
   the call itself; so freed chunks of that size are kept in a small cache
   in front of the arena allocator.  Allocations of other sizes (the
   object allocator's own arenas) pass straight through. */
#define SPILL_CHUNK_BYTES (16 * 1024)
#define SPILL_CACHE_SLOTS 16

static PyObjectArenaAllocator base_arena;
static void *spill_cache[SPILL_CACHE_SLOTS];
static int spill_cached;
/* The arena allocator is process-wide; interpreters with their own GIL may
   call it at the same time. */
static atomic_flag spill_lock = ATOMIC_FLAG_INIT;

static inline void
spill_cache_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&spill_lock, memory_order_acquire)) {
    }
}

static inline void
spill_cache_unlock(void)
{
    atomic_flag_clear_explicit(&spill_lock, memory_order_release);
}

static void *
cached_arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size == SPILL_CHUNK_BYTES) {
        void *p = NULL;
        spill_cache_lock();
        if (spill_cached > 0) {
            p = spill_cache[--spill_cached];
        }
        spill_cache_unlock();
        if (p != NULL) {
            return p;
        }
    }
    return base_arena.alloc(base_arena.ctx, size);
}

static void
cached_arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == SPILL_CHUNK_BYTES && ptr != NULL) {
        int kept = 0;
        spill_cache_lock();
        if (spill_cached < SPILL_CACHE_SLOTS) {
            spill_cache[spill_cached++] = ptr;
            kept = 1;
        }
        spill_cache_unlock();
        if (kept) {
            return;
        }
    }
    base_arena.free(base_arena.ctx, ptr, size);
}

static void
free_chunk_chain(_PyStackChunk *chunk, _PyStackChunk *ours)
{
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    while (chunk != NULL) {
        _PyStackChunk *prev = chunk->previous;
        if (chunk == ours) {
            PyMem_RawFree(chunk);
        }
        else {
            arena.free(arena.ctx, chunk, chunk->size);
        }
        chunk = prev;
    }
}

static void
start_datastack(PyStateSaved *s, PyThreadState *ts)
{
    _PyStackChunk *chunk = s->root_chunk;
    ts->datastack_chunk = chunk;
    /* Like the interpreter's own root chunks, the first slot stays unused
       so that popping the bottom frame never tries to free the chunk. */
    ts->datastack_top = &chunk->data[1];
    ts->datastack_limit = (PyObject **)((char *)chunk + chunk->size);
}

#endif

/* ------------------------------------------------------------------ */
/* Exposing the frames of a suspended greenlet (3.12+)                 */

#if PY_VERSION_HEX >= 0x030C0000

/* When C calls back into Python, the interpreter links a small "entry"
   frame that lives on the C stack into the chain of interpreter frames.
   For a suspended greenlet that stack memory may since have been reused by
   another greenlet, so walking f_back would read garbage.  When someone
   asks for a suspended greenlet's frames we unlink those entry frames (the
   complete frames then point at each other directly) and remember the
   original links; they are put back before the greenlet runs again.  A
   switch therefore costs nothing per frame: only looking does. */
typedef struct PyStateExposure {
    Py_ssize_t count;
    Py_ssize_t capacity;
    struct {
        _PyInterpreterFrame *frame;
        _PyInterpreterFrame *previous;
    } links[1];
} PyStateExposure;

#define FRAME_HEADER_BYTES offsetof(_PyInterpreterFrame, localsplus)
#define MAX_FRAME_WALK 10000000

static inline PyCodeObject *
frame_code(const _PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030D0000
    return (PyCodeObject *)f->f_executable;
#else
    return f->f_code;
#endif
}

static int
frame_is_complete(const _PyInterpreterFrame *copy)
{
    if (copy->owner == FRAME_OWNED_BY_CSTACK) {
        return 0;
    }
    if (copy->owner == FRAME_OWNED_BY_GENERATOR) {
        return 1;
    }
    PyCodeObject *code = frame_code(copy);
#if PY_VERSION_HEX >= 0x030D0000
    if (!PyCode_Check(code)) {
        return 0;
    }
    return copy->instr_ptr >= _PyCode_CODE(code) + code->_co_firsttraceable;
#else
    return copy->prev_instr >= _PyCode_CODE(code) + code->_co_firsttraceable;
#endif
}

static int
add_link(PyStateExposure **tablep, _PyInterpreterFrame *frame)
{
    PyStateExposure *t = *tablep;
    if (t->count == t->capacity) {
        Py_ssize_t cap = t->capacity * 2;
        PyStateExposure *n = (PyStateExposure *)PyMem_RawRealloc(
            t, sizeof(PyStateExposure) + (size_t)cap * sizeof(t->links[0]));
        if (n == NULL) {
            return -1;
        }
        n->capacity = cap;
        *tablep = t = n;
    }
    t->links[t->count].frame = frame;
    t->links[t->count].previous = frame->previous;
    t->count++;
    return 0;
}

static int
expose_frames(PyStateSaved *s, const StackState *stack)
{
    if (s->exposure != NULL) {
        return 0;
    }
    PyStateExposure *t = (PyStateExposure *)FAULT_ALLOC(
        FAULT_FRAME_EXPOSURE,
        PyMem_RawMalloc(sizeof(PyStateExposure) + 7 * sizeof(t->links[0])));
    if (t == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->count = 0;
    t->capacity = 8;

    _PyInterpreterFrame *last_complete = NULL;
    _PyInterpreterFrame *f = s->frame;
    long steps = 0;
    while (f != NULL && steps++ < MAX_FRAME_WALK) {
        _PyInterpreterFrame copy;
        stack_read(stack, f, &copy, FRAME_HEADER_BYTES);
        if (frame_is_complete(&copy)) {
            if (last_complete != NULL && last_complete->previous != f) {
                if (add_link(&t, last_complete) < 0) {
                    goto nomem;
                }
                last_complete->previous = f;
            }
            last_complete = f;
        }
        f = copy.previous;
    }
    if (last_complete != NULL && last_complete->previous != NULL) {
        if (add_link(&t, last_complete) < 0) {
            goto nomem;
        }
        last_complete->previous = NULL;
    }
    s->exposure = t;
    return 0;

nomem:
    for (Py_ssize_t i = t->count - 1; i >= 0; i--) {
        t->links[i].frame->previous = t->links[i].previous;
    }
    PyMem_RawFree(t);
    PyErr_NoMemory();
    return -1;
}

static void
unexpose_frames(PyStateSaved *s)
{
    PyStateExposure *t = s->exposure;
    if (t == NULL) {
        return;
    }
    for (Py_ssize_t i = t->count - 1; i >= 0; i--) {
        t->links[i].frame->previous = t->links[i].previous;
    }
    s->exposure = NULL;
    PyMem_RawFree(t);
}

#endif /* 3.12+ */

/* ------------------------------------------------------------------ */
/* Save / restore / start / finish                                     */

void
pystate_save(PyStateSaved *s, PyThreadState *ts)
{
    save_common(s, ts);
#if PY_VERSION_HEX < 0x030B0000
    carried_use_tracing = ts->cframe->use_tracing;
    s->cframe = ts->cframe;
    s->frame = ts->frame;
    s->recursion_depth = ts->recursion_depth;
    s->trash_delete_nesting = ts->trash_delete_nesting;
#else
#  if PY_VERSION_HEX < 0x030C0000
    carried_use_tracing = ts->cframe->use_tracing;
    s->cframe = ts->cframe;
    s->frame = ts->cframe->current_frame;
    s->py_recursion_depth = ts->recursion_limit - ts->recursion_remaining;
    s->trash_delete_nesting = ts->trash_delete_nesting;
#  elif PY_VERSION_HEX < 0x030D0000
    s->cframe = ts->cframe;
    s->frame = ts->cframe->current_frame;
    s->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    s->c_recursion_remaining = ts->c_recursion_remaining;
    s->trash_delete_nesting = ts->trash.delete_nesting;
#  else
    s->frame = ts->current_frame;
    s->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    s->c_recursion_remaining = ts->c_recursion_remaining;
    s->critical_section = ts->critical_section;
#  endif
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
#endif
}

void
pystate_restore(PyStateSaved *s, PyThreadState *ts)
{
    restore_common(s, ts);
#if PY_VERSION_HEX < 0x030B0000
    ts->cframe = s->cframe;
    ts->cframe->use_tracing = carried_use_tracing;
    ts->frame = s->frame;
    ts->recursion_depth = s->recursion_depth;
    ts->trash_delete_nesting = s->trash_delete_nesting;
#else
#  if PY_VERSION_HEX < 0x030C0000
    ts->cframe = s->cframe;
    ts->cframe->use_tracing = (uint8_t)carried_use_tracing;
    ts->cframe->current_frame = s->frame;
    ts->recursion_remaining = ts->recursion_limit - s->py_recursion_depth;
    ts->trash_delete_nesting = s->trash_delete_nesting;
#  elif PY_VERSION_HEX < 0x030D0000
    unexpose_frames(s);
    ts->cframe = s->cframe;
    ts->cframe->current_frame = s->frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - s->py_recursion_depth;
    ts->c_recursion_remaining = s->c_recursion_remaining;
    ts->trash.delete_nesting = s->trash_delete_nesting;
#  else
    unexpose_frames(s);
    ts->current_frame = s->frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - s->py_recursion_depth;
    ts->c_recursion_remaining = s->c_recursion_remaining;
    ts->critical_section = s->critical_section;
#  endif
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit = s->datastack_limit;
#endif
}

int
pystate_prepare(PyStateSaved *s)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (s->root_chunk == NULL) {
        _PyStackChunk *chunk =
            (_PyStackChunk *)FAULT_ALLOC(FAULT_ROOT_CHUNK, PyMem_RawMalloc(ROOT_CHUNK_BYTES));
        if (chunk == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        chunk->previous = NULL;
        chunk->size = ROOT_CHUNK_BYTES;
        chunk->top = 0;
        s->root_chunk = chunk;
    }
#else
    (void)s;
#endif
    return 0;
}

/* The recursion depths are left as they are: a new greenlet carries on
   from the depth at which it was started, since it runs further down the
   same C stack. */
void
pystate_start(PyStateSaved *s, PyThreadState *ts, PyStateRoot *root)
{
#if PY_VERSION_HEX >= 0x030B0000
    start_datastack(s, ts);
#else
    (void)s;
#endif
    start_common(s, ts);
#if PY_VERSION_HEX < 0x030B0000
    root->cframe.use_tracing = carried_use_tracing;
    root->cframe.previous = &ts->root_cframe;
    ts->cframe = &root->cframe;
    ts->frame = NULL;
    ts->trash_delete_nesting = 0;
#elif PY_VERSION_HEX < 0x030C0000
    root->cframe.use_tracing = (uint8_t)carried_use_tracing;
    root->cframe.current_frame = NULL;
    root->cframe.previous = &ts->root_cframe;
    ts->cframe = &root->cframe;
    ts->trash_delete_nesting = 0;
#elif PY_VERSION_HEX < 0x030D0000
    root->cframe.current_frame = NULL;
    root->cframe.previous = &ts->root_cframe;
    ts->cframe = &root->cframe;
    ts->trash.delete_nesting = 0;
#else
    (void)root;
    ts->current_frame = NULL;
    ts->critical_section = 0;
#endif
}

void
pystate_finish(PyStateSaved *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    free_chunk_chain(ts->datastack_chunk, s->root_chunk);
    s->root_chunk = NULL;
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
#else
    (void)s;
    (void)ts;
#endif
}

#if PY_VERSION_HEX >= 0x030B0000
/* True if some frame object points into the frames of 's': freeing their
   memory would leave that object dangling. */
static int
frames_have_objects(PyStateSaved *s, const StackState *stack)
{
    long steps = 0;
    _PyInterpreterFrame *f = s->frame;
    while (f != NULL && steps++ < 10000000) {
        _PyInterpreterFrame copy;
        stack_read(stack, f, &copy, offsetof(_PyInterpreterFrame, localsplus));
#  if PY_VERSION_HEX >= 0x030C0000
        if (copy.owner != FRAME_OWNED_BY_CSTACK && copy.frame_obj != NULL) {
            return 1;
        }
#  else
        if (copy.frame_obj != NULL) {
            return 1;
        }
#  endif
        f = copy.previous;
    }
    return 0;
}
#endif

void
pystate_abandon(PyStateSaved *s, const StackState *stack)
{
    pystate_clear(s);
#if PY_VERSION_HEX >= 0x030C0000
    unexpose_frames(s);
#endif
#if PY_VERSION_HEX >= 0x030B0000
    /* The frames in these chunks hold references that are leaked on
       purpose: releasing them properly needs the greenlet's C stack, which
       will never run again.  If a frame object still points into a chunk,
       the chunks are leaked too rather than left dangling. */
    if (s->frame == NULL || !frames_have_objects(s, stack)) {
        free_chunk_chain(s->datastack_chunk, s->root_chunk);
    }
    s->root_chunk = NULL;
    s->datastack_chunk = NULL;
    s->datastack_top = NULL;
    s->datastack_limit = NULL;
#else
    (void)stack;
#endif
    s->frame = NULL;
}

void
pystate_detach_thread(PyThreadState *ts, PyStateSaved *current_saved,
                      PyStateSaved *main_saved)
{
    pystate_save(current_saved, ts);
    pystate_restore(main_saved, ts);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */

PyObject *
pystate_current_frame(PyThreadState *ts)
{
    PyFrameObject *f = PyThreadState_GetFrame(ts);
    if (f == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return (PyObject *)f;
}

PyObject *
pystate_top_frame(PyStateSaved *s, const StackState *stack)
{
#if PY_VERSION_HEX < 0x030B0000
    (void)stack;
    if (s->frame == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(s->frame);
    return (PyObject *)s->frame;
#else
    if (s->frame == NULL) {
        Py_RETURN_NONE;
    }
#  if PY_VERSION_HEX >= 0x030C0000
    if (expose_frames(s, stack) < 0) {
        return NULL;
    }
    /* The top frame is never an entry frame, but it may be incomplete (a
       frame being set up); the first complete one is what Python shows. */
    _PyInterpreterFrame *f = s->frame;
    for (;;) {
        _PyInterpreterFrame copy;
        stack_read(stack, f, &copy, offsetof(_PyInterpreterFrame, localsplus));
        if (frame_is_complete(&copy)) {
            break;
        }
        f = copy.previous;
        if (f == NULL) {
            Py_RETURN_NONE;
        }
    }
#  else
    (void)stack;
    _PyInterpreterFrame *f = s->frame;
#  endif
    /* Frame objects are made by the interpreter for the frame the calling
       thread is executing; point it at ours for the duration of the call.
       The collector is held off so no foreign code runs meanwhile. */
    PyThreadState *me = PyThreadState_Get();
    int gc_was_enabled = PyGC_Disable();
#  if PY_VERSION_HEX < 0x030D0000
    _PyInterpreterFrame *saved = me->cframe->current_frame;
    me->cframe->current_frame = f;
    PyFrameObject *result = PyThreadState_GetFrame(me);
    me->cframe->current_frame = saved;
#  else
    _PyInterpreterFrame *saved = me->current_frame;
    me->current_frame = f;
    PyFrameObject *result = PyThreadState_GetFrame(me);
    me->current_frame = saved;
#  endif
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    if (result == NULL) {
        return PyErr_NoMemory();
    }
    return (PyObject *)result;
#endif
}

PyObject *
pystate_frame_location(PyObject *frame)
{
    if (frame == NULL || !PyFrame_Check(frame)) {
        return NULL;
    }
    PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
    int line = PyFrame_GetLineNumber((PyFrameObject *)frame);
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *name = code->co_qualname;
#else
    PyObject *name = code->co_name;
#endif
    PyObject *r = PyUnicode_FromFormat("%U:%d in %U", code->co_filename, line, name);
    Py_DECREF(code);
    return r;
}

int
pystate_capture_stack(PyThreadState *ts, int depth, PyObject **codes, int *offsets)
{
    int n = 0;
#if PY_VERSION_HEX < 0x030B0000
    for (PyFrameObject *f = ts->frame; f != NULL && n < depth; f = f->f_back) {
        Py_INCREF(f->f_code);
        codes[n] = (PyObject *)f->f_code;
        offsets[n] = f->f_lasti * (int)sizeof(_Py_CODEUNIT);
        n++;
    }
#else
#  if PY_VERSION_HEX < 0x030D0000
    _PyInterpreterFrame *f = ts->cframe->current_frame;
#  else
    _PyInterpreterFrame *f = ts->current_frame;
#  endif
    for (; f != NULL && n < depth; f = f->previous) {
#  if PY_VERSION_HEX >= 0x030C0000
        if (!frame_is_complete(f)) {
            continue;
        }
        PyCodeObject *code = frame_code(f);
#  else
        PyCodeObject *code = f->f_code;
        if (f->owner != FRAME_OWNED_BY_GENERATOR
            && f->prev_instr < _PyCode_CODE(code) + code->_co_firsttraceable) {
            continue;
        }
#  endif
#  if PY_VERSION_HEX >= 0x030D0000
        _Py_CODEUNIT *instr = f->instr_ptr;
#  else
        _Py_CODEUNIT *instr = f->prev_instr;
#  endif
        Py_INCREF(code);
        codes[n] = (PyObject *)code;
        offsets[n] = (int)(instr - _PyCode_CODE(code)) * (int)sizeof(_Py_CODEUNIT);
        n++;
    }
#endif
    return n;
}

/* ------------------------------------------------------------------ */
/* GC, context, tracing                                                */

int
pystate_traverse(PyStateSaved *s, visitproc visit, void *arg)
{
    Py_VISIT(s->context);
    Py_VISIT(s->exc_value);
#if PY_VERSION_HEX < 0x030B0000
    Py_VISIT(s->exc_type);
    Py_VISIT(s->exc_traceback);
#endif
    return 0;
}

#if PY_VERSION_HEX >= 0x030B0000
static int
traverse_interpreter_frame(_PyInterpreterFrame *f, visitproc visit, void *arg)
{
    PyFrameObject *fo = f->frame_obj;
    if (fo != NULL && Py_REFCNT(fo) > 1) {
        /* Reachable through a frame object held elsewhere: whoever holds
           it may keep the greenlet alive through these locals. */
        return 0;
    }
#  if PY_VERSION_HEX >= 0x030D0000
    PyObject *code = f->f_executable;
#  else
    PyObject *code = (PyObject *)f->f_code;
#  endif
#  if PY_VERSION_HEX >= 0x030C0000
    PyObject *func = f->f_funcobj;
#  else
    PyObject *func = (PyObject *)f->f_func;
#  endif
    Py_VISIT(code);
    Py_VISIT(func);
    Py_VISIT(f->f_locals);
    Py_VISIT(fo);
    if (code != NULL && PyCode_Check(code)) {
        /* Only the fast locals, cells and free variables: the part of the
           value stack in use is not recorded while a frame executes. */
        int n = ((PyCodeObject *)code)->co_nlocalsplus;
        for (int i = 0; i < n; i++) {
            Py_VISIT(f->localsplus[i]);
        }
    }
    return 0;
}
#endif

int
pystate_traverse_frames(PyStateSaved *s, const StackState *stack, visitproc visit, void *arg)
{
#if PY_VERSION_HEX < 0x030B0000
    /* Executing frames are not tracked by the collector: the C stack that
       runs them owns one reference, and the next younger frame's f_back one
       more.  Frames with any other owner (a generator, a traceback, someone
       holding the frame object) are left alone. */
    (void)stack;
    Py_ssize_t expected = 1;
    for (PyFrameObject *f = s->frame; f != NULL; f = f->f_back) {
        if (f->f_gen == NULL && !PyObject_GC_IsTracked((PyObject *)f)
            && Py_REFCNT(f) == expected) {
            int r = Py_TYPE(f)->tp_traverse((PyObject *)f, visit, arg);
            if (r) {
                return r;
            }
        }
        expected = 2;
    }
    return 0;
#else
    /* Frames owned by the thread live in this greenlet's data stack chunks;
       entry frames (3.12+) sit on its C stack, possibly in the saved copy,
       and own nothing.  Generator frames belong to their generator. */
    long steps = 0;
    _PyInterpreterFrame *f = s->frame;
    while (f != NULL && steps++ < 10000000) {
        _PyInterpreterFrame copy;
        stack_read(stack, f, &copy, offsetof(_PyInterpreterFrame, localsplus));
        if (copy.owner == FRAME_OWNED_BY_THREAD) {
            int r = traverse_interpreter_frame(f, visit, arg);
            if (r) {
                return r;
            }
        }
        f = copy.previous;
    }
    return 0;
#endif
}

void
pystate_clear(PyStateSaved *s)
{
    Py_CLEAR(s->context);
    Py_CLEAR(s->exc_value);
#if PY_VERSION_HEX < 0x030B0000
    Py_CLEAR(s->exc_type);
    Py_CLEAR(s->exc_traceback);
#endif
}

PyObject *
pystate_get_context(PyThreadState *ts)
{
    return ts->context;
}

void
pystate_set_context(PyThreadState *ts, PyObject *ctx)
{
    PyObject *old = ts->context;
    ts->context = ctx;
    ts->context_ver++;
    Py_XDECREF(old);
}

void
pystate_enter_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX < 0x030B0000
    ts->tracing++;
    ts->cframe->use_tracing = 0;
#else
    PyThreadState_EnterTracing(ts);
#endif
}

void
pystate_leave_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX < 0x030B0000
    ts->tracing--;
    ts->cframe->use_tracing = (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL);
#else
    PyThreadState_LeaveTracing(ts);
#endif
}

#if PY_VERSION_HEX < 0x030D0000
int
pystate_trash_delete_nesting(PyThreadState *ts)
{
#  if PY_VERSION_HEX < 0x030C0000
    return ts->trash_delete_nesting;
#  else
    return ts->trash.delete_nesting;
#  endif
}
#endif

void
pystate_setup(void)
{
#if PY_VERSION_HEX >= 0x030B0000
    static int done;
    if (done) {
        return;
    }
    done = 1;
    PyObject_GetArenaAllocator(&base_arena);
    PyObjectArenaAllocator cached = {NULL, cached_arena_alloc, cached_arena_free};
    PyObject_SetArenaAllocator(&cached);
#endif
}
