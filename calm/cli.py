"""`or-env calm curate`: CALM data curation from two OpenAI-compatible endpoints.

Registered with the `or-env` command through the "or_env.cli" entry-point group; this module
imports nothing heavy at import time, because every `or-env` invocation loads it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EPILOG = """example:
  or-env calm curate \\
      --reasoner-base-url http://localhost:8000/v1 --reasoner-model Qwen/Qwen3-4B-Thinking-2507 \\
      --intervener-base-url http://localhost:8001/v1 --intervener-model deepseek-ai/DeepSeek-R1 \\
      --benchmarks nl4opt,mamo-easylp --samples 4 --concurrency 64 \\
      --tokenizer Qwen/Qwen3-4B-Thinking-2507 --out runs/calm

It writes episodes.jsonl, sft.parquet (verl multi-turn SFT), golden.jsonl (provenance),
report.md / report.json / flaw_types.png. Rerunning with the same --out resumes."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `calm` command (action: `curate`) to the `or-env` parser."""
    calm = subparsers.add_parser("calm", help="CALM: intervener-guided data curation")
    actions = calm.add_subparsers(dest="calm_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "curate",
        help="run reasoner + intervener on problems; export golden SFT data and a report",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reasoner = p.add_argument_group("reasoner (the model whose trajectories are curated)")
    reasoner.add_argument("--reasoner-base-url", default="http://localhost:8000/v1")
    reasoner.add_argument("--reasoner-model", required=True, help="served model name")
    reasoner.add_argument(
        "--reasoner-api-key-env", default="OPENAI_API_KEY", help="variable holding its API key"
    )
    reasoner.add_argument("--completions", action="store_true", help="use /v1/completions")
    reasoner.add_argument(
        "--tokenizer",
        help="the reasoner's tokenizer (name or path): chat template for --completions, and "
        "the unit of the hint token share (default: characters)",
    )
    reasoner.add_argument("--max-tokens", type=int, default=4096)
    reasoner.add_argument("--temperature", type=float)
    reasoner.add_argument("--top-p", type=float)
    reasoner.add_argument("--reasoning", choices=["merge", "separate"], default="merge")

    judge = p.add_argument_group("intervener (the judge that writes hints)")
    judge.add_argument("--intervener-base-url", default="http://localhost:8001/v1")
    judge.add_argument("--intervener-model", required=True, help="served model name")
    judge.add_argument("--intervener-api-key-env", default="OPENAI_API_KEY")
    judge.add_argument("--intervener-max-tokens", type=int, default=2048)
    judge.add_argument("--intervener-temperature", type=float, default=0.0)
    judge.add_argument("--judge-attempts", type=int, default=3, help="replies before 'no verdict'")
    judge.add_argument("--max-hint-chars", type=int, default=400)
    judge.add_argument(
        "--hide-answer", action="store_true", help="do not show the judge the answer"
    )
    judge.add_argument("--taxonomy", help="a JSON flaw taxonomy (default: the built-in seven)")

    what = p.add_argument_group("problems")
    source = what.add_mutually_exclusive_group(required=True)
    source.add_argument("--benchmarks", help="comma-separated, each NAME[@VERSION]")
    source.add_argument("--problems", help="a JSONL/JSON/CSV/parquet file of problems")
    what.add_argument("--version", help="version for benchmarks given without one")
    what.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    what.add_argument("--limit", type=int, default=0, help="first N problems per benchmark")
    what.add_argument("--samples", type=int, default=1, help="episodes per problem")
    what.add_argument("--out", required=True, type=Path, help="output folder (resumable)")

    env = p.add_argument_group("environment and CALM")
    env.add_argument("--rendering", choices=["inline", "chat"], default="inline")
    env.add_argument("--tolerance", default="default", help="a grading preset")
    env.add_argument("--max-turns", type=int, default=12)
    env.add_argument("--max-executions", type=int, default=10)
    env.add_argument("--timeout", type=float, default=30.0, help="seconds per code execution")
    env.add_argument("--sandbox", choices=["auto", "local", "docker"], default="auto")
    env.add_argument("--sandbox-workers", type=int, help="sandbox pool size (default: per CPU)")
    env.add_argument("--max-interventions", type=int, default=5)
    env.add_argument("--trigger", choices=["end", "execution"], default="end")
    env.add_argument(
        "--sft-layout",
        choices=["split", "rendered"],
        default="split",
        help="split: outputs and hints as user messages, out of the loss (default)",
    )

    run = p.add_argument_group("running")
    run.add_argument("--concurrency", type=int, default=16, help="episodes in flight")
    run.add_argument("--seed", type=int, default=0, help="base seed of the episodes")
    run.add_argument("--request-timeout", type=float, default=600.0, help="seconds per request")
    run.add_argument("--max-retries", type=int, default=6, help="HTTP retries per request")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_curate)


def cmd_curate(args: argparse.Namespace) -> int:
    """Build the two clients, run the curation, print where everything went."""
    from agents.openai_policy import OpenAIPolicy
    from agents.retry import Backoff
    from calm.curate import CurateConfig, run_curate
    from calm.intervener import Intervener
    from calm.taxonomy import DEFAULT_TAXONOMY, load_taxonomy
    from calm.verdict import VerdictRules

    config = CurateConfig(
        out_dir=args.out,
        benchmarks=[b for b in (args.benchmarks or "").split(",") if b.strip()],
        problems_path=args.problems,
        version=args.version,
        data_dir=args.data_dir,
        limit=args.limit,
        samples=args.samples,
        concurrency=args.concurrency,
        base_seed=args.seed,
        rendering=args.rendering,
        tolerance=args.tolerance,
        max_turns=args.max_turns,
        max_executions=args.max_executions,
        timeout=args.timeout,
        sandbox=args.sandbox,
        sandbox_workers=args.sandbox_workers,
        max_interventions=args.max_interventions,
        trigger=args.trigger,
        sft_layout=args.sft_layout,
        tokenizer=args.tokenizer,
        progress=not args.no_progress,
    )
    backoff = Backoff(max_retries=args.max_retries)
    reasoner = OpenAIPolicy(
        args.reasoner_model,
        args.reasoner_base_url,
        api="completions" if args.completions else "chat",
        api_key=os.environ.get(args.reasoner_api_key_env),
        tokenizer=args.tokenizer,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        reasoning=args.reasoning,
        request_timeout=args.request_timeout,
        backoff=backoff,
        max_connections=max(args.concurrency, 1),
    )
    intervener = Intervener(
        args.intervener_model,
        args.intervener_base_url,
        api_key=os.environ.get(args.intervener_api_key_env),
        taxonomy=load_taxonomy(args.taxonomy) if args.taxonomy else DEFAULT_TAXONOMY,
        rules=VerdictRules(max_hint_chars=args.max_hint_chars),
        max_attempts=args.judge_attempts,
        show_answer=not args.hide_answer,
        max_tokens=args.intervener_max_tokens,
        temperature=args.intervener_temperature,
        request_timeout=args.request_timeout,
        backoff=backoff,
        max_connections=max(args.concurrency, 1),
    )
    result = run_curate(reasoner, intervener, config)
    totals = result.summary["totals"]
    share = totals["hint_share_kept"]
    shown = "-" if share is None else f"{100 * share:.2f}%"
    out = sys.stdout
    out.write(
        f"\n{totals['problems']} problems, {totals['episodes']} episodes ({totals['errors']} "
        f"errors): first-try correct {totals['first_try_correct']}, final correct "
        f"{totals['final_correct']}, corrected {totals['corrected']}, kept {totals['kept']} "
        f"({totals['kept_problems']} problems); hint share of kept trajectories {shown} "
        f"({result.summary['unit_label']})\n\n"
    )
    out.write("\n".join(f"{k}: {v}" for k, v in result.paths.items()) + "\n")
    return 1 if totals["errors"] else 0
