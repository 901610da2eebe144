"""greenlet.throw(): normalisation, error messages, every target state."""

import sys
import traceback

import pytest

from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet


def _suspended_catcher():
    """A greenlet suspended in switch() that returns what it caught."""

    def run():
        try:
            getcurrent().parent.switch("suspended")
        except BaseException as exc:  # noqa: B036 - we want everything
            return ("caught", exc)
        return ("no exception", None)

    g = greenlet(run)
    assert g.switch() == "suspended"
    return g


def _caught(g, *throw_args):
    kind, exc = g.throw(*throw_args)
    assert kind == "caught"
    assert g.dead
    return exc


def test_default_is_greenletexit():
    exc = _caught(_suspended_catcher())
    assert type(exc) is GreenletExit
    assert exc.args == ()


def test_class_is_instantiated():
    exc = _caught(_suspended_catcher(), ValueError)
    assert type(exc) is ValueError
    assert exc.args == ()


def test_class_with_value():
    exc = _caught(_suspended_catcher(), ValueError, "message")
    assert type(exc) is ValueError
    assert exc.args == ("message",)


def test_class_with_tuple_value_becomes_args():
    exc = _caught(_suspended_catcher(), ValueError, ("a", "b"))
    assert type(exc) is ValueError
    assert exc.args == ("a", "b")


def test_class_with_none_value():
    exc = _caught(_suspended_catcher(), ValueError, None)
    assert type(exc) is ValueError
    assert exc.args == ()


def test_class_with_instance_value_of_that_class():
    inner = ValueError("inner")
    exc = _caught(_suspended_catcher(), ValueError, inner)
    assert exc is inner


def test_class_with_instance_value_of_other_class():
    inner = ValueError("inner")
    exc = _caught(_suspended_catcher(), KeyError, inner)
    assert type(exc) is KeyError
    assert exc.args == (inner,)


def test_instance_is_raised_as_is():
    inst = ValueError("x")
    exc = _caught(_suspended_catcher(), inst)
    assert exc is inst


def test_instance_with_none_value_is_allowed():
    inst = KeyError("y")
    exc = _caught(_suspended_catcher(), inst, None)
    assert exc is inst


def test_instance_with_value_is_type_error():
    g = _suspended_catcher()
    with pytest.raises(TypeError) as info:
        g.throw(ValueError("x"), "y")
    assert str(info.value) == "instance exception may not have a separate value"
    # The target was not disturbed.
    assert not g.dead
    assert g.switch() == ("no exception", None)


def test_bad_traceback_is_type_error():
    g = _suspended_catcher()
    with pytest.raises(TypeError) as info:
        g.throw(ValueError, "x", "not a traceback")
    assert str(info.value) == "throw() third argument must be a traceback object"
    assert not g.dead
    g.switch()


def test_none_traceback_is_allowed():
    exc = _caught(_suspended_catcher(), ValueError, "x", None)
    assert exc.args == ("x",)


@pytest.mark.parametrize(
    "bad, name",
    [(1, "int"), ("text", "str"), (None, "NoneType"), (int, "type"),
     (object, "type"), (object(), "object"), ([ValueError], "list")],
)
def test_non_exception_is_type_error(bad, name):
    g = _suspended_catcher()
    with pytest.raises(TypeError) as info:
        g.throw(bad)
    assert str(info.value) == (
        "exceptions must be classes, or instances, not %s" % name
    )
    assert not g.dead
    g.switch()


def test_traceback_argument_is_used():
    def make_tb():
        try:
            raise KeyError("k")
        except KeyError:
            return sys.exc_info()[2]

    tb = make_tb()

    def run():
        try:
            getcurrent().parent.switch()
        except ValueError as exc:
            return [f.name for f in traceback.extract_tb(exc.__traceback__)]

    g = greenlet(run)
    g.switch()
    names = g.throw(ValueError, "v", tb)
    assert names[0] == "run"
    assert "make_tb" in names


def test_throw_raised_where_switch_was_called():
    def inner():
        try:
            getcurrent().parent.switch()
        except KeyError as exc:
            return ("inner caught", exc.args)

    def run():
        return inner()

    g = greenlet(run)
    g.switch()
    assert g.throw(KeyError, "k") == ("inner caught", ("k",))


def test_uncaught_exception_propagates_to_thrower():
    def run():
        getcurrent().parent.switch()

    g = greenlet(run)
    g.switch()
    with pytest.raises(IndexError, match="oops"):
        g.throw(IndexError("oops"))
    assert g.dead


def test_uncaught_greenletexit_is_returned():
    def run():
        getcurrent().parent.switch()

    g = greenlet(run)
    g.switch()
    result = g.throw()
    assert type(result) is GreenletExit
    assert g.dead

    g = greenlet(run)
    g.switch()
    exc = GreenletExit("q")
    assert g.throw(exc) is exc


def test_greenlet_can_survive_a_throw():
    def run():
        count = 0
        while True:
            try:
                getcurrent().parent.switch(count)
            except ValueError:
                count += 1

    g = greenlet(run)
    assert g.switch() == 0
    assert g.throw(ValueError) == 1
    assert g.throw(ValueError) == 2
    assert g
    with pytest.raises(KeyError):
        g.throw(KeyError)
    assert g.dead


def test_throw_into_unstarted_never_calls_run():
    called = []
    g = greenlet(lambda: called.append(True))
    with pytest.raises(ValueError):
        g.throw(ValueError)
    assert called == []
    assert g.dead
    assert not g


def test_throw_greenletexit_into_unstarted_returns_it():
    called = []
    g = greenlet(lambda: called.append(True))
    result = g.throw()
    assert type(result) is GreenletExit
    assert called == []
    assert g.dead


def test_throw_into_unstarted_with_unstarted_parent_kills_both():
    called = []
    p = greenlet(lambda *a: called.append(("parent", a)))
    g = greenlet(lambda: called.append("child"), parent=p)
    with pytest.raises(ValueError):
        g.throw(ValueError("chain"))
    assert called == []
    assert g.dead and p.dead


def test_throw_greenletexit_into_unstarted_with_unstarted_parent():
    # The child dies of GreenletExit; the unstarted parent is then started
    # with no arguments and runs normally.
    called = []
    p = greenlet(lambda *a, **k: called.append((a, k)) or "parent ran")
    g = greenlet(lambda: called.append("child"), parent=p)
    assert g.throw() == "parent ran"
    assert called == [((), {})]
    assert g.dead and p.dead


def test_throw_into_dead_greenletexit_is_returned():
    g = greenlet(lambda: None)
    g.switch()
    result = g.throw()
    assert type(result) is GreenletExit
    exc = GreenletExit("zz")
    assert g.throw(exc) is exc
    assert g.throw(GreenletExit, "v").args == ("v",)


def test_throw_into_dead_other_exception_raised_in_caller():
    g = greenlet(lambda: None)
    g.switch()
    with pytest.raises(ValueError, match="dead"):
        g.throw(ValueError("dead"))
    assert g.dead


def test_throw_into_dead_goes_to_parent_chain():
    main = getcurrent()
    dead = greenlet(lambda: None)
    dead.switch()

    def run():
        try:
            dead.throw(KeyError("through parent"))
        except KeyError:
            return "not here"
        return "nor here"

    g = greenlet(run)
    # dead's parent is main: the exception lands in main's pending switch.
    with pytest.raises(KeyError, match="through parent"):
        g.switch()
    assert not g.dead  # g is suspended in dead.throw()
    assert g.parent is main
    g.throw()
    assert g.dead


def test_exception_propagates_up_parent_chain():
    def run_parent():
        try:
            child.switch()
        except LookupError as exc:
            return ("parent caught", type(exc).__name__)

    def run_child():
        getcurrent().parent.parent.switch("child suspended")

    parent = greenlet(run_parent)
    child = greenlet(run_child, parent=parent)
    assert parent.switch() == "child suspended"
    # child is not caught: it dies and the exception is raised in its
    # parent, which catches it and returns to main.
    assert child.throw(KeyError) == ("parent caught", "KeyError")
    assert child.dead and parent.dead


def test_throw_to_main_from_child():
    main = getcurrent()

    def run():
        main.throw(ValueError("to main"))
        return "child finished"

    g = greenlet(run)
    with pytest.raises(ValueError, match="to main"):
        g.switch()
    assert g and not g.dead
    assert g.switch() == "child finished"


def test_throw_to_self_raises_immediately():
    with pytest.raises(ValueError, match="self"):
        getcurrent().throw(ValueError("self"))
    with pytest.raises(GreenletExit):
        getcurrent().throw()

    def run():
        try:
            getcurrent().throw(KeyError)
        except KeyError:
            return "child caught own throw"

    assert greenlet(run).switch() == "child caught own throw"


def test_throw_from_sibling():
    def run_a():
        try:
            getcurrent().parent.switch("a ready")
        except KeyError as exc:
            return ("a caught", exc.args[0])

    a = greenlet(run_a)
    assert a.switch() == "a ready"

    def run_b():
        # a catches, returns, and its result goes to a's parent (main).
        a.throw(KeyError("from b"))
        return "b is not resumed by a"

    b = greenlet(run_b)
    assert b.switch() == ("a caught", "from b")
    assert a.dead
    assert not b.dead
    assert b.switch() == "b is not resumed by a"


def test_throw_with_exception_subclass_and_base_exception():
    class Custom(BaseException):
        pass

    exc = _caught(_suspended_catcher(), Custom, "c")
    assert type(exc) is Custom
    assert exc.args == ("c",)


def test_thrown_exception_has_traceback_of_target():
    def run():
        getcurrent().parent.switch()

    g = greenlet(run)
    g.switch()
    with pytest.raises(RuntimeError) as info:
        g.throw(RuntimeError("tb"))
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "run" in names
