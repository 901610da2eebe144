"""Orphaned greenlets: suspended greenlets that only a reference cycle keeps
alive are found by the cyclic collector and finalized like a generator is
closed (GreenletExit thrown in, ``finally`` blocks run), with a
ResourceWarning saying which greenlet, where it was suspended and where it
was spawned.  Greenlets that anything else can still reach are left alone.

This is a deliberate difference from upstream greenlet, where every
suspended greenlet is a root for the collector and such cycles live forever.
"""

import gc
import threading
import tracemalloc
import warnings
import weakref

import pytest

import greenlet
from greenlet import GreenletExit
from greenlet import getcurrent

KILL_MESSAGE = "Killing the greenlet because all references have vanished."


@pytest.fixture(autouse=True)
def _collected_first():
    gc.collect()
    yield
    greenlet.set_spawn_tracking(0)


def _orphan(log, how="frame", payload=None, keep=None):
    """Start a greenlet that is suspended and kept alive only by a cycle."""

    def run():
        me = getcurrent()
        data = payload  # noqa: F841 - kept alive by the frame only
        if how == "frame":
            keep = me  # noqa: F841 - the cycle: frame local -> greenlet
        try:
            getcurrent().parent.switch("suspended")
        except GreenletExit as exc:
            log.append(("GreenletExit", exc.args))
            raise
        finally:
            log.append("finally")

    g = greenlet.greenlet(run)
    if how == "dict":
        g.me = g
    assert g.switch() == "suspended"
    if keep is not None:
        keep.append(g)
    return weakref.ref(g)


def _collect_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.mark.parametrize("how", ["frame", "dict"])
def test_orphan_is_finalized_by_one_collection(how):
    log = []
    ref = _orphan(log, how)
    assert ref() is not None and ref().gr_state == "suspended"
    _collect_quietly()
    assert log == [("GreenletExit", (KILL_MESSAGE,)), "finally"]
    assert ref() is None


def test_orphan_through_closure_cell():
    log = []

    def make():
        def run():
            try:
                getcurrent().parent.switch()
            finally:
                log.append(cell_holder[0] is not None)

        cell_holder = [None]
        g = greenlet.greenlet(run)
        cell_holder[0] = g  # run's closure -> list -> greenlet -> run
        g.switch()
        return weakref.ref(g)

    ref = make()
    _collect_quietly()
    assert log == [True]
    assert ref() is None


def _assert_collected_when_suspended_in(suspend):
    """An orphan whose run() calls suspend(), which switches away somewhere
    deeper, is found and finalized."""
    log = []

    def run():
        me = getcurrent()  # noqa: F841
        try:
            suspend()
        finally:
            log.append("finally")

    g = greenlet.greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    _collect_quietly()
    assert log == ["finally"]
    assert ref() is None


def test_orphan_suspended_below_nested_python_frames():
    def inner(depth):
        if depth == 0:
            getcurrent().parent.switch()
        else:
            inner(depth - 1)

    _assert_collected_when_suspended_in(lambda: inner(50))


def test_orphan_suspended_inside_a_call_from_c():
    # sorted() calls the key function from C: on 3.12+ the interpreter puts
    # an entry frame on the C stack between the Python frames.
    def key(x):
        getcurrent().parent.switch()
        return x

    _assert_collected_when_suspended_in(lambda: sorted([1], key=key))


def test_suspended_greenlet_reachable_from_outside_survives():
    log = []
    ref = _orphan(log)
    holder = [ref()]
    for _ in range(3):
        _collect_quietly()
    assert log == []
    assert holder[0].gr_state == "suspended"
    holder[0].throw(GreenletExit)
    assert log[-1] == "finally"


def test_objects_its_frames_hold_survive_while_it_is_reachable():
    class Payload:
        pass

    refs = []

    def run():
        p = Payload()
        p.self = p
        refs.append(weakref.ref(p))
        getcurrent().parent.switch()
        return p is refs[0]()

    g = greenlet.greenlet(run)
    g.switch()
    for _ in range(3):
        _collect_quietly()
    assert refs[0]() is not None
    assert g.switch() is True


def test_frame_object_held_elsewhere_keeps_it_alive():
    # Someone holding a frame object of the greenlet can read its locals,
    # so the greenlet is not an orphan.
    log = []
    ref = _orphan(log)
    frame = ref().gr_frame
    assert frame is not None
    _collect_quietly()
    assert log == []
    assert ref() is not None
    assert frame.f_locals["me"] is ref()
    del frame
    _collect_quietly()
    assert log == [("GreenletExit", (KILL_MESSAGE,)), "finally"]
    assert ref() is None


def test_referents_of_a_suspended_greenlet_include_its_frame_locals():
    marker = object()

    def run():
        local = marker  # noqa: F841
        getcurrent().parent.switch()

    g = greenlet.greenlet(run)
    g.switch()
    assert any(o is marker for o in gc.get_referents(g))
    g.switch()
    assert not any(o is marker for o in gc.get_referents(g))


def test_resource_warning_names_greenlet_place_and_spawn_site():
    greenlet.set_spawn_tracking(1)
    log = []
    ref = _orphan(log)  # spawned in _orphan
    ident = ref().gr_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    messages = [str(w.message) for w in caught if w.category is ResourceWarning]
    assert len(messages) == 1, messages
    (msg,) = messages
    assert "unreachable suspended greenlet" in msg
    assert "greenlet.greenlet object" in msg
    assert "suspended at %s:" % __file__ in msg
    assert " in _orphan.<locals>.run" in msg or " in run" in msg
    assert "spawned at %s:" % __file__ in msg
    assert " in _orphan" in msg
    assert "GreenletExit was thrown into it" in msg
    assert log[-1] == "finally"
    assert ref() is None
    # The recorded warning holds the greenlet as its source; once it is
    # gone, so is the greenlet.
    assert caught[0].source is not None
    del caught
    assert ident not in [g.gr_id for g in greenlet.all_greenlets()]


def test_resource_warning_without_spawn_tracking_says_how_to_get_it():
    log = []
    _orphan(log)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    (msg,) = [str(w.message) for w in caught if w.category is ResourceWarning]
    assert "spawn site not recorded (greenlet.set_spawn_tracking(1) records it)" in msg


def test_no_resource_warning_when_the_last_reference_is_dropped():
    log = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            log.append("finally")

    g = greenlet.greenlet(run)
    g.switch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del g
        gc.collect()
    assert log == ["finally"]
    assert [w for w in caught if w.category is ResourceWarning] == []


def test_resource_warning_as_error_still_finalizes(unraisable):
    log = []
    ref = _orphan(log)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()
    assert log[-1] == "finally"
    assert ref() is None
    assert any(c["exc_type"] is ResourceWarning for c in unraisable.calls)


def test_subclass_with_del_is_finalized_too():
    log = []

    class Worker(greenlet.greenlet):
        def __del__(self):
            log.append("__del__")

    def run():
        me = getcurrent()  # noqa: F841
        try:
            getcurrent().parent.switch()
        finally:
            log.append("finally")

    g = Worker(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    _collect_quietly()
    assert "__del__" in log and "finally" in log
    assert ref() is None


def test_subclass_without_del_is_finalized():
    log = []

    class Worker(greenlet.greenlet):
        pass

    def run():
        me = getcurrent()  # noqa: F841
        try:
            getcurrent().parent.switch()
        finally:
            log.append("finally")

    g = Worker(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    _collect_quietly()
    assert log == ["finally"]
    assert ref() is None


def test_orphan_that_refuses_to_die_is_left_alone(unraisable):
    log = []

    def run():
        me = getcurrent()  # noqa: F841
        while True:
            try:
                getcurrent().parent.switch()
            except GreenletExit:
                log.append("caught")
                if len(log) > 5:
                    raise

    g = greenlet.greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    _collect_quietly()
    assert log and set(log) == {"caught"}
    # Still suspended: it chose to live on, and nothing crashed.
    if ref() is not None:
        assert ref().gr_state in ("suspended", "dead")


def test_memory_of_orphans_is_returned():
    # 200 orphans each holding 100 KB only through its frame.
    log = []
    tracemalloc.start()
    try:
        _collect_quietly()
        before, _ = tracemalloc.get_traced_memory()
        # Held by a list while they are made, or the automatic collections
        # would already reclaim some of them.
        strong = []
        refs = [_orphan(log, payload=bytearray(100 * 1024), keep=strong) for _ in range(200)]
        during, _ = tracemalloc.get_traced_memory()
        assert during - before > 200 * 100 * 1024
        del strong
        _collect_quietly()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert log.count("finally") == 200
    assert all(r() is None for r in refs)
    assert after - before < 1024 * 1024, (before, during, after)


def test_greenlet_subclass_with_run_method_is_an_orphan_too():
    # run is a bound method of the greenlet: greenlet -> run -> greenlet.
    log = []

    class Worker(greenlet.greenlet):
        def run(self):
            try:
                self.parent.switch()
            finally:
                log.append("finally")

    w = Worker()
    w.switch()
    ref = weakref.ref(w)
    del w
    _collect_quietly()
    assert log == ["finally"]
    assert ref() is None


def test_orphan_of_another_thread_is_killed_in_its_own_thread():
    log = []
    made = threading.Event()
    collected = threading.Event()
    done = threading.Event()

    def thread_main():
        def run():
            me = getcurrent()  # noqa: F841
            try:
                getcurrent().parent.switch()
            finally:
                log.append(("finally", threading.get_ident()))

        g = greenlet.greenlet(run)
        g.switch()
        del g
        made.set()
        collected.wait(10)
        # Touching greenlets again runs the kills deferred to this thread.
        greenlet.greenlet(lambda: None).switch()
        done.set()
        log.append(("thread", threading.get_ident()))

    t = threading.Thread(target=thread_main)
    t.start()
    assert made.wait(10)
    _collect_quietly()
    assert log == []
    collected.set()
    t.join(10)
    assert done.is_set()
    idents = {ident for _, ident in log}
    assert len(idents) == 1 and log[0][0] == "finally", log


def test_collector_inside_a_tracer_during_a_switch():
    log = []
    ref = _orphan(log)  # noqa: F841
    calls = []

    def tracer(event, args):
        calls.append(event)
        if len(calls) == 1:
            _collect_quietly()

    greenlet.settrace(tracer)
    try:
        g = greenlet.greenlet(lambda: "done")
        assert g.switch() == "done"
    finally:
        greenlet.settrace(None)
    assert "finally" in log
    assert calls


def test_collector_from_inside_a_greenlet():
    log = []
    ref = _orphan(log)

    def collector():
        _collect_quietly()
        return "collected"

    assert greenlet.greenlet(collector).switch() == "collected"
    assert log[-1] == "finally"
    assert ref() is None


def test_orphans_at_interpreter_shutdown_do_not_crash(run_python):
    rc, out, err = run_python(
        """
        import gc, greenlet, threading

        def run():
            me = greenlet.getcurrent()
            try:
                greenlet.getcurrent().parent.switch()
            finally:
                print("finally", flush=True)

        for _ in range(20):
            greenlet.greenlet(run).switch()
        # A thread's orphans too, left behind with its thread.
        def in_thread():
            for _ in range(5):
                greenlet.greenlet(run).switch()
        t = threading.Thread(target=in_thread)
        t.start(); t.join()
        gc.callbacks.append(lambda phase, info: None)
        print("exiting", flush=True)
        """
    )
    assert rc == 0, err
    assert "exiting" in out
    assert "Fatal" not in err and "Segmentation" not in err


def test_collection_storm_with_switching_and_threads(run_python):
    rc, out, err = run_python(
        """
        import gc, threading, greenlet, warnings
        warnings.simplefilter("ignore", ResourceWarning)
        gc.set_threshold(5, 2, 2)
        finished = []

        def run(n):
            me = greenlet.getcurrent()
            try:
                for i in range(n):
                    greenlet.getcurrent().parent.switch(i)
            finally:
                finished.append(1)

        def churn(rounds):
            for r in range(rounds):
                gs = [greenlet.greenlet(run) for _ in range(10)]
                for g in gs:
                    g.switch(3)
                for g in gs[::2]:
                    g.switch()
                del gs

        threads = [threading.Thread(target=churn, args=(200,)) for _ in range(2)]
        for t in threads: t.start()
        churn(200)
        for t in threads: t.join()
        gc.collect()
        greenlet.greenlet(lambda: None).switch()
        print("ok", len(finished), flush=True)
        """,
        timeout=120,
    )
    assert rc == 0, err
    assert out.startswith("ok ")
    assert int(out.split()[1]) > 0
    assert "Fatal" not in err


def test_dead_greenlet_in_cycle_is_collected():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    g.me = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None
