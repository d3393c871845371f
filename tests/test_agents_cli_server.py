"""`or-env eval --policy openai` against servers on 127.0.0.1: a dead address, and the
scripted OpenAI-compatible server of test_agents_openai (real sockets, requests validated
as vLLM validates them; its `/v1/models` lists `max_model_len` as vLLM does)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_agents_openai import MODEL, ScriptedOpenAIServer, scripted_solver

from or_env.cli import main


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer(scripted_solver, max_model_len=2048).start()
    yield server
    server.stop()


def dead_url() -> str:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def eval_args(base_url: str, out: Path, *extra: str, model: str = MODEL) -> list[str]:
    return [
        "eval",
        "--policy",
        "openai",
        "--model",
        model,
        "--base-url",
        base_url,
        "--benchmarks",
        "sample",
        "--limit",
        "2",
        "--max-turns",
        "3",
        "--sandbox",
        "local",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_a_dead_base_url_fails_at_once_with_one_message(tmp_path: Path) -> None:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "or_env.cli", *eval_args(dead_url(), tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the model server at")
    assert done.stdout == ""
    assert elapsed < 30  # the process start and imports; no per-episode back-off
    assert not (tmp_path / "run" / "episodes.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "model", "message"),
    [
        ((), "other-model", "does not serve model 'other-model'; it serves 'scripted-model'"),
        (("--max-tokens", "4096"), MODEL, "max_tokens 4096 cannot fit the context"),
        (("--max-tokens", "2048"), MODEL, "(e.g. 1024), or serve the model with a longer"),
    ],
)
def test_server_checks_refuse_a_run_that_cannot_work(
    server, tmp_path: Path, capsys, extra, model, message
) -> None:
    assert main(eval_args(server.base_url, tmp_path / "run", *extra, model=model)) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("error: ") and message in printed.err
    assert server.requests == []  # not one episode was started


@pytest.mark.parametrize(
    ("extra", "max_tokens"),
    [((), 1024), (("--max-tokens", "512"), 512)],
)
def test_default_max_tokens_shrink_to_fit_a_short_context(
    server, tmp_path: Path, extra, max_tokens: int
) -> None:
    assert main(eval_args(server.base_url, tmp_path / "run", *extra)) == 0
    assert server.requests and {b["max_tokens"] for _, b in server.requests} == {max_tokens}


@pytest.mark.parametrize(("seed", "sent"), [("7", True), ("none", False), ("NONE", False)])
def test_seed_none_sends_no_request_seed(server, tmp_path: Path, seed: str, sent: bool) -> None:
    out = tmp_path / "run"
    assert main(eval_args(server.base_url, out, "--seed", seed)) == 0
    assert all(("seed" in body) is sent for _, body in server.requests)
    config = json.loads((out / "run_config.json").read_text())
    assert config["policy"]["seed_requests"] is sent
    assert config["base_seed"] == (7 if sent else 0)


def test_server_going_away_mid_run_stops_the_run(server, tmp_path: Path, capsys) -> None:
    """Two episodes finish, then every request fails at the connection: the run stops after
    three episodes in a row could not reach the server, and says how to resume."""
    out = tmp_path / "run"
    args = eval_args(server.base_url, out, "--concurrency", "1", "--max-retries", "1")
    args[args.index("--limit") + 1] = "8"
    answered = 0
    original = server.handle

    def handle_then_die(path, body):
        nonlocal answered
        if "continue_final_message" not in body:
            answered += 1
        if answered > 2:  # from the third episode on, the server is gone
            server._httpd.server_close()
        return original(path, body)

    server.handle = handle_then_die  # type: ignore[method-assign]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error: stopped after 3 episodes in a row could not reach the model server" in err
    assert "episodes saved in" in err and "rerun the same command to resume" in err
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records][:2] == ["ok", "ok"]
