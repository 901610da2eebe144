"""Plain data of one moment: frames, greenlets, threads, and the Snapshot of them all.

Conventions (frames innermost first, nanosecond integers) are described in
``greentrace.model``, which re-exports everything here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .model_json import SCHEMA, check_header, decode, encode, parse

STATES = ("unstarted", "running", "suspended", "dead")
PLAIN_GREENLET_TYPES = frozenset(
    {"greenlet", "greenlet.greenlet", "greenlet._greenlet.greenlet"}
)


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One Python frame: where it is and, when known, the source line text."""

    filename: str
    lineno: int
    function: str
    line: str | None = None


@dataclass(slots=True)
class GreenletInfo:
    """Everything observed about one greenlet at snapshot time.

    ``type_name`` is ``module.qualname`` of its class, ``run_name`` the
    qualified name of its ``run`` callable.  ``thread_id`` is None while
    unstarted (``Snapshot.thread_of`` then follows the parents).
    ``is_current`` marks the greenlet that took the snapshot.  ``stack`` and
    ``spawn_site`` are innermost first; ``location`` is the innermost frame
    (``stack[0]`` when a stack was captured).
    """

    id: int
    state: str
    name: str | None = None
    type_name: str = "greenlet.greenlet"
    run_name: str | None = None
    thread_id: int | None = None
    parent_id: int | None = None
    is_main: bool = False
    is_current: bool = False
    switches: int = 0
    run_ns: int = 0
    spawn_site: list[FrameInfo] | None = None
    stack: list[FrameInfo] = field(default_factory=list)
    location: FrameInfo | None = None

    @property
    def label(self) -> str:
        """A name for people: the given name, else the run callable, else a generic one."""
        if self.name:
            return self.name
        if self.is_main:
            return "main"
        if self.run_name:
            return self.run_name
        return self.type_name.rpartition(".")[2] or "greenlet"

    @property
    def is_plain_type(self) -> bool:
        """True when the greenlet is a bare ``greenlet.greenlet``, not a subclass."""
        return self.type_name in PLAIN_GREENLET_TYPES


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """One OS thread that owns greenlets."""

    thread_id: int
    name: str | None = None
    main_greenlet_id: int | None = None
    current_greenlet_id: int | None = None
    alive: bool = True


@dataclass(slots=True)
class Snapshot:
    """All greenlets of one process at one moment, with their threads.

    ``taken_at`` is wall-clock time (``time.time()``), ``monotonic_ns`` the
    same moment on the process's monotonic clock, for rates between snapshots.
    """

    taken_at: float
    monotonic_ns: int
    pid: int
    argv: list[str] = field(default_factory=list)
    threads: list[ThreadInfo] = field(default_factory=list)
    greenlets: list[GreenletInfo] = field(default_factory=list)

    def by_id(self) -> dict[int, GreenletInfo]:
        """Map greenlet id to its info."""
        return {g.id: g for g in self.greenlets}

    def children_of(self, greenlet_id: int) -> list[GreenletInfo]:
        """Greenlets whose parent is ``greenlet_id``, in creation (id) order."""
        return sorted(
            (g for g in self.greenlets if g.parent_id == greenlet_id),
            key=lambda g: g.id,
        )

    def thread_map(self) -> dict[int, int | None]:
        """Each greenlet's thread; unstarted ones inherit their parent's thread."""
        index = self.by_id()
        resolved: dict[int, int | None] = {}
        for g in self.greenlets:
            chain: list[int] = []
            current: GreenletInfo | None = g
            found: int | None = None
            while (
                current is not None
                and current.id not in resolved
                and current.id not in chain
            ):
                chain.append(current.id)
                if current.thread_id is not None:
                    found = current.thread_id
                    break
                current = (
                    index.get(current.parent_id)
                    if current.parent_id is not None
                    else None
                )
            else:
                if current is not None and current.id in resolved:
                    found = resolved[current.id]
            for gid in chain:
                resolved[gid] = found
        return resolved

    def thread_of(self, greenlet_id: int) -> int | None:
        """The thread a greenlet belongs to, following parents for unstarted ones."""
        return self.thread_map().get(greenlet_id)

    def thread_ids(self) -> list[int | None]:
        """Threads in display order: listed threads, then unlisted ones, then None if needed."""
        order: list[int | None] = [t.thread_id for t in self.threads]
        for tid in self.thread_map().values():
            if tid not in order:
                order.append(tid)
        return order

    def children_index(self) -> dict[int, list[GreenletInfo]]:
        """Map parent id to its children in id order, computed in one pass."""
        index: dict[int, list[GreenletInfo]] = defaultdict(list)
        for g in sorted(self.greenlets, key=lambda g: g.id):
            if g.parent_id is not None:
                index[g.parent_id].append(g)
        return dict(index)

    def roots(self, thread_id: int | None) -> list[GreenletInfo]:
        """Tree roots of a thread: greenlets with no parent in the snapshot, main first."""
        index = self.by_id()
        threads = self.thread_map()
        found = [
            g
            for g in self.greenlets
            if threads.get(g.id) == thread_id
            and (g.parent_id is None or g.parent_id not in index)
        ]
        return sorted(found, key=lambda g: (not g.is_main, g.id))

    def thread(self, thread_id: int | None) -> ThreadInfo | None:
        """The ThreadInfo for ``thread_id``, if the snapshot has one."""
        return next((t for t in self.threads if t.thread_id == thread_id), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, tagged with the schema version."""
        return {"schema": SCHEMA, "kind": "snapshot", **encode(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """Rebuild a snapshot from ``to_dict`` output; ValueError if it is not one."""
        check_header(data, "snapshot")
        return decode(cls, data, _SNAPSHOT_FIELDS)

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        """Parse a JSON string written by ``to_json``."""
        return cls.from_dict(parse(text))


def _frame(data: Any) -> FrameInfo:
    return decode(FrameInfo, data)


def _frames(items: list[Any]) -> list[FrameInfo]:
    return [_frame(f) for f in items]


def _greenlet(data: Any) -> GreenletInfo:
    info = decode(GreenletInfo, data, _GREENLET_FIELDS)
    if info.state not in STATES:
        raise ValueError(f"malformed greentrace greenlet: unknown state {info.state!r}")
    return info


# How to rebuild fields that hold nested data (anything else is taken as is).
_GREENLET_FIELDS: dict[str, Callable[[Any], Any]] = {
    "spawn_site": _frames,
    "stack": _frames,
    "location": _frame,
}
_SNAPSHOT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "threads": lambda items: [decode(ThreadInfo, t) for t in items],
    "greenlets": lambda items: [_greenlet(g) for g in items],
}
