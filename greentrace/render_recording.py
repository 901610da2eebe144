"""A recording as a switch timeline (greenlets against time) and a summary."""

from __future__ import annotations

from collections import Counter

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .model import Recording, RunInterval
from .render_text import append_styled, format_ns, truncate

ROW_COLORS = ("green", "cyan", "magenta", "yellow", "blue", "red")
# Partial-cell shades for the timeline, by the fraction of the cell the greenlet ran.
SHADES = ((0.875, "█"), (0.5, "▓"), (0.25, "▒"), (0.0, "░"))
STATS_WIDTH = 13


class Timeline:
    """Rows of greenlets against time, drawn in at most ``width`` cells."""

    def __init__(self, recording: Recording, width: int = 80) -> None:
        if width < 30:
            raise ValueError("a timeline needs at least 30 columns")
        self.recording = recording
        self.width = width

    def __rich_measure__(
        self, console: Console, options: ConsoleOptions
    ) -> Measurement:
        """Take the requested width, or less when the console is narrower."""
        return Measurement(30, min(self.width, options.max_width))

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """Yield one Text per line, none wider than the available width."""
        width = max(30, min(self.width, options.max_width))
        for line in self.lines(width):
            line.truncate(width, overflow="ellipsis")
            line.no_wrap = True
            yield line

    def lines(self, width: int) -> list[Text]:
        """The timeline as lines of exactly ``width`` cells or fewer."""
        rec = self.recording
        t0, t1 = rec.covered_from_ns, rec.covered_until_ns
        span = max(1, t1 - t0)
        head = Text(
            f"switch timeline · {format_ns(t1 - t0)} · {len(rec.events)} events"
        )
        head.stylize("bold")
        if rec.dropped:
            append_styled(
                head, f" · {rec.dropped} dropped, shown from first kept event", "red"
            )
        ids = rec.greenlet_ids()
        if not ids:
            return [head, Text("(no switch events recorded)", style="dim")]
        labels = {gid: f"{rec.label(gid)} #{gid}" for gid in ids}
        name_w = min(24, max(8, *(cell_len(s) for s in labels.values())))
        name_w = min(name_w, width - STATS_WIDTH - 12)
        bar_w = width - name_w - STATS_WIDTH - 2
        intervals = rec.intervals_by_greenlet()
        entries = rec.entries_by_greenlet()
        run = rec.run_ns_by_greenlet()
        threads = rec.thread_map()
        thread_order = sorted(
            {threads.get(g) for g in ids}, key=lambda t: (t is None, t)
        )
        out = [
            head,
            Text.assemble(" " * (name_w + bar_w + 6), ("sw  run %", "dim")),
        ]
        for thread_id in thread_order:
            if len(thread_order) > 1:
                out.append(Text(f"thread {thread_id}", style="bold"))
            for gid in (g for g in ids if threads.get(g) == thread_id):
                color = ROW_COLORS[gid % len(ROW_COLORS)]
                fractions = _cell_fractions(intervals.get(gid, []), t0, span, bar_w)
                line = Text(truncate(rec.label(gid), name_w, f" #{gid}"))
                line.pad_right(name_w - cell_len(line.plain))
                line.append(" ")
                for run_text in _runs("".join(_shade(f) for f in fractions)):
                    line.append(run_text, style=None if run_text[0] == " " else color)
                share = 100 * run.get(gid, 0) / span
                append_styled(line, f" {entries.get(gid, 0):>6} {share:5.1f}%", "dim")
                out.append(line)
        out.extend(_axis(name_w, bar_w, span))
        return out


def _cell_fractions(
    intervals: list[RunInterval], t0: int, span: int, cells: int
) -> list[float]:
    """How much of each of ``cells`` equal slices of the span the intervals cover."""
    cell = span / cells
    fractions = [0.0] * cells
    for iv in intervals:
        start, end = (iv.start_ns - t0) / cell, (iv.end_ns - t0) / cell
        first, last = int(start), min(int(end), cells - 1)
        for i in range(max(first, 0), last + 1):
            fractions[i] += max(0.0, min(end, i + 1) - max(start, i))
    return [min(f, 1.0) for f in fractions]


def _runs(bar: str) -> list[str]:
    """Split a bar into runs of blanks and of marks, so blanks stay unstyled."""
    runs: list[str] = []
    for char in bar:
        if runs and (runs[-1][0] == " ") == (char == " "):
            runs[-1] += char
        else:
            runs.append(char)
    return runs


def _shade(fraction: float) -> str:
    if fraction <= 0:
        return " "
    return next(char for floor, char in SHADES if fraction >= floor)


def _axis(name_w: int, bar_w: int, span: int) -> list[Text]:
    """A ruler under the bars and relative time labels under its ticks."""
    ticks = max(1, bar_w // 16)
    positions = [round(k * (bar_w - 1) / ticks) for k in range(ticks + 1)]
    ruler = ["─"] * bar_w
    for p in positions:
        ruler[p] = "┬"
    ruler[0], ruler[-1] = "└", "┘"
    labels = [" "] * bar_w
    free_from = 0
    for k, p in enumerate(positions):
        label = "0" if k == 0 else format_ns(span * k / ticks)
        start = (
            p if k == 0 else p - len(label) + 1 if k == ticks else p - len(label) // 2
        )
        if start < free_from or start + len(label) > bar_w:
            continue
        labels[start : start + len(label)] = label
        free_from = start + len(label) + 1
    pad = " " * (name_w + 1)
    # Padding stays unstyled: some SVG viewers drop leading spaces of a styled run.
    return [
        Text.assemble(pad, ("".join(ruler), "dim")),
        Text.assemble(pad, ("".join(labels), "dim")),
    ]


def timeline(recording: Recording, width: int = 80) -> Timeline:
    """One row per greenlet, time left to right, shaded where the greenlet ran."""
    return Timeline(recording, width)


def summary(recording: Recording) -> Group:
    """Totals of a recording and its busiest greenlets."""
    span = max(1, recording.covered_until_ns - recording.covered_from_ns)
    kinds = Counter(e.kind for e in recording.events)
    breakdown = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
    threads = recording.thread_map()
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    totals.add_row("duration", format_ns(recording.end_ns - recording.start_ns))
    totals.add_row(
        "events", f"{len(recording.events)}" + (f" ({breakdown})" if breakdown else "")
    )
    totals.add_row(
        "dropped", Text(str(recording.dropped), "red" if recording.dropped else "")
    )
    if recording.dropped:
        totals.add_row("covered", f"{format_ns(span)} (from the first kept event)")
    totals.add_row("greenlets", str(len(recording.greenlet_ids())))
    totals.add_row("threads", str(len({t for t in threads.values() if t is not None})))
    busiest = Table(title="busiest greenlets", title_justify="left")
    for header in ("greenlet", "thread", "run", "share", "entries"):
        busiest.add_column(header, justify="left" if header == "greenlet" else "right")
    run = recording.run_ns_by_greenlet()
    entries = recording.entries_by_greenlet()
    for gid, ns in sorted(run.items(), key=lambda item: (-item[1], item[0]))[:5]:
        busiest.add_row(
            f"{recording.label(gid)} #{gid}",
            str(threads.get(gid, "-")),
            format_ns(ns),
            f"{100 * ns / span:.1f}%",
            str(entries.get(gid, 0)),
        )
    return Group(totals, busiest)
