"""The `tools` rendering: the policy acts through OpenAI-style function calls.

Instruct models trained for function calling (and trainers that speak it: TRL's
`environment_factory`, OpenAI-style agents, verifiers) act with two tools instead of fenced
blocks (`TOOL_SCHEMAS`, `ORModelingEnv.tools`):

- `run_python(code)`: runs `code` as a complete program in the sandbox, with the same budgets
  as a ```python block; the tool message holds its output, rendered by
  `or_env.protocol.render_output` like an ```output block.
- `submit_answer(answer)`: grades `answer` as the content of a final `\\boxed{}` is graded
  (the same reading, `or_env.grading.grade_answer_content`) and ends the episode.

An action is an assistant message `{"role": "assistant", "content": ..., "tool_calls": [...]}`
(OpenAI shape: each call `{"id", "type": "function", "function": {"name", "arguments"}}`, the
arguments a JSON object as a string; an already-decoded mapping is taken too, as some parsers
give one), or plain text, which is a message without calls.

One call is acted on per turn: the first. Every further call in the message gets a tool
message saying it was not run, so that each call has its answer and the turn budget means the
same as in the text renderings. Anything the policy gets wrong is a format observation, never
an exception: no call ("no_tool_call"), an unknown tool ("unknown_tool"), arguments that are
not a JSON object or lack a required string ("bad_tool_arguments"), a message that is not an
assistant message of that shape ("malformed_message"), more than MAX_TOOL_CALLS calls
("too_many_tool_calls"), a message over the length limit ("too_long": its text, ids, names and
arguments counted), and a program holding a lone surrogate ("unencodable_code").

Call ids are echoed in the tool messages the env writes, so only plain ids (letters, digits,
`_.:-`, at most 64 characters, unique in the message) are kept; any other gets a fresh one.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from or_env.grading import Tolerance, grade_answer_content
from or_env.protocol import (
    MAX_ACTION_CHARS,
    ActionKind,
    Ending,
    EpisodeProtocol,
    Plan,
    unencodable_message,
    unencodable_position,
)
from or_env.sandbox.base import ExecResult

RUN_PYTHON = "run_python"
SUBMIT_ANSWER = "submit_answer"
#: The most tool calls one message may hold; a message with more is not read.
MAX_TOOL_CALLS = 16
_PLAIN_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: OpenAI function schemas of the two tools (what `ORModelingEnv.tools` returns).
TOOL_SCHEMAS: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "function": {
            "name": RUN_PYTHON,
            "description": (
                "Run a complete Python program in a sandbox and return what it printed "
                "(stdout, then stderr). Solvers available: pulp (CBC, HiGHS), highspy, scipy, "
                "numpy. Each call is a fresh process: repeat imports and data every time."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "The complete Python program."}
                },
                "required": ["code"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": SUBMIT_ANSWER,
            "description": (
                "Submit the final answer: the optimal objective value as a single number, or "
                "'infeasible' or 'unbounded'. This ends the episode."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "answer": {
                        "type": "string",
                        "description": "The optimal objective value, e.g. '1234.5'.",
                    }
                },
                "required": ["answer"],
            },
        },
    },
)

_REQUIRED_ARGUMENT = {RUN_PYTHON: "code", SUBMIT_ANSWER: "answer"}

TOOLS_SYSTEM_PROMPT = (
    "You are an expert in operations research. Solve optimization problems by building a "
    "mathematical model and solving it with Python code. Call the run_python tool with a "
    "complete program to run it; its output comes back as the tool's result. Solvers "
    "available: pulp (CBC, HiGHS), highspy, scipy, numpy. Every call runs a fresh, complete "
    "program, so repeat imports and data each time. Make one tool call per message. Check the "
    "output, fix mistakes, and when you are sure, call submit_answer with the optimal "
    "objective value as a single number, e.g. 1234.5. If the problem has no feasible "
    "solution, submit 'infeasible'; if it is unbounded, submit 'unbounded'."
)

TOOL_FORMAT_MESSAGES = {
    "no_tool_call": "Your message has no tool call.",
    "unknown_tool": "Your message calls a tool that does not exist.",
    "bad_tool_arguments": "The arguments of your tool call could not be read.",
    "malformed_message": "Your message is not an assistant message with tool calls.",
    "too_many_tool_calls": f"Your message has more than {MAX_TOOL_CALLS} tool calls; it was "
    "not read.",
    "too_long": f"Your message is over the limit of {MAX_ACTION_CHARS:,} characters; it was "
    "not read.",
    "unencodable_code": "Your program contains a character that is not valid Unicode, so it "
    "was not run.",
}

NOT_RUN_MESSAGE = (
    "Not run: only the first tool call of a message is acted on. Make one call per message."
)
BUDGET_SPENT_MESSAGE = "Not run: the episode's execution budget is spent."


def tool_format_feedback(problem: str, *, detail: str | None = None) -> str:
    """The observation for a message the env cannot use: what was wrong and what is expected."""
    reason = detail or TOOL_FORMAT_MESSAGES.get(problem, "Your message could not be read.")
    return (
        f"{reason} Call {RUN_PYTHON} with a complete program (argument 'code') to run code, or "
        f"{SUBMIT_ANSWER} with the optimal objective value (argument 'answer') to finish. Each "
        "call's arguments are a JSON object."
    )


@dataclass(frozen=True)
class ToolCall:
    """One call of an assistant message, as read.

    Attributes:
        id: the call's id (given, or `call_<turn>_<index>` when the message had none).
        name: the function named, "" when the call had none.
        arguments: the arguments as given (a JSON string, or a mapping for parsers that decode).
        value: the required argument's value when it could be read, else None.
        problem: why the call cannot be used (a key of TOOL_FORMAT_MESSAGES), or None.
        detail: the specifics of `problem` for the observation.
    """

    id: str
    name: str
    arguments: str | Mapping[str, Any]
    value: str | None = None
    problem: str | None = None
    detail: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The call in OpenAI's shape, its arguments a JSON string (for transcripts)."""
        arguments = self.arguments
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, default=repr)
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


@dataclass(frozen=True)
class AssistantMessage:
    """An action of the tools rendering, read: its text and its calls (`calls[0]` is acted on).

    `problem`/`detail` are set when the message as a whole cannot be read (not a mapping of the
    expected shape, too long); its calls are then empty.
    """

    content: str
    calls: tuple[ToolCall, ...] = ()
    problem: str | None = None
    detail: str | None = None


def tool_schemas() -> list[dict[str, Any]]:
    """A fresh copy of TOOL_SCHEMAS (callers such as HTTP clients may mutate it)."""
    return copy.deepcopy(list(TOOL_SCHEMAS))


def read_assistant_message(action: str | Mapping[str, Any], turn: int = 0) -> AssistantMessage:
    """Read an action of the tools rendering (see the module docstring); never raises for the
    policy's mistakes, only TypeError when `action` is neither a str nor a mapping."""
    if isinstance(action, str):
        if len(action) > MAX_ACTION_CHARS:
            return AssistantMessage("", problem="too_long", detail=_too_long(len(action)))
        return AssistantMessage(action)
    if not isinstance(action, Mapping):
        raise TypeError(
            "action must be the policy's text (str) or an assistant message (a mapping with "
            f"'content' and 'tool_calls'), got {type(action).__name__}"
        )
    role = action.get("role", "assistant")
    content = action.get("content")
    raw_calls = action.get("tool_calls")
    if role != "assistant":
        return _malformed(f"Your message has role {role!r:.40}; it must be 'assistant'.")
    if content is not None and not isinstance(content, str):
        return _malformed("Your message's content must be a string or null.")
    content = content or ""
    if raw_calls is None:
        raw_calls = []
    if not isinstance(raw_calls, list | tuple):
        return _malformed("Your message's tool_calls must be a list.")
    if len(raw_calls) > MAX_TOOL_CALLS:
        return AssistantMessage(
            "",
            problem="too_many_tool_calls",
            detail=f"Your message has {len(raw_calls):,} tool calls, over the limit of "
            f"{MAX_TOOL_CALLS}; it was not read.",
        )
    size = len(content)
    for index, call in enumerate(raw_calls):  # at most MAX_TOOL_CALLS of them
        call_size = _serialised_size(call)
        if call_size is None:
            return _malformed(f"Tool call {index + 1} of your message is not JSON data.")
        size += call_size
        if size > MAX_ACTION_CHARS:
            return AssistantMessage("", problem="too_long", detail=_too_long(size))
    calls: list[ToolCall] = []
    for index, call in enumerate(raw_calls):
        read = _read_call(call, turn, index)
        if read.id in {c.id for c in calls}:
            read = replace(read, id=f"call_{turn}_{index}_dup")
        calls.append(read)
    return AssistantMessage(content, tuple(calls))


def _too_long(size: int) -> str:
    return (
        f"Your message is {size:,} characters long, over the limit of {MAX_ACTION_CHARS:,}; "
        "it was not read."
    )


def _malformed(detail: str) -> AssistantMessage:
    return AssistantMessage("", problem="malformed_message", detail=detail)


def _serialised_size(call: object) -> int | None:
    """How many characters a call takes as JSON (ids, names, arguments and all), or None when
    it is not JSON data (too deep, circular, or holding other objects)."""
    try:
        return len(json.dumps(call, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return None


def _read_call(call: object, turn: int, index: int) -> ToolCall:
    fallback_id = f"call_{turn}_{index}"
    if not isinstance(call, Mapping):
        return ToolCall(
            fallback_id, "", "", problem="malformed_message", detail=_shape_detail(index)
        )
    call_id = call.get("id")
    # The id is echoed in the env's tool message: only a plain one is kept.
    call_id = call_id if isinstance(call_id, str) and _PLAIN_ID_RE.fullmatch(call_id) else None
    call_id = call_id or fallback_id
    function = call.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        return ToolCall(call_id, "", "", problem="malformed_message", detail=_shape_detail(index))
    name = function["name"]
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str | Mapping):
        arguments = ""
    if name not in _REQUIRED_ARGUMENT:
        return ToolCall(
            call_id,
            name,
            arguments,
            problem="unknown_tool",
            detail=f"There is no tool named {name!r:.60}; the tools are {RUN_PYTHON} and "
            f"{SUBMIT_ANSWER}.",
        )
    decoded: object = arguments
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:  # JSONDecodeError, or a lone surrogate's UnicodeError
            return _bad_arguments(call_id, name, arguments, f"are not valid JSON ({exc})")
        except RecursionError:
            return _bad_arguments(call_id, name, arguments, "are nested too deeply")
    if not isinstance(decoded, Mapping):
        return _bad_arguments(call_id, name, arguments, "are not a JSON object")
    wanted = _REQUIRED_ARGUMENT[name]
    value = decoded.get(wanted)
    if name == SUBMIT_ANSWER and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            value = repr(value)  # a number where the schema says string: read it as written
        except ValueError:  # an int too long to convert to text
            return _bad_arguments(call_id, name, arguments, "have a number too long to read")
    if not isinstance(value, str):
        missing = "lack" if value is None else "have a non-string"
        return _bad_arguments(call_id, name, arguments, f"{missing} the argument {wanted!r}")
    if name == RUN_PYTHON:
        bad = unencodable_position(value)
        if bad is not None:
            return ToolCall(
                call_id,
                name,
                arguments,
                value,
                problem="unencodable_code",
                detail=unencodable_message(*bad),
            )
    return ToolCall(call_id, name, arguments, value)


def _shape_detail(index: int) -> str:
    return (
        f"Tool call {index + 1} of your message is not of the form "
        '{"id": ..., "type": "function", "function": {"name": ..., "arguments": "{...}"}}.'
    )


def _bad_arguments(
    call_id: str, name: str, arguments: str | Mapping[str, Any], why: str
) -> ToolCall:
    wanted = _REQUIRED_ARGUMENT[name]
    return ToolCall(
        call_id,
        name,
        arguments,
        problem="bad_tool_arguments",
        detail=f"The arguments of your {name} call {why}; they must be a JSON object with a "
        f"string {wanted!r}.",
    )


class ToolCallProtocol(EpisodeProtocol):
    """The native multi-turn loop with tool calls as actions (the `tools` rendering).

    `plan` reads the first call of the message: run_python is code to run, submit_answer an
    answer to grade; anything else is a format error. `Plan.message` holds the whole reading
    for the env's transcript and tool messages.
    """

    name = "native"
    system_prompt = TOOLS_SYSTEM_PROMPT

    def plan(self, action: str | Mapping[str, Any], turn: int = 0) -> Plan:  # type: ignore[override]
        message = read_assistant_message(action, turn)
        if message.problem is not None:
            return Plan(
                ActionKind.MALFORMED.value,
                format_error=message.problem,
                detail=message.detail,
                message=message,
            )
        if not message.calls:
            detail = None
            if message.content.strip():
                detail = "Your message has no tool call (text alone is not run or graded)."
            return Plan(
                ActionKind.MALFORMED.value,
                format_error="no_tool_call",
                detail=detail,
                message=message,
            )
        call = message.calls[0]
        info = {"tool_call": call.name} if call.name else {}
        if call.problem is not None:
            code_info = {"code": call.value} if call.problem == "unencodable_code" else {}
            return Plan(
                ActionKind.MALFORMED.value,
                format_error=call.problem,
                detail=call.detail,
                info={**info, **code_info},
                message=message,
            )
        if call.name == RUN_PYTHON:
            return Plan(
                ActionKind.CODE.value,
                program=call.value,
                info={**info, "code": call.value},
                message=message,
            )
        return Plan(ActionKind.ANSWER.value, answer=call.value, info=info, message=message)

    def ending(
        self,
        action: str | Mapping[str, Any],  # type: ignore[override]
        plan: Plan,
        result: ExecResult | None,
        ground_truth: float | str,
        tolerance: str | Tolerance,
    ) -> Ending | None:
        """A submit_answer call ends the episode; its answer is graded as a box's content."""
        if plan.kind != ActionKind.ANSWER or plan.answer is None:
            return None
        verdict = grade_answer_content(plan.answer, ground_truth, preset=tolerance)
        return Ending("answered", verdict.raw_answer, verdict, verdict.raw_answer)


def describe_tool_calls(tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """Tool calls as text for a reader (a judge, a log): a run_python call as the ```python
    block it stands for, any other call as `name(arguments)`."""
    parts = []
    for call in tool_calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            parts.append(f"(a malformed tool call: {call!s:.200})")
            continue
        name, arguments = function.get("name"), function.get("arguments")
        decoded = arguments
        if isinstance(arguments, str):
            try:
                decoded = json.loads(arguments)
            except (ValueError, RecursionError):
                decoded = None
        if (
            name == RUN_PYTHON
            and isinstance(decoded, Mapping)
            and isinstance(decoded.get("code"), str)
        ):
            parts.append(f"[{RUN_PYTHON}]\n```python\n{decoded['code']}\n```")
        elif name == SUBMIT_ANSWER and isinstance(decoded, Mapping) and "answer" in decoded:
            parts.append(f"[{SUBMIT_ANSWER}] {decoded['answer']}")
        else:
            parts.append(f"[{name}] {arguments}")
    return "\n\n".join(parts)
