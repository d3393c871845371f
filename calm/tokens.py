"""Measuring text for the hint share: tokens of the reasoner's tokenizer, else characters."""

from __future__ import annotations

from typing import Any


class TextMeter:
    """Counts the size of texts in one unit, named for the report.

    unit: "tokens" (with a tokenizer) or "characters". label: what the report prints, e.g.
    "tokens (Qwen/Qwen3-4B-Thinking-2507 tokenizer)".
    """

    def __init__(self, tokenizer: Any | None = None, name: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.unit = "characters" if tokenizer is None else "tokens"
        if tokenizer is None:
            self.label = "characters (no tokenizer given)"
        else:
            shown = name or getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
            self.label = f"tokens ({shown} tokenizer)"

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return len(text)
        return len(self.tokenizer.encode(text, add_special_tokens=False))


def make_meter(tokenizer: str | Any | None) -> TextMeter:
    """A meter for a tokenizer name/path or object (transformers is imported only then)."""
    if tokenizer is None:
        return TextMeter()
    from agents.templating import load_tokenizer

    name = tokenizer if isinstance(tokenizer, str) else None
    return TextMeter(load_tokenizer(tokenizer), name)
