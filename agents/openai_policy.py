"""A policy served over the OpenAI-compatible HTTP API (vLLM and SGLang `serve`, hosted APIs).

Two ways of asking, `api=`:

- "chat" (`/v1/chat/completions`): the server applies the model's chat template. When the
  transcript ends in an assistant message (the inline rendering, after the env appended an
  output block to the assistant turn), the request carries vLLM's extension
  `continue_final_message=True, add_generation_prompt=False`, so the generation continues
  that same assistant turn instead of opening a new one (SGLang accepts the same fields).
  Hosted APIs do not support continuing a message: use `rendering="chat"` with them.
  Otherwise the request is plain chat turns.
- "completions" (`/v1/completions`): the prompt string is built here, with the chat template
  of `tokenizer` (a transformers tokenizer or its name; transformers is imported only then),
  or without a tokenizer by joining the messages (`agents.templating.plain_prompt`, for base
  models and ORLM-style prompts).

Every request carries the env's stop sequences. Rate limits (429), server errors (5xx),
timeouts and connection errors are retried with exponential back-off (`agents.retry.Backoff`);
other client errors fail at once with the server's message, and a context-length error
(`is_context_overflow`: the phrasings of vLLM, SGLang and OpenAI) raises
`ContextLengthError` (the runner ends that episode as truncated). Token usage comes from
the server's `usage`. Reasoning output is handled as `agents.reasoning` documents.

A server that cannot be reached costs one back-off sequence, not one per request: once a
request has used up its retries on connection failures, the policy marks the server down,
requests still retrying give up at their next attempt, and new requests try once
(`ServerUnreachable`), until any reply clears the mark. `aprepare` (called by `or-env eval`
and `calm curate` before the first episode) lists the server's models: an unreachable
server, a wrong base URL or a model the server does not serve fails the run at once with
the fix, and a `max_tokens` that cannot fit the served context (`max_model_len`, which vLLM
and SGLang report) is refused or, with `max_tokens_over_context="clamp"`, halved to fit.

`seed_requests`: each request carries a seed derived from the episode's seed and the turn,
so a rerun asks for the same samples. vLLM's CPU backend with chunked prefill crashes on
per-request seeds ("CPU Generator does not use offset"); `seed_requests=False` sends none,
at the price of reproducibility: at temperature > 0 a rerun (or a resumed run) draws new
samples.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.policy import (
    ContextLengthError,
    EpisodeKey,
    Policy,
    PolicyError,
    PolicyTurn,
    ServerUnreachable,
    chat_messages,
    continues_assistant,
    turn_seed,
)
from agents.reasoning import REASONING_MODES, action_from_response
from agents.retry import Backoff, is_retryable_status, retry_after_seconds
from agents.templating import load_tokenizer, render_prompt, require
from or_env.transcript import Message

logger = logging.getLogger(__name__)

APIS = ("chat", "completions")
OVER_CONTEXT = ("refuse", "clamp")
# How servers say that a request does not fit the model's context (matched case-blind):
CONTEXT_OVERFLOW_PATTERNS = (
    # vLLM's API server ("This model's maximum context length is 2048 tokens. However, your
    # request has 2100 input tokens ..."; "'max_tokens' ... is too large: 4096. This
    # model's maximum context length is 2048 tokens and your request has ..."), SGLang
    # ("Requested token count exceeds the model's maximum context length of ..."), OpenAI.
    r"maximum context length",
    # SGLang: "The input (2100 tokens) is longer than the model's context length (2048 tokens)."
    r"context length",
    r"context_length_exceeded",  # OpenAI's error code
    # vLLM's engine: "The decoder prompt (length 2100) is longer than the maximum model
    # length of 2048."
    r"longer than the maximum model length",
    # vLLM when the prompt fills the whole context: no token left to generate.
    r"max_tokens must be at least 1, got (?:0|-\d+)",
    r"prompt is too long",
    r"\btoo long\b",
)
_CONTEXT_OVERFLOW = re.compile("|".join(CONTEXT_OVERFLOW_PATTERNS), re.IGNORECASE)
# Connection-level failures: nothing answered at that address.
_UNREACHABLE_ERRORS = ("ConnectError", "ConnectTimeout")
PROBE_TIMEOUT_S = 15.0
PROBE_CONNECT_TIMEOUT_S = 5.0


def is_context_overflow(detail: str) -> bool:
    """Whether a server's error message says the request does not fit the context window."""
    return _CONTEXT_OVERFLOW.search(detail) is not None


@dataclass(frozen=True)
class ServerInfo:
    """What a server's `/models` route says: the served model ids, and the context length
    (`max_model_len`, which vLLM and SGLang report; None when the server does not say)."""

    base_url: str
    models: tuple[str, ...]
    max_model_len: int | None = None


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message", error))[:500]
        return str(error)[:500]
    return str(body)[:500]


class OpenAIPolicy(Policy):
    """Generates turns with a model behind an OpenAI-compatible server (see the module doc).

    Args:
        model: the served model name.
        base_url: the API root, e.g. "http://localhost:8000/v1".
        api: "chat" or "completions".
        api_key: sent as a bearer token; default: the OPENAI_API_KEY variable, else none.
        tokenizer: for api="completions": a tokenizer (or its name/path) whose chat
            template builds the prompt; None joins the messages plainly.
        max_tokens, temperature, top_p: sampling settings; None leaves the server's default.
        seed_requests: send a per-turn seed derived from the episode's seed, so a rerun of
            the same episode asks for the same sample (servers honour it to varying degrees;
            see the module doc for vLLM-CPU, where it must be False).
        extra_body: more request fields (e.g. {"top_k": 20} or vLLM's
            {"chat_template_kwargs": {"enable_thinking": True}}).
        reasoning: "merge" or "separate" (see `agents.reasoning`).
        request_timeout: seconds per request (generation included).
        backoff: retry settings.
        max_connections: the HTTP connection pool size (the runner's concurrency).
        max_tokens_over_context: what `aprepare` does when max_tokens cannot fit the
            server's context: "refuse" (raise ValueError with the fix) or "clamp" (use half
            the context, so the prompt has the other half).
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        *,
        api: str = "chat",
        api_key: str | None = None,
        tokenizer: str | Any | None = None,
        max_tokens: int | None = 4096,
        temperature: float | None = None,
        top_p: float | None = None,
        seed_requests: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        reasoning: str = "merge",
        request_timeout: float = 600.0,
        backoff: Backoff | None = None,
        max_connections: int = 256,
        max_tokens_over_context: str = "refuse",
    ) -> None:
        if api not in APIS:
            raise ValueError(f"api must be one of {APIS}, got {api!r}")
        if reasoning not in REASONING_MODES:
            raise ValueError(f"reasoning must be one of {REASONING_MODES}, got {reasoning!r}")
        if max_tokens_over_context not in OVER_CONTEXT:
            raise ValueError(
                f"max_tokens_over_context must be one of {OVER_CONTEXT}, "
                f"got {max_tokens_over_context!r}"
            )
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1 (or None), got {max_tokens}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._tokenizer_spec = tokenizer
        self._tokenizer: Any | None = None
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed_requests = seed_requests
        self.extra_body = dict(extra_body or {})
        self.reasoning = reasoning
        self.request_timeout = request_timeout
        self.backoff = backoff or Backoff()
        self.max_connections = max_connections
        self.max_tokens_over_context = max_tokens_over_context
        self.server_info: ServerInfo | None = None
        self._client: Any | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        # Set when a request used up its retries without reaching the server (the last
        # error); cleared by any reply. While set, requests do not retry connection failures.
        self._unreachable: str | None = None

    # ----------------------------------------------------------------- requests
    def sampling_fields(self, stop_sequences: Sequence[str], seed: int | None) -> dict[str, Any]:
        """The sampling part of a request body."""
        body: dict[str, Any] = {"stop": list(stop_sequences)}
        for key, value in (
            ("max_tokens", self.max_tokens),
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("seed", seed),
        ):
            if value is not None:
                body[key] = value
        body.update(self.extra_body)
        return body

    def chat_request(
        self,
        chat: Sequence[Mapping[str, Any]],
        stop_sequences: Sequence[str],
        seed: int | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The /chat/completions body for a chat; continues a final assistant message; offers
        `tools` (the tools rendering) with `tool_choice` "auto"."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in chat]}
        if continues_assistant(chat):
            # vLLM's extension; a server that rejects it cannot do inline continuation.
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if tools:
            body["tools"] = [dict(t) for t in tools]
            body["tool_choice"] = "auto"
        body.update(self.sampling_fields(stop_sequences, seed))
        if tools and not body["stop"]:
            del body["stop"]  # some servers reject an empty stop list next to tools
        return body

    def completion_request(
        self,
        chat: Sequence[Mapping[str, str]],
        stop_sequences: Sequence[str],
        seed: int | None = None,
    ) -> dict[str, Any]:
        """The /completions body: the chat rendered to one prompt string here."""
        if self._tokenizer is None and self._tokenizer_spec is not None:
            self._tokenizer = load_tokenizer(self._tokenizer_spec)
        kwargs = self.extra_body.get("chat_template_kwargs")
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": render_prompt(chat, self._tokenizer, kwargs),
        }
        body.update(self.sampling_fields(stop_sequences, seed))
        body.pop("chat_template_kwargs", None)
        if self._tokenizer is not None:
            # The chat template already wrote the special tokens (BOS included); vLLM's
            # /completions would add a second BOS by default.
            body.setdefault("add_special_tokens", False)
        return body

    # ----------------------------------------------------------------- the policy
    async def act(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        *,
        rendering: str,
        stop_sequences: Sequence[str],
        episode: EpisodeKey | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> PolicyTurn:
        chat = chat_messages(messages)
        seed = turn_seed(episode, messages) if self.seed_requests else None
        if tools and self.api != "chat":
            raise PolicyError(
                "rendering='tools' needs api='chat': the server's chat template and tool "
                "parser turn the model's output into tool calls"
            )
        if self.api == "chat":
            body = self.chat_request(chat, stop_sequences, seed, tools)
            path = "/chat/completions"
        else:
            path, body = "/completions", self.completion_request(chat, stop_sequences, seed)
        start = time.perf_counter()
        data, attempts = await self._post(path, body)
        return self._turn(data, time.perf_counter() - start, attempts, with_tools=bool(tools))

    def _turn(
        self, data: Mapping[str, Any], latency: float, attempts: int, *, with_tools: bool = False
    ) -> PolicyTurn:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise PolicyError(f"the server's reply has no choices: {str(data)[:300]}") from exc
        tool_calls = None
        if self.api == "chat":
            message = choice.get("message") or {}
            content = message.get("content")
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if with_tools:
                # Passed on as the server gave them: the env reads (and answers) any shape.
                raw = message.get("tool_calls")
                tool_calls = list(raw) if isinstance(raw, list) else []
        else:
            content, reasoning = choice.get("text"), None
        text, reasoning_text = action_from_response(content, reasoning, self.reasoning)
        usage = data.get("usage") or {}
        extra = {}
        if choice.get("stop_reason") is not None:
            extra["stop_reason"] = choice["stop_reason"]
        return PolicyTurn(
            text=text,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=latency,
            reasoning=reasoning_text,
            finish_reason=choice.get("finish_reason"),
            attempts=attempts,
            extra=extra,
            tool_calls=tool_calls,
        )

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        httpx = require("httpx", "OpenAIPolicy", "'or-env[agents]'")
        client = self._http_client()
        url = self.base_url + path
        last_error = ""
        unreachable = False
        for attempt in range(1, self.backoff.max_retries + 2):
            retry_after = None
            try:
                response = await client.post(url, json=body)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                unreachable = type(exc).__name__ in _UNREACHABLE_ERRORS
            else:
                unreachable = False
                self._unreachable = None  # the server answered: it is up
                if response.status_code == 200:
                    try:
                        return response.json(), attempt
                    except ValueError as exc:
                        last_error = f"unreadable JSON reply: {exc}"
                else:
                    detail = _error_text(response)
                    if not is_retryable_status(response.status_code):
                        raise self._client_error(response.status_code, detail, url)
                    last_error = f"HTTP {response.status_code}: {detail}"
                    retry_after = retry_after_seconds(response.headers)
            if attempt > self.backoff.max_retries:
                break
            if unreachable and self._unreachable is not None:
                break  # another request already found the server down: do not wait again
            wait = self.backoff.delay(attempt, retry_after)
            logger.info("retrying %s in %.2f s (%s)", url, wait, last_error)
            await asyncio.sleep(wait)
            if unreachable and self._unreachable is not None:
                break
        if unreachable:
            self._unreachable = last_error
            raise ServerUnreachable(
                f"cannot reach {url} after {attempt} attempt(s); last error: {last_error}. "
                f"Check the base URL ({self.base_url}) and that the server is up."
            )
        raise PolicyError(
            f"{url} failed after {attempt} attempts; last error: "
            f"{last_error}. Check that the server is up and serves model {self.model!r}."
        )

    def _client_error(self, status: int, detail: str, url: str) -> PolicyError:
        lowered = detail.lower()
        if is_context_overflow(detail):
            return ContextLengthError(f"HTTP {status} from {url}: {detail}")
        if "continue_final_message" in lowered or "add_generation_prompt" in lowered:
            return PolicyError(
                f"HTTP {status} from {url}: {detail}. This server cannot continue an "
                "assistant message (inline rendering); use rendering='chat', or "
                "api='completions' with the model's tokenizer."
            )
        return PolicyError(f"HTTP {status} from {url}: {detail}")

    # ----------------------------------------------------------------- before a run
    async def aprobe(self) -> ServerInfo:
        """List the server's models (`GET {base_url}/models`); raise with the fix when the
        server cannot be reached, rejects the key, or the base URL is not an API root."""
        httpx = require("httpx", "OpenAIPolicy", "'or-env[agents]'")
        client = self._http_client()
        url = f"{self.base_url}/models"
        timeout = httpx.Timeout(PROBE_TIMEOUT_S, connect=PROBE_CONNECT_TIMEOUT_S)
        try:
            response = await client.get(url, timeout=timeout)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the model server at {self.base_url} ({type(exc).__name__}: "
                f"{exc}); check the base URL and that the server is up (vLLM logs "
                "'Application startup complete' when it is ready)"
            ) from exc
        if response.status_code in (401, 403):
            raise PolicyError(
                f"{url} refused the API key (HTTP {response.status_code}: "
                f"{_error_text(response)}); set OPENAI_API_KEY (or the key variable you named)"
            )
        if response.status_code == 404:
            hint = (
                f"; did you mean {self.base_url}/v1?"
                if not self.base_url.endswith("/v1")
                else "; is this an OpenAI-compatible server?"
            )
            raise PolicyError(f"{url} does not exist (HTTP 404){hint}")
        if response.status_code != 200:
            logger.warning(
                "could not list the models of %s (HTTP %d: %s); not checking the model name",
                self.base_url,
                response.status_code,
                _error_text(response),
            )
            return ServerInfo(self.base_url, ())
        try:
            cards = [c for c in response.json().get("data", []) if isinstance(c, dict)]
        except (ValueError, AttributeError) as exc:
            raise PolicyError(f"{url} did not answer with a model list: {exc}") from exc
        models = tuple(str(c.get("id")) for c in cards)
        card = next((c for c in cards if c.get("id") == self.model), None)
        length = None
        if card is not None:
            for key in ("max_model_len", "context_length", "max_context_length"):
                if isinstance(card.get(key), int) and card[key] > 0:
                    length = card[key]
                    break
        return ServerInfo(self.base_url, models, length)

    async def aprepare(self) -> None:
        """Probe the server (`aprobe`), check it serves the model, fit max_tokens to its
        context (`max_tokens_over_context`)."""
        info = await self.aprobe()
        self.server_info = info
        if info.models and self.model not in info.models:
            served = ", ".join(repr(m) for m in info.models)
            raise PolicyError(
                f"{self.base_url} does not serve model {self.model!r}; it serves {served} "
                "(pass one of those as the model name)"
            )
        length = info.max_model_len
        if length is None or self.max_tokens is None or self.max_tokens < length:
            return
        fitted = max(length // 2, 1)
        if self.max_tokens_over_context == "clamp":
            logger.warning(
                "max_tokens %d cannot fit the context of %s (max_model_len %d, prompt "
                "included); generating at most %d tokens per turn instead",
                self.max_tokens,
                self.model,
                length,
                fitted,
            )
            self.max_tokens = fitted
            return
        raise ValueError(
            f"max_tokens {self.max_tokens} cannot fit the context of {self.model!r} at "
            f"{self.base_url} (max_model_len {length} tokens, prompt included), so every "
            f"request would fail; ask for fewer tokens per turn (e.g. {fitted}), or serve "
            "the model with a longer --max-model-len"
        )

    def _http_client(self) -> Any:
        # An httpx client's connections belong to the event loop that opened them; a new
        # loop (a second asyncio.run) gets a new client.
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not loop:
            self._client = None
        if self._client is None:
            self._client_loop = loop
            httpx = require("httpx", "OpenAIPolicy", "'or-env[agents]'")
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(self.request_timeout, connect=30.0),
                limits=httpx.Limits(
                    max_connections=self.max_connections,
                    max_keepalive_connections=self.max_connections,
                ),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "api": self.api,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "reasoning": self.reasoning,
            "extra_body": self.extra_body,
            "seed_requests": self.seed_requests,
        }
