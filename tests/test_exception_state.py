"""Per-greenlet exception state and recursion depth."""

import sys

import pytest

from greenlet import getcurrent
from greenlet import greenlet


def test_new_greenlet_spawned_in_except_block_sees_no_exception():
    def run():
        return sys.exc_info()

    try:
        raise KeyError("outer")
    except KeyError:
        assert greenlet(run).switch() == (None, None, None)
        assert sys.exc_info()[0] is KeyError


def test_bare_raise_in_new_greenlet_has_nothing_to_reraise():
    def run():
        try:
            raise  # noqa: PLE0704 - deliberately nothing to re-raise
        except RuntimeError as exc:
            return str(exc)

    try:
        raise KeyError("outer")
    except KeyError:
        assert greenlet(run).switch() == "No active exception to reraise"


def test_exception_in_new_greenlet_has_no_context():
    def run():
        raise ValueError("inner")

    try:
        raise KeyError("outer")
    except KeyError:
        with pytest.raises(ValueError) as info:
            greenlet(run).switch()
    assert info.value.__context__ is None


def test_exc_info_isolated_and_restored_across_switches():
    main = getcurrent()
    seen = []

    def run():
        seen.append(sys.exc_info()[0])
        try:
            raise ValueError("inner")
        except ValueError:
            main.switch()
            seen.append(sys.exc_info()[0])
        seen.append(sys.exc_info()[0])

    g = greenlet(run)
    try:
        raise KeyError("outer")
    except KeyError:
        g.switch()
        # g is suspended inside its except block; main still sees KeyError.
        assert sys.exc_info()[0] is KeyError
        g.switch()
        assert sys.exc_info()[0] is KeyError
    assert sys.exc_info() == (None, None, None)
    assert seen == [None, ValueError, None]


def test_exc_info_of_main_not_visible_in_resumed_greenlet():
    main = getcurrent()

    def run():
        main.switch()
        return sys.exc_info()

    g = greenlet(run)
    g.switch()
    try:
        raise OSError("main only")
    except OSError:
        assert g.switch() == (None, None, None)


def test_exc_info_inside_generator_in_greenlet():
    main = getcurrent()

    def gen():
        try:
            raise IndexError("in gen")
        except IndexError:
            yield sys.exc_info()[0]
            main.switch()
            yield sys.exc_info()[0]

    def run():
        it = gen()
        first = next(it)
        second = next(it)
        return first, second, sys.exc_info()[0]

    g = greenlet(run)
    g.switch()
    assert sys.exc_info()[0] is None
    assert g.switch() == (IndexError, IndexError, None)


def test_sibling_exception_states_do_not_mix():
    main = getcurrent()
    log = []

    def run(exc_type):
        try:
            raise exc_type
        except exc_type:
            for _ in range(3):
                main.switch()
                log.append((exc_type, sys.exc_info()[0]))

    a = greenlet(run)
    b = greenlet(run)
    a.switch(KeyError)
    b.switch(ValueError)
    for _ in range(3):
        a.switch()
        b.switch()
    assert log == [(KeyError, KeyError), (ValueError, ValueError)] * 3


def _max_depth():
    """How many more Python frames can be entered from the caller."""

    def probe(n):
        try:
            return probe(n + 1)
        except RecursionError:
            return n

    return probe(0)


def _at_depth(n, then):
    if n == 0:
        return then()
    return _at_depth(n - 1, then)


@pytest.fixture
def recursion_limit():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


def test_deep_recursion_in_one_greenlet_does_not_count_against_another(recursion_limit):
    def run():
        while True:
            getcurrent().parent.switch(_max_depth())

    g = greenlet(run)
    shallow = g.switch()
    assert shallow > 900
    # Switch into g from very deep in main: g still has its own full depth.
    from_deep = _at_depth(800, g.switch)
    assert abs(from_deep - shallow) <= 5


def test_main_recursion_not_affected_by_deep_greenlet(recursion_limit):
    main = getcurrent()
    baseline = _max_depth()

    def run():
        _at_depth(800, main.switch)

    g = greenlet(run)
    g.switch()  # g is suspended 800 frames deep
    assert abs(_max_depth() - baseline) <= 5
    g.switch()


def test_new_greenlet_inherits_depth_of_start_point(recursion_limit):
    shallow = greenlet(_max_depth).switch()
    deep = _at_depth(500, greenlet(_max_depth).switch)
    # The frames below the first switch count for the new greenlet.
    assert 490 <= shallow - deep <= 510


def test_setrecursionlimit_honoured_in_suspended_greenlet(recursion_limit):
    def run():
        while True:
            getcurrent().parent.switch(_max_depth())

    g = greenlet(run)
    at_1000 = g.switch()
    sys.setrecursionlimit(400)
    at_400 = g.switch()
    sys.setrecursionlimit(1500)
    at_1500 = g.switch()
    assert 580 <= at_1000 - at_400 <= 620
    assert 480 <= at_1500 - at_1000 <= 520


def test_recursion_error_in_greenlet_is_clean(recursion_limit):
    def forever(n):
        return forever(n + 1) + 1

    baseline = _max_depth()
    g = greenlet(forever)
    with pytest.raises(RecursionError):
        g.switch(0)
    assert g.dead
    # Nothing is left over: full depth in main and in new greenlets.
    assert abs(_max_depth() - baseline) <= 5
    assert abs(greenlet(_max_depth).switch() - baseline) <= 10
    for _ in range(3):
        with pytest.raises(RecursionError):
            greenlet(forever).switch(0)
    assert abs(_max_depth() - baseline) <= 5


def test_recursion_error_caught_inside_greenlet(recursion_limit):
    def run():
        first = _max_depth()
        getcurrent().parent.switch(first)
        return _max_depth()

    g = greenlet(run)
    first = g.switch()
    assert abs(g.switch() - first) <= 5
