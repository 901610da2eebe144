"""Observation attributes of greenlets: gr_state, gr_thread_id, gr_switches,
gr_run_ns and gr_name, across every state transition."""

import gc
import threading
import time
import weakref

import pytest

import greenlet as greenlet_pkg
from greenlet import GreenletExit, getcurrent, greenlet

MS = 1_000_000


def busy_wait(seconds):
    """Spin (never sleep) for *seconds* of wall time."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def eventually(predicate, tries=200):
    for _ in range(tries):
        if predicate():
            return True
        gc.collect()
        getcurrent()
        time.sleep(0.001)
    return predicate()


@pytest.fixture(autouse=True)
def _run_time_tracking():
    """gr_run_ns is accounted only while run-time tracking is on (it is off
    by default); these tests are about what it measures."""
    was = greenlet_pkg.get_run_time_tracking()
    greenlet_pkg.set_run_time_tracking(True)
    yield
    greenlet_pkg.set_run_time_tracking(was)


def snapshot(g):
    return {
        "state": g.gr_state,
        "thread": g.gr_thread_id,
        "switches": g.gr_switches,
    }


# ---------------------------------------------------------------------------
# Defaults and types


def test_attribute_types_of_a_new_greenlet():
    g = greenlet(lambda: None)
    assert isinstance(g.gr_id, int)
    assert g.gr_id > 0
    assert g.gr_state == "unstarted"
    assert g.gr_thread_id is None
    assert g.gr_switches == 0
    assert g.gr_run_ns == 0
    assert g.gr_name is None


def test_main_greenlet_attributes():
    main = getcurrent()
    assert main.parent is None
    assert main.gr_state == "running"
    assert main.gr_thread_id == threading.get_ident()
    assert main.gr_switches >= 1
    assert isinstance(main.gr_run_ns, int)
    assert main.gr_run_ns > 0


@pytest.mark.parametrize(
    "name",
    ["gr_id", "gr_state", "gr_thread_id", "gr_switches", "gr_run_ns", "gr_spawn_site"],
)
def test_read_only_attributes(name):
    g = greenlet(lambda: None)
    with pytest.raises(AttributeError):
        setattr(g, name, 1)
    with pytest.raises(AttributeError):
        delattr(g, name)
    assert hasattr(g, name)


# ---------------------------------------------------------------------------
# gr_state / gr_thread_id / gr_switches through the life of a greenlet


def test_state_through_start_suspend_resume_finish():
    main = getcurrent()
    me = threading.get_ident()
    seen = []

    def run():
        g = getcurrent()
        seen.append(("running", snapshot(g), snapshot(main)))
        main.switch()
        seen.append(("resumed", snapshot(g), snapshot(main)))
        return "done"

    g = greenlet(run)
    main_before = main.gr_switches
    assert snapshot(g) == {"state": "unstarted", "thread": None, "switches": 0}
    g.switch()
    assert seen[0] == (
        "running",
        {"state": "running", "thread": me, "switches": 1},
        {"state": "suspended", "thread": me, "switches": main_before},
    )
    assert snapshot(g) == {"state": "suspended", "thread": me, "switches": 1}
    assert main.gr_state == "running"
    assert main.gr_switches == main_before + 1
    assert g.switch() == "done"
    assert seen[1] == (
        "resumed",
        {"state": "running", "thread": me, "switches": 2},
        {"state": "suspended", "thread": me, "switches": main_before + 1},
    )
    # Dead: it keeps its thread id and its counters.
    assert snapshot(g) == {"state": "dead", "thread": me, "switches": 2}
    assert main.gr_switches == main_before + 2
    assert g.dead


def test_parent_is_suspended_while_grandchild_runs():
    main = getcurrent()
    states = {}

    def grandchild():
        states["child"] = child.gr_state
        states["main"] = main.gr_state
        states["self"] = getcurrent().gr_state

    def child_run():
        greenlet(grandchild).switch()
        states["child_after"] = getcurrent().gr_state

    child = greenlet(child_run)
    child.switch()
    assert states == {
        "child": "suspended",
        "main": "suspended",
        "self": "running",
        "child_after": "running",
    }
    assert child.gr_state == "dead"


def test_finish_straight_from_start():
    g = greenlet(lambda: 42)
    assert g.switch() == 42
    assert g.gr_state == "dead"
    assert g.gr_switches == 1
    assert g.gr_thread_id == threading.get_ident()


def test_switches_count_entries_not_exits():
    main = getcurrent()

    def run():
        for _ in range(5):
            main.switch()

    g = greenlet(run)
    for expected in range(1, 6):
        g.switch()
        assert g.gr_switches == expected
    g.switch()
    assert g.gr_state == "dead"
    assert g.gr_switches == 6


def test_self_switch_is_not_counted():
    main = getcurrent()
    counts = []

    def run():
        me = getcurrent()
        counts.append(me.gr_switches)
        assert me.switch(1) == 1
        assert me.switch() == ()
        counts.append(me.gr_switches)
        main.switch()

    g = greenlet(run)
    g.switch()
    assert counts == [1, 1]
    assert g.gr_switches == 1
    before = main.gr_switches
    main.switch()
    main.switch()
    assert main.gr_switches == before
    g.switch()


def test_switch_to_dead_greenlet_counts_its_parent():
    main = getcurrent()
    g = greenlet(lambda: None)
    g.switch()
    before = main.gr_switches
    # A dead greenlet hands the switch to its parent: here the current one.
    g.switch()
    assert main.gr_switches == before
    assert g.gr_switches == 1


def test_throw_into_suspended_greenlet():
    main = getcurrent()
    me = threading.get_ident()
    caught = []

    def run():
        try:
            main.switch()
        except ValueError as exc:
            caught.append((str(exc), snapshot(getcurrent())))
        main.switch("after throw")
        return "end"

    g = greenlet(run)
    g.switch()
    assert g.throw(ValueError, "boom") == "after throw"
    assert caught == [("boom", {"state": "running", "thread": me, "switches": 2})]
    assert snapshot(g) == {"state": "suspended", "thread": me, "switches": 2}
    assert g.switch() == "end"
    assert snapshot(g) == {"state": "dead", "thread": me, "switches": 3}


def test_throw_that_kills():
    main = getcurrent()

    def run():
        main.switch()

    g = greenlet(run)
    g.switch()
    with pytest.raises(KeyError):
        g.throw(KeyError("x"))
    assert snapshot(g) == {
        "state": "dead",
        "thread": threading.get_ident(),
        "switches": 2,
    }


def test_throw_into_unstarted_greenlet():
    ran = []
    g = greenlet(lambda: ran.append(1))
    with pytest.raises(ValueError):
        g.throw(ValueError)
    assert ran == []
    # It was entered once (to raise the exception) and is dead.
    assert snapshot(g) == {
        "state": "dead",
        "thread": threading.get_ident(),
        "switches": 1,
    }


def test_greenlet_exit_thrown_in():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    result = g.throw()
    assert isinstance(result, GreenletExit)
    assert snapshot(g) == {
        "state": "dead",
        "thread": threading.get_ident(),
        "switches": 2,
    }


def test_killed_by_dealloc_sees_itself_running_and_counted():
    main = getcurrent()
    seen = []

    def run():
        try:
            main.switch()
        except GreenletExit:
            me = getcurrent()
            seen.append((me.gr_state, me.gr_switches, main.gr_state, me.gr_thread_id))
            raise

    g = greenlet(run)
    g.switch()
    assert g.gr_switches == 1
    ref = weakref.ref(g)
    before = main.gr_switches
    del g
    assert ref() is None
    assert seen == [("running", 2, "suspended", threading.get_ident())]
    # Control came back to main once: from the victim's finish.
    assert main.gr_switches == before + 1


def test_running_in_other_thread_seen_from_here():
    parked = threading.Event()
    release = threading.Event()
    info = {}

    def park():
        info["child"] = getcurrent()
        parked.set()
        release.wait(10)

    def body():
        info["main"] = getcurrent()
        info["ident"] = threading.get_ident()
        greenlet(park).switch()

    t = threading.Thread(target=body)
    t.start()
    try:
        assert parked.wait(10)
        child, tmain = info["child"], info["main"]
        assert child.gr_state == "running"
        assert tmain.gr_state == "suspended"
        assert child.gr_thread_id == info["ident"] == t.ident
        assert tmain.gr_thread_id == t.ident
        assert child.gr_switches == 1
        # Not this thread's.
        assert getcurrent().gr_thread_id != t.ident
    finally:
        release.set()
        t.join()


def test_greenlet_started_in_another_thread_takes_that_thread_id():
    g = greenlet(lambda: threading.get_ident())
    assert g.gr_thread_id is None
    out = {}

    def body():
        g.parent = getcurrent()
        out["r"] = g.switch()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert out["r"] == t.ident
    assert g.gr_thread_id == t.ident
    assert g.gr_state == "dead"


# ---------------------------------------------------------------------------
# Thread exit


def test_thread_exit_makes_its_greenlets_dead_keeping_ids_and_counters():
    out = {}

    def body():
        tmain = getcurrent()

        def run():
            busy_wait(0.01)
            tmain.switch()
            tmain.switch()

        g = greenlet(run)
        g.switch()
        g.switch()
        out.update(
            g=g,
            tmain=tmain,
            g_switches=g.gr_switches,
            g_run=g.gr_run_ns,
            g_state=g.gr_state,
            main_switches=tmain.gr_switches,
            ident=threading.get_ident(),
        )

    t = threading.Thread(target=body)
    t.start()
    t.join()
    g, tmain = out["g"], out["tmain"]
    assert out["g_state"] == "suspended"
    assert out["g_switches"] == 2
    assert eventually(lambda: g.gr_state == "dead")
    assert g.gr_state == "dead"
    assert tmain.gr_state == "dead"
    assert g.gr_thread_id == out["ident"] == t.ident
    assert tmain.gr_thread_id == t.ident
    assert g.gr_switches == 2
    assert tmain.gr_switches == out["main_switches"]
    assert g.gr_run_ns >= 9 * MS
    assert g.gr_run_ns == pytest.approx(out["g_run"], rel=1e-3, abs=1000)
    assert g.gr_name is None
    g.gr_name = "still nameable"
    assert g.gr_name == "still nameable"


def test_main_greenlet_of_exited_thread_stops_accumulating_time():
    out = {}

    def body():
        out["main"] = getcurrent()
        busy_wait(0.005)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    tmain = out["main"]
    assert eventually(lambda: tmain.gr_state == "dead")
    first = tmain.gr_run_ns
    assert first >= 4 * MS
    time.sleep(0.03)
    second = tmain.gr_run_ns
    # Not live any more: 30 ms later it has not grown by them.
    assert abs(second - first) < 3 * MS


# ---------------------------------------------------------------------------
# gr_run_ns


def test_run_time_tracking_is_off_by_default_and_counts_switches_anyway(run_python):
    rc, out, err = run_python(
        """
        import time, greenlet
        assert greenlet.get_run_time_tracking() is False

        def spin(seconds):
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass

        def run():
            spin(0.02)
            greenlet.getcurrent().parent.switch()
            spin(0.02)

        g = greenlet.greenlet(run)
        g.switch(); g.switch()
        print(g.gr_run_ns, g.gr_switches, greenlet.getcurrent().gr_run_ns)
        """
    )
    assert rc == 0, err
    run_ns, switches, main_ns = map(int, out.split())
    assert (run_ns, switches, main_ns) == (0, 2, 0)


def test_run_time_counts_from_when_tracking_is_turned_on():
    greenlet_pkg.set_run_time_tracking(False)

    def run():
        busy_wait(0.03)  # before tracking: not counted
        getcurrent().parent.switch()
        greenlet_pkg.set_run_time_tracking(True)
        t0 = time.perf_counter()
        busy_wait(0.02)
        getcurrent().parent.switch(time.perf_counter() - t0)

    g = greenlet(run)
    g.switch()
    assert g.gr_run_ns == 0
    assert greenlet_pkg.get_run_time_tracking() is False
    counted = g.switch()
    assert greenlet_pkg.get_run_time_tracking() is True
    assert close_to(g.gr_run_ns, counted), (g.gr_run_ns, counted)


def test_turning_run_time_tracking_off_keeps_the_totals():
    def run():
        busy_wait(0.02)
        getcurrent().parent.switch()
        busy_wait(0.02)

    g = greenlet(run)
    g.switch()
    total = g.gr_run_ns
    assert total >= 15 * MS
    greenlet_pkg.set_run_time_tracking(False)
    g.switch()
    assert g.dead
    assert g.gr_run_ns == total
    assert greenlet_pkg.get_run_time_tracking() is False


def test_run_time_tracking_takes_any_truth_value():
    greenlet_pkg.set_run_time_tracking(0)
    assert greenlet_pkg.get_run_time_tracking() is False
    greenlet_pkg.set_run_time_tracking("yes")
    assert greenlet_pkg.get_run_time_tracking() is True

    class Bad:
        def __bool__(self):
            raise ZeroDivisionError("no truth")

    with pytest.raises(ZeroDivisionError):
        greenlet_pkg.set_run_time_tracking(Bad())
    assert greenlet_pkg.get_run_time_tracking() is True


def test_unstarted_greenlet_has_no_run_time():
    g = greenlet(lambda: None)
    time.sleep(0.005)
    assert g.gr_run_ns == 0


def close_to(measured_ns, expected_s):
    """gr_run_ns against the wall time the program itself measured for the
    same stretches: within 2 ms + 10% (the readings are taken a few
    instructions away from the switches)."""
    expected_ns = expected_s * 1e9
    return abs(measured_ns - expected_ns) <= 2 * MS + 0.10 * expected_ns


def test_run_time_of_child_and_parent_in_a_controlled_program():
    # The parent spins ~20 ms, switches to a child that spins ~50 ms and
    # finishes back into the parent.  Each greenlet's run time is the wall
    # time of its own stretches only.
    t = {}

    def child_run():
        t["child_in"] = time.perf_counter()
        busy_wait(0.050)
        t["child_out"] = time.perf_counter()

    def parent_body():
        t["parent_in"] = time.perf_counter()
        c = greenlet(child_run)
        busy_wait(0.020)
        t["parent_switch"] = time.perf_counter()
        c.switch()
        t["parent_back"] = time.perf_counter()
        t["parent_out"] = time.perf_counter()
        return c

    parent = greenlet(parent_body)
    child = parent.switch()
    child_ns, parent_ns = child.gr_run_ns, parent.gr_run_ns
    child_wall = t["child_out"] - t["child_in"]
    parent_wall = (t["parent_switch"] - t["parent_in"]) + (
        t["parent_out"] - t["parent_back"]
    )
    assert child_ns >= 45 * MS
    assert parent_ns >= 18 * MS
    assert close_to(child_ns, child_wall), (child_ns, child_wall)
    assert close_to(parent_ns, parent_wall), (parent_ns, parent_wall)
    # The child's 50 ms are not the parent's (not even half of them).
    assert parent_ns < parent_wall * 1e9 + child_ns / 2, (parent_ns, child_ns)
    share = child_ns / (child_ns + parent_ns)
    expected_share = child_wall / (child_wall + parent_wall)
    assert abs(share - expected_share) < 0.1, (share, expected_share)


def test_main_greenlet_run_time_excludes_children():
    main = getcurrent()
    t = {}

    def child_run():
        t["child_in"] = time.perf_counter()
        busy_wait(0.050)
        t["child_out"] = time.perf_counter()
        main.switch()

    child = greenlet(child_run)
    before = main.gr_run_ns
    t0 = time.perf_counter()
    busy_wait(0.020)
    t1 = time.perf_counter()
    child.switch()
    t2 = time.perf_counter()
    after = main.gr_run_ns
    main_ns = after - before
    main_wall = (t1 - t0) + (time.perf_counter() - t2)
    child_ns = child.gr_run_ns
    child_wall = t["child_out"] - t["child_in"]
    assert child_ns >= 45 * MS
    assert main_ns >= 18 * MS
    assert close_to(child_ns, child_wall), (child_ns, child_wall)
    assert close_to(main_ns, main_wall), (main_ns, main_wall)
    assert main_ns < main_wall * 1e9 + child_ns / 2, (main_ns, child_ns)
    share = child_ns / (child_ns + main_ns)
    expected_share = child_wall / (child_wall + main_wall)
    assert abs(share - expected_share) < 0.1, (share, expected_share)
    # Suspended: its time does not grow.
    frozen = child.gr_run_ns
    busy_wait(0.010)
    assert child.gr_run_ns == pytest.approx(frozen, rel=1e-3, abs=100_000)
    child.switch()


def test_running_greenlet_time_is_live():
    def run():
        me = getcurrent()
        first = me.gr_run_ns
        busy_wait(0.010)
        second = me.gr_run_ns
        return first, second

    first, second = greenlet(run).switch()
    assert second - first >= 9 * MS
    main = getcurrent()
    a = main.gr_run_ns
    busy_wait(0.010)
    b = main.gr_run_ns
    assert b - a >= 9 * MS


def test_running_greenlet_of_other_thread_time_is_live():
    parked = threading.Event()
    release = threading.Event()
    info = {}

    def park():
        info["g"] = getcurrent()
        parked.set()
        release.wait(10)

    def body():
        greenlet(park).switch()

    t = threading.Thread(target=body)
    t.start()
    try:
        assert parked.wait(10)
        g = info["g"]
        first = g.gr_run_ns
        time.sleep(0.03)
        second = g.gr_run_ns
        # Blocked or not, it is its thread's running greenlet.
        assert second - first >= 25 * MS
    finally:
        release.set()
        t.join()


def test_run_time_accumulates_over_several_slices():
    main = getcurrent()
    walls = []

    def run():
        for _ in range(3):
            t0 = time.perf_counter()
            busy_wait(0.010)
            walls.append(time.perf_counter() - t0)
            main.switch()

    g = greenlet(run)
    totals = []
    for _ in range(3):
        g.switch()
        totals.append(g.gr_run_ns)
        busy_wait(0.030)
    assert totals[0] >= 9 * MS
    assert totals[1] - totals[0] >= 9 * MS
    assert totals[2] - totals[1] >= 9 * MS
    # main's 3 x 30 ms between the slices are not the greenlet's.
    assert close_to(totals[2], sum(walls)), (totals, walls)
    g.switch()


# ---------------------------------------------------------------------------
# gr_name


def test_name_set_and_reset():
    g = greenlet(lambda: None)
    assert g.gr_name is None
    g.gr_name = "worker-1"
    assert g.gr_name == "worker-1"
    g.gr_name = "renamed"
    assert g.gr_name == "renamed"
    del g.gr_name
    assert g.gr_name is None
    g.gr_name = "again"
    g.gr_name = None
    assert g.gr_name is None
    # Deleting an unset name is fine too.
    del g.gr_name
    assert g.gr_name is None


@pytest.mark.parametrize("bad", [b"bytes", 1, 1.5, ["x"], object()])
def test_name_must_be_str_or_none(bad):
    g = greenlet(lambda: None)
    g.gr_name = "kept"
    with pytest.raises(TypeError):
        g.gr_name = bad
    assert g.gr_name == "kept"


def test_name_accepts_str_subclass_and_keeps_the_object():
    class Label(str):
        pass

    label = Label("label")
    g = greenlet(lambda: None)
    g.gr_name = label
    assert g.gr_name is label


def test_name_survives_every_state():
    main = getcurrent()

    def run():
        assert getcurrent().gr_name == "n"
        getcurrent().gr_name = "set while running"
        main.switch()

    g = greenlet(run)
    g.gr_name = "n"
    g.switch()
    assert g.gr_name == "set while running"
    g.gr_name = "suspended"
    g.switch()
    assert g.gr_state == "dead"
    assert g.gr_name == "suspended"
    g.gr_name = "dead"
    assert g.gr_name == "dead"


def test_main_greenlet_can_be_named():
    main = getcurrent()
    old = main.gr_name
    try:
        main.gr_name = "the main one"
        assert main.gr_name == "the main one"
        assert greenlet(lambda: getcurrent().parent.gr_name).switch() == "the main one"
    finally:
        main.gr_name = old


def test_name_is_not_the_dict():
    g = greenlet(lambda: None)
    g.gr_name = "x"
    assert "gr_name" not in g.__dict__


def test_name_released_with_greenlet():
    class Label(str):
        pass

    label = Label("dropped")
    ref = weakref.ref(label)
    g = greenlet(lambda: None)
    g.gr_name = label
    del label
    assert ref() is not None
    del g
    assert ref() is None


def test_subclass_has_the_attributes():
    class MyGreenlet(greenlet):
        pass

    main = getcurrent()
    g = MyGreenlet(lambda: main.switch())
    assert g.gr_state == "unstarted"
    g.switch()
    assert g.gr_state == "suspended"
    assert g.gr_switches == 1
    g.gr_name = "sub"
    assert g.gr_name == "sub"
    g.switch()
    assert g.gr_state == "dead"
    assert g.gr_switches == 2


def test_module_exports():
    for name in (
        "all_greenlets",
        "set_spawn_tracking",
        "get_spawn_tracking",
        "SwitchLog",
        "frame_of",
    ):
        assert name in greenlet_pkg.__all__
        assert callable(getattr(greenlet_pkg, name))


# ---------------------------------------------------------------------------
# Counters do not move unless the greenlet runs


def test_dead_greenlet_run_time_is_fixed():
    # A dead greenlet keeps its counters: every read gives the same value.
    g = greenlet(lambda: busy_wait(0.02))
    g.switch()
    first = g.gr_run_ns
    readings = []
    for _ in range(20):
        time.sleep(0.002)
        readings.append(g.gr_run_ns)
    assert readings == [first] * 20


def test_suspended_greenlet_run_time_never_goes_back():
    main = getcurrent()

    def run():
        busy_wait(0.02)
        main.switch()

    g = greenlet(run)
    g.switch()
    readings = []
    for _ in range(20):
        time.sleep(0.002)
        readings.append(g.gr_run_ns)
    assert readings == sorted(readings)
    assert len(set(readings)) == 1
    g.switch()


def test_failed_switches_are_not_counted():
    from greenlet._greenlet import UnswitchableGreenlet

    main = getcurrent()
    g = UnswitchableGreenlet(lambda: main.switch())
    g.switch()
    assert g.gr_switches == 1
    g.force_switch_error = True
    before_main = main.gr_switches
    with pytest.raises(SystemError):
        g.switch()
    assert g.gr_switches == 1
    assert g.gr_state == "suspended"
    assert main.gr_switches == before_main
    g.force_switch_error = False
    g.switch()
    assert g.gr_switches == 2


def test_start_without_run_is_not_counted():
    g = greenlet()
    with pytest.raises(AttributeError):
        g.switch()
    assert g.gr_state == "unstarted"
    assert g.gr_switches == 0
    assert g.gr_thread_id is None
    assert g.gr_run_ns == 0


def test_cross_thread_switch_is_not_counted():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    errors = []

    def body():
        try:
            g.switch()
        except greenlet_pkg.error as exc:
            errors.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert len(errors) == 1
    assert g.gr_switches == 1
    assert g.gr_thread_id == threading.get_ident()
    g.switch()
