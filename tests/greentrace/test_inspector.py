"""The inspector's protocol and safety rules, against a server in this process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import NOBODY, drop_to_nobody, python_for_nobody, request

greenlet = pytest.importorskip("greenlet")
from greentrace import inspector
from greentrace import server as server_module
from greentrace.model import Recording, Snapshot


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(runtime: Path) -> Iterator[inspector.Server]:
    srv = inspector.Server(inspector.socket_path(os.getpid()))
    srv.start()
    yield srv
    srv.close()


def ask(srv: inspector.Server, payload: bytes) -> list[dict]:
    return request(srv.path, payload)


def test_runtime_dir_and_modes(server: inspector.Server, runtime: Path) -> None:
    assert inspector.runtime_dir() == runtime / "greentrace"
    assert server.path == runtime / "greentrace" / f"{os.getpid()}.sock"
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(server.path.stat().st_mode)


def test_runtime_dir_falls_back_to_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert inspector.runtime_dir() == Path(f"/tmp/greentrace-{os.getuid()}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/dir")
    assert inspector.runtime_dir() == Path(f"/tmp/greentrace-{os.getuid()}")


def test_loose_directory_is_tightened_and_foreign_one_refused(runtime: Path) -> None:
    directory = runtime / "greentrace"
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)
    srv = inspector.Server(inspector.socket_path(os.getpid()))
    srv.start()
    srv.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(inspector.InspectorError, match="belongs to uid 65534"):
        inspector.Server(inspector.socket_path(os.getpid())).start()
    os.chown(directory, os.getuid(), os.getgid())
    shutil.rmtree(directory)
    directory.symlink_to(runtime)
    with pytest.raises(inspector.InspectorError, match="not a directory"):
        inspector.Server(inspector.socket_path(os.getpid())).start()


def test_every_op_answers_with_the_schema_version(server: inspector.Server) -> None:
    g = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
    g.gr_name = "probe"
    g.switch()
    lines = b"".join(
        json.dumps(r).encode() + b"\n"
        for r in (
            {"v": 1, "op": "ping"},
            {"v": 1, "op": "info"},
            {"v": 1, "op": "snapshot"},
            {"v": 1, "op": "stacks"},
            {"v": 1, "op": "record", "seconds": 0.05},
        )
    )
    ping, info, snap, stacks, record = ask(server, lines)
    for answer, op in zip((ping, info, snap, stacks, record), inspector.OPS):
        assert (
            answer["v"] == inspector.VERSION and answer["ok"] and answer["op"] == op
        ), answer
    assert ping["result"] == {"pid": os.getpid()}
    assert info["result"]["pid"] == os.getpid()
    assert info["result"]["greenlets"] >= 2
    assert info["result"]["uptime"] >= 0 and info["result"]["argv"] == sys.argv
    snapshot = Snapshot.from_dict(snap["result"])
    assert any(x.name == "probe" for x in snapshot.greenlets)
    # The server's own threads never show up.
    assert all(
        t.name is None or not t.name.startswith("greentrace-") for t in snapshot.threads
    )
    probe = next(
        x for x in Snapshot.from_dict(stacks["result"]).greenlets if x.name == "probe"
    )
    assert probe.stack[0].line is not None
    assert (
        next(x for x in snapshot.greenlets if x.name == "probe").stack[0].line is None
    )
    assert isinstance(Recording.from_dict(record["result"]), Recording)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"this is not json\n", "not JSON"),
        (b"[1, 2, 3]\n", "not a JSON object"),
        (b'{"op": "ping"}\n', "protocol version"),
        (b'{"v": 2, "op": "ping"}\n', "protocol version"),
        (b'{"v": 1, "op": "exec", "code": "import os"}\n', "unknown op 'exec'"),
        (b'{"v": 1}\n', "unknown op None"),
        (b'{"v": 1, "op": "record"}\n', "'seconds' must be a number"),
        (b'{"v": 1, "op": "record", "seconds": "5"}\n', "'seconds' must be a number"),
        (b'{"v": 1, "op": "record", "seconds": true}\n', "'seconds' must be a number"),
        (b'{"v": 1, "op": "record", "seconds": -1}\n', "more than 0"),
        (b'{"v": 1, "op": "record", "seconds": 100000}\n', "at most 600"),
        (b'{"v": 1, "op": "record", "seconds": 0.01, "capacity": 0}\n', "'capacity'"),
        (b"\xff\xfe\n", "not JSON"),
    ],
)
def test_bad_requests_get_error_answers_and_the_connection_goes_on(
    server: inspector.Server, payload: bytes, message: str
) -> None:
    answers = ask(server, payload + b'{"v": 1, "op": "ping"}\n')
    assert len(answers) == 2
    error, ping = answers
    assert error["v"] == inspector.VERSION and error["ok"] is False
    assert message in error["error"]
    assert ping["ok"] and ping["result"]["pid"] == os.getpid()


def test_truncated_request(server: inspector.Server) -> None:
    (answer,) = ask(server, b'{"v": 1, "op": "pi')
    assert not answer["ok"] and "truncated" in answer["error"]


def test_oversized_request_is_refused_and_the_server_keeps_serving(
    server: inspector.Server,
) -> None:
    big = b'{"v": 1, "op": "ping", "pad": "' + b"x" * (inspector.MAX_REQUEST + 10)
    for payload in (big, big + b'"}\n'):
        (answer,) = ask(server, payload)
        assert not answer["ok"] and "larger than" in answer["error"]
    (ping,) = ask(server, b'{"v":1,"op":"ping"}\n')
    assert ping["ok"]


def test_blank_lines_are_ignored(server: inspector.Server) -> None:
    answers = ask(server, b'\n\n{"v":1,"op":"ping"}\n\n')
    assert [a["ok"] for a in answers] == [True]


def test_idle_connections_are_closed(server: inspector.Server) -> None:
    server.idle_timeout = 0.2
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(server.path))
        assert sock.recv(100) == b""  # closed by the server, no answer


def test_too_many_connections(runtime: Path) -> None:
    srv = inspector.Server(inspector.socket_path(os.getpid()))
    srv.max_connections = 2
    srv.start()
    held = []
    try:
        for _ in range(2):
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(10)
            sock.connect(str(srv.path))
            sock.sendall(b'{"v":1,"op":"ping"}\n')
            assert b'"ok":true' in sock.recv(1000)
            held.append(sock)
        (answer,) = request(srv.path, b'{"v":1,"op":"ping"}\n')
        assert not answer["ok"] and "too many" in answer["error"]
        held.pop().close()

        def pinged() -> bool:
            try:
                return request(srv.path, b'{"v":1,"op":"ping"}\n')[0]["ok"]
            except OSError:
                return False

        assert any(pinged() for _ in range(200))
    finally:
        for sock in held:
            sock.close()
        srv.close()


def test_close_removes_the_socket_and_ends_a_recording(
    server: inspector.Server,
) -> None:
    results: list[list[dict]] = []
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(str(server.path))
    sock.sendall(b'{"v":1,"op":"record","seconds":60}\n')

    def read() -> None:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        results.append([json.loads(x) for x in data.splitlines()])

    reader = threading.Thread(target=read)
    reader.start()
    server.close()
    reader.join(10)
    sock.close()
    assert not server.path.exists()
    assert results and all(
        not a["ok"] and a["error"] == inspector.EXITING for a in results[0]
    )


def test_serve_is_idempotent_and_client_round_trips(runtime: Path) -> None:
    try:
        path = inspector.serve()
        assert inspector.serve() == path == inspector.serving()
        assert Path(path).exists()
        import greentrace

        assert greentrace.serve() == path
        with inspector.Client(os.getpid()) as client:
            assert client.info()["pid"] == os.getpid()
            assert isinstance(client.snapshot(), Snapshot)
            assert client.snapshot(stacks=True).pid == os.getpid()
            assert isinstance(client.record(0.05), Recording)
            with pytest.raises(inspector.InspectorError, match="unknown op"):
                client.request("shutdown")
    finally:
        inspector.stop_serving()
    assert inspector.serving() is None
    assert not Path(path).exists()


@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)
def test_forked_child_leaves_the_parents_socket_alone(runtime: Path) -> None:
    path = inspector.serve()
    parents = server_module._server
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover (runs in the child)
            code = 0 if inspector.serving() is None else 1
            server_module._close_at_exit(parents)  # what the inherited atexit hook does
            parents.close()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert Path(path).exists()
        (ping,) = request(Path(path), b'{"v":1,"op":"ping"}\n')
        assert ping["ok"]
    finally:
        inspector.stop_serving()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_another_users_connection_is_refused(
    server: inspector.Server, runtime: Path
) -> None:
    python = python_for_nobody()
    # Open the file permissions so the refusal can only come from the peer uid check.
    os.chmod(runtime, 0o755)
    os.chmod(server.path.parent, 0o755)
    os.chmod(server.path, 0o777)
    code = textwrap.dedent(
        """
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(sys.argv[1])
        s.sendall(b'{"v":1,"op":"snapshot"}\\n{"v":1,"op":"info"}\\n')
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        sys.stdout.write(data.decode())
        """
    )
    proc = subprocess.run(
        [python, "-c", code, str(server.path)],
        preexec_fn=drop_to_nobody,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == 1
    assert answers[0]["ok"] is False and "permission denied" in answers[0]["error"]
    assert str(os.getpid()) not in proc.stdout  # nothing about the program leaks
    # The owner is still served.
    (ping,) = ask(server, b'{"v":1,"op":"ping"}\n')
    assert ping["ok"]


def test_an_idle_server_waits_in_accept_and_nothing_else(
    server: inspector.Server,
) -> None:
    """Serving costs nothing while nobody asks: one thread, blocked in accept()."""
    thread = server._thread
    assert thread is not None and thread.ident is not None and thread.daemon
    for _ in range(3):
        frame = sys._current_frames()[thread.ident]
        assert frame.f_code.co_name == "accept", frame.f_code
        assert frame.f_back is not None
        assert frame.f_back.f_code.co_name == "_accept_loop"
        del frame
        threading.Event().wait(0.1)

    # A request is answered by a thread of its own, which ends with the connection.
    def clients() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "greentrace-client"}

    before = clients()  # other tests' leftovers, if any
    (ping,) = ask(server, b'{"v":1,"op":"ping"}\n')
    assert ping["ok"]
    for _ in range(200):
        if clients() <= before:
            break
        threading.Event().wait(0.05)
    assert clients() <= before


def test_deeply_nested_request_is_an_error_answer(server: inspector.Server) -> None:
    """json.loads gives up with RecursionError: the client is told, and served on."""
    nested = b"[" * 60000 + b"\n"
    answers = ask(server, nested + b'{"v":1,"op":"ping"}\n')
    assert [a["ok"] for a in answers] == [False, True]
    assert answers[0]["error"] == "malformed request: nested too deeply"


def test_a_closed_server_leaves_no_thread_hidden(runtime: Path) -> None:
    from greentrace import capture

    srv = inspector.Server(inspector.socket_path(os.getpid()))
    srv.start()
    thread = srv._thread
    assert thread is not None
    for _ in range(200):
        if thread.ident in capture.internal_threads():
            break
        threading.Event().wait(0.01)
    assert thread.ident in capture.internal_threads()
    srv.close()
    thread.join(10)
    assert not thread.is_alive()
    assert thread.ident not in capture.internal_threads()
