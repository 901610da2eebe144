"""Cython extension types that subclass greenlet, as gevent's compiled Greenlet does.

``cy_greenlet`` is ``_cy_greenlet.pyx`` built at test time against the
installed greenlet.h.  Importing it already checked, in Cython's generated
code, that ``greenlet.greenlet.__basicsize__`` equals ``sizeof(PyGreenlet)``;
the tests then use the subclasses' own C fields, which Cython places right
after the PyGreenlet struct, together with greenlet's switching, throwing,
weak references, deallocation and garbage collection.
"""

import gc
import weakref

import pytest

import greenlet


def _collect_until(predicate, rounds=5):
    for _ in range(rounds):
        if predicate():
            return True
        gc.collect()
    return predicate()


def test_import_checked_the_base_size(cy_greenlet):
    assert issubclass(cy_greenlet.CyGreenlet, greenlet.greenlet)
    assert cy_greenlet.CyGreenlet.__base__ is greenlet.greenlet
    # The C fields come after the PyGreenlet struct.
    assert cy_greenlet.CyGreenlet.__basicsize__ > greenlet.greenlet.__basicsize__
    assert cy_greenlet.CyGreenlet.__weakrefoffset__ == greenlet.greenlet.__weakrefoffset__


def test_cython_rejects_a_base_of_the_wrong_size(cython_builder, tmp_path):
    """The control for the test above: a header size that differs fails the import."""
    pyx = tmp_path / "_cy_wrong_size.pyx"
    pyx.write_text(
        "cdef extern from *:\n"
        '    """\n'
        '    #include "greenlet/greenlet.h"\n'
        "    typedef struct { PyGreenlet base; void *extra[4]; } BiggerGreenlet;\n"
        '    """\n'
        "    ctypedef class greenlet.greenlet [object BiggerGreenlet, check_size error]:\n"
        "        pass\n"
        "\n"
        "cdef class Sub(greenlet):\n"
        "    pass\n"
    )
    with pytest.raises(ValueError, match="size changed"):
        cython_builder("_cy_wrong_size", str(pyx))


def test_c_api_from_cython(cy_greenlet):
    assert cy_greenlet.getcurrent() is greenlet.getcurrent()
    g = cy_greenlet.CyGreenlet()
    assert not cy_greenlet.started(g)
    child = greenlet.greenlet(lambda: (cy_greenlet.getcurrent(), cy_greenlet.active(g)))
    assert child.switch() == (child, False)


def test_create(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    assert isinstance(g, greenlet.greenlet)
    assert g.parent is greenlet.getcurrent()
    assert g.log == []
    assert g.rounds == 0
    assert not g and not g.dead
    assert " pending>" in repr(g)


def test_switch_back_and_forth(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    assert g.switch(1) == 2
    assert g and not g.dead
    values = [g.switch(i) for i in range(2, 50)]
    assert values == [2 * i for i in range(2, 50)]
    assert g.switch("stop") == ("done", 49)
    assert g.dead
    assert g.log[0] == ("start", (1,))
    assert g.log[1:-1] == [("got", i) for i in range(2, 50)] + [("got", "stop")]
    assert g.log[-1] == "finally"


def test_fields_survive_switches(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    g.switch(1)
    g.log.append("outside")
    g.rounds += 100
    assert g.switch(3) == 6
    assert "outside" in g.log
    assert g.rounds == 102


def test_many_live_instances(cy_greenlet):
    many = [cy_greenlet.CyGreenlet() for _ in range(200)]
    for i, g in enumerate(many):
        assert g.switch(i) == 2 * i
    for i, g in enumerate(many):
        assert g.switch(i + 1) == 2 * (i + 1)
    for g in many:
        assert g.switch("stop") == ("done", 2)
        assert g.dead


def test_throw_into_it(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    g.switch(1)
    assert g.throw(KeyError, "thrown") == ("handled", "KeyError")
    assert g.dead
    assert g.log[-2:] == [("caught", "KeyError", ("thrown",)), "finally"]


def test_throw_greenlet_exit_into_it(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    g.switch(1)
    result = g.throw()
    assert isinstance(result, greenlet.GreenletExit)
    assert g.dead
    assert g.log[-2:] == ["exit", "finally"]


def test_throw_into_unstarted(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    with pytest.raises(ValueError):
        g.throw(ValueError)
    assert g.dead
    assert g.log == []


def test_python_subclass_of_the_cython_subclass(cy_greenlet):
    class PyGreenletOfCy(cy_greenlet.CyGreenlet):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def run(self, *args):
            self.log.append(("python run", self.tag))
            return super().run(*args)

    g = PyGreenletOfCy("t")
    assert g.__dict__ == {"tag": "t"}
    assert g.switch(5) == 10
    assert g.switch("stop") == ("done", 1)
    assert g.log[0] == ("python run", "t")
    assert g.log[-1] == "finally"
    g.extra = [1, 2]
    assert g.__dict__ == {"tag": "t", "extra": [1, 2]}
    ref = weakref.ref(g)
    assert ref() is g


def test_weakref(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    ref = weakref.ref(g)
    assert ref() is g
    g.switch(1)
    assert ref() is g
    g.switch("stop")
    del g
    assert _collect_until(lambda: ref() is None)


def test_dropping_a_suspended_instance_throws_greenlet_exit(cy_greenlet):
    log = []

    def body():
        try:
            log.append("started")
            greenlet.getcurrent().parent.switch("suspended")
        except greenlet.GreenletExit as exc:
            log.append(("exit", exc.args))
            raise
        finally:
            log.append("finally")

    g = cy_greenlet.CyPlain(body, log=[])
    g.payload = object()
    assert g.switch() == "suspended"
    ref = weakref.ref(g)
    del g
    assert ref() is None
    assert log == [
        "started",
        ("exit", ("Killing the greenlet because all references have vanished.",)),
        "finally",
    ]


def test_dropping_a_suspended_python_subclass_instance(cy_greenlet):
    class Sub(cy_greenlet.CyPlain):
        pass

    log = []

    def body():
        try:
            greenlet.getcurrent().parent.switch("suspended")
        finally:
            log.append("finally")

    g = Sub(body)
    g.attribute = "x"
    assert g.switch() == "suspended"
    ref = weakref.ref(g)
    del g
    assert ref() is None
    assert log == ["finally"]


def test_cycle_through_an_unstarted_instance_is_collected(cy_greenlet):
    g = cy_greenlet.CyPlain(lambda: None)
    g.payload = [g]  # a cycle through the Cython C field
    g.log = {"self": g}
    ref = weakref.ref(g)
    del g
    assert _collect_until(lambda: ref() is None)


def test_cycle_through_a_dead_instance_is_collected(cy_greenlet):
    g = cy_greenlet.CyGreenlet()
    g.switch(1)
    g.switch("stop")
    g.log.append(g)
    ref = weakref.ref(g)
    del g
    assert _collect_until(lambda: ref() is None)


def test_cycle_through_a_python_subclass_dict_is_collected(cy_greenlet):
    class Sub(cy_greenlet.CyPlain):
        pass

    g = Sub(lambda: None)
    g.me = g
    ref = weakref.ref(g)
    del g
    assert _collect_until(lambda: ref() is None)


def test_parent_is_a_cython_instance(cy_greenlet):
    parent = cy_greenlet.CyGreenlet()
    parent.switch(1)  # suspended, waiting for a value from its children
    child = greenlet.greenlet(lambda: 21, parent=parent)
    # The child's result resumes the parent's run, which doubles it and
    # switches to its own parent: this greenlet.
    assert child.switch() == 42
    assert child.dead
    assert parent.log[-1] == ("got", 21)
    assert parent.switch("stop") == ("done", 2)
