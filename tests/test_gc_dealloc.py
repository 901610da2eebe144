"""Deallocation of greenlets: killing suspended ones, weakrefs, GC cycles."""

import gc
import weakref

import pytest

from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet

KILL_MESSAGE = "Killing the greenlet because all references have vanished."


def _suspended(log, body=None):
    def run():
        try:
            getcurrent().parent.switch("suspended")
        except GreenletExit as exc:
            log.append(("GreenletExit", type(exc), exc.args))
            if body is not None:
                body()
            raise
        finally:
            log.append("finally")

    g = greenlet(run)
    assert g.switch() == "suspended"
    return g


def test_dropping_suspended_greenlet_throws_greenletexit():
    log = []
    g = _suspended(log)
    del g
    assert log == [("GreenletExit", GreenletExit, (KILL_MESSAGE,)), "finally"]


def test_dropping_unstarted_greenlet_runs_nothing():
    called = []
    g = greenlet(lambda: called.append(True))
    ref = weakref.ref(g)
    del g
    assert ref() is None
    assert called == []


def test_dropping_dead_greenlet_runs_nothing():
    log = []
    g = _suspended(log)
    g.switch()
    assert log == ["finally"]
    ref = weakref.ref(g)
    del g
    assert ref() is None
    assert log == ["finally"]


def test_killed_greenlet_is_freed_and_weakref_callback_runs():
    log = []
    g = _suspended(log)
    callbacks = []
    ref = weakref.ref(g, lambda r: callbacks.append(r))
    del g
    assert ref() is None
    assert callbacks == [ref]
    assert "finally" in log


def test_weakref_still_alive_inside_finally():
    seen = []
    ref = None

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            seen.append(ref() is getcurrent())

    g = greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    assert seen == [True]
    assert ref() is None


def test_kill_uses_current_greenlet_as_temporary_parent():
    seen = []

    def victim_run():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            seen.append(getcurrent().parent)
            raise

    holder = {"victim": greenlet(victim_run)}
    holder["victim"].switch()
    original_parent = holder["victim"].parent

    def killer_run():
        del holder["victim"]
        return "killer continues"

    killer = greenlet(killer_run)
    assert killer.switch() == "killer continues"
    assert seen == [killer]
    assert original_parent is getcurrent()


def test_kill_when_original_parent_is_dead():
    log = []

    def parent_run():
        child = _suspended(log)
        return child  # parent finishes; child is still suspended

    child = greenlet(parent_run).switch()
    assert child.parent.dead
    del child
    assert log == [("GreenletExit", GreenletExit, (KILL_MESSAGE,)), "finally"]


def test_kill_of_greenlet_suspended_in_c_callbacks():
    log = []

    def run():
        try:
            list(map(lambda x: getcurrent().parent.switch(x), range(3)))
        finally:
            log.append("finally")

    g = greenlet(run)
    assert g.switch() == 0
    assert g.switch() == 1
    del g
    assert log == ["finally"]


def test_greenlet_that_returns_value_on_greenletexit():
    log = []

    def run():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            log.append("swallowed")
            return "ignored result"

    g = greenlet(run)
    g.switch()
    del g
    assert log == ["swallowed"]


def test_other_exception_during_kill_goes_to_unraisable(unraisable):
    def raise_other():
        raise ValueError("not an exit")

    log = []
    g = _suspended(log, body=raise_other)
    del g
    assert "finally" in log
    assert len(unraisable.calls) == 1
    call = unraisable.calls[0]
    assert call["exc_type"] is ValueError
    assert str(call["exc_value"]) == "not an exit"
    assert issubclass(call["object_type"], greenlet)
    assert call["object_repr"].endswith(" dead>")


def test_greenletexit_during_kill_is_not_reported(unraisable):
    log = []
    g = _suspended(log)
    del g
    assert unraisable.calls == []


def test_resurrection_in_finally():
    saved = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            saved.append(getcurrent())

    g = greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    assert len(saved) == 1
    assert ref() is saved[0]
    assert saved[0].dead
    del saved[:]
    assert ref() is None


def test_resurrection_of_subclass_repeatedly():
    # Issue 245: resurrecting an instance of a Python subclass must keep the
    # heap type alive.
    saved = []

    class Sub(greenlet):
        pass

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            saved.append(getcurrent())

    for _ in range(50):
        g = Sub(run)
        g.switch()
        del g
    assert len(saved) == 50
    assert all(type(g) is Sub and g.dead for g in saved)
    refs = [weakref.ref(g) for g in saved]
    del saved[:]
    gc.collect()
    assert all(r() is None for r in refs)


def test_greenletexit_ignored_is_reported_and_leaked(run_python):
    code = r"""
    import weakref
    from greenlet import greenlet, getcurrent, GreenletExit

    def run():
        while True:
            try:
                getcurrent().parent.switch()
            except GreenletExit:
                print("ignoring GreenletExit", flush=True)

    g = greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    r = repr(g)
    del g
    print("alive after del:", ref() is not None)
    print("repr:", r)
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "ignoring GreenletExit"
    assert lines[1] == "alive after del: True"
    expected_repr = lines[2][len("repr: "):]
    assert "GreenletExit did not kill %s" % expected_repr in err


def test_subclass_del_runs_before_kill():
    log = []

    class Sub(greenlet):
        def __del__(self):
            log.append(("__del__", bool(self), self.dead))

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            log.append("finally")

    s = Sub(run)
    s.switch()
    ref = weakref.ref(s)
    del s
    assert log == [("__del__", True, False), "finally"]
    assert ref() is None


def test_subclass_del_of_unstarted_and_dead():
    log = []

    class Sub(greenlet):
        def __del__(self):
            log.append((bool(self), self.dead))

    s = Sub(lambda: None)
    del s
    s = Sub(lambda: None)
    s.switch()
    del s
    assert log == [(False, False), (False, True)]


def test_subclass_del_resurrecting_self():
    saved = []

    class Sub(greenlet):
        def __del__(self):
            saved.append(self)

    s = Sub(lambda: None)
    del s
    assert len(saved) == 1
    assert type(saved[0]) is Sub
    assert saved[0].switch() is None
    assert saved[0].dead


@pytest.mark.parametrize("kind", ["dict", "run", "parent", "dead-dict", "dead-frame"])
def test_cycles_are_collected(kind):
    def make():
        if kind == "dict":
            g = greenlet(lambda: None)
            g.me = g
        elif kind == "run":
            g = greenlet()
            g.run = lambda: g
        elif kind == "parent":
            p = greenlet(lambda *a: None)
            g = greenlet(lambda: None, parent=p)
            p.child = g
        elif kind == "dead-dict":
            g = greenlet(lambda: None)
            g.switch()
            g.me = g
        else:
            g = greenlet(getcurrent)
            g.me = g.switch()
        return weakref.ref(g)

    gc.collect()
    ref = make()
    assert ref() is not None
    gc.collect()
    assert ref() is None


def test_cycle_through_main_greenlet_frame_does_not_crash():
    class Holder:
        pass

    h = Holder()
    h.main = getcurrent()
    h.self = h
    ref = weakref.ref(h)
    del h
    gc.collect()
    assert ref() is None
    assert getcurrent()  # still alive and current


def test_objects_referenced_from_suspended_frame_survive_gc():
    class Payload:
        def __init__(self):
            self.value = 42
            self.self = self  # a cycle only the suspended frame keeps

    def run():
        payload = Payload()
        refs.append(weakref.ref(payload))
        getcurrent().parent.switch()
        return payload.value

    refs = []
    g = greenlet(run)
    g.switch()
    for _ in range(3):
        gc.collect()
    assert refs[0]() is not None
    assert g.switch() == 42
    gc.collect()
    assert refs[0]() is None


def test_many_suspended_greenlets_dropped_at_once():
    log = []
    gs = [_suspended(log) for _ in range(200)]
    del gs
    assert log.count("finally") == 200
    assert log.count(("GreenletExit", GreenletExit, (KILL_MESSAGE,))) == 200


def test_dict_is_lazily_created_and_collected_with_greenlet():
    class Value:
        pass

    v = Value()
    ref = weakref.ref(v)
    g = greenlet(lambda: None)
    g.attr = v
    del v
    assert ref() is not None
    del g
    assert ref() is None


def test_run_callable_whose_del_switches(run_python):
    # The run callable is released when the greenlet finishes; its __del__
    # may switch away, leaving the greenlet suspended inside that __del__.
    code = r"""
    from greenlet import greenlet, getcurrent
    main = getcurrent()
    log = []

    class Run:
        def __call__(self, *args):
            log.append(("run", args))
            return "run result"

        def __del__(self):
            log.append("del start")
            log.append(("del got", helper.switch("from del")))

    def helper_run(value):
        log.append(("helper", value))
        while True:
            value = main.switch("helper to main")

    helper = greenlet(helper_run)
    g = greenlet(Run())
    print(g.switch(1))
    print(g.dead)
    print(g.switch("resumed"))
    print(g.dead)
    print(log)
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.splitlines() == [
        "helper to main",
        "False",
        "run result",
        "True",
        "[('run', (1,)), 'del start', ('helper', 'from del'), ('del got', 'resumed')]",
    ]


def test_del_that_switches_during_gc_stress(run_python):
    # gevent#1985: the cycle collector may run __del__ methods that switch
    # greenlets at any allocation, including in the middle of a switch.
    code = r"""
    import gc
    from greenlet import greenlet, getcurrent

    collected = [0]

    def ping_run(back):
        while True:
            back = back.switch()

    ping = greenlet(ping_run)

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            collected[0] += 1
            ping.switch(getcurrent())

    def worker(n):
        total = 0
        for i in range(n):
            Cycle()
            total += getcurrent().parent.switch(i)
        return total

    gc.set_threshold(5, 1, 1)
    workers = [greenlet(worker) for _ in range(4)]
    values = [w.switch(500) for w in workers]
    results = []
    for step in range(500):
        for k, w in enumerate(workers):
            Cycle()
            value = w.switch(1)
            if w.dead:
                results.append(value)
    gc.set_threshold(700, 10, 10)
    gc.collect()
    print(values, results, collected[0] >= 2000)
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.strip() == "[0, 0, 0, 0] [500, 500, 500, 500] True"


def test_del_that_switches_inside_trashcan(run_python):
    # Deeply nested containers are freed through the trashcan mechanism,
    # whose state lives in the thread state; __del__ methods that switch in
    # the middle of it must not corrupt it.  (Upstream 3.5.6 on 3.13 crashes
    # when the nesting reaches the C recursion limit, so stay below it.)
    code = r"""
    from greenlet import greenlet, getcurrent

    dels = [0]

    def ping_run(back):
        while True:
            back = back.switch()

    ping = greenlet(ping_run)

    class Node:
        __slots__ = ("child", "__weakref__")

        def __init__(self, child):
            self.child = child

        def __del__(self):
            dels[0] += 1
            if dels[0] % 50 == 0:
                ping.switch(getcurrent())

    def nested_lists(n):
        lst = []
        for _ in range(n):
            lst = [lst, Node(None)]
        return lst

    def node_chain(n):
        node = None
        for _ in range(n):
            node = Node(node)
        return node

    def drop(make, n):
        data = make(n)
        getcurrent().parent.switch("built")
        del data
        return "dropped"

    gs = [greenlet(drop) for _ in range(4)]
    for i, g in enumerate(gs):
        assert g.switch(nested_lists if i % 2 else node_chain, 5000) == "built"
    print([g.switch() for g in gs])
    data = nested_lists(5000)
    del data
    print(dels[0])
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.splitlines() == ["['dropped', 'dropped', 'dropped', 'dropped']", "25000"]
