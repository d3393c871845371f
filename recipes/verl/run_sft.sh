#!/usr/bin/env bash
# SFT on CALM data with verl 0.9.1 (verl.trainer.sft_trainer, FSDP2), multi-turn `messages`.
# Make the parquet first: python -m recipes.verl.data sft runs/calm/golden.jsonl --out data/sft.parquet
# Extra arguments are Hydra overrides, e.g. trainer.total_epochs=2.
#
#   TRAIN=data/sft.parquet VAL=data/sft_val.parquet NNODES=1 GPUS_PER_NODE=8 bash recipes/verl/run_sft.sh
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen3-4B-Thinking-2507}"
TRAIN="${TRAIN:-data/sft.parquet}"
VAL="${VAL:-null}"
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
MAX_LEN="${MAX_LEN:-16384}"
OUT="${OUT:-ckpts/sft}"
# Metrics go to the console; LOGGER='[console,wandb]' adds Weights & Biases (it needs
# WANDB_API_KEY or `wandb login`).
LOGGER="${LOGGER:-[console]}"
# Multi-node: set NODE_RANK, MASTER_ADDR and MASTER_PORT on every node (see README.md).
rdzv=(--standalone)
if [ "$NNODES" -gt 1 ]; then
    rdzv=(--node_rank="${NODE_RANK:?}" --master_addr="${MASTER_ADDR:?}" --master_port="${MASTER_PORT:-29500}")
fi

torchrun "${rdzv[@]}" --nnodes="$NNODES" --nproc_per_node="$GPUS_PER_NODE" \
    -m verl.trainer.sft_trainer \
    data.train_files="$TRAIN" \
    data.val_files="$VAL" \
    data.messages_key=messages \
    data.train_batch_size=64 \
    data.micro_batch_size_per_gpu=2 \
    data.max_length="$MAX_LEN" \
    data.truncation=error \
    data.use_dynamic_bsz=True \
    data.max_token_len_per_gpu="$MAX_LEN" \
    data.ignore_input_ids_mismatch=True \
    model.path="$MODEL" \
    model.use_remove_padding=True \
    model.enable_gradient_checkpointing=True \
    engine=fsdp \
    engine.strategy=fsdp2 \
    optim.lr=1e-5 \
    trainer.total_epochs=3 \
    trainer.logger="$LOGGER" \
    trainer.project_name=or_env \
    trainer.experiment_name=sft \
    trainer.default_local_dir="$OUT" \
    "$@"
