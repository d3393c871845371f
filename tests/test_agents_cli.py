"""`or-env eval`, run as a user runs it, on the bundled sample set with a replay policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from or_env import load_problems
from or_env.cli import main

SAMPLE = load_problems("sample")[:3]


def recording(path: Path) -> Path:
    """Sample 0 of each problem answers right (its reference program), sample 1 wrong."""
    rows = []
    for problem in SAMPLE:
        code = problem.meta["reference_code"]
        for sample, answer in ((0, problem.answer), (1, 987654321)):
            turns = [f"```python\n{code}\n```\n", f"So \\boxed{{{answer}}}."]
            rows.append({"problem_id": problem.id, "sample": sample, "turns": turns})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eval_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--policy",
        "replay",
        "--replay",
        str(recording(tmp_path / "turns.jsonl")),
        "--benchmarks",
        "sample",
        "--limit",
        "3",
        "--samples",
        "2",
        "--sandbox",
        "local",
        "--out",
        str(tmp_path / "run"),
        "--label",
        "recorded",
        *extra,
    ]


def test_eval_command_writes_every_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "or_env.cli", *eval_args(tmp_path, "--no-progress")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| model | Sample | macro |" in done.stdout
    assert "| recorded | 50.0 | 50.0 |" in done.stdout
    assert "| recorded (pass@2) | 100.0 | 100.0 |" in done.stdout
    assert "failures: wrong_value 3" in done.stdout
    run = tmp_path / "run"
    for name in ("results.json", "results.md", "results.png", "episodes.jsonl", "run_config.json"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert results["model"] == "recorded"
    assert results["benchmarks"][0]["pass_at"] == {"pass@1": 0.5, "pass@2": 1.0}
    assert len((run / "episodes.jsonl").read_text().splitlines()) == 6


def test_eval_resumes_and_refuses_other_settings(tmp_path: Path, capsys) -> None:
    assert main(eval_args(tmp_path, "--no-progress")) == 0
    episodes = tmp_path / "run" / "episodes.jsonl"
    before = episodes.read_text()
    assert main(eval_args(tmp_path, "--no-progress")) == 0
    assert episodes.read_text() == before  # nothing was played again
    assert main(eval_args(tmp_path, "--no-progress", "--tolerance", "strict")) == 2
    assert "other settings (tolerance)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "openai"], "--policy openai needs --model"),
        (["--benchmarks", "nosuch"], "nosuch"),
    ],
)
def test_eval_explains_bad_arguments(tmp_path: Path, capsys, extra, message) -> None:
    assert main([*eval_args(tmp_path, "--no-progress"), *extra]) == 2
    assert message in capsys.readouterr().out


def test_eval_help_lists_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "or_env.cli", "eval", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    for option in ("--policy", "--benchmarks", "--samples", "--protocol", "--tolerance", "--out"):
        assert option in done.stdout
