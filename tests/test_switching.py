"""Basic switching: control transfer, results to parents, deep stacks, C frames."""

import functools
import sys

import pytest

from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet


@pytest.fixture
def recursion_limit():
    old = sys.getrecursionlimit()
    yield sys.setrecursionlimit
    sys.setrecursionlimit(old)


def test_getcurrent_is_stable_main_greenlet():
    main = getcurrent()
    assert getcurrent() is main
    assert main.parent is None
    assert isinstance(main, greenlet)


def test_switch_order_between_main_and_child():
    seen = []

    def run():
        seen.append(1)
        getcurrent().parent.switch()
        seen.append(3)
        getcurrent().parent.switch()
        seen.append(5)

    g = greenlet(run)
    seen.append(0)
    g.switch()
    seen.append(2)
    g.switch()
    seen.append(4)
    g.switch()
    seen.append(6)
    assert seen == [0, 1, 2, 3, 4, 5, 6]
    assert g.dead


def test_getcurrent_inside_child_is_child():
    inside = []

    def run():
        inside.append(getcurrent())

    g = greenlet(run)
    g.switch()
    assert inside == [g]
    assert getcurrent() is not g


def test_new_greenlet_parent_is_creator():
    def run():
        return greenlet(lambda: None).parent

    g = greenlet(run)
    assert g.switch() is g
    assert g.parent is getcurrent()


def test_siblings_interleave():
    seen = []

    def worker(name, count):
        for i in range(count):
            seen.append((name, i))
            main.switch()
        return name + " done"

    main = getcurrent()
    a = greenlet(worker)
    b = greenlet(worker)
    a.switch("a", 3)
    b.switch("b", 3)
    for _ in range(2):
        a.switch()
        b.switch()
    assert a.switch() == "a done"
    assert b.switch() == "b done"
    assert seen == [
        ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2),
    ]
    assert a.dead and b.dead


def test_sibling_switches_directly_to_sibling():
    seen = []

    def run_a():
        seen.append("a1")
        b.switch()
        seen.append("a2")
        return "a result"

    def run_b():
        seen.append("b1")
        a.switch()
        seen.append("b2")  # never reached
        return "b result"

    a = greenlet(run_a)
    b = greenlet(run_b)
    # a finishes: its result goes to its parent (main), not to b.
    assert a.switch() == "a result"
    assert seen == ["a1", "b1", "a2"]
    assert a.dead
    assert not b.dead and b  # b is still suspended inside a.switch()
    assert b.switch() == "b result"
    assert seen == ["a1", "b1", "a2", "b2"]


def test_values_round_trip_many_times():
    def run(n):
        total = 0
        while True:
            total += n
            n = getcurrent().parent.switch(total)

    g = greenlet(run)
    expected = 0
    for i in range(1, 2001):
        expected += i
        assert g.switch(i) == expected


def test_run_return_value_goes_to_parent():
    marker = object()
    g = greenlet(lambda: marker)
    assert g.switch() is marker
    assert g.dead


def test_run_exception_raised_in_parent():
    class MyError(Exception):
        pass

    def run():
        raise MyError("from child")

    g = greenlet(run)
    with pytest.raises(MyError, match="from child") as info:
        g.switch()
    assert g.dead
    # The traceback includes the child's run frame.
    names = []
    tb = info.value.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "run" in names


def test_run_raising_greenletexit_returns_instance():
    def run():
        raise GreenletExit("bye")

    g = greenlet(run)
    result = g.switch()
    assert isinstance(result, GreenletExit)
    assert result.args == ("bye",)
    assert g.dead


def test_run_raising_bare_greenletexit_returns_instance():
    def run():
        raise GreenletExit

    g = greenlet(run)
    result = g.switch()
    assert type(result) is GreenletExit
    assert result.args == ()


def test_switch_to_self_returns_args():
    main = getcurrent()
    assert main.switch() == ()
    assert main.switch(1) == 1
    assert main.switch(1, 2) == (1, 2)
    assert main.switch(a=1) == {"a": 1}

    def run():
        me = getcurrent()
        return (me.switch("x"), me.switch(), me.switch(1, b=2))

    assert greenlet(run).switch() == ("x", (), ((1,), {"b": 2}))


def test_switch_to_dead_from_main_returns_args():
    g = greenlet(lambda: "done")
    assert g.switch() == "done"
    assert g.dead
    assert g.switch(1, 2) == (1, 2)
    assert g.switch() == ()
    assert g.switch(k=3) == {"k": 3}
    assert g.dead


def test_switch_to_dead_goes_to_its_parent():
    main = getcurrent()
    dead = greenlet(lambda: None)
    dead.switch()
    assert dead.dead and dead.parent is main

    def run():
        # dead's parent (main) gets the value; main switches back later.
        return ("resumed with", dead.switch("to main"))

    g = greenlet(run)
    assert g.switch() == "to main"
    assert g.switch("back") == ("resumed with", "back")


def test_dead_parent_is_skipped():
    middle = greenlet(lambda: "middle result")
    child = greenlet(
        lambda: getcurrent().parent.parent.switch("suspend") or "child result",
        parent=middle,
    )
    # child starts and switches to its grandparent (main) directly.
    assert child.switch() == "suspend"
    # Let middle finish; it returns to main.
    assert middle.switch() == "middle result"
    assert middle.dead
    # child's parent is dead: its result skips middle and reaches main.
    assert child.switch(None) == "child result"
    assert child.dead


def test_dead_parent_chain_skipped_two_levels():
    a = greenlet(lambda: "a")
    b = greenlet(lambda: "b", parent=a)
    c = greenlet(lambda: getcurrent().parent.parent.parent.switch("c paused") and "c end",
                 parent=b)
    assert c.switch() == "c paused"
    assert a.switch() == "a"
    assert b.switch() == "b"
    assert a.dead and b.dead
    assert c.switch(True) == "c end"


def test_exception_skips_dead_parent():
    a = greenlet(lambda: None)
    a.switch()

    def run():
        raise KeyError("skip")

    b = greenlet(run, parent=a)
    with pytest.raises(KeyError):
        b.switch()
    assert b.dead


def test_unstarted_parent_started_with_result():
    def parent_run(*args, **kwargs):
        return ("parent", args, kwargs)

    p = greenlet(parent_run)
    c = greenlet(lambda: 42, parent=p)
    assert c.switch() == ("parent", (42,), {})
    assert c.dead and p.dead


@pytest.mark.parametrize(
    "value",
    [None, (), (1, 2), (5,), {"k": 1}, "s"],
)
def test_unstarted_parent_receives_exact_result(value):
    p = greenlet(lambda *args: args)
    c = greenlet(lambda: value, parent=p)
    assert c.switch() == (value,)


def test_unstarted_parent_started_without_args_on_greenletexit():
    # Upstream: when the child dies of GreenletExit, an unstarted parent is
    # started with no arguments (not with the GreenletExit instance).
    def child():
        raise GreenletExit("gone")

    p = greenlet(lambda *args, **kw: ("parent", args, kw))
    c = greenlet(child, parent=p)
    assert c.switch() == ("parent", (), {})


def test_unstarted_parent_dies_with_child_exception_without_running():
    called = []
    p = greenlet(lambda *args: called.append(args))

    def child():
        raise ZeroDivisionError("child failed")

    c = greenlet(child, parent=p)
    with pytest.raises(ZeroDivisionError, match="child failed"):
        c.switch()
    assert called == []
    assert p.dead and c.dead


def test_bool_and_dead_through_lifecycle():
    def run():
        getcurrent().parent.switch()

    g = greenlet(run)
    assert not g and not g.dead
    g.switch()
    assert g and not g.dead
    g.switch()
    assert not g and g.dead
    main = getcurrent()
    assert main and not main.dead


def _recurse_then_switch(depth, n):
    if depth == 0:
        # the values below must survive other greenlets reusing the stack
        return getcurrent().parent.switch(n)
    return _recurse_then_switch(depth - 1, n) + depth


def test_deep_recursion_in_several_greenlets(recursion_limit):
    depth = 3000
    recursion_limit(depth * 3)
    gs = [greenlet(_recurse_then_switch) for _ in range(3)]
    for i, g in enumerate(gs):
        assert g.switch(depth, i) == i
    # Interleave: each resumes with a different value and unwinds its own stack.
    tri = depth * (depth + 1) // 2
    results = [g.switch(100 * (i + 1)) for i, g in reversed(list(enumerate(gs)))]
    assert results == [300 + tri, 200 + tri, 100 + tri]
    assert all(g.dead for g in gs)


def test_deep_recursion_switch_ping_pong(recursion_limit):
    recursion_limit(10000)

    def deep(n):
        if n == 0:
            total = 0
            for i in range(50):
                total += other.switch(i)
            return total
        return deep(n - 1)

    def echo():
        value = getcurrent().parent.switch()
        while True:
            value = a.switch(value * 2)

    other = greenlet(echo)
    other.switch()
    a = greenlet(lambda: deep(2000))
    assert a.switch() == sum(i * 2 for i in range(50))


def test_switch_from_map_callback():
    def run():
        return list(map(lambda x: getcurrent().parent.switch(x) * 10, range(5)))

    g = greenlet(run)
    got = [g.switch()]
    for i in range(4):
        got.append(g.switch(i + 1))
    assert got == [0, 1, 2, 3, 4]
    assert g.switch(5) == [10, 20, 30, 40, 50]


def test_switch_from_sorted_key():
    main = getcurrent()

    def key(item):
        return main.switch(item)

    g = greenlet(lambda: sorted(["c", "a", "b"], key=key))
    asked = [g.switch()]
    result = None
    while not g.dead:
        # Ask for reverse alphabetical order via negative ordinals.
        result = g.switch(-ord(asked[-1]))
        if not g.dead:
            asked.append(result)
    assert asked == ["c", "a", "b"]
    assert result == ["c", "b", "a"]


def test_switch_from_reduce_callback():
    main = getcurrent()

    def add(x, y):
        return main.switch((x, y))

    g = greenlet(lambda: functools.reduce(add, [1, 2, 3, 4]))
    pairs = []
    value = g.switch()
    while not g.dead:
        pairs.append(value)
        value = g.switch(value[0] + value[1])
    assert pairs == [(1, 2), (3, 3), (6, 4)]
    assert value == 10


def test_two_greenlets_suspended_in_c_callbacks_interleave():
    main = getcurrent()

    def in_map(tag):
        return list(map(lambda x: main.switch((tag, x)) + x, range(3)))

    def in_sorted(tag):
        return sorted([3, 1, 2], key=lambda x: main.switch((tag, x)))

    a = greenlet(in_map)
    b = greenlet(in_sorted)
    assert a.switch("a") == ("a", 0)
    assert b.switch("b") == ("b", 3)
    assert a.switch(100) == ("a", 1)
    assert b.switch(-3) == ("b", 1)
    assert a.switch(100) == ("a", 2)
    assert b.switch(-1) == ("b", 2)
    assert a.switch(100) == [100, 101, 102]
    assert b.switch(-2) == [3, 2, 1]


def test_nested_greenlet_started_inside_c_callback():
    def inner_run(x):
        return getcurrent().parent.switch(x + 1)

    def outer():
        inners = []

        def cb(x):
            g = greenlet(inner_run)
            inners.append(g)
            return g.switch(x)

        values = list(map(cb, [1, 2, 3]))
        return values, [g.dead for g in inners]

    g = greenlet(outer)
    assert g.switch() == ([2, 3, 4], [False, False, False])


def test_switch_with_generator_frames_on_stack():
    def gen():
        for i in range(3):
            yield getcurrent().parent.switch(i)

    g = greenlet(lambda: list(gen()))
    assert g.switch() == 0
    assert g.switch("a") == 1
    assert g.switch("b") == 2
    assert g.switch("c") == ["a", "b", "c"]


def test_many_short_lived_greenlets():
    total = 0
    for i in range(5000):
        total += greenlet(lambda x: x * 2).switch(i)
    assert total == sum(range(5000)) * 2
