"""GRPO on `ORModelingEnv` with TRL: `python -m recipes.trl.train --mode tools|inline ...`.

The recipe's own flags (dashes) choose the mode, the model, the problems and the env; every
`trl.GRPOConfig` field is a flag too (`--max_steps 2`, `--num_generations 8`, `--use_vllm`,
`--vllm_mode colocate`, ...; see `--help`). On CPU, with a tiny model, on the sample set:

    python -m recipes.trl.train --mode inline --benchmark sample --limit 2 --model DIR \
        --output_dir runs/trl-smoke --use_cpu --bf16 false --max_steps 2 \
        --num_generations 2 --per_device_train_batch_size 2 --max_completion_length 48

On GPUs, `recipes/trl/launch_gpu.sh` runs it under `accelerate launch` with vLLM.
`build_trainer` is the same wiring for Python callers (and the tests).
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from or_env.problems import DatasetError, Problem
from or_env.sandbox import Sandbox
from recipes.trl import MODES
from recipes.trl.data import build_dataset, load_source
from recipes.trl.environment import environment_factory
from recipes.trl.rollout import InlineRollout, env_reward

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install -e '.[trl]'"


def chat_template_text(name_or_path: str) -> str:
    """A chat template: a jinja file, or the name of one TRL bundles (e.g. "qwen3")."""
    path = Path(name_or_path)
    if path.suffix == ".jinja" or path.exists():
        return path.read_text(encoding="utf-8")
    bundled = importlib.resources.files("trl") / "chat_templates" / f"{name_or_path}.jinja"
    if not bundled.is_file():
        raise ValueError(
            f"no chat template {name_or_path!r}: give a .jinja file or a template TRL bundles "
            "(trl/chat_templates/, e.g. qwen3)"
        )
    return bundled.read_text(encoding="utf-8")


def build_trainer(
    mode: str,
    model: Any,
    problems: Sequence[Problem],
    args: Any,
    *,
    processing_class: Any = None,
    chat_template: str | None = None,
    sandbox: str | Sandbox = "auto",
    sandbox_options: Mapping[str, Any] | None = None,
    allow_unisolated: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
    reward_funcs: Sequence[Callable[..., list[float]]] = (),
    callbacks: Sequence[Any] | None = None,
) -> Any:
    """A `trl.GRPOTrainer` that plays `problems` in `mode` ("tools" or "inline").

    model: a path or hub id, or a loaded model; args: a `trl.GRPOConfig`; chat_template: a
    template to use instead of the tokenizer's (see `chat_template_text`; the tools mode
    needs one that renders tool calls). The dataset is built here from `problems` with
    `env_kwargs`, which the env gets too. The env's reward is the reward: `get_reward`
    (tools) or `env_reward` (inline); `reward_funcs` are added to it.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # both mechanisms are experimental
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    env_kwargs = dict(env_kwargs or {})
    if processing_class is None:
        name = model if isinstance(model, str) else model.config._name_or_path
        processing_class = AutoTokenizer.from_pretrained(name)
    if chat_template:
        processing_class.chat_template = chat_template_text(chat_template)
    dataset = build_dataset(problems, mode, env_kwargs)
    sandbox_settings = {
        "sandbox": sandbox,
        "sandbox_options": sandbox_options,
        "allow_unisolated": allow_unisolated,
    }
    if mode == "tools":
        from trl.chat_template_utils import supports_tool_calling

        if not supports_tool_calling(processing_class):
            raise ValueError(
                "the tokenizer's chat template cannot render tool calls, which the tools mode "
                "needs: pass chat_template (--chat-template), e.g. 'qwen3' for Qwen-family "
                "models"
            )
        if args.max_tool_calling_iterations is None:
            # The env stops reading calls after max_turns; more would only burn tokens.
            args.max_tool_calling_iterations = int(env_kwargs.get("max_turns", 12))
        return GRPOTrainer(
            model=model,
            reward_funcs=list(reward_funcs) or None,
            args=args,
            train_dataset=dataset,
            processing_class=processing_class,
            callbacks=list(callbacks or []) or None,
            environment_factory=environment_factory(problems, **sandbox_settings, **env_kwargs),
        )
    return GRPOTrainer(
        model=model,
        reward_funcs=[env_reward, *reward_funcs],
        args=args,
        train_dataset=dataset,
        processing_class=processing_class,
        callbacks=list(callbacks or []) or None,
        rollout_func=InlineRollout(problems, **sandbox_settings, **env_kwargs),
    )


def make_parser() -> Any:
    """The command line: the recipe's flags plus every `GRPOConfig` field."""
    from transformers import HfArgumentParser
    from trl import GRPOConfig

    parser = HfArgumentParser(
        GRPOConfig,
        prog="python -m recipes.trl.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recipe = parser.add_argument_group("or-env recipe")
    recipe.add_argument("--mode", choices=MODES, required=True, help="tools or inline")
    recipe.add_argument("--model", required=True, help="a model folder or hub id")
    recipe.add_argument(
        "--benchmark", help="a registered set (`or-env benchmarks`); default: sirl-rl-sample"
    )
    recipe.add_argument("--version", help="the benchmark's version (default: its default)")
    recipe.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    recipe.add_argument("--problems", help="a JSONL/JSON/CSV/parquet file of problems instead")
    recipe.add_argument("--limit", type=int, default=0, help="first N problems; 0: all")
    recipe.add_argument(
        "--split", default="train", help="warned about when an evaluation benchmark is trained on"
    )
    recipe.add_argument("--max-turns", type=int, help="env setting (default 12)")
    recipe.add_argument("--max-executions", type=int, help="env setting (default 10)")
    recipe.add_argument("--exec-timeout", type=float, help="seconds per execution (default 30)")
    recipe.add_argument("--tolerance", help="a tolerance preset (default: 'default')")
    recipe.add_argument(
        "--sandbox", default="auto", help="auto, local, docker or ray (one pool per process)"
    )
    recipe.add_argument(
        "--sandbox-workers", type=int, help="the sandbox pool's size (default: its own)"
    )
    recipe.add_argument(
        "--allow-unisolated",
        action="store_true",
        help="train with a local sandbox that has no namespaces (a policy could read ground "
        "truths; refused by default)",
    )
    recipe.add_argument(
        "--chat-template",
        help="a .jinja file or a template TRL bundles (e.g. qwen3), instead of the "
        "tokenizer's; the tools mode needs one that renders tool calls",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Train; print where the model went and the last logged rewards."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        parser = make_parser()
    except ImportError as exc:
        sys.stderr.write(f"error: {exc}; install TRL with {INSTALL_HINT}\n")
        return 2
    config, options = parser.parse_args_into_dataclasses(args=argv)
    try:
        problems = load_source(
            benchmark=options.benchmark,
            version=options.version,
            data_dir=options.data_dir,
            problems_path=options.problems,
            limit=options.limit,
            split=options.split,
        )
    except (DatasetError, ValueError, KeyError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    env_kwargs = {
        key: value
        for key, value in (
            ("max_turns", options.max_turns),
            ("max_executions", options.max_executions),
            ("timeout", options.exec_timeout),
            ("tolerance", options.tolerance),
        )
        if value is not None
    }
    sandbox_options = {}
    if options.sandbox_workers:
        sandbox_options["workers"] = options.sandbox_workers
    trainer = build_trainer(
        options.mode,
        options.model,
        problems,
        config,
        chat_template=options.chat_template,
        sandbox=options.sandbox,
        sandbox_options=sandbox_options,
        allow_unisolated=options.allow_unisolated,
        env_kwargs=env_kwargs,
    )
    trainer.train()
    if config.save_strategy != "no":
        trainer.save_model(config.output_dir)
    rewards = [
        round(entry["reward"], 4) for entry in trainer.state.log_history if "reward" in entry
    ]
    sys.stdout.write(
        f"trained {trainer.state.global_step} steps ({options.mode} mode, {len(problems)} "
        f"problems); reward per logged step: {rewards}; output: {config.output_dir}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
