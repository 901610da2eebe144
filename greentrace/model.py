"""Plain data describing greenlets: snapshots, switch recordings, JSON round-trip.

Nothing here touches live greenlets, so a snapshot taken in another process
(shipped as JSON) loads and renders exactly like a local one.

Conventions used throughout greentrace:

- Frame lists (``GreenletInfo.stack`` and ``GreenletInfo.spawn_site``) are
  **innermost first**, the order ``greenlet.gr_spawn_site`` uses: element 0 is
  the frame that was executing (for a stack) or that created the greenlet (for
  a spawn site).  ``GreenletInfo.location`` is the innermost frame.
- Times are integers in nanoseconds; ``*_ns`` instants are in the
  ``time.monotonic_ns()`` domain of the process that was observed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

SCHEMA = 1
"""Version of the JSON layout written by ``to_dict``; ``from_dict`` accepts only this."""

STATES = ("unstarted", "running", "suspended", "dead")
EVENT_KINDS = ("switch", "throw", "start", "finish", "kill")
_T = TypeVar("_T")
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
        return {"schema": SCHEMA, "kind": "snapshot", **_encode(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """Rebuild a snapshot from ``to_dict`` output; ValueError if it is not one."""
        _check_header(data, "snapshot")
        return _decode(cls, data)

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        """Parse a JSON string written by ``to_json``."""
        return cls.from_dict(_parse(text))


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """One entry of a switch log: control went from ``origin_id`` to ``target_id``."""

    t_ns: int
    kind: str
    origin_id: int
    target_id: int
    thread_id: int


@dataclass(frozen=True, slots=True)
class GreenletMeta:
    """What a recording keeps about each greenlet: enough to label it."""

    id: int
    name: str | None = None
    type_name: str = "greenlet.greenlet"
    run_name: str | None = None
    thread_id: int | None = None
    is_main: bool = False

    @property
    def label(self) -> str:
        """A name for people, chosen like ``GreenletInfo.label``."""
        if self.name:
            return self.name
        if self.is_main:
            return "main"
        return self.run_name or self.type_name.rpartition(".")[2] or "greenlet"


@dataclass(frozen=True, slots=True)
class RunInterval:
    """A period during which one greenlet was the running greenlet of its thread.

    ``start_event`` / ``end_event`` index ``Recording.events``: the event that
    switched into the greenlet and the one that switched out, or None when the
    interval begins at the start of coverage or lasts until the end.
    """

    greenlet_id: int
    thread_id: int
    start_ns: int
    end_ns: int
    start_event: int | None = None
    end_event: int | None = None

    @property
    def duration_ns(self) -> int:
        """Length of the interval in nanoseconds."""
        return self.end_ns - self.start_ns


@dataclass(slots=True)
class Recording:
    """The switch events of every thread over a period, plus greenlet labels.

    ``dropped`` counts events the ring buffer lost; they are the oldest ones,
    so the retained stream starts mid-way and nothing is known before its
    first event (see ``covered_from_ns``).  ``live_at_start`` is the number of
    started, unfinished greenlets (main greenlets included) when recording
    began, if the capturer knew it.

    Running intervals are derived per thread from its events in time order:
    before a thread's first event, that event's origin ran (since coverage
    began); after each event its target runs until the next event on the same
    thread, or until the end.  So a ``kill`` hands the thread to the killed
    greenlet (it unwinds) until its ``finish`` hands control back, and an event
    into the greenlet already running does not split its interval.  Threads
    are independent; intervals of one greenlet never overlap.
    """

    start_ns: int
    end_ns: int
    events: list[SwitchEvent] = field(default_factory=list)
    dropped: int = 0
    greenlets: dict[int, GreenletMeta] = field(default_factory=dict)
    pid: int | None = None
    live_at_start: int | None = None

    @property
    def covered_from_ns(self) -> int:
        """First instant the event stream describes completely."""
        if self.dropped and self.events:
            return min(e.t_ns for e in self.events)
        return min([self.start_ns, *(e.t_ns for e in self.events)])

    @property
    def covered_until_ns(self) -> int:
        """Last instant the recording describes."""
        return max([self.end_ns, *(e.t_ns for e in self.events)])

    def label(self, greenlet_id: int) -> str:
        """A name for a greenlet id, falling back to a generic one for unknown ids."""
        meta = self.greenlets.get(greenlet_id)
        return meta.label if meta is not None else "greenlet"

    def intervals(self) -> list[RunInterval]:
        """Running periods of every greenlet, ordered by start (rules in the class doc)."""
        result = [
            iv
            for thread_ivs in self._intervals_per_thread().values()
            for iv in thread_ivs
        ]
        result.sort(key=lambda iv: (iv.start_ns, iv.thread_id))
        return result

    def intervals_by_greenlet(self) -> dict[int, list[RunInterval]]:
        """Running periods grouped by greenlet id, each list in time order."""
        grouped: dict[int, list[RunInterval]] = defaultdict(list)
        for iv in self.intervals():
            grouped[iv.greenlet_id].append(iv)
        return dict(grouped)

    def run_ns_by_greenlet(self) -> dict[int, int]:
        """Total running time of each greenlet inside the recording."""
        return {
            gid: sum(iv.duration_ns for iv in ivs)
            for gid, ivs in self.intervals_by_greenlet().items()
        }

    def entries_by_greenlet(self) -> dict[int, int]:
        """How many events switched into each greenlet (like ``gr_switches``)."""
        counts: dict[int, int] = defaultdict(int)
        for e in self.events:
            if e.origin_id != e.target_id:
                counts[e.target_id] += 1
        return dict(counts)

    def greenlet_ids(self) -> list[int]:
        """Every greenlet id the recording mentions, sorted."""
        ids = set(self.greenlets)
        for e in self.events:
            ids.update((e.origin_id, e.target_id))
        return sorted(ids)

    def thread_map(self) -> dict[int, int | None]:
        """Each greenlet's thread, from the first event naming it, else its metadata."""
        threads: dict[int, int | None] = {
            gid: m.thread_id for gid, m in self.greenlets.items()
        }
        seen: set[int] = set()
        for e in self.events:
            for gid in (e.origin_id, e.target_id):
                if gid not in seen:
                    seen.add(gid)
                    threads[gid] = e.thread_id
        return threads

    def initial_live(self) -> int:
        """Live greenlets at the start: ``live_at_start``, else estimated from the events.

        The estimate counts greenlets that act before any ``start`` event names
        them, and is raised if needed so the live count never drops below zero.
        """
        delta = 0
        lowest = 0
        for e in sorted(self.events, key=lambda e: e.t_ns):
            delta += _live_delta(e)
            lowest = min(lowest, delta)
        # After dropped events the stream starts later than the recording, so
        # the count taken at the start no longer matches the first event.
        if self.live_at_start is not None and not self.dropped:
            return max(self.live_at_start, -lowest)
        started: set[int] = set()
        preexisting: set[int] = set()
        for e in sorted(self.events, key=lambda e: e.t_ns):
            if e.kind == "start":
                started.add(e.target_id)
                if e.origin_id not in started:
                    preexisting.add(e.origin_id)
                continue
            for gid in (e.origin_id, e.target_id):
                if gid not in started:
                    preexisting.add(gid)
        return max(len(preexisting), -lowest)

    def live_counts(self) -> list[tuple[int, int]]:
        """``(t_ns, live greenlets)`` steps: the initial count, then one per start/finish."""
        live = self.initial_live()
        steps = [(self.covered_from_ns, live)]
        for e in sorted(self.events, key=lambda e: e.t_ns):
            change = _live_delta(e)
            if change:
                live += change
                steps.append((e.t_ns, live))
        return steps

    def _intervals_per_thread(self) -> dict[int, list[RunInterval]]:
        """Derive running periods thread by thread from the ordered event stream."""
        per_thread: dict[int, list[tuple[int, SwitchEvent]]] = defaultdict(list)
        for index, event in enumerate(self.events):
            per_thread[event.thread_id].append((index, event))
        begin = self.covered_from_ns
        finish = self.covered_until_ns
        result: dict[int, list[RunInterval]] = {}
        for thread_id, indexed in per_thread.items():
            indexed.sort(key=lambda pair: pair[1].t_ns)
            first = indexed[0][1]
            runner, since, since_event = first.origin_id, begin, None
            out: list[RunInterval] = []
            for index, event in indexed:
                if event.target_id == runner:
                    continue
                if since_event is None and since == event.t_ns:
                    # Nothing known ran before coverage began: no empty first slice.
                    runner, since_event = event.target_id, index
                    continue
                out.append(
                    RunInterval(
                        runner, thread_id, since, event.t_ns, since_event, index
                    )
                )
                runner, since, since_event = event.target_id, event.t_ns, index
            out.append(RunInterval(runner, thread_id, since, finish, since_event, None))
            result[thread_id] = out
        return result

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; events are ``[t_ns, kind, origin, target, thread]`` lists."""
        data = _encode(self)
        data["events"] = [
            [e.t_ns, e.kind, e.origin_id, e.target_id, e.thread_id] for e in self.events
        ]
        data["greenlets"] = [_encode(m) for m in self.greenlets.values()]
        return {"schema": SCHEMA, "kind": "recording", **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recording:
        """Rebuild a recording from ``to_dict`` output; ValueError if it is not one."""
        _check_header(data, "recording")
        return _decode(cls, data)

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Recording:
        """Parse a JSON string written by ``to_json``."""
        return cls.from_dict(_parse(text))


def load(text: str | bytes) -> Snapshot | Recording:
    """Parse JSON holding either a snapshot or a recording, by its ``kind`` field."""
    data = _parse(text)
    kind = data.get("kind")
    if kind == "snapshot":
        return Snapshot.from_dict(data)
    if kind == "recording":
        return Recording.from_dict(data)
    raise ValueError(
        f"not a greentrace document: kind {kind!r} (expected 'snapshot' or 'recording')"
    )


def _live_delta(event: SwitchEvent) -> int:
    return 1 if event.kind == "start" else -1 if event.kind == "finish" else 0


def _parse(text: str | bytes) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        msg = "not a greentrace document: top level is not a JSON object"
        raise ValueError(msg)  # noqa: TRY004 (bad data, reported like all bad data)
    return data


def _check_header(data: dict[str, Any], kind: str) -> None:
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ValueError(
            f"unsupported greentrace schema {schema!r}: this version reads schema {SCHEMA}"
        )
    if data.get("kind", kind) != kind:
        raise ValueError(f"expected a greentrace {kind}, got kind {data.get('kind')!r}")


def _encode(obj: Any) -> Any:
    """Dataclasses to dicts, lists element-wise; other values are JSON-ready already."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _encode(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, list):
        return [_encode(item) for item in obj]
    return obj


def _event(item: Any) -> SwitchEvent:
    if not isinstance(item, list) or len(item) != 5:
        raise ValueError(f"malformed greentrace event {item!r}: expected 5 values")
    if item[1] not in EVENT_KINDS:
        raise ValueError(f"malformed greentrace event: unknown kind {item[1]!r}")
    return SwitchEvent(*item)


def _metas(items: list[Any]) -> dict[int, GreenletMeta]:
    metas = [_decode(GreenletMeta, m) for m in items]
    return {m.id: m for m in metas}


def _greenlet(data: Any) -> GreenletInfo:
    info = _decode(GreenletInfo, data)
    if info.state not in STATES:
        raise ValueError(f"malformed greentrace greenlet: unknown state {info.state!r}")
    return info


def _frame(data: Any) -> FrameInfo:
    return _decode(FrameInfo, data)


def _frames(items: list[Any]) -> list[FrameInfo]:
    return [_frame(f) for f in items]


# How to rebuild fields that hold nested data (anything else is taken as is).
_NESTED: dict[str, Callable[[Any], Any]] = {
    "Snapshot.threads": lambda items: [_decode(ThreadInfo, t) for t in items],
    "Snapshot.greenlets": lambda items: [_greenlet(g) for g in items],
    "GreenletInfo.spawn_site": _frames,
    "GreenletInfo.stack": _frames,
    "GreenletInfo.location": _frame,
    "Recording.events": lambda items: [_event(e) for e in items],
    "Recording.greenlets": _metas,
}


def _decode(cls: type[_T], data: Any) -> _T:
    """Build dataclass ``cls`` from a dict, with a ValueError naming what is wrong."""
    if not isinstance(data, dict):
        msg = f"malformed greentrace {cls.__name__}: expected an object"
        raise ValueError(msg)  # noqa: TRY004 (bad data, reported like all bad data)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"malformed greentrace {cls.__name__}: no {f.name!r}")
            continue
        value = data[f.name]
        convert = _NESTED.get(f"{cls.__name__}.{f.name}")
        kwargs[f.name] = value if convert is None or value is None else convert(value)
    return cls(**kwargs)
