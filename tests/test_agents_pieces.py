"""The small pieces policies are built from: reasoning text, prompts, stops, back-off, batching."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from agents.batching import MicroBatcher
from agents.policy import chat_messages, continues_assistant, policy_turn_count
from agents.reasoning import action_from_response, merge_reasoning, split_think
from agents.retry import Backoff, is_retryable_status, retry_after_seconds
from agents.templating import MissingPackageError, cut_at_stop, plain_prompt, require
from or_env.transcript import Message


@pytest.mark.parametrize(
    ("text", "reasoning", "rest"),
    [
        ("plain answer", None, "plain answer"),
        ("<think>\nabc\n</think>\n\nanswer", "abc", "answer"),
        ("abc</think>answer", "abc", "answer"),  # the template put <think> in the prompt
        ("intro <think>still thinking", "still thinking", "intro "),
    ],
)
def test_split_think(text: str, reasoning: str | None, rest: str) -> None:
    assert split_think(text) == (reasoning, rest)


@pytest.mark.parametrize(
    ("content", "reasoning", "mode", "text"),
    [
        ("A", None, "merge", "A"),
        ("A", "R", "merge", "<think>\nR\n</think>\n\nA"),
        (None, "R", "merge", "<think>\nR"),  # stopped inside its reasoning: left open
        ("A", "R", "separate", "A"),
        (None, None, "merge", ""),
    ],
)
def test_action_from_response(content, reasoning, mode, text) -> None:
    assert action_from_response(content, reasoning, mode)[0] == text
    assert merge_reasoning(reasoning, content) == (
        text if mode == "merge" else "<think>\nR\n</think>\n\nA"
    )


def test_chat_view_merges_inline_assistant_pieces() -> None:
    messages = [
        Message("system", "S", "env", 0),
        Message("user", "Q", "env", 0),
        Message("assistant", "code", "policy", 1),
        {"role": "assistant", "content": "output", "source": "env", "turn": 1},
    ]
    chat = chat_messages(messages)
    assert chat == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "codeoutput"},
    ]
    assert continues_assistant(chat) and not continues_assistant(chat[:2])
    assert policy_turn_count(messages) == 1
    assert plain_prompt(chat) == "S\n\nQ\n\ncodeoutput"


@pytest.mark.parametrize(
    ("text", "stops", "cut", "which"),
    [
        ("a```outputb", ["```output"], "a", "```output"),
        ("no stop", ["```output"], "no stop", None),
        ("x STOP1 y STOP2", ["STOP2", "STOP1"], "x ", "STOP1"),
        ("abc", [], "abc", None),
    ],
)
def test_cut_at_stop(text, stops, cut, which) -> None:
    assert cut_at_stop(text, stops) == (cut, which)


def test_missing_package_error_says_what_to_install() -> None:
    with pytest.raises(MissingPackageError, match=r"pip install not-a-real-pkg-xyz"):
        require("not_a_real_module_xyz", "Testing", "not-a-real-pkg-xyz")


@pytest.mark.parametrize(
    ("module", "cls", "package"),
    [
        ("agents.vllm_policy", "VLLMPolicy", "vllm"),
        ("agents.transformers_policy", "TransformersPolicy", "torch"),
    ],
)
def test_in_process_backends_fail_clearly_without_their_packages(module, cls, package) -> None:
    # A fresh interpreter in which the package cannot be imported (a None entry in
    # sys.modules makes `import` raise ImportError), whether or not it is installed here.
    program = (
        "import sys\n"
        f"sys.modules[{package!r}] = None\n"
        "from agents.templating import MissingPackageError\n"
        f"from {module} import {cls}\n"
        "try:\n"
        f"    {cls}('some-model')\n"
        "except MissingPackageError as exc:\n"
        "    print('MISSING:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install {package}" in result.stdout


@pytest.mark.parametrize(
    ("status", "retry"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_backoff_doubles_up_to_the_cap_and_honours_retry_after() -> None:
    backoff = Backoff(base_s=1.0, max_s=5.0, jitter=0.0)
    assert [backoff.delay(i) for i in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff.delay(1, retry_after=3.0) == 3.0
    assert backoff.delay(1, retry_after=100.0) == 5.0
    jittered = Backoff(base_s=1.0, jitter=0.5).delay(1)
    assert 1.0 <= jittered <= 1.5
    with pytest.raises(ValueError):
        Backoff(max_retries=-1)


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 20 < (retry_after_seconds({"Retry-After": later}) or 0) <= 30


def test_micro_batcher_gathers_concurrent_requests() -> None:
    seen: list[list[int]] = []
    threads: set[str] = set()

    def square_all(batch):
        seen.append(list(batch))
        threads.add(threading.current_thread().name)
        time.sleep(0.02)
        return [x * x for x in batch]

    batcher = MicroBatcher(square_all, max_batch=8)

    async def go():
        return await asyncio.gather(*(batcher.submit(i) for i in range(20)))

    assert asyncio.run(go()) == [i * i for i in range(20)]
    assert max(len(b) for b in seen) == 8 and sum(map(len, seen)) == 20
    assert batcher.batches_run == len(seen) <= 4
    assert threading.main_thread().name not in threads  # off the event loop


def test_micro_batcher_raises_a_batch_error_in_every_request() -> None:
    def broken(batch):
        raise RuntimeError("engine fell over")

    batcher = MicroBatcher(broken)

    async def go():
        return await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)

    results = asyncio.run(go())
    assert all(isinstance(r, RuntimeError) for r in results)
