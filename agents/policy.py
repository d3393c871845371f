"""The `Policy` interface: an episode's transcript in, the next action text out."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from or_env.errors import OREnvError
from or_env.transcript import Message, Transcript


class PolicyError(OREnvError, RuntimeError):
    """A policy could not produce a turn (server unreachable after retries, bad request, ...).

    The rollout runner records the episode as failed with this message and goes on.
    """


class ServerUnreachable(PolicyError):
    """The model server could not be reached at all (connection refused, unknown host,
    connect timeout), as opposed to a server that answered with an error.

    The rollout runner stops a run after a few consecutive episodes fail this way
    (`RolloutRunner(stop_after_unreachable=...)`): every further episode would fail too.
    """


def unreachable_cause(exc: BaseException | None) -> ServerUnreachable | None:
    """The `ServerUnreachable` behind an exception (itself, or in its chain of causes), if any.

    Wrappers re-raise policy errors as their own (CALM's judge: `JudgeUnavailable`); the
    cause chain still says whether a server was unreachable.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ServerUnreachable):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class ContextLengthError(PolicyError):
    """The transcript no longer fits the model's context window.

    Not a failure of the run: the runner ends the episode as truncated
    (`termination_reason="context_length"`, reward 0).
    """


@dataclass(frozen=True)
class EpisodeKey:
    """Which episode a turn belongs to, for policies that need it (replay, seeded sampling).

    problem_id / sample: the episode's identity (sample = index among the N samples of one
    problem); seed: the episode's seed (the runner derives it from both); benchmark: its
    benchmark name.
    """

    problem_id: str
    sample: int = 0
    seed: int | None = None
    benchmark: str | None = None


@dataclass(frozen=True)
class PolicyTurn:
    """One generated turn and what it cost.

    text: the action to pass to `env.step`, exactly as generated (see each backend for how
        separated reasoning is joined back in).
    prompt_tokens / completion_tokens: token usage reported by the backend (None if unknown).
    latency_s: wall seconds of the call, retries and back-off included.
    reasoning: the reasoning part, when the backend returned or the text contains one
        (`<think>...</think>` or a server's `reasoning_content`); for records only.
    finish_reason: the backend's reason to stop ("stop", "length", ...), if any.
    attempts: how many requests the turn took (1 + retries).
    tool_calls: the function calls the model made (the tools rendering; OpenAI's shape), or
        None when the backend was not asked for tools.
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    reasoning: str | None = None
    finish_reason: str | None = None
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def action(self, rendering: str) -> str | dict[str, Any]:
        """What to pass to `env.step`: the text, or in the tools rendering the assistant
        message with the turn's calls."""
        if rendering != "tools":
            return self.text
        return {"role": "assistant", "content": self.text, "tool_calls": self.tool_calls or []}


class Policy(abc.ABC):
    """Something that writes the policy's side of an `ORModelingEnv` episode.

    `act` receives the episode's transcript so far (`env.transcript.messages`: messages
    tagged with their source) and the env's conventions, and returns the next action text.
    It is async so that one process can drive hundreds of episodes at once; a backend that
    blocks (a local model) must run its work off the event loop.
    """

    #: A short name for records and reports ("openai", "replay", ...).
    name: str = "policy"

    @abc.abstractmethod
    async def act(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        *,
        rendering: str,
        stop_sequences: Sequence[str],
        episode: EpisodeKey | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> PolicyTurn:
        """The next turn of the episode.

        messages: the transcript (`Message`s or their dicts); `chat_messages` turns it into
            role/content dicts with the inline assistant pieces merged.
        rendering: "inline" (continue the last assistant message when the transcript ends
            in one), "chat" (every env observation is a user message) or "tools" (the model
            acts through function calls; the turn's `tool_calls` carry them).
        stop_sequences: where generation must stop so the env can run code
            (`env.stop_sequences`).
        episode: which episode this is; None when the caller does not say.
        tools: the function schemas to offer the model (`env.tools`), given in the tools
            rendering only. A backend that cannot call functions raises PolicyError.
        Raises PolicyError when no turn can be produced.
        """

    def describe(self) -> dict[str, Any]:
        """What to record about this policy in results (name, model, settings)."""
        return {"policy": self.name}

    async def aprepare(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Check the backend before a run, and fit settings to it; raise PolicyError (or
        ValueError for settings that cannot work) with the fix. The evaluation harness and
        CALM curation call it once, before the first episode; the default checks nothing."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections or engines; the default holds none."""


def chat_messages(messages: Sequence[Message | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Role/content dicts for a chat API, consecutive assistant pieces merged (as_chat); tool
    calls and tool results keep their fields."""
    transcript = Transcript()
    for message in map(Message.coerce, messages):
        transcript.add(message)
    return transcript.as_chat()


def continues_assistant(chat: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the next generation continues the last message (it is the assistant's and
    made no tool calls: a message that called a tool is finished)."""
    return bool(chat) and chat[-1]["role"] == "assistant" and not chat[-1].get("tool_calls")


def refuse_tools(policy: Policy, tools: Sequence[Mapping[str, Any]] | None) -> None:
    """Raise PolicyError when a backend that cannot call functions is asked to."""
    if tools:
        raise PolicyError(
            f"the {policy.name} policy cannot call functions (rendering='tools'); serve the "
            "model with an OpenAI-compatible server that parses tool calls (vLLM: "
            "--enable-auto-tool-choice --tool-call-parser hermes) and use --policy openai, "
            "or use rendering='inline' or 'chat'"
        )


def policy_turn_count(messages: Sequence[Message | Mapping[str, Any]]) -> int:
    """How many policy-written messages the transcript holds (the index of the next turn)."""
    return sum(1 for m in map(Message.coerce, messages) if m.source == "policy")


def turn_seed(
    episode: EpisodeKey | None, messages: Sequence[Message | Mapping[str, Any]]
) -> int | None:
    """A sampling seed for the next turn: fixed per (episode seed, turn index), so a rerun
    of an episode asks for the same samples, and a rewound turn is sampled anew."""
    if episode is None or episode.seed is None:
        return None
    return (episode.seed * 1_000_003 + policy_turn_count(messages)) % 2**31
