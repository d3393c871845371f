"""`ORModelingCALMAgentLoop`: the `or_env` agent loop with the CALM intervener in the env.

Registered as "or_env_calm" (`config/agent_loop.yaml`). It plays exactly like
`ORModelingAgentLoop`, but steps the env inside `calm.wrapper.CALMWrapper`: when the trigger
fires (the episode's end, or also every execution), an LLM judge behind an OpenAI-compatible
endpoint reads the trajectory; on a flaw at turn t the wrapper rewinds the env to turn t-1
and inserts a short hint where turn t began. The loop mirrors that on the tokens
(`TokenBuffer.rewind`): ids, mask and log-probs are cut back to where turn t began, the
hint's tokens are appended with `response_mask` 0 and log-prob 0.0, and generation goes on
from there, so the context is token for token what the model would have seen had the hint
been there from the start. The prompt is never cut: a turn starts after it.

`extra_fields["calm"]` holds CALM's record of the trajectory (judgements, interventions with
the dropped turns, final status); `reward_extra_info` carries the whole episode record as a
JSON string (`calm_record`, see `calm_dump.py`), which verl writes into its generation dumps;
`or-env recipes prepare-sft` curates such a dump.

The intervener (constructor kwarg `intervener`, a mapping, see `IntervenerSettings`) is one
client per worker process, shared by all its trajectories, so its connection pool bounds
the requests a worker has in flight. A judge that cannot be reached, errs or times out never
fails the trajectory: the judgement is recorded as "no_verdict" with the error, and an
episode that ends so is not kept ("no_verdict" final status).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from verl.experimental.agent_loop.agent_loop import register

from agents.policy import PolicyError
from agents.retry import Backoff
from calm.intervener import BaseIntervener, Intervener, Judgement
from calm.prompt import JudgeContext
from calm.taxonomy import DEFAULT_TAXONOMY, load_taxonomy
from calm.verdict import DEFAULT_MAX_HINT_CHARS, VerdictRules
from calm.wrapper import TRIGGERS, CALMWrapper
from or_env.env import ORModelingEnv
from recipes.verl.agent_loop import Episode, ORModelingAgentLoop
from recipes.verl.calm_dump import CALM_AGENT_NAME, dump_fields, episode_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntervenerSettings:
    """The `intervener` mapping of the loop's config.

    model / base_url: the judge's served model and API root (OpenAI-compatible, e.g. vLLM
        serve); api_key_env: the environment variable holding its key (may be unset).
    max_connections: requests in flight per rollout worker process (its connection pool);
        the endpoint sees up to agent.num_workers x this.
    request_timeout: seconds per request; max_retries / retry_base_s: back-off on
        connection errors, 429 and 5xx (`agents.retry.Backoff`).
    judge_timeout: seconds one judgement may take in all (retries and re-asks included);
        past it the judgement is "no_verdict". None: no overall cap.
    max_attempts: replies asked for before "no_verdict" (a reply failing validation is
        answered with the error and asked again).
    max_tokens / temperature / extra_body: the judge's sampling.
    show_answer: give the judge the ground truth (hints are checked for leaks either way).
    taxonomy: a JSON taxonomy file (`calm.taxonomy.load_taxonomy`); None: the built-in one.
    max_hint_chars / leak_rel_tol: the hint rules (`calm.verdict.VerdictRules`).
    """

    model: str | None = None
    base_url: str = "http://localhost:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    max_connections: int = 64
    request_timeout: float = 600.0
    max_retries: int = 6
    retry_base_s: float = 1.0
    judge_timeout: float | None = None
    max_attempts: int = 3
    max_tokens: int | None = 2048
    temperature: float | None = 0.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    show_answer: bool = True
    taxonomy: str | None = None
    max_hint_chars: int = DEFAULT_MAX_HINT_CHARS
    leak_rel_tol: float | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> IntervenerSettings:
        """Settings from the yaml mapping; unknown keys are refused (a typo would be lost)."""
        values = _plain(values) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown intervener settings {unknown}; known: {sorted(known)}")
        if values.get("extra_body") is None:
            values.pop("extra_body", None)
        return cls(**values)

    def build(self) -> BaseIntervener:
        """The judge: `calm.Intervener` behind `ResilientIntervener`."""
        if not self.model:
            raise ValueError(
                "the or_env_calm loop needs intervener.model (the judge's served model name) "
                "in its agent-loop config"
            )
        rules = VerdictRules(max_hint_chars=self.max_hint_chars)
        if self.leak_rel_tol is not None:
            rules = VerdictRules(max_hint_chars=self.max_hint_chars, leak_rel_tol=self.leak_rel_tol)
        inner = Intervener(
            self.model,
            self.base_url,
            api_key=os.environ.get(self.api_key_env),
            taxonomy=load_taxonomy(self.taxonomy) if self.taxonomy else DEFAULT_TAXONOMY,
            rules=rules,
            max_attempts=self.max_attempts,
            show_answer=self.show_answer,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            extra_body=self.extra_body,
            request_timeout=self.request_timeout,
            backoff=Backoff(max_retries=self.max_retries, base_s=self.retry_base_s),
            max_connections=self.max_connections,
        )
        return ResilientIntervener(inner, timeout=self.judge_timeout)


class ResilientIntervener(BaseIntervener):
    """Wraps an intervener so that a failing judge costs a verdict, never the trajectory.

    An unreachable or erring endpoint (`PolicyError`, e.g. `JudgeUnavailable` after the
    client's retries) or a judgement over `timeout` seconds becomes a "no_verdict"
    judgement whose `errors` say what happened. The offline pipeline (`or-env calm curate`)
    instead records such an episode as an error and reruns it; a verl batch cannot rerun one
    trajectory, and a rollout worker that raised would lose the whole batch.
    """

    name = "resilient"

    def __init__(self, inner: BaseIntervener, timeout: float | None = None) -> None:
        super().__init__(taxonomy=inner.taxonomy, rules=inner.rules)
        self.inner = inner
        self.timeout = timeout

    async def ajudge(self, context: JudgeContext) -> Judgement:
        start = time.perf_counter()
        try:
            return await asyncio.wait_for(self.inner.ajudge(context), self.timeout)
        except (PolicyError, TimeoutError) as exc:
            error = str(exc) or f"no judgement within {self.timeout} s"
            logger.warning("intervener failed on %s: %s", context.problem_id, error, exc_info=False)
            return Judgement(
                "no_verdict",
                errors=[f"the intervener failed ({type(exc).__name__}): {error}"],
                latency_s=round(time.perf_counter() - start, 4),
            )

    async def aclose(self) -> None:
        await self.inner.aclose()

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "judge_timeout": self.timeout}


def _plain(value: Any) -> Any:
    """Plain dicts and lists from the yaml (hydra hands nested kwargs over as DictConfig)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# One judge client per worker process and settings: its connection pool is shared by every
# trajectory of the worker (verl builds a loop object per trajectory). It lives as long as
# the process; the HTTP client itself follows the event loop (agents.OpenAIPolicy).
_INTERVENERS: dict[str, BaseIntervener] = {}


def shared_intervener(settings: IntervenerSettings) -> BaseIntervener:
    """The process's intervener for these settings (built on first use)."""
    key = json.dumps(asdict(settings), sort_keys=True, default=str)
    if key not in _INTERVENERS:
        _INTERVENERS[key] = settings.build()
    return _INTERVENERS[key]


@register(CALM_AGENT_NAME)
class ORModelingCALMAgentLoop(ORModelingAgentLoop):
    """`ORModelingAgentLoop` with the env inside `CALMWrapper` (see the module doc).

    Constructor kwargs beyond `ORModelingAgentLoop`'s (from `agent_loop.yaml`):
    - intervener: the judge's endpoint and rules (`IntervenerSettings`);
    - max_interventions: hints per trajectory at most (the paper uses 5);
    - trigger: "end" (judge when the episode would end) or "execution" (also after every
      step that ran code);
    - hint_template: how a hint is written ("{hint}"; default "{hint}\\n\\n" on a line of
      its own). Hint tokens share the response budget (`rollout.response_length`).
    """

    def __init__(
        self,
        *args: Any,
        intervener: Mapping[str, Any] | None = None,
        max_interventions: int = 5,
        trigger: str = "end",
        hint_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, got {trigger!r}")
        if int(max_interventions) < 0:
            raise ValueError(f"max_interventions must not be negative, got {max_interventions}")
        self.intervener = shared_intervener(IntervenerSettings.from_mapping(intervener))
        self.max_interventions = int(max_interventions)
        self.trigger = trigger
        self.hint_template = hint_template

    def wrap_env(self, env: ORModelingEnv) -> CALMWrapper:
        return CALMWrapper(
            env, self.intervener, self.max_interventions, self.trigger, self.hint_template
        )

    def episode_fields(self, episode: Episode) -> dict[str, Any]:
        played: CALMWrapper = episode.played
        calm = played.summary()
        buffer = episode.buffer
        n = self.response_length
        record = episode_record(
            episode.env,
            calm=calm,
            info=episode.info,
            done=episode.done,
            reward=episode.reward,
            termination_reason=episode.termination_reason,
            generated_turns=episode.generated_turns,
            tokens={
                "prompt": len(episode.prompt_ids),
                "response": min(len(buffer), n),
                "generated": sum(buffer.mask[:n]),
                "hints": self._hint_tokens(episode.env),
            },
            policy={"policy": "verl", "model": str(self.config.actor_rollout_ref.model.path)},
            intervener=self.intervener.describe(),
            taxonomy=self.intervener.taxonomy,
            request_id=episode.request_id,
        )
        return {"calm": calm, "reward_extra_info": dump_fields(record)}

    def _hint_tokens(self, env: ORModelingEnv) -> int:
        """Tokens of the hints left in the trajectory (a later rewind may drop one); each
        was appended as the loop encodes it here."""
        return sum(
            len(self.tokenizer.encode(m.content, add_special_tokens=False))
            for m in env.transcript.messages
            if m.source == "intervener"
        )
