"""Snapshots and recordings as rich renderables: tree, stacks, top table, timeline.

Everything here takes model objects (``greentrace.model``) and never touches a
live greenlet, so it renders a snapshot from another process just the same.
Frame lists are innermost first, and are shown in that order (the frame that
was executing comes first, as in a sampler's dump).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .model import FrameInfo, GreenletInfo, Recording, RunInterval, Snapshot

STATE_STYLES = {
    "running": "bold green",
    "suspended": "yellow",
    "unstarted": "cyan",
    "dead": "dim",
}
STATE_MARKS = {"running": "▶", "suspended": "‖", "unstarted": "○", "dead": "✕"}
ROW_COLORS = ("green", "cyan", "magenta", "yellow", "blue", "red")
# Partial-cell shades for the timeline, by the fraction of the cell the greenlet ran.
SHADES = ((0.875, "█"), (0.5, "▓"), (0.25, "▒"), (0.0, "░"))
STATS_WIDTH = 13


def format_ns(ns: float) -> str:
    """A duration in human units with about three significant digits."""
    if ns < 0:
        return "-" + format_ns(-ns)
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns >= 3_600_000_000_000:
        hours, rest = divmod(int(ns // 1_000_000_000), 3600)
        return f"{hours}h {rest // 60:02d}m"
    if ns >= 60_000_000_000:
        minutes, seconds = divmod(int(ns // 1_000_000_000), 60)
        return f"{minutes}m {seconds:02d}s"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            value = ns / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def short_path(filename: str, parts: int = 2) -> str:
    """The last ``parts`` components of a path: enough to recognise the file."""
    pieces = filename.replace("\\", "/").split("/")
    return "/".join(pieces[-parts:])


def format_frame(frame: FrameInfo, short: bool = True) -> str:
    """``file:line in function``, with the path shortened unless ``short`` is False."""
    name = short_path(frame.filename) if short else frame.filename
    return f"{name}:{frame.lineno} in {frame.function}"


def badge(state: str) -> Text:
    """The colored state marker used in every view."""
    mark = STATE_MARKS.get(state, "?")
    return Text(f"{mark} {state}", style=STATE_STYLES.get(state, ""))


def truncate(label: str, width: int, keep: str = "") -> str:
    """Fit ``label + keep`` in ``width`` cells, cutting the label and keeping ``keep``."""
    if cell_len(label + keep) <= width:
        return label + keep
    room = width - cell_len(keep) - 1
    if room < 1:
        return set_cell_size(label + keep, width)
    return set_cell_size(label, room).rstrip() + "…" + keep


def _tree_order(
    snapshot: Snapshot, thread_id: int | None
) -> list[tuple[int, GreenletInfo]]:
    """Depth-first (depth, greenlet) order of one thread's greenlets, roots first."""
    children = snapshot.children_index()
    threads = snapshot.thread_map()
    members = [g for g in snapshot.greenlets if threads.get(g.id) == thread_id]
    order: list[tuple[int, GreenletInfo]] = []
    seen: set[int] = set()
    # Greenlets caught in a parent cycle have no root: they start trees of their own.
    for root in [*snapshot.roots(thread_id), *members]:
        pending = [(0, root)]
        while pending:
            depth, g = pending.pop()
            if g.id in seen:
                continue
            seen.add(g.id)
            order.append((depth, g))
            pending.extend((depth + 1, c) for c in reversed(children.get(g.id, [])))
    return order


def _thread_title(snapshot: Snapshot, thread_id: int | None, count: int) -> Text:
    title = Text()
    if thread_id is None:
        title.append("greenlets not yet on a thread", style="bold")
    else:
        info = snapshot.thread(thread_id)
        name = info.name if info is not None and info.name else "thread"
        title.append(f"Thread {name}", style="bold")
        title.append(" ")
        title.append(f"({thread_id})", style="dim")
        if info is not None and not info.alive:
            _styled(title, " exited", "red")
    _styled(title, f" · {_plural(count, 'greenlet')}", "dim")
    return title


def _name_text(g: GreenletInfo, short_type: bool = False) -> Text:
    text = Text.assemble(
        badge(g.state), "  ", (g.label, "bold"), " ", (f"#{g.id}", "dim")
    )
    if not g.is_plain_type:
        kind = g.type_name.rpartition(".")[2] if short_type else g.type_name
        _styled(text, f" ({kind})", "magenta")
    return text


def _styled(text: Text, piece: str, style: str) -> None:
    """Append ``piece``, leaving its leading spaces unstyled.

    Some SVG renderers drop the leading spaces of a styled run, which would
    glue words together in exported pictures.
    """
    body = piece.lstrip(" ")
    text.append(piece[: len(piece) - len(body)])
    text.append(body, style=style)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('h') else 's'}"


def greenlet_label(g: GreenletInfo, known: set[int], stacks: bool = False) -> Text:
    """The tree node text of one greenlet: badge, name, counters, where it is."""
    text = _name_text(g, short_type=True)
    if g.is_current:
        _styled(text, " ◀ snapshot taken here", "bold")
    counters = f" · {_plural(g.switches, 'switch')} · {format_ns(g.run_ns)}"
    _styled(text, counters, "dim")
    if g.parent_id is not None and g.parent_id not in known:
        text.append(f"\nparent #{g.parent_id} not in snapshot", style="red")
    if g.location is not None and not stacks:
        text.append("\nat ", style="dim")
        text.append(format_frame(g.location), style="blue")
    if g.spawn_site:
        text.append("\nspawned at ", style="dim")
        text.append(format_frame(g.spawn_site[0]), style="dim blue")
    if stacks:
        for line in _stack_lines(g, indent="  "):
            text.append("\n")
            text.append_text(line)
    if g.state == "dead":
        text.stylize("dim")
    return text


def tree(snapshot: Snapshot, stacks: bool = False) -> Group:
    """One tree per thread, rooted at its main greenlet, following ``parent_id``."""
    known = {g.id for g in snapshot.greenlets}
    trees: list[Tree] = []
    for thread_id in snapshot.thread_ids():
        order = _tree_order(snapshot, thread_id)
        root = Tree(_thread_title(snapshot, thread_id, len(order)), guide_style="dim")
        path: list[Tree] = [root]
        for depth, g in order:
            del path[depth + 1 :]
            path.append(path[depth].add(greenlet_label(g, known, stacks)))
        trees.append(root)
    return Group(*trees)


def _stack_lines(g: GreenletInfo, indent: str = "") -> Iterator[Text]:
    if not g.stack:
        why = {"unstarted": "not started", "dead": "finished"}.get(g.state, "no frames")
        yield Text.assemble(indent, (f"({why})", "dim italic"))
        return
    for frame in g.stack:
        yield Text.assemble(
            indent,
            ("File ", "dim"),
            (f'"{frame.filename}"', "blue"),
            (", line ", "dim"),
            (str(frame.lineno), "bold"),
            (", in ", "dim"),
            frame.function,
        )
        if frame.line:
            # Blanks in a run of their own: some SVG renderers drop the leading
            # spaces of a run, which would pull the source line left.
            yield Text.assemble(f"{indent}    ", (frame.line.strip(), "default"))


def stacks(snapshot: Snapshot) -> Group:
    """Every greenlet's full stack (innermost frame first), grouped per thread."""
    parts: list[Rule | Text] = []
    for thread_id in snapshot.thread_ids():
        order = _tree_order(snapshot, thread_id)
        parts.append(Rule(_thread_title(snapshot, thread_id, len(order)), align="left"))
        for _, g in order:
            parts.append(_name_text(g))
            parts.extend(_stack_lines(g, indent="  "))
            parts.append(Text(""))
    return Group(*parts)


def top_table(
    snapshot: Snapshot,
    previous: Snapshot | None = None,
    sort: str = "run",
    limit: int | None = None,
    compact: bool = False,
) -> Table:
    """Greenlets ordered by run time or switches; rates when ``previous`` is given.

    With a previous snapshot of the same process, ``run`` sorts by run time
    gained in between and ``switches`` by switches per second.  ``compact``
    fits 80 columns: light borders, the state as its mark, names cut short.
    """
    if sort not in ("run", "switches"):
        raise ValueError(f"sort must be 'run' or 'switches', not {sort!r}")
    elapsed_ns = 0
    before: dict[int, GreenletInfo] = {}
    if previous is not None:
        if previous.pid != snapshot.pid:
            raise ValueError("snapshots come from different processes")
        elapsed_ns = snapshot.monotonic_ns - previous.monotonic_ns
        if elapsed_ns <= 0:
            raise ValueError("previous snapshot is not older than this one")
        before = previous.by_id()

    def delta(g: GreenletInfo) -> tuple[int, int]:
        old = before.get(g.id)
        return g.run_ns - (old.run_ns if old else 0), g.switches - (
            old.switches if old else 0
        )

    def key(g: GreenletInfo) -> tuple[int, int]:
        run, switched = delta(g) if previous is not None else (g.run_ns, g.switches)
        return (-(run if sort == "run" else switched), g.id)

    table = Table(
        title=f"greenlets of pid {snapshot.pid}",
        title_justify="left",
        box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD,
        pad_edge=not compact,
        show_edge=not compact,
    )
    for header in ("id", "greenlet", "state", "thread", "switches", "run"):
        numeric = header in ("id", "switches", "run")
        table.add_column(
            "st" if compact and header == "state" else header,
            justify="right" if numeric else "left",
            no_wrap=numeric or compact,
            overflow="ellipsis",
            ratio=(2 if header == "greenlet" else 1)
            if compact and header in ("greenlet", "thread")
            else None,
        )
    if previous is not None:
        table.add_column("sw/s", justify="right")
        table.add_column("busy", justify="right")
        table.caption = f"rates over {format_ns(elapsed_ns)}"
    rows = sorted(snapshot.greenlets, key=key)
    threads = snapshot.thread_map()
    for g in rows[:limit] if limit is not None else rows:
        tid = threads.get(g.id)
        thread = snapshot.thread(tid)
        thread_name = thread.name if thread and thread.name else str(tid or "-")
        state = badge(g.state)
        if compact:
            state.truncate(1)
        cells: list[str | Text] = [str(g.id), g.label, state, thread_name]
        cells += [str(g.switches), format_ns(g.run_ns)]
        if previous is not None:
            run, switched = delta(g)
            cells.append(f"{switched * 1e9 / elapsed_ns:.1f}")
            cells.append(f"{100 * run / elapsed_ns:.1f}%")
        table.add_row(*cells, style="dim" if g.state == "dead" else None)
    return table


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
            _styled(
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
                _styled(line, f" {entries.get(gid, 0):>6} {share:5.1f}%", "dim")
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
