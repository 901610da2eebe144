"""Where inspector sockets live, whose they are, and whether their programs still run.

The sockets of one user sit in a private directory (mode 0700): under
``$XDG_RUNTIME_DIR`` when it is a directory of ours, else ``/tmp/greentrace-UID``.
Every function here refuses paths that belong to somebody else.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path

_UCRED = struct.Struct("3i")  # pid, uid, gid


class InspectorError(Exception):
    """A failure to talk to an inspected program, worded for people."""


class StaleSocket(InspectorError):
    """A socket file nobody listens on any more."""


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


def checked_dir(path: Path, create: bool) -> bool:
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


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket (SO_PEERCRED)."""
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


def remove_stale(path: Path) -> bool:
    """Remove a socket file of ours whose program is gone."""
    try:
        st = path.lstat()
        if st.st_uid == os.getuid() and stat.S_ISSOCK(st.st_mode):
            path.unlink()
            return True
    except OSError:
        pass
    return False
