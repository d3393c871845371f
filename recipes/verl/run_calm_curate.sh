#!/usr/bin/env bash
# CALM curation at scale inside verl 0.9.1: the reasoner is verl's own vLLM rollout engine,
# playing every problem SAMPLES times with the `or_env_calm` agent loop (the env inside
# CALMWrapper, the judge behind INTERVENER_URL), and nothing is trained: verl's
# validation-only run (trainer.val_only=True with val_before_train=True; `fit` validates once
# and returns before the first update) with the problems as the validation set. verl dumps
# every trajectory, with its CALM record, to $OUT/dump/0.jsonl (trainer.validation_data_dir);
# `prepare-sft` then keeps the correct, judged-flawless ones for SFT and writes the report.
#
#   or-env recipes prepare-rl --agent-name or_env_calm --out data/calm_problems.parquet
#   vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507 --port 8001 ...      # the judge, elsewhere
#   INTERVENER_URL=http://judge-host:8001/v1 INTERVENER_MODEL=Qwen/Qwen3-235B-A22B-Instruct-2507 \
#       NNODES=1 GPUS_PER_NODE=8 bash recipes/verl/run_calm_curate.sh
#
# Extra arguments are Hydra overrides for verl (e.g. data.val_batch_size=512).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

MODEL="${MODEL:-Qwen/Qwen3-4B-Thinking-2507}"
PROBLEMS="${PROBLEMS:-data/calm_problems.parquet}"
OUT="${OUT:-runs/calm_verl}"
SFT_OUT="${SFT_OUT:-data/sft.parquet}"
SAMPLES="${SAMPLES:-4}"
TEMPERATURE="${TEMPERATURE:-0.6}"
TOP_P="${TOP_P:-0.95}"
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
PROMPT_LEN="${PROMPT_LEN:-2048}"
# Covers the model's tokens, every execution output AND every hint of the trajectory.
RESPONSE_LEN="${RESPONSE_LEN:-16384}"
INTERVENER_URL="${INTERVENER_URL:?set INTERVENER_URL, the judge's OpenAI-compatible API root}"
INTERVENER_MODEL="${INTERVENER_MODEL:?set INTERVENER_MODEL, the judge's served model name}"
# Judge requests in flight per rollout worker; the judge sees up to AGENT_WORKERS x this.
INTERVENER_CONCURRENCY="${INTERVENER_CONCURRENCY:-32}"
AGENT_WORKERS="${AGENT_WORKERS:-8}"
MAX_INTERVENTIONS="${MAX_INTERVENTIONS:-5}"
TRIGGER="${TRIGGER:-end}"
SANDBOX="${SANDBOX:-auto}"
LOGGER="${LOGGER:-[console]}"

# Checks that every row is played by or_env_calm; writes the loop config with the judge.
python3 -m recipes.verl.calm_dump prepare-run \
    --problems "$PROBLEMS" \
    --base "$here/config/agent_loop.yaml" \
    --out "$OUT/agent_loop.yaml" \
    --intervener-url "$INTERVENER_URL" \
    --intervener-model "$INTERVENER_MODEL" \
    --concurrency "$INTERVENER_CONCURRENCY" \
    --max-interventions "$MAX_INTERVENTIONS" \
    --trigger "$TRIGGER" \
    --sandbox "$SANDBOX"

# No update runs, so no reference model (use_kl_loss=False) and the actor's weights and
# optimizer stay offloaded: the GPUs go to vLLM. The actor's batch settings only satisfy
# verl's config checks. resume_mode=disable: curate with MODEL itself, never with a
# checkpoint found in default_local_dir.
python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    data.train_files="$PROBLEMS" \
    data.val_files="$PROBLEMS" \
    data.max_prompt_length="$PROMPT_LEN" \
    data.max_response_length="$RESPONSE_LEN" \
    data.return_raw_chat=True \
    data.filter_overlong_prompts=True \
    data.truncation=error \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.actor.ppo_mini_batch_size=32 \
    actor_rollout_ref.actor.use_dynamic_bsz=True \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$(( (PROMPT_LEN + RESPONSE_LEN) * 2 )) \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.actor.fsdp_config.param_offload=True \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=True \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.mode=async \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.8 \
    actor_rollout_ref.rollout.val_kwargs.n="$SAMPLES" \
    actor_rollout_ref.rollout.val_kwargs.do_sample=True \
    actor_rollout_ref.rollout.val_kwargs.temperature="$TEMPERATURE" \
    actor_rollout_ref.rollout.val_kwargs.top_p="$TOP_P" \
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$OUT/agent_loop.yaml" \
    actor_rollout_ref.rollout.agent.default_agent_loop=or_env_calm \
    actor_rollout_ref.rollout.agent.num_workers="$AGENT_WORKERS" \
    reward.custom_reward_function.path="$here/reward.py" \
    reward.custom_reward_function.name=compute_score \
    trainer.val_before_train=True \
    trainer.val_only=True \
    trainer.validation_data_dir="$OUT/dump" \
    trainer.resume_mode=disable \
    trainer.logger="$LOGGER" \
    trainer.project_name=or_env \
    trainer.experiment_name=calm_curate \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.nnodes="$NNODES" \
    trainer.default_local_dir="$OUT/ckpt" \
    "$@"

# Keep the correct, judged-flawless trajectories; the report goes next to the dump's run.
python3 -m recipes.verl.data sft "$OUT/dump" --out "$SFT_OUT" --report-dir "$OUT"
