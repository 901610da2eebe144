"""Chrome trace export and SVG/HTML pictures, on hand-made recordings."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from trace_format import assert_valid

from greentrace import export
from greentrace.model import GreenletMeta, Recording, Snapshot, SwitchEvent

MS = 1_000_000
EPS = 1e-6  # microseconds: float rounding of ns -> µs


def phase(trace: dict[str, Any], ph: str) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == ph]


def enclosing(
    slices: list[dict[str, Any]], tid: int, ts: float
) -> list[dict[str, Any]]:
    return [
        x
        for x in slices
        if x["tid"] == tid and x["ts"] - EPS <= ts <= x["ts"] + x["dur"] + EPS
    ]


def check_well_formed(trace: dict[str, Any]) -> None:
    """The invariants a viewer relies on; shared by every trace test."""
    assert_valid(trace)  # the format's rules for each phase
    slices = phase(trace, "X")
    for x in slices:
        assert {"name", "ts", "dur", "pid", "tid"} <= x.keys()
        assert x["ts"] >= 0 and x["dur"] >= 0
    named = {e["tid"] for e in phase(trace, "M") if e["name"] == "thread_name"}
    used = {e["tid"] for e in trace["traceEvents"] if e["ph"] in ("X", "s", "f", "i")}
    assert used <= named
    per_track: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for x in slices:
        per_track[x["tid"]].append(x)
    for track in per_track.values():
        track.sort(key=lambda x: x["ts"])
        for a, b in itertools.pairwise(track):
            assert a["ts"] + a["dur"] <= b["ts"] + EPS, (a, b)
    starts = {e["id"]: e for e in phase(trace, "s")}
    finishes = {e["id"]: e for e in phase(trace, "f")}
    assert starts.keys() == finishes.keys()
    assert len(starts) == len(phase(trace, "s"))
    for flow_id, s in starts.items():
        f = finishes[flow_id]
        assert f["bp"] == "e"
        assert s["ts"] <= f["ts"] + EPS
        assert len(enclosing(slices, s["tid"], s["ts"])) == 1
        assert len(enclosing(slices, f["tid"], f["ts"])) == 1
    counters = phase(trace, "C")
    assert counters and all(c["args"]["live"] >= 0 for c in counters)


def test_trace_is_well_formed(recording: Recording) -> None:
    check_well_formed(export.to_chrome_trace(recording))


def test_one_named_track_per_greenlet(recording: Recording) -> None:
    trace = export.to_chrome_trace(recording)
    names = {
        e["tid"]: e["args"]["name"]
        for e in phase(trace, "M")
        if e["name"] == "thread_name"
    }
    assert names == {
        2: "main #1",
        3: "worker-1 #2",
        4: "Parser.parse #3",
        11: "main #10",
        12: "bg-task #11",
    }
    sort = {
        e["tid"]: e["args"]["sort_index"]
        for e in phase(trace, "M")
        if e["name"] == "thread_sort_index"
    }
    assert sorted(sort, key=lambda tid: sort[tid]) == [2, 3, 4, 11, 12]
    process = [e for e in phase(trace, "M") if e["name"] == "process_name"]
    assert process[0]["args"]["name"] == "greenlets (pid 4242)"
    assert {e["pid"] for e in trace["traceEvents"]} == {4242}
    assert export.to_chrome_trace(recording, pid=7)["traceEvents"][0]["pid"] == 7


def test_slices_are_the_running_periods_in_microseconds(recording: Recording) -> None:
    slices = phase(export.to_chrome_trace(recording), "X")
    worker = sorted((x["ts"], x["dur"]) for x in slices if x["tid"] == 3)
    assert worker == [(1000.0, 2000.0), (7000.0, 500.0)]
    assert len(slices) == len(recording.intervals())
    main10 = [x for x in slices if x["tid"] == 11]
    assert all(x["args"]["thread_id"] == 2002 for x in main10)


def test_flows_follow_each_switch(recording: Recording) -> None:
    trace = export.to_chrome_trace(recording)
    pairs = {
        (s["tid"], f["tid"], s["name"])
        for s in phase(trace, "s")
        for f in phase(trace, "f")
        if s["id"] == f["id"]
    }
    assert len(pairs) == len(recording.events) == 8
    assert (2, 3, "start") in pairs  # main #1 starts worker-1 #2
    assert (2, 3, "kill") in pairs
    assert (3, 2, "finish") in pairs
    assert (12, 11, "switch") in pairs


def test_instants_mark_start_kill_and_finish(recording: Recording) -> None:
    instants = phase(export.to_chrome_trace(recording), "i")
    marks = sorted((i["name"], i["tid"]) for i in instants)
    assert marks == [
        ("finish", 3),
        ("finish", 4),
        ("kill", 3),
        ("start", 3),
        ("start", 4),
        ("start", 12),
    ]
    assert all(i["s"] == "t" for i in instants)


def test_counter_follows_live_greenlets(recording: Recording) -> None:
    counters = phase(export.to_chrome_trace(recording), "C")
    assert [(c["ts"], c["args"]["live"]) for c in counters] == [
        (0.0, 2),
        (1000.0, 3),
        (2000.0, 4),
        (4000.0, 5),
        (6000.0, 4),
        (7500.0, 3),
    ]


def test_counter_never_negative_when_finishes_outnumber_starts() -> None:
    rec = Recording(
        0,
        100,
        live_at_start=0,
        events=[
            SwitchEvent(10, "finish", 2, 1, 1),
            SwitchEvent(20, "finish", 3, 1, 1),
        ],
    )
    trace = export.to_chrome_trace(rec)
    check_well_formed(trace)
    assert [c["args"]["live"] for c in phase(trace, "C")] == [2, 1, 0]


def test_dropped_and_multithread_stream_stays_well_formed() -> None:
    events = []
    runner = {1: 10, 2: 20, 3: 30}
    for step in range(300):
        thread = 1 + step % 3
        target = thread * 10 + (step * 7) % 5
        if target == runner[thread]:
            continue
        kind = ("switch", "throw", "start", "finish", "kill")[step % 5]
        events.append(
            SwitchEvent(1000 + step * 37, kind, runner[thread], target, thread)
        )
        runner[thread] = target
    rec = Recording(
        0,
        20_000,
        events=events,
        dropped=99,
        greenlets={10: GreenletMeta(10, is_main=True, thread_id=1)},
    )
    trace = export.to_chrome_trace(rec)
    check_well_formed(trace)
    # Events were lost: slices begin at the first kept event, not at start_ns.
    first_kept_us = events[0].t_ns / 1000
    assert min(x["ts"] for x in phase(trace, "X")) == pytest.approx(first_kept_us)
    assert trace["otherData"]["dropped_events"] == 99


def test_zero_length_periods_keep_flows_bound() -> None:
    rec = Recording(
        0,
        100,
        events=[
            SwitchEvent(50, "switch", 1, 2, 1),
            SwitchEvent(50, "switch", 2, 1, 1),
        ],
    )
    trace = export.to_chrome_trace(rec)
    check_well_formed(trace)
    assert [x["dur"] for x in phase(trace, "X") if x["tid"] == 3] == [0.0]


def test_write_chrome_trace_writes_json(recording: Recording, tmp_path: Path) -> None:
    path = export.write_chrome_trace(recording, tmp_path / "trace.json")
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(export.to_chrome_trace(recording)))
    check_well_formed(data)


def test_timeline_svg(recording: Recording, tmp_path: Path) -> None:
    path = export.timeline_svg(recording, tmp_path / "timeline.svg", width=90)
    svg = path.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg")
    for name in ("worker-1", "bg-task", "Parser.parse", "busiest"):
        assert name in svg


def test_tree_svg_and_html(snapshot: Snapshot, tmp_path: Path) -> None:
    svg = export.tree_svg(snapshot, tmp_path / "tree.svg", stacks=True).read_text(
        "utf-8"
    )
    assert "<svg" in svg
    for name in ("worker-1", "bg-task", "old-job", "fetch_page", "MainThread"):
        assert name in svg
    html = export.save_picture(
        export.tree(snapshot), tmp_path / "tree.html", width=90
    ).read_text("utf-8")
    assert "<html" in html.lower() and "worker-1" in html and "<svg" not in html
