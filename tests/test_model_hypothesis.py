"""Random greenlet programs checked against a small pure-Python model.

hypothesis generates programs: lists of operations, each carried out by
whichever greenlet is current when its turn comes -- switch to a greenlet
with a value, throw an exception (or GreenletExit) into one, create one
(default or chosen parent), change a parent (valid, cyclic, a main
greenlet's, another thread's), return or raise from run(), drop the last
reference to one (killing it if suspended), drop the last reference to a
greenlet of another thread (killed later, in its own thread).  A second
thread owns greenlets in every state; every switch or throw into them must
raise greenlet.error.

Every greenlet, on getting control, logs who it is, what it received and
the (dead, active) flags of every greenlet; the model predicts that log:
which greenlet is current, who receives a finishing greenlet's result (the
parent chain, dead ones skipped, unstarted ones started), how exceptions
travel, which operations fail and with which error.

Budget: the "ci" profile (200 derandomized examples) by default;
GREENLET_HYPOTHESIS_PROFILE=long runs 5000 random ones.
"""

import gc
import os
import threading
import weakref

import greenlet
from greenlet import GreenletExit, getcurrent
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

PROFILES = {
    "ci": settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    ),
    "long": settings(
        max_examples=5000,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    ),
}
PROFILE = PROFILES[os.environ.get("GREENLET_HYPOTHESIS_PROFILE", "ci")]

END = "end-of-program"


class ProgErr(Exception):
    """The exception programs raise and throw; carries a tag."""

    def __init__(self, tag):
        super().__init__(tag)
        self.tag = tag


# --------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------

IDX = st.integers(0, 63)
# A target: one of this thread's greenlets ("L"), mostly, or one of the
# other thread's ("F").
TARGET = st.tuples(st.sampled_from("LLLLLLF"), IDX)
SWITCH = st.tuples(st.just("switch"), TARGET, st.integers(0, 999))
OPS = st.one_of(
    SWITCH,
    SWITCH,
    SWITCH,
    st.tuples(st.just("throw"), TARGET, st.sampled_from(["err", "err", "exit"])),
    st.tuples(st.just("new"), st.one_of(st.none(), IDX)),
    st.tuples(st.just("new"), st.none()),
    st.tuples(st.just("parent"), IDX, TARGET),
    st.tuples(st.just("finish"), st.integers(0, 999)),
    st.tuples(st.just("raise"), st.integers(0, 999)),
    st.tuples(st.just("release"), IDX),
    st.tuples(st.just("release_foreign"), IDX),
)
PROGRAMS = st.lists(OPS, min_size=8, max_size=60)

# The first local greenlets of every program, as (kind, parent) with parent
# an index into the pool, so that programs start with something to do.
SEEDS = st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=6)


def pick(local, foreign, target):
    """The greenlet a TARGET names, among the live ones of each thread."""
    where, idx = target
    seq = local if where == "L" else foreign
    return seq[idx % len(seq)]


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


class MG:
    """A model greenlet."""

    def __init__(self, gid, parent, thread, started=False, dead=False, main=False):
        self.gid = gid
        self.parent = parent
        self.thread = thread
        self.started = started
        self.dead = dead
        self.main = main
        self.pending = None  # the greenlet its suspended frame references

    @property
    def active(self):
        return self.started and not self.dead


class Model:
    """Runs the program on model greenlets and predicts the log."""

    def __init__(self, n_seeds):
        self.main = MG(0, None, 1, started=True, main=True)
        self.local = [self.main]  # slots; None once released
        fmain = MG(100, None, 2, started=True, main=True)
        self.foreign = [
            fmain,
            MG(101, fmain, 2, started=True),  # suspended
            MG(102, fmain, 2, started=True),  # suspended
            MG(103, fmain, 2),  # unstarted
            MG(104, fmain, 2, started=True, dead=True),
        ]
        self.current = self.main
        self.log = []
        self.released_foreign = []
        self.n_seeds = n_seeds

    # helpers shared with the real run ------------------------------------

    def live_local(self):
        return [g for g in self.local if g is not None]

    def pool(self):
        return self.live_local() + self.foreign

    def flags(self):
        return tuple((g.dead, g.active) for g in self.live_local())

    def arrive(self, g, kind, payload):
        self.current = g
        self.log.append((g.gid, kind, payload, self.flags()))

    # the semantics --------------------------------------------------------

    @staticmethod
    def resolve(g):
        while g.started and g.dead:
            g = g.parent
        return g

    def deliver_value(self, t, value, startargs):
        if not t.started:
            t.started = True
            self.arrive(t, "start", startargs)
        else:
            self.arrive(t, "val", value)

    def deliver_exc(self, t, exc):
        if not t.started:
            # Started, run never called, dead at once: the exception goes on.
            t.started = True
            t.dead = True
            self.finish(t, exc=exc)
        elif exc == "GreenletExit":
            # An agent never catches GreenletExit: it ends run().
            t.dead = True
            t.pending = None
            self.finish(t, exc=exc)
        else:
            self.arrive(t, "exc", exc)

    def finish(self, g, value=None, exc=None):
        p = self.resolve(g.parent)
        if exc is None:
            self.deliver_value(p, value, (value,))
        elif exc == "GreenletExit":
            self.deliver_value(p, "GreenletExit", ())
        else:
            self.deliver_exc(p, exc)

    def releasable(self, g):
        if g is self.current or g.main:
            return False
        for other in self.pool():
            if other.parent is g or other.pending is g:
                return False
        return True

    def step(self, op):
        """Carry out one operation as the current greenlet."""
        c = self.current
        kind = op[0]
        pool = self.pool()
        if kind == "switch":
            t = pick(self.live_local(), self.foreign, op[1])
            if t.thread != c.thread:
                self.arrive(c, "gerror", "Cannot switch to a different thread")
                return
            c.pending = t
            r = self.resolve(t)
            if r is c:
                self.arrive(c, "val", op[2])
            else:
                self.deliver_value(r, op[2], (op[2],))
        elif kind == "throw":
            t = pick(self.live_local(), self.foreign, op[1])
            exc = "GreenletExit" if op[2] == "exit" else ("ProgErr", list(op[1]))
            if exc == "GreenletExit" and (t.main or (t is c and c.main)):
                return  # the program skips these (main would end)
            if t.thread != c.thread:
                self.arrive(c, "gerror", "Cannot switch to a different thread")
                return
            c.pending = t
            r = self.resolve(t)
            if t.started and t.dead and exc == "GreenletExit":
                if r is c:
                    self.arrive(c, "val", "GreenletExit")
                else:
                    self.deliver_value(r, "GreenletExit", ())
            elif r is c:
                if exc == "GreenletExit":
                    c.dead = True
                    c.pending = None
                    self.finish(c, exc=exc)
                else:
                    self.arrive(c, "exc", exc)
            else:
                self.deliver_exc(r, exc)
        elif kind == "new":
            local = self.live_local()
            parent = c if op[1] is None else local[op[1] % len(local)]
            self.local.append(MG(len(self.local), parent, 1))
        elif kind == "parent":
            local = self.live_local()
            g = local[op[1] % len(local)]
            p = pick(local, self.foreign, op[2])
            if g.main:
                self.arrive(c, "err", ("AttributeError", "cannot set the parent of a main greenlet"))
                return
            q = p
            while q is not None:
                if q is g:
                    self.arrive(c, "err", ("ValueError", "cyclic parent chain"))
                    return
                q = q.parent
            if p.thread != 1:
                if g.started:
                    self.arrive(
                        c, "err", ("ValueError", "parent cannot be on a different thread")
                    )
                else:
                    # Allowed; the program then tries to start it and puts
                    # the old parent back.
                    self.arrive(c, "gerror", "Cannot switch to a different thread")
                return
            g.parent = p
            self.arrive(c, "ok", None)
        elif kind in ("finish", "raise"):
            if c.main:
                return
            c.dead = True
            c.pending = None
            if kind == "finish":
                self.finish(c, value=op[1])
            else:
                self.finish(c, exc=("ProgErr", op[1]))
        elif kind == "release":
            local = self.live_local()
            g = local[op[1] % len(local)]
            if not self.releasable(g):
                return
            self.local[self.local.index(g)] = None
            if g.active:
                # Killed: GreenletExit with the current greenlet as parent;
                # the result is swallowed by the deallocation.
                g.dead = True
                g.pending = None
        elif kind == "release_foreign":
            cands = [g for g in self.foreign[1:] if self.releasable(g)]
            if not cands:
                return
            g = cands[op[1] % len(cands)]
            self.foreign.remove(g)
            self.released_foreign.append(g.gid)
        else:  # pragma: no cover
            raise AssertionError(op)


# --------------------------------------------------------------------------
# The real run
# --------------------------------------------------------------------------


def _start_foreign_thread():
    """A thread owning greenlets in every state; returns (objects, finish)."""
    box = {"killed": []}
    ready = threading.Event()
    done = threading.Event()

    def held(fid):
        try:
            getcurrent().parent.switch()
        finally:
            box["killed"].append((fid, threading.get_ident()))

    def body():
        s1 = greenlet.greenlet(lambda: held(101))
        s1.switch()
        s2 = greenlet.greenlet(lambda: held(102))
        s2.switch()
        unstarted = greenlet.greenlet(lambda: held(103))
        dead = greenlet.greenlet(lambda: None)
        dead.switch()
        box["objects"] = [getcurrent(), s1, s2, unstarted, dead]
        box["ident"] = threading.get_ident()
        del s1, s2, unstarted, dead
        ready.set()
        done.wait(60)
        getcurrent()  # runs the kills other threads deferred to us
        box["killed_before_exit"] = list(box["killed"])
        box.pop("objects", None)

    thread = threading.Thread(target=body, name="foreign-greenlets")
    thread.start()
    assert ready.wait(30)
    objects = box.pop("objects")

    def finish():
        done.set()
        thread.join(60)
        assert not thread.is_alive()
        return box

    return objects, finish


class Program:
    """Carries out a program on real greenlets, the model taking each step too."""

    def __init__(self, ops, model, foreign):
        self.ops = ops
        self.pos = 0
        self.model = model
        self.main = getcurrent()
        self.local = [self.main]
        self.ids = {id(self.main): 0}
        self.foreign = list(foreign)
        for m, g in zip(model.foreign, self.foreign):
            self.ids[id(g)] = m.gid
        self.log = []
        self.released_foreign = []

    def live_local(self):
        return [g for g in self.local if g is not None]

    def pool(self):
        return self.live_local() + self.foreign

    def flags(self):
        return tuple((g.dead, bool(g)) for g in self.live_local())

    def arrive(self, gid, kind, payload):
        actual = self.ids.get(id(getcurrent()))
        assert actual == gid, "greenlet %s runs, but logs as %s" % (actual, gid)
        self.log.append((gid, kind, payload, self.flags()))

    def new(self, parent):
        gid = len(self.local)

        def agent(*args):
            self.arrive(gid, "start", tuple(_value(a) for a in args))
            return self.run_ops(gid)

        g = greenlet.greenlet(agent) if parent is None else greenlet.greenlet(agent, parent)
        self.local.append(g)
        self.ids[id(g)] = gid

    def run_ops(self, gid):
        while True:
            if self.pos >= len(self.ops):
                if gid == 0:
                    return None
                self.main.switch(END)
                return None  # only a kill at clean-up resumes us here
            op = self.ops[self.pos]
            self.pos += 1
            self.model.step(op)
            if op[0] == "finish" and gid != 0:
                return op[1]
            if op[0] == "raise" and gid != 0:
                raise ProgErr(("ProgErr", op[1]))
            self.do(gid, op)

    def do(self, gid, op):
        kind = op[0]
        # No local may hold this greenlet across a switch, and none may name
        # a greenlet once this frame is done (a traceback keeps the frame):
        # that reference would keep it alive when the program releases it.
        t = g = p = old = None
        try:
            if kind == "switch":
                t = pick(self.live_local(), self.foreign, op[1])
                r = t.switch(op[2])
                del t
                if r != END:  # the program is over: nothing to log
                    self.arrive(gid, "val", _value(r))
            elif kind == "throw":
                t = pick(self.live_local(), self.foreign, op[1])
                if op[2] == "exit":
                    if t is self.main or t is self.foreign[0]:
                        return
                    r = t.throw(GreenletExit)
                else:
                    r = t.throw(ProgErr(("ProgErr", list(op[1]))))
                del t
                if r != END:
                    self.arrive(gid, "val", _value(r))
            elif kind == "new":
                local = self.live_local()
                self.new(None if op[1] is None else local[op[1] % len(local)])
            elif kind == "parent":
                local = self.live_local()
                g = local[op[1] % len(local)]
                p = pick(local, self.foreign, op[2])
                del local
                old = g.parent
                g.parent = p
                assert g.parent is p
                if any(p is f for f in self.foreign):
                    try:
                        g.switch()
                    finally:
                        g.parent = old
                    raise AssertionError("started a greenlet whose parent is in another thread")
                del g, p, old
                self.arrive(gid, "ok", None)
            elif kind == "release":
                local = self.live_local()
                g = local[op[1] % len(local)]
                del local
                if not self._releasable(g, getcurrent()):
                    return
                self.local[self.local.index(g)] = None
                ref = weakref.ref(g)
                del g
                if ref() is not None:
                    raise AssertionError(
                        "released greenlet still alive, referrers: %r" % gc.get_referrers(ref())
                    )
            elif kind == "release_foreign":
                cands = [g for g in self.foreign[1:] if self._releasable(g, getcurrent())]
                if not cands:
                    return
                g = cands[op[1] % len(cands)]
                del cands
                self.foreign.remove(g)
                self.released_foreign.append(self.ids[id(g)])
                del g
        except ProgErr as exc:
            self.arrive(gid, "exc", exc.tag)
        except greenlet.error as exc:
            self.arrive(gid, "gerror", str(exc).split("\n")[0])
        except (ValueError, TypeError, AttributeError) as exc:
            self.arrive(gid, "err", (type(exc).__name__, str(exc)))
        finally:
            t = g = p = old = None

    def _releasable(self, g, me):
        """Nothing but the pool references g: not current, no greenlet's
        parent, not what a suspended frame switched to (the model knows
        those: a real frame's references cannot be listed)."""
        if g is me or g is self.main or g is self.foreign[0]:
            return False
        if any(other.parent is g for other in self.pool()):
            return False
        gid = self.ids[id(g)]
        return not any(
            m.pending is not None and m.pending.gid == gid for m in self.model.pool()
        )


def _value(v):
    if isinstance(v, GreenletExit):
        return "GreenletExit"
    if isinstance(v, BaseException):  # pragma: no cover - shows up as a mismatch
        return repr(v)
    return v


def run_case(seeds, ops):
    """Run the program for real and in the model; assert they agree."""
    model = Model(len(seeds))
    for parent in seeds:
        local = model.live_local()
        model.local.append(MG(len(model.local), local[parent % len(local)], 1))

    foreign, finish_foreign = _start_foreign_thread()
    try:
        program = Program(ops, model, foreign)
        del foreign
        for parent in seeds:
            local = program.live_local()
            program.new(local[parent % len(local)])
            del local
        program.run_ops(0)
        assert getcurrent() is program.main
        real_log = program.log
        final_flags = program.flags()
        final_parents = [
            program.ids.get(id(g.parent)) if g.parent is not None else None
            for g in program.live_local()
        ]
        released_foreign = list(program.released_foreign)
        ran_to_end = program.pos
        # Clean up: what is left is killed here, in this thread.
        program.local = []
        program.foreign = []
        del program
        gc.collect()
    finally:
        box = finish_foreign()

    assert ran_to_end == len(ops)
    assert real_log == model.log
    assert final_flags == model.flags()
    assert final_parents == [
        g.parent.gid if g.parent is not None else None for g in model.live_local()
    ]
    # A suspended greenlet of the other thread, released here, is killed in
    # its own thread the next time that thread touches greenlet state.
    ident = box["ident"]
    for fid in released_foreign:
        if fid in (101, 102):
            assert (fid, ident) in box["killed_before_exit"]
    return model


def run_case_in_new_thread(seeds, ops):
    """run_case with a fresh thread's main greenlet as the program's main."""
    outcome = {}

    def body():
        try:
            outcome["model"] = run_case(seeds, ops)
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="program")
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["model"]


@PROFILE
@given(seeds=SEEDS, ops=PROGRAMS, in_thread=st.booleans())
def test_random_programs_match_the_model(seeds, ops, in_thread):
    model = (run_case_in_new_thread if in_thread else run_case)(seeds, ops)
    # What the programs exercised (pytest --hypothesis-show-statistics).
    for kind in sorted({e[1] for e in model.log}):
        event("logged %s" % kind)
    event("%d arrivals" % min(len(model.log), 10) + ("+" if len(model.log) >= 10 else ""))


# A few fixed programs, so the checks above are known to be able to fail
# and the model's less obvious rules are pinned.


def test_finishing_child_skips_dead_parents_and_starts_unstarted_ones():
    # greenlets 1 (parent main), 2 (parent 1), 3 (parent 2)
    ops = [
        ("switch", ("L", 1), 10),  # main -> 1 starts
        ("switch", ("L", 2), 20),  # 1 -> 2 starts
        ("finish", 7),  # 2 finishes -> 1 gets 7
        ("switch", ("L", 3), 30),  # 1 -> 3 starts (its parent 2 is dead)
        ("finish", 8),  # 3 finishes: 2 dead -> 1 gets 8
        ("finish", 9),  # 1 finishes -> main gets 9
    ]
    model = run_case([0, 1, 2], ops)
    assert [(e[0], e[1], e[2]) for e in model.log] == [
        (1, "start", (10,)),
        (2, "start", (20,)),
        (1, "val", 7),
        (3, "start", (30,)),
        (1, "val", 8),
        (0, "val", 9),
    ]


def test_exception_into_unstarted_parent_kills_it_on_the_way():
    ops = [
        ("switch", ("L", 2), 1),  # main -> 2 (parent 1, unstarted)
        ("raise", 5),  # 2 raises: 1 starts and dies at once; main gets it
    ]
    model = run_case([0, 1], ops)
    assert [(e[0], e[1], e[2]) for e in model.log] == [
        (2, "start", (1,)),
        (0, "exc", ("ProgErr", 5)),
    ]
    assert model.log[-1][3] == ((False, True), (True, False), (True, False))


def test_cross_thread_operations_fail_with_greenlet_error():
    # the other thread's main, two suspended, one unstarted, one dead greenlet
    ops = [("switch", ("F", i), 0) for i in range(5)]
    ops += [("throw", ("F", i), "err") for i in range(5)]
    ops += [("parent", 1, ("F", 1)), ("switch", ("L", 1), 0), ("parent", 1, ("F", 0))]
    model = run_case([0], ops)
    kinds = [e[1] for e in model.log]
    assert kinds == ["gerror"] * 10 + ["gerror", "start", "err"]
    assert model.log[-1][2] == ("ValueError", "parent cannot be on a different thread")
