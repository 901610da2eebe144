"""A snapshot as a table of greenlets by run time or switches, with rates."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from .model import GreenletInfo, Snapshot
from .render_text import badge, format_ns


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
