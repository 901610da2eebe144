"""Hostile clients of the inspector socket never crash or hang the inspected program.

One program serves the inspector (``greentrace.serve()``) while its greenlets
switch; the tests send it malformed JSON, truncated lines, requests of
megabytes, binary junk, unknown and out-of-order requests, more connections
than it serves at once, half-closed and abandoned sockets, and a
hypothesis-generated stream of request lines.  After each, the program must
still be running and answer a valid request.  Only the public entry points
are used: ``greentrace.serve()``, the socket path it returns, and the
JSON-lines protocol (one answer line per non-blank request line).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("greenlet")

TIMEOUT = 20.0  # seconds any single socket operation may take
PING = b'{"v": 1, "op": "ping"}\n'

PROGRAM = textwrap.dedent(
    """
    import sys, time
    import greentrace
    from greenlet import greenlet, getcurrent

    path = greentrace.serve()
    print(path, flush=True)

    def worker(n):
        while True:
            n = getcurrent().parent.switch(n + 1)

    workers = [greenlet(worker) for _ in range(20)]
    for w in workers:
        w.switch(0)
    while True:
        for w in workers:
            w.switch(0)
        time.sleep(0.001)
    """
)


class Served:
    def __init__(self, proc: subprocess.Popen[str], path: str) -> None:
        self.proc = proc
        self.path = path

    def connect(self, retry: bool = True) -> socket.socket:
        """A connection; with retry, wait while the listen backlog is full."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT)
            try:
                sock.connect(self.path)
                return sock
            except BlockingIOError:  # EAGAIN: the backlog is full
                sock.close()
                if not retry or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def alive_and_answering(self) -> None:
        assert self.proc.poll() is None, "the inspected program died"
        answers = exchange(self, PING)
        assert len(answers) == 1, answers
        assert answers[0]["ok"] is True, answers
        assert answers[0]["result"]["pid"] == self.proc.pid


@contextlib.contextmanager
def serving_program() -> Iterator[Served]:
    """The program, serving; on exit, its stderr must hold no traceback."""
    runtime = tempfile.mkdtemp(prefix="gt-fuzz-", dir="/tmp")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["XDG_RUNTIME_DIR"] = runtime
    env["PYTHONFAULTHANDLER"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM],
        cwd=runtime,  # never the checkout: its greenlet/ has no extension
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        path = proc.stdout.readline().strip() if proc.stdout else ""
        assert path, proc.stderr.read() if proc.stderr else ""
        yield Served(proc, path)
        assert proc.poll() is None, "the inspected program died"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        shutil.rmtree(runtime, ignore_errors=True)
    # Nothing a client sent may leave a traceback in the program's stderr.
    assert "Traceback" not in err and "Fatal Python error" not in err, err


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving_program() as srv:
        yield srv


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or resets) the connection."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    else:  # pragma: no cover - failure path
        raise AssertionError("the server kept the connection open")
    return data


def answers_of(data: bytes) -> list[dict]:
    lines = data.split(b"\n")
    assert lines[-1] == b"", "an answer without its newline: %r" % lines[-1][:200]
    out = [json.loads(line) for line in lines[:-1]]
    for answer in out:
        assert answer["v"] == 1 and isinstance(answer["ok"], bool), answer
        assert ("result" in answer) if answer["ok"] else isinstance(answer["error"], str)
    return out


def exchange(srv: Served, payload: bytes) -> list[dict]:
    """Send payload, end our side, read every answer line."""
    with srv.connect() as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading an oversized request
        return answers_of(read_all(sock))


def test_valid_requests_are_answered(served: Served) -> None:
    answers = exchange(served, PING + b'{"v": 1, "op": "info"}\n{"v": 1, "op": "snapshot"}\n')
    assert [a["ok"] for a in answers] == [True, True, True]
    assert [a["op"] for a in answers] == ["ping", "info", "snapshot"]
    assert answers[1]["result"]["greenlets"] >= 20


MALFORMED = [
    b"{",
    b"}",
    b'{"v": 1, "op": "ping"',
    b'{"v": 1, "op": "ping"}}',
    b"null",
    b"[]",
    b"42",
    b'"ping"',
    b"NaN",
    b'{"v": 1, "op": "ping", "v": 2}',
    b'{"v": 2, "op": "ping"}',
    b'{"v": "1", "op": "ping"}',
    b'{"v": true, "op": "ping"}',
    b'{"op": "ping"}',
    b'{"v": 1}',
    b'{"v": 1, "op": null}',
    b'{"v": 1, "op": ["ping"]}',
    b'{"v": 1, "op": {"ping": 1}}',
    b'{"v": 1, "op": "PING"}',
    b'{"v": 1, "op": "eval", "code": "import os; os._exit(3)"}',
    b'{"v": 1, "op": "__class__"}',
    b'{"v": 1, "op": "record"}',
    b'{"v": 1, "op": "record", "seconds": -1}',
    b'{"v": 1, "op": "record", "seconds": NaN}',
    b'{"v": 1, "op": "record", "seconds": Infinity}',
    b'{"v": 1, "op": "record", "seconds": 1e999}',
    b'{"v": 1, "op": "record", "seconds": "0.1"}',
    b'{"v": 1, "op": "record", "seconds": [0.1]}',
    b'{"v": 1, "op": "record", "seconds": 0.01, "capacity": -5}',
    b'{"v": 1, "op": "record", "seconds": 0.01, "capacity": 1e300}',
    b'{"v": 1, "op": "record", "seconds": 0.01, "capacity": "many"}',
    b'\xff\xfe{"v": 1}',
    b'{"v": 1, "op": "\xff"}',
    b'{"v": 1, "op": "ping\\u0000"}',
    b'{"v": 1, "op": "\\ud800"}',
    b"\x00\x00\x00\x00",
    b"\x1b[2J\x1b[H",
]


@pytest.mark.parametrize("line", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_request_gets_an_error_and_the_connection_goes_on(
    served: Served, line: bytes
) -> None:
    answers = exchange(served, line + b"\n" + PING)
    assert len(answers) == 2, answers
    first, second = answers
    if first["ok"]:
        # A few of these are valid after all (e.g. duplicate keys: the last
        # wins); they must then be answered as what they are.
        assert first["op"] in ("ping", "record"), first
    else:
        assert first["error"]
    assert second["ok"] is True and second["op"] == "ping"
    served.alive_and_answering()


def test_deeply_nested_json_is_an_error_not_a_dead_connection() -> None:
    # 60 000 nested arrays fit in one request and make json.loads recurse
    # past the interpreter's limit.  (A program of its own: a failure here
    # leaves a traceback behind, which would be blamed on the next test.)
    with serving_program() as srv:
        answers = exchange(srv, b"[" * 60000 + b"\n" + PING)
        assert len(answers) == 2, answers
        assert answers[0]["ok"] is False
        assert answers[1]["ok"] is True
        srv.alive_and_answering()


def test_truncated_line_then_close(served: Served) -> None:
    answers = exchange(served, b'{"v": 1, "op": "pi')
    assert len(answers) == 1 and answers[0]["ok"] is False, answers
    assert exchange(served, PING + b'{"v": 1, "op": "sn')[0]["ok"] is True
    served.alive_and_answering()


@pytest.mark.parametrize("size", [70 * 1024, 4 * 1024 * 1024])
def test_oversized_request_without_newline(served: Served, size: int) -> None:
    answers = exchange(served, b"x" * size)
    assert len(answers) <= 1
    if answers:
        assert answers[0]["ok"] is False and "larger" in answers[0]["error"]
    served.alive_and_answering()


def test_oversized_json_request_line(served: Served) -> None:
    big = json.dumps({"v": 1, "op": "ping", "pad": "y" * (3 * 1024 * 1024)}).encode()
    answers = exchange(served, big + b"\n" + PING)
    # The oversized line is refused; what follows it on that connection may
    # be dropped, since the rest of the line cannot be told from a request.
    assert answers and answers[0]["ok"] is False, answers
    served.alive_and_answering()


def test_many_lines_just_under_the_limit(served: Served) -> None:
    line = json.dumps({"v": 1, "op": "ping", "pad": "z" * 60000}).encode() + b"\n"
    answers = exchange(served, line * 40)
    assert len(answers) == 40 and all(a["ok"] for a in answers)
    served.alive_and_answering()


def test_binary_junk(served: Served) -> None:
    rng = random.Random(8)
    junk = bytes(rng.randrange(256) for _ in range(256 * 1024))
    with served.connect() as sock:
        # Junk holds a newline every 256 bytes or so: the error answers flow
        # back while we still send, so send from a thread and read here.
        def send() -> None:
            try:
                sock.sendall(junk)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        sender = threading.Thread(target=send)
        sender.start()
        data = read_all(sock)
        sender.join(TIMEOUT)
    # Whatever came back is well-formed answer lines, all errors.
    for answer in answers_of(data):
        assert answer["ok"] is False
    served.alive_and_answering()


def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    ops = ["ping", "bogus", "info", "ping", "record", "snapshot", "ping", "stacks"]
    payload = b""
    for op in ops:
        req: dict = {"v": 1, "op": op}
        if op == "record":
            req["seconds"] = 0.05
        payload += json.dumps(req).encode() + b"\n"
    answers = exchange(served, payload + b"\n\n   \n")  # blank lines: no answer
    assert len(answers) == len(ops)
    for op, answer in zip(ops, answers):
        if op == "bogus":
            assert answer["ok"] is False and "unknown op" in answer["error"]
        else:
            assert answer["ok"] is True and answer["op"] == op, answer


def test_one_byte_at_a_time(served: Served) -> None:
    with served.connect() as sock:
        for i in range(len(PING)):
            sock.send(PING[i : i + 1])
            time.sleep(0.001)
        sock.shutdown(socket.SHUT_WR)
        answers = answers_of(read_all(sock))
    assert len(answers) == 1 and answers[0]["ok"] is True


def test_more_connections_than_served_at_once(served: Served) -> None:
    socks = []
    try:
        refused = 0
        for _ in range(40):
            try:
                socks.append(served.connect(retry=False))
            except BlockingIOError:
                refused += 1  # the listen backlog is full: refused too
        for sock in socks:
            try:
                sock.sendall(PING)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
        served_ok = 0
        for sock in socks:
            answers = answers_of(read_all(sock))
            assert len(answers) <= 1
            if answers and answers[0]["ok"]:
                served_ok += 1
            elif answers:
                assert "too many connections" in answers[0]["error"]
                refused += 1
        assert served_ok >= 1
    finally:
        for sock in socks:
            sock.close()
    served.alive_and_answering()


def test_idle_and_half_closed_connections_do_not_block_others(served: Served) -> None:
    idle = [served.connect() for _ in range(3)]  # open, silent
    half = []
    for _ in range(3):
        sock = served.connect()
        sock.shutdown(socket.SHUT_WR)  # nothing sent, our side ended
        half.append(sock)
    try:
        for sock in half:
            assert read_all(sock) == b""
        served.alive_and_answering()
    finally:
        for sock in idle + half:
            sock.close()
    served.alive_and_answering()


def test_clients_that_vanish_before_reading_their_answer(served: Served) -> None:
    for op in ("stacks", "snapshot", "info", "record"):
        for _ in range(5):
            sock = served.connect()
            req = {"v": 1, "op": op, "seconds": 0.02}
            sock.sendall((json.dumps(req) + "\n").encode() * 3)
            # Close with the answers unread: the server's writes fail.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
    time.sleep(0.2)
    served.alive_and_answering()


# A hypothesis-driven stream of request lines on one connection: every
# non-blank line gets exactly one well-formed answer, in order.

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 1, 1, 0, 2, "1", None, 1.5]),
        "op": st.sampled_from(["ping", "info", "record", "nope", "", None, 3]) | st.text(max_size=6),
        "seconds": st.sampled_from([0, 0.01, -1, None, "x", 1e308]) | st.floats(),
        "capacity": st.sampled_from([1, 0, -1, 2**70, "x"]) | st.integers(),
        "extra": JSON_VALUES,
    },
)


def _encode(req: dict) -> bytes:
    return json.dumps(req).encode()


LINES = st.one_of(
    REQUESTS.map(_encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=100).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")),
)

FUZZ = settings(
    max_examples=int(os.environ.get("GREENLET_INSPECTOR_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(lines=st.lists(LINES, min_size=1, max_size=12))
def test_fuzzed_request_lines(served: Served, lines: list[bytes]) -> None:
    # Keep recordings short: a fuzzed 'record' may ask for up to 10 minutes.
    lines = [
        line if b"record" not in line else b'{"v": 1, "op": "record", "seconds": 0}'
        for line in lines
    ]
    expected = sum(1 for line in lines if line.strip())
    answers = exchange(served, b"\n".join(lines) + b"\n" + PING)
    assert len(answers) == expected + 1, (lines, answers)
    assert answers[-1]["ok"] is True and answers[-1]["op"] == "ping"
    assert served.proc.poll() is None
