"""The --greenlet-leaks pytest plugin, run on small suites with pytester.

Each suite runs in a subprocess (its leaked greenlets stay there), which
also checks that the plugin is found through its ``pytest11`` entry point.
"""

from __future__ import annotations

import re

import pytest

pytest_plugins: list[str] = []

SUITE = """
import pytest
from greenlet import greenlet, getcurrent

STUCK = []

def park():
    getcurrent().parent.switch()

def test_clean():
    g = greenlet(park)
    g.switch()
    g.throw()
    assert g.dead

def test_leaky():
    g = greenlet(park)
    g.gr_name = "forgotten"
    g.switch()
    STUCK.append(g)

def test_dropped_greenlets_are_no_leaks():
    g = greenlet(park)
    g.switch()
    del g  # released: killed with GreenletExit

@pytest.fixture
def worker():
    g = greenlet(park)
    g.switch()
    yield g
    g.throw()

def test_a_fixture_finishes_its_greenlet(worker):
    assert not worker.dead

@pytest.fixture
def parked_value():
    g = greenlet(park)
    g.switch()
    return [g]  # dropped with the fixture value after the test

def test_a_fixture_value_dropped_after_the_test(parked_value):
    assert parked_value

@pytest.fixture(scope="module")
def module_hub():
    hub = greenlet(park)
    hub.gr_name = "module-hub"
    hub.switch()
    yield hub
    hub.throw()

def test_module_fixture_greenlets_are_not_blamed(module_hub):
    assert not module_hub.dead
"""


# Line numbers in test_suite.py (pytester strips the leading newline): where
# test_leaky creates its greenlet, and park's switch.
_LINES = SUITE.strip("\n").splitlines()
SPAWN_LINE = (
    _LINES.index("    g = greenlet(park)", _LINES.index("def test_leaky():")) + 1
)
PARK_LINE = _LINES.index("    getcurrent().parent.switch()") + 1


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_fail_mode_flags_exactly_the_leaking_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester, "--greenlet-leaks", "-rA")
    assert result.ret == 1
    result.assert_outcomes(passed=6, errors=1)
    out = result.stdout.str()
    errors = re.findall(r"ERROR at teardown of (\w+)", out)
    assert errors == ["test_leaky"]
    assert re.findall(r"^ERROR (\S+)", out, re.MULTILINE) == [
        "test_suite.py::test_leaky"
    ]
    report = out.split("ERROR at teardown of test_leaky")[1]
    assert "1 greenlet leaked" in report
    assert re.search(
        r"greenlet #\d+ 'forgotten' \(greenlet.greenlet, runs park\) suspended", report
    )
    # the stack where it is stuck
    assert re.search(
        rf'stuck at.*\n\s+File ".*test_suite.py", line {PARK_LINE}, in park\n\s+getcurrent\(\).parent.switch\(\)',
        report,
    )
    # its spawn site, without pytest's own frames
    spawn = report.split("spawned at (innermost first):")[1].split("kept alive by")[0]
    assert re.search(
        rf'File ".*test_suite.py", line {SPAWN_LINE}, in test_leaky\n\s+g = greenlet\(park\)',
        spawn,
    )
    assert "_pytest" not in spawn and "pluggy" not in spawn
    # and the chain that keeps it alive
    assert re.search(
        r"kept alive by:\n\s+module test_suite \(.*test_suite.py\)\n\s+\.STUCK -> list of 1\n\s+\[0\] -> greenlet #\d+ 'forgotten'",
        report,
    )
    # the summary
    summary = out.split("greenlet leaks ==")[1]
    assert "6 tests checked, 1 leaking (1 greenlet) [mode: fail]" in summary
    assert "test_suite.py::test_leaky: 1 greenlet" in summary
    assert re.search(
        rf"leaked greenlets by spawn site:\n\s+1  test_suite.py:{SPAWN_LINE} in test_leaky\n",
        summary,
    )


def test_warn_mode_only_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester, "--greenlet-leaks=warn")
    assert result.ret == 0
    result.assert_outcomes(passed=6, warnings=1)
    out = result.stdout.str()
    assert "ERROR at teardown" not in out
    warnings = out.split("warnings summary")[1]
    assert "test_suite.py::test_leaky" in warnings
    assert "GreenletLeakWarning" in warnings
    assert "'forgotten'" in warnings and ".STUCK -> list of 1" in warnings
    assert "6 tests checked, 1 leaking (1 greenlet) [mode: warn]" in out


def test_warn_mode_fails_when_warnings_are_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester, "--greenlet-leaks=warn", "-W", "error")
    result.assert_outcomes(passed=6, errors=1)
    assert re.findall(r"ERROR at teardown of (\w+)", result.stdout.str()) == [
        "test_leaky"
    ]


def test_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester)
    result.assert_outcomes(passed=6)
    assert "greenlet leaks" not in result.stdout.str()


def test_the_option_followed_by_a_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE, test_other="def test_other(): pass")
    result = run(pytester, "--greenlet-leaks", "test_suite.py")
    result.assert_outcomes(passed=6, errors=1)  # test_other.py was not collected
    assert "[mode: fail]" in result.stdout.str()
    result = run(pytester, "--greenlet-leaks=sometimes")
    assert result.ret != 0
    assert (
        "--greenlet-leaks: expected 'fail' or 'warn', got 'sometimes'"
        in result.stderr.str()
    )


def test_marker_allows_a_leak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
import pytest
from greenlet import greenlet, getcurrent

KEEP = []

def park():
    getcurrent().parent.switch()

@pytest.mark.allow_greenlet_leaks
def test_allowed():
    g = greenlet(park)
    g.switch()
    KEEP.append(g)

def test_not_allowed():
    g = greenlet(park)
    g.switch()
    KEEP.append(g)
"""
    )
    result = run(pytester, "--greenlet-leaks", "--strict-markers")
    result.assert_outcomes(passed=2, errors=1)
    out = result.stdout.str()
    assert re.findall(r"ERROR at teardown of (\w+)", out) == ["test_not_allowed"]
    assert (
        "1 tests checked, 1 leaking (1 greenlet), 1 allowed by @pytest.mark.allow_greenlet_leaks"
        in out
    )


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    assert (
        "@pytest.mark.allow_greenlet_leaks: do not check this test"
        in result.stdout.str()
    )
    result = run(pytester, "--help")
    assert "--greenlet-leaks=[fail|warn]" in result.stdout.str()


def test_failed_and_skipped_tests_are_not_judged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing="""
import pytest
from greenlet import greenlet, getcurrent

KEEP = []

def park():
    getcurrent().parent.switch()

def test_fails_and_leaks():
    g = greenlet(park)
    g.switch()
    KEEP.append(g)
    assert False, "its own failure"

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""
    )
    result = run(pytester, "--greenlet-leaks")
    result.assert_outcomes(failed=1, skipped=1)
    out = result.stdout.str()
    assert "ERROR at teardown" not in out
    assert (
        "0 tests checked, 0 leaking (0 greenlets), 2 not judged (failed or skipped)"
        in out
    )


def test_fixture_for_explicit_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture="""
import pytest
from greenlet import greenlet, getcurrent, get_spawn_tracking
from greentrace.leaks import GreenletLeakError

KEEP = []

def park():
    getcurrent().parent.switch()

def test_check_passes_when_clean(greenlet_leaks):
    g = greenlet(park)
    g.switch()
    g.throw()
    greenlet_leaks.check()
    assert get_spawn_tracking() > 0

def test_find_and_reset(greenlet_leaks):
    g = greenlet(park)
    g.switch()
    KEEP.append(g)
    assert [leak.info.id for leak in greenlet_leaks.find()] == [g.gr_id]
    greenlet_leaks.reset()
    assert greenlet_leaks.find() == []

def test_check_fails(greenlet_leaks):
    g = greenlet(park)
    g.gr_name = "explicit"
    g.switch()
    KEEP.append(g)
    with pytest.raises(GreenletLeakError, match="'explicit'"):
        greenlet_leaks.check()
    greenlet_leaks.check()  # fails: let pytest show the report
"""
    )
    result = run(pytester)  # no option: the fixture works on its own
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert re.findall(r"^FAILED (\S+)", out, re.MULTILINE) == [
        "test_fixture.py::test_check_fails"
    ]
    assert "GreenletLeakError: 1 greenlet leaked" in out
    assert "kept alive by:" in out
    assert "local 'g' of test_check_fails()" in out  # the test's own variable holds it
