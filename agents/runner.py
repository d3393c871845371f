"""The rollout runner: many episodes of one policy, concurrently, one JSONL record each.

`RolloutRunner(policy, env_kwargs=...).run(plan_episodes(problems, samples=N), out=path)`
plays every (problem, sample) episode with at most `concurrency` in flight (asyncio; the
env's `areset`/`astep` never block the loop, and the sandbox bounds its own parallelism),
shows a progress bar, and appends a record to `out` as each episode ends. Episodes whose
record in `out` is complete are skipped, so an interrupted run resumes where it stopped;
episodes recorded as errors are run again.

A failing episode does not stop the run: a `PolicyError` (server errors after retries,
replay missing) or any other exception is recorded with `status="error"` and the message. A
`ContextLengthError` ends the episode as truncated (`termination_reason="context_length"`).
The exception is a server that cannot be reached: after `stop_after_unreachable` episodes in
a row failed with `ServerUnreachable` (also as the cause of a wrapper's error), every further
episode would fail the same way, so the runner cancels the episodes in flight (they are not
recorded) and raises `RunAborted`; the finished episodes stay in `out`, and rerunning
resumes. An interrupted run (Ctrl-C, a cancelled task) likewise keeps every finished episode.

Record fields: `schema`, `problem_id`, `benchmark`, `version`, `sample`, `seed`, `status`
("ok" | "error"), `error`, `reward`, `correct`, `answer`, `ground_truth`, `grade`,
`termination_reason`, `turns` (policy turns in the final transcript), `generated_turns` (every
turn generated, also those a wrapper's rewind dropped), `executions`, `messages` (the whole
transcript, each message with its `source`: env, policy or intervener), `steps` (per generated
turn: action kind, policy latency, env seconds, tokens, finish reason, attempts, reasoning,
execution status, `rewound_to`),
`tokens` (prompt and completion totals), `timings` (wall, policy and env seconds, start
time), `protocol`, `rendering`, `tolerance`, `policy` (the policy's `describe()`),
`unreachable` (only on an error record whose cause was a server that could not be reached),
and any fields the env adds through a `record_fields()` method (a wrapper's bookkeeping,
e.g. `calm`).

Every request is built from the env's transcript (`env.unwrapped.transcript`), never from the
returned observation, so a wrapper that rewinds the env and inserts text (CALM) is honoured:
the next turn continues from the rewound transcript.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.policy import (
    ContextLengthError,
    EpisodeKey,
    Policy,
    PolicyError,
    PolicyTurn,
    unreachable_cause,
)
from agents.records import SCHEMA_VERSION, RecordWriter, is_complete, read_records
from or_env.env import ORModelingEnv
from or_env.errors import OREnvError
from or_env.problems import Problem

logger = logging.getLogger(__name__)


class RunAborted(OREnvError, RuntimeError):
    """The run stopped early because the model server could not be reached (see the module
    doc); `finished` episodes of this run were recorded before it stopped."""

    def __init__(self, message: str, finished: int = 0) -> None:
        super().__init__(message)
        self.finished = finished


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play: a problem, the sample index, and the episode's seed."""

    problem: Problem
    sample: int = 0
    seed: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem.id, self.sample)


def episode_seed(base_seed: int, problem_id: str, sample: int) -> int:
    """A seed that depends only on (base seed, problem, sample): stable across reruns."""
    digest = hashlib.sha256(f"{base_seed}:{problem_id}:{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_episodes(
    problems: Iterable[Problem], samples: int = 1, base_seed: int = 0
) -> list[EpisodeSpec]:
    """Every (problem, sample) pair, problems in order, each with its own seed."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    return [
        EpisodeSpec(problem, sample, episode_seed(base_seed, problem.id, sample))
        for problem in problems
        for sample in range(samples)
    ]


class RolloutRunner:
    """Plays episodes of one policy concurrently and records them (see the module doc).

    Args:
        policy: the `Policy` that writes the turns.
        env_kwargs: keyword arguments for `ORModelingEnv` (sandbox, rendering, protocol,
            tolerance, budgets, ...); the problem comes from each episode.
        env_factory: instead of env_kwargs, a function making the env for an episode (an
            env or a wrapper with `areset`/`astep`; `env.unwrapped` is the `ORModelingEnv`).
        concurrency: episodes in flight at once.
        progress: show a tqdm progress bar (tqdm is optional).
        description: the progress bar's label.
        stop_after_unreachable: stop the run (`RunAborted`) after this many episodes in a
            row failed because the server could not be reached (0: never stop).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        env_kwargs: dict[str, Any] | None = None,
        env_factory: Callable[[EpisodeSpec], Any] | None = None,
        concurrency: int = 64,
        progress: bool = True,
        description: str = "episodes",
        stop_after_unreachable: int = 3,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if env_factory is not None and env_kwargs:
            raise ValueError("pass env_kwargs or env_factory, not both")
        self.policy = policy
        self.env_kwargs = dict(env_kwargs or {})
        for reserved in ("problems", "benchmark", "version", "data_path"):
            if reserved in self.env_kwargs:
                raise ValueError(f"env_kwargs must not set {reserved!r}: episodes set the problem")
        self.env_factory = env_factory
        self.concurrency = concurrency
        self.progress = progress
        self.description = description
        self.stop_after_unreachable = stop_after_unreachable

    def run(self, specs: Sequence[EpisodeSpec], out: str | Path | None = None) -> list[dict]:
        """`arun` from synchronous code."""
        return asyncio.run(self.arun(specs, out))

    async def arun(
        self, specs: Sequence[EpisodeSpec], out: str | Path | None = None
    ) -> list[dict[str, Any]]:
        """Play the episodes not yet complete in `out`; return the records of all `specs`."""
        keys = [spec.key for spec in specs]
        if len(set(keys)) != len(keys):
            raise ValueError("the episode plan repeats a (problem id, sample) pair")
        done = {k: r for k, r in read_records(out).items() if is_complete(r)} if out else {}
        todo = [spec for spec in specs if spec.key not in done]
        if done:
            logger.info("resuming: %d of %d episodes recorded", len(specs) - len(todo), len(specs))
        results: dict[tuple[str, int], dict[str, Any]] = {}
        writer = RecordWriter(out) if out is not None and todo else None
        bar = _progress_bar(len(todo), self.description, self.progress)
        queue: asyncio.Queue[EpisodeSpec] = asyncio.Queue()
        for spec in todo:
            queue.put_nowait(spec)
        correct = 0
        unreachable_in_a_row = 0
        last_unreachable = ""

        async def worker() -> None:
            nonlocal correct, unreachable_in_a_row, last_unreachable
            while True:
                try:
                    spec = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                record = await self.run_episode(spec)
                results[spec.key] = record
                if writer is not None:
                    writer.write(record)
                correct += bool(record.get("correct"))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(correct=f"{correct}/{len(results)}", refresh=False)
                if record.get("unreachable"):
                    unreachable_in_a_row += 1
                    last_unreachable = str(record.get("error"))
                else:
                    unreachable_in_a_row = 0
                if 0 < self.stop_after_unreachable <= unreachable_in_a_row:
                    raise RunAborted(
                        f"stopped after {unreachable_in_a_row} episodes in a row could not "
                        f"reach the model server ({last_unreachable})",
                        sum(1 for r in results.values() if r.get("status") == "ok"),
                    )

        tasks = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(todo)))]
        try:
            await asyncio.gather(*tasks)
        finally:
            # On RunAborted (or a cancellation) stop the episodes still in flight: they are
            # not recorded, so a rerun plays them.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        return [results.get(key) or done[key] for key in keys]

    async def run_episode(self, spec: EpisodeSpec) -> dict[str, Any]:
        """Play one episode to its end and return its record (never raises for failures)."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        start = time.perf_counter()
        key = EpisodeKey(spec.problem.id, spec.sample, spec.seed, spec.problem.benchmark)
        env = self._make_env(spec)
        inner: ORModelingEnv = getattr(env, "unwrapped", env)
        steps: list[dict[str, Any]] = []
        info: dict[str, Any] = {}
        reward, status, error, reason = 0.0, "ok", None, None
        unreachable = False
        policy_s = env_s = 0.0
        try:
            await env.areset(seed=spec.seed, options={"problem": spec.problem})
            while True:
                try:
                    turn = await self.policy.act(
                        inner.transcript.messages,
                        rendering=inner.rendering,
                        stop_sequences=inner.stop_sequences,
                        episode=key,
                        **({"tools": inner.tools} if inner.rendering == "tools" else {}),
                    )
                except ContextLengthError as exc:
                    reason, info["context_error"] = "context_length", str(exc)
                    break
                policy_s += turn.latency_s
                env_start = time.perf_counter()
                _, reward, terminated, truncated, info = await env.astep(
                    turn.action(inner.rendering)
                )
                env_elapsed = time.perf_counter() - env_start
                env_s += env_elapsed
                steps.append(_step_record(turn, info, env_elapsed))
                if terminated or truncated:
                    reason = info.get("termination_reason")
                    break
        except PolicyError as exc:
            status, error = "error", f"policy error: {exc}"
            unreachable = unreachable_cause(exc) is not None
        except Exception as exc:
            status, error = "error", f"{type(exc).__name__}: {exc}"
            logger.warning("episode %s/%d failed", spec.problem.id, spec.sample, exc_info=True)
        finally:
            env.close()
        if status == "error":
            reason = "error"
            logger.warning("episode %s sample %d: %s", spec.problem.id, spec.sample, error)
        record = {
            "schema": SCHEMA_VERSION,
            "problem_id": spec.problem.id,
            "benchmark": spec.problem.benchmark,
            "version": spec.problem.meta.get("version"),
            "sample": spec.sample,
            "seed": spec.seed,
            "status": status,
            "error": error,
            "reward": float(reward) if status == "ok" else 0.0,
            "correct": bool(info.get("correct")) if status == "ok" else False,
            "answer": info.get("answer"),
            "ground_truth": spec.problem.answer,
            "grade": info.get("grade"),
            # Did some execution print the answer? False on a correct episode: a guess.
            "answer_printed": info.get("answer_printed") if status == "ok" else None,
            "termination_reason": reason,
            # After a wrapper's rewind (CALM) the transcript holds fewer turns than were
            # generated: `turns` counts the transcript's, `generated_turns` every request.
            "turns": inner.turn,
            "generated_turns": len(steps),
            "executions": inner.executions,
            "messages": inner.transcript.to_dicts(),
            "steps": steps,
            "tokens": _token_totals(steps),
            "timings": {
                "wall_s": round(time.perf_counter() - start, 4),
                "policy_s": round(policy_s, 4),
                "env_s": round(env_s, 4),
                "started_at": started,
            },
            "protocol": getattr(inner, "protocol", "native"),
            "rendering": inner.rendering,
            "tolerance": _tolerance_name(inner.tolerance),
            "policy": self.policy.describe(),
        }
        if unreachable:
            record["unreachable"] = True
        # A wrapper may add its own fields (e.g. CALM's interventions), never replace ours.
        record_fields = getattr(env, "record_fields", None)
        if callable(record_fields):
            for name, value in record_fields().items():
                record.setdefault(name, value)
        return record

    def _make_env(self, spec: EpisodeSpec) -> Any:
        if self.env_factory is not None:
            return self.env_factory(spec)
        # The policy never sees info; the records keep the grade's errors (debug info).
        return ORModelingEnv([spec.problem], **{"debug": True, **self.env_kwargs})


def _step_record(turn: PolicyTurn, info: dict[str, Any], env_s: float) -> dict[str, Any]:
    execution = info.get("execution")
    if execution is not None:
        execution = {k: v for k, v in execution.items() if k not in ("stdout", "stderr")}
    return {
        "turn": info.get("turn"),
        "action_kind": info.get("action_kind"),
        "latency_s": round(turn.latency_s, 4),
        "env_s": round(env_s, 4),
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "finish_reason": turn.finish_reason,
        "attempts": turn.attempts,
        "reasoning": turn.reasoning,
        "execution": execution,
        # Set when a wrapper rewound the env after this turn (the turn it went back to).
        "rewound_to": info.get("rewound_to"),
    }


def _token_totals(steps: list[dict[str, Any]]) -> dict[str, int | None]:
    totals: dict[str, int | None] = {}
    for field in ("prompt_tokens", "completion_tokens"):
        known = [s[field] for s in steps if s[field] is not None]
        totals[field.removesuffix("_tokens")] = sum(known) if known else None
    return totals


def _tolerance_name(tolerance: Any) -> str:
    return tolerance if isinstance(tolerance, str) else getattr(tolerance, "name", str(tolerance))


def _progress_bar(total: int, description: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        logger.info("tqdm is not installed: no progress bar (pip install tqdm)")
        return None
    # Redirected to a file, redraw rarely instead of writing a line per update.
    interval = 0.1 if sys.stderr.isatty() else 10.0
    return tqdm(total=total, desc=description, unit="ep", dynamic_ncols=True, mininterval=interval)
