"""greenlet.all_greenlets() and gr_id: the registry of live greenlets."""

import gc
import threading
import time
import weakref
from itertools import pairwise

import pytest

from greenlet import all_greenlets, getcurrent, greenlet


def eventually(predicate, tries=200):
    for _ in range(tries):
        if predicate():
            return True
        gc.collect()
        getcurrent()
        time.sleep(0.001)
    return predicate()


def ids_of(greenlets):
    return [g.gr_id for g in greenlets]


def live_ids():
    return {g.gr_id for g in all_greenlets()}


# ---------------------------------------------------------------------------
# Ids


def test_ids_strictly_increase_in_creation_order():
    gs = [greenlet(lambda: None) for _ in range(100)]
    ids = ids_of(gs)
    assert all(a < b for a, b in pairwise(ids))
    # Newer than anything created before, including this thread's main.
    assert ids[0] > getcurrent().gr_id


def test_id_is_stable_across_the_life_of_a_greenlet():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    gid = g.gr_id
    g.switch()
    assert g.gr_id == gid
    g.switch()
    assert g.gr_state == "dead"
    assert g.gr_id == gid


def test_ids_unique_and_never_reused_over_a_million_creations():
    seen = set()
    add = seen.add
    prev = greenlet().gr_id
    first = prev
    n = 1_000_000
    for _ in range(n):
        gid = greenlet().gr_id  # created and dropped at once: memory is reused
        if gid <= prev:
            pytest.fail(f"id {gid} after {prev}")
        prev = gid
        add(gid)
    assert len(seen) == n
    assert first not in seen
    # Nothing survived: the registry is back to what it was.
    assert not (seen & live_ids())


def test_ids_unique_across_threads():
    per_thread = 5000
    results = {}
    start = threading.Barrier(4)

    def body(k):
        start.wait()
        out = [getcurrent().gr_id]
        for _ in range(per_thread):
            out.append(greenlet().gr_id)
        results[k] = out

    threads = [threading.Thread(target=body, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for k in results for i in results[k]]
    assert len(all_ids) == 4 * (per_thread + 1)
    assert len(set(all_ids)) == len(all_ids)
    for out in results.values():
        assert all(a < b for a, b in pairwise(out))


def test_main_greenlet_of_new_thread_gets_a_new_id():
    before = greenlet().gr_id
    out = {}

    def body():
        out["main"] = getcurrent().gr_id

    t = threading.Thread(target=body)
    t.start()
    t.join()
    after = greenlet().gr_id
    assert before < out["main"] < after


# ---------------------------------------------------------------------------
# all_greenlets()


def test_returns_a_new_list_of_greenlets():
    a = all_greenlets()
    b = all_greenlets()
    assert isinstance(a, list)
    assert a is not b
    assert all(isinstance(g, greenlet) for g in a)
    a.clear()
    assert all_greenlets()


def test_contains_current_main_greenlet():
    main = getcurrent()
    assert any(g is main for g in all_greenlets())


def test_in_creation_order():
    gs = [greenlet(lambda: None) for _ in range(20)]
    # Change some states: the order stays the order of creation.
    main = getcurrent()
    gs[3].run = lambda: main.switch()
    gs[3].switch()
    gs[7].switch()
    listed = all_greenlets()
    ids = ids_of(listed)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    positions = [next(i for i, x in enumerate(listed) if x is g) for g in gs]
    assert positions == sorted(positions)
    # Newest last.
    assert listed[-1] is gs[-1]
    gs[3].switch()


def test_includes_every_state_while_referenced():
    main = getcurrent()
    unstarted = greenlet(lambda: None)
    suspended = greenlet(lambda: main.switch())
    suspended.switch()
    dead = greenlet(lambda: None)
    dead.switch()
    running_seen = []

    def run():
        running_seen.append(any(g is getcurrent() for g in all_greenlets()))

    running = greenlet(run)
    running.switch()
    listed = all_greenlets()
    for g, state in (
        (unstarted, "unstarted"),
        (suspended, "suspended"),
        (dead, "dead"),
        (main, "running"),
    ):
        assert g.gr_state == state
        assert any(x is g for x in listed), state
    assert running_seen == [True]
    suspended.switch()


def test_does_not_keep_greenlets_alive():
    gs = [greenlet(lambda: None) for _ in range(3)]
    gs[1].switch()  # dead
    main = getcurrent()
    gs[2].run = lambda: main.switch()
    gs[2].switch()  # suspended
    refs = [weakref.ref(g) for g in gs]
    ids = ids_of(gs)
    listed = all_greenlets()
    assert set(ids) <= set(ids_of(listed))
    del listed
    del gs
    # Plain reference counting frees them: no collection needed.
    assert [r() for r in refs] == [None, None, None]
    assert not (set(ids) & live_ids())


def test_excludes_collected_cycles():
    g = greenlet(lambda: None)
    g.me = g
    gid = g.gr_id
    ref = weakref.ref(g)
    del g
    assert gid in live_ids()  # the cycle keeps it until a collection
    gc.collect()
    assert ref() is None
    assert gid not in live_ids()


def test_registry_does_not_leak_across_many_creations():
    main = getcurrent()
    gc.collect()
    baseline = live_ids()
    refs = []
    for i in range(3000):
        kind = i % 4
        if kind == 0:
            g = greenlet(lambda: None)
        elif kind == 1:
            g = greenlet(lambda: None)
            g.switch()
        elif kind == 2:
            g = greenlet(lambda: main.switch())
            g.switch()  # dropped while suspended: killed
        else:
            g = greenlet(lambda: None)
            g.cycle = g  # needs the collector
        refs.append(weakref.ref(g))
        del g
    gc.collect()
    assert all(r() is None for r in refs)
    assert live_ids() == baseline
    # And again: the count stays flat.
    for _ in range(20000):
        greenlet()
    assert live_ids() == baseline


def test_list_keeps_its_greenlets_alive():
    g = greenlet(lambda: None)
    gid = g.gr_id
    ref = weakref.ref(g)
    listed = all_greenlets()
    del g
    assert ref() is not None
    assert gid in ids_of(listed)
    del listed
    assert ref() is None


def test_includes_main_greenlets_of_every_thread():
    n = 3
    ready = threading.Barrier(n + 1)
    release = threading.Event()
    mains = {}

    def body(k):
        mains[k] = getcurrent()
        ready.wait(10)
        release.wait(10)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    try:
        ready.wait(10)
        listed = all_greenlets()
        ids = ids_of(listed)
        for k, t in enumerate(threads):
            m = mains[k]
            assert any(x is m for x in listed)
            assert m.parent is None
            assert m.gr_thread_id == t.ident
            assert m.gr_state == "running"
        assert any(x is getcurrent() for x in listed)
        assert ids == sorted(ids)
        main_ids = {mains[k].gr_id for k in range(n)}
        del listed, m
    finally:
        release.set()
        for t in threads:
            t.join()
    mains.clear()
    # Once their threads are gone and nobody holds them, they leave.
    assert eventually(lambda: not (main_ids & live_ids()))


def test_thread_that_never_touches_greenlets_adds_nothing():
    before = live_ids()
    t = threading.Thread(target=lambda: sum(range(10)))
    t.start()
    t.join()
    assert live_ids() == before


def test_greenlets_of_exited_thread_listed_while_referenced():
    out = {}

    def body():
        suspended = greenlet(lambda: getcurrent().parent.switch())
        suspended.switch()
        finished = greenlet(lambda: None)
        finished.switch()
        out.update(suspended=suspended, finished=finished, main=getcurrent())

    t = threading.Thread(target=body)
    t.start()
    t.join()
    suspended = out.pop("suspended")
    finished = out.pop("finished")
    tmain = out.pop("main")
    assert eventually(lambda: tmain.gr_state == "dead")
    listed = all_greenlets()
    for g in (suspended, finished, tmain):
        assert g.gr_state == "dead"
        assert g.gr_thread_id == t.ident
        assert any(x is g for x in listed)
    del listed, g
    # The frames of a greenlet that was suspended when its thread died are
    # never run again (what they hold is leaked on purpose), but the
    # greenlet object itself goes away.
    ref = weakref.ref(suspended)
    gid = suspended.gr_id
    del suspended
    assert eventually(lambda: ref() is None)
    assert gid not in live_ids()


def test_main_of_exited_thread_leaves_with_its_last_greenlet():
    out = {}

    def body():
        finished = greenlet(lambda: None)
        finished.switch()
        out.update(finished=finished, main=getcurrent())

    t = threading.Thread(target=body)
    t.start()
    t.join()
    finished = out.pop("finished")
    tmain = out.pop("main")
    assert eventually(lambda m=tmain: m.gr_state == "dead")
    ids = {finished.gr_id, tmain.gr_id}
    assert ids <= live_ids()
    refs = [weakref.ref(finished), weakref.ref(tmain)]
    del tmain
    # The finished greenlet keeps its thread's main greenlet alive...
    assert refs[1]() is not None
    assert ids <= live_ids()
    del finished
    # ...no longer.
    assert eventually(lambda: all(r() is None for r in refs))
    assert not (ids & live_ids())


def test_greenlets_created_in_threads_listed_in_creation_order():
    step = threading.Event()
    done = threading.Event()
    out = {}

    def body():
        out["a"] = greenlet(lambda: None)
        step.set()
        done.wait(10)

    first = greenlet(lambda: None)
    t = threading.Thread(target=body)
    t.start()
    assert step.wait(10)
    last = greenlet(lambda: None)
    try:
        order = [x.gr_id for x in all_greenlets()]
        a = out["a"]
        assert order.index(first.gr_id) < order.index(a.gr_id) < order.index(last.gr_id)
    finally:
        done.set()
        t.join()


def test_called_inside_a_kill_from_dealloc():
    main = getcurrent()
    seen = []

    def run():
        try:
            main.switch()
        except BaseException:
            me = getcurrent()
            seen.append(any(x is me for x in all_greenlets()))
            raise

    g = greenlet(run)
    g.switch()
    gid = g.gr_id
    ref = weakref.ref(g)
    del g
    assert seen == [True]
    assert ref() is None
    assert gid not in live_ids()


def test_called_from_weakref_callback_during_dealloc():
    results = []
    g = greenlet(lambda: None)
    gid = g.gr_id

    def callback(_ref):
        results.append(gid in live_ids())

    ref = weakref.ref(g, callback)
    del g
    assert ref() is None
    # The dying greenlet is never handed out.
    assert results == [False]


def test_resurrected_greenlet_keeps_its_id_and_place():
    main = getcurrent()
    saved = []

    def run():
        try:
            main.switch()
        finally:
            saved.append(getcurrent())  # resurrects it during its kill

    g = greenlet(run)
    g.switch()
    gid = g.gr_id
    del g
    assert len(saved) == 1
    g = saved.pop()
    assert g.gr_id == gid
    assert g.gr_state == "dead"
    assert gid in live_ids()
    ref = weakref.ref(g)
    del g
    assert ref() is None
    assert gid not in live_ids()


def test_subclass_del_resurrection_keeps_id():
    saved = []

    class Sub(greenlet):
        def __del__(self):
            saved.append(self)

    g = Sub(lambda: None)
    gid = g.gr_id
    del g
    assert len(saved) == 1
    assert saved[0].gr_id == gid
    assert gid in live_ids()
    saved.clear()
    assert gid not in live_ids()
