"""`or-env eval`, run as a user runs it, on the bundled sample set with a replay policy."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.run_folder import default_of
from or_env import load_problems
from or_env.cli import build_parser, main

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
    capsys.readouterr()
    assert main(eval_args(tmp_path, "--no-progress", "--tolerance", "strict")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "other settings (tolerance)" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "openai"], "--policy openai needs --model"),
        (["--benchmarks", "nosuch"], "nosuch"),
    ],
)
def test_eval_explains_bad_arguments(tmp_path: Path, capsys, extra, message) -> None:
    assert main([*eval_args(tmp_path, "--no-progress"), *extra]) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("error: ") and message in printed.err
    assert printed.out == ""


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


# ----------------------------------------------------------------------- the run folder
def test_a_subset_rerun_keeps_the_reports_of_the_whole_folder(tmp_path: Path, capsys) -> None:
    assert main(eval_args(tmp_path, "--no-progress")) == 0
    run = tmp_path / "run"
    full = json.loads((run / "results.json").read_text())
    markdown = (run / "results.md").read_text()
    capsys.readouterr()
    subset = eval_args(tmp_path, "--no-progress")
    subset[subset.index("--limit") + 1] = "1"
    assert main(subset) == 0
    printed = capsys.readouterr().out
    assert "The reports describe all 6 episodes" in printed and "planned 2" in printed
    assert "| recorded | 50.0 | 50.0 |" in printed
    assert json.loads((run / "results.json").read_text()) == full
    assert (run / "results.md").read_text() == markdown


def test_limit_must_not_be_negative_and_zero_means_all(tmp_path: Path, capsys) -> None:
    args = eval_args(tmp_path, "--no-progress")
    args[args.index("--limit") + 1] = "-1"
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    assert "argument --limit: must be 0 or more, got -1" in capsys.readouterr().err
    args[args.index("--limit") + 1] = "0"
    args[args.index("--samples") + 1] = "1"
    assert main(args) == 1  # the recording covers 3 problems: the others are error records
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["episodes"] == len(load_problems("sample"))


def test_timeouts_are_counted_in_the_reports(tmp_path: Path) -> None:
    problem = SAMPLE[0]
    slow = "import time\ntime.sleep(30)\n"
    turns = [f"```python\n{slow}```\n", f"So \\boxed{{{problem.answer}}}."]
    replay = tmp_path / "slow.jsonl"
    replay.write_text(json.dumps({"problem_id": problem.id, "turns": turns}) + "\n")
    args = [
        "eval",
        "--policy",
        "replay",
        "--replay",
        str(replay),
        "--benchmarks",
        "sample",
        "--limit",
        "1",
        "--timeout",
        "1",
        "--sandbox",
        "local",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(args) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["timeouts"] == 1 and results["settings"]["timeout_s"] == 1.0
    (benchmark,) = results["benchmarks"]
    assert (benchmark["timeouts"], benchmark["timed_out_executions"]) == (1, 1)
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "| errors | timeouts |" in markdown and "| 0 | 1 (1 executions) |" in markdown
    assert "hit the time limit (1 s)" in markdown


def test_ctrl_c_saves_the_finished_episodes_and_says_how_to_resume(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it."""
    fast, slow = SAMPLE[0], SAMPLE[1]
    rows = [
        {"problem_id": fast.id, "turns": [f"So \\boxed{{{fast.answer}}}."]},
        {"problem_id": slow.id, "turns": ["```python\nimport time\ntime.sleep(600)\n```\n"]},
    ]
    replay = tmp_path / "turns.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "or_env.cli", "eval", "--policy", "replay"]
    command += ["--replay", str(replay), "--benchmarks", "sample", "--limit", "2"]
    command += ["--concurrency", "1", "--sandbox", "local", "--out", str(out)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while (
            not (out / "episodes.jsonl").exists()
            or not (out / "episodes.jsonl").read_text().strip()
        ):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the first episode never finished"
            time.sleep(0.2)
        time.sleep(1.0)  # the second episode is now running its 600 s program
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert f"interrupted: 1 episode saved in {out}, rerun the same command to resume" in stderr
    assert "Traceback" not in stderr + stdout
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 1


# ----------------------------------------------------------------------- help
def subcommand(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize(
    "command",
    [("eval",), ("calm", "curate"), ("recipes", "prepare-rl"), ("recipes", "prepare-sft")],
)
def test_help_shows_every_default(command: tuple[str, ...]) -> None:
    parser = subcommand(*command)
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{action.option_strings[0]} has no help text"
        if action.default is None or action.default is False or action.dest == "help":
            continue
        assert f"(default: {action.default})" in text, action.option_strings[0]


def test_eval_help_documents_the_replay_format_and_the_seed_trade_off() -> None:
    text = " ".join(subcommand("eval").format_help().split())
    assert '{"problem_id": "p1", "sample": 0, "turns": ["turn 1 text", "turn 2 text"]}' in text
    assert "--seed none" in text and "CPU Generator does not use offset" in text
    assert "(default: 300.0)" in text  # the evaluation timeout
    curate = " ".join(subcommand("calm", "curate").format_help().split())
    assert "--timeout TIMEOUT seconds per code execution (default: 30.0)" in curate


def test_eval_and_curate_read_their_shared_defaults_from_one_place() -> None:
    from agents.eval import EvalConfig
    from calm.curate import CurateConfig

    for command, config in ((("eval",), EvalConfig), (("calm", "curate"), CurateConfig)):
        parser = subcommand(*command)
        defaults = {a.dest: a.default for a in parser._actions}
        for flag, field in (
            ("limit", "limit"),
            ("samples", "samples"),
            ("max_turns", "max_turns"),
            ("max_executions", "max_executions"),
            ("timeout", "timeout"),
            ("concurrency", "concurrency"),
            ("seed", "base_seed"),
            ("rendering", "rendering"),
            ("tolerance", "tolerance"),
            ("sandbox", "sandbox"),
        ):
            assert defaults[flag] == default_of(config, field), (command, flag)
