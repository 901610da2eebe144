"""Draw the pictures of the README again from the example programs.

Run it with an interpreter that has greenlet and greentrace installed
(3.11 or later, for ``python -P``)::

    python examples/pictures.py

It runs the examples under ``greentrace`` (from the repository root, so the
pictures show paths like ``examples/crawler.py``) and writes, next to this
file: ``crawler-tree.svg`` (``greentrace tree PID --svg``), ``crawler-live.svg``
(one frame of ``run --live`` in 80 columns), ``crawler-timeline.svg``
(``greentrace run --svg``) and ``hang-stacks.svg`` (``greentrace stacks PID
--svg``).  Timings differ from run to run; the shapes do not.
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# From the root, the checkout's greenlet/ (without its compiled extension)
# would shadow the installed one: -P keeps the working directory off sys.path.
# Before 3.11 the programs run from elsewhere, and show absolute paths.
SAFE_PATH = sys.version_info >= (3, 11)
PYTHON = [sys.executable, "-P"] if SAFE_PATH else [sys.executable]
CWD = ROOT if SAFE_PATH else Path(tempfile.gettempdir())


def greentrace(*args, env, check=True):
    """``python -m greentrace ARGS`` from the repository root; its stdout."""
    proc = subprocess.run(
        [*PYTHON, "-m", "greentrace", *args],
        cwd=CWD,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"greentrace {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


@contextlib.contextmanager
def serving(script, *args, env):
    """``greentrace run --serve SCRIPT ARGS`` in the background; yields its pid."""
    proc = subprocess.Popen(
        [*PYTHON, "-m", "greentrace", "run", "--serve", "--quiet", script, *args],
        cwd=CWD,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path(env["XDG_RUNTIME_DIR"]) / "greentrace" / f"{proc.pid}.sock"
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{script} did not start serving")
            time.sleep(0.05)
        time.sleep(0.5)  # let it get going
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def live_frame(env, pid, path):
    """One frame of the live view, from two snapshots a second apart."""
    from greentrace.export import save_picture
    from greentrace.model import Snapshot
    from greentrace.views import live_view

    first = Snapshot.from_json(greentrace("tree", str(pid), "--json", env=env))
    time.sleep(1.0)
    second = Snapshot.from_json(greentrace("tree", str(pid), "--json", env=env))
    save_picture(
        live_view(second, first), path, width=80, title="greentrace run --live"
    )


def example(name):
    """How the programs name an example: relative to the root when they run there."""
    return f"examples/{name}" if CWD == ROOT else str(HERE / name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="directory for the pictures"
    )
    out = parser.parse_args(argv).out.resolve()
    with tempfile.TemporaryDirectory(prefix="greentrace-pictures-") as runtime:
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime, COLUMNS="100")
        env.pop("PYTHONPATH", None)
        crawler = example("crawler.py")
        with serving(crawler, "--rounds", "0", env=env) as pid:
            greentrace(
                "tree", str(pid), "--svg", str(out / "crawler-tree.svg"), env=env
            )
            live_frame(env, pid, out / "crawler-live.svg")
        greentrace(
            "run",
            "--quiet",
            "--svg",
            str(out / "crawler-timeline.svg"),
            crawler,
            "--pages",
            "10",
            "--workers",
            "2",
            env=env,
        )
        with serving(example("hang.py"), env=env) as pid:
            greentrace(
                "stacks", str(pid), "--svg", str(out / "hang-stacks.svg"), env=env
            )
    print(json.dumps(sorted(p.name for p in out.glob("*.svg"))))


if __name__ == "__main__":
    main()
