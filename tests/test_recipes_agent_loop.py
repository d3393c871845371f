"""The `or_env` verl agent loop, run by verl's real `AgentLoopWorker` over an RL parquet.

The worker runs in the ML venv (`.ci/vllm_setup.sh` installs verl there; the tests skip
when it is missing, or fail when OR_ENV_REQUIRE_VLLM=1) through `support/verl_rollout.py`.
The LLM is a scripted token server (named as such: it replays scripted turns as token ids),
for what a random model cannot write: a code block that runs and a correct answer. Masks,
lengths and rewards are checked token by token.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.ml_venv import require_venv, subprocess_env, tiny_model_dir

from or_env import Problem, load_problems
from recipes.verl.data import write_rl_parquet

pytestmark = pytest.mark.verl

REPO = Path(__file__).resolve().parents[1]
ROLLOUT = Path(__file__).with_name("support") / "verl_rollout.py"
PROMPT_LENGTH = 1024
RESPONSE_LENGTH = 1024
SAMPLE = {p.id: p for p in load_problems("sample")}


def verl_venv() -> Path:
    venv = require_venv()
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import verl.experimental.agent_loop"],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        reason = f"verl does not import in {venv}: run `bash .ci/vllm_setup.sh`"
        if os.environ.get("OR_ENV_REQUIRE_VLLM") == "1":
            pytest.fail(f"OR_ENV_REQUIRE_VLLM=1 but {reason}\n{probe.stderr[-2000:]}")
        pytest.skip(reason)
    return venv


@pytest.fixture(scope="module")
def ml_venv() -> Path:
    return verl_venv()


@pytest.fixture(scope="module")
def tiny_model(ml_venv: Path) -> Path:
    return tiny_model_dir(ml_venv)


def agent_loop_config(tmp_path: Path, **env_kwargs: Any) -> Path:
    """The recipe's agent-loop yaml with the local sandbox (tests have no Docker daemon)."""
    text = (REPO / "recipes/verl/config/agent_loop.yaml").read_text()
    text = text.replace("sandbox: auto", "sandbox: local").replace("workers: 8", "workers: 1")
    for key, value in env_kwargs.items():
        text = text.replace(f"    {key}: ", f"    {key}: {value}  # was ")
    path = tmp_path / "agent_loop.yaml"
    path.write_text(text)
    return path


def run_rollout(venv: Path, request: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "result.json"
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(ROLLOUT), json.dumps({**request, "out": str(out)})],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"verl rollout failed:\n{result.stderr[-6000:]}")
    return json.loads(out.read_text())


def unpadded(row: list[int], mask: list[int]) -> list[int]:
    return [t for t, m in zip(row, mask, strict=True) if m]


def test_agent_loop_with_scripted_token_server(ml_venv, tiny_model, tmp_path) -> None:
    solved, wrong, flooded = (SAMPLE[k] for k in sorted(SAMPLE)[:3])
    problems = [solved, wrong, flooded]
    parquet = tmp_path / "rl.parquet"
    write_rl_parquet(problems, parquet, env_kwargs={"max_turns": 4})
    code = solved.meta["reference_code"]
    flood = "for i in range(2000):\n    print(i, i * i, i * i * i)"
    scripts = {
        solved.question: [
            f"Let me model it.\n```python\n{code}\n```\n```output",
            f"The optimal objective value is \\boxed{{{solved.answer}}}.",
        ],
        wrong.question: ["I guess \\boxed{-12345}."],
        flooded.question: [f"Print a lot.\n```python\n{flood}\n```\n```output", "never asked"],
    }
    request = {
        "model": str(tiny_model),
        "parquet": str(parquet),
        # A large output cap, so that the flood overruns the response budget.
        "agent_loop_config": str(agent_loop_config(tmp_path, max_obs_chars=40000)),
        "prompt_length": PROMPT_LENGTH,
        "response_length": RESPONSE_LENGTH,
        "server": "scripted",
        "scripts": scripts,
        "encode": [],
    }
    result = run_rollout(ml_venv, request, tmp_path)
    tensors, extra = result["tensors"], result["non_tensor"]
    calls = result["calls"]
    eos = result["eos_token_id"]

    responses, mask = tensors["responses"], tensors["response_mask"]
    attention = tensors["attention_mask"]
    assert len(responses) == 3 and all(len(r) == RESPONSE_LENGTH for r in responses)
    assert all(len(p) == PROMPT_LENGTH for p in tensors["prompts"])
    assert extra["agent_name"] == ["or_env"] * 3

    for i, problem in enumerate(problems):
        mine = [c for c in calls if c["question"] == problem.question]
        # One request id per trajectory (sticky routing); the env's stop sequence, echoed.
        assert len({c["request_id"] for c in mine}) == 1
        for c in mine:
            assert c["sampling_params"]["stop"] == ["```output"]
            assert c["sampling_params"]["include_stop_str_in_output"] is True
        # The prompt is the chat template of the env's reset messages, left-padded.
        prompt_att = attention[i][:PROMPT_LENGTH]
        prompt = unpadded(tensors["prompts"][i], prompt_att)
        assert prompt == result["chat_prompts"][i] == mine[0]["prompt_ids"]
        # Each later call sees the whole context: prompt + every response token so far.
        resp = unpadded(responses[i], attention[i][PROMPT_LENGTH:])
        for c in mine[1:]:
            assert c["prompt_ids"] == prompt + resp[: len(c["prompt_ids"]) - len(prompt)]

    # Row 0: code, its output (mask 0), then the correct answer: reward 1 on the last token.
    first, second = (c["token_ids"] for c in calls if c["question"] == solved.question)
    resp0 = unpadded(responses[0], attention[0][PROMPT_LENGTH:])
    obs0 = resp0[len(first) : len(resp0) - len(second)]
    assert resp0 == first + obs0 + second and second[-1] == eos
    assert unpadded(mask[0], attention[0][PROMPT_LENGTH:]) == (
        [1] * len(first) + [0] * len(obs0) + [1] * len(second)
    )
    assert sum(mask[0]) == len(first) + len(second)  # padding is masked too
    obs_text = result["decoded"][0].split("```output", 1)[1]
    assert obs_text.lstrip("\n").startswith(f"{solved.answer}") or str(solved.answer) in obs_text
    assert extra["env_reward"][0] == 1.0 and extra["correct"][0] is True
    assert (extra["turns"][0], extra["executions"][0]) == (2, 1)
    assert extra["sandbox_s"][0] > 0
    assert extra["termination_reason"][0] == "answered"
    scores = tensors["rm_scores"][0]
    assert scores[len(resp0) - 1] == 1.0 and sum(scores) == 1.0
    logprobs = tensors["rollout_log_probs"][0]
    assert logprobs[: len(first)] == [-0.5] * len(first)
    assert logprobs[len(first) : len(first) + len(obs0)] == [0.0] * len(obs0)

    # Row 1: a wrong answer at once: one turn, all model tokens, reward 0.
    (only,) = (c["token_ids"] for c in calls if c["question"] == wrong.question)
    assert unpadded(responses[1], attention[1][PROMPT_LENGTH:]) == only
    assert sum(mask[1]) == len(only)
    assert extra["env_reward"][1] == 0.0 and sum(tensors["rm_scores"][1]) == 0.0
    assert (extra["turns"][1], extra["executions"][1]) == (1, 0)
    assert extra["termination_reason"][1] == "answered"

    # Row 2: the output floods the response budget: cut to exactly response_length, the
    # tail is observation (mask 0), no second generation, reward 0.
    (flood_call,) = (c["token_ids"] for c in calls if c["question"] == flooded.question)
    assert sum(attention[2][PROMPT_LENGTH:]) == RESPONSE_LENGTH
    assert mask[2] == [1] * len(flood_call) + [0] * (RESPONSE_LENGTH - len(flood_call))
    assert extra["termination_reason"][2] == "response_length"
    assert extra["env_reward"][2] == 0.0 and extra["executions"][2] == 1


def test_problem_rows_need_the_question(ml_venv, tiny_model, tmp_path) -> None:
    """A parquet from elsewhere (no question in extra_info) fails with the fix in the message."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "foreign.parquet"
    write_rl_parquet([Problem(id="x", question="Maximise x, x <= 1.", answer=1.0)], parquet)
    table = pq.read_table(parquet).to_pylist()
    for row in table:
        row["extra_info"].pop("question")
    pq.write_table(pa.Table.from_pylist(table), parquet)
    request = {
        "model": str(tiny_model),
        "parquet": str(parquet),
        "agent_loop_config": str(agent_loop_config(tmp_path)),
        "prompt_length": PROMPT_LENGTH,
        "response_length": RESPONSE_LENGTH,
        "server": "scripted",
        "scripts": {"Maximise x": ["\\boxed{1}"]},
    }
    with pytest.raises(AssertionError, match=r"recipes\.verl\.data rl"):
        run_rollout(ml_venv, request, tmp_path)
