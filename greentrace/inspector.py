"""Inspection of running programs: the in-program server and the client the CLI uses.

Safety rules: the socket lives in a per-user runtime directory (mode 0700)
and is itself mode 0600; every connection's peer uid is checked with
``SO_PEERCRED`` and refused unless it is ours; there is no TCP listener; the
server answers a fixed set of read-only requests and never evaluates code.

The protocol is JSON lines.  A request is one object per line, at most
``MAX_REQUEST`` bytes: ``{"v": 1, "op": OP, ...}`` with OP one of ``ping``,
``info``, ``snapshot``, ``stacks`` and ``record`` (with ``"seconds"``).
Each request gets one answer line: ``{"v": 1, "ok": true, "op": OP,
"result": ...}`` or ``{"v": 1, "ok": false, "error": MESSAGE}``.  Snapshots
and recordings travel as the model's JSON (``greentrace.model``).

The pieces: ``greentrace.protocol`` (the wire format), ``greentrace.sockets``
(where sockets live, whose they are), ``greentrace.server`` (the server),
``greentrace.client`` (the client and ``programs``); this module gathers
their public names.
"""

from __future__ import annotations

from .client import Client, programs
from .protocol import (
    EXITING,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_RECORD_CAPACITY,
    MAX_RECORD_SECONDS,
    MAX_REQUEST,
    OPS,
    VERSION,
)
from .server import Server, serve, serving, stop_serving
from .sockets import InspectorError, StaleSocket, pid_alive, runtime_dir, socket_path

__all__ = [
    "EXITING",
    "IDLE_TIMEOUT",
    "MAX_CONNECTIONS",
    "MAX_RECORD_CAPACITY",
    "MAX_RECORD_SECONDS",
    "MAX_REQUEST",
    "OPS",
    "VERSION",
    "Client",
    "InspectorError",
    "Server",
    "StaleSocket",
    "pid_alive",
    "programs",
    "runtime_dir",
    "serve",
    "serving",
    "socket_path",
    "stop_serving",
]
