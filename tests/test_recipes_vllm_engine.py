"""The `or_env` verl agent loop against a real vLLM engine (`AsyncLLM`, CPU build).

verl's real `AgentLoopWorker` plays a few rows of an RL parquet made by `recipes.verl.data`
with the tiny random model served by vLLM's `AsyncLLM` in the ML venv (through
`support/verl_rollout.py`; skipped when the venv is missing, failing when
OR_ENV_REQUIRE_VLLM=1). A random model writes no code and no answer, so this checks the
mechanics only: prompt ids, masks, lengths, log-probs, reward and metrics. Each model turn
is capped at a few tokens, so that the env answers with format feedback and observation
tokens appear between the turns. The engine core must be gone when the script ends.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.ml_venv import require_venv, subprocess_env, tiny_model_dir
from support.vllm_server import run_leaving_nothing

from or_env import load_problems
from recipes.verl.data import write_rl_parquet

pytestmark = [pytest.mark.verl, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ROLLOUT = Path(__file__).with_name("support") / "verl_rollout.py"
PROMPT_LENGTH = 1024
RESPONSE_LENGTH = 96
TURN_TOKENS = 24
MAX_TURNS = 3


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


def agent_loop_config(tmp_path: Path) -> Path:
    """The recipe's agent-loop yaml with the local sandbox (tests have no Docker daemon)."""
    text = (REPO / "recipes/verl/config/agent_loop.yaml").read_text()
    text = text.replace("sandbox: auto", "sandbox: local").replace("workers: 8", "workers: 1")
    path = tmp_path / "agent_loop.yaml"
    path.write_text(text)
    return path


def run_in_own_group(venv: Path, request: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run the rollout script in its own process group; fail if anything of it outlives it."""
    out = tmp_path / "result.json"
    env = subprocess_env(venv)
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    argv = [str(venv / "bin" / "python"), str(ROLLOUT), json.dumps({**request, "out": str(out)})]
    run_leaving_nothing(argv, env, 600, "the verl rollout with vLLM")
    return json.loads(out.read_text())


def unpadded(row: list[int], mask: list[int]) -> list[int]:
    return [t for t, m in zip(row, mask, strict=True) if m]


def test_agent_loop_with_vllm_engine(tmp_path) -> None:
    venv = verl_venv()
    model = tiny_model_dir(venv)
    problems = sorted(load_problems("sample"), key=lambda p: p.id)[:2]
    parquet = tmp_path / "rl.parquet"
    write_rl_parquet(problems, parquet, env_kwargs={"max_turns": MAX_TURNS})
    request = {
        "model": str(model),
        "parquet": str(parquet),
        "agent_loop_config": str(agent_loop_config(tmp_path)),
        "prompt_length": PROMPT_LENGTH,
        "response_length": RESPONSE_LENGTH,
        "server": "vllm",
        "turn_tokens": TURN_TOKENS,
        # Greedy: the same tokens every run (verl sends no seed), so a stray stop string
        # from the random model cannot make the test flaky.
        "overrides": ["actor_rollout_ref.rollout.temperature=0"],
    }
    result = run_in_own_group(venv, request, tmp_path)
    tensors, extra, calls = result["tensors"], result["non_tensor"], result["calls"]
    responses, mask = tensors["responses"], tensors["response_mask"]
    attention, logprobs = tensors["attention_mask"], tensors["rollout_log_probs"]

    assert len(responses) == len(problems) and extra["agent_name"] == ["or_env"] * 2
    assert all(len(r) == RESPONSE_LENGTH for r in responses)
    assert all(len(p) == PROMPT_LENGTH for p in tensors["prompts"])
    for i in range(len(problems)):
        prompt = unpadded(tensors["prompts"][i], attention[i][:PROMPT_LENGTH])
        assert prompt == result["chat_prompts"][i]
        # This row's calls: one request id (sticky routing), the first one on the prompt.
        mine = [c for c in calls if c["prompt_ids"][: len(prompt)] == prompt]
        assert mine and len({c["request_id"] for c in mine}) == 1
        assert mine[0]["prompt_ids"] == prompt
        response = unpadded(responses[i], attention[i][PROMPT_LENGTH:])
        assert len(response) <= RESPONSE_LENGTH
        # The response is: generated tokens (mask 1, the engine's log-probs), then the env's
        # feedback (mask 0, log-prob 0), turn after turn; every call sees all before it.
        expected_mask: list[int] = []
        expected_logprobs: list[float] = []
        for call in mine:
            assert call["prompt_ids"] == prompt + response[: len(expected_mask)]
            assert 0 < len(call["token_ids"]) <= TURN_TOKENS
            assert call["sampling_params"]["stop"] == ["```output"]
            assert call["sampling_params"]["temperature"] == 0
            start = len(expected_mask)
            assert (
                response[start : start + len(call["token_ids"])]
                == call["token_ids"][: RESPONSE_LENGTH - start]
            )
            expected_mask += [1] * len(call["token_ids"])
            expected_logprobs += call["log_probs"]
            after = len(expected_mask)
            following = [c for c in mine if len(c["prompt_ids"]) > len(prompt) + after]
            if following:
                observation = len(following[0]["prompt_ids"]) - len(prompt) - after
                assert observation > 0  # the env's feedback on a turn without code or answer
                expected_mask += [0] * observation
                expected_logprobs += [0.0] * observation
        n = len(response)
        assert unpadded(mask[i], attention[i][PROMPT_LENGTH:]) == expected_mask[:n]
        assert sum(mask[i]) == sum(expected_mask[:n])  # padding is masked too
        got = unpadded(logprobs[i], attention[i][PROMPT_LENGTH:])
        assert got == pytest.approx(expected_logprobs[:n], abs=1e-5)
        assert all(lp <= 0.0 for lp in got)
        assert 0 in expected_mask[:n], "no observation tokens: the env never answered a turn"
        # Random text answers nothing: reward 0 on every token, for a reason the env names.
        assert extra["env_reward"][i] == 0.0 and sum(tensors["rm_scores"][i]) == 0.0
        assert extra["termination_reason"][i] in {"response_length", "max_turns"}
        assert extra["turns"][i] == len(mine) and extra["executions"][i] == 0
    metrics = result["metrics"]
    assert len(metrics) == len(problems)
    assert all(m["generate_sequences"] > 0 for m in metrics)
