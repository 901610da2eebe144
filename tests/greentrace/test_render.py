"""Renderers on hand-made snapshots and recordings, checked as plain text."""

from __future__ import annotations

import dataclasses

import pytest
from rich.cells import cell_len
from rich.console import Console, RenderableType

from greentrace import render
from greentrace.model import (
    GreenletInfo,
    GreenletMeta,
    Recording,
    RunInterval,
    Snapshot,
    SwitchEvent,
)

MS = 1_000_000


def text_of(renderable: RenderableType, width: int = 80) -> str:
    """Render like a terminal of ``width`` columns and return the plain text."""
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    console.file.close()
    return console.export_text()


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


# --- helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ns, shown",
    [
        (0, "0 ns"),
        (999, "999 ns"),
        (1_500, "1.50 µs"),
        (2_340_000, "2.34 ms"),
        (45_000_000_000, "45.0 s"),
        (125_000_000_000, "2m 05s"),
        (7_380_000_000_000, "2h 03m"),
    ],
)
def test_format_ns_uses_human_units(ns: int, shown: str) -> None:
    assert render.format_ns(ns) == shown


def test_truncate_keeps_the_id_suffix() -> None:
    assert render.truncate("short", 20, " #3") == "short #3"
    cut = render.truncate("a-very-long-greenlet-name", 16, " #123")
    assert cut.endswith("… #123")
    assert cell_len(cut) <= 16
    assert cell_len(render.truncate("日本語の名前です", 9, " #7")) <= 9


def test_badges_are_colored_by_state() -> None:
    assert "green" in str(render.badge("running").style)
    assert "yellow" in str(render.badge("suspended").style)
    assert "cyan" in str(render.badge("unstarted").style)
    assert "dim" in str(render.badge("dead").style)
    assert render.badge("suspended").plain == "‖ suspended"


# --- tree -------------------------------------------------------------------------


def test_tree_shows_threads_names_badges_and_locations(snapshot: Snapshot) -> None:
    out = text_of(render.tree(snapshot))
    assert "Thread MainThread (1001)" in out
    assert "Thread worker-thread (2002)" in out
    assert "Thread gone (3003) exited" in out
    assert "‖ suspended  worker-1 #2 (Greenlet)" in out
    assert "▶ running  Parser.parse #3 ◀ snapshot taken here" in out
    assert "○ unstarted  handle #4" in out
    assert "✕ dead  old-job #5" in out
    assert "at app/crawler.py:42 in fetch_page" in out
    assert "spawned at app/crawler.py:88 in spawn_workers" in out
    assert "12 switches · 2.34 ms" in out
    assert "1 switch · 980 ns" in out
    assert "45.0 s" in out


def test_tree_nests_children_under_parents(snapshot: Snapshot) -> None:
    lines = text_of(render.tree(snapshot), width=120).splitlines()

    def row(needle: str) -> tuple[int, int]:
        index = next(i for i, line in enumerate(lines) if needle in line)
        return index, lines[index].index(needle)

    main_row, main_col = row("main #1 ")
    worker_row, worker_col = row("worker-1 #2")
    handle_row, handle_col = row("handle #4")
    bg_row, _ = row("bg-task #11")
    assert main_row < worker_row < handle_row < bg_row
    assert main_col < worker_col < handle_col


def test_dead_greenlets_are_dimmed(snapshot: Snapshot) -> None:
    known = {g.id for g in snapshot.greenlets}
    dead = render.greenlet_label(snapshot.by_id()[5], known)
    alive = render.greenlet_label(snapshot.by_id()[2], known)
    whole = [s for s in dead.spans if s.start == 0 and s.end == len(dead.plain)]
    assert any("dim" in str(s.style) for s in whole)
    assert not any(
        s.start == 0 and s.end == len(alive.plain) and "dim" in str(s.style)
        for s in alive.spans
    )


def test_tree_with_stacks_lists_every_frame(snapshot: Snapshot) -> None:
    out = text_of(render.tree(snapshot, stacks=True), width=120)
    assert 'File "/srv/app/crawler.py", line 42, in fetch_page' in out
    assert 'File "/srv/app/crawler.py", line 30, in crawl' in out
    assert "data = sock.recv(4096)" in out
    assert "(not started)" in out
    assert out.index("line 42, in fetch_page") < out.index("line 30, in crawl")


def test_tree_reports_missing_parent_and_unthreaded_greenlets() -> None:
    snap = Snapshot(
        0.0,
        0,
        1,
        greenlets=[
            GreenletInfo(1, "running", thread_id=5, is_main=True),
            GreenletInfo(2, "suspended", thread_id=5, parent_id=77, name="orphan"),
            GreenletInfo(3, "unstarted", name="floating"),
        ],
    )
    out = text_of(render.tree(snap))
    assert "parent #77 not in snapshot" in out
    assert "greenlets not yet on a thread" in out
    assert "floating #3" in out


# --- stacks -----------------------------------------------------------------------


def test_stacks_groups_per_thread_innermost_first(snapshot: Snapshot) -> None:
    out = text_of(render.stacks(snapshot), width=100)
    main_thread = out.index("Thread MainThread")
    worker_thread = out.index("Thread worker-thread")
    assert (
        main_thread
        < out.index("worker-1 #2")
        < worker_thread
        < out.index("bg-task #11")
    )
    assert out.index("line 42, in fetch_page") < out.index("line 30, in crawl")
    assert "(gevent._gevent_cgreenlet.Greenlet)" in out
    assert "(finished)" in out
    assert "tokens = lex(text)" in out


# --- top table --------------------------------------------------------------------


def table_ids(out: str) -> list[int]:
    ids = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1].isdigit():
            ids.append(int(cells[1]))
    return ids


def test_top_table_sorts_by_run_time_or_switches(snapshot: Snapshot) -> None:
    assert table_ids(text_of(render.top_table(snapshot), width=100)) == [
        5,
        10,
        11,
        2,
        1,
        3,
        4,
        20,
    ]
    by_switches = table_ids(text_of(render.top_table(snapshot, sort="switches"), 100))
    assert by_switches[:3] == [2, 1, 5]
    assert table_ids(text_of(render.top_table(snapshot, limit=2), 100)) == [5, 10]


def test_top_table_rates_between_two_snapshots(snapshot: Snapshot) -> None:
    earlier = dataclasses.replace(
        snapshot,
        monotonic_ns=snapshot.monotonic_ns - 2_000_000_000,
        greenlets=[
            dataclasses.replace(
                g,
                switches=max(0, g.switches - (10 if g.id == 2 else 0)),
                run_ns=g.run_ns - (1_000_000_000 if g.id == 5 else 0),
            )
            for g in snapshot.greenlets
        ],
    )
    out = text_of(render.top_table(snapshot, previous=earlier, sort="switches"), 110)
    assert table_ids(out)[0] == 2
    assert "5.0" in line_with(out, "worker-1")  # 10 switches in 2 s
    assert "50.0%" in line_with(out, "old-job")  # 1 s of run time in 2 s
    assert "rates over 2.00 s" in out
    assert table_ids(text_of(render.top_table(snapshot, previous=earlier), 110))[0] == 5


def test_top_table_refuses_meaningless_input(snapshot: Snapshot) -> None:
    with pytest.raises(ValueError, match="sort"):
        render.top_table(snapshot, sort="name")
    with pytest.raises(ValueError, match="different processes"):
        render.top_table(snapshot, previous=dataclasses.replace(snapshot, pid=1))
    with pytest.raises(ValueError, match="not older"):
        render.top_table(snapshot, previous=snapshot)


# --- timeline ---------------------------------------------------------------------


def test_timeline_fits_80_columns_and_names_rows(recording: Recording) -> None:
    out = text_of(render.timeline(recording, width=80), width=80)
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    for name in (
        "main #1",
        "worker-1 #2",
        "Parser.parse #3",
        "main #10",
        "bg-task #11",
    ):
        assert name in out
    assert "thread 1001" in out and "thread 2002" in out
    assert "10.0 ms" in lines[-1]
    assert lines[-1].split()[0] == "0"


def test_timeline_rows_carry_switch_counts_and_share(recording: Recording) -> None:
    out = text_of(render.timeline(recording), width=80)
    assert line_with(out, "main #10").split()[-2:] == ["1", "70.0%"]
    assert line_with(out, "worker-1 #2").split()[-2:] == ["2", "25.0%"]
    assert "█" in line_with(out, "bg-task #11")


def test_timeline_full_row_and_empty_row() -> None:
    rec = Recording(
        0,
        100 * MS,
        events=[SwitchEvent(0, "switch", 1, 2, 1)],
        greenlets={3: GreenletMeta(3, name="idle", thread_id=1)},
    )
    out = text_of(render.timeline(rec, width=60), width=60)
    bar = line_with(out, "greenlet #2").split()[2]
    assert set(bar) == {"█"} and len(bar) > 20
    assert set(line_with(out, "idle #3").split()[2:-2]) == set()


def test_timeline_shades_partial_cells() -> None:
    intervals = [RunInterval(1, 1, 10, 30)]
    fractions = render._cell_fractions(intervals, t0=0, span=100, cells=4)
    assert fractions == pytest.approx([0.6, 0.2, 0.0, 0.0])
    assert [render._shade(f) for f in (1.0, 0.6, 0.3, 0.05, 0.0)] == [
        "█",
        "▓",
        "▒",
        "░",
        " ",
    ]


def test_timeline_truncates_long_names_and_follows_narrow_consoles() -> None:
    long = "handler-for-a-very-long-queue-name-that-never-ends"
    rec = Recording(
        0,
        10 * MS,
        events=[SwitchEvent(5 * MS, "start", 1, 2, 1)],
        greenlets={2: GreenletMeta(2, name=long, thread_id=1)},
    )
    out = text_of(render.timeline(rec, width=80), width=50)
    assert max(cell_len(line) for line in out.splitlines()) <= 50
    assert "… #2" in out
    assert long not in out


def test_timeline_without_events_and_too_narrow() -> None:
    assert "no switch events recorded" in text_of(render.timeline(Recording(0, 10)))
    with pytest.raises(ValueError, match="30 columns"):
        render.timeline(Recording(0, 10), width=20)


def test_timeline_mentions_dropped_events() -> None:
    rec = Recording(
        0, 10 * MS, dropped=40, events=[SwitchEvent(4 * MS, "switch", 1, 2, 1)]
    )
    out = text_of(render.timeline(rec, width=100), width=100)
    assert "40 dropped" in out
    assert "6.00 ms" in out.splitlines()[0]


# --- summary ----------------------------------------------------------------------


def test_summary_totals_and_busiest(recording: Recording) -> None:
    recording.dropped = 3
    out = text_of(render.summary(recording), width=100)
    assert "8 (start 3, switch 2, finish 2, kill 1)" in out
    assert line_with(out, "dropped").split()[-1] == "3"
    assert line_with(out, "greenlets").split()[-1] == "5"
    assert line_with(out, "threads").split()[-1] == "2"
    assert out.index("main #10") < out.index("main #1 ") < out.index("bg-task #11")
    # Dropped events: shares are of the 9 ms from the first kept event on.
    assert "covered    9.00 ms" in out
    assert "66.7%" in line_with(out, "main #10")
