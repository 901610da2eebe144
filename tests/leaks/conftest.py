"""Shared pieces of the leak-hunting tests: pytester, a private runtime directory.

``pytest_plugins`` is only allowed in a top-level conftest, so pytester is
loaded from ``pytest_configure`` instead (a no-op when ``-p pytester`` was
given).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("pytester")


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short private directory: XDG_RUNTIME_DIR of the children (socket paths stay short)."""
    path = Path(tempfile.mkdtemp(prefix="gtl-", dir="/tmp"))
    path.chmod(0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)
