"""The in-program inspection server (a Unix socket) and the client the CLI uses.

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
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .model import Recording, Snapshot

if TYPE_CHECKING:
    from typing_extensions import Self

VERSION = 1
"""Protocol version: the ``v`` of every request and answer."""
MAX_REQUEST = 64 * 1024
MAX_RECORD_SECONDS = 600.0
MAX_RECORD_CAPACITY = 4 * 1024 * 1024
MAX_CONNECTIONS = 8
IDLE_TIMEOUT = 30.0
OPS = ("ping", "info", "snapshot", "stacks", "record")
EXITING = "the program is exiting"
_T = TypeVar("_T")
_UCRED = struct.Struct("3i")  # pid, uid, gid
_STARTED_AT = time.time()


class InspectorError(Exception):
    """A failure to talk to an inspected program, worded for people."""


class StaleSocket(InspectorError):
    """A socket file nobody listens on any more."""


# --- where sockets live -----------------------------------------------------------


def runtime_dir() -> Path:
    """The per-user directory of sockets: $XDG_RUNTIME_DIR/greentrace or /tmp/greentrace-UID."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        try:
            st = os.stat(xdg)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            return Path(xdg) / "greentrace"
    return Path(f"/tmp/greentrace-{os.getuid()}")


def socket_path(pid: int) -> Path:
    """Where the program with ``pid`` listens when it serves."""
    return runtime_dir() / f"{pid}.sock"


def _checked_dir(path: Path, create: bool) -> bool:
    """Make sure ``path`` is a real directory of ours, private; False if absent."""
    if create:
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise InspectorError(f"{path} is not a directory: refusing to use it")
    if st.st_uid != os.getuid():
        raise InspectorError(f"{path} belongs to uid {st.st_uid}: refusing to use it")
    if create and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return True


def _peer_uid(sock: socket.socket) -> int:
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return int(_UCRED.unpack(data)[1])


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists (of any user) and has not exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (
        b"Z",
        b"X",
    )  # a zombie has exited; only its parent has not noticed


# --- the server -------------------------------------------------------------------


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


def _answer(op: str | None, result: Any = None, error: str | None = None) -> bytes:
    if error is not None:
        body: dict[str, Any] = {"v": VERSION, "ok": False, "error": error}
    else:
        body = {"v": VERSION, "ok": True, "op": op, "result": result}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


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
        _checked_dir(self.path.parent, create=True)
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
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._stop.is_set():
                    break
                time.sleep(0.05)  # e.g. EMFILE: let descriptors free up
                continue
            except BaseException:
                capture.unmark_internal()
                raise
            if not self._slots.acquire(blocking=False):
                self._refuse(conn, "too many connections")
                continue
            threading.Thread(
                target=self._client, args=(conn,), name="greentrace-client", daemon=True
            ).start()

    def _refuse(self, conn: socket.socket, why: str) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(_answer(None, error=why))
            _linger(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _client(self, conn: socket.socket) -> None:
        from . import capture

        capture.mark_internal()
        try:
            if _peer_uid(conn) != os.getuid():
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
                        _answer(None, error=f"request larger than {MAX_REQUEST} bytes")
                    )
                    return  # the rest of that line cannot be told from a new request
                chunk = conn.recv(65536)
                if not chunk:
                    if buffer.strip():
                        conn.sendall(
                            _answer(None, error="truncated request: no newline")
                        )
                    return
                buffer += chunk
                continue
            line, buffer = buffer[:newline], buffer[newline + 1 :]
            if len(line) > MAX_REQUEST:
                conn.sendall(
                    _answer(None, error=f"request larger than {MAX_REQUEST} bytes")
                )
                return
            if line.strip():
                conn.sendall(self.handle(line))

    def handle(self, line: bytes) -> bytes:
        """The answer line to one request line."""
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _answer(None, error="malformed request: not JSON")
        if not isinstance(request, dict):
            return _answer(None, error="malformed request: not a JSON object")
        op = request.get("op")
        if request.get("v") != VERSION:
            return _answer(
                None, error=f"unsupported protocol version {request.get('v')!r}"
            )
        if op not in OPS:
            return _answer(None, error=f"unknown op {op!r}")
        try:
            return _answer(op, self._do(str(op), request))
        except _BadRequest as exc:
            return _answer(None, error=f"bad {op} request: {exc}")
        except _Exiting:
            return _answer(None, error=EXITING)
        except Exception as exc:  # noqa: BLE001 (the server thread must survive)
            return _answer(None, error=f"{op} failed: {type(exc).__name__}: {exc}")

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


# --- the client -------------------------------------------------------------------


class Client:
    """One connection to the inspector of process ``pid`` (a context manager)."""

    def __init__(self, pid: int, timeout: float = 10.0) -> None:
        self.pid = pid
        self.path = socket_path(pid)
        self.timeout = timeout
        self._buffer = b""
        self._sock = self._connect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def _connect(self) -> socket.socket:
        pid = self.pid
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            if pid_alive(pid):
                raise InspectorError(
                    f"process {pid} is not serving greentrace "
                    "(start it with 'greentrace run --serve' or call greentrace.serve())"
                ) from None
            raise InspectorError(f"no process with pid {pid}") from None
        except PermissionError:
            raise InspectorError(f"permission refused reading {self.path}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise InspectorError(f"{self.path} is not a socket: refusing to use it")
        if st.st_uid != os.getuid():
            raise InspectorError(
                f"{self.path} belongs to uid {st.st_uid}, not to you: refusing to use it"
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            if not pid_alive(pid):
                _remove_stale(self.path)
                raise InspectorError(
                    f"process {pid} is gone (removed its stale socket)"
                ) from None
            raise StaleSocket(
                f"process {pid} is not serving greentrace (stale socket {self.path})"
            ) from None
        except PermissionError:
            sock.close()
            raise InspectorError(
                f"permission refused connecting to {self.path}"
            ) from None
        except OSError as exc:
            sock.close()
            raise InspectorError(
                f"cannot connect to process {pid}: {exc.strerror}"
            ) from None
        if _peer_uid(sock) != os.getuid():
            sock.close()
            raise InspectorError(f"{self.path} is served by another user: refusing it")
        return sock

    def request(
        self,
        op: str,
        timeout: float | None = None,
        tick: Callable[[], None] | None = None,
        **params: Any,
    ) -> Any:
        """Send one request and return its result; InspectorError on any failure."""
        line = json.dumps({"v": VERSION, "op": op, **params}).encode() + b"\n"
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(line)
            raw = self._read_line(self.timeout if timeout is None else timeout, tick)
        except (BrokenPipeError, ConnectionResetError):
            raise self._gone(op) from None
        except OSError as exc:
            raise InspectorError(
                f"talking to process {self.pid} failed: {exc}"
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise InspectorError(
                f"process {self.pid} sent a malformed answer"
            ) from None
        if not isinstance(answer, dict) or answer.get("v") != VERSION:
            raise InspectorError(f"process {self.pid} speaks another protocol version")
        if not answer.get("ok"):
            error = answer.get("error", "unknown error")
            if error == EXITING:
                during = " during the recording" if op == "record" else ""
                raise InspectorError(f"process {self.pid} exited{during}")
            if str(error).startswith("permission denied"):
                raise InspectorError(f"process {self.pid} refused: {error}")
            raise InspectorError(f"process {self.pid}: {error}")
        return answer.get("result")

    def _gone(self, op: str) -> InspectorError:
        during = " during the recording" if op == "record" else ""
        time.sleep(0.05)  # an exiting program closes its socket just before it is gone
        if not pid_alive(self.pid):
            return InspectorError(f"process {self.pid} exited{during}")
        return InspectorError(
            f"process {self.pid} closed the connection{during} (is it exiting?)"
        )

    def _read_line(self, timeout: float, tick: Callable[[], None] | None) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise InspectorError(
                    f"process {self.pid} did not answer in {timeout:g} s"
                )
            self._sock.settimeout(min(left, 0.1) if tick is not None else left)
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                if tick is not None:
                    tick()
                continue
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "closed")
            self._buffer += chunk
            if tick is not None:
                tick()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def info(self) -> dict[str, Any]:
        """Pid, command line, greenlet count, uptime of the program."""
        result = self.request("info")
        if not isinstance(result, dict):
            raise InspectorError(f"process {self.pid} sent a malformed answer")
        return result

    def snapshot(self, stacks: bool = False) -> Snapshot:
        """The program's greenlets now (with source lines when ``stacks``)."""
        return _decode(
            self.pid,
            Snapshot.from_dict,
            self.request("stacks" if stacks else "snapshot"),
        )

    def record(
        self,
        seconds: float,
        tick: Callable[[], None] | None = None,
        capacity: int | None = None,
    ) -> Recording:
        """Record ``seconds`` of switches in the program; ``tick`` is called while waiting."""
        params: dict[str, Any] = {"seconds": seconds}
        if capacity is not None:
            params["capacity"] = capacity
        result = self.request(
            "record", timeout=seconds + max(30.0, self.timeout), tick=tick, **params
        )
        return _decode(self.pid, Recording.from_dict, result)


def _decode(pid: int, build: Callable[[Any], _T], data: Any) -> _T:
    try:
        return build(data)
    except (ValueError, TypeError) as exc:
        raise InspectorError(f"process {pid} sent a malformed answer: {exc}") from None


def _remove_stale(path: Path) -> bool:
    """Remove a socket file of ours whose program is gone."""
    try:
        st = path.lstat()
        if st.st_uid == os.getuid() and stat.S_ISSOCK(st.st_mode):
            path.unlink()
            return True
    except OSError:
        pass
    return False


def programs(
    clean: bool = True, timeout: float = 2.0
) -> tuple[list[dict[str, Any]], int]:
    """Info of every inspectable program of this user, and how many stale sockets were removed."""
    directory = runtime_dir()
    found: list[dict[str, Any]] = []
    removed = 0
    try:
        if not _checked_dir(directory, create=False):
            return found, removed
        entries = sorted(directory.glob("*.sock"))
    except (InspectorError, OSError):
        return found, removed
    for path in entries:
        try:
            pid = int(path.stem)
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        if not pid_alive(pid):
            removed += clean and _remove_stale(path)
            continue
        try:
            with Client(pid, timeout=timeout) as client:
                found.append(client.info())
        except StaleSocket:
            removed += clean and _remove_stale(path)
        except InspectorError as exc:
            if pid_alive(pid):
                found.append({"pid": pid, "error": str(exc)})
            else:
                removed += 1  # it exited meanwhile; Client removed its socket
    return found, removed
