"""Tolerance rules that decide when a numeric answer matches the ground truth.

Each preset reproduces a rule from a published codebase, so results can be compared with the
numbers those papers report. `p` is the predicted value, `g` the ground truth.

- "default": `|p - g| <= max(1e-4 * |g|, 1e-6)`, and additionally `|p - g| <= 0.5 * 10**-d`
  when g is not an integer and was stated with d decimals (135.27 -> d = 2). See
  `or_env.grading` for why this is the default.
- "strict": `|p - g| <= max(1e-6 * |g|, 1e-9)`, no allowance for rounded ground truths.
- "sirl" (alias "optimind"): `|p - g| / (|g| + 1) < 1e-6`, strict. Cardinal-Operations/SIRL
  `check_result.py` and its GRPO reward `answer_reward` (`cri = 1e-6`); microsoft/OptiGuide
  optimind `rewards/utils.py::compute_acc` with its default `--precision 1e-6`.
- "orlm" (alias "optmath"): both values rounded to the nearest integer with Python's `round`
  (halves to even), then `|p_r - g_r| / |g_r| <= 0.05`, or `|p_r| <= 0.05` when `g_r == 0`.
  Cardinal-Operations/ORLM `eval/execute.py` (`--numerical_err_tolerance 0.05`) and
  optsuite/OptMATH `eval/executor.py::ResultEvaluator` (same rule and default). On ORLM's
  published outputs this preset gives ORLM's own verdicts, except where the ground truth is
  -99999: ORLM compares that as a number, `or_env.grading` as NO_OPTIMUM (no optimal
  solution: an infeasible or an unbounded answer matches it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

RULES = ("relative", "sirl", "rounded_relative")

# Float noise: a bound of 0.01 computed as 100.01 - 100 is 0.010000000000005116.
_BOUNDARY_SLACK = 1e-9


@dataclass(frozen=True)
class Tolerance:
    """How close a predicted number must be to the ground truth to count as correct.

    rule: "relative" (`|p-g| <= max(rel_tol*|g|, abs_tol)`), "sirl"
        (`|p-g|/(|g|+1) < rel_tol`) or "rounded_relative" (ORLM: round both to integers, then
        relative error `<= rel_tol`, or `|p_r| <= abs_tol` when the rounded truth is 0).
    rel_tol: the relative threshold of the rule.
    abs_tol: the absolute floor ("relative") or the zero-truth threshold ("rounded_relative");
        unused by "sirl".
    gt_precision_slack: also accept `|p-g| <= 0.5 * 10**-d` for a non-integer ground truth
        stated with d decimals ("relative" rule only).
    name: a label for reports.
    """

    rule: str = "relative"
    rel_tol: float = 1e-4
    abs_tol: float = 1e-6
    gt_precision_slack: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown tolerance rule {self.rule!r}; choose from {RULES}")
        for field_name in ("rel_tol", "abs_tol"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{field_name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{field_name} must be a finite number >= 0, got {value!r}")

    def matches(self, predicted: float, truth: float) -> bool:
        """Whether `predicted` is within this tolerance of `truth` (both finite)."""
        if self.rule == "sirl":
            return abs(predicted - truth) / (abs(truth) + 1.0) < self.rel_tol
        if self.rule == "rounded_relative":
            rounded_truth, rounded_pred = round(truth), round(predicted)
            if rounded_truth == 0:
                return abs(rounded_pred) <= self.abs_tol
            return abs((rounded_pred - rounded_truth) / rounded_truth) <= self.rel_tol
        error = abs(predicted - truth)
        bound = max(self.rel_tol * abs(truth), self.abs_tol)
        if self.gt_precision_slack:
            bound = max(bound, stated_precision(truth))
        return error <= bound * (1.0 + _BOUNDARY_SLACK)


def stated_precision(truth: float) -> float:
    """Half a unit in the last decimal place of a non-integer `truth` (0.0 for integers).

    The shortest repr of a float gives back the digits it was written with, so a ground truth
    read from "135.27" gives 0.005, and one computed as 430.7692307692308 gives 5e-14.
    """
    if not math.isfinite(truth) or truth == int(truth):
        return 0.0
    exponent = Decimal(repr(truth)).as_tuple().exponent
    if not isinstance(exponent, int) or exponent >= 0:
        return 0.0
    return 0.5 * 10.0**exponent


_SIRL = Tolerance(rule="sirl", rel_tol=1e-6, abs_tol=0.0, name="sirl")
_ORLM = Tolerance(rule="rounded_relative", rel_tol=0.05, abs_tol=0.05, name="orlm")

TOLERANCE_PRESETS: dict[str, Tolerance] = {
    "default": Tolerance(rel_tol=1e-4, abs_tol=1e-6, gt_precision_slack=True, name="default"),
    "strict": Tolerance(rel_tol=1e-6, abs_tol=1e-9, name="strict"),
    "sirl": _SIRL,
    "optimind": _SIRL,
    "orlm": _ORLM,
    "optmath": _ORLM,
}


def get_tolerance(
    preset: str | Tolerance = "default",
    *,
    rel_tol: float | None = None,
    abs_tol: float | None = None,
) -> Tolerance:
    """The Tolerance for a preset name (or a Tolerance), with rel_tol / abs_tol overridden."""
    if isinstance(preset, Tolerance):
        tolerance = preset
    elif isinstance(preset, str) and preset in TOLERANCE_PRESETS:
        tolerance = TOLERANCE_PRESETS[preset]
    else:
        raise ValueError(
            f"unknown tolerance preset {preset!r}; choose one of {sorted(TOLERANCE_PRESETS)} "
            "or pass an or_env.grading.Tolerance"
        )
    if rel_tol is None and abs_tol is None:
        return tolerance
    return Tolerance(
        rule=tolerance.rule,
        rel_tol=tolerance.rel_tol if rel_tol is None else rel_tol,
        abs_tol=tolerance.abs_tol if abs_tol is None else abs_tol,
        gt_precision_slack=tolerance.gt_precision_slack,
        name=f"{tolerance.name}+override",
    )
