"""The inspector's client: one connection to a serving program, and the list of such programs."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .model import Recording, Snapshot
from .protocol import EXITING, VERSION
from .sockets import (
    InspectorError,
    StaleSocket,
    checked_dir,
    peer_uid,
    pid_alive,
    remove_stale,
    runtime_dir,
    socket_path,
)

if TYPE_CHECKING:
    from typing_extensions import Self

_T = TypeVar("_T")


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
                remove_stale(self.path)
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
        if peer_uid(sock) != os.getuid():
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


def programs(
    clean: bool = True, timeout: float = 2.0
) -> tuple[list[dict[str, Any]], int]:
    """Info of every inspectable program of this user, and how many stale sockets were removed."""
    directory = runtime_dir()
    found: list[dict[str, Any]] = []
    removed = 0
    try:
        if not checked_dir(directory, create=False):
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
            removed += clean and remove_stale(path)
            continue
        try:
            with Client(pid, timeout=timeout) as client:
                found.append(client.info())
        except StaleSocket:
            removed += clean and remove_stale(path)
        except InspectorError as exc:
            if pid_alive(pid):
                found.append({"pid": pid, "error": str(exc)})
            else:
                removed += 1  # it exited meanwhile; Client removed its socket
    return found, removed
