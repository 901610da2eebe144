"""Generators rebuilt on greenlets, where nested calls can yield too.

A Python generator can only ``yield`` from its own frame: to produce values
from a recursive helper every level has to be a generator and every call has
to be spelled ``yield from``.  A greenlet owns a whole stack, so a generator
built on one lets *any* function it calls, at any depth, hand a value to the
consumer with :func:`produce` -- even from inside a callback invoked by
library code that knows nothing about generators.

Run it: ``python examples/generator.py``.
"""

import ast

from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet


class _Producer(greenlet):
    """The greenlet behind a :class:`Generator`; :func:`produce` looks for it."""


def produce(value):
    """Hand *value* to the consumer of the running :class:`Generator`.

    Works from any call depth inside the generator's function; returns when
    the consumer asks for the next value.
    """
    current = getcurrent()
    if not isinstance(current, _Producer):
        raise RuntimeError("produce() called outside of a Generator")
    consumer = current.parent
    # Hold no reference to our own greenlet while suspended: a greenlet whose
    # frame refers to itself can never be freed, and so never killed.
    del current
    consumer.switch(value)


_FINISHED = object()


class Generator:
    """Iterate over the values that ``func(*args, **kwargs)`` produces.

    Like a native generator it runs lazily, one value per ``next()``; an
    exception raised by the function comes out of ``next()``; and dropping
    an unfinished generator (or calling :meth:`close`) kills its greenlet,
    running its ``finally`` blocks.
    """

    def __init__(self, func, *args, **kwargs):
        # The closure must not refer to self: the greenlet would keep its own
        # owner alive, and an abandoned generator would never be killed.
        def run():
            func(*args, **kwargs)
            return _FINISHED

        self._greenlet = _Producer(run)
        self._finished = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        # Whoever asks for the value receives it: iteration may move between
        # greenlets of the thread.
        self._greenlet.parent = getcurrent()
        try:
            value = self._greenlet.switch()
        except BaseException:
            self._finished = True
            raise
        if value is _FINISHED and self._greenlet.dead:
            self._finished = True
            raise StopIteration
        return value

    def close(self):
        """Stop the generator now, running its ``finally`` blocks."""
        self._finished = True
        if self._greenlet:  # started and not dead
            self._greenlet.parent = getcurrent()
            self._greenlet.throw(GreenletExit)


# --- the demo ----------------------------------------------------------------

TREE = (
    "project",
    [
        ("src", [("module.c", []), ("switch.c", []), ("platform", [("x86_64.h", [])])]),
        ("greenlet", [("__init__.py", [])]),
        ("README.md", []),
    ],
)


def walk(node, depth=0):
    """A plain recursive function: each level hands its node straight out."""
    name, children = node
    produce((depth, name))
    for child in children:
        walk(child, depth + 1)


def native_walk(node, depth=0):
    """The same walk as a native generator: every level must ``yield from``."""
    name, children = node
    yield (depth, name)
    for child in children:
        yield from native_walk(child, depth + 1)


class FunctionNames(ast.NodeVisitor):
    """ast.NodeVisitor calls us back; native generators cannot yield from here."""

    def visit_FunctionDef(self, node):
        produce(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef


SOURCE = '''
def outer():
    def inner():
        pass
    return inner

class Walker:
    def step(self):
        async def later():
            pass
'''


def main():
    print("A tree walked by a recursive helper that produces from every level:")
    greenlet_order = []
    for depth, name in Generator(walk, TREE):
        greenlet_order.append((depth, name))
        print("   " + "  " * depth + name)
    same = greenlet_order == list(native_walk(TREE))
    print(
        "Same order as the native generator, which needs 'yield from' at each level:",
        "yes" if same else "NO",
    )

    print()
    print("Function names found by ast.NodeVisitor callbacks, lazily:")
    names = Generator(FunctionNames().visit, ast.parse(SOURCE))
    print("   first:", next(names))
    print("   rest: ", ", ".join(names))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
