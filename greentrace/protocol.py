"""The inspector's wire format: JSON lines, a version, a fixed set of read-only operations.

A request is one JSON object per line, at most ``MAX_REQUEST`` bytes:
``{"v": 1, "op": OP, ...}``, OP one of ``OPS``.  Each gets one answer line:
``{"v": 1, "ok": true, "op": OP, "result": ...}`` or ``{"v": 1, "ok": false,
"error": MESSAGE}``.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = 1
"""Protocol version: the ``v`` of every request and answer."""
MAX_REQUEST = 64 * 1024
MAX_RECORD_SECONDS = 600.0
MAX_RECORD_CAPACITY = 4 * 1024 * 1024
OPS = ("ping", "info", "snapshot", "stacks", "record")
EXITING = "the program is exiting"
MAX_CONNECTIONS = 8
"""Clients served at once; more are refused with an answer saying so."""
IDLE_TIMEOUT = 30.0
"""Seconds a client may stay silent before the server hangs up."""


def answer(op: str | None, result: Any = None, error: str | None = None) -> bytes:
    """One answer line: the result of ``op``, or the ``error`` when one is given."""
    if error is not None:
        body: dict[str, Any] = {"v": VERSION, "ok": False, "error": error}
    else:
        body = {"v": VERSION, "ok": True, "op": op, "result": result}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"
