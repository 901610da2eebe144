"""greenlet's C API, exercised from a C extension built against the installed greenlet.h.

Binary compatibility is the point: extensions compiled against upstream
greenlet 3.x (gevent's wheels) reach greenlet only through the capsule
``greenlet._C_API`` and the ``PyGreenlet`` struct layout declared in the
header.  ``capi`` is the ``_test_capi`` extension (see ``_test_capi.c``);
``capi.NULL`` stands for a C NULL argument, and is what a wrapper returns when
the C function returned NULL without setting an exception.
"""

import contextlib
import ctypes
import gc
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading
import weakref

import pytest

import greenlet

BAD_ARGUMENT = "bad argument type for built-in operation"
SLOT_NAMES = [
    "PyGreenlet_Type",
    "PyExc_GreenletError",
    "PyExc_GreenletExit",
    "PyGreenlet_New",
    "PyGreenlet_GetCurrent",
    "PyGreenlet_Throw",
    "PyGreenlet_Switch",
    "PyGreenlet_SetParent",
    "PyGreenlet_MAIN",
    "PyGreenlet_STARTED",
    "PyGreenlet_ACTIVE",
    "PyGreenlet_GET_PARENT",
]


def _echo_args(*args, **kwargs):
    return (args, kwargs)


def _suspend_then_report():
    """Run for a greenlet: suspend once, then return what was thrown in, if anything."""
    try:
        greenlet.getcurrent().parent.switch("suspended")
    except BaseException as exc:  # noqa: B902 - reporting GreenletExit too
        return ("caught", type(exc), exc.args, exc)
    return ("resumed",)


def _suspended(capi):
    g = capi.new(_suspend_then_report, capi.NULL)
    assert g.switch() == "suspended"
    return g


def _capsule_name(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    return get_name(capsule)


def _capsule_pointer(capsule, name):
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, name)


def _in_other_thread(func):
    """Run func in a new thread; return what it returned (re-raising what it raised)."""
    box = {}

    def target():
        try:
            box["value"] = func()
        except BaseException as exc:  # noqa: B902
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextlib.contextmanager
def main_greenlet_of_a_live_thread():
    """Yield the main greenlet of another thread, which stays alive meanwhile.

    (Greenlets of threads that have exited are not queried here: upstream
    greenlet 3.5.6 on Python 3.10 can crash reading them right after the
    thread exits.)
    """
    ready = threading.Event()
    release = threading.Event()
    box = {}

    def target():
        box["main"] = greenlet.getcurrent()
        ready.set()
        release.wait(30)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        assert ready.wait(30)
        yield box["main"]
    finally:
        release.set()
        thread.join(30)
        del box["main"]


# ---- the capsule and the header ------------------------------------------


def test_capsule_is_reachable_from_package_and_extension_module():
    import greenlet._greenlet

    assert greenlet._C_API is greenlet._greenlet._C_API
    assert type(greenlet._C_API).__name__ == "PyCapsule"
    assert _capsule_name(greenlet._C_API) == b"greenlet._C_API"


def test_import_resolves_the_capsule_pointer(capi):
    pointer = _capsule_pointer(greenlet._C_API, b"greenlet._C_API")
    assert pointer
    assert capi.api_address() == pointer


def test_every_slot_is_filled(capi):
    addresses = [capi.slot_address(i) for i in range(len(SLOT_NAMES))]
    assert all(addresses), dict(zip(SLOT_NAMES, addresses))
    assert len(set(addresses)) == len(SLOT_NAMES)
    with pytest.raises(IndexError):
        capi.slot_address(len(SLOT_NAMES))


def test_header_declares_twelve_slots_in_upstream_order(capi):
    constants = capi.header_constants()
    assert constants.pop("PyGreenlet_API_pointers") == 12
    assert constants.pop("GREENLET_VERSION") == "1.0.0"
    assert {name + "_NUM": i for i, name in enumerate(SLOT_NAMES)} == constants


def test_installed_header_copies_are_identical(installed_headers):
    assert installed_headers, "greenlet/greenlet.h is not installed"
    contents = set()
    for path in installed_headers:
        with open(path, "rb") as f:
            contents.add(f.read())
    assert len(contents) == 1, installed_headers


def test_header_builds_a_second_translation_unit_cleanly(capi_include_dir, tmp_path):
    """The header compiles warning-free as C under -Wall -Wextra -Werror."""
    source = tmp_path / "tu.c"
    source.write_text(
        textwrap.dedent(
            """
            #include "greenlet/greenlet.h"
            int uses_api(PyObject *op)
            {
                PyGreenlet_Import();
                if (_PyGreenlet_API == NULL) return -1;
                return PyGreenlet_Check(op) ? PyGreenlet_ACTIVE((PyGreenlet *)op) : 0;
            }
            """
        )
    )
    cmd = (
        sysconfig.get_config_var("CC").split()
        + ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
        + ["-I" + capi_include_dir, "-I" + sysconfig.get_path("include")]
        + ["-c", str(source), "-o", str(tmp_path / "tu.o")]
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ---- slots 0-2: the type and the exceptions ------------------------------


def test_type_slot_is_the_greenlet_type(capi):
    assert capi.get_type() is greenlet.greenlet


def test_exception_slots_are_the_module_exceptions(capi):
    import greenlet._greenlet

    assert capi.get_error() is greenlet.error is greenlet._greenlet.error
    assert capi.get_exit() is greenlet.GreenletExit is greenlet._greenlet.GreenletExit
    assert issubclass(capi.get_error(), Exception)
    assert issubclass(capi.get_exit(), BaseException)
    assert not issubclass(capi.get_exit(), Exception)


# ---- the struct layout ---------------------------------------------------


def _plain_64bit_build(layout):
    return (
        layout["sizeof_pointer"] == 8
        and not sysconfig.get_config_var("Py_GIL_DISABLED")
        and not hasattr(sys, "getobjects")  # Py_TRACE_REFS
    )


def test_struct_layout_on_64bit(capi):
    layout = capi.layout()
    if not _plain_64bit_build(layout):
        pytest.skip("the 40-byte layout is for 64-bit GIL builds without Py_TRACE_REFS")
    assert layout["sizeof"] == 40
    assert layout["weakreflist"] == 16
    assert layout["dict"] == 24
    assert layout["pimpl"] == 32


def test_type_layout_matches_the_header(capi):
    layout = capi.layout()
    assert greenlet.greenlet.__basicsize__ == layout["sizeof"]
    assert greenlet.greenlet.__weakrefoffset__ == layout["weakreflist"]
    assert greenlet.greenlet.__dictoffset__ == layout["dict"]


def test_struct_fields_hold_the_live_dict_and_weakrefs(capi):
    g = greenlet.greenlet(lambda: None)
    g.attribute = "value"
    ref = weakref.ref(g)
    fields = capi.raw_fields(g)
    assert fields["dict"] is g.__dict__
    assert fields["dict"] == {"attribute": "value"}
    assert fields["has_weakrefs"] is True
    assert fields["has_pimpl"] is True
    assert ref() is g


def test_pygreenlet_check(capi):
    class Sub(greenlet.greenlet):
        pass

    assert capi.check(greenlet.getcurrent())
    assert capi.check(greenlet.greenlet())
    assert capi.check(Sub())
    assert not capi.check(greenlet.greenlet)
    assert not capi.check(object())
    assert not capi.check(None)
    assert not capi.check(capi.NULL)


# ---- slot 3: PyGreenlet_New ----------------------------------------------


def test_new_with_null_run_and_parent(capi):
    g = capi.new(capi.NULL, capi.NULL)
    assert type(g) is greenlet.greenlet
    assert g.parent is greenlet.getcurrent()
    assert not g
    assert not g.dead
    assert capi.is_started(g) == 0
    g.run = lambda: "assigned later"
    assert g.switch() == "assigned later"
    assert g.dead


def test_new_with_none_parent_keeps_the_default(capi):
    g = capi.new(capi.NULL, None)
    assert g.parent is greenlet.getcurrent()


def test_new_with_run(capi):
    g = capi.new(_echo_args, capi.NULL)
    assert g.parent is greenlet.getcurrent()
    assert g.switch(1, k=2) == ((1,), {"k": 2})
    assert g.dead


def test_new_with_run_and_parent(capi):
    parent = capi.new(lambda value: ("parent got", value), capi.NULL)
    child = capi.new(lambda: "child result", parent)
    assert child.parent is parent
    # The unstarted parent is started with the child's result.
    assert child.switch() == ("parent got", "child result")
    assert child.dead and parent.dead


def test_new_inside_a_greenlet_defaults_the_parent_to_it(capi):
    def body():
        made = capi.new(capi.NULL, capi.NULL)
        return made.parent is greenlet.getcurrent()

    assert greenlet.greenlet(body).switch() is True


def test_new_with_a_non_greenlet_parent_fails(capi):
    with pytest.raises(TypeError):
        capi.new(_echo_args, object())


# ---- slot 4: PyGreenlet_GetCurrent ---------------------------------------


def test_getcurrent_in_main_and_in_a_child(capi):
    assert capi.getcurrent() is greenlet.getcurrent()
    child = greenlet.greenlet(lambda: capi.getcurrent())
    assert child.switch() is child


def test_getcurrent_returns_a_new_reference(capi):
    assert capi.getcurrent_refcount_delta() == 1


def test_getcurrent_refcount_does_not_drift(capi):
    before, after = capi.getcurrent_many(100000)
    assert before == after
    current = greenlet.getcurrent()
    start = sys.getrefcount(current)
    for _ in range(10000):
        capi.getcurrent()
    assert sys.getrefcount(current) == start


def test_getcurrent_in_a_new_thread_creates_its_main_greenlet(capi):
    def probe():
        current = capi.getcurrent()
        return (
            current is greenlet.getcurrent(),
            capi.is_main(current),
            capi.is_started(current),
            capi.is_active(current),
            capi.get_parent(current) is capi.NULL,
            current is not main_here,
        )

    main_here = greenlet.getcurrent()
    assert _in_other_thread(probe) == (True, 1, 1, 1, True, True)


def test_getcurrent_while_finalizing_raises(capi, tmp_path):
    script = tmp_path / "finalizing.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            sys.path.insert(0, %r)
            import _test_capi

            class Late:
                def __del__(self, capi=_test_capi, os=os, sys=sys):
                    finalizing = sys.is_finalizing()
                    try:
                        capi.getcurrent()
                        outcome = "returned"
                    except BaseException as exc:
                        outcome = "%%s: %%s" %% (type(exc).__name__, exc)
                    os.write(1, ("finalizing=%%s %%s\\n" %% (finalizing, outcome)).encode())

            late = Late()
            late.cycle = late
            sys.modules["_late_for_finalization"] = late
            del late
            """
            % os.path.dirname(capi.__file__)
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "finalizing=True RuntimeError: greenlet is being finalized\n"


# ---- slot 5: PyGreenlet_Throw --------------------------------------------


@pytest.mark.parametrize(
    "typ, val, tb, expected_type, expected_args",
    [
        (ValueError, "NULL", "NULL", ValueError, ()),
        (ValueError, None, None, ValueError, ()),
        (ValueError, "x", "NULL", ValueError, ("x",)),
        (ValueError, ("a", "b"), "NULL", ValueError, ("a", "b")),
        (ValueError("i"), "NULL", "NULL", ValueError, ("i",)),
        (ValueError("i"), None, None, ValueError, ("i",)),
        (greenlet.GreenletExit, "NULL", "NULL", greenlet.GreenletExit, ()),
    ],
)
def test_throw_normalises_like_raise(capi, typ, val, tb, expected_type, expected_args):
    def c_arg(value):
        return capi.NULL if value == "NULL" else value

    g = _suspended(capi)
    result = capi.throw(g, typ, c_arg(val), c_arg(tb))
    assert result[:3] == ("caught", expected_type, expected_args)
    if isinstance(typ, BaseException):
        assert result[3] is typ
    assert g.dead


def test_throw_with_a_traceback(capi):
    try:
        raise KeyError("origin")
    except KeyError as exc:
        tb = exc.__traceback__
    g = _suspended(capi)
    kind, exc_type, args, exc = capi.throw(g, KeyError, "k", tb)
    assert (kind, exc_type, args) == ("caught", KeyError, ("k",))
    frames = []
    entry = exc.__traceback__
    while entry is not None:
        frames.append(entry.tb_frame)
        entry = entry.tb_next
    assert tb.tb_frame in frames


def test_throw_argument_errors_match_the_method(capi):
    g = _suspended(capi)
    null = capi.NULL
    cases = [
        # (C arguments, method arguments, message)
        (
            (ValueError("i"), "x", null),
            (ValueError("i"), "x"),
            "instance exception may not have a separate value",
        ),
        (
            (ValueError, null, 1),
            (ValueError, None, 1),
            "throw() third argument must be a traceback object",
        ),
        ((1, null, null), (1,), "exceptions must be classes, or instances, not int"),
        (("str", null, null), ("str",), "exceptions must be classes, or instances, not str"),
    ]
    for c_args, method_args, message in cases:
        with pytest.raises(TypeError) as via_c:
            capi.throw(g, *c_args)
        assert str(via_c.value) == message
        with pytest.raises(TypeError) as via_method:
            g.throw(*method_args)
        assert str(via_method.value) == message
    # The failed calls did not disturb the suspended greenlet.
    assert g and not g.dead
    assert g.switch() == ("resumed",)


def test_throw_into_an_unstarted_greenlet_never_calls_run(capi):
    calls = []
    g = capi.new(lambda: calls.append("run"), capi.NULL)
    with pytest.raises(ValueError, match="unstarted"):
        capi.throw(g, ValueError, "unstarted", capi.NULL)
    assert g.dead
    assert calls == []


def test_throw_into_a_dead_greenlet(capi):
    g = capi.new(lambda: None, capi.NULL)
    g.switch()
    assert g.dead
    result = capi.throw(g, greenlet.GreenletExit, capi.NULL, capi.NULL)
    assert isinstance(result, greenlet.GreenletExit)
    with pytest.raises(ValueError):
        capi.throw(g, ValueError, capi.NULL, capi.NULL)


def test_throw_propagates_an_uncaught_exception_to_the_caller(capi):
    def body():
        greenlet.getcurrent().parent.switch()

    g = capi.new(body, capi.NULL)
    g.switch()
    with pytest.raises(KeyError, match="through"):
        capi.throw(g, KeyError, "through", capi.NULL)
    assert g.dead


@pytest.mark.parametrize("target", ["non-greenlet", "NULL"])
def test_throw_bad_argument(capi, target):
    bad = object() if target == "non-greenlet" else capi.NULL
    with pytest.raises(TypeError, match=BAD_ARGUMENT):
        capi.throw(bad, ValueError, capi.NULL, capi.NULL)


# ---- slot 6: PyGreenlet_Switch -------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, received",
    [
        ("NULL", "NULL", ((), {})),
        ((), "NULL", ((), {})),
        ((1,), "NULL", ((1,), {})),
        ((1, 2), "NULL", ((1, 2), {})),
        ("NULL", {"k": 1}, ((), {"k": 1})),
        ((1,), {"k": 1}, ((1,), {"k": 1})),
        ((1,), [("k", 1)], ((1,), {})),
        ((1,), "not a dict", ((1,), {})),
        ((), {}, ((), {})),
    ],
)
def test_switch_starts_run_with_args_and_kwargs(capi, args, kwargs, received):
    def c_arg(value):
        return capi.NULL if value == "NULL" else value

    g = capi.new(_echo_args, capi.NULL)
    assert capi.switch(g, c_arg(args), c_arg(kwargs)) == received
    assert g.dead


@pytest.mark.parametrize(
    "args, kwargs, resumed_with",
    [
        ("NULL", "NULL", ()),
        ((), "NULL", ()),
        ((1,), "NULL", 1),
        ((1, 2), "NULL", (1, 2)),
        ("NULL", {"k": 1}, {"k": 1}),
        ((1,), {"k": 1}, ((1,), {"k": 1})),
        ((1,), [("k", 1)], 1),
        ((), {}, ()),
    ],
)
def test_switch_resumes_with_the_packed_value(capi, args, kwargs, resumed_with):
    def c_arg(value):
        return capi.NULL if value == "NULL" else value

    def body():
        return ("resumed with", greenlet.getcurrent().parent.switch("suspended"))

    g = capi.new(body, capi.NULL)
    assert capi.switch(g, capi.NULL, capi.NULL) == "suspended"
    assert capi.switch(g, c_arg(args), c_arg(kwargs)) == ("resumed with", resumed_with)


def test_switch_back_and_forth_from_one_c_frame(capi):
    def doubler():
        value = greenlet.getcurrent().parent.switch("ready")
        while True:
            value = greenlet.getcurrent().parent.switch(value * 2)

    g = capi.new(doubler, capi.NULL)
    assert g.switch() == "ready"
    assert capi.switch_loop_in_c(g, 200) == [2 * i for i in range(200)]


def test_switch_between_two_c_frames(capi):
    """Both sides of the ping-pong are suspended inside C calls."""

    def ponger():
        # Started by a switch carrying (0,); answers each value from inside C.
        value = greenlet.getcurrent().parent.switch("pong ready")
        results = capi.switch_loop_in_c(greenlet.getcurrent().parent, 50)
        return ("ponger done", value, results)

    g = capi.new(ponger, capi.NULL)
    assert capi.switch(g, capi.NULL, capi.NULL) == "pong ready"
    # Each switch from our C loop resumes ponger's C loop, and vice versa.
    got = capi.switch_loop_in_c(g, 51)
    assert got == list(range(50)) + [("ponger done", 0, list(range(1, 51)))]


def test_switch_raises_what_run_raises(capi):
    def body():
        raise KeyError("from run")

    g = capi.new(body, capi.NULL)
    with pytest.raises(KeyError, match="from run"):
        capi.switch(g, capi.NULL, capi.NULL)
    assert g.dead


def test_switch_returns_greenlet_exit_raised_by_run(capi):
    def body():
        raise greenlet.GreenletExit("bye")

    g = capi.new(body, capi.NULL)
    result = capi.switch(g, capi.NULL, capi.NULL)
    assert isinstance(result, greenlet.GreenletExit)
    assert result.args == ("bye",)


def test_switch_to_self_returns_the_args(capi):
    current = greenlet.getcurrent()
    assert capi.switch(current, (1, 2), capi.NULL) == (1, 2)
    assert capi.switch(current, capi.NULL, capi.NULL) == ()


def test_switch_to_a_greenlet_of_another_thread_fails(capi):
    with main_greenlet_of_a_live_thread() as other_main:
        with pytest.raises(greenlet.error, match="Cannot switch to a different thread"):
            capi.switch(other_main, capi.NULL, capi.NULL)
        with pytest.raises(greenlet.error, match="Cannot switch to a different thread"):
            capi.throw(other_main, ValueError, capi.NULL, capi.NULL)


@pytest.mark.parametrize("target", ["non-greenlet", "NULL"])
def test_switch_bad_argument(capi, target):
    bad = object() if target == "non-greenlet" else capi.NULL
    with pytest.raises(TypeError, match=BAD_ARGUMENT):
        capi.switch(bad, capi.NULL, capi.NULL)


# ---- slot 7: PyGreenlet_SetParent ----------------------------------------


def test_set_parent(capi):
    first = capi.new(lambda value: ("first got", value), capi.NULL)
    second = capi.new(lambda value: ("second got", value), capi.NULL)
    child = capi.new(lambda: "child result", first)
    assert capi.set_parent(child, second) == 0
    assert child.parent is second
    assert child.switch() == ("second got", "child result")
    assert not first


def test_set_parent_errors_match_the_setter(capi):
    g1 = capi.new(capi.NULL, capi.NULL)
    g2 = capi.new(capi.NULL, capi.NULL)
    assert capi.set_parent(g1, g2) == 0
    with pytest.raises(ValueError, match="^cyclic parent chain$"):
        capi.set_parent(g2, g1)
    with pytest.raises(ValueError, match="^cyclic parent chain$"):
        capi.set_parent(g1, g1)
    with pytest.raises(AttributeError, match="^cannot set the parent of a main greenlet$"):
        capi.set_parent(greenlet.getcurrent(), g1)
    with pytest.raises(TypeError) as exc:
        capi.set_parent(g1, None)
    assert str(exc.value) == "GreenletChecker: Expected any type of greenlet, not NoneType"
    with pytest.raises(TypeError) as exc:
        capi.set_parent(g1, 1)
    assert str(exc.value) == "GreenletChecker: Expected any type of greenlet, not int"
    # A C NULL parent is the setter's delete.
    with pytest.raises(AttributeError, match="^can't delete attribute$"):
        capi.set_parent(g1, capi.NULL)
    assert g1.parent is g2


def test_set_parent_errors_equal_the_setter_errors(capi):
    g1 = capi.new(capi.NULL, capi.NULL)
    g2 = capi.new(capi.NULL, g1)
    main = greenlet.getcurrent()
    for target, value in [(g1, g2), (g1, g1), (g1, None), (g1, "x"), (main, g1)]:
        with pytest.raises(Exception) as via_setter:
            target.parent = value
        with pytest.raises(Exception) as via_c:
            capi.set_parent(target, value)
        assert type(via_c.value) is type(via_setter.value)
        assert str(via_c.value) == str(via_setter.value)
    with pytest.raises(AttributeError) as via_setter:
        del g1.parent
    with pytest.raises(AttributeError) as via_c:
        capi.set_parent(g1, capi.NULL)
    assert str(via_c.value) == str(via_setter.value)


def test_set_parent_to_another_thread_once_started(capi):
    g = _suspended(capi)
    with main_greenlet_of_a_live_thread() as other_main:
        with pytest.raises(ValueError, match="^parent cannot be on a different thread$"):
            capi.set_parent(g, other_main)
    assert g.parent is greenlet.getcurrent()
    assert g.switch() == ("resumed",)


def test_set_parent_on_a_non_greenlet_fails(capi):
    # Upstream reports this one through the parent checker rather than
    # PyErr_BadArgument; either way it is a TypeError and -1.
    with pytest.raises(TypeError) as exc:
        capi.set_parent(object(), greenlet.getcurrent())
    assert str(exc.value) in (
        BAD_ARGUMENT,
        "GreenletChecker: Expected any type of greenlet, not object",
    )


# ---- slots 8-10: PyGreenlet_MAIN, PyGreenlet_STARTED, PyGreenlet_ACTIVE ---


def _flags(capi, g):
    return (capi.is_main(g), capi.is_started(g), capi.is_active(g))


def test_state_flags_through_a_life(capi):
    main = greenlet.getcurrent()
    assert _flags(capi, main) == (1, 1, 1)

    seen_inside = []

    def body():
        seen_inside.append(_flags(capi, greenlet.getcurrent()))
        seen_inside.append(_flags(capi, main))
        greenlet.getcurrent().parent.switch()

    g = capi.new(body, capi.NULL)
    assert _flags(capi, g) == (0, 0, 0)
    g.switch()
    assert seen_inside == [(0, 1, 1), (1, 1, 1)]
    assert _flags(capi, g) == (0, 1, 1)
    g.switch()
    assert g.dead
    assert _flags(capi, g) == (0, 1, 0)


def test_state_flags_on_a_subclass(capi):
    class Sub(greenlet.greenlet):
        def run(self):
            greenlet.getcurrent().parent.switch()

    g = Sub()
    assert _flags(capi, g) == (0, 0, 0)
    g.switch()
    assert _flags(capi, g) == (0, 1, 1)
    g.throw()
    assert _flags(capi, g) == (0, 1, 0)


@pytest.mark.parametrize("name", ["is_main", "is_started", "is_active"])
@pytest.mark.parametrize("target", ["non-greenlet", "NULL"])
def test_state_flags_bad_argument(capi, name, target):
    bad = object() if target == "non-greenlet" else capi.NULL
    with pytest.raises(TypeError, match=BAD_ARGUMENT):
        getattr(capi, name)(bad)


# ---- slot 11: PyGreenlet_GetParent ---------------------------------------


@pytest.mark.parametrize("name", ["get_parent", "get_parent_alias"])
def test_get_parent(capi, name):
    get = getattr(capi, name)
    parent = capi.new(capi.NULL, capi.NULL)
    child = capi.new(capi.NULL, parent)
    assert get(child) is parent
    assert get(parent) is greenlet.getcurrent()


@pytest.mark.parametrize("name", ["get_parent", "get_parent_alias"])
def test_get_parent_of_main_is_null_without_exception(capi, name):
    assert getattr(capi, name)(greenlet.getcurrent()) is capi.NULL
    with main_greenlet_of_a_live_thread() as other_main:
        assert getattr(capi, name)(other_main) is capi.NULL
        assert _flags(capi, other_main) == (1, 1, 1)


def test_get_parent_returns_a_new_reference(capi):
    parent = capi.new(capi.NULL, capi.NULL)
    child = capi.new(capi.NULL, parent)
    assert capi.get_parent_refcount_delta(child) == 1
    start = sys.getrefcount(parent)
    for _ in range(10000):
        capi.get_parent(child)
    assert sys.getrefcount(parent) == start


@pytest.mark.parametrize("name", ["get_parent", "get_parent_alias"])
@pytest.mark.parametrize("target", ["non-greenlet", "NULL"])
def test_get_parent_bad_argument(capi, name, target):
    bad = object() if target == "non-greenlet" else capi.NULL
    with pytest.raises(TypeError, match=BAD_ARGUMENT):
        getattr(capi, name)(bad)


# ---- lifetime of greenlets made through the C API -------------------------


def test_dropping_a_suspended_c_made_greenlet_kills_it(capi):
    log = []

    def body():
        try:
            greenlet.getcurrent().parent.switch("suspended")
        except greenlet.GreenletExit as exc:
            log.append(("exit", exc.args))
            raise
        finally:
            log.append("finally")

    g = capi.new(body, capi.NULL)
    assert capi.switch(g, capi.NULL, capi.NULL) == "suspended"
    ref = weakref.ref(g)
    del g
    assert ref() is None
    assert log == [
        ("exit", ("Killing the greenlet because all references have vanished.",)),
        "finally",
    ]


def test_cycle_through_an_unstarted_c_made_greenlet_is_collected(capi):
    g = capi.new(capi.NULL, capi.NULL)
    g.self_reference = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None
