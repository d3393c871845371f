"""Gymnasium spaces for free text and for the tools rendering's chat messages."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Space, Text


class FreeText(Text):
    """Any Python string up to `max_length` characters.

    Gymnasium's `Text` only contains strings over a fixed charset; model output and
    program output can hold any character (lone surrogates included), so membership here
    only checks type and length. `ORModelingEnv` reads exactly the actions this contains;
    a longer string is not read and gets a format observation. `sample()` draws printable
    ASCII, which is enough for API checks.
    """

    def __init__(self, max_length: int, *, seed: int | np.random.Generator | None = None):
        super().__init__(max_length=max_length, min_length=0, charset=string.printable, seed=seed)

    def contains(self, x: Any) -> bool:
        """A str of at most `max_length` characters."""
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"FreeText(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, FreeText) and other.max_length == self.max_length


class ChatMessages(Space[list]):
    """A list of chat messages, each a dict with str `role` and str `content` (the tools
    rendering's observations: tool results, or a user message with format feedback).

    Each content holds at most `max_length` characters. `sample()` gives one user message.
    """

    def __init__(self, max_length: int, *, seed: int | np.random.Generator | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)
        self.max_length = max_length

    def contains(self, x: Any) -> bool:
        """A list of dicts whose `role` and `content` are str, each content within max_length."""
        return isinstance(x, list) and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            and len(m["content"]) <= self.max_length
            for m in x
        )

    def sample(self, mask: Any = None, probability: Any = None) -> list:
        length = int(self.np_random.integers(0, 20))
        letters = self.np_random.choice(list(string.ascii_letters), size=length)
        return [{"role": "user", "content": "".join(letters)}]

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"ChatMessages(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ChatMessages) and other.max_length == self.max_length


class AssistantTurn(Space[Any]):
    """An action of the tools rendering: the policy's text (str), or an assistant message
    (a dict with `content` and `tool_calls`, OpenAI's shape).

    Membership checks the type and the text's length only; what the message says is read by
    `or_env.tool_calls`, which answers a malformed one with a format observation. `sample()`
    draws printable text (a message without calls).
    """

    def __init__(self, max_length: int, *, seed: int | np.random.Generator | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)
        self.max_length = max_length

    def contains(self, x: Any) -> bool:
        """A str of at most max_length characters, or a dict whose content is a str or None."""
        if isinstance(x, str):
            return len(x) <= self.max_length
        if isinstance(x, dict):
            content = x.get("content")
            return content is None or (isinstance(content, str) and len(content) <= self.max_length)
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        length = int(self.np_random.integers(0, 20))
        return "".join(self.np_random.choice(list(string.printable), size=length))

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"AssistantTurn(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, AssistantTurn) and other.max_length == self.max_length
