"""The package's exceptions share one base, so callers can catch every or-env error at once.

Each class also derives from the built-in exception it refines (ValueError for bad data,
RuntimeError for a failed service, ImportError for a missing package), so code that
catches those keeps working.

    try:
        ...
    except or_env.errors.OREnvError as exc:
        ...
"""

from __future__ import annotations


class OREnvError(Exception):
    """Base of every exception raised by or_env, agents, calm and recipes."""


class DataError(OREnvError, ValueError):
    """A problem, benchmark row, ground truth or data file is unusable (the text says why)."""


class SandboxError(OREnvError, RuntimeError):
    """A sandbox could not be created or used (not a program's own failure)."""


class MissingExtraError(OREnvError, ImportError):
    """An optional dependency is not installed; the text names the extra to install."""
