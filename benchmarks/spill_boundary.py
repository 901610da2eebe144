"""Calls that cross the end of a greenlet's first interpreter data-stack chunk.

On 3.11+ a new greenlet starts with a small data-stack chunk; deeper calls
spill into 16 KiB chunks that the interpreter allocates and frees as its
frames come and go.  Without the spill-chunk cache, a loop calling to a
depth just past the first chunk maps and unmaps 16 KiB on every call.  This
prints the cost of one call to each depth inside a greenlet and in the main
greenlet (which runs on the thread's own large chunk); the two columns
should stay close at every depth.

    python benchmarks/spill_boundary.py [--calls 20000]
"""

import argparse
import time

import greenlet


def deep(n):
    if n == 0:
        return 0
    return deep(n - 1) + 1


def per_call_ns(depth, calls):
    deep(depth)
    t0 = time.perf_counter()
    for _ in range(calls):
        deep(depth)
    return (time.perf_counter() - t0) / calls * 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    print("depth  in a greenlet  in main   ratio")
    for depth in (2, 4, 8, 12, 16, 24, 32, 64):
        in_greenlet = min(
            greenlet.greenlet(per_call_ns).switch(depth, args.calls) for _ in range(3)
        )
        in_main = min(per_call_ns(depth, args.calls) for _ in range(3))
        print(
            "%5d  %10.0f ns  %6.0f ns  %5.2f"
            % (depth, in_greenlet, in_main, in_greenlet / in_main)
        )


if __name__ == "__main__":
    main()
