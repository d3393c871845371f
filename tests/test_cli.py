"""The `or-env` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "or_env.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["benchmarks"],
        ["problems"],
        ["show"],
        ["run"],
        ["play"],
        ["demo"],
        ["sandbox"],
        ["sandbox", "check"],
    ],
)
def test_help_everywhere(args: list[str]) -> None:
    result = run_cli(*args, "--help")
    assert result.returncode == 0 and "usage: or-env" in result.stdout


def test_problems_and_show_sample() -> None:
    listing = run_cli("problems", "sample")
    assert listing.returncode == 0
    first_id = listing.stdout.split()[0]
    shown = run_cli("show", "sample", first_id)
    assert shown.returncode == 0 and "reference program" in shown.stdout


def test_unknown_benchmark_is_a_clear_error() -> None:
    result = run_cli("problems", "nosuchbench")
    assert result.returncode == 2 and "nosuchbench" in result.stdout


def test_run_file_in_local_sandbox(tmp_path: Path) -> None:
    program = tmp_path / "p.py"
    program.write_text("import pulp\nprint('hello', 6 * 7)\n")
    result = run_cli("run", str(program), "--sandbox", "local", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["stdout"] == "hello 42\n" and record["exit_code"] == 0


def test_play_episode_from_turns_file(tmp_path: Path) -> None:
    turns = tmp_path / "turns.jsonl"
    lines = [{"text": "```python\nprint(40 + 2)\n```\n"}, {"text": "So \\boxed{42}."}]
    turns.write_text("\n".join(json.dumps(line) for line in lines))
    result = run_cli("play", str(turns), "--sandbox", "local")
    assert result.returncode == 0, result.stderr
    assert "```output\n42\n```" in result.stdout and "reason answered" in result.stdout


def test_demo_grades_every_sample_problem() -> None:
    result = run_cli("demo", "--sandbox", "local")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "correct in" in result.stdout
    solved, total = result.stdout.strip().splitlines()[-1].split()[0].split("/")
    assert solved == total and int(total) >= 20


@pytest.mark.benchmark_data
@pytest.mark.skipif(not DATA_DIR or not Path(DATA_DIR).is_dir(), reason="OR_ENV_DATA_DIR unset")
def test_benchmarks_listing_counts_every_benchmark() -> None:
    result = run_cli("benchmarks")
    assert result.returncode == 0, result.stderr
    for name in [
        "nl4opt",
        "mamo-easylp",
        "mamo-complexlp",
        "industryor",
        "optmath",
        "optibench",
        "nlp4lp",
        "complexor",
        "sample",
    ]:
        assert name in result.stdout
    assert " - " not in result.stdout.replace("--", "")
