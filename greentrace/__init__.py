"""greentrace: see inside greenlet programs — trees, stacks, switch timelines.

The package is layered so that only ``greentrace.capture`` touches live
greenlets; the model, renderers and exporters work on plain data and so on
snapshots shipped from another process as JSON.  Importing ``greentrace``
itself loads only the model (no greenlet, no rich).
"""

from __future__ import annotations

from .model import (
    SCHEMA,
    FrameInfo,
    GreenletInfo,
    GreenletMeta,
    Recording,
    RunInterval,
    Snapshot,
    SwitchEvent,
    ThreadInfo,
    load,
)

__all__ = [
    "SCHEMA",
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
