"""A Gymnasium space for free text."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Text


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
