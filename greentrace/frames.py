"""Python frames as model frames: walking a stack, hiding greentrace's own frames.

Stacks are lists of ``(filename, lineno, function)`` innermost first while
they are copied out of live frames (cheap, under the GIL), and become
``FrameInfo`` (with source lines, which may read files) afterwards.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
from types import CodeType, FrameType
from typing import Any

from .model import FrameInfo

STACK_LIMIT = 256
"""Frames kept per greenlet; deeper stacks keep their innermost frames."""

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
Raw = tuple[str, int, str]
_launchers: set[CodeType] = set()


def qualname(code: Any) -> str:
    """The qualified name of a code object where the interpreter has one."""
    return str(getattr(code, "co_qualname", None) or code.co_name)


def walk(frame: FrameType | None, limit: int, skip_own: bool) -> list[Raw]:
    """(filename, lineno, function) from ``frame`` outwards, innermost first."""
    out: list[Raw] = []
    while frame is not None and skip_own:
        name = frame.f_code.co_filename
        if not (name.startswith(_PACKAGE_DIR) or is_runpy(name)):
            break
        frame = frame.f_back
    while frame is not None and len(out) < limit:
        code = frame.f_code
        if code in _launchers:
            while out and is_runpy(out[-1][0]):
                out.pop()
            break
        out.append(
            (code.co_filename, frame.f_lineno or code.co_firstlineno, qualname(code))
        )
        frame = frame.f_back
    return out


def is_runpy(filename: str) -> bool:
    """True for runpy's own file, which starts scripts and modules."""
    return filename == "<frozen runpy>" or filename.endswith(f"{os.sep}runpy.py")


def hide_launcher(code: CodeType) -> None:
    """Cut stacks at frames running ``code`` (and the runpy frames it called).

    ``greentrace run`` starts programs from such a frame: what lies below it
    is greentrace's own business, not the program's.
    """
    _launchers.add(code)


def frame_info(raw: Raw | tuple[Any, ...], with_line: bool) -> FrameInfo:
    """A model frame from a raw one, with its source line if ``with_line``."""
    filename, lineno, function = raw[0], int(raw[1]), str(raw[2])
    line = None
    if with_line:
        text = linecache.getline(filename, lineno).strip()
        line = text or None
    return FrameInfo(str(filename), lineno, function, line)


def thread_stack(thread_id: int, limit: int = STACK_LIMIT) -> list[FrameInfo]:
    """What a thread executes now, innermost first, with source lines."""
    frame = sys._current_frames().get(thread_id)
    raw = walk(frame, limit, skip_own=thread_id == threading.get_ident())
    del frame
    return [frame_info(f, True) for f in raw]
