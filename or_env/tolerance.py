"""Tolerance rules and presets: when a numeric answer matches the ground truth.

`p` is the predicted value, `g` the ground truth. A preset named after a paper follows one
decision function of that paper's code (`SOURCES` names repository, file, function and the
commit read) and comes in two modes:

- the preset itself ("sirl", "orlm", ...) uses the source's numeric rule with or-env's
  principled reading of markers and statuses (listed per preset as `departures`);
- its strict mode ("sirl-strict", "orlm-strict", ...) reproduces the source's verdicts,
  quirks included: markers compared as numbers where the source does, every non-optimal status
  equal to every other, the source's zero and tiny-value behaviour (`strict_departures` lists
  the few places where the source gives no verdict at all, e.g. it raises). Use it to
  reproduce a published number; use the preset itself to compare models.

Both modes grade the value or-env reads from the answer box (`or_env.answer_parsing`); how the
sources pull a value out of program output (regexes, re-runs with changed variable types) is
not part of any preset.

Presets (`TOLERANCE_PRESETS`):

- "default": `|p - g| <= max(1e-4 * |g|, 1e-6)`, and additionally `|p - g| <= 0.5 * 10**-d`
  when g is not an integer and was stated with d decimals (135.27 -> d = 2). See
  `or_env.grading` for why this is the default. No source.
- "strict": `|p - g| <= max(1e-6 * |g|, 1e-9)`, no allowance for rounded ground truths (a
  tight rule of this package, not a reproduction mode).
- "sirl" / "sirl-strict": `|p - g| / (|g| + 1) <= 1e-6`. Cardinal-Operations/SIRL
  `reproduce_gurobi.ipynb` (same in `reproduce_copt.ipynb`), `check_result`: the evaluation
  behind SIRL's tables.
- "sirl-reward" / "sirl-reward-strict": `|p - g| / (|g| + 1) < 1e-6`. Cardinal-Operations/SIRL
  `SIRLTrain/reward_func/stage2_reward_gurobi.py` (and stage1, batch_score), `answer_reward`:
  SIRL's RL training reward.
- "optimind" / "optimind-strict": `|p - g| / (|g| + 1) < 1e-6`. microsoft/OptiGuide
  `optimind/rewards/utils.py`, `compute_acc` (eval.py `--precision 1e-6`).
- "orlm" / "orlm-strict": both rounded to the nearest integer with Python's `round` (halves to
  even), then `|p_r - g_r| / |g_r| <= 0.05`, or `|p_r| <= 0.05` when `g_r == 0`.
  Cardinal-Operations/ORLM `eval/execute.py`, the pass@1 judge in `main`
  (`--numerical_err_tolerance 0.05`).
- "optmath" / "optmath-strict": the same rounding rule. optsuite/OptMATH `eval/executor.py`,
  `ResultEvaluator.evaluate_result` (`numerical_tolerance: 0.05`).

On ORLM's 556 published outputs, "orlm-strict" gives ORLM's verdict on every problem (the
three -99999 items included); "orlm" differs on those three (tests/test_grading_presets_replay.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

RULES = ("relative", "scaled_le", "scaled_lt", "rounded_relative")

# Float noise: a bound of 0.01 computed as 100.01 - 100 is 0.010000000000005116.
_BOUNDARY_SLACK = 1e-9

#: The suffix that names a preset's strict reproduction mode ("orlm" -> "orlm-strict").
STRICT_SUFFIX = "-strict"


@dataclass(frozen=True)
class PresetSource:
    """The published decision function a preset follows, and where the preset departs from it.

    key: the source's name in `SOURCES` (also the preset's name).
    repository, path, function, commit: where the rule was read (GitHub owner/name, file,
        function, commit).
    rule: the source's comparison, in or-env's notation.
    markers: how the source reads "no optimal solution" in ground truths and predictions.
    departures: where the principled preset gives a different verdict than the source, on
        purpose.
    strict_departures: where even the strict mode cannot give the source's verdict (the source
        raises, or never sees such an input).
    """

    key: str
    repository: str
    path: str
    function: str
    commit: str
    rule: str
    markers: str
    departures: tuple[str, ...]
    strict_departures: tuple[str, ...]

    def describe(self) -> str:
        """A docstring-like text: source, rule, markers, departures of both modes."""
        lines = [
            f"{self.key}: {self.repository} {self.path}, {self.function} "
            f"(read at commit {self.commit[:10]})",
            f"rule: {self.rule}",
            f"markers: {self.markers}",
            f"departures of '{self.key}' (principled):",
            *(f"  - {item}" for item in self.departures),
            f"departures of '{self.key}{STRICT_SUFFIX}' (reproduction):",
            *(f"  - {item}" for item in self.strict_departures),
        ]
        return "\n".join(lines)


# Departures several presets share, in or-env's words (each source's list below says which apply).
_MINUS_99999_TRUTH = (
    "a ground truth of -99999 means no optimal solution: an infeasible or unbounded answer is "
    "right, a number near -99999 is wrong (the source compares it as a number)"
)
_MINUS_99999_ANSWER = (
    "an answer of -99999 reads as 'infeasible' (the source compares it as a number)"
)
_SIRL_FIXED = (
    "in the sirl-fixed versions, -9999 means no optimal solution (their adapter); the source "
    "compares it as a number"
)
_NAMED_STATUS = (
    "a ground truth that names one status ('infeasible', 'unbounded') is matched only by that "
    "status; the source's pipeline prints one marker for every non-optimal status (and cannot "
    "read such a ground truth at all)"
)
_PERCENT = "an answer written with % also matches the ground truth / 100 ('12.5%' for 0.125)"
_EXTRACTION = (
    "the value compared is or-env's reading of the box (or the value given); the source's own "
    "extraction from program output is not reproduced"
)
_UNREADABLE = "an answer or-env reads as 'unparsable' or 'ambiguous' is wrong"

SOURCES: dict[str, PresetSource] = {
    "sirl": PresetSource(
        key="sirl",
        repository="Cardinal-Operations/SIRL",
        path="reproduce_gurobi.ipynb (same cell in reproduce_copt.ipynb)",
        function="check_result",
        commit="8e85194b8f251ec229cc310c2c6e8794ead85682",
        rule="|p - g| / (|g| + 1) <= 1e-6 (its first test; the later '< 1e-6' tests only see "
        "pairs the first rejected)",
        markers="a ground truth equal to 'No Best Solution' or whose text contains '-9999' (-9999, "
        "-99999, -99990, -999999, -9999.5) is None, 'no optimal solution'; it matches a run "
        "that printed 'nfeasible' or no objective (any non-optimal status, or a status check "
        "that printed nothing); a number never matches it",
        departures=(
            "only -99999 is a marker (and -9999 in the sirl-fixed versions, through their "
            "adapter); other values whose text contains '-9999' (-9999, -99990, -99998, "
            "-999999) are numbers",
            "an answer of -99999 reads as 'infeasible', so it is right for 'No Best Solution' "
            "and -99999 (the source: a number against its None, wrong)",
            "a missing answer (grade_value(None)) is wrong; the source counts a run without an "
            "objective as right for a no-optimum ground truth",
            _NAMED_STATUS,
            _PERCENT,
            "NaN and infinity are 'unparsable', wrong; the source's regex finds no number in "
            "them, so no objective, right for a no-optimum ground truth",
        ),
        strict_departures=(
            _EXTRACTION + " (its regex '-?\\d+\\.?\\d*' takes the first digits of the "
            "objective line, so 1e-06 reads as 1; it re-runs a wrong program with variable types "
            "changed)",
            "a ground-truth status word other than 'No Best Solution', and a declared null, make "
            "check_result raise (float()); strict reads them as its no-solution marker",
            "NaN and infinity are 'unparsable', wrong (the source: no objective, see above)",
            _UNREADABLE,
        ),
    ),
    "sirl-reward": PresetSource(
        key="sirl-reward",
        repository="Cardinal-Operations/SIRL",
        path="SIRLTrain/reward_func/stage2_reward_gurobi.py (same function in "
        "stage1_reward_gurobi.py and batch_score_gurobi.py)",
        function="answer_reward",
        commit="8e85194b8f251ec229cc310c2c6e8794ead85682",
        rule="err = |g| if g else 1; 0 if g is None and p is None; |g - p| / (|g| + 1) if g and "
        "p; right iff err < 1e-6. A ground truth of 0 is never right; against a predicted 0 "
        "or no objective, right iff |g| < 1e-6",
        markers="only a null ground truth means no optimal solution; it matches a run that "
        "printed no objective (any non-optimal status); -99999 and -9999 are numbers",
        departures=(
            "a ground truth of 0 is matched under |p - g| / (|g| + 1) < 1e-6 (the source never "
            "matches it)",
            "a predicted 0 is compared by the rule, not by |g| < 1e-6 (they differ at |g| = "
            "1e-6); a status or missing answer against a tiny ground truth (|g| < 1e-6) is "
            "wrong (the source: right)",
            _MINUS_99999_TRUTH,
            _SIRL_FIXED,
            _MINUS_99999_ANSWER,
            "a missing answer is wrong, also against a null ground truth (the source: right)",
            _NAMED_STATUS,
            _PERCENT,
            "NaN and infinity are 'unparsable', wrong (the source's regex finds no number: no "
            "objective)",
        ),
        strict_departures=(
            _EXTRACTION + " (the regex of its extract_obj, as in check_result)",
            "a missing answer stands for a run that finished without an objective (the "
            "source's None with code 'Done'); a crashed run is the caller's to mark wrong",
            "a ground-truth string makes answer_reward raise (np.abs of a str): numeric "
            "strings are read as their number, status words as the null marker",
            "NaN and infinity are 'unparsable', wrong (the source: no objective)",
            _UNREADABLE,
        ),
    ),
    "optimind": PresetSource(
        key="optimind",
        repository="microsoft/OptiGuide",
        path="optimind/rewards/utils.py",
        function="compute_acc",
        commit="419cf7b9eee20b6af036abf15152fa775b20c951",
        rule="|p - g| / (|g| + 1) < precision, precision = 1e-6 (optimind/eval.py "
        "--precision); a precision above 1e-3 switches to |p - g| < precision",
        markers="only a null ground truth means no optimal solution; it matches any run "
        "without an objective (non-optimal status, crash, no code); -99999 is a number; a "
        "list of ground truths matches if any element does",
        departures=(
            _MINUS_99999_TRUTH,
            _SIRL_FIXED,
            _MINUS_99999_ANSWER,
            "a missing answer is wrong, also against a null ground truth (the source: right)",
            _NAMED_STATUS,
            _PERCENT,
            "NaN and infinity are 'unparsable', wrong (the source's regex finds no number: no "
            "objective)",
            "a rel_tol override above 1e-3 keeps the scaled rule (the source switches to "
            "|p - g| < precision)",
        ),
        strict_departures=(
            _EXTRACTION + " (its regex after 'Just print the best solution:')",
            "a missing answer stands for the source's None objective (any run without one)",
            "a ground-truth status word makes eval.py raise (ast.literal_eval) before "
            "compute_acc; strict reads it as the null marker. '1,234' is read as 1234 (eval.py: "
            "the tuple (1, 234), never matched)",
            "a ground truth listing several values is refused by or-env's loader (the source: "
            "right if any matches)",
            "NaN and infinity are 'unparsable', wrong (the source: no objective)",
            _UNREADABLE,
        ),
    ),
    "orlm": PresetSource(
        key="orlm",
        repository="Cardinal-Operations/ORLM",
        path="eval/execute.py",
        function="main (the pass@1 judge after execution)",
        commit="33bc47d0a1d1710d24ab839118bdf4cb89b9e31b",
        rule="round(p), round(g) (Python, halves to even); |p_r - g_r| / |g_r| <= 0.05, or "
        "|p_r| <= 0.05 when g_r == 0 (--numerical_err_tolerance 0.05)",
        markers="a ground truth equal to 'No Best Solution' matches exactly the answer 'No Best "
        "Solution', which its epilogue prints for every non-optimal status; -99999 is "
        "compared as a number",
        departures=(
            _MINUS_99999_TRUTH + "; on ORLM's 556 published answers this changes 3 verdicts "
            "(NL4Opt LPWP_prob_38, _234, _261: answer 'No Best Solution', ORLM wrong, here right)",
            _MINUS_99999_ANSWER + ", right for 'No Best Solution'",
            _SIRL_FIXED,
            _NAMED_STATUS,
            "ground truths execute.py cannot read ('No Best Solution.', a declared null, "
            "'1,234') are read (it raises)",
            _PERCENT + " (the source raises on '%')",
            "NaN and infinity are 'unparsable', wrong (the source raises in round())",
        ),
        strict_departures=(
            _EXTRACTION + " (the text after 'Just print the best solution:' up to the line "
            "end, through float())",
            "a ground truth execute.py cannot float() makes it raise: strict reads a status word "
            "or a declared null as 'No Best Solution' and a number ('1,234') as or-env does",
            "NaN and infinity are 'unparsable', wrong (the source raises in round())",
            _UNREADABLE,
        ),
    ),
    "optmath": PresetSource(
        key="optmath",
        repository="optsuite/OptMATH",
        path="eval/executor.py",
        function="ResultEvaluator.evaluate_result",
        commit="f15bbc4477c70db85ad148df8bcc1b780bca0f8c",
        rule="round(p), round(g) (Python, halves to even); |p_r - g_r| / |g_r| <= 0.05, or "
        "|p_r| <= 0.05 when g_r == 0 (numerical_tolerance 0.05)",
        markers="a ground truth 'No Best Solution' or 'No Best Solution.' matches exactly that "
        "answer; its executor prints 'No Best Solution' (no period) for every non-optimal "
        "status, so 'No Best Solution.' is never matched; any other ground truth float() "
        "cannot read (a status word, a null) is never matched; -99999 is a number",
        departures=(
            _MINUS_99999_TRUTH,
            _MINUS_99999_ANSWER + ", right for 'No Best Solution'",
            _SIRL_FIXED,
            "'No Best Solution.', status words and declared nulls are matched by a status "
            "answer (the source matches nothing)",
            _NAMED_STATUS,
            _PERCENT + " (the source's float() refuses '%': wrong)",
        ),
        strict_departures=(
            _EXTRACTION + " (as ORLM's; it also re-runs a wrong program with variable types, "
            "inequalities and the objective sense changed)",
            "a numeric ground truth float() cannot read ('1,234', '[18.0]') is read as or-env "
            "does (the source: every answer wrong)",
            _UNREADABLE,
        ),
    ),
}


@dataclass(frozen=True)
class Tolerance:
    """How close a predicted number must be to the ground truth to count as correct.

    rule: "relative" (`|p-g| <= max(rel_tol*|g|, abs_tol)`), "scaled_le"
        (`|p-g|/(|g|+1) <= rel_tol`, SIRL's check_result), "scaled_lt"
        (`|p-g|/(|g|+1) < rel_tol`, SIRL's answer_reward, OptiMind's compute_acc) or
        "rounded_relative" (ORLM, OptMATH: round both to integers, then relative error
        `<= rel_tol`, or `|p_r| <= abs_tol` when the rounded truth is 0).
    rel_tol: the relative threshold of the rule.
    abs_tol: the absolute floor ("relative") or the zero-truth threshold ("rounded_relative");
        unused by the scaled rules.
    gt_precision_slack: also accept `|p-g| <= 0.5 * 10**-d` for a non-integer ground truth
        stated with d decimals ("relative" rule only).
    name: a label for reports.
    source: the `SOURCES` key of the decision function this tolerance follows, or None.
    strict: reproduce that source's verdicts, quirks included (see `or_env.grading`); needs a
        source.
    """

    rule: str = "relative"
    rel_tol: float = 1e-4
    abs_tol: float = 1e-6
    gt_precision_slack: bool = False
    name: str = "custom"
    source: str | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown tolerance rule {self.rule!r}; choose from {RULES}")
        for field_name in ("rel_tol", "abs_tol"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{field_name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{field_name} must be a finite number >= 0, got {value!r}")
        if self.source is not None and self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; choose from {sorted(SOURCES)}")
        if self.strict and self.source is None:
            raise ValueError("strict=True reproduces a source: name one with source=")

    def describe(self) -> str:
        """This tolerance in words: its rule and, for a named preset, its source and departures.

        A named preset lists the departures of its own mode (`PresetSource.departures` for the
        principled preset, `strict_departures` for "<name>-strict").
        """
        if self.source is None:
            slack = (
                ", plus half a unit of a rounded ground truth" if self.gt_precision_slack else ""
            )
            return (
                f"{self.name}: rule {self.rule}, rel_tol {self.rel_tol:g}, "
                f"abs_tol {self.abs_tol:g}{slack} (this package's own rule, no source)"
            )
        source = SOURCES[self.source]
        mode = "reproduces the source's verdicts" if self.strict else "principled markers"
        items = source.strict_departures if self.strict else source.departures
        return "\n".join(
            [
                f"{self.name} ({mode}): {source.repository} {source.path}, {source.function} "
                f"(commit {source.commit[:10]})",
                f"rule: {source.rule}",
                f"markers in the source: {source.markers}",
                "departures:",
                *(f"  - {item}" for item in items),
            ]
        )

    def matches(self, predicted: float, truth: float) -> bool:
        """Whether `predicted` is within this tolerance of `truth` (both finite).

        The numeric rule alone; how a strict tolerance treats zero, markers and statuses is
        decided by `or_env.grading`.
        """
        if self.rule in ("scaled_le", "scaled_lt"):
            scaled = abs(predicted - truth) / (abs(truth) + 1.0)
            return scaled <= self.rel_tol if self.rule == "scaled_le" else scaled < self.rel_tol
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


def _source_presets(source: str, rule: str, rel_tol: float, abs_tol: float) -> dict[str, Tolerance]:
    """The principled preset named after a source, and its strict mode."""
    return {
        name: Tolerance(rule, rel_tol, abs_tol, name=name, source=source, strict=strict)
        for name, strict in ((source, False), (source + STRICT_SUFFIX, True))
    }


TOLERANCE_PRESETS: dict[str, Tolerance] = {
    "default": Tolerance(rel_tol=1e-4, abs_tol=1e-6, gt_precision_slack=True, name="default"),
    "strict": Tolerance(rel_tol=1e-6, abs_tol=1e-9, name="strict"),
    **_source_presets("sirl", "scaled_le", 1e-6, 0.0),
    **_source_presets("sirl-reward", "scaled_lt", 1e-6, 0.0),
    **_source_presets("optimind", "scaled_lt", 1e-6, 0.0),
    **_source_presets("orlm", "rounded_relative", 0.05, 0.05),
    **_source_presets("optmath", "rounded_relative", 0.05, 0.05),
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
        source=tolerance.source,
        strict=tolerance.strict,
    )
