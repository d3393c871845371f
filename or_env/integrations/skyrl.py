"""SkyRL-gym: `ORSkyRLEnv`, a `BaseTextEnv` over `ORModelingEnv`, and its dataset rows.

SkyRL (`skyrl-gym`, trained with `skyrl`) makes one env per trajectory with
`skyrl_gym.make("or_env", env_config=..., extras=row)`, calls `init(prompt)`, then
`step(model_output)` until `done`. Register the env in the process that makes envs (SkyRL's
docs: inside the `@ray.remote` entrypoint, before `BasePPOExp(cfg).run()`):

    from or_env.integrations.skyrl import register, skyrl_rows
    register()                                        # id "or_env"
    rows = skyrl_rows("sample")                       # the dataset: write them to parquet

Generation settings that match the env's native protocol (inline rendering, the default):

    generator.use_conversation_multi_turn=false       # observations continue the same
                                                      # assistant turn, as tokens
    generator.sampling_params.stop='["```output"]'   # `env.stop_sequences`: stop where
                                                      # the code must run
    generator.sampling_params.additional_kwargs.include_stop_str_in_output=true

Each observation is returned as `{"role": "user", "content": ...}`: with
`use_conversation_multi_turn=false` SkyRL appends its content to the assistant response (the
```output block the env renders, masked out of the loss); with the chat rendering
(`env_config.rendering: chat`, `use_conversation_multi_turn=true`) it is a user message. The
reward is the env's: 0.0 on every turn but the last, 1.0 there for a correct answer.

`env_config` (SkyRL's `environment.skyrl_gym.or_env`) takes the `ORModelingEnv` settings:
benchmark, version, data_path, sandbox (refused without isolation unless
`allow_unisolated: true`), rendering, max_turns, max_executions, timeout, tolerance, protocol,
...; a row's `extra_info` picks the problem (`problem_id`, and its
`benchmark`/`version`). SkyRL-gym has no env checker of its own; the tests play an episode
through `skyrl_gym.make`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from or_env.env import ORModelingEnv
from or_env.integrations import require
from or_env.problems import load_problems
from or_env.sandbox import require_isolation, shared_sandbox

_base = require("skyrl_gym.envs.base_text_env", "skyrl")

logger = logging.getLogger(__name__)

ENV_ID = "or_env"
ENTRY_POINT = "or_env.integrations.skyrl:ORSkyRLEnv"
# env_config keys that are not ORModelingEnv arguments.
_OWN_KEYS = frozenset(
    {"benchmark", "version", "data_path", "sandbox", "sandbox_workers", "allow_unisolated"}
)


def register() -> None:
    """Register `ORSkyRLEnv` as SkyRL-gym's "or_env" (a second call does nothing)."""
    skyrl_gym = require("skyrl_gym", "skyrl")
    if ENV_ID not in skyrl_gym.registry:
        skyrl_gym.register(id=ENV_ID, entry_point=ENTRY_POINT)


class ORSkyRLEnv(_base.BaseTextEnv):  # type: ignore[misc, name-defined]
    """One SkyRL trajectory: an `ORModelingEnv` episode on the row's problem."""

    def __init__(
        self, env_config: Mapping[str, Any] | None = None, extras: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        config = dict(env_config or {})
        extras = dict(extras or {})
        info = dict(extras.get("extra_info") or {})
        benchmark = info.get("benchmark") or config.get("benchmark") or "sample"
        version = info.get("version") if info.get("benchmark") else config.get("version")
        sandbox = config.get("sandbox", "auto")
        if isinstance(sandbox, str):
            workers = config.get("sandbox_workers")
            sandbox = shared_sandbox(sandbox, **({"workers": int(workers)} if workers else {}))
        # Training on an unisolated sandbox lets programs read ground truths: refuse it.
        require_isolation(sandbox, allow_unisolated=bool(config.get("allow_unisolated")))
        env_kwargs = {k: v for k, v in config.items() if k not in _OWN_KEYS}
        # SkyRL's own turn cap (generator.max_turns, put in extras) bounds the env's too.
        if extras.get("max_turns") and "max_turns" not in env_kwargs:
            env_kwargs["max_turns"] = int(extras["max_turns"])
        self.max_turns = int(env_kwargs.get("max_turns", 12))
        self.env = ORModelingEnv(
            _problems(benchmark, version, config.get("data_path")),
            sandbox=sandbox,
            **env_kwargs,
        )
        self._options = (
            {"problem_id": str(info["problem_id"])}
            if info.get("problem_id") is not None
            else {"index": int(info["index"])}
            if info.get("index") is not None
            else {}
        )
        self._info: dict[str, Any] = {}

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Start the episode; the row's prompt (made by `skyrl_rows` from the env) is kept."""
        observation, info = self.env.reset(options=self._options)
        self._info = dict(info)
        if not prompt:  # a row without a prompt: the env's own
            prompt = _prompt_messages(self.env, observation)
        return prompt, {"problem_id": info["problem_id"]}

    def step(self, action: str) -> Any:
        """One model turn: its code runs, or its answer is graded."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.turns = self.env.turn
        self._info = dict(info)
        done = terminated or truncated
        observations = [] if done or not observation else [_as_message(observation)]
        metadata = {k: v for k, v in info.items() if k != "transcript"}
        return _base.BaseTextEnvStepOutput(
            observations=observations,
            reward=float(reward),
            done=done,
            metadata=metadata,
            postprocessed_action=None,
        )

    def get_metrics(self) -> dict[str, Any]:
        """Per-episode figures SkyRL averages: correct, turns, executions, answer printed."""
        return {
            "correct": float(bool(self._info.get("correct"))),
            "turns": float(self.env.turn),
            "executions": float(self.env.executions),
            "answer_printed": float(bool(self._info.get("answer_printed"))),
        }

    def close(self) -> None:
        self.env.close()


def _as_message(observation: Any) -> dict[str, str]:
    if isinstance(observation, list):  # tools rendering: not a text env's observation
        raise TypeError("SkyRL's text envs take text: use the inline or chat rendering")
    return {"role": "user", "content": observation}


def _prompt_messages(env: ORModelingEnv, prompt: Any) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": env.system_prompt}] if env.system_prompt else []
    return [*messages, {"role": "user", "content": str(prompt)}]


_cache: dict[tuple[str, str | None, str | None], list[Any]] = {}


def _problems(benchmark: str, version: str | None, data_path: str | None) -> list[Any]:
    """Loaded once per process: SkyRL makes one env per trajectory."""
    key = (benchmark, version, data_path)
    if key not in _cache:
        _cache[key] = load_problems(benchmark, version=version, path=data_path)
    return _cache[key]


def skyrl_rows(
    benchmark: str = "sample",
    *,
    version: str | None = None,
    data_path: str | None = None,
    limit: int | None = None,
    **env_kwargs: Any,
) -> list[dict[str, Any]]:
    """The dataset rows SkyRL expects, one per problem, with the env's own prompt.

    Each row: `prompt` (the system and user messages the env's reset gives), `env_class`
    "or_env", `reward_spec` (`{"method": "env"}`: the env grades; no ground truth in the
    row), `extra_info` (`benchmark`, `version`, `problem_id`) and `data_source`. `env_kwargs`
    (e.g. `protocol`, `system_prompt`) shape the prompt as the env config will.
    """
    problems = load_problems(benchmark, version=version, path=data_path)
    if limit is not None:
        problems = problems[:limit]
    env = ORModelingEnv(problems, sandbox="local", **env_kwargs)  # no program runs here
    rows = []
    for problem in problems:
        prompt, _ = env.reset(options={"problem": problem})
        rows.append(
            {
                "data_source": f"or_env/{benchmark}",
                "prompt": _prompt_messages(env, prompt),
                "env_class": ENV_ID,
                "reward_spec": {"method": "env"},
                "extra_info": {
                    "benchmark": benchmark,
                    "version": version,
                    "problem_id": problem.id,
                },
            }
        )
    env.close()
    return rows
