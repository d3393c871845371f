"""`or-env eval`: evaluate a policy on OR benchmarks and print the papers' table.

Registered with the `or-env` command through the "or_env.cli" entry-point group; this module
imports nothing heavy at import time, because every `or-env` invocation loads it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("agents.cli")

POLICIES = ("openai", "replay", "vllm", "transformers")
# `--replay orlm`: the recorded ORLM-LLaMA-3-8B responses carried by the "orlm-hf" versions.
REPLAY_ALIASES = {"orlm": ("meta:en_math_model_coptpy_code", "ORLM-LLaMA-3-8B (replay)")}

EPILOG = """examples:
  # a model behind vLLM/SGLang `serve` (or any OpenAI-compatible server)
  or-env eval --policy openai --model Qwen/Qwen3-4B-Thinking-2507 \\
      --base-url http://localhost:8000/v1 --benchmarks nl4opt,mamo-easylp --samples 4 --out runs/q3

  # re-grade ORLM-LLaMA-3-8B's published responses (direct protocol, ORLM's tolerance)
  or-env eval --policy replay --replay orlm --benchmarks nl4opt,mamo-complexlp,industryor \\
      --version orlm-hf --protocol direct --direct-rule orlm --tolerance orlm --prompt orlm \\
      --out runs/orlm-replay

Rerunning a command with the same --out resumes it (finished episodes are skipped)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` sub-command to the `or-env` parser."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a policy on benchmarks (pass@k table, plot, per-episode JSONL)",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--policy", choices=POLICIES, default="openai")
    what.add_argument("--model", help="model name (openai) or path/name (vllm, transformers)")
    what.add_argument("--benchmarks", required=True, help="comma-separated, each NAME[@VERSION]")
    what.add_argument("--version", help="version for benchmarks given without one")
    what.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    what.add_argument("--limit", type=int, default=0, help="first N problems per benchmark")
    what.add_argument("--samples", type=int, default=1, help="episodes per problem (pass@k)")
    what.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    what.add_argument("--label", help="the row name in the table (default: the model)")

    env = p.add_argument_group("environment")
    env.add_argument("--protocol", choices=["native", "direct"], default="native")
    env.add_argument("--direct-rule", choices=["default", "orlm"], default="default")
    env.add_argument("--rendering", choices=["inline", "chat"], default="inline")
    env.add_argument(
        "--tolerance", default="default", help="a preset: default, strict, sirl, orlm, ..."
    )
    env.add_argument("--prompt", choices=["default", "orlm"], default="default")
    env.add_argument("--max-turns", type=int, default=12)
    env.add_argument("--max-executions", type=int, default=10)
    env.add_argument("--timeout", type=float, default=30.0, help="seconds per code execution")
    env.add_argument("--sandbox", choices=["auto", "local", "docker"], default="auto")
    env.add_argument("--sandbox-workers", type=int, help="sandbox pool size (default: per CPU)")

    run = p.add_argument_group("running")
    run.add_argument("--concurrency", type=int, default=64, help="episodes in flight")
    run.add_argument("--seed", type=int, default=0, help="base seed of the episodes")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    gen = p.add_argument_group("policy")
    gen.add_argument("--base-url", default="http://localhost:8000/v1", help="openai: API root")
    gen.add_argument("--completions", action="store_true", help="openai: /v1/completions")
    gen.add_argument("--tokenizer", help="chat template for --completions (name or path)")
    gen.add_argument("--replay", help="replay: a JSONL of turns, meta:FIELD, or 'orlm'")
    gen.add_argument("--max-tokens", type=int, default=4096)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--reasoning", choices=["merge", "separate"], default="merge")
    gen.add_argument("--request-timeout", type=float, default=600.0, help="seconds per request")
    gen.add_argument("--max-retries", type=int, default=6)
    p.set_defaults(func=cmd_eval)


def build_policy(args: argparse.Namespace, problems: list[Any]) -> Any:
    """The policy an `or-env eval` command line asks for."""
    if args.policy == "replay":
        from agents.replay import ReplayPolicy

        if not args.replay:
            raise ValueError("--policy replay needs --replay (a JSONL file, meta:FIELD or 'orlm')")
        source, label = REPLAY_ALIASES.get(args.replay, (args.replay, None))
        label = args.label or label
        if source.startswith("meta:"):
            field = source.removeprefix("meta:")
            return ReplayPolicy.from_problem_meta(problems, field, label=label)
        return ReplayPolicy.from_jsonl(source, label=label)
    if not args.model:
        raise ValueError(f"--policy {args.policy} needs --model")
    if args.policy == "openai":
        from agents.openai_policy import OpenAIPolicy
        from agents.retry import Backoff

        return OpenAIPolicy(
            args.model,
            args.base_url,
            api="completions" if args.completions else "chat",
            tokenizer=args.tokenizer,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            reasoning=args.reasoning,
            request_timeout=args.request_timeout,
            backoff=Backoff(max_retries=args.max_retries),
            max_connections=max(args.concurrency, 1),
        )
    sampling = {"max_tokens": args.max_tokens, "temperature": args.temperature, "top_p": args.top_p}
    if args.policy == "vllm":
        from agents.vllm_policy import VLLMPolicy

        return VLLMPolicy(args.model, **sampling)
    from agents.transformers_policy import TransformersPolicy

    return TransformersPolicy(args.model, **sampling)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the evaluation and print the table."""
    from agents.eval import EvalConfig, load_benchmarks, run_eval

    config = EvalConfig(
        benchmarks=[b for b in args.benchmarks.split(",") if b.strip()],
        out_dir=args.out,
        version=args.version,
        data_dir=args.data_dir,
        limit=args.limit,
        samples=args.samples,
        concurrency=args.concurrency,
        base_seed=args.seed,
        protocol=args.protocol,
        rendering=args.rendering,
        direct_rule=args.direct_rule,
        tolerance=args.tolerance,
        max_turns=args.max_turns,
        max_executions=args.max_executions,
        timeout=args.timeout,
        prompt=args.prompt,
        sandbox=args.sandbox,
        sandbox_workers=args.sandbox_workers,
        progress=not args.no_progress,
        label=args.label,
    )
    from agents.templating import MissingPackageError

    problems = load_benchmarks(config)
    try:
        policy = build_policy(args, problems)
    except MissingPackageError as exc:
        sys.stdout.write(f"error: {exc}\n")
        return 2
    result = run_eval(policy, config, problems)
    out = sys.stdout
    out.write("\n" + result.table + "\n\n")
    for score in result.scores:
        reasons = ", ".join(f"{k} {v}" for k, v in score.failure_reasons.items()) or "-"
        out.write(
            f"{score.benchmark}: {score.problems} problems x {score.samples} samples, "
            f"mean turns {score.mean_turns:.2f}, executions {score.mean_executions:.2f}, "
            f"errors {score.errors}; failures: {reasons}\n"
        )
    out.write("\n" + "\n".join(f"{k}: {v}" for k, v in result.paths.items()) + "\n")
    return 1 if any(s.errors for s in result.scores) else 0
