"""Table-driven tests of action parsing and observation rendering."""

import pytest

from or_env.protocol import ActionKind, clip_text, execution_text, parse_action
from or_env.sandbox.base import ExecResult

CODE = "```python\nprint(1)\n```"

PARSE_CASES = [
    ("code at end", f"Let me compute.\n{CODE}\n", ActionKind.CODE, "print(1)"),
    ("code at end, no trailing newline", f"Compute.\n{CODE}", ActionKind.CODE, "print(1)"),
    ("code then echoed stop sequence", f"Compute.\n{CODE}\n```output", ActionKind.CODE, "print(1)"),
    ("code tag py", "```py\nx = 2\nprint(x)\n```\n", ActionKind.CODE, "x = 2\nprint(x)"),
    ("code tag python3", "```python3\nprint(3)\n```", ActionKind.CODE, "print(3)"),
    (
        "last of two blocks runs",
        f"```python\nprint(0)\n```\nthen\n{CODE}\n",
        ActionKind.CODE,
        "print(1)",
    ),
    ("code followed by whitespace", f"{CODE}\n\n   \n", ActionKind.CODE, "print(1)"),
    ("code, then prose and answer", f"{CODE}\nSo \\boxed{{5}}.", ActionKind.ANSWER, "5"),
    ("answer only", "The optimum is \\boxed{42}.", ActionKind.ANSWER, "42"),
    (
        "answer after output block",
        f"{CODE}\n```output\n42\n```\nSo \\boxed{{42}}",
        ActionKind.ANSWER,
        "42",
    ),
    ("non-python block at end is not run", "```bash\nls\n```\n", ActionKind.MALFORMED, None),
    ("text block at end is not run", "```\nplain\n```\n", ActionKind.MALFORMED, None),
    ("unclosed python block", "```python\nprint(1)\n", ActionKind.MALFORMED, None),
    (
        "unclosed block after answer keeps answer",
        "\\boxed{3}\n```python\nprint(1)",
        ActionKind.ANSWER,
        "3",
    ),
    ("prose only", "I think it is about forty.", ActionKind.MALFORMED, None),
    ("empty", "", ActionKind.MALFORMED, None),
    ("whitespace only", "   \n\t", ActionKind.MALFORMED, None),
    ("indented fences", "  ```python\n  print(1)\n  ```\n", ActionKind.CODE, "print(1)"),
    (
        "answer inside code is still an answer when code not at end",
        "```python\nprint('\\\\boxed{1}')\n```\nDone: \\boxed{7}",
        ActionKind.ANSWER,
        "7",
    ),
]


@pytest.mark.parametrize(
    ("text", "kind", "payload"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_action(text: str, kind: ActionKind, payload: str | None) -> None:
    parsed = parse_action(text)
    assert parsed.kind is kind
    if kind is ActionKind.CODE:
        assert parsed.code == payload
    elif kind is ActionKind.ANSWER:
        assert parsed.answer == payload
    else:
        assert parsed.problem in {"unclosed_code_block", "no_code_or_answer", "empty"}


def test_unclosed_block_reason() -> None:
    assert parse_action("```python\nprint(1)").problem == "unclosed_code_block"
    assert parse_action("no code here").problem == "no_code_or_answer"


@pytest.mark.parametrize(
    ("length", "limit", "clipped"), [(10, 100, False), (100, 100, False), (1000, 100, True)]
)
def test_clip_text_keeps_head_and_tail(length: int, limit: int, clipped: bool) -> None:
    text = "H" * (length // 2) + "T" * (length - length // 2)
    out, was_clipped = clip_text(text, limit)
    assert was_clipped is clipped
    assert len(out) <= max(limit, length if not clipped else limit)
    assert out.startswith("H") and out.endswith("T")
    if clipped:
        assert "characters truncated" in out


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (ExecResult("12.0\n", "", 0), "12.0"),
        (ExecResult("", "", 0), "(no output)"),
        (ExecResult("", "Traceback...\nZeroDivisionError", 1), "ZeroDivisionError"),
        (ExecResult("partial\n", "", -9, timed_out=True, wall_s=2.0), "killed after 2.0 s"),
        (ExecResult("", "", None, sandbox_error="worker died"), "SandboxError: worker died"),
        (ExecResult("", "", 3), "(exit code 3)"),
    ],
)
def test_execution_text(result: ExecResult, expected: str) -> None:
    text, _ = execution_text(result, 1000)
    assert expected in text
