"""Deeply nested containers whose items switch greenlets in __del__.

Deallocating a chain of nested lists goes through the interpreter's
trashcan, which defers deallocations once nesting gets deep and runs them
later; a __del__ that switches greenlets in the middle of that must not
crash (upstream greenlet 3.5.6 crashes on 3.13 at a depth of about 1000).
"""

import sys

import pytest

SCRIPT = """
import sys, greenlet
count = [0]

class SwitchesWhenDeleted:
    def __del__(self):
        g = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch(1))
        assert g.switch() == 1
        count[0] += 1

def build(n):
    root = [SwitchesWhenDeleted()]
    cur = root
    for _ in range(n):
        nxt = [SwitchesWhenDeleted()]
        cur.append(nxt)
        cur = nxt
    return root

depth = int(sys.argv[1])
r = build(depth)
del r
print("main", count[0], flush=True)

def inside():
    r = build(depth)
    del r
    return "inside ok"

print(greenlet.greenlet(inside).switch(), count[0], flush=True)
"""


@pytest.mark.parametrize("depth", [1000, 20000])
def test_switching_del_in_deep_trashcan_does_not_crash(depth, run_python):
    rc, out, err = run_python(SCRIPT, timeout=120, args=(str(depth),))
    assert rc == 0, err[-2000:]
    lines = out.splitlines()
    assert lines[0].startswith("main ")
    assert lines[1].startswith("inside ok ")
    deleted = int(lines[1].split()[-1])
    if sys.version_info >= (3, 13):
        # Every object's __del__ ran, in both runs.
        assert deleted == 2 * (depth + 1), out
    else:
        # Before 3.13 the nested deallocations that run __del__ deep in the
        # C stack hit the recursion limit, as without greenlet; the ones
        # that run must all have switched successfully.
        assert deleted > 0
        assert "Fatal" not in err
