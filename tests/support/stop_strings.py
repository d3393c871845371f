"""Stop strings the random model is known to generate, for tests of stop handling."""

from __future__ import annotations


def stop_inside(text: str) -> str | None:
    """A short string that occurs in `text` after its first character, or None.

    ASCII letters and digits only: byte-level pieces of the random model's output can
    decode to replacement characters, which make poor stop strings.
    """
    for size in (3, 2):
        for at in range(1, len(text) - size + 1):
            piece = text[at : at + size]
            if piece.isascii() and piece.isalnum():
                return piece
    return None
