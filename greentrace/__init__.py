"""greentrace: see inside greenlet programs — trees, stacks, switch timelines.

The package is layered so that only ``greentrace.capture`` touches live
greenlets; the model, renderers and exporters work on plain data and so on
snapshots shipped from another process as JSON.  Importing ``greentrace``
itself loads only the model (no greenlet, no rich); the functions below
import what they need when called.
"""

from __future__ import annotations

import signal as _signal
import sys as _sys
from typing import IO, TYPE_CHECKING, Any

from .model import (
    SCHEMA,
    FrameInfo,
    GreenletInfo,
    GreenletMeta,
    Recording,
    RunInterval,
    Snapshot,
    SwitchEvent,
    ThreadInfo,
    load,
)

if TYPE_CHECKING:
    from .blocking import Watchdog

__all__ = [
    "SCHEMA",
    "FrameInfo",
    "GreenletInfo",
    "GreenletMeta",
    "Recording",
    "RunInterval",
    "Snapshot",
    "SwitchEvent",
    "ThreadInfo",
    "install_dump_signal",
    "load",
    "print_tree",
    "serve",
    "snapshot",
    "watch_blocking",
]


def serve() -> str:
    """Make this program inspectable by ``greentrace ps/tree/stacks/top/record``.

    Idempotent; returns the path of the Unix socket it listens on.
    """
    from .inspector import serve as _serve

    return _serve()


def snapshot(stack_limit: int = 256) -> Snapshot:
    """Every greenlet of every thread, with its stack, as a model Snapshot."""
    from .capture import snapshot as _snapshot

    return _snapshot(stack_limit=stack_limit)


def print_tree(file: IO[str] | None = None, stacks: bool = False) -> None:
    """Print the greenlet tree of each thread (with full stacks if ``stacks``)."""
    from rich.console import Console

    from .render import tree

    console = Console(file=file if file is not None else _sys.stdout, soft_wrap=False)
    taken = snapshot()
    if not taken.greenlets:
        console.print(
            f"greentrace: no greenlets in pid {taken.pid} yet",
            markup=False,
            highlight=False,
        )
        return
    console.print(tree(taken, stacks=stacks))


def _dump(signum: int, frame: Any) -> None:
    try:
        print_tree(file=_sys.stderr, stacks=True)
    except Exception as exc:  # noqa: BLE001 (never kill the program from a signal)
        print(f"greentrace: dump failed: {type(exc).__name__}: {exc}", file=_sys.stderr)


def install_dump_signal(signum: int = _signal.SIGUSR1) -> Any:
    """On ``signum``, print the tree with every greenlet's stack to stderr.

    Call it from the main thread; returns the handler it replaced.
    """
    return _signal.signal(signum, _dump)


def watch_blocking(threshold: float, **options: Any) -> Watchdog:
    """Report greenlets that hold their thread longer than ``threshold`` seconds.

    Reports go to stderr unless ``report=callable(kind, BlockReport)`` is
    given; ``threads=`` limits it to some threads (idents, a predicate, or
    ``"new"``: those started after it).  Returns the running ``Watchdog``
    (``.stop()`` ends it).
    """
    from .blocking import watch_blocking as _watch

    return _watch(threshold, **options)
