"""Plain data describing greenlets: snapshots, switch recordings, JSON round-trip.

Nothing here touches live greenlets, so a snapshot taken in another process
(shipped as JSON) loads and renders exactly like a local one.

This module is the model's one import point: the classes live in
``model_snapshot`` (frames, greenlets, threads, Snapshot) and
``model_recording`` (switch events, Recording and what it derives), their JSON
form in ``model_json``; ``load`` reads either kind of document.

Conventions used throughout greentrace:

- Frame lists (``GreenletInfo.stack`` and ``GreenletInfo.spawn_site``) are
  **innermost first**, the order ``greenlet.gr_spawn_site`` uses: element 0 is
  the frame that was executing (for a stack) or that created the greenlet (for
  a spawn site).  ``GreenletInfo.location`` is the innermost frame.
- Times are integers in nanoseconds; ``*_ns`` instants are in the
  ``time.monotonic_ns()`` domain of the process that was observed.
"""

from __future__ import annotations

from .model_json import SCHEMA, parse
from .model_recording import (
    EVENT_KINDS,
    GreenletMeta,
    Recording,
    RunInterval,
    SwitchEvent,
)
from .model_snapshot import (
    PLAIN_GREENLET_TYPES,
    STATES,
    FrameInfo,
    GreenletInfo,
    Snapshot,
    ThreadInfo,
)

__all__ = [
    "EVENT_KINDS",
    "PLAIN_GREENLET_TYPES",
    "SCHEMA",
    "STATES",
    "FrameInfo",
    "GreenletInfo",
    "GreenletMeta",
    "Recording",
    "RunInterval",
    "Snapshot",
    "SwitchEvent",
    "ThreadInfo",
    "load",
]


def load(text: str | bytes) -> Snapshot | Recording:
    """Parse JSON holding either a snapshot or a recording, by its ``kind`` field."""
    data = parse(text)
    kind = data.get("kind")
    if kind == "snapshot":
        return Snapshot.from_dict(data)
    if kind == "recording":
        return Recording.from_dict(data)
    raise ValueError(
        f"not a greentrace document: kind {kind!r} (expected 'snapshot' or 'recording')"
    )
