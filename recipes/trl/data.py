"""Problems -> the HF `datasets.Dataset` that `trl.GRPOTrainer` reads, for either mode.

The sources are the verl recipe's (`recipes.verl.data`): a registered benchmark and version
(`or-env benchmarks`; training data, `sirl-rl-sample`, by default, with the same warning
when a training split is made from an evaluation benchmark) or a problem file. One row per
problem:

- `prompt`: the chat messages the env starts the episode with, made by `ORModelingEnv.reset`
  in the mode's rendering (inline: the code-interpreter system prompt, through the verl
  recipe's `prompt_messages`; tools: the tool-calling one), so the prompt the trainer renders
  is the one the env grades the episode of;
- `problem_id`, `benchmark`, `version`: which problem it is (the tools environment's `reset`
  and the inline rollout look the problem up by id or by prompt).

Env settings (max_turns, tolerance, ...) are trainer-wide here, passed to the dataset, the
environment factory and the rollout alike (`train.py` does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from or_env.env import ORModelingEnv
from or_env.problems import Problem, load_problems
from recipes.trl import MODES
from recipes.verl.data import (
    DEFAULT_RL_BENCHMARK,
    ROW_ENV_KEYS,
    contamination_warning,
    prompt_messages,
)

logger = logging.getLogger(__name__)

COLUMNS = ("prompt", "problem_id", "benchmark", "version")


def load_source(
    *,
    benchmark: str | None = None,
    version: str | None = None,
    data_dir: str | None = None,
    problems_path: str | None = None,
    limit: int = 0,
    split: str = "train",
) -> list[Problem]:
    """The problems of a benchmark (default: the verl recipe's training set) or of a file."""
    if benchmark and problems_path:
        raise ValueError("give one of benchmark or problems_path, not both")
    if problems_path:
        problems = load_problems(path=problems_path)
    else:
        name = benchmark or DEFAULT_RL_BENCHMARK
        warning = contamination_warning(name, split)
        if warning:
            logger.warning(warning)
        problems = load_problems(name, version=version, path=data_dir)
    if limit:
        problems = problems[:limit]
    if not problems:
        raise ValueError("no problems: check the benchmark name, version and data folder")
    return problems


def env_prompt(
    problem: Problem, mode: str, env_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, str]]:
    """The messages the env starts an episode on `problem` with, in `mode`'s rendering."""
    kwargs = _row_settings(env_kwargs)
    if mode == "inline":
        return prompt_messages(problem, kwargs)
    if mode != "tools":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    # No sandbox starts: it is created on the first execution.
    env = ORModelingEnv(problems=[problem], sandbox="local", rendering="tools", **kwargs)
    env.reset(options={"index": 0})
    return env.transcript.as_chat()


def dataset_rows(
    problems: Sequence[Problem], mode: str, env_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows of `build_dataset` (see the module doc)."""
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("problem ids must be unique: the environments look problems up by id")
    return [
        {
            "prompt": env_prompt(p, mode, env_kwargs),
            "problem_id": p.id,
            "benchmark": p.benchmark,
            "version": str(p.meta.get("version") or ""),
        }
        for p in problems
    ]


def build_dataset(
    problems: Sequence[Problem], mode: str, env_kwargs: Mapping[str, Any] | None = None
) -> Any:
    """A `datasets.Dataset` with the COLUMNS, one row per problem, for `mode`."""
    from datasets import Dataset

    return Dataset.from_list(dataset_rows(problems, mode, env_kwargs))


def _row_settings(env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings that shape the prompt; the rest (sandbox, budgets) do not change it."""
    return {k: v for k, v in (env_kwargs or {}).items() if k in ROW_ENV_KEYS}
