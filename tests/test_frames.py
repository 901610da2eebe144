"""gr_frame: when it exists, what chain it exposes, and that walking it is safe."""

import sys
import traceback

from greenlet import getcurrent
from greenlet import greenlet


def _names(frame):
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def test_gr_frame_none_when_unstarted():
    assert greenlet(lambda: None).gr_frame is None


def test_gr_frame_none_when_dead():
    g = greenlet(lambda: None)
    g.switch()
    assert g.gr_frame is None


def test_gr_frame_none_while_running():
    def run():
        return getcurrent().gr_frame

    assert greenlet(run).switch() is None
    assert getcurrent().gr_frame is None


def test_gr_frame_none_after_finishing_from_suspension():
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    assert g.gr_frame is not None
    g.switch()
    assert g.gr_frame is None


def test_suspended_frame_chain_ends_at_run():
    main = getcurrent()

    def inner(a):
        local_in_inner = a * 2  # noqa: F841
        main.switch()

    def middle(a):
        inner(a + 1)

    def run(a):
        x = "run local"  # noqa: F841
        middle(a)

    g = greenlet(run)
    g.switch(5)
    frame = g.gr_frame
    assert frame.f_code.co_name == "inner"
    assert _names(frame) == ["inner", "middle", "run"]
    # Not linked to the frame that spawned it.
    assert "test_suspended_frame_chain_ends_at_run" not in _names(frame)
    outer = frame.f_back.f_back
    assert outer.f_back is None
    g.switch()


def _locals_inner(a):
    local_in_inner = a * 2  # noqa: F841
    getcurrent().parent.switch()


def _locals_run(a):
    x = "run local"  # noqa: F841
    _locals_inner(a + 1)


def test_suspended_frame_locals():
    g = greenlet(_locals_run)
    g.switch(5)
    frame = g.gr_frame
    assert frame.f_locals == {"a": 6, "local_in_inner": 12}
    assert frame.f_back.f_locals == {"a": 5, "x": "run local"}
    g.switch()


def test_suspended_frame_line_number_is_the_switch():
    main = getcurrent()
    lines = []

    def run():
        lines.append(sys._getframe().f_lineno + 1)
        main.switch()

    g = greenlet(run)
    g.switch()
    assert g.gr_frame.f_lineno == lines[0]
    g.switch()


def test_format_stack_of_suspended_greenlet():
    main = getcurrent()

    def level_two():
        main.switch()

    def level_one():
        level_two()

    g = greenlet(level_one)
    g.switch()
    text = "".join(traceback.format_stack(g.gr_frame))
    assert "in level_one" in text
    assert "in level_two" in text
    assert "main.switch()" in text
    assert text.index("level_one") < text.index("level_two")
    summary = traceback.extract_stack(g.gr_frame)
    assert [f.name for f in summary] == ["level_one", "level_two"]
    g.switch()


def test_running_greenlet_stack_not_linked_to_spawner():
    def run():
        return _names(sys._getframe())

    assert greenlet(run).switch() == ["run"]


def test_main_greenlet_frame_seen_from_child():
    main = getcurrent()
    here = sys._getframe()

    def run():
        return main.gr_frame

    frame = greenlet(run).switch()
    assert frame is here


def test_frame_of_greenlet_suspended_inside_map():
    main = getcurrent()

    def run():
        return list(map(lambda x: main.switch(x), [1, 2]))

    g = greenlet(run)
    g.switch()
    assert _names(g.gr_frame) == ["<lambda>", "run"]
    g.switch()
    g.switch()
    assert g.dead


def test_frames_through_c_callbacks_survive_other_switches(run_python):
    # greenlet issue 388 (3.12/3.13): walking f_back of a suspended greenlet
    # whose stack went through C-entered frames, after other greenlets have
    # overwritten that part of the C stack, must not crash.
    code = r"""
    import functools, gc, sys, traceback
    from greenlet import greenlet, getcurrent

    main = getcurrent()
    saved_frames = []

    def leaf():
        saved_frames.append(sys._getframe())
        return main.switch("leaf")

    def deep(n, how):
        if n == 0:
            return leaf()
        if how == "map":
            return list(map(lambda x: deep(n - 1, how), [0]))[0]
        if how == "sorted":
            out = []
            sorted([0], key=lambda x: out.append(deep(n - 1, how)) or 0)
            return out[0]
        if how == "reduce":
            return functools.reduce(lambda a, b: deep(n - 1, how), [0, 1])
        return deep(n - 1, how)

    def burn(n):
        if n == 0:
            return getcurrent().parent.switch(n)
        return burn(n - 1) + 1

    kinds = ["map", "sorted", "reduce", "plain"] * 3
    gs = []
    for i, how in enumerate(kinds):
        g = greenlet(deep)
        assert g.switch(10 + i, how) == "leaf"
        gs.append(g)
        # Overwrite the stack region with other greenlets' frames.
        b = greenlet(burn)
        b.switch(200)
        b.switch(0)

    for attempt in range(3):
        for g, how in zip(gs, kinds):
            names = []
            f = g.gr_frame
            while f is not None:
                names.append(f.f_code.co_name)
                f = f.f_back
            assert names[0] == "leaf", names
            assert names[-1] == "deep", names
            assert "burn" not in names
            traceback.format_stack(g.gr_frame)
            traceback.extract_stack(g.gr_frame)
        for fr in saved_frames:
            traceback.format_stack(fr)
        gc.collect()
        # Shuffle: interleave more switches between the walks.
        for _ in range(5):
            b = greenlet(burn)
            b.switch(300)
            b.switch(0)

    results = [g.switch(k) for k, g in enumerate(gs)]
    assert results == list(range(len(gs))), results
    assert all(g.dead for g in gs)
    for fr in saved_frames:
        traceback.format_stack(fr)
    del saved_frames[:]
    gc.collect()
    print("ok")
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.strip() == "ok"


def test_frame_objects_kept_after_greenlet_finishes(run_python):
    code = r"""
    import gc, sys, traceback
    from greenlet import greenlet, getcurrent

    main = getcurrent()
    kept = []

    def inner():
        kept.append(sys._getframe())
        main.switch()
        return "inner done"

    def run():
        return sorted([1], key=lambda x: inner() and x)

    gs = [greenlet(run) for _ in range(10)]
    for g in gs:
        g.switch()
    frames = [g.gr_frame for g in gs]
    for g in gs:
        assert g.switch() == [1]
    gc.collect()
    for f in frames + kept:
        traceback.format_stack(f)
        walk = f
        while walk is not None:
            walk = walk.f_back
    print("ok")
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.strip() == "ok"


def test_suspended_frames_in_many_greenlets_are_distinct():
    main = getcurrent()

    def run(i):
        marker = i  # noqa: F841
        main.switch()
        return i

    gs = [greenlet(run) for i in range(20)]
    for i, g in enumerate(gs):
        g.switch(i)
    assert [g.gr_frame.f_locals["marker"] for g in gs] == list(range(20))
    assert [g.switch() for g in gs] == list(range(20))
