"""Hand-made snapshots and recordings shared by the greentrace layer tests.

Nothing here touches greenlet: the data is what a capture in some process
could have produced, written out by hand so every expected value is known.
"""

from __future__ import annotations

import os
import sys

# The subprocess helpers (procs.py) sit beside the tests; with pytest's
# importlib import mode the test directory is not on sys.path by itself.
# Only this directory is added: it holds no package that could shadow one.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pytest

from greentrace.model import (
    FrameInfo,
    GreenletInfo,
    GreenletMeta,
    Recording,
    Snapshot,
    SwitchEvent,
    ThreadInfo,
)

MS = 1_000_000

T_MAIN = 1001
T_WORKER = 2002
T_GONE = 3003


def _frame(
    filename: str, lineno: int, function: str, line: str | None = None
) -> FrameInfo:
    return FrameInfo(filename, lineno, function, line)


@pytest.fixture
def snapshot() -> Snapshot:
    """Three threads: a busy main thread, a worker thread, an exited thread."""
    serve = _frame("/srv/app/app.py", 10, "serve", "hub.run()")
    fetch = _frame("/srv/app/crawler.py", 42, "fetch_page", "data = sock.recv(4096)")
    crawl = _frame("/srv/app/crawler.py", 30, "crawl", "return fetch_page(url)")
    parse = _frame("/srv/app/parser.py", 7, "Parser.parse", "tokens = lex(text)")
    bg = _frame("/srv/app/jobs.py", 55, "poll", "time.sleep(1)")
    spawn = [
        _frame("/srv/app/crawler.py", 88, "spawn_workers"),
        _frame("/srv/app/app.py", 12, "main"),
    ]
    greenlets = [
        GreenletInfo(
            id=1,
            state="suspended",
            thread_id=T_MAIN,
            is_main=True,
            switches=4,
            run_ns=1_500_000,
            stack=[serve],
            location=serve,
        ),
        GreenletInfo(
            id=2,
            state="suspended",
            name="worker-1",
            type_name="gevent._gevent_cgreenlet.Greenlet",
            run_name="fetch_page",
            thread_id=T_MAIN,
            parent_id=1,
            switches=12,
            run_ns=2_340_000,
            spawn_site=spawn,
            stack=[fetch, crawl],
            location=fetch,
        ),
        GreenletInfo(
            id=3,
            state="running",
            run_name="Parser.parse",
            thread_id=T_MAIN,
            parent_id=1,
            is_current=True,
            switches=1,
            run_ns=980,
            stack=[parse],
            location=parse,
        ),
        GreenletInfo(id=4, state="unstarted", run_name="handle", parent_id=2),
        GreenletInfo(
            id=5,
            state="dead",
            name="old-job",
            thread_id=T_MAIN,
            parent_id=1,
            switches=3,
            run_ns=45_000_000_000,
        ),
        GreenletInfo(
            id=10,
            state="running",
            thread_id=T_WORKER,
            is_main=True,
            switches=2,
            run_ns=7_000_000,
            stack=[bg],
            location=bg,
        ),
        GreenletInfo(
            id=11,
            state="suspended",
            name="bg-task",
            thread_id=T_WORKER,
            parent_id=10,
            switches=1,
            run_ns=3_000_000,
        ),
        GreenletInfo(id=20, state="dead", thread_id=T_GONE, is_main=True),
    ]
    threads = [
        ThreadInfo(T_MAIN, "MainThread", main_greenlet_id=1, current_greenlet_id=3),
        ThreadInfo(
            T_WORKER, "worker-thread", main_greenlet_id=10, current_greenlet_id=10
        ),
        ThreadInfo(T_GONE, "gone", main_greenlet_id=20, alive=False),
    ]
    return Snapshot(
        taken_at=1_700_000_000.25,
        monotonic_ns=50 * MS,
        pid=4242,
        argv=["app.py", "--serve"],
        threads=threads,
        greenlets=greenlets,
    )


@pytest.fixture
def recording() -> Recording:
    """Two threads over 1..11 ms with starts, switches, a finish and a kill.

    Main thread: #1 runs, starts #2 at 2 ms, #2 switches back at 4 ms, #1
    starts #3 at 5 ms, #3 finishes into #1 at 7 ms, #1 kills #2 at 8 ms and #2
    finishes into #1 at 8.5 ms.  Worker thread: #10 starts #11 at 3 ms, which
    switches back at 6 ms.  The two streams are interleaved in the list.
    """
    events = [
        SwitchEvent(2 * MS, "start", 1, 2, T_MAIN),
        SwitchEvent(3 * MS, "start", 10, 11, T_WORKER),
        SwitchEvent(4 * MS, "switch", 2, 1, T_MAIN),
        SwitchEvent(5 * MS, "start", 1, 3, T_MAIN),
        SwitchEvent(6 * MS, "switch", 11, 10, T_WORKER),
        SwitchEvent(7 * MS, "finish", 3, 1, T_MAIN),
        SwitchEvent(8 * MS, "kill", 1, 2, T_MAIN),
        SwitchEvent(8 * MS + MS // 2, "finish", 2, 1, T_MAIN),
    ]
    metas = {
        1: GreenletMeta(1, thread_id=T_MAIN, is_main=True),
        2: GreenletMeta(
            2,
            name="worker-1",
            type_name="gevent.Greenlet",
            run_name="fetch_page",
            thread_id=T_MAIN,
        ),
        3: GreenletMeta(3, run_name="Parser.parse", thread_id=T_MAIN),
        10: GreenletMeta(10, thread_id=T_WORKER, is_main=True),
        11: GreenletMeta(11, name="bg-task", thread_id=T_WORKER),
    }
    return Recording(
        start_ns=1 * MS, end_ns=11 * MS, events=events, greenlets=metas, pid=4242
    )


@pytest.fixture(autouse=True)
def reset_greenlet_tracer() -> None:
    """Shadow the core suite's autouse fixture of this name: it imports greenlet.

    The layers tested here must work without the C extension (on data from
    another process), so their tests must not need it either.
    """
