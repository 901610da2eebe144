"""Run client-library scenarios in fresh interpreters.

Each scenario is a script run with ``sys.executable`` in a temporary
directory: monkey patching, event-loop hubs and crashes stay inside one
subprocess, so gevent, eventlet and SQLAlchemy cannot disturb each other or
the rest of the suite.  Every run has a timeout.
"""

import os
import subprocess
import sys
import textwrap

import pytest

import greenlet

# Prepended to every scenario: the child must test the greenlet the parent
# imported, not some other copy that a client's install pulled in.
PREAMBLE = """\
import faulthandler, os, sys
faulthandler.enable()
import greenlet as _greenlet_under_test
if os.path.realpath(_greenlet_under_test.__file__) != %r:
    sys.exit("wrong greenlet imported: " + _greenlet_under_test.__file__)
"""


def run_scenario(code, tmp_path, timeout=120, name="scenario.py"):
    """Run ``code`` in a fresh interpreter; fail the test unless it exits 0. Return its stdout."""
    script = tmp_path / name
    script.write_text(
        PREAMBLE % os.path.realpath(greenlet.__file__) + textwrap.dedent(code),
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONSTARTUP", None)
    try:
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=str(tmp_path),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            "scenario timed out after %ss\n--- stdout\n%s\n--- stderr\n%s"
            % (timeout, exc.stdout, exc.stderr)
        )
    if proc.returncode != 0:
        pytest.fail(
            "scenario exited with %d\n--- stdout\n%s\n--- stderr\n%s"
            % (proc.returncode, proc.stdout, proc.stderr)
        )
    return proc.stdout


@pytest.fixture
def scenario(tmp_path):
    """``scenario(code, timeout=120) -> stdout``: a scenario in a fresh interpreter that must exit 0."""

    def runner(code, timeout=120):
        return run_scenario(code, tmp_path, timeout=timeout)

    return runner
