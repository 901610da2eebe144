"""Spawn tracking: gr_spawn_site and set_spawn_tracking / get_spawn_tracking."""

import gc
import inspect
import sys
import threading
import weakref

import pytest

from greenlet import get_spawn_tracking, getcurrent, greenlet, set_spawn_tracking

QUALNAMES = sys.version_info >= (3, 11)


@pytest.fixture(autouse=True)
def spawn_tracking_off_afterwards():
    before = get_spawn_tracking()
    yield
    set_spawn_tracking(before)


def function_name(code):
    return code.co_qualname if QUALNAMES else code.co_name


def sites_here(depth):
    """The (filename, lineno, function) of the caller and its callers, as
    they are right now: the line the caller is executing, innermost first."""
    frame = inspect.currentframe().f_back
    out = []
    while frame is not None and len(out) < depth:
        out.append(
            (frame.f_code.co_filename, frame.f_lineno, function_name(frame.f_code))
        )
        frame = frame.f_back
    return tuple(out)


# ---------------------------------------------------------------------------
# The switch


def test_off_by_default_in_a_fresh_interpreter(run_python):
    rc, out, err = run_python(
        """
        import greenlet
        g = greenlet.greenlet(lambda: None)
        print(greenlet.get_spawn_tracking(), g.gr_spawn_site)
        """
    )
    assert rc == 0, err
    assert out.split() == ["0", "None"]


def test_get_returns_what_was_set():
    for depth in (1, 3, 0, 10, 0):
        set_spawn_tracking(depth)
        assert get_spawn_tracking() == depth


def test_negative_depth_is_a_value_error():
    set_spawn_tracking(2)
    with pytest.raises(ValueError):
        set_spawn_tracking(-1)
    assert get_spawn_tracking() == 2


@pytest.mark.parametrize("bad", ["1", 1.0, None])
def test_depth_must_be_an_int(bad):
    with pytest.raises(TypeError):
        set_spawn_tracking(bad)


def test_off_gives_none():
    set_spawn_tracking(0)
    g = greenlet(lambda: None)
    assert g.gr_spawn_site is None
    g.switch()
    assert g.gr_spawn_site is None


def test_main_greenlets_have_no_spawn_site():
    set_spawn_tracking(5)
    out = {}

    def body():
        out["site"] = getcurrent().gr_spawn_site

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert out["site"] is None


# ---------------------------------------------------------------------------
# What is recorded


def test_depth_one_points_at_the_creating_line():
    set_spawn_tracking(1)
    g, expected = greenlet(lambda: None), sites_here(1)
    site = g.gr_spawn_site
    assert isinstance(site, tuple)
    assert len(site) == 1
    assert isinstance(site[0], tuple)
    filename, lineno, function = site[0]
    assert filename == test_depth_one_points_at_the_creating_line.__code__.co_filename
    assert isinstance(lineno, int)
    assert function == "test_depth_one_points_at_the_creating_line"
    assert site == expected


def test_line_is_exact_among_neighbours():
    set_spawn_tracking(1)
    before = greenlet()
    g, expected = greenlet(), sites_here(1)
    after = greenlet()
    assert g.gr_spawn_site == expected
    assert before.gr_spawn_site[0][1] == expected[0][1] - 1
    assert after.gr_spawn_site[0][1] == expected[0][1] + 1


def test_line_inside_a_loop_body_and_expression():
    set_spawn_tracking(1)
    made = []
    for i in range(3):
        x = i * 2
        made.append((x, greenlet(), sites_here(1)))
    for _x, g, expected in made:
        assert g.gr_spawn_site == expected


def _level3(run):
    return greenlet(run), sites_here(3)


def _level2(run):
    g, sites = _level3(run)
    return g, sites


def test_depth_three_innermost_first():
    set_spawn_tracking(3)
    g, expected = _level2(lambda: None)
    site = g.gr_spawn_site
    assert len(site) == 3
    assert [name for _f, _l, name in site] == [
        "_level3",
        "_level2",
        "test_depth_three_innermost_first",
    ]
    assert site == expected
    # The outermost recorded frame is this test, at the line calling _level2.
    lines, start = inspect.getsourcelines(test_depth_three_innermost_first)
    call_line = start + next(
        i for i, text in enumerate(lines) if "_level2(lambda" in text
    )
    assert site[2][1] == call_line
    assert site[2][0] == test_depth_three_innermost_first.__code__.co_filename


def test_depth_larger_than_the_stack_records_what_there_is():
    set_spawn_tracking(1000)
    g, expected = greenlet(), sites_here(1000)
    site = g.gr_spawn_site
    assert site == expected
    assert len(site) > 3


class Outer:
    def method(self):
        return greenlet(lambda: None), sites_here(1)

    class Inner:
        @staticmethod
        def make():
            return greenlet(), sites_here(1)


def test_qualified_function_names():
    set_spawn_tracking(1)
    g, expected = Outer().method()
    ((filename, lineno, function),) = g.gr_spawn_site
    assert (filename, lineno) == expected[0][:2]
    if QUALNAMES:
        assert function == "Outer.method"
    else:
        assert function == "method"
    g2, _ = Outer.Inner.make()
    assert g2.gr_spawn_site[0][2] == ("Outer.Inner.make" if QUALNAMES else "make")


def test_nested_function_name():
    set_spawn_tracking(1)

    def make():
        return greenlet(), sites_here(1)

    g, expected = make()
    assert g.gr_spawn_site == expected
    if QUALNAMES:
        assert g.gr_spawn_site[0][2] == "test_nested_function_name.<locals>.make"
    else:
        assert g.gr_spawn_site[0][2] == "make"


def test_created_through_c_code_points_at_the_python_line():
    set_spawn_tracking(2)
    gs, expected = list(map(greenlet, [None, None])), sites_here(2)
    for g in gs:
        assert g.gr_spawn_site == expected


def test_subclass_with_python_init_records_its_creator():
    set_spawn_tracking(1)

    class Sub(greenlet):
        def __init__(self, run=None):
            super().__init__(run)
            self.extra = 1

    g, expected = Sub(lambda: None), sites_here(1)
    assert g.gr_spawn_site == expected


def test_created_inside_a_greenlet_stops_at_its_run():
    set_spawn_tracking(10)

    def inner():
        return greenlet(), sites_here(10)

    def run():
        return inner()

    g, expected = greenlet(run).switch()
    site = g.gr_spawn_site
    assert site == expected
    assert [name for _f, _l, name in site] == [
        function_name(inner.__code__),
        function_name(run.__code__),
    ]


def test_created_in_another_thread():
    set_spawn_tracking(2)
    out = {}

    def make_in_thread():
        out["g"], out["expected"] = greenlet(), sites_here(2)

    t = threading.Thread(target=make_in_thread)
    t.start()
    t.join()
    assert out["g"].gr_spawn_site == out["expected"]
    assert out["g"].gr_spawn_site[0][2] == function_name(make_in_thread.__code__)


def test_tracking_applies_at_creation_only():
    set_spawn_tracking(1)
    tracked, expected = greenlet(lambda: None), sites_here(1)
    set_spawn_tracking(0)
    untracked = greenlet(lambda: None)
    assert tracked.gr_spawn_site == expected
    assert untracked.gr_spawn_site is None
    set_spawn_tracking(3)
    # Changing the depth later changes nothing recorded.
    assert tracked.gr_spawn_site == expected
    assert untracked.gr_spawn_site is None


def test_site_kept_through_every_state():
    set_spawn_tracking(1)
    main = getcurrent()
    g, expected = greenlet(lambda: main.switch()), sites_here(1)
    set_spawn_tracking(0)
    assert g.gr_spawn_site == expected
    g.switch()
    assert g.gr_state == "suspended"
    assert g.gr_spawn_site == expected
    g.switch()
    assert g.gr_state == "dead"
    assert g.gr_spawn_site == expected


# ---------------------------------------------------------------------------
# Nothing kept alive


class _Token:
    pass


def _spawn_with_local(depth_helper):
    token = _Token()  # only this frame references it
    ref = weakref.ref(token)
    g = depth_helper()
    return g, ref


def test_no_frames_kept_alive():
    set_spawn_tracking(3)
    gc.collect()

    def make():
        return greenlet(lambda: None)

    g, ref = _spawn_with_local(make)
    assert len(g.gr_spawn_site) == 3
    # The spawning frames have returned: their locals are gone, without
    # needing the collector.
    assert ref() is None
    assert g.gr_spawn_site[1][2] == function_name(_spawn_with_local.__code__)


def test_spawn_site_does_not_keep_functions_alive():
    set_spawn_tracking(2)
    ns = {}
    exec(  # noqa: S102 - a function whose only references we control
        "def make(greenlet):\n    return greenlet()\n",
        ns,
    )
    make = ns.pop("make")
    ref = weakref.ref(make)
    g = make(greenlet)
    del make, ns
    gc.collect()
    assert ref() is None
    # The site is still readable: it keeps what it needs.
    assert g.gr_spawn_site[0][1:] == (2, "make")
    assert g.gr_spawn_site[0][0] == "<string>"


def test_many_tracked_creations_do_not_leak_greenlets():
    set_spawn_tracking(5)
    refs = []
    for _ in range(2000):
        g = greenlet(lambda: None)
        refs.append(weakref.ref(g))
    del g
    assert all(r() is None for r in refs)


# ---------------------------------------------------------------------------
# Unusual creators


def test_created_in_a_generator():
    set_spawn_tracking(2)

    def gen():
        yield greenlet(), sites_here(2)

    g, expected = next(gen())
    assert g.gr_spawn_site == expected
    assert g.gr_spawn_site[0][2] == function_name(gen.__code__)


def test_created_in_a_comprehension():
    set_spawn_tracking(2)
    made = [(greenlet(), sites_here(2)) for _ in range(2)]
    for g, expected in made:
        assert g.gr_spawn_site == expected


def test_created_at_module_level(run_python):
    rc, out, err = run_python(
        """
        import greenlet
        greenlet.set_spawn_tracking(4)
        src = "import greenlet\\n\\ng = greenlet.greenlet()\\n"
        ns = {}
        exec(compile(src, "made_here.py", "exec"), ns)
        print(ns["g"].gr_spawn_site[0])
        print(len(ns["g"].gr_spawn_site))
        """
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "('made_here.py', 3, '<module>')"
    assert lines[1] == "2"  # the exec'd module and the calling script
