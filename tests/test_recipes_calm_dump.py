"""CALM records in verl's generation dump, and their curation (`recipes.verl.calm_dump`).

No verl here: episodes are played on the real env inside the real `CALMWrapper` with a
scripted judge (fixed verdict texts through the real validation), their records built by
`episode_record` as the `or_env_calm` loop builds them, and written in the shape of verl's
validation dump (`RayPPOTrainer._write_generations`: input, output, gts, score, step, and
every `reward_extra_info` key). The verl path itself is tested in
`test_recipes_calm_loop.py`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from calm import BaseIntervener, CALMWrapper, JudgeContext, Judgement
from calm.taxonomy import DEFAULT_TAXONOMY
from or_env import Problem
from or_env.env import ORModelingEnv
from recipes.verl import calm_dump
from recipes.verl.data import rl_row

REPO = Path(__file__).resolve().parents[1]
PROBLEMS = [
    Problem(id="p12", question="What is 5 + 7? Report it as the objective.", answer=12.0),
    Problem(id="p30", question="What is 5 * 6? Report it as the objective.", answer=30.0),
]
HINT = "Re-read the statement: which operation does it ask for?"


def flaw(turn: int) -> str:
    return json.dumps(
        {"flawless": False, "turn": turn, "flaw_type": "wrong_formulation", "hint": HINT}
    )


class ScriptedJudge(BaseIntervener):
    """Replies from a list per problem id, validated as a real judge's would be."""

    name = "scripted"

    def __init__(self, replies: dict[str, list[str]]) -> None:
        super().__init__()
        self.replies = {k: list(v) for k, v in replies.items()}

    async def ajudge(self, context: JudgeContext) -> Judgement:
        reply = self.replies[str(context.problem_id)].pop(0)
        verdict = self.validate(reply, context)
        return Judgement("flawless" if verdict.flawless else "flaw", verdict, 1, replies=[reply])


async def play(problem: Problem, judge: BaseIntervener, turns: list[str]) -> dict[str, Any]:
    """One episode as the or_env_calm loop plays it; returns its record."""
    env = ORModelingEnv([problem], sandbox="local")
    wrapped = CALMWrapper(env, judge, max_interventions=1)
    await wrapped.areset(options={"index": 0})
    info: dict[str, Any] = {}
    reward, done = 0.0, False
    for text in turns:
        _, reward, terminated, truncated, info = await wrapped.astep(text)
        done = terminated or truncated
        if done:
            break
    return calm_dump.episode_record(
        env,
        calm=wrapped.summary(),
        info=info,
        done=done,
        reward=reward,
        termination_reason=info.get("termination_reason"),
        generated_turns=len(turns),
        tokens={"prompt": 10, "response": 20, "generated": 15, "hints": 5},
        policy={"policy": "verl", "model": "tiny"},
        intervener=judge.describe(),
        taxonomy=DEFAULT_TAXONOMY,
        request_id="r",
    )


def dump_line(record: dict[str, Any]) -> dict[str, Any]:
    """A line as verl's `_write_generations` writes it for this record's sample."""
    fields = calm_dump.dump_fields(record)
    return {
        "input": "prompt text",
        "output": "response text",
        "gts": str(record["ground_truth"]),
        "score": record["reward"],
        "step": 0,
        "reward": record["reward"],
        "correct": record["correct"],
        **fields,
    }


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    """p12 twice (corrected after a hint; wrong twice), p30 once (right at once)."""
    judge = ScriptedJudge(
        {
            "p12": [flaw(1), '{"flawless": true}', flaw(1), '{"flawless": true}'],
            "p30": ['{"flawless": true}'],
        }
    )

    async def all_episodes() -> list[dict[str, Any]]:
        return [
            await play(PROBLEMS[0], judge, ["It is \\boxed{35}.", "It is \\boxed{12}."]),
            await play(PROBLEMS[0], judge, ["It is \\boxed{35}.", "It is \\boxed{2}."]),
            await play(PROBLEMS[1], judge, ["It is \\boxed{30}."]),
        ]

    return asyncio.run(all_episodes())


def write_dump(folder: Path, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0.jsonl"
    path.write_text("".join(json.dumps(dump_line(r)) + "\n" for r in records))
    return path


def test_dump_fields_carry_the_record(records) -> None:
    fields = calm_dump.dump_fields(records[0])
    assert json.loads(fields["calm_record"]) == json.loads(json.dumps(records[0], default=str))
    assert (fields["calm_final"], fields["calm_interventions"], fields["calm_kept"]) == (
        "flawless",
        1,
        True,
    )
    hints = [m for m in records[0]["messages"] if m["source"] == "intervener"]
    assert [m["content"].strip() for m in hints] == [HINT]


def test_curate_dump_keeps_correct_flawless_trajectories(records, tmp_path) -> None:
    dump = write_dump(tmp_path / "dump", records)
    assert calm_dump.is_calm_dump(dump) and calm_dump.is_calm_dump(dump.parent)
    read = calm_dump.read_dump(dump.parent)
    assert [(r["problem_id"], r["sample"]) for r in read] == [("p12", 0), ("p12", 1), ("p30", 0)]

    out = tmp_path / "sft.parquet"
    curation = calm_dump.curate_dump(dump.parent, out, report_dir=tmp_path / "report")
    assert [(r["problem_id"], r["sample"]) for r in curation.kept] == [("p12", 0), ("p30", 0)]
    assert curation.dropped == {"incorrect": 1}
    rows = pq.read_table(out).to_pylist()
    assert [(r["problem_id"], r["interventions"]) for r in rows] == [("p12", 1), ("p30", 0)]
    # The split layout: the hint is a user message of its own, out of the loss.
    roles = [(m["role"], m["content"].strip()) for m in rows[0]["messages"]]
    assert ("user", HINT) in roles and roles[-1] == ("assistant", "It is \\boxed{12}.")
    totals = curation.summary["totals"]
    assert (totals["episodes"], totals["kept"], totals["corrected"]) == (3, 2, 1)
    assert curation.summary["interventions_histogram"] == {"0": 1, "1": 2}
    assert curation.summary["flaw_types"]["custom"]["wrong_formulation"] == 2
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["settings"]["max_interventions"] == 1
    assert report["settings"]["samples"] == 2
    golden = (tmp_path / "report" / "golden.jsonl").read_text().splitlines()
    assert len(golden) == 2
    episodes = (tmp_path / "report" / "episodes.jsonl").read_text().splitlines()
    assert len(episodes) == 3


def test_prepare_sft_reads_a_dump_folder(records, tmp_path) -> None:
    dump = write_dump(tmp_path / "run" / "dump", records)
    out = tmp_path / "sft.parquet"
    command = [sys.executable, "-m", "or_env.cli", "recipes", "prepare-sft", str(dump.parent)]
    result = subprocess.run(
        [*command, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "corrected 1, kept 2 (2 problems)" in result.stdout
    assert "dropped 1 of 3 episodes: incorrect 1" in result.stdout
    assert len(pq.read_table(out)) == 2
    # The report goes next to the dump by default.
    assert (dump.parent / "report.md").exists()


def test_nothing_kept_fails_after_the_report(records, tmp_path) -> None:
    dump = write_dump(tmp_path / "dump", [records[1]])
    with pytest.raises(ValueError, match="no trajectory of 1 was kept"):
        calm_dump.curate_dump(dump, tmp_path / "sft.parquet")
    assert (tmp_path / "dump" / "report.md").exists()
    assert not (tmp_path / "sft.parquet").exists()
    curation = calm_dump.curate_dump(dump, tmp_path / "sft.parquet", include_incorrect=True)
    assert len(curation.rows) == 1 and not curation.kept


def test_a_dump_without_calm_records_is_refused(tmp_path) -> None:
    plain = tmp_path / "0.jsonl"
    plain.write_text(json.dumps({"input": "x", "output": "y", "score": 0.0}) + "\n")
    assert not calm_dump.is_calm_dump(plain)
    with pytest.raises(ValueError, match=r"run_calm_curate\.sh"):
        calm_dump.read_dump(plain)


def test_prepare_run_checks_the_problems_and_writes_the_loop_config(tmp_path) -> None:
    base = REPO / "recipes" / "verl" / "config" / "agent_loop.yaml"
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.Table.from_pylist([rl_row(PROBLEMS[0], 0)]), plain)
    with pytest.raises(ValueError, match="--agent-name or_env_calm"):
        calm_dump.check_problems(plain)
    calm_rows = tmp_path / "calm.parquet"
    rows = [rl_row(p, i, agent_name=calm_dump.CALM_AGENT_NAME) for i, p in enumerate(PROBLEMS)]
    pq.write_table(pa.Table.from_pylist(rows), calm_rows)
    out = tmp_path / "run" / "agent_loop.yaml"
    argv = ["prepare-run", "--problems", str(calm_rows), "--base", str(base), "--out", str(out)]
    argv += ["--intervener-url", "http://judge:8001/v1", "--intervener-model", "judge"]
    argv += ["--concurrency", "16", "--max-interventions", "3", "--trigger", "execution"]
    assert calm_dump.main(argv) == 0
    entries = {e["name"]: e for e in yaml.safe_load(out.read_text())}
    original = {e["name"]: e for e in yaml.safe_load(base.read_text())}
    assert entries["or_env"] == original["or_env"]
    calm = entries[calm_dump.CALM_AGENT_NAME]
    assert calm["intervener"]["base_url"] == "http://judge:8001/v1"
    assert calm["intervener"]["model"] == "judge"
    assert calm["intervener"]["max_connections"] == 16
    assert (calm["max_interventions"], calm["trigger"]) == (3, "execution")
    assert calm["_target_"] == "recipes.verl.calm_agent_loop.ORModelingCALMAgentLoop"
    assert calm_dump.main([*argv[:2], str(plain), *argv[3:]]) == 2
