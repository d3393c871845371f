"""`ORModelingAgentLoop`: verl 0.9.1's agent loop that plays `ORModelingEnv` token-in/token-out.

verl's `AgentLoopWorker` builds one instance per trajectory (selected by the dataset's
`agent_name` column, "or_env") and awaits `run`. The loop:

1. builds the env for the row's problem (question and ground truth from the RL parquet made
   by `recipes.verl.data`; env settings from the recipe config, then the row's `env_kwargs`),
   resets it and applies the chat template to its messages (`ct_build_initial_tokens`);
2. generates through verl's server manager with the env's stop sequences (kept in the
   output), always passing the whole context (prompt + response so far) with one request id;
3. hands the decoded turn to `env.astep`; an execution output or format message is
   tokenised and appended with `response_mask` 0 (log-prob 0.0): it is context, not trained;
4. stops when the env ends the episode or the response budget (`rollout.response_length`,
   which covers the model's tokens *and* every observation) is used, then cuts the response
   to that length;
5. returns the env's reward as `reward_score` (so verl skips the reward function), and the
   turns, executions and sandbox seconds in `extra_fields` (also as `reward_extra_info`,
   which verl logs per step); sandbox time is also the `tool_calls` timing metric.

Only the env's inline rendering is played: the output block continues the assistant turn,
as reasoning models with a code interpreter do, so no chat-template tokens are inserted.

The sandbox comes from the loop's config (`agent_loop.yaml` keys become constructor kwargs):
`sandbox` ("auto", "local", "docker") and `sandbox_options` (e.g. `workers`). Every
trajectory of a worker process uses `or_env.sandbox.shared_sandbox`, one bounded pool per
process, never a container per rollout.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopMetrics,
    AgentLoopOutput,
    register,
)

from or_env.env import ORModelingEnv
from or_env.problems import Problem
from or_env.sandbox import Sandbox, require_isolation, shared_sandbox
from recipes.verl import AGENT_NAME
from recipes.verl.data import ROW_ENV_KEYS

logger = logging.getLogger(__name__)


class _TimedSandbox:
    """Wraps the shared sandbox to add up this trajectory's execution seconds."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.seconds = 0.0

    def run(self, code: str, *, timeout: float) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.run(code, timeout=timeout)
        finally:
            self.seconds += time.perf_counter() - start

    async def arun(self, code: str, *, timeout: float) -> Any:
        start = time.perf_counter()
        try:
            return await self.inner.arun(code, timeout=timeout)
        finally:
            self.seconds += time.perf_counter() - start

    def close(self) -> None:
        """The pool is shared by the process: a trajectory never closes it."""


@register(AGENT_NAME)
class ORModelingAgentLoop(AgentLoopBase):
    """Plays one OR modeling episode per call of `run`, with env tokens masked out of the loss.

    Constructor kwargs beyond verl's (from `agent_loop.yaml`):
    - sandbox: the sandbox backend ("auto", "local", "docker");
    - sandbox_options: kwargs of that backend (e.g. {"workers": 8}); one pool per process;
    - allow_unisolated: train on a local sandbox without namespaces anyway (refused by
      default: a policy could read ground truths or leave state for later episodes);
    - env_kwargs: `ORModelingEnv` settings for every row (rows may override ROW_ENV_KEYS).
    """

    def __init__(
        self,
        *args: Any,
        sandbox: str = "auto",
        sandbox_options: Mapping[str, Any] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        allow_unisolated: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.prompt_length = int(self.rollout_config.prompt_length)
        self.response_length = int(self.rollout_config.response_length)
        self.sandbox_kind = sandbox
        self.sandbox_options = dict(sandbox_options or {})
        self.allow_unisolated = bool(allow_unisolated)
        self.env_kwargs = dict(env_kwargs or {})
        if self.env_kwargs.get("rendering", "inline") != "inline":
            raise ValueError("ORModelingAgentLoop plays the inline rendering only; drop rendering")

    def make_env(self, extra_info: Mapping[str, Any], ground_truth: Any) -> ORModelingEnv:
        """The env for one row: recipe settings, then the row's own `env_kwargs`."""
        for key in ("problem_id", "question"):
            if key not in extra_info:
                raise KeyError(
                    f"extra_info has no {key!r}: make the parquet with `python -m "
                    "recipes.verl.data rl` (or `or-env recipes prepare-rl`)"
                )
        problem = Problem.from_dict(
            {
                "id": extra_info["problem_id"],
                "question": extra_info["question"],
                "answer": ground_truth,
                "benchmark": extra_info.get("benchmark") or "custom",
            }
        )
        row_kwargs = json.loads(extra_info.get("env_kwargs") or "{}")
        settings = {**self.env_kwargs, **{k: v for k, v in row_kwargs.items() if k in ROW_ENV_KEYS}}
        pool = shared_sandbox(self.sandbox_kind, **self.sandbox_options)
        require_isolation(pool, allow_unisolated=self.allow_unisolated)
        return ORModelingEnv(problems=[problem], sandbox=_TimedSandbox(pool), **settings)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        extra_info = kwargs.get("extra_info") or {}
        ground_truth = (kwargs.get("reward_model") or {}).get("ground_truth")
        env = self.make_env(extra_info, ground_truth)
        sandbox = env.sandbox
        assert isinstance(sandbox, _TimedSandbox)
        await env.areset(options={"index": 0})
        prompt_ids = await self.ct_build_initial_tokens(env.transcript.as_chat())

        request_id = uuid4().hex
        response_ids: list[int] = []
        response_mask: list[int] = []
        logprobs: list[float] = []
        reward, done, info, generate_s = 0.0, False, {}, 0.0
        try:
            while not done and len(response_ids) < self.response_length:
                params = {
                    **sampling_params,
                    "stop": env.stop_sequences,
                    "include_stop_str_in_output": True,
                    "max_tokens": self.response_length - len(response_ids),
                }
                start = time.perf_counter()
                output = await self.server_manager.generate(
                    request_id=request_id,
                    prompt_ids=prompt_ids + response_ids,
                    sampling_params=params,
                )
                generate_s += time.perf_counter() - start
                ids = list(output.token_ids)
                response_ids += ids
                response_mask += [1] * len(ids)
                logprobs += list(output.log_probs) if output.log_probs else [0.0] * len(ids)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                observation, reward, terminated, truncated, info = await env.astep(text)
                done = terminated or truncated
                if observation and not done:
                    obs_ids = self.tokenizer.encode(observation, add_special_tokens=False)
                    response_ids += obs_ids
                    response_mask += [0] * len(obs_ids)
                    logprobs += [0.0] * len(obs_ids)
        finally:
            env.close()

        reason = info.get("termination_reason") if done else "response_length"
        stats = {
            "correct": bool(info.get("correct", False)) if done else False,
            "turns": env.turn,
            "executions": env.executions,
            "sandbox_s": round(sandbox.seconds, 6),
        }
        n = self.response_length
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[:n],
            response_mask=response_mask[:n],
            response_logprobs=logprobs[:n] if sampling_params.get("logprobs") else None,
            reward_score=float(reward) if done else 0.0,
            num_turns=2 * env.turn
            + 1,  # system/user prompt, then a policy and an env message a turn
            metrics=AgentLoopMetrics(generate_sequences=generate_s, tool_calls=sandbox.seconds),
            extra_fields={
                "env_reward": float(reward) if done else 0.0,
                "termination_reason": reason,
                **stats,
                "reward_extra_info": dict(stats),
            },
        )
