"""The `or-env` command, run as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from or_env.cli import SOLVER_MODULES

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["problems", "nosuchbench"], "nosuchbench"),
        (["show", "sample", "no-such-id"], "no problem 'no-such-id' in sample"),
        (["run", "{tmp}"], "{tmp} is a directory; give a Python file"),
        (["run", "{tmp}/missing.py"], "{tmp}/missing.py: no such file"),
        (["play", "{tmp}/missing.jsonl"], "{tmp}/missing.jsonl: no such file"),
    ],
)
def test_errors_are_one_line_on_stderr(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message.format(tmp=tmp_path) in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["problems", "sample"], ["benchmarks"], ["show", "sample", "x"]])
def test_a_reader_that_stops_early_ends_the_command_quietly(args: list[str]) -> None:
    """`or-env problems nl4opt | head`: the pipe closes before the command has written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that has already stopped reading
    try:
        result = subprocess.run(
            [sys.executable, "-m", "or_env.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    if args[0] == "show":  # nothing on stdout: an ordinary error on stderr
        assert result.returncode == 2
        return
    assert result.returncode == 141
    assert result.stderr == ""


def test_sandbox_check_lists_the_solvers_each_backend_imports() -> None:
    result = run_cli("sandbox", "check", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    local = report["backends"]["local"]
    assert local["available"] and "error" not in local
    # The local sandbox runs this interpreter: it imports exactly what this venv has.
    for module in SOLVER_MODULES:
        expected = importlib.util.find_spec(module) is not None
        assert local["modules"][module]["ok"] is expected, (module, local["modules"][module])
    docker = report["backends"]["docker"]
    assert docker["available"] or docker["why"]
    table = run_cli("sandbox", "check")
    assert "solvers each sandbox can import:" in table.stdout
    assert "numpy" in table.stdout and "local" in table.stdout


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
