"""Side-by-side benchmarks: upstream greenlet against this project, one interpreter, one run.

    python benchmarks/compare.py [--python 3.12|PATH] [--quick] [--json FILE]

Three virtual environments on the chosen interpreter (created on first use,
then reused; cached under ``<repo>/.venvs/bench/``):

* ``upstream``:   ``pip install greenlet==3.5.6`` from the package index;
* ``ours``:       this checkout's work tree, copied and pip-installed (not editable);
* ``ours-noobs``: the same, built with ``GREENLET_CFLAGS=-DGREENLET_NO_OBSERVE``
  (observation bookkeeping compiled out of the switch path; benchmark-only).

One long-lived worker process per environment runs the benchmarks of
bench_suite.py.  Samples are interleaved: round after round, each benchmark
takes one sample in every environment (the order rotates each round), so a
burst of load from another process hits all of them alike.  The table shows
medians, and ratios that are medians of the per-round ratios.  With valgrind
installed, instructions per sibling switch are counted with callgrind too.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

UPSTREAM_VERSION = "3.5.6"
IMPLS = ("upstream", "ours", "ours-noobs")
NOOBS_CFLAGS = "-DGREENLET_NO_OBSERVE"
# What of the work tree a build needs (setup.py, pyproject.toml and the packages).
TREE_ENTRIES = (
    "setup.py",
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
    "CHANGES.rst",
    "LICENSE",
    "src",
    "greenlet",
    "greentrace",
)
_BUILD_PRODUCTS = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.so", "*.o", "build", "*.egg-info"
)


def tree_files():
    """(relative path, path) of every work-tree file a build needs, sorted."""
    for entry in TREE_ENTRIES:
        top = os.path.join(REPO, entry)
        if os.path.isfile(top):
            yield entry, top
        for directory, dirs, files in os.walk(top):
            ignored = set(_BUILD_PRODUCTS(directory, dirs + files))
            if os.path.basename(directory) == "greenlet":
                ignored.add("greenlet.h")  # a copy that editable builds leave behind
            dirs[:] = sorted(d for d in dirs if d not in ignored)
            for name in sorted(files):
                if name not in ignored:
                    path = os.path.join(directory, name)
                    yield os.path.relpath(path, REPO), path


# Timed benchmarks in table order (bench_suite has them all).
TIMED = [
    "switch_pingpong",
    "switch_main_child",
    "switch_deep_py50",
    "switch_deep_py500",
    "switch_deep_c50",
    "switch_deep_c500",
    "create_start_finish",
    "create_start_finish_py20",
    "throw_caught",
    "gen_emul_greenlet",
    "gen_emul_native",
    "switch_pingpong_settrace",
    "baseline_gen_send",
    "baseline_asyncio_sleep0",
    "switch_pingpong_switchlog",
    "create_spawn_off",
    "create_spawn_1",
]
FIXED = ["memory", "all_greenlets_100k"]
# = bench_suite.BENCHMARKS["all_greenlets_100k"].scale (this process may have no
# greenlet to import bench_suite with)
ALL_GREENLETS_COUNT = 100_000
REPEAT = 3  # a timed sample is the fastest of this many runs


def log(msg):
    print("[compare] " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# interpreters and environments


def find_python(spec):
    """An interpreter path from a path or a version such as '3.12'."""
    if os.sep in spec or os.path.exists(spec):
        return os.path.abspath(spec)
    if not re.fullmatch(r"3\.\d+", spec):
        sys.exit("--python: give a path or a version like 3.12, not %r" % spec)
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    cands = [
        d
        for d in glob.glob(os.path.join(root, "versions", spec + ".*"))
        if re.fullmatch(re.escape(spec) + r"\.\d+", os.path.basename(d))
    ]
    cands.sort(key=lambda d: int(os.path.basename(d).rsplit(".", 1)[1]))
    for path in [os.path.join(d, "bin", "python") for d in reversed(cands)] + [
        shutil.which("python" + spec) or ""
    ]:
        if path and os.access(path, os.X_OK):
            return path
    sys.exit("no Python %s under %s/versions or on PATH" % (spec, root))


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env.update(extra or {})
    return env


def py_version(python):
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    return out.stdout.strip()


def run_logged(cmd, logfile, env=None, cwd=None):
    with open(logfile, "a") as f:
        f.write("$ %s\n" % " ".join(cmd))
        f.flush()
        proc = subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env or clean_env(), cwd=cwd
        )
    if proc.returncode != 0:
        with open(logfile) as f:
            tail = f.read()[-4000:]
        sys.exit("command failed (%s): %s\n%s" % (logfile, " ".join(cmd), tail))


def tree_digest(cflags):
    h = hashlib.sha256(cflags.encode())
    for rel, path in tree_files():
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def source_revision():
    """The checkout's commit, '-dirty' if the work tree has changes, or None."""
    try:
        proc = subprocess.run(
            ["git", "-C", REPO, "describe", "--always", "--dirty", "--abbrev=10"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def venv_python(venv):
    return os.path.join(venv, "bin", "python")


def greenlet_in(venv):
    """The installed greenlet's version if it imports from inside ``venv``, else None."""
    py = venv_python(venv)
    if not os.access(py, os.X_OK):
        return None
    code = (
        "import os, sys, greenlet; p = os.path.realpath(greenlet.__file__); "
        "assert p.startswith(os.path.realpath(sys.prefix)), p; print(greenlet.__version__)"
    )
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [py, "-c", code], capture_output=True, text=True, cwd=cwd, env=clean_env()
        )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_venv(python, base, impl, rebuild):
    """Create or reuse the environment of ``impl``; return its directory."""
    venv = os.path.join(base, impl)
    logfile = os.path.join(base, impl + ".log")
    if impl == "upstream":
        stamp_value = "greenlet==" + UPSTREAM_VERSION
    else:
        cflags = NOOBS_CFLAGS if impl == "ours-noobs" else ""
        stamp_value = tree_digest(cflags)
    stamp = os.path.join(venv, "bench-stamp.txt")
    if not rebuild and greenlet_in(venv) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == stamp_value:
                log("%s: reusing %s" % (impl, venv))
                return venv
    if not os.access(venv_python(venv), os.X_OK) or rebuild:
        shutil.rmtree(venv, ignore_errors=True)
        log("%s: creating venv %s" % (impl, venv))
        run_logged([python, "-m", "venv", venv], logfile)
    pip = [venv_python(venv), "-m", "pip", "install", "-q"]
    if impl == "upstream":
        log("%s: pip install greenlet==%s" % (impl, UPSTREAM_VERSION))
        run_logged(pip + ["greenlet==" + UPSTREAM_VERSION], logfile)
    else:
        src = os.path.join(base, impl + "-src")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        for rel, path in tree_files():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            shutil.copy2(path, os.path.join(src, rel))
        log(
            "%s: building the work tree%s" % (impl, " with " + cflags if cflags else "")
        )
        run_logged(
            pip + ["--force-reinstall", "--no-deps", src],
            logfile,
            env=clean_env({"GREENLET_CFLAGS": cflags}),
        )
    if not greenlet_in(venv):
        sys.exit(
            "%s: greenlet does not import from %s (see %s)" % (impl, venv, logfile)
        )
    with open(stamp, "w") as f:
        f.write(stamp_value)
    return venv


# --------------------------------------------------------------------------
# workers


class Worker:
    def __init__(self, impl, venv, tmpdir):
        self.impl = impl
        self.errlog = open(os.path.join(tmpdir, impl + ".stderr"), "w+")
        self.proc = subprocess.Popen(
            [venv_python(venv), "-s", os.path.join(HERE, "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errlog,
            text=True,
            cwd=tmpdir,
            env=clean_env(),
        )
        self.info = self.ask(op="info")
        if not self.info["path"].startswith(os.path.realpath(venv)):
            sys.exit("%s: worker imported greenlet from %s" % (impl, self.info["path"]))

    def ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.errlog.seek(0)
            sys.exit(
                "%s: worker died on %r\n%s"
                % (self.impl, request, self.errlog.read()[-4000:])
            )
        answer = json.loads(line)
        if "error" in answer:
            sys.exit("%s: %r failed:\n%s" % (self.impl, request, answer["error"]))
        return answer

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.errlog.close()


# --------------------------------------------------------------------------
# callgrind


def callgrind_instructions(venv, n, outdir, impl):
    """Instructions for ``n`` sibling switches of callgrind_switch.py, whole process."""
    out = os.path.join(outdir, "callgrind.%s.%d.out" % (impl, n))
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=" + out,
        venv_python(venv),
        "-s",
        os.path.join(HERE, "callgrind_switch.py"),
        str(n),
    ]
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=cwd, env=clean_env()
        )
    m = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
    if proc.returncode != 0 or not m:
        raise RuntimeError("callgrind failed:\n" + proc.stderr[-2000:])
    return int(m.group(1))


def callgrind_per_switch(venv, n, outdir, impl):
    small = callgrind_instructions(venv, n, outdir, impl)
    big = callgrind_instructions(venv, 2 * n, outdir, impl)
    return (big - small) / n


# --------------------------------------------------------------------------
# statistics and the table


def median(xs):
    return statistics.median(xs) if xs else None


def paired_ratio(a, b):
    """Median of the per-round ratios a[i] / b[i] (samples taken side by side)."""
    pairs = [x / y for x, y in zip(a, b) if x is not None and y]
    return statistics.median(pairs) if pairs else None


def paired_quartiles(a, b):
    """First and third quartiles of the per-round ratios, or None with under 4 rounds."""
    pairs = [x / y for x, y in zip(a, b) if x is not None and y]
    if len(pairs) < 4:
        return None
    q = statistics.quantiles(pairs, n=4)
    return q[0], q[2]


def spread(xs):
    """Half the interquartile range, in percent of the median."""
    if len(xs) < 4:
        return None
    q = statistics.quantiles(xs, n=4)
    return 50.0 * (q[2] - q[0]) / statistics.median(xs)


def build_rows(samples, cg, minor):
    """The table: one dict per row."""
    rows = []
    new = minor >= 11

    def s(bench, impl):
        return samples.get(bench, {}).get(impl, [])

    def check(value, limit, quartiles=None):
        if value is None:
            return "-"
        verdict = "met" if value <= limit else "MISSED"
        if quartiles and quartiles[0] <= limit <= quartiles[1]:
            verdict += " (noise)"  # the limit lies inside the per-round IQR
        return verdict

    def row(
        name,
        unit,
        bench=None,
        target=None,
        limit=None,
        applies=True,
        ours_value=None,
        ratio=None,
        target_on="up",
        pair=None,
    ):
        r = {"benchmark": name, "unit": unit}
        for impl in IMPLS:
            r[impl] = median(s(bench, impl)) if bench else None
        if pair is not None:  # a derived row: the ratio of two of our benchmarks
            ours_value = paired_ratio(*pair)
        if ours_value is not None:
            r["ours"] = ours_value
        r["ours/up"] = (
            ratio
            if ratio is not None
            else (
                paired_ratio(s(bench, "ours"), s(bench, "upstream")) if bench else None
            )
        )
        r["ours/noobs"] = (
            paired_ratio(s(bench, "ours"), s(bench, "ours-noobs")) if bench else None
        )
        sp = [spread(s(bench, impl)) for impl in IMPLS] if bench else []
        sp = [x for x in sp if x is not None]
        r["noise%"] = max(sp) if sp else None
        r["target"] = target or ""
        if target is None:
            r["result"] = ""
        elif not applies:
            r["result"] = "n/a"
        else:
            measured = {
                "up": r["ours/up"],
                "noobs": r["ours/noobs"],
                "value": r["ours"],
            }[target_on]
            if target_on != "value":
                pair = (
                    s(bench, "ours"),
                    s(bench, {"up": "upstream"}.get(target_on, "ours-noobs")),
                )
            r["result"] = check(measured, limit, pair and paired_quartiles(*pair))
        rows.append(r)
        return r

    row("switch_pingpong", "ns/switch", "switch_pingpong", "ours/up <= 0.85", 0.85)
    row("switch_main_child", "ns/switch", "switch_main_child", "ours/up <= 0.85", 0.85)
    row("switch_deep_py50", "ns/switch", "switch_deep_py50")
    row("switch_deep_py500", "ns/switch", "switch_deep_py500")
    row(
        "  deep_py500 / own flat",
        "x flat",
        pair=(s("switch_deep_py500", "ours"), s("switch_pingpong", "ours")),
        target="ours <= 1.2 (3.12+)",
        limit=1.2,
        applies=minor >= 12,
        target_on="value",
    )
    row("switch_deep_c50", "ns/switch", "switch_deep_c50")
    row("switch_deep_c500", "ns/switch", "switch_deep_c500", "ours/up <= 1.0", 1.0)
    row(
        "create_start_finish",
        "ns/greenlet",
        "create_start_finish",
        "ours/up <= %s" % ("0.25" if new else "1.0"),
        0.25 if new else 1.0,
    )
    row("create_start_finish_py20", "ns/greenlet", "create_start_finish_py20")
    row("throw_caught", "ns/throw", "throw_caught", "ours/up <= 0.3", 0.3)
    row("gen_emul_greenlet", "ns/value", "gen_emul_greenlet", "ours/up <= 0.85", 0.85)
    row("gen_emul_native", "ns/value", "gen_emul_native")
    row(
        "switch_pingpong_settrace",
        "ns/switch",
        "switch_pingpong_settrace",
        "ours/up <= 1.0",
        1.0,
    )
    row("baseline_gen_send", "ns/send", "baseline_gen_send")
    row("baseline_asyncio_sleep0", "ns/switch", "baseline_asyncio_sleep0")
    row(
        "mem_greenlet_rss",
        "B/greenlet",
        "mem_greenlet_rss",
        "ours/up <= %s" % ("0.5" if new else "1.0"),
        0.5 if new else 1.0,
    )
    row("mem_greenlet_vms", "B/greenlet", "mem_greenlet_vms")
    row("mem_greenlet_tracemalloc", "B/greenlet", "mem_greenlet_tracemalloc")
    row("mem_generator_rss", "B/generator", "mem_generator_rss")
    if cg:
        r = row(
            "callgrind_sibling_switch",
            "instr/switch",
            target="ours <= 1800 (3.11)",
            limit=1800,
            applies=minor == 11,
            target_on="value",
        )
        for impl in IMPLS:
            r[impl] = cg.get(impl)
        r["ours/up"] = cg["ours"] / cg["upstream"] if cg.get("upstream") else None
        r["ours/noobs"] = (
            cg["ours"] / cg["ours-noobs"] if cg.get("ours-noobs") else None
        )
        r["result"] = "n/a" if minor != 11 else check(cg.get("ours"), 1800)
    # Observation features: this project only.
    row("switch_pingpong_switchlog", "ns/switch", "switch_pingpong_switchlog")
    row(
        "  switchlog / plain switch",
        "x plain",
        pair=(s("switch_pingpong_switchlog", "ours"), s("switch_pingpong", "ours")),
        target="ours <= 1.25",
        limit=1.25,
        target_on="value",
    )
    r = row(
        "all_greenlets_100k",
        "ms/call",
        "all_greenlets_ms",
        "ours <= 20 ms",
        20,
        target_on="value",
    )
    r["ours/noobs"] = None  # a NO_OBSERVE build has no registry
    r = row("  gc.get_objects() scan", "ms/call", "gc_scan_greenlets_ms")
    r["ours/noobs"] = None
    row("create_spawn_off", "ns/greenlet", "create_spawn_off")
    row("create_spawn_1", "ns/greenlet", "create_spawn_1")
    row(
        "  spawn tracking 1 / off",
        "x off",
        pair=(s("create_spawn_1", "ours"), s("create_spawn_off", "ours")),
    )
    r = row(
        "observation-off cost (pingpong)",
        "ours/noobs",
        "switch_pingpong",
        "ours/noobs <= 1.03",
        1.03,
        target_on="noobs",
    )
    r["ours"] = r["ours/noobs"]
    r["upstream"] = r["ours-noobs"] = r["ours/up"] = None
    return rows


def fmt(x, digits=None):
    if x is None:
        return "-"
    if digits is not None:
        return "%.*f" % (digits, x)
    if abs(x) >= 1000:
        return "%.0f" % x
    if abs(x) >= 100:
        return "%.1f" % x
    return "%.2f" % x


def render(rows, header):
    cols = [
        "benchmark",
        "unit",
        "upstream",
        "ours",
        "ours-noobs",
        "ours/up",
        "ours/noobs",
        "noise%",
        "target",
        "result",
    ]
    table = [cols]
    for r in rows:
        table.append(
            [
                r["benchmark"],
                r["unit"],
                fmt(r["upstream"]),
                fmt(r["ours"]),
                fmt(r["ours-noobs"]),
                fmt(r["ours/up"], 3),
                fmt(r["ours/noobs"], 3),
                fmt(r["noise%"], 1),
                r["target"],
                r["result"],
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    left = {0, 1, 8, 9}
    out = [header]
    for k, line in enumerate(table):
        out.append(
            "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths))
            ).rstrip()
        )
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --------------------------------------------------------------------------
# main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter: a path or a version such as 3.12 (pyenv); default: this one",
    )
    p.add_argument("--quick", action="store_true", help="short samples and few rounds")
    p.add_argument(
        "--rounds", type=int, help="interleaved rounds (default 15, quick 7)"
    )
    p.add_argument(
        "--sample-ms",
        type=float,
        help="target duration of one timed sample, all its runs (default 150, quick 30)",
    )
    p.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time the thread's CPU time (default) or wall time",
    )
    p.add_argument(
        "--json", metavar="FILE", help="write samples, medians and the table here"
    )
    p.add_argument(
        "--only", nargs="+", metavar="BENCH", help="run only these benchmarks"
    )
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument(
        "--venv-dir",
        default=os.path.join(REPO, ".venvs", "bench"),
        help="cache of the environments (default: <repo>/.venvs/bench)",
    )
    p.add_argument("--rebuild", action="store_true", help="recreate the environments")
    p.add_argument(
        "--no-callgrind", action="store_true", help="skip the callgrind count"
    )
    p.add_argument("--callgrind-switches", type=int, default=50_000)
    p.add_argument(
        "--mem-count",
        type=int,
        default=100_000,
        help="suspended greenlets alive in the memory benchmark",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    python = find_python(args.python)
    version = py_version(python)
    minor = int(version.split(".")[1])
    rounds = args.rounds or (7 if args.quick else 15)
    fixed_rounds = 1 if args.quick else 3
    target_ns = (args.sample_ms or (30 if args.quick else 150)) * 1e6
    base = os.path.join(args.venv_dir, "py" + ".".join(version.split(".")[:2]))
    os.makedirs(base, exist_ok=True)
    log("Python %s (%s); environments under %s" % (version, python, base))

    venvs = {impl: ensure_venv(python, base, impl, args.rebuild) for impl in args.impls}
    tmpdir = tempfile.mkdtemp(prefix="greenlet-bench-")
    workers = {impl: Worker(impl, venv, tmpdir) for impl, venv in venvs.items()}
    for w in workers.values():
        log("%s: greenlet %s from %s" % (w.impl, w.info["version"], w.info["path"]))
        w.ask(op="clock", name=args.clock)

    wanted = set(args.only or TIMED + FIXED)
    timed = [b for b in TIMED if b in wanted]
    fixed = [b for b in FIXED if b in wanted]
    applies = {
        b: [i for i in args.impls if b in workers[i].info["benchmarks"]]
        for b in timed + fixed
    }
    samples: dict = {}
    started = time.monotonic()

    # Calibration (doubles as warm-up): the same loop count for every
    # implementation, the smallest of theirs, so no sample runs long.
    loops = {}
    for b in timed:
        loops[b] = min(
            workers[i].ask(op="calibrate", name=b, target_ns=target_ns / REPEAT)[
                "loops"
            ]
            for i in applies[b]
        )
    log(
        "calibrated in %.0fs; %d rounds of %d timed benchmarks"
        % (time.monotonic() - started, rounds, len(timed))
    )

    def take(bench, arg, r):
        order = applies[bench]
        order = order[r % len(order) :] + order[: r % len(order)]
        for impl in order:
            value = workers[impl].ask(op="run", name=bench, arg=arg, repeat=REPEAT)[
                "value"
            ]
            if isinstance(value, dict):
                for metric, v in value.items():
                    samples.setdefault(metric, {}).setdefault(impl, []).append(v)
            else:
                samples.setdefault(bench, {}).setdefault(impl, []).append(value)

    for r in range(rounds):
        for b in timed:
            take(b, loops[b], r)
        log("round %d/%d done (%.0fs)" % (r + 1, rounds, time.monotonic() - started))
    for r in range(fixed_rounds):
        for b in fixed:
            scale = args.mem_count if b == "memory" else ALL_GREENLETS_COUNT
            take(b, scale, r)
        log(
            "fixed-size round %d/%d done (%.0fs)"
            % (r + 1, fixed_rounds, time.monotonic() - started)
        )
    for w in workers.values():
        w.close()

    cg = {}
    if (
        not args.no_callgrind
        and shutil.which("valgrind")
        and (not args.only or "callgrind" in wanted)
    ):
        outdir = os.path.join(base, "callgrind")
        os.makedirs(outdir, exist_ok=True)
        for impl, venv in venvs.items():
            try:
                cg[impl] = callgrind_per_switch(
                    venv, args.callgrind_switches, outdir, impl
                )
            except RuntimeError as exc:
                log("%s: %s" % (impl, exc))
        log(
            "callgrind done (%.0fs); profiles in %s"
            % (time.monotonic() - started, outdir)
        )

    rows = build_rows(samples, cg, minor)
    upstream_version = (
        workers["upstream"].info["version"]
        if "upstream" in workers
        else UPSTREAM_VERSION
    )
    header = (
        "greenlet benchmarks, Python %s: upstream greenlet %s vs this checkout (ours, %s)"
        " vs ours built with %s (ours-noobs)\n"
        "%s mode: %d rounds x %.0f ms samples (fastest of %d runs, %s time), "
        "%d fixed-size round(s); medians; ratios are medians of per-round ratios; "
        "noise%% = half IQR / median (worst impl)\n"
        % (
            version,
            upstream_version,
            source_revision() or "unknown revision",
            NOOBS_CFLAGS,
            "quick" if args.quick else "full",
            rounds,
            target_ns / 1e6,
            REPEAT,
            args.clock,
            fixed_rounds,
        )
    )
    text = render(rows, header)
    print(text)
    missed = [r["benchmark"].strip() for r in rows if r["result"].startswith("MISSED")]
    met = [r["benchmark"].strip() for r in rows if r["result"].startswith("met")]
    print(
        "\ntargets: %d met, %d missed%s"
        % (len(met), len(missed), (": " + ", ".join(missed)) if missed else "")
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "python": version,
                    "revision": source_revision(),
                    "interpreter": python,
                    "quick": args.quick,
                    "rounds": rounds,
                    "clock": args.clock,
                    "sample_ms": target_ns / 1e6,
                    "loops": loops,
                    "impls": {i: w.info for i, w in workers.items()},
                    "callgrind_per_switch": cg,
                    "samples": samples,
                    "rows": rows,
                },
                f,
                indent=1,
            )
        log("wrote " + args.json)
    shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
