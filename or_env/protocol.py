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

Any string is an action. Two more cases are format observations rather than errors: a turn
longer than MAX_ACTION_CHARS ("too_long": not read at all, so a degenerate generation costs
nothing), and a program to run that holds a lone surrogate ("unencodable_code": a string that
is not valid Unicode and cannot be encoded to hand to the sandbox, so it is not run). A lone
surrogate elsewhere (prose, an answer) does no harm and the turn is read as usual. Reading a
turn takes time linear in its length.

`NativeProtocol` is this protocol as an `EpisodeProtocol`: the object that tells
`ORModelingEnv` what to do with an action (a `Plan`) and whether a step ends the episode with a
graded answer (an `Ending`); `or_env.direct.DirectProtocol` is the other one.

The execution output comes back as an ```output block. In the `inline` rendering that
block is appended inside the same assistant turn (the paper's native mode; the policy
continues the turn); in the `chat` rendering it is a new user message (the `tools` rendering,
where actions are function calls, is `or_env.tool_calls`). Program output is
rendered by `render_output` so that it can never close its block or open another (see there
for the exact rule); the original is kept in the env's `info["execution"]`.
"""

from __future__ import annotations

import re
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from or_env.grading import Grade, Tolerance, find_final_answer, grade
from or_env.prompts import DEFAULT_SYSTEM_PROMPT
from or_env.sandbox.base import ExecResult

OUTPUT_FENCE = "```output"
#: The longest action the environment reads (the action space's `max_length`).
MAX_ACTION_CHARS = 1_000_000
# A policy stops generating when it writes the opening of an output block: the model
# asks for its code to be run by announcing the output it cannot know yet.
STOP_SEQUENCES: tuple[str, ...] = (OUTPUT_FENCE,)
RENDERINGS = ("inline", "chat", "tools")

# Possessive quantifiers (the parts cannot overlap), so a line that is not a fence costs its length.
_FENCE_RE = re.compile(r"^[ \t]*+```[ \t]*+([A-Za-z0-9_+-]*+)[ \t]*+$", re.MULTILINE)
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
        problem: why a MALFORMED action is malformed (a key of FORMAT_MESSAGES:
            "unclosed_code_block", "no_code_or_answer", "empty", "too_long",
            "unencodable_code").
        detail: the specifics of the problem for the format observation (the length and the
            limit of a long turn, where the bad character is), or None.
    """

    kind: ActionKind
    code: str | None = None
    answer: str | None = None
    problem: str | None = None
    detail: str | None = None


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


def unencodable_position(text: str) -> tuple[int, int, str] | None:
    """(line, column, character) of the first lone surrogate in `text` (1-based), or None.

    Such a string is not valid Unicode: it cannot be encoded as UTF-8 to be run or stored.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        column = exc.start - (text.rfind("\n", 0, exc.start) + 1) + 1
        return line, column, text[exc.start]
    return None


def parse_action(text: str, *, max_chars: int = MAX_ACTION_CHARS) -> ParsedAction:
    """Decide what one turn of policy text asks for (see the module docstring)."""
    if len(text) > max_chars:
        return ParsedAction(
            ActionKind.MALFORMED,
            problem="too_long",
            detail=f"Your turn is {len(text):,} characters long, over the limit of "
            f"{max_chars:,}; it was not read.",
        )
    if not text.strip():
        return ParsedAction(ActionKind.MALFORMED, problem="empty")
    body = _strip_stop_sequence(text)
    blocks, open_python = _fenced_blocks(body)
    if blocks and not open_python:
        tag, code, end = blocks[-1]
        if tag in _PYTHON_TAGS and not body[end:].strip():
            bad = unencodable_position(code)
            if bad is not None:
                return ParsedAction(
                    ActionKind.MALFORMED,
                    code=code,
                    problem="unencodable_code",
                    detail=unencodable_message(*bad),
                )
            return ParsedAction(ActionKind.CODE, code=code)
    answer = find_final_answer(body)
    if answer is not None:
        return ParsedAction(ActionKind.ANSWER, answer=answer)
    if open_python:
        return ParsedAction(ActionKind.MALFORMED, problem="unclosed_code_block")
    return ParsedAction(ActionKind.MALFORMED, problem="no_code_or_answer")


def unencodable_message(line: int, column: int, char: str) -> str:
    """What the format observation says about a program holding a lone surrogate."""
    return (
        f"Your program contains a character that is not valid Unicode (a lone surrogate, "
        f"U+{ord(char):04X}, at line {line}, column {column}), so it was not run. Remove it, or "
        f"write it as an escape sequence such as '\\u{ord(char):04x}'."
    )


FORMAT_MESSAGES = {
    "empty": "Your turn was empty.",
    "unclosed_code_block": "Your ```python block was not closed, so it was not run.",
    "no_code_or_answer": "Your turn has neither a complete ```python block at its end nor a final "
    "answer.",
    "too_long": f"Your turn is over the limit of {MAX_ACTION_CHARS:,} characters; it was not read.",
    "unencodable_code": "Your program contains a character that is not valid Unicode, so it was "
    "not run.",
}


# How the feedback names the answer format. It holds no readable box: in the inline rendering
# the feedback joins the assistant turn, and a grader reading the whole response must not take
# the environment's own words for an answer (an empty `\boxed{}` would count as answered).
ANSWER_FORMAT = "the braces of \\boxed"


def format_feedback(
    problem: str, answer_format: str = ANSWER_FORMAT, *, detail: str | None = None
) -> str:
    """The observation for a malformed action: what was wrong and what is expected.

    `detail` (from `ParsedAction.detail`) replaces the generic sentence for the problem.
    """
    reason = detail or FORMAT_MESSAGES.get(problem, "Your turn could not be read.")
    return (
        f"{reason} To run code, end your turn with a complete ```python block; its output "
        f"is returned in an ```output block. To finish, state the final numeric answer "
        f"(the optimal objective value) inside {answer_format}."
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


# Rendering program output. Terminal escape sequences: CSI (colours, cursor moves), OSC (window
# titles, hyperlinks; ended by BEL or ESC \\, or left unterminated up to the end of the line),
# and the other two-character escapes.
_ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]"
)
_NEWLINES_RE = re.compile(r"\r\n?|[\u2028\u2029\x85]")
# Control characters other than \n and \t, lone surrogates, and the bidirectional overrides
# and isolates that reorder how text is displayed.
_UNSAFE_CHAR_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_FENCE_RUN_RE = re.compile(r"`{3,}|~{3,}")
# The pieces chat templates spell their control tokens and tags with: `<|im_end|>`,
# `<|eot_id|>`, `<|endoftext|>` (ChatML, Qwen, Llama 3, DeepSeek's fullwidth bars), the tags
# Qwen-style templates wrap tool calls, tool results and reasoning in, Gemma's turn markers,
# and Mistral's and Llama 2's `</s>`, `[INST]` and tool brackets. A zero-width space after the
# opening "<" or "[" (and before ">") keeps each from being read as the token by a tokenizer
# that matches added tokens in text.
_CONTROL_TOKEN_RE = re.compile(
    r"<(?=[|\uff5c]|/?(?:tool_call|tool_response|think|s|start_of_turn|end_of_turn)>)"
    r"|[|\uff5c](?=>)|\[(?=/?(?:INST|TOOL_CALLS|TOOL_RESULTS|AVAILABLE_TOOLS)\])"
)
FENCE_BREAK = "\u200b"  # ZERO WIDTH SPACE
REPLACEMENT_CHAR = "\ufffd"


def break_fences(text: str) -> str:
    """Put FENCE_BREAK between the characters of every run of 3+ backticks or tildes.

    Idempotent: its output holds no such run.
    """
    return _FENCE_RUN_RE.sub(lambda m: FENCE_BREAK.join(m.group(0)), text)


def render_output(text: str) -> str:
    """Program output made safe to show inside an ```output block; linear time.

    The rule, in order:
    1. Line breaks: "\\r\\n", a lone "\\r", U+0085, U+2028 and U+2029 become "\\n".
    2. Terminal escape sequences (ANSI CSI such as colours, OSC such as titles and links,
       other ESC sequences) are removed.
    3. Every remaining control character other than "\\n" and "\\t" (C0, DEL, C1), every
       lone surrogate, and the bidirectional controls U+202A-U+202E and U+2066-U+2069 become
       U+FFFD (the replacement character).
    4. In every run of three or more backticks or tildes, a ZERO WIDTH SPACE (U+200B) is put
       between each two of its characters ("```" becomes "`\\u200b`\\u200b`"), so no text in
       the block can close it, open another, or be read as a fence by any grader.
    5. A ZERO WIDTH SPACE goes after "<" in "<|" (or the fullwidth "<\uff5c") and in the
       tags "<tool_call>", "<tool_response>", "<think>", "<s>", "<start_of_turn>",
       "<end_of_turn>" (and their closing forms), after "|" in "|>", and after "[" in
       "[INST]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[AVAILABLE_TOOLS]" (and closing forms),
       so program output cannot spell the control tokens of the common chat templates
       (ChatML/Qwen, Llama 2 and 3, Mistral, Gemma, DeepSeek): a trainer that tokenises a
       tool result with its chat template, which reads added tokens in text, sees
       characters, not a fake end of turn or call. Other families' tokens are not known
       here: tokenise observations with `split_special_tokens=True` (the verl and TRL
       inline loops do).
    Everything else (including `\\boxed{}`) is kept as printed: it stays inside the block,
    where every grader ignores it.
    """
    text = _NEWLINES_RE.sub("\n", text)
    text = _ANSI_RE.sub("", text)
    text = _UNSAFE_CHAR_RE.sub(REPLACEMENT_CHAR, text)
    text = _CONTROL_TOKEN_RE.sub(lambda m: m.group(0) + FENCE_BREAK, text)
    return break_fences(text)


def visible_stdout(result: ExecResult, max_chars: int) -> str:
    """The program's standard output as the policy can see it: rendered, then cut to max_chars.

    `result.stdout` already carries the sandbox's own output cap; this is what an answer must be
    found in to count as printed (see `or_env.grading.answer_was_printed`).
    """
    return clip_text(render_output(result.stdout), max_chars)[0]


def execution_text(result: ExecResult, max_chars: int) -> tuple[str, bool]:
    """The text a program's execution shows the policy: stdout, then errors and status.

    Rendered with `render_output` before it is cut to `max_chars` (head and tail kept).
    """
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
    text, clipped = clip_text(render_output("\n".join(parts)), max_chars)
    return text, clipped or result.truncated


def output_block(text: str) -> str:
    """Wrap execution text as the fenced output block appended to the transcript.

    The fences in `text` are broken again (`break_fences`; a no-op on `execution_text`'s
    output), so that no caller can build a block that text inside it closes.
    """
    return f"{OUTPUT_FENCE}\n{break_fences(text)}\n```\n"


# ------------------------------------------------------------------ episode protocols
@dataclass(frozen=True)
class Plan:
    """What the env does with one action; made by `EpisodeProtocol.plan`.

    Attributes:
        kind: how the action was read (`info["action_kind"]`).
        program: what to hand the sandbox, or None when nothing runs. The env does not run a
            program past `max_executions`: the episode is truncated ("max_executions").
        format_error: a key of FORMAT_MESSAGES when the action cannot be used; the observation
            is then the format feedback (`detail`: its specifics, as in `ParsedAction`).
        detail: see `format_error`.
        answer: the final answer the action states, for `ending` to grade (native protocol).
        info: what the protocol reports about the action (`code`, `direct_rule`, `tool_call`).
        message: the tools rendering's reading of the whole message
            (`or_env.tool_calls.AssistantMessage`), for the transcript and the tool messages.
    """

    kind: str
    program: str | None = None
    format_error: str | None = None
    detail: str | None = None
    answer: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    message: Any = None


@dataclass(frozen=True)
class Ending:
    """A step that ends the episode with a graded answer; made by `EpisodeProtocol.ending`.

    Attributes:
        reason: the termination reason ("answered", or why the direct protocol read no answer).
        answer: the answer as read (`info["answer"]`), or None.
        grade: the verdict, before the env applies `require_executed_answer`.
        graded_text: the answer text the verdict read, or None; `answer_printed` looks for it
            in what the episode's executions printed.
    """

    reason: str
    answer: str | None
    grade: Grade
    graded_text: str | None


class EpisodeProtocol(ABC):
    """How `ORModelingEnv` reads a policy's action and when a step ends with a graded answer.

    The env plays every step the same way, in `step` and `astep` alike:

    1. `plan(action)` says what the action asks for (a `Plan`): run a program, or nothing.
    2. The env runs `plan.program` in the sandbox (`run`, or `await arun`), within its budget.
    3. `ending(...)` says whether the step ends the episode with a graded answer.
    4. The env finishes the step: transcript, observation (output block or format feedback),
       `require_executed_answer`, budgets (`max_turns`, `max_executions`) and `info`.

    A protocol holds no episode state; its methods are pure.

    Attributes:
        name: `info["protocol"]`.
        system_prompt: the default system prompt of an env playing this protocol.
    """

    name: str
    system_prompt: str

    @abstractmethod
    def plan(self, action: str) -> Plan:
        """Read one action (any str)."""

    @abstractmethod
    def ending(
        self,
        action: str,
        plan: Plan,
        result: ExecResult | None,
        ground_truth: float | str,
        tolerance: str | Tolerance,
    ) -> Ending | None:
        """The graded end of the episode at this step, or None when the episode goes on.

        `result` is the execution of `plan.program`, or None when nothing ran.
        """


class NativeProtocol(EpisodeProtocol):
    """The multi-turn protocol of the module docstring: run code, repair, answer in a box."""

    name = "native"
    system_prompt = DEFAULT_SYSTEM_PROMPT

    def plan(self, action: str) -> Plan:
        """Code to run, an answer to grade, or format feedback (see `parse_action`)."""
        parsed = parse_action(action)
        code_info = {} if parsed.code is None else {"code": parsed.code}
        if parsed.kind is ActionKind.CODE:
            return Plan(parsed.kind.value, program=parsed.code, info=code_info)
        if parsed.kind is ActionKind.ANSWER:
            return Plan(parsed.kind.value, answer=parsed.answer)
        return Plan(
            parsed.kind.value,
            format_error=parsed.problem or "",
            detail=parsed.detail,
            info=code_info,
        )

    def ending(
        self,
        action: str,
        plan: Plan,
        result: ExecResult | None,
        ground_truth: float | str,
        tolerance: str | Tolerance,
    ) -> Ending | None:
        """An answer ends the episode, graded from the final box of the whole action."""
        if plan.kind != ActionKind.ANSWER:
            return None
        verdict = grade(action, ground_truth, preset=tolerance)
        return Ending("answered", plan.answer, verdict, verdict.raw_answer)
