"""The ``greentrace`` command line: run, ps, tree, stacks, top, record, leaks, view.

Only the subcommands live here; what they show comes from ``views`` and
``render``, files from ``documents`` and ``export``, the terminal from
``terminal``, the program runner from ``runner``.

Bad input of any kind (an unknown pid, a program that is not serving, a
stale or foreign socket, a refused connection, a malformed file) ends the
command with one line on stderr and a nonzero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Group, RenderableType

from .model import Recording, Snapshot
from .terminal import KeyReader, say, stderr_console, stdout_console

PROG = "greentrace"


class CliError(Exception):
    """A failure reported as one line on stderr."""


def _pid(text: str) -> int:
    try:
        pid = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}")
    return pid


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds: {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="See inside greenlet programs: trees, stacks, switch timelines.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run a program with observation on",
        description="Run SCRIPT (or -m MODULE) with switch recording and spawn tracking; "
        "at exit print the greenlet tree and a timeline summary to stderr.  "
        "SIGUSR1 prints every greenlet's stack meanwhile.",
    )
    run.add_argument(
        "--trace", metavar="FILE", help="write a Chrome/Perfetto trace JSON"
    )
    run.add_argument(
        "--svg", metavar="FILE", help="write the timeline as an SVG picture"
    )
    run.add_argument(
        "--live", action="store_true", help="show a refreshing view while it runs"
    )
    run.add_argument(
        "--serve",
        action="store_true",
        help="make it inspectable (ps, tree, stacks, top, record)",
    )
    run.add_argument(
        "--blocking",
        metavar="SECONDS",
        type=_seconds,
        help="report greenlets holding their thread longer",
    )
    run.add_argument(
        "--no-dump-signal",
        dest="dump_signal",
        action="store_false",
        help="do not handle SIGUSR1",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="print no report at exit (files are still written)",
    )
    run.add_argument(
        "--capacity",
        type=int,
        default=1 << 18,
        metavar="EVENTS",
        help="switch events kept (default %(default)s)",
    )
    run.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a library module as a script"
    )
    run.add_argument(
        "target",
        nargs=argparse.REMAINDER,
        metavar="SCRIPT | ARGS",
        help="the script and its arguments",
    )
    run.set_defaults(func=cmd_run)

    ps = commands.add_parser("ps", help="list inspectable programs of this user")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(func=cmd_ps)

    for name, help_text, func in (
        ("tree", "the greenlet tree of a program now", cmd_tree),
        ("stacks", "the full stack of every greenlet of a program", cmd_stacks),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("pid", type=_pid, metavar="PID")
        sub.add_argument(
            "--json", action="store_true", help="print the snapshot as JSON"
        )
        sub.add_argument("--svg", metavar="FILE", help="also save the picture as SVG")
        sub.add_argument(
            "--timeout", type=_seconds, default=10.0, help=argparse.SUPPRESS
        )
        sub.set_defaults(func=func)

    top = commands.add_parser(
        "top", help="a live view of a program's busiest greenlets"
    )
    top.add_argument("pid", type=_pid, metavar="PID")
    top.add_argument(
        "--sort",
        choices=("run", "switches"),
        default="run",
        help="order rows by run time or switch rate",
    )
    top.add_argument(
        "--interval", type=_seconds, default=1.0, help="seconds between refreshes"
    )
    top.add_argument("--rows", type=int, default=25, help="rows shown")
    top.add_argument(
        "--iterations", type=int, metavar="N", help="stop after N refreshes"
    )
    top.add_argument(
        "--once",
        action="store_const",
        const=1,
        dest="iterations",
        help="print one table and stop",
    )
    top.set_defaults(func=cmd_top)

    record = commands.add_parser("record", help="record a running program's switches")
    record.add_argument("pid", type=_pid, metavar="PID")
    record.add_argument("--seconds", type=_seconds, required=True, metavar="N")
    record.add_argument(
        "--trace", metavar="FILE", help="write a Chrome/Perfetto trace JSON"
    )
    record.add_argument(
        "--svg", metavar="FILE", help="write the timeline as an SVG picture"
    )
    record.set_defaults(func=cmd_record)

    leaks = commands.add_parser(
        "leaks",
        help="which greenlets grow in a running program",
        description="Take two snapshots SECONDS apart; show the greenlet counts by "
        "spawn site and state that grew, and the oldest suspended greenlets' stacks.",
    )
    leaks.add_argument("pid", type=_pid, metavar="PID")
    leaks.add_argument(
        "--interval",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between the snapshots (default %(default)s)",
    )
    leaks.add_argument(
        "--oldest",
        type=int,
        default=3,
        metavar="N",
        help="stacks of the N oldest suspended greenlets (default %(default)s)",
    )
    leaks.add_argument("--json", action="store_true", help="print JSON")
    leaks.set_defaults(func=cmd_leaks)

    view = commands.add_parser(
        "view", help="render a saved snapshot, recording or trace"
    )
    view.add_argument("file", metavar="FILE")
    view.add_argument(
        "--stacks", action="store_true", help="show full stacks in a snapshot's tree"
    )
    view.set_defaults(func=cmd_view)
    return parser


# --- run --------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> Any:
    """``greentrace run``."""
    from .runner import RunError, RunOptions, run

    target = list(args.target)
    if target and target[0] == "--":
        target.pop(0)
    if args.module is None and not target:
        raise CliError("run: give a SCRIPT or -m MODULE")
    options = RunOptions(
        script=None if args.module is not None else target[0],
        module=args.module,
        args=target if args.module is not None else target[1:],
        trace=args.trace,
        svg=args.svg,
        live=args.live,
        serve=args.serve,
        blocking=args.blocking,
        dump_signal=args.dump_signal,
        capacity=args.capacity,
        quiet=args.quiet,
    )
    if options.capacity <= 0:
        raise CliError("run: --capacity must be positive")
    try:
        return run(options)
    except RunError as exc:
        raise CliError(f"run: {exc}") from None


# --- inspecting running programs --------------------------------------------------


@contextlib.contextmanager
def _client(pid: int, timeout: float = 10.0) -> Iterator[Any]:
    from .inspector import Client, InspectorError

    try:
        with Client(pid, timeout=timeout) as client:
            yield client
    except InspectorError as exc:
        raise CliError(str(exc)) from None


def _call(func: Any, *args: Any, **kwargs: Any) -> Any:
    from .inspector import InspectorError

    try:
        return func(*args, **kwargs)
    except InspectorError as exc:
        raise CliError(str(exc)) from None


def cmd_ps(args: argparse.Namespace) -> int:
    """``greentrace ps``."""
    from .inspector import programs, runtime_dir
    from .views import programs_table

    found, removed = programs(clean=True)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    err = stderr_console()
    if removed:
        say(
            err,
            f"greentrace: removed {removed} stale socket{'s' if removed != 1 else ''}",
        )
    if not found:
        say(
            err,
            f"greentrace: no inspectable programs of this user (sockets in {runtime_dir()})",
        )
        return 0
    stdout_console().print(programs_table(found))
    return 0


def _show_snapshot(args: argparse.Namespace, stacks: bool) -> int:
    from .render import stacks as render_stacks
    from .render import tree

    with _client(args.pid, args.timeout) as client:
        snap = _call(client.snapshot, stacks=stacks)
    if args.svg:
        from .export import tree_svg

        try:
            tree_svg(snap, args.svg, stacks=stacks)
        except OSError as exc:
            raise CliError(f"cannot write {args.svg}: {exc.strerror}") from None
        say(stderr_console(), f"greentrace: wrote {args.svg}")
    if args.json:
        print(snap.to_json(indent=2))
        return 0
    stdout_console().print(render_stacks(snap) if stacks else tree(snap))
    return 0


def cmd_tree(args: argparse.Namespace) -> int:
    """``greentrace tree PID``."""
    return _show_snapshot(args, stacks=False)


def cmd_stacks(args: argparse.Namespace) -> int:
    """``greentrace stacks PID``."""
    return _show_snapshot(args, stacks=True)


def cmd_leaks(args: argparse.Namespace) -> int:
    """``greentrace leaks PID --interval SECONDS``."""
    from .growth import leaks_command

    try:
        return int(_call(leaks_command, args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_top(args: argparse.Namespace) -> int:
    """``greentrace top PID``."""
    from rich.live import Live

    from .views import fitted_top_table, top_view

    if args.iterations is not None and args.iterations <= 0:
        raise CliError("top: --iterations must be positive")
    console = stdout_console()
    previous: Snapshot | None = None
    done = 0
    animate = console.is_terminal and args.iterations != 1
    with _client(args.pid) as client, KeyReader() as keys:
        live = (
            Live(console=console, auto_refresh=False, transient=False)
            if animate
            else None
        )
        with live if live is not None else contextlib.nullcontext():
            while True:
                snap = _call(client.snapshot)
                if live is None:
                    console.print(
                        fitted_top_table(snap, previous, sort=args.sort, rows=args.rows)
                    )
                else:
                    live.update(
                        top_view(snap, previous, sort=args.sort, rows=args.rows),
                        refresh=True,
                    )
                previous = snap
                done += 1
                if args.iterations is not None and done >= args.iterations:
                    break
                if keys.wait(args.interval) in ("q", "Q"):
                    break
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """``greentrace record PID --seconds N``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .export import write_outputs
    from .inspector import MAX_RECORD_SECONDS
    from .render import summary, timeline

    if args.seconds > MAX_RECORD_SECONDS:
        raise CliError(f"record: at most {MAX_RECORD_SECONDS:g} seconds at a time")
    err = stderr_console()
    with _client(args.pid) as client:
        progress = Progress(
            TextColumn(f"recording pid {args.pid}"),
            BarColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        with progress:
            task = progress.add_task("record", total=args.seconds)
            began = time.monotonic()

            def tick() -> None:
                progress.update(
                    task, completed=min(args.seconds, time.monotonic() - began)
                )

            recording: Recording = _call(client.record, args.seconds, tick=tick)
    written = False
    for what, path, error in write_outputs(recording, args.trace, args.svg):
        if error is not None:
            raise CliError(f"cannot write {path}: {error.strerror}")
        say(err, f"greentrace: wrote {what} {path}")
        written = True
    out = stdout_console()
    if not written:
        out.print(timeline(recording, width=out.width))
    out.print(summary(recording))
    return 0


# --- files ------------------------------------------------------------------------


def cmd_view(args: argparse.Namespace) -> int:
    """``greentrace view FILE``."""
    from .documents import DocumentError, read_document
    from .render import summary, timeline, tree

    try:
        document = read_document(args.file)
    except DocumentError as exc:
        raise CliError(str(exc)) from None
    console = stdout_console()
    try:
        if isinstance(document, Snapshot):
            renderable: RenderableType = tree(document, stacks=args.stacks)
        else:
            renderable = Group(
                timeline(document, width=max(30, console.width)), summary(document)
            )
        console.print(renderable)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise CliError(f"{args.file}: not a valid greentrace file: {exc}") from None
    return 0


# --- entry point ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> Any:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silence the exit flush)
        return 1
