"""Recordings as Chrome/Perfetto trace JSON; trees and timelines as SVG or HTML.

The trace gives every greenlet a track of its own (Perfetto needs the slices
of one track to nest, and greenlets sharing a thread never nest).  Each
running period is an ``X`` slice; each switch is a flow arrow from the slice
that ended to the slice that began; a process counter follows the number of
live greenlets.  Times are microseconds since the start of the recording.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType

from .model import Recording, RunInterval, Snapshot
from .render import summary, timeline, tree

TID_OFFSET = 1
"""Greenlet ``#n`` gets ``tid`` n + 1: viewers treat tid 0 as the idle task."""

# Events that get an instant marker on a track, and on whose track it goes.
INSTANT_ON_TARGET = ("start", "throw", "kill")
INSTANT_ON_ORIGIN = ("finish",)
# How far inside a slice a flow endpoint sits, in microseconds (1 ns).
FLOW_INSET_US = 0.001


def to_chrome_trace(recording: Recording, pid: int | None = None) -> dict[str, Any]:
    """A Chrome Trace Event document (``{"traceEvents": [...]}``) for Perfetto."""
    pid = pid if pid is not None else recording.pid if recording.pid is not None else 1
    origin = min(recording.start_ns, recording.covered_from_ns)

    def us(t_ns: int) -> float:
        return (t_ns - origin) / 1000

    out: list[dict[str, Any]] = [
        _meta("process_name", pid, 0, {"name": f"greenlets (pid {pid})"}),
    ]
    threads = recording.thread_map()
    mains = {gid for gid, meta in recording.greenlets.items() if meta.is_main}
    order = sorted(
        recording.greenlet_ids(),
        key=lambda g: (threads.get(g) is None, threads.get(g) or 0, g not in mains, g),
    )
    for index, gid in enumerate(order):
        name = f"{recording.label(gid)} #{gid}"
        out.append(_meta("thread_name", pid, gid + TID_OFFSET, {"name": name}))
        out.append(
            _meta("thread_sort_index", pid, gid + TID_OFFSET, {"sort_index": index})
        )

    intervals = recording.intervals()
    began: dict[int, RunInterval] = {}
    ended: dict[int, RunInterval] = {}
    for iv in intervals:
        start, end = us(iv.start_ns), us(iv.end_ns)
        out.append(
            {
                "name": recording.label(iv.greenlet_id),
                "cat": "greenlet",
                "ph": "X",
                "ts": start,
                "dur": max(0.0, end - start),
                "pid": pid,
                "tid": iv.greenlet_id + TID_OFFSET,
                "args": {"greenlet_id": iv.greenlet_id, "thread_id": iv.thread_id},
            }
        )
        if iv.start_event is not None:
            began[iv.start_event] = iv
        if iv.end_event is not None:
            ended[iv.end_event] = iv

    for index, event in enumerate(recording.events):
        source, target = ended.get(index), began.get(index)
        common = {"name": event.kind, "cat": "switch", "pid": pid}
        if source is not None and target is not None:
            flow = {**common, "id": index + 1}
            out.append(
                {
                    **flow,
                    "ph": "s",
                    "ts": _inside(source, us, at_end=True),
                    "tid": source.greenlet_id + TID_OFFSET,
                }
            )
            out.append(
                {
                    **flow,
                    "ph": "f",
                    "bp": "e",
                    "ts": _inside(target, us, at_end=False),
                    "tid": target.greenlet_id + TID_OFFSET,
                }
            )
        on = (
            event.target_id
            if event.kind in INSTANT_ON_TARGET
            else (event.origin_id if event.kind in INSTANT_ON_ORIGIN else None)
        )
        if on is not None:
            out.append(
                {
                    **common,
                    "ph": "i",
                    "s": "t",
                    "ts": us(event.t_ns),
                    "tid": on + TID_OFFSET,
                    "args": {
                        "origin_id": event.origin_id,
                        "target_id": event.target_id,
                    },
                }
            )

    for t_ns, live in recording.live_counts():
        out.append(
            {
                "name": "greenlets",
                "ph": "C",
                "ts": us(t_ns),
                "pid": pid,
                "args": {"live": max(0, live)},
            }
        )
    return {
        "traceEvents": out,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "greentrace",
            "start_monotonic_ns": origin,
            "dropped_events": recording.dropped,
        },
    }


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def _inside(iv: RunInterval, us: Callable[[int], float], at_end: bool) -> float:
    """A timestamp strictly inside the slice (when it has length), near one edge."""
    start, end = us(iv.start_ns), us(iv.end_ns)
    inset = min((end - start) / 2, FLOW_INSET_US)
    return end - inset if at_end else start + inset


def write_chrome_trace(
    recording: Recording, path: str | os.PathLike[str], pid: int | None = None
) -> Path:
    """Write the Chrome trace JSON of a recording to ``path``; open it in Perfetto."""
    target = Path(path)
    with target.open("w", encoding="utf-8") as stream:
        json.dump(to_chrome_trace(recording, pid), stream, separators=(",", ":"))
    return target


def save_trace(recording: Recording, path: str | os.PathLike[str]) -> Path:
    """Write the Chrome/Perfetto trace of a recording, with the recording itself inside.

    Trace viewers ignore the extra top-level ``greentrace`` key (the JSON
    object format allows keys of one's own); ``greentrace view`` reads it to
    draw the timeline again.
    """
    document = to_chrome_trace(recording)
    document["greentrace"] = recording.to_dict()
    target = Path(path)
    with target.open("w", encoding="utf-8") as stream:
        json.dump(document, stream, separators=(",", ":"))
    return target


def write_outputs(
    recording: Recording, trace: str | None, svg: str | None
) -> Iterator[tuple[str, str, OSError | None]]:
    """Write the trace and the timeline picture asked for.

    Yields ``(what, path, error)`` for each file, ``error`` being None when
    it was written.
    """
    for path, write, what in (
        (trace, save_trace, "trace"),
        (svg, timeline_svg, "timeline picture"),
    ):
        if path is None:
            continue
        try:
            write(recording, path)
        except OSError as exc:
            yield what, path, exc
        else:
            yield what, path, None


def _recorded(renderable: RenderableType, width: int) -> Console:
    console = Console(
        record=True,
        width=width,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
    )
    console.print(renderable)
    return console


def save_picture(
    renderable: RenderableType,
    path: str | os.PathLike[str],
    width: int = 100,
    title: str = "greentrace",
) -> Path:
    """Render like a ``width``-column terminal into an SVG, or HTML if ``path`` ends in .html."""
    target = Path(path)
    console = _recorded(renderable, width)
    if target.suffix.lower() in (".html", ".htm"):
        console.save_html(str(target))
    else:
        console.save_svg(str(target), title=title)
    return target


def timeline_svg(
    recording: Recording,
    path: str | os.PathLike[str],
    width: int = 100,
    with_summary: bool = True,
) -> Path:
    """The switch timeline (and summary) of a recording as a picture."""
    parts: list[RenderableType] = [timeline(recording, width=width)]
    if with_summary:
        parts.append(summary(recording))
    return save_picture(Group(*parts), path, width, title="greentrace timeline")


def tree_svg(
    snapshot: Snapshot,
    path: str | os.PathLike[str],
    width: int = 100,
    stacks: bool = False,
) -> Path:
    """The per-thread greenlet trees of a snapshot as a picture."""
    title = f"greenlets of pid {snapshot.pid}"
    return save_picture(tree(snapshot, stacks=stacks), path, width, title=title)
