"""``python -m greentrace``: the command line (see ``greentrace.cli``)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
