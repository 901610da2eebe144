"""greentrace.leaks: baselines, find_leaks, assert_no_greenlet_leaks, the report."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

import greenlet
from greenlet import getcurrent
from greentrace import leaks
from greentrace.leaks import (
    NO_CHAIN,
    GreenletLeakError,
    assert_no_greenlet_leaks,
    baseline,
    find_leaks,
)

HELD: list[greenlet.greenlet] = []
TABLE: dict[int, greenlet.greenlet] = {}


def park() -> None:
    """Suspend the calling greenlet until someone switches back."""
    getcurrent().parent.switch()


def parked_worker() -> None:
    park()


def start(run=parked_worker, name: str | None = None) -> greenlet.greenlet:
    g = greenlet.greenlet(run)
    if name is not None:
        g.gr_name = name
    g.switch()
    return g


@pytest.fixture(autouse=True)
def _release_held():
    yield
    for g in [*HELD, *TABLE.values()]:
        if not g.dead:
            g.throw()
    HELD.clear()
    TABLE.clear()


def test_a_greenlet_left_suspended_is_a_leak_and_older_ones_are_not() -> None:
    older = start()
    HELD.append(older)
    base = baseline()
    g = start(name="stuck-worker")
    HELD.append(g)
    finished = greenlet.greenlet(lambda: None)
    finished.switch()
    del g
    found = find_leaks(base)
    assert [leak.info.name for leak in found] == ["stuck-worker"]
    info = found[0].info
    assert info.state == "suspended"
    assert info.id > base.max_id
    assert info.id not in base
    assert older.gr_id in base


def test_nothing_new_alive_means_no_leak() -> None:
    base = baseline()
    g = start()
    g.throw()  # finished: dead
    unstarted_then_dropped = greenlet.greenlet(parked_worker)
    del unstarted_then_dropped
    assert find_leaks(base) == []
    assert not leaks.may_have_leaks(base)


def test_an_unstarted_greenlet_still_referenced_is_a_leak() -> None:
    base = baseline()
    g = greenlet.greenlet(parked_worker)
    HELD.append(g)
    found = find_leaks(base)
    assert [leak.info.state for leak in found] == ["unstarted"]
    assert "never started" in found[0].format()


def test_report_has_identity_stack_spawn_site_and_module_chain() -> None:
    previous = greenlet.get_spawn_tracking()
    greenlet.set_spawn_tracking(8)
    try:
        base = baseline()
        HELD.append(start(name="forgotten"))  # the spawn site: this line
    finally:
        greenlet.set_spawn_tracking(previous)
    (leak,) = find_leaks(base)
    text = leak.format()
    gid = leak.info.id
    assert (
        f"greenlet #{gid} 'forgotten' (greenlet.greenlet, runs parked_worker) suspended"
        in text
    )
    # the stack where it is stuck, innermost first
    stack = text.split("stuck at")[1].split("spawned at")[0]
    assert stack.index("in park") < stack.index("in parked_worker")
    assert "getcurrent().parent.switch()" in stack
    # where it was created: start() called by this test
    spawn = text.split("spawned at")[1].split("kept alive by")[0]
    assert "in start" in spawn
    assert "in test_report_has_identity_stack_spawn_site_and_module_chain" in spawn
    # the chain from the module global HELD
    chain = "\n".join(leak.chain)
    assert leak.chain[0].startswith("module ")
    assert ".HELD -> list of 1" in chain
    assert f"[0] -> greenlet #{gid} 'forgotten'" in chain


def test_spawn_site_unknown_when_tracking_is_off() -> None:
    previous = greenlet.get_spawn_tracking()
    greenlet.set_spawn_tracking(0)
    try:
        base = baseline()
        HELD.append(start())
    finally:
        greenlet.set_spawn_tracking(previous)
    (leak,) = find_leaks(base)
    assert leak.info.spawn_site is None
    assert "spawned at: unknown" in leak.format()
    assert leak.spawn_key == "(spawn site unknown)"


def test_chain_through_a_dict_the_collector_does_not_track() -> None:
    base = baseline()
    TABLE[7] = start(name="in-table")
    (leak,) = find_leaks(base)
    chain = "\n".join(leak.chain)
    assert ".TABLE -> dict of 1" in chain, chain
    assert "[7] -> greenlet" in chain, chain


def test_chain_from_a_local_variable_of_a_live_frame() -> None:
    base = baseline()
    holder = {"worker": start()}
    (leak,) = find_leaks(base)
    assert leak.chain[0].startswith(
        "local 'holder' of test_chain_from_a_local_variable"
    )
    assert "['worker'] -> greenlet" in leak.chain[1]
    holder["worker"].throw()


def test_chain_through_another_leaked_greenlets_frame() -> None:
    def keeper() -> None:
        kept = start(name="kept")
        park()
        kept.throw()

    base = baseline()
    HELD.append(start(keeper, name="keeper"))
    found = {leak.info.name: leak for leak in find_leaks(base)}
    assert set(found) == {"keeper", "kept"}
    chain = "\n".join(found["kept"].chain)
    assert ".HELD" in chain
    assert "(its local 'kept' in " in chain


def test_an_orphan_in_a_cycle_has_no_chain_or_is_collected() -> None:
    finished = []

    def orphan() -> None:
        me = getcurrent()  # a reference to itself from its own frame: a cycle
        try:
            park()
        finally:
            finished.append(me.gr_id)

    base = baseline()
    g = greenlet.greenlet(orphan)
    g.switch()
    gid = g.gr_id
    del g
    found = find_leaks(base)
    if found:  # greenlet cannot collect orphans: reported, without a chain
        assert [leak.info.id for leak in found] == [gid]
        assert found[0].chain == []
        assert found[0].chain_note == NO_CHAIN
    else:  # the collector finalized it
        assert finished == [gid]
    for g in greenlet.all_greenlets():  # do not leave it to later tests
        if g.gr_id == gid and not g.dead:
            g.throw()
            assert finished == [gid]


def test_chains_only_for_the_first_max_chains_leaks() -> None:
    base = baseline()
    HELD.extend(start() for _ in range(3))
    found = find_leaks(base, max_chains=1)
    assert len(found) == 3
    assert found[0].chain
    for leak in found[1:]:
        assert leak.chain == []
        assert "first 1 leaks" in (leak.chain_note or "")
    assert all(leak.chain_note for leak in find_leaks(base, chains=False)) is False


def test_exclude_leaves_greenlets_out() -> None:
    base = baseline()
    HELD.append(start())
    skipped = HELD[0].gr_id
    assert find_leaks(base, exclude=lambda gid: gid == skipped) == []


def test_the_checking_greenlet_and_main_greenlets_are_not_leaks() -> None:
    base = baseline()
    results = []
    ready = threading.Event()
    release = threading.Event()

    def in_thread() -> None:
        greenlet.greenlet(lambda: None).switch()  # creates this thread's main greenlet
        ready.set()
        release.wait(30)

    thread = threading.Thread(target=in_thread)
    thread.start()
    try:
        assert ready.wait(30)
        checker = greenlet.greenlet(lambda: results.append(find_leaks(base)))
        checker.switch()
    finally:
        release.set()
        thread.join(30)
    assert results == [[]]


def test_a_greenlet_running_in_another_thread() -> None:
    base = baseline()
    inside = threading.Event()
    release = threading.Event()

    def blocking_greenlet() -> None:
        inside.set()
        release.wait(30)

    def in_thread() -> None:
        g = greenlet.greenlet(blocking_greenlet)
        g.gr_name = "busy"
        g.switch()

    thread = threading.Thread(target=in_thread, name="worker-thread")
    thread.start()
    try:
        assert inside.wait(30)
        found = find_leaks(base)
    finally:
        release.set()
        thread.join(30)
    assert [leak.info.name for leak in found] == ["busy"]
    leak = found[0]
    assert leak.info.state == "running"
    assert any(
        frame.function.endswith("blocking_greenlet") for frame in leak.info.stack
    )
    assert leak.chain == [
        "it is running in thread worker-thread: alive as long as it runs"
    ]


def test_context_manager_raises_with_the_report_and_restores_tracking() -> None:
    previous = greenlet.get_spawn_tracking()
    greenlet.set_spawn_tracking(0)
    try:
        with (
            pytest.raises(GreenletLeakError) as caught,
            assert_no_greenlet_leaks() as check,
        ):
            assert greenlet.get_spawn_tracking() == leaks.SPAWN_DEPTH
            HELD.append(start(name="cm-leak"))
        assert greenlet.get_spawn_tracking() == 0
    finally:
        greenlet.set_spawn_tracking(previous)
    error = caught.value
    assert isinstance(error, AssertionError)
    assert [leak.info.name for leak in error.leaks] == ["cm-leak"]
    assert check.leaks == error.leaks
    message = str(error)
    assert message.startswith("1 greenlet leaked")
    assert "'cm-leak'" in message
    assert "spawned at" in message and "in start" in message
    assert ".HELD" in message


def test_context_manager_keeps_a_depth_already_set() -> None:
    previous = greenlet.get_spawn_tracking()
    greenlet.set_spawn_tracking(3)
    try:
        with assert_no_greenlet_leaks():
            assert greenlet.get_spawn_tracking() == 3
        assert greenlet.get_spawn_tracking() == 3
    finally:
        greenlet.set_spawn_tracking(previous)


def test_context_manager_passes_when_clean_and_lets_exceptions_through() -> None:
    with assert_no_greenlet_leaks():
        g = start()
        g.throw()
    with pytest.raises(KeyError), assert_no_greenlet_leaks():
        HELD.append(start())
        raise KeyError("the block's own error")


def test_decorator_checks_every_call() -> None:
    @assert_no_greenlet_leaks()
    def work(leak: bool) -> str:
        g = start(name="decorated")
        if leak:
            HELD.append(g)
        else:
            g.throw()
        return "done"

    assert work(False) == "done"
    with pytest.raises(GreenletLeakError, match="'decorated'"):
        work(True)
    assert work.__name__ == "work"


def test_the_report_keeps_no_greenlet_alive() -> None:
    cleaned = []

    def worker() -> None:
        try:
            park()
        finally:
            cleaned.append(True)

    with pytest.raises(GreenletLeakError) as caught, assert_no_greenlet_leaks():
        HELD.append(start(worker))
    ref = weakref.ref(HELD[0])
    HELD.clear()  # the only reference the program had
    gc.collect()
    assert ref() is None
    assert cleaned == [True]
    assert "greenlet #" in str(caught.value)


def test_format_report_of_nothing() -> None:
    assert leaks.format_report([]) == "no greenlet leaked"


def test_a_chain_search_gives_up_within_its_limits(monkeypatch) -> None:
    base = baseline()
    HELD.append(start())
    nested = [[HELD[0]]]
    monkeypatch.setattr(leaks, "SEARCH_OBJECTS", 1)
    (leak,) = find_leaks(base)
    assert leak.chain == []
    assert "no chain found within the search limits (1 objects" in (
        leak.chain_note or ""
    )
    monkeypatch.undo()
    (leak,) = find_leaks(base)
    assert leak.chain[0].startswith("module ") or leak.chain[0].startswith(
        "local 'nested'"
    )
    del nested


def test_a_report_after_asyncio_leaves_the_heap_walkable() -> None:
    # CPython 3.12.1: gc.get_referents() of the _asyncio module returns the
    # dead objects of its FutureIter free list, and dropping them frees them
    # a second time; the next gc.get_referrers() then loops forever.  A leak
    # report must never walk into that, so it runs in a child with a timeout.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import asyncio, gc, greenlet
        from greentrace import leaks

        async def main():
            async def worker():
                for _ in range(50):
                    await asyncio.sleep(0)
            await asyncio.gather(worker(), worker())

        asyncio.run(main())
        base = leaks.baseline()
        g = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
        g.switch()
        found = leaks.find_leaks(base)
        assert [leak.info.id for leak in found] == [g.gr_id], found
        gc.get_referrers(object())
        print("walkable")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["walkable"]
