"""Threads as greentrace sees them: its own helper threads (hidden), names, per-thread records."""

from __future__ import annotations

import contextlib
import signal
import threading

from .model import GreenletInfo, ThreadInfo

# Threads greentrace itself runs (inspector, watchdog, harvester): their
# greenlets, if any, never appear in what we report.  Each ident maps to its
# thread, so that the ident of one that ended without saying so is given up
# rather than hiding a later thread that gets the same ident.
_internal_threads: dict[int, threading.Thread | None] = {}
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
    if ident is None:
        ident = threading.get_ident()
    thread = next((t for t in threading.enumerate() if t.ident == ident), None)
    if isinstance(thread, threading._DummyThread):
        thread = None  # not started by threading: its end cannot be seen
    with _internal_lock:
        _internal_threads[ident] = thread


def unmark_internal(ident: int | None = None) -> None:
    """Stop hiding a thread; called by internal threads as they end."""
    with _internal_lock:
        _internal_threads.pop(threading.get_ident() if ident is None else ident, None)


def internal_threads() -> frozenset[int]:
    """Idents of the threads greentrace runs for itself."""
    with _internal_lock:
        for ident, thread in list(_internal_threads.items()):
            if thread is not None and not thread.is_alive():
                del _internal_threads[ident]
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
