"""Summarise valgrind memcheck XML files; fail on errors that involve greenlet.

    python tools/vgreport.py DIR

Reads every ``*.xml`` in DIR (one per process, from ``valgrind --xml=yes
--xml-file=DIR/vg.%p.xml``).  An error *involves greenlet* when a frame of
its stack, or of the stack where the memory was allocated or freed, lies in
the extension ``greenlet/_greenlet*.so`` (or in one of its source files).
Leak records are ignored: the interpreter does not free everything at exit.

Prints every error that involves greenlet, with its stacks, and a count of
the others by kind (run with ``-v`` to see those too).  Exit status: 1 if
any error involves greenlet, 2 if no XML file was found or one is
unreadable, else 0.
"""

import glob
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter

# Error kinds that are reports about memory use (all of memcheck's but leaks).
OUR_SOURCES = ("greenlet_type.c", "module.c", "observe.c", "pystate.c",
               "stack.c", "switch.c", "threads.c", "switch_x86_64_sysv.h",
               "switch_aarch64_gcc.h")


def _frames(stack):
    if stack is None:
        return []
    return [
        (fr.findtext("fn") or "???", fr.findtext("file") or "",
         fr.findtext("line") or "", fr.findtext("obj") or "",
         fr.findtext("dir") or "")
        for fr in stack.findall("frame")
    ]


def _is_ours(frame):
    fn, file, line, obj, srcdir = frame
    if "_greenlet" in os.path.basename(obj):
        return True
    return file in OUR_SOURCES and ("src" in srcdir or "_greenlet" in obj)


def _format(frames, indent="    "):
    out = []
    for fn, file, line, obj, _ in frames:
        where = "%s:%s" % (file, line) if file else "(%s)" % os.path.basename(obj)
        out.append("%s%s %s" % (indent, fn, where))
    return "\n".join(out)


def _parse(path):
    """Return the root of a memcheck XML file; tolerate a truncated tail."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        pass
    # A process still running, or killed mid-run, leaves no closing tag: cut
    # after the last complete record and close the document.
    for tag in (b"</error>", b"</status>", b"</args>"):
        cut = data.rfind(tag)
        if cut >= 0:
            return ET.fromstring(data[: cut + len(tag)] + b"</valgrindoutput>")
    return ET.fromstring(data)


def main(argv):
    verbose = "-v" in argv
    dirs = [a for a in argv if a != "-v"]
    if len(dirs) != 1:
        sys.exit(__doc__)
    files = sorted(glob.glob(os.path.join(dirs[0], "*.xml")))
    if not files:
        print("vgreport: no XML files in %s" % dirs[0])
        return 2
    status = 0
    ours = []
    others = Counter()
    suppressed = Counter()
    processes = 0
    for path in files:
        try:
            root = _parse(path)
        except (ET.ParseError, OSError) as exc:
            print("vgreport: cannot read %s: %s" % (path, exc))
            status = 2
            continue
        processes += 1
        argv_el = root.find("args/argv")
        cmd = " ".join((a.text or "") for a in argv_el.iter("arg")) if argv_el is not None else "?"
        for err in root.findall("error"):
            kind = err.findtext("kind") or "?"
            if kind.startswith("Leak_"):
                continue
            what = err.findtext("what") or err.findtext("xwhat/text") or ""
            stacks = err.findall("stack")
            main_frames = _frames(stacks[0]) if stacks else []
            aux = [_frames(s) for s in stacks[1:]]
            if any(_is_ours(f) for fs in [main_frames] + aux for f in fs):
                ours.append((path, cmd, kind, what, main_frames, err.findtext("auxwhat") or "", aux))
            else:
                others[kind] += 1
                if verbose:
                    print("[not greenlet] %s %s: %s\n%s\n" % (os.path.basename(path), kind, what, _format(main_frames[:15])))
        for pair in root.findall("suppcounts/pair"):
            suppressed[pair.findtext("name")] += int(pair.findtext("count") or 0)
    for path, cmd, kind, what, frames, auxwhat, aux in ours:
        print("=" * 70)
        print("%s in %s\n  process: %s" % (kind, os.path.basename(path), cmd[:200]))
        print("  %s" % what)
        print(_format(frames[:30]))
        for a in aux:
            print("  %s" % (auxwhat or "(allocation/free)"))
            print(_format(a[:20]))
    print("vgreport: %d processes, %d errors involving greenlet, %d others %s; suppressed: %s" % (
        processes, len(ours), sum(others.values()), dict(others) or "",
        dict(suppressed) or "none"))
    if ours:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
