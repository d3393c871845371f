"""The tools rendering through the agents stack: the OpenAI policy (tools sent, tool calls
read), the rollout runner, replay of tool-calling records, `or-env eval --rendering tools`,
and CALM's wrapper with a scripted judge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_agents_openai import FAST, MODEL, ScriptedOpenAIServer

from agents.openai_policy import OpenAIPolicy
from agents.policy import PolicyError
from agents.replay import ReplayPolicy
from agents.runner import RolloutRunner, plan_episodes
from calm import BaseIntervener, CALMWrapper, JudgeContext, Judgement
from calm.prompt import render_trajectory
from or_env import ORModelingEnv, Problem, load_problems
from or_env.cli import main as or_env_main
from or_env.sandbox.local import LocalSandbox
from or_env.tool_calls import RUN_PYTHON, SUBMIT_ANSWER

PROBLEM = Problem(id="p1", question="Compute 5 + 7 with a program.", answer=12.0)
HINT = "Check the sum: the program adds the wrong numbers."


def tool_solver(body: dict[str, Any]) -> dict[str, Any]:
    """A scripted tool-calling model: run a program, then submit what it printed."""
    results = [m for m in body["messages"] if m["role"] == "tool"]
    if results:
        return {
            "content": "",
            "tool_calls": [
                {"name": SUBMIT_ANSWER, "arguments": {"answer": results[-1]["content"]}}
            ],
        }
    return {
        "content": "I will compute it.",
        "tool_calls": [{"name": RUN_PYTHON, "arguments": {"code": "print(5 + 7)"}}],
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(workers=2) as box:
        yield box


@pytest.fixture
def tool_server() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer(tool_solver).start()
    yield server
    server.stop()


def run_episodes(policy, sandbox, **env_kwargs) -> list[dict[str, Any]]:
    runner = RolloutRunner(
        policy, env_kwargs={"sandbox": sandbox, "rendering": "tools", **env_kwargs}
    )
    return runner.run(plan_episodes([PROBLEM], samples=1))


def test_openai_policy_plays_a_tools_episode(tool_server, sandbox) -> None:
    policy = OpenAIPolicy(MODEL, base_url=tool_server.base_url, backoff=FAST)
    (record,) = run_episodes(policy, sandbox)
    assert record["status"] == "ok", record["error"]
    assert (record["reward"], record["correct"], record["answer_printed"]) == (1.0, True, True)
    assert record["executions"] == 1 and record["rendering"] == "tools"

    first, second = (body for _, body in tool_server.requests)
    env_tools = ORModelingEnv([PROBLEM], sandbox=sandbox, rendering="tools").tools
    assert first["tools"] == env_tools and first["tool_choice"] == "auto"
    assert "stop" not in first  # no stop sequence in this rendering
    call = second["messages"][2]["tool_calls"][0]
    assert second["messages"][3] == {
        "role": "tool",
        "content": "12",
        "tool_call_id": call["id"],
        "name": RUN_PYTHON,
    }
    roles = [m["role"] for m in record["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert record["messages"][4]["tool_calls"][0]["function"]["name"] == SUBMIT_ANSWER


def test_a_model_that_answers_in_text_gets_format_feedback(sandbox) -> None:
    server = ScriptedOpenAIServer(lambda body: "The answer is \\boxed{12}.").start()
    try:
        policy = OpenAIPolicy(MODEL, base_url=server.base_url, backoff=FAST)
        (record,) = run_episodes(policy, sandbox, max_turns=2)
    finally:
        server.stop()
    assert (record["reward"], record["termination_reason"]) == (0.0, "max_turns")
    feedback = record["messages"][3]
    assert feedback["role"] == "user" and SUBMIT_ANSWER in feedback["content"]


def test_the_completions_api_cannot_call_tools(tool_server, sandbox) -> None:
    policy = OpenAIPolicy(MODEL, base_url=tool_server.base_url, backoff=FAST, api="completions")
    with pytest.raises(PolicyError, match="api='chat'"):
        asyncio.run(policy.act([], rendering="tools", stop_sequences=[], tools=[{}]))


def test_a_tools_record_replays_to_the_same_outcome(tool_server, sandbox, tmp_path) -> None:
    policy = OpenAIPolicy(MODEL, base_url=tool_server.base_url, backoff=FAST)
    (record,) = run_episodes(policy, sandbox)
    path = tmp_path / "episodes.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (replayed,) = run_episodes(ReplayPolicy.from_jsonl(path), sandbox)
    assert replayed["reward"] == 1.0
    strip = [{k: v for k, v in m.items()} for m in record["messages"]]
    assert replayed["messages"] == strip


def test_eval_cli_runs_the_tools_rendering(tmp_path: Path) -> None:
    sample = load_problems("sample")[0]
    code = sample.meta["reference_code"]
    turns = [
        {"content": "", "tool_calls": [_call("a", RUN_PYTHON, {"code": code})]},
        {"content": "", "tool_calls": [_call("b", SUBMIT_ANSWER, {"answer": str(sample.answer)})]},
    ]
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"problem_id": sample.id, "turns": turns}) + "\n")
    out = tmp_path / "run"
    status = or_env_main(
        [
            "eval",
            "--policy",
            "replay",
            "--replay",
            str(replay),
            "--benchmarks",
            "sample",
            "--limit",
            "1",
            "--rendering",
            "tools",
            "--sandbox",
            "local",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert record["problem_id"] == sample.id and record["rendering"] == "tools"
    assert (record["reward"], record["executions"]) == (1.0, 1)


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


class FlawAtFirstTurn(BaseIntervener):
    """A scripted judge: the first judgement finds a flaw at turn 1, later ones none."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[JudgeContext] = []

    async def ajudge(self, context: JudgeContext) -> Judgement:
        self.contexts.append(context)
        reply = (
            json.dumps(
                {"flawless": False, "turn": 1, "flaw_type": "code_model_mismatch", "hint": HINT}
            )
            if len(self.contexts) == 1
            else '{"flawless": true}'
        )
        found = self.validate(reply, context)
        return Judgement(
            "flawless" if found.flawless else "flaw", found, attempts=1, replies=[reply]
        )


def test_calm_rewinds_a_tools_episode_and_hints_in_a_user_message(sandbox) -> None:
    judge = FlawAtFirstTurn()
    env = CALMWrapper(ORModelingEnv([PROBLEM], sandbox=sandbox, rendering="tools"), judge)
    env.reset(options={"index": 0})
    env.step({"content": "", "tool_calls": [_call("a", RUN_PYTHON, {"code": "print(5 + 8)"})]})
    obs, reward, terminated, _, info = env.step(
        {"content": "", "tool_calls": [_call("b", SUBMIT_ANSWER, {"answer": "13"})]}
    )
    assert (reward, terminated, info["rewound_to"]) == (0.0, False, 0)
    assert obs == [{"role": "user", "content": HINT}]
    # The judge read the calls: the program and the submitted answer.
    seen = render_trajectory(judge.contexts[0].messages)
    assert "```python\nprint(5 + 8)\n```" in seen and f"[{SUBMIT_ANSWER}] 13" in seen
    chat = env.unwrapped.transcript.as_chat()
    assert [m["role"] for m in chat] == ["system", "user", "user"]
    env.step({"content": "", "tool_calls": [_call("c", RUN_PYTHON, {"code": "print(5 + 7)"})]})
    _, reward, terminated, _, info = env.step(
        {"content": "", "tool_calls": [_call("d", SUBMIT_ANSWER, {"answer": "12"})]}
    )
    assert (reward, terminated, info["calm"]["final"]) == (1.0, True, "flawless")
