#!/usr/bin/env bash
# GRPO on ORModelingEnv with TRL on GPUs: `accelerate launch -m recipes.trl.train` with vLLM.
#
#   MODEL=Qwen/Qwen3-4B MODE=inline NUM_PROCESSES=8 bash recipes/trl/launch_gpu.sh [train.py args]
#
# vLLM modes (VLLM_MODE):
#   colocate (default)  vLLM runs inside each training process, sharing its GPU
#                       (VLLM_GPU_MEMORY_UTILIZATION of it).
#   server              a separate vLLM server on other GPUs; start it first, e.g.
#                         CUDA_VISIBLE_DEVICES=7 trl vllm-serve --model "$MODEL"
#                       and train on the rest (NUM_PROCESSES=7, CUDA_VISIBLE_DEVICES=0,...,6).
#
# Env (defaults in brackets):
#   MODEL [Qwen/Qwen3-4B]  MODE [inline|tools]  BENCHMARK [sirl-rl-sample]  PROBLEMS (a file
#   instead)  OUT [ckpts/trl-grpo-$MODE]  NUM_PROCESSES [number of GPUs]  NUM_GENERATIONS [8]
#   PER_DEVICE_BATCH [8]  GRAD_ACCUM [1]  MAX_COMPLETION_LENGTH [12288: the whole episode,
#   observations included]  MAX_TURNS [8]  MAX_EXECUTIONS [8]  LR [1e-6]  MAX_STEPS [500]
#   SANDBOX [docker]  SANDBOX_WORKERS [16]  VLLM_MODE [colocate]
#   VLLM_GPU_MEMORY_UTILIZATION [0.3]  VLLM_SERVER_HOST [127.0.0.1]  VLLM_SERVER_PORT [8000]
#   CHAT_TEMPLATE (e.g. qwen3, for a tools-mode model whose template lacks tool calls)
#   ACCELERATE_CONFIG (an accelerate config file; default: multi-GPU DDP, bf16)
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL="${MODEL:-Qwen/Qwen3-4B}"
MODE="${MODE:-inline}"
OUT="${OUT:-ckpts/trl-grpo-$MODE}"
NUM_PROCESSES="${NUM_PROCESSES:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
VLLM_MODE="${VLLM_MODE:-colocate}"
[ "$NUM_PROCESSES" -ge 1 ] || { echo "launch_gpu.sh: no GPU found (NUM_PROCESSES=0)" >&2; exit 1; }

source_args=(--benchmark "${BENCHMARK:-sirl-rl-sample}")
[ -n "${PROBLEMS:-}" ] && source_args=(--problems "$PROBLEMS")
template_args=()
[ -n "${CHAT_TEMPLATE:-}" ] && template_args=(--chat-template "$CHAT_TEMPLATE")
vllm_args=(--use_vllm true --vllm_mode "$VLLM_MODE")
if [ "$VLLM_MODE" = colocate ]; then
    vllm_args+=(--vllm_gpu_memory_utilization "${VLLM_GPU_MEMORY_UTILIZATION:-0.3}")
else
    vllm_args+=(--vllm_server_host "${VLLM_SERVER_HOST:-127.0.0.1}"
        --vllm_server_port "${VLLM_SERVER_PORT:-8000}")
fi
launch_args=(--num_processes "$NUM_PROCESSES")
if [ -n "${ACCELERATE_CONFIG:-}" ]; then
    launch_args=(--config_file "$ACCELERATE_CONFIG" "${launch_args[@]}")
else
    launch_args+=(--multi_gpu --mixed_precision bf16)
    [ "$NUM_PROCESSES" -eq 1 ] && launch_args=(--num_processes 1 --mixed_precision bf16)
fi

export TRL_EXPERIMENTAL_SILENCE=1
exec accelerate launch "${launch_args[@]}" -m recipes.trl.train \
    --mode "$MODE" --model "$MODEL" "${source_args[@]}" "${template_args[@]}" \
    --max-turns "${MAX_TURNS:-8}" --max-executions "${MAX_EXECUTIONS:-8}" \
    --sandbox "${SANDBOX:-docker}" --sandbox-workers "${SANDBOX_WORKERS:-16}" \
    --output_dir "$OUT" --bf16 true \
    --num_generations "${NUM_GENERATIONS:-8}" \
    --per_device_train_batch_size "${PER_DEVICE_BATCH:-8}" \
    --gradient_accumulation_steps "${GRAD_ACCUM:-1}" \
    --max_completion_length "${MAX_COMPLETION_LENGTH:-12288}" \
    --learning_rate "${LR:-1e-6}" --max_steps "${MAX_STEPS:-500}" \
    --logging_steps 1 --save_steps 50 --report_to none \
    "${vllm_args[@]}" "$@"
