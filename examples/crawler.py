"""A crawler-like tree of worker greenlets over a simulated site (no network).

A tiny scheduler runs on the main greenlet: greenlets sleep by registering a
timer and switching to it, and it wakes them when their time comes.  The
crawler greenlet starts a few workers; each worker takes URLs from a shared
queue and, for every page, starts a fetch greenlet and waits for its result
(the fetch is a child of the worker, so its result comes straight back to
it).  Fetching "takes" a few milliseconds of simulated latency, during which
other greenlets run; parsing costs a little CPU and finds the page's links,
which go back on the queue.

The parent links make a tree: main -> crawler -> worker-N -> fetch.  See it
with greentrace::

    python -m greentrace run examples/crawler.py              # tree + timeline at exit
    python -m greentrace run --serve examples/crawler.py --rounds 0 &
    python -m greentrace tree <PID>                            # while it crawls

Options: ``--pages N`` (size of the site), ``--workers N``, ``--rounds N``
(crawl the site N times; 0 crawls until interrupted), ``--seed N``.
"""

import argparse
import hashlib
import heapq
import random
import time
from collections import deque

from greenlet import getcurrent
from greenlet import greenlet


class Scheduler:
    """Timers and a run queue, driven from the greenlet that calls :meth:`run`."""

    def __init__(self):
        self.hub = None
        self.ready = deque()
        self.timers = []
        self._sequence = 0

    def spawn(self, func, *args, name=None, parent=None):
        """Start ``func(*args)`` soon, in a greenlet whose parent is ``parent`` (the hub by default)."""
        g = greenlet(lambda: func(*args), parent=parent or self.hub)
        g.gr_name = name
        self.ready.append(g)
        return g

    def sleep(self, seconds):
        """Suspend the calling greenlet for ``seconds``."""
        me = getcurrent()
        token = self._at(time.monotonic() + seconds, me)
        # A child finishing also switches into its parent: only our timer wakes us.
        while not token["fired"]:
            self.hub.switch()

    def _at(self, when, g):
        self._sequence += 1
        token = {"fired": False, "greenlet": g}
        heapq.heappush(self.timers, (when, self._sequence, token))
        return token

    def run(self):
        """Run until nothing is ready and no timer is left."""
        self.hub = getcurrent()
        while self.ready or self.timers:
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, token = heapq.heappop(self.timers)
                token["fired"] = True
                self.ready.append(token["greenlet"])
            if self.ready:
                g = self.ready.popleft()
                if not g.dead:
                    g.switch()
            elif self.timers:
                time.sleep(max(0.0, self.timers[0][0] - now))


def make_site(pages, seed):
    """A site of ``pages`` pages, each linking to a few others, and its latencies."""
    rng = random.Random(seed)
    urls = ["/"] + [f"/page/{n}" for n in range(1, pages)]
    links = {url: rng.sample(urls, k=min(3, len(urls))) for url in urls}
    latency = {url: rng.uniform(0.004, 0.02) for url in urls}
    return links, latency


class Crawler:
    """Visits every page reachable from ``/`` with ``workers`` worker greenlets."""

    def __init__(self, scheduler, site, workers):
        self.scheduler = scheduler
        self.links, self.latency = site
        self.workers = workers
        self.queue = deque()
        self.seen = set()
        self.fetched = []
        self.busy = 0
        self.parse_cost = 2000  # hashes per page: about a millisecond

    def fetch(self, url):
        """Simulated download: wait out the latency, then parse the page."""
        self.scheduler.sleep(self.latency[url])
        return self.parse(url)

    def parse(self, url):
        """Simulated parsing: a little CPU work (it holds the thread), then the links."""
        digest = url.encode()
        for _ in range(self.parse_cost):
            digest = hashlib.sha256(digest).digest()
        return list(self.links[url])

    def worker(self, number):
        """Take URLs until the queue stays empty and nobody is still fetching."""
        while self.queue or self.busy:
            if not self.queue:
                self.scheduler.sleep(0.001)
                continue
            url = self.queue.popleft()
            self.busy += 1
            fetcher = greenlet(self.fetch)
            fetcher.gr_name = f"fetch {url}"
            # The fetcher's parent is this worker: its result comes back here.
            links = fetcher.switch(url)
            self.busy -= 1
            self.fetched.append((number, url))
            for link in links:
                if link not in self.seen:
                    self.seen.add(link)
                    self.queue.append(link)

    def crawl(self):
        """Start the workers under this greenlet and wait for them."""
        self.seen.add("/")
        self.queue.append("/")
        me = getcurrent()
        workers = [
            self.scheduler.spawn(self.worker, n, name=f"worker-{n}", parent=me)
            for n in range(1, self.workers + 1)
        ]
        while not all(w.dead for w in workers):
            self.scheduler.sleep(0.002)
        return len(self.fetched)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=1, help="0 crawls until interrupted"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    site = make_site(args.pages, args.seed)
    round_number = 0
    while args.rounds == 0 or round_number < args.rounds:
        round_number += 1
        scheduler = Scheduler()
        crawler = Crawler(scheduler, site, args.workers)
        supervisor = scheduler.spawn(crawler.crawl, name="crawler")
        scheduler.run()
        by_worker = {}
        for number, _ in crawler.fetched:
            by_worker[number] = by_worker.get(number, 0) + 1
        shares = ", ".join(f"worker-{n}: {c}" for n, c in sorted(by_worker.items()))
        print(
            f"round {round_number}: fetched {len(crawler.fetched)} pages ({shares})",
            flush=True,
        )
        assert supervisor.dead
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
