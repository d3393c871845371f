"""Adapters that make `ORModelingEnv` usable from other RL stacks, each a thin shell over the env.

- `or_env.integrations.serve`: `ServeConfig` and the `or-env serve` command (no optional deps).
- `or_env.integrations.openenv_server`: an OpenEnv server (`pip install 'or-env[serve]'`).
- `or_env.integrations.openenv_client`: `ORClient`, the matching OpenEnv client.
- `or_env.integrations.openenv_models`: the wire models (`ORAction`, `ORObservation`, `ORState`).
- `or_env.integrations.skyrl`: a SkyRL-gym `BaseTextEnv` and its dataset rows
  (`pip install 'or-env[skyrl]'`).
- The verifiers taskset is the top-level package `or_env_verifiers` (verifiers' loader imports
  tasksets by top-level module name).

The adapters call the env and nothing else: no grading, answer parsing or prompt text of their
own. Importing this package imports no optional dependency; each module raises
`or_env.errors.MissingExtraError` (naming the pip command) when its extra is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from or_env.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or raise MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is not installed; it comes with the {extra!r} extra: "
            f"pip install 'or-env[{extra}]'"
        ) from exc
