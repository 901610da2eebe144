"""A small server that leaks greenlets: its worker pool forgets some workers.

A dispatcher greenlet hands requests to worker greenlets.  A request for a
slow resource parks its worker until a reply comes; the reply for every
``--forget``-th request is lost (a bug), and the pool keeps the parked
worker in its ``waiting`` table forever.  The greenlet count grows at a
steady rate, which is what ``greentrace leaks`` shows::

    python -m greentrace run --serve examples/leak.py &
    python -m greentrace leaks <PID> --interval 2     # which groups grow, and where they wait

``--report`` runs a batch of requests under ``greentrace.leaks`` instead and
prints the leak report (stack, spawn site, the reference chain from the
module global ``POOL``)::

    python examples/leak.py --report

Options: ``--rate N`` requests per second (default 50), ``--forget K`` loses
every K-th reply (default 5), ``--seconds S`` stops after S seconds (default:
run until interrupted), ``--requests N`` with ``--report``.
"""

import argparse
import time

from greenlet import getcurrent
from greenlet import greenlet


class Pool:
    """Runs each request in its own worker greenlet under one dispatcher."""

    def __init__(self):
        self.waiting = {}  # request number -> the worker parked on its reply
        self.served = 0

    def handle(self, number, forget):
        worker = greenlet(serve_request)
        worker.gr_name = f"request-{number}"
        worker.switch(self, number)
        if number % forget:
            self.reply(number)  # the reply arrives and the worker finishes
        # else: the reply is lost, and the worker stays parked in self.waiting

    def wait_reply(self, number):
        self.waiting[number] = getcurrent()
        return getcurrent().parent.switch()  # back to the dispatcher until the reply

    def reply(self, number):
        worker = self.waiting.pop(number)
        worker.switch(f"reply-{number}")


def serve_request(pool, number):
    answer = fetch_slow_resource(pool, number)
    pool.served += 1
    return answer


def fetch_slow_resource(pool, number):
    return pool.wait_reply(number)


POOL = Pool()


def dispatch(rate, forget, seconds, requests=None):
    """Hand out requests at ``rate`` per second (or ``requests`` of them at once)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    number = 0
    while (deadline is None or time.monotonic() < deadline) and (
        requests is None or number < requests
    ):
        number += 1
        POOL.handle(number, forget)
        if requests is None:
            time.sleep(1.0 / rate)
    return number


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--forget", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args(argv)
    if args.report:
        from greentrace.leaks import GreenletLeakError, assert_no_greenlet_leaks

        try:
            with assert_no_greenlet_leaks(max_chains=2):
                dispatch(args.rate, args.forget, None, requests=args.requests)
        except GreenletLeakError as exc:
            print(exc)
            return 1
        print("no greenlet leaked")
        return 0
    dispatcher = greenlet(dispatch)
    dispatcher.gr_name = "dispatcher"
    try:
        total = dispatcher.switch(args.rate, args.forget, args.seconds)
    except KeyboardInterrupt:
        total = None
    print(
        f"served {POOL.served} requests of {total}; {len(POOL.waiting)} workers parked"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
