"""How switch() arguments are packed and what the receiving side gets."""

import pytest

from greenlet import GreenletExit
from greenlet import getcurrent
from greenlet import greenlet

SENTINEL = object()

# (args, kwargs, value the resumed switch() returns)
PACKING_CASES = [
    ((), {}, ()),
    ((1,), {}, 1),
    ((None,), {}, None),
    (((),), {}, ()),
    (((1,),), {}, (1,)),
    (((1, 2),), {}, (1, 2)),
    ((1, 2), {}, (1, 2)),
    ((1, 2, 3), {}, (1, 2, 3)),
    ((), {"k": 1}, {"k": 1}),
    ((), {"a": 1, "b": 2}, {"a": 1, "b": 2}),
    ((1,), {"k": 1}, ((1,), {"k": 1})),
    ((1, 2), {"k": 1}, ((1, 2), {"k": 1})),
    ((None,), {"k": None}, ((None,), {"k": None})),
]

IDS = [
    "nothing", "one", "None", "empty-tuple", "one-tuple", "pair-tuple",
    "two", "three", "kw", "two-kw", "one-and-kw", "two-and-kw", "None-and-kw",
]


@pytest.mark.parametrize("args, kwargs, expected", PACKING_CASES, ids=IDS)
def test_resumed_switch_returns_packed_value(args, kwargs, expected):
    def run():
        received = getcurrent().parent.switch("ready")
        return [received]  # a list so the result itself is never unwrapped

    g = greenlet(run)
    assert g.switch() == "ready"
    result = g.switch(*args, **kwargs)
    assert result == [expected]
    assert type(result[0]) is type(expected)


@pytest.mark.parametrize("args, kwargs, expected", PACKING_CASES, ids=IDS)
def test_main_receives_packed_value_from_child(args, kwargs, expected):
    main = getcurrent()

    def run():
        main.switch(*args, **kwargs)

    g = greenlet(run)
    result = g.switch()
    assert result == expected
    assert type(result) is type(expected)
    g.switch()
    assert g.dead


@pytest.mark.parametrize("args, kwargs, expected", PACKING_CASES, ids=IDS)
def test_switch_to_self_returns_packed_value(args, kwargs, expected):
    result = getcurrent().switch(*args, **kwargs)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("args, kwargs, expected", PACKING_CASES, ids=IDS)
def test_switch_to_dead_returns_packed_value(args, kwargs, expected):
    g = greenlet(lambda: None)
    g.switch()
    assert g.dead
    result = g.switch(*args, **kwargs)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), ((1,), {}), ((1, 2), {}), ((), {"k": 1}), ((1,), {"k": 2}),
     (((1, 2),), {}), ((None,), {})],
)
def test_run_called_with_args_and_kwargs(args, kwargs):
    def run(*a, **k):
        return [a, k]

    g = greenlet(run)
    assert g.switch(*args, **kwargs) == [args, kwargs]


def test_run_signature_mismatch_raises_in_caller():
    def run(a):
        return a

    g = greenlet(run)
    with pytest.raises(TypeError):
        g.switch(1, 2)
    assert g.dead


def test_switch_empty_kwargs_is_like_no_kwargs():
    def run():
        return [getcurrent().parent.switch("ready")]

    g = greenlet(run)
    g.switch()
    assert g.switch(**{}) == [()]
    g = greenlet(run)
    g.switch()
    assert g.switch(7, **{}) == [7]


def test_kwargs_only_dict_is_a_fresh_dict():
    def run():
        return [getcurrent().parent.switch()]

    g = greenlet(run)
    g.switch()
    d = {"x": 1}
    result = g.switch(**d)[0]
    assert result == {"x": 1}
    assert result is not d


@pytest.mark.parametrize(
    "value",
    [None, (), (1,), (1, 2), [1], {"k": 1}, ((1,), {"k": 1}), SENTINEL, 0, ""],
    ids=["None", "empty", "one-tuple", "pair", "list", "dict", "args-kwargs",
         "object", "zero", "empty-str"],
)
def test_run_return_value_delivered_exactly(value):
    g = greenlet(lambda: value)
    result = g.switch()
    assert result == value
    assert type(result) is type(value)
    if value is SENTINEL or value is None:
        assert result is value


def test_run_returns_same_object():
    obj = ([1], [2])
    g = greenlet(lambda: obj)
    assert g.switch() is obj


def test_parent_switch_from_unstarted_parent_packs_single_arg():
    # The finishing child's result is the one positional argument.
    p = greenlet(lambda *a, **k: (a, k))
    c = greenlet(lambda: (1, 2), parent=p)
    assert c.switch() == (((1, 2),), {})


def test_greenletexit_returned_by_switch_is_instance():
    def run():
        raise GreenletExit(1, 2)

    result = greenlet(run).switch()
    assert isinstance(result, GreenletExit)
    assert result.args == (1, 2)


def test_throw_into_dead_with_greenletexit_returns_instance():
    g = greenlet(lambda: None)
    g.switch()
    exc = GreenletExit("value")
    assert g.throw(exc) is exc
