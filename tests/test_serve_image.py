"""The server image (serve_image/): `or-env serve` in a container, programs run by the local
backend inside it, in Linux namespaces.

Needs a Docker daemon and the image (`bash serve_image/build_offline.sh`, or the tag in
$OR_ENV_SERVE_IMAGE); the tests skip with the reason when either is missing, and fail
instead under OR_ENV_REQUIRE_SERVE_IMAGE=1 (CI builds the image first).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.extras import require_package

from or_env import load_problems
from or_env.reference import read_reported_answer, reference_code

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("OR_ENV_SERVE_IMAGE", "or-env-serve:0.1.0")
# What the README documents for `docker run`: the least found to give the local backend
# its namespaces in a container (uid 1000, no capability added). seccomp: Docker's default
# profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN; systempaths: the kernel
# refuses a fresh /proc in a user namespace while Docker's masks cover parts of /proc.
RUN_OPTIONS = ["--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"]
START_TIMEOUT_S = 120.0


def _docker(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _unavailable(reason: str) -> None:
    if os.environ.get("OR_ENV_REQUIRE_SERVE_IMAGE") == "1":
        pytest.fail(f"OR_ENV_REQUIRE_SERVE_IMAGE=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None:
        _unavailable("no docker command")
    if _docker("info", timeout=30).returncode != 0:
        _unavailable("the Docker daemon does not answer")
    if _docker("image", "inspect", IMAGE, timeout=30).returncode != 0:
        _unavailable(f"no image {IMAGE}: build it with `bash serve_image/build_offline.sh`")
    return IMAGE


def _wait_healthy(url: str, container: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if json.loads(response.read())["status"] == "healthy":
                    return
        except OSError:
            pass
        state = _docker("inspect", "--format", "{{.State.Running}}", container, timeout=30)
        if state.stdout.strip() != "true" or time.monotonic() > deadline:
            logs = _docker("logs", container, timeout=30)
            pytest.fail(
                f"the server container did not come up:\n{(logs.stdout + logs.stderr)[-3000:]}"
            )
        time.sleep(0.5)


@pytest.fixture(scope="module")
def server(image: str) -> Iterator[tuple[str, str]]:
    """The container as the README runs it, with the shipped config mounted: (id, url)."""
    started = _docker(
        "run",
        "--detach",
        "--publish",
        "127.0.0.1::8000",
        *RUN_OPTIONS,
        "--volume",
        f"{REPO / 'configs' / 'serve.yaml'}:/etc/or-env/serve.yaml:ro",
        image,
        "--config",
        "/etc/or-env/serve.yaml",
        "--max-sessions",
        "4",
        "sandbox.workers=2",
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        port = _docker("port", container, "8000/tcp", timeout=30).stdout.split(":")[-1].strip()
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, container)
        yield container, url
    finally:
        _docker("rm", "--force", container, timeout=60)


def test_the_container_plays_a_sample_episode(server: tuple[str, str]) -> None:
    require_package("openenv", extra="serve", flag="OR_ENV_REQUIRE_SERVE")
    from or_env.integrations.openenv_client import ORClient

    container, url = server
    problem = load_problems("sample")[0]
    with ORClient(base_url=url, message_timeout_s=120).sync() as env:
        result = env.reset(benchmark="sample", problem_id=problem.id)
        assert not result.done
        result = env.step(f"```python\n{reference_code(problem)}\n```\n")
        answer = read_reported_answer(result.observation.observation)
        assert answer is not None, result.observation.observation
        if not result.done:
            result = env.step(f"The answer is \\boxed{{{answer}}}.")
        assert result.done and result.reward == 1.0, result.observation.info
    # The flag beat the mounted file (max_sessions 64), the override set the pool.
    with urllib.request.urlopen(f"{url}/or_env/stats", timeout=10) as response:
        assert json.loads(response.read())["max_sessions"] == 4
    logs = _docker("logs", container, timeout=30)
    assert "workers: 2" in logs.stderr and "host: 0.0.0.0" in logs.stderr, logs.stderr[-2000:]


def test_the_container_sandbox_runs_programs_in_namespaces(server: tuple[str, str]) -> None:
    container, _ = server
    checked = _docker("exec", container, "or-env", "sandbox", "check", "--json", timeout=300)
    assert checked.returncode == 0, checked.stderr[-2000:]
    local = json.loads(checked.stdout)["backends"]["local"]
    isolation = local["isolation"]
    assert isolation["mode"].startswith("namespaces"), isolation
    assert isolation["network"] == "none"
    # The bundled problems (their ground truths) are hidden from programs.
    assert any(path.endswith("or_env/data") for path in isolation["hidden"]), isolation
    assert all(module["ok"] for module in local["modules"].values()), local["modules"]


def test_without_the_run_options_the_server_refuses_to_start(image: str) -> None:
    """Docker's defaults give no namespaces: the server says so and exits."""
    refused = _docker("run", "--rm", "--network", "none", image, "--max-sessions", "1")
    assert refused.returncode != 0
    assert "without Linux namespaces" in refused.stderr, refused.stderr[-2000:]
