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

Rewinds: the loop steps whatever `wrap_env` returns (the env itself here; the CALM
intervener's `CALMWrapper` in `calm_agent_loop.py`). A step whose info has `rewound_to=r`
dropped turns r+1.. from the env's transcript; `TokenBuffer.rewind` drops the same turns from
the tokens (back to where turn r+1 began), and the step's observation (a hint) is appended
with `response_mask` 0. The next request is then token for token the one the model would
have got had the hint been there from the start.

The sandbox comes from the loop's config (`agent_loop.yaml` keys become constructor kwargs):
`sandbox` ("auto", "local", "docker", "ray") and `sandbox_options` (e.g. `workers`). Every
trajectory of a worker process uses `or_env.sandbox.shared_sandbox`, one bounded pool per
process, never a container per rollout. With "ray" the pool is cluster-wide instead: Ray
actors on the CPU nodes that offer the `or_env_sandbox` resource, found (or created) by
the first trajectory of each worker off the event loop, then shared by every worker
(`or_env.sandbox.ray_pool`; README "Sandboxes on CPU nodes").
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
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


class TokenBuffer:
    """The response side of a trajectory: token ids, loss mask, log-probs, and where each
    policy turn began, so that a rewind can cut all of them at a turn boundary.

    `turn_starts[k]` is the length of the buffer when turn k + 1 (env numbering, 1-based)
    started generating; a rewind to turn r keeps exactly what was there when turn r + 1
    started: the turns up to r, their observations and any hint given after turn r.
    """

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.mask: list[int] = []
        self.logprobs: list[float] = []
        self.turn_starts: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def begin_turn(self) -> None:
        """Mark where the next policy turn starts."""
        self.turn_starts.append(len(self.ids))

    def add_generated(self, ids: list[int], logprobs: list[float] | None) -> None:
        """The model's tokens: trained on (mask 1), with the engine's log-probs."""
        self.ids += ids
        self.mask += [1] * len(ids)
        self.logprobs += list(logprobs) if logprobs else [0.0] * len(ids)

    def add_context(self, ids: list[int]) -> None:
        """Tokens the model did not write (outputs, feedback, hints): mask 0, log-prob 0."""
        self.ids += ids
        self.mask += [0] * len(ids)
        self.logprobs += [0.0] * len(ids)

    def rewind(self, turn: int) -> None:
        """Drop turn `turn` + 1 and everything after it (ids, mask and log-probs alike)."""
        if not 0 <= turn < len(self.turn_starts):
            raise ValueError(
                f"cannot rewind to turn {turn}: the buffer holds turns 1 to {len(self.turn_starts)}"
            )
        cut = self.turn_starts[turn]
        del self.ids[cut:], self.mask[cut:], self.logprobs[cut:]
        del self.turn_starts[turn:]


@dataclass
class Episode:
    """One played trajectory, as `run` hands it to `episode_fields`.

    played: what the loop stepped (`wrap_env`'s result); info: the last step's info;
    reward: the env's reward (0.0 unless the episode ended); generated_turns: requests made
    (more than `env.turn` after a rewind).
    """

    env: ORModelingEnv
    played: Any
    prompt_ids: list[int]
    buffer: TokenBuffer
    request_id: str
    done: bool
    reward: float
    info: dict[str, Any]
    termination_reason: str | None
    generated_turns: int


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
    - sandbox: the sandbox backend ("auto", "local", "docker", or "ray": a cluster-wide
      pool of Ray actors on CPU nodes);
    - sandbox_options: kwargs of that backend (e.g. {"workers": 8}; for "ray" e.g.
      {"backend": "docker", "workers_per_actor": 32}); one pool per process (per cluster
      for "ray");
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

    def wrap_env(self, env: ORModelingEnv) -> Any:
        """The env the loop steps (`areset`/`astep`); subclasses wrap it (e.g. CALM)."""
        return env

    def episode_fields(self, episode: Episode) -> dict[str, Any]:
        """More `extra_fields` for a finished trajectory (subclasses add theirs); a
        "reward_extra_info" dict in it is merged into the loop's own."""
        return {}

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        extra_info = kwargs.get("extra_info") or {}
        ground_truth = (kwargs.get("reward_model") or {}).get("ground_truth")
        pool = shared_sandbox(self.sandbox_kind, **self.sandbox_options)
        astart = getattr(pool, "astart", None)
        if astart is not None:
            # sandbox="ray": find or create the cluster pool on a thread, so the worker's
            # event loop never blocks on Ray (make_env's isolation check then costs nothing).
            await astart()
        env = self.make_env(extra_info, ground_truth)
        sandbox = env.sandbox
        assert isinstance(sandbox, _TimedSandbox)
        played = self.wrap_env(env)
        await played.areset(options={"index": 0})
        prompt_ids = await self.ct_build_initial_tokens(env.transcript.as_chat())

        request_id = uuid4().hex
        buffer = TokenBuffer()
        reward, done, info, generate_s, generated_turns = 0.0, False, {}, 0.0, 0
        try:
            while not done and len(buffer) < self.response_length:
                params = {
                    **sampling_params,
                    "stop": env.stop_sequences,
                    "include_stop_str_in_output": True,
                    "max_tokens": self.response_length - len(buffer),
                }
                buffer.begin_turn()
                start = time.perf_counter()
                output = await self.server_manager.generate(
                    request_id=request_id,
                    prompt_ids=prompt_ids + buffer.ids,
                    sampling_params=params,
                )
                generate_s += time.perf_counter() - start
                generated_turns += 1
                ids = list(output.token_ids)
                buffer.add_generated(ids, output.log_probs)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                observation, reward, terminated, truncated, info = await played.astep(text)
                done = terminated or truncated
                if info.get("rewound_to") is not None:
                    # The env dropped turns rewound_to+1..; drop their tokens too.
                    buffer.rewind(int(info["rewound_to"]))
                if len(buffer.turn_starts) != env.turn:
                    raise RuntimeError(
                        f"token buffer and env disagree: {len(buffer.turn_starts)} turns in the "
                        f"buffer, {env.turn} in the env"
                    )
                if observation and not done:
                    # Program output is the policy's own text: a printed "<|im_end|>" must
                    # stay characters, never become the chat template's control token.
                    ids = self.tokenizer.encode(
                        observation, add_special_tokens=False, split_special_tokens=True
                    )
                    buffer.add_context(ids)
        finally:
            env.close()

        reason = info.get("termination_reason") if done else "response_length"
        stats = {
            "correct": bool(info.get("correct", False)) if done else False,
            "turns": env.turn,
            "executions": env.executions,
            "sandbox_s": round(sandbox.seconds, 6),
        }
        extra = self.episode_fields(
            Episode(
                env=env,
                played=played,
                prompt_ids=prompt_ids,
                buffer=buffer,
                request_id=request_id,
                done=done,
                reward=float(reward) if done else 0.0,
                info=info,
                termination_reason=reason,
                generated_turns=generated_turns,
            )
        )
        n = self.response_length
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=buffer.ids[:n],
            response_mask=buffer.mask[:n],
            response_logprobs=buffer.logprobs[:n] if sampling_params.get("logprobs") else None,
            reward_score=float(reward) if done else 0.0,
            # system/user prompt, then a policy and an env message a turn
            num_turns=2 * env.turn + 1,
            metrics=AgentLoopMetrics(generate_sequences=generate_s, tool_calls=sandbox.seconds),
            extra_fields={
                "env_reward": float(reward) if done else 0.0,
                "termination_reason": reason,
                **stats,
                **{k: v for k, v in extra.items() if k != "reward_extra_info"},
                "reward_extra_info": {**stats, **extra.get("reward_extra_info", {})},
            },
        )
