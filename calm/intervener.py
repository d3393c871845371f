"""The intervener: an LLM judge that finds the first flaw of a trajectory and writes a hint.

`Intervener(model, base_url)` asks any OpenAI-compatible chat endpoint (vLLM or SGLang
`serve`, hosted APIs) through the agents client (`agents.OpenAIPolicy`: connection pooling,
retries with back-off on 429/5xx/timeouts). The prompt is built from the flaw taxonomy
(`calm.prompt`); the reply must be a JSON verdict (`calm.verdict`). A reply that fails
validation is answered with the error and asked again, `max_attempts` times in all; after
that the judgement is recorded as "no_verdict". It never raises for a bad reply.

An endpoint that cannot be reached after the client's retries raises `JudgeUnavailable`
(a `PolicyError`): the rollout runner records that episode as an error and a rerun retries
it, rather than keeping an episode that was never judged. A trajectory too long for the
judge's context is a "no_verdict" (retrying cannot help).

`BaseIntervener` is the interface `CALMWrapper` uses (`ajudge`, and `judge` for synchronous
code); subclass it for other judges (a rule-based one, a scripted one in tests).
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from agents.policy import ContextLengthError, Policy, PolicyError
from calm.prompt import DEFAULT_MAX_MESSAGE_CHARS, JudgeContext, retry_prompt, system_prompt
from calm.prompt import user_prompt as build_user_prompt
from calm.taxonomy import DEFAULT_TAXONOMY, Taxonomy
from calm.verdict import Verdict, VerdictError, VerdictRules, parse_verdict
from or_env.transcript import Message

STATUSES = ("flawless", "flaw", "no_verdict")
_REPLY_RECORD_CHARS = 4000
T = TypeVar("T")


class JudgeUnavailable(PolicyError):
    """The judge's endpoint failed after retries; the episode should be run again later."""


@dataclass
class Judgement:
    """The outcome of asking the judge about one trajectory.

    status: "flawless", "flaw" or "no_verdict" (no valid reply within the attempts).
    verdict: the validated verdict (None for "no_verdict").
    attempts: replies asked for. errors: why each rejected reply was rejected.
    replies: the raw replies (each cut to a few thousand characters), for the records.
    latency_s / prompt_tokens / completion_tokens: the cost of all attempts.
    """

    status: str
    verdict: Verdict | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.to_dict() if self.verdict else None
        return data


def run_sync(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    """Run `coroutine_factory()` to completion from synchronous code.

    Inside a running event loop (sync code called from async code) it runs on a helper
    thread with its own loop instead of failing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_factory())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_factory())).result()  # type: ignore[arg-type]


class BaseIntervener(abc.ABC):
    """Judges trajectories for `CALMWrapper`: flawless, or the first flaw and a hint.

    Attributes: `taxonomy` (the flaw types it may name) and `rules` (hint length, leak
    tolerance); `CALMWrapper` records both.
    """

    name = "intervener"

    def __init__(
        self, *, taxonomy: Taxonomy = DEFAULT_TAXONOMY, rules: VerdictRules | None = None
    ) -> None:
        self.taxonomy = taxonomy
        self.rules = rules or VerdictRules()

    @abc.abstractmethod
    async def ajudge(self, context: JudgeContext) -> Judgement:
        """Judge one trajectory; never raises for a malformed verdict."""

    def judge(self, context: JudgeContext) -> Judgement:
        """`ajudge` for synchronous code (connections are closed afterwards)."""

        async def go() -> Judgement:
            try:
                return await self.ajudge(context)
            finally:
                await self.aclose()

        return run_sync(go)

    def validate(self, reply: str, context: JudgeContext) -> Verdict:
        """Check a reply against the context (raises VerdictError)."""
        return parse_verdict(
            reply,
            n_turns=context.n_turns,
            ground_truth=context.ground_truth,
            taxonomy=self.taxonomy,
            rules=self.rules,
        )

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""

    def describe(self) -> dict[str, Any]:
        return {
            "intervener": self.name,
            "taxonomy": self.taxonomy.names,
            "max_hint_chars": self.rules.max_hint_chars,
            "leak_rel_tol": self.rules.leak_rel_tol,
        }


class Intervener(BaseIntervener):
    """An LLM judge behind an OpenAI-compatible endpoint (see the module doc).

    Args:
        model / base_url / api_key: the judge's endpoint (api_key default: OPENAI_API_KEY).
        taxonomy: the flaw types the prompt lists and the verdict may name.
        rules: hint length and leak tolerance (`VerdictRules`).
        max_attempts: replies asked for before recording "no_verdict" (>= 1).
        show_answer: put the ground truth in the prompt (it helps the judge find the flaw;
            the leak check keeps it out of hints either way).
        max_tokens / temperature / extra_body / request_timeout / backoff /
            max_connections: passed to `agents.OpenAIPolicy`.
        max_message_chars: each trajectory message is cut to this (head and tail kept).
        client: any `agents.Policy` to ask instead of building an `OpenAIPolicy`.
    """

    name = "llm"

    def __init__(
        self,
        model: str | None = None,
        base_url: str = "http://localhost:8000/v1",
        *,
        api_key: str | None = None,
        taxonomy: Taxonomy = DEFAULT_TAXONOMY,
        rules: VerdictRules | None = None,
        max_attempts: int = 3,
        show_answer: bool = True,
        max_tokens: int | None = 2048,
        temperature: float | None = 0.0,
        extra_body: Mapping[str, Any] | None = None,
        request_timeout: float = 600.0,
        backoff: Any | None = None,
        max_connections: int = 64,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
        client: Policy | None = None,
    ) -> None:
        super().__init__(taxonomy=taxonomy, rules=rules)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if client is None:
            if not model:
                raise ValueError("Intervener needs model= (the judge's served model) or client=")
            from agents.openai_policy import OpenAIPolicy

            client = OpenAIPolicy(
                model,
                base_url,
                api="chat",
                api_key=api_key,
                max_tokens=max_tokens,
                temperature=temperature,
                seed_requests=False,
                extra_body=extra_body,
                # The verdict is in the content; a server-side reasoning part stays apart.
                reasoning="separate",
                request_timeout=request_timeout,
                backoff=backoff,
                max_connections=max_connections,
            )
        self.client = client
        self.max_attempts = max_attempts
        self.show_answer = show_answer
        self.max_message_chars = max_message_chars
        self._system = system_prompt(taxonomy, self.rules.max_hint_chars)

    async def ajudge(self, context: JudgeContext) -> Judgement:
        prompt = build_user_prompt(
            context, show_answer=self.show_answer, max_message_chars=self.max_message_chars
        )
        conversation = [
            Message("system", self._system, "env", 0),
            Message("user", prompt, "env", 0),
        ]
        judgement = Judgement("no_verdict")
        prompt_tokens: list[int] = []
        completion_tokens: list[int] = []
        start = time.perf_counter()
        try:
            for _ in range(self.max_attempts):
                try:
                    turn = await self.client.act(conversation, rendering="chat", stop_sequences=[])
                except ContextLengthError as exc:
                    judgement.errors.append(f"the trajectory does not fit the judge: {exc}")
                    break
                except PolicyError as exc:
                    raise JudgeUnavailable(f"the intervener's endpoint failed: {exc}") from exc
                judgement.attempts += 1
                judgement.replies.append(turn.text[:_REPLY_RECORD_CHARS])
                if turn.prompt_tokens is not None:
                    prompt_tokens.append(turn.prompt_tokens)
                if turn.completion_tokens is not None:
                    completion_tokens.append(turn.completion_tokens)
                try:
                    verdict = self.validate(turn.text, context)
                except VerdictError as exc:
                    judgement.errors.append(str(exc))
                    conversation += [
                        Message("assistant", turn.text, "env", 0),
                        Message("user", retry_prompt(str(exc)), "env", 0),
                    ]
                    continue
                judgement.verdict = verdict
                judgement.status = "flawless" if verdict.flawless else "flaw"
                break
        finally:
            judgement.latency_s = round(time.perf_counter() - start, 4)
            judgement.prompt_tokens = sum(prompt_tokens) if prompt_tokens else None
            judgement.completion_tokens = sum(completion_tokens) if completion_tokens else None
        return judgement

    async def aclose(self) -> None:
        await self.client.aclose()

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        client = {k: v for k, v in self.client.describe().items() if k != "policy"}
        described.update(client, max_attempts=self.max_attempts, show_answer=self.show_answer)
        return described
