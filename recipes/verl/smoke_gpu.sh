#!/usr/bin/env bash
# Two GRPO steps with a tiny random Qwen2 model on ONE GPU: checks that the recipe runs end to
# end (Ray, vLLM async rollout, the or_env agent loop with the local sandbox, reward, update).
# Needs verl[vllm]==0.9.1 installed, this checkout importable and one CUDA GPU.
#   bash recipes/verl/smoke_gpu.sh [WORKDIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${1:-$(mktemp -d)}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"

python3 - "$work" "$repo" <<'PY'
import sys
from pathlib import Path

sys.path.insert(0, str(Path(sys.argv[2]) / "tests"))
from support.ml_venv import tokenizer_corpus

work = Path(sys.argv[1])
(work / "corpus.txt").write_text(tokenizer_corpus())
PY
python3 "$repo/tests/support/tiny_model.py" "$work/corpus.txt" "$work/tiny"
python3 -m recipes.verl.data rl --benchmark sample --out "$work/rl.parquet" --max-turns 3
sed -e 's/sandbox: auto/sandbox: local/' -e 's/workers: 8/workers: 2/' \
    "$here/config/agent_loop.yaml" >"$work/agent_loop.yaml"

MODEL="$work/tiny" TRAIN="$work/rl.parquet" VAL="$work/rl.parquet" NNODES=1 GPUS_PER_NODE=1 \
PROMPT_LEN=1024 RESPONSE_LEN=1024 OUT="$work/ckpt" \
bash "$here/run_grpo.sh" \
    data.train_batch_size=4 \
    actor_rollout_ref.actor.ppo_mini_batch_size=4 \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=8192 \
    actor_rollout_ref.model.use_remove_padding=False \
    actor_rollout_ref.rollout.n=2 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.3 \
    actor_rollout_ref.rollout.agent.num_workers=1 \
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$work/agent_loop.yaml" \
    reward.num_workers=1 \
    trainer.logger='["console"]' \
    trainer.val_before_train=False \
    trainer.test_freq=-1 \
    trainer.save_freq=-1 \
    trainer.total_training_steps=2
echo "smoke_gpu: 2 GRPO steps finished; work dir $work"
