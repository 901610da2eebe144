"""Live process -> model: snapshots of every greenlet, recordings of switches.

This is the only greentrace module that reads greenlet internals.  It uses
the observation API of ``greenlet`` (``all_greenlets``, ``frame_of``, the
``gr_*`` attributes, ``SwitchLog``) and never scans the heap.

A capture runs in two passes: a quick one that copies what it needs from the
live objects into plain values, then one that only works on that plain data
(source lines via ``linecache`` may read files and so release the GIL).
Other threads may run between any two bytecodes of the first pass, so each
greenlet is read on its own and one that vanishes mid-read is left out; a
greenlet is reported as it was when it was read.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import greenlet

from .frames import STACK_LIMIT, Raw, frame_info, hide_launcher, thread_stack, walk
from .model import (
    GreenletInfo,
    GreenletMeta,
    Recording,
    Snapshot,
    SwitchEvent,
)
from .threads import (
    internal_threads,
    mark_internal,
    thread_names,
    thread_records,
    unmark_internal,
)

if TYPE_CHECKING:
    from typing_extensions import Self

_BASE_RUN = greenlet.greenlet.__dict__["run"]


def account_run_time() -> None:
    """Turn on the core's per-greenlet run-time accounting (``gr_run_ns``).

    It is off by default because it reads the CPU clock at every switch;
    a program that is run, served or recorded by greentrace wants it.
    """
    greenlet.set_run_time_tracking(True)


def _type_name(g: Any) -> str:
    cls = type(g)
    return f"{cls.__module__}.{cls.__qualname__}"


def _callable_name(func: Any) -> str | None:
    func = getattr(func, "__func__", func)
    name = getattr(func, "__qualname__", None)
    if isinstance(name, str):
        return name
    name = getattr(type(func), "__qualname__", None)
    return name if isinstance(name, str) else None


def _run_name(g: Any, stack: list[Raw], complete: bool) -> str | None:
    """The qualname of what ``g`` runs, without calling user-defined descriptors."""
    if g.parent is None:
        return None  # a main greenlet runs its thread, not a callable
    for cls in type(g).__mro__:
        attr = cls.__dict__.get("run")
        if attr is None:
            continue
        if attr is _BASE_RUN:
            break
        if callable(attr) or isinstance(attr, (staticmethod, classmethod)):
            return _callable_name(attr)
        return None
    try:
        run = _BASE_RUN.__get__(g, type(g))
    except AttributeError:
        run = None  # started: upstream semantics delete run
    if run is not None:
        return _callable_name(run)
    # A started greenlet's outermost frame is the call of its run.
    return stack[-1][2] if stack and complete else None


def _state(g: Any) -> str:
    try:
        return str(g.gr_state)
    except Exception:  # noqa: BLE001 (a greenlet torn down under us reads as dead)
        return "dead"


class _Cache:
    """Run names seen earlier, by greenlet id (ids are never reused)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self.names: dict[int, str] = {}

    def remember(self, gid: int, name: str | None) -> str | None:
        if name is not None:
            if len(self.names) >= self.size:
                self.names.pop(next(iter(self.names)))
            self.names[gid] = name
            return name
        return self.names.get(gid)


_run_names = _Cache()


def _read(g: Any, limit: int, here: int, skip: frozenset[int]) -> dict[str, Any] | None:
    """First pass: copy one greenlet's observable state into plain values."""
    thread_id = g.gr_thread_id
    if thread_id in skip:
        return None
    state = _state(g)
    frame = greenlet.frame_of(g) if state in ("running", "suspended") else None
    raw = walk(frame, limit, skip_own=thread_id == here)
    parent = g.parent
    gid = g.gr_id
    return {
        "id": gid,
        "state": state,
        "name": g.gr_name,
        "type_name": _type_name(g),
        "run_name": _run_names.remember(gid, _run_name(g, raw, len(raw) < limit)),
        "thread_id": thread_id,
        "parent_id": parent.gr_id if parent is not None else None,
        "is_main": parent is None,
        "is_current": state == "running" and thread_id == here,
        "switches": g.gr_switches,
        "run_ns": g.gr_run_ns,
        "spawn": g.gr_spawn_site,
        "raw": raw,
    }


def snapshot(stack_limit: int = STACK_LIMIT, lines: bool = True) -> Snapshot:
    """Every greenlet of every thread, with stacks, as a model Snapshot."""
    here = threading.get_ident()
    skip = internal_threads()
    names = {t.ident: t.name for t in threading.enumerate()}
    taken_at, mono = time.time(), time.monotonic_ns()
    running_threads = set(sys._current_frames())
    records = []
    for g in greenlet.all_greenlets():
        try:
            record = _read(g, stack_limit, here, skip)
        except Exception:  # noqa: BLE001,S112 (it died mid-read: leave it out)
            continue
        if record is not None:
            records.append(record)
    greenlets = []
    for r in records:
        stack = [frame_info(f, lines) for f in r.pop("raw")]
        spawn = r.pop("spawn")
        greenlets.append(
            GreenletInfo(
                **r,
                stack=stack,
                location=stack[0] if stack else None,
                spawn_site=None
                if spawn is None
                else [frame_info(f, False) for f in spawn],
            )
        )
    threads = thread_records(greenlets, names, running_threads)
    return Snapshot(
        taken_at=taken_at,
        monotonic_ns=mono,
        pid=os.getpid(),
        argv=list(sys.argv),
        threads=threads,
        greenlets=greenlets,
    )


def greenlet_count() -> int:
    """Greenlets alive in the process, leaving out greentrace's own threads."""
    skip = internal_threads()
    count = 0
    for g in greenlet.all_greenlets():
        try:
            if g.gr_thread_id not in skip:
                count += 1
        except Exception:  # noqa: BLE001,S112 (died while read)
            continue
    return count


def metadata(g: Any) -> GreenletMeta:
    """What a recording keeps about a live greenlet."""
    raw: list[Raw] = []
    if g.gr_state == "suspended" and g.parent is not None:
        raw = walk(greenlet.frame_of(g), STACK_LIMIT, skip_own=False)
    parent = g.parent
    gid = g.gr_id
    return GreenletMeta(
        id=gid,
        name=g.gr_name,
        type_name=_type_name(g),
        run_name=_run_names.remember(gid, _run_name(g, raw, len(raw) < STACK_LIMIT)),
        thread_id=g.gr_thread_id,
        is_main=parent is None,
    )


class Recorder:
    """Records switches of every thread into a ``greenlet.SwitchLog``.

    Labels for the greenlets of the recording are gathered at ``start``, by
    ``harvest`` (call it now and then to catch short-lived greenlets) and at
    ``stop``; a greenlet created and gone between two harvests keeps a
    generic label.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self.log = greenlet.SwitchLog(capacity)
        self.metas: dict[int, GreenletMeta] = {}
        self.start_ns: int | None = None
        self.live_at_start: int | None = None
        self.result: Recording | None = None
        self._last_id = 0
        self._pending: dict[int, weakref.ref[Any]] = {}
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """True between ``start`` and ``stop``."""
        return bool(self.log.active)

    def start(self) -> Recorder:
        """Begin recording (clears an earlier recording of this recorder)."""
        self.log.clear()
        self.live_at_start = sum(
            1 for g in greenlet.all_greenlets() if _state(g) in ("running", "suspended")
        )
        self.harvest(refresh=True)
        self.start_ns = time.monotonic_ns()
        self.log.start()
        return self

    def harvest(self, refresh: bool = False) -> None:
        """Note labels of greenlets created since the last harvest (all if ``refresh``).

        Cheap enough to call every few milliseconds: greenlets come in
        creation order, so only the new ones at the end are read, plus the
        ones still unstarted and unnamed last time (a name often follows).
        """
        skip = internal_threads()
        with self._lock:
            everything = greenlet.all_greenlets()
            fresh: list[Any] = []
            if refresh:
                fresh = everything
            else:
                for g in reversed(everything):
                    if g.gr_id <= self._last_id:
                        break
                    fresh.append(g)
                for ref in self._pending.values():
                    waiting = ref()
                    if waiting is not None:
                        fresh.append(waiting)
            self._pending = {}
            if everything:
                self._last_id = max(self._last_id, everything[-1].gr_id)
            del everything
            for g in fresh:
                try:
                    if g.gr_thread_id in skip:
                        continue
                    meta = metadata(g)
                    self.metas[meta.id] = meta
                    if meta.name is None and g.gr_state == "unstarted":
                        self._pending[meta.id] = weakref.ref(g)
                except Exception:  # noqa: BLE001,S112 (died while read)
                    continue

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.stop()

    def stop(self) -> Recording:
        """Stop recording and return what was recorded."""
        if self.start_ns is None:
            raise RuntimeError("the recorder was never started")
        self.log.stop()
        end_ns = time.monotonic_ns()
        return self.recording(end_ns)

    def recording(self, end_ns: int | None = None) -> Recording:
        """The recording so far (the log keeps running if it is active)."""
        if self.start_ns is None:
            raise RuntimeError("the recorder was never started")
        end_ns = time.monotonic_ns() if end_ns is None else end_ns
        raw = self.log.events
        dropped = int(self.log.dropped)
        self.harvest(refresh=True)
        skip = internal_threads()
        events = [SwitchEvent(*e) for e in raw if e[4] not in skip]
        seen: set[int] = set()
        for e in events:
            seen.update((e.origin_id, e.target_id))
        with self._lock:
            metas = {gid: self.metas[gid] for gid in sorted(seen) if gid in self.metas}
        return Recording(
            start_ns=self.start_ns,
            end_ns=max(end_ns, self.start_ns),
            events=events,
            dropped=dropped,
            greenlets=metas,
            pid=os.getpid(),
            live_at_start=self.live_at_start,
        )


def record(
    seconds: float, capacity: int = 65536, stop: threading.Event | None = None
) -> Recording:
    """Record every switch for ``seconds`` (less if ``stop`` is set) and return it."""
    recorder = Recorder(capacity).start()
    waiter = stop if stop is not None else threading.Event()
    deadline = time.monotonic() + seconds
    try:
        while not waiter.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            waiter.wait(min(left, 0.1))
            recorder.harvest()
    finally:
        result = recorder.stop()
    return result


class SwitchTap:
    """New switch events since the last ``poll``, for watchers that run forever.

    Two logs take turns so nothing is lost between reading one and clearing
    it: the next log starts before the current one stops, and the few events
    both saw are skipped the second time.
    """

    def __init__(self, capacity: int = 16384) -> None:
        self._logs = [greenlet.SwitchLog(capacity), greenlet.SwitchLog(capacity)]
        self._active = 0
        self._tail: set[tuple[Any, ...]] = set()

    def start(self) -> None:
        """Begin watching."""
        self._logs[self._active].clear()
        self._logs[self._active].start()

    def stop(self) -> None:
        """Stop watching."""
        for log in self._logs:
            log.stop()

    def poll(self) -> tuple[list[SwitchEvent], bool]:
        """Events since the last poll, in time order, and whether some were lost."""
        current, following = self._logs[self._active], self._logs[1 - self._active]
        following.clear()
        following.start()
        current.stop()
        raw = current.events
        lost = bool(current.dropped)
        self._active = 1 - self._active
        skip = 0
        while skip < len(raw) and raw[skip] in self._tail:
            skip += 1
        self._tail = set(raw[-64:])
        internal = internal_threads()
        fresh = [SwitchEvent(*e) for e in raw[skip:] if e[4] not in internal]
        return fresh, lost


def running_by_thread() -> dict[int, int]:
    """The id of the running greenlet of each live thread that has greenlets."""
    skip = internal_threads()
    alive = set(sys._current_frames())
    found: dict[int, int] = {}
    for g in greenlet.all_greenlets():
        try:
            tid = g.gr_thread_id
            if tid in alive and tid not in skip and g.gr_state == "running":
                found[tid] = g.gr_id
        except Exception:  # noqa: BLE001,S112 (died while read)
            continue
    return found


def holder(greenlet_id: int, thread_id: int) -> tuple[GreenletMeta, int] | None:
    """If ``greenlet_id`` runs in ``thread_id``: its labels and how many greenlets wait there.

    Waiting greenlets are the suspended ones of the thread, and unstarted
    ones whose parent is in it.  None when the greenlet is not running there.
    """
    found: GreenletMeta | None = None
    waiting = 0
    threads: dict[int, int | None] = {}
    for g in greenlet.all_greenlets():
        try:
            gid, tid, state = g.gr_id, g.gr_thread_id, g.gr_state
            if tid is None and g.parent is not None:
                tid = threads.get(g.parent.gr_id)
            threads[gid] = tid
            if tid != thread_id:
                continue
            if gid == greenlet_id:
                if state != "running":
                    return None
                found = metadata(g)
            elif state in ("suspended", "unstarted"):
                waiting += 1
        except Exception:  # noqa: BLE001,S112 (died while read)
            continue
    return (found, waiting) if found is not None else None


# Reached through this module by the rest of greentrace, and kept here so
# ``capture`` stays the one place to ask about a live process.
_frame_info = frame_info
__all__ = [
    "STACK_LIMIT",
    "Recorder",
    "SwitchTap",
    "greenlet_count",
    "hide_launcher",
    "holder",
    "internal_threads",
    "mark_internal",
    "metadata",
    "record",
    "running_by_thread",
    "snapshot",
    "thread_names",
    "thread_stack",
    "unmark_internal",
]
