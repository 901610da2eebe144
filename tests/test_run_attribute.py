"""The run attribute: before start, after start, on main greenlets, subclasses."""

import pytest

from greenlet import getcurrent
from greenlet import greenlet


def _f():
    return "f result"


def _g():
    return "g result"


def test_run_given_to_constructor_is_readable():
    g = greenlet(_f)
    assert g.run is _f
    g = greenlet(run=_g)
    assert g.run is _g


def test_run_missing_is_attribute_error():
    g = greenlet()
    with pytest.raises(AttributeError) as info:
        g.run  # noqa: B018
    assert info.value.args == ("run",)


def test_run_can_be_set_before_start():
    g = greenlet(_f)
    g.run = _g
    assert g.run is _g
    assert g.switch() == "g result"


def test_run_can_be_deleted_before_start():
    g = greenlet(_f)
    del g.run
    with pytest.raises(AttributeError) as info:
        g.run  # noqa: B018
    assert info.value.args == ("run",)
    # Deleting an unset run is allowed too.
    del g.run
    g.run = _g
    assert g.switch() == "g result"


def test_switch_without_run_is_attribute_error_and_stays_unstarted():
    g = greenlet()
    with pytest.raises(AttributeError) as info:
        g.switch(1)
    assert info.value.args == ("run",)
    assert not g.dead and not g
    g.run = lambda x: ("late run", x)
    assert g.switch(2) == ("late run", 2)


def test_throw_without_run_is_attribute_error():
    g = greenlet()
    with pytest.raises(AttributeError) as info:
        g.throw(ValueError)
    assert info.value.args == ("run",)
    assert not g.dead


def test_run_none_is_stored_and_not_callable():
    g = greenlet(None)
    assert g.run is None
    with pytest.raises(TypeError) as info:
        g.switch()
    assert str(info.value) == "'NoneType' object is not callable"
    assert g.dead


def test_non_callable_run_kills_greenlet_with_type_error():
    g = greenlet()
    g.run = 5
    assert g.run == 5
    with pytest.raises(TypeError) as info:
        g.switch()
    assert str(info.value) == "'int' object is not callable"
    assert g.dead


def test_run_unreadable_after_start():
    def run():
        me = getcurrent()
        try:
            me.run  # noqa: B018
        except AttributeError as exc:
            return exc.args

    g = greenlet(run)
    assert g.switch() == ("run",)
    with pytest.raises(AttributeError) as info:
        g.run  # noqa: B018
    assert info.value.args == ("run",)


def test_run_unreadable_while_suspended():
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    with pytest.raises(AttributeError) as info:
        g.run  # noqa: B018
    assert info.value.args == ("run",)
    g.switch()


def test_run_cannot_be_set_after_start():
    message = "run cannot be set after the start of the greenlet"
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    with pytest.raises(AttributeError) as info:
        g.run = _f
    assert str(info.value) == message
    with pytest.raises(AttributeError) as info:
        del g.run
    assert str(info.value) == message
    g.switch()
    assert g.dead
    with pytest.raises(AttributeError) as info:
        g.run = _f
    assert str(info.value) == message


def test_run_cannot_be_set_while_running():
    def run():
        try:
            getcurrent().run = _f
        except AttributeError as exc:
            return str(exc)

    assert greenlet(run).switch() == "run cannot be set after the start of the greenlet"


def test_main_greenlet_has_no_run():
    message = "Main greenlets do not have a run attribute."
    main = getcurrent()
    with pytest.raises(AttributeError) as info:
        main.run  # noqa: B018
    assert str(info.value) == message
    with pytest.raises(AttributeError) as info:
        main.run = _f
    assert str(info.value) == message
    with pytest.raises(AttributeError) as info:
        del main.run
    assert str(info.value) == message


def test_subclass_run_method():
    class Worker(greenlet):
        def run(self, *args, **kwargs):
            return ("Worker.run", self is getcurrent(), args, kwargs)

    w = Worker()
    assert w.switch(1, k=2) == ("Worker.run", True, (1,), {"k": 2})


def test_subclass_run_method_shadows_constructor_run():
    class Worker(greenlet):
        def run(self):
            return "class run"

    # Start looks run up with getattr(): the class attribute wins.
    assert Worker(_f).switch() == "class run"


def test_subclass_init_without_super_uses_run_method():
    class Worker(greenlet):
        def __init__(self, x):  # noqa: super not called on purpose
            self.x = x

        def run(self):
            return ("x is", self.x)

    w = Worker(5)
    assert w.parent is getcurrent()
    assert w.switch() == ("x is", 5)


def test_subclass_run_attribute_none():
    class Worker(greenlet):
        run = None

    with pytest.raises(TypeError):
        Worker().switch()


def test_getattribute_can_supply_run():
    class Intercepting(greenlet):
        def __getattribute__(self, name):
            if name == "run":
                return lambda *args: ("intercepted", args)
            return greenlet.__getattribute__(self, name)

    assert Intercepting(_f).switch(1) == ("intercepted", (1,))
    assert Intercepting().switch(2) == ("intercepted", (2,))


def test_getattribute_error_leaves_greenlet_unstarted():
    class Refusing(greenlet):
        def __getattribute__(self, name):
            if name == "run":
                raise KeyError("no run for you")
            return greenlet.__getattribute__(self, name)

    g = Refusing(_f)
    with pytest.raises(KeyError, match="no run for you"):
        g.switch()
    assert not g.dead and not g


def test_run_is_looked_up_at_start_time():
    g = greenlet(_f)
    g.run = _g
    del g.run
    g.run = lambda: "latest"
    assert g.switch() == "latest"


def test_run_callable_object():
    class Callable:
        def __call__(self, *args):
            return ("called", args)

    c = Callable()
    g = greenlet(c)
    assert g.run is c
    assert g.switch(1, 2) == ("called", (1, 2))


def test_run_released_after_finish():
    import weakref

    class Callable:
        def __call__(self):
            return "done"

    c = Callable()
    ref = weakref.ref(c)
    g = greenlet(c)
    del c
    assert ref() is not None
    assert g.switch() == "done"
    assert ref() is None
    assert g.dead
