"""The data model: JSON round-trip, tree helpers, intervals derived from events."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from greentrace.model import (
    SCHEMA,
    FrameInfo,
    GreenletInfo,
    GreenletMeta,
    Recording,
    RunInterval,
    Snapshot,
    SwitchEvent,
    load,
)

MS = 1_000_000
ROOT = Path(__file__).resolve().parents[2]


def spans(recording: Recording) -> list[tuple[int, int, int, int]]:
    """Intervals as (thread, greenlet, start, end), ordered per thread."""
    return sorted(
        (iv.thread_id, iv.greenlet_id, iv.start_ns, iv.end_ns)
        for iv in recording.intervals()
    )


# --- JSON round-trip --------------------------------------------------------


def test_snapshot_round_trips_through_json(snapshot: Snapshot) -> None:
    text = snapshot.to_json()
    again = Snapshot.from_json(text)
    assert again == snapshot
    assert again.greenlets[1].spawn_site == snapshot.greenlets[1].spawn_site
    assert isinstance(again.greenlets[1].stack[0], FrameInfo)
    assert json.loads(text)["schema"] == SCHEMA


def test_recording_round_trips_through_json(recording: Recording) -> None:
    recording.dropped = 7
    recording.live_at_start = 2
    again = Recording.from_json(recording.to_json(indent=2))
    assert again == recording
    assert again.greenlets[2].name == "worker-1"
    assert again.events[6] == SwitchEvent(8 * MS, "kill", 1, 2, 1001)


def test_load_dispatches_on_kind(snapshot: Snapshot, recording: Recording) -> None:
    assert load(snapshot.to_json()) == snapshot
    assert load(recording.to_json()) == recording


def test_none_and_empty_spawn_sites_stay_distinct() -> None:
    snap = Snapshot(
        0.0,
        0,
        1,
        greenlets=[
            GreenletInfo(1, "suspended", spawn_site=None),
            GreenletInfo(2, "suspended", spawn_site=[]),
        ],
    )
    again = Snapshot.from_json(snap.to_json())
    assert again.greenlets[0].spawn_site is None
    assert again.greenlets[1].spawn_site == []


@pytest.mark.parametrize("schema", [2, 0, None, "1"])
def test_unknown_schema_is_a_clear_value_error(
    snapshot: Snapshot, schema: object
) -> None:
    data = snapshot.to_dict()
    data["schema"] = schema
    with pytest.raises(ValueError, match="schema"):
        Snapshot.from_dict(data)


def test_missing_schema_is_rejected(recording: Recording) -> None:
    data = recording.to_dict()
    del data["schema"]
    with pytest.raises(ValueError, match="unsupported greentrace schema None"):
        Recording.from_json(json.dumps(data))


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "not a JSON object"),
        ('{"schema": 1, "kind": "flamegraph"}', "kind 'flamegraph'"),
    ],
)
def test_load_rejects_what_is_not_a_document(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(text)


def test_kind_mismatch_is_rejected(snapshot: Snapshot) -> None:
    with pytest.raises(ValueError, match="expected a greentrace recording"):
        Recording.from_json(snapshot.to_json())


def test_malformed_content_is_a_value_error(
    snapshot: Snapshot, recording: Recording
) -> None:
    data = snapshot.to_dict()
    data["greenlets"][0]["state"] = "sleeping"
    with pytest.raises(ValueError, match="unknown state 'sleeping'"):
        Snapshot.from_dict(data)
    data = snapshot.to_dict()
    del data["greenlets"][0]["id"]
    with pytest.raises(ValueError, match="no 'id'"):
        Snapshot.from_dict(data)
    data = recording.to_dict()
    data["events"][0][1] = "teleport"
    with pytest.raises(ValueError, match="unknown kind 'teleport'"):
        Recording.from_dict(data)
    data = recording.to_dict()
    data["events"][0] = [1, "switch", 2]
    with pytest.raises(ValueError, match="expected 5 values"):
        Recording.from_dict(data)


# --- Snapshot helpers ---------------------------------------------------------


def test_tree_helpers(snapshot: Snapshot) -> None:
    assert [g.id for g in snapshot.children_of(1)] == [2, 3, 5]
    assert [g.id for g in snapshot.children_of(2)] == [4]
    assert [g.id for g in snapshot.roots(1001)] == [1]
    assert [g.id for g in snapshot.roots(2002)] == [10]
    assert snapshot.thread_ids() == [1001, 2002, 3003]
    assert snapshot.by_id()[11].name == "bg-task"
    gone = snapshot.thread(3003)
    assert gone is not None and not gone.alive
    assert {k: [g.id for g in v] for k, v in snapshot.children_index().items()} == {
        1: [2, 3, 5],
        2: [4],
        10: [11],
    }


def test_unstarted_greenlet_belongs_to_its_parents_thread(snapshot: Snapshot) -> None:
    assert snapshot.by_id()[4].thread_id is None
    assert snapshot.thread_of(4) == 1001


def test_orphans_are_roots_and_parent_cycles_terminate() -> None:
    snap = Snapshot(
        0.0,
        0,
        1,
        greenlets=[
            GreenletInfo(1, "running", thread_id=7, is_main=True),
            GreenletInfo(2, "suspended", thread_id=7, parent_id=99),
            GreenletInfo(3, "unstarted", parent_id=4),
            GreenletInfo(4, "unstarted", parent_id=3),
        ],
    )
    assert [g.id for g in snap.roots(7)] == [1, 2]
    assert snap.thread_of(3) is None
    assert snap.thread_ids() == [7, None]


def test_labels_prefer_name_then_main_then_run() -> None:
    assert GreenletInfo(1, "running", name="n", run_name="r").label == "n"
    assert GreenletInfo(1, "running", is_main=True).label == "main"
    assert GreenletInfo(1, "running", run_name="Crawler.run").label == "Crawler.run"
    assert GreenletInfo(1, "running", type_name="gevent.Greenlet").label == "Greenlet"
    assert GreenletInfo(1, "running").is_plain_type
    assert not GreenletInfo(1, "running", type_name="gevent.Greenlet").is_plain_type
    assert GreenletMeta(3, run_name="work").label == "work"


# --- Intervals ----------------------------------------------------------------


def test_intervals_follow_each_thread(recording: Recording) -> None:
    assert spans(recording) == [
        (1001, 1, 1 * MS, 2 * MS),
        (1001, 1, 4 * MS, 5 * MS),
        (1001, 1, 7 * MS, 8 * MS),
        (1001, 1, 8 * MS + MS // 2, 11 * MS),
        (1001, 2, 2 * MS, 4 * MS),
        (1001, 2, 8 * MS, 8 * MS + MS // 2),
        (1001, 3, 5 * MS, 7 * MS),
        (2002, 10, 1 * MS, 3 * MS),
        (2002, 10, 6 * MS, 11 * MS),
        (2002, 11, 3 * MS, 6 * MS),
    ]


def test_intervals_never_overlap_and_tile_each_thread(recording: Recording) -> None:
    for ivs in recording.intervals_by_greenlet().values():
        for a, b in itertools.pairwise(ivs):
            assert a.end_ns <= b.start_ns
    for thread in (1001, 2002):
        ivs = sorted(
            (iv for iv in recording.intervals() if iv.thread_id == thread),
            key=lambda iv: iv.start_ns,
        )
        assert ivs[0].start_ns == recording.start_ns
        assert ivs[-1].end_ns == recording.end_ns
        assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(ivs))


def test_intervals_point_at_the_events_that_bound_them(recording: Recording) -> None:
    by_start = {iv.start_event: iv for iv in recording.intervals()}
    by_end = {iv.end_event: iv for iv in recording.intervals()}
    kill = recording.events.index(SwitchEvent(8 * MS, "kill", 1, 2, 1001))
    assert by_end[kill].greenlet_id == 1
    assert by_start[kill].greenlet_id == 2
    assert by_start[kill].duration_ns == MS // 2
    first = [iv for iv in recording.intervals() if iv.start_event is None]
    assert sorted(iv.greenlet_id for iv in first) == [1, 10]


def test_run_time_and_entries(recording: Recording) -> None:
    assert recording.run_ns_by_greenlet() == {
        1: 5 * MS + MS // 2,
        2: 2 * MS + MS // 2,
        3: 2 * MS,
        10: 7 * MS,
        11: 3 * MS,
    }
    assert recording.entries_by_greenlet() == {2: 2, 11: 1, 1: 3, 3: 1, 10: 1}


def test_first_interval_belongs_to_first_origin() -> None:
    rec = Recording(
        start_ns=100, end_ns=1000, events=[SwitchEvent(400, "switch", 5, 6, 9)]
    )
    assert spans(rec) == [(9, 5, 100, 400), (9, 6, 400, 1000)]


def test_unordered_events_are_ordered_per_thread() -> None:
    rec = Recording(
        0,
        100,
        events=[
            SwitchEvent(60, "switch", 2, 1, 1),
            SwitchEvent(20, "switch", 1, 2, 1),
        ],
    )
    assert spans(rec) == [(1, 1, 0, 20), (1, 1, 60, 100), (1, 2, 20, 60)]


def test_dropped_events_start_coverage_at_first_kept_event() -> None:
    # The ring lost the oldest events: nothing is known before t=500.
    rec = Recording(
        0,
        1000,
        dropped=12,
        events=[
            SwitchEvent(500, "switch", 3, 4, 1),
            SwitchEvent(700, "switch", 8, 9, 2),
            SwitchEvent(800, "finish", 4, 3, 1),
        ],
    )
    assert rec.covered_from_ns == 500
    assert spans(rec) == [
        (1, 3, 800, 1000),
        (1, 4, 500, 800),
        (2, 8, 500, 700),
        (2, 9, 700, 1000),
    ]


def test_switch_to_the_running_greenlet_does_not_split_it() -> None:
    rec = Recording(
        0,
        100,
        events=[
            SwitchEvent(10, "switch", 1, 2, 1),
            SwitchEvent(30, "switch", 2, 2, 1),
            SwitchEvent(50, "switch", 2, 1, 1),
        ],
    )
    assert spans(rec) == [(1, 1, 0, 10), (1, 1, 50, 100), (1, 2, 10, 50)]


def test_no_events_means_no_intervals() -> None:
    rec = Recording(0, 100)
    assert rec.intervals() == []
    assert rec.live_counts() == [(0, 0)]


def test_run_interval_duration() -> None:
    assert RunInterval(1, 2, 10, 35).duration_ns == 25


# --- Live counts ----------------------------------------------------------------


def test_live_count_estimated_from_events(recording: Recording) -> None:
    assert recording.initial_live() == 2
    assert [n for _, n in recording.live_counts()] == [2, 3, 4, 5, 4, 3]


def test_live_count_uses_given_start_value_but_never_goes_negative() -> None:
    events = [SwitchEvent(10, "finish", 4, 1, 1), SwitchEvent(20, "finish", 5, 1, 1)]
    assert Recording(0, 100, events=events, live_at_start=9).initial_live() == 9
    rec = Recording(0, 100, events=events, live_at_start=0)
    assert min(n for _, n in rec.live_counts()) >= 0
    assert rec.initial_live() == 2


# --- Layering -----------------------------------------------------------------


def test_layers_do_not_import_greenlet() -> None:
    code = (
        "import sys, greentrace, greentrace.model, greentrace.render, greentrace.export\n"
        "assert 'greenlet' not in sys.modules, sorted(sys.modules)\n"
        "assert 'greenlet._greenlet' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_live_count_survives_inconsistent_streams() -> None:
    # A finish logged twice (bad data) must not push the count below zero.
    rec = Recording(
        0,
        100,
        events=[
            SwitchEvent(10, "start", 1, 2, 1),
            SwitchEvent(20, "finish", 2, 1, 1),
            SwitchEvent(30, "finish", 2, 1, 1),
            SwitchEvent(40, "finish", 2, 1, 1),
        ],
    )
    counts = [n for _, n in rec.live_counts()]
    assert min(counts) == 0
    assert counts[0] == 2
