"""How much of a heap of orphaned greenlets one gc.collect() gives back.

Each orphan is a suspended greenlet that holds a reference to itself in a
frame local and a buffer (100 KB by default) in another: nothing outside
the cycle can reach it.  The collector is disabled while they are made, so
one explicit gc.collect() has to find all of them.

    python benchmarks/orphan_reclaim.py [--count 10000] [--kb 100] [--json]

Reports: how many ``finally`` blocks ran, tracemalloc's traced memory before,
with the orphans alive and after the collection, RSS at the same points and
after ``malloc_trim(0)`` (the C allocator keeps freed pages otherwise), and
the time the collection took.
"""

import argparse
import ctypes
import gc
import json
import os
import time
import tracemalloc
import warnings

import greenlet


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def malloc_trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def make_orphans(count, size, finished):
    def run():
        me = greenlet.getcurrent()  # noqa: F841 - the cycle
        buf = bytearray(size)  # noqa: F841 - the weight
        try:
            greenlet.getcurrent().parent.switch()
        finally:
            finished.append(1)

    for _ in range(count):
        greenlet.greenlet(run).switch()


def measure(count, kb):
    warnings.simplefilter("ignore", ResourceWarning)
    finished = []
    gc.collect()
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    rss_before = rss_bytes()
    gc.disable()
    try:
        make_orphans(count, kb * 1024, finished)
        traced_alive = tracemalloc.get_traced_memory()[0]
        rss_alive = rss_bytes()
        suspended_before = sum(
            1 for g in greenlet.all_greenlets() if g.gr_state == "suspended"
        )
        t0 = time.perf_counter()
        gc.collect()
        collect_s = time.perf_counter() - t0
    finally:
        gc.enable()
    traced_after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_after = rss_bytes()
    trimmed = malloc_trim()
    rss_trimmed = rss_bytes()
    suspended_after = sum(
        1 for g in greenlet.all_greenlets() if g.gr_state == "suspended"
    )
    grown = traced_alive - traced_before
    return {
        "count": count,
        "kb": kb,
        "finally_ran": len(finished),
        "suspended_before_collect": suspended_before,
        "suspended_after_collect": suspended_after,
        "traced_before": traced_before,
        "traced_alive": traced_alive,
        "traced_after": traced_after,
        "traced_left_pct_of_growth": 100.0 * (traced_after - traced_before) / grown
        if grown
        else 0.0,
        "rss_before": rss_before,
        "rss_alive": rss_alive,
        "rss_after": rss_after,
        "rss_after_malloc_trim": rss_trimmed if trimmed else None,
        "collect_seconds": collect_s,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--kb", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    r = measure(args.count, args.kb)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    mb = 1024 * 1024
    print("orphans: %d x %d KB" % (r["count"], r["kb"]))
    print("finally blocks run by one gc.collect(): %d" % r["finally_ran"])
    print(
        "suspended greenlets: %d before, %d after"
        % (r["suspended_before_collect"], r["suspended_after_collect"])
    )
    print(
        "tracemalloc: %.1f MB before, %.1f MB alive, %.1f MB after (%.2f%% of the growth left)"
        % (
            r["traced_before"] / mb,
            r["traced_alive"] / mb,
            r["traced_after"] / mb,
            r["traced_left_pct_of_growth"],
        )
    )
    trimmed = r["rss_after_malloc_trim"]
    print(
        "RSS: %.1f MB before, %.1f MB alive, %.1f MB after, %s after malloc_trim(0)"
        % (
            r["rss_before"] / mb,
            r["rss_alive"] / mb,
            r["rss_after"] / mb,
            "%.1f MB" % (trimmed / mb) if trimmed is not None else "n/a",
        )
    )
    print("gc.collect() took %.3f s" % r["collect_seconds"])


if __name__ == "__main__":
    main()
