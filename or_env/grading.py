"""Grading: the one definition of a correct answer, shared by the env, the evaluation harness
and the verl reward.

`grade(response_text, ground_truth)` finds the last `\\boxed{}` in a response
(`find_final_answer`), reads it (`or_env.answer_parsing`), normalises the ground truth
(`parse_ground_truth`) and compares the two under a `Tolerance` (`or_env.tolerance`).
`grade_value` does the same for a value the caller already has (e.g. from program output).

Default tolerance, and why: `|p - g| <= max(1e-4 * |g|, 1e-6)`, plus half a unit in the last
stated decimal of a non-integer ground truth.
- The CALM paper rewards a relative error, R = 1 if |a - a*| / |a*| <= eps, so the default is
  relative too (eps itself is chosen below, from solver and benchmark evidence).
- 1e-4 is the default relative MIP gap of Gurobi (`MIPGap`) and HiGHS (`mip_rel_gap`): a
  correctly modelled MIP solved with default settings may stop up to 1e-4 away from the
  optimum, and a grader cannot tell that apart from the optimum. It still separates answers
  that differ by a modelling mistake: of the 556 published ORLM-LLaMA-3-8B predictions on NL4Opt,
  MAMO ComplexLP and IndustryOR, only 2 fall between 1e-6 and 1e-4 relative error (135.2667 for
  a ground truth written 135.27, and 20242 for 20240), against 30 between 1e-4 and 5%.
- Ground truths are often rounded by the benchmark (135.27, 14.1, 0.07); the exact answer of a
  correct model can be further than 1e-4 from such a value, so a ground truth stated with d
  decimals also accepts anything within 0.5 * 10**-d. Integer-valued ground truths get no such
  allowance, and the slack comes from the data, never from how the model writes its answer.
- The absolute floor 1e-6 handles a ground truth of 0 (where relative error is undefined) and
  tiny ones at the level of solver feasibility tolerances.
The literature's rules are available by name (sources, rules and departures in
`or_env.tolerance.SOURCES`): "sirl" (|p - g| / (|g| + 1) <= 1e-6, SIRL's check_result),
"sirl-reward" and "optimind" (the same with <, SIRL's answer_reward and OptiMind's compute_acc),
"orlm" and "optmath" (5% after rounding both values to integers), plus "strict" (1e-6 relative,
no allowance for rounded ground truths). These presets read markers and statuses as described
below. Each named preset also has a strict reproduction mode, "<name>-strict", which gives the
source's own verdict: markers the source compares as numbers stay numbers (ORLM's -99999), every
status answer is the source's one "no solution" value, and the source's zero and tiny-value
behaviour is kept. It reads the value written in a `GroundTruthMarker` (what
`parse_ground_truth` returns for a marker, and so what `Problem.answer` holds).

Statuses: a ground truth is a number, INFEASIBLE ("infeasible", "no feasible solution"),
UNBOUNDED ("unbounded"), or NO_OPTIMUM: a marker that says there is no optimal solution without
saying why ("No Best Solution", "no optimal solution", -99999, "infeasible or unbounded"; a null
objective only where a benchmark version declares that convention, see
`or_env.problems.spec.Version.null_means_no_optimum`). INFEASIBLE is matched only by an
infeasible answer, UNBOUNDED only by an unbounded one, NO_OPTIMUM by either. A model's
"No Best Solution" or -99999 reads as INFEASIBLE (ORLM's programs print it for an infeasible
model). A ground truth of None is an error (GroundTruthError), never a silent "infeasible".

Percentages: both sides read a percentage as the number written ("12.5%" -> 12.5). A predicted
value written with a percent sign also matches a ground truth equal to that value / 100, so
"12.5%" is right for a ground truth of 12.5 or of 0.125; "12.5" without the sign only for 12.5.

`Grade.reason` is one of: "correct", "wrong_value", "status_mismatch" (a number where a status
was due, or the other way round, or the wrong status), "no_answer" (no box), "unparsable"
(empty box, no number, NaN or infinity, an expression that is not evaluated), "ambiguous"
(several different numbers or statuses), "not_executed" (set by the environment with
`require_executed_answer=True`: a correct value that no execution printed).

`answer_was_printed` tells whether a value appears in what programs printed (read by
`or_env.answer_parsing.printed_values`), within the tolerance.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from or_env.answer_parsing import (
    INFEASIBLE,
    INFEASIBLE_MARKER_VALUE,
    NO_OPTIMUM,
    UNBOUNDED,
    ParsedAnswer,
    PrintedValues,
    find_final_answer,
    parse_answer,
    parse_answer_value,
    printed_values,
)
from or_env.errors import DataError
from or_env.tolerance import TOLERANCE_PRESETS, Tolerance, get_tolerance

__all__ = [
    "INFEASIBLE",
    "NO_OPTIMUM",
    "REASONS",
    "TOLERANCE_PRESETS",
    "UNBOUNDED",
    "Grade",
    "GroundTruthError",
    "GroundTruthMarker",
    "ParsedAnswer",
    "PrintedValues",
    "Tolerance",
    "answer_was_printed",
    "find_final_answer",
    "get_tolerance",
    "grade",
    "grade_answer_content",
    "grade_value",
    "parse_answer",
    "parse_answer_value",
    "parse_ground_truth",
    "printed_values",
]

REASONS = (
    "correct",
    "wrong_value",
    "status_mismatch",
    "no_answer",
    "unparsable",
    "ambiguous",
    "not_executed",
)

# Ground-truth markers, by what they accept. Only a marker that names a status accepts only that
# status; the benchmarks' "no optimal solution" markers do not say which, so either matches.
_STATUS_MARKERS = {
    "infeasible": INFEASIBLE,
    "no feasible solution": INFEASIBLE,
    "unbounded": UNBOUNDED,
    "no best solution": NO_OPTIMUM,
    "no best solution.": NO_OPTIMUM,
    "no optimal solution": NO_OPTIMUM,
    "no optimum": NO_OPTIMUM,
    "infeasible or unbounded": NO_OPTIMUM,
    NO_OPTIMUM: NO_OPTIMUM,
}
_GT_LIST_RE = re.compile(r"^\[(.*)\]$", re.DOTALL)
_MISSING_HINT = (
    "a missing answer is not a marker: for a problem without an optimal solution write "
    "'infeasible', 'unbounded', or 'infeasible or unbounded' (also 'No Best Solution' or "
    "-99999) when the source does not say which; otherwise fix the data"
)


class GroundTruthError(DataError):
    """A ground-truth value that is neither a number nor a known infeasibility marker."""


class GroundTruthMarker(str):
    """A ground-truth status read from a benchmark's marker, remembering what the file held.

    It is its status string (INFEASIBLE, UNBOUNDED or NO_OPTIMUM): it compares and hashes
    equal to it, so `problem.answer == NO_OPTIMUM` holds, and JSON or `str()` keep only the
    status. `written` is the value the benchmark wrote ("No Best Solution", -99999, "-9999",
    None for a declared null); the strict presets read it the way their source does (ORLM
    compares -99999 as a number). `parse_ground_truth` returns a marker unchanged.
    """

    written: object

    def __new__(cls, status: str, written: object) -> GroundTruthMarker:
        if status not in (INFEASIBLE, UNBOUNDED, NO_OPTIMUM):
            raise ValueError(f"{status!r} is not a ground-truth status")
        marker = super().__new__(cls, status)
        marker.written = written
        return marker

    def __reduce__(self) -> tuple[type[GroundTruthMarker], tuple[str, object]]:
        return (GroundTruthMarker, (str(self), self.written))


def parse_ground_truth(value: object) -> float | str:
    """Normalise a benchmark's answer field to a float, INFEASIBLE, UNBOUNDED or NO_OPTIMUM.

    Accepts numbers (numpy's too), numeric strings ("1,234.5", "12.5%", "−5", "1e6"), OptiMind's
    one-element lists ("[18.0]"), and the markers "infeasible", "no feasible solution"
    (-> INFEASIBLE), "unbounded" (-> UNBOUNDED), "No Best Solution", "no optimal solution",
    "infeasible or unbounded", -99999 (-> NO_OPTIMUM). Raises GroundTruthError (a ValueError)
    for None, "null", "None" and other values that cannot be read (empty strings, prose, NaN,
    infinities, lists of several values).

    A status comes back as a `GroundTruthMarker` (a str equal to the status) that keeps the
    value as written, for the strict presets; a marker given back is returned as it is.
    """
    if isinstance(value, GroundTruthMarker):
        return value
    reading = _read_ground_truth(value)
    if isinstance(reading, str):
        return GroundTruthMarker(reading, value)
    if reading == INFEASIBLE_MARKER_VALUE:
        return GroundTruthMarker(NO_OPTIMUM, value)
    return reading


def _read_ground_truth(value: object) -> float | str:
    """`parse_ground_truth` without the numeric marker: -99999 stays a number."""
    if value is None:
        raise GroundTruthError(f"ground truth is None: {_MISSING_HINT}")
    if isinstance(value, bool):
        raise GroundTruthError(f"boolean ground truth {value!r}; expected a number or a marker")
    if isinstance(value, numbers.Real):
        number = float(value)
    else:
        text = str(value).strip()
        listed = _GT_LIST_RE.match(text)
        if listed:
            items = [item.strip() for item in listed.group(1).split(",") if item.strip()]
            if len(items) != 1:
                raise GroundTruthError(
                    f"ground truth {text[:60]!r} lists {len(items)} values; expected exactly one"
                )
            text = items[0].strip("'\"")
        lowered = " ".join(text.lower().split())
        if lowered in _STATUS_MARKERS:
            return _STATUS_MARKERS[lowered]
        if lowered in ("none", "null"):
            raise GroundTruthError(f"ground truth {text!r}: {_MISSING_HINT}")
        cleaned = text.replace(",", "").replace("\u2212", "-").replace("$", "").rstrip("%")
        try:
            number = float(cleaned.strip())
        except ValueError as exc:
            raise GroundTruthError(
                f"cannot read ground truth {text[:60]!r}: expected a number, 'infeasible', "
                "'unbounded', or 'infeasible or unbounded' / 'No Best Solution'"
            ) from exc
    if not math.isfinite(number):
        raise GroundTruthError(f"ground truth {value!r} is not a finite number")
    return number + 0.0


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer: whether it is correct, what was read, and why.

    correct: the answer matches the ground truth under the tolerance.
    predicted: the value read (float, INFEASIBLE, UNBOUNDED), or None when none was.
    ground_truth: the normalised ground truth.
    rel_error: |p - g| / |g| for numeric p and g with g != 0, else None.
    abs_error: |p - g| for numeric p and g, else None.
    reason: one of REASONS (see the module docstring).
    raw_answer: the raw content of the final box (None when graded from a value or no box).
    tolerance: the name of the tolerance used.
    """

    correct: bool
    predicted: float | str | None
    ground_truth: float | str
    rel_error: float | None
    abs_error: float | None
    reason: str
    raw_answer: str | None = None
    tolerance: str = "default"

    @property
    def reward(self) -> float:
        """The binary reward: 1.0 when correct, else 0.0."""
        return 1.0 if self.correct else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields plus `reward`."""
        return {**asdict(self), "reward": self.reward}


def _verdict(
    parsed: ParsedAnswer | None, truth: float | str, tolerance: Tolerance, raw: str | None
) -> Grade:
    """The verdict on a reading (None: no answer) under a principled or a strict tolerance."""
    if tolerance.strict:
        return _source_verdict(parsed, truth, tolerance, raw)
    if parsed is None:
        return Grade(False, None, truth, None, None, "no_answer", None, tolerance.name)
    value = parsed.value

    def make(correct: bool, reason: str, predicted: float | str | None = value) -> Grade:
        return _make_grade(correct, reason, predicted, truth, tolerance, raw)

    if value is None:
        reason = "ambiguous" if parsed.reason == "ambiguous" else "unparsable"
        return make(False, reason)
    if value == INFEASIBLE_MARKER_VALUE:
        value = INFEASIBLE
    if isinstance(value, str) or isinstance(truth, str):
        if value == truth or (truth == NO_OPTIMUM and value in (INFEASIBLE, UNBOUNDED)):
            return make(True, "correct", value)
        return make(False, "status_mismatch", value)
    if tolerance.matches(value, truth):
        return make(True, "correct")
    if parsed.percent and tolerance.matches(value / 100.0, truth):
        return make(True, "correct", value / 100.0)
    return make(False, "wrong_value")


def _make_grade(
    correct: bool,
    reason: str,
    predicted: float | str | None,
    truth: float | str,
    tolerance: Tolerance,
    raw: str | None,
) -> Grade:
    rel = abs_ = None
    if isinstance(predicted, float) and isinstance(truth, float):
        abs_ = abs(predicted - truth)
        rel = abs_ / abs(truth) if truth != 0 else None
    return Grade(correct, predicted, truth, rel, abs_, reason, raw, tolerance.name)


# ---------------------------------------------------------------------------------------------
# Strict presets: the source's own verdict (or_env.tolerance.SOURCES says where each rule is).
#
# Each source's decision code sees a ground truth that is a number or its one "no solution"
# value, and a prediction that is a number, that value (its pipeline prints one marker for every
# non-optimal status), or nothing. The readings below are that model; the tables in
# tests/test_grading_presets.py check it pair by pair against the sources' published rules.

#: The source's single "no optimal solution" value.
_NO_SOLUTION = "no solution"
#: A ground truth that no prediction can match under the source's code.
_UNMATCHABLE = "unmatchable"
#: No value at all (None given to grade_value: the run printed no objective), which the sources
#: with a None objective equate with their "no solution". A response without a box is not this:
#: there the source would have had no program to run, and `grade` calls it "no_answer".
_MISSING = "missing"
#: Sources whose "no solution" is a None objective, so a run without any value matches it.
_NONE_IS_NO_SOLUTION = ("sirl", "sirl-reward", "optimind")


def _written_number(written: object) -> float | None:
    """A marker's written value as a number (-99999, "-9999"), or None for a status word."""
    if written is None or isinstance(written, bool):
        return None
    try:
        reading = _read_ground_truth(written)
    except GroundTruthError:
        return None
    return reading if isinstance(reading, float) else None


def _source_truth(source: str, truth: float | str) -> float | str:
    """The ground truth as the source's decision code reads it.

    orlm, sirl-reward, optimind: a marker written as a number (-99999, the sirl-fixed "-9999")
    is that number; any other marker is the source's "no solution" (ORLM's "No Best Solution",
    a None objective; where the source would raise on a status word, its "no solution" too).
    sirl: also any value whose text contains "-9999" is "no solution" (check_result).
    optmath: only "No Best Solution" is "no solution"; "No Best Solution." and anything float()
    cannot read match nothing (evaluate_result compares the marker string exactly and returns
    False on a ValueError).
    """
    written = truth.written if isinstance(truth, GroundTruthMarker) else truth
    if source == "optmath":
        text = str(written)
        if text == "No Best Solution":
            return _NO_SOLUTION
        try:
            return float(text.strip()) + 0.0
        except ValueError:
            return _UNMATCHABLE
    if source == "sirl" and (written == "No Best Solution" or "-9999" in str(written)):
        return _NO_SOLUTION
    if isinstance(truth, float):
        return truth
    number = _written_number(written)
    return _NO_SOLUTION if number is None else number


def _source_verdict(
    parsed: ParsedAnswer | None, truth: float | str, tolerance: Tolerance, raw: str | None
) -> Grade:
    source = str(tolerance.source)
    want = _source_truth(source, truth)
    shown_truth: float | str = NO_OPTIMUM if want == _NO_SOLUTION else truth
    if isinstance(want, float):
        shown_truth = want
    value = None if parsed is None else parsed.value

    def make(correct: bool, reason: str) -> Grade:
        return _make_grade(correct, reason, value, shown_truth, tolerance, raw)

    got: float | str | None
    if parsed is None:
        got = _MISSING
    elif value is None:
        return make(False, "ambiguous" if parsed.reason == "ambiguous" else "unparsable")
    else:
        got = _NO_SOLUTION if isinstance(value, str) else value
    miss = "no_answer" if got == _MISSING else "status_mismatch"
    if want == _UNMATCHABLE:
        return make(False, miss)
    if want == _NO_SOLUTION:
        if got == _NO_SOLUTION or (got == _MISSING and source in _NONE_IS_NO_SOLUTION):
            return make(True, "correct")
        return make(False, miss)
    assert isinstance(want, float)
    if source == "sirl-reward":
        # answer_reward: a zero truth is falsy and never matched; a zero or missing objective is
        # falsy too, and then the error is |g| alone.
        if want == 0:
            return make(False, "wrong_value" if isinstance(got, float) else miss)
        if isinstance(got, float) and got != 0:
            close = tolerance.matches(got, want)
            return make(close, _reason(close))
        close = abs(want) < tolerance.rel_tol
        return make(close, "correct" if close else ("wrong_value" if got == 0 else miss))
    if not isinstance(got, float):
        return make(False, miss)
    if source == "optimind" and tolerance.rel_tol > 1e-3:
        close = abs(got - want) < tolerance.rel_tol  # compute_acc's absolute branch
    else:
        close = tolerance.matches(got, want)
    return make(close, _reason(close))


def _reason(correct: bool) -> str:
    return "correct" if correct else "wrong_value"


def grade_value(
    predicted: float | str | None,
    ground_truth: object,
    *,
    preset: str | Tolerance = "default",
    rel_tol: float | None = None,
    abs_tol: float | None = None,
) -> Grade:
    """Grade a value the caller already has (a number, a status, a string to parse, or None).

    A number may be a Python or numpy int or float. A string is read like the content of a box
    (so "No Best Solution" and "1,234" work; the status constants are taken as they are); None
    grades as "no_answer"; NaN and infinities as "unparsable". Anything else (a bool, bytes, a
    list) raises TypeError saying what is expected.

    Under "sirl-strict", "sirl-reward-strict" and "optimind-strict", None stands for a run that
    printed no objective, which those sources count as right for a "no optimal solution"
    ground truth (their None equals the truth's None).
    """
    truth = parse_ground_truth(ground_truth)
    tolerance = get_tolerance(preset, rel_tol=rel_tol, abs_tol=abs_tol)
    if predicted is None:
        return _verdict(None, truth, tolerance, None)
    return _verdict(_parsed_value(predicted, "predicted"), truth, tolerance, None)


def _parsed_value(predicted: object, name: str) -> ParsedAnswer:
    """A number or a string as a ParsedAnswer; TypeError for anything else."""
    if isinstance(predicted, bool) or not isinstance(predicted, numbers.Real | str):
        raise TypeError(
            f"{name} must be the response text (str) or a number (int, float, numpy number), "
            f"not {type(predicted).__name__} {predicted!r:.60}"
        )
    if isinstance(predicted, str):
        if predicted in (INFEASIBLE, UNBOUNDED, NO_OPTIMUM):
            return ParsedAnswer(predicted)
        return parse_answer(predicted)
    number = float(predicted)
    if math.isfinite(number):
        return ParsedAnswer(number + 0.0)
    return ParsedAnswer(None, "non_finite", detail=f"{predicted!r} is not a finite number")


def grade(
    response_text: str | float | None,
    ground_truth: object,
    *,
    preset: str | Tolerance = "default",
    rel_tol: float | None = None,
    abs_tol: float | None = None,
) -> Grade:
    """Grade the final `\\boxed{}` answer of a response against the ground truth.

    response_text is the model's text (None counts as no answer); a number (int, float, numpy
    number) is graded as that value, like `grade_value`, so `grade(5, 5)` is correct. Anything
    else raises TypeError. ground_truth may be a number or a marker string (see
    `parse_ground_truth`; an unreadable one, None included, raises GroundTruthError). preset
    names a TOLERANCE_PRESETS entry or is a Tolerance; rel_tol and abs_tol override its
    thresholds. Unknown preset names raise ValueError. Linear in the length of the text.
    """
    truth = parse_ground_truth(ground_truth)
    tolerance = get_tolerance(preset, rel_tol=rel_tol, abs_tol=abs_tol)
    if response_text is not None and not isinstance(response_text, str):
        return _verdict(_parsed_value(response_text, "response_text"), truth, tolerance, None)
    raw = find_final_answer(response_text or "")
    if raw is None:
        return Grade(False, None, truth, None, None, "no_answer", None, tolerance.name)
    return _verdict(parse_answer(raw), truth, tolerance, raw)


def grade_answer_content(
    content: str,
    ground_truth: object,
    *,
    preset: str | Tolerance = "default",
) -> Grade:
    """Grade an answer given on its own (a `submit_answer` tool call) exactly as `grade` grades
    the content of a final `\\boxed{}`: same reading, same tolerance, `raw_answer` = content."""
    truth = parse_ground_truth(ground_truth)
    tolerance = get_tolerance(preset)
    content = content.strip()
    return _verdict(parse_answer(content), truth, tolerance, content)


def answer_was_printed(
    answer: ParsedAnswer,
    printed: Iterable[PrintedValues],
    *,
    preset: str | Tolerance = "default",
) -> bool:
    """Whether some program printed the answer, within the tolerance.

    A number matches a printed number p when either is within the tolerance of the other
    (the answer may round what was printed, or the other way round); a percentage also matches
    p == value / 100. INFEASIBLE and UNBOUNDED match a program that stated that status; the
    -99999 marker matches either status, or -99999 printed. An unreadable answer never matches.
    """
    tolerance = get_tolerance(preset)
    value = answer.value
    if value is None:
        return False
    readings = list(printed)
    if isinstance(value, str) or value == INFEASIBLE_MARKER_VALUE:
        either = value in (NO_OPTIMUM, INFEASIBLE_MARKER_VALUE)
        wanted = {INFEASIBLE, UNBOUNDED} if either else {value}
        if any(wanted & reading.statuses for reading in readings):
            return True
        if isinstance(value, str):
            return False
    candidates = [value, value / 100.0] if answer.percent else [value]
    return any(
        tolerance.matches(candidate, number) or tolerance.matches(number, candidate)
        for reading in readings
        for number in reading.numbers
        for candidate in candidates
    )
