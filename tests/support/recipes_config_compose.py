"""Composes one of verl's trainer configs with a recipe's Hydra overrides (runs in the ML venv).

    python recipes_config_compose.py CONFIG_NAME OVERRIDES.json OUT.json

CONFIG_NAME is `ppo_trainer` or `sft_trainer_engine`, read from the installed verl's
`trainer/config` folder, so a misspelled or unknown key fails here as it would in the
trainer. The checks the trainers run before they need a GPU run too: `validate_config` for
GRPO (what `verl.trainer.main_ppo.main` calls first), the dataclass conversions of the SFT
trainer's engine, optimizer, checkpoint and profiler sections for SFT. The model section is
left out of those: turning it into a dataclass loads the model's files. The composed config,
resolved, is written to OUT.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import verl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf


def compose_config(config_name: str, overrides: list[str]):
    """verl's own config `config_name` with `overrides`, as its `@hydra.main` would compose it."""
    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(config_name=config_name, overrides=overrides)


def validate(config_name: str, config) -> None:
    """The trainer's own checks that run without a GPU; raises on a bad config."""
    if config_name == "ppo_trainer":
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import validate_config

        validate_config(
            config=config,
            use_reference_policy=need_reference_policy(config),
            use_critic=need_critic(config),
        )
    elif config_name == "sft_trainer_engine":
        from verl.utils.config import omega_conf_to_dataclass

        for section in ("engine", "optim", "checkpoint", "profiler"):
            omega_conf_to_dataclass(config[section])
    else:
        raise ValueError(f"unknown config {config_name!r}: use ppo_trainer or sft_trainer_engine")


def main(argv: list[str]) -> int:
    config_name, overrides_file, out_file = argv
    overrides = json.loads(Path(overrides_file).read_text())
    config = compose_config(config_name, overrides)
    validate(config_name, config)
    resolved = OmegaConf.to_container(config, resolve=True)
    Path(out_file).write_text(json.dumps(resolved, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
