"""Turning a chat into one prompt string, for completion-style backends.

The OpenAI-compatible policy's completions mode and the in-process engines (vLLM,
transformers) generate from a flat prompt. With a tokenizer, its chat template is applied
(`add_generation_prompt` for a new assistant turn, `continue_final_message` to continue the
inline assistant turn, exactly as vLLM's chat endpoint would do server-side). Without one,
`plain_prompt` joins the messages' contents with blank lines: the shape of base-model and
ORLM-style prompts ("... # Response:"), which the model simply continues.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from agents.policy import continues_assistant
from or_env.errors import MissingExtraError


class MissingPackageError(MissingExtraError):
    """An optional package a backend needs is not installed; the message says what to install."""


def require(module: str, purpose: str, install: str) -> Any:
    """Import an optional module, or raise MissingPackageError naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingPackageError(
            f"{purpose} needs the `{module}` package, which is not installed: "
            f"run `pip install {install}`"
        ) from exc


def load_tokenizer(tokenizer: str | Any) -> Any:
    """A tokenizer object: returned as is, or loaded by name or path with transformers."""
    if not isinstance(tokenizer, str):
        return tokenizer
    transformers = require("transformers", "applying a chat template locally", "transformers")
    return transformers.AutoTokenizer.from_pretrained(tokenizer)


def plain_prompt(chat: Sequence[Mapping[str, str]]) -> str:
    """The messages' contents joined by blank lines (no template)."""
    return "\n\n".join(message["content"] for message in chat)


def render_prompt(
    chat: Sequence[Mapping[str, str]],
    tokenizer: Any | None = None,
    chat_template_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The prompt string for a chat: the tokenizer's chat template, or `plain_prompt`."""
    if tokenizer is None:
        return plain_prompt(chat)
    continuing = continues_assistant(chat)
    return tokenizer.apply_chat_template(
        [dict(message) for message in chat],
        tokenize=False,
        add_generation_prompt=not continuing,
        continue_final_message=continuing,
        **dict(chat_template_kwargs or {}),
    )


def cut_at_stop(text: str, stop_sequences: Sequence[str]) -> tuple[str, str | None]:
    """The text before the first stop sequence, and that sequence (None if none occurs).

    Engines that check stop strings after decoding (transformers) leave the stop string in
    the output; servers do not. Cutting here makes every backend return the same action.
    """
    first, which = len(text), None
    for stop in stop_sequences:
        at = text.find(stop)
        if stop and at != -1 and at < first:
            first, which = at, stop
    return text[:first], which
