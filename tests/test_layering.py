"""Dependencies point one way: recipes -> calm -> agents -> or_env, and imports stay light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LAYERS = ("or_env", "agents", "calm", "recipes")


def _loaded_after(statement: str) -> set[str]:
    code = (
        f"import json, sys\n{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("import or_env", {"or_env"}),
        ("import or_env.sandbox.local, or_env.grading", {"or_env"}),
        ("import agents, agents.runner, agents.eval", {"or_env", "agents"}),
        ("import calm, calm.wrapper, calm.curate", {"or_env", "agents", "calm"}),
    ],
)
def test_imports_point_one_way(statement: str, allowed: set[str]) -> None:
    loaded = _loaded_after(statement) & set(LAYERS)
    assert loaded <= allowed, f"{statement!r} also loaded {sorted(loaded - allowed)}"


def test_importing_or_env_loads_no_ml_stack() -> None:
    heavy = {"torch", "transformers", "vllm", "verl", "ray", "datasets", "httpx", "matplotlib"}
    assert not _loaded_after("import or_env") & heavy
