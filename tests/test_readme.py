"""The README renders as intended and what it shows works: fences, Python blocks, commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
FENCE = re.compile(r"^ *(```+|~~~+)(.*)$")


def _blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block; fails on a fence left open."""
    blocks, opened, lang, body = [], None, "", []
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if opened is None:
            if match:
                opened, lang, body = (match.group(1), number), match.group(2).strip(), []
        elif match and match.group(1).startswith(opened[0]) and not match.group(2).strip():
            blocks.append((lang, "\n".join(body)))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"the fence opened on line {opened[1]} is never closed"
    return blocks


def test_fences_are_balanced_and_every_block_is_closed() -> None:
    blocks = _blocks(TEXT)
    assert len(blocks) >= 5
    # A closing fence followed by prose lines that look like code is what broke it once.
    for _, body in blocks:
        assert not FENCE.match(body.splitlines()[0] if body else ""), body[:80]


PYTHON_BLOCKS = [body for lang, body in _blocks(TEXT) if lang == "python"]


@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_every_python_block_runs(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr


def test_readme_episode_example_prints_what_its_comments_say() -> None:
    match = re.search(r"^```python\n(import gymnasium.*?)^```$", TEXT, re.S | re.M)
    assert match, "the README lost its episode example"
    result = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "```output\n11.0\n```" in result.stdout
    assert "1.0 True answered" in result.stdout


def _table_commands() -> list[list[str]]:
    """The sub-commands named in the "Command line" table, as argv lists."""
    section = TEXT.split("## Command line", 1)[1].split("\n## ", 1)[0]
    commands: list[list[str]] = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        previous: list[str] = []
        for snippet in re.findall(r"`([^`]+)`", cell):
            words = snippet.split()
            if words[0] == "or-env":
                words = words[1:]
            elif previous:  # "`or-env sandbox build` / `clean`": clean is a sibling
                words = previous[:-1] + words
            name = [w for w in words if re.fullmatch(r"[a-z][a-z0-9-]*", w)]
            cut = next((i for i, w in enumerate(words) if w not in name), len(words))
            previous = words[:cut]
            commands.append(previous)
    return commands


COMMANDS = _table_commands()
CLI = "import sys; from or_env.cli import main; sys.exit(main())"


def test_the_command_table_is_read() -> None:
    assert ["eval"] in COMMANDS and ["sandbox", "clean"] in COMMANDS


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c) or "or-env" for c in COMMANDS])
def test_every_command_in_the_table_answers_help(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CLI, *argv, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
