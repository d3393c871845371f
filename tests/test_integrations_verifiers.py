"""verifiers v1: the `or-env-verifiers` taskset through verifiers' own loader and `vf-eval`.

verifiers 0.4 pins mcp==2.0.0, which the `serve` extra's OpenEnv refuses, so it lives in a
venv of its own (`.venv-verifiers`, or `OR_ENV_VERIFIERS_VENV`, made by
`.ci/verifiers_setup.sh`); these tests run it in subprocesses with this checkout on
PYTHONPATH. Without that venv they skip (OR_ENV_REQUIRE_VERIFIERS=1: fail).

`vf-eval` runs the tool-less `null` harness, a PEP 723 chat program that verifiers prepares
with `uv` (from the venv) on first use, against a scripted OpenAI-compatible endpoint that
answers with each problem's reference program and then its reported result.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.scripted_openai import ScriptedOpenAI

pytestmark = pytest.mark.verifiers

REPO = Path(__file__).resolve().parents[1]


def _venv() -> Path:
    venv = REPO / os.environ.get("OR_ENV_VERIFIERS_VENV", ".venv-verifiers")
    missing = [p for p in ("bin/python", "bin/vf-eval", "bin/uv") if not (venv / p).exists()]
    if missing:
        reason = (
            f"no verifiers venv at {venv} ({missing[0]} is missing): "
            "run `bash .ci/verifiers_setup.sh`"
        )
        if os.environ.get("OR_ENV_REQUIRE_VERIFIERS") == "1":
            pytest.fail(f"OR_ENV_REQUIRE_VERIFIERS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return venv


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",  # its uv, for the harness
        PYTHONPATH=str(REPO),  # this checkout's or_env and or_env_verifiers
        SCRIPTED_API_KEY="scripted",
    )
    return env


@pytest.fixture(scope="module")
def venv() -> Path:
    return _venv()


@pytest.fixture
def endpoint() -> Iterator[ScriptedOpenAI]:
    server = ScriptedOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


def test_taskset_loads_through_verifiers_loader(venv: Path) -> None:
    code = """
import json
from verifiers.v1.utils.loaders import (
    environment_class, load_environment, load_taskset, resolve_env_config, taskset_config_type,
)
config = taskset_config_type("or-env-verifiers").model_validate(
    {"id": "or-env-verifiers", "limit": 4, "sandbox": "local"}
)
tasks = list(load_taskset(config).load())
env = load_environment(resolve_env_config({"taskset": config.model_dump()}))
print(json.dumps({
    "config": type(config).__name__,
    "env": type(env).__name__,
    "env_class": environment_class("or-env-verifiers").__name__,
    "keys": [t.key for t in tasks],
    "prompt": tasks[0].data.prompt,
    "system_prompt": tasks[0].data.system_prompt,
    "fields": sorted(tasks[0].data.model_dump()),
}))
"""
    out = subprocess.run(
        [str(venv / "bin/python"), "-c", code],
        env=_env(venv),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["config"] == "ORTasksetConfig"
    assert loaded["env"] == loaded["env_class"] == "OREnv"
    assert loaded["keys"][0] == "sample:sample-001-production-mix" and len(loaded["keys"]) == 4
    assert "brewery" in loaded["prompt"] and loaded["system_prompt"]
    assert "answer" not in loaded["fields"]  # the env grades; no ground truth travels


def test_vf_eval_runs_episodes_against_a_scripted_endpoint(
    venv: Path, endpoint: ScriptedOpenAI, tmp_path: Path
) -> None:
    cmd = [
        str(venv / "bin/vf-eval"),
        "or-env-verifiers",
        "-n",
        "2",
        "-m",
        endpoint.model,
        "--client.base-url",
        endpoint.url,
        "--client.api-key-var",
        "SCRIPTED_API_KEY",
        "--env.agent.harness.id",
        "null",
        "--env.agent.runtime.type",
        "subprocess",
        "--env.taskset.sandbox",
        "local",
        "--no-push",
        "--no-rich",
        "-o",
        str(tmp_path),
    ]
    out = subprocess.run(
        cmd, env=_env(venv), cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    [traces_file] = tmp_path.glob("*/traces.jsonl")
    episodes = [json.loads(line) for line in traces_file.read_text().splitlines()]
    assert len(episodes) == 2
    for episode in episodes:
        assert episode["ok"], episode["errors"]
        [trace] = episode["traces"]
        assert trace["rewards"]["or_env"]["score"] == 1.0
        assert trace["metrics"] == {"correct": 1.0, "turns": 2.0, "executions": 1.0}
        assert trace["info"]["or_env_termination"] == "answered"
        roles = [node["message"]["role"] for node in trace["nodes"]]
        assert roles[-3:] == ["assistant", "user", "assistant"]  # code, output, answer
        assert "```output" in trace["nodes"][-2]["message"]["content"]
    assert len(endpoint.requests) == 4  # two model turns per episode
