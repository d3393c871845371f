"""Properties of answer and action parsing over random and adversarial text (hypothesis), and a
regression bound on degenerate megabyte actions (issue 9, item 7: parsing was quadratic).

The parsers must never raise, must agree with a simple reference where the input is well
formed, and must take time linear in their input; program output rendered into an output block
must never yield an answer.
"""

from __future__ import annotations

import math
import re
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from or_env.answer_parsing import (
    INFEASIBLE,
    UNBOUNDED,
    find_final_answer,
    parse_answer,
    printed_values,
)
from or_env.grading import grade
from or_env.protocol import (
    MAX_ACTION_CHARS,
    ActionKind,
    execution_text,
    output_block,
    parse_action,
    render_output,
)
from or_env.sandbox.base import ExecResult

# No example database: nothing is written into the checkout.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Any character, lone surrogates and control characters included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)
# Pieces that matter to the parsers, so that random strings hit the interesting cases often.
PIECES = [
    "\\boxed",
    "\\fbox",
    "{",
    "}",
    "\\{",
    "\\}",
    "\\",
    " ",
    "\n",
    "\t",
    "```",
    "```python",
    "```output",
    "````",
    "  ```",
    "`",
    "~~~",
    "42",
    "-",
    "(",
    ")",
    "1,234",
    "x",
    "=",
    "\\frac",
    "\\sqrt",
    "\\text{",
    "infeasible",
    "%",
    "1e5",
    "\r",
    "\ud800",
    "\x1b[31m",
    "\u200b",
]
PIECE_TEXT = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)
TEXTS = st.one_of(ANY_TEXT, PIECE_TEXT)


# ---------------------------------------------------------------- finding the box

_REFERENCE_FENCE = re.compile(r"[ \t]*`{3,}([^`]*)")
_REFERENCE_BOX = re.compile(r"\\(?:boxed|fbox)\b")
_REFERENCE_BARE = re.compile(r"\s+([-+]?[\d.][^\s$\\{}]*)")


def reference_find(text: str) -> str | None:
    """find_final_answer written plainly (quadratic, obviously right): mask fenced blocks line
    by line, then scan each box's braces from where it opens."""
    masked, opened, offset = list(text), None, 0
    for line in text.split("\n"):
        fence = _REFERENCE_FENCE.fullmatch(line)
        if fence and opened is None:
            opened = offset
        elif fence and not fence.group(1).strip():
            masked[opened : offset + len(line)] = " " * (offset + len(line) - opened)
            opened = None
        offset += len(line) + 1
    if opened is not None:
        masked[opened:] = " " * (len(text) - opened)
    plain = "".join(masked)
    last = None
    for box in _REFERENCE_BOX.finditer(plain):
        i = box.end()
        while i < len(plain) and plain[i].isspace():
            i += 1
        if i >= len(plain) or plain[i] != "{":
            bare = _REFERENCE_BARE.match(plain, box.end())
            last = bare.group(1) if bare else last
            continue
        depth, j = 0, i
        while j < len(plain):
            if plain[j] == "\\":
                j += 2
                continue
            depth += {"{": 1, "}": -1}.get(plain[j], 0)
            if plain[j] == "}" and depth == 0:
                last = plain[i + 1 : j]
                break
            j += 1
    return None if last is None else last.strip()


@PROPERTY
@given(TEXTS)
def test_find_final_answer_agrees_with_the_reference(text: str) -> None:
    assert find_final_answer(text) == reference_find(text)


@PROPERTY
@given(TEXTS)
def test_parse_answer_never_raises(raw: str) -> None:
    parsed = parse_answer(raw)
    assert parsed.reason in {"ok", "empty", "unparsable", "ambiguous", "non_finite"}
    if parsed.reason == "ok":
        value = parsed.value
        assert value in (INFEASIBLE, UNBOUNDED) or (
            isinstance(value, float) and math.isfinite(value)
        )
    else:
        assert parsed.value is None and parsed.detail


@PROPERTY
@given(TEXTS)
def test_grade_never_raises(text: str) -> None:
    verdict = grade(text, 42)
    assert verdict.correct is (verdict.reason == "correct")


# ---------------------------------------------------------------- well-formed numbers


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, float, bool]:
    """A number written one of the ways models write it: (text, its value, has a percent)."""
    whole = draw(st.integers(0, 10**12))
    decimals = draw(st.sampled_from(["", "5", "25", "125", "0625"]))
    digits = f"{whole}.{decimals}" if decimals else str(whole)
    grouped = f"{whole:,}.{decimals}" if decimals else f"{whole:,}"
    value = float(digits)
    small = draw(st.integers(1, 999))
    denominator = draw(st.integers(1, 64))
    root = draw(st.integers(0, 3000))
    negative = draw(st.booleans())
    forms = [
        (digits, value),
        (grouped, value),
        (f"\\${grouped}", value),
        (f"{grouped} dollars", value),
        (f"z = {digits}", value),
        (f"\\text{{Total cost}} = {grouped}", value),
        (f"z^* \\approx {digits}", value),
        (f"\\mathbf{{{digits}}}", value),
        (f"({digits})", value),
        (f"\\left( {digits} \\right)", value),
        (f"{small} \\times 10^{{{denominator % 9}}}", small * 10.0 ** (denominator % 9)),
        (f"{small}e{denominator % 9}", small * 10.0 ** (denominator % 9)),
        (f"\\frac{{{small}}}{{{denominator}}}", small / denominator),
        (f"\\dfrac{{{small}}}{{{denominator}}}", small / denominator),
        (f"{small}/{denominator}", small / denominator),
        (f"\\sqrt{{{root * root}}}", float(root)),
        (f"{small} million", small * 1e6),
    ]
    text, number = draw(st.sampled_from(forms))
    if negative and number and "=" not in text and "approx" not in text:
        sign = draw(st.sampled_from(["-", "−", "--", "-(", "- "]))
        if sign == "-(" and ("dollars" in text or "million" in text):
            sign = "-"  # "-(5 dollars)" negates more than a number: refused, rightly
        if sign == "--":
            text = "--" + text  # a double negative is the number itself
        elif sign == "-(":
            text, number = f"-({text})", -number
        else:
            text, number = sign + text, -number
    percent = draw(st.booleans()) and "=" not in text
    return (text + "\\%" if percent else text), number, percent


@PROPERTY
@given(written_numbers())
def test_parse_answer_reads_well_formed_numbers(case: tuple[str, float, bool]) -> None:
    text, value, percent = case
    parsed = parse_answer(text)
    assert parsed.reason == "ok", (text, parsed)
    assert math.isclose(parsed.value, value, rel_tol=1e-12, abs_tol=0.0), (text, parsed)
    assert parsed.percent is percent
    assert grade(f"So the optimum is \\boxed{{{text}}}.", value).correct


@PROPERTY
@given(written_numbers(), st.sampled_from(["5-", "^2", "!", "x", "k", "(2)", " - 1", "/x", "\\pi"]))
def test_a_value_changing_suffix_is_refused(case: tuple[str, float, bool], suffix: str) -> None:
    text, _, percent = case
    if percent or text[-1].isalpha():
        return  # the suffix would follow a unit or a percent sign, not the number
    parsed = parse_answer(text + suffix)
    assert parsed.value is None, (text + suffix, parsed)


# ---------------------------------------------------------------- actions


@PROPERTY
@given(TEXTS)
def test_parse_action_never_raises(text: str) -> None:
    parsed = parse_action(text)
    assert parsed.kind in set(ActionKind)
    if parsed.kind is ActionKind.CODE:
        assert parsed.code is not None
        parsed.code.encode("utf-8")  # runnable code is always valid text


_CODE_LINE = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="`"), max_size=40
)
_PROSE = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="`\\"), max_size=80)


@PROPERTY
@given(
    _PROSE, st.lists(_CODE_LINE, min_size=1, max_size=5), st.sampled_from(["", "\n", "```output"])
)
def test_a_turn_ending_in_a_python_block_runs_it(prose: str, lines: list[str], end: str) -> None:
    code = "\n".join(lines)
    parsed = parse_action(f"{prose}\n```python\n{code}\n```{end}")
    assert parsed.kind is ActionKind.CODE
    assert parsed.code == textwrap.dedent(code).rstrip("\n")


@PROPERTY
@given(_PROSE, st.integers(-(10**9), 10**9))
def test_a_turn_with_a_box_is_an_answer(prose: str, value: int) -> None:
    parsed = parse_action(f"{prose}\nThe optimum is \\boxed{{{value}}}.")
    assert (parsed.kind, parsed.answer) == (ActionKind.ANSWER, str(value))


# ---------------------------------------------------------------- program output


@PROPERTY
@given(TEXTS)
def test_rendered_output_has_no_fence_and_no_control_character(text: str) -> None:
    rendered = render_output(text)
    assert "```" not in rendered and "~~~" not in rendered
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", rendered)
    assert render_output(rendered) == rendered


@PROPERTY
@given(TEXTS, TEXTS, st.sampled_from(["inline", "echoed", "chat"]))
def test_program_output_never_yields_an_answer(stdout: str, stderr: str, how: str) -> None:
    action = "Let me run it.\n```python\nprint(...)\n```\n"
    block = output_block(execution_text(ExecResult(stdout, stderr, 0), 4000)[0])
    if how == "echoed":
        response = action + "```output" + block[len("```output") :]
    elif how == "chat":
        response = action + "<|im_start|>user\n" + block + "<|im_start|>assistant\n"
    else:
        response = action + block
    assert find_final_answer(response + "Let me think.") is None
    assert find_final_answer(response + "So \\boxed{7}.") == "7"


@PROPERTY
@given(TEXTS)
def test_printed_values_never_raise(text: str) -> None:
    printed = printed_values(text)
    assert all(math.isfinite(number) for number in printed.numbers)


@PROPERTY
@given(st.floats(allow_nan=False, allow_infinity=False, width=64), TEXTS)
def test_a_printed_float_is_read_back(value: float, noise: str) -> None:
    printed = printed_values(f"{noise}\nobjective: {value}\n")
    assert value + 0.0 in printed.numbers


# ---------------------------------------------------------------- degenerate megabyte actions

MB = MAX_ACTION_CHARS


def _shape(unit: str) -> str:
    return unit * (MB // len(unit))


DEGENERATE = [
    ("unclosed boxes", _shape("\\boxed{")),
    ("boxes", _shape("\\boxed{1}")),
    ("open braces", _shape("{")),
    ("close braces", _shape("}")),
    ("deep box", "\\boxed{" + "{" * (MB // 2 - 8) + "}" * (MB // 2 - 8) + "}"),
    ("box of parentheses", "\\boxed{" + "(" * (MB - 8) + "}"),
    ("backslashes", _shape("\\")),
    ("fence run", _shape("`")),
    ("fence lines", _shape("```\n")),
    ("python fence lines", _shape("```python\n")),
    ("fence then spaces", "```" + " " * (MB - 4) + "x"),
    ("spaces then fence", " " * (MB - 4) + "x```"),
    ("letters", _shape("a")),
    ("digits", _shape("1")),
    ("digits in a box", "\\boxed{" + "9" * (MB - 8) + "}"),
    ("bare box of digits", "\\boxed " + "9" * (MB - 8)),
    ("grouped digits", _shape("1,234,")),
    ("spaced digits", _shape("123 ")),
    ("fractions", _shape("1/")),
    ("signs", _shape("-")),
    ("no then spaces", "no" + " " * (MB - 3) + "x"),
    ("words", _shape("infeasible ")),
    ("escape sequences", _shape("\x1b[")),
    ("osc sequences", _shape("\x1b]")),
    ("carriage returns", _shape("\r")),
    ("surrogates", _shape("\ud800")),
    ("newlines", _shape("\n")),
]
BOUND_S = 1.0  # generous: these take a few tens of milliseconds; quadratic took minutes


@pytest.mark.parametrize("text", [d[1] for d in DEGENERATE], ids=[d[0] for d in DEGENERATE])
def test_a_megabyte_degenerate_action_parses_fast(text: str) -> None:
    assert len(text) <= MAX_ACTION_CHARS
    for work in (parse_action, lambda t: grade(t, 42), printed_values, render_output):
        start = time.perf_counter()
        work(text)
        elapsed = time.perf_counter() - start
        assert elapsed < BOUND_S, f"{elapsed:.2f} s"
