"""Data preparation for verl: RL and SFT parquet files written and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from or_env import load_problems
from or_env.grading import INFEASIBLE, parse_ground_truth
from or_env.prompts import DEFAULT_SYSTEM_PROMPT
from recipes.verl import data

pytestmark = pytest.mark.verl

SAMPLE = load_problems("sample")


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


def _episode(problem_id: str) -> dict:
    return {
        "problem_id": problem_id,
        "benchmark": "sample",
        "sample": 0,
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
    pytest.importorskip("calm.export", reason="calm is not in this checkout")
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
