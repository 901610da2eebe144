"""The greenlet._greenlet module, the type's shape and small helpers."""

import ctypes
import re
import sys

import pytest

import greenlet as greenlet_pkg
from greenlet import GreenletExit
from greenlet import _greenlet
from greenlet import getcurrent
from greenlet import greenlet

OTID = r"\(otid=0x(?:[0-9a-f]+|\(nil\))\)"

Py_TPFLAGS_HEAPTYPE = 1 << 9
Py_TPFLAGS_BASETYPE = 1 << 10
Py_TPFLAGS_READY = 1 << 12
Py_TPFLAGS_HAVE_GC = 1 << 14
Py_TPFLAGS_HAVE_VERSION_TAG = 1 << 18


def test_module_names():
    expected = {
        "greenlet", "UnswitchableGreenlet", "error", "GreenletExit",
        "getcurrent", "settrace", "gettrace", "set_thread_local",
        "get_pending_cleanup_count", "get_total_main_greenlets",
        "get_clocks_used_doing_optional_cleanup", "enable_optional_cleanup",
        "GREENLET_USE_GC", "GREENLET_USE_TRACING", "GREENLET_USE_CONTEXT_VARS",
        "GREENLET_USE_STANDARD_THREADING", "CLOCKS_PER_SEC", "_C_API",
    }
    assert expected <= set(dir(_greenlet))
    assert _greenlet.__name__ == "greenlet._greenlet"


def test_constants():
    assert _greenlet.GREENLET_USE_GC == 1
    assert _greenlet.GREENLET_USE_TRACING == 1
    assert _greenlet.GREENLET_USE_CONTEXT_VARS == 1
    assert _greenlet.GREENLET_USE_STANDARD_THREADING == 1
    assert isinstance(_greenlet.CLOCKS_PER_SEC, int)
    if sys.platform.startswith("linux"):
        assert _greenlet.CLOCKS_PER_SEC == 1000000


def test_package_reexports():
    for name in ("greenlet", "getcurrent", "GreenletExit", "error",
                 "settrace", "gettrace", "GREENLET_USE_GC",
                 "GREENLET_USE_TRACING", "GREENLET_USE_CONTEXT_VARS",
                 "CLOCKS_PER_SEC", "enable_optional_cleanup",
                 "get_clocks_used_doing_optional_cleanup", "_C_API"):
        assert getattr(greenlet_pkg, name) is getattr(_greenlet, name), name
    assert not hasattr(greenlet_pkg, "GREENLET_USE_STANDARD_THREADING")


def test_c_api_capsule():
    capsule = _greenlet._C_API
    assert type(capsule).__name__ == "PyCapsule"
    assert '"greenlet._C_API"' in repr(capsule)
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    table = get_pointer(capsule, b"greenlet._C_API")
    assert table
    # Slot 0 is the greenlet type, by address.
    assert ctypes.c_void_p.from_address(table).value == id(greenlet)


def test_exception_classes():
    assert issubclass(_greenlet.error, Exception)
    assert issubclass(GreenletExit, BaseException)
    assert not issubclass(GreenletExit, Exception)
    assert _greenlet.error.__module__ == "greenlet"
    assert GreenletExit.__module__ == "greenlet"
    assert _greenlet.error.__name__ == "error"
    assert GreenletExit.__name__ == "GreenletExit"
    assert repr(_greenlet.error) == "<class 'greenlet.error'>"
    assert repr(GreenletExit) == "<class 'greenlet.GreenletExit'>"


def test_type_names():
    assert greenlet.__module__ == "greenlet"
    assert greenlet.__name__ == "greenlet"
    assert greenlet.__qualname__ == "greenlet"
    assert repr(greenlet) == "<class 'greenlet.greenlet'>"
    assert _greenlet.greenlet is greenlet


def test_copies_on_the_type_dict():
    for name in ("getcurrent", "error", "GreenletExit", "settrace", "gettrace"):
        assert name in greenlet.__dict__, name
        assert getattr(greenlet, name) is getattr(_greenlet, name), name
    assert greenlet.getcurrent() is getcurrent()
    assert getcurrent().getcurrent() is getcurrent()


def test_type_layout():
    assert greenlet.__basicsize__ == 40
    assert greenlet.__itemsize__ == 0
    assert greenlet.__weakrefoffset__ == 16
    assert greenlet.__dictoffset__ == 24


def test_type_flags():
    flags = greenlet.__flags__
    for bit in (Py_TPFLAGS_BASETYPE, Py_TPFLAGS_READY, Py_TPFLAGS_HAVE_GC,
                Py_TPFLAGS_HAVE_VERSION_TAG):
        assert flags & bit, hex(bit)
    assert not flags & Py_TPFLAGS_HEAPTYPE


def test_type_is_immutable():
    with pytest.raises(TypeError):
        greenlet.some_new_attribute = 1
    assert not hasattr(greenlet, "some_new_attribute")


def test_no_main_or_frames_exposed_attribute():
    g = greenlet(lambda: None)
    assert not hasattr(g, "main")
    assert not hasattr(g, "gr_frames_always_exposed")


def test_repr_current_main():
    main = getcurrent()
    assert re.match(
        r"^<greenlet\.greenlet object at 0x[0-9a-f]+ %s current active started main>$"
        % OTID, repr(main)), repr(main)


def test_repr_suspended_main_seen_from_child():
    main = getcurrent()
    text = greenlet(lambda: repr(main)).switch()
    assert text.endswith(" suspended active started main>")


def test_repr_pending_running_suspended_dead():
    g = greenlet(lambda: getcurrent().parent.switch(repr(getcurrent())))
    assert re.match(r"^<greenlet\.greenlet object at 0x[0-9a-f]+ %s pending>$" % OTID,
                    repr(g)), repr(g)
    running = g.switch()
    assert running.endswith(" current active started>")
    assert repr(g).endswith(" suspended active started>")
    g.switch()
    assert re.match(r"^<greenlet\.greenlet object at 0x[0-9a-f]+ %s dead>$" % OTID,
                    repr(g)), repr(g)
    assert "0x%x" % id(g) in repr(g)


def test_repr_of_subclass_uses_its_name():
    class Custom(greenlet):
        pass

    c = Custom()
    assert repr(c).startswith("<Custom object at 0x")
    assert repr(c).endswith(" pending>")


def test_bool_and_dead():
    main = getcurrent()
    assert bool(main) is True
    assert main.dead is False
    g = greenlet(lambda: getcurrent().parent.switch())
    assert bool(g) is False and g.dead is False
    g.switch()
    assert bool(g) is True and g.dead is False
    g.switch()
    assert bool(g) is False and g.dead is True


def test_read_only_attributes():
    g = greenlet(lambda: None)
    for name in ("dead", "gr_frame", "_stack_saved"):
        with pytest.raises(AttributeError):
            setattr(g, name, 1)


def test_stack_saved():
    main = getcurrent()
    assert main._stack_saved == 0
    assert greenlet(lambda: None)._stack_saved == 0
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    assert g._stack_saved > 0

    def run():
        return getcurrent()._stack_saved, main._stack_saved

    own, of_main = greenlet(run).switch()
    assert own == 0
    assert of_main > 0
    g.switch()
    assert g._stack_saved == 0


def test_instance_dict_rules():
    g = greenlet(lambda: None)
    assert g.__dict__ == {}
    g.x = 1
    assert g.__dict__ == {"x": 1}
    g.__dict__ = {"y": 2}
    assert g.y == 2
    assert not hasattr(g, "x")

    class D(dict):
        pass

    g.__dict__ = D(z=3)
    assert type(g.__dict__) is D
    assert g.z == 3
    for bad in (1, None, [("a", 1)]):
        with pytest.raises(TypeError) as info:
            g.__dict__ = bad
        assert str(info.value) == "__dict__ must be a dictionary"
    with pytest.raises(TypeError) as info:
        del g.__dict__
    assert str(info.value) == "__dict__ may not be deleted"
    main = getcurrent()
    main.note = "on main"
    assert main.__dict__["note"] == "on main"
    del main.note


def test_module_accepts_attributes():
    _greenlet.with_del = "set by a test"
    try:
        assert _greenlet.with_del == "set by a test"
    finally:
        del _greenlet.with_del
    assert not hasattr(_greenlet, "with_del")


def test_set_thread_local():
    # PyThreadState_GetDict returns a borrowed reference: a py_object restype
    # would make ctypes steal it and eventually free the thread state's dict.
    raw_get_dict = ctypes.pythonapi.PyThreadState_GetDict
    raw_get_dict.restype = ctypes.c_void_p
    raw_get_dict.argtypes = []

    def get_dict():
        return ctypes.cast(raw_get_dict(), ctypes.py_object).value

    key = "greenlet-test-thread-local"
    assert _greenlet.set_thread_local(key, "value") is None
    try:
        assert get_dict()[key] == "value"
    finally:
        del get_dict()[key]
    with pytest.raises(TypeError):
        _greenlet.set_thread_local(key)


@pytest.fixture
def optional_cleanup_restored():
    was_enabled = _greenlet.get_clocks_used_doing_optional_cleanup() is not None
    yield
    _greenlet.enable_optional_cleanup(was_enabled)


@pytest.mark.usefixtures("optional_cleanup_restored")
def test_optional_cleanup_toggle():
    assert _greenlet.enable_optional_cleanup(False) is None
    assert _greenlet.get_clocks_used_doing_optional_cleanup() is None
    assert _greenlet.enable_optional_cleanup(True) is None
    clocks = _greenlet.get_clocks_used_doing_optional_cleanup()
    assert isinstance(clocks, int) and clocks >= 0
    # Enabling again keeps the existing count.
    _greenlet.enable_optional_cleanup(True)
    assert _greenlet.get_clocks_used_doing_optional_cleanup() >= clocks
    # Any truth value is accepted.
    _greenlet.enable_optional_cleanup(0)
    assert _greenlet.get_clocks_used_doing_optional_cleanup() is None
    _greenlet.enable_optional_cleanup("yes")
    assert _greenlet.get_clocks_used_doing_optional_cleanup() is not None
    with pytest.raises(TypeError):
        _greenlet.enable_optional_cleanup()


def test_counters_are_ints():
    assert isinstance(_greenlet.get_pending_cleanup_count(), int)
    getcurrent()
    assert _greenlet.get_total_main_greenlets() >= 1


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="only exists before 3.13")
def test_trash_delete_nesting_before_313():
    assert _greenlet.get_tstate_trash_delete_nesting() == 0
    assert greenlet(_greenlet.get_tstate_trash_delete_nesting).switch() == 0


@pytest.mark.skipif(sys.version_info < (3, 13), reason="removed in 3.13")
def test_trash_delete_nesting_absent_on_313():
    assert not hasattr(_greenlet, "get_tstate_trash_delete_nesting")


def test_unswitchable_greenlet_properties():
    cls = _greenlet.UnswitchableGreenlet
    assert issubclass(cls, greenlet)
    u = cls(lambda: "ran")
    assert u.force_switch_error is False
    assert u.force_slp_switch_error is False
    u.force_switch_error = 1
    assert u.force_switch_error is True
    u.force_switch_error = ""
    assert u.force_switch_error is False
    assert u.switch() == "ran"


def test_force_switch_error_on_first_start():
    u = _greenlet.UnswitchableGreenlet(lambda: "ran")
    u.force_switch_error = True
    with pytest.raises(SystemError) as info:
        u.switch()
    assert str(info.value) == "Failed to switch stacks into a greenlet for the first time."
    assert not u.dead and not u
    u.force_switch_error = False
    assert u.switch() == "ran"


def test_force_switch_error_on_resume():
    u = _greenlet.UnswitchableGreenlet(
        lambda: getcurrent().parent.switch("suspended") or "end")
    assert u.switch() == "suspended"
    u.force_switch_error = True
    with pytest.raises(SystemError) as info:
        u.switch()
    assert str(info.value) == "Failed to switch stacks into a running greenlet."
    assert u and not u.dead
    u.force_switch_error = False
    assert u.switch() == "end"


@pytest.mark.parametrize("started", [False, True])
def test_force_slp_switch_error_aborts(run_python, started):
    code = r"""
    import sys
    from greenlet import _greenlet, getcurrent
    u = _greenlet.UnswitchableGreenlet(
        lambda: getcurrent().parent.switch("suspended") or "end")
    if %r:
        print(u.switch(), flush=True)
    u.force_slp_switch_error = True
    print("switching", flush=True)
    try:
        u.switch()
    except BaseException as exc:
        print("raised", repr(exc), flush=True)
    print("continued", flush=True)
    """ % started
    rc, out, err = run_python(code)
    assert rc != 0
    assert "continued" not in out
    assert "raised" not in out
    assert out.splitlines()[-1] == "switching"
    assert "Fatal Python error" in err
