"""greenlet.frame_of(g): the top frame of any greenlet, wherever it is."""

import gc
import sys
import threading
import traceback

import pytest

from greenlet import frame_of, getcurrent, greenlet


def names(frame):
    out = []
    while frame is not None:
        out.append(frame.f_code.co_name)
        frame = frame.f_back
    return out


def eventually(predicate, tries=200):
    import time

    for _ in range(tries):
        if predicate():
            return True
        gc.collect()
        getcurrent()
        time.sleep(0.001)
    return predicate()


# ---------------------------------------------------------------------------
# Arguments and the trivial states


@pytest.mark.parametrize("bad", [None, 1, "greenlet", object(), greenlet])
def test_type_error_for_non_greenlets(bad):
    with pytest.raises(TypeError):
        frame_of(bad)


def test_needs_exactly_one_argument():
    with pytest.raises(TypeError):
        frame_of()
    with pytest.raises(TypeError):
        frame_of(getcurrent(), getcurrent())


def test_unstarted_is_none():
    assert frame_of(greenlet(lambda: None)) is None


def test_dead_is_none():
    g = greenlet(lambda: None)
    g.switch()
    assert frame_of(g) is None


def test_dead_after_suspension_is_none():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    assert frame_of(g) is not None
    g.switch()
    assert frame_of(g) is None


def test_subclass_accepted():
    class Sub(greenlet):
        pass

    main = getcurrent()
    g = Sub(lambda: main.switch())
    assert frame_of(g) is None
    g.switch()
    assert frame_of(g).f_code.co_name == "<lambda>"
    g.switch()


# ---------------------------------------------------------------------------
# Running in the calling thread: the caller's frame


def test_current_greenlet_is_the_callers_frame():
    here = sys._getframe()
    assert frame_of(getcurrent()) is here


def test_current_greenlet_inside_a_greenlet():
    def inner():
        return frame_of(getcurrent()), sys._getframe()

    def run():
        return inner()

    got, expected = greenlet(run).switch()
    assert got is expected
    assert names(got) == ["inner", "run"]


def test_current_main_line_number():
    expected, got = sys._getframe().f_lineno, frame_of(getcurrent()).f_lineno
    assert got == expected


# ---------------------------------------------------------------------------
# Suspended: its gr_frame


def test_suspended_greenlet_top_frame():
    main = getcurrent()
    lines = []

    def inner(a):
        local_value = a * 2  # noqa: F841
        lines.append(sys._getframe().f_lineno + 1)
        main.switch()

    def run(a):
        inner(a + 1)

    g = greenlet(run)
    g.switch(5)
    frame = frame_of(g)
    assert frame.f_code is inner.__code__
    assert frame.f_lineno == lines[0]
    assert frame.f_locals["local_value"] == 12
    assert names(frame) == ["inner", "run"]
    assert frame.f_code is g.gr_frame.f_code
    assert frame.f_lineno == g.gr_frame.f_lineno
    g.switch()


def test_suspended_main_seen_from_a_child():
    main = getcurrent()
    here = sys._getframe()

    def run():
        return frame_of(main)

    assert greenlet(run).switch() is here


def test_suspended_sibling_seen_from_another_greenlet():
    main = getcurrent()

    def parked():
        main.switch()

    a = greenlet(parked)
    a.switch()

    def look():
        return names(frame_of(a))

    assert greenlet(look).switch() == ["parked"]
    a.switch()


def test_suspended_inside_map_and_sorted():
    main = getcurrent()

    def via_map():
        return list(map(lambda x: main.switch(x), [1]))  # noqa: C417 - entered through C on purpose

    def via_sorted():
        return sorted([3, 1], key=lambda x: main.switch(x))

    g1 = greenlet(via_map)
    g2 = greenlet(via_sorted)
    g1.switch()
    g2.switch()
    assert names(frame_of(g1)) == ["<lambda>", "via_map"]
    assert names(frame_of(g2)) == ["<lambda>", "via_sorted"]
    traceback.format_stack(frame_of(g1))
    traceback.format_stack(frame_of(g2))
    assert g1.switch(10) == [10]
    g2.switch(2)
    assert g2.switch(1) == [1, 3]


# ---------------------------------------------------------------------------
# Other threads


class ParkedThread:
    """A thread parked inside a greenlet, in park_here(), blocked in a C call
    (a lock acquisition: no Python frame above park_here)."""

    def __init__(self, in_greenlet=True):
        self.parked = threading.Event()
        self.release = threading.Lock()
        self.release.acquire()
        self.info = {}
        self.in_greenlet = in_greenlet
        self.thread = threading.Thread(target=self.body)
        self.thread.start()
        assert self.parked.wait(10)

    def park_here(self):
        self.info["current"] = getcurrent()
        self.info["line"] = sys._getframe().f_lineno + 2
        self.parked.set()
        self.release.acquire(timeout=30)
        return "released"

    def middle(self):
        return self.park_here()

    def body(self):
        self.info["main"] = getcurrent()
        if self.in_greenlet:
            g = greenlet(self.middle)
            self.info["switch_line"] = sys._getframe().f_lineno + 1
            self.info["result"] = g.switch()
        else:
            self.info["result"] = self.middle()

    def stop(self):
        self.release.release()
        self.thread.join()


def test_greenlet_running_in_another_thread():
    parked = ParkedThread()
    try:
        g = parked.info["current"]
        assert g.gr_state == "running"
        frame = frame_of(g)
        assert frame.f_code.co_name == "park_here"
        assert frame.f_lineno == parked.info["line"]
        assert names(frame) == ["park_here", "middle"]
        assert frame.f_locals["self"] is parked
        # gr_frame shows nothing for a running greenlet; frame_of does.
        assert g.gr_frame is None
        traceback.format_stack(frame)
    finally:
        parked.stop()
    assert parked.info["result"] == "released"


def test_suspended_main_of_another_thread():
    parked = ParkedThread()
    try:
        tmain = parked.info["main"]
        assert tmain.gr_state == "suspended"
        frame = frame_of(tmain)
        assert frame.f_code.co_name == "body"
        assert frame.f_lineno == parked.info["switch_line"]
        assert "body" in names(frame)
    finally:
        parked.stop()


def test_running_main_of_another_thread():
    parked = ParkedThread(in_greenlet=False)
    try:
        tmain = parked.info["main"]
        assert parked.info["current"] is tmain
        assert tmain.gr_state == "running"
        frame = frame_of(tmain)
        assert frame.f_code.co_name == "park_here"
        assert names(frame)[:3] == ["park_here", "middle", "body"]
    finally:
        parked.stop()


def test_frames_from_another_thread_stay_usable_after_it_exits():
    parked = ParkedThread()
    g = parked.info["current"]
    tmain = parked.info["main"]
    frame = frame_of(g)
    main_frame = frame_of(tmain)
    parked.stop()
    assert eventually(lambda: g.gr_state == "dead")
    assert frame_of(g) is None
    assert frame_of(tmain) is None
    # The frame objects taken earlier still work.
    assert frame.f_code.co_name == "park_here"
    traceback.format_stack(frame)
    traceback.format_stack(main_frame)
    names(frame)
    names(main_frame)


def test_suspended_greenlet_of_exited_thread_is_none():
    out = {}

    def body():
        tmain = getcurrent()
        g = greenlet(lambda: tmain.switch())
        g.switch()
        assert frame_of(g).f_code.co_name == "<lambda>"
        out["g"] = g

    t = threading.Thread(target=body)
    t.start()
    t.join()
    g = out.pop("g")
    assert eventually(lambda: g.gr_state == "dead")
    assert frame_of(g) is None


def test_caller_frame_in_another_thread():
    out = {}

    def body():
        out["same"] = frame_of(getcurrent()) is sys._getframe()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert out["same"] is True


# ---------------------------------------------------------------------------
# Crash-prone walks, in subprocesses


def test_walking_frames_entered_through_c_while_others_switch(run_python):
    # greenlet issue 388 (3.12/3.13): walking f_back of a suspended
    # greenlet whose stack went through C-entered frames, after other
    # greenlets overwrote that part of the C stack, must not crash.
    code = r"""
    import gc, sys, traceback
    from greenlet import greenlet, getcurrent, frame_of

    main = getcurrent()

    def leaf():
        return main.switch("parked")

    def deep(n, how):
        if n == 0:
            return leaf()
        if how == "map":
            return list(map(lambda x: deep(n - 1, how), [0]))[0]
        if how == "sorted":
            out = []
            sorted([0], key=lambda x: out.append(deep(n - 1, how)) or 0)
            return out[0]
        return deep(n - 1, how)

    def burn(n):
        if n == 0:
            return getcurrent().parent.switch(0)
        return burn(n - 1) + 1

    def walk(g):
        names = []
        f = frame_of(g)
        while f is not None:
            names.append(f.f_code.co_name)
            f.f_lineno
            f = f.f_back
        return names

    kinds = ["map", "sorted", "plain"] * 4
    gs = []
    for i, how in enumerate(kinds):
        g = greenlet(deep)
        assert g.switch(5 + i, how) == "parked"
        gs.append(g)

    for attempt in range(20):
        for g, how in zip(gs, kinds):
            names = walk(g)
            assert names[0] == "leaf", names
            assert names[-1] == "deep", names
            assert "burn" not in names and "walk" not in names, names
            traceback.extract_stack(frame_of(g))
        # Other greenlets switch and overwrite the stack between walks.
        for depth in (50, 300, 10):
            b = greenlet(burn)
            b.switch(depth)
            walk(gs[attempt % len(gs)])
            b.switch(0)
        if attempt % 5 == 0:
            gc.collect()

    results = [g.switch(k) for k, g in enumerate(gs)]
    assert results == list(range(len(gs))), results
    assert all(frame_of(g) is None for g in gs)
    print("ok")
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.strip() == "ok"


def test_walking_frames_of_greenlets_in_another_thread(run_python):
    # Suspended (through C) and running greenlets of a thread parked in
    # another greenlet, walked from the main thread again and again.
    code = r"""
    import sys, threading, traceback
    from greenlet import greenlet, getcurrent, frame_of

    parked = threading.Event()
    release = threading.Lock()
    release.acquire()
    info = {}

    def walk(f):
        names = []
        while f is not None:
            names.append(f.f_code.co_name)
            f = f.f_back
        return names

    def body():
        tmain = getcurrent()
        suspended = []
        for how in ("map", "sorted"):
            if how == "map":
                run = lambda: list(map(lambda x: tmain.switch(), [0]))
            else:
                run = lambda: sorted([0], key=lambda x: tmain.switch() or 0)
            g = greenlet(run)
            g.switch()
            suspended.append(g)
        info["suspended"] = suspended

        def park_in_map():
            return list(map(lambda x: park(), [0]))

        def park():
            info["running"] = getcurrent()
            parked.set()
            release.acquire(timeout=30)  # C: park() stays the top frame
            return "done"

        info["result"] = greenlet(park_in_map).switch()
        for g in suspended:
            g.switch()

    t = threading.Thread(target=body)
    t.start()
    assert parked.wait(30)
    try:
        for attempt in range(200):
            running = walk(frame_of(info["running"]))
            assert running == ["park", "<lambda>", "park_in_map"], running
            for g in info["suspended"]:
                names = walk(frame_of(g))
                assert names[0] == "<lambda>", names
                assert names[-1] == "<lambda>", names
                traceback.format_stack(frame_of(g))
            # This thread switches meanwhile, too.
            greenlet(lambda: sum(range(100))).switch()
    finally:
        release.release()
        t.join()
    assert info["result"] == ["done"]
    print("ok")
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.strip() == "ok"
