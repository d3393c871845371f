"""Retries with exponential back-off for calls to model servers."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Overloaded or briefly unavailable: worth another try. Other 4xx are the request's fault.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait before retrying a failed request.

    max_retries: retries after the first attempt (so at most max_retries + 1 requests).
    base_s: the first wait; each further wait doubles, up to max_s.
    jitter: a random fraction added to each wait (0.25: up to +25%) so that hundreds of
        concurrent episodes do not retry in lockstep.
    A server's `Retry-After` header (seconds or an HTTP date) is honoured, capped at max_s.
    """

    max_retries: int = 6
    base_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_s < 0 or self.max_s < 0 or self.jitter < 0:
            raise ValueError(f"back-off settings must not be negative: {self}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_s)
        wait = min(self.base_s * 2 ** (retry - 1), self.max_s)
        # Jitter only spreads retries out; it needs no reproducible seed.
        return wait * (1.0 + self.jitter * random.random())


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying (rate limits, overload, server errors)."""
    return status in RETRY_STATUSES or status >= 500


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header in seconds (it may be a number or an HTTP date), or None."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
