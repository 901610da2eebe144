"""Whole screens built from the renderers: the ps table, the top and live views, the exit report.

Like ``greentrace.render``, everything here takes model objects (and plain
dicts for ``ps``) and never touches a live greenlet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from .model import GreenletInfo, Recording, Snapshot
from .render import summary, timeline, top_table, tree

TREE_LIMIT = 200
"""Greenlets shown in the tree of the exit report."""
TIMELINE_LIMIT = 60
"""Above this many greenlets the exit report leaves the timeline to the files."""
LIVE_TREE_LIMIT = 40
LIVE_TOP_ROWS = 10
WIDE = 100
"""Columns from which the top table is drawn with full borders and state names."""


def uptime(seconds: float) -> str:
    """An age like ``42s``, ``3m 07s``, ``2h 05m`` or ``4d 01h``."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def programs_table(found: Sequence[dict[str, Any]]) -> Table:
    """``greentrace ps``: one row per inspectable program (or the error reaching it)."""
    table = Table(box=None, pad_edge=False)
    for header, justify in (
        ("PID", "right"),
        ("GREENLETS", "right"),
        ("UPTIME", "right"),
        ("COMMAND", "left"),
    ):
        table.add_column(header, justify=justify, no_wrap=header != "COMMAND")  # type: ignore[arg-type]
    for info in found:
        if "error" in info:
            table.add_row(str(info["pid"]), "?", "?", Text(info["error"], style="red"))
            continue
        command = " ".join(str(a) for a in info.get("argv") or []) or "?"
        table.add_row(
            str(info.get("pid")),
            str(info.get("greenlets", "?")),
            uptime(float(info.get("uptime", 0))),
            Text(command),
        )
    return table


class Fitted:
    """Renders ``wide`` where there are at least ``min_width`` columns, else ``narrow``."""

    def __init__(
        self, wide: RenderableType, narrow: RenderableType, min_width: int
    ) -> None:
        self.wide, self.narrow, self.min_width = wide, narrow, min_width

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        yield self.wide if options.max_width >= self.min_width else self.narrow


def fitted_top_table(
    snapshot: Snapshot, previous: Snapshot | None, sort: str = "run", rows: int = 25
) -> Fitted:
    """The top table, compact where fewer than ``WIDE`` columns are left."""
    wide, narrow = (
        top_table(snapshot, previous, sort=sort, limit=rows, compact=compact)
        for compact in (False, True)
    )
    return Fitted(wide, narrow, WIDE)


def top_view(
    snapshot: Snapshot, previous: Snapshot | None, sort: str = "run", rows: int = 25
) -> Group:
    """One frame of ``greentrace top``: the table (compact below 100 columns) and how to quit."""
    order = "run time" if sort == "run" else "switch rate"
    footer = Text(f"q or Ctrl-C quits · sorted by {order}", style="dim")
    return Group(fitted_top_table(snapshot, previous, sort, rows), footer)


def trim(snapshot: Snapshot, limit: int) -> tuple[Snapshot, int]:
    """At most about ``limit`` greenlets, live ones first, with their ancestors; and how many left out."""
    if len(snapshot.greenlets) <= limit:
        return snapshot, 0
    index = snapshot.by_id()
    ranked = sorted(
        snapshot.greenlets, key=lambda g: (not g.is_main, g.state == "dead", g.id)
    )
    keep: set[int] = set()
    for g in ranked[:limit]:
        current: GreenletInfo | None = g
        while current is not None and current.id not in keep:
            keep.add(current.id)
            current = (
                index.get(current.parent_id) if current.parent_id is not None else None
            )
    kept = [g for g in snapshot.greenlets if g.id in keep]
    return dataclasses.replace(snapshot, greenlets=kept), len(snapshot.greenlets) - len(
        kept
    )


def _tree_part(snapshot: Snapshot, limit: int) -> list[RenderableType]:
    shown, omitted = trim(snapshot, limit)
    parts: list[RenderableType] = [
        tree(shown) if shown.greenlets else Text("(no greenlets)", style="dim")
    ]
    if omitted:
        parts.append(Text(f"… {omitted} more greenlets not shown", style="dim"))
    return parts


def live_view(
    snapshot: Snapshot,
    previous: Snapshot | None = None,
    rows: int = LIVE_TOP_ROWS,
    tree_limit: int = LIVE_TREE_LIMIT,
) -> Group:
    """One frame of ``run --live``: the busiest greenlets, then the tree of every thread."""
    if previous is not None and (
        previous.pid != snapshot.pid or previous.monotonic_ns >= snapshot.monotonic_ns
    ):
        previous = None
    return Group(
        top_table(snapshot, previous, limit=rows, compact=True),
        Text("greenlet tree", style="bold underline"),
        *_tree_part(snapshot, tree_limit),
        Text("greentrace run --live · the report follows at exit", style="dim"),
    )


def report(
    snapshot: Snapshot, recording: Recording | None, width: int | None = None
) -> Group:
    """The tree and the timeline summary printed when a program ends."""
    parts: list[RenderableType] = [Text("greenlets at exit", style="bold underline")]
    parts += _tree_part(snapshot, TREE_LIMIT)
    if recording is not None:
        count = len(recording.greenlet_ids())
        if count <= TIMELINE_LIMIT:
            parts.append(timeline(recording, width=max(30, width or 100)))
        else:
            parts.append(
                Text(
                    f"({count} greenlets: timeline left out; see --svg or --trace)",
                    style="dim",
                )
            )
        parts.append(summary(recording))
    return Group(*parts)
