"""greenlet.SwitchLog: the ring buffer of switch events."""

import gc
import threading
import time

import pytest

from greenlet import GreenletExit, SwitchLog, getcurrent, greenlet

KINDS = {"switch", "throw", "start", "finish", "kill"}


def eventually(predicate, tries=200):
    for _ in range(tries):
        if predicate():
            return True
        gc.collect()
        getcurrent()
        time.sleep(0.001)
    return predicate()


def untimed(events):
    """Events without their timestamps."""
    return [e[1:] for e in events]


def shape(events):
    """Events without their timestamps and thread ids."""
    return [(kind, origin, target) for _t, kind, origin, target, _thread in events]


def ping_pong(n):
    """A greenlet entered n times, leaving each time: exactly 2n events
    (start, n - 1 round trips, finish); it ends dead."""
    main = getcurrent()

    def run():
        for _ in range(n - 1):
            main.switch()

    g = greenlet(run)
    for _ in range(n):
        g.switch()
    assert g.dead
    return g


# ---------------------------------------------------------------------------
# The object


def test_defaults():
    log = SwitchLog()
    assert log.capacity == 65536
    assert log.active is False
    assert log.events == []
    assert log.dropped == 0
    assert len(log) == 0


@pytest.mark.parametrize("capacity", [0, -1, -65536])
def test_capacity_must_be_positive(capacity):
    with pytest.raises(ValueError):
        SwitchLog(capacity)
    with pytest.raises(ValueError):
        SwitchLog(capacity=capacity)


def test_capacity_must_be_an_int():
    with pytest.raises(TypeError):
        SwitchLog("10")
    with pytest.raises(TypeError):
        SwitchLog(1.5)


def test_enter_returns_the_log_and_exit_stops_it():
    log = SwitchLog(16)
    with log as entered:
        assert entered is log
        assert log.active is True
    assert log.active is False


def test_exit_does_not_swallow_exceptions():
    log = SwitchLog(16)
    with pytest.raises(KeyError), log:
        raise KeyError("x")
    assert log.active is False


def test_start_returns_the_log():
    log = SwitchLog(16)
    assert log.start() is log
    try:
        assert log.active
    finally:
        log.stop()
    assert not log.active


def test_records_nothing_unless_active():
    log = SwitchLog(16)
    ping_pong(3)
    assert log.events == []
    with log:
        pass
    ping_pong(3)
    assert log.events == []
    assert log.dropped == 0


def test_event_tuple_shape():
    with SwitchLog() as log:
        g = greenlet(lambda: None)
        g.switch()
    events = log.events
    assert len(events) == 2
    for event in events:
        assert isinstance(event, tuple)
        assert len(event) == 5
        t, kind, origin, target, thread = event
        assert type(t) is int
        assert kind in KINDS
        assert type(origin) is int
        assert type(target) is int
        assert type(thread) is int


# ---------------------------------------------------------------------------
# Events of a scripted program


def test_scripted_sequence():
    main = getcurrent()

    def run():
        main.switch("a")
        try:
            main.switch("b")
        except ValueError:
            pass
        main.switch("c")
        return "end"

    def victim_run():
        main.switch()

    with SwitchLog() as log:
        g = greenlet(run)
        assert g.switch() == "a"  # start, then switch back
        assert g.switch() == "b"  # switch, switch back
        assert g.throw(ValueError) == "c"  # throw, switch back
        assert g.switch() == "end"  # switch, finish
        v = greenlet(victim_run)
        v.switch()  # start, switch back
        vid = v.gr_id
        del v  # kill, finish
    M, G, V = main.gr_id, g.gr_id, vid
    assert shape(log.events) == [
        ("start", M, G),
        ("switch", G, M),
        ("switch", M, G),
        ("switch", G, M),
        ("throw", M, G),
        ("switch", G, M),
        ("switch", M, G),
        ("finish", G, M),
        ("start", M, V),
        ("switch", V, M),
        ("kill", M, V),
        ("finish", V, M),
    ]
    me = threading.get_ident()
    assert {e[4] for e in log.events} == {me}


def test_self_switch_logs_nothing():
    main = getcurrent()
    with SwitchLog() as log:
        main.switch()
        assert main.switch(5) == 5
    assert log.events == []


def test_throw_that_kills_logs_throw_then_finish():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    with SwitchLog() as log, pytest.raises(KeyError):
        g.throw(KeyError)
    assert shape(log.events) == [
        ("throw", main.gr_id, g.gr_id),
        ("finish", g.gr_id, main.gr_id),
    ]


def test_throw_into_unstarted_greenlet_is_its_start():
    main = getcurrent()
    g = greenlet(lambda: None)
    with SwitchLog() as log, pytest.raises(ValueError):
        g.throw(ValueError)
    assert shape(log.events) == [
        ("start", main.gr_id, g.gr_id),
        ("finish", g.gr_id, main.gr_id),
    ]


def test_greenlet_exit_thrown_in_logs_throw_then_finish():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    with SwitchLog() as log:
        assert isinstance(g.throw(), GreenletExit)
    assert shape(log.events) == [
        ("throw", main.gr_id, g.gr_id),
        ("finish", g.gr_id, main.gr_id),
    ]


def test_finish_target_is_the_parent_that_receives_the_result():
    main = getcurrent()
    got = []

    def parent_run():
        got.append(main.switch())  # suspended until the child finishes
        main.switch()

    p = greenlet(parent_run)
    p.switch()
    c = greenlet(lambda: "result", parent=p)
    with SwitchLog() as log:
        c.switch()
    assert got == ["result"]
    P, C, M = p.gr_id, c.gr_id, main.gr_id
    assert shape(log.events) == [
        ("start", M, C),
        ("finish", C, P),
        ("switch", P, M),
    ]
    p.switch()


def test_finish_skips_dead_parents():
    main = getcurrent()
    dead = greenlet(lambda: None, parent=main)
    dead.switch()
    c = greenlet(lambda: "r", parent=dead)
    with SwitchLog() as log:
        assert c.switch() == "r"
    assert shape(log.events) == [
        ("start", main.gr_id, c.gr_id),
        ("finish", c.gr_id, main.gr_id),
    ]


def test_finish_into_unstarted_parent_logs_both_finish_and_start():
    # The transfer is both the end of the child's run and the first start
    # of its parent: a consumer counting live greenlets needs one "finish"
    # for the child and one "start" for the parent.
    main = getcurrent()
    p = greenlet(lambda *args: ("parent got", args))
    c = greenlet(lambda: "from child", parent=p)
    with SwitchLog() as log:
        result = c.switch()
    assert result == ("parent got", ("from child",))
    M, P, C = main.gr_id, p.gr_id, c.gr_id
    events = shape(log.events)
    assert events.count(("finish", C, P)) == 1, events
    starts_of_parent = [e for e in events if e[0] == "start" and e[2] == P]
    assert len(starts_of_parent) == 1, events
    assert events[0] == ("start", M, C)
    assert events[-1] == ("finish", P, M)


def test_switch_to_dead_greenlet_logs_the_parent_it_reaches():
    main = getcurrent()

    def parent_run():
        main.switch()
        main.switch()

    p = greenlet(parent_run)
    p.switch()
    c = greenlet(lambda: None, parent=p)
    c.parent = main
    c.switch()
    c.parent = p  # dead now; switching to it reaches p
    with SwitchLog() as log:
        c.switch()
    assert shape(log.events) == [
        ("switch", main.gr_id, p.gr_id),
        ("switch", p.gr_id, main.gr_id),
    ]
    p.switch()


def test_kill_begun_inside_another_greenlet():
    main = getcurrent()
    v = greenlet(lambda: main.switch())
    v.switch()
    holder = [v]
    V = v.gr_id
    del v

    def killer_run():
        del holder[:]  # the victim's last reference
        return "killed"

    k = greenlet(killer_run)
    with SwitchLog() as log:
        assert k.switch() == "killed"
    K, M = k.gr_id, main.gr_id
    assert shape(log.events) == [
        ("start", M, K),
        ("kill", K, V),
        ("finish", V, K),
        ("finish", K, M),
    ]


def test_kill_of_victim_that_switches_during_its_kill():
    main = getcurrent()

    def victim():
        try:
            main.switch()
        except GreenletExit:
            helper = greenlet(lambda: "helped")
            helper.switch()
            raise

    v = greenlet(victim)
    v.switch()
    V = v.gr_id
    with SwitchLog() as log:
        del v
    events = shape(log.events)
    M = main.gr_id
    assert events[0] == ("kill", M, V)
    assert events[-1] == ("finish", V, M)
    assert [e[0] for e in events[1:-1]] == ["start", "finish"]
    helper_id = events[1][2]
    assert events[1:-1] == [("start", V, helper_id), ("finish", helper_id, V)]


def test_kill_deferred_to_the_owning_thread_is_tagged_with_that_thread():
    handed_over = threading.Event()
    dropped = threading.Event()
    out = {}

    def body():
        tmain = getcurrent()
        g = greenlet(lambda: tmain.switch())
        g.switch()
        out["g"] = g
        out["ids"] = (tmain.gr_id, g.gr_id)
        del g
        handed_over.set()
        assert dropped.wait(10)
        # The next switch in this thread runs the pending kill first.
        greenlet(lambda: None).switch()

    with SwitchLog() as log:
        t = threading.Thread(target=body)
        t.start()
        assert handed_over.wait(10)
        del out["g"]  # released in this thread, killed in its own
        dropped.set()
        t.join()
    tmain_id, g_id = out["ids"]
    mine = [e for e in log.events if e[4] == t.ident]
    assert len(mine) == len(log.events)
    kinds = shape(mine)
    assert kinds[:2] == [("start", tmain_id, g_id), ("switch", g_id, tmain_id)]
    assert kinds[2:4] == [("kill", tmain_id, g_id), ("finish", g_id, tmain_id)]
    assert [k for k, _o, _t in kinds[4:]] == ["start", "finish"]


# ---------------------------------------------------------------------------
# Timestamps


def test_timestamps_in_monotonic_ns_domain_and_ordered():
    main = getcurrent()
    stamps = {}

    def run():
        stamps["in_child"] = time.monotonic_ns()
        main.switch()
        stamps["resumed"] = time.monotonic_ns()

    before = time.monotonic_ns()
    with SwitchLog() as log:
        g = greenlet(run)
        stamps["before_start"] = time.monotonic_ns()
        g.switch()
        stamps["back_in_main"] = time.monotonic_ns()
        ping_pong(50)
        stamps["before_resume"] = time.monotonic_ns()
        g.switch()
    after = time.monotonic_ns()
    events = log.events
    times = [e[0] for e in events]
    assert times == sorted(times)
    assert all(before <= t <= after for t in times), (
        before,
        times[0],
        times[-1],
        after,
    )
    # Each event lies between the readings taken around its switch.
    slack = 50_000
    start, back = events[0], events[1]
    assert start[1] == "start" and back[1] == "switch"
    assert stamps["before_start"] - slack <= start[0] <= stamps["in_child"] + slack
    assert stamps["in_child"] - slack <= back[0] <= stamps["back_in_main"] + slack
    resume = events[-2]
    assert resume[1] == "switch" and resume[3] == g.gr_id
    assert stamps["before_resume"] - slack <= resume[0] <= stamps["resumed"] + slack


def test_timestamps_reflect_elapsed_time():
    main = getcurrent()

    def run():
        time.sleep(0.05)
        main.switch()

    with SwitchLog() as log:
        g = greenlet(run)
        g.switch()
    (t0, k0, *_), (t1, k1, *_) = log.events
    assert (k0, k1) == ("start", "switch")
    assert 45_000_000 <= t1 - t0 < 5_000_000_000
    g.switch()


def test_two_threads_tagged_and_interleaved_in_time_order():
    rounds = 6
    turn = [threading.Event(), threading.Event()]
    ids = {}

    def body(k):
        tmain = getcurrent()

        def run():
            for _ in range(rounds - 1):
                tmain.switch()

        g = greenlet(run)
        ids[k] = (threading.get_ident(), tmain.gr_id, g.gr_id)
        for _ in range(rounds):
            assert turn[k].wait(10)
            turn[k].clear()
            g.switch()
            turn[1 - k].set()
        assert g.dead

    with SwitchLog() as log:
        threads = [threading.Thread(target=body, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        turn[0].set()
        for t in threads:
            t.join()
    events = log.events
    times = [e[0] for e in events]
    assert times == sorted(times)
    owner = {}
    for ident, tmain_id, g_id in ids.values():
        owner[tmain_id] = owner[g_id] = ident
    for t_ns, kind, origin, target, thread in events:
        assert owner[origin] == thread
        assert owner[target] == thread
    sequence = [e[4] for e in events]
    assert sequence.count(ids[0][0]) == 2 * rounds
    assert sequence.count(ids[1][0]) == 2 * rounds
    # Strict alternation: each thread's pair of events, turn by turn.
    expected = []
    for _ in range(rounds):
        expected += [ids[0][0]] * 2 + [ids[1][0]] * 2
    assert sequence == expected


# ---------------------------------------------------------------------------
# The ring


def test_overflow_keeps_newest_and_counts_dropped():
    capacity = 10
    main = getcurrent()
    with SwitchLog() as reference, SwitchLog(capacity) as log:
        g = ping_pong(18)
    assert len(reference.events) == 36
    assert len(log) == capacity
    assert log.dropped == 36 - capacity
    assert untimed(log.events) == untimed(reference.events[-capacity:])
    assert shape(log.events)[-2:] == [
        ("switch", main.gr_id, g.gr_id),
        ("finish", g.gr_id, main.gr_id),
    ]


def test_overflow_by_exactly_one():
    with SwitchLog() as reference, SwitchLog(5) as log:
        ping_pong(3)
    assert len(reference) == 6
    assert log.dropped == 1
    assert untimed(log.events) == untimed(reference.events[1:])


def test_full_but_not_overflowing():
    with SwitchLog(6) as log:
        ping_pong(3)
    assert len(log) == 6
    assert log.dropped == 0


def test_capacity_one():
    with SwitchLog() as reference, SwitchLog(1) as log:
        ping_pong(4)
    assert untimed(log.events) == untimed(reference.events[-1:])
    assert log.dropped == 7


def test_overflow_many_times_around():
    with SwitchLog(7) as log:
        ping_pong(1000)
    assert len(log) == 7
    assert log.dropped == 2000 - 7
    times = [e[0] for e in log.events]
    assert times == sorted(times)


def test_clear_forgets_events_and_dropped():
    with SwitchLog(4) as log:
        ping_pong(5)
        assert log.dropped == 6
        log.clear()
        assert log.events == []
        assert log.dropped == 0
        assert len(log) == 0
        g = ping_pong(1)
    assert shape(log.events) == [
        ("start", getcurrent().gr_id, g.gr_id),
        ("finish", g.gr_id, getcurrent().gr_id),
    ]


def test_reading_does_not_drain_and_survives_the_with_block():
    with SwitchLog() as log:
        ping_pong(3)
    first = log.events
    second = log.events
    assert len(first) == 6
    assert untimed(first) == untimed(second)
    assert first is not second
    assert len(log) == 6
    ping_pong(2)  # not recording any more
    assert untimed(log.events) == untimed(first)


def test_event_timestamps_are_stable_between_reads():
    # An event happened once: every read of it, from any log, at any later
    # time, reports the same timestamp.
    a = SwitchLog()
    with a, SwitchLog() as b:
        ping_pong(3)
    first = a.events
    ping_pong(10)
    time.sleep(0.02)
    ping_pong(10)
    assert a.events == first
    assert b.events == first


def test_stop_and_restart_appends():
    log = SwitchLog()
    log.start()
    try:
        ping_pong(1)
        log.stop()
        ping_pong(5)
        log.start()
        ping_pong(1)
    finally:
        log.stop()
    assert [k for _t, k, *_ in log.events] == ["start", "finish", "start", "finish"]


def test_starting_twice_records_each_event_once():
    log = SwitchLog()
    log.start()
    log.start()
    try:
        ping_pong(2)
    finally:
        log.stop()
    assert len(log) == 4
    assert not log.active


def test_two_logs_active_at_once():
    a = SwitchLog()
    b = SwitchLog()
    with a:
        ping_pong(1)  # 2 events: a only
        with b:
            ping_pong(2)  # 4 events: both
            a.stop()
            ping_pong(3)  # 6 events: b only
    assert len(a) == 6
    assert len(b) == 10
    assert untimed(a.events[2:]) == untimed(b.events[:4])
    assert shape(a.events)[:2] != shape(b.events)[:2]  # different greenlets


def test_many_logs_with_different_capacities():
    logs = [SwitchLog(c) for c in (1, 3, 8, 100)]
    for log in logs:
        log.start()
    try:
        ping_pong(10)
    finally:
        for log in logs:
            log.stop()
    full = logs[-1].events
    assert len(full) == 20
    for log in logs[:-1]:
        assert untimed(log.events) == untimed(full[-log.capacity :])
        assert log.dropped == 20 - log.capacity


def test_dropping_an_active_log_stops_it():
    log = SwitchLog(8)
    log.start()
    del log
    # Recording into freed memory would crash or corrupt: switch a lot.
    ping_pong(100)
    with SwitchLog() as other:
        ping_pong(1)
    assert len(other) == 2


def test_repr_mentions_state():
    log = SwitchLog(8)
    assert "SwitchLog" in repr(log)
    with log:
        ping_pong(1)
        text = repr(log)
    assert "SwitchLog" in text


def test_failed_switches_log_nothing():
    from greenlet._greenlet import UnswitchableGreenlet

    main = getcurrent()
    u = UnswitchableGreenlet(lambda: main.switch())
    u.switch()
    u.force_switch_error = True
    no_run = greenlet()
    with SwitchLog() as log:
        with pytest.raises(SystemError):
            u.switch()
        with pytest.raises(AttributeError):
            no_run.switch()
    assert log.events == []
    u.force_switch_error = False
    u.switch()


def test_cross_thread_switch_logs_nothing():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    errors = []

    def body():
        try:
            g.switch()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    with SwitchLog() as log:
        t = threading.Thread(target=body)
        t.start()
        t.join()
    assert len(errors) == 1
    assert log.events == []
    g.switch()


@pytest.mark.parametrize("capacity", [2**60, 2**62])
def test_impossible_capacity_fails_cleanly(capacity):
    with pytest.raises((MemoryError, OverflowError)):
        SwitchLog(capacity)


def test_capacity_beyond_ssize_t_is_overflow():
    with pytest.raises(OverflowError):
        SwitchLog(2**80)
