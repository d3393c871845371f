"""or-env episodes for verifiers v1 (`vf-eval`, prime-rl): a taskset and the env that plays it.

    vf-eval or-env-verifiers -n 5 -m MODEL --client.base-url URL \
        --env.taskset.benchmark nl4opt --env.agent.harness.id null \
        --env.agent.runtime.type subprocess

`ORTaskset` makes one task per problem of a benchmark, its prompt and system prompt the
env's own (chat rendering). `OREnv` plays each task as an `ORModelingEnv` episode: the
model's reply is the env's action, the env's observation (an ```output block, or format
feedback) goes back as the next user turn, until the env ends the episode; the env's reward
is recorded as `or_env` (1.0 for a correct final answer), with `correct`, `turns` and
`executions` as metrics. Grading, parsing and prompts are the env's; this module only relays.

Sampling: in the native protocol the model should stop where its code must run,
`--sampling.stop '["```output"]'` (`ORModelingEnv.stop_sequences`); without it the env still
runs the last complete ```python block of the turn.

Needs `verifiers>=0.4,<0.5` (the `verifiers` extra); it conflicts with the `serve` extra
(verifiers pins mcp==2.0.0), so install it in an environment of its own.
"""

from __future__ import annotations

import logging
from typing import Any

import verifiers.v1 as vf

from or_env.env import ORModelingEnv
from or_env.problems import Problem, load_problems
from or_env.sandbox import Sandbox, require_isolation, shared_sandbox

logger = logging.getLogger(__name__)

REWARD = "or_env"


class ORTaskData(vf.TaskData):
    """One problem: where it comes from (the env grades it; no answer is carried)."""

    benchmark: str
    version: str | None = None
    problem_id: str


class ORTask(vf.Task[ORTaskData]):
    """An or-env problem; its reward is the env's, recorded by `OREnv.run`."""

    @property
    def key(self) -> str:
        return f"{self.data.benchmark}:{self.data.problem_id}"


class ORTasksetConfig(vf.TasksetConfig):
    """Which problems, and the `ORModelingEnv` settings of their episodes."""

    benchmark: str = "sample"
    version: str | None = None
    data_path: str | None = None
    limit: int | None = None
    #: "auto" (Docker when available), "local" or "docker"; shared by every episode.
    sandbox: str = "auto"
    sandbox_workers: int | None = None
    #: Accept a local sandbox without Linux namespaces (its programs can read ground truths).
    allow_unisolated: bool = False
    protocol: str = "native"
    max_turns: int = 12
    max_executions: int = 10
    timeout: float = 30.0
    tolerance: str = "default"
    require_executed_answer: bool = False

    def env_kwargs(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "max_turns": self.max_turns,
            "max_executions": self.max_executions,
            "timeout": self.timeout,
            "tolerance": self.tolerance,
            "require_executed_answer": self.require_executed_answer,
            # Observations go back as user turns.
            "rendering": "chat",
        }


_problems: dict[tuple[str, str | None, str | None], list[Problem]] = {}


def load(config: ORTasksetConfig) -> list[Problem]:
    """The benchmark's problems, loaded once per process."""
    key = (config.benchmark, config.version, config.data_path)
    if key not in _problems:
        _problems[key] = load_problems(
            config.benchmark, version=config.version, path=config.data_path
        )
    problems = _problems[key]
    return problems if config.limit is None else problems[: config.limit]


class ORTaskset(vf.Taskset[ORTask, ORTasksetConfig]):
    """The problems of one benchmark, as the env prompts them."""

    def load(self) -> list[ORTask]:
        config = self.config
        problems = load(config)
        env = ORModelingEnv(problems, sandbox="local", **config.env_kwargs())  # runs nothing
        tasks = []
        for index, problem in enumerate(problems):
            prompt, _ = env.reset(options={"problem": problem})
            tasks.append(
                ORTask(
                    ORTaskData(
                        idx=index,
                        prompt=prompt,
                        system_prompt=env.system_prompt or None,
                        benchmark=config.benchmark,
                        version=config.version,
                        problem_id=problem.id,
                    ),
                    config.task,
                )
            )
        env.close()
        return tasks


class OREnvConfig(vf.SingleAgentEnvConfig):
    """The single `agent` seat playing or-env episodes."""


class OREnv(vf.Env[OREnvConfig]):
    """Plays each task as an `ORModelingEnv` episode (the loop is in the module docstring)."""

    def _sandbox(self) -> Sandbox:
        config: ORTasksetConfig = self.taskset.config  # type: ignore[assignment]
        options = {} if config.sandbox_workers is None else {"workers": config.sandbox_workers}
        sandbox = shared_sandbox(config.sandbox, **options)
        require_isolation(sandbox, allow_unisolated=config.allow_unisolated)
        return sandbox

    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        config: ORTasksetConfig = self.taskset.config  # type: ignore[assignment]
        data: ORTaskData = task.data  # type: ignore[assignment]
        env = ORModelingEnv(load(config), sandbox=self._sandbox(), **config.env_kwargs())
        await env.areset(options={"problem_id": data.problem_id})
        reward, info = 0.0, {}
        async with agents.agent.interaction(task) as interaction:
            segment = await interaction.turn()  # the task's prompt opens the exchange
            while not segment.terminated:
                observation, reward, terminated, truncated, info = await env.astep(_reply(segment))
                if terminated or truncated:
                    break
                segment = await interaction.turn(observation)
            # Recorded before the exchange closes, so the rollout's own report includes it.
            trace = interaction.trace
            trace.record_reward(REWARD, reward)
            trace.record_metric("correct", float(bool(info.get("correct"))))
            trace.record_metric("turns", float(env.turn))
            trace.record_metric("executions", float(env.executions))
            if info.get("termination_reason"):
                trace.info["or_env_termination"] = info["termination_reason"]
        env.close()


def _reply(segment: Any) -> str:
    """The model's last message as it wrote it (`segment.last_reply` strips whitespace)."""
    for message in reversed(segment.messages):
        if getattr(message, "role", None) == "assistant":
            return message.content if isinstance(message.content, str) else ""
    return segment.last_reply
