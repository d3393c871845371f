"""Hostile programs sent through the environment end in a clear observation, and the
environment keeps working afterwards, on each sandbox backend.

(The sandboxes themselves are attacked far harder in test_redteam_sandbox.py; this checks
what the policy sees of an attack through `env.step`.)"""

from __future__ import annotations

import time

import pytest

from or_env import ORModelingEnv
from or_env.sandbox.local import LocalSandbox

TIMEOUT = 2.0

ATTACKS = [
    ("infinite loop", "while True:\n    pass", "TimeoutError"),
    ("print flood", "while True:\n    print('x' * 100)", "truncated"),
    (
        "fork bomb",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "TimeoutError",
    ),
    ("10 GB allocation", "block = bytearray(10 * 1024**3)\nprint(len(block))", "MemoryError"),
]


@pytest.fixture(
    scope="module",
    params=[pytest.param("docker", marks=pytest.mark.docker), "local"],
)
def env(request):
    if request.param == "docker":
        from or_env.sandbox.docker import DockerSandbox, docker_usable

        usable, why = docker_usable()
        if not usable:
            pytest.skip(f"Docker sandbox unusable: {why}")
        sandbox = DockerSandbox(workers=1)
    else:
        sandbox = LocalSandbox(workers=1)
    with sandbox:
        yield ORModelingEnv(
            [{"id": "p", "question": "What is 6 * 7?", "answer": 42}],
            sandbox=sandbox,
            timeout=TIMEOUT,
        )


@pytest.mark.parametrize(
    ("code", "expected"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_attack_is_an_observation_and_env_recovers(env, code: str, expected: str) -> None:
    env.reset(options={"index": 0})
    start = time.monotonic()
    observation, reward, terminated, truncated, info = env.step(f"```python\n{code}\n```\n")
    elapsed = time.monotonic() - start
    assert expected in observation
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["execution"]["sandbox_error"] is None
    assert elapsed < TIMEOUT + 5.0
    observation, *_ = env.step("```python\nprint(6 * 7)\n```\n")
    assert observation == "```output\n42\n```\n"
    _, reward, terminated, _, _ = env.step("\\boxed{42}")
    assert reward == 1.0 and terminated
