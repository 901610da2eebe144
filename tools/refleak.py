"""Reference-leak hunter: run pytest, repeating every test, under a debug CPython.

    python tools/refleak.py [--refleak-runs=3:3] [--refleak-report=FILE] [pytest args...]

Must run under an interpreter built with ``Py_DEBUG`` (it needs
``sys.gettotalrefcount()``), e.g. Debian's ``python3.11-dbg``; ``.ci/refleak.sh``
builds one and calls this.

Each collected test runs ``W + M`` times in a row (setup, call, teardown of
its function-scoped fixtures; module, class and session fixtures stay up).
After every run the garbage collector runs and two counters are read:
``sys.gettotalrefcount()`` and ``sys.getallocatedblocks()``.  The first W runs
are warm-up (caches fill, lazy imports happen); the differences across the
last M runs are the measurement.  A test *leaks* when one counter grew on
every one of the M measured runs (the rule of CPython's ``regrtest -R W:M``):
a one-off allocation or a cache that fills once does not trip it, a leak of
at least one reference or block per run does.

Tests that request the ``run_python`` fixture run once, unmeasured: their
work happens in a child interpreter.  Tests in ``KNOWN_LEAKS`` leak by
design (the reason is given there): their leak is reported, not failed.

A leaking test is reported as failed, with its deltas; the exit status is
pytest's.  ``--refleak-report=FILE`` also writes the deltas of every test as
tab-separated lines (nodeid, ref deltas, block deltas), for diagnosis.
"""

import gc
import sys
import warnings

import pytest
from _pytest.runner import CallInfo, runtestprotocol


def _parse_runs(text):
    warmups, _, measured = text.partition(":")
    try:
        w, m = int(warmups), int(measured)
    except ValueError:
        raise pytest.UsageError("--refleak-runs wants W:M, e.g. 3:3, not %r" % text)
    if w < 1 or m < 2:
        raise pytest.UsageError("--refleak-runs: at least 1 warm-up and 2 measured runs")
    return w, m


class _KeepEnclosing:
    """Stand-in for 'the next test' that shares every collector with *item*.

    Passed as ``nextitem`` to pytest's teardown, it tears down only the
    test's own (function-scoped) fixtures between repetitions.
    """

    def __init__(self, item):
        self._chain = item.listchain()[:-1]

    def listchain(self):
        return list(self._chain)


def _clear_caches():
    # Caches that legitimately grow while tests run; clearing them before
    # each reading keeps their growth out of the deltas.
    import linecache
    import re

    re.purge()
    linecache.clearcache()
    sys._clear_type_cache()
    # A collection here may finalize an orphaned suspended greenlet the test
    # left in a cycle, which warns (ResourceWarning).  Outside the test's own
    # phases pytest would keep every such warning for its summary: a growth
    # of the harness, not of the test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(3):
            if not gc.collect():
                break


def _reading():
    _clear_caches()
    return sys.gettotalrefcount(), sys.getallocatedblocks()


# Tests that leak by design, with the reason.  Listed tests are still
# measured: their leak is reported but does not fail the run, and a listed
# test that no longer leaks fails it (take it off the list).
_THREAD_EXIT = (
    "a greenlet suspended when its thread exits is freed without unwinding "
    "its frames (no thread to run them in, as upstream greenlet): what those "
    "frames hold leaks, e.g. the thread's main greenlet kept on the value "
    "stack by the pending 'parent.switch()' call"
)
KNOWN_LEAKS = {
    "tests/test_observe_attributes.py::test_thread_exit_makes_its_greenlets_dead_keeping_ids_and_counters": _THREAD_EXIT,
    "tests/test_observe_frames.py::test_suspended_greenlet_of_exited_thread_is_none": _THREAD_EXIT,
    "tests/test_observe_registry.py::test_greenlets_of_exited_thread_listed_while_referenced": _THREAD_EXIT,
    # The other_thread fixture leaves a suspended greenlet in its thread.
    "tests/test_parent.py::test_started_greenlet_parent_cannot_be_on_other_thread": _THREAD_EXIT,
    "tests/test_parent.py::test_running_greenlet_parent_cannot_be_on_other_thread": _THREAD_EXIT,
    "tests/test_parent.py::test_unstarted_greenlet_may_get_parent_from_other_thread": _THREAD_EXIT,
    "tests/test_parent.py::test_unstarted_greenlet_constructed_with_other_thread_parent": _THREAD_EXIT,
    "tests/test_parent.py::test_unstarted_greenlet_from_other_thread_can_be_reparented": _THREAD_EXIT,
    "tests/test_threads.py::test_queued_kill_dropped_when_thread_exits_first": _THREAD_EXIT,
    "tests/test_threads.py::test_greenlet_outliving_its_thread_is_dead": _THREAD_EXIT,
    "tests/test_threads.py::test_switch_into_greenlet_of_exited_thread": _THREAD_EXIT,
    "tests/test_threads.py::test_many_threads_with_suspended_greenlets_clean_up": _THREAD_EXIT,
    "tests/test_orphans.py::test_orphan_that_refuses_to_die_is_left_alone": (
        "the test makes an orphaned greenlet that catches GreenletExit and "
        "switches away again; such a greenlet is left alive on purpose, so "
        "every run keeps one (with its frame)"
    ),
}


# Tests that request one of these fixtures run once and are not measured:
# they do their work in a child interpreter, whose references this process
# cannot count, and repeating them would only multiply their start-up time.
ONCE_FIXTURES = frozenset({"run_python"})


def _leaked(deltas):
    return all(d > 0 for d in deltas)


@pytest.fixture
def tmp_path():
    """A fresh temporary directory, as pytest's ``tmp_path`` gives.

    pytest's own depends on the session-scoped ``tmp_path_factory``, and every
    use of a function-scoped fixture that depends on a wider-scoped one adds a
    finalizer to the wider one: a growth of about 30 references a run that is
    pytest's, not the test's.  This one is self-contained.
    """
    import pathlib
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="refleak-")
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


class RefleakPlugin:
    def __init__(self, warmups, measured, report_path):
        self.warmups = warmups
        self.measured = measured
        self.report_path = report_path
        self.report = None
        self.rows = []
        self.leaks = []
        self.known = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        keep = _KeepEnclosing(item)
        total = self.warmups + self.measured
        if ONCE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            total = 1   # its work is in a child process: nothing to measure here
        # Preallocated, and only small ints stored: the bookkeeping itself
        # must not allocate a block or keep a reference per run.
        refs = [0] * self.measured
        blocks = [0] * self.measured
        # Two distinct non-cached ints, replaced (not added to) by the first
        # reading.
        refs_before, blocks_before = int("1000001"), int("1000002")
        reports = []
        completed = 0
        for run in range(total):
            reports = runtestprotocol(item, log=False, nextitem=keep)
            if any(not r.passed for r in reports):
                break   # failed or skipped: report it as it is, measure nothing
            if run >= self.warmups - 1:
                refs_after, blocks_after = _reading()
                if run >= self.warmups:
                    refs[run - self.warmups] = refs_after - refs_before
                    blocks[run - self.warmups] = blocks_after - blocks_before
                refs_before, blocks_before = refs_after, blocks_after
            completed += 1
        failure = None
        if completed == total and total > 1:
            self.rows.append((item.nodeid, refs, blocks))
            if self.report:
                self.report.write("%s\t%s\t%s\n" % (
                    item.nodeid, " ".join(map(str, refs)), " ".join(map(str, blocks))))
                self.report.flush()
            what = []
            if _leaked(refs):
                what.append("references %s (sum %d)" % (refs, sum(refs)))
            if _leaked(blocks):
                what.append("memory blocks %s (sum %d)" % (blocks, sum(blocks)))
            known = KNOWN_LEAKS.get(item.nodeid)
            if what:
                leak = "%s leaked %s over %d runs after %d warm-up runs" % (
                    item.nodeid, " and ".join(what), self.measured, self.warmups)
                if known:
                    self.known.append(leak + " [known: %s]" % known)
                else:
                    self.leaks.append(leak)
                    failure = leak
            elif known:
                failure = ("%s is listed in KNOWN_LEAKS (tools/refleak.py) but no "
                           "longer leaks (references %s, blocks %s): take it off "
                           "the list" % (item.nodeid, refs, blocks))
                self.leaks.append(failure)
        for rep in reports:
            if failure and rep.when == "call":
                rep.outcome = "failed"
                rep.longrepr = failure
            ihook.pytest_runtest_logreport(report=rep)
        # The runs above kept the enclosing fixtures up; now tear down what the
        # real next test does not share.
        call = CallInfo.from_call(
            lambda: item.session._setupstate.teardown_exact(nextitem), "teardown")
        if call.excinfo is not None:
            ihook.pytest_runtest_logreport(
                report=ihook.pytest_runtest_makereport(item=item, call=call))
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        tr.section("reference leaks (runs %d:%d)" % (self.warmups, self.measured))
        for leak in self.known:
            tr.write_line("known " + leak)
        for leak in self.leaks:
            tr.write_line("LEAK " + leak)
        tr.write_line("%d tests measured: %d leaking, %d known leaks (by design)" % (
            len(self.rows), len(self.leaks), len(self.known)))

    def pytest_sessionstart(self, session):
        if self.report_path:
            self.report = open(self.report_path, "w", encoding="utf-8")

    def pytest_sessionfinish(self, session):
        if self.report:
            self.report.close()
            self.report = None


def main(argv):
    if not hasattr(sys, "gettotalrefcount"):
        sys.exit("refleak: %s is not a debug build (no sys.gettotalrefcount)" % sys.executable)
    runs, report, rest = "3:3", None, []
    for arg in argv:
        if arg.startswith("--refleak-runs="):
            runs = arg.split("=", 1)[1]
        elif arg.startswith("--refleak-report="):
            report = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    try:
        warmups, measured = _parse_runs(runs)
    except pytest.UsageError as exc:
        sys.exit("refleak: %s" % exc)
    plugin = RefleakPlugin(warmups, measured, report)
    return pytest.main(rest, plugins=[plugin, sys.modules[__name__]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
