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
raises `ContextLengthError` (the runner ends that episode as truncated). Token usage comes
from the server's `usage`. Reasoning output is handled as `agents.reasoning` documents.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from agents.policy import (
    ContextLengthError,
    EpisodeKey,
    Policy,
    PolicyError,
    PolicyTurn,
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
_CONTEXT_ERRORS = ("maximum context length", "context length", "context_length", "too long")


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
            the same episode asks for the same sample (servers honour it to varying degrees).
        extra_body: more request fields (e.g. {"top_k": 20} or vLLM's
            {"chat_template_kwargs": {"enable_thinking": True}}).
        reasoning: "merge" or "separate" (see `agents.reasoning`).
        request_timeout: seconds per request (generation included).
        backoff: retry settings.
        max_connections: the HTTP connection pool size (the runner's concurrency).
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
    ) -> None:
        if api not in APIS:
            raise ValueError(f"api must be one of {APIS}, got {api!r}")
        if reasoning not in REASONING_MODES:
            raise ValueError(f"reasoning must be one of {REASONING_MODES}, got {reasoning!r}")
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
        self._client: Any | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

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
        chat: Sequence[Mapping[str, str]],
        stop_sequences: Sequence[str],
        seed: int | None = None,
    ) -> dict[str, Any]:
        """The /chat/completions body for a chat; continues a final assistant message."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in chat]}
        if continues_assistant(chat):
            # vLLM's extension; a server that rejects it cannot do inline continuation.
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        body.update(self.sampling_fields(stop_sequences, seed))
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
    ) -> PolicyTurn:
        chat = chat_messages(messages)
        seed = turn_seed(episode, messages) if self.seed_requests else None
        if self.api == "chat":
            path, body = "/chat/completions", self.chat_request(chat, stop_sequences, seed)
        else:
            path, body = "/completions", self.completion_request(chat, stop_sequences, seed)
        start = time.perf_counter()
        data, attempts = await self._post(path, body)
        return self._turn(data, time.perf_counter() - start, attempts)

    def _turn(self, data: Mapping[str, Any], latency: float, attempts: int) -> PolicyTurn:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise PolicyError(f"the server's reply has no choices: {str(data)[:300]}") from exc
        if self.api == "chat":
            message = choice.get("message") or {}
            content = message.get("content")
            reasoning = message.get("reasoning_content") or message.get("reasoning")
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
        )

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        httpx = require("httpx", "OpenAIPolicy", "'or-env[agents]'")
        client = self._http_client()
        url = self.base_url + path
        last_error = ""
        for attempt in range(1, self.backoff.max_retries + 2):
            retry_after = None
            try:
                response = await client.post(url, json=body)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
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
            wait = self.backoff.delay(attempt, retry_after)
            logger.info("retrying %s in %.2f s (%s)", url, wait, last_error)
            await asyncio.sleep(wait)
        raise PolicyError(
            f"{url} failed after {self.backoff.max_retries + 1} attempts; last error: "
            f"{last_error}. Check that the server is up and serves model {self.model!r}."
        )

    def _client_error(self, status: int, detail: str, url: str) -> PolicyError:
        lowered = detail.lower()
        if any(marker in lowered for marker in _CONTEXT_ERRORS):
            return ContextLengthError(f"HTTP {status} from {url}: {detail}")
        if "continue_final_message" in lowered or "add_generation_prompt" in lowered:
            return PolicyError(
                f"HTTP {status} from {url}: {detail}. This server cannot continue an "
                "assistant message (inline rendering); use rendering='chat', or "
                "api='completions' with the model's tokenizer."
            )
        return PolicyError(f"HTTP {status} from {url}: {detail}")

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
        }
