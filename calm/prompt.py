"""The judge's prompt: the taxonomy as instructions, the trajectory with numbered turns.

Turns are numbered as the env numbers them: policy turn k is the k-th `step` of the episode
(its messages carry `turn == k`); an execution output or format message of that step is
shown under the same number; a hint inserted earlier is shown where it sits, so the judge
sees what the reasoner saw. The problem statement and system prompt (turn 0) are shown
apart from the turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from calm.taxonomy import CATEGORY_TITLES, Taxonomy
from or_env.protocol import clip_text
from or_env.tool_calls import describe_tool_calls
from or_env.transcript import Message

DEFAULT_MAX_MESSAGE_CHARS = 20_000


@dataclass(frozen=True)
class JudgeContext:
    """What the intervener judges: one trajectory, as it stands.

    question: the problem statement. ground_truth: the graded answer (shown to the judge
    only when the intervener is set to; always used for the leak check). messages: the
    transcript (`env.transcript.messages` or their dicts). n_turns: policy turns so far.
    outcome: for a finished episode, `termination_reason`, `correct` and `answer`; None
    while the episode runs (the "execution" trigger). problem_id / benchmark: for records.
    """

    question: str
    ground_truth: float | str | None
    messages: Sequence[Message | Mapping[str, Any]]
    n_turns: int
    outcome: Mapping[str, Any] | None = None
    problem_id: str = ""
    benchmark: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def system_prompt(taxonomy: Taxonomy, max_hint_chars: int) -> str:
    """The judge's instructions, built from the taxonomy."""
    lines = [
        "You are an expert in operations research who reviews a solver's work on an "
        "optimization word problem. The solver reasons, writes Python code that runs in a "
        "sandbox (every code block runs as a fresh, complete program), reads the printed "
        "output, and states its final answer in \\boxed{}.",
        "",
        "Find the FIRST turn that contains a flaw of one of the types below, or decide that "
        "the trajectory has none. Judge the reasoning and the model, not the style.",
        "",
        "Flaw types:",
    ]
    for category, flaws in taxonomy.by_category().items():
        lines.append(f"{CATEGORY_TITLES[category]}:")
        for flaw in flaws:
            lines.append(f"- {flaw.name}: {flaw.definition}")
            lines.append(f"  Example: {flaw.example}")
            lines.append(f"  Sample hint: {flaw.sample_hint}")
        lines.append("")
    names = " | ".join(taxonomy.names)
    lines += [
        "Reply with exactly one JSON object and nothing else:",
        '- no flaw: {"flawless": true}',
        '- a flaw: {"flawless": false, "turn": <number of the first flawed turn>, '
        f'"flaw_type": "<{names}>", "hint": "<the hint>", '
        '"rationale": "<one sentence for the reviewers>"}',
        "",
        "The hint is inserted into the solver's reasoning where the flawed turn began, and the "
        "solver continues from there with the turns after it removed. Write it in the solver's "
        "own voice (first person, e.g. 'Wait, ...'), in one or two short sentences of at most "
        f"{max_hint_chars} characters, pointing at the flaw so that the solver can fix it "
        "itself. Never state the correct objective value, the optimal solution or any number "
        "the solver has not computed itself.",
    ]
    return "\n".join(lines)


def render_trajectory(
    messages: Sequence[Message | Mapping[str, Any]],
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
) -> str:
    """The turns after the prompt, each under a heading with its env turn number."""
    blocks = []
    for message in map(Message.coerce, messages):
        if message.turn == 0 and message.source == "env":
            continue  # the system prompt and the problem statement, shown apart
        if message.source == "policy":
            heading = f"### Turn {message.turn} (solver)"
        elif message.source == "intervener":
            where = "at the start" if message.turn == 0 else f"after turn {message.turn}"
            heading = f"### Hint inserted {where} (an earlier intervention)"
        else:
            heading = f"### Turn {message.turn} (environment: execution output or feedback)"
        content = message.content.strip("\n")
        if message.tool_calls:
            content = "\n\n".join(filter(None, [content, describe_tool_calls(message.tool_calls)]))
        text, _ = clip_text(content, max_message_chars)
        blocks.append(f"{heading}\n{text}")
    return "\n\n".join(blocks) if blocks else "(the solver has not written anything yet)"


def _outcome_line(context: JudgeContext) -> str:
    outcome = context.outcome
    if outcome is None:
        return "The episode is still running: judge the turns so far."
    reason = outcome.get("termination_reason")
    if reason == "answered":
        verdict = "correct" if outcome.get("correct") else "wrong"
        return f"The solver's final answer ({outcome.get('answer')}) was graded {verdict}."
    return f"The episode ended without an accepted final answer ({reason})."


def user_prompt(
    context: JudgeContext,
    *,
    show_answer: bool = True,
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
) -> str:
    """The problem, (optionally) its answer, the numbered trajectory and its outcome."""
    parts = ["## Problem", context.question.strip(), ""]
    if show_answer and context.ground_truth is not None:
        parts += [
            "## Correct answer (for your judgement only: never reveal it in the hint)",
            str(context.ground_truth),
            "",
        ]
    parts += [
        "## Solver's trajectory",
        render_trajectory(context.messages, max_message_chars),
        "",
        "## Outcome",
        _outcome_line(context),
        "",
        f"Name the first flawed turn (1 to {context.n_turns}) with its flaw type and a hint, "
        "or answer flawless. Reply with the JSON object only.",
    ]
    return "\n".join(parts)


def retry_prompt(error: str) -> str:
    """What the judge is told after a reply that failed validation."""
    return (
        f"Your reply was rejected: {error}\n"
        "Reply again with exactly one corrected JSON object and nothing else."
    )
