"""Episodes played with a problem's reference program (the bundled sample set has one each).

This is a scripted policy, not a model: it runs the reference program, reads the
`OBJECTIVE: <value>` or `STATUS: infeasible|unbounded` line the program prints, and
answers with it. It shows an episode end to end on embedded defaults and checks that
every bundled problem's stated answer is what its program computes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from or_env.env import ORModelingEnv
from or_env.problems import Problem

_RESULT_RE = re.compile(r"^(OBJECTIVE|STATUS):\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ReferenceEpisode:
    """The outcome of one scripted reference episode."""

    problem_id: str
    reward: float
    answer: str | None
    turns: int
    exec_seconds: float
    termination_reason: str | None


def reference_code(problem: Problem) -> str:
    code = problem.meta.get("reference_code")
    if not code:
        raise ValueError(
            f"problem {problem.id!r} has no reference program (meta['reference_code'])"
        )
    return str(code)


def read_reported_answer(output: str) -> str | None:
    """The value in the last OBJECTIVE/STATUS line of a reference program's output."""
    matches = _RESULT_RE.findall(output)
    return matches[-1][1] if matches else None


def play_reference_episode(env: ORModelingEnv, problem: Problem) -> ReferenceEpisode:
    """Play one episode on `problem` with its reference program as the policy."""
    env.reset(options={"problem": problem})
    code = reference_code(problem)
    code_turn = f"I will model this and solve it with pulp.\n```python\n{code}\n```\n"
    observation, reward, terminated, truncated, info = env.step(code_turn)
    exec_seconds = float(info.get("execution", {}).get("wall_s", 0.0))
    answer = read_reported_answer(observation)
    if not (terminated or truncated):
        final = f"The solver reports {answer}, so the answer is \\boxed{{{answer}}}."
        _, reward, terminated, truncated, info = env.step(final)
    return ReferenceEpisode(
        problem_id=problem.id,
        reward=reward,
        answer=answer,
        turns=info["turn"],
        exec_seconds=exec_seconds,
        termination_reason=info.get("termination_reason"),
    )
