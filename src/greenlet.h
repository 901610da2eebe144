/*
 * Public C API of the greenlet package.
 *
 * Binary compatible with greenlet 3.x: extensions compiled against
 * upstream's header (gevent's wheels among them) work unchanged.  The
 * object layout is fixed at PyObject_HEAD plus three pointers (40 bytes on
 * a 64-bit build) because Cython subclasses check tp_basicsize at import.
 *
 * Use from an extension:
 *
 *     #include "greenlet/greenlet.h"
 *     ...
 *     PyGreenlet_Import();          // once, at module init
 *     if (_PyGreenlet_API == NULL) return NULL;
 */
#ifndef Py_GREENLETOBJECT_H
#define Py_GREENLETOBJECT_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Frozen at the value older clients compare against; not our version. */
#define GREENLET_VERSION "1.0.0"

#ifndef GREENLET_MODULE
#define implementation_ptr_t void*
#endif

typedef struct _greenlet {
    PyObject_HEAD
    PyObject* weakreflist;
    PyObject* dict;
    implementation_ptr_t pimpl;
} PyGreenlet;

#define PyGreenlet_Check(op) ((op) && PyObject_TypeCheck((op), &PyGreenlet_Type))

/* The slots of the capsule "greenlet._C_API", in this order. */
#define PyGreenlet_Type_NUM 0
#define PyExc_GreenletError_NUM 1
#define PyExc_GreenletExit_NUM 2
#define PyGreenlet_New_NUM 3
#define PyGreenlet_GetCurrent_NUM 4
#define PyGreenlet_Throw_NUM 5
#define PyGreenlet_Switch_NUM 6
#define PyGreenlet_SetParent_NUM 7
#define PyGreenlet_MAIN_NUM 8
#define PyGreenlet_STARTED_NUM 9
#define PyGreenlet_ACTIVE_NUM 10
#define PyGreenlet_GET_PARENT_NUM 11

#define PyGreenlet_API_pointers 12

#ifndef GREENLET_MODULE
/* Each translation unit that includes this header gets its own table. */
static void** _PyGreenlet_API = NULL;

#define PyGreenlet_Type \
    (*(PyTypeObject*)_PyGreenlet_API[PyGreenlet_Type_NUM])

#define PyExc_GreenletError \
    ((PyObject*)_PyGreenlet_API[PyExc_GreenletError_NUM])

#define PyExc_GreenletExit \
    ((PyObject*)_PyGreenlet_API[PyExc_GreenletExit_NUM])

/* PyGreenlet* PyGreenlet_New(PyObject* run, PyGreenlet* parent); both may be NULL. */
#define PyGreenlet_New \
    (*(PyGreenlet* (*)(PyObject* run, PyGreenlet* parent)) \
         _PyGreenlet_API[PyGreenlet_New_NUM])

/* PyGreenlet* PyGreenlet_GetCurrent(void); a new reference. */
#define PyGreenlet_GetCurrent \
    (*(PyGreenlet* (*)(void))_PyGreenlet_API[PyGreenlet_GetCurrent_NUM])

/* PyObject* PyGreenlet_Throw(PyGreenlet*, PyObject* typ, PyObject* val, PyObject* tb); */
#define PyGreenlet_Throw \
    (*(PyObject* (*)(PyGreenlet* self, PyObject* typ, PyObject* val, PyObject* tb)) \
         _PyGreenlet_API[PyGreenlet_Throw_NUM])

/* PyObject* PyGreenlet_Switch(PyGreenlet*, PyObject* args, PyObject* kwargs); */
#define PyGreenlet_Switch \
    (*(PyObject* (*)(PyGreenlet* greenlet, PyObject* args, PyObject* kwargs)) \
         _PyGreenlet_API[PyGreenlet_Switch_NUM])

/* int PyGreenlet_SetParent(PyObject* greenlet, PyObject* nparent); */
#define PyGreenlet_SetParent \
    (*(int (*)(PyGreenlet* greenlet, PyGreenlet* nparent)) \
         _PyGreenlet_API[PyGreenlet_SetParent_NUM])

/* PyGreenlet* PyGreenlet_GetParent(PyObject*); a new reference, or NULL
   without an exception for a main greenlet. */
#define PyGreenlet_GetParent \
    (*(PyGreenlet* (*)(PyGreenlet*))_PyGreenlet_API[PyGreenlet_GET_PARENT_NUM])

/* Deprecated alias. */
#define PyGreenlet_GET_PARENT PyGreenlet_GetParent

#define PyGreenlet_MAIN \
    (*(int (*)(PyGreenlet*))_PyGreenlet_API[PyGreenlet_MAIN_NUM])

#define PyGreenlet_STARTED \
    (*(int (*)(PyGreenlet*))_PyGreenlet_API[PyGreenlet_STARTED_NUM])

#define PyGreenlet_ACTIVE \
    (*(int (*)(PyGreenlet*))_PyGreenlet_API[PyGreenlet_ACTIVE_NUM])

/* Fill _PyGreenlet_API from the capsule; NULL with an exception on failure. */
#define PyGreenlet_Import() \
    { _PyGreenlet_API = (void**)PyCapsule_Import("greenlet._C_API", 0); }

#endif /* GREENLET_MODULE */

#ifdef __cplusplus
}
#endif
#endif /* !Py_GREENLETOBJECT_H */
