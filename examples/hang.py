"""A program that hangs: one greenlet blocks its thread, the others wait forever.

Three waiter greenlets park themselves on an event that is never set; a
blocker greenlet then calls ``time.sleep`` in a loop, holding the thread
without ever switching, so nothing else can run.  It is the shape of a
real bug (a blocking call inside a cooperative program), made on purpose::

    python -m greentrace run --serve examples/hang.py &
    python -m greentrace stacks <PID>         # the blocker and the waiters
    kill -USR1 <PID>                          # the same, printed by the program
    python -m greentrace run --blocking 0.2 examples/hang.py --seconds 1

Options: ``--seconds S`` stops blocking after S seconds (default: never),
``--waiters N``.
"""

import argparse
import time

from greenlet import getcurrent
from greenlet import greenlet


class Event:
    """Greenlets wait on it until it is set (this one never is)."""

    def __init__(self):
        self.waiters = []

    def wait(self):
        me = getcurrent()
        self.waiters.append(me)
        hub = me.parent
        del me
        hub.switch()


def waiter(event):
    event.wait()  # suspended here forever


def blocker(seconds):
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.05)  # blocks the whole thread: nothing else can switch in


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--waiters", type=int, default=3)
    args = parser.parse_args(argv)
    never = Event()
    waiters = []
    for n in range(1, args.waiters + 1):
        g = greenlet(waiter)
        g.gr_name = f"waiter-{n}"
        g.switch(never)
        waiters.append(g)
    stuck = greenlet(blocker)
    stuck.gr_name = "blocker"
    print(f"blocking with {len(waiters)} greenlets waiting", flush=True)
    stuck.switch(args.seconds)
    print("unblocked", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
