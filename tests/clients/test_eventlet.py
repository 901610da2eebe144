"""eventlet on the greenlet under test.

eventlet is pure Python on top of ``greenlet.greenlet`` (its hub is a
greenlet, GreenThread subclasses greenlet).  Its monkey patching is global,
so every scenario runs in its own interpreter (see conftest.py); the
in-process parts only use ``eventlet.green`` modules, which patch nothing.
All networking is on 127.0.0.1.
"""

import pytest

pytest.importorskip("eventlet")

# eventlet warns on import that it is deprecated; that is not under test.
PRELUDE = """
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
import greenlet
import eventlet
"""


def test_spawn_and_wait(scenario):
    out = scenario(
        PRELUDE
        + """
from eventlet.greenthread import GreenThread

assert issubclass(GreenThread, greenlet.greenlet)


def work(i):
    eventlet.sleep(0)
    eventlet.sleep(0.001 * (i % 3))
    return i * 3

threads = [eventlet.spawn(work, i) for i in range(2000)]
with eventlet.Timeout(60):
    values = [t.wait() for t in threads]
assert values == [i * 3 for i in range(2000)]

def boom():
    eventlet.sleep(0)
    raise KeyError("boom")

t = eventlet.spawn(boom)
try:
    t.wait()
except KeyError as exc:
    assert exc.args == ("boom",)
else:
    raise AssertionError("wait() did not raise")

linked = []
t = eventlet.spawn(work, 5)
t.link(lambda gt, tag: linked.append((tag, gt.wait())), "tag")
assert t.wait() == 15
eventlet.sleep(0)
assert linked == [("tag", 15)], linked

cleanup = []

def sleeper():
    try:
        eventlet.sleep(30)
    finally:
        cleanup.append("finally")

t = eventlet.spawn(sleeper)
eventlet.sleep(0.01)
t.kill()
assert t.dead and cleanup == ["finally"], cleanup

with eventlet.Timeout(0.05, False):
    eventlet.sleep(10)
    raise AssertionError("not reached")
try:
    with eventlet.Timeout(0.05):
        eventlet.sleep(10)
except eventlet.Timeout:
    pass
else:
    raise AssertionError("Timeout did not fire")
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_green_pool(scenario):
    out = scenario(
        PRELUDE
        + """
running = [0]
peak = [0]


def work(i):
    running[0] += 1
    peak[0] = max(peak[0], running[0])
    eventlet.sleep(0.001 * (i % 4))
    running[0] -= 1
    return i * i

pool = eventlet.GreenPool(8)
with eventlet.Timeout(60):
    assert list(pool.imap(work, range(300))) == [i * i for i in range(300)]
    assert peak[0] == 8, peak
    results = []
    for i in range(100):
        pool.spawn_n(lambda i=i: results.append(work(i)))
    threads = [pool.spawn(work, i) for i in range(50)]
    pool.waitall()
assert sorted(results) == [i * i for i in range(100)]
assert [t.wait() for t in threads] == [i * i for i in range(50)]
assert pool.running() == 0 and pool.free() == 8

pile = eventlet.GreenPile(pool)
for i in range(20):
    pile.spawn(work, i)
assert list(pile) == [i * i for i in range(20)]
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_queue(scenario):
    out = scenario(
        PRELUDE
        + """
from eventlet.queue import Empty, LightQueue, Queue

queue = Queue(maxsize=4)
received = []


def producer(base):
    for i in range(250):
        queue.put(base + i, timeout=10)


def consumer():
    while True:
        try:
            item = queue.get(timeout=0.5)
        except Empty:
            return
        received.append(item)
        queue.task_done()

with eventlet.Timeout(60):
    threads = [eventlet.spawn(producer, k * 1000) for k in range(4)]
    threads += [eventlet.spawn(consumer) for _ in range(3)]
    for t in threads:
        t.wait()
assert sorted(received) == sorted(k * 1000 + i for k in range(4) for i in range(250))

light = LightQueue()
eventlet.spawn_after(0.01, light.put, "late")
assert light.get(timeout=10) == "late"
try:
    light.get(timeout=0.01)
except Empty:
    pass
else:
    raise AssertionError("get did not time out")
print(len(received))
"""
    )
    assert out.strip() == "1000"


def test_event_and_semaphore(scenario):
    out = scenario(
        PRELUDE
        + """
from eventlet.event import Event
from eventlet.semaphore import Semaphore

event = Event()
woke = []


def waiter(i):
    woke.append((i, event.wait()))

threads = [eventlet.spawn(waiter, i) for i in range(10)]
eventlet.sleep(0.01)
assert woke == []
event.send("go")
with eventlet.Timeout(10):
    for t in threads:
        t.wait()
assert sorted(woke) == [(i, "go") for i in range(10)]

sem = Semaphore(2)
inside = [0]
peak = [0]


def limited():
    with sem:
        inside[0] += 1
        peak[0] = max(peak[0], inside[0])
        eventlet.sleep(0.005)
        inside[0] -= 1

with eventlet.Timeout(30):
    for t in [eventlet.spawn(limited) for _ in range(20)]:
        t.wait()
assert peak[0] == 2, peak
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_echo_server_with_green_sockets(scenario):
    out = scenario(
        PRELUDE
        + """
import errno


def handle(sock, address):
    sock.settimeout(10)
    stream = sock.makefile("rwb")
    for line in stream:
        stream.write(b"echo:" + line)
        stream.flush()
    stream.close()
    sock.close()

listener = eventlet.listen(("127.0.0.1", 0))
port = listener.getsockname()[1]
server = eventlet.spawn(eventlet.serve, listener, handle, concurrency=100)


def client(n):
    conn = eventlet.connect(("127.0.0.1", port))
    conn.settimeout(10)
    stream = conn.makefile("rwb")
    replies = []
    for k in range(5):
        stream.write(b"%d-%d\\n" % (n, k))
        stream.flush()
        replies.append(stream.readline())
    stream.close()
    conn.close()
    return replies

with eventlet.Timeout(60):
    pool = eventlet.GreenPool(50)
    results = list(pool.imap(client, range(50)))
for n, replies in enumerate(results):
    assert replies == [b"echo:%d-%d\\n" % (n, k) for k in range(5)], replies
server.kill()
listener.close()
print("clients", len(results))
"""
    )
    assert out.strip() == "clients 50"


def test_manual_accept_loop_with_green_socket_module(scenario):
    out = scenario(
        PRELUDE
        + """
import socket as real_socket
from eventlet.green import socket

# The green module patches nothing globally.
assert real_socket.socket is not socket.socket

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(20)
port = listener.getsockname()[1]


def serve_one(conn):
    conn.settimeout(10)
    data = b""
    while not data.endswith(b"\\n"):
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
    conn.sendall(data[::-1])
    conn.close()


def acceptor(n):
    for _ in range(n):
        conn, _ = listener.accept()
        eventlet.spawn(serve_one, conn)


def client(i):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"abc%d\\n" % i)
    data = b""
    while True:
        chunk = c.recv(1024)
        if not chunk:
            break
        data += chunk
    c.close()
    return data

with eventlet.Timeout(60):
    acc = eventlet.spawn(acceptor, 20)
    clients = [eventlet.spawn(client, i) for i in range(20)]
    replies = [c.wait() for c in clients]
    acc.wait()
listener.close()
assert replies == [(b"abc%d\\n" % i)[::-1] for i in range(20)], replies
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_monkey_patched_threading_and_time(scenario):
    out = scenario(
        PRELUDE
        + """
eventlet.monkey_patch()

import threading
import time

lock = threading.Lock()
counter = [0]


def worker():
    for _ in range(100):
        with lock:
            value = counter[0]
            time.sleep(0)
            counter[0] = value + 1

threads = [threading.Thread(target=worker) for _ in range(10)]
for t in threads:
    t.start()
for t in threads:
    t.join(10)
    assert not t.is_alive()
assert counter[0] == 1000, counter

start = time.monotonic()
sleepers = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(10)]
for t in sleepers:
    t.start()
for t in sleepers:
    t.join(10)
assert time.monotonic() - start < 1.5
print("ok")
"""
    )
    assert out.strip() == "ok"
