"""Table-driven tests of answer extraction, ground-truth normalisation and grading."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from or_env.grading import (
    INFEASIBLE,
    NO_OPTIMUM,
    REASONS,
    TOLERANCE_PRESETS,
    UNBOUNDED,
    Grade,
    GroundTruthError,
    GroundTruthMarker,
    PrintedValues,
    Tolerance,
    answer_was_printed,
    find_final_answer,
    get_tolerance,
    grade,
    grade_value,
    parse_answer,
    parse_answer_value,
    parse_ground_truth,
    printed_values,
)

FENCE = "```"

# (id, response text, expected raw box content or None)
FIND_CASES = [
    ("plain box", "The optimum is \\boxed{42}.", "42"),
    ("no box", "The optimum is 42.", None),
    ("empty text", "", None),
    ("empty box", "So \\boxed{}", ""),
    ("nested braces", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("deeply nested", "\\boxed{\\text{\\textbf{7}}}", "\\text{\\textbf{7}}"),
    ("last of several wins", "\\boxed{41} then \\boxed{42}", "42"),
    ("text after the box", "\\boxed{42}. Hope this helps! Cost is 7 dollars.", "42"),
    ("fbox", "\\fbox{9}", "9"),
    ("space before brace", "\\boxed {5}", "5"),
    ("bare token", "\\boxed 42 is it", "42"),
    ("prose mention is not a box", "I will write it in \\boxed format", None),
    ("inside code fence ignored", f"{FENCE}python\nprint('\\\\boxed{{1}}')\n{FENCE}", None),
    ("fence then real box", f"{FENCE}python\nprint('\\\\boxed{{1}}')\n{FENCE}\n\\boxed{{7}}", "7"),
    ("inside output block ignored", f"\\boxed{{3}}\n{FENCE}output\n\\boxed{{9}}\n{FENCE}", "3"),
    ("unclosed fence after box", f"\\boxed{{3}}\n{FENCE}python\nprint(1)", "3"),
    ("unclosed box does not count", "\\boxed{5} and finally \\boxed{12", "5"),
    ("escaped braces", "\\boxed{\\{42\\}}", "\\{42\\}"),
    ("whitespace stripped", "\\boxed{  42  }", "42"),
    ("not a box command", "\\boxedx{3}", None),
    ("many unclosed boxes then a closed one", "\\boxed{1}" + "\\boxed{" * 50, "1"),
    ("closed box inside an unclosed one", "\\boxed{2 \\boxed{3}", "3"),
    ("escaped backslash before box", "\\\\boxed{4}", "4"),
    ("box after stray closing braces", "}} \\boxed{5} }", "5"),
    ("nested box: the last box is the inner one", "\\boxed{\\boxed{6}}", "6"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in FIND_CASES], ids=[c[0] for c in FIND_CASES]
)
def test_find_final_answer(text: str, expected: str | None) -> None:
    assert find_final_answer(text) == expected


# (id, box content, expected value, expected reason, expected percent flag)
PARSE_CASES = [
    ("integer", "42", 42.0, "ok", False),
    ("decimal", "3.25", 3.25, "ok", False),
    ("trailing period", "42.", 42.0, "ok", False),
    ("leading dot", ".5", 0.5, "ok", False),
    ("negative", "-17.5", -17.5, "ok", False),
    ("unicode minus", "−5", -5.0, "ok", False),
    ("negative zero", "-0", 0.0, "ok", False),
    ("thousands commas", "1,234,567", 1234567.0, "ok", False),
    ("thousands comma with decimals", "1,234.5", 1234.5, "ok", False),
    ("thousands space", "1 234", 1234.0, "ok", False),
    ("latex thin space", "1\\,234", 1234.0, "ok", False),
    ("latex braced comma", "1{,}234", 1234.0, "ok", False),
    ("dollar", "$1,200", 1200.0, "ok", False),
    ("escaped dollar", "\\$1,200.50", 1200.5, "ok", False),
    ("euro sign", "€350", 350.0, "ok", False),
    ("currency code", "USD 1,200", 1200.0, "ok", False),
    ("unit words", "1200 dollars", 1200.0, "ok", False),
    ("text wrapper with units", "42 \\text{ units}", 42.0, "ok", False),
    ("mathrm", "\\mathrm{42}", 42.0, "ok", False),
    ("left right", "\\left( 42 \\right)", 42.0, "ok", False),
    ("tilde and bang spacing", "4\\!2~", 42.0, "ok", False),
    ("assignment", "z = 42", 42.0, "ok", False),
    ("assignment with subscripts", "x_1 = 3", 3.0, "ok", False),
    ("assignment with text lhs", "\\text{Total cost} = \\$1,200.50", 1200.5, "ok", False),
    ("approx", "z^* \\approx 42.5", 42.5, "ok", False),
    ("chained equality", "z = 3x + 2y = 42", 42.0, "ok", False),
    ("expression lhs", "2x_1 + 3x_2 = 50", 50.0, "ok", False),
    ("same value twice", "x = 3 and y = 3", 3.0, "ok", False),
    ("percent", "12.5%", 12.5, "ok", True),
    ("latex percent", "12.5\\%", 12.5, "ok", True),
    ("percent word", "40 percent", 40.0, "ok", True),
    ("e notation", "1.2e5", 120000.0, "ok", False),
    ("E notation signed", "3E-2", 0.03, "ok", False),
    ("times ten power", "1.2 \\times 10^{5}", 120000.0, "ok", False),
    ("cdot ten power", "1.2\\cdot10^5", 120000.0, "ok", False),
    ("negative exponent", "1.5 \\times 10^{-3}", 0.0015, "ok", False),
    ("unicode superscript", "1.2×10⁵", 120000.0, "ok", False),
    ("bare power of ten", "10^6", 1e6, "ok", False),
    ("million", "1.2 million", 1.2e6, "ok", False),
    ("slash fraction", "3/4", 0.75, "ok", False),
    ("frac", "\\frac{3}{4}", 0.75, "ok", False),
    ("dfrac", "\\dfrac{3}{4}", 0.75, "ok", False),
    ("negative frac", "-\\frac{3}{4}", -0.75, "ok", False),
    ("frac without braces", "\\frac12", 0.5, "ok", False),
    ("huge integer", "12345678901234567890", 12345678901234567890.0, "ok", False),
    ("unit power is not a number", "30 m^2", 30.0, "ok", False),
    ("infeasible text", "\\text{Infeasible}", INFEASIBLE, "ok", False),
    ("no feasible solution", "No feasible solution", INFEASIBLE, "ok", False),
    ("no best solution", "No Best Solution", INFEASIBLE, "ok", False),
    ("infeasible sentence", "The problem is infeasible.", INFEASIBLE, "ok", False),
    ("infeasible with marker", "infeasible (-99999)", INFEASIBLE, "ok", False),
    ("unbounded", "\\text{Unbounded}", UNBOUNDED, "ok", False),
    ("minus 99999 stays a number", "-99999", -99999.0, "ok", False),
    ("two numbers", "3, 5", None, "ambiguous", False),
    ("two assignments", "x=3, y=5", None, "ambiguous", False),
    ("tuple", "(3, 5)", None, "ambiguous", False),
    ("comma is not a decimal point", "3,5", None, "ambiguous", False),
    ("bad grouping", "1,2345", None, "ambiguous", False),
    ("status and number", "infeasible, or 42", None, "ambiguous", False),
    ("both statuses", "infeasible or unbounded", None, "ambiguous", False),
    ("empty", "", None, "empty", False),
    ("only spacing", "\\, \\quad", None, "empty", False),
    ("prose", "the optimum", None, "unparsable", False),
    ("nan", "NaN", None, "non_finite", False),
    ("infinity latex", "\\infty", None, "non_finite", False),
    ("negative infinity", "-\\infty", None, "non_finite", False),
    ("overflow", "1e999", None, "non_finite", False),
    ("division by zero", "\\frac{1}{0}", None, "non_finite", False),
    ("degenerate long box", "1 " * 600, None, "unparsable", False),
    # Issue 10: a reading is right or unparsable, never a different number.
    ("negated parentheses", "-(5)", -5.0, "ok", False),
    ("double minus", "--5", 5.0, "ok", False),
    ("plus minus", "+-5", -5.0, "ok", False),
    ("negated negative in parentheses", "-(-5)", 5.0, "ok", False),
    ("nested parentheses", "((5))", 5.0, "ok", False),
    ("latex negated parentheses", "-\\left(5\\right)", -5.0, "ok", False),
    ("trailing minus", "5-", None, "unparsable", False),
    ("trailing plus", "5 +", None, "unparsable", False),
    ("sqrt", "\\sqrt{25}", 5.0, "ok", False),
    ("unicode sqrt", "√2", math.sqrt(2), "ok", False),
    ("sqrt word", "sqrt(25)", 5.0, "ok", False),
    ("negated sqrt", "-\\sqrt{4}", -2.0, "ok", False),
    ("frac of sqrt", "\\frac{\\sqrt{3}}{2}", math.sqrt(3) / 2, "ok", False),
    ("nested frac", "\\frac{\\frac{1}{2}}{4}", 0.125, "ok", False),
    ("sqrt of frac", "\\sqrt{\\frac{1}{4}}", 0.5, "ok", False),
    ("sqrt over number", "√2/2", math.sqrt(2) / 2, "ok", False),
    ("negative denominator", "3/-4", -0.75, "ok", False),
    ("sqrt of negative", "\\sqrt{-4}", None, "unparsable", False),
    ("nth root", "\\sqrt[3]{27}", None, "unparsable", False),
    ("bare latex sqrt", "\\sqrt 25", None, "unparsable", False),
    ("log", "\\log 10", None, "unparsable", False),
    ("ln", "\\ln(5)", None, "unparsable", False),
    ("log word", "log(10)", None, "unparsable", False),
    ("max word", "max(3, 5)", None, "unparsable", False),
    ("minus word", "minus 5", None, "unparsable", False),
    ("hex", "0x10", None, "unparsable", False),
    ("binary", "0b101", None, "unparsable", False),
    ("implicit variable", "2x", None, "unparsable", False),
    ("kilo suffix", "100k", None, "unparsable", False),
    ("mega letter", "1.5 M", None, "unparsable", False),
    ("billion abbreviation", "3bn", None, "unparsable", False),
    ("dangling e", "5e", None, "unparsable", False),
    ("pi glued", "2π", None, "unparsable", False),
    ("latex pi", "2\\pi", None, "unparsable", False),
    ("square", "5^2", None, "unparsable", False),
    ("power in braces", "2^{10}", None, "unparsable", False),
    ("product", "2 \\times 3", None, "unparsable", False),
    ("binary minus", "x - 5", None, "unparsable", False),
    ("difference", "100 - 5", None, "unparsable", False),
    ("variable over number", "x/2", None, "unparsable", False),
    ("number over variable", "3/x", None, "unparsable", False),
    ("frac of a variable", "\\frac{x}{2}", None, "unparsable", False),
    ("two divisions", "1/2/3", None, "unparsable", False),
    ("factorial", "5!", None, "unparsable", False),
    ("implicit product with sqrt", "2\\sqrt{2}", None, "unparsable", False),
    ("implicit product with frac", "\\frac{1}{2}x", None, "unparsable", False),
    ("mixed number", "2\\frac{1}{2}", None, "unparsable", False),
    ("wrapper glued to a letter", "\\mathbf{42}x", None, "unparsable", False),
    ("implicit product with parenthesis", "2(3)", None, "unparsable", False),
    ("plus minus sign", "\\pm 5", None, "unparsable", False),
    ("unicode plus minus", "±5", None, "unparsable", False),
    ("inequality", "x \\le 5", None, "unparsable", False),
    ("inequality split by the equals sign", "x <= 5", None, "unparsable", False),
    ("bound beside an assignment", "x \\geq 3, z = 5", None, "unparsable", False),
    ("unknown command on the left is ignored", "z_{\\max} = 42", 42.0, "ok", False),
    ("unknown command on the right is refused", "z = \\max 42", None, "unparsable", False),
    ("unicode inequality", "z ≥ 42", None, "unparsable", False),
    ("absolute value", "|-5|", None, "unparsable", False),
    ("negated tuple", "-(3, 5)", None, "unparsable", False),
    ("unknown macro", "\\foo{42}", None, "unparsable", False),
    ("deep nesting refused", "(" * 40 + "5" + ")" * 40, None, "unparsable", False),
    ("unit glued", "5kg", 5.0, "ok", False),
    ("unit with slash", "5 m/s", 5.0, "ok", False),
    ("cjk unit glued", "42元", 42.0, "ok", False),
    ("sci with x", "3x10^5", 300000.0, "ok", False),
    ("degrees", "90^\\circ", 90.0, "ok", False),
    ("spacing command with length", "\\hspace{2pt}42", 42.0, "ok", False),
    ("colour", "\\textcolor{red}{42}", 42.0, "ok", False),
    ("display style", "\\displaystyle 42", 42.0, "ok", False),
    ("hundred", "5 hundred", 500.0, "ok", False),
    ("division sign", "3 ÷ 4", 0.75, "ok", False),
    ("huge exponent", "10^{99999}", None, "non_finite", False),
]


@pytest.mark.parametrize(
    ("raw", "value", "reason", "percent"),
    [c[1:] for c in PARSE_CASES],
    ids=[c[0] for c in PARSE_CASES],
)
def test_parse_answer(raw: str, value: float | str | None, reason: str, percent: bool) -> None:
    parsed = parse_answer(raw)
    assert parsed.value == value
    assert parsed.reason == reason
    assert parsed.percent is percent
    assert parse_answer_value(raw) == value
    if isinstance(value, float):
        assert math.copysign(1.0, parsed.value) == math.copysign(1.0, value or 1.0)
    if value is None:
        assert parsed.detail


# (id, benchmark value, expected normalised ground truth)
GT_CASES = [
    ("float", 1160.0, 1160.0),
    ("int", 42, 42.0),
    ("numeric string", "219816.0", 219816.0),
    ("thousands string", "1,234.5", 1234.5),
    ("percent string", "12.5%", 12.5),
    ("scientific string", "1.1911788832813004e-09", 1.1911788832813004e-09),
    ("negative zero", -0.0, 0.0),
    ("optimind list", "[18.0]", 18.0),
    # Markers that name a status accept only that status ...
    ("infeasible word", "Infeasible", INFEASIBLE),
    ("no feasible solution", "No feasible solution", INFEASIBLE),
    ("unbounded word", "unbounded", UNBOUNDED),
    # ... markers that only say "no optimum" accept either.
    ("no best solution", "No Best Solution", NO_OPTIMUM),
    ("no best solution with period", "No Best Solution.", NO_OPTIMUM),
    ("no optimal solution", "no optimal solution", NO_OPTIMUM),
    ("infeasible or unbounded", "Infeasible or  unbounded", NO_OPTIMUM),
    ("no optimum constant", NO_OPTIMUM, NO_OPTIMUM),
    ("minus 99999 int", -99999, NO_OPTIMUM),
    ("minus 99999 string", "-99999.0", NO_OPTIMUM),
    ("huge int", 12345678901234567890, 12345678901234567890.0),
    ("numpy float", np.float64(2.5), 2.5),
    ("numpy int", np.int64(7), 7.0),
    ("numpy float32", np.float32(0.5), 0.5),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in GT_CASES], ids=[c[0] for c in GT_CASES]
)
def test_parse_ground_truth(value: object, expected: float | str) -> None:
    parsed = parse_ground_truth(value)
    assert parsed == expected
    if isinstance(expected, float):
        assert type(parsed) is float
        assert math.copysign(1.0, parsed) == math.copysign(1.0, expected or 1.0)
    else:  # a status remembers what the benchmark wrote, for the strict presets
        assert isinstance(parsed, GroundTruthMarker) and parsed.written == value
        assert parse_ground_truth(parsed) is parsed
        assert json.dumps(parsed) == json.dumps(expected) and hash(parsed) == hash(expected)


GT_ERROR_CASES = [
    ("none", None),
    ("null string", "null"),
    ("None string", "None"),
    ("empty string", ""),
    ("prose", "about forty"),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("bool", True),
    ("two listed values", "[1.0, 2.0]"),
]


@pytest.mark.parametrize(
    "value", [c[1] for c in GT_ERROR_CASES], ids=[c[0] for c in GT_ERROR_CASES]
)
def test_parse_ground_truth_rejects(value: object) -> None:
    with pytest.raises(GroundTruthError):
        parse_ground_truth(value)


def test_none_ground_truth_says_how_to_fix() -> None:
    with pytest.raises(ValueError, match=r"is None.*'infeasible', 'unbounded'.*fix the data"):
        grade("\\boxed{infeasible}", None)


# (id, response, ground truth, preset, expected correct, expected reason)
GRADE_CASES = [
    ("exact", "\\boxed{42}", 42, "default", True, "correct"),
    ("wrong", "\\boxed{43}", 42, "default", False, "wrong_value"),
    ("no box", "The answer is 42.", 42, "default", False, "no_answer"),
    ("empty box", "\\boxed{}", 42, "default", False, "unparsable"),
    ("two numbers in the box", "\\boxed{3, 5}", 3, "default", False, "ambiguous"),
    ("last box wins", "\\boxed{41} no wait \\boxed{42}", 42, "default", True, "correct"),
    ("earlier box loses", "\\boxed{42} no wait \\boxed{41}", 42, "default", False, "wrong_value"),
    (
        "box in code only",
        f"{FENCE}python\nprint('\\\\boxed{{42}}')\n{FENCE}",
        42,
        "default",
        False,
        "no_answer",
    ),
    (
        "thousands and dollars",
        "Total: \\boxed{\\$1,234,567}",
        "1234567",
        "default",
        True,
        "correct",
    ),
    ("unicode minus", "\\boxed{−5}", -5, "default", True, "correct"),
    ("negative zero vs zero", "\\boxed{-0}", 0, "default", True, "correct"),
    (
        "huge integer",
        "\\boxed{12345678901234567890}",
        12345678901234567890,
        "default",
        True,
        "correct",
    ),
    (
        "huge integer off by 1e10",
        "\\boxed{12345678911234567890}",
        12345678901234567890,
        "default",
        True,
        "correct",
    ),
    ("nan answer", "\\boxed{NaN}", 1.0, "default", False, "unparsable"),
    ("inf answer", "\\boxed{\\infty}", 1.0, "default", False, "unparsable"),
    ("fraction", "\\boxed{\\frac{1}{3}}", 0.333333333, "default", True, "correct"),
    ("percent vs percent truth", "\\boxed{12.5\\%}", 12.5, "default", True, "correct"),
    ("percent vs fraction truth", "\\boxed{12.5\\%}", 0.125, "default", True, "correct"),
    ("plain vs fraction truth", "\\boxed{12.5}", 0.125, "default", False, "wrong_value"),
    ("percent string truth", "\\boxed{12.5}", "12.5%", "default", True, "correct"),
    (
        "infeasible text vs marker",
        "\\boxed{\\text{Infeasible}}",
        "No Best Solution",
        "default",
        True,
        "correct",
    ),
    ("infeasible vs -99999", "\\boxed{No feasible solution}", -99999, "default", True, "correct"),
    ("unbounded vs -99999", "\\boxed{unbounded}", -99999, "default", True, "correct"),
    ("-99999 written by model", "\\boxed{-99999}", "No Best Solution", "default", True, "correct"),
    ("unbounded vs no optimum", "\\boxed{unbounded}", NO_OPTIMUM, "default", True, "correct"),
    ("infeasible vs no optimum", "\\boxed{infeasible}", NO_OPTIMUM, "default", True, "correct"),
    (
        "hedge vs no optimum",
        "\\boxed{infeasible or unbounded}",
        NO_OPTIMUM,
        "default",
        False,
        "ambiguous",
    ),
    ("number vs no optimum", "\\boxed{0}", "No Best Solution", "default", False, "status_mismatch"),
    (
        "unbounded vs unbounded",
        "\\boxed{\\text{unbounded}}",
        "unbounded",
        "default",
        True,
        "correct",
    ),
    (
        "unbounded vs named infeasible",
        "\\boxed{unbounded}",
        "infeasible",
        "default",
        False,
        "status_mismatch",
    ),
    (
        "infeasible vs named unbounded",
        "\\boxed{No Best Solution}",
        "unbounded",
        "default",
        False,
        "status_mismatch",
    ),
    ("infeasible vs number", "\\boxed{infeasible}", 42, "default", False, "status_mismatch"),
    ("number vs infeasible", "\\boxed{42}", "infeasible", "default", False, "status_mismatch"),
    # Issue 10: expressions are evaluated when simple, refused otherwise, never misread.
    ("negated parentheses right", "\\boxed{-(5)}", -5, "default", True, "correct"),
    ("negated parentheses not 5", "\\boxed{-(5)}", 5, "default", False, "wrong_value"),
    ("double minus right", "\\boxed{--5}", 5, "default", True, "correct"),
    ("double minus not -5", "\\boxed{--5}", -5, "default", False, "wrong_value"),
    ("trailing minus refused", "\\boxed{5-}", 5, "default", False, "unparsable"),
    ("sqrt evaluated", "\\boxed{\\sqrt{25}}", 5, "default", True, "correct"),
    ("sqrt not 25", "\\boxed{\\sqrt{25}}", 25, "default", False, "wrong_value"),
    ("log refused", "\\boxed{\\log 10}", 10, "default", False, "unparsable"),
    ("hex refused", "\\boxed{0x10}", 0, "default", False, "unparsable"),
    ("hex not 16 either", "\\boxed{0x10}", 16, "default", False, "unparsable"),
    ("-99999 vs number", "\\boxed{-99999}", 42, "default", False, "status_mismatch"),
    # default: max(1e-4 * |g|, 1e-6), plus half a unit of a non-integer truth's last decimal
    ("default rel just inside", "\\boxed{100.01}", 100, "default", True, "correct"),
    ("default rel just outside", "\\boxed{100.0101}", 100, "default", False, "wrong_value"),
    ("default zero truth inside", "\\boxed{0.000001}", 0, "default", True, "correct"),
    ("default zero truth outside", "\\boxed{0.000002}", 0, "default", False, "wrong_value"),
    ("default near-integer miss", "\\boxed{20242}", 20240, "default", True, "correct"),
    ("default integer miss", "\\boxed{20243}", 20240, "default", False, "wrong_value"),
    ("rounded truth inside", "\\boxed{0.0714}", "0.07", "default", True, "correct"),
    ("rounded truth outside", "\\boxed{0.0751}", "0.07", "default", False, "wrong_value"),
    ("rounded truth 1 decimal", "\\boxed{14.14}", 14.1, "default", True, "correct"),
    ("exact answer, rounded truth", "\\boxed{135.26666}", "135.27", "default", True, "correct"),
    ("integer truth gets no slack", "\\boxed{571.43}", "571.0", "default", False, "wrong_value"),
    # strict: max(1e-6 * |g|, 1e-9)
    ("strict just inside", "\\boxed{100.0001}", 100, "strict", True, "correct"),
    ("strict just outside", "\\boxed{100.00011}", 100, "strict", False, "wrong_value"),
    ("strict rounded truth", "\\boxed{0.0714}", "0.07", "strict", False, "wrong_value"),
    # sirl: |p - g| / (|g| + 1) <= 1e-6 (check_result); optimind: < 1e-6 (compute_acc)
    ("sirl zero inside", "\\boxed{0.0000009}", 0, "sirl", True, "correct"),
    ("sirl zero at bound", "\\boxed{0.000001}", 0, "sirl", True, "correct"),
    ("sirl zero past bound", "\\boxed{0.0000011}", 0, "sirl", False, "wrong_value"),
    ("sirl large inside", "\\boxed{999999.9}", 999999, "sirl", True, "correct"),
    ("sirl large at bound", "\\boxed{1000000}", 999999, "sirl", True, "correct"),
    ("optimind large at bound", "\\boxed{1000000}", 999999, "optimind", False, "wrong_value"),
    ("optimind rounded truth", "\\boxed{135.2667}", "135.27", "optimind", False, "wrong_value"),
    # orlm / optmath: round both, then relative error <= 5%
    ("orlm at 5 percent", "\\boxed{105}", 100, "orlm", True, "correct"),
    ("orlm rounds down", "\\boxed{105.4}", 100, "orlm", True, "correct"),
    ("orlm rounds up outside", "\\boxed{105.6}", 100, "orlm", False, "wrong_value"),
    ("orlm zero truth", "\\boxed{0.4}", 0, "orlm", True, "correct"),
    ("orlm zero truth half to even", "\\boxed{0.5}", 0, "orlm", True, "correct"),
    ("orlm zero truth outside", "\\boxed{0.6}", 0, "orlm", False, "wrong_value"),
    ("optmath alias", "\\boxed{110}", 100, "optmath", False, "wrong_value"),
]


@pytest.mark.parametrize(
    ("response", "truth", "preset", "correct", "reason"),
    [c[1:] for c in GRADE_CASES],
    ids=[c[0] for c in GRADE_CASES],
)
def test_grade(response: str, truth: object, preset: str, correct: bool, reason: str) -> None:
    verdict = grade(response, truth, preset=preset)
    assert verdict.correct is correct
    assert verdict.reason == reason
    assert verdict.reward == (1.0 if correct else 0.0)
    assert verdict.reason in REASONS
    assert verdict.tolerance == TOLERANCE_PRESETS[preset].name


def test_grade_records_what_it_read() -> None:
    verdict = grade("So \\boxed{\\$1,050}.", "1000")
    assert verdict == Grade(
        correct=False,
        predicted=1050.0,
        ground_truth=1000.0,
        rel_error=pytest.approx(0.05),
        abs_error=pytest.approx(50.0),
        reason="wrong_value",
        raw_answer="\\$1,050",
        tolerance="default",
    )
    as_dict = verdict.to_dict()
    assert as_dict["reward"] == 0.0 and as_dict["predicted"] == 1050.0
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_grade_errors_are_none_when_not_numeric() -> None:
    zero = grade("\\boxed{0}", 0)
    assert (zero.correct, zero.rel_error, zero.abs_error) == (True, None, 0.0)
    status = grade("\\boxed{infeasible}", "infeasible")
    assert (status.predicted, status.ground_truth, status.rel_error) == (
        INFEASIBLE,
        INFEASIBLE,
        None,
    )
    missing = grade("no answer here", 5)
    assert (missing.predicted, missing.raw_answer, missing.abs_error) == (None, None, None)


def test_percent_match_reports_the_scaled_value() -> None:
    verdict = grade("\\boxed{12.5\\%}", 0.125)
    assert verdict.predicted == 0.125 and verdict.abs_error == 0.0


# (id, predicted, ground truth, expected correct, expected reason)
GRADE_VALUE_CASES = [
    ("float", 42.0, 42, True, "correct"),
    ("int", 41, 42, False, "wrong_value"),
    ("none", None, 42, False, "no_answer"),
    ("nan", float("nan"), 42, False, "unparsable"),
    ("program output marker", "No Best Solution", "No Best Solution", True, "correct"),
    ("numeric -99999", -99999.0, "No Best Solution", True, "correct"),
    ("string number", "1,234", 1234, True, "correct"),
    ("status constant", UNBOUNDED, "unbounded", True, "correct"),
    ("unbounded program vs -99999", "unbounded", -99999, True, "correct"),
    ("no optimum constant vs itself", NO_OPTIMUM, "No Best Solution", True, "correct"),
    ("no optimum constant vs named status", NO_OPTIMUM, "infeasible", False, "status_mismatch"),
    ("numpy float", np.float64(42.0), 42, True, "correct"),
    ("numpy int", np.int32(41), 42, False, "wrong_value"),
    ("infinity", float("inf"), 42, False, "unparsable"),
]


@pytest.mark.parametrize(
    ("predicted", "truth", "correct", "reason"),
    [c[1:] for c in GRADE_VALUE_CASES],
    ids=[c[0] for c in GRADE_VALUE_CASES],
)
def test_grade_value(predicted: object, truth: object, correct: bool, reason: str) -> None:
    verdict = grade_value(predicted, truth)
    assert (verdict.correct, verdict.reason, verdict.raw_answer) == (correct, reason, None)


# (id, response: a number given to grade() instead of text, ground truth, correct, reason)
GRADE_NUMBER_CASES = [
    ("int", 5, 5, True, "correct"),
    ("float", 5.0, "5", True, "correct"),
    ("wrong int", 6, 5, False, "wrong_value"),
    ("numpy float64", np.float64(5.00001), 5, True, "correct"),
    ("numpy int64", np.int64(5), 5.0, True, "correct"),
    ("numpy float32", np.float32(0.5), 0.5, True, "correct"),
    ("nan", float("nan"), 5, False, "unparsable"),
    ("number vs status", 5, "infeasible", False, "status_mismatch"),
]


@pytest.mark.parametrize(
    ("response", "truth", "correct", "reason"),
    [c[1:] for c in GRADE_NUMBER_CASES],
    ids=[c[0] for c in GRADE_NUMBER_CASES],
)
def test_grade_accepts_numbers(response: object, truth: object, correct: bool, reason: str) -> None:
    verdict = grade(response, truth)  # type: ignore[arg-type]
    assert (verdict.correct, verdict.reason, verdict.raw_answer) == (correct, reason, None)


@pytest.mark.parametrize(
    "response", [True, np.bool_(True), [5], b"\\boxed{5}", {"answer": 5}], ids=repr
)
def test_grade_names_what_it_expects(response: object) -> None:
    with pytest.raises(TypeError, match=r"response text \(str\) or a number"):
        grade(response, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a number \(int, float, numpy number\)"):
        grade_value(response, 5)  # type: ignore[arg-type]


def test_grade_of_none_text_is_no_answer() -> None:
    assert grade(None, 5).reason == "no_answer"


# (id, program output, what it holds)
PRINTED_CASES = [
    ("plain", "Objective: 1160.0\n", {1160.0}, set()),
    ("negative and exponent", "z = -1.2e+05", {-120000.0}, set()),
    ("thousands", "Total cost: $1,234,567.50", {1234567.5, 1.0, 234.0, 567.5}, set()),
    ("fraction", "x = 3/4", {3.0, 4.0, 0.75}, set()),
    ("identifiers are not numbers", "x1 = 5, y_2 = 6", {5.0, 6.0}, set()),
    ("infeasible", "Status: Infeasible", set(), {INFEASIBLE}),
    ("orlm marker", "No Best Solution", set(), {INFEASIBLE}),
    ("gurobi both", "Model is infeasible or unbounded", set(), {INFEASIBLE, UNBOUNDED}),
    ("no numbers", "done", set(), set()),
    ("overflow", "1e999", set(), set()),
    ("zero division fraction", "0/0", {0.0}, set()),
]


@pytest.mark.parametrize(
    ("text", "numbers", "statuses"),
    [c[1:] for c in PRINTED_CASES],
    ids=[c[0] for c in PRINTED_CASES],
)
def test_printed_values(text: str, numbers: set[float], statuses: set[str]) -> None:
    printed = printed_values(text)
    assert set(printed.numbers) == numbers
    assert printed.statuses == statuses


# (id, box content, program outputs, preset, printed?)
ANSWER_PRINTED_CASES = [
    ("exact", "1160", ["Objective: 1160.0"], "default", True),
    ("rounded answer", "135.27", ["obj 135.26666666"], "default", True),
    ("rounded print", "135.2667", ["obj 135.27"], "default", True),
    ("never printed", "42", ["Objective: 41"], "default", False),
    ("no execution", "42", [], "default", False),
    ("second execution", "42", ["nothing", "z=42.0"], "default", True),
    ("percent as fraction", "12.5\\%", ["share 0.125"], "default", True),
    ("thousands in output", "1234567.5", ["$1,234,567.50"], "default", True),
    ("orlm rounds", "105", ["100.4"], "orlm", True),
    ("strict does not", "100.01", ["100"], "strict", False),
    ("status printed", "\\text{infeasible}", ["Status: INFEASIBLE"], "default", True),
    ("status not printed", "\\text{infeasible}", ["Status: optimal 3"], "default", False),
    ("other status", "unbounded", ["infeasible"], "default", False),
    ("marker answer", "-99999", ["model unbounded"], "default", True),
    ("unparsable answer", "\\log 10", ["10"], "default", False),
    ("identifier digits do not count", "1", ["x1 = 5"], "default", False),
]


@pytest.mark.parametrize(
    ("raw", "outputs", "preset", "printed"),
    [c[1:] for c in ANSWER_PRINTED_CASES],
    ids=[c[0] for c in ANSWER_PRINTED_CASES],
)
def test_answer_was_printed(raw: str, outputs: list[str], preset: str, printed: bool) -> None:
    readings = [printed_values(text) for text in outputs]
    assert answer_was_printed(parse_answer(raw), readings, preset=preset) is printed


def test_printed_values_are_plain_data() -> None:
    assert printed_values("7") == PrintedValues((7.0,), frozenset())


def test_overrides_change_the_thresholds() -> None:
    assert not grade("\\boxed{101}", 100).correct
    assert grade("\\boxed{101}", 100, rel_tol=0.01).correct
    assert grade("\\boxed{0.001}", 0, abs_tol=1e-2).correct
    assert grade_value(105.6, 100, preset="orlm", rel_tol=0.06).correct
    custom = Tolerance(rule="relative", rel_tol=0.1, abs_tol=0.0, name="ten-percent")
    verdict = grade("\\boxed{109}", 100, preset=custom)
    assert verdict.correct and verdict.tolerance == "ten-percent"


def test_presets_are_documented_and_complete() -> None:
    assert {"default", "sirl", "orlm", "optimind", "optmath", "strict"} <= set(TOLERANCE_PRESETS)
    assert get_tolerance("sirl") is TOLERANCE_PRESETS["sirl"]
    assert (TOLERANCE_PRESETS["sirl"].rule, TOLERANCE_PRESETS["optimind"].rule) == (
        "scaled_le",
        "scaled_lt",
    )
    default = TOLERANCE_PRESETS["default"]
    assert (default.rule, default.rel_tol, default.abs_tol) == ("relative", 1e-4, 1e-6)


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown tolerance preset 'loose'.*'default'.*'sirl'"):
        grade("\\boxed{1}", 1, preset="loose")


@pytest.mark.parametrize(
    "kwargs",
    [{"rule": "fuzzy"}, {"rel_tol": -1.0}, {"abs_tol": float("nan")}, {"rel_tol": "1e-4"}],
    ids=["unknown rule", "negative", "nan", "string"],
)
def test_tolerance_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Tolerance(**kwargs)  # type: ignore[arg-type]


def test_unreadable_ground_truth_raises_from_grade() -> None:
    with pytest.raises(GroundTruthError, match="cannot read ground truth"):
        grade("\\boxed{1}", "")


def _data_dir() -> Path | None:
    root = os.environ.get("OR_ENV_DATA_DIR")
    return Path(root) if root and Path(root).is_dir() else None


ORLM_RESULTS = [
    ("nl4opt/orlm_results/NL4OPT.q2mc_en.ORLM-LLaMA-3-8B/executed.jsonl", 213, 193),
    ("mamo_complexlp/orlm_results/MAMO.ComplexLP.q2mc_en.ORLM-LLaMA-3-8B/executed.jsonl", 79, 70),
    ("industryor/orlm_results/IndustryOR.q2mc_en.ORLM-LLaMA-3-8B/executed.jsonl", 38, 35),
]


@pytest.mark.benchmark_data
@pytest.mark.parametrize(
    ("relpath", "orlm_correct", "sirl_correct"),
    ORLM_RESULTS,
    ids=["nl4opt", "complexlp", "industryor"],
)
def test_presets_on_published_orlm_outputs(
    relpath: str, orlm_correct: int, sirl_correct: int
) -> None:
    """ORLM's published program outputs, graded by the presets that copy ORLM's and SIRL's rules.

    The "orlm" counts equal ORLM's own judge except on NL4Opt, where 3 ground truths are -99999:
    ORLM compares those as numbers, this module as INFEASIBLE (matched by "No Best Solution").
    """
    root = _data_dir()
    if root is None or not (root / relpath).is_file():
        pytest.skip("set OR_ENV_DATA_DIR to the benchmark data folder to run this test")
    rows = [json.loads(line) for line in (root / relpath).read_text().splitlines() if line]
    for preset, expected in (("orlm", orlm_correct), ("sirl", sirl_correct)):
        verdicts = [
            grade_value(row["execution_best_solution"], row["en_answer"], preset=preset)
            for row in rows
        ]
        assert sum(v.correct for v in verdicts) == expected
