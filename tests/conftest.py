"""Suite-wide settings.

CI sets OR_ENV_REQUIRE_DOCKER=1 after starting the daemon and building the image: then a
docker-marked test that would skip for lack of Docker fails instead, so a broken setup
cannot pass as a green run of skipped tests.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("OR_ENV_REQUIRE_DOCKER") != "1":
        return
    if not any(item.get_closest_marker("docker") for item in items):
        return
    from or_env.sandbox.docker import docker_usable

    usable, why = docker_usable()
    if not usable:
        raise pytest.UsageError(f"OR_ENV_REQUIRE_DOCKER=1 but Docker is unusable: {why}")
