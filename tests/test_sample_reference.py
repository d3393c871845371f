"""Every bundled sample problem: its reference program, run through the env, scores 1."""

from __future__ import annotations

import pytest

from or_env import INFEASIBLE, UNBOUNDED, ORModelingEnv, load_problems
from or_env.reference import play_reference_episode
from or_env.sandbox.local import LocalSandbox

SAMPLE = load_problems("sample")


@pytest.fixture(scope="module")
def env():
    with LocalSandbox(workers=2) as sandbox:
        yield ORModelingEnv(SAMPLE, sandbox=sandbox)


def test_sample_set_covers_the_required_kinds() -> None:
    assert len(SAMPLE) >= 20
    answers = [p.answer for p in SAMPLE]
    assert INFEASIBLE in answers and UNBOUNDED in answers
    assert all(p.meta.get("reference_code") for p in SAMPLE)
    assert len({p.id for p in SAMPLE}) == len(SAMPLE)


@pytest.mark.parametrize("problem", SAMPLE, ids=[p.id for p in SAMPLE])
def test_reference_program_scores_one(env, problem) -> None:
    episode = play_reference_episode(env, problem)
    assert episode.reward == 1.0, episode
    assert episode.termination_reason == "answered"


@pytest.mark.parametrize("problem", SAMPLE[:6], ids=[p.id for p in SAMPLE[:6]])
def test_wrong_answer_scores_zero(env, problem) -> None:
    env.reset(options={"problem": problem})
    wrong = str(problem.answer * 1.5 + 1) if isinstance(problem.answer, float) else "17"
    _, reward, terminated, _, info = env.step(f"\\boxed{{{wrong}}}")
    assert reward == 0.0 and terminated and info["correct"] is False
