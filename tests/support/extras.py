"""Skip a test when an optional package is missing, or fail under CI's OR_ENV_REQUIRE_* flag.

    openenv = require_package("openenv", extra="serve", flag="OR_ENV_REQUIRE_SERVE")

CI installs the extras and sets the flags, so a broken install cannot pass as skipped tests.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require_package(module: str, *, extra: str, flag: str) -> ModuleType:
    """Import `module`; else skip (or fail when the environment sets `flag=1`)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc}); pip install -e '.[{extra}]'"
        if os.environ.get(flag) == "1":
            pytest.fail(f"{flag}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
