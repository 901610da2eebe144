"""Greenlet growth between two snapshots, grouped by where greenlets come from.

``greentrace leaks PID --interval SECONDS`` takes two snapshots of a serving
program and shows, like ``objgraph.show_growth`` but per spawn site and
state instead of per type, which groups of greenlets grew, and the stacks of
the oldest suspended greenlets of those groups (ids grow in creation order,
so the smallest ids are the oldest).  Everything here works on model
snapshots, so it never touches a live greenlet.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .model import GreenletInfo, Snapshot
from .render import badge, format_frame, format_ns

MAIN_SITE = "(main greenlet of a thread)"
NO_SITES_HINT = (
    "spawn sites unknown (grouped by what the greenlets run): start the program "
    "with spawn tracking on, e.g. 'greentrace run --serve' or "
    "greenlet.set_spawn_tracking(8)"
)


def site_of(g: GreenletInfo) -> str:
    """Where a greenlet comes from: its innermost spawn frame, else what it runs."""
    if g.is_main:
        return MAIN_SITE
    if g.spawn_site:
        return format_frame(g.spawn_site[0])
    return f"{g.run_name or g.type_name.rpartition('.')[2]} (spawn site unknown)"


@dataclass(frozen=True, slots=True)
class GrowthRow:
    """One (spawn site, state) group: its size in each snapshot."""

    site: str
    state: str
    before: int
    after: int

    @property
    def delta(self) -> int:
        """How much the group grew (negative: shrank)."""
        return self.after - self.before


@dataclass(slots=True)
class Growth:
    """What grew between two snapshots of one program."""

    pid: int
    interval_ns: int
    total_before: int
    total_after: int
    rows: list[GrowthRow] = field(default_factory=list)
    oldest: list[GreenletInfo] = field(default_factory=list)
    stuck_ids: set[int] = field(default_factory=set)
    sites_known: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the oldest greenlets as model dicts)."""
        return {
            "pid": self.pid,
            "interval_ns": self.interval_ns,
            "total_before": self.total_before,
            "total_after": self.total_after,
            "grew": [
                {
                    "site": r.site,
                    "state": r.state,
                    "before": r.before,
                    "after": r.after,
                    "delta": r.delta,
                }
                for r in self.rows
            ],
            "oldest": [
                {**asdict(g), "stuck": g.id in self.stuck_ids} for g in self.oldest
            ],
            "sites_known": self.sites_known,
        }


def _counts(snapshot: Snapshot) -> Counter[tuple[str, str]]:
    return Counter((site_of(g), g.state) for g in snapshot.greenlets)


def compare(before: Snapshot, after: Snapshot, oldest: int = 3) -> Growth:
    """The groups that grew from ``before`` to ``after``, biggest growth first.

    ``oldest`` suspended greenlets of the groups that grew (or of all
    greenlets, if none did) are kept with their stacks; the ones that did
    not switch between the snapshots are marked stuck.
    """
    first, second = _counts(before), _counts(after)
    rows = [
        GrowthRow(site, state, first.get((site, state), 0), count)
        for (site, state), count in second.items()
        if count > first.get((site, state), 0)
    ]
    rows.sort(key=lambda r: (-r.delta, r.site, r.state))
    grown = {(r.site, r.state) for r in rows}
    suspended = [g for g in after.greenlets if g.state == "suspended" and not g.is_main]
    suspects = [g for g in suspended if (site_of(g), g.state) in grown] or suspended
    suspects.sort(key=lambda g: g.id)
    earlier = before.by_id()
    stuck = {
        g.id
        for g in after.greenlets
        if g.id in earlier and g.switches == earlier[g.id].switches
    }
    children = [g for g in after.greenlets if not g.is_main]
    return Growth(
        pid=after.pid,
        interval_ns=max(0, after.monotonic_ns - before.monotonic_ns),
        total_before=len(before.greenlets),
        total_after=len(after.greenlets),
        rows=rows,
        oldest=suspects[: max(0, oldest)],
        stuck_ids=stuck,
        sites_known=not children or any(g.spawn_site for g in children),
    )


def render_growth(growth: Growth) -> RenderableType:
    """The growth table, then the oldest suspended greenlets' stacks."""
    change = growth.total_after - growth.total_before
    head = Text(
        f"pid {growth.pid}: {growth.total_before} → {growth.total_after} greenlets "
        f"({change:+d}) in {format_ns(growth.interval_ns)}",
        style="bold",
    )
    parts: list[RenderableType] = [head]
    if not growth.sites_known:
        parts.append(Text(NO_SITES_HINT, style="dim"))
    if growth.rows:
        table = Table(box=None, pad_edge=False)
        table.add_column("GROWTH", justify="right", style="bold red")
        table.add_column("BEFORE", justify="right")
        table.add_column("AFTER", justify="right")
        table.add_column("STATE", no_wrap=True)
        table.add_column("SPAWN SITE")
        for row in growth.rows:
            table.add_row(
                f"+{row.delta}",
                str(row.before),
                str(row.after),
                badge(row.state),
                Text(row.site),
            )
        parts.append(table)
    else:
        parts.append(Text("no group of greenlets grew", style="green"))
    if growth.oldest:
        grown = " of the groups that grew" if growth.rows else ""
        parts.append(Text(f"\noldest suspended greenlets{grown}:", style="bold"))
        for g in growth.oldest:
            parts.append(_oldest_entry(g, g.id in growth.stuck_ids))
    return Group(*parts)


def _oldest_entry(g: GreenletInfo, stuck: bool) -> Text:
    text = Text()
    text.append(f"#{g.id} {g.label}", style="bold")
    text.append(f"  ({g.type_name}, {g.switches} switches")
    text.append(", no switch between the snapshots)" if stuck else ")")
    if g.spawn_site:
        text.append("\n  spawned at ", style="dim")
        text.append(format_frame(g.spawn_site[0]), style="dim blue")
    for frame in g.stack:
        text.append("\n    " + format_frame(frame), style="cyan")
        if frame.line:
            text.append("\n      " + frame.line, style="dim")
    if not g.stack:
        text.append("\n    (no stack)", style="dim")
    return text


def measure(
    pid: int, interval: float, oldest: int = 3, timeout: float = 10.0
) -> Growth:
    """Two snapshots of serving program ``pid``, ``interval`` seconds apart, compared.

    Each snapshot uses its own connection (the server drops idle ones).
    Raises ``InspectorError`` when the program cannot be asked.
    """
    from .inspector import Client

    with Client(pid, timeout=timeout) as client:
        before = client.snapshot()
    time.sleep(interval)
    with Client(pid, timeout=timeout) as client:
        after = client.snapshot(stacks=True)
    return compare(before, after, oldest=oldest)


def leaks_command(args: argparse.Namespace) -> int:
    """``greentrace leaks PID --interval SECONDS [--oldest N] [--json]``."""
    from .terminal import stdout_console

    if args.oldest < 0:
        raise ValueError("leaks: --oldest must be 0 or more")
    growth = measure(args.pid, args.interval, oldest=args.oldest)
    if args.json:
        print(json.dumps(growth.to_dict(), indent=2))
    else:
        stdout_console().print(render_growth(growth))
    return 0
