"""`or-env serve`: a real OpenEnv server (uvicorn on 127.0.0.1) played over WebSockets.

The server runs in a thread of the test process with a local sandbox of 2 workers shared by
every session. Needs the `serve` extra (skips without it; OR_ENV_REQUIRE_SERVE=1 fails).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.extras import require_package

from or_env import load_problems
from or_env.integrations.serve import ServeConfig
from or_env.reference import read_reported_answer, reference_code

pytestmark = pytest.mark.serve

SAMPLE = load_problems("sample")
MAX_SESSIONS = 32
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThreadServer:
    """uvicorn serving `create_app(config)` in a thread; `stop()` shuts it down cleanly."""

    def __init__(self, config: ServeConfig, sandbox: Any) -> None:
        import uvicorn

        from or_env.integrations.openenv_server import create_app

        self.app = create_app(config, sandbox=sandbox)
        self.url = f"http://127.0.0.1:{config.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=config.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/or_env/stats", timeout=10) as response:
            return json.loads(response.read())

    def wait_for(self, predicate, timeout: float = 15.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    require_package("openenv", extra="serve", flag="OR_ENV_REQUIRE_SERVE")
    from or_env.sandbox.local import LocalSandbox

    with LocalSandbox(workers=2) as sandbox:
        config = ServeConfig(port=_free_port(), max_sessions=MAX_SESSIONS, sandbox="local")
        running = ThreadServer(config, sandbox).start()
        try:
            yield running
        finally:
            running.stop()


def _client(server: ThreadServer) -> Any:
    from or_env.integrations.openenv_client import ORClient

    return ORClient(base_url=server.url, message_timeout_s=120)


async def _play_reference(server: ThreadServer, problem) -> tuple[float, dict[str, Any]]:
    """One episode with the problem's reference program, as a scripted policy would play it."""
    async with _client(server) as env:
        result = await env.reset(benchmark="sample", problem_id=problem.id)
        assert result.observation.observation and not result.done
        result = await env.step(f"I will solve it.\n```python\n{reference_code(problem)}\n```\n")
        answer = read_reported_answer(result.observation.observation)
        if not result.done:
            result = await env.step(f"The answer is \\boxed{{{answer}}}.")
        state = await env.state()
        assert state.problem_id == problem.id and state.done
        return result.reward, result.observation.info


def test_32_concurrent_sessions_play_the_sample_set(server: ThreadServer) -> None:
    problems = [SAMPLE[i % len(SAMPLE)] for i in range(MAX_SESSIONS)]

    async def play_all() -> list[tuple[float, dict[str, Any]]]:
        return await asyncio.gather(*(_play_reference(server, p) for p in problems))

    results = asyncio.run(play_all())
    assert [reward for reward, _ in results] == [1.0] * MAX_SESSIONS
    for (_, info), problem in zip(results, problems, strict=True):
        assert info["problem_id"] == problem.id and info["correct"] is True
        assert info["termination_reason"] == "answered" and info["transcript"]
        assert "ground_truth" not in json.dumps(info)
    stats = server.wait_for(lambda s: s["open"] == 0)
    assert stats["open"] == 0 and stats["closed"] >= MAX_SESSIONS


def _hold_session(url: str) -> subprocess.Popen:
    """A client process holding one session (connected and reset); SIGKILL drops it."""
    code = (
        "import sys, json\n"
        "from websockets.sync.client import connect\n"
        "with connect(sys.argv[1]) as ws:\n"
        "    ws.send(json.dumps({'type': 'reset', 'data': {'index': 0}}))\n"
        "    print(json.loads(ws.recv())['type'], flush=True)\n"
        "    sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, url.replace("http://", "ws://") + "/ws"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == "observation", line
    return process


def _refusal(url: str) -> dict[str, Any]:
    from websockets.sync.client import connect

    # The server refuses at once: an error frame, then it closes the connection.
    with connect(url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
        return json.loads(ws.recv(timeout=10))


def test_33rd_session_is_refused_and_a_dropped_one_frees_its_slot(server: ThreadServer) -> None:
    held = [_hold_session(server.url) for _ in range(MAX_SESSIONS)]
    try:
        assert server.stats()["open"] == MAX_SESSIONS
        refusal = _refusal(server.url)
        assert refusal["type"] == "error"
        assert refusal["data"]["code"] == "CAPACITY_REACHED"
        assert refusal["data"]["max_sessions"] == MAX_SESSIONS
        closed_before = server.stats()["closed"]

        os.kill(held[0].pid, signal.SIGKILL)  # a dropped connection: no close frame
        held[0].wait(timeout=10)
        stats = server.wait_for(lambda s: s["open"] == MAX_SESSIONS - 1)
        assert stats["open"] == MAX_SESSIONS - 1
        assert stats["closed"] == closed_before + 1  # its env was closed

        reward, _ = asyncio.run(_play_reference(server, SAMPLE[0]))  # the freed slot
        assert reward == 1.0
    finally:
        for process in held:
            process.kill()
            process.wait(timeout=10)
    assert server.wait_for(lambda s: s["open"] == 0)["open"] == 0


@pytest.mark.parametrize(
    ("message", "code", "says"),
    [
        ("{not json", "INVALID_JSON", "Invalid JSON"),
        (json.dumps({"type": "dance"}), "UNKNOWN_TYPE", "dance"),
        (json.dumps({"type": "step", "data": {"text": "hi"}}), "EXECUTION_ERROR", "reset"),
        (json.dumps({"type": "step", "data": {}}), "VALIDATION_ERROR", ""),
        (
            json.dumps({"type": "step", "data": {"text": "a", "message": {"role": "assistant"}}}),
            "VALIDATION_ERROR",
            "",
        ),
        (json.dumps({"type": "step", "data": {"txt": "a"}}), "VALIDATION_ERROR", ""),
        (
            json.dumps({"type": "reset", "data": {"problem_id": "nope"}}),
            "EXECUTION_ERROR",
            "no problem with id 'nope'",
        ),
        (
            json.dumps({"type": "reset", "data": {"colour": "red"}}),
            "EXECUTION_ERROR",
            "unknown reset option",
        ),
        (
            json.dumps({"type": "reset", "data": {"benchmark": "no-such-benchmark"}}),
            "EXECUTION_ERROR",
            "no-such-benchmark",
        ),
        (json.dumps({"type": "reset", "data": {"index": 10_000}}), "EXECUTION_ERROR", "index"),
    ],
)
def test_bad_payloads_get_a_clear_error_and_the_session_goes_on(
    server: ThreadServer, message: str, code: str, says: str
) -> None:
    from websockets.sync.client import connect

    with connect(server.url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
        ws.send(message)
        reply = json.loads(ws.recv(timeout=30))
        assert reply["type"] == "error", reply
        assert reply["data"]["code"] == code, reply
        assert says in reply["data"]["message"], reply
        # The same session still plays: reset and answer.
        ws.send(json.dumps({"type": "reset", "data": {"index": 1}}))
        assert json.loads(ws.recv(timeout=30))["type"] == "observation"
        ws.send(json.dumps({"type": "step", "data": {"text": "\\boxed{1}"}}))
        step = json.loads(ws.recv(timeout=30))
        assert step["type"] == "observation" and step["data"]["done"] is True
    with urllib.request.urlopen(f"{server.url}/health", timeout=10) as response:
        assert json.loads(response.read())["status"] == "healthy"


def test_openenv_generic_client_plays_an_episode(server: ThreadServer) -> None:
    from openenv import GenericEnvClient

    problem = SAMPLE[2]
    with GenericEnvClient(base_url=server.url).sync() as env:
        result = env.reset(problem_id=problem.id)
        assert problem.question[:40] in result.observation["observation"]
        code = f"```python\n{reference_code(problem)}\n```\n"
        result = env.step({"text": code})
        answer = read_reported_answer(result.observation["observation"])
        result = env.step({"text": f"\\boxed{{{answer}}}"})
        assert result.done and result.reward == 1.0
        assert result.observation["info"]["correct"] is True
        assert env.state()["problem_id"] == problem.id


def test_schema_and_metadata_describe_the_env(server: ThreadServer) -> None:
    with urllib.request.urlopen(f"{server.url}/schema", timeout=10) as response:
        schema = json.loads(response.read())
    assert set(schema["action"]["properties"]) >= {"text", "message"}
    assert set(schema["observation"]["properties"]) >= {"observation", "info", "reward", "done"}
    assert set(schema["state"]["properties"]) >= {"episode_id", "turn", "executions"}


def test_episodes_follow_one_another_on_one_session(server: ThreadServer) -> None:
    async def two_episodes() -> list[Any]:
        async with _client(server) as env:
            first = await env.reset(index=0, episode_id="ep-1")
            assert (await env.state()).episode_id == "ep-1"
            done = await env.step("\\boxed{0}")
            second = await env.reset(problem_id=SAMPLE[5].id, rendering="chat")
            state = await env.state()
            return [first, done, second, state]

    first, done, second, state = asyncio.run(two_episodes())
    assert first.observation.info["problem_id"] == SAMPLE[0].id
    assert done.done and done.reward == 0.0
    assert second.observation.info["rendering"] == "chat"
    assert second.observation.system_prompt
    assert state.problem_id == SAMPLE[5].id and state.turn == 0 and state.episode_id


def test_tools_rendering_over_the_server(server: ThreadServer) -> None:
    problem = SAMPLE[3]

    def call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ],
        }

    async def play() -> tuple[Any, Any, Any]:
        async with _client(server) as env:
            reset = await env.reset(problem_id=problem.id, rendering="tools")
            ran = await env.step(call("run_python", {"code": reference_code(problem)}, "c1"))
            answer = read_reported_answer(ran.observation.observation[0]["content"])
            final = await env.step(call("submit_answer", {"answer": answer}, "c2"))
            return reset, ran, final

    reset, ran, final = asyncio.run(play())
    assert {t["function"]["name"] for t in reset.observation.tools} == {
        "run_python",
        "submit_answer",
    }
    assert reset.observation.observation[0]["role"] == "user"
    assert ran.observation.observation[0]["role"] == "tool"
    assert ran.observation.observation[0]["tool_call_id"] == "c1"
    assert final.done and final.reward == 1.0


def test_http_reset_is_one_shot(server: ThreadServer) -> None:
    request = urllib.request.Request(
        f"{server.url}/reset",
        data=json.dumps({"problem_id": SAMPLE[4].id}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert body["observation"]["info"]["problem_id"] == SAMPLE[4].id


def test_or_env_serve_command_starts_a_server(tmp_path: Path) -> None:
    """`or-env serve --config FILE` with a flag and an override: the flag beats the file."""
    require_package("openenv", extra="serve", flag="OR_ENV_REQUIRE_SERVE")
    port = _free_port()
    config = tmp_path / "serve.yaml"
    config.write_text("server: {max_sessions: 5}\nsandbox: {kind: local}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "or_env.cli",
            "serve",
            "--config",
            str(config),
            "--allow-unisolated",
            f"server.port={port}",
            "--max-sessions",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "healthy"
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"or-env serve did not come up:\n{output[-3000:]}")
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/or_env/stats", timeout=5) as r:
            assert json.loads(r.read())["max_sessions"] == 2
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # The resolved config heads the log.
    output = process.stdout.read() if process.stdout else ""
    assert "or-env serve: resolved config" in output and f"port: {port}" in output, output


def test_serve_config_checks_its_values() -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        ServeConfig(max_sessions=0)
    with pytest.raises(ValueError, match="sandbox"):
        ServeConfig(sandbox="cloud")
    with pytest.raises(ValueError, match="rendering"):
        ServeConfig(rendering="html")
    assert ServeConfig().host == "127.0.0.1"
    assert ServeConfig(max_turns=3).env_kwargs()["max_turns"] == 3


def test_serve_config_from_environment_variables(tmp_path: Path) -> None:
    """The uvicorn app's config: OR_ENV_SERVE_<FIELD> variables, under OR_ENV_SERVE_CONFIG."""
    config = ServeConfig.from_env(
        {
            "OR_ENV_SERVE_MAX_SESSIONS": "5",
            "OR_ENV_SERVE_ALLOW_UNISOLATED": "true",
            "OR_ENV_SERVE_SESSION_TIMEOUT_S": "2.5",
            "OR_ENV_SERVE_SANDBOX": "local",
            "OR_ENV_SERVE_HOST": "0.0.0.0",
            "PATH": "/bin",
        }
    )
    assert (config.max_sessions, config.allow_unisolated, config.session_timeout_s) == (
        5,
        True,
        2.5,
    )
    assert (config.sandbox, config.host, config.port) == ("local", "0.0.0.0", 8000)
    file = tmp_path / "serve.yaml"
    file.write_text("server: {max_sessions: 9}\n")
    config = ServeConfig.from_env(
        {
            "OR_ENV_SERVE_CONFIG": str(file),
            "OR_ENV_SERVE_MAX_SESSIONS": "5",
            "OR_ENV_SERVE_PORT": "1",
        }
    )
    assert (config.max_sessions, config.port) == (9, 1)  # the file beats a variable


def test_missing_extra_names_the_pip_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['openenv'] = None\n"  # as if not installed
        "from or_env.errors import MissingExtraError\n"
        "try:\n"
        "    import or_env.integrations.openenv_server\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'or-env[serve]'" in out.stdout, out.stdout + out.stderr


def test_importing_the_integrations_loads_no_optional_package() -> None:
    code = (
        "import sys, json\n"
        "import or_env.integrations, or_env.integrations.serve\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"openenv", "fastapi", "uvicorn", "skyrl_gym", "verifiers", "pydantic"}
