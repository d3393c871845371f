"""TransformersPolicy with a real (tiny, randomly initialised) Qwen2 model.

torch and transformers live in the vLLM venv (`.ci/vllm_setup.sh`), not in the project's,
so the policy runs in a worker process with that venv's python (`support.policy_worker`);
the tests skip when the venv is missing, or fail when OR_ENV_REQUIRE_VLLM=1. The model
writes random text: the tests check the mechanics (a turn is generated from the chat
template, tokens are counted, generation stops at the given stop string, an episode runs
to its end), not the answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.ml_venv import require_venv, tiny_model_dir
from support.policy_worker import PolicyWorker
from support.stop_strings import stop_inside

from or_env import load_problems
from or_env.prompts import DEFAULT_SYSTEM_PROMPT

pytestmark = pytest.mark.slow

MAX_TOKENS = 24
PROBLEM = load_problems("sample")[0]
PROMPT = [
    {"role": "system", "content": DEFAULT_SYSTEM_PROMPT, "source": "env"},
    {"role": "user", "content": PROBLEM.question, "source": "env"},
]


@pytest.fixture(scope="session")
def ml_venv() -> Path:
    return require_venv()


@pytest.fixture(scope="session")
def tiny_model(ml_venv: Path) -> Path:
    return tiny_model_dir(ml_venv)


@pytest.fixture(scope="module")
def worker(ml_venv: Path, tiny_model: Path, tmp_path_factory) -> Iterator[PolicyWorker]:
    worker = PolicyWorker(ml_venv, tmp_path_factory.mktemp("transformers-worker")).start()
    try:
        worker.call(
            "make",
            name="hf",
            kind="transformers",
            kwargs={"model": str(tiny_model), "device": "cpu", "max_tokens": MAX_TOKENS},
        )
        yield worker
    finally:
        worker.close()


def act(worker: PolicyWorker, messages: list[dict], stops: list[str]) -> dict:
    return worker.call(
        "act", name="hf", messages=messages, rendering="inline", stop_sequences=stops
    )


def test_generates_a_turn_from_the_chat_template(worker: PolicyWorker) -> None:
    turn = act(worker, PROMPT, ["```output"])
    assert isinstance(turn["text"], str) and turn["text"]
    assert 0 < turn["completion_tokens"] <= MAX_TOKENS
    # The prompt is the whole templated chat: longer than the question alone.
    assert turn["prompt_tokens"] > 100
    assert turn["finish_reason"] in ("stop", "length")
    assert turn["latency_s"] > 0


def test_greedy_generation_is_repeatable(worker: PolicyWorker) -> None:
    first, second = act(worker, PROMPT, []), act(worker, PROMPT, [])
    assert first["text"] == second["text"]
    assert first["completion_tokens"] == second["completion_tokens"] == MAX_TOKENS
    assert first["finish_reason"] == "length"


def test_stops_at_the_stop_sequence_and_cuts_it_off(worker: PolicyWorker) -> None:
    free = act(worker, PROMPT, [])
    stop = stop_inside(free["text"])
    assert stop is not None, free
    turn = act(worker, PROMPT, [stop])
    assert turn["text"] == free["text"][: free["text"].index(stop)]
    assert turn["finish_reason"] == "stop"
    assert turn["completion_tokens"] < free["completion_tokens"]


def test_continues_a_final_assistant_message(worker: PolicyWorker) -> None:
    # The inline rendering: the transcript ends in the assistant's turn (its code and the
    # env's output block), which the template leaves open for the model to continue.
    code = "I will run it.\n```python\nprint(12)\n```\n"
    output = "```output\n12\n```\n"
    messages = [
        *PROMPT,
        {"role": "assistant", "content": code, "source": "policy", "turn": 1},
        {"role": "assistant", "content": output, "source": "env", "turn": 1},
    ]
    continued = act(worker, messages, [])
    as_user = [*PROMPT, {"role": "user", "content": code + output, "source": "env"}]
    fresh = act(worker, as_user, [])
    # The same text, but continuing appends no end-of-turn and no new assistant header.
    assert continued["prompt_tokens"] < fresh["prompt_tokens"]
    assert continued["completion_tokens"] > 0


def test_plays_an_inline_episode_to_its_end(worker: PolicyWorker) -> None:
    (record,) = worker.call(
        "run",
        name="hf",
        problem_ids=[PROBLEM.id],
        env_kwargs={"rendering": "inline", "max_turns": 2},
    )
    assert record["status"] == "ok", record["error"]
    assert record["termination_reason"] in ("max_turns", "answered", "max_executions")
    assert 1 <= record["turns"] <= 2
    policy_messages = [m for m in record["messages"] if m["source"] == "policy"]
    assert len(policy_messages) == record["turns"]
    for step in record["steps"]:
        assert step["prompt_tokens"] > 0 and 0 < step["completion_tokens"] <= MAX_TOKENS
    assert record["tokens"]["completion"] == sum(s["completion_tokens"] for s in record["steps"])
    assert record["policy"]["policy"] == "transformers"
