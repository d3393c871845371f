#!/usr/bin/env bash
# GRPO in the code-interpreter loop with verl 0.9.1 (verl.trainer.main_ppo), vLLM async rollout,
# the `or_env` agent loop (config/agent_loop.yaml) and the env's binary tolerance reward.
# Defaults: the paper's base model (Qwen3-4B-Thinking) or your SFT checkpoint (MODEL=...);
# the rest follows verl's canonical GRPO example (examples/grpo_trainer/run_qwen3_8b_fsdp.sh).
# Any extra argument is passed to verl as a Hydra override, e.g. trainer.total_epochs=2.
# Metrics go to the console; LOGGER='[console,wandb]' adds Weights & Biases (it needs
# `wandb login` or WANDB_API_KEY on the head node).
#
#   MODEL=ckpts/sft/global_step_300/huggingface TRAIN=data/rl_train.parquet VAL=data/rl_val.parquet \
#       NNODES=1 GPUS_PER_NODE=8 bash recipes/verl/run_grpo.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

MODEL="${MODEL:-Qwen/Qwen3-4B-Thinking-2507}"
TRAIN="${TRAIN:-data/rl_train.parquet}"
VAL="${VAL:-data/rl_val.parquet}"
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
PROMPT_LEN="${PROMPT_LEN:-2048}"
# Covers the model's tokens AND every execution output of the episode (they share the budget).
RESPONSE_LEN="${RESPONSE_LEN:-16384}"
OUT="${OUT:-ckpts/grpo}"
LOGGER="${LOGGER:-[console]}"

python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    data.train_files="$TRAIN" \
    data.val_files="$VAL" \
    data.train_batch_size=128 \
    data.max_prompt_length="$PROMPT_LEN" \
    data.max_response_length="$RESPONSE_LEN" \
    data.return_raw_chat=True \
    data.filter_overlong_prompts=True \
    data.truncation=error \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=32 \
    actor_rollout_ref.actor.use_dynamic_bsz=True \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$(( (PROMPT_LEN + RESPONSE_LEN) * 2 )) \
    actor_rollout_ref.actor.use_kl_loss=True \
    actor_rollout_ref.actor.kl_loss_coef=0.001 \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl \
    actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.actor.fsdp_config.param_offload=False \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=False \
    actor_rollout_ref.ref.fsdp_config.param_offload=True \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.mode=async \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.temperature=1.0 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.rollout.calculate_log_probs=True \
    actor_rollout_ref.rollout.val_kwargs.temperature=0.6 \
    actor_rollout_ref.rollout.val_kwargs.top_p=0.95 \
    actor_rollout_ref.rollout.val_kwargs.do_sample=True \
    actor_rollout_ref.rollout.val_kwargs.n=1 \
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$here/config/agent_loop.yaml" \
    actor_rollout_ref.rollout.agent.default_agent_loop=or_env \
    actor_rollout_ref.rollout.agent.num_workers=8 \
    reward.custom_reward_function.path="$here/reward.py" \
    reward.custom_reward_function.name=compute_score \
    trainer.critic_warmup=0 \
    trainer.logger="$LOGGER" \
    trainer.project_name=or_env \
    trainer.experiment_name=grpo \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.nnodes="$NNODES" \
    trainer.save_freq=20 \
    trainer.test_freq=10 \
    trainer.total_epochs=15 \
    trainer.default_local_dir="$OUT" \
    "$@"
