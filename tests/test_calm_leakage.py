"""The leak check for ground truths that are statuses, NO_OPTIMUM included."""

from __future__ import annotations

import pytest

from calm.leakage import leaked_numbers
from or_env.grading import INFEASIBLE, NO_OPTIMUM, UNBOUNDED

STATUS_LEAKS = [
    # (hint, ground truth, leaked pieces)
    ("The model is infeasible.", NO_OPTIMUM, ["infeasib"]),
    ("Is it Unbounded?", NO_OPTIMUM, ["Unbounded"]),
    ("There is no optimal solution.", NO_OPTIMUM, ["no optimal solution"]),
    ("It has no feasible solution.", NO_OPTIMUM, ["no feasible solution"]),
    ("Print No Best Solution then.", NO_OPTIMUM, ["No Best Solution"]),
    ("So there is no  optimum.", NO_OPTIMUM, ["no  optimum"]),
    ("Re-check constraint 3 against the statement.", NO_OPTIMUM, []),
    ("Use the optimal basis from the solver.", NO_OPTIMUM, []),
    ("The model is infeasible.", INFEASIBLE, ["infeasib"]),
    ("The model is unbounded.", INFEASIBLE, []),
    ("The model is unbounded.", UNBOUNDED, ["unbounded"]),
]


@pytest.mark.parametrize(("hint", "truth", "leaks"), STATUS_LEAKS)
def test_status_words_leak_a_status_ground_truth(hint: str, truth: str, leaks: list[str]) -> None:
    assert leaked_numbers(hint, truth) == leaks
