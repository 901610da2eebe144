"""A snapshot as trees: one per thread following ``parent_id``, and its stacks.

Both views walk each thread's greenlets depth first from its roots.  Frame
lists are innermost first, and are shown in that order (the frame that was
executing comes first, as in a sampler's dump).
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Group
from rich.rule import Rule
from rich.text import Text
from rich.tree import Tree

from .model import GreenletInfo, Snapshot
from .render_text import append_styled, badge, format_frame, format_ns


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
            append_styled(title, " exited", "red")
    append_styled(title, f" · {_plural(count, 'greenlet')}", "dim")
    return title


def _name_text(g: GreenletInfo, short_type: bool = False) -> Text:
    text = Text.assemble(
        badge(g.state), "  ", (g.label, "bold"), " ", (f"#{g.id}", "dim")
    )
    if not g.is_plain_type:
        kind = g.type_name.rpartition(".")[2] if short_type else g.type_name
        append_styled(text, f" ({kind})", "magenta")
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('h') else 's'}"


def greenlet_label(g: GreenletInfo, known: set[int], stacks: bool = False) -> Text:
    """The tree node text of one greenlet: badge, name, counters, where it is."""
    text = _name_text(g, short_type=True)
    if g.is_current:
        append_styled(text, " ◀ snapshot taken here", "bold")
    counters = f" · {_plural(g.switches, 'switch')} · {format_ns(g.run_ns)}"
    append_styled(text, counters, "dim")
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
