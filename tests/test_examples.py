"""The examples/ programs run, and the nested generator behaves like a generator."""

import gc
import importlib.util
import os
import subprocess
import sys
import weakref

import pytest

import greenlet

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
GENERATOR_PY = os.path.join(EXAMPLES, "generator.py")


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _load(GENERATOR_PY, "greenlet_example_generator")


def test_generator_example_runs_and_prints_the_walk(tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, GENERATOR_PY],
        cwd=str(tmp_path),  # never a source checkout, whose greenlet/ has no .so
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "   project" in lines
    assert "         x86_64.h" in lines  # depth 3, indented by the walk
    assert any("native generator" in line and line.endswith("yes") for line in lines)
    assert "   first: outer" in lines
    assert "   rest:  inner, step, later" in lines


def test_values_come_from_every_depth_in_call_order(gen):
    def leaf(n):
        gen.produce(("leaf", n))

    def middle(n):
        gen.produce(("middle", n))
        leaf(n)
        leaf(n + 1)

    def top():
        gen.produce("top")
        for n in (1, 10):
            middle(n)
        gen.produce("end")

    assert list(gen.Generator(top)) == [
        "top",
        ("middle", 1), ("leaf", 1), ("leaf", 2),
        ("middle", 10), ("leaf", 10), ("leaf", 11),
        "end",
    ]


def test_matches_native_generator_on_the_demo_tree(gen):
    assert list(gen.Generator(gen.walk, gen.TREE)) == list(gen.native_walk(gen.TREE))


def test_lazy_one_value_per_next(gen):
    ran = []

    def func():
        for i in range(3):
            ran.append(i)
            gen.produce(i)

    g = gen.Generator(func)
    assert ran == []
    assert next(g) == 0
    assert ran == [0]
    assert next(g) == 1
    assert ran == [0, 1]


def test_stop_iteration_at_end_and_after(gen):
    g = gen.Generator(gen.produce, "only")
    assert next(g) == "only"
    with pytest.raises(StopIteration):
        next(g)
    with pytest.raises(StopIteration):
        next(g)


def test_function_producing_nothing_is_empty(gen):
    assert list(gen.Generator(lambda: None)) == []


def test_none_is_an_ordinary_value(gen):
    assert list(gen.Generator(lambda: [gen.produce(None), gen.produce(None)])) == [None, None]


def test_exception_propagates_out_of_next(gen):
    def func():
        gen.produce(1)
        raise ValueError("boom")

    g = gen.Generator(func)
    assert next(g) == 1
    with pytest.raises(ValueError, match="boom"):
        next(g)
    with pytest.raises(StopIteration):
        next(g)


def test_abandoned_generator_is_killed_and_runs_finally(gen):
    events = []

    def func():
        try:
            for i in range(100):
                gen.produce(i)
        except greenlet.GreenletExit:
            events.append("GreenletExit")
            raise
        finally:
            events.append("finally")

    g = gen.Generator(func)
    assert next(g) == 0
    assert next(g) == 1
    ref = weakref.ref(g._greenlet)
    del g
    gc.collect()
    assert events == ["GreenletExit", "finally"]
    assert ref() is None


def test_close_runs_finally_and_ends_iteration(gen):
    events = []

    def func():
        try:
            gen.produce(1)
            gen.produce(2)
        finally:
            events.append("finally")

    g = gen.Generator(func)
    assert next(g) == 1
    g.close()
    assert events == ["finally"]
    with pytest.raises(StopIteration):
        next(g)
    g.close()  # closing twice is harmless


def test_generators_nest(gen):
    def inner(n):
        for i in range(n):
            gen.produce(i)

    def outer():
        for n in (1, 2):
            for value in gen.Generator(inner, n):
                gen.produce((n, value))

    assert list(gen.Generator(outer)) == [(1, 0), (2, 0), (2, 1)]


def test_consumed_from_another_greenlet(gen):
    g = gen.Generator(lambda: [gen.produce("a"), gen.produce("b")])
    assert next(g) == "a"
    assert greenlet.greenlet(lambda: next(g)).switch() == "b"
    assert list(g) == []


def test_produce_outside_a_generator_is_an_error(gen):
    with pytest.raises(RuntimeError, match="outside of a Generator"):
        gen.produce(1)
