"""Data preparation for verl: RL and SFT parquet files written and read back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from or_env import load_problems
from or_env.grading import INFEASIBLE, parse_ground_truth
from or_env.prompts import DEFAULT_SYSTEM_PROMPT
from recipes.verl import data

pytestmark = pytest.mark.verl

SAMPLE = load_problems("sample")
DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")


def test_rl_parquet_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "rl.parquet"
    count = data.write_rl_parquet(SAMPLE, out, split="val", env_kwargs={"max_turns": 4})
    rows = pq.read_table(out).to_pylist()
    assert count == len(rows) == len(SAMPLE)
    for index, (row, problem) in enumerate(zip(rows, SAMPLE, strict=True)):
        assert row["agent_name"] == "or_env"
        assert row["data_source"] == f"or_env/{problem.benchmark}"
        assert row["ability"] == "operations_research"
        assert row["prompt"] == [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": problem.question},
        ]
        assert row["reward_model"]["style"] == "rule"
        assert parse_ground_truth(row["reward_model"]["ground_truth"]) == problem.answer
        extra = row["extra_info"]
        assert (extra["index"], extra["split"], extra["problem_id"]) == (index, "val", problem.id)
        assert extra["question"] == problem.question and extra["benchmark"] == problem.benchmark
        assert json.loads(extra["env_kwargs"]) == {"max_turns": 4}
        assert extra["tolerance"] == "default"
    # The infeasible sample keeps its status through the string column.
    assert INFEASIBLE in {parse_ground_truth(r["reward_model"]["ground_truth"]) for r in rows}


def test_rl_row_rejects_settings_a_row_may_not_carry() -> None:
    with pytest.raises(ValueError, match="sandbox"):
        data.rl_row(SAMPLE[0], 0, env_kwargs={"sandbox": "docker"})


def test_rl_cli_from_a_problem_file(tmp_path: Path) -> None:
    problems = tmp_path / "mine.jsonl"
    problems.write_text(
        json.dumps({"id": "a", "question": "Maximise x with x <= 3.", "answer": 3}) + "\n"
    )
    out = tmp_path / "mine.parquet"
    assert (
        data.main(["rl", "--problems", str(problems), "--out", str(out), "--tolerance", "orlm"])
        == 0
    )
    (row,) = pq.read_table(out).to_pylist()
    assert row["extra_info"]["problem_id"] == "a"
    assert row["extra_info"]["tolerance"] == "orlm"
    assert float(row["reward_model"]["ground_truth"]) == 3.0


def _episode(problem_id: str, **fields: object) -> dict:
    return {
        "problem_id": problem_id,
        "benchmark": "sample",
        "sample": 0,
        "status": "ok",
        "correct": True,
        **fields,
        "messages": [
            {"role": "system", "content": "sys", "source": "env", "turn": 0},
            {"role": "user", "content": "q", "source": "env", "turn": 0},
            {
                "role": "assistant",
                "content": "```python\nprint(1)\n```\n",
                "source": "policy",
                "turn": 1,
            },
            {"role": "assistant", "content": "```output\n1\n```\n", "source": "env", "turn": 1},
            {"role": "assistant", "content": "Hint: check.", "source": "intervener", "turn": 1},
            {"role": "assistant", "content": "\\boxed{1}", "source": "policy", "turn": 2},
        ],
    }


def test_sft_from_episode_records_keeps_outputs_and_hints_out_of_assistant_turns(
    tmp_path: Path,
) -> None:
    source = tmp_path / "episodes.jsonl"
    source.write_text("".join(json.dumps(_episode(i)) + "\n" for i in ("p1", "p2")))
    out = tmp_path / "sft.parquet"
    assert data.main(["sft", str(source), "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["problem_id"] for r in rows] == ["p1", "p2"]
    roles = [m["role"] for m in rows[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user", "user", "assistant"]
    assert rows[0]["messages"][-1]["content"] == "\\boxed{1}"


def test_sft_from_golden_jsonl_and_parquet(tmp_path: Path) -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "\\boxed{2}"},
    ]
    golden = tmp_path / "golden.jsonl"
    golden.write_text(
        json.dumps({"problem_id": "x", "benchmark": "b", "sft_messages": messages}) + "\n"
    )
    first = tmp_path / "a.parquet"
    assert data.convert_sft(golden, first) == 1
    second = tmp_path / "b.parquet"  # a parquet with `messages` passes through unchanged
    assert data.convert_sft(first, second) == 1
    (row,) = pq.read_table(second).to_pylist()
    assert row == {"messages": messages, "data_source": "or_env/b", "problem_id": "x"}


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "user", "content": "q"}], "no assistant"),
        ([{"role": "narrator", "content": "q"}, {"role": "assistant", "content": "a"}], "roles"),
    ],
)
def test_sft_rejects_untrainable_conversations(tmp_path: Path, messages, error) -> None:
    with pytest.raises(ValueError, match=error):
        data.write_sft_parquet([{"messages": messages}], tmp_path / "x.parquet")


def test_sft_rejects_a_jsonl_without_messages(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps({"problem_id": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        data.convert_sft(source, tmp_path / "x.parquet")


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# (record fields, dropped by default, dropped with --include-incorrect)
EPISODES = {
    "correct": ({}, None, None),
    "incorrect": ({"correct": False}, "incorrect", None),
    "failed to run": ({"status": "error", "correct": False}, "failed to run", "failed to run"),
    "ungraded": ({"correct": None}, "incorrect", None),
    "calm kept": ({"calm": {"final": "flawless"}}, None, None),
    "calm not kept": ({"calm": {"final": "no_verdict"}}, "not kept by CALM", None),
}


@pytest.mark.parametrize("name", list(EPISODES))
@pytest.mark.parametrize("include_incorrect", [False, True])
def test_sft_keeps_only_trajectories_worth_imitating(
    tmp_path: Path, name: str, include_incorrect: bool
) -> None:
    fields, default, included = EPISODES[name]
    source = _write_jsonl(tmp_path / "episodes.jsonl", [_episode("p1", **fields)])
    selection = data.select_sft_rows(source, include_incorrect=include_incorrect)
    reason = included if include_incorrect else default
    assert selection.dropped == ({reason: 1} if reason else {})
    assert len(selection.rows) == (0 if reason else 1)


def test_sft_cli_says_what_it_dropped_and_why(tmp_path: Path, capsys) -> None:
    rows = [_episode(f"ok{i}") for i in range(3)]
    rows += [_episode(f"wrong{i}", correct=False) for i in range(2)]
    rows.append(_episode("crashed", status="error", correct=False))
    source = _write_jsonl(tmp_path / "episodes.jsonl", rows)
    out = tmp_path / "sft.parquet"
    assert data.main(["sft", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 rows" in printed
    assert "dropped 3 of 6 episodes: incorrect 2, failed to run 1" in printed
    assert "--include-incorrect" in printed
    assert [r["problem_id"] for r in pq.read_table(out).to_pylist()] == ["ok0", "ok1", "ok2"]
    assert data.main(["sft", str(source), "--out", str(out), "--include-incorrect"]) == 0
    assert len(pq.read_table(out).to_pylist()) == 5
    assert "dropped 1 of 6 episodes: failed to run 1" in capsys.readouterr().out


def test_sft_from_episodes_without_a_correct_one_is_a_clear_error(tmp_path: Path, capsys):
    source = _write_jsonl(tmp_path / "episodes.jsonl", [_episode("p", correct=False)])
    assert data.main(["sft", str(source), "--out", str(tmp_path / "x.parquet")]) == 2
    assert capsys.readouterr().err.startswith("error: no SFT rows to write")


@pytest.mark.parametrize(
    ("benchmark", "split", "warned"),
    [
        ("nl4opt", "train", True),
        ("industryor@orlm-hf", "train", True),
        ("mamo-easylp", "training", True),
        ("nl4opt", "val", False),
        ("industryor", "test", False),
        ("sirl-rl-sample", "train", False),
        ("sample", "train", False),
    ],
)
def test_training_on_an_evaluation_benchmark_is_warned(benchmark, split, warned) -> None:
    warning = data.contamination_warning(benchmark, split)
    assert (warning is not None) is warned
    if warned:
        assert "contaminates every later" in warning


def test_rl_cli_defaults_to_training_data_and_warns_on_a_benchmark(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rl.parquet"
    # Without benchmark data the default names the training set in its error.
    assert data.main(["rl", "--out", str(out), "--data-dir", str(tmp_path)]) == 2
    assert "sirl_rl_sample" in capsys.readouterr().err
    assert data.main(["rl", "--benchmark", "sample", "--out", str(out), "--limit", "2"]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and "wrote 2 rows (sample, split train)" in printed.out
    args = ["rl", "--benchmark", "sample", "--problems", "x.jsonl", "--out", str(out)]
    assert data.main(args) == 2
    assert capsys.readouterr().err == (
        "error: give one of --benchmark NAME or --problems FILE, not both\n"
    )


@pytest.mark.benchmark_data
@pytest.mark.skipif(not DATA_DIR or not Path(DATA_DIR).is_dir(), reason="OR_ENV_DATA_DIR unset")
def test_rl_cli_default_is_the_sirl_training_sample(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rl.parquet"
    assert data.main(["rl", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and "wrote 84 rows (sirl-rl-sample, split train)" in printed.out
    assert {r["data_source"] for r in pq.read_table(out).to_pylist()} == {"or_env/sirl-rl-sample"}
    assert data.main(["rl", "--benchmark", "nl4opt", "--out", str(out), "--limit", "1"]) == 0
    assert capsys.readouterr().err.startswith("warning: nl4opt is an evaluation benchmark")


def test_grpo_launcher_logs_to_the_console_unless_asked() -> None:
    script = (Path(data.__file__).parent / "run_grpo.sh").read_text()
    assert 'LOGGER="${LOGGER:-[console]}"' in script
    assert 'trainer.logger="$LOGGER"' in script and "wandb" not in script.split("set -e")[1]
