"""The benchmarks, as plain functions over whatever ``greenlet`` is importable.

Two kinds of benchmark:

* timed: ``func(loops) -> nanoseconds`` spent doing ``loops`` operations
  (set-up and tear-down excluded); the harness divides by ``loops``.
* fixed: ``func(scale) -> {metric: value}``, for measurements that are not a
  per-operation time (memory per suspended greenlet, the cost of one
  ``all_greenlets()`` call with ``scale`` greenlets alive).  Memory is always
  measured in a fresh interpreter (a subprocess of ``sys.executable``).

Benchmarks marked ``observe=True`` use the observation API, which only this
project's greenlet has; :func:`available` leaves them out for upstream.

Run ``python bench_suite.py`` for a quick look at the installed greenlet on the
current interpreter (no comparison: use compare.py for that).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import greenlet as greenlet_module
from greenlet import GreenletExit, getcurrent, greenlet

# The clock of the timed benchmarks.  "cpu" (the default) is the CPU time of
# this thread, user and system: on a shared machine a run that waited for a
# core is not counted as slower, which wall time would do.  "wall" is
# time.perf_counter_ns.
CLOCKS = {"cpu": time.thread_time_ns, "wall": time.perf_counter_ns}
perf_ns = CLOCKS["cpu"]


def use_clock(name):
    """Time the benchmarks with clock ``name`` ("cpu" or "wall") from now on."""
    global perf_ns
    perf_ns = CLOCKS[name]


# --------------------------------------------------------------------------
# helpers


def _noop():
    return None


def _py_deep(depth, fn):
    """Call ``fn`` under ``depth`` pure-Python frames."""
    if depth == 0:
        return fn()
    return _py_deep(depth - 1, fn)


def _c_deep(depth, fn):
    """Call ``fn`` under ``depth`` frames, each entered from C (builtin map)."""
    if depth == 0:
        return fn()
    return next(map(_c_deep, (depth - 1,), (fn,)))


def _flat(fn):
    return fn()


class _RecursionHeadroom:
    """Raise the recursion limit for the deep benchmarks, restore it after."""

    def __enter__(self):
        self.old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self.old, 10000))

    def __exit__(self, *exc):
        sys.setrecursionlimit(self.old)


def _sibling_pingpong(loops, wrap):
    """Two greenlets started from main, each inside ``wrap``, switch back and forth.

    Both are children of main started at the same C stack depth, so their
    stacks overlap: every switch saves one slice and restores the other.
    Only the steady-state switches are timed (start and kill excluded).
    """
    half = max(1, loops // 2)
    out = {}

    def body_a():
        sw = gb.switch
        t0 = perf_ns()
        for _ in range(half):
            sw()
        out["ns"] = perf_ns() - t0

    def body_b():
        main_switch()  # park, so that a too is started from main
        sw = ga.switch
        while True:
            sw()

    main_switch = getcurrent().switch
    ga = greenlet(lambda: wrap(body_a))
    gb = greenlet(lambda: wrap(body_b))
    with _RecursionHeadroom():
        gb.switch()  # b goes to depth and parks
        ga.switch()  # a starts at the same stack position, goes to depth, runs the loop
        assert ga.dead, "ping-pong did not finish"
        gb.throw(GreenletExit)  # unwind b's frames outside the timing
    return out["ns"] * loops / (2 * half)


# --------------------------------------------------------------------------
# timed benchmarks: func(loops) -> ns for `loops` operations


def switch_pingpong(loops):
    return _sibling_pingpong(loops, _flat)


def switch_main_child(loops):
    main_switch = getcurrent().switch

    def child():
        while True:
            main_switch()

    g = greenlet(child)
    g.switch()
    half = max(1, loops // 2)
    sw = g.switch
    t0 = perf_ns()
    for _ in range(half):
        sw()
    ns = perf_ns() - t0
    g.throw(GreenletExit)
    return ns * loops / (2 * half)


def _deep_py(depth):
    return lambda loops: _sibling_pingpong(loops, lambda fn: _py_deep(depth, fn))


def _deep_c(depth):
    return lambda loops: _sibling_pingpong(loops, lambda fn: _c_deep(depth, fn))


def create_start_finish(loops):
    f = _noop
    g_type = greenlet
    t0 = perf_ns()
    for _ in range(loops):
        g_type(f).switch()
    return perf_ns() - t0


def create_start_finish_py20(loops):
    """The same, but ``run`` goes 20 pure-Python frames deep before it returns."""

    def run():
        return _py_deep(20, _noop)

    g_type = greenlet
    t0 = perf_ns()
    for _ in range(loops):
        g_type(run).switch()
    return perf_ns() - t0


class _Caught(Exception):
    pass


def throw_caught(loops):
    main_switch = getcurrent().switch

    def catcher():
        while True:
            try:
                main_switch()
            except _Caught:
                pass

    g = greenlet(catcher)
    g.switch()
    throw = g.throw
    exc = _Caught
    t0 = perf_ns()
    for _ in range(loops):
        throw(exc)
    ns = perf_ns() - t0
    g.throw(GreenletExit)
    return ns


def gen_emul_greenlet(loops):
    """A greenlet producer hands values to its parent, the consumer; op = one value."""
    consumer = getcurrent()

    def producer():
        give = consumer.switch
        for i in range(loops):
            give(i)

    g = greenlet(producer)
    nxt = g.switch
    total = 0
    t0 = perf_ns()
    while True:
        v = nxt()
        if v is None:
            break
        total += v
    ns = perf_ns() - t0
    assert g.dead and total == loops * (loops - 1) // 2
    return ns


def gen_emul_native(loops):
    """The same consumer over a native generator (floor, not a comparison)."""

    def producer():
        yield from range(loops)

    total = 0
    t0 = perf_ns()
    for v in producer():
        total += v
    return perf_ns() - t0


def switch_pingpong_settrace(loops):
    def tracer(event, args):
        pass

    old = greenlet_module.settrace(tracer)
    try:
        return _sibling_pingpong(loops, _flat)
    finally:
        greenlet_module.settrace(old)


def baseline_gen_send(loops):
    """generator.send round trip (floor; one op is comparable to two switches)."""

    def gen():
        while True:
            yield

    g = gen()
    next(g)
    send = g.send
    t0 = perf_ns()
    for _ in range(loops):
        send(None)
    return perf_ns() - t0


def baseline_asyncio_sleep0(loops):
    """Two asyncio tasks alternating with ``await asyncio.sleep(0)``; op = one task switch."""
    import asyncio  # here: keeps the import out of the callgrind runs

    half = max(1, loops // 2)

    async def worker():
        for _ in range(half):
            await asyncio.sleep(0)

    async def main():
        t0 = perf_ns()
        await asyncio.gather(worker(), worker())
        return perf_ns() - t0

    ns = asyncio.run(main())
    return ns * loops / (2 * half)


def switch_pingpong_switchlog(loops):
    with greenlet_module.SwitchLog():
        return _sibling_pingpong(loops, _flat)


def _create_with_spawn_tracking(depth):
    def bench(loops):
        old = greenlet_module.get_spawn_tracking()
        greenlet_module.set_spawn_tracking(depth)
        try:
            f = _noop
            g_type = greenlet
            t0 = perf_ns()
            for _ in range(loops):
                g_type(f)
            return perf_ns() - t0
        finally:
            greenlet_module.set_spawn_tracking(old)

    return bench


# --------------------------------------------------------------------------
# fixed benchmarks: func(scale) -> {metric: value}


def _statm():
    """(VMS, RSS) of this process, in bytes."""
    with open("/proc/self/statm") as f:
        size, resident = f.read().split()[:2]
    page = os.sysconf("SC_PAGE_SIZE")
    return int(size) * page, int(resident) * page


def measure_memory_here(kind, count, use_tracemalloc):
    """Bytes per suspended object with ``count`` alive, measured in this process.

    ``kind`` is "greenlet" (started from main, switched back: suspended with a
    shallow stack) or "generator" (advanced to its first yield).
    """
    import tracemalloc

    main_switch = getcurrent().switch

    def park():
        main_switch()

    def gen():
        yield

    def make_greenlet():
        g = greenlet(park)
        g.switch()
        return g

    def make_generator():
        g = gen()
        next(g)
        return g

    make = make_greenlet if kind == "greenlet" else make_generator
    warm = [make() for _ in range(100)]  # one-time allocations out of the delta
    objs = [None] * count
    del warm
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    vms0, rss0 = _statm()
    for i in range(count):
        objs[i] = make()
    vms1, rss1 = _statm()
    result = {"rss": (rss1 - rss0) / count, "vms": (vms1 - vms0) / count}
    if use_tracemalloc:
        result = {"tracemalloc": (tracemalloc.get_traced_memory()[0] - before) / count}
        tracemalloc.stop()
    return result


def _memory_subprocess(kind, count, use_tracemalloc):
    cmd = [
        sys.executable,
        "-E",
        "-s",
        os.path.abspath(__file__),
        "memory",
        kind,
        str(count),
    ]
    if use_tracemalloc:
        cmd.append("tracemalloc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(cmd[3]),
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError("memory subprocess failed:\n" + proc.stderr)
    return json.loads(proc.stdout)


def memory(count):
    """RSS / VMS / tracemalloc bytes per suspended greenlet and generator (fresh processes)."""
    out = {}
    for kind in ("greenlet", "generator"):
        plain = _memory_subprocess(kind, count, False)
        traced = _memory_subprocess(kind, count, True)
        out["mem_%s_rss" % kind] = plain["rss"]
        out["mem_%s_vms" % kind] = plain["vms"]
        out["mem_%s_tracemalloc" % kind] = traced["tracemalloc"]
    return out


def all_greenlets_scan(count):
    """Milliseconds per all_greenlets() call with ``count`` (unstarted) greenlets alive,
    next to a gc.get_objects() scan filtered for greenlets in the same process."""
    gs = [greenlet(_noop) for _ in range(count)]
    gc.collect()
    reg, scan = [], []
    for _ in range(5):
        t0 = perf_ns()
        found = greenlet_module.all_greenlets()
        reg.append(perf_ns() - t0)
        assert len(found) >= count, "all_greenlets() missed greenlets"
        del found
        t0 = perf_ns()
        found = [o for o in gc.get_objects() if isinstance(o, greenlet)]
        scan.append(perf_ns() - t0)
        assert len(found) >= count
        del found
    del gs
    reg.sort()
    scan.sort()
    return {"all_greenlets_ms": reg[2] / 1e6, "gc_scan_greenlets_ms": scan[2] / 1e6}


# --------------------------------------------------------------------------
# the registry


@dataclass(frozen=True)
class Benchmark:
    name: str
    func: Callable
    unit: str
    kind: str = "timed"  # or "fixed"
    observe: bool = False  # needs the observation API (this project only)
    scale: int = 0  # fixed benchmarks: the full-size argument
    tiny: int = 0  # fixed benchmarks: the argument for smoke tests


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("switch_pingpong", switch_pingpong, "ns/switch"),
        Benchmark("switch_main_child", switch_main_child, "ns/switch"),
        Benchmark("switch_deep_py50", _deep_py(50), "ns/switch"),
        Benchmark("switch_deep_py500", _deep_py(500), "ns/switch"),
        Benchmark("switch_deep_c50", _deep_c(50), "ns/switch"),
        Benchmark("switch_deep_c500", _deep_c(500), "ns/switch"),
        Benchmark("create_start_finish", create_start_finish, "ns/greenlet"),
        Benchmark("create_start_finish_py20", create_start_finish_py20, "ns/greenlet"),
        Benchmark("throw_caught", throw_caught, "ns/throw"),
        Benchmark("gen_emul_greenlet", gen_emul_greenlet, "ns/value"),
        Benchmark("gen_emul_native", gen_emul_native, "ns/value"),
        Benchmark("switch_pingpong_settrace", switch_pingpong_settrace, "ns/switch"),
        Benchmark("baseline_gen_send", baseline_gen_send, "ns/send"),
        Benchmark("baseline_asyncio_sleep0", baseline_asyncio_sleep0, "ns/switch"),
        Benchmark(
            "switch_pingpong_switchlog",
            switch_pingpong_switchlog,
            "ns/switch",
            observe=True,
        ),
        Benchmark(
            "create_spawn_off",
            _create_with_spawn_tracking(0),
            "ns/greenlet",
            observe=True,
        ),
        Benchmark(
            "create_spawn_1",
            _create_with_spawn_tracking(1),
            "ns/greenlet",
            observe=True,
        ),
        Benchmark("memory", memory, "B/obj", kind="fixed", scale=100_000, tiny=2_000),
        Benchmark(
            "all_greenlets_100k",
            all_greenlets_scan,
            "ms/call",
            kind="fixed",
            observe=True,
            scale=100_000,
            tiny=1_000,
        ),
    ]
}


def has_observation():
    """True if the observation API exists and works (a GREENLET_NO_OBSERVE build
    has the names, but its registry stays empty)."""
    if not hasattr(greenlet_module, "all_greenlets"):
        return False
    probe = greenlet(_noop)
    return any(g is probe for g in greenlet_module.all_greenlets())


def available():
    """Names of the benchmarks the importable greenlet supports."""
    obs = has_observation()
    return [name for name, b in BENCHMARKS.items() if obs or not b.observe]


def run(name, loops_or_scale, repeat=1):
    """One sample: ns per op for a timed benchmark, {metric: value} for a fixed one.

    A timed sample is the fastest of ``repeat`` runs: load from other processes
    only ever adds time, so the minimum of a few short runs is the run that was
    least disturbed.
    """
    b = BENCHMARKS[name]
    if b.kind == "timed":
        loops = max(2, int(loops_or_scale))
        best = None
        for _ in range(max(1, repeat)):
            gc.collect()
            ns = b.func(loops) / loops
            best = ns if best is None else min(best, ns)
        return best
    gc.collect()
    return b.func(int(loops_or_scale))


def calibrate(name, target_ns):
    """The loop count that makes one sample of timed benchmark ``name`` last about ``target_ns``."""
    func = BENCHMARKS[name].func
    loops = 2
    while True:
        gc.collect()
        ns = func(loops)
        if ns >= target_ns / 8 or loops >= 1 << 30:
            break
        loops *= 4 if ns < target_ns / 64 else 2
    return max(2, int(loops * target_ns / max(ns, 1)))


def _main(argv):
    if argv[:1] == ["memory"]:
        kind, count = argv[1], int(argv[2])
        print(json.dumps(measure_memory_here(kind, count, "tracemalloc" in argv[3:])))
        return 0
    print(
        "greenlet %s at %s, Python %s"
        % (
            greenlet_module.__version__,
            os.path.dirname(greenlet_module.__file__),
            sys.version.split()[0],
        )
    )
    for name in available():
        b = BENCHMARKS[name]
        if b.kind == "timed":
            loops = calibrate(name, 50_000_000)
            samples = sorted(run(name, loops) for _ in range(5))
            print("  %-28s %10.1f %s" % (name, samples[2], b.unit))
        else:
            for metric, value in run(name, b.scale).items():
                print("  %-28s %10.1f %s" % (metric, value, b.unit))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
