"""The greentrace command line, end to end through subprocesses on examples/."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import CRAWLER, HANG, Program, clean_env, default_sigint, greentrace, poll
from trace_format import assert_valid

from greentrace.model import GreenletInfo, Recording, Snapshot

pytest.importorskip("greenlet")


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short private directory: XDG_RUNTIME_DIR of the children (socket paths stay short)."""
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The failure is one line on stderr, nonzero, no traceback."""
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("greentrace: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- run ------------------------------------------------------------------------------


def test_run_crawler_prints_report_and_writes_trace_and_svg(runtime: Path) -> None:
    trace, svg = runtime / "crawl.json", runtime / "crawl.svg"
    proc = greentrace(
        runtime, "run", "--trace", str(trace), "--svg", str(svg), str(CRAWLER)
    )
    assert proc.returncode == 0, proc.stderr
    assert "round 1: fetched 39 pages" in proc.stdout
    err = proc.stderr
    assert "greenlets at exit" in err
    assert "busiest greenlets" in err
    assert "switch timeline" in err
    for name in ("crawler #", "worker-1 #", "worker-2 #", "fetch /"):
        assert name in err, name
    document = json.loads(trace.read_text())
    assert_valid(document)
    recording = Recording.from_dict(document["greentrace"])
    labels = {m.label for m in recording.greenlets.values()}
    assert {"crawler", "worker-1", "worker-2", "worker-3"} <= labels
    tracks = {
        e["args"]["name"] for e in document["traceEvents"] if e["name"] == "thread_name"
    }
    assert any(t.startswith("worker-1 #") for t in tracks)
    picture = svg.read_text()
    assert picture.startswith("<svg") and "worker" in picture


def test_run_passes_arguments_argv_and_path_like_python(runtime: Path) -> None:
    (runtime / "helper_mod.py").write_text("VALUE = 42\n")
    script = write(
        runtime / "show.py",
        """
        import sys, helper_mod
        print(repr(sys.argv), helper_mod.VALUE, __name__)
        """,
    )
    proc = greentrace(runtime, "run", str(script), "a", "--trace", "b", cwd=Path("/"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"[{str(script)!r}, 'a', '--trace', 'b'] 42 __main__"
    assert not (Path("/") / "b").exists()


def test_run_module_with_dash_m(runtime: Path) -> None:
    package = runtime / "pkg_demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(
        package / "__main__.py",
        """
        import sys
        import greenlet
        g = greenlet.greenlet(lambda x: x * 2)
        print("result", g.switch(21), sys.argv[1:])
        """,
    )
    proc = greentrace(runtime, "run", "-m", "pkg_demo", "x", "y")
    assert proc.returncode == 0, proc.stderr
    assert "result 42 ['x', 'y']" in proc.stdout
    assert "start" in proc.stderr and "greenlets at exit" in proc.stderr


@pytest.mark.parametrize(
    "body, status, needle",
    [
        ("raise SystemExit(3)", 3, "greenlets at exit"),
        ("import sys; sys.exit('bye now')", 1, "bye now"),
        ("raise ValueError('boom')", 1, "ValueError: boom"),
    ],
)
def test_run_reports_however_the_program_ends(
    runtime: Path, body: str, status: int, needle: str
) -> None:
    script = write(
        runtime / "ends.py",
        f"""
        import greenlet
        parked = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
        parked.gr_name = "parked"
        parked.switch()
        {body}
        """,
    )
    proc = greentrace(runtime, "run", str(script))
    assert proc.returncode == status, proc.stderr
    assert needle in proc.stderr
    assert "parked #" in proc.stderr and "busiest greenlets" in proc.stderr
    if "ValueError" in body:
        assert 'ends.py", line 6' in proc.stderr
        assert "runner.py" not in proc.stderr and "runpy" not in proc.stderr


def test_run_on_ctrl_c_reports_the_hung_program(runtime: Path) -> None:
    with Program(runtime, HANG) as program:
        blocked(program)
        out, err = program.stop(signal.SIGINT)
    assert program.proc.returncode == 130, err
    assert "blocking with 3 greenlets waiting" in out
    assert "greentrace: interrupted" in err
    for name in ("waiter-1", "waiter-2", "waiter-3", "blocker"):
        assert f"{name} #" in err
    assert "Traceback" not in err
    assert not program.socket.exists()  # removed at exit


def test_dump_signal_prints_every_stack(runtime: Path) -> None:
    log = runtime / "stderr.txt"
    with Program(runtime, HANG, stderr_file=log) as program:
        blocked(program)
        program.proc.send_signal(signal.SIGUSR1)
        poll(
            lambda: True if "event.wait()" in log.read_text() else None, what="the dump"
        )
        program.stop(signal.SIGTERM)
    assert program.proc.returncode == 128 + signal.SIGTERM
    dump, _, report = log.read_text().partition("greenlets at exit")
    assert "hub.switch()" in dump  # the waiters' suspended line
    assert "time.sleep(0.05)" in dump  # the blocker's running line
    assert dump.count('File "') >= 6
    assert "busiest greenlets" in report  # SIGTERM ends it like sys.exit: reported


def blocked(program: Program) -> None:
    """Wait until the hang example is stuck in its blocker."""

    def stuck() -> bool | None:
        greenlets = program.snapshot()["greenlets"]
        return (
            True
            if any(
                g["name"] == "blocker" and g["state"] == "running" for g in greenlets
            )
            else None
        )

    poll(stuck, what="the blocker")


def test_run_bad_target_is_one_line(runtime: Path) -> None:
    one_line_error(
        greentrace(runtime, "run", str(runtime / "missing.py")), "missing.py"
    )
    one_line_error(
        greentrace(runtime, "run", "-m", "no_such_module_here"), "no_such_module_here"
    )
    one_line_error(greentrace(runtime, "run"), "SCRIPT")


def test_run_serve_in_a_foreign_directory_runs_unserved(runtime: Path) -> None:
    directory = runtime / "greentrace"
    directory.mkdir()
    os.chown(directory, 65534, 65534)
    script = write(runtime / "ok.py", "print('ran')\n")
    proc = greentrace(runtime, "run", "--serve", str(script))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ran\n"
    assert (
        "greentrace: not serving:" in proc.stderr
        and "belongs to uid 65534" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_no_command_prints_usage(runtime: Path) -> None:
    proc = greentrace(runtime)
    assert proc.returncode == 2 and "usage:" in proc.stderr


# --- view -----------------------------------------------------------------------------


def test_view_renders_snapshots_recordings_and_traces(
    runtime: Path, snapshot: Snapshot, recording: Recording
) -> None:
    (runtime / "snap.json").write_text(snapshot.to_json())
    proc = greentrace(runtime, "view", str(runtime / "snap.json"))
    assert proc.returncode == 0, proc.stderr
    assert "worker-1 #2" in proc.stdout and "Thread MainThread" in proc.stdout
    stacks = greentrace(runtime, "view", "--stacks", str(runtime / "snap.json"))
    assert "data = sock.recv(4096)" in stacks.stdout
    (runtime / "rec.json").write_text(recording.to_json())
    proc = greentrace(runtime, "view", str(runtime / "rec.json"))
    assert proc.returncode == 0, proc.stderr
    assert "switch timeline" in proc.stdout and "busiest greenlets" in proc.stdout


@pytest.mark.parametrize(
    "content, needle",
    [
        ('{"schema": 1, "kind": "snapshot", "taken_at": 1', "truncated"),
        ("not json at all", "not valid JSON"),
        ("[1, 2]", "not a valid greentrace file"),
        ('{"schema": 99, "kind": "recording"}', "schema"),
        ('{"schema": 1, "kind": "recording", "start_ns": 0}', "end_ns"),
        ('{"traceEvents": []}', "Perfetto"),
        (
            '{"schema": 1, "kind": "recording", "start_ns": 0, "end_ns": 5, "events": [[1, "switch", 1]]}',
            "event",
        ),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_view_rejects_bad_files_in_one_line(
    runtime: Path, content: str | bytes, needle: str
) -> None:
    path = runtime / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    one_line_error(greentrace(runtime, "view", str(path)), needle)


def test_view_missing_file(runtime: Path) -> None:
    one_line_error(
        greentrace(runtime, "view", str(runtime / "nope.json")), "cannot read"
    )


# --- inspecting running programs ------------------------------------------------------


def _greenlets(data: dict) -> dict[int, GreenletInfo]:
    return Snapshot.from_dict(data).by_id()


def test_tree_shows_the_worker_hierarchy(runtime: Path) -> None:
    with Program(runtime, CRAWLER, "--rounds", "0") as program:

        def crawling() -> dict | None:
            snap = _greenlets(program.snapshot())
            names = {g.name for g in snap.values()}
            fetching = any(
                (g.name or "").startswith("fetch ") and g.state != "dead"
                for g in snap.values()
            )
            return (
                snap
                if {"worker-1", "worker-2", "worker-3"} <= names and fetching
                else None
            )

        snap = poll(crawling, what="the crawl")
        by_name = {g.name: g for g in snap.values() if g.name}
        crawler = by_name["crawler"]
        assert snap[crawler.parent_id].is_main
        for n in (1, 2, 3):
            assert by_name[f"worker-{n}"].parent_id == crawler.id
        fetches = [
            g
            for g in snap.values()
            if (g.name or "").startswith("fetch ") and g.state != "dead"
        ]
        assert all(snap[f.parent_id].name.startswith("worker-") for f in fetches)
        assert all(f.spawn_site for f in fetches)

        proc = greentrace(runtime, "tree", str(program.pid))
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout
        assert "Thread MainThread" in text
        assert re.search(r"├── .*crawler #\d+|└── .*crawler #\d+", text)
        # Workers are drawn one level deeper than the crawler.
        crawler_col = next(
            line.index("crawler #") for line in text.splitlines() if "crawler #" in line
        )
        for line in text.splitlines():
            if re.search(r"worker-\d #", line):
                assert line.index("worker-") > crawler_col
        picture = runtime / "tree.svg"
        drawn = greentrace(runtime, "tree", str(program.pid), "--svg", str(picture))
        assert drawn.returncode == 0 and picture.read_text().startswith("<svg")
        assert "crawler" in picture.read_text()
        as_json = greentrace(runtime, "tree", str(program.pid), "--json")
        assert as_json.returncode == 0, as_json.stderr
        assert Snapshot.from_json(as_json.stdout).pid == program.pid


def test_stacks_of_the_hung_program(runtime: Path) -> None:
    with Program(runtime, HANG) as program:
        blocked(program)
        proc = greentrace(runtime, "stacks", str(program.pid))
        assert proc.returncode == 0, proc.stderr
        blocks = proc.stdout.split("\n\n")
        blocker = next(b for b in blocks if "blocker #" in b)
        assert "▶ running" in blocker
        assert "in blocker" in blocker and "time.sleep(0.05)" in blocker
        waiters = [b for b in blocks if "waiter-" in b]
        assert len(waiters) == 3
        for block in waiters:
            assert "‖ suspended" in block
            assert re.search(r"in (Event\.)?wait\n", block) and "hub.switch()" in block
            assert "event.wait()" in block
        main = next(b for b in blocks if "main #" in b)
        assert "stuck.switch(args.seconds)" in main
        assert "runner.py" not in proc.stdout and "runpy" not in proc.stdout
        as_json = json.loads(
            greentrace(runtime, "stacks", str(program.pid), "--json").stdout
        )
        lines = {f["line"] for g in as_json["greenlets"] for f in g["stack"]}
        assert "hub.switch()" in lines


def test_top_once_and_iterations(runtime: Path) -> None:
    with Program(runtime, CRAWLER, "--rounds", "0") as program:
        once = greentrace(runtime, "top", str(program.pid), "--once")
        assert once.returncode == 0, once.stderr
        assert f"greenlets of pid {program.pid}" in once.stdout
        assert "main" in once.stdout
        twice = greentrace(
            runtime,
            "top",
            str(program.pid),
            "--iterations",
            "2",
            "--interval",
            "0.1",
            "--sort",
            "switches",
        )
        assert twice.returncode == 0, twice.stderr
        assert twice.stdout.count(f"greenlets of pid {program.pid}") == 2
        assert "sw/s" in twice.stdout  # rates once a previous snapshot exists


def test_record_a_running_program(runtime: Path) -> None:
    trace, svg = runtime / "rec.json", runtime / "rec.svg"
    with Program(runtime, CRAWLER, "--rounds", "0") as program:
        proc = greentrace(
            runtime,
            "record",
            str(program.pid),
            "--seconds",
            "0.3",
            "--trace",
            str(trace),
            "--svg",
            str(svg),
        )
        assert proc.returncode == 0, proc.stderr
        shown = greentrace(runtime, "record", str(program.pid), "--seconds", "0.2")
        assert shown.returncode == 0, shown.stderr
    document = json.loads(trace.read_text())
    assert_valid(document)
    recording = Recording.from_dict(document["greentrace"])
    assert recording.events and recording.pid == program.pid
    assert 0.3e9 <= recording.end_ns - recording.start_ns < 5e9
    assert svg.read_text().startswith("<svg")
    assert "busiest greenlets" in proc.stdout
    assert "switch timeline" in shown.stdout and "worker-" in shown.stdout
    view = greentrace(runtime, "view", str(trace))
    assert view.returncode == 0 and "switch timeline" in view.stdout


def test_record_when_the_program_exits_meanwhile(runtime: Path) -> None:
    with Program(runtime, CRAWLER, "--rounds", "0") as program:
        recorder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "greentrace",
                "record",
                str(program.pid),
                "--seconds",
                "30",
            ],
            cwd=str(runtime),
            env=clean_env(runtime),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            poll(lambda: _connected(recorder.pid), what="the recorder to connect")
            program.stop(signal.SIGTERM)
            _, err = recorder.communicate(timeout=30)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
    assert recorder.returncode != 0
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == f"greentrace: process {program.pid} exited during the recording", err


def _connected(pid: int) -> bool | None:
    """True once process ``pid`` holds a socket (the recorder connects, then sends at once)."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        links = [os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)]
    except OSError:
        return None
    return True if any(link.startswith("socket:") for link in links) else None


def test_ps_lists_programs_and_cleans_stale_sockets(runtime: Path) -> None:
    directory = runtime / "greentrace"
    with Program(runtime, HANG) as program:
        stale = directory / f"{dead_pid()}.sock"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(stale))
        proc = greentrace(runtime, "ps")
        assert proc.returncode == 0, proc.stderr
        row = next(
            line
            for line in proc.stdout.splitlines()
            if line.strip().startswith(str(program.pid))
        )
        assert "hang.py" in row
        assert re.search(rf"{program.pid}\s+5\s+\d+s\s", row), row
        assert "removed 1 stale socket" in proc.stderr
        assert not stale.exists()
        data = json.loads(greentrace(runtime, "ps", "--json").stdout)
        assert [d["pid"] for d in data] == [program.pid]
    empty = greentrace(runtime, "ps")
    assert empty.returncode == 0 and "no inspectable programs" in empty.stderr


def test_bad_pids_and_sockets_are_one_line(runtime: Path) -> None:
    gone = dead_pid()
    one_line_error(
        greentrace(runtime, "tree", str(gone)), f"no process with pid {gone}"
    )
    one_line_error(greentrace(runtime, "stacks", str(os.getpid())), "not serving")
    bad = greentrace(runtime, "tree", "abc")
    assert bad.returncode == 2 and "not a process id" in bad.stderr
    directory = runtime / "greentrace"
    directory.mkdir(mode=0o700)
    # A socket left by a program that is gone: reported and removed.
    stale_pid = dead_pid()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(directory / f"{stale_pid}.sock"))
    one_line_error(
        greentrace(runtime, "top", str(stale_pid), "--once"), "gone", "stale"
    )
    assert not (directory / f"{stale_pid}.sock").exists()
    # A live process whose socket nobody listens on.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(directory / f"{sleeper.pid}.sock"))
        one_line_error(
            greentrace(runtime, "tree", str(sleeper.pid)), "not serving", "stale"
        )
        # A socket that belongs to someone else is never used.
        os.chown(directory / f"{sleeper.pid}.sock", 65534, 65534)
        one_line_error(
            greentrace(runtime, "record", str(sleeper.pid), "--seconds", "1"),
            "belongs to uid 65534",
        )
        # Something that is not a socket at all.
        os.unlink(directory / f"{sleeper.pid}.sock")
        (directory / f"{sleeper.pid}.sock").write_text("")
        one_line_error(greentrace(runtime, "stacks", str(sleeper.pid)), "not a socket")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_run_live_without_a_terminal_still_reports(runtime: Path) -> None:
    proc = greentrace(runtime, "run", "--live", str(CRAWLER), "--rounds", "2")
    assert proc.returncode == 0, proc.stderr
    assert "round 2: fetched" in proc.stdout
    assert "greenlets at exit" in proc.stderr


def test_saved_tree_json_views_again(runtime: Path) -> None:
    with Program(runtime, HANG) as program:
        blocked(program)
        saved = greentrace(runtime, "stacks", str(program.pid), "--json")
    path = runtime / "saved.json"
    path.write_text(saved.stdout)
    proc = greentrace(runtime, "view", "--stacks", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "blocker #" in proc.stdout and "time.sleep(0.05)" in proc.stdout


def test_top_in_a_terminal_quits_on_q(runtime: Path) -> None:
    import pty
    import select

    with Program(runtime, CRAWLER, "--rounds", "0") as program:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover (the child)
            os.chdir(runtime)
            os.execve(
                sys.executable,
                [
                    sys.executable,
                    "-m",
                    "greentrace",
                    "top",
                    str(program.pid),
                    "--interval",
                    "0.2",
                ],
                clean_env(runtime),
            )
        seen = b""
        status = None
        asked = False
        deadline = time.monotonic() + 30
        try:
            while status is None and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    with contextlib.suppress(OSError):
                        seen += os.read(fd, 65536)
                if not asked and seen.count(b"greenlets of pid") >= 2:
                    os.write(fd, b"q")
                    asked = True
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(code)
        finally:
            if status is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
    assert status == 0, seen[-2000:]
    assert b"q or Ctrl-C quits" in seen
    assert b"rates over" in seen


def test_top_ends_on_ctrl_c_without_a_traceback(runtime: Path) -> None:
    with Program(runtime, CRAWLER, "--rounds", "0") as program:
        top = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "greentrace",
                "top",
                str(program.pid),
                "--interval",
                "0.2",
            ],
            cwd=str(runtime),
            env=clean_env(runtime),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,  # noqa: PLW1509 (one signal() call)
        )
        try:
            assert top.stdout is not None
            first = top.stdout.readline()  # the title of the first table
            assert first.startswith(f"greenlets of pid {program.pid}"), first
            while "crawler" not in top.stdout.readline():
                pass  # a row of the table: top is showing the program
            top.send_signal(signal.SIGINT)
            out, err = top.communicate(timeout=30)
        finally:
            if top.poll() is None:
                top.kill()
                top.wait()
    assert top.returncode == 130
    assert err == ""  # not a traceback, not a word
    del out


def test_a_socket_served_by_another_user_is_refused(runtime: Path) -> None:
    """The socket file is ours, the program behind it is not: SO_PEERCRED tells."""
    from procs import drop_to_nobody, python_for_nobody

    if os.getuid() != 0:
        pytest.fail("the tests run as root, to become another user")
    elsewhere = Path(tempfile.mkdtemp(prefix="gt-nobody-", dir="/tmp"))
    os.chmod(elsewhere, 0o777)
    listener = subprocess.Popen(
        [
            python_for_nobody(),
            "-c",
            (
                "import socket, sys\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.bind(sys.argv[1]); s.listen(4)\n"
                "print('listening', flush=True)\n"
                "kept = []\n"
                "while True:\n"
                "    kept.append(s.accept()[0])  # says nothing, never fails\n"
            ),
            str(elsewhere / "s.sock"),
        ],
        preexec_fn=drop_to_nobody,  # noqa: PLW1509 (async-signal-safe calls only)
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "listening"
        directory = runtime / "greentrace"
        directory.mkdir(mode=0o700)
        ours = directory / f"{listener.pid}.sock"
        os.rename(elsewhere / "s.sock", ours)  # the bound socket moves with its inode
        os.chown(ours, os.getuid(), os.getgid())
        one_line_error(
            greentrace(runtime, "tree", str(listener.pid)),
            f"{ours} is served by another user: refusing it",
        )
        one_line_error(greentrace(runtime, "stacks", str(listener.pid)), "another user")
    finally:
        listener.kill()
        listener.wait()
        shutil.rmtree(elsewhere, ignore_errors=True)
