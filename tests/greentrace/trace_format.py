"""A strict checker for the Trace Event Format's JSON object form, as Perfetto imports it.

Written from the format's documentation (the "Trace Event Format" document
of the Chrome tracing project) for the events greentrace writes, plus the
rules greentrace promises on top (one named track per greenlet, slices on a
track never overlap, every flow bound to a slice at both ends).  It returns
the problems it finds, so that tests can also show it rejects bad traces.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from typing import Any

# Keys of the JSON object form that viewers interpret; any other key (like
# greentrace's own "greentrace") is allowed and ignored by them.
KNOWN_TOP_LEVEL = {
    "traceEvents",
    "displayTimeUnit",
    "systemTraceEvents",
    "otherData",
    "stackFrames",
    "samples",
    "metadata",
    "powerTraceAsString",
    "controllerTraceDataKey",
}
PHASES = set("BEXiIsftCMbenPOND")
METADATA_NAMES = {
    "process_name": ("name", str),
    "process_labels": ("labels", str),
    "process_sort_index": ("sort_index", int),
    "thread_name": ("name", str),
    "thread_sort_index": ("sort_index", int),
}
EPS_US = 1e-6  # float rounding of nanoseconds expressed in microseconds


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(document: Any) -> list[str]:
    """Everything wrong with a trace document; empty when it is valid."""
    found: list[str] = []
    if not isinstance(document, dict):
        return ["the document is not a JSON object"]
    try:
        json.dumps(document, allow_nan=False)
    except ValueError as exc:
        found.append(f"not strict JSON: {exc}")
    events = document.get("traceEvents")
    if not isinstance(events, list):
        return [*found, "traceEvents is missing or not a list"]
    unit = document.get("displayTimeUnit", "ms")
    if unit not in ("ms", "ns"):
        found.append(f"displayTimeUnit must be 'ms' or 'ns', not {unit!r}")
    if "otherData" in document and not isinstance(document["otherData"], dict):
        found.append("otherData must be an object")
    slices: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    names: dict[tuple[int, int], int] = defaultdict(int)
    flows: dict[Any, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    tracks_used: set[tuple[int, int]] = set()
    pids: set[int] = set()
    for n, event in enumerate(events):
        where = f"event {n}"
        if not isinstance(event, dict):
            found.append(f"{where}: not an object")
            continue
        ph = event.get("ph")
        if not isinstance(ph, str) or ph not in PHASES:
            found.append(f"{where}: unknown phase {ph!r}")
            continue
        where = f"event {n} ({ph} {event.get('name')!r})"
        if not isinstance(event.get("name"), str) or not event["name"]:
            found.append(f"{where}: no name")
        if not _integer(event.get("pid")):
            found.append(f"{where}: pid must be an integer")
            continue
        pids.add(event["pid"])
        has_tid = "tid" in event
        if has_tid and not _integer(event["tid"]):
            found.append(f"{where}: tid must be an integer")
            continue
        if ph != "M" and not _number(event.get("ts")):
            found.append(f"{where}: ts must be a finite number")
            continue
        if ph != "M" and event["ts"] < 0:
            found.append(f"{where}: negative ts")
        if "args" in event and not isinstance(event["args"], dict):
            found.append(f"{where}: args must be an object")
            continue
        track = (event["pid"], event.get("tid", 0))
        if ph in ("X", "i", "I", "s", "t", "f", "B", "E") and not has_tid:
            found.append(f"{where}: a thread-scoped event needs a tid")
            continue
        if ph == "X":
            if not _number(event.get("dur")):
                found.append(f"{where}: an X slice needs a finite dur")
                continue
            if event["dur"] < 0:
                found.append(f"{where}: negative dur")
            slices[track].append(event)
            tracks_used.add(track)
        elif ph in ("i", "I"):
            scope = event.get("s", "t")
            if scope not in ("g", "p", "t"):
                found.append(f"{where}: instant scope must be g, p or t, not {scope!r}")
            tracks_used.add(track)
        elif ph in ("s", "t", "f"):
            if not isinstance(event.get("cat"), str):
                found.append(f"{where}: a flow event needs a category")
            flow_id = event.get("id")
            if not (_integer(flow_id) or isinstance(flow_id, str)):
                found.append(f"{where}: a flow event needs an id")
                continue
            if ph == "f" and event.get("bp", "e") not in ("e",):
                found.append(f"{where}: bp may only be 'e'")
            flows[(event.get("cat"), flow_id)][ph].append(event)
            tracks_used.add(track)
        elif ph == "C":
            args = event.get("args")
            if not isinstance(args, dict) or not args:
                found.append(f"{where}: a counter needs args with its values")
            elif not all(_number(v) for v in args.values()):
                found.append(f"{where}: counter values must be numbers")
        elif ph == "M":
            spec = METADATA_NAMES.get(event.get("name", ""))
            if spec is None:
                found.append(f"{where}: unknown metadata")
                continue
            key, kind = spec
            value = (event.get("args") or {}).get(key)
            if not (isinstance(value, kind) and not isinstance(value, bool)):
                found.append(f"{where}: args.{key} must be a {kind.__name__}")
            if event["name"] == "thread_name":
                if not has_tid:
                    found.append(f"{where}: thread_name needs a tid")
                names[track] += 1
    found += _check_tracks(slices, names, tracks_used)
    found += _check_flows(flows, slices)
    if len(pids) > 1:
        found.append(f"events of several processes: {sorted(pids)}")
    return found


def _check_tracks(
    slices: dict[tuple[int, int], list[dict[str, Any]]],
    names: dict[tuple[int, int], int],
    tracks_used: set[tuple[int, int]],
) -> list[str]:
    found: list[str] = []
    for track in sorted(tracks_used):
        if names.get(track, 0) == 0:
            found.append(f"track {track} has events but no thread_name")
        if track[1] == 0:
            found.append(f"track {track} uses tid 0 (the idle task to viewers)")
    for track, count in names.items():
        if count > 1:
            found.append(f"track {track} is named {count} times")
    for track, items in slices.items():
        ordered = sorted(items, key=lambda x: (x["ts"], -x["dur"]))
        open_ends: list[float] = []
        for x in ordered:
            while open_ends and open_ends[-1] <= x["ts"] + EPS_US:
                open_ends.pop()
            end = x["ts"] + x["dur"]
            if open_ends and end > open_ends[-1] + EPS_US:
                found.append(
                    f"track {track}: slice at {x['ts']} overlaps its neighbour "
                    "without nesting in it"
                )
            open_ends.append(end)
    return found


def _enclosing(
    slices: dict[tuple[int, int], list[dict[str, Any]]], event: dict[str, Any]
) -> list[dict[str, Any]]:
    track = (event["pid"], event["tid"])
    ts = event["ts"]
    return [
        x
        for x in slices.get(track, [])
        if x["ts"] - EPS_US <= ts <= x["ts"] + x["dur"] + EPS_US
    ]


def _check_flows(
    flows: dict[Any, dict[str, list[dict[str, Any]]]],
    slices: dict[tuple[int, int], list[dict[str, Any]]],
) -> list[str]:
    found: list[str] = []
    for key, by_phase in flows.items():
        starts, finishes = by_phase.get("s", []), by_phase.get("f", [])
        if len(starts) != 1 or len(finishes) != 1:
            found.append(
                f"flow {key}: {len(starts)} start(s) and {len(finishes)} finish(es)"
            )
            continue
        s, f = starts[0], finishes[0]
        steps = sorted(by_phase.get("t", []), key=lambda e: e["ts"])
        chain = [s, *steps, f]
        if any(a["ts"] > b["ts"] + EPS_US for a, b in itertools.pairwise(chain)):
            found.append(f"flow {key}: goes back in time")
        if s.get("name") != f.get("name"):
            found.append(f"flow {key}: start and finish have different names")
        for end in chain:
            if not _enclosing(slices, end):
                found.append(
                    f"flow {key}: its {end['ph']} at {end['ts']} on track "
                    f"{(end['pid'], end['tid'])} is inside no slice"
                )
    return found


def assert_valid(document: Any) -> None:
    """Fail with every problem listed when ``document`` is not a valid trace."""
    found = problems(document)
    assert not found, "invalid trace:\n" + "\n".join(found[:50])
