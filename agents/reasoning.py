"""Reasoning-model output: `<think>` blocks in the text and servers' separate reasoning fields.

How reasoning enters the transcript (the env never rewrites an action, so this decides what
the env sees and what a trainer would train on):

- `<think>...</think>` inside the generated text is part of the action, untouched. Code
  written while thinking is code like any other: a turn that ends in a complete python block
  runs it. `split_think` only reads the reasoning out for the episode record.
- A server that splits the reasoning off (vLLM or SGLang started with `--reasoning-parser`
  return `reasoning_content`, newer vLLM `reasoning`) has removed it from `content`. With
  `reasoning="merge"` (the default) the policy joins it back as
  `<think>\\n{reasoning}\\n</think>\\n\\n{content}`, the layout of Qwen3 and DeepSeek-R1 chat
  templates, so the env sees what the model wrote and an inline continuation shows the model
  its own thinking. When there is no content (the generation stopped inside its reasoning,
  e.g. at the code stop sequence), the think block is left open: `<think>\\n{reasoning}`.
  With `reasoning="separate"` the action is the content alone and the reasoning is only
  recorded. The join cannot restore the exact whitespace the model produced; for agentic
  inline episodes, run the server without a reasoning parser.
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
REASONING_MODES = ("merge", "separate")


def split_think(text: str) -> tuple[str | None, str]:
    """(reasoning, rest) of a text: the `<think>` part, or None when there is none.

    A text holding `</think>` (with or without the opening tag, which templates often put
    in the prompt) has its reasoning before it; a text that opens `<think>` without closing
    it is all reasoning (the generation stopped inside it).
    """
    close = text.find(THINK_CLOSE)
    if close != -1:
        head = text[:close]
        open_at = head.find(THINK_OPEN)
        reasoning = head[open_at + len(THINK_OPEN) :] if open_at != -1 else head
        return reasoning.strip(), text[close + len(THINK_CLOSE) :].lstrip()
    open_at = text.find(THINK_OPEN)
    if open_at != -1:
        return text[open_at + len(THINK_OPEN) :].strip(), text[:open_at]
    return None, text


def merge_reasoning(reasoning: str | None, content: str | None) -> str:
    """The action text for a server-separated reasoning and content (see the module doc)."""
    content = content or ""
    if not reasoning:
        return content
    if not content:
        return f"{THINK_OPEN}\n{reasoning}"
    return f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{content}"


def action_from_response(
    content: str | None, reasoning: str | None, mode: str = "merge"
) -> tuple[str, str | None]:
    """(action text, reasoning for the record) from a server's content and reasoning fields."""
    if mode not in REASONING_MODES:
        raise ValueError(f"reasoning mode must be one of {REASONING_MODES}, got {mode!r}")
    if reasoning:
        text = merge_reasoning(reasoning, content) if mode == "merge" else content or ""
        return text, reasoning
    text = content or ""
    return text, split_think(text)[0]
