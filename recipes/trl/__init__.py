"""TRL 1.16 integration: GRPO on `ORModelingEnv` with `trl.GRPOTrainer`, on CPU or GPUs.

Two ways to play the env, one per TRL multi-turn mechanism:

- `tools` (`environment.ORToolEnvironment`, TRL's `environment_factory`): the env's tools
  rendering; the model calls `run_python` / `submit_answer` in its chat template's native
  tool-call syntax and the reward is the env's, through `get_reward`.
- `inline` (`rollout.InlineRollout`, TRL's `rollout_func`): the env's native inline protocol
  (the STORM setting): generate until ```output, `env.step`, the output block appended to the
  same assistant turn; model tokens `env_mask` 1, observation tokens 0.

`data.build_dataset` makes the HF `Dataset` either path reads; `train` is the command line.
Nothing here imports trl at package import time.
"""

MODES = ("tools", "inline")
