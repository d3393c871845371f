"""The `or_env_calm` verl agent loop: CALM's rewind and hint, token by token, inside verl.

verl's real `AgentLoopWorker` plays RL-parquet rows with the `or_env_calm` loop (the
recipe's `agent_loop.yaml` entry, with the local sandbox) in the ML venv, through
`support/verl_calm_rollout.py`, which starts the engine once for the whole module:

- "vllm": the tiny random model served by vLLM's `AsyncLLM` (CPU build), greedy, each turn
  capped at a few tokens so that episodes end by `max_turns` and get judged. The judge is
  the scripted intervener (`support/scripted_intervener.py`, an OpenAI-compatible server on
  127.0.0.1 that replays scripted verdicts): it flags turn 1 of two rows once; other rows
  have a judge that is down, one that answers junk content, one that answers a body that
  is not JSON and one that stalls past the loop's judge_timeout.
- "scripted": the scripted token server (for what a random model cannot write: code that
  runs and a correct answer) with three rows whose judge flags turn 2, or turn 1 twice; the
  batch is dumped as verl's validation dumps it, then curated by `or-env recipes
  prepare-sft` and read back by verl's own `MultiTurnSFTDataset`.

Skipped without the ML venv (`.ci/vllm_setup.sh`), failing instead when OR_ENV_REQUIRE_VLLM=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.ml_venv import REPO, require_venv, subprocess_env, tiny_model_dir
from support.scripted_intervener import FLAWLESS, flaw
from support.vllm_server import run_leaving_nothing

from or_env import Problem, load_problems
from recipes.verl.data import rl_row

pytestmark = [pytest.mark.verl, pytest.mark.slow]

SUPPORT = Path(__file__).with_name("support")
SCRIPT = SUPPORT / "verl_calm_rollout.py"
PROMPT_LENGTH = 1024
RESPONSE_LENGTH = 512
TURN_TOKENS = 16
SAMPLE = sorted(load_problems("sample"), key=lambda p: p.id)
HINT = "Check that every constraint of the statement appears in the model."
HINT_2 = "Re-read the objective: is it a maximisation or a minimisation?"
# Scripted rows: solved after a hint, wrong twice, right twice but flagged twice.
CORRECTED, WRONG, FLAGGED = [p for p in SAMPLE if p.meta.get("reference_code")][:3]
VLLM_ROWS = {"calm_flag": SAMPLE[3:5], "calm_down": [SAMPLE[5]], "calm_junk": [SAMPLE[6]]}
VLLM_ROWS.update(calm_garbage=[SAMPLE[7]], calm_stall=[SAMPLE[8]])


def key(problem: Problem) -> str:
    """What the scripted judge looks for in a request to tell the problems apart."""
    return problem.question[:60]


def verl_venv() -> Path:
    venv = require_venv()
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import verl.experimental.agent_loop, vllm"],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        reason = f"verl or vllm does not import in {venv}: run `bash .ci/vllm_setup.sh`"
        if os.environ.get("OR_ENV_REQUIRE_VLLM") == "1":
            pytest.fail(f"OR_ENV_REQUIRE_VLLM=1 but {reason}\n{probe.stderr[-2000:]}")
        pytest.skip(reason)
    return venv


def write_rows(path: Path, rows: list[tuple[Problem, str]], env_kwargs: dict) -> Path:
    """An RL parquet whose rows name their agent loop (a test loop made from or_env_calm)."""
    table = [
        rl_row(p, i, env_kwargs=env_kwargs, agent_name=name) for i, (p, name) in enumerate(rows)
    ]
    pq.write_table(pa.Table.from_pylist(table), path)
    return path


@pytest.fixture(scope="module")
def ml_venv() -> Path:
    return verl_venv()


@pytest.fixture(scope="module")
def rollout(ml_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both batches, played once for the module (one vLLM engine start)."""
    work = tmp_path_factory.mktemp("calm_loop")
    model = tiny_model_dir(ml_venv)
    vllm_rows = [(p, name) for name, problems in VLLM_ROWS.items() for p in problems]
    code = CORRECTED.meta["reference_code"]
    request = {
        "model": str(model),
        "prompt_length": PROMPT_LENGTH,
        "response_length": RESPONSE_LENGTH,
        "turn_tokens": TURN_TOKENS,
        "plans": {
            "flag1": {key(p): [flaw(1, HINT), FLAWLESS] for p in VLLM_ROWS["calm_flag"]},
            "junk": {"*": [{"content": "Looks fine to me, I suppose."}]},
            "garbage": {"*": [{"raw": "<html>proxy error</html>"}]},
            "stall": {"*": [{**FLAWLESS, "delay": 60}]},
            "scripted": {
                key(CORRECTED): [flaw(2, HINT), FLAWLESS],
                key(WRONG): [flaw(1, HINT_2), FLAWLESS],
                key(FLAGGED): [flaw(1, HINT)],
            },
        },
        "batches": [
            {
                "name": "vllm",
                "server": "vllm",
                "parquet": str(write_rows(work / "vllm.parquet", vllm_rows, {"max_turns": 2})),
                "loops": [
                    {"name": "calm_flag", "plan": "flag1"},
                    # Fast retries: the test checks that a dead judge costs a verdict only.
                    {
                        "name": "calm_down",
                        "down": True,
                        "intervener": {"max_retries": 1, "retry_base_s": 0.05},
                    },
                    {"name": "calm_junk", "plan": "junk", "intervener": {"max_attempts": 2}},
                    {
                        "name": "calm_garbage",
                        "plan": "garbage",
                        "intervener": {"max_retries": 1, "retry_base_s": 0.05},
                    },
                    {"name": "calm_stall", "plan": "stall", "intervener": {"judge_timeout": 2}},
                ],
                # Greedy: the same tokens every run (verl sends no seed).
                "overrides": ["actor_rollout_ref.rollout.temperature=0"],
            },
            {
                "name": "scripted",
                "server": "scripted",
                "parquet": str(
                    write_rows(
                        work / "scripted.parquet",
                        [(p, "calm_scripted") for p in (CORRECTED, WRONG, FLAGGED)],
                        {"max_turns": 4},
                    )
                ),
                "loops": [{"name": "calm_scripted", "plan": "scripted", "max_interventions": 1}],
                "scripts": {
                    CORRECTED.question: [
                        f"Let me model it.\n```python\n{code}\n```\n```output",
                        "So the optimum is \\boxed{-12345}.",
                        f"The optimal objective value is \\boxed{{{CORRECTED.answer}}}.",
                    ],
                    WRONG.question: ["I guess \\boxed{-12345}.", "Then \\boxed{-54321}."],
                    FLAGGED.question: [
                        f"It is \\boxed{{{FLAGGED.answer}}}.",
                        f"Still \\boxed{{{FLAGGED.answer}}}.",
                    ],
                },
                "dump_dir": str(work / "dump"),
            },
        ],
        "out": str(work / "result.json"),
    }
    env = subprocess_env(ml_venv)
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    argv = [str(ml_venv / "bin" / "python"), str(SCRIPT), json.dumps(request)]
    run_leaving_nothing(argv, env, 900, "the CALM rollout")
    return {**json.loads(Path(request["out"]).read_text()), "work": work, "venv": ml_venv}


def unpadded(row: list[int], attention: list[int]) -> list[int]:
    return [t for t, a in zip(row, attention, strict=True) if a]


def row_view(batch: dict[str, Any], i: int) -> dict[str, Any]:
    """Row i of a batch without padding: prompt, response, mask, log-probs, its calls."""
    tensors = batch["tensors"]
    attention = tensors["attention_mask"][i]
    prompt = unpadded(tensors["prompts"][i], attention[:PROMPT_LENGTH])
    response_attention = attention[PROMPT_LENGTH:]
    assert len(tensors["responses"][i]) == RESPONSE_LENGTH
    assert len(tensors["prompts"][i]) == PROMPT_LENGTH
    # Padding is masked out of the loss too.
    assert sum(tensors["response_mask"][i]) == sum(
        unpadded(tensors["response_mask"][i], response_attention)
    )
    calls = [c for c in batch["calls"] if c["prompt_ids"][: len(prompt)] == prompt]
    assert calls and len({c["request_id"] for c in calls}) == 1  # sticky routing
    assert prompt == batch["chat_prompts"][i] == calls[0]["prompt_ids"]
    return {
        "prompt": prompt,
        "response": unpadded(tensors["responses"][i], response_attention),
        "mask": unpadded(tensors["response_mask"][i], response_attention),
        "logprobs": unpadded(tensors["rollout_log_probs"][i], response_attention),
        "calls": calls,
        "calm": batch["non_tensor"]["calm"][i],
        "record": json.loads(batch["non_tensor"]["calm_record"][i]),
    }


def replay(row: dict[str, Any], start: list[int], calls: list[dict[str, Any]]) -> tuple:
    """The response that `calls` build on top of `start` (ids, mask, log-probs), checking
    that every call saw exactly the prompt plus everything before it; the tokens between two
    calls are the env's (mask 0, log-prob 0.0). The scripted server's log-probs are -0.5."""
    prompt = row["prompt"]
    ids, mask, logprobs = list(start), [0] * len(start), [0.0] * len(start)
    for n, call in enumerate(calls):
        assert call["prompt_ids"] == prompt + ids, f"call {n} did not see the context so far"
        ids += call["token_ids"]
        mask += [1] * len(call["token_ids"])
        logprobs += call.get("log_probs") or [-0.5] * len(call["token_ids"])
        if n + 1 < len(calls):
            observation = calls[n + 1]["prompt_ids"][len(prompt) + len(ids) :]
            ids += observation
            mask += [0] * len(observation)
            logprobs += [0.0] * len(observation)
    return ids, mask, logprobs


def test_flag_on_turn_one_rewinds_the_tokens(rollout) -> None:
    """The judge flags turn 1: its tokens are gone, the hint sits where it began (mask 0),
    and generation went on from prompt + hint, as if the hint had been there from the start."""
    batch = rollout["batches"]["vllm"]
    names = batch["non_tensor"]["agent_name"]
    flagged = [i for i, name in enumerate(names) if name == "calm_flag"]
    assert len(flagged) == 2
    for i in flagged:
        row = row_view(batch, i)
        calm = row["calm"]
        (intervention,) = calm["interventions"]
        assert (intervention["flawed_turn"], intervention["rewound_to"]) == (1, 0)
        assert intervention["hint"] == HINT and calm["final"] == "flawless"
        assert [j["status"] for j in calm["judgements"]] == ["flaw", "flawless"]
        hint = batch["hint_ids"][intervention["text"]]
        assert hint and intervention["text"].strip() == HINT
        # The request after the rewind: the prompt and the hint's tokens, nothing else.
        calls = row["calls"]
        (after,) = [n for n, c in enumerate(calls) if c["prompt_ids"] == row["prompt"] + hint]
        dropped = calls[:after]
        assert len(dropped) == len([m for m in intervention["dropped"] if m["source"] == "policy"])
        assert dropped and replay(row, [], dropped)  # the first episode's calls, consistent
        # The response is the hint, then only what was generated after it: no token of
        # the dropped turns remains.
        ids, mask, logprobs = replay(row, hint, calls[after:])
        assert row["response"] == ids[:RESPONSE_LENGTH]
        assert row["mask"] == mask[:RESPONSE_LENGTH]
        assert row["response"][: len(hint)] == hint and row["mask"][: len(hint)] == [0] * len(hint)
        # Log-probs: the engine's for generated tokens, 0.0 for the hint and the env's text.
        assert row["logprobs"] == pytest.approx(logprobs[:RESPONSE_LENGTH], abs=1e-5)
        # The record in extra_fields and in the dump field agree with the tokens.
        record = row["record"]
        assert record["calm"] == calm and record["status"] == "ok"
        hints = [m for m in record["messages"] if m["source"] == "intervener"]
        assert [m["content"] for m in hints] == [intervention["text"]]
        assert record["tokens"]["hints"] == len(hint)
        assert record["tokens"]["generated"] == sum(row["mask"])
        assert record["generated_turns"] == len(calls) > record["turns"]
        assert batch["non_tensor"]["calm_interventions"][i] == 1
        assert batch["non_tensor"]["calm_kept"][i] is False  # a random model is never right
    asked = [r for r in rollout["judge_requests"] if r["plan"] == "flag1"]
    assert sorted(r["index"] for r in asked) == [0, 0, 1, 1]  # each row: flagged, then flawless


def test_a_judge_down_or_answering_junk_costs_the_verdict_only(rollout) -> None:
    batch = rollout["batches"]["vllm"]
    names = batch["non_tensor"]["agent_name"]
    expected_error = {
        "calm_down": "intervener failed",
        "calm_garbage": "unreadable JSON",
        "calm_junk": "no JSON object",
        "calm_stall": "no judgement within 2",
    }
    for i, name in enumerate(names):
        if name not in expected_error:
            continue
        row = row_view(batch, i)
        calm = row["calm"]
        # The trajectory still ended, unjudged: no hint, no rewind, final status no_verdict.
        assert calm["interventions"] == [] and calm["final"] == "no_verdict", name
        (judgement,) = calm["judgements"]
        assert judgement["status"] == "no_verdict" and judgement["trigger"] == "end"
        assert any(expected_error[name] in e for e in judgement["errors"]), judgement["errors"]
        assert judgement["latency_s"] < 15, "a broken judge must not stall the trajectory"
        ids, mask, _ = replay(row, [], row["calls"])
        assert row["response"] == ids[:RESPONSE_LENGTH] and row["mask"] == mask[:RESPONSE_LENGTH]
        assert batch["non_tensor"]["termination_reason"][i] in {"max_turns", "answered"}
        assert row["record"]["calm"]["final"] == "no_verdict"
    junk = next(i for i, n in enumerate(names) if n == "calm_junk")
    assert batch["non_tensor"]["calm"][junk]["judgements"][0]["attempts"] == 2


def test_scripted_rewind_cuts_ids_mask_and_logprobs_mid_trajectory(rollout) -> None:
    """Turn 2 flagged after an execution: the buffer goes back to the end of turn 1's
    output, the hint follows it, and the dropped answer leaves no token behind."""
    batch = rollout["batches"]["scripted"]
    row = row_view(batch, 0)
    first, dropped, last = row["calls"]
    (intervention,) = row["calm"]["interventions"]
    assert (intervention["flawed_turn"], intervention["rewound_to"]) == (2, 1)
    hint = batch["hint_ids"][intervention["text"]]
    observation = dropped["prompt_ids"][len(row["prompt"]) + len(first["token_ids"]) :]
    assert last["prompt_ids"] == row["prompt"] + first["token_ids"] + observation + hint
    assert row["response"] == first["token_ids"] + observation + hint + last["token_ids"]
    context = len(observation) + len(hint)
    assert row["mask"] == [1] * len(first["token_ids"]) + [0] * context + [1] * len(
        last["token_ids"]
    )
    assert row["logprobs"] == [-0.5] * len(first["token_ids"]) + [0.0] * context + [-0.5] * len(
        last["token_ids"]
    )
    extra = batch["non_tensor"]
    assert extra["correct"][0] is True and extra["env_reward"][0] == 1.0
    assert sum(batch["tensors"]["rm_scores"][0]) == 1.0
    assert [extra["calm_final"][i] for i in range(3)] == ["flawless", "flawless", "flawed"]
    assert [extra["calm_kept"][i] for i in range(3)] == [True, False, False]


def test_dump_to_prepare_sft_to_verl_multiturn_dataset(rollout) -> None:
    """verl's validation dump -> `or-env recipes prepare-sft` -> verl's MultiTurnSFTDataset:
    only the kept trajectory is there, its hint and execution output out of the loss."""
    work: Path = rollout["work"]
    dump = work / "dump"
    assert (dump / "0.jsonl").exists()
    lines = [json.loads(line) for line in (dump / "0.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(
        {"input", "output", "score", "calm_record"} <= set(x) for x in lines
    )
    out, report = work / "sft.parquet", work / "report"
    command = [sys.executable, "-m", "or_env.cli", "recipes", "prepare-sft", str(dump)]
    result = subprocess.run(
        [*command, "--out", str(out), "--report-dir", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "kept 1 (1 problems)" in result.stdout and "corrected 1" in result.stdout
    rows = pq.read_table(out).to_pylist()
    assert [r["problem_id"] for r in rows] == [CORRECTED.id]
    summary = json.loads((report / "report.json").read_text())
    totals = summary["totals"]
    assert (totals["episodes"], totals["kept"], totals["corrected"]) == (3, 1, 1)
    assert totals["final_status"] == {"flawed": 1, "flawless": 2}
    assert summary["interventions_histogram"] == {"1": 3}
    assert sum(summary["flaw_types"]["sample"].values()) == 4  # FLAGGED was flagged twice
    assert 0 < totals["hint_share_kept"] < 1
    assert (report / "report.md").exists() and (report / "golden.jsonl").exists()

    venv = rollout["venv"]
    reader = [str(venv / "bin" / "python"), str(SUPPORT / "read_sft_dataset.py")]
    checked = subprocess.run(
        [*reader, str(out), str(tiny_model_dir(venv))],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr[-4000:]
    (item,) = json.loads(checked.stdout.splitlines()[-1])
    assert HINT in item["context"] and HINT not in item["trained"]
    assert f"\\boxed{{{CORRECTED.answer}}}" in item["trained"]
    assert "-12345" not in item["text"]  # the dropped wrong answer is gone


def test_run_calm_curate_composes_a_validation_only_run(tmp_path, monkeypatch) -> None:
    """run_calm_curate.sh's overrides compose with verl's ppo_trainer and pass its checks:
    a validation-only run of or_env_calm that dumps every trajectory, then prepare-sft."""
    from test_recipes_configs import RECIPE, compose, launches, overrides_for

    from recipes.verl.calm_dump import CALM_AGENT_NAME

    venv = require_venv()
    monkeypatch.setenv("INTERVENER_URL", "http://judge:8001/v1")
    monkeypatch.setenv("INTERVENER_MODEL", "judge-model")
    calls = launches(RECIPE / "run_calm_curate.sh", tmp_path, "data.val_batch_size=256")
    prepare = calls[0]
    assert prepare[:3] == ["-m", "recipes.verl.calm_dump", "prepare-run"]
    assert prepare[prepare.index("--intervener-url") + 1] == "http://judge:8001/v1"
    assert prepare[prepare.index("--out") + 1] == "runs/calm_verl/agent_loop.yaml"
    sft = ["-m", "recipes.verl.data", "sft", "runs/calm_verl/dump", "--out", "data/sft.parquet"]
    assert calls[-1] == [*sft, "--report-dir", "runs/calm_verl"]
    overrides = overrides_for(calls, "verl.trainer.main_ppo")
    code, config, output = compose(venv, "ppo_trainer", overrides, tmp_path)
    assert code == 0, f"run_calm_curate.sh's overrides do not compose:\n{output}"
    assert "All configuration checks passed" in output

    trainer, rollout = config["trainer"], config["actor_rollout_ref"]["rollout"]
    assert trainer["val_only"] is True and trainer["val_before_train"] is True
    assert trainer["validation_data_dir"] == "runs/calm_verl/dump"
    assert trainer["resume_mode"] == "disable"
    assert rollout["agent"]["default_agent_loop"] == CALM_AGENT_NAME
    assert rollout["agent"]["agent_loop_config_path"] == "runs/calm_verl/agent_loop.yaml"
    assert (rollout["val_kwargs"]["n"], rollout["val_kwargs"]["do_sample"]) == (4, True)
    assert config["actor_rollout_ref"]["actor"]["use_kl_loss"] is False
    assert config["data"]["val_files"] == config["data"]["train_files"]
    assert config["data"]["val_batch_size"] == 256  # extra arguments reach verl
