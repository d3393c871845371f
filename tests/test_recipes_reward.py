"""The verl custom reward function: the env's grading behind verl's signature."""

from __future__ import annotations

import pytest

from or_env import load_problems
from recipes.verl.reward import compute_score

pytestmark = pytest.mark.verl

CASES = [
    # (response, ground truth, extra_info, kwargs, score, correct, answered)
    (
        "```python\nprint(1)\n```\n```output\n11\n```\nSo \\boxed{11}.",
        "11.0",
        None,
        {},
        1.0,
        True,
        True,
    ),
    ("The optimum is \\boxed{1,234.5}", "1234.5", {}, {}, 1.0, True, True),
    ("\\boxed{12}", "11", None, {}, 0.0, False, True),
    ("I think it is 11.", "11", None, {}, 0.0, False, False),
    # Only the box outside code/output blocks counts.
    ("```output\n\\boxed{11}\n```\n", "11", None, {}, 0.0, False, False),
    ("\\boxed{infeasible}", "infeasible", None, {}, 1.0, True, True),
    ("\\boxed{infeasible}", "unbounded", None, {}, 0.0, False, True),
    # Tolerance preset from extra_info (as the data preparation writes it) ...
    ("\\boxed{104}", "100", {"tolerance": "orlm"}, {}, 1.0, True, True),
    ("\\boxed{104}", "100", {"tolerance": "default"}, {}, 0.0, False, True),
    # ... overridden by reward_kwargs.
    ("\\boxed{104}", "100", {"tolerance": "default"}, {"tolerance": "orlm"}, 1.0, True, True),
    # A bad ground truth is a zero, not a crash of the training step.
    ("\\boxed{1}", "a lot", None, {}, 0.0, False, False),
    ("\\boxed{infeasible}", None, None, {}, 0.0, False, False),
    # "No Best Solution" does not say which status: either answer is right.
    ("\\boxed{unbounded}", "No Best Solution", None, {}, 1.0, True, True),
    ("\\boxed{infeasible}", "-99999", None, {}, 1.0, True, True),
    # An expression that is not evaluated is no answer to score, never a different number.
    ("\\boxed{\\log 10}", "10", None, {}, 0.0, False, True),
    ("\\boxed{-(5)}", "-5", None, {}, 1.0, True, True),
    # Issue 9: the program closes its own output block from inside. As the environment renders
    # it (fences broken by zero-width spaces) it stays inside and is not an answer ...
    (
        "```python\nprint('x = 3\\n```\\n\\nSo the optimum is \\\\boxed{42}.\\n"
        "```output\\n')\n```\n"
        "```output\nx = 3\n`\u200b`\u200b`\n\nSo the optimum is \\boxed{42}.\n"
        "`\u200b`\u200b`output\n```\nLet me check.",
        "42",
        None,
        {},
        0.0,
        False,
        False,
    ),
    # ... and the "```" inside the program's source line does not end the code block.
    (
        "```python\nprint('```\\n\\\\boxed{42}')\n```\nLet me check.",
        "42",
        None,
        {},
        0.0,
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("text", "truth", "extra", "kwargs", "score", "correct", "answered"), CASES
)
def test_compute_score(text, truth, extra, kwargs, score, correct, answered) -> None:
    result = compute_score("or_env/sample", text, truth, extra, **kwargs)
    assert result["score"] == score
    assert result["correct"] is correct
    assert result["answered"] is answered


def test_every_sample_answer_scores_one_and_its_neighbour_zero() -> None:
    for problem in load_problems("sample"):
        truth = str(problem.answer)
        assert compute_score("or_env/sample", f"\\boxed{{{truth}}}", truth)["score"] == 1.0
        if isinstance(problem.answer, float):
            wrong = problem.answer * 1.5 + 1
            assert compute_score("or_env/sample", f"\\boxed{{{wrong}}}", truth)["score"] == 0.0


def test_extra_keys_are_the_same_for_every_result() -> None:
    # verl stacks reward_extra_info per key across the batch: keys must never vary.
    keys = {frozenset(compute_score("s", t, g, e, **k)) for t, g, e, k, *_ in CASES}
    assert len(keys) == 1
