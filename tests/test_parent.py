"""The parent attribute: getter, setter rules and every error message."""

import threading

import pytest

import greenlet as greenlet_pkg
from greenlet import getcurrent
from greenlet import greenlet


def test_main_greenlet_has_no_parent():
    assert getcurrent().parent is None


def test_default_parent_is_current_greenlet():
    main = getcurrent()
    g = greenlet(lambda: None)
    assert g.parent is main

    def run():
        return greenlet(lambda: None).parent

    outer = greenlet(run)
    assert outer.switch() is outer


def test_parent_keyword_and_positional():
    p = greenlet(lambda *a: a)
    assert greenlet(lambda: None, parent=p).parent is p
    assert greenlet(lambda: None, p).parent is p
    assert greenlet(parent=p).parent is p


def test_parent_none_keeps_default():
    assert greenlet(lambda: None, parent=None).parent is getcurrent()
    assert greenlet(None, None).parent is getcurrent()


def test_parent_of_subclass_instance_is_accepted():
    class Sub(greenlet):
        pass

    p = Sub(lambda *a: ("sub parent", a))
    g = greenlet(lambda: 1)
    g.parent = p
    assert g.parent is p
    assert g.switch() == ("sub parent", (1,))


def test_setting_parent_redirects_result():
    p = greenlet(lambda x: ("p got", x))
    g = greenlet(lambda: "g result")
    g.parent = p
    assert g.switch() == ("p got", "g result")


def test_changing_parent_of_suspended_greenlet():
    def catcher():
        value = getcurrent().parent.switch("catcher ready")
        return ("catcher received", value)

    catcher_g = greenlet(catcher)
    assert catcher_g.switch() == "catcher ready"

    def run():
        getcurrent().parent.switch("suspended")
        return "finished"

    g = greenlet(run)
    assert g.switch() == "suspended"
    g.parent = catcher_g
    assert g.parent is catcher_g
    assert g.switch() == ("catcher received", "finished")


def test_running_greenlet_can_change_own_parent():
    other = greenlet(lambda x: ("other got", x))

    def run():
        getcurrent().parent = other
        return "done"

    assert greenlet(run).switch() == ("other got", "done")


@pytest.mark.parametrize(
    "value, name",
    [(None, "NoneType"), (1, "int"), (object(), "object"), (greenlet, "type"),
     ("main", "str")],
)
def test_setting_non_greenlet_is_type_error(value, name):
    g = greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.parent = value
    assert str(info.value) == (
        "GreenletChecker: Expected any type of greenlet, not %s" % name
    )
    assert g.parent is getcurrent()


def test_constructor_non_greenlet_parent_is_type_error():
    with pytest.raises(TypeError) as info:
        greenlet(lambda: None, parent=1)
    assert str(info.value) == "GreenletChecker: Expected any type of greenlet, not int"
    with pytest.raises(TypeError) as info:
        greenlet(None, "x")
    assert str(info.value) == "GreenletChecker: Expected any type of greenlet, not str"


def test_delete_parent_is_attribute_error():
    g = greenlet(lambda: None)
    with pytest.raises(AttributeError) as info:
        del g.parent
    assert str(info.value) == "can't delete attribute"
    assert g.parent is getcurrent()
    with pytest.raises(AttributeError) as info:
        del getcurrent().parent
    assert str(info.value) == "can't delete attribute"


def test_self_parent_is_cyclic():
    g = greenlet(lambda: None)
    with pytest.raises(ValueError) as info:
        g.parent = g
    assert str(info.value) == "cyclic parent chain"
    assert g.parent is getcurrent()


def test_two_and_three_cycles():
    a = greenlet(lambda: None)
    b = greenlet(lambda: None, parent=a)
    with pytest.raises(ValueError) as info:
        a.parent = b
    assert str(info.value) == "cyclic parent chain"
    c = greenlet(lambda: None, parent=b)
    with pytest.raises(ValueError) as info:
        a.parent = c
    assert str(info.value) == "cyclic parent chain"
    assert a.parent is getcurrent()


def test_cyclic_parent_in_constructor_impossible_but_checked_on_running():
    # The running greenlet's parent cannot become one of its descendants.
    def run():
        me = getcurrent()
        child = greenlet(lambda: None)
        try:
            me.parent = child
        except ValueError as exc:
            return str(exc)

    assert greenlet(run).switch() == "cyclic parent chain"


@pytest.mark.parametrize("value", ["None", "self", "child"])
def test_main_greenlet_parent_cannot_be_set(value):
    main = getcurrent()
    target = {"None": None, "self": main, "child": greenlet(lambda: None)}[value]
    with pytest.raises(AttributeError) as info:
        main.parent = target
    assert str(info.value) == "cannot set the parent of a main greenlet"
    assert main.parent is None


def test_garbage_collected_lineage_messages(run_python):
    # tp_clear (what the cycle collector calls) drops a greenlet's parent; its
    # lineage then has no main greenlet.  Call tp_clear directly.
    code = r"""
    import ctypes
    from greenlet import greenlet, getcurrent, error

    TP_CLEAR_INDEX = 24  # PyTypeObject slot, stable on 3.10 - 3.13
    addr = ctypes.c_void_p.from_address(id(greenlet) + TP_CLEAR_INDEX * 8).value
    tp_clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(addr)

    g = greenlet(lambda *a: a)
    assert tp_clear(g) == 0
    assert g.parent is None
    try:
        g.switch(1)
    except error as exc:
        print("switch:", exc)
    h = greenlet(lambda: 0)
    try:
        h.parent = g
    except ValueError as exc:
        print("set unstarted:", exc)
    assert h.parent is getcurrent()
    k = greenlet(lambda: getcurrent().parent.switch("k"))
    k.switch()
    try:
        k.parent = g
    except ValueError as exc:
        print("set started:", exc)
    print("h runs:", h.switch())
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.splitlines() == [
        "switch: cannot switch to a garbage collected greenlet",
        "set unstarted: parent must not be garbage collected",
        "set started: parent must not be garbage collected",
        "h runs: 0",
    ]


@pytest.fixture
def other_thread():
    """A live thread holding a suspended greenlet and its main greenlet."""
    ready = threading.Event()
    release = threading.Event()
    info = {}

    def body():
        info["suspended"] = greenlet(lambda: getcurrent().parent.switch())
        info["suspended"].switch()
        info["unstarted"] = greenlet(lambda: "ran in main thread")
        info["main"] = getcurrent()
        ready.set()
        release.wait()

    t = threading.Thread(target=body)
    t.start()
    ready.wait()
    yield info
    release.set()
    t.join()


def test_started_greenlet_parent_cannot_be_on_other_thread(other_thread):
    def run():
        getcurrent().parent.switch()

    g = greenlet(run)
    g.switch()
    for candidate in (other_thread["main"], other_thread["suspended"]):
        with pytest.raises(ValueError) as info:
            g.parent = candidate
        assert str(info.value) == "parent cannot be on a different thread"
    assert g.parent is getcurrent()
    g.switch()


def test_running_greenlet_parent_cannot_be_on_other_thread(other_thread):
    def run():
        try:
            getcurrent().parent = other_thread["main"]
        except ValueError as exc:
            return str(exc)

    assert greenlet(run).switch() == "parent cannot be on a different thread"


def test_unstarted_greenlet_may_get_parent_from_other_thread(other_thread):
    g = greenlet(lambda: "never")
    g.parent = other_thread["main"]
    assert g.parent is other_thread["main"]
    with pytest.raises(greenlet_pkg.error) as info:
        g.switch()
    message = str(info.value)
    assert message.startswith("Cannot switch to a different thread")
    assert "\n\tCurrent:  " in message
    assert "\n\tExpected: " in message
    assert not g.dead and not g
    # Moving it back to this thread makes it usable.
    g.parent = getcurrent()
    assert g.switch() == "never"


def test_unstarted_greenlet_constructed_with_other_thread_parent(other_thread):
    g = greenlet(lambda: None, parent=other_thread["suspended"])
    with pytest.raises(greenlet_pkg.error) as info:
        g.switch()
    assert "Cannot switch to a different thread" in str(info.value)


def test_unstarted_greenlet_from_other_thread_can_be_reparented(other_thread):
    g = other_thread["unstarted"]
    with pytest.raises(greenlet_pkg.error):
        g.switch()
    g.parent = getcurrent()
    assert g.switch() == "ran in main thread"
