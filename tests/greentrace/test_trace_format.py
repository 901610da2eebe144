"""Traces checked against the Trace Event Format, the way Perfetto imports them.

Perfetto's ``trace_processor`` cannot run here (it fetches a native binary at
run time), so ``trace_format.problems`` checks what the format's document
requires of each phase; it is first shown to reject broken traces, then run
on hand-made recordings and on traces of the example programs.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import CRAWLER, EXAMPLES, HANG, greentrace
from trace_format import assert_valid, problems

from greentrace import export
from greentrace.model import Recording


def _small() -> dict[str, Any]:
    """A valid trace with one slice per track, a flow between them and a counter."""
    return {
        "traceEvents": [
            {
                "name": "process_name",
                "ph": "M",
                "pid": 7,
                "tid": 0,
                "args": {"name": "p"},
            },
            {
                "name": "thread_name",
                "ph": "M",
                "pid": 7,
                "tid": 2,
                "args": {"name": "a"},
            },
            {
                "name": "thread_name",
                "ph": "M",
                "pid": 7,
                "tid": 3,
                "args": {"name": "b"},
            },
            {"name": "a", "ph": "X", "ts": 0.0, "dur": 10.0, "pid": 7, "tid": 2},
            {"name": "b", "ph": "X", "ts": 10.0, "dur": 5.0, "pid": 7, "tid": 3},
            {
                "name": "switch",
                "cat": "switch",
                "ph": "s",
                "id": 1,
                "ts": 9.999,
                "pid": 7,
                "tid": 2,
            },
            {
                "name": "switch",
                "cat": "switch",
                "ph": "f",
                "bp": "e",
                "id": 1,
                "ts": 10.001,
                "pid": 7,
                "tid": 3,
            },
            {"name": "greenlets", "ph": "C", "ts": 0.0, "pid": 7, "args": {"live": 2}},
        ],
        "displayTimeUnit": "ms",
        "greentrace": {"anything": "of its own"},
    }


def _event(doc: dict[str, Any], ph: str, n: int = 0) -> dict[str, Any]:
    return [e for e in doc["traceEvents"] if e["ph"] == ph][n]


BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "slice without dur": (lambda d: _event(d, "X").pop("dur"), "needs a finite dur"),
    "negative dur": (lambda d: _event(d, "X").update(dur=-1.0), "negative dur"),
    "NaN timestamp": (lambda d: _event(d, "X").update(ts=float("nan")), "finite"),
    "no pid": (lambda d: _event(d, "C").pop("pid"), "pid must be an integer"),
    "slice without tid": (lambda d: _event(d, "X").pop("tid"), "needs a tid"),
    "unknown phase": (lambda d: _event(d, "C").update(ph="Q"), "unknown phase"),
    "unnamed track": (lambda d: d["traceEvents"].pop(2), "no thread_name"),
    "track named twice": (
        lambda d: d["traceEvents"].append(copy.deepcopy(d["traceEvents"][1])),
        "named 2 times",
    ),
    "overlapping slices": (
        lambda d: d["traceEvents"].append(
            {"name": "a", "ph": "X", "ts": 5.0, "dur": 10.0, "pid": 7, "tid": 2}
        ),
        "overlaps",
    ),
    "flow without finish": (
        lambda d: d["traceEvents"].remove(_event(d, "f")),
        "1 start(s) and 0 finish(es)",
    ),
    "flow outside any slice": (
        lambda d: _event(d, "f").update(ts=20.0),
        "inside no slice",
    ),
    "flow back in time": (lambda d: _event(d, "s").update(ts=10.002), "back in time"),
    "flow without category": (lambda d: _event(d, "s").pop("cat"), "category"),
    "counter without values": (lambda d: _event(d, "C").update(args={}), "needs args"),
    "counter of text": (
        lambda d: _event(d, "C").update(args={"live": "2"}),
        "values must be numbers",
    ),
    "metadata without name": (
        lambda d: _event(d, "M", 1).update(args={}),
        "args.name must be a str",
    ),
    "tid 0 in use": (lambda d: _event(d, "X").update(tid=0), "tid 0"),
    "bad time unit": (lambda d: d.update(displayTimeUnit="s"), "displayTimeUnit"),
    "two processes": (lambda d: _event(d, "C").update(pid=8), "several processes"),
}


def test_the_checker_accepts_a_valid_trace_with_keys_of_its_own() -> None:
    assert problems(_small()) == []


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_checker_rejects_broken_traces(breakage: str) -> None:
    document = _small()
    breaks, message = BREAKAGES[breakage]
    breaks(document)
    found = problems(document)
    assert any(message in p for p in found), found


def test_the_checker_rejects_what_is_not_a_trace() -> None:
    assert problems([]) == ["the document is not a JSON object"]
    assert problems({"events": []}) == ["traceEvents is missing or not a list"]


def test_hand_made_recording_exports_a_valid_trace(
    recording: Recording, tmp_path: Path
) -> None:
    assert_valid(export.to_chrome_trace(recording))
    path = export.save_trace(recording, tmp_path / "t.json")
    document = json.loads(path.read_text(), parse_constant=_no_constants)
    assert_valid(document)
    assert Recording.from_dict(document["greentrace"]) == recording


def _no_constants(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    "program",
    [
        (CRAWLER,),
        (EXAMPLES / "generator.py",),
        (HANG, "--seconds", "0.3"),
    ],
    ids=["crawler", "generator", "hang"],
)
def test_run_trace_of_the_examples_is_valid(
    runtime: Path, program: tuple[Path, ...]
) -> None:
    trace = runtime / "trace.json"
    proc = greentrace(
        runtime, "run", "--quiet", "--trace", str(trace), *map(str, program)
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(trace.read_text(), parse_constant=_no_constants)
    assert_valid(document)
    recording = Recording.from_dict(document["greentrace"])
    events = document["traceEvents"]
    # One named track per greenlet that ran, a slice per running period,
    # a flow per switch between two periods, the live-greenlet counter.
    named = {
        e["tid"] - export.TID_OFFSET: e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    ran = {iv.greenlet_id for iv in recording.intervals()}
    assert ran and ran <= named.keys()
    for gid in ran:
        assert named[gid] == f"{recording.label(gid)} #{gid}"
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == len(recording.intervals())
    flows = [e for e in events if e["ph"] == "s"]
    assert len(flows) >= len(ran) - 1
    counters = [e for e in events if e["ph"] == "C"]
    assert counters and {tuple(c["args"]) for c in counters} == {("live",)}
    assert max(c["args"]["live"] for c in counters) >= 1
