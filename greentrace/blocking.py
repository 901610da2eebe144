"""A watchdog that reports greenlets holding their thread too long without switching.

It follows every switch through a ``SwitchTap`` (so it knows to the
nanosecond when the greenlet running in each thread took over), checks a few
times per threshold whether one has held its thread longer than the
threshold while other greenlets of that thread wait, and then reports the
greenlet with the stack it is executing.  When the greenlet finally switches
away, a second report gives the true length of the block, from the switch
into it to the switch out of it.

The watchdog thread is hidden from captures and never reports itself; a
greenlet that holds a thread nobody else waits for is not blocking anyone and
is not reported; event-loop hubs (gevent's ``Hub``, eventlet's hub) wait for
I/O by design and are skipped unless ``ignore`` says otherwise.

By default every thread of the process is watched.  ``threads`` narrows it:
a collection of thread idents, a predicate on the ident, or ``"new"`` for
the threads started after the watchdog (the threads that already ran greenlets
when it started are left alone).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Literal

from .model import FrameInfo, GreenletMeta

if TYPE_CHECKING:
    from typing_extensions import Self

    from .capture import SwitchTap

Reporter = Callable[[str, "BlockReport"], None]
ThreadFilter = Collection[int] | Callable[[int], bool] | Literal["new"] | None
"""Which threads a watchdog watches: all (None), these idents, those a predicate accepts, or ``"new"`` ones."""


@dataclass
class BlockReport:
    """One greenlet holding its thread: when it took it, when it was seen, when it let go.

    ``exact_start`` is False when the watchdog began (or lost track of the
    switch stream) while the greenlet was already running: ``started_ns`` is
    then the moment it was first seen, and durations are lower bounds.
    """

    greenlet_id: int
    label: str
    thread_id: int
    thread_name: str | None
    threshold_ns: int
    started_ns: int
    detected_ns: int
    exact_start: bool = True
    stack: list[FrameInfo] = field(default_factory=list)
    ended_ns: int | None = None

    @property
    def held_ns(self) -> int:
        """How long the thread was held: to the end when known, else to detection."""
        end = self.ended_ns if self.ended_ns is not None else self.detected_ns
        return end - self.started_ns


def is_hub(meta: GreenletMeta) -> bool:
    """Event-loop greenlets of gevent and eventlet, idle by design while they wait."""
    kind = meta.type_name.rpartition(".")[2]
    run = meta.run_name or ""
    return kind.endswith("Hub") or run.endswith("Hub.run")


@dataclass
class _Held:
    greenlet_id: int
    since_ns: int
    exact: bool
    report: BlockReport | None = None
    next_check_ns: int = 0


class Watchdog:
    """Watches every thread's running greenlet in a daemon thread; see the module doc."""

    def __init__(
        self,
        threshold: float,
        report: Reporter | None = None,
        interval: float | None = None,
        ignore: Callable[[GreenletMeta], bool] | None = is_hub,
        file: IO[str] | None = None,
        threads: ThreadFilter = None,
    ) -> None:
        if not threshold > 0:
            raise ValueError(
                "the blocking threshold must be a positive number of seconds"
            )
        self.threshold_ns = int(threshold * 1e9)
        self.interval = (
            interval if interval is not None else min(max(threshold / 5, 0.005), 0.25)
        )
        self.ignore = ignore
        self.file = file
        self.reports: list[BlockReport] = []
        self._report = report if report is not None else self._print
        self._states: dict[int, _Held] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tap: SwitchTap | None = None
        self._names: dict[int, str] = {}
        self._reporter_failed = False
        self._threads = threads
        self._watched: Callable[[int], bool] = _everything
        self._verdicts: dict[int, bool] = {}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the watchdog thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Watchdog:
        """Start watching (in a daemon thread)."""
        from . import capture

        if self.running:
            return self
        self._stop.clear()
        self._watched = self._thread_filter()
        self._verdicts = {}
        self._tap = capture.SwitchTap()
        self._tap.start()
        now = time.monotonic_ns()
        self._states = {
            tid: _Held(gid, now, exact=False)
            for tid, gid in capture.running_by_thread().items()
            if self.watches(tid)
        }
        self._thread = threading.Thread(
            target=self._loop, name="greentrace-blocking", daemon=True
        )
        self._thread.start()
        return self

    def _thread_filter(self) -> Callable[[int], bool]:
        threads = self._threads
        if threads is None:
            return _everything
        if isinstance(threads, str):
            if threads != "new":
                raise ValueError(
                    f"threads must be 'new', idents or a predicate, not {threads!r}"
                )
            return _NewThreads()
        if callable(threads):
            return threads
        chosen = frozenset(threads)
        return chosen.__contains__

    def watches(self, thread_id: int) -> bool:
        """True if blocks in this thread are reported.

        A predicate given as ``threads`` is asked from the watchdog's thread,
        once per thread and round.
        """
        verdict = self._verdicts.get(thread_id)
        if verdict is None:
            verdict = self._verdicts[thread_id] = bool(self._watched(thread_id))
        return verdict

    def stop(self) -> None:
        """Stop watching; a block still in progress is reported as unfinished."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        if thread is not threading.current_thread():
            thread.join(5)
        self._thread = None

    def _loop(self) -> None:
        from . import capture

        capture.mark_internal()
        try:
            while not self._stop.wait(self.interval):
                self.poll()
            self.poll()
            for state in self._states.values():
                if state.report is not None:
                    state.report.detected_ns = time.monotonic_ns()
                    self._emit("unfinished", state.report)
        finally:
            if self._tap is not None:
                self._tap.stop()
            capture.unmark_internal()

    def poll(self) -> None:
        """One round: follow the switches since the last round, then look for blocks."""
        assert self._tap is not None
        events, lost = self._tap.poll()
        self._verdicts.clear()  # asked again each round: thread idents get reused
        states = self._states
        for e in events:
            if not self.watches(e.thread_id):
                continue
            state = states.get(e.thread_id)
            if state is None:
                states[e.thread_id] = _Held(e.target_id, e.t_ns, exact=True)
            elif e.target_id != state.greenlet_id:
                self._end(state, e.t_ns)
                states[e.thread_id] = _Held(e.target_id, e.t_ns, exact=True)
        now = time.monotonic_ns()
        if lost:
            self._resync(now)
        alive = set(sys._current_frames())
        for tid in [t for t in states if t not in alive]:
            self._end(states.pop(tid), now)
        if isinstance(self._watched, _NewThreads):
            # A thread that was there at the start has ended: its ident may
            # now be reused by a thread the watchdog has to watch.
            self._watched.before &= alive
        for tid, state in list(states.items()):
            if (
                state.report is None
                and now - state.since_ns >= self.threshold_ns
                and now >= state.next_check_ns
            ):
                self._check(tid, state, now)

    def _check(self, tid: int, state: _Held, now: int) -> None:
        from . import capture as cap

        found = cap.holder(state.greenlet_id, tid)
        if found is None:
            # A switch went unseen (lost events): start over from what runs now.
            self._resync(now, only=tid)
            return
        meta, waiting = found
        if waiting == 0 or (self.ignore is not None and self.ignore(meta)):
            state.next_check_ns = now + self.threshold_ns
            return
        if tid not in self._names:
            self._names = cap.thread_names()
        state.report = BlockReport(
            greenlet_id=meta.id,
            label=meta.label,
            thread_id=tid,
            thread_name=self._names.get(tid),
            threshold_ns=self.threshold_ns,
            started_ns=state.since_ns,
            detected_ns=now,
            exact_start=state.exact,
            stack=cap.thread_stack(tid),
        )
        self.reports.append(state.report)
        del self.reports[:-100]
        self._emit("blocked", state.report)

    def _resync(self, now: int, only: int | None = None) -> None:
        from . import capture

        for tid, gid in capture.running_by_thread().items():
            if (only is not None and tid != only) or not self.watches(tid):
                continue
            state = self._states.get(tid)
            if state is None or state.greenlet_id != gid:
                if state is not None:
                    self._end(state, now, exact=False)
                self._states[tid] = _Held(gid, now, exact=False)

    def _end(self, state: _Held, at_ns: int, exact: bool = True) -> None:
        if state.report is not None:
            state.report.ended_ns = at_ns
            state.report.exact_start = state.report.exact_start and exact
            self._emit("released", state.report)
            state.report = None

    def _emit(self, kind: str, report: BlockReport) -> None:
        try:
            self._report(kind, report)
        except Exception as exc:  # noqa: BLE001 (a broken reporter must not stop the watchdog)
            if not self._reporter_failed:
                self._reporter_failed = True
                print(f"greentrace: blocking reporter failed: {exc!r}", file=sys.stderr)

    def _print(self, kind: str, report: BlockReport) -> None:
        print_report(kind, report, self.file)


class _NewThreads:
    """Accepts the threads that were not alive when it was made."""

    def __init__(self) -> None:
        self.before = set(sys._current_frames())

    def __call__(self, thread_id: int) -> bool:
        return thread_id not in self.before


def _everything(thread_id: int) -> bool:
    return True


def describe(kind: str, report: BlockReport) -> str:
    """One line saying what happened."""
    from .render import format_ns

    who = f"greenlet {report.label} #{report.greenlet_id}"
    where = f"thread {report.thread_name or report.thread_id}"
    at_least = "" if report.exact_start else "at least "
    if kind == "blocked":
        return (
            f"blocking: {who} has held {where} for {at_least}{format_ns(report.held_ns)} "
            f"without switching (threshold {format_ns(report.threshold_ns)})"
        )
    if kind == "released":
        return f"blocking: {who} released {where} after {at_least}{format_ns(report.held_ns)}"
    return f"blocking: {who} still held {where} after {at_least}{format_ns(report.held_ns)}"


def print_report(kind: str, report: BlockReport, file: IO[str] | None = None) -> None:
    """Print a report to ``file`` (stderr by default): the line, and the stack when blocked."""
    from rich.console import Console
    from rich.text import Text

    console = Console(
        file=file if file is not None else sys.stderr, soft_wrap=True, highlight=False
    )
    console.print(
        Text.assemble(
            ("greentrace: ", "bold"),
            (describe(kind, report), "red" if kind == "blocked" else ""),
        )
    )
    if kind == "blocked":
        for frame in report.stack:
            console.print(
                Text.assemble(
                    "  File ",
                    (f'"{frame.filename}"', "blue"),
                    f", line {frame.lineno}, in {frame.function}",
                )
            )
            if frame.line:
                console.print(f"    {frame.line}", markup=False)


_watchdogs: list[Watchdog] = []


def watch_blocking(
    threshold: float,
    report: Reporter | None = None,
    ignore: Callable[[GreenletMeta], bool] | None = is_hub,
    file: IO[str] | None = None,
    threads: ThreadFilter = None,
) -> Watchdog:
    """Start a watchdog reporting greenlets that hold their thread over ``threshold`` seconds.

    ``threads`` limits it to some threads (see the module doc).
    """
    dog = Watchdog(
        threshold, report=report, ignore=ignore, file=file, threads=threads
    ).start()
    _watchdogs.append(dog)
    return dog
