"""Gymnasium ids: `or_env/ORModeling-v0` plus one id per benchmark."""

from __future__ import annotations

import gymnasium as gym

from or_env.problems import list_benchmarks

ENTRY_POINT = "or_env.env:ORModelingEnv"
GENERIC_ID = "or_env/ORModeling-v0"


def register_envs() -> list[str]:
    """Register every id (idempotent) and return them.

    `or_env/ORModeling-v0` takes any problem list or benchmark through kwargs; each
    benchmark id fixes `benchmark=` to its name (and still accepts `version=` and
    `data_path=`).
    """
    ids = [GENERIC_ID]
    if GENERIC_ID not in gym.registry:
        gym.register(id=GENERIC_ID, entry_point=ENTRY_POINT, disable_env_checker=True)
    for benchmark in list_benchmarks():
        if not benchmark.gym_id:
            continue
        ids.append(benchmark.gym_id)
        if benchmark.gym_id not in gym.registry:
            gym.register(
                id=benchmark.gym_id,
                entry_point=ENTRY_POINT,
                kwargs={"benchmark": benchmark.name},
                disable_env_checker=True,
            )
    return ids
