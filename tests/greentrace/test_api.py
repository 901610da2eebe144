"""The in-code API of greentrace, each call in a program of its own."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from procs import clean_env

PROGRAM_HEAD = """
import os, signal, sys, threading, time
import greenlet
import greentrace

def park():
    greenlet.getcurrent().parent.switch()
"""


def run_program(
    tmp_path: Path, body: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM_HEAD + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=str(tmp_path),
        env=clean_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_importing_greentrace_loads_neither_greenlet_nor_rich(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, greentrace; "
                "print(sorted(m for m in ('greenlet', 'rich') if m in sys.modules))"
            ),
        ],
        cwd=str(tmp_path),
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_install_dump_signal_prints_every_stack_to_stderr(tmp_path: Path) -> None:
    proc = run_program(
        tmp_path,
        """
        waiter = greenlet.greenlet(park)
        waiter.gr_name = "parked-one"
        waiter.switch()
        before = greentrace.install_dump_signal(signal.SIGUSR2)
        print("previous handler:", before == signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.1)  # the handler runs between bytecodes
        print("still running")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["previous handler: True", "still running"]
    err = proc.stderr
    assert "Thread MainThread" in err
    assert "parked-one #" in err
    assert "greenlet.getcurrent().parent.switch()" in err  # the waiter's line
    assert 'program.py", line' in err and "os.kill(os.getpid(), signal.SIGUSR2)" in err


def test_watch_blocking_reports_to_stderr_by_default(tmp_path: Path) -> None:
    proc = run_program(
        tmp_path,
        """
        dog = greentrace.watch_blocking(0.1)
        waiter = greenlet.greenlet(park)
        waiter.switch()
        def stuck():
            time.sleep(0.5)  # holds the thread
        culprit = greenlet.greenlet(stuck)
        culprit.gr_name = "culprit"
        culprit.switch()
        waiter.throw(greenlet.GreenletExit)  # nobody waits any more
        time.sleep(0.3)  # so holding the thread now blocks nobody
        dog.stop()
        print("reports:", len(dog.reports))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "reports: 1"
    err = proc.stderr
    blocked = re.search(
        r"greentrace: blocking: greenlet culprit #(\d+) has held thread MainThread for "
        r"[\d.]+ ms without switching \(threshold 100 ms\)",
        err,
    )
    assert blocked, err
    assert "time.sleep(0.5)  # holds the thread" in err[blocked.end() :]
    released = re.search(
        rf"blocking: greenlet culprit #{blocked.group(1)} released thread MainThread "
        r"after ([\d.]+) ms",
        err,
    )
    assert released, err
    assert float(released.group(1)) >= 500


def test_print_tree_before_and_after_the_first_greenlet(tmp_path: Path) -> None:
    proc = run_program(
        tmp_path,
        """
        greentrace.print_tree()
        g = greenlet.greenlet(park)
        g.gr_name = "first"
        g.switch()
        greentrace.print_tree()
        """,
    )
    assert proc.returncode == 0, proc.stderr
    first, _, rest = proc.stdout.partition("\n")
    assert re.fullmatch(r"greentrace: no greenlets in pid \d+ yet", first), first
    assert rest.startswith("Thread MainThread")
    assert "running  main #" in rest and "suspended  first #" in rest
