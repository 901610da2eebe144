"""contextvars and greenlets: empty start, gr_context rules, per-greenlet values."""

import contextvars
import threading

import pytest

from greenlet import getcurrent
from greenlet import greenlet

VAR = contextvars.ContextVar("VAR", default="default")


@pytest.fixture
def fresh_context():
    """Run the test body's switches from a fresh, known context."""
    main = getcurrent()
    old = main.gr_context
    main.gr_context = contextvars.Context()
    yield
    main.gr_context = old


pytestmark = pytest.mark.usefixtures("fresh_context")


def test_new_greenlet_starts_with_empty_context():
    VAR.set("main value")

    def run():
        return (VAR.get(), len(contextvars.copy_context()))

    assert greenlet(run).switch() == ("default", 0)
    assert VAR.get() == "main value"


def test_greenlet_set_does_not_leak_to_parent():
    VAR.set("main value")

    def run():
        VAR.set("child value")
        return VAR.get()

    assert greenlet(run).switch() == "child value"
    assert VAR.get() == "main value"


def test_unstarted_greenlet_context_is_none():
    assert greenlet(lambda: None).gr_context is None


def test_running_greenlet_context_is_the_current_context():
    ctx = contextvars.Context()

    def check():
        return getcurrent().gr_context is ctx

    assert ctx.run(check) is True

    def run():
        VAR.set("x")
        return getcurrent().gr_context is not None

    assert greenlet(run).switch() is True


def test_suspended_greenlet_context_holds_its_values():
    def run():
        VAR.set("in g")
        getcurrent().parent.switch()
        return VAR.get()

    g = greenlet(run)
    g.switch()
    ctx = g.gr_context
    assert isinstance(ctx, contextvars.Context)
    assert ctx[VAR] == "in g"
    assert ctx.run(VAR.get) == "in g"
    assert g.switch() == "in g"


def test_context_kept_at_death():
    def run():
        VAR.set("last value")

    g = greenlet(run)
    g.switch()
    assert g.dead
    assert g.gr_context[VAR] == "last value"


def test_dead_greenlet_that_never_set_a_var_has_no_context():
    g = greenlet(lambda: VAR.get())
    assert g.switch() == "default"
    assert g.gr_context is None


def test_set_context_before_start():
    ctx = contextvars.Context()
    ctx.run(VAR.set, "preset")

    def run():
        before = VAR.get()
        VAR.set("changed inside")
        return before

    g = greenlet(run)
    g.gr_context = ctx
    assert g.gr_context is ctx
    assert g.switch() == "preset"
    assert ctx[VAR] == "changed inside"
    assert g.gr_context is ctx


def test_set_context_none_means_empty():
    def run():
        VAR.set("something")
        getcurrent().parent.switch()
        return VAR.get()

    g = greenlet(run)
    g.switch()
    g.gr_context = None
    assert g.gr_context is None
    assert g.switch() == "default"


def test_set_context_of_suspended_greenlet():
    def run():
        VAR.set("original")
        getcurrent().parent.switch()
        return VAR.get()

    g = greenlet(run)
    g.switch()
    replacement = contextvars.Context()
    replacement.run(VAR.set, "replacement")
    g.gr_context = replacement
    assert g.switch() == "replacement"


def test_set_context_of_current_greenlet():
    VAR.set("main value")
    main = getcurrent()
    saved = main.gr_context
    new = contextvars.Context()
    main.gr_context = new
    assert VAR.get() == "default"
    assert main.gr_context is new
    VAR.set("in new")
    main.gr_context = saved
    assert VAR.get() == "main value"
    assert new[VAR] == "in new"


def test_set_context_of_running_child_to_none():
    def run():
        c = contextvars.Context()
        getcurrent().gr_context = c
        first = (VAR.get(), getcurrent().gr_context is c)
        VAR.set("set in c")
        getcurrent().gr_context = None
        return first + (VAR.get(), getcurrent().gr_context, c[VAR])

    assert greenlet(run).switch() == ("default", True, "default", None, "set in c")


@pytest.mark.parametrize("value", [1, "ctx", {}, object()])
def test_set_context_wrong_type(value):
    g = greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.gr_context = value
    assert str(info.value) == "greenlet context must be a contextvars.Context or None"
    with pytest.raises(TypeError) as info:
        getcurrent().gr_context = value
    assert str(info.value) == "greenlet context must be a contextvars.Context or None"


def test_delete_context_is_attribute_error():
    g = greenlet(lambda: None)
    with pytest.raises(AttributeError) as info:
        del g.gr_context
    assert str(info.value) == "can't delete context attribute"
    with pytest.raises(AttributeError) as info:
        del getcurrent().gr_context
    assert str(info.value) == "can't delete context attribute"


def test_main_context_seen_from_child():
    VAR.set("main value")
    main = getcurrent()
    main_ctx = main.gr_context

    def run():
        ctx = main.gr_context
        return ctx is main_ctx, ctx[VAR]

    assert greenlet(run).switch() == (True, "main value")


def test_values_kept_per_greenlet_across_switches():
    main = getcurrent()

    def run(name):
        VAR.set(name)
        for _ in range(3):
            main.switch(VAR.get())
            VAR.set(VAR.get() + "+")
        return VAR.get()

    VAR.set("main")
    a = greenlet(run)
    b = greenlet(run)
    assert a.switch("a") == "a"
    assert b.switch("b") == "b"
    assert VAR.get() == "main"
    assert a.switch() == "a+"
    assert b.switch() == "b+"
    assert a.switch() == "a++"
    assert VAR.get() == "main"
    assert b.switch() == "b++"
    assert a.switch() == "a+++"
    assert b.switch() == "b+++"
    assert VAR.get() == "main"


def test_sibling_switch_keeps_contexts():
    def run_a():
        VAR.set("a")
        b.switch()
        return VAR.get()

    def run_b():
        VAR.set("b")
        a.switch()

    a = greenlet(run_a)
    b = greenlet(run_b)
    assert a.switch() == "a"


def test_copy_context_run_as_run():
    VAR.set("main value")
    main = getcurrent()

    def body(arg):
        seen = VAR.get()
        VAR.set("changed in copy")
        resumed = main.switch("paused")
        return (seen, arg, resumed, VAR.get())

    ctx = contextvars.copy_context()
    g = greenlet(ctx.run)
    assert g.switch(body, 1) == "paused"
    assert VAR.get() == "main value"
    assert ctx[VAR] == "changed in copy"
    assert g.gr_context is ctx
    assert g.switch("go") == ("main value", 1, "go", "changed in copy")
    assert VAR.get() == "main value"


def test_copy_context_entered_in_suspended_greenlet_cannot_be_reentered():
    main = getcurrent()
    ctx = contextvars.copy_context()
    g = greenlet(ctx.run)
    g.switch(lambda: main.switch())
    with pytest.raises(RuntimeError, match="cannot enter context: .* is already entered"):
        ctx.run(lambda: None)
    g.switch()
    assert g.dead
    assert ctx.run(lambda: "usable again") == "usable again"


def test_copy_context_run_stress(run_python):
    # cpython#122772: greenlet(copy_context().run) crashed 3.13.0rc1.
    code = r"""
    import contextvars, gc
    from greenlet import greenlet, getcurrent

    var = contextvars.ContextVar("var")
    main = getcurrent()

    def body(n):
        var.set(n)
        for i in range(5):
            got = main.switch((n, var.get()))
            var.set(var.get() + got)
        return var.get()

    gs = []
    for n in range(50):
        g = greenlet(contextvars.copy_context().run)
        assert g.switch(body, n) == (n, n)
        gs.append(g)
    total = 0
    for round_ in range(5):
        for g in gs:
            r = g.switch(1)
            if g.dead:
                total += r
    gc.collect()
    # Suspended ones dropped while inside Context.run.
    half = []
    for n in range(20):
        g = greenlet(contextvars.copy_context().run)
        g.switch(body, n)
        half.append(g)
    del half
    gc.collect()
    print("total", total)
    """
    rc, out, err = run_python(code)
    assert rc == 0, err
    assert out.strip() == "total %d" % (sum(range(50)) + 50 * 5)


class _OtherThread:
    def __init__(self):
        self.ready = threading.Event()
        self.release = threading.Event()
        self.info = {}
        self.thread = threading.Thread(target=self._body)

    def _body(self):
        VAR.set("other thread")
        g = greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        self.info["suspended"] = g
        self.info["main"] = getcurrent()
        self.ready.set()
        self.release.wait()
        self.info["suspended"].switch()

    def __enter__(self):
        self.thread.start()
        self.ready.wait()
        return self.info

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join()


def test_context_of_greenlet_running_in_other_thread():
    with _OtherThread() as info:
        with pytest.raises(ValueError) as exc_info:
            info["main"].gr_context  # noqa: B018
        assert str(exc_info.value) == (
            "cannot get context of a greenlet that is running in a different thread"
        )
        with pytest.raises(ValueError) as exc_info:
            info["main"].gr_context = None
        assert str(exc_info.value) == (
            "cannot set context of a greenlet that is running in a different thread"
        )


def test_context_of_suspended_greenlet_of_other_thread_is_accessible():
    with _OtherThread() as info:
        # Suspended, not running: readable from here (it never set a var).
        assert info["suspended"].gr_context is None
        ctx = contextvars.Context()
        info["suspended"].gr_context = ctx
        assert info["suspended"].gr_context is ctx


def test_context_switches_with_tracer_running():
    import greenlet as greenlet_pkg

    seen = []

    def tracer(event, args):
        seen.append(VAR.get())

    def run():
        VAR.set("child")
        getcurrent().parent.switch()

    VAR.set("main")
    greenlet_pkg.settrace(tracer)
    try:
        g = greenlet(run)
        g.switch()
        g.switch()
    finally:
        greenlet_pkg.settrace(None)
    # Tracer runs in the target after the switch: it sees the target's context.
    assert seen == ["default", "main", "child", "main"]
