"""The verl launch scripts' Hydra overrides, composed with verl's own trainer configs.

Each script runs for real with `python3` and `torchrun` on PATH replaced by a recorder that
writes its arguments down, so the overrides checked are exactly the ones the script would
pass (shell defaults, arithmetic and "$@" included). They are then composed in the ML venv
with the installed verl's `ppo_trainer` / `sft_trainer_engine` config (support module
`recipes_config_compose.py`): an unknown or misspelled key fails there as in the trainer,
and the trainer's GPU-free checks run too. The tests skip without the ML venv and fail
without it when OR_ENV_REQUIRE_VLLM=1.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from support.ml_venv import REPO, require_venv, subprocess_env

pytestmark = [pytest.mark.verl, pytest.mark.slow]

RECIPE = REPO / "recipes" / "verl"
COMPOSER = Path(__file__).with_name("support") / "recipes_config_compose.py"
# The scripts' knobs: cleared so their defaults are what gets checked.
SCRIPT_VARS = (
    "MODEL",
    "TRAIN",
    "VAL",
    "NNODES",
    "GPUS_PER_NODE",
    "PROMPT_LEN",
    "RESPONSE_LEN",
    "MAX_LEN",
    "OUT",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
)
RECORDER = (
    "import json, os, sys; "
    "open(os.environ['RECIPE_LAUNCH_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')"
)


def verl_venv() -> Path:
    venv = require_venv()
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hydra, verl.utils.config"],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        reason = f"verl and hydra do not import in {venv}: run `bash .ci/vllm_setup.sh`"
        if os.environ.get("OR_ENV_REQUIRE_VLLM") == "1":
            pytest.fail(f"OR_ENV_REQUIRE_VLLM=1 but {reason}\n{probe.stderr[-2000:]}")
        pytest.skip(reason)
    return venv


def launches(script: Path, tmp_path: Path, *args: str) -> list[list[str]]:
    """Every `python3` / `torchrun` command line `script` runs, recorded instead of run."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir(exist_ok=True)
    for name in ("python3", "torchrun"):
        fake = fake_bin / name
        fake.write_text(
            f'#!/usr/bin/env bash\nexec {shlex.quote(sys.executable)} -c "{RECORDER}" "$@"\n'
        )
        fake.chmod(0o755)
    log = tmp_path / "launches.jsonl"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    env.update(PATH=f"{fake_bin}{os.pathsep}{env['PATH']}", RECIPE_LAUNCH_LOG=str(log))
    result = subprocess.run(
        ["bash", str(script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in log.read_text().splitlines()]


def overrides_for(calls: list[list[str]], module: str) -> list[str]:
    """The arguments after `-m module` in the one call that launches `module`."""
    matching = [c for c in calls if module in c and c.index(module) > 0 and "-m" in c]
    assert len(matching) == 1, f"expected one launch of {module}, got {calls}"
    call = matching[0]
    assert call[call.index(module) - 1] == "-m", call
    return call[call.index(module) + 1 :]


def compose(venv: Path, config_name: str, overrides: list[str], tmp_path: Path):
    """(exit code, composed config or None, output) of verl's config with `overrides`."""
    given = tmp_path / f"{config_name}-overrides.json"
    given.write_text(json.dumps(overrides))
    out = tmp_path / f"{config_name}-composed.json"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(COMPOSER), config_name, str(given), str(out)],
        cwd=tmp_path,
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    composed = json.loads(out.read_text()) if result.returncode == 0 else None
    return result.returncode, composed, output


def assert_grpo_recipe(config: dict) -> None:
    """What run_grpo.sh promises, whoever calls it."""
    assert config["algorithm"]["adv_estimator"] == "grpo"
    rollout = config["actor_rollout_ref"]["rollout"]
    assert (rollout["name"], rollout["mode"]) == ("vllm", "async")
    assert rollout["agent"]["default_agent_loop"] == "or_env"
    reward_fn = config["reward"]["custom_reward_function"]
    assert Path(reward_fn["path"]) == RECIPE / "reward.py"
    assert reward_fn["name"] == "compute_score"
    assert config["data"]["return_raw_chat"] is True


def test_run_grpo_composes_with_ppo_trainer(tmp_path) -> None:
    venv = verl_venv()
    overrides = overrides_for(
        launches(RECIPE / "run_grpo.sh", tmp_path, "trainer.total_epochs=2"),
        "verl.trainer.main_ppo",
    )
    code, config, output = compose(venv, "ppo_trainer", overrides, tmp_path)
    assert code == 0, f"run_grpo.sh's overrides do not compose:\n{output}"
    assert "All configuration checks passed" in output

    assert_grpo_recipe(config)
    agent = config["actor_rollout_ref"]["rollout"]["agent"]
    assert Path(agent["agent_loop_config_path"]) == RECIPE / "config" / "agent_loop.yaml"
    # The paths that README's `python -m recipes.verl.data rl ... --out` commands write.
    assert config["data"]["train_files"] == "data/rl_train.parquet"
    assert config["data"]["val_files"] == "data/rl_val.parquet"
    assert config["actor_rollout_ref"]["actor"]["ppo_max_token_len_per_gpu"] == 2 * (2048 + 16384)
    assert (config["trainer"]["n_gpus_per_node"], config["trainer"]["nnodes"]) == (8, 1)
    # Extra arguments reach verl and win over the script's own.
    assert config["trainer"]["total_epochs"] == 2


def test_smoke_gpu_composes_with_ppo_trainer(tmp_path) -> None:
    venv = verl_venv()
    work = tmp_path / "work"
    work.mkdir()
    calls = launches(RECIPE / "smoke_gpu.sh", tmp_path, str(work))
    assert calls[2][:5] == ["-m", "recipes.verl.data", "rl", "--benchmark", "sample"]
    overrides = overrides_for(calls, "verl.trainer.main_ppo")
    code, config, output = compose(venv, "ppo_trainer", overrides, tmp_path)
    assert code == 0, f"smoke_gpu.sh's overrides do not compose:\n{output}"
    assert "All configuration checks passed" in output

    assert_grpo_recipe(config)
    agent = config["actor_rollout_ref"]["rollout"]["agent"]
    assert Path(agent["agent_loop_config_path"]) == work / "agent_loop.yaml"
    loop_config = (work / "agent_loop.yaml").read_text()
    assert "sandbox: local" in loop_config and "workers: 2" in loop_config
    assert config["data"]["train_files"] == str(work / "rl.parquet")
    assert config["data"]["val_files"] == str(work / "rl.parquet")
    assert config["actor_rollout_ref"]["model"]["path"] == str(work / "tiny")
    assert (config["trainer"]["n_gpus_per_node"], config["trainer"]["nnodes"]) == (1, 1)
    assert config["trainer"]["total_training_steps"] == 2


def test_run_sft_composes_with_sft_trainer_engine(tmp_path) -> None:
    venv = verl_venv()
    calls = launches(RECIPE / "run_sft.sh", tmp_path)
    overrides = overrides_for(calls, "verl.trainer.sft_trainer")
    assert calls[0][:3] == ["--standalone", "--nnodes=1", "--nproc_per_node=8"]
    code, config, output = compose(venv, "sft_trainer_engine", overrides, tmp_path)
    assert code == 0, f"run_sft.sh's overrides do not compose:\n{output}"

    # README's `python -m recipes.verl.data sft ... --out data/sft.parquet`.
    assert config["data"]["train_files"] == "data/sft.parquet"
    assert config["data"]["val_files"] is None
    assert config["data"]["messages_key"] == "messages"
    assert config["engine"]["strategy"] == "fsdp2"
    assert config["model"]["path"] == "Qwen/Qwen3-4B-Thinking-2507"


def test_a_misspelled_override_fails_composition(tmp_path) -> None:
    venv = verl_venv()
    overrides = overrides_for(
        launches(RECIPE / "run_grpo.sh", tmp_path, "actor_rollout_ref.rollout.nmae=vllm"),
        "verl.trainer.main_ppo",
    )
    code, config, output = compose(venv, "ppo_trainer", overrides, tmp_path)
    assert code != 0 and config is None
    assert "nmae" in output
