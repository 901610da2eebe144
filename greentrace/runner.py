"""``greentrace run``: run a program with observation on, then show what happened.

The program runs in this interpreter like ``python SCRIPT`` or ``python -m
MODULE`` would run it (``runpy``, ``sys.argv`` and ``sys.path[0]`` set the
same way), with spawn tracking and a switch recording on.  However it ends
(normally, ``sys.exit``, an exception or Ctrl-C), the greenlet tree and a
timeline summary go to stderr, and the trace and picture files are written.
"""

from __future__ import annotations

import dataclasses
import os
import runpy
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.text import Text

from .model import Recording, Snapshot

SPAWN_DEPTH = 8
HARVEST_INTERVAL = 0.002
HARVEST_SHARE = 0.02
"""The harvester waits at least HARVEST_INTERVAL, and long enough to use at most this share of the time."""
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class RunError(Exception):
    """The program could not be started."""


@dataclasses.dataclass
class RunOptions:
    """What ``greentrace run`` was asked to do."""

    script: str | None = None
    module: str | None = None
    args: list[str] = dataclasses.field(default_factory=list)
    trace: str | None = None
    svg: str | None = None
    live: bool = False
    serve: bool = False
    blocking: float | None = None
    dump_signal: bool = True
    capacity: int = 1 << 18
    quiet: bool = False


class _Background:
    """A hidden thread doing ``step`` every ``interval`` seconds until stopped.

    With a ``share``, the wait grows so that ``step`` takes at most that
    share of the time (cheap steps run often, costly ones less often).
    """

    def __init__(
        self,
        name: str,
        interval: float,
        step: Callable[[], None],
        share: float | None = None,
    ) -> None:
        self.interval = interval
        self.share = share
        self.step = step
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        from . import capture

        capture.mark_internal()
        try:
            wait = self.interval
            while not self.stopped.wait(wait):
                began = time.perf_counter()
                try:
                    self.step()
                except Exception:  # noqa: BLE001,S112 (an observer must not break the program)
                    continue
                if self.share is not None:
                    cost = time.perf_counter() - began
                    wait = min(1.0, max(self.interval, cost / self.share))
        finally:
            capture.unmark_internal()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(5)


class _LiveView:
    """The busiest greenlets and the tree, refreshing on the terminal while the program runs."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.previous: Snapshot | None = None
        redirect = sys.stdout.isatty()
        self.live = Live(
            Text("greentrace: starting…"),
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=redirect,
            redirect_stderr=redirect,
            vertical_overflow="crop",
        )
        self.worker = _Background("greentrace-live", 0.5, self.refresh)

    def refresh(self) -> None:
        from . import capture
        from .views import live_view

        snap = capture.snapshot(lines=False)
        self.live.update(live_view(snap, self.previous), refresh=True)
        self.previous = snap

    def start(self) -> None:
        self.live.start()
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        self.live.stop()


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """Skip the frames of greentrace and runpy at the top of a traceback."""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not (name.startswith(_PACKAGE_DIR) or "runpy" in name):
            break
        tb = tb.tb_next
    return tb


def _serve(console: Console) -> None:
    """Start the inspector; if it cannot start, say why and run the program anyway."""
    from .inspector import InspectorError, serve

    try:
        path = serve()
    except (InspectorError, OSError) as exc:
        message = f"greentrace: not serving: {exc}"
    else:
        message = f"greentrace: serving pid {os.getpid()} on {path}"
    console.print(message, markup=False, highlight=False)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM ends the program like ``sys.exit``, so the report is still printed."""
    raise SystemExit(128 + signum)


def _prepare(options: RunOptions) -> Callable[[], Any]:
    """Check the target, set ``sys.argv`` and ``sys.path[0]``; return what runs it."""
    if options.module is not None:
        module = options.module
        try:
            import importlib.util

            sys.path[0:1] = [os.getcwd()]
            if importlib.util.find_spec(module) is None:
                raise RunError(f"no module named {module!r}")
        except (ImportError, ValueError) as exc:
            raise RunError(f"cannot find module {module!r}: {exc}") from None
        sys.argv = [module, *options.args]

        def run_module() -> Any:
            return runpy.run_module(module, run_name="__main__", alter_sys=True)

        return run_module
    script = options.script
    if script is None:
        raise RunError("nothing to run: give a SCRIPT or -m MODULE")
    if not os.path.exists(script):
        raise RunError(f"can't open file {script!r}: no such file")
    sys.argv = [script, *options.args]
    sys.path[0:1] = [os.path.dirname(os.path.realpath(script))]

    def run_script() -> Any:
        return runpy.run_path(script, run_name="__main__")

    return run_script


def run(options: RunOptions) -> Any:
    """Run the program; return its exit status (an int, or a SystemExit code)."""
    import greenlet

    from . import capture, install_dump_signal
    from .blocking import Watchdog

    console = Console(stderr=True)
    target = _prepare(options)
    capture.hide_launcher(target.__code__)
    greenlet.set_spawn_tracking(SPAWN_DEPTH)
    capture.account_run_time()
    recorder = capture.Recorder(options.capacity).start()
    harvester = _Background(
        "greentrace-harvest", HARVEST_INTERVAL, recorder.harvest, HARVEST_SHARE
    )
    harvester.start()
    status: Any = 0
    snap: Snapshot | None = None
    watchdog: Watchdog | None = None
    live: _LiveView | None = None
    try:
        if threading.current_thread() is threading.main_thread():
            if options.dump_signal:
                install_dump_signal()
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _terminated)
        if options.serve:
            _serve(console)
        watchdog = Watchdog(options.blocking).start() if options.blocking else None
        live = _LiveView(console) if options.live else None
        if live is not None:
            live.start()
        target()
    except SystemExit as exc:
        status = exc.code
        snap = capture.snapshot()
    except KeyboardInterrupt:
        status = 130
        snap = capture.snapshot()
        console.print("greentrace: interrupted", style="bold")
    except BaseException as exc:  # noqa: BLE001 (the program's failure is reported, like python does)
        status = 1
        snap = capture.snapshot()
        traceback.print_exception(type(exc), exc, _user_traceback(exc.__traceback__))
    finally:
        if live is not None:
            live.stop()
        if watchdog is not None:
            watchdog.stop()
        harvester.stop()
    try:
        if snap is None:
            snap = capture.snapshot()
        recording = recorder.stop()
        greenlet.set_spawn_tracking(0)
        if not options.quiet:
            from .views import report

            console.print(report(snap, recording, width=console.width))
        failed = _write_outputs(options, recording, console)
    except KeyboardInterrupt:
        return 130
    if failed and status in (0, None):
        return 1
    return status


def _write_outputs(options: RunOptions, recording: Recording, console: Console) -> bool:
    """Write the requested files; say where; True if one could not be written."""
    from .export import write_outputs

    failed = False
    for what, path, error in write_outputs(recording, options.trace, options.svg):
        if error is not None:
            message = f"greentrace: cannot write {path}: {error.strerror}"
            failed = True
        else:
            message = f"greentrace: wrote {what} {path}"
        console.print(message, markup=False, highlight=False)
    return failed
