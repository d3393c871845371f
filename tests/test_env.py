"""The episode contract of ORModelingEnv, on the real local sandbox."""

from __future__ import annotations

import asyncio

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import or_env
from or_env import ORModelingEnv, Problem
from or_env.sandbox.local import LocalSandbox

PROBLEMS = [
    {"id": "p1", "question": "What is 5 + 7? Report it as the objective.", "answer": 12.0},
    {"id": "p2", "question": "Minimise x subject to x >= 3.", "answer": 3},
    {"id": "p3", "question": "This one has no feasible point.", "answer": "No Best Solution"},
]

RUN_12 = "I will compute it.\n```python\nprint(5 + 7)\n```\n"


@pytest.fixture(scope="module")
def sandbox():
    with LocalSandbox(workers=2) as box:
        yield box


@pytest.fixture
def env(sandbox):
    return ORModelingEnv(PROBLEMS, sandbox=sandbox)


def test_gym_make_exactly_as_documented() -> None:
    env = gym.make(
        "or_env/ORModeling-v0",
        problems=[{"id": "p1", "question": "...", "answer": 12.0}],
        sandbox="local",
    )
    observation, info = env.reset(options={"index": 0})
    assert observation.endswith("...")
    assert info["problem_id"] == "p1"
    observation, reward, terminated, truncated, info = env.step(RUN_12)
    assert "12" in observation and reward == 0.0 and not terminated
    _, reward, terminated, truncated, info = env.step("So the answer is \\boxed{12}.")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] is True
    env.close()


def test_registered_ids() -> None:
    expected = {
        "or_env/ORModeling-v0",
        "or_env/NL4Opt-v0",
        "or_env/MAMO-EasyLP-v0",
        "or_env/MAMO-ComplexLP-v0",
        "or_env/IndustryOR-v0",
        "or_env/OptMATH-v0",
        "or_env/OptiBench-v0",
        "or_env/NLP4LP-v0",
        "or_env/ComplexOR-v0",
        "or_env/Sample-v0",
    }
    assert expected <= set(gym.registry)


def test_sample_id_needs_no_data(sandbox) -> None:
    env = gym.make("or_env/Sample-v0", sandbox=sandbox)
    observation, info = env.reset(seed=3)
    assert info["benchmark"] == "sample" and len(observation) > 50


def test_check_env_passes(env) -> None:
    check_env(env, skip_render_check=True)


def test_check_env_on_registered_env(sandbox) -> None:
    check_env(gym.make("or_env/Sample-v0", sandbox=sandbox).unwrapped)


def test_seeded_reset_is_deterministic_and_per_env(sandbox) -> None:
    many = [{"id": f"q{i}", "question": f"q{i}", "answer": i} for i in range(50)]
    a, b = ORModelingEnv(many, sandbox=sandbox), ORModelingEnv(many, sandbox=sandbox)
    ids_a = [a.reset(seed=7 if i == 0 else None)[1]["problem_id"] for i in range(10)]
    ids_b = [b.reset(seed=7 if i == 0 else None)[1]["problem_id"] for i in range(10)]
    assert ids_a == ids_b
    assert len(set(ids_a)) > 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"index": 1}, "p2"),
        ({"problem_id": "p3"}, "p3"),
        ({"problem": Problem("x", "Q?", 1.0)}, "x"),
        ({"problem": {"id": "y", "question": "Q?", "answer": 2}}, "y"),
    ],
)
def test_reset_options_pick_problem(env, options, expected) -> None:
    _, info = env.reset(options=options)
    assert info["problem_id"] == expected


@pytest.mark.parametrize(
    ("options", "error"),
    [({"index": 9}, IndexError), ({"problem_id": "nope"}, KeyError), ({"bogus": 1}, ValueError)],
)
def test_reset_bad_options(env, options, error) -> None:
    with pytest.raises(error):
        env.reset(options=options)


def test_inline_episode_transcript(env) -> None:
    env.reset(options={"index": 0})
    observation, _, _, _, info = env.step(RUN_12)
    assert observation == "```output\n12\n```\n"
    assert info["execution"]["exit_code"] == 0 and info["executions"] == 1
    assert info["code"] == "print(5 + 7)"
    _, reward, terminated, _, info = env.step("\\boxed{12}")
    assert reward == 1.0 and terminated
    chat = env.transcript.as_chat()
    assert [m["role"] for m in chat] == ["system", "user", "assistant"]
    assert chat[2]["content"] == RUN_12 + "```output\n12\n```\n" + "\\boxed{12}"
    sources = [m["source"] for m in info["transcript"]]
    assert sources == ["env", "env", "policy", "env", "policy"]
    assert info["termination_reason"] == "answered"
    assert "ground_truth" not in info and "ground_truth" not in info["grade"]


def test_chat_rendering(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, rendering="chat", system_prompt="")
    env.reset(options={"index": 0})
    observation, *_ = env.step(RUN_12)
    assert observation == "```output\n12\n```\n"
    roles = [m["role"] for m in env.transcript.as_chat()]
    assert roles == ["user", "assistant", "user"]


def test_echoed_stop_sequence_not_doubled(env) -> None:
    env.reset(options={"index": 0})
    observation, *_ = env.step(RUN_12 + "```output")
    assert observation == "\n12\n```\n"
    assert env.transcript.as_chat()[-1]["content"].count("```output") == 1


def test_wrong_answer_scores_zero(env) -> None:
    env.reset(options={"index": 0})
    _, reward, terminated, _, info = env.step("\\boxed{13}")
    assert (reward, terminated, info["correct"]) == (0.0, True, False)
    assert info["grade"]["rel_error"] == pytest.approx(1 / 12)


def test_infeasible_ground_truth(env) -> None:
    env.reset(options={"problem_id": "p3"})
    _, reward, *_ = env.step("There is no feasible solution: \\boxed{infeasible}")
    assert reward == 1.0


def test_format_error_counts_as_turn(env) -> None:
    env.reset(options={"index": 0})
    observation, reward, terminated, truncated, info = env.step("Hmm, let me think.")
    assert "\\boxed{}" in observation and "```python" in observation
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["format_error"] == "no_code_or_answer" and info["turn"] == 1


def test_program_error_is_an_observation(env) -> None:
    env.reset(options={"index": 0})
    observation, _, terminated, truncated, info = env.step("```python\n1/0\n```")
    assert "ZeroDivisionError" in observation
    assert not (terminated or truncated) and info["execution"]["exit_code"] != 0


def test_timeout_is_an_observation(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, timeout=1.0)
    env.reset(options={"index": 0})
    observation, _, terminated, truncated, info = env.step("```python\nwhile True: pass\n```")
    assert info["execution"]["timed_out"] and "TimeoutError" in observation
    assert not (terminated or truncated)


def test_max_turns_truncates(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_turns=2)
    env.reset(options={"index": 0})
    assert env.step("thinking")[3] is False
    _, reward, terminated, truncated, info = env.step("still thinking")
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["termination_reason"] == "max_turns" and info["correct"] is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step("\\boxed{12}")


def test_max_executions_truncates(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_executions=1)
    env.reset(options={"index": 0})
    env.step(RUN_12)
    _, _, terminated, truncated, info = env.step(RUN_12)
    assert truncated and not terminated and info["termination_reason"] == "max_executions"
    assert info["executions"] == 1


def test_observation_cap_keeps_head_and_tail(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_obs_chars=300)
    env.reset(options={"index": 0})
    code = "```python\nprint('START')\nfor i in range(2000): print(i)\nprint('END')\n```"
    observation, *_, info = env.step(code)
    assert "START" in observation and "END" in observation and "truncated" in observation
    assert len(observation) < 400 and info["observation_truncated"]


def test_debug_exposes_ground_truth(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, debug=True)
    _, info = env.reset(options={"index": 0})
    assert info["ground_truth"] == 12.0


def test_rewind_and_inject(env) -> None:
    env.reset(options={"index": 0})
    env.step(RUN_12)
    env.step("```python\nprint('second')\n```")
    assert env.executions == 2
    env.rewind(1)
    assert env.turn == 1 and env.executions == 1
    assert all(m.turn <= 1 for m in env.transcript)
    hint = env.inject("Wait: re-check the constraint.", source="intervener")
    assert hint.startswith("Wait")
    assert env.transcript.messages[-1].source == "intervener"
    _, reward, terminated, _, _ = env.step("\\boxed{12}")
    assert reward == 1.0 and terminated
    with pytest.raises(ValueError):
        env.rewind(99)


def test_bad_arguments_are_explained(sandbox) -> None:
    with pytest.raises(ValueError, match="rendering"):
        ORModelingEnv(PROBLEMS, sandbox=sandbox, rendering="html")
    with pytest.raises(ValueError, match="tolerance"):
        ORModelingEnv(PROBLEMS, sandbox=sandbox, tolerance="loose")
    with pytest.raises(ValueError, match="empty"):
        ORModelingEnv([], sandbox=sandbox)
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox)
    with pytest.raises(RuntimeError, match="reset"):
        env.step("x")
    env.reset()
    with pytest.raises(TypeError, match="str"):
        env.step(123)  # type: ignore[arg-type]


def test_async_episodes_run_concurrently(sandbox) -> None:
    async def episode(index: int) -> float:
        env = ORModelingEnv(PROBLEMS, sandbox=sandbox)
        await env.areset(options={"index": 0})
        await env.astep(f"```python\nimport time\ntime.sleep(0.3)\nprint(12 + {index} * 0)\n```")
        _, reward, *_ = await env.astep("\\boxed{12}")
        return reward

    async def main() -> tuple[list[float], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        rewards = await asyncio.gather(*(episode(i) for i in range(4)))
        tick_task.cancel()
        return list(rewards), ticks

    rewards, ticks = asyncio.run(main())
    assert rewards == [1.0] * 4
    # The event loop kept running while executions were in flight.
    assert ticks >= 20


def test_render_ansi(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, render_mode="ansi")
    env.reset(options={"index": 0})
    assert "[0:env/user]" in env.render()


def test_package_exports() -> None:
    assert or_env.grade("\\boxed{12}", 12.0).correct
    assert or_env.ORModelingEnv.metadata["stop_sequences"] == ["```output"]
