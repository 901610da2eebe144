"""Text pieces every view shares: durations, frames, state badges, fitting labels.

Like all of ``greentrace.render``, these take plain values or model objects
and never touch a live greenlet.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from .model import FrameInfo

STATE_STYLES = {
    "running": "bold green",
    "suspended": "yellow",
    "unstarted": "cyan",
    "dead": "dim",
}
STATE_MARKS = {"running": "▶", "suspended": "‖", "unstarted": "○", "dead": "✕"}


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


def append_styled(text: Text, piece: str, style: str) -> None:
    """Append ``piece``, leaving its leading spaces unstyled.

    Some SVG renderers drop the leading spaces of a styled run, which would
    glue words together in exported pictures.
    """
    body = piece.lstrip(" ")
    text.append(piece[: len(piece) - len(body)])
    text.append(body, style=style)
