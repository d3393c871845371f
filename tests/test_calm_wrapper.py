"""CALMWrapper on real episodes: real env, real local sandbox, real rollout runner.

The judge and the reasoner are scripted here (no model runs in the fast suite):
`ScriptedIntervener` answers with fixed verdict texts that go through the real validation,
`ScriptedJudgeClient` stands in for the judge's HTTP client inside the real `Intervener`
(retries, error feedback), and `ScriptedReasoner` is a policy whose next turn depends on
whether a hint is in the transcript it is given.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import pytest

import or_env  # noqa: F401  (registers the gym ids)
from agents.policy import EpisodeKey, Policy, PolicyError, PolicyTurn, chat_messages
from agents.runner import RolloutRunner, plan_episodes
from calm import BaseIntervener, CALMWrapper, Intervener, JudgeContext, Judgement
from calm.intervener import JudgeUnavailable
from calm.prompt import render_trajectory
from or_env import NO_OPTIMUM, Problem
from or_env.env import ORModelingEnv
from or_env.info import END_KEYS
from or_env.sandbox.local import LocalSandbox
from or_env.transcript import Message

PROBLEM = Problem(id="p12", question="What is 5 + 7? Report it as the objective.", answer=12.0)
CODE_OK = "Let me compute it.\n```python\nprint(5 + 7)\n```\n"
CODE_WRONG = "Now the model.\n```python\nprint(5 + 8)\n```\n"
ANSWER_WRONG = "So the optimum is \\boxed{13}."
ANSWER_OK = "So the optimum is \\boxed{12}."
HINT = "Wait, I changed a coefficient between the statement and the code."


def verdict(turn: int, flaw_type: str = "code_model_mismatch", hint: str = HINT) -> str:
    return json.dumps({"flawless": False, "turn": turn, "flaw_type": flaw_type, "hint": hint})


FLAWLESS = '{"flawless": true}'


class ScriptedIntervener(BaseIntervener):
    """A scripted intervener: replies come from a list (or a function of the context)."""

    name = "scripted"

    def __init__(self, replies: Sequence[str] | Callable[[JudgeContext], str]) -> None:
        super().__init__()
        self.replies = replies if callable(replies) else list(replies)
        self.contexts: list[JudgeContext] = []

    async def ajudge(self, context: JudgeContext) -> Judgement:
        self.contexts.append(context)
        reply = self.replies(context) if callable(self.replies) else self.replies.pop(0)
        found = self.validate(reply, context)
        status = "flawless" if found.flawless else "flaw"
        return Judgement(status, found, attempts=1, replies=[reply])


class ScriptedJudgeClient(Policy):
    """A scripted stand-in for the judge's HTTP client: fixed reply texts, requests kept."""

    name = "scripted-judge"

    def __init__(self, replies: Sequence[str | Exception]) -> None:
        self.replies = list(replies)
        self.requests: list[list[dict[str, str]]] = []

    async def act(self, messages, *, rendering, stop_sequences, episode=None) -> PolicyTurn:
        self.requests.append(chat_messages(messages))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return PolicyTurn(text=reply, prompt_tokens=10, completion_tokens=5)


class ScriptedReasoner(Policy):
    """A scripted reasoner: without a hint it slips (wrong code, wrong answer); after a hint
    it runs the right code and answers from the output. It keeps every transcript it saw."""

    name = "scripted-reasoner"

    def __init__(self) -> None:
        self.seen: list[list[Message]] = []

    async def act(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        *,
        rendering: str,
        stop_sequences: Sequence[str],
        episode: EpisodeKey | None = None,
    ) -> PolicyTurn:
        messages = [m if isinstance(m, Message) else Message(**m) for m in messages]
        self.seen.append(messages)
        hinted = any(m.source == "intervener" for m in messages)
        last = messages[-1]
        if last.source == "env" and "```output" in last.content:
            printed = last.content.split("```output\n")[1].split("\n")[0]
            return PolicyTurn(text=f"It printed {printed}, so \\boxed{{{printed}}}.")
        return PolicyTurn(text=CODE_OK if hinted else CODE_WRONG)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(workers=2) as box:
        yield box


def make_env(sandbox: LocalSandbox, rendering: str = "inline") -> ORModelingEnv:
    return ORModelingEnv([PROBLEM], sandbox=sandbox, rendering=rendering)


# --------------------------------------------------------------------- rewind and hint
@pytest.mark.parametrize("rendering", ["inline", "chat"])
def test_flaw_rewinds_to_the_flawed_turn_and_inserts_the_hint(sandbox, rendering) -> None:
    judge = ScriptedIntervener([verdict(turn=2), FLAWLESS])
    env = CALMWrapper(make_env(sandbox, rendering), judge)
    env.reset(options={"index": 0})
    assert env.step(CODE_OK)[2:4] == (False, False)  # the trigger is the end: no judging yet
    assert env.step(CODE_WRONG)[0] == "```output\n13\n```\n"
    obs, reward, terminated, truncated, info = env.step(ANSWER_WRONG)

    # The env said "answered, wrong"; the wrapper reopened it at the end of turn 1.
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs == (HINT + "\n\n" if rendering == "inline" else HINT)
    assert info["rewound_to"] == 1 and info["turn"] == 1 and info["executions"] == 1
    assert "termination_reason" not in info and "correct" not in info
    intervention = info["intervention"]
    assert intervention["flawed_turn"] == 2 and intervention["flaw_type"] == "code_model_mismatch"
    assert intervention["category"] == "domain" and intervention["hint"] == HINT
    assert intervention["outcome_before"] == {
        "termination_reason": "answered",
        "correct": False,
        "answer": "13",
    }
    assert [m["content"] for m in intervention["dropped"] if m["source"] == "policy"] == [
        CODE_WRONG,
        ANSWER_WRONG,
    ]
    core = env.unwrapped
    hint = core.transcript.messages[-1]
    assert (hint.source, hint.turn, hint.content) == ("intervener", 1, obs)
    assert hint.role == ("assistant" if rendering == "inline" else "user")
    assert [m.turn for m in core.transcript.messages] == [0, 0, 1, 1, 1]  # turn 2+ gone
    # The judge saw the whole first trajectory, numbered as the env numbers turns.
    first = judge.contexts[0]
    assert first.n_turns == 3 and first.outcome["correct"] is False
    assert "### Turn 2 (solver)\nNow the model." in render_trajectory(first.messages)

    # The reasoner continues from the hint; the next ending is judged flawless.
    env.step(CODE_OK)
    obs, reward, terminated, truncated, info = env.step(ANSWER_OK)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] is True and info["calm"]["final"] == "flawless"
    assert len(info["calm"]["interventions"]) == 1 and len(info["calm"]["judgements"]) == 2
    second = judge.contexts[1]
    assert second.n_turns == 3
    assert "### Hint inserted after turn 1 (an earlier intervention)" in render_trajectory(
        second.messages
    )
    # The hint is part of the conversation the policy sees next, where turn 2 used to start.
    chat = core.transcript.as_chat()
    if rendering == "inline":
        assert (
            chat[-1]["content"]
            == (CODE_OK + "```output\n12\n```\n" + HINT + "\n\n" + CODE_OK + "```output\n12\n```\n")
            + ANSWER_OK
        )
    else:
        roles = ["assistant", "user", "user", "assistant", "user", "assistant"]
        assert [m["role"] for m in chat[2:]] == roles
        assert chat[4]["content"] == HINT


def test_reopening_drops_what_held_only_for_the_end(sandbox) -> None:
    env = CALMWrapper(make_env(sandbox), ScriptedIntervener([verdict(turn=2), FLAWLESS]))
    env.reset(options={"index": 0})
    env.step(CODE_OK)
    *_, info = env.step(ANSWER_OK)
    assert info["rewound_to"] == 1 and info["intervention"]["outcome_before"]["correct"] is True
    assert "answer_printed" not in info and not info.keys() & END_KEYS
    *_, info = env.step(ANSWER_OK)  # turn 1's execution printed 12 and was kept
    assert info["answer_printed"] is True and info["calm"]["final"] == "flawless"


def test_a_hint_that_states_there_is_no_optimum_gives_it_away(sandbox) -> None:
    problem = Problem(id="none", question="Is there an optimum?", answer="No Best Solution")
    assert problem.answer == NO_OPTIMUM
    hints = ["Wait, check whether the model is infeasible.", "Wait: no optimal solution exists."]
    client = ScriptedJudgeClient([verdict(1, hint=hint) for hint in hints])
    env = CALMWrapper(
        ORModelingEnv([problem], sandbox=sandbox), Intervener(client=client, max_attempts=2)
    )
    env.reset(options={"index": 0})
    *_, info = env.step("So \\boxed{5}.")
    judgement = info["calm"]["judgements"][0]
    assert judgement["status"] == "no_verdict" and len(judgement["errors"]) == 2
    assert all("gives the answer away" in error for error in judgement["errors"])
    assert info["calm"]["interventions"] == [] and info["termination_reason"] == "answered"


def test_flaw_in_the_first_turn_rewinds_to_the_prompt(sandbox) -> None:
    judge = ScriptedIntervener(
        [verdict(1, "manual_calculation", "Wait, I should run code."), FLAWLESS]
    )
    env = CALMWrapper(make_env(sandbox), judge)
    env.reset(options={"index": 0})
    *_, info = env.step("By hand: 5 + 7 = 13, so \\boxed{13}.")
    assert info["rewound_to"] == 0 and env.unwrapped.turn == 0
    assert env.unwrapped.transcript.as_chat()[-1] == {
        "role": "assistant",
        "content": "Wait, I should run code.\n\n",
    }
    env.step(CODE_OK)
    *_, info = env.step(ANSWER_OK)
    assert info["correct"] and info["calm"]["final"] == "flawless"


def test_budget_of_interventions_then_the_episode_ends_as_the_env_said(sandbox) -> None:
    judge = ScriptedIntervener(lambda context: verdict(turn=1))  # never satisfied
    env = CALMWrapper(
        gym.make("or_env/ORModeling-v0", problems=[PROBLEM], sandbox=sandbox),
        judge,
        max_interventions=2,
    )
    env.reset(options={"index": 0})
    for _ in range(2):
        assert env.step(ANSWER_WRONG)[2] is False  # rewound, hint inserted
    _, reward, terminated, truncated, info = env.step(ANSWER_OK)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["termination_reason"] == "answered" and info["correct"] is True
    calm = info["calm"]
    # Judged a third time so the final state is known: a flaw remained, the budget was spent.
    assert calm["final"] == "flawed" and len(calm["interventions"]) == 2
    assert [j["status"] for j in calm["judgements"]] == ["flaw", "flaw", "flaw"]
    hints = [m for m in env.unwrapped.transcript.messages if m.source == "intervener"]
    assert len(hints) == 2  # both hints sit at turn 0, one after the other
    # A new episode starts clean.
    _, info = env.reset(options={"index": 0})
    assert info["calm"] == {
        "final": "not_judged",
        "interventions": [],
        "judgements": [],
        "max_interventions": 2,
        "trigger": "end",
    }


def test_execution_trigger_judges_after_each_execution(sandbox) -> None:
    judge = ScriptedIntervener([verdict(turn=1), FLAWLESS, FLAWLESS])
    env = CALMWrapper(make_env(sandbox), judge, trigger="execution")
    env.reset(options={"index": 0})
    obs, _, terminated, truncated, info = env.step(CODE_WRONG)
    assert (obs, terminated, truncated) == (HINT + "\n\n", False, False)
    assert judge.contexts[0].outcome is None  # judged mid-episode
    assert info["intervention"]["outcome_before"] is None and env.unwrapped.executions == 0
    obs, *_ = env.step(CODE_OK)  # judged flawless so far: the output comes back as is
    assert obs == "```output\n12\n```\n"
    *_, info = env.step(ANSWER_OK)
    assert info["calm"]["final"] == "flawless"
    assert [j["trigger"] for j in info["calm"]["judgements"]] == ["execution", "execution", "end"]


def test_async_step_matches_the_sync_one(sandbox) -> None:
    async def go() -> dict:
        env = CALMWrapper(make_env(sandbox), ScriptedIntervener([verdict(2), FLAWLESS]))
        await env.areset(options={"index": 0})
        await env.astep(CODE_OK)
        await env.astep(CODE_WRONG)
        *_, info = await env.astep(ANSWER_WRONG)
        assert info["rewound_to"] == 1
        await env.astep(CODE_OK)
        *_, info = await env.astep(ANSWER_OK)
        # The synchronous path also works from inside a running event loop.
        sync = CALMWrapper(make_env(sandbox), ScriptedIntervener([FLAWLESS]))
        sync.reset(options={"index": 0})
        assert sync.step(ANSWER_OK)[4]["calm"]["final"] == "flawless"
        return info

    info = asyncio.run(go())
    assert info["correct"] and info["calm"]["final"] == "flawless"


def test_wrapper_rejects_bad_settings(sandbox) -> None:
    judge = ScriptedIntervener([])
    with pytest.raises(ValueError, match="trigger"):
        CALMWrapper(make_env(sandbox), judge, trigger="always")
    with pytest.raises(ValueError, match="hint_template"):
        CALMWrapper(make_env(sandbox), judge, hint_template="no placeholder")
    with pytest.raises(TypeError, match="ORModelingEnv"):
        CALMWrapper(gym.make("CartPole-v1"), judge)


# --------------------------------------------------------------------- the LLM intervener
def test_intervener_retries_a_bad_reply_with_the_error_fed_back(sandbox) -> None:
    client = ScriptedJudgeClient(["Turn 2 is wrong, I think.", verdict(turn=1)])
    intervener = Intervener(client=client)
    env = CALMWrapper(make_env(sandbox), intervener, max_interventions=1)
    env.reset(options={"index": 0})
    *_, info = env.step(ANSWER_WRONG)
    judgement = info["calm"]["judgements"][0]
    assert judgement["status"] == "flaw" and judgement["attempts"] == 2
    assert "no JSON object" in judgement["errors"][0]
    first, second = client.requests
    assert [m["role"] for m in first] == ["system", "user"]
    assert "manual_calculation" in first[0]["content"]  # the taxonomy is in the prompt
    assert "## Correct answer" in first[1]["content"] and "12.0" in first[1]["content"]
    assert second[2] == {"role": "assistant", "content": "Turn 2 is wrong, I think."}
    assert second[3]["role"] == "user" and "no JSON object" in second[3]["content"]
    assert judgement["prompt_tokens"] == 20 and judgement["completion_tokens"] == 10


def test_intervener_records_no_verdict_and_the_episode_ends(sandbox) -> None:
    leak = verdict(turn=1, hint="The answer is 12, not 13.")
    client = ScriptedJudgeClient(["{bad json", leak, '{"flawless": false, "turn": 9}'])
    env = CALMWrapper(make_env(sandbox), Intervener(client=client, max_attempts=3))
    env.reset(options={"index": 0})
    *_, info = env.step(ANSWER_WRONG)
    assert env.unwrapped.done and info["termination_reason"] == "answered"
    judgement = info["calm"]["judgements"][0]
    assert judgement["status"] == "no_verdict" and judgement["verdict"] is None
    assert len(judgement["errors"]) == 3 and "gives the answer away" in judgement["errors"][1]
    assert info["calm"]["final"] == "no_verdict" and info["calm"]["interventions"] == []


def test_hidden_answer_stays_out_of_the_prompt() -> None:
    client = ScriptedJudgeClient([FLAWLESS])
    context = JudgeContext(
        question="q?",
        ground_truth=12.0,
        messages=[Message("assistant", "x", "policy", 1)],
        n_turns=1,
    )
    judgement = Intervener(client=client, show_answer=False).judge(context)
    assert judgement.status == "flawless"
    assert "Correct answer" not in client.requests[0][1]["content"]


def test_unreachable_judge_raises_and_the_runner_records_an_error(sandbox) -> None:
    client = ScriptedJudgeClient([PolicyError("HTTP 503 after 4 attempts")])
    with pytest.raises(JudgeUnavailable, match="intervener's endpoint failed"):
        Intervener(client=client).judge(
            JudgeContext("q", 1.0, [Message("assistant", "x", "policy", 1)], 1)
        )
    failing = Intervener(client=ScriptedJudgeClient([PolicyError("down")]))
    runner = RolloutRunner(
        ScriptedReasoner(),
        env_factory=lambda spec: CALMWrapper(make_env(sandbox), failing),
        progress=False,
    )
    (record,) = runner.run(plan_episodes([PROBLEM]))
    assert record["status"] == "error" and "intervener's endpoint failed" in record["error"]


# --------------------------------------------------------------------- through the runner
@pytest.mark.parametrize("rendering", ["inline", "chat"])
def test_runner_honours_the_rewind_and_records_calm(sandbox, rendering) -> None:
    reasoner = ScriptedReasoner()
    judge = ScriptedIntervener(
        lambda c: FLAWLESS if c.outcome["correct"] else verdict(1, "manual_calculation")
    )
    runner = RolloutRunner(
        reasoner,
        env_factory=lambda spec: CALMWrapper(make_env(sandbox, rendering), judge),
        concurrency=2,
        progress=False,
    )
    other = Problem(id="p12b", question=PROBLEM.question, answer=12.0)
    records = runner.run(plan_episodes([PROBLEM, other]))
    for record in records:
        assert record["status"] == "ok" and record["correct"] is True
        assert record["calm"]["final"] == "flawless"
        assert record["turns"] == 2 and record["generated_turns"] == 4
        assert [s["rewound_to"] for s in record["steps"]] == [None, 0, None, None]
        assert [m["source"] for m in record["messages"][2:]] == [
            "intervener",
            "policy",
            "env",
            "policy",
        ]
    # The request after the rewind was built from the rewound transcript: the dropped turns
    # are gone and it ends in the hint, in the rendering's role.
    after_hint = [seen for seen in reasoner.seen if seen[-1].source == "intervener"]
    assert len(after_hint) == 2
    for seen in after_hint:
        assert [m.source for m in seen] == ["env", "env", "intervener"]
        assert seen[-1].role == ("assistant" if rendering == "inline" else "user")
