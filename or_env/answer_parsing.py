"""Reading a final answer out of model text: the last `\\boxed{}` and the number inside it.

`find_final_answer` finds the box; `parse_answer` reads its content the way people and
models write numbers. The rules, in the order they apply:

1. Unicode and LaTeX noise is removed: `$`, `\\$`, `\\%`, `\\,`, `\\!`, `~`, `\\left(`,
   `\\text{}`, `\\mathrm{}` and similar wrappers, `{,}`; the unicode minus `−` reads as `-`,
   superscript digits as an exponent.
2. A statement of status wins over numbers: "infeasible", "no feasible / optimal / best
   solution", "no solution", "not feasible" give INFEASIBLE; "unbounded" gives UNBOUNDED.
   Both at once, or a status plus some other number (except the -99999 marker), is ambiguous.
   `\\infty` alone is *not* read as unbounded: a bare infinity is a non-finite number.
3. An assignment (`z = 42`, `z^* \\approx 42`) is read by its right-hand side; a chain
   (`z = 3x + 2y = 42`) by its last side. Several assignments (`x=3, y=5`) are ambiguous unless
   they all give the same value.
4. What remains must hold exactly one number (repeats of the same value are fine); words and
   units around it are ignored ("1200 dollars", "USD 1,200", "about 42 units"). Numbers may use
   thousand separators (`1,234,567`, `1 234`, `1\\,234`; a comma is never a decimal point),
   scientific notation (`1.2e5`, `1.2 \\times 10^{5}`, `1.2\\cdot10^5`, `10^6`), fractions
   (`3/4`, `\\frac{3}{4}`, `\\dfrac`, `-\\frac`), the words thousand / million / billion, and a
   trailing period. Identifiers with digits (`x_1`, `x1`, `m^2`) are not numbers.
5. A percent sign (or the word "percent") keeps the number as written (`12.5%` -> 12.5) and
   sets `ParsedAnswer.percent`; grading then also accepts the value divided by 100 (see
   `or_env.grading`). NaN and infinities are rejected; negative zero reads as 0.
6. A box longer than MAX_ANSWER_CHARS characters is unparsable (a degenerate generation).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

INFEASIBLE = "infeasible"
UNBOUNDED = "unbounded"

#: The numeric marker some benchmark copies (SIRL, LLMOPT, ORLM) use for "no optimal solution".
INFEASIBLE_MARKER_VALUE = -99999.0

# ---------------------------------------------------------------------------------------------
# Finding the box

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
# A fence runs to its closing fence or, if unclosed, to the end of the text.
_FENCE_RE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# `\boxed 42` (no braces) is valid LaTeX for a single token; only a number-like token counts, so
# prose such as "in \boxed format" is not taken for an answer.
_BARE_ARG_RE = re.compile(r"\s+([-+]?[\d.][^\s$\\{}]*)")


def _mask_code_fences(text: str) -> str:
    """Blank out fenced blocks (keeping offsets) so a `\\boxed` printed by code is not an answer."""
    return _FENCE_RE.sub(lambda m: " " * len(m.group(0)), text)


def _braced_argument(text: str, start: int) -> str | None:
    """The content of the brace group opening at or after `start`, or None if it never closes."""
    i = start
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text) or text[i] != "{":
        bare = _BARE_ARG_RE.match(text, start)
        return bare.group(1) if bare else None
    depth = 0
    j = i
    while j < len(text):
        char = text[j]
        if char == "\\":
            j += 2  # an escaped brace `\{` does not open or close a group
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
        j += 1
    return None


def find_final_answer(text: str) -> str | None:
    """The raw content of the last complete `\\boxed{...}` (or `\\fbox{...}`) in `text`.

    Braces nest (`\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`). Boxes inside fenced code blocks
    (including an unclosed fence at the end) are ignored: they are code or program output, not the
    model's statement. A box that never closes (a cut-off response) does not count. Returns None
    when there is no box, and "" for an empty `\\boxed{}` (an answer that cannot be read).
    """
    if not text:
        return None
    masked = _mask_code_fences(text)
    last: str | None = None
    for match in _BOX_RE.finditer(masked):
        content = _braced_argument(masked, match.end())
        if content is not None:
            last = content
    return None if last is None else last.strip()


# ---------------------------------------------------------------------------------------------
# Reading the content


@dataclass(frozen=True)
class ParsedAnswer:
    """The value read from a box, or why none could be read.

    value: a finite float, INFEASIBLE, UNBOUNDED, or None.
    reason: "ok", "empty", "unparsable", "ambiguous" or "non_finite".
    percent: the number was written with a percent sign.
    detail: a short human-readable explanation when value is None.
    """

    value: float | str | None
    reason: str = "ok"
    percent: bool = False
    detail: str = ""


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN_RE = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_CHAR_MAP = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2013": "-",  # en dash, often typed for a minus
        "\ufe63": "-",
        "\uff0d": "-",
        "\u00a0": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2044": "/",  # fraction slash
        "\u2248": "=",  # approximately equal
        "\u221e": " inf ",
        "\u00d7": " × ",
        "\u22c5": " · ",
    }
)
_WRAPPER_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|texttt|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|"
    r"operatorname|mbox|hbox|boxed|fbox|emph|underline|overline)\s*\{([^{}]*)\}"
)
_LATEX_REPLACEMENTS = [
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\!"), ""),
    (re.compile(r"\\[,;:> ]|~|\\q?quad\b"), " "),
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?\b\s*\\?"), ""),
    (re.compile(r"\\(?:approx|simeq|cong|equiv)(?![A-Za-z])"), "="),
    (re.compile(r"\\times(?![A-Za-z])"), " × "),
    (re.compile(r"\\(?:c?dot|ast)(?![A-Za-z])"), " · "),
    (re.compile(r"\\infty(?![A-Za-z])"), " inf "),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$|\$"), " "),
]
_FRAC_RE = re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_FRAC_SHORT_RE = re.compile(r"\\frac\s*(\d)\s*(\d)")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+\*?")
_DETACHED_SIGN_RE = re.compile(r"(?<![\w)])([-+])\s+(?=[\d.])")

_INFEASIBLE_RE = re.compile(
    r"\binfeasib|\bnot\s+feasible|\bno\s+(?:feasible|optimal|best|valid)?\s*solutions?\b"
)
_UNBOUNDED_RE = re.compile(r"\bunbounded")

_NUM = (
    r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:[ ]\d{3})+)(?!\d)|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?"
    r"|[-+]?\.\d+(?:[eE][-+]?\d+)?"
)
_TOKEN_RE = re.compile(
    rf"""
    (?P<ident>[A-Za-z]+(?:_[A-Za-z0-9]+|\d+[A-Za-z0-9]*)|[A-Za-z]\^[-+]?\d+)
    | (?P<sci>(?P<mant>{_NUM})\s*(?:×|·|\*|x|X)\s*10\s*(?:\^|\*\*)\s*(?P<exp>[-+]?\d+))
    | (?P<pow>(?<![\d.])10\s*(?:\^|\*\*)\s*(?P<pexp>[-+]?\d+))
    | (?P<frac>(?P<num>{_NUM})\s*/\s*(?P<den>{_NUM}))
    | (?P<plain>{_NUM})
    | (?P<nonfinite>\b(?:nan|inf|infinity)\b)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SCALE_RE = re.compile(r"\s*(thousand|million|billion)\b", re.IGNORECASE)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_PERCENT_RE = re.compile(r"%|\bpercent\b|\bper\s+cent\b", re.IGNORECASE)
_ASSIGNMENT_SEPARATOR_RE = re.compile(r"[,;]|\band\b")
# A final answer is a number or a short statement; a longer box is a degenerate generation, and
# capping it keeps the scan cheap inside an RL reward loop.
MAX_ANSWER_CHARS = 1000


def _normalise(raw: str) -> str:
    """Rewrite LaTeX and unicode notation into plain text the tokenizer understands."""
    text = _SUPERSCRIPT_RUN_RE.sub(lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), raw)
    text = text.translate(_CHAR_MAP)
    for pattern, replacement in _LATEX_REPLACEMENTS:
        text = pattern.sub(replacement, text)
    previous = None
    while previous != text:  # wrappers may nest: \text{\textbf{42}}
        previous = text
        text = _WRAPPER_RE.sub(r" \1 ", text)
        text = _FRAC_RE.sub(r" \1/\2 ", text)
    text = _FRAC_SHORT_RE.sub(r" \1/\2 ", text)
    text = _COMMAND_RE.sub(" ", text)
    text = text.replace("{", "").replace("}", "")
    # "- 3/4" (from `-\frac{3}{4}`) or "- $5": join a detached sign to the number after it.
    text = _DETACHED_SIGN_RE.sub(r"\1", text)
    return text.strip()


def _to_float(token: str) -> float:
    return float(token.replace(",", "").replace(" ", ""))


def _scan_numbers(text: str) -> tuple[list[float], bool]:
    """All numbers in `text` and whether a NaN/infinity token appeared."""
    values: list[float] = []
    nonfinite = False
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind == "ident":
            continue
        if kind == "nonfinite":
            nonfinite = True
            continue
        try:
            if kind == "sci":
                value = _to_float(match["mant"]) * 10.0 ** int(match["exp"])
            elif kind == "pow":
                value = 10.0 ** int(match["pexp"])
            elif kind == "frac":
                denominator = _to_float(match["den"])
                value = _to_float(match["num"]) / denominator if denominator else math.nan
            else:
                value = _to_float(match["plain"])
        except OverflowError:
            value = math.inf
        scale = _SCALE_RE.match(text, match.end())
        if scale:
            value *= _SCALES[scale.group(1).lower()]
        if math.isfinite(value):
            values.append(value + 0.0)  # + 0.0 turns -0.0 into 0.0
        else:
            nonfinite = True
    return values, nonfinite


def _right_hand_sides(text: str) -> list[str]:
    """The value part(s) of `text`: itself, or the right-hand side of each assignment in it."""
    pieces = text.split("=")
    if len(pieces) == 1:
        return [text]
    sides: list[str] = []
    for middle in pieces[1:-1]:
        separators = list(_ASSIGNMENT_SEPARATOR_RE.finditer(middle))
        if separators:  # "3, y" in "x=3, y=5": one assignment ends, another starts
            sides.append(middle[: separators[-1].start()])
    last = pieces[-1]
    if not last.strip() and len(pieces) > 2:
        last = pieces[-2]
    elif not last.strip():
        last = pieces[0]  # "42 =" : the value is on the left
    sides.append(last)
    return sides


def _ambiguous(detail: str) -> ParsedAnswer:
    logger.debug("ambiguous answer: %s", detail)
    return ParsedAnswer(None, "ambiguous", detail=detail)


def parse_answer(raw: str) -> ParsedAnswer:
    """Read the content of a final-answer box (see the module docstring for the rules)."""
    if len(raw) > MAX_ANSWER_CHARS:
        return ParsedAnswer(
            None, "unparsable", detail=f"the answer box holds {len(raw)} characters, not a number"
        )
    text = _normalise(raw)
    if not text:
        return ParsedAnswer(None, "empty", detail="the answer box is empty")
    lowered = text.lower()
    infeasible = bool(_INFEASIBLE_RE.search(lowered))
    unbounded = bool(_UNBOUNDED_RE.search(lowered))
    if infeasible or unbounded:
        if infeasible and unbounded:
            return _ambiguous("the answer says both infeasible and unbounded")
        numbers, _ = _scan_numbers(text)
        if any(value != INFEASIBLE_MARKER_VALUE for value in numbers):
            return _ambiguous(f"a status and a number in {raw!r}")
        return ParsedAnswer(INFEASIBLE if infeasible else UNBOUNDED)

    found: list[float] = []
    percent = False
    saw_nonfinite = False
    for side in _right_hand_sides(text):
        numbers, nonfinite = _scan_numbers(side)
        saw_nonfinite |= nonfinite
        percent |= bool(_PERCENT_RE.search(side))
        found.extend(numbers)
    distinct = sorted(set(found))
    if saw_nonfinite:
        if distinct:
            return _ambiguous(f"a non-finite value next to numbers in {raw!r}")
        return ParsedAnswer(None, "non_finite", detail=f"{raw!r} is not a finite number")
    if not distinct:
        return ParsedAnswer(None, "unparsable", detail=f"no number in {raw!r}")
    if len(distinct) > 1:
        shown = ", ".join(f"{value:g}" for value in distinct[:4])
        return _ambiguous(f"several different numbers ({shown}) in {raw!r}")
    return ParsedAnswer(distinct[0], percent=percent)


def parse_answer_value(raw: str) -> float | str | None:
    """The value of a final-answer box: a finite float, INFEASIBLE, UNBOUNDED or None.

    None means the content could not be read as exactly one number or status; `parse_answer`
    says why. The -99999 marker comes back as the number -99999.0 (grading treats it as
    INFEASIBLE); a percentage comes back as written (`12.5%` -> 12.5).
    """
    return parse_answer(raw).value
