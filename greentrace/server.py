"""The in-program inspection server: a Unix socket answering a fixed set of read-only requests.

See ``greentrace.inspector`` for the protocol and the safety rules.  The
accepting thread and one thread per client are hidden from captures; answers
come from ``greentrace.capture``, taken under the GIL, and nothing runs while
nobody is connected.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .protocol import (
    EXITING,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_RECORD_CAPACITY,
    MAX_RECORD_SECONDS,
    MAX_REQUEST,
    OPS,
    VERSION,
    answer,
)
from .sockets import checked_dir, peer_uid, socket_path

_STARTED_AT = time.time()


def _process_started_at() -> float:
    """Wall-clock start of this process (Linux /proc), else when greentrace loaded."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
        ticks = int(fields[19])  # field 22 of stat(5), counted after the comm
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _STARTED_AT


class _BadRequest(Exception):
    pass


class _Exiting(Exception):
    pass


def _number(request: dict[str, Any], key: str, low: float, high: float) -> float:
    value = request.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadRequest(f"{key!r} must be a number")
    if not low < value <= high:
        raise _BadRequest(f"{key!r} must be more than {low:g} and at most {high:g}")
    return float(value)


def _linger(conn: socket.socket, limit: int = MAX_REQUEST) -> None:
    """End our side, then drop what the peer still sends, so it reads our last answer.

    Closing a socket with unread input resets the connection, and the peer
    may lose the answer that explains why we stopped.
    """
    conn.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 0.5
    discarded = 0
    while discarded <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        chunk = conn.recv(65536)
        if not chunk:
            break
        discarded += len(chunk)


class Server:
    """Accepts connections on a Unix socket in a daemon thread; one thread per client."""

    idle_timeout = IDLE_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        self.started_at = _process_started_at()
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(1)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._inode: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket of our pid), restrict, listen, accept in a thread."""
        checked_dir(self.path.parent, create=True)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._inode = self.path.stat().st_ino
        self._sock.listen(self.max_connections)
        self._thread = threading.Thread(
            target=self._accept_loop, name="greentrace-inspector", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, end recordings in progress, remove our socket."""
        if os.getpid() != self.pid:
            # A forked child shares the listening socket: shutting it down or
            # removing its file would take the parent's server away.
            self._sock.close()
            return
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        try:
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        from . import capture

        capture.mark_internal()
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    if self._stop.is_set():
                        break
                    time.sleep(0.05)  # e.g. EMFILE: let descriptors free up
                    continue
                if not self._slots.acquire(blocking=False):
                    self._refuse(conn, "too many connections")
                    continue
                threading.Thread(
                    target=self._client,
                    args=(conn,),
                    name="greentrace-client",
                    daemon=True,
                ).start()
        finally:
            capture.unmark_internal()

    def _refuse(self, conn: socket.socket, why: str) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(answer(None, error=why))
            _linger(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _client(self, conn: socket.socket) -> None:
        from . import capture

        capture.mark_internal()
        try:
            if peer_uid(conn) != os.getuid():
                self._refuse(conn, "permission denied: only the owner may inspect")
                return
            conn.settimeout(self.idle_timeout)
            self._converse(conn)
            _linger(conn)
        except OSError:
            pass
        finally:
            conn.close()
            self._slots.release()
            capture.unmark_internal()

    def _converse(self, conn: socket.socket) -> None:
        buffer = b""
        while not self._stop.is_set():
            newline = buffer.find(b"\n")
            if newline < 0:
                if len(buffer) > MAX_REQUEST:
                    conn.sendall(
                        answer(None, error=f"request larger than {MAX_REQUEST} bytes")
                    )
                    return  # the rest of that line cannot be told from a new request
                chunk = conn.recv(65536)
                if not chunk:
                    if buffer.strip():
                        conn.sendall(
                            answer(None, error="truncated request: no newline")
                        )
                    return
                buffer += chunk
                continue
            line, buffer = buffer[:newline], buffer[newline + 1 :]
            if len(line) > MAX_REQUEST:
                conn.sendall(
                    answer(None, error=f"request larger than {MAX_REQUEST} bytes")
                )
                return
            if line.strip():
                conn.sendall(self.handle(line))

    def handle(self, line: bytes) -> bytes:
        """The answer line to one request line."""
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return answer(None, error="malformed request: not JSON")
        except RecursionError:
            return answer(None, error="malformed request: nested too deeply")
        if not isinstance(request, dict):
            return answer(None, error="malformed request: not a JSON object")
        op = request.get("op")
        if request.get("v") != VERSION:
            return answer(
                None, error=f"unsupported protocol version {request.get('v')!r}"
            )
        if op not in OPS:
            return answer(None, error=f"unknown op {op!r}")
        try:
            return answer(op, self._do(str(op), request))
        except _BadRequest as exc:
            return answer(None, error=f"bad {op} request: {exc}")
        except _Exiting:
            return answer(None, error=EXITING)
        except Exception as exc:  # noqa: BLE001 (the server thread must survive)
            return answer(None, error=f"{op} failed: {type(exc).__name__}: {exc}")

    def _do(self, op: str, request: dict[str, Any]) -> Any:
        from . import capture

        if op == "ping":
            return {"pid": self.pid}
        if op == "info":
            return self._info()
        if op in ("snapshot", "stacks"):
            return capture.snapshot(lines=op == "stacks").to_dict()
        seconds = _number(request, "seconds", 0, MAX_RECORD_SECONDS)
        capacity = 65536
        if "capacity" in request:
            capacity = int(_number(request, "capacity", 0, MAX_RECORD_CAPACITY))
        result = capture.record(seconds, capacity=capacity, stop=self._stop)
        if self._stop.is_set():
            raise _Exiting
        return result.to_dict()

    def _info(self) -> dict[str, Any]:
        from . import capture

        count = capture.greenlet_count()
        return {
            "pid": self.pid,
            "argv": list(sys.argv),
            "executable": sys.executable,
            "python": sys.version.split()[0],
            "started_at": self.started_at,
            "uptime": max(0.0, time.time() - self.started_at),
            "greenlets": count,
        }


_server: Server | None = None
_server_lock = threading.Lock()


def serve() -> str:
    """Make this program inspectable; idempotent; returns the socket path."""
    global _server
    with _server_lock:
        if _server is not None and _server.pid == os.getpid():
            return str(_server.path)
        from .capture import account_run_time

        account_run_time()
        server = Server(socket_path(os.getpid()))
        server.start()
        _server = server
        atexit.register(_close_at_exit, server)
        return str(server.path)


def serving() -> str | None:
    """The socket path if this process serves, else None."""
    server = _server
    return (
        str(server.path) if server is not None and server.pid == os.getpid() else None
    )


def stop_serving() -> None:
    """Close the server of this process, if any, and remove its socket."""
    global _server
    with _server_lock:
        server, _server = _server, None
    if server is not None:
        server.close()


def _close_at_exit(server: Server) -> None:
    if server.pid == os.getpid():
        server.close()


def _forget_after_fork() -> None:
    global _server
    _server = None  # the child has no server thread; the parent keeps its socket


os.register_at_fork(after_in_child=_forget_after_fork)
