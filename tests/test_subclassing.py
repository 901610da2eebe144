"""Subclasses of greenlet, instance dicts, weakrefs and refusal to pickle."""

import copy
import gc
import pickle
import sys
import warnings
import weakref

import pytest

from greenlet import getcurrent
from greenlet import greenlet

SERIALIZE_MESSAGE = "cannot serialize 'greenlet.greenlet' object"


class WithRun(greenlet):
    def run(self, *args, **kwargs):
        return ("WithRun.run", args, kwargs)


class CustomInit(greenlet):
    def __init__(self, a, b, c=3):
        super().__init__()
        self.values = (a, b, c)

    def run(self):
        return self.values


class NoSuperInit(greenlet):
    def __init__(self, value):  # noqa: super().__init__ deliberately not called
        self.value = value

    def run(self):
        return ("value", self.value)


def test_subclass_is_a_greenlet():
    g = WithRun()
    assert isinstance(g, greenlet)
    assert issubclass(WithRun, greenlet)
    assert type(g) is WithRun


def test_subclass_run_method_receives_switch_args():
    assert WithRun().switch(1, k=2) == ("WithRun.run", (1,), {"k": 2})


def test_subclass_with_custom_init_signature():
    assert CustomInit(1, 2).switch() == (1, 2, 3)
    assert CustomInit(1, 2, c=4).switch() == (1, 2, 4)


def test_init_without_super_still_has_current_parent():
    g = NoSuperInit(7)
    assert g.parent is getcurrent()
    assert g.switch() == ("value", 7)

    def run():
        inner = NoSuperInit(8)
        return inner.parent is getcurrent(), inner.switch()

    assert greenlet(run).switch() == (True, ("value", 8))


def test_new_without_init_has_current_parent():
    g = greenlet.__new__(greenlet)
    assert g.parent is getcurrent()
    assert not g and not g.dead
    g.run = lambda: "ran"
    assert g.switch() == "ran"


def test_new_rejects_non_subtype():
    with pytest.raises(TypeError):
        greenlet.__new__(int)


def test_subclass_overriding_new():
    class CustomNew(greenlet):
        def __new__(cls, *args, **kwargs):
            return greenlet.__new__(cls)

        def __init__(self, x, y):
            super().__init__(run=lambda: x + y)

    g = CustomNew(1, 2)
    assert g.parent is getcurrent()
    assert g.switch() == 3


def test_switch_descriptor_rejects_other_types():
    with pytest.raises(TypeError):
        greenlet.switch(1)
    with pytest.raises(TypeError):
        greenlet.throw("x")


def test_constructor_argument_errors():
    with pytest.raises(TypeError) as info:
        greenlet(None, None, None)
    assert str(info.value) == "green() takes at most 2 arguments (3 given)"
    with pytest.raises(TypeError) as info:
        greenlet(foo=1)
    # The wording comes from CPython's argument parser and changed in 3.13.
    if sys.version_info >= (3, 13):
        assert str(info.value) == "green() got an unexpected keyword argument 'foo'"
    else:
        assert str(info.value) == "'foo' is an invalid keyword argument for green()"
    with pytest.raises(TypeError):
        greenlet(lambda: None, run=lambda: None)


def test_subclass_with_slots_still_has_dict():
    class Slotted(greenlet):
        __slots__ = ("a",)

    g = Slotted(lambda: None)
    g.a = 1
    g.b = 2  # the base type provides __dict__
    assert g.a == 1
    assert g.__dict__ == {"b": 2}
    assert weakref.ref(g)() is g


def test_subclass_attributes_and_methods():
    class Named(greenlet):
        label = "class label"

        def describe(self):
            return "%s:%s" % (self.label, self.dead)

    g = Named(lambda: None)
    assert g.describe() == "class label:False"
    g.label = "instance label"
    g.switch()
    assert g.describe() == "instance label:True"


def test_subclass_weakref():
    g = WithRun()
    ref = weakref.ref(g)
    assert ref() is g
    g.switch()
    del g
    assert ref() is None


def test_subclass_instance_dict_cycle_collected():
    g = WithRun()
    g.me = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_suspended_in_own_run_method_is_an_orphan():
    # The run callable (a bound method of the greenlet) is kept while the
    # greenlet runs, so dropping the last outside reference does not free
    # it; but nothing outside the cycle greenlet -> run -> greenlet can
    # reach it, so the collector closes it.  (Upstream greenlet keeps such a
    # greenlet forever: there every suspended greenlet is a GC root.)
    log = []

    class Selfish(greenlet):
        def run(self):
            del self
            try:
                getcurrent().parent.switch()
            finally:
                log.append("finally")

    g = Selfish()
    g.switch()
    ref = weakref.ref(g)
    del g
    assert ref() is not None
    assert log == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert log == ["finally"]
    assert ref() is None


def test_suspended_in_own_run_method_with_an_outside_reference_is_kept():
    log = []

    class Selfish(greenlet):
        def run(self):
            del self
            try:
                getcurrent().parent.switch()
            finally:
                log.append("finally")

    g = Selfish()
    g.switch()
    keep = {"g": g}
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is keep["g"]
    assert log == []
    ref().switch()
    assert log == ["finally"]


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_refused(protocol):
    for g in (greenlet(lambda: None), getcurrent()):
        with pytest.raises(TypeError) as info:
            pickle.dumps(g, protocol)
        assert str(info.value) == SERIALIZE_MESSAGE


@pytest.mark.parametrize("protocol", [0, 1])
def test_pickle_old_protocols_refused(protocol):
    with pytest.raises(TypeError):
        pickle.dumps(greenlet(lambda: None), protocol)


def test_copy_and_deepcopy_refused():
    g = greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        copy.copy(g)
    assert str(info.value) == SERIALIZE_MESSAGE
    with pytest.raises(TypeError) as info:
        copy.deepcopy(g)
    assert str(info.value) == SERIALIZE_MESSAGE
    with pytest.raises(TypeError) as info:
        copy.deepcopy([1, {"g": g}])
    assert str(info.value) == SERIALIZE_MESSAGE


def test_getstate_refused():
    with pytest.raises(TypeError) as info:
        greenlet(lambda: None).__getstate__()
    assert str(info.value) == SERIALIZE_MESSAGE


def test_subclass_pickle_message_uses_subclass_name():
    class Picky(greenlet):
        pass

    with pytest.raises(TypeError) as info:
        pickle.dumps(Picky())
    assert str(info.value) == "cannot serialize 'Picky' object"


class Portable(greenlet):
    def __reduce__(self):
        return (Portable, ())


def test_subclass_can_define_its_own_reduce():
    clone = pickle.loads(pickle.dumps(Portable()))
    assert type(clone) is Portable
    assert clone.parent is getcurrent()


def test_subclass_of_subclass():
    class Base(greenlet):
        def run(self):
            return self.tag()

        def tag(self):
            return "base"

    class Derived(Base):
        def tag(self):
            return "derived"

    assert Derived().switch() == "derived"
    assert Base().switch() == "base"


def test_subclass_with_parent_argument():
    p = greenlet(lambda x: ("parent got", x))

    class Child(greenlet):
        def run(self):
            return "child result"

    c = Child(parent=p)
    assert c.parent is p
    assert c.switch() == ("parent got", "child result")
