"""The blocking watchdog: who held a thread, the stack at detection, the true duration.

The process running these tests may hold threads left behind by other tests,
some of them with a greenlet that looks blocked.  Every watchdog here is
therefore told which threads to watch (a predicate, idents, or ``"new"``), and
where one watches every thread, the assertions only look at the threads the
test made.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from procs import HANG, Program, greentrace, poll

greenlet = pytest.importorskip("greenlet")
import greentrace as gt
from greentrace import capture
from greentrace.blocking import BlockReport, Watchdog, describe, print_report
from greentrace.model import FrameInfo

if TYPE_CHECKING:
    from typing_extensions import Self

MS = 1_000_000
THRESHOLD = 0.1


class Reports:
    """A report callback that keeps copies, with a way to wait for a kind."""

    def __init__(self) -> None:
        self.items: list[tuple[str, BlockReport]] = []
        self.changed = threading.Condition()

    def __call__(self, kind: str, report: BlockReport) -> None:
        with self.changed:
            self.items.append(
                (kind, dataclasses.replace(report, stack=list(report.stack)))
            )
            self.changed.notify_all()

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.items]

    def wait_for(self, kind: str, timeout: float = 20) -> BlockReport:
        with self.changed:
            assert self.changed.wait_for(lambda: kind in self.kinds(), timeout), (
                f"no {kind!r} report within {timeout}s: {self.kinds()}"
            )
        return next(r for k, r in self.items if k == kind)


class Scenario:
    """``body`` in a fresh thread (whose only greenlets are the ones it makes), not yet started."""

    def __init__(self, body: Callable[[], None], name: str = "scenario") -> None:
        self.thread = threading.Thread(target=body, name=name, daemon=True)

    def watched(self, thread_id: int) -> bool:
        """The filter for a watchdog that must see this thread and no other."""
        return thread_id == self.thread.ident

    def run(self, timeout: float = 20) -> None:
        self.thread.start()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the scenario did not finish"


def park_forever() -> None:
    while True:
        greenlet.getcurrent().parent.switch()


def blocks_for(seconds: float) -> None:
    time.sleep(seconds)  # the line the report must show


def park_waiters(count: int) -> list[greenlet.greenlet]:
    """Greenlets suspended in this thread, waiting for their turn."""
    waiters = [greenlet.greenlet(park_forever) for _ in range(count)]
    for w in waiters:
        w.switch()
    return waiters


@pytest.fixture
def reports() -> Reports:
    return Reports()


def test_block_is_reported_with_its_stack_then_its_true_duration(
    reports: Reports,
) -> None:
    bounds: list[int] = []

    def body() -> None:
        waiters = park_waiters(2)
        blocker = greenlet.greenlet(blocks_for)
        blocker.gr_name = "blocker"
        bounds.append(time.monotonic_ns())
        blocker.switch(0.4)
        bounds.append(time.monotonic_ns())
        del waiters

    scenario = Scenario(body, name="scenario-1")
    with Watchdog(THRESHOLD, report=reports, threads=scenario.watched) as dog:
        scenario.run()
        released = reports.wait_for("released")
    assert reports.kinds() == ["blocked", "released"]
    blocked = reports.items[0][1]
    assert blocked.label == "blocker" and blocked.thread_name == "scenario-1"
    assert blocked.thread_id == scenario.thread.ident
    assert blocked.exact_start
    # The stack at detection: the greenlet was inside time.sleep.
    assert blocked.stack[0].function.endswith("blocks_for")
    assert blocked.stack[0].line == (
        "time.sleep(seconds)  # the line the report must show"
    )
    # Detected after the threshold, while the block lasted.
    before, after = bounds
    assert before <= blocked.started_ns
    assert blocked.held_ns >= THRESHOLD * 1e9
    assert blocked.detected_ns <= after
    # The true duration, from the switch into the blocker to the switch out:
    # at least the sleep, within what the thread itself measured, never the threshold.
    assert released.started_ns == blocked.started_ns
    assert released.ended_ns is not None and released.ended_ns <= after
    assert released.held_ns == released.ended_ns - released.started_ns
    assert 400 * MS <= released.held_ns <= after - before
    assert released.held_ns > blocked.held_ns
    assert [r.greenlet_id for r in dog.reports] == [released.greenlet_id]
    text = describe("released", released)
    assert text.startswith(
        f"blocking: greenlet blocker #{released.greenlet_id} released thread scenario-1 after "
    )
    assert "at least" not in text


def test_switching_often_is_not_blocking(reports: Reports) -> None:
    def body() -> None:
        (waiter,) = park_waiters(1)
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            time.sleep(0.01)
            waiter.switch()

    scenario = Scenario(body)
    with Watchdog(THRESHOLD, report=reports, threads=scenario.watched):
        scenario.run()
    assert reports.items == []


def test_holding_a_thread_nobody_waits_for_is_not_blocking(reports: Reports) -> None:
    def body() -> None:
        greenlet.greenlet(lambda: None).switch()  # it has greenlets, all finished
        time.sleep(0.35)

    scenario = Scenario(body)
    with Watchdog(THRESHOLD, report=reports, threads=scenario.watched):
        scenario.run()
    assert reports.items == []


class Hub(greenlet.greenlet):
    """Looks like an event loop's hub: waiting in it is idling, not blocking."""

    def run(self) -> None:
        time.sleep(0.3)


@pytest.mark.parametrize("ignore_hubs", [True, False])
def test_hubs_are_skipped_unless_asked(reports: Reports, ignore_hubs: bool) -> None:
    def body() -> None:
        waiters = park_waiters(1)
        Hub().switch()
        del waiters

    scenario = Scenario(body)
    options = {} if ignore_hubs else {"ignore": None}
    with Watchdog(THRESHOLD, report=reports, threads=scenario.watched, **options):
        scenario.run()
    if ignore_hubs:
        assert reports.items == []
    else:
        assert reports.kinds() == ["blocked", "released"]
        assert reports.items[0][1].label == "Hub.run"


def test_stopping_mid_block_reports_it_unfinished(reports: Reports) -> None:
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(20)

    def body() -> None:
        waiters = park_waiters(1)
        greenlet.greenlet(hold).switch()
        del waiters

    scenario = Scenario(body)
    dog = Watchdog(0.05, report=reports, threads=scenario.watched).start()
    scenario.thread.start()
    try:
        assert started.wait(20)
        reports.wait_for("blocked")
        dog.stop()
    finally:
        release.set()
        scenario.thread.join(20)
    assert reports.kinds() == ["blocked", "unfinished"]
    assert not dog.running
    unfinished = reports.items[1][1]
    assert unfinished.ended_ns is None
    assert unfinished.held_ns >= reports.items[0][1].held_ns
    assert "still held" in describe("unfinished", unfinished)


class Holder:
    """A thread whose greenlet holds it, with another greenlet waiting, until released."""

    def __init__(self) -> None:
        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._body, name="holder", daemon=True)

    def _hold(self) -> None:
        self.holding.set()
        self.release.wait(30)

    def _body(self) -> None:
        waiters = park_waiters(1)
        greenlet.greenlet(self._hold).switch()
        del waiters

    def __enter__(self) -> Self:
        self.thread.start()
        assert self.holding.wait(20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(20)


def test_threads_new_leaves_threads_blocked_before_it_alone(reports: Reports) -> None:
    def body() -> None:
        waiters = park_waiters(1)
        greenlet.greenlet(blocks_for).switch(0.3)
        del waiters

    scenario = Scenario(body)
    with Holder() as foreign:
        with Watchdog(THRESHOLD, report=reports, threads="new"):
            scenario.run()
            reports.wait_for("released")
        assert foreign.thread.is_alive() and not foreign.release.is_set()
    assert reports.kinds() == ["blocked", "released"]
    assert {r.thread_id for _, r in reports.items} == {scenario.thread.ident}


def test_threads_given_by_ident_are_the_only_ones_watched(reports: Reports) -> None:
    def body() -> None:
        waiters = park_waiters(1)
        greenlet.greenlet(blocks_for).switch(0.3)
        del waiters

    scenario = Scenario(body)
    with Holder() as chosen:
        assert chosen.thread.ident is not None
        with Watchdog(THRESHOLD, report=reports, threads=[chosen.thread.ident]):
            scenario.run()
            reports.wait_for("blocked")
    # The chosen thread was blocked all along: reported, then unfinished at stop;
    # the scenario's block, as long as the threshold allows, was not watched.
    assert reports.kinds() == ["blocked", "unfinished"]
    assert {r.thread_id for _, r in reports.items} == {chosen.thread.ident}
    assert not reports.items[0][1].exact_start  # it held the thread before the start
    assert "at least" in describe("unfinished", reports.items[1][1])


def test_the_watchdog_never_reports_itself(reports: Reports) -> None:
    """Its own thread holds greenlets that wait for it, and still it is never reported."""
    parked: list[greenlet.greenlet] = []
    watchdog_threads: list[int] = []

    def report(kind: str, block: BlockReport) -> None:
        # Runs in the watchdog's thread: leave a suspended greenlet there, so
        # the watchdog thread itself holds a thread other greenlets wait in.
        if not parked:
            watchdog_threads.append(threading.get_ident())
            parked.extend(park_waiters(2))
        reports(kind, block)

    def body() -> None:
        waiters = park_waiters(1)
        greenlet.greenlet(blocks_for).switch(0.3)
        del waiters

    scenario = Scenario(body)
    dog = Watchdog(0.05, report=report)  # every thread of the process
    dog.start()
    try:
        scenario.run()
        reports.wait_for("released")
        # Give it many thresholds to (wrongly) notice its own thread.
        time.sleep(0.5)
        (own,) = watchdog_threads
        waiting_there = [
            g
            for g in greenlet.all_greenlets()
            if g.gr_thread_id == own and g.gr_state == "suspended"
        ]
        assert len(waiting_there) == 2  # the premise: greenlets wait in its thread
        hidden = all(own != t.thread_id for t in capture.snapshot().threads)
    finally:
        dog.stop()
    mine = [(k, r) for k, r in reports.items if r.thread_id == scenario.thread.ident]
    assert [k for k, _ in mine] == ["blocked", "released"]
    assert all(r.thread_id != own for _, r in reports.items)
    assert all(r.thread_id != own for r in dog.reports)
    assert hidden  # and captures do not show it either


def test_watch_blocking_api_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        Watchdog(0)
    with pytest.raises(ValueError, match="'new'"):
        Watchdog(1, threads="old").start()
    out = io.StringIO()
    dog = gt.watch_blocking(0.05, file=out, threads="new")
    try:
        assert dog.running
        assert dog.watches(12345) is True  # a thread that did not exist before it
        assert dog.watches(threading.get_ident()) is False
    finally:
        dog.stop()
    assert not dog.running
    assert out.getvalue() == ""


def test_printed_report_names_the_greenlet_and_shows_its_stack() -> None:
    report = BlockReport(
        greenlet_id=7,
        label="fetch",
        thread_id=99,
        thread_name="worker",
        threshold_ns=100 * MS,
        started_ns=1_000 * MS,
        detected_ns=1_150 * MS,
        stack=[
            FrameInfo("/app/net.py", 12, "fetch", "sock.recv(4096)"),
            FrameInfo("/app/main.py", 3, "main", None),
        ],
    )
    out = io.StringIO()
    print_report("blocked", report, file=out)
    lines = out.getvalue().splitlines()
    assert lines == [
        (
            "greentrace: blocking: greenlet fetch #7 has held thread worker for 150 ms "
            "without switching (threshold 100 ms)"
        ),
        '  File "/app/net.py", line 12, in fetch',
        "    sock.recv(4096)",
        '  File "/app/main.py", line 3, in main',
    ]
    report.ended_ns = 3_500 * MS
    out = io.StringIO()
    print_report("released", report, file=out)
    assert out.getvalue() == (
        "greentrace: blocking: greenlet fetch #7 released thread worker after 2.50 s\n"
    )
    inexact = dataclasses.replace(report, exact_start=False, ended_ns=None)
    assert describe("unfinished", inexact) == (
        "blocking: greenlet fetch #7 still held thread worker after at least 150 ms"
    )


# --- end to end: greentrace run --blocking ---------------------------------------


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


BLOCKED = re.compile(
    r"blocking: greenlet blocker #(\d+) has held thread MainThread for ([\d.]+) (ms|s) "
    r"without switching \(threshold 200 ms\)"
)


def _ms(value: str, unit: str) -> float:
    return float(value) * (1000 if unit == "s" else 1)


def test_run_blocking_reports_the_hang_example(runtime: Path) -> None:
    began = time.monotonic()
    proc = greentrace(
        runtime, "run", "--blocking", "0.2", str(HANG), "--seconds", "0.6", timeout=120
    )
    wall_ms = (time.monotonic() - began) * 1000
    assert proc.returncode == 0, proc.stderr
    assert "unblocked" in proc.stdout
    err = proc.stderr
    blocked = BLOCKED.search(err)
    assert blocked, err
    assert _ms(blocked.group(2), blocked.group(3)) >= 200
    # The stack at detection time follows the line.
    stack = err[blocked.end() :].split("greentrace:")[0]
    assert "in blocker" in stack and "time.sleep(0.05)" in stack
    released = re.search(
        rf"blocking: greenlet blocker #{blocked.group(1)} released thread MainThread "
        r"after ([\d.]+) (ms|s)",
        err,
    )
    assert released, err
    # The true duration, not the threshold: the blocker looped for 0.6 s.
    held = _ms(released.group(1), released.group(2))
    assert 600 <= held <= wall_ms
    # Nothing else was reported: not the waiters, not greentrace's own threads.
    assert err.count("blocking: greenlet") == 2, err
    assert "greenlets at exit" in err


def test_run_blocking_on_a_program_terminated_mid_block(runtime: Path) -> None:
    """SIGTERM ends the block (the blocker dies of SystemExit): its whole length is reported."""
    log = runtime / "stderr.txt"
    program = Program(runtime, HANG, run_options=("--blocking", "0.2"), stderr_file=log)
    with program:
        blocked = poll(lambda: BLOCKED.search(log.read_text()), what="the report")
        time.sleep(0.3)
        program.stop(signal.SIGTERM)
    assert program.proc.returncode == 128 + signal.SIGTERM
    err = log.read_text()
    released = re.search(
        rf"blocking: greenlet blocker #{blocked.group(1)} released thread MainThread "
        r"after ([\d.]+) (ms|s)",
        err,
    )
    assert released, err
    # From the switch into the blocker to its end: longer than it was when reported.
    assert _ms(released.group(1), released.group(2)) > _ms(
        blocked.group(2), blocked.group(3)
    )
    assert err.count("blocking: greenlet") == 2, err
    assert "greenlets at exit" in err
