# cython: language_level=3
"""Cython extension types that subclass greenlet, the way gevent's Greenlet does.

Cython compares ``greenlet.greenlet.__basicsize__`` with ``sizeof(PyGreenlet)``
from the header when this module is imported (``check_size error`` makes a
mismatch an import error), and lays the fields of its subclasses out right
after the PyGreenlet struct.
"""

cdef extern from "greenlet/greenlet.h":
    ctypedef class greenlet.greenlet [object PyGreenlet, check_size error]:
        pass

    void PyGreenlet_Import()
    object PyGreenlet_GetCurrent()
    bint PyGreenlet_STARTED(greenlet g)
    bint PyGreenlet_ACTIVE(greenlet g)

PyGreenlet_Import()

from greenlet import GreenletExit


def getcurrent():
    """greenlet.getcurrent() through the C API."""
    return PyGreenlet_GetCurrent()


def started(greenlet g):
    return PyGreenlet_STARTED(g)


def active(greenlet g):
    return PyGreenlet_ACTIVE(g)


cdef class CyGreenlet(greenlet):
    """A greenlet whose ``run`` echoes values back to its parent, doubled."""

    cdef public object log
    cdef public long rounds

    def __init__(self, *args, **kwargs):
        greenlet.__init__(self, *args, **kwargs)
        self.log = []
        self.rounds = 0

    def run(self, *args):
        cdef object log = self.log
        log.append(("start", args))
        value = args[0] if args else None
        try:
            while value != "stop":
                self.rounds += 1
                value = self.parent.switch(value * 2)
                log.append(("got", value))
        except GreenletExit:
            log.append("exit")
            raise
        except Exception as exc:
            log.append(("caught", type(exc).__name__, exc.args))
            return ("handled", type(exc).__name__)
        finally:
            log.append("finally")
        return ("done", self.rounds)


cdef class CyPlain(greenlet):
    """A greenlet with C fields and no ``run`` method of its own.

    Its run callable comes from the constructor and does not reference the
    greenlet, so dropping the last reference to a suspended one releases it.
    """

    cdef public object log
    cdef public object payload

    def __init__(self, run=None, parent=None, log=None):
        if parent is None:
            greenlet.__init__(self, run)
        else:
            greenlet.__init__(self, run, parent)
        self.log = log
        self.payload = None

    def describe(self):
        return (type(self).__name__, self.log is not None, self.payload)
