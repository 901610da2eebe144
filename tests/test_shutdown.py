"""Interpreter shutdown with greenlets in every state (each in a subprocess)."""

import sys

PRELUDE = r"""
import atexit, os, sys, threading, time
import greenlet
from greenlet import greenlet as Greenlet, getcurrent

def say(text, _write=os.write):
    # os.write survives module teardown; print() may not.
    _write(1, (text + "\n").encode())

def suspended_run(tag):
    try:
        getcurrent().parent.switch()
    finally:
        say("finally " + tag)
"""


def _run(run_python, body):
    rc, out, err = run_python(PRELUDE + body)
    return rc, out.splitlines(), err


def test_exit_with_unstarted_and_suspended_greenlets_in_main(run_python):
    rc, lines, err = _run(run_python, r"""
unstarted = [Greenlet(suspended_run) for _ in range(3)]
suspended = []
for i in range(3):
    g = Greenlet(suspended_run)
    g.switch("main-%d" % i)
    suspended.append(g)
def nested_run():
    inner = Greenlet(suspended_run)
    inner.switch("nested")
    suspended.append(inner)
    getcurrent().parent.switch()

nested = Greenlet(nested_run)
nested.switch()
say("main done")
""")
    assert rc == 0, err
    # Upstream: greenlets still suspended at finalization are not resumed.
    assert lines == ["main done"]
    assert "Fatal" not in err and "Traceback" not in err


def test_exit_while_running_inside_a_greenlet(run_python):
    rc, lines, err = _run(run_python, r"""
def run():
    other = Greenlet(suspended_run)
    other.switch("other")
    say("leaving from inside a greenlet")
    sys.exit(0)

Greenlet(run).switch()
""")
    assert rc == 0, err
    assert lines[0] == "leaving from inside a greenlet"


def test_exit_with_daemon_threads_holding_greenlets(run_python):
    rc, lines, err = _run(run_python, r"""
ready = threading.Barrier(4)

def in_main_greenlet():
    g = Greenlet(suspended_run)
    g.switch("daemon-1")
    ready.wait()
    while True:
        time.sleep(0.001)

def inside_child_greenlet():
    def inner():
        keep = Greenlet(suspended_run)
        keep.switch("daemon-2")
        ready.wait()
        while True:
            time.sleep(0.001)
    Greenlet(inner).switch()

def blocked_in_c_call():
    def inner():
        ev = threading.Event()
        ready.wait()
        ev.wait()  # releases the GIL and never returns
    Greenlet(inner).switch()

for target in (in_main_greenlet, inside_child_greenlet, blocked_in_c_call):
    threading.Thread(target=target, daemon=True).start()
ready.wait()
say("main done")
""")
    assert rc == 0, err
    assert lines == ["main done"]


def test_exit_with_non_daemon_thread_finishing_its_greenlets(run_python):
    rc, lines, err = _run(run_python, r"""
def body():
    g = Greenlet(suspended_run)
    g.switch("worker")
    time.sleep(0.05)
    g.switch()
    say("worker done")

threading.Thread(target=body).start()
say("main done")
""")
    assert rc == 0, err
    assert sorted(lines) == ["finally worker", "main done", "worker done"]
    assert lines.index("finally worker") < lines.index("worker done")


def test_greenlet_api_works_in_atexit(run_python):
    rc, lines, err = _run(run_python, r"""
main = getcurrent()
survivor = Greenlet(suspended_run)
survivor.switch("survivor")
holder = {"victim": Greenlet(suspended_run)}
holder["victim"].switch("killed in atexit")

def at_exit():
    say("atexit getcurrent is main: %s" % (getcurrent() is main))
    say("atexit new greenlet: %s" % Greenlet(lambda x: x * 2).switch(21))
    say("atexit survivor active: %s" % bool(survivor))
    del holder["victim"]
    say("atexit done")

atexit.register(at_exit)
say("main done")
""")
    assert rc == 0, err
    assert lines == [
        "main done",
        "atexit getcurrent is main: True",
        "atexit new greenlet: 42",
        "atexit survivor active: True",
        "finally killed in atexit",
        "atexit done",
    ]


def test_getcurrent_raises_once_finalizing(run_python):
    rc, lines, err = _run(run_python, r"""
getcurrent()
dead = Greenlet(lambda: None)
dead.switch()
unstarted = Greenlet(lambda: "ran while finalizing")

class Late:
    def __del__(self, say=say, sys=sys, getcurrent=getcurrent, dead=dead,
                unstarted=unstarted, BaseException=BaseException, repr=repr):
        say("finalizing: %s" % sys.is_finalizing())
        try:
            getcurrent()
            say("getcurrent: ok")
        except BaseException as exc:
            say("getcurrent: %s: %s" % (type(exc).__name__, exc))
        say("dead: %s" % dead.dead)
        say("repr ends: %s" % repr(dead).endswith(" dead>"))
        say("start: %s" % unstarted.switch())

late = Late()
say("main done")
""")
    assert rc == 0, err
    assert lines == [
        "main done",
        "finalizing: True",
        "getcurrent: RuntimeError: greenlet is being finalized",
        "dead: True",
        "repr ends: True",
        "start: ran while finalizing",
    ]


def test_getcurrent_raises_in_del_of_cycle_collected_at_finalization(run_python):
    rc, lines, err = _run(run_python, r"""
getcurrent()

class InCycle:
    def __del__(self, say=say, getcurrent=getcurrent, sys=sys,
                BaseException=BaseException):
        try:
            getcurrent()
            say("cycle getcurrent ok, finalizing=%s" % sys.is_finalizing())
        except BaseException as exc:
            say("cycle %s: %s" % (type(exc).__name__, exc))

obj = InCycle()
obj.me = obj
say("main done")
""")
    assert rc == 0, err
    assert lines == [
        "main done",
        "cycle RuntimeError: greenlet is being finalized",
    ]


def test_getcurrent_works_before_finalization_in_del(run_python):
    rc, lines, err = _run(run_python, r"""
class Early:
    def __del__(self):
        say("early getcurrent is main: %s" % (getcurrent().parent is None))

e = Early()
del e
say("main done")
""")
    assert rc == 0, err
    assert lines == ["early getcurrent is main: True", "main done"]


def test_exit_with_many_greenlets_and_cycles(run_python):
    rc, lines, err = _run(run_python, r"""
import gc
keep = []
for i in range(100):
    g = Greenlet(suspended_run)
    g.me = g
    if i % 2:
        g.switch("cycle-%d" % i)
    keep.append(g)
dead = [Greenlet(lambda: None) for _ in range(50)]
for g in dead:
    g.switch()
    g.me = g
del dead
gc.collect()
say("main done")
""")
    assert rc == 0, err
    assert lines == ["main done"]


def test_exit_from_thread_running_greenlet_with_sys_exit_in_main(run_python):
    rc, lines, err = _run(run_python, r"""
started = threading.Event()

def body():
    def inner():
        started.set()
        while True:
            time.sleep(0.001)
    Greenlet(inner).switch()

threading.Thread(target=body, daemon=True).start()
started.wait()
say("exiting")
sys.exit(3)
""")
    assert rc == 3, err
    assert lines == ["exiting"]


def test_subprocess_uses_same_interpreter(run_python):
    rc, out, err = run_python("import sys; print(sys.executable)")
    assert rc == 0
    assert out.strip() == sys.executable
