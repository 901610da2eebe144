"""greentrace.capture on live greenlets of this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

greenlet = pytest.importorskip("greenlet")
from greentrace import capture
from greentrace.model import Recording, Snapshot, load


@pytest.fixture
def spawn_tracking() -> Iterator[None]:
    before = greenlet.get_spawn_tracking()
    greenlet.set_spawn_tracking(8)
    yield
    greenlet.set_spawn_tracking(before)


def park() -> None:
    greenlet.getcurrent().parent.switch()


def parked_in_helper() -> None:
    park()  # the line a suspended worker's stack must show


class Worker(greenlet.greenlet):
    def run(self) -> None:
        park()


def info(snap: Snapshot, g: greenlet.greenlet):  # type: ignore[name-defined]
    return snap.by_id()[g.gr_id]


def test_snapshot_sees_every_state_and_the_parent_links(spawn_tracking: None) -> None:
    suspended = greenlet.greenlet(parked_in_helper)
    suspended.switch()
    unstarted = greenlet.greenlet(park, parent=suspended)
    dead = greenlet.greenlet(lambda: None)
    dead.switch()
    snap = capture.snapshot()
    here = greenlet.getcurrent()
    assert info(snap, suspended).state == "suspended"
    assert info(snap, unstarted).state == "unstarted"
    assert info(snap, dead).state == "dead"
    assert info(snap, unstarted).parent_id == suspended.gr_id
    assert info(snap, suspended).parent_id == here.gr_id
    current = info(snap, here)
    assert current.state == "running" and current.is_current
    assert [g.id for g in snap.greenlets if g.is_current] == [here.gr_id]
    main = snap.by_id()[current.id if here.parent is None else 0]
    assert main.is_main and main.parent_id is None
    assert snap.greenlets == sorted(snap.greenlets, key=lambda g: g.id)
    # Leaves the worker suspended until the end of the test, when it is collected.
    del suspended


def test_stacks_are_innermost_first_with_source_lines() -> None:
    g = greenlet.greenlet(parked_in_helper)
    g.switch()
    stack = info(capture.snapshot(), g).stack
    assert [f.function for f in stack] == ["park", "parked_in_helper"]
    assert stack[0].line == "greenlet.getcurrent().parent.switch()"
    assert stack[1].line is not None and stack[1].line.startswith("park()")
    assert stack[0].filename == __file__
    assert info(capture.snapshot(), g).location == stack[0]
    assert info(capture.snapshot(lines=False), g).stack[0].line is None


def test_the_taking_greenlet_starts_at_its_caller() -> None:
    snap = capture.snapshot()
    top = info(snap, greenlet.getcurrent()).stack[0]
    assert top.function.endswith("test_the_taking_greenlet_starts_at_its_caller")
    assert top.line == "snap = capture.snapshot()"


def test_run_names_types_names_and_spawn_sites(spawn_tracking: None) -> None:
    plain = greenlet.greenlet(parked_in_helper)
    started = greenlet.greenlet(parked_in_helper)
    started.switch()
    sub = Worker()
    sub.gr_name = "worker-7"
    sub.switch()
    snap = capture.snapshot()
    assert info(snap, plain).run_name == "parked_in_helper"
    assert info(snap, started).run_name == "parked_in_helper"
    assert info(snap, sub).run_name == "Worker.run"
    assert info(snap, sub).type_name.endswith(".Worker")
    assert info(snap, sub).label == "worker-7"
    assert info(snap, plain).is_plain_type
    site = info(snap, plain).spawn_site
    assert site is not None and site[0].function.endswith(
        "test_run_names_types_names_and_spawn_sites"
    )
    greenlet.set_spawn_tracking(0)
    late = greenlet.greenlet(park)
    assert info(capture.snapshot(), late).spawn_site is None


def test_run_names_survive_the_greenlet_finishing() -> None:
    g = greenlet.greenlet(parked_in_helper)
    g.switch()
    capture.snapshot()
    g.switch()
    assert g.dead
    finished = info(capture.snapshot(), g)
    assert finished.run_name == "parked_in_helper"
    assert finished.stack == [] and finished.location is None


def test_other_threads_their_mains_and_what_they_run() -> None:
    ready, release = threading.Event(), threading.Event()
    owned: list[greenlet.greenlet] = []

    def blocked_here() -> None:
        ready.set()
        release.wait(10)

    def thread_body() -> None:
        g = greenlet.greenlet(blocked_here)
        owned.append(g)
        g.switch()

    t = threading.Thread(target=thread_body, name="side-thread")
    t.start()
    try:
        assert ready.wait(10)
        snap = capture.snapshot()
    finally:
        release.set()
        t.join(10)
    worker = info(snap, owned[0])
    assert worker.state == "running" and not worker.is_current
    assert worker.thread_id == t.ident
    assert any(f.function.endswith("blocked_here") for f in worker.stack)
    thread = snap.thread(t.ident)
    assert thread is not None and thread.name == "side-thread" and thread.alive
    assert thread.current_greenlet_id == worker.id
    assert thread.main_greenlet_id == worker.parent_id
    main = snap.by_id()[worker.parent_id]
    assert main.is_main and main.state == "suspended"
    assert main.stack[0].function.endswith("thread_body")
    assert snap.threads[0].thread_id == threading.main_thread().ident
    # Once the thread is gone its greenlets are dead and its record says so.
    after = capture.snapshot()
    assert after.by_id()[main.id].state == "dead"
    assert not after.thread(t.ident).alive


def test_internal_threads_are_hidden() -> None:
    ready, release = threading.Event(), threading.Event()

    def body() -> None:
        capture.mark_internal()
        greenlet.getcurrent()
        ready.set()
        release.wait(10)
        capture.unmark_internal()

    t = threading.Thread(target=body)
    t.start()
    try:
        assert ready.wait(10)
        snap = capture.snapshot()
    finally:
        release.set()
        t.join(10)
    assert snap.thread(t.ident) is None
    assert all(g.thread_id != t.ident for g in snap.greenlets)


def test_stack_limit_keeps_the_innermost_frames() -> None:
    def deep(n: int) -> None:
        if n:
            deep(n - 1)
        else:
            park()

    g = greenlet.greenlet(deep)
    g.switch(50)
    stack = info(capture.snapshot(stack_limit=10), g).stack
    assert len(stack) == 10
    assert stack[0].function == "park"


def test_snapshot_round_trips_and_holds_process_facts() -> None:
    g = greenlet.greenlet(parked_in_helper)
    g.switch()
    snap = capture.snapshot()
    assert snap.pid > 0 and snap.monotonic_ns <= time.monotonic_ns()
    assert abs(snap.taken_at - time.time()) < 60
    assert load(snap.to_json()) == snap


def test_capture_while_other_threads_churn_greenlets() -> None:
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            gs = [greenlet.greenlet(park) for _ in range(20)]
            for x in gs:
                x.switch()
            del gs

    threads = [threading.Thread(target=churn) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 0.5
        count = 0
        while time.monotonic() < deadline:
            snap = capture.snapshot()
            assert load(snap.to_json()) == snap
            count += 1
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert count > 0


def test_recorder_records_switches_and_labels() -> None:
    a = greenlet.greenlet(parked_in_helper)
    a.gr_name = "alpha"
    with capture.Recorder() as rec:
        a.switch()
        short = greenlet.greenlet(lambda: None)
        rec.harvest()  # seen before it runs: keeps its label although it dies
        short.switch()
        a.switch()
    result = rec.result
    assert isinstance(result, Recording)
    kinds = [(e.kind, e.origin_id, e.target_id) for e in result.events]
    me = greenlet.getcurrent().gr_id
    assert kinds == [
        ("start", me, a.gr_id),
        ("switch", a.gr_id, me),
        ("start", me, short.gr_id),
        ("finish", short.gr_id, me),
        ("switch", me, a.gr_id),
        ("finish", a.gr_id, me),
    ]
    assert (
        result.start_ns
        <= result.events[0].t_ns
        <= result.events[-1].t_ns
        <= result.end_ns
    )
    assert result.label(a.gr_id) == "alpha"
    assert result.greenlets[short.gr_id].run_name is not None
    assert result.greenlets[me].is_main == (greenlet.getcurrent().parent is None)
    assert set(result.greenlets) == {me, a.gr_id, short.gr_id}
    assert result.live_at_start is not None and result.live_at_start >= 1
    assert load(result.to_json()) == result
    assert result.run_ns_by_greenlet()[a.gr_id] > 0


def test_record_for_a_while_and_stop_early() -> None:
    stop = threading.Event()
    stop.set()
    began = time.monotonic()
    result = capture.record(30, stop=stop)
    assert time.monotonic() - began < 5
    assert result.events == []
    timed = capture.record(0.05)
    assert timed.end_ns - timed.start_ns >= 50_000_000


def test_a_full_ring_drops_the_oldest() -> None:
    g = greenlet.greenlet(
        lambda: [greenlet.getcurrent().parent.switch() for _ in range(100)]
    )
    with capture.Recorder(capacity=10) as rec:
        for _ in range(20):
            g.switch()
    assert len(rec.result.events) == 10
    assert rec.result.dropped == 30


def test_package_level_snapshot_and_print_tree() -> None:
    import io

    import greentrace

    g = greenlet.greenlet(parked_in_helper)
    g.gr_name = "printed"
    g.switch()
    assert info(greentrace.snapshot(), g).name == "printed"
    out = io.StringIO()
    greentrace.print_tree(file=out, stacks=True)
    text = out.getvalue()
    assert "printed #" in text and "park()" in text


def test_a_reused_thread_ident_describes_the_live_thread() -> None:
    """An exited thread's greenlets keep its ident, which a new thread may get again."""
    from greentrace.model import GreenletInfo
    from greentrace.threads import thread_records

    tid = 4242
    old_main = GreenletInfo(id=1, state="dead", thread_id=tid, is_main=True)
    old_child = GreenletInfo(id=2, state="dead", thread_id=tid, parent_id=1)
    new_main = GreenletInfo(id=7, state="suspended", thread_id=tid, is_main=True)
    new_child = GreenletInfo(id=8, state="running", thread_id=tid, parent_id=7)
    (thread,) = thread_records(
        [old_main, old_child, new_main, new_child], {tid: "reborn"}, {tid}
    )
    assert thread.alive and thread.name == "reborn"
    assert thread.main_greenlet_id == 7 and thread.current_greenlet_id == 8
    # Once the new thread has exited too, the record is of an exited thread.
    (gone,) = thread_records([old_main, old_child], {}, set())
    assert not gone.alive and gone.main_greenlet_id == 1 and gone.name is None


def test_a_helper_thread_that_ended_hides_no_later_thread() -> None:
    """An internal thread that ends without unmarking gives its ident back."""
    idents: list[int] = []

    def helper() -> None:
        capture.mark_internal()
        idents.append(threading.get_ident())
        assert threading.get_ident() in capture.internal_threads()

    t = threading.Thread(target=helper)
    t.start()
    t.join(10)
    assert idents and idents[0] not in capture.internal_threads()
    # A thread that takes the same ident again is seen.
    seen: list[bool] = []

    def later() -> None:
        g = greenlet.greenlet(lambda: None)
        g.switch()
        seen.append(threading.get_ident() not in capture.internal_threads())

    t = threading.Thread(target=later)
    t.start()
    t.join(10)
    assert seen == [True]
