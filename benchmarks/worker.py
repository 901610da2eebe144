"""A long-lived benchmark process, driven by compare.py over stdin/stdout.

One request per line, one JSON answer per line:

    {"op": "info"}                           -> greenlet version, path, benchmarks
    {"op": "clock", "name": "cpu" | "wall"}  -> the clock of the timed benchmarks
    {"op": "calibrate", "name": N, "target_ns": T} -> {"loops": L}
    {"op": "run", "name": N, "arg": L}       -> {"value": ns_per_op or {metric: value}}

The process imports the greenlet installed in its interpreter (compare.py
starts it from an empty directory with a clean environment), never the
checkout's.
"""

import json
import os
import sys
import traceback


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # nothing but answers goes to the pipe
    import greenlet

    import bench_suite

    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "info":
                answer = {
                    "version": greenlet.__version__,
                    "path": os.path.dirname(os.path.realpath(greenlet.__file__)),
                    "python": sys.version.split()[0],
                    "prefix": os.path.realpath(sys.prefix),
                    "benchmarks": bench_suite.available(),
                }
            elif op == "clock":
                bench_suite.use_clock(request["name"])
                answer = {"clock": request["name"]}
            elif op == "calibrate":
                answer = {
                    "loops": bench_suite.calibrate(
                        request["name"], request["target_ns"]
                    )
                }
            elif op == "run":
                answer = {
                    "value": bench_suite.run(
                        request["name"], request["arg"], request.get("repeat", 1)
                    )
                }
            else:
                answer = {"error": "unknown op %r" % op}
        except Exception:
            answer = {"error": traceback.format_exc()}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
