"""Generators built on greenlets: yield from nested plain functions."""

import functools

import pytest

from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet


def _genlet_body(func, args, kwargs):
    func(*args, **kwargs)
    raise StopIteration  # becomes the consumer's exception: the end


class genlet(greenlet):  # noqa: N801 - the classic name
    """An iterator whose body may yield from any nested function call."""

    def __init__(self, func, *args, **kwargs):
        # The run callable must not refer to the genlet itself: a suspended
        # greenlet whose run (or frame) refers to it can never be freed.
        super().__init__(run=functools.partial(_genlet_body, func, args, kwargs))

    def __iter__(self):
        return self

    def __next__(self):
        self.parent = getcurrent()
        try:
            return self.switch()
        except StopIteration:
            raise StopIteration from None


def Yield(value):  # noqa: N802 - reads like a keyword in the bodies
    g = getcurrent()
    while not isinstance(g, genlet):
        if g is None:
            raise RuntimeError("yield outside a genlet")
        g = g.parent
    consumer = g.parent
    del g
    consumer.switch(value)


def _countdown(n):
    while n > 0:
        Yield(n)
        n -= 1


def _tree_walk(node):
    """Yield the leaves of a nested list, from nested recursive calls."""
    if isinstance(node, list):
        for child in node:
            _tree_walk(child)
    else:
        Yield(node)


def test_simple_generator():
    assert list(genlet(_countdown, 5)) == [5, 4, 3, 2, 1]


def test_empty_generator():
    assert list(genlet(_countdown, 0)) == []


def test_yield_from_deeply_nested_calls():
    tree = [1, [2, [3, [4, [5]]]], [[6], 7], 8]
    assert list(genlet(_tree_walk, tree)) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_generators_consumed_in_parallel():
    a = genlet(_countdown, 3)
    b = genlet(_countdown, 4)
    assert list(zip(a, b)) == [(3, 4), (2, 3), (1, 2)]
    # b still has an item left.
    assert next(b) == 1
    with pytest.raises(StopIteration):
        next(b)


def test_nested_genlets():
    def outer(n):
        for i in range(n):
            # An inner genlet consumed from inside the outer one.
            Yield(sum(genlet(_countdown, i)))

    assert list(genlet(outer, 5)) == [0, 1, 3, 6, 10]


def test_genlet_inside_generator_expression_and_map():
    squares = [x * x for x in genlet(_countdown, 4)]
    assert squares == [16, 9, 4, 1]
    assert list(map(str, genlet(_countdown, 2))) == ["2", "1"]
    assert sorted(genlet(_tree_walk, [3, [1, 2]])) == [1, 2, 3]


def test_yield_from_c_callback_inside_genlet():
    def body(items):
        # Yield is called from inside map(), i.e. through a C frame.
        list(map(Yield, items))

    assert list(genlet(body, "abc")) == ["a", "b", "c"]


def test_exception_in_body_reaches_consumer():
    def body():
        Yield(1)
        raise ValueError("body failed")

    gen = genlet(body)
    assert next(gen) == 1
    with pytest.raises(ValueError, match="body failed"):
        next(gen)
    assert gen.dead


def test_abandoned_genlet_is_killed():
    log = []

    def body():
        try:
            Yield(1)
            Yield(2)
        except GreenletExit:
            log.append("killed")
            raise
        finally:
            log.append("finally")

    gen = genlet(body)
    assert next(gen) == 1
    del gen
    assert log == ["killed", "finally"]


def test_yield_outside_genlet_is_an_error():
    with pytest.raises(RuntimeError, match="yield outside a genlet"):
        Yield(1)


def test_large_generator():
    assert sum(genlet(_countdown, 10000)) == 10000 * 10001 // 2
