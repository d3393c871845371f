"""The verifiers (v1 API, verifiers>=0.4) taskset of or-env: `vf-eval or-env-verifiers`.

verifiers' loader imports a taskset by its id's module name (`or-env-verifiers` ->
`or_env_verifiers`), so this is a top-level package; it exports one `Taskset` and one `Env`.
See `or_env_verifiers.taskset` for how an episode runs.
"""

from or_env_verifiers.taskset import (
    OREnv,
    OREnvConfig,
    ORTask,
    ORTaskData,
    ORTaskset,
    ORTasksetConfig,
)

__all__ = ["OREnv", "OREnvConfig", "ORTask", "ORTaskData", "ORTaskset", "ORTasksetConfig"]
