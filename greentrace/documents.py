"""Saved files read back: a snapshot, a recording, or a trace written by greentrace."""

from __future__ import annotations

import json

from .model import Recording, Snapshot


class DocumentError(Exception):
    """A file that cannot be read or is not a greentrace document; one line says why."""


def read_document(path: str) -> Snapshot | Recording:
    """A snapshot or recording from a JSON file, or from a trace written by greentrace."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(data.rstrip()) - 1 or exc.msg.startswith("Unterminated"):
            raise DocumentError(
                f"{path}: not valid JSON, the file looks truncated ({exc})"
            ) from None
        raise DocumentError(f"{path}: not valid JSON ({exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: not valid JSON ({exc})") from None
    if (
        isinstance(document, dict)
        and "traceEvents" in document
        and "kind" not in document
    ):
        if "greentrace" not in document:
            raise DocumentError(
                f"{path}: a trace without greentrace data: open it in Perfetto (https://ui.perfetto.dev)"
            )
        document = document["greentrace"]
    try:
        kind = document.get("kind") if isinstance(document, dict) else None
        if kind == "snapshot":
            return Snapshot.from_dict(document)
        if kind == "recording":
            return Recording.from_dict(document)
        raise ValueError(f"kind {kind!r} is neither 'snapshot' nor 'recording'")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DocumentError(f"{path}: not a valid greentrace file: {exc}") from None
