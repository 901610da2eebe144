"""Snapshots and recordings as rich renderables: tree, stacks, top table, timeline.

Everything here takes model objects (``greentrace.model``) and never touches a
live greenlet, so it renders a snapshot from another process just the same.
Frame lists are innermost first, and are shown in that order (the frame that
was executing comes first, as in a sampler's dump).

This module is the renderers' one import point: the pieces every view shares
live in ``render_text``, the tree and stacks of a snapshot in ``render_tree``,
its top table in ``render_top``, a recording's timeline and summary in
``render_recording``.
"""

from __future__ import annotations

from .render_recording import (
    ROW_COLORS,
    SHADES,
    STATS_WIDTH,
    Timeline,
    _cell_fractions,  # noqa: F401 (private, tests reach it here)
    _shade,  # noqa: F401 (private, tests reach it here)
    summary,
    timeline,
)
from .render_text import (
    STATE_MARKS,
    STATE_STYLES,
    badge,
    format_frame,
    format_ns,
    short_path,
    truncate,
)
from .render_top import top_table
from .render_tree import greenlet_label, stacks, tree

__all__ = [
    "ROW_COLORS",
    "SHADES",
    "STATE_MARKS",
    "STATE_STYLES",
    "STATS_WIDTH",
    "Timeline",
    "badge",
    "format_frame",
    "format_ns",
    "greenlet_label",
    "short_path",
    "stacks",
    "summary",
    "timeline",
    "top_table",
    "tree",
    "truncate",
]
