"""``greentrace leaks PID``: growth by spawn site and state, unit and end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from greentrace.growth import MAIN_SITE, NO_SITES_HINT, compare, render_growth, site_of
from greentrace.model import FrameInfo, GreenletInfo, Snapshot

LEAK_PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "leak.py"
HANDLE_FRAME = re.compile(r"examples/leak\.py:\d+ in (Pool\.)?handle\s*$")

HANDLE = [FrameInfo("/srv/app/pool.py", 38, "Pool.handle")]
TIMER = [FrameInfo("/srv/app/timers.py", 12, "schedule")]
WAIT = [
    FrameInfo("/srv/app/pool.py", 47, "Pool.wait_reply", "return hub.switch()"),
    FrameInfo("/srv/app/pool.py", 55, "serve_request", "answer = fetch()"),
]


def worker(gid: int, spawn=HANDLE, state="suspended", switches=1) -> GreenletInfo:
    return GreenletInfo(
        id=gid,
        state=state,
        name=f"request-{gid}",
        run_name="serve_request",
        thread_id=1,
        parent_id=1,
        switches=switches,
        spawn_site=spawn,
        stack=WAIT if state == "suspended" else [],
    )


def snap(greenlets: list[GreenletInfo], at_ns: int) -> Snapshot:
    main = GreenletInfo(id=1, state="running", thread_id=1, is_main=True)
    return Snapshot(
        taken_at=at_ns / 1e9, monotonic_ns=at_ns, pid=4242, greenlets=[main, *greenlets]
    )


def text(renderable) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_groups_that_grew_biggest_first_with_the_oldest_suspended() -> None:
    before = snap([worker(5), worker(9), worker(20, TIMER), worker(21, TIMER)], 0)
    after = snap(
        [
            worker(5),  # still there, no switch: stuck
            worker(9, switches=4),  # switched meanwhile
            worker(30),
            worker(31),
            worker(32, TIMER, state="unstarted"),
            worker(21, TIMER),  # 20 finished: the timer group shrank
        ],
        2_000_000_000,
    )
    growth = compare(before, after, oldest=2)
    assert [(r.site, r.state, r.before, r.after, r.delta) for r in growth.rows] == [
        ("app/pool.py:38 in Pool.handle", "suspended", 2, 4, 2),
        ("app/timers.py:12 in schedule", "unstarted", 0, 1, 1),
    ]
    assert [g.id for g in growth.oldest] == [5, 9]
    assert growth.stuck_ids >= {5} and 9 not in growth.stuck_ids
    assert (growth.total_before, growth.total_after) == (5, 7)
    assert growth.interval_ns == 2_000_000_000
    shown = text(render_growth(growth))
    assert "pid 4242: 5 → 7 greenlets (+2) in 2.00 s" in shown
    assert "+2" in shown and "app/pool.py:38 in Pool.handle" in shown
    assert "oldest suspended greenlets of the groups that grew:" in shown
    assert (
        "#5 request-5  (greenlet.greenlet, 1 switches, no switch between the snapshots)"
        in shown
    )
    assert "#9 request-9  (greenlet.greenlet, 4 switches)" in shown
    assert "app/pool.py:47 in Pool.wait_reply" in shown
    assert "return hub.switch()" in shown
    data = json.loads(json.dumps(growth.to_dict()))
    assert data["grew"][0]["delta"] == 2
    assert [(g["id"], g["stuck"]) for g in data["oldest"]] == [(5, True), (9, False)]


def test_no_growth_and_unknown_sites() -> None:
    no_site = [worker(5, spawn=None), worker(6, spawn=None)]
    growth = compare(snap(no_site, 0), snap(no_site[:1], 10))
    assert growth.rows == []
    assert not growth.sites_known
    shown = text(render_growth(growth))
    assert "no group of greenlets grew" in shown
    assert NO_SITES_HINT[:40] in shown
    assert site_of(no_site[0]) == "serve_request (spawn site unknown)"
    assert site_of(snap([], 0).greenlets[0]) == MAIN_SITE


# --- end to end ---------------------------------------------------------------------


def env(runtime: Path) -> dict[str, str]:
    out = dict(os.environ)
    out.pop("PYTHONSTARTUP", None)
    out.update(
        XDG_RUNTIME_DIR=str(runtime),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONIOENCODING="utf-8",
        COLUMNS="120",
        NO_COLOR="1",
    )
    return out


def greentrace(
    runtime: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greentrace", *args],
        cwd=str(runtime),  # never the checkout: its greenlet/ has no extension
        env=env(runtime),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_serving(runtime: Path, proc: subprocess.Popen[str]) -> None:
    path = runtime / "greentrace" / f"{proc.pid}.sock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.settimeout(5)
                    sock.connect(str(path))
                    sock.sendall(b'{"v":1,"op":"ping"}\n')
                    if b'"ok":true' in sock.recv(4096):
                        return
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError("the leaking program never served")


def one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("greentrace: ")
    assert needle in lines[0], lines[0]


def test_leaks_command_on_a_leaking_program(runtime: Path) -> None:
    program = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greentrace",
            "run",
            "--serve",
            "--quiet",
            str(LEAK_PROGRAM),
            "--rate",
            "100",
            "--seconds",
            "120",
        ],
        cwd=str(runtime),
        env=env(runtime),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_serving(runtime, program)
        proc = greentrace(runtime, "leaks", str(program.pid), "--interval", "1")
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        head, table = out.split("\n", 1)
        assert head.startswith(f"pid {program.pid}: ")
        table, oldest = table.split(
            "oldest suspended greenlets of the groups that grew:"
        )
        # Python 3.10 has no qualified names for code: "handle", not "Pool.handle"
        grown = [line for line in table.splitlines() if HANDLE_FRAME.search(line)]
        assert len(grown) == 1, out
        growth, before, after, *_ = grown[0].split()
        assert growth.startswith("+") and int(growth[1:]) >= 1
        assert int(after) - int(before) == int(growth[1:])
        assert "suspended" in grown[0] and "examples/leak.py:" in grown[0]
        assert oldest.count(" request-") == 3
        assert re.search(r"leak.py:\d+ in (Pool\.)?wait_reply", oldest), oldest
        assert "in fetch_slow_resource" in oldest
        assert "no switch between the snapshots" in oldest

        proc = greentrace(
            runtime,
            "leaks",
            str(program.pid),
            "--interval",
            "0.5",
            "--json",
            "--oldest",
            "1",
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["pid"] == program.pid
        assert any(
            HANDLE_FRAME.search(row["site"]) and row["delta"] > 0
            for row in data["grew"]
        )
        assert len(data["oldest"]) == 1
        assert data["oldest"][0]["stack"][0]["function"].endswith("wait_reply")
    finally:
        program.send_signal(signal.SIGTERM)
        try:
            program.wait(30)
        except subprocess.TimeoutExpired:
            program.kill()
            program.wait()


def test_leaks_command_bad_input_is_one_line(runtime: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    one_line_error(
        greentrace(runtime, "leaks", str(gone.pid), "--interval", "0.1"),
        f"no process with pid {gone.pid}",
    )
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        one_line_error(
            greentrace(runtime, "leaks", str(sleeper.pid), "--interval", "0.1"),
            f"process {sleeper.pid} is not serving greentrace",
        )
        one_line_error(
            greentrace(runtime, "leaks", str(sleeper.pid), "--oldest", "-1"),
            "--oldest must be 0 or more",
        )
    finally:
        sleeper.kill()
        sleeper.wait()


def test_leak_example_reports_its_leak_in_process(runtime: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(LEAK_PROGRAM), "--report", "--requests", "10"],
        cwd=str(runtime),
        env=env(runtime),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.startswith("2 greenlets leaked")  # requests 5 and 10 lost their reply
    assert "'request-5'" in out and "'request-10'" in out
    assert re.search(
        r"in (Pool\.)?wait_reply\n\s+return getcurrent\(\)\.parent\.switch\(\)", out
    )
    assert re.search(
        r"spawned at \(innermost first\):\n\s+File .*leak.py\", line \d+, in (Pool\.)?handle",
        out,
    )
    chain = out.split("kept alive by:")[1]
    assert re.search(
        r"module __main__ .*\n\s+\.POOL -> __main__\.Pool\n\s+\.waiting -> dict of 2\n\s+\[5\] -> greenlet #\d+ 'request-5'",
        chain,
    )
