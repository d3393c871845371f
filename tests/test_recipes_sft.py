"""verl's SFT trainer, two steps on CPU, on an SFT parquet made by `recipes.verl.data`.

The trainer (`verl.trainer.sft_trainer`, FSDP2 engine, the tiny random model) runs under
torchrun in the ML venv through the test-only CPU shim `support/verl_sft_cpu.py` (skipped
when the venv is missing, failing when OR_ENV_REQUIRE_VLLM=1). The data is a small JSONL of
multi-turn conversations (system, user, assistant, the code's output as a user turn, the
final assistant answer), converted as `python -m recipes.verl.data sft` does.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import pytest
from support.ml_venv import require_venv, subprocess_env, tiny_model_dir

from recipes.verl.data import convert_sft

pytestmark = [pytest.mark.verl, pytest.mark.slow]

SHIM = Path(__file__).with_name("support") / "verl_sft_cpu.py"
STEPS = 2
STEP_LINE = re.compile(r"^step:(\d+) - .*?train/loss:(\S+)", re.MULTILINE)


def verl_venv() -> Path:
    venv = require_venv()
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import verl.trainer.sft_trainer"],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        reason = f"verl's SFT trainer does not import in {venv}: run `bash .ci/vllm_setup.sh`"
        if os.environ.get("OR_ENV_REQUIRE_VLLM") == "1":
            pytest.fail(f"OR_ENV_REQUIRE_VLLM=1 but {reason}\n{probe.stderr[-2000:]}")
        pytest.skip(reason)
    return venv


def conversations(n: int) -> list[dict]:
    """CALM golden.jsonl-style records: a code turn, its output, then the answer."""
    records = []
    for i in range(n):
        messages = [
            {"role": "system", "content": "You are an operations research assistant."},
            {"role": "user", "content": f"Maximise x + {i} y subject to x + y <= {i + 2}."},
            {
                "role": "assistant",
                "content": f"```python\nprint(max(1, {i}) * {i + 2})\n```\n```output",
            },
            {"role": "user", "content": f"```output\n{max(1, i) * (i + 2)}\n```"},
            {
                "role": "assistant",
                "content": f"The optimal objective value is \\boxed{{{max(1, i) * (i + 2)}}}.",
            },
        ]
        records.append({"problem_id": f"toy-{i}", "benchmark": "toy", "sft_messages": messages})
    return records


def test_sft_trainer_two_steps_on_cpu(tmp_path) -> None:
    venv = verl_venv()
    model = tiny_model_dir(venv)
    source = tmp_path / "golden.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in conversations(8)))
    parquet = tmp_path / "sft.parquet"
    assert convert_sft(source, parquet) == 8
    checkpoints = tmp_path / "ckpt"
    env = subprocess_env(venv)
    # Select the FSDP engine class (registered for cuda); the shim keeps everything on CPU.
    env.update(VERL_ENGINE_DEVICE="cuda", VERL_ENGINE_VENDOR="nvidia", OMP_NUM_THREADS="1")
    command = [
        str(venv / "bin" / "torchrun"),
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=1",
        str(SHIM),
        f"data.train_files={parquet}",
        "data.val_files=null",
        "data.messages_key=messages",
        "data.train_batch_size=4",
        "data.micro_batch_size_per_gpu=2",
        "data.max_length=512",
        "data.num_workers=0",
        f"model.path={model}",
        "model.use_remove_padding=false",
        "+model.override_config.attn_implementation=sdpa",
        "engine=fsdp",
        "engine.strategy=fsdp2",
        "engine.use_torch_compile=false",
        "engine.dtype=float32",
        "trainer.device=cpu",
        "trainer.logger=['console']",
        f"trainer.total_training_steps={STEPS}",
        f"trainer.default_local_dir={checkpoints}",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,  # hydra writes its outputs/ folder here
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    assert result.returncode == 0, f"verl SFT failed:\n{output}"

    steps = [(int(step), float(loss)) for step, loss in STEP_LINE.findall(result.stdout)]
    assert [step for step, _ in steps] == list(range(1, STEPS + 1)), result.stdout[-3000:]
    assert all(math.isfinite(loss) and loss > 0 for _, loss in steps)
    assert (checkpoints / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    saved = checkpoints / f"global_step_{STEPS}"
    assert (saved / "model_world_size_1_rank_0.pt").stat().st_size > 0
    assert json.loads((saved / "huggingface" / "config.json").read_text())["model_type"] == "qwen2"
