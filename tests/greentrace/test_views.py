"""Whole screens: the live view of ``run --live``, top's frame, ps, the exit report."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import HANG, clean_env
from rich.console import Console, RenderableType

from greentrace import views
from greentrace.model import GreenletInfo, Recording, Snapshot

MS = 1_000_000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def frame_of(renderable: RenderableType, width: int = 80) -> list[str]:
    """One frame as a terminal of ``width`` columns shows it, line by line."""
    console = Console(
        width=width, file=io.StringIO(), color_system=None, legacy_windows=False
    )
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.splitlines()]


def earlier(snapshot: Snapshot, seconds: float = 1.0) -> Snapshot:
    """The same process ``seconds`` before, when every greenlet had done less."""
    return dataclasses.replace(
        snapshot,
        monotonic_ns=snapshot.monotonic_ns - int(seconds * 1e9),
        greenlets=[
            dataclasses.replace(
                g, switches=max(0, g.switches - 2), run_ns=g.run_ns // 2
            )
            for g in snapshot.greenlets
        ],
    )


def row_of(lines: list[str], greenlet_id: int, label: str) -> str:
    rows = [ln for ln in lines if ln.split()[:2] == [str(greenlet_id), label]]
    assert len(rows) == 1, (greenlet_id, label, lines)
    return rows[0]


def test_live_frame_shows_the_top_rows_and_the_tree_in_80_columns(
    snapshot: Snapshot,
) -> None:
    lines = frame_of(views.live_view(snapshot, earlier(snapshot)))
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    # The top part: every greenlet a row of its own, busiest first, with rates.
    header = next(ln for ln in lines if ln.split()[:2] == ["id", "greenlet"])
    assert header.split() == [
        "id",
        "greenlet",
        "st",
        "thread",
        "switches",
        "run",
        "sw/s",
        "busy",
    ]
    assert row_of(lines, 2, "worker-1").split()[2:5] == ["‖", "MainThread", "12"]
    assert row_of(lines, 10, "main").split()[2:4] == ["▶", "worker-thread"]
    assert "rates over 1.00 s" in text
    top = lines.index(header)
    tree = lines.index("greenlet tree")
    assert top < tree
    ids_in_top = [
        int(ln.split()[0]) for ln in lines[top + 2 : tree] if ln[:3].strip().isdigit()
    ]
    assert ids_in_top[:2] == [5, 10]  # by run time gained
    assert sorted(ids_in_top) == sorted(g.id for g in snapshot.greenlets)
    # The tree part: one tree per thread, with states, names and locations.
    below = "\n".join(lines[tree:])
    assert "Thread MainThread (1001) · 5 greenlets" in below
    assert "Thread worker-thread (2002) · 2 greenlets" in below
    assert "‖ suspended  worker-1 #2 (Greenlet)" in below
    assert "at app/crawler.py:42 in fetch_page" in below
    assert "└── ‖ suspended  bg-task #11" in below


def test_live_frame_caps_rows_and_tree(snapshot: Snapshot) -> None:
    lines = frame_of(views.live_view(snapshot, rows=3, tree_limit=2))
    tree = lines.index("greenlet tree")
    top_rows = [ln for ln in lines[:tree] if ln[:3].strip().isdigit()]
    assert len(top_rows) == 3
    assert "rates over" not in "\n".join(lines)  # nothing to compare with
    assert any(ln.startswith("… ") and "more greenlets not shown" in ln for ln in lines)


def test_live_frame_ignores_a_previous_snapshot_it_cannot_compare(
    snapshot: Snapshot,
) -> None:
    other_process = dataclasses.replace(earlier(snapshot), pid=1)
    newer = dataclasses.replace(snapshot, monotonic_ns=snapshot.monotonic_ns + 1)
    for previous in (other_process, newer):
        text = "\n".join(frame_of(views.live_view(snapshot, previous)))
        assert "rates over" not in text and "sw/s" not in text


def test_live_frame_of_a_program_without_greenlets_yet(snapshot: Snapshot) -> None:
    empty = dataclasses.replace(snapshot, greenlets=[], threads=[])
    lines = frame_of(views.live_view(empty))
    assert "greenlet tree" in lines and "(no greenlets)" in lines


def test_top_view_is_compact_below_100_columns(snapshot: Snapshot) -> None:
    view = views.top_view(snapshot, earlier(snapshot), sort="switches", rows=4)
    narrow, wide = frame_of(view, 80), frame_of(view, 120)
    assert max(map(len, narrow)) <= 80
    assert not any("┃" in ln for ln in narrow)
    assert any("┃ id ┃ greenlet" in ln for ln in wide)
    assert any("suspended" in ln for ln in wide)
    for lines in (narrow, wide):
        assert lines[-1] == "q or Ctrl-C quits · sorted by switch rate"


def test_programs_table_and_uptime() -> None:
    assert [views.uptime(s) for s in (0, 59, 61, 3600 * 2 + 300, 86400 * 4 + 3600)] == [
        "0s",
        "59s",
        "1m 01s",
        "2h 05m",
        "4d 01h",
    ]
    lines = frame_of(
        views.programs_table(
            [
                {"pid": 12, "argv": ["app.py", "-x"], "greenlets": 7, "uptime": 61.5},
                {"pid": 13, "error": "refused"},
            ]
        )
    )
    assert lines[0].split() == ["PID", "GREENLETS", "UPTIME", "COMMAND"]
    assert lines[1].split() == ["12", "7", "1m", "01s", "app.py", "-x"]
    assert lines[2].split() == ["13", "?", "?", "refused"]


def test_trim_keeps_live_greenlets_and_their_ancestors(snapshot: Snapshot) -> None:
    kept, omitted = views.trim(snapshot, 3)
    ids = {g.id for g in kept.greenlets}
    # Main greenlets first, then the live ones; a kept child brings its parent.
    assert {1, 10, 20} <= ids
    assert omitted == len(snapshot.greenlets) - len(ids)
    index = kept.by_id()
    for g in kept.greenlets:
        assert g.parent_id is None or g.parent_id in index
    same, none = views.trim(snapshot, 100)
    assert same is snapshot and none == 0


def test_exit_report_leaves_long_timelines_to_the_files(snapshot: Snapshot) -> None:
    many = Recording(
        start_ns=0,
        end_ns=10 * MS,
        events=[],
        greenlets={},
        pid=snapshot.pid,
    )
    text = "\n".join(frame_of(views.report(snapshot, many, width=80)))
    assert text.startswith("greenlets at exit")
    assert "Thread MainThread" in text
    crowded = dataclasses.replace(
        snapshot,
        greenlets=[
            *snapshot.greenlets,
            *(
                GreenletInfo(id=100 + n, state="suspended", thread_id=1001, parent_id=1)
                for n in range(views.TREE_LIMIT + 5)
            ),
        ],
    )
    text = "\n".join(frame_of(views.report(crowded, None, width=80)))
    assert "more greenlets not shown" in text


# --- end to end: run --live in a terminal ----------------------------------------


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_live_in_a_terminal_refreshes_top_and_tree(runtime: Path) -> None:
    """In an 80-column terminal the live view shows the top rows and the tree."""
    import fcntl
    import struct
    import termios

    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    env = clean_env(runtime)
    env.pop("COLUMNS", None)
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greentrace",
            "run",
            "--live",
            str(HANG),
            "--seconds",
            "2",
        ],
        cwd=str(runtime),
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the terminal closed: the program is gone
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        os.close(primary)
    text = ANSI.sub("", seen.decode("utf-8", "replace"))
    assert code == 0, text[-3000:]
    assert "unblocked" in text
    # The live frames (before the exit report) show both views.
    live = text.split("greenlets at exit")[0]
    assert "greenlet tree" in live, live[-3000:]
    assert "greentrace run --live" in live
    assert "switches" in live and "busy" in live
    assert "blocker #5" in live and "waiter-1 #2" in live
    assert "greenlets at exit" in text


def test_top_once_table_fits_the_terminal(snapshot: Snapshot) -> None:
    table = views.fitted_top_table(snapshot, None, rows=3)
    narrow, wide = frame_of(table, 80), frame_of(table, 100)
    assert max(map(len, narrow)) <= 80 and not any("┃" in ln for ln in narrow)
    assert any("┃ id ┃" in ln for ln in wide)
    assert sum(ln.lstrip()[:2].strip().isdigit() for ln in narrow) == 3
