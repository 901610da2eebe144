"""pytest plugin: fail (or warn about) tests that leave greenlets alive.

Installed with greentrace (entry point ``pytest11``) and off by default:

- ``pytest --greenlet-leaks`` (or ``--greenlet-leaks=fail``): a test that
  passed but left new greenlets alive and not dead gets an error at teardown
  with the leak report (stack, spawn site, reference chain of each greenlet);
- ``pytest --greenlet-leaks=warn``: the same report as a warning only;
- ``@pytest.mark.allow_greenlet_leaks``: this test is not checked;
- the ``greenlet_leaks`` fixture checks explicitly, with or without the
  option: ``greenlet_leaks.check()`` raises ``GreenletLeakError``;
- a summary at the end of the run: tests checked, leaks, spawn sites.

A test is judged after its teardown, once pytest has dropped its fixture
values: greenlets that a function-scoped fixture finishes are no leaks, nor
are the ones created while a fixture of a wider scope was set up.  Failed
and skipped tests are not judged (their tracebacks keep locals alive).
While the option is on, spawn tracking is on (8 frames) unless the program
set its own depth.  (``--greenlet-leaks PATH``: argparse takes the path for
the option's value; the plugin gives it back to the test paths.)
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .leaks import Baseline, Leak

MARKER = "allow_greenlet_leaks"
MODES = ("fail", "warn")


class GreenletLeakWarning(pytest.PytestWarning):
    """A test left greenlets alive (``--greenlet-leaks=warn``)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--greenlet-leaks[=fail|warn]``."""
    group = parser.getgroup("greentrace", "greenlet leak checks (greentrace)")
    group.addoption(
        "--greenlet-leaks",
        dest="greenlet_leaks",
        nargs="?",
        const="fail",
        default=None,
        metavar="fail|warn",
        help="check that each test leaves no new greenlet alive: fail it "
        "(default) or only warn",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; start the checker when the option is given."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}: do not check this test for leaked greenlets (--greenlet-leaks)",
    )
    mode = config.getoption("greenlet_leaks", None)
    if mode not in (None, *MODES):
        mode = _take_back_path(config, str(mode))
    if mode:
        checker = LeakChecker(mode, str(config.rootpath))
        config.pluginmanager.register(checker, "greentrace-leak-checker")


def _take_back_path(config: pytest.Config, value: str) -> str:
    """``--greenlet-leaks PATH``: argparse took the path as the option's value.

    Give it back to the test paths and use the default mode.
    """
    if not os.path.exists(value.split("::")[0]):
        raise pytest.UsageError(
            f"--greenlet-leaks: expected 'fail' or 'warn', got {value!r}"
        )
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.insert(0, value)
    else:  # the path was the only one: it replaces testpaths or the current directory
        config.args[:] = [value]
        config.args_source = pytest.Config.ArgsSource.ARGS
    return "fail"


class LeakChecker:
    """Judges every test of the session; registered by ``--greenlet-leaks``."""

    def __init__(self, mode: str, root: str = "") -> None:
        import greenlet

        from . import leaks

        self.mode = mode
        self.root = root.rstrip(os.sep) + os.sep if root else ""
        self.leaks = leaks
        self.newest_id = leaks.newest_id
        self.checked = 0
        self.allowed = 0
        self.unjudged = 0
        self.leaking: list[tuple[str, int]] = []
        self.sites: Counter[str] = Counter()
        # Greenlets created while a fixture wider than a test was set up.
        self.fixture_ranges: list[tuple[int, int]] = []
        self.previous_depth = greenlet.get_spawn_tracking()
        if self.previous_depth == 0:
            greenlet.set_spawn_tracking(leaks.SPAWN_DEPTH)

    def pytest_unconfigure(self) -> None:
        """Put spawn tracking back as it was."""
        import greenlet

        greenlet.set_spawn_tracking(self.previous_depth)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        """Note the greenlets a session, package, module or class fixture creates."""
        if fixturedef.scope == "function":
            return (yield)
        before = self.newest_id()
        try:
            return (yield)
        finally:
            after = self.newest_id()
            if after > before:
                self.fixture_ranges.append((before, after))

    def _from_fixture(self, greenlet_id: int) -> bool:
        return any(low < greenlet_id <= high for low, high in self.fixture_ranges)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        """Run the test like pytest does, but judge it before its reports go out."""
        if item.get_closest_marker(MARKER) is not None:
            self.allowed += 1
            return None  # pytest's own protocol
        from _pytest.runner import runtestprotocol

        base = self.leaks.Baseline(self.newest_id())
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        self._judge(item, base, reports)
        for report in reports:
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _judge(self, item: pytest.Item, base: Baseline, reports: list[Any]) -> None:
        if not all(r.passed for r in reports) or len(reports) < 3:
            self.unjudged += 1  # failed, errored or skipped: not judged
            return
        self.checked += 1
        if self.newest_id() <= base.max_id:
            return  # the usual case: no greenlet newer than the test is alive
        found = self.leaks.find_leaks(base, exclude=self._from_fixture)
        if not found:
            return
        self._record(item, found)
        text = self.leaks.format_report(found)
        teardown = reports[-1]
        if self.mode == "warn":
            try:
                warnings.warn_explicit(
                    GreenletLeakWarning(f"{item.nodeid}: {text}"),
                    category=GreenletLeakWarning,
                    filename=str(item.path),
                    lineno=(item.location[1] or 0) + 1,
                )
                teardown.sections.append(("greenlet leaks", text))
                return
            except Warning:
                pass  # warnings are errors here (-W error): fail the test instead
        teardown.outcome = "failed"
        teardown.longrepr = text

    def _record(self, item: pytest.Item, found: list[Leak]) -> None:
        self.leaking.append((item.nodeid, len(found)))
        for leak in found:
            site = leak.spawn_key
            if self.root and site.startswith(self.root):
                site = site[len(self.root) :]
            self.sites[site] += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Tests checked, leaks found, leaked greenlets by spawn site."""
        tr = terminalreporter
        leaked = sum(count for _, count in self.leaking)
        tr.write_sep("=", "greenlet leaks")
        ran_here = self.checked + self.allowed + self.unjudged
        if not ran_here and tr.config.pluginmanager.has_plugin("dsession"):
            tr.write_line(
                "tests ran in pytest-xdist workers: leaks show as their errors"
            )
            return
        parts = [f"{self.checked} tests checked"]
        parts.append(
            f"{len(self.leaking)} leaking ({leaked} greenlet{'s' if leaked != 1 else ''})"
        )
        if self.allowed:
            parts.append(f"{self.allowed} allowed by @pytest.mark.{MARKER}")
        if self.unjudged:
            parts.append(f"{self.unjudged} not judged (failed or skipped)")
        tr.write_line(", ".join(parts) + f" [mode: {self.mode}]")
        if not self.leaking:
            return
        tr.write_line("leaking tests:")
        for nodeid, count in self.leaking:
            tr.write_line(f"  {nodeid}: {count} greenlet{'s' if count != 1 else ''}")
        tr.write_line("leaked greenlets by spawn site:")
        for site, count in self.sites.most_common():
            tr.write_line(f"  {count:6d}  {site}")


class LeakCheck:
    """What the ``greenlet_leaks`` fixture gives a test: explicit leak checks."""

    def __init__(self) -> None:
        from . import leaks

        self._leaks = leaks
        self.baseline: Baseline = leaks.baseline()

    def reset(self) -> None:
        """Count leaks from now on."""
        self.baseline = self._leaks.baseline()

    def find(self, **options: Any) -> list[Leak]:
        """The greenlets created since the baseline still alive (see ``find_leaks``)."""
        return self._leaks.find_leaks(self.baseline, **options)

    def check(self, **options: Any) -> None:
        """Raise ``GreenletLeakError`` if greenlets created since the baseline are alive."""
        found = self.find(**options)
        if found:
            raise self._leaks.GreenletLeakError(found)


@pytest.fixture
def greenlet_leaks() -> Generator[LeakCheck, None, None]:
    """Explicit leak checks: ``greenlet_leaks.check()`` fails on greenlets left alive.

    The baseline is taken when the fixture is set up (``reset()`` moves it);
    spawn tracking is on while the test runs.
    """
    import greenlet

    from .leaks import SPAWN_DEPTH

    previous = greenlet.get_spawn_tracking()
    if previous == 0:
        greenlet.set_spawn_tracking(SPAWN_DEPTH)
    try:
        yield LeakCheck()
    finally:
        greenlet.set_spawn_tracking(previous)
