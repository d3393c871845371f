"""The text protocol between a policy and the environment.

A policy's action is the raw text it generated in one turn. The environment reads it
in this order (see `parse_action`):

1. It ends in a complete fenced ```python block (only whitespace, or the stop
   sequence itself, after the closing fence): the model stopped to run code, so the
   LAST block is executed. Earlier blocks are prose, not executed; every execution is
   a full program, which keeps rewinding exact.
2. Otherwise it holds a final answer (`\\boxed{...}` by default): graded, the episode ends.
3. Otherwise it is malformed: an unclosed code block (the generation was cut off) or
   neither code nor answer. The environment answers with a format observation that
   says what it expects.

The execution output comes back as an ```output block. In the `inline` rendering that
block is appended inside the same assistant turn (the paper's native mode; the policy
continues the turn); in the `chat` rendering it is a new user message.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from enum import StrEnum

from or_env.grading import find_final_answer
from or_env.sandbox.base import ExecResult

OUTPUT_FENCE = "```output"
# A policy stops generating when it writes the opening of an output block: the model
# asks for its code to be run by announcing the output it cannot know yet.
STOP_SEQUENCES: tuple[str, ...] = (OUTPUT_FENCE,)
RENDERINGS = ("inline", "chat")

_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*$", re.MULTILINE)
_PYTHON_TAGS = {"python", "py", "python3"}


class ActionKind(StrEnum):
    """What an action asked for."""

    CODE = "code"
    ANSWER = "answer"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class ParsedAction:
    """The reading of one action.

    Attributes:
        kind: code to run, a final answer, or malformed.
        code: the python block to run (kind CODE).
        answer: the raw content of the final `\\boxed{}` (kind ANSWER).
        problem: why a MALFORMED action is malformed ("unclosed_code_block",
            "no_code_or_answer", "empty").
    """

    kind: ActionKind
    code: str | None = None
    answer: str | None = None
    problem: str | None = None


def _strip_stop_sequence(text: str) -> str:
    """Drop a trailing stop sequence that a server echoed back (include_stop_str_in_output)."""
    stripped = text.rstrip()
    for stop in STOP_SEQUENCES:
        if stripped.endswith(stop):
            return stripped[: -len(stop)]
    return text


def _fenced_blocks(text: str) -> tuple[list[tuple[str, str, int]], bool]:
    """The closed fenced blocks as (tag, body, end offset), and whether a python block is open."""
    blocks: list[tuple[str, str, int]] = []
    opening: re.Match[str] | None = None
    for fence in _FENCE_RE.finditer(text):
        if opening is None:
            opening = fence
            continue
        if fence.group(1):
            # A tagged fence cannot close a block; treat the earlier opening as unclosed prose.
            opening = fence
            continue
        body = text[opening.end() + 1 : fence.start()]
        blocks.append((opening.group(1).lower(), textwrap.dedent(body).rstrip("\n"), fence.end()))
        opening = None
    return blocks, opening is not None and opening.group(1).lower() in _PYTHON_TAGS


def parse_action(text: str) -> ParsedAction:
    """Decide what one turn of policy text asks for (see the module docstring)."""
    if not text.strip():
        return ParsedAction(ActionKind.MALFORMED, problem="empty")
    body = _strip_stop_sequence(text)
    blocks, open_python = _fenced_blocks(body)
    if blocks and not open_python:
        tag, code, end = blocks[-1]
        if tag in _PYTHON_TAGS and not body[end:].strip():
            return ParsedAction(ActionKind.CODE, code=code)
    answer = find_final_answer(body)
    if answer is not None:
        return ParsedAction(ActionKind.ANSWER, answer=answer)
    if open_python:
        return ParsedAction(ActionKind.MALFORMED, problem="unclosed_code_block")
    return ParsedAction(ActionKind.MALFORMED, problem="no_code_or_answer")


FORMAT_MESSAGES = {
    "empty": "Your turn was empty.",
    "unclosed_code_block": "Your ```python block was not closed, so it was not run.",
    "no_code_or_answer": "Your turn has neither a complete ```python block at its end nor a final "
    "answer.",
}


def format_feedback(problem: str, answer_format: str = "\\boxed{}") -> str:
    """The observation for a malformed action: what was wrong and what is expected."""
    reason = FORMAT_MESSAGES.get(problem, "Your turn could not be read.")
    return (
        f"{reason} To run code, end your turn with a complete ```python block; its output "
        f"is returned in an ```output block. To finish, state the final numeric answer "
        f"(the optimal objective value) in {answer_format}."
    )


def clip_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Keep the head and the tail of `text` within `max_chars`; say whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    marker = "\n... [{} characters truncated] ...\n"
    keep = max(max_chars - len(marker.format(len(text))), 0)
    head = keep // 2
    tail = keep - head
    cut = len(text) - head - tail
    return text[:head] + marker.format(cut) + (text[-tail:] if tail else ""), True


def execution_text(result: ExecResult, max_chars: int) -> tuple[str, bool]:
    """The text a program's execution shows the policy: stdout, then errors and status."""
    parts: list[str] = []
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts.append(result.stderr.rstrip("\n"))
    if result.sandbox_error:
        parts.append(f"SandboxError: {result.sandbox_error}")
    elif result.timed_out:
        parts.append(f"TimeoutError: the program was killed after {result.wall_s:.1f} s.")
    elif result.exit_code not in (0, None) and not result.stderr:
        parts.append(f"(exit code {result.exit_code})")
    if not parts:
        parts.append("(no output)")
    text, clipped = clip_text("\n".join(parts), max_chars)
    return text, clipped or result.truncated


def output_block(text: str) -> str:
    """Wrap execution text as the fenced output block appended to the transcript."""
    return f"{OUTPUT_FENCE}\n{text}\n```\n"
