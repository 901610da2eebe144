"""Type stubs for the C extension ``greenlet._greenlet``."""

import sys
from contextvars import Context
from types import FrameType, TracebackType
from typing import Any, Callable, ClassVar, Literal, NoReturn, final, overload


_GreenletState = Literal["unstarted", "running", "suspended", "dead"]
_TraceEvent = Literal["switch", "throw"]
_TraceCallback = Callable[[_TraceEvent, tuple[greenlet, greenlet]], object]
_SwitchEventKind = Literal["switch", "throw", "start", "finish", "kill"]
# (t_ns, kind, origin_id, target_id, thread_id); t_ns in time.monotonic_ns().
_SwitchEvent = tuple[int, _SwitchEventKind, int, int, int]
# (filename, lineno, function), innermost frame first.
_SpawnFrame = tuple[str, int, str]

class error(Exception):
    """General greenlet error (e.g. switching to a different thread)."""

class GreenletExit(BaseException):
    """Thrown into a greenlet to kill it; returned, not raised, to its parent."""

class greenlet:
    """A lightweight micro-thread that runs ``run`` on its own C stack slice."""

    # Copies of the module functions and exceptions placed in the type's dict,
    # so ``greenlet.greenlet.getcurrent()`` works.
    error: ClassVar[type[error]]
    GreenletExit: ClassVar[type[GreenletExit]]
    @staticmethod
    def getcurrent() -> greenlet: ...
    @staticmethod
    def settrace(callback: _TraceCallback | None, /) -> _TraceCallback | None: ...
    @staticmethod
    def gettrace() -> _TraceCallback | None: ...
    def __init__(
        self, run: Callable[..., Any] | None = None, parent: greenlet | None = None
    ) -> None: ...
    def switch(self, *args: Any, **kwargs: Any) -> Any:
        """Transfer control to this greenlet, starting it if needed."""

    @overload
    def throw(
        self,
        typ: type[BaseException] = ...,
        val: object = None,
        tb: TracebackType | None = None,
        /,
    ) -> Any: ...
    @overload
    def throw(
        self, typ: BaseException, val: None = None, tb: TracebackType | None = None, /
    ) -> Any: ...
    def __bool__(self) -> bool:
        """True if started and not yet dead."""

    def __getstate__(self) -> NoReturn: ...
    # Readable and writable only before the greenlet starts.
    @property
    def run(self) -> Callable[..., Any]: ...
    @run.setter
    def run(self, value: Callable[..., Any]) -> None: ...
    @run.deleter
    def run(self) -> None: ...
    @property
    def parent(self) -> greenlet | None: ...
    @parent.setter
    def parent(self, value: greenlet) -> None: ...
    @property
    def dead(self) -> bool: ...
    @property
    def gr_frame(self) -> FrameType | None: ...
    @property
    def gr_context(self) -> Context | None: ...
    @gr_context.setter
    def gr_context(self, value: Context | None) -> None: ...
    @property
    def _stack_saved(self) -> int: ...
    __dict__: dict[str, Any]

    # --- the observation layer -------------------------------------------
    @property
    def gr_id(self) -> int:
        """Unique in the process, never reused."""

    @property
    def gr_state(self) -> _GreenletState: ...
    @property
    def gr_thread_id(self) -> int | None:
        """Ident of the greenlet's thread; None while unstarted."""

    @property
    def gr_switches(self) -> int:
        """Times control entered this greenlet (the first start counts)."""

    @property
    def gr_run_ns(self) -> int:
        """Nanoseconds this greenlet has been running, current slice included."""

    @property
    def gr_spawn_site(self) -> tuple[_SpawnFrame, ...] | None:
        """Where it was created, innermost first, if spawn tracking was on."""

    @property
    def gr_name(self) -> str | None: ...
    @gr_name.setter
    def gr_name(self, value: str | None) -> None: ...
    @gr_name.deleter
    def gr_name(self) -> None: ...

class UnswitchableGreenlet(greenlet):
    """Testing only: a greenlet whose switches can be made to fail."""

    force_switch_error: bool
    force_slp_switch_error: bool

def getcurrent() -> greenlet:
    """The current greenlet of the calling thread."""

def settrace(callback: _TraceCallback | None, /) -> _TraceCallback | None:
    """Set this thread's switch tracer; return the previous one."""

def gettrace() -> _TraceCallback | None:
    """This thread's switch tracer, or None."""

def set_thread_local(key: object, value: object, /) -> None: ...
def get_pending_cleanup_count() -> int: ...
def get_total_main_greenlets() -> int: ...
def get_clocks_used_doing_optional_cleanup() -> int | None: ...
def enable_optional_cleanup(flag: bool, /) -> None: ...

if sys.version_info < (3, 13):
    def get_tstate_trash_delete_nesting() -> int: ...

GREENLET_USE_GC: int
GREENLET_USE_TRACING: int
GREENLET_USE_CONTEXT_VARS: int
GREENLET_USE_STANDARD_THREADING: int
CLOCKS_PER_SEC: int
_C_API: object  # a capsule named "greenlet._C_API"

# --- the observation layer -----------------------------------------------

def all_greenlets() -> list[greenlet]:
    """Every live greenlet of the process, all threads, in creation order."""

def set_run_time_tracking(on: object, /) -> None:
    """Account each greenlet's running time (gr_run_ns) from now on; off by default."""

def get_run_time_tracking() -> bool: ...

def set_spawn_tracking(depth: int, /) -> None:
    """Record up to ``depth`` creation frames per new greenlet; 0 turns it off."""

def get_spawn_tracking() -> int: ...
def frame_of(g: greenlet, /) -> FrameType | None:
    """The top frame of ``g``, wherever it runs; None if unstarted or dead."""

@final
class SwitchLog:
    """Records every switch in every thread into a ring buffer while active.

    A full ring drops its oldest events and counts them in ``dropped``.
    """

    def __new__(cls, capacity: int = 65536) -> SwitchLog: ...
    def __enter__(self) -> SwitchLog: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...
    def start(self) -> SwitchLog:
        """Start recording (what entering the ``with`` block does)."""

    def stop(self) -> None:
        """Stop recording; the events stay readable."""

    def clear(self) -> None:
        """Forget the recorded events."""

    @property
    def active(self) -> bool:
        """True while recording."""

    @property
    def events(self) -> list[_SwitchEvent]:
        """The recorded events, oldest first; reading does not drain them."""

    @property
    def dropped(self) -> int:
        """Events lost because the ring was full."""

    @property
    def capacity(self) -> int:
        """Size of the ring, in events."""
