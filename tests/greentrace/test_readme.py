"""The README's greentrace tour: its pictures exist and are current, its commands are real."""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from procs import EXAMPLES, ROOT, clean_env

from greentrace.cli import build_parser

README = ROOT / "README.md"


def greentrace_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### greentrace\n")
    end = text.index("\n## ", start)
    return text[start:end]


def svg_text(path: Path) -> str:
    """The text a rich SVG shows, one line per row."""
    svg = path.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    rows: dict[float, list[str]] = {}
    for m in re.finditer(r'<text[^>]*\by="([\d.]+)"[^>]*>(.*?)</text>', svg):
        piece = html.unescape(re.sub("<[^>]+>", "", m.group(2)))
        rows.setdefault(float(m.group(1)), []).append(piece.replace("\xa0", " "))
    return "\n".join("".join(rows[y]) for y in sorted(rows))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return dict(action.choices)


# What each picture must show to be the picture the README says it is.
PICTURES = {
    "crawler-tree.svg": ["Thread MainThread", "running", "main", "crawler", "worker-1",
                         "fetch /", "spawned at examples/crawler.py"],
    "crawler-timeline.svg": ["switch timeline", "main #1", "crawler #2", "worker-1 #3",
                             "run %", "busiest greenlets"],
    "crawler-live.svg": ["switches", "busy", "rates over", "greenlet tree", "worker-1"],
    "hang-stacks.svg": ["blocker", "waiter-1", "time.sleep(0.05)", "event.wait()"],
}  # fmt: skip


def test_readme_shows_the_tree_and_the_timeline() -> None:
    section = greentrace_section()
    images = re.findall(r"!\[[^\]]+\]\(([^)]+\.svg)\)", section)
    assert "examples/crawler-tree.svg" in images
    assert "examples/crawler-timeline.svg" in images
    linked = set(re.findall(r"\]\((examples/[\w-]+\.svg)\)", section))
    assert linked == {f"examples/{name}" for name in PICTURES}
    for name, needles in PICTURES.items():
        text = svg_text(EXAMPLES / name)
        for needle in needles:
            assert needle in text, (name, needle)


def test_readme_commands_are_real() -> None:
    import greentrace

    section = greentrace_section()
    commands = subcommands()
    used = re.findall(r"python -m greentrace (\w+)([^\n#]*)", section)
    assert {"run", "ps", "tree", "stacks", "top", "record", "view"} <= {
        name for name, _ in used
    }
    for name, rest in used:
        assert name in commands, name
        known = {o for a in commands[name]._actions for o in a.option_strings}
        for word in rest.split():
            if word.endswith(".py"):
                break  # the program's own options follow
            if word.startswith("-"):
                assert word in known, (name, word)
    for function in re.findall(r"`greentrace\.(\w+)\(", section):
        assert callable(getattr(greentrace, function)), function


def test_pictures_script_draws_every_picture_again(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "pictures.py"), "--out", str(tmp_path)],
        env=clean_env(tmp_path),
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == sorted(PICTURES)
    for name, needles in PICTURES.items():
        text = svg_text(tmp_path / name)
        for needle in needles:
            assert needle in text, (name, needle)


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_committed_pictures_are_rich_svg(name: str) -> None:
    svg = (EXAMPLES / name).read_text(encoding="utf-8")
    assert "Generated with Rich" in svg
    assert len(svg) > 10_000
