/* Stand-in for <Python.h> so that src/stack.c can be compiled on its own
   for the C-level test of the switch primitive: stack.c needs only the raw
   allocator (and src/faults.h, which it includes, names PyObject). */
#ifndef SHIM_PYTHON_H
#define SHIM_PYTHON_H
#include <stdlib.h>
#define PyMem_RawRealloc realloc
#define PyMem_RawFree free
typedef struct _object PyObject;
#endif
