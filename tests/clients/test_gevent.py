"""gevent (its binary wheel, compiled against upstream greenlet.h) on the greenlet under test.

gevent's Greenlet, Hub and Waiter are Cython extension types that subclass
``greenlet.greenlet`` and call the C API capsule, so this is the
binary-compatibility check that matters most.  Each scenario runs in its own
interpreter (see conftest.py); all networking is on 127.0.0.1.
"""

import pytest

pytest.importorskip("gevent")


def test_gevent_uses_its_compiled_greenlet_subclass(scenario):
    out = scenario(
        """
        import greenlet, gevent, gevent.hub
        import gevent._gevent_cgreenlet as compiled
        assert gevent.Greenlet is compiled.Greenlet
        assert issubclass(gevent.Greenlet, greenlet.greenlet)
        assert gevent.Greenlet.__basicsize__ > greenlet.greenlet.__basicsize__
        hub = gevent.get_hub()
        assert isinstance(hub, greenlet.greenlet)
        assert hub.parent is greenlet.getcurrent()
        g = gevent.spawn(lambda: greenlet.getcurrent())
        assert g.get(timeout=10) is g
        print("ok", gevent.__version__)
        """
    )
    assert out.startswith("ok ")


def test_spawn_and_join_ten_thousand(scenario):
    out = scenario(
        """
        import gevent

        def work(i):
            gevent.sleep(0)
            gevent.sleep(0.001 * (i % 3))
            return i * 2

        greenlets = [gevent.spawn(work, i) for i in range(10000)]
        done = gevent.joinall(greenlets, timeout=60)
        assert len(done) == 10000, len(done)
        assert all(g.successful() for g in greenlets)
        assert sum(g.value for g in greenlets) == 2 * sum(range(10000))
        assert all(g.dead for g in greenlets)
        print("joined", len(done))
        """
    )
    assert out.strip() == "joined 10000"


def test_greenlet_subclass_value_exception_links_and_kill(scenario):
    out = scenario(
        """
        import gevent
        from gevent import Greenlet

        class Answer(Greenlet):
            def __init__(self, n):
                Greenlet.__init__(self)
                self.n = n

            def _run(self):
                gevent.sleep(0.001)
                return self.n * 2

        class Broken(Greenlet):
            def _run(self):
                raise KeyError("broken")

        events = []
        a = Answer(21)
        a.link(lambda g: events.append(("link", g.value)))
        a.link_value(lambda g: events.append(("value", g.value)))
        a.link_exception(lambda g: events.append(("never", g)))
        a.start()
        assert a.get(timeout=10) == 42
        assert a.successful() and a.value == 42 and a.exception is None
        gevent.sleep(0.01)  # link callbacks run from the hub
        assert sorted(events) == [("link", 42), ("value", 42)], events

        b = Broken()
        b.link_exception(lambda g: events.append(("exception", type(g.exception).__name__)))
        b.start()
        b.join(timeout=10)
        assert not b.successful()
        assert isinstance(b.exception, KeyError)
        try:
            b.get(timeout=10)
        except KeyError as exc:
            assert exc.args == ("broken",)
        else:
            raise AssertionError("get() did not raise")
        gevent.sleep(0.01)
        assert ("exception", "KeyError") in events, events

        cleanup = []

        def sleeper():
            try:
                gevent.sleep(30)
            finally:
                cleanup.append("finally")

        s = gevent.spawn(sleeper)
        gevent.sleep(0.01)
        s.kill(block=True, timeout=10)
        assert s.dead and s.successful()
        assert isinstance(s.value, gevent.GreenletExit)
        assert cleanup == ["finally"]

        s2 = gevent.spawn(sleeper)
        gevent.sleep(0.01)
        s2.kill(ValueError("killed"), block=True, timeout=10)
        assert s2.dead and not s2.successful()
        assert isinstance(s2.exception, ValueError)
        assert cleanup == ["finally", "finally"]

        unstarted = gevent.spawn(sleeper)
        unstarted.kill(block=True, timeout=10)  # killed before it ever ran
        assert unstarted.dead and cleanup == ["finally", "finally"]
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_sleep_event_and_async_result(scenario):
    out = scenario(
        """
        import time
        import gevent
        from gevent.event import AsyncResult, Event

        start = time.monotonic()
        gevent.joinall([gevent.spawn(gevent.sleep, 0.2) for _ in range(50)], timeout=10)
        elapsed = time.monotonic() - start
        assert 0.15 < elapsed < 2.0, elapsed  # concurrent, not 50 * 0.2

        event = Event()
        woke = []

        def waiter(i):
            assert event.wait(timeout=10)
            woke.append(i)

        waiters = [gevent.spawn(waiter, i) for i in range(20)]
        gevent.sleep(0.01)
        assert woke == [] and not event.is_set()
        event.set()
        gevent.joinall(waiters, timeout=10)
        assert sorted(woke) == list(range(20))
        assert Event().wait(timeout=0.01) is False

        result = AsyncResult()
        gevent.spawn_later(0.01, result.set, "value")
        assert result.get(timeout=10) == "value"
        failing = AsyncResult()
        gevent.spawn_later(0.01, failing.set_exception, OSError("nope"))
        try:
            failing.get(timeout=10)
        except OSError as exc:
            assert exc.args == ("nope",)
        else:
            raise AssertionError("AsyncResult.get did not raise")
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_queue_producers_and_consumers(scenario):
    out = scenario(
        """
        import gevent
        from gevent.queue import Queue, Empty

        queue = Queue(maxsize=5)
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

        producers = [gevent.spawn(producer, k * 1000) for k in range(4)]
        consumers = [gevent.spawn(consumer) for _ in range(3)]
        gevent.joinall(producers + consumers, timeout=30)
        assert all(g.successful() for g in producers + consumers)
        expected = sorted(k * 1000 + i for k in range(4) for i in range(250))
        assert sorted(received) == expected
        print(len(received))
        """
    )
    assert out.strip() == "1000"


def test_pool_map_and_imap_unordered(scenario):
    out = scenario(
        """
        import gevent
        from gevent.pool import Pool

        running = [0]
        peak = [0]

        def work(i):
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            gevent.sleep(0.001 * (i % 5))
            running[0] -= 1
            return i * i

        pool = Pool(10)
        assert pool.map(work, range(200)) == [i * i for i in range(200)]
        assert peak[0] == 10, peak
        assert sorted(pool.imap_unordered(work, range(200))) == [i * i for i in range(200)]
        assert list(pool.imap(work, range(50))) == [i * i for i in range(50)]
        jobs = [pool.spawn(work, i) for i in range(30)]
        pool.join(timeout=10)
        assert [j.value for j in jobs] == [i * i for i in range(30)]
        assert len(pool) == 0
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_timeout_forms(scenario):
    out = scenario(
        """
        import time
        import gevent
        from gevent import Timeout

        # Context manager that raises.
        start = time.monotonic()
        try:
            with Timeout(0.05):
                gevent.sleep(10)
        except Timeout as exc:
            caught = exc
        else:
            raise AssertionError("Timeout did not fire")
        assert time.monotonic() - start < 5

        # Context manager that swallows (exception=False).
        with Timeout(0.05, False):
            gevent.sleep(10)
            raise AssertionError("not reached")

        # A custom exception.
        try:
            with Timeout(0.05, KeyError("late")):
                gevent.sleep(10)
        except KeyError as exc:
            assert exc.args == ("late",)

        # start_new / cancel, the raising form.
        timer = Timeout.start_new(0.05)
        try:
            gevent.sleep(10)
        except Timeout as exc:
            assert exc is timer
        finally:
            timer.cancel()

        timer = Timeout.start_new(10)
        gevent.sleep(0.01)
        timer.cancel()  # cancelled in time: nothing raised

        # with_timeout and Greenlet.get(timeout=...)
        assert gevent.with_timeout(0.05, gevent.sleep, 10, timeout_value="gave up") == "gave up"
        slow = gevent.spawn(gevent.sleep, 10)
        try:
            slow.get(timeout=0.05)
        except Timeout:
            pass
        else:
            raise AssertionError("get did not time out")
        slow.kill(block=True, timeout=10)

        # A timeout in one greenlet leaves the others alone.
        results = []

        def bounded(i):
            try:
                with Timeout(0.02):
                    gevent.sleep(0.001 if i % 2 else 10)
                results.append(("done", i))
            except Timeout:
                results.append(("timeout", i))

        gevent.joinall([gevent.spawn(bounded, i) for i in range(10)], timeout=10)
        assert sorted(results) == sorted(
            ("done" if i % 2 else "timeout", i) for i in range(10)
        )
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_stream_server_echo_with_100_clients(scenario):
    out = scenario(
        """
        import gevent
        from gevent import socket
        from gevent.server import StreamServer

        def handle(sock, address):
            sock.settimeout(10)
            stream = sock.makefile("rwb")
            try:
                for line in stream:
                    stream.write(b"echo:" + line)
                    stream.flush()
            finally:
                stream.close()
                sock.close()

        server = StreamServer(("127.0.0.1", 0), handle)
        server.start()
        port = server.server_port

        def client(n):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            stream = conn.makefile("rwb")
            replies = []
            for k in range(5):
                stream.write(b"%d-%d\\n" % (n, k))
                stream.flush()
                replies.append(stream.readline())
            stream.close()
            conn.close()
            return replies

        with gevent.Timeout(60):
            clients = [gevent.spawn(client, n) for n in range(100)]
            gevent.joinall(clients, raise_error=True)
        for n, c in enumerate(clients):
            assert c.value == [b"echo:%d-%d\\n" % (n, k) for k in range(5)], c.value
        server.stop(timeout=5)
        print("clients", len(clients))
        """
    )
    assert out.strip() == "clients 100"


def test_format_run_info_lists_greenlets(scenario):
    out = scenario(
        """
        import gevent
        import gevent.util

        def parked():
            gevent.sleep(30)

        g = gevent.spawn(parked)
        g.name = "parked-greenlet"
        gevent.sleep(0.01)
        lines = "\\n".join(gevent.util.format_run_info())
        assert "* Greenlets" in lines, lines
        assert "<greenlet.greenlet object" in lines and " main>" in lines, lines
        assert 'Greenlet "parked-greenlet"' in lines, lines
        assert "in parked" in lines, lines  # its suspended frame, via gr_frame
        assert "<Hub " in lines, lines
        g.kill(block=True, timeout=10)
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_monkey_patched_threading_and_sockets(scenario):
    out = scenario(
        """
        from gevent import monkey
        monkey.patch_all()

        import socket
        import threading
        import time
        import greenlet
        import gevent

        assert monkey.is_module_patched("threading")
        assert monkey.is_module_patched("socket")

        # Threads are greenlets of the one real thread.
        main_ident = threading.get_ident()
        seen = []
        lock = threading.Lock()
        counter = [0]
        start_event = threading.Event()

        def worker(i):
            assert start_event.wait(10)
            for _ in range(100):
                with lock:
                    value = counter[0]
                    time.sleep(0)  # yields to the other "threads" while holding the lock
                    counter[0] = value + 1
            seen.append((i, type(greenlet.getcurrent()).__name__))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        start_event.set()
        started = time.monotonic()
        for t in threads:
            t.join(10)
            assert not t.is_alive()
        assert counter[0] == 1000, counter
        assert sorted(i for i, _ in seen) == list(range(10))
        assert {kind for _, kind in seen} == {"Greenlet"}, seen

        # time.sleep in threads is cooperative: ten 0.2 s sleeps overlap.
        sleepers = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(10)]
        started = time.monotonic()
        for t in sleepers:
            t.start()
        for t in sleepers:
            t.join(10)
        assert time.monotonic() - started < 1.5

        # socketpair.
        a, b = socket.socketpair()
        a.settimeout(10)
        b.settimeout(10)
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"
        a.close()
        b.close()

        # A loopback server where each connection gets a "thread".
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(50)
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve_one(conn):
            with conn:
                conn.settimeout(10)
                data = b""
                while not data.endswith(b"\\n"):
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(data.upper())

        def acceptor(n):
            for _ in range(n):
                conn, _ = listener.accept()
                threading.Thread(target=serve_one, args=(conn,)).start()

        replies = {}

        def client(i):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(b"hello %d\\n" % i)
                data = b""
                while not data.endswith(b"\\n"):
                    chunk = c.recv(1024)
                    if not chunk:
                        break
                    data += chunk
                replies[i] = data

        acc = threading.Thread(target=acceptor, args=(30,))
        acc.start()
        clients = [threading.Thread(target=client, args=(i,)) for i in range(30)]
        for t in clients:
            t.start()
        for t in clients + [acc]:
            t.join(20)
            assert not t.is_alive()
        listener.close()
        assert replies == {i: b"HELLO %d\\n" % i for i in range(30)}, replies
        assert threading.get_ident() == main_ident
        print("threads ok")
        print("sockets ok")
        """
    )
    assert out.split() == ["threads", "ok", "sockets", "ok"]
