"""Plain data of a period: switch events, the greenlets they name, the Recording.

A Recording also derives, from its events alone, when each greenlet ran
(``RunInterval``), how often it was entered and how many greenlets were alive.
``greentrace.model`` re-exports everything here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .model_json import SCHEMA, check_header, decode, encode, parse

EVENT_KINDS = ("switch", "throw", "start", "finish", "kill")


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
        data = encode(self)
        data["events"] = [
            [e.t_ns, e.kind, e.origin_id, e.target_id, e.thread_id] for e in self.events
        ]
        data["greenlets"] = [encode(m) for m in self.greenlets.values()]
        return {"schema": SCHEMA, "kind": "recording", **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recording:
        """Rebuild a recording from ``to_dict`` output; ValueError if it is not one."""
        check_header(data, "recording")
        return decode(cls, data, _RECORDING_FIELDS)

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Recording:
        """Parse a JSON string written by ``to_json``."""
        return cls.from_dict(parse(text))


def _live_delta(event: SwitchEvent) -> int:
    return 1 if event.kind == "start" else -1 if event.kind == "finish" else 0


def _event(item: Any) -> SwitchEvent:
    if not isinstance(item, list) or len(item) != 5:
        raise ValueError(f"malformed greentrace event {item!r}: expected 5 values")
    if item[1] not in EVENT_KINDS:
        raise ValueError(f"malformed greentrace event: unknown kind {item[1]!r}")
    return SwitchEvent(*item)


def _metas(items: list[Any]) -> dict[int, GreenletMeta]:
    metas = [decode(GreenletMeta, m) for m in items]
    return {m.id: m for m in metas}


# How to rebuild fields that hold nested data (anything else is taken as is).
_RECORDING_FIELDS: dict[str, Callable[[Any], Any]] = {
    "events": lambda items: [_event(e) for e in items],
    "greenlets": _metas,
}
