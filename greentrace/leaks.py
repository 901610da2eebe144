"""Greenlet leak detection: registry diff, stacks, spawn sites, reference chains.

A *baseline* remembers the newest greenlet id at one moment (ids are never
reused and grow in creation order).  Later, after ``gc.collect()``, every
greenlet with a newer id that is still alive and not dead is a leak: it was
created since the baseline and nothing finished it.  Main greenlets (they
live as long as their thread), greentrace's own threads and the greenlet
doing the check (with its parents) are left out.

Each leak comes with the stack where it is stuck, where it was spawned (spawn
tracking is switched on while ``assert_no_greenlet_leaks`` is active) and the
shortest chain of references that keeps it alive, from a module global or a
local variable of a live frame.  Reports hold plain data only: once built,
they keep no greenlet, frame or other live object alive.
"""

from __future__ import annotations

import contextlib
import gc
import linecache
import os
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import greenlet

from . import capture
from .model import FrameInfo, GreenletInfo

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Baseline",
    "GreenletLeakError",
    "Leak",
    "assert_no_greenlet_leaks",
    "baseline",
    "find_leaks",
    "format_report",
    "newest_id",
]

SPAWN_DEPTH = 8
"""Spawn-site frames recorded while a leak check switches tracking on."""
MAX_CHAINS = 10
"""Leaks per report that get a reference chain (each search scans the heap)."""
CHAIN_DEPTH = 12
"""Longest reference chain searched for."""
SEARCH_OBJECTS = 400
"""Objects whose referrers one chain search may look up (each is a heap scan)."""
SEARCH_SECONDS = 3.0
"""Time one chain search may take."""
NO_CHAIN = (
    "no chain from a module global or a live frame: only reference cycles keep it "
    "alive (for example a reference to itself in its own frame)"
)

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Baseline:
    """The point leaks are counted from: greenlets with a larger id are new."""

    max_id: int

    def __contains__(self, greenlet_id: object) -> bool:
        """True if ``greenlet_id`` existed (or could have) when the baseline was taken."""
        return isinstance(greenlet_id, int) and greenlet_id <= self.max_id


def newest_id() -> int:
    """The id of the newest greenlet alive in the process (0 if there is none)."""
    everything = greenlet.all_greenlets()
    return everything[-1].gr_id if everything else 0


def baseline() -> Baseline:
    """Remember the newest greenlet now; ``find_leaks`` reports what comes after."""
    return Baseline(newest_id())


@dataclass(slots=True)
class Leak:
    """One leaked greenlet: what it is, where it is stuck, what keeps it alive.

    ``chain`` lists the references from a root (a module global, a local
    variable of a live frame, a running thread) to the greenlet, root first,
    one line each; it is empty when no chain was looked for or found, and
    ``chain_note`` then says why.
    """

    info: GreenletInfo
    chain: list[str] = field(default_factory=list)
    chain_note: str | None = None

    @property
    def spawn_key(self) -> str:
        """The innermost spawn-site frame as ``file:line in function`` (or a fallback)."""
        site = self.info.spawn_site
        if site:
            frame = site[0]
            return f"{frame.filename}:{frame.lineno} in {frame.function}"
        return "(spawn site unknown)"

    def format(self) -> str:
        """The leak as readable text, several lines."""
        return "\n".join(_leak_lines(self))


class GreenletLeakError(AssertionError):
    """Greenlets created in a checked block are still alive after it."""

    def __init__(self, leaks: list[Leak]) -> None:
        self.leaks = leaks
        super().__init__(format_report(leaks))


def _describe_greenlet(info: GreenletInfo) -> str:
    name = f" {info.name!r}" if info.name else ""
    runs = f", runs {info.run_name}" if info.run_name else ""
    return f"greenlet #{info.id}{name} ({info.type_name}{runs}) {info.state}"


def _frame_lines(frames: Iterable[FrameInfo], indent: str) -> Iterator[str]:
    for frame in frames:
        yield f'{indent}File "{frame.filename}", line {frame.lineno}, in {frame.function}'
        line = frame.line
        if line is None:
            line = linecache.getline(frame.filename, frame.lineno).strip() or None
        if line:
            yield f"{indent}  {line}"


def _runner_dirs() -> tuple[str, ...]:
    """Directories of test runners whose frames say nothing about a leak."""
    dirs = []
    for name in ("_pytest", "pluggy"):
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)


def _trimmed(frames: list[FrameInfo]) -> list[FrameInfo]:
    """Frames up to (not including) the first one inside pytest's machinery."""
    dirs = _runner_dirs()
    for index, frame in enumerate(frames):
        if dirs and frame.filename.startswith(dirs):
            return frames[:index]
    return frames


def _leak_lines(leak: Leak) -> Iterator[str]:
    info = leak.info
    yield _describe_greenlet(info)
    if info.stack:
        yield "  stuck at (innermost first):"
        yield from _frame_lines(info.stack, "    ")
    elif info.state == "unstarted":
        yield "  never started"
    else:
        yield "  stack: not available"
    if info.spawn_site:
        yield "  spawned at (innermost first):"
        yield from _frame_lines(_trimmed(info.spawn_site) or info.spawn_site, "    ")
    else:
        yield "  spawned at: unknown (spawn tracking was off when it was created)"
    if leak.chain:
        yield "  kept alive by:"
        for step in leak.chain:
            yield f"    {step}"
    elif leak.chain_note:
        yield f"  kept alive by: {leak.chain_note}"


def format_report(leaks: list[Leak]) -> str:
    """A readable report of ``leaks``: a header, then each leak."""
    if not leaks:
        return "no greenlet leaked"
    count = len(leaks)
    head = (
        f"{count} greenlet{'s' if count != 1 else ''} leaked: created since the "
        "baseline and still alive (not dead) after gc.collect()"
    )
    parts = [head]
    parts.extend(leak.format() for leak in leaks)
    return "\n\n".join(parts)


# --- finding the leaked greenlets ------------------------------------------------


def _exempt_ids() -> set[int]:
    """The greenlet running this code and its parents: they do the checking."""
    exempt: set[int] = set()
    g: Any = greenlet.getcurrent()
    while g is not None:
        exempt.add(g.gr_id)
        g = g.parent
    return exempt


def _newer_live(base: Baseline, exclude: Callable[[int], bool] | None) -> list[Any]:
    """Weak references to greenlets newer than ``base`` that are not dead."""
    exempt = _exempt_ids()
    skip = capture.internal_threads()
    found: list[Any] = []
    for g in reversed(greenlet.all_greenlets()):
        gid = g.gr_id
        if gid <= base.max_id:
            break  # creation order: everything further is older
        if gid in exempt or (exclude is not None and exclude(gid)):
            continue
        try:
            if g.parent is None or g.gr_state == "dead" or g.gr_thread_id in skip:
                continue
        except Exception:  # noqa: BLE001,S112 (torn down under us: not a leak)
            continue
        found.append(weakref.ref(g))
    found.reverse()
    return found


def may_have_leaks(
    base: Baseline, exclude: Callable[[int], bool] | None = None
) -> bool:
    """Cheap pre-check (no garbage collection): a greenlet newer than ``base`` is not dead."""
    return bool(_newer_live(base, exclude))


def find_leaks(
    base: Baseline,
    *,
    chains: bool = True,
    max_chains: int = MAX_CHAINS,
    exclude: Callable[[int], bool] | None = None,
) -> list[Leak]:
    """Greenlets created since ``base`` still alive and not dead, after ``gc.collect()``.

    ``exclude(gr_id)`` returning True leaves a greenlet out.  Reference
    chains are looked for (``chains``) for the first ``max_chains`` leaks.
    """
    if not _newer_live(base, exclude):
        return []  # nothing new survives: no collection needed
    gc.collect()
    refs = _newer_live(base, exclude)
    if not refs:
        return []
    leaks: list[Leak] = []
    here = threading.get_ident()
    skip = capture.internal_threads()
    for ref in refs:
        info = _info(ref, here, skip)
        if info is not None:
            leaks.append(Leak(info))
    if chains and leaks:
        _add_chains(leaks, refs, max_chains)
    return leaks


def _info(ref: Any, here: int, skip: frozenset[int]) -> GreenletInfo | None:
    g = ref()
    if g is None:
        return None
    try:
        raw = capture._read(g, capture.STACK_LIMIT, here, skip)
    except Exception:  # noqa: BLE001 (died while read)
        return None
    finally:
        del g
    if raw is None:
        return None
    stack = [capture._frame_info(f, True) for f in raw.pop("raw")]
    spawn = raw.pop("spawn")
    raw["is_current"] = False
    return GreenletInfo(
        **raw,
        stack=stack,
        location=stack[0] if stack else None,
        spawn_site=None
        if spawn is None
        else [capture._frame_info(f, True) for f in spawn],
    )


# --- reference chains ------------------------------------------------------------
#
# A breadth-first search from the greenlet back through its referrers until a
# root: a module, or a value held by a local variable of a live frame.  The
# referrers are ``gc.get_referrers`` plus the dicts and tuples the collector
# does not track: a dict or tuple holding only suspended greenlets and atoms
# is untracked (greenlet tells the collector a suspended greenlet is not one
# of its objects), so ``gc.get_referrers`` never returns it -- a pool's
# ``{request: worker}`` table, for example, and with it objgraph's
# ``find_backref_chain``, would find no chain at all.


def _add_chains(leaks: list[Leak], refs: list[Any], max_chains: int) -> None:
    by_id = {leak.info.id: leak for leak in leaks}
    done = 0
    untracked: _Untracked | None = None
    for ref in refs:
        g = ref()
        if g is None:
            continue
        leak = by_id.get(g.gr_id)
        if leak is None:
            del g
            continue
        if done >= max_chains:
            leak.chain_note = (
                f"not searched (chains are searched for the first {max_chains} leaks)"
            )
            del g
            continue
        done += 1
        try:
            if untracked is None:
                untracked = _Untracked(refs)
            leak.chain, leak.chain_note = _chain(g, untracked, set(by_id))
        except Exception as exc:  # noqa: BLE001 (a report must not fail on a chain)
            leak.chain_note = f"search failed: {type(exc).__name__}: {exc}"
        finally:
            del g
    if untracked is not None:
        untracked.clear()


def _frames_of(g: Any) -> Iterator[Any]:
    with contextlib.suppress(Exception):
        frame = greenlet.frame_of(g)
        while frame is not None:
            yield frame
            frame = frame.f_back


def _where(frame: Any) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", None) or code.co_name
    return f"{name}() at {code.co_filename}:{frame.f_lineno or code.co_firstlineno}"


def _is_own_code(frame: Any) -> bool:
    return bool(frame.f_code.co_filename.startswith(_HERE))


def _live_roots(target: Any, leaked: set[int]) -> dict[int, str]:
    """``id(value) -> description`` of every local of every live frame.

    Live frames: every thread's stack and the stack of every started
    greenlet that is not itself a leak.  The frames of ``target`` are no
    roots (a greenlet referenced only from its own frames is an orphan in a
    cycle), nor are those of the other leaks (they are what is explained)
    and of greentrace.
    """
    own = {id(f) for f in _frames_of(target)}
    skip = capture.internal_threads()
    roots: dict[int, str] = {}
    seen: set[int] = set()
    tops: list[tuple[Any, str]] = []
    names = {t.ident: t.name for t in threading.enumerate()}
    for tid, frame in sys._current_frames().items():
        if tid not in skip:
            tops.append((frame, f"thread {names.get(tid, tid)}"))
    everything = greenlet.all_greenlets()
    while everything:
        g = everything.pop()
        with contextlib.suppress(Exception):
            if (
                g is not target
                and g.gr_id not in leaked
                and g.gr_state in ("running", "suspended")
                and g.gr_thread_id not in skip
            ):
                label = "main greenlet" if g.parent is None else f"greenlet #{g.gr_id}"
                tops.append((greenlet.frame_of(g), f"{label} ({g.gr_state})"))
        del g
    for top, owner in tops:
        frame = top
        while frame is not None and id(frame) not in seen:
            seen.add(id(frame))
            if id(frame) not in own and not _is_own_code(frame):
                with contextlib.suppress(Exception):
                    scope = frame.f_locals
                    if scope is frame.f_globals:
                        scope = {}  # module-level code: its module is a root already
                    for name, value in list(scope.items()):
                        roots.setdefault(
                            id(value), f"local {name!r} of {_where(frame)}, in {owner}"
                        )
            frame = frame.f_back
    tops.clear()
    return roots


def _frame_locals() -> list[Any]:
    """The values of the locals of every live frame (all threads, all greenlets)."""
    values: list[Any] = []
    seen: set[int] = set()
    tops: list[FrameType | None] = list(sys._current_frames().values())
    everything = greenlet.all_greenlets()
    while everything:
        g = everything.pop()
        with contextlib.suppress(Exception):
            if g.gr_state in ("running", "suspended"):
                tops.append(greenlet.frame_of(g))
        del g
    for frame in tops:
        while frame is not None and id(frame) not in seen:
            seen.add(id(frame))
            if not _is_own_code(frame):
                with contextlib.suppress(Exception):
                    values.extend(frame.f_locals.values())
            frame = frame.f_back
    tops.clear()
    return values


def _untracked_kind(obj: Any) -> bool:
    return type(obj) in (dict, tuple) and not gc.is_tracked(obj)


class _Untracked:
    """Referrers ``gc.get_referrers`` misses, indexed by the id of what they hold.

    Untracked dicts and tuples (holding greenlets or each other), and the
    leaked greenlets themselves for the locals of their suspended frames
    (the collector does not look into those).
    """

    def __init__(self, leaked: list[Any]) -> None:
        self.parents: dict[int, list[Any]] = {}
        for ref in leaked:
            g = ref()
            for frame in _frames_of(g) if g is not None else ():
                with contextlib.suppress(Exception):
                    for value in list(frame.f_locals.values()):
                        self.parents.setdefault(id(value), []).append(g)
            del g
        seen: set[int] = set()
        pending: list[Any] = []
        everything = gc.get_objects()
        everything.append(_frame_locals())  # live frames hold untracked ones too
        for obj in everything:
            if isinstance(obj, types.ModuleType):
                # Never needed (a module's namespace is a tracked dict), and
                # unsafe: CPython 3.12.1's _asyncio module hands out the dead
                # FutureIter objects of its free list, and the reference
                # get_referents() takes and drops frees one a second time,
                # looping the free list (the next get_referrers() hangs).
                continue
            for item in gc.get_referents(obj):
                if _untracked_kind(item) and id(item) not in seen:
                    seen.add(id(item))
                    pending.append(item)
        everything.clear()
        del everything
        while pending:
            container = pending.pop()
            for item in gc.get_referents(container):
                if isinstance(item, greenlet.greenlet):
                    self.parents.setdefault(id(item), []).append(container)
                elif _untracked_kind(item):
                    self.parents.setdefault(id(item), []).append(container)
                    if id(item) not in seen:
                        seen.add(id(item))
                        pending.append(item)
        self.own = {id(self.parents), *map(id, self.parents.values())}

    def referrers(self, obj: Any) -> list[Any]:
        """The untracked containers holding ``obj``."""
        return list(self.parents.get(id(obj), ()))

    def clear(self) -> None:
        """Drop every container (the index must not keep anything alive)."""
        self.parents.clear()


def _search(
    target: Any, is_root: Callable[[Any], bool], untracked: _Untracked
) -> tuple[list[Any], bool]:
    """The shortest referrer path root -> ... -> target, or [] if there is none.

    Breadth first, so the first root met ends the search (checked as soon as
    it is seen).  Each expansion scans the heap, so the search gives up after
    ``SEARCH_OBJECTS`` expansions or ``SEARCH_SECONDS``; the flag returned
    says whether the search was complete.
    """
    parent: dict[int, Any] = {id(target): None}
    depth: dict[int, int] = {id(target): 0}
    queue: list[Any] = [target]
    spent: list[list[Any]] = []  # emptied referrer lists, kept so no id is reused
    mine = {id(parent), id(depth), id(queue), id(spent), id(sys._getframe())}
    mine.update(untracked.own)
    deadline = time.monotonic() + SEARCH_SECONDS
    head = 0

    def path(obj: Any) -> list[Any]:
        chain = [obj]
        while parent[id(chain[-1])] is not None:
            chain.append(parent[id(chain[-1])])
        return chain  # root first: each entry's parent is the one it refers to

    try:
        if is_root(target):
            return [target], True
        while head < len(queue):
            if head >= SEARCH_OBJECTS or time.monotonic() > deadline:
                return [], False
            obj = queue[head]
            head += 1
            level = depth[id(obj)]
            if level >= CHAIN_DEPTH:
                continue
            found = gc.get_referrers(obj)
            found.extend(untracked.referrers(obj))
            mine.add(id(found))
            for source in found:
                if id(source) in mine or id(source) in parent:
                    continue
                if isinstance(source, types.FrameType) and _is_own_code(source):
                    continue  # the checker's own frames (Python 3.10 tracks frames)
                parent[id(source)] = obj
                if is_root(source):
                    found.clear()
                    return path(source), True
                depth[id(source)] = level + 1
                queue.append(source)
            found.clear()
            spent.append(found)
        return [], True
    finally:
        queue.clear()
        parent.clear()


def _chain(
    g: Any, untracked: _Untracked, leaked: set[int]
) -> tuple[list[str], str | None]:
    """The shortest reference chain from a root to ``g``, described step by step."""
    if g.gr_state == "running":
        names = {t.ident: t.name for t in threading.enumerate()}
        thread = names.get(g.gr_thread_id, g.gr_thread_id)
        return [f"it is running in thread {thread}: alive as long as it runs"], None
    roots = _live_roots(g, leaked)
    # A module's globals are a root too (one step less to search).
    modules = {
        id(module.__dict__): module
        for module in list(sys.modules.values())
        if isinstance(module, types.ModuleType)
    }

    def is_root(obj: Any) -> bool:
        return (
            isinstance(obj, types.ModuleType) or id(obj) in roots or id(obj) in modules
        )

    found, complete = _search(g, is_root, untracked)
    try:
        if not found:
            if complete:
                return [], NO_CHAIN
            return [], (
                f"no chain found within the search limits ({SEARCH_OBJECTS} objects, "
                f"{SEARCH_SECONDS:g} s): it is held far from any module global or frame"
            )
        if id(found[0]) in modules and id(found[0]) not in roots:
            found.insert(0, modules[id(found[0])])
        return _describe_chain(found, roots), None
    finally:
        found.clear()
        roots.clear()
        modules.clear()


def _kind(obj: Any) -> str:
    if isinstance(obj, greenlet.greenlet):
        name = f" {obj.gr_name!r}" if obj.gr_name else ""
        return f"greenlet #{obj.gr_id}{name}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, (types.FunctionType, type)):
        return f"{type(obj).__name__} {obj.__qualname__}"
    cls = type(obj)
    text = (
        cls.__qualname__
        if cls.__module__ == "builtins"
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    if isinstance(obj, (list, tuple, dict, set, frozenset)):
        text += f" of {len(obj)}"
    return text


def _edge(a: Any, b: Any) -> str:
    """How ``a`` refers to ``b``: an attribute, an index, a key, a closure cell..."""
    with contextlib.suppress(Exception):
        if isinstance(a, dict):
            for key, value in a.items():
                if value is b:
                    return f"[{key!r}]"
                if key is b:
                    return "(a key)"
        elif isinstance(a, (list, tuple)):
            for index, value in enumerate(a):
                if value is b:
                    return f"[{index}]"
        elif isinstance(a, (set, frozenset)):
            return "(an element)"
        elif isinstance(a, types.CellType):
            return ".cell_contents"
        elif isinstance(a, types.FunctionType):
            for attr in (
                "__globals__",
                "__defaults__",
                "__kwdefaults__",
                "__closure__",
            ):
                if getattr(a, attr) is b:
                    return f".{attr}"
        elif isinstance(a, types.MethodType):
            return ".__self__" if a.__self__ is b else ".__func__"
        elif isinstance(a, types.FrameType):
            for name, value in a.f_locals.items():
                if value is b:
                    return f"(local {name!r})"
        elif isinstance(a, greenlet.greenlet):
            for attr in ("parent", "run", "gr_context"):
                if getattr(a, attr, None) is b:
                    return f".{attr}"
            for frame in _frames_of(a):
                for name, value in frame.f_locals.items():
                    if value is b:
                        code = frame.f_code
                        where = getattr(code, "co_qualname", None) or code.co_name
                        return f"(its local {name!r} in {where})"
            return "(a reference from its suspended frames)"
        attrs = getattr(a, "__dict__", None)
        if attrs is b:
            return ".__dict__"
        if isinstance(attrs, dict):
            for key, value in attrs.items():
                if value is b:
                    return f".{key}"
        for cls in type(a).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if isinstance(slot, str) and getattr(a, slot, None) is b:
                    return f".{slot}"
    return "(refers to)"


def _describe_chain(found: list[Any], roots: dict[int, str]) -> list[str]:
    """One line per reference: the root, then ``via -> what`` steps."""
    root = found[0]
    if isinstance(root, types.ModuleType):
        lines = [
            f"module {root.__name__} ({getattr(root, '__file__', None) or 'built-in'})"
        ]
    else:
        lines = [f"{roots[id(root)]} -> {_kind(root)}"]
    index = 1
    while index < len(found):
        a, b = found[index - 1], found[index]
        via = _edge(a, b)
        if via == ".__dict__" and index + 1 < len(found) and isinstance(b, dict):
            # module/object -> its __dict__ -> value reads better as an attribute
            inner = _edge(b, found[index + 1])
            if inner.startswith("["):
                key = inner[1:-1]
                via = f".{key[1:-1]}" if key[:1] in "'\"" else inner
            else:
                via = inner
            index += 1
            b = found[index]
        lines.append(f"  {via} -> {_kind(b)}")
        index += 1
    return lines


# --- the context manager / decorator ---------------------------------------------


class assert_no_greenlet_leaks:
    """Fail with ``GreenletLeakError`` if greenlets created inside are left alive.

    Use it as ``with assert_no_greenlet_leaks(): ...`` or as a decorator.
    While active, spawn tracking is on (``spawn_depth`` frames) unless it
    already was; the previous depth is restored at the end.  When the block
    raises, its exception goes through unchanged and no check is made.
    """

    def __init__(
        self,
        *,
        spawn_depth: int = SPAWN_DEPTH,
        chains: bool = True,
        max_chains: int = MAX_CHAINS,
    ) -> None:
        self.spawn_depth = spawn_depth
        self.chains = chains
        self.max_chains = max_chains
        self.leaks: list[Leak] = []
        self._stack: list[tuple[Baseline, int]] = []

    def __enter__(self) -> Self:
        previous = greenlet.get_spawn_tracking()
        if previous == 0 and self.spawn_depth > 0:
            greenlet.set_spawn_tracking(self.spawn_depth)
        self._stack.append((baseline(), previous))
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        base, previous = self._stack.pop()
        try:
            if exc_type is not None:
                return
            self.leaks = find_leaks(
                base, chains=self.chains, max_chains=self.max_chains
            )
        finally:
            greenlet.set_spawn_tracking(previous)
        if self.leaks:
            raise GreenletLeakError(self.leaks)

    def __call__(self, func: _F) -> _F:
        """Decorate ``func``: each call is checked."""
        import functools

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return checked  # type: ignore[return-value]
