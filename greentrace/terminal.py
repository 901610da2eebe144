"""The terminal the command line talks to: consoles, one-line messages, single keys."""

from __future__ import annotations

import os
import select
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from typing_extensions import Self


def stdout_console() -> Console:
    """Standard output; long lines are cut by the renderers, never soft-wrapped."""
    return Console(soft_wrap=False)


def stderr_console() -> Console:
    """Standard error, where messages and progress go."""
    return Console(stderr=True)


def say(console: Console, message: str) -> None:
    """Print ``message`` as it is: no markup, no highlighting."""
    console.print(message, markup=False, highlight=False)


class KeyReader:
    """Reads single keys from a terminal stdin without echo; only waits otherwise."""

    def __init__(self) -> None:
        self.saved: Any = None
        self.fd = (
            sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
        )

    def __enter__(self) -> Self:
        if self.fd is not None:
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None and self.fd is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def wait(self, seconds: float) -> str | None:
        """Wait up to ``seconds`` for a key; return it, or None."""
        if self.fd is None:
            time.sleep(seconds)
            return None
        ready, _, _ = select.select([self.fd], [], [], seconds)
        return os.read(self.fd, 1).decode(errors="replace") if ready else None
