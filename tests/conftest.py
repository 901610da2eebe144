"""Shared fixtures for the core greenlet tests.

The core part provides:

* ``run_python`` -- run a snippet in a fresh interpreter (the one running the
  tests), so that code which may crash the interpreter fails one test only.
* ``reset_greenlet_tracer`` (autouse) -- no greenlet tracer leaks from one
  test into the next.
* ``unraisable`` -- collects ``sys.unraisablehook`` calls during a test.
"""

import gc
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest


def _clean_env():
    env = dict(os.environ)
    # The child must import the installed greenlet, never a source checkout.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONSTARTUP", None)
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_python_code(code, timeout=60, args=()):
    """Run *code* with ``sys.executable -c``; return (returncode, stdout, stderr)."""
    code = textwrap.dedent(code)
    with tempfile.TemporaryDirectory(prefix="greenlet-sub-") as cwd:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code, *args],
                cwd=cwd,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:  # pragma: no cover - failure path
            raise AssertionError(
                "subprocess timed out after %ss\nstdout:\n%s\nstderr:\n%s"
                % (timeout, exc.stdout, exc.stderr)
            )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def run_python():
    """Return a callable ``run(code, timeout=60) -> (returncode, stdout, stderr)``."""
    return run_python_code


@pytest.fixture(autouse=True)
def reset_greenlet_tracer():
    import greenlet

    before = greenlet.gettrace()
    yield
    greenlet.settrace(before)


class _UnraisableRecorder:
    def __init__(self):
        self.calls = []

    def __call__(self, unraisable):
        # Never keep the object itself: it may be a greenlet being deallocated.
        self.calls.append(
            {
                "exc_type": unraisable.exc_type,
                "exc_value": unraisable.exc_value,
                "err_msg": unraisable.err_msg,
                "object_repr": repr(unraisable.object),
                "object_type": type(unraisable.object),
            }
        )


@pytest.fixture
def unraisable(monkeypatch):
    """Record calls to ``sys.unraisablehook`` made while the test runs."""
    recorder = _UnraisableRecorder()
    monkeypatch.setattr(sys, "unraisablehook", recorder)
    yield recorder
    gc.collect()
