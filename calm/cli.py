"""`or-env calm curate`: CALM data curation from two OpenAI-compatible endpoints.

Registered with the `or-env` command through the "or_env.cli" entry-point group; this module
imports nothing heavy at import time, because every `or-env` invocation loads it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agents.cli import (
    DEFAULT_MAX_TOKENS,
    EXIT_INTERRUPTED,
    add_env_arguments,
    add_problem_arguments,
    add_running_arguments,
    run_config_kwargs,
)
from or_env.cli import HelpFormatter, error, positive_int

EPILOG = """example:
  or-env calm curate \\
      --reasoner-base-url http://localhost:8000/v1 --reasoner-model Qwen/Qwen3-4B-Thinking-2507 \\
      --intervener-base-url http://localhost:8001/v1 --intervener-model deepseek-ai/DeepSeek-R1 \\
      --benchmarks nl4opt,mamo-easylp --samples 4 --concurrency 64 \\
      --tokenizer Qwen/Qwen3-4B-Thinking-2507 --out runs/calm

It writes episodes.jsonl, sft.parquet (verl multi-turn SFT), golden.jsonl (provenance),
report.md / report.json / flaw_types.png. Rerunning with the same --out resumes (finished
episodes are skipped, failed ones retried); the exports and the report always cover every
episode in the folder. Ctrl-C stops with exit status 130; the finished episodes stay.

Before the first episode both servers' /models are read: a server that does not answer or
does not serve the named model stops the run at once. Without --max-tokens, reasoner turns
are capped at 4096 tokens, or half the served context when that is shorter; explicit
values that cannot fit the context are refused. After 3 episodes in a row cannot reach a
server the run stops (rerun to resume).

--seed none sends no per-request seed to the reasoner (vLLM's CPU backend with chunked
prefill crashes on them); at temperature > 0 reruns then draw new samples. The judge
never gets a seed. --timeout stays at 30 s here (curation produces training data; see
`or-env eval --help` for the evaluation default)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `calm` command (action: `curate`) to the `or-env` parser."""
    from agents.run_folder import default_of
    from calm.curate import CurateConfig

    calm = subparsers.add_parser(
        "calm", help="CALM: intervener-guided data curation", formatter_class=HelpFormatter
    )
    actions = calm.add_subparsers(dest="calm_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "curate",
        help="run reasoner + intervener on problems; export golden SFT data and a report",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    reasoner = p.add_argument_group("reasoner (the model whose trajectories are curated)")
    reasoner.add_argument(
        "--reasoner-base-url", default="http://localhost:8000/v1", help="its API root"
    )
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
    reasoner.add_argument(
        "--max-tokens",
        type=positive_int,
        help=f"tokens per reasoner turn (default: {DEFAULT_MAX_TOKENS}, or half the "
        "server's context when that is shorter)",
    )
    reasoner.add_argument("--temperature", type=float, help="(default: the server's)")
    reasoner.add_argument("--top-p", type=float, help="(default: the server's)")
    reasoner.add_argument(
        "--reasoning",
        choices=["merge", "separate"],
        default="merge",
        help="a server's reasoning_content: merged into the action as <think>, or kept apart",
    )

    judge = p.add_argument_group("intervener (the judge that writes hints)")
    judge.add_argument(
        "--intervener-base-url", default="http://localhost:8001/v1", help="its API root"
    )
    judge.add_argument("--intervener-model", required=True, help="served model name")
    judge.add_argument(
        "--intervener-api-key-env", default="OPENAI_API_KEY", help="variable holding its API key"
    )
    judge.add_argument(
        "--intervener-max-tokens", type=positive_int, default=2048, help="tokens per judge reply"
    )
    judge.add_argument(
        "--intervener-temperature", type=float, default=0.0, help="the judge's temperature"
    )
    judge.add_argument(
        "--judge-attempts", type=positive_int, default=3, help="replies before 'no verdict'"
    )
    judge.add_argument(
        "--max-hint-chars", type=positive_int, default=400, help="longest hint accepted"
    )
    judge.add_argument(
        "--hide-answer", action="store_true", help="do not show the judge the answer"
    )
    judge.add_argument("--taxonomy", help="a JSON flaw taxonomy (default: the built-in seven)")

    what = p.add_argument_group("problems")
    source = what.add_mutually_exclusive_group(required=True)
    source.add_argument("--benchmarks", help="comma-separated, each NAME[@VERSION]")
    source.add_argument("--problems", help="a JSONL/JSON/CSV/parquet file of problems")
    add_problem_arguments(what, CurateConfig)

    env = p.add_argument_group("environment and CALM")
    add_env_arguments(env, CurateConfig)
    env.add_argument(
        "--max-interventions",
        type=positive_int,
        default=default_of(CurateConfig, "max_interventions"),
        help="hints per episode",
    )
    env.add_argument(
        "--trigger",
        choices=["end", "execution"],
        default=default_of(CurateConfig, "trigger"),
        help="when the judge reads the trajectory: when the episode ends, or after every execution",
    )
    env.add_argument(
        "--sft-layout",
        choices=["split", "rendered"],
        default=default_of(CurateConfig, "sft_layout"),
        help="split: outputs and hints as user messages, out of the loss",
    )

    run = p.add_argument_group("running")
    add_running_arguments(run, CurateConfig)
    p.set_defaults(func=cmd_curate)


def cmd_curate(args: argparse.Namespace) -> int:
    """Build the two clients, run the curation, print where everything went."""
    from agents.openai_policy import OpenAIPolicy
    from agents.policy import PolicyError
    from agents.retry import Backoff
    from agents.run_folder import interrupted_message, saved_episodes
    from agents.runner import RunAborted
    from calm.curate import CurateConfig, run_curate
    from calm.intervener import Intervener
    from calm.taxonomy import DEFAULT_TAXONOMY, load_taxonomy
    from calm.verdict import VerdictRules

    config = CurateConfig(
        **run_config_kwargs(args),
        benchmarks=[b for b in (args.benchmarks or "").split(",") if b.strip()],
        problems_path=args.problems,
        max_interventions=args.max_interventions,
        trigger=args.trigger,
        sft_layout=args.sft_layout,
        tokenizer=args.tokenizer,
    )
    backoff = Backoff(max_retries=args.max_retries)
    reasoner = OpenAIPolicy(
        args.reasoner_model,
        args.reasoner_base_url,
        api="completions" if args.completions else "chat",
        api_key=os.environ.get(args.reasoner_api_key_env),
        tokenizer=args.tokenizer,
        max_tokens=args.max_tokens or DEFAULT_MAX_TOKENS,
        temperature=args.temperature,
        top_p=args.top_p,
        seed_requests=args.seed is not None,
        reasoning=args.reasoning,
        request_timeout=args.request_timeout,
        backoff=backoff,
        max_connections=max(args.concurrency, 1),
        max_tokens_over_context="refuse" if args.max_tokens else "clamp",
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
    try:
        result = run_curate(reasoner, intervener, config)
    except KeyboardInterrupt:
        sys.stderr.write(interrupted_message(config.out_dir) + "\n")
        return EXIT_INTERRUPTED
    except RunAborted as exc:
        error(
            f"{exc}; {saved_episodes(config.out_dir)} episodes saved in {config.out_dir}, "
            "rerun the same command to resume once the servers answer"
        )
        return 1
    except PolicyError as exc:  # a server check before the first episode
        error(exc)
        return 2
    totals: dict[str, Any] = result.summary["totals"]
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
