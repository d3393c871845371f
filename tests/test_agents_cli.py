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

from agents.eval import EvalCommandConfig
from agents.run_folder import default_of
from calm.curate import CurateCommandConfig
from or_env import load_problems
from or_env.cli import build_parser, main
from or_env.run_config import MISSING, schema_default

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
    files = ("results.json", "results.md", "results.png", "episodes.jsonl", "run_config.json")
    for name in (*files, "config.yaml"):
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
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "other settings (env.tolerance: 'default' -> 'strict')" in err


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


# ----------------------------------------------------------------------- run configs
def eval_config(tmp_path: Path, **sections: str) -> Path:
    """A run config for the replay of `recording`: 3 sample problems, 2 samples each."""
    replay = recording(tmp_path / "turns.jsonl")
    text = f"""
policy:
  kind: replay
  replay: {replay}
  label: recorded
problems:
  benchmarks: [sample]
  limit: 3
  samples: 2
env:
  max_turns: 8
sandbox:
  kind: local
run:
  out: {tmp_path / "run"}
  progress: false
"""
    path = tmp_path / "eval.yaml"
    path.write_text(text + "".join(f"{k}:\n  {v}\n" for k, v in sections.items()))
    return path


def saved_config(tmp_path: Path) -> dict:
    import yaml

    return yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())


def test_eval_run_config_round_trip_and_resume(tmp_path: Path, capsys) -> None:
    config = str(eval_config(tmp_path))
    assert main(["eval", "--config", config, "env.tolerance=default", "--timeout", "60"]) == 0
    saved = saved_config(tmp_path)
    assert saved["env"]["max_turns"] == 8 and saved["env"]["timeout"] == 60.0
    assert saved["policy"]["label"] == "recorded" and saved["problems"]["benchmarks"] == ["sample"]
    episodes = tmp_path / "run" / "episodes.jsonl"
    before = episodes.read_text()
    # The same config resumes: overrides and options in any order, keys allowed to differ.
    same = ["eval", "run.concurrency=2", "--timeout", "60", "--config", config]
    assert main([*same, "env.tolerance=default"]) == 0
    assert episodes.read_text() == before
    capsys.readouterr()
    # A different one is refused, naming each key with its old and new value.
    assert main(["eval", "--config", config, "env.max_turns=6", "--tolerance", "strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "env.max_turns: 8 -> 6" in err and "env.timeout: 60.0 -> 300.0" in err
    assert "env.tolerance: 'default' -> 'strict'" in err
    assert episodes.read_text() == before


def test_eval_flags_given_win_over_the_file_and_overrides_over_flags(tmp_path: Path) -> None:
    config = str(eval_config(tmp_path))
    assert main(["eval", "--config", config, "--max-turns", "9", "--samples", "1"]) == 0
    saved = saved_config(tmp_path)
    assert saved["env"]["max_turns"] == 9  # the flag, over the file's 8
    assert saved["problems"]["limit"] == 3  # the file, over the default (no --limit given)
    assert saved["env"]["timeout"] == 300.0  # the default: neither file nor flag
    out = tmp_path / "other"
    args = ["eval", "--config", config, "--max-turns", "9", f"run.out={out}", "env.max_turns=10"]
    assert main([*args, "--samples", "1"]) == 0
    assert "max_turns: 10" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["env.max_turn=3"], ["unknown key 'env.max_turn'", "max_turns"]),
        (["env.max_turns=many"], ["env.max_turns: expected int, got 'many'"]),
        (["policy.kind=oracle"], ["policy.kind: 'oracle' is not one of openai, replay"]),
        (["policy=3"], ["policy: expected a section (keys: kind, model,"]),
        (["problems.limit=-1"], ["problems.limit: must be at least 0, got -1"]),
    ],
)
def test_eval_bad_run_configs_are_one_error_line(tmp_path: Path, capsys, extra, words) -> None:
    assert main(["eval", "--config", str(eval_config(tmp_path)), *extra]) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("error: ") and printed.err.count("\n") == 1, printed.err
    for word in words:
        assert word in printed.err
    assert "Traceback" not in printed.err and not (tmp_path / "run").exists()


def test_eval_without_benchmarks_names_the_flag_and_the_key(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--policy", "replay", "--out", str(tmp_path / "run")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --benchmarks (run config keys " in err
    assert "problems.benchmarks: set them with --config or KEY=VALUE)" in err


def test_a_folder_from_before_run_configs_still_resumes_or_is_refused(
    tmp_path: Path, capsys
) -> None:
    """A folder with run_config.json but no config.yaml: the old settings decide."""
    assert main(eval_args(tmp_path, "--no-progress")) == 0
    run = tmp_path / "run"
    (run / "config.yaml").unlink()
    before = (run / "episodes.jsonl").read_text()
    capsys.readouterr()
    assert main(eval_args(tmp_path, "--no-progress", "--tolerance", "strict")) == 2
    assert "other settings (tolerance: 'default' -> 'strict')" in capsys.readouterr().err
    assert not (run / "config.yaml").exists()  # a refused run writes nothing
    assert main(eval_args(tmp_path, "--no-progress")) == 0
    assert (run / "episodes.jsonl").read_text() == before and (run / "config.yaml").is_file()


def test_overrides_leave_the_analysis_commands_alone(tmp_path: Path, capsys) -> None:
    assert main(eval_args(tmp_path, "--no-progress")) == 0
    capsys.readouterr()
    assert main(["eval", "honesty", str(tmp_path / "run")]) == 0
    assert "honesty" in capsys.readouterr().out.lower()
    with pytest.raises(SystemExit):
        main(["eval", "not-an-override"])
    assert "expected KEY=VALUE overrides or one of: compare" in capsys.readouterr().err


# ----------------------------------------------------------------------- help
def subcommand(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def shown_default(parser: argparse.ArgumentParser, action: argparse.Action) -> object:
    """The default an option's help must show: a run config flag's is its key's."""
    if action.default != argparse.SUPPRESS or "." not in action.dest:
        return action.default
    schema = {"eval": EvalCommandConfig, "curate": CurateCommandConfig}[parser.prog.split()[-1]]
    default = schema_default(schema, action.dest)
    if default in (MISSING, []) or isinstance(action, argparse._StoreConstAction):
        return None
    return default


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
        default = shown_default(parser, action)
        if default is None or default is False or action.dest == "help":
            continue
        assert f"(default: {default})" in text, action.option_strings[0]


def test_eval_help_documents_the_replay_format_and_the_seed_trade_off() -> None:
    text = " ".join(subcommand("eval").format_help().split())
    assert '{"problem_id": "p1", "sample": 0, "turns": ["turn 1 text", "turn 2 text"]}' in text
    assert "--seed none" in text and "CPU Generator does not use offset" in text
    assert "(default: 300.0)" in text  # the evaluation timeout
    curate = " ".join(subcommand("calm", "curate").format_help().split())
    assert "--timeout ENV.TIMEOUT seconds per code execution (default: 30.0)" in curate


def test_eval_and_curate_read_their_shared_defaults_from_one_place() -> None:
    """The run configs' defaults are the Python API's, and the flags set those keys."""
    from agents.eval import EvalConfig
    from calm.curate import CurateConfig

    for command, schema, config in (
        (("eval",), EvalCommandConfig, EvalConfig),
        (("calm", "curate"), CurateCommandConfig, CurateConfig),
    ):
        parser = subcommand(*command)
        dests = {a.option_strings[0]: a.dest for a in parser._actions if a.option_strings}
        for flag, key, field in (
            ("--limit", "problems.limit", "limit"),
            ("--samples", "problems.samples", "samples"),
            ("--max-turns", "env.max_turns", "max_turns"),
            ("--max-executions", "env.max_executions", "max_executions"),
            ("--timeout", "env.timeout", "timeout"),
            ("--concurrency", "run.concurrency", "concurrency"),
            ("--seed", "run.seed", "base_seed"),
            ("--rendering", "env.rendering", "rendering"),
            ("--tolerance", "env.tolerance", "tolerance"),
            ("--sandbox", "sandbox.kind", "sandbox"),
        ):
            assert dests[flag] == key, (command, flag)
            assert schema_default(schema, key) == default_of(config, field), (command, flag)
