"""verl custom reward function for the OR modeling task: the env's grading, nothing else.

Point verl at it with `reward.custom_reward_function.path=<this file>` and
`reward.custom_reward_function.name=compute_score`. It serves the rows that the agent loop
did not already score (the agent loop returns the env's reward as `reward_score`, and verl
then skips the reward function), and users who run verl's own loops (`single_turn_agent`,
`tool_agent`) on the RL parquet made by `recipes.verl.data`.

The reward is binary, as in the CALM/STORM paper: 1.0 when the last `\\boxed{}` answer
matches the ground truth under the tolerance, else 0.0. The tolerance preset comes from
`extra_info["tolerance"]` (written by the data preparation), or `tolerance=` passed through
`reward.custom_reward_function.reward_kwargs`, or "default".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from or_env.grading import GroundTruthError, grade

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = "default"


def _tolerance(extra_info: Mapping[str, Any] | None, override: str | None) -> str:
    if override:
        return override
    if extra_info and extra_info.get("tolerance"):
        return str(extra_info["tolerance"])
    return DEFAULT_TOLERANCE


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    tolerance: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Grade one decoded response; returns verl's dict form (`score` plus logged extras).

    `solution_str` is the whole decoded response (execution outputs included); only the
    last `\\boxed{}` outside code and output blocks counts (blocks are read from fence lines,
    as the environment reads them). Program output cannot forge an answer: the environment
    renders it so that it can never close its block (`or_env.protocol.render_output`). Time is
    linear in the length of the response. An unreadable ground truth (None included) scores
    0.0 and is logged (a data error must not crash a training step).
    """
    preset = _tolerance(extra_info, tolerance)
    try:
        verdict = grade(solution_str or "", ground_truth, preset=preset)
    except GroundTruthError as exc:
        logger.error("unreadable ground truth for %s: %s", data_source, exc)
        return {"score": 0.0, "correct": False, "answered": False, "ground_truth_error": True}
    return {
        "score": verdict.reward,
        "correct": verdict.correct,
        "answered": verdict.reason != "no_answer",
        "ground_truth_error": False,
    }
