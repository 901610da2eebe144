"""Running ``greentrace`` and example programs in subprocesses, with bounded waits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CRAWLER = EXAMPLES / "crawler.py"
HANG = EXAMPLES / "hang.py"
_T = TypeVar("_T")
NOBODY = 65534
"""uid and gid of the nobody user, whom the tests become to be somebody else."""


def clean_env(runtime: Path) -> dict[str, str]:
    """The environment of a child: installed packages only, sockets under ``runtime``."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONSTARTUP", None)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONFAULTHANDLER"] = "1"
    env["COLUMNS"] = "100"
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return env


def default_sigint() -> None:
    """In a child before exec: Ctrl-C (SIGINT) does what it does by default."""
    # A shell may start us with SIGINT ignored; the programs must get Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def greentrace(
    runtime: Path, *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m greentrace ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "greentrace", *args],
        cwd=str(cwd or runtime),  # never the repository root: its greenlet/ has no .so
        env=clean_env(runtime),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=default_sigint,
    )


def poll(
    check: Callable[[], _T | None], timeout: float = 20, what: str = "condition"
) -> _T:
    """Call ``check`` until it returns something other than None (or raise on timeout)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def request(path: Path, payload: bytes, timeout: float = 10) -> list[dict[str, Any]]:
    """Send raw bytes to an inspector socket, half-close, return every answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    return [json.loads(line) for line in data.splitlines() if line.strip()]


class Program:
    """``greentrace run --serve SCRIPT ARGS`` in the background, inspectable once started."""

    def __init__(
        self,
        runtime: Path,
        script: Path,
        *args: str,
        run_options: tuple[str, ...] = (),
        stderr_file: Path | None = None,
    ) -> None:
        self.runtime = runtime
        self._stderr = stderr_file.open("w") if stderr_file is not None else None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "greentrace",
                "run",
                "--serve",
                *run_options,
                str(script),
                *args,
            ],
            cwd=str(runtime),
            env=clean_env(runtime),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr if self._stderr is not None else subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,  # noqa: PLW1509 (async-signal-safe: one signal() call)
        )
        self.pid = self.proc.pid
        self.socket = runtime / "greentrace" / f"{self.pid}.sock"
        self.output: tuple[str, str] | None = None

    def __enter__(self) -> Self:
        try:
            poll(self._ready, what=f"pid {self.pid} to serve")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ready(self) -> bool | None:
        if self.proc.poll() is not None:
            out, err = self.proc.communicate()
            raise AssertionError(
                f"program exited with {self.proc.returncode}:\n{out}\n{err}"
            )
        if not self.socket.exists():
            return None
        try:
            answers = request(self.socket, b'{"v":1,"op":"ping"}\n')
        except OSError:
            return None
        return True if answers and answers[0].get("ok") else None

    def snapshot(self) -> dict[str, Any]:
        """The program's snapshot, straight from the protocol."""
        answers = request(self.socket, b'{"v":1,"op":"snapshot"}\n')
        assert answers[0]["ok"], answers
        return answers[0]["result"]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> tuple[str, str]:
        """End the program with ``sig`` and return its (stdout, stderr)."""
        if self.output is not None:
            return self.output
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.output = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output = self.proc.communicate()
        if self._stderr is not None:
            self._stderr.close()
        return self.output


def python_for_nobody() -> str:
    """An interpreter the nobody user may execute (sys.executable may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run(
                [candidate, "-c", "pass"],
                preexec_fn=drop_to_nobody,
                capture_output=True,
                timeout=30,
                cwd="/",
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate
    raise AssertionError("no Python interpreter executable by nobody")


def drop_to_nobody() -> None:
    """In a child before exec: become the nobody user (the parent must be root)."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


_default_sigint = default_sigint  # the name it had before
