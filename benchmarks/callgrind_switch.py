"""``python callgrind_switch.py N``: N sibling switches, nothing else (for callgrind).

compare.py runs this under ``valgrind --tool=callgrind`` with N and 2N and
divides the difference of the instruction counts by N, so interpreter
start-up and the set-up of the two greenlets cancel out.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_suite  # noqa: E402  (after the sys.path line)

bench_suite.switch_pingpong(int(sys.argv[1]))
