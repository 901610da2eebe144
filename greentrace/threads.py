"""Threads as greentrace sees them: its own helper threads (hidden), names, per-thread records."""

from __future__ import annotations

import contextlib
import signal
import threading

from .model import GreenletInfo, ThreadInfo

# Threads greentrace itself runs (inspector, watchdog, harvester): their
# greenlets, if any, never appear in what we report.
_internal_threads: set[int] = set()
_internal_lock = threading.Lock()

_ASYNC_SIGNALS = {
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGCHLD",
        "SIGWINCH",
    )
    if hasattr(signal, name)
}


def mark_internal(ident: int | None = None) -> None:
    """Hide a thread (the calling one by default) from snapshots and recordings.

    Called by the thread itself, it also blocks asynchronous signals there,
    so the kernel delivers them to the program's threads: a signal landing in
    a helper thread may wait long before the main thread runs its handler
    (CPython 3.10 can even lose track of it until another signal comes).
    """
    if ident is None or ident == threading.get_ident():
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
    with _internal_lock:
        _internal_threads.add(threading.get_ident() if ident is None else ident)


def unmark_internal(ident: int | None = None) -> None:
    """Stop hiding a thread; called by internal threads as they end."""
    with _internal_lock:
        _internal_threads.discard(threading.get_ident() if ident is None else ident)


def internal_threads() -> frozenset[int]:
    """Idents of the threads greentrace runs for itself."""
    with _internal_lock:
        return frozenset(_internal_threads)


def thread_records(
    greenlets: list[GreenletInfo], names: dict[int | None, str], running: set[int]
) -> list[ThreadInfo]:
    """One ThreadInfo per thread owning greenlets, the main thread first."""
    order: list[int] = []
    mains: dict[int, GreenletInfo] = {}
    current: dict[int, int] = {}
    for g in greenlets:
        tid = g.thread_id
        if tid is None:
            continue
        if tid not in order:
            order.append(tid)
        if g.is_main and (tid not in mains or mains[tid].state == "dead"):
            # An exited thread's ident may be reused by a live thread: the
            # record describes the live one, whose main greenlet is not dead.
            mains[tid] = g
        if g.state == "running":
            current[tid] = g.id
    main_ident = threading.main_thread().ident
    order.sort(key=lambda tid: tid != main_ident)
    infos = []
    for tid in order:
        main = mains.get(tid)
        # A live thread's main greenlet is never dead: if it is, the thread has
        # exited and its ident may now belong to another thread.
        alive = tid in running and (main is None or main.state != "dead")
        infos.append(
            ThreadInfo(
                thread_id=tid,
                name=names.get(tid) if alive else None,
                main_greenlet_id=main.id if main is not None else None,
                current_greenlet_id=current.get(tid),
                alive=alive,
            )
        )
    return infos


def thread_names() -> dict[int, str]:
    """Names of the live threads known to ``threading``."""
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}
