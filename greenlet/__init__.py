"""Lightweight in-process concurrent programming, with introspection built in.

A drop-in replacement for greenlet 3.x: ``greenlet.greenlet`` objects switch
by copying slices of the C stack.  On top of the upstream API this package
adds an observation layer maintained by the C core: :func:`all_greenlets`,
per-greenlet counters (``gr_id``, ``gr_state``, ``gr_switches``,
``gr_run_ns``...), spawn sites and :class:`SwitchLog`.
"""

__version__ = "3.5.6.post1.dev0"
__all__ = [
    "greenlet",
    "getcurrent",
    "GreenletExit",
    "error",
    "settrace",
    "gettrace",
    "all_greenlets",
    "set_spawn_tracking",
    "get_spawn_tracking",
    "set_run_time_tracking",
    "get_run_time_tracking",
    "SwitchLog",
    "frame_of",
]

from ._greenlet import _C_API  # noqa: F401  (the capsule, for C clients)
from ._greenlet import GreenletExit
from ._greenlet import error
from ._greenlet import getcurrent
from ._greenlet import gettrace
from ._greenlet import greenlet
from ._greenlet import settrace

# Constants upstream re-exports.
from ._greenlet import GREENLET_USE_CONTEXT_VARS  # noqa: F401
from ._greenlet import GREENLET_USE_GC  # noqa: F401
from ._greenlet import GREENLET_USE_TRACING  # noqa: F401
from ._greenlet import CLOCKS_PER_SEC  # noqa: F401
from ._greenlet import enable_optional_cleanup  # noqa: F401
from ._greenlet import get_clocks_used_doing_optional_cleanup  # noqa: F401

# The observation layer.
from ._greenlet import SwitchLog
from ._greenlet import all_greenlets
from ._greenlet import frame_of
from ._greenlet import get_run_time_tracking
from ._greenlet import get_spawn_tracking
from ._greenlet import set_run_time_tracking
from ._greenlet import set_spawn_tracking
