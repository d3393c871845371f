"""SkyRL-gym: `skyrl_gym.make("or_env", ...)` plays episodes with the reference programs.

Needs the `skyrl` extra (skips without it; OR_ENV_REQUIRE_SKYRL=1 fails). SkyRL-gym ships no
env checker, so these tests drive the env the way SkyRL's generator does: make, init, step
until done, close.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.extras import require_package

from or_env import load_problems
from or_env.reference import read_reported_answer, reference_code
from or_env.sandbox.local import LocalSandbox

pytestmark = pytest.mark.skyrl

SAMPLE = load_problems("sample")


@pytest.fixture(scope="module")
def skyrl_gym():
    module = require_package("skyrl_gym", extra="skyrl", flag="OR_ENV_REQUIRE_SKYRL")
    from or_env.integrations.skyrl import register

    register()
    register()  # idempotent: SkyRL-gym refuses a second registration of a name
    return module


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(workers=2) as box:
        yield box


def _play(skyrl_gym, row, sandbox, rendering: str = "inline", answer_turn=None):
    env = skyrl_gym.make(
        "or_env",
        env_config={"sandbox": sandbox, "rendering": rendering},
        extras={**row, "max_turns": 4},
    )
    prompt, meta = env.init(row["prompt"])
    assert prompt == row["prompt"] and meta["problem_id"] == row["extra_info"]["problem_id"]
    problem = next(p for p in SAMPLE if p.id == row["extra_info"]["problem_id"])
    out = env.step(f"I will solve it.\n```python\n{reference_code(problem)}\n```\n```output")
    assert out["reward"] == 0.0 and not out["done"]
    [observation] = out["observations"]
    assert observation["role"] == "user" and "OBJECTIVE" in observation["content"]
    answer = read_reported_answer(observation["content"])
    final = env.step(answer_turn or f"So the answer is \\boxed{{{answer}}}.")
    metrics = env.get_metrics()
    env.close()
    return out, final, metrics


def test_skyrl_make_plays_an_episode_with_the_reference_program(skyrl_gym, sandbox) -> None:
    from or_env.integrations.skyrl import ORSkyRLEnv, skyrl_rows

    rows = skyrl_rows("sample", limit=3)
    for row in rows:
        out, final, metrics = _play(skyrl_gym, row, sandbox)
        # Inline rendering: the observation continues the assistant turn after the stop
        # sequence the policy emitted (```output), so it does not open the block again.
        assert not out["observations"][0]["content"].startswith("```output")
        assert final["done"] and final["reward"] == 1.0 and final["observations"] == []
        assert final["metadata"]["correct"] is True
        assert "ground_truth" not in final["metadata"] and "transcript" not in final["metadata"]
        assert metrics == {"correct": 1.0, "turns": 2.0, "executions": 1.0, "answer_printed": 1.0}
    assert isinstance(skyrl_gym.make("or_env", extras=rows[0]), ORSkyRLEnv)
    summary = ORSkyRLEnv.aggregate_metrics([metrics, {**metrics, "correct": 0.0}])
    assert summary["correct"] == 0.5


def test_chat_rendering_and_a_wrong_answer(skyrl_gym, sandbox) -> None:
    from or_env.integrations.skyrl import skyrl_rows

    row = skyrl_rows("sample", limit=1)[0]
    out, final, metrics = _play(
        skyrl_gym, row, sandbox, rendering="chat", answer_turn="\\boxed{-1}"
    )
    assert out["observations"][0]["content"].startswith("```output")
    assert final["done"] and final["reward"] == 0.0 and metrics["correct"] == 0.0


def test_turn_budget_ends_the_episode(skyrl_gym, sandbox) -> None:
    from or_env.integrations.skyrl import skyrl_rows

    row = skyrl_rows("sample", limit=1)[0]
    env = skyrl_gym.make("or_env", env_config={"sandbox": sandbox}, extras={**row, "max_turns": 2})
    env.init(row["prompt"])
    assert env.step("thinking...")["done"] is False
    last = env.step("still thinking")
    assert last["done"] and last["reward"] == 0.0
    assert last["metadata"]["termination_reason"] == "max_turns"


def test_dataset_rows_are_what_skyrl_reads(skyrl_gym) -> None:
    from or_env.integrations.skyrl import skyrl_rows

    rows = skyrl_rows("sample")
    assert len(rows) == len(SAMPLE)
    row = rows[0]
    assert row["env_class"] == "or_env" and row["reward_spec"] == {"method": "env"}
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert SAMPLE[0].question[:50] in row["prompt"][1]["content"]
    assert row["extra_info"] == {"benchmark": "sample", "version": None, "problem_id": SAMPLE[0].id}
    assert "answer" not in str(row["extra_info"]) and str(SAMPLE[0].answer) not in str(row)
