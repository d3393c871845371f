"""Does a hint give the answer away? Numbers in text compared with the ground truth.

A hint must point at a flaw, not hand over the result. `leaked_numbers` reads every number
written in a hint in the common forms (`1234.5`, `1,234.5`, `1 234`, `$1,200`, `-5`, `−5`,
`1.2e5`, `1.2 × 10^5`, `1.2\\times10^{5}`, `12.5%`, `1.2 million`, `12k`) and returns those
within `rel_tol` of the ground truth (a percentage also counts divided by 100). The default
tolerance, 0.5%, also catches the answer rounded (`135` for 135.27).

Limits, on purpose: a ground truth of exactly 0 is not checked (zero appears in almost every
hint, as in `x >= 0`); for an infeasible or unbounded ground truth the status word itself
("infeasible", "unbounded") counts as a leak, and for a NO_OPTIMUM ground truth (no optimal
solution, the benchmark does not say why) any of them or "no optimal/feasible solution" does.
Numbers written as words are not read.
"""

from __future__ import annotations

import math
import re

from or_env.grading import INFEASIBLE, NO_OPTIMUM, UNBOUNDED

DEFAULT_LEAK_REL_TOL = 5e-3

_NUMBER_RE = re.compile(
    r"""
    (?<![\w.])                                  # not the digits of an identifier like x1, x_2
    (?P<sign>[-+\u2212])?\s?\$?\s?
    (?P<int>\d{1,3}(?:(?:,|[ \u202f\u2009])\d{3})+(?!\d)|\d+)
    (?P<frac>\.\d+)?
    (?:
        \s*[eE](?P<e>[-+]?\d+)
      | \s*(?:×|x|\*|·|\\times|\\cdot)\s*10\s*(?:\^|\*\*)\s*\{?(?P<p>[-+]?\d+)\}?
    )?
    (?P<unit>\s*(?:%|\\%|percent\b|thousand\b|million\b|billion\b|k\b|K\b|M\b|bn\b))?
    """,
    re.VERBOSE,
)
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9}
_STATUS_RE = {
    INFEASIBLE: re.compile(r"\binfeasib|\bno\s+feasible\s+solution", re.IGNORECASE),
    UNBOUNDED: re.compile(r"\bunbounded", re.IGNORECASE),
    NO_OPTIMUM: re.compile(
        r"\binfeasib|\bunbounded|\bno\s+(?:optimal|feasible|best)\s+solution|\bno\s+optimum",
        re.IGNORECASE,
    ),
}


def numbers_in(text: str) -> list[tuple[str, list[float]]]:
    """Each number written in `text` with the values it may stand for (see the module doc)."""
    found: list[tuple[str, list[float]]] = []
    for match in _NUMBER_RE.finditer(text):
        digits = re.sub(r"[, \u202f\u2009]", "", match["int"]) + (match["frac"] or "")
        try:
            value = float(digits)
            exponent = match["e"] or match["p"]
            if exponent is not None:
                value *= 10.0 ** int(exponent)
        except (OverflowError, ValueError):
            continue
        if match["sign"] in ("-", "\u2212"):
            value = -value
        unit = (match["unit"] or "").strip().lstrip("\\").lower()
        values = [value]
        if unit in ("%", "percent"):
            values.append(value / 100.0)
        elif unit in _SCALES:
            values = [value * _SCALES[unit], value]
        if all(math.isfinite(v) for v in values):
            found.append((match.group(0).strip(), values))
    return found


def leaked_numbers(
    text: str, ground_truth: float | str | None, rel_tol: float = DEFAULT_LEAK_REL_TOL
) -> list[str]:
    """The pieces of `text` that state the ground truth (or a value within `rel_tol` of it)."""
    if ground_truth is None:
        return []
    if isinstance(ground_truth, str):
        pattern = _STATUS_RE.get(ground_truth)
        return [m.group(0) for m in pattern.finditer(text)] if pattern else []
    truth = float(ground_truth)
    if truth == 0.0 or not math.isfinite(truth):
        return []
    leaks = []
    for written, values in numbers_in(text):
        # Sign slips ("cost of 500" for -500) still give the answer away.
        if any(abs(abs(v) - abs(truth)) <= rel_tol * abs(truth) for v in values):
            leaks.append(written)
    return leaks
