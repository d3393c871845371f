"""Reading a final answer out of model text: the last `\\boxed{}` and the number inside it.

`find_final_answer` finds the box; `parse_answer` reads its content the way people and
models write numbers. A reading is either right or refused: when the content holds anything
that could change the value and is not evaluated here, the answer is `unparsable`, never a
different number. Nothing is ever passed to `eval`. The rules, in the order they apply:

1. Unicode and LaTeX noise is removed: `$`, `\\$`, `\\%`, `\\,`, `\\!`, `~`, `\\left(`,
   `\\text{}`, `\\mathrm{}` and similar wrappers, `{,}`, font and size switches, `^\\circ`,
   `\\hspace{...}`; the unicode minus `−` reads as `-`, superscript digits as an exponent.
   Any other LaTeX command (`\\log`, `\\pm`, `\\pi`, an unknown macro) is refused where it is
   read (on the left of an assignment it is dropped with the rest of that side:
   `z_{\\max} = 42` reads 42). A relation (`<`, `>=`, `\\le`, `≠`) anywhere is refused: the
   box states a bound, not a value.
2. A statement of status wins over numbers: "infeasible", "no feasible / optimal / best
   solution", "no solution", "not feasible" give INFEASIBLE; "unbounded" gives UNBOUNDED.
   Both at once, or a status plus some other number (except the -99999 marker), is ambiguous.
   `\\infty` alone is *not* read as unbounded: a bare infinity is a non-finite number.
3. An assignment (`z = 42`, `z^* \\approx 42`) is read by its right-hand side; a chain
   (`z = 3x + 2y = 42`) by its last side. Several assignments (`x=3, y=5`) are ambiguous unless
   they all give the same value.
4. What remains must hold exactly one value (repeats of the same value are fine); words and
   units around it are ignored ("1200 dollars", "USD 1,200", "about 42 units"). Numbers may use
   thousand separators (`1,234,567`, `1 234`, `1\\,234`; a comma is never a decimal point),
   scientific notation (`1.2e5`, `1.2 \\times 10^{5}`, `1.2\\cdot10^5`, `10^6`), the words
   hundred / thousand / million / billion / trillion, and a trailing period. Identifiers with
   digits (`x_1`, `x1`, `m^2`) are not numbers. Evaluated exactly: unary signs (`-(5)` is -5,
   `--5` is 5), parentheses, one division (`3/4`, `\\frac{3}{4}`, `\\dfrac`, `-\\frac`, nested
   fractions), square roots (`\\sqrt{25}`, `√2`). Refused (unparsable): any other operator
   next to a number (`5-`, `x - 5`, `5^2`, `2 \\times 3`, `x/2`, `5!`), implicit
   multiplication (`2\\sqrt{2}`, `2(3)`), a single letter glued to a number (`0x10`, `2x`,
   `100k`, `5e`, `2π`), scale letters (`100 k`, `1.5 M`), functions (`log(10)`, `max(3, 5)`,
   `minus 5`), `±`, inequalities (`<`, `\\le`), absolute values (`|`), `\\sqrt[n]`, nesting
   deeper than MAX_NESTING.
5. A percent sign (or the word "percent") keeps the number as written (`12.5%` -> 12.5) and
   sets `ParsedAnswer.percent`; grading then also accepts the value divided by 100 (see
   `or_env.grading`). NaN, infinities and division by zero are non-finite; negative zero reads
   as 0.
6. A box longer than MAX_ANSWER_CHARS characters is unparsable (a degenerate generation).

Every function here runs in time linear in its input (or bounded by MAX_ANSWER_CHARS), so a
degenerate generation cannot stall a reward loop; tests/test_parsing_properties.py checks it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

INFEASIBLE = "infeasible"
UNBOUNDED = "unbounded"
#: A ground truth that says the problem has no optimal solution without saying which status
#: (ORLM's "No Best Solution", -99999, ORThought's null objective): either status matches it.
NO_OPTIMUM = "infeasible_or_unbounded"

#: The numeric marker some benchmark copies (SIRL, LLMOPT, ORLM) use for "no optimal solution".
INFEASIBLE_MARKER_VALUE = -99999.0

# ---------------------------------------------------------------------------------------------
# Finding the box

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
# A fence line: three or more backticks at the start of a line (after spaces or tabs), then an
# optional tag with no backtick in it. One quantifier per part, so a failed line costs its length.
_FENCE_LINE_RE = re.compile(r"^[ \t]*+`{3,}+([^`\n]*+)$", re.MULTILINE)
# `\boxed 42` (no braces) is valid LaTeX for a single token; only a number-like token counts, so
# prose such as "in \boxed format" is not taken for an answer.
_BARE_ARG_RE = re.compile(r"\s+([-+]?[\d.][^\s$\\{}]*)")
_SPACE_RE = re.compile(r"\s*")
# An escape (a backslash and the character after it) or a run of opening or closing braces.
_BRACE_RUN_RE = re.compile(r"\\.|\{++|\}++", re.DOTALL)


def _mask_code_fences(text: str) -> str:
    """Blank out fenced blocks (keeping offsets) so a `\\boxed` in code or output is not an answer.

    Blocks are read from fence lines, as the protocol reads them (and as Markdown does): a fence
    line opens a block; inside a block only an untagged fence line closes it (a tagged one, or
    "```" in the middle of a line such as a string literal in code, is content); an unclosed
    block runs to the end of the text. Program output never holds a fence (the environment
    renders it with `or_env.protocol.render_output`), so it cannot end its block early.
    """
    pieces: list[str] = []
    opened: int | None = None
    done = 0
    for fence in _FENCE_LINE_RE.finditer(text):
        if opened is None:
            opened = fence.start()
        elif not fence.group(1).strip():
            pieces += [text[done:opened], " " * (fence.end() - opened)]
            done, opened = fence.end(), None
    if opened is not None:
        pieces += [text[done:opened], " " * (len(text) - opened)]
        done = len(text)
    pieces.append(text[done:])
    return "".join(pieces)


def _closing_brace(text: str, brace: int, limit: int) -> int | None:
    """The offset of the `}` closing the `{` at `brace`, looking before `limit`; None if none.

    An escaped brace `\\{` neither opens nor closes. Runs of braces count at once, so a long run
    costs one step.
    """
    depth = 0
    for match in _BRACE_RUN_RE.finditer(text, brace, limit):
        token = match.group(0)
        if token[0] == "{":
            depth += len(token)
        elif token[0] == "}":
            if depth <= len(token):
                return match.start() + depth - 1
            depth -= len(token)
    return None


def find_final_answer(text: str) -> str | None:
    """The raw content of the last complete `\\boxed{...}` (or `\\fbox{...}`) in `text`.

    Braces nest (`\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`). Boxes inside fenced blocks
    (fences at line starts, see `_mask_code_fences`; an unclosed block runs to the end) are
    ignored: they are code or program output, not the model's statement. A box that never
    closes (a cut-off response) does not count. Returns None when there is no box, and "" for
    an empty `\\boxed{}` (an answer that cannot be read).
    Linear in the length of `text`.
    """
    if not text:
        return None
    masked = _mask_code_fences(text)
    starts = [match.end() for match in _BOX_RE.finditer(masked)]
    # The last complete box wins, so look from the end. Every scan stops where the next box's
    # argument opens: that argument never closes (else it would have won), so an earlier one
    # that has not closed by then never does. The scans add up to one pass over the text;
    # scanning from each box to the end was quadratic on "\\boxed{" repeated.
    limit = len(masked)
    for start in reversed(starts):
        brace = _SPACE_RE.match(masked, start).end()  # type: ignore[union-attr]
        if brace < len(masked) and masked[brace] == "{":
            end = _closing_brace(masked, brace, limit)
            if end is not None:
                return masked[brace + 1 : end].strip()
            limit = brace
            continue
        bare = _BARE_ARG_RE.match(masked, start)
        if bare:
            return bare.group(1).strip()
    return None


# ---------------------------------------------------------------------------------------------
# Reading the content


@dataclass(frozen=True)
class ParsedAnswer:
    """The value read from a box, or why none could be read.

    value: a finite float, INFEASIBLE, UNBOUNDED, or None (NO_OPTIMUM only when a caller
        grades that constant itself, see `or_env.grading.grade_value`).
    reason: "ok", "empty", "unparsable", "ambiguous" or "non_finite".
    percent: the number was written with a percent sign.
    detail: a short human-readable explanation when value is None.
    """

    value: float | str | None
    reason: str = "ok"
    percent: bool = False
    detail: str = ""


class _Refusal(Exception):
    """The content holds something that may change the value and is not evaluated here."""


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN_RE = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_CHAR_MAP = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash, often typed for a minus
        "\ufe63": "-",
        "\uff0d": "-",
        "\u00a0": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2044": "/",  # fraction slash
        "\u2215": "/",  # division slash
        "\u00f7": "/",  # division sign
        "\u2248": "=",  # approximately equal
        "\u221e": " inf ",
        "\u00d7": " × ",
        "\u22c5": " · ",
    }
)
_WRAPPERS = (
    "text|textbf|textit|textrm|texttt|textsf|textup|textsc|textmd|textsl|textnormal|mathrm|"
    "mathbf|mathit|mathsf|mathtt|mathnormal|mathbb|mathcal|boldsymbol|bm|pmb|operatorname|mbox|"
    "hbox|boxed|fbox|emph|underline|overline"
)
_WRAPPER_RE = re.compile(rf"\\(?:{_WRAPPERS})\s*\{{([^{{}}]*)\}}")
_SQRT_RE = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_FRAC_RE = re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_FRAC_SHORT_RE = re.compile(r"\\frac\s*(\d)\s*(\d)")
_LATEX_REPLACEMENTS = [
    (re.compile(r"\\[dtc]frac"), r"\\frac"),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\!"), ""),
    # A degree sign would otherwise leave a bare `^` after the number.
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?"), " "),
    # Spacing and colour commands take an argument that is a length or a colour, not a value.
    (
        re.compile(
            r"\\(?:hspace|vspace|hphantom|vphantom|phantom|color|textcolor|label)\*?\s*"
            r"\{[^{}]*\}"
        ),
        " ",
    ),
    (re.compile(r"\\[,;:> ]|~|\\q?quad\b"), " "),
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?\b\s*\\?"), ""),
    (re.compile(r"\\(?:approx|simeq|cong|equiv|sim)(?![A-Za-z])"), "="),
    (re.compile(r"\\(?:le|leq|leqslant|lt)(?![A-Za-z])"), "≤"),
    (re.compile(r"\\(?:ge|geq|geqslant|gt)(?![A-Za-z])"), "≥"),
    (re.compile(r"\\(?:ne|neq)(?![A-Za-z])"), "≠"),
    (re.compile(r"\\times(?![A-Za-z])"), " × "),
    (re.compile(r"\\(?:c?dot|ast)(?![A-Za-z])"), " · "),
    (re.compile(r"\\div(?![A-Za-z])"), "/"),
    (re.compile(r"\\infty(?![A-Za-z])"), " inf "),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$|\$"), " "),
    (re.compile(r"\\[#&_{}]"), " "),
]
_COMMAND_RE = re.compile(r"\\([A-Za-z]+)\*?|\\")
# Commands that never change a value: font, size and style switches, dots, currency signs.
_NEUTRAL_COMMANDS = frozenset(
    (
        "displaystyle textstyle scriptstyle scriptscriptstyle bf rm it sf tt em sl sc small large "
        "Large LARGE huge Huge normalsize footnotesize scriptsize tiny circ degree dots ldots "
        "cdots checkmark nobreak allowbreak newline hline limits nolimits euro texteuro "
        "textdollar pounds textsterling yen textyen colon quad qquad " + _WRAPPERS.replace("|", " ")
    ).split()
)
_DEPTH_LIMIT_DETAIL = "the answer nests deeper than {} levels"

# Possessive quantifiers: giving back whitespace can never help a letter match, and on a long
# whitespace run it would cost a step per character.
_INFEASIBLE_RE = re.compile(
    r"\binfeasib|\bnot\s++feasible|\bno\s++(?:(?:feasible|optimal|best|valid)\s*+)?solutions?\b"
)
_UNBOUNDED_RE = re.compile(r"\bunbounded")

_NUM = (
    r"(?:(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:[ ]\d{3})+)(?!\d)|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?"
    r"|\.\d+(?:[eE][-+]?\d+)?"
)
# Tokens of a normalised answer. It is matched at successive positions (a scanner), so every
# alternative costs at most the length of its own token and the whole scan is linear.
_LEX_RE = re.compile(
    rf"""
    (?P<ws>\s+)
    | (?P<sci>(?P<mant>{_NUM})\s*(?:×|·|\*|x|X)\s*10\s*(?:\^|\*\*)\s*(?P<exp>[-+]?\d+))
    | (?P<pow>10\s*(?:\^|\*\*)\s*(?P<pexp>[-+]?\d+))
    | (?P<num>{_NUM})
    | (?P<ident>[A-Za-z]+(?:_[A-Za-z0-9]+|\d+[A-Za-z0-9]*|\^(?:[-+]?\d+|\*)))
    | (?P<word>[^\W\d_]+)
    | (?P<sign>[-+])
    | (?P<op>\*\*|[*/^×·])
    | (?P<open>[(\[])
    | (?P<close>[)\]])
    | (?P<sep>[,;])
    | (?P<percent>%)
    | (?P<root>√)
    | (?P<bad>[±∓≤≥≠<>|\ue000])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_SCALES = {
    "hundred": 1e2,
    "thousand": 1e3,
    "lakh": 1e5,
    "million": 1e6,
    "crore": 1e7,
    "billion": 1e9,
    "trillion": 1e12,
}
# Letters that scale a number when written after it ("100k", "1.5 M", "3bn"): not read.
_SCALE_LETTERS = frozenset({"k", "K", "M", "B", "bn", "mn", "mln", "mio", "mrd"})
_NONFINITE_WORDS = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}
# Function names, refused when a parenthesis is glued to them ("log(10)", "max(3, 5)").
_FUNCTION_WORDS = frozenset(
    {
        *("log", "ln", "lg", "exp", "sin", "cos", "tan", "cot", "sec", "csc"),
        *("arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "abs", "floor", "ceil"),
        *("round", "max", "min", "mod", "sum", "prod", "det", "gcd", "lcm"),
    }
)
# Words that apply to the number next to them even with a space in between ("minus 5").
_OPERATOR_WORDS = frozenset(
    {
        *("log", "ln", "lg", "exp", "sin", "cos", "tan", "abs"),
        *("minus", "negative", "plus", "times", "over", "divided"),
    }
)
_PERCENT_RE = re.compile(r"%|\bpercent\b|\bper\s+cent\b", re.IGNORECASE)
_ASSIGNMENT_SEPARATOR_RE = re.compile(r"[,;]|\band\b")
# A final answer is a number or a short statement; a longer box is a degenerate generation, and
# capping it keeps the scan cheap inside an RL reward loop.
MAX_ANSWER_CHARS = 1000
#: Parentheses, roots and fractions may nest this deep; deeper is refused.
MAX_NESTING = 32


_LETTERS_RE = re.compile(r"[^\W\d_]*")


def _is_latin_or_greek(letter: str) -> bool:
    # A single such letter glued to a number is a variable, a base prefix or a scale (2x, 0x10,
    # 100k, 2π); other scripts write units that way (42元).
    return letter.isascii() or "\u0370" <= letter <= "\u03ff"


# Stands for a LaTeX command that is not evaluated: refused where it is read, ignored on the
# left-hand side of an assignment (`z_{\max} = 42` reads 42). A private-use character.
_UNREAD = "\ue000"
# Relations: the box states a bound, not a value. Refused anywhere, also split by "=" ("<=").
_RELATION_RE = re.compile(r"[≤≥≠<>]|!=")


def _drop_command(match: re.Match[str]) -> str:
    name = match.group(1)
    if name is None or name in _NEUTRAL_COMMANDS:
        return " "
    return _UNREAD


def _normalise(raw: str) -> str:
    """Rewrite LaTeX and unicode notation into plain text the tokenizer understands.

    A command that would change the value and is not evaluated becomes _UNREAD.
    """
    text = _SUPERSCRIPT_RUN_RE.sub(lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), raw)
    text = text.translate(_CHAR_MAP)
    for pattern, replacement in _LATEX_REPLACEMENTS:
        text = pattern.sub(replacement, text)
    previous = None
    # Innermost first: \text{\textbf{42}}, \frac{\sqrt{3}}{2}. No spaces are added around what
    # replaces a command, so what was glued stays glued: \mathbf{42}x is 42x, refused.
    while previous != text:
        previous = text
        text = _WRAPPER_RE.sub(r"\1", text)
        text = _SQRT_RE.sub(r"√(\1)", text)
        text = _FRAC_RE.sub(r"((\1)/(\2))", text)
    text = _FRAC_SHORT_RE.sub(r"((\1)/(\2))", text)
    text = _COMMAND_RE.sub(_drop_command, text)
    text = text.replace("{", "").replace("}", "")
    return text.strip()


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int
    match: re.Match[str]


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _LEX_RE.match(text, position)
        assert match is not None  # `other` matches any character
        kind = match.lastgroup or "other"
        if kind != "ws":
            tokens.append(_Token(kind, match.group(0), match.start(), match.end(), match))
        position = match.end()
    return tokens


def _to_float(token: str) -> float:
    try:
        return float(token.replace(",", "").replace(" ", ""))
    except OverflowError:
        return math.inf
    except ValueError as exc:  # digits float() does not take (never seen; refuse, not guess)
        raise _Refusal(f"cannot read the number {token[:40]!r}") from exc


def _power_of_ten(mantissa: float, exponent: str) -> float:
    try:
        return mantissa * 10.0 ** int(exponent)
    except OverflowError:
        return math.inf
    except ValueError:  # an exponent with more digits than int() reads
        return math.inf if not exponent.lstrip("+").startswith("-") else 0.0


class _Reader:
    """Reads the values of one side of an answer (see rule 4 of the module docstring).

    `values` collects every value found; a construct that may change a value and is not
    evaluated raises _Refusal.
    """

    _STARTS = frozenset({"num", "sci", "pow", "root", "open", "sign"})
    _OPERANDS = frozenset({"num", "sci", "pow", "close", "ident", "percent"})

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.values: list[float] = []

    def _kind(self, index: int) -> str | None:
        return self.tokens[index].kind if index < len(self.tokens) else None

    def _is_start(self, index: int) -> bool:
        if index >= len(self.tokens):
            return False
        token = self.tokens[index]
        if token.kind in self._STARTS:
            return True
        return token.kind == "word" and token.text.lower() in (*_NONFINITE_WORDS, "sqrt")

    def _is_operand(self, token: _Token) -> bool:
        if token.kind in self._OPERANDS:
            return True
        return token.kind == "word" and (len(token.text) == 1 or token.text.lower() in _SCALES)

    def read(self) -> list[float]:
        tokens, index = self.tokens, 0
        while index < len(tokens):
            token = tokens[index]
            if token.kind == "bad" and token.text == _UNREAD:
                raise _Refusal("a LaTeX command that is not evaluated")
            if token.kind == "bad":
                raise _Refusal(f"{token.text!r} is not evaluated")
            if token.kind == "word" and token.text in ("π", "pi"):
                raise _Refusal("π is not evaluated")
            if token.kind == "word" and self._applies_function(index):
                raise _Refusal(f"the function {token.text!r} is not evaluated")
            if not self._is_start(index):
                index += 1
                continue
            self._check_before(index)
            read = self._signed(index, 0)
            if read is None:  # an opening parenthesis that does not hold one value: punctuation
                index += 1
                continue
            value, index = read
            self._check_after(index)
            self.values.append(value)
        return self.values

    def _applies_function(self, index: int) -> bool:
        word = self.tokens[index].text.lower()
        after = index + 1
        if after >= len(self.tokens):
            return False
        glued_paren = (
            self.tokens[after].kind == "open" and self.tokens[after].start == self.tokens[index].end
        )
        return (word in _FUNCTION_WORDS and glued_paren) or (
            word in _OPERATOR_WORDS and self._is_start(after)
        )

    def _check_before(self, index: int) -> None:
        if index == 0:
            return
        before, first = self.tokens[index - 1], self.tokens[index]
        if before.kind == "op":
            raise _Refusal(f"the operator {before.text!r} before a number is not evaluated")
        if first.kind == "sign" and self._is_operand(before):
            raise _Refusal(f"the operator {first.text!r} between two terms is not evaluated")

    def _check_after(self, index: int) -> None:
        if index >= len(self.tokens):
            return
        last, after = self.tokens[index - 1], self.tokens[index]
        glued = after.start == last.end
        if after.kind in ("op", "sign"):
            raise _Refusal(f"the operator {after.text!r} after a number is not evaluated")
        if glued and after.kind in ("open", "root", "num", "sci", "pow"):
            raise _Refusal("implicit multiplication is not evaluated")
        if glued and after.text == "!":
            raise _Refusal("a factorial is not evaluated")
        if after.kind in ("word", "ident"):
            letters = _LETTERS_RE.match(after.text).group(0)  # type: ignore[union-attr]
            single = len(letters) == 1 and _is_latin_or_greek(letters)
            if (glued and single) or letters in _SCALE_LETTERS:
                raise _Refusal(f"{after.text!r} next to a number may change it; not read")

    def _signed(self, index: int, depth: int) -> tuple[float, int] | None:
        """A value with leading signs and at most one division, or None if none starts here."""
        sign, start = 1.0, index
        while self._kind(index) == "sign":
            sign = -sign if self.tokens[index].text == "-" else sign
            index += 1
        read = self._primary(index, depth)
        if read is None:
            if index > start:
                raise _Refusal("a sign that is not followed by a number")
            return None
        value, index = read
        if self._kind(index) == "op" and self.tokens[index].text == "/":
            denominator_sign = 1.0
            index += 1
            while self._kind(index) == "sign":
                denominator_sign *= -1.0 if self.tokens[index].text == "-" else 1.0
                index += 1
            below = self._primary(index, depth)
            if below is None:
                raise _Refusal("a division by something that is not a number")
            divisor, index = below
            divisor *= denominator_sign
            value = value / divisor if divisor != 0 else math.nan
        return sign * value, index

    def _primary(self, index: int, depth: int) -> tuple[float, int] | None:
        if depth > MAX_NESTING:
            raise _Refusal(_DEPTH_LIMIT_DETAIL.format(MAX_NESTING))
        if index >= len(self.tokens):
            return None
        token = self.tokens[index]
        if token.kind in ("num", "sci", "pow"):
            return self._scaled(self._number(token), index + 1)
        if token.kind == "word" and token.text.lower() in _NONFINITE_WORDS:
            return _NONFINITE_WORDS[token.text.lower()], index + 1
        if token.kind == "root" or (token.kind == "word" and token.text.lower() == "sqrt"):
            if self._kind(index + 1) == "sign":
                raise _Refusal("the square root of a signed number is not evaluated")
            inner = self._primary(index + 1, depth + 1)
            if inner is None:
                raise _Refusal("a square root of something that is not a number")
            radicand, after = inner
            if radicand < 0:
                raise _Refusal("the square root of a negative number is not a real number")
            return math.sqrt(radicand), after
        if token.kind == "open":
            inner = self._signed(index + 1, depth + 1)
            if inner is None:
                return None
            value, after = inner
            if self._kind(after) != "close":
                return None
            return value, after + 1
        return None

    @staticmethod
    def _number(token: _Token) -> float:
        match = token.match
        if token.kind == "sci":
            return _power_of_ten(_to_float(match["mant"]), match["exp"])
        if token.kind == "pow":
            return _power_of_ten(1.0, match["pexp"])
        return _to_float(token.text)

    def _scaled(self, value: float, index: int) -> tuple[float, int]:
        if self._kind(index) == "word" and self.tokens[index].text.lower() in _SCALES:
            return value * _SCALES[self.tokens[index].text.lower()], index + 1
        return value, index


def _read_values(text: str) -> list[float]:
    """The values written in `text` (finite or not); raises _Refusal (see _Reader)."""
    return _Reader(text).read()


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
    try:
        return _parse(raw)
    except _Refusal as refusal:
        return ParsedAnswer(None, "unparsable", detail=f"{refusal} in {raw!r}")


def _parse(raw: str) -> ParsedAnswer:
    text = _normalise(raw)
    if not text:
        return ParsedAnswer(None, "empty", detail="the answer box is empty")
    relation = _RELATION_RE.search(text)
    if relation:
        raise _Refusal(f"the relation {relation.group(0)!r} states a bound, not a value")
    lowered = text.lower()
    infeasible = bool(_INFEASIBLE_RE.search(lowered))
    unbounded = bool(_UNBOUNDED_RE.search(lowered))
    if infeasible or unbounded:
        if infeasible and unbounded:
            return _ambiguous("the answer says both infeasible and unbounded")
        try:
            numbers = _read_values(text)
        except _Refusal:
            return _ambiguous(f"a status and an expression in {raw!r}")
        if any(value != INFEASIBLE_MARKER_VALUE for value in numbers):
            return _ambiguous(f"a status and a number in {raw!r}")
        return ParsedAnswer(INFEASIBLE if infeasible else UNBOUNDED)

    found: list[float] = []
    percent = False
    for side in _right_hand_sides(text):
        found.extend(_read_values(side))
        percent |= bool(_PERCENT_RE.search(side))
    finite = [value + 0.0 for value in found if math.isfinite(value)]  # + 0.0: -0.0 reads 0.0
    distinct = sorted(set(finite))
    if len(finite) < len(found):
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


# ---------------------------------------------------------------------------------------------
# Numbers a program printed


@dataclass(frozen=True)
class PrintedValues:
    """What one program printed that an answer could have been copied from.

    numbers: every number in the text, read generously (a plain number, a thousands-grouped
        one, and a fraction `a/b` both as its parts and as its value), so that a value the
        program printed is never missed; an identifier's digits (`x1`) are not numbers.
    statuses: INFEASIBLE and/or UNBOUNDED when the text states them ("Infeasible",
        "No Best Solution", "unbounded", ...).
    """

    numbers: tuple[float, ...]
    statuses: frozenset[str]


# Each pattern starts only where no word character or dot precedes, so a failed attempt inside a
# digit or letter run is rejected at once and every scan stays linear.
_PRINTED_PLAIN_RE = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_PRINTED_GROUPED_RE = re.compile(r"(?<![\w.,])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")
_PRINTED_FRACTION_RE = re.compile(r"(?<![\w./])([-+]?\d+)\s*/\s*(\d+)(?![\d./])")
# A number longer than this is not an objective value anyone copies into a box.
_MAX_PRINTED_NUMBER_CHARS = 400


def _printed_float(token: str) -> float:
    try:
        return _to_float(token)
    except _Refusal:
        return math.nan


def printed_values(text: str) -> PrintedValues:
    """The numbers and statuses in a program's output (see PrintedValues); linear time.

    Repeated numbers are read once (findall into a set keeps the per-number work in C), and
    the grouped and fraction scans run only when the text has a comma or a slash.
    """
    tokens = set(_PRINTED_PLAIN_RE.findall(text))
    if "," in text:
        tokens.update(_PRINTED_GROUPED_RE.findall(text))
    numbers = {_printed_float(t) for t in tokens if len(t) <= _MAX_PRINTED_NUMBER_CHARS}
    if "/" in text:
        for numerator, denominator in set(_PRINTED_FRACTION_RE.findall(text)):
            if len(numerator) + len(denominator) <= _MAX_PRINTED_NUMBER_CHARS:
                below = _printed_float(denominator)
                if below:
                    numbers.add(_printed_float(numerator) / below)
    lowered = text.lower()
    statuses = {
        status
        for status, pattern in ((INFEASIBLE, _INFEASIBLE_RE), (UNBOUNDED, _UNBOUNDED_RE))
        if pattern.search(lowered)
    }
    finite = tuple(sorted(value + 0.0 for value in numbers if math.isfinite(value)))
    return PrintedValues(finite, frozenset(statuses))
