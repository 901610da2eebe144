"""greenlet.settrace / gettrace: events, arguments, errors, threads."""

import sys
import threading

import pytest

import greenlet as greenlet_pkg
from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet


class Recorder:
    def __init__(self, names):
        self.names = names
        self.events = []

    def name(self, g):
        for key, value in self.names.items():
            if value is g:
                return key
        return "?"

    def __call__(self, event, args):
        origin, target = args
        self.events.append((event, self.name(origin), self.name(target)))


@pytest.fixture
def traced():
    """A Recorder installed as the greenlet tracer for the test."""
    main = getcurrent()
    rec = Recorder({"main": main})
    previous = greenlet_pkg.settrace(rec)
    yield rec
    greenlet_pkg.settrace(previous)


def test_settrace_returns_previous_and_gettrace():
    def a(event, args):
        pass

    def b(event, args):
        pass

    assert greenlet_pkg.gettrace() is None
    assert greenlet_pkg.settrace(a) is None
    assert greenlet_pkg.gettrace() is a
    assert greenlet_pkg.settrace(b) is a
    assert greenlet_pkg.gettrace() is b
    assert greenlet_pkg.settrace(None) is b
    assert greenlet_pkg.gettrace() is None
    assert greenlet_pkg.settrace(None) is None


def test_type_dict_copies_share_the_tracer():
    def a(event, args):
        pass

    greenlet.settrace(a)
    assert greenlet_pkg.gettrace() is a
    assert greenlet.gettrace() is a
    greenlet_pkg.settrace(None)


def test_settrace_same_tracer_twice_keeps_refcount():
    # Issue 332.
    def tracer(event, args):
        pass

    base = sys.getrefcount(tracer)
    for _ in range(10):
        greenlet_pkg.settrace(tracer)
    assert sys.getrefcount(tracer) == base + 1
    assert greenlet_pkg.settrace(tracer) is tracer
    greenlet_pkg.settrace(None)
    assert sys.getrefcount(tracer) == base


def test_switch_events_origin_target(traced):
    main = getcurrent()

    def run():
        main.switch()

    g = greenlet(run)
    traced.names["g"] = g
    g.switch()
    g.switch()
    assert traced.events == [
        ("switch", "main", "g"),   # first entry into g
        ("switch", "g", "main"),
        ("switch", "main", "g"),
        ("switch", "g", "main"),   # g finished, result to main
    ]


def test_args_are_a_tuple_of_origin_and_target():
    calls = []

    def tracer(event, args):
        calls.append((event, type(args), len(args), args[0], args[1]))

    g = greenlet(lambda: None)
    greenlet_pkg.settrace(tracer)
    g.switch()
    greenlet_pkg.settrace(None)
    main = getcurrent()
    assert calls == [
        ("switch", tuple, 2, main, g),
        ("switch", tuple, 2, g, main),
    ]


def test_throw_event(traced):
    main = getcurrent()

    def run():
        try:
            main.switch()
        except ValueError:
            pass

    g = greenlet(run)
    traced.names["g"] = g
    g.switch()
    g.throw(ValueError)
    assert traced.events == [
        ("switch", "main", "g"),
        ("switch", "g", "main"),
        ("throw", "main", "g"),
        ("switch", "g", "main"),
    ]


def test_exception_leaving_greenlet_is_throw_event(traced):
    g = greenlet(lambda: 1 / 0)
    traced.names["g"] = g
    with pytest.raises(ZeroDivisionError):
        g.switch()
    assert traced.events == [("switch", "main", "g"), ("throw", "g", "main")]


def test_throw_into_unstarted_events(traced):
    g = greenlet(lambda: None)
    traced.names["g"] = g
    with pytest.raises(ValueError):
        g.throw(ValueError)
    assert traced.events == [("throw", "main", "g"), ("throw", "g", "main")]


def test_self_switch_and_dead_switch_events(traced):
    main = getcurrent()
    main.switch()
    with pytest.raises(KeyError):
        main.throw(KeyError)
    g = greenlet(lambda: None)
    g.switch()
    del traced.events[:]
    g.switch()
    assert traced.events == [("switch", "main", "main")]


def test_kill_on_dealloc_is_throw_event(traced):
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    traced.names["g"] = g
    g.switch()
    del traced.events[:]
    traced.names.clear()
    traced.names["main"] = main
    del g
    assert traced.events == [("throw", "main", "?"), ("switch", "?", "main")]


def test_tracer_runs_in_target_greenlet():
    where = []

    def tracer(event, args):
        where.append(getcurrent() is args[1])

    main = getcurrent()
    g = greenlet(lambda: main.switch())
    greenlet_pkg.settrace(tracer)
    g.switch()
    g.switch()
    greenlet_pkg.settrace(None)
    assert where == [True, True, True, True]


def test_tracer_sees_no_thrown_exception():
    seen = []

    def tracer(event, args):
        seen.append((event, sys.exc_info()))

    main = getcurrent()

    def run():
        try:
            main.switch()
        except ValueError as exc:
            return exc.args

    g = greenlet(run)
    g.switch()
    greenlet_pkg.settrace(tracer)
    assert g.throw(ValueError("payload")) == ("payload",)
    greenlet_pkg.settrace(None)
    assert seen == [("throw", (None, None, None)), ("switch", (None, None, None))]


def test_tracer_sees_target_handled_exception_state():
    seen = []

    def tracer(event, args):
        seen.append(sys.exc_info()[0])

    main = getcurrent()

    def run():
        try:
            raise KeyError("handled")
        except KeyError:
            main.switch()

    g = greenlet(run)
    g.switch()
    greenlet_pkg.settrace(tracer)
    g.switch()  # back into g's except block, then g finishes to main
    greenlet_pkg.settrace(None)
    assert seen == [KeyError, None]


def test_tracer_raising_resets_tracer_and_raises_in_target():
    def bad(event, args):
        raise KeyError("from tracer")

    main = getcurrent()

    def run():
        try:
            main.switch()
        except KeyError as exc:
            return ("target caught", exc.args)

    g = greenlet(run)
    g.switch()
    greenlet_pkg.settrace(bad)
    assert g.switch("payload") == ("target caught", ("from tracer",))
    assert greenlet_pkg.gettrace() is None


def test_tracer_exception_replaces_thrown_exception():
    def bad(event, args):
        if event == "throw":
            raise KeyError("from tracer")

    main = getcurrent()

    def run():
        try:
            main.switch()
        except BaseException as exc:  # noqa: B036
            return repr(exc)

    g = greenlet(run)
    g.switch()
    greenlet_pkg.settrace(bad)
    assert g.throw(ValueError("thrown")) == "KeyError('from tracer')"
    assert greenlet_pkg.gettrace() is None


def test_tracer_raising_on_first_start_kills_greenlet():
    called = []

    def bad(event, args):
        raise KeyError("boom")

    g = greenlet(lambda *a: called.append(a))
    greenlet_pkg.settrace(bad)
    with pytest.raises(KeyError, match="boom"):
        g.switch(1, 2)
    assert called == []
    assert g.dead
    assert greenlet_pkg.gettrace() is None


def test_tracer_raising_when_switching_to_main():
    def bad(event, args):
        raise KeyError("to main")

    main = getcurrent()

    def run():
        greenlet_pkg.settrace(bad)
        main.switch()
        return "not reached this way"

    g = greenlet(run)
    with pytest.raises(KeyError, match="to main"):
        g.switch()
    assert greenlet_pkg.gettrace() is None
    assert not g.dead
    assert g.switch() == "not reached this way"


def test_sys_settrace_suppressed_inside_tracer():
    frames = []

    def sys_tracer(frame, event, arg):
        frames.append(frame.f_code.co_name)
        return sys_tracer

    def helper_called_by_tracer():
        return 1

    def greenlet_tracer(event, args):
        helper_called_by_tracer()

    def greenlet_body():
        return 2

    old = sys.gettrace()
    sys.settrace(sys_tracer)
    greenlet_pkg.settrace(greenlet_tracer)
    try:
        greenlet(greenlet_body).switch()
    finally:
        greenlet_pkg.settrace(None)
        sys.settrace(old)
    assert "greenlet_body" in frames
    assert "helper_called_by_tracer" not in frames
    assert "greenlet_tracer" not in frames


def test_sys_setprofile_follows_into_new_greenlet():
    # Issue 256: the profile hook carries over into spawned greenlets.
    calls = []

    def profiler(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def inside_greenlet():
        return 3

    def run():
        return inside_greenlet()

    old = sys.getprofile()
    sys.setprofile(profiler)
    try:
        greenlet(run).switch()
    finally:
        sys.setprofile(old)
    assert "run" in calls
    assert "inside_greenlet" in calls


def test_tracer_may_switch_without_corrupting_args():
    main = getcurrent()
    state = {"armed": False}
    log = []

    def tracer(event, args):
        if state["armed"] and args[1] is g:
            state["armed"] = False
            log.append(helper.switch())

    def run():
        return ("g received", main.switch("ready"))

    g = greenlet(run)
    helper = greenlet(lambda: g.switch("from helper"))
    assert g.switch() == "ready"
    greenlet_pkg.settrace(tracer)
    state["armed"] = True
    try:
        assert g.switch("orig") == ("g received", "orig")
    finally:
        greenlet_pkg.settrace(None)
    assert log == ["from helper"]


def test_tracer_is_per_thread():
    def tracer(event, args):
        pass

    seen = {}

    def body():
        seen["initial"] = greenlet_pkg.gettrace()
        events = []
        greenlet_pkg.settrace(lambda e, a: events.append(e))
        greenlet(lambda: None).switch()
        seen["events"] = events
        seen["set"] = greenlet_pkg.gettrace() is not None

    greenlet_pkg.settrace(tracer)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert greenlet_pkg.gettrace() is tracer
    greenlet_pkg.settrace(None)
    assert seen == {"initial": None, "events": ["switch", "switch"], "set": True}


def test_tracer_events_in_greenletexit_delivery(traced):
    def run():
        raise GreenletExit

    g = greenlet(run)
    traced.names["g"] = g
    assert isinstance(g.switch(), GreenletExit)
    # A GreenletExit is turned into a result: delivered as a switch.
    assert traced.events == [("switch", "main", "g"), ("switch", "g", "main")]
