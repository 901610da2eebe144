"""The blocking watchdog: who held a thread, the stack at detection, the true duration."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from procs import HANG, greentrace

greenlet = pytest.importorskip("greenlet")
import greentrace as gt
from greentrace.blocking import BlockReport, Watchdog, describe

MS = 1_000_000


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

    def wait_for(self, kind: str, timeout: float = 10) -> BlockReport:
        with self.changed:
            self.changed.wait_for(lambda: kind in self.kinds(), timeout)
        return next(r for k, r in self.items if k == kind)


def in_thread(body: Callable[[], None], name: str = "scenario") -> threading.Thread:
    """Run ``body`` in a fresh thread, whose only greenlets are the ones it makes."""
    thread = threading.Thread(target=body, name=name)
    thread.start()
    return thread


def park_forever() -> None:
    while True:
        greenlet.getcurrent().parent.switch()


def blocks_for(seconds: float) -> None:
    time.sleep(seconds)  # the line the report must show


@pytest.fixture
def reports() -> Iterator[Reports]:
    yield Reports()


def test_block_is_reported_with_its_stack_then_its_true_duration(
    reports: Reports,
) -> None:
    ran = threading.Event()

    def scenario() -> None:
        waiters = [greenlet.greenlet(park_forever) for _ in range(2)]
        for w in waiters:
            w.switch()
        blocker = greenlet.greenlet(blocks_for)
        blocker.gr_name = "blocker"
        blocker.switch(0.4)
        ran.set()

    with Watchdog(0.1, report=reports) as dog:
        thread = in_thread(scenario, name="scenario-1")
        thread.join(10)
        assert ran.is_set()
        released = reports.wait_for("released")
    assert reports.kinds() == ["blocked", "released"]
    blocked = reports.items[0][1]
    assert blocked.label == "blocker" and blocked.thread_name == "scenario-1"
    assert blocked.thread_id == thread.ident
    assert 100 * MS <= blocked.held_ns < 400 * MS
    assert blocked.exact_start
    assert (
        blocked.stack[0].line == "time.sleep(seconds)  # the line the report must show"
    )
    assert blocked.stack[0].function.endswith("blocks_for")
    # The true duration: from the switch into the blocker to the switch out of it.
    assert 400 * MS <= released.held_ns < 1000 * MS
    assert released.started_ns == blocked.started_ns
    assert (
        released.ended_ns is not None
        and released.ended_ns - released.started_ns == released.held_ns
    )
    assert [r.greenlet_id for r in dog.reports] == [released.greenlet_id]
    text = describe("released", released)
    assert text.startswith(
        f"blocking: greenlet blocker #{released.greenlet_id} released thread scenario-1 after "
    )


def test_switching_often_is_not_blocking(reports: Reports) -> None:
    def scenario() -> None:
        waiter = greenlet.greenlet(park_forever)
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            time.sleep(0.01)
            waiter.switch()

    with Watchdog(0.1, report=reports):
        in_thread(scenario).join(10)
    assert reports.items == []


def test_holding_a_thread_nobody_waits_for_is_not_blocking(reports: Reports) -> None:
    def scenario() -> None:
        greenlet.greenlet(
            lambda: None
        ).switch()  # the thread has greenlets, all finished
        time.sleep(0.35)

    with Watchdog(0.1, report=reports):
        in_thread(scenario).join(10)
    assert reports.items == []


class Hub(greenlet.greenlet):
    """Looks like an event loop's hub: waiting in it is idling, not blocking."""

    def run(self) -> None:
        time.sleep(0.3)


@pytest.mark.parametrize("ignore_hubs", [True, False])
def test_hubs_are_skipped_unless_asked(reports: Reports, ignore_hubs: bool) -> None:
    def scenario() -> None:
        greenlet.greenlet(park_forever).switch()
        Hub().switch()

    options = {} if ignore_hubs else {"ignore": None}
    with Watchdog(0.1, report=reports, **options):
        in_thread(scenario).join(10)
    if ignore_hubs:
        assert reports.items == []
    else:
        assert reports.kinds() == ["blocked", "released"]
        assert reports.items[0][1].label == "Hub.run"


def test_stopping_mid_block_reports_it_unfinished(reports: Reports) -> None:
    started, release = threading.Event(), threading.Event()

    def scenario() -> None:
        def hold() -> None:
            started.set()
            release.wait(10)

        greenlet.greenlet(park_forever).switch()
        greenlet.greenlet(hold).switch()

    dog = Watchdog(0.05, report=reports).start()
    thread = in_thread(scenario)
    try:
        assert started.wait(10)
        reports.wait_for("blocked")
        dog.stop()
    finally:
        release.set()
        thread.join(10)
    assert reports.kinds() == ["blocked", "unfinished"]
    assert not dog.running
    assert "still held" in describe("unfinished", reports.items[1][1])


def test_watch_blocking_api_and_bad_threshold() -> None:
    with pytest.raises(ValueError, match="positive"):
        Watchdog(0)
    dog = gt.watch_blocking(0.05)
    try:
        assert dog.running
        assert dog._thread is not None and dog._thread.ident not in dog._states
    finally:
        dog.stop()


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_blocking_reports_the_hang_example(runtime: Path) -> None:
    proc = greentrace(
        runtime, "run", "--blocking", "0.2", str(HANG), "--seconds", "0.6"
    )
    assert proc.returncode == 0, proc.stderr
    assert "unblocked" in proc.stdout
    err = proc.stderr
    blocked = re.search(
        r"blocking: greenlet blocker #(\d+) has held thread MainThread for ([\d.]+) ms without switching "
        r"\(threshold 200 ms\)",
        err,
    )
    assert blocked, err
    assert 200 <= float(blocked.group(2)) < 600
    stack = err[blocked.end() :].split("greentrace:")[0]
    assert "in blocker" in stack and "time.sleep(0.05)" in stack
    released = re.search(
        rf"blocking: greenlet blocker #{blocked.group(1)} released thread MainThread after ([\d.]+) ms",
        err,
    )
    assert released, err
    assert (
        600 <= float(released.group(1)) < 1500
    )  # the true duration, not the threshold
    assert err.count("blocking: greenlet") == 2  # nothing else, and never the watchdog
