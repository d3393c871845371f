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
    add_config_arguments,
    add_env_arguments,
    add_problem_arguments,
    add_running_arguments,
    comma_list,
    config_option,
    refuse_other_config,
    resolve_run_config,
)
from or_env.cli import HelpFormatter, error, positive_int

EPILOG = """example:
  or-env calm curate \\
      --reasoner-base-url http://localhost:8000/v1 --reasoner-model Qwen/Qwen3-4B-Thinking-2507 \\
      --intervener-base-url http://localhost:8001/v1 --intervener-model deepseek-ai/DeepSeek-R1 \\
      --benchmarks nl4opt,mamo-easylp --samples 4 --concurrency 64 \\
      --tokenizer Qwen/Qwen3-4B-Thinking-2507 --out runs/calm

  # the same from a run config (configs/calm-curate.yaml), two keys overridden
  or-env calm curate --config configs/calm-curate.yaml intervener.model=my-judge \\
      run.out=runs/calm-2

run configs (--config FILE.yaml, KEY=VALUE overrides):
  Every option is also a key of the run config, in sections: reasoner (--reasoner-model is
  reasoner.model, --reasoner-base-url, --completions, --tokenizer, --max-tokens,
  --temperature, ...), intervener (--intervener-model is intervener.model,
  --judge-attempts is intervener.attempts, --hide-answer is intervener.show_answer=false,
  --max-hint-chars, --taxonomy, ...), problems (--benchmarks, --problems is problems.file,
  --version, --data-dir, --limit, --samples), env (--rendering, --tolerance, --max-turns,
  --max-executions, --timeout), calm (--max-interventions, --trigger, --sft-layout),
  sandbox (kind, workers) and run (--out, --concurrency, --seed, --no-progress,
  --request-timeout, --max-retries). A key is set by, lowest first: its default < the
  --config file < its flag given on the command line < a KEY=VALUE override. Mistakes are
  errors naming the key. The resolved config is saved as config.yaml in the run
  folder; a rerun with a different one is refused, naming each key that differs (problems.*,
  sandbox.*, the servers' base_url and api_key_env, calm.sft_layout and run.out,
  concurrency, progress, request_timeout, max_retries may differ).

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
    from calm.curate import CurateCommandConfig as schema

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
    config_option(reasoner, schema, "reasoner.base_url", "--reasoner-base-url", help="its API root")
    config_option(
        reasoner, schema, "reasoner.model", "--reasoner-model", help="served model name (required)"
    )
    config_option(
        reasoner,
        schema,
        "reasoner.api_key_env",
        "--reasoner-api-key-env",
        help="variable holding its API key",
    )
    config_option(
        reasoner,
        schema,
        "reasoner.completions",
        "--completions",
        action="store_true",
        help="use /v1/completions",
    )
    config_option(
        reasoner,
        schema,
        "reasoner.tokenizer",
        "--tokenizer",
        help="the reasoner's tokenizer (name or path): chat template for --completions, and "
        "the unit of the hint token share (default: characters)",
    )
    config_option(
        reasoner,
        schema,
        "reasoner.max_tokens",
        "--max-tokens",
        type=positive_int,
        help=f"tokens per reasoner turn (default: {DEFAULT_MAX_TOKENS}, or half the "
        "server's context when that is shorter)",
    )
    config_option(
        reasoner,
        schema,
        "reasoner.temperature",
        "--temperature",
        type=float,
        help="(default: the server's)",
    )
    config_option(
        reasoner, schema, "reasoner.top_p", "--top-p", type=float, help="(default: the server's)"
    )
    config_option(
        reasoner,
        schema,
        "reasoner.reasoning",
        "--reasoning",
        help="a server's reasoning_content: merged into the action as <think>, or kept apart",
    )

    judge = p.add_argument_group("intervener (the judge that writes hints)")
    config_option(
        judge, schema, "intervener.base_url", "--intervener-base-url", help="its API root"
    )
    config_option(
        judge,
        schema,
        "intervener.model",
        "--intervener-model",
        help="served model name (required)",
    )
    config_option(
        judge,
        schema,
        "intervener.api_key_env",
        "--intervener-api-key-env",
        help="variable holding its API key",
    )
    config_option(
        judge,
        schema,
        "intervener.max_tokens",
        "--intervener-max-tokens",
        type=positive_int,
        help="tokens per judge reply",
    )
    config_option(
        judge,
        schema,
        "intervener.temperature",
        "--intervener-temperature",
        type=float,
        help="the judge's temperature",
    )
    config_option(
        judge,
        schema,
        "intervener.attempts",
        "--judge-attempts",
        type=positive_int,
        help="replies before 'no verdict'",
    )
    config_option(
        judge,
        schema,
        "intervener.max_hint_chars",
        "--max-hint-chars",
        type=positive_int,
        help="longest hint accepted",
    )
    config_option(
        judge,
        schema,
        "intervener.show_answer",
        "--hide-answer",
        action="store_false",
        help="do not show the judge the answer",
    )
    config_option(
        judge,
        schema,
        "intervener.taxonomy",
        "--taxonomy",
        help="a JSON flaw taxonomy (default: the built-in seven)",
    )

    what = p.add_argument_group("problems (--benchmarks or --problems)")
    source = what.add_mutually_exclusive_group()
    config_option(
        source,
        schema,
        "problems.benchmarks",
        "--benchmarks",
        type=comma_list,
        help="comma-separated, each NAME[@VERSION]",
    )
    config_option(
        source,
        schema,
        "problems.file",
        "--problems",
        help="a JSONL/JSON/CSV/parquet file of problems",
    )
    add_problem_arguments(what, schema)

    env = p.add_argument_group("environment and CALM")
    add_env_arguments(env, schema)
    config_option(
        env,
        schema,
        "calm.max_interventions",
        "--max-interventions",
        type=positive_int,
        help="hints per episode",
    )
    config_option(
        env,
        schema,
        "calm.trigger",
        "--trigger",
        help="when the judge reads the trajectory: when the episode ends, or after every execution",
    )
    config_option(
        env,
        schema,
        "calm.sft_layout",
        "--sft-layout",
        help="split: outputs and hints as user messages, out of the loss",
    )

    run = p.add_argument_group("running")
    add_running_arguments(run, schema)
    p.set_defaults(func=cmd_curate, curate_parser=p)
    add_config_arguments(p)


def cmd_curate(args: argparse.Namespace) -> int:
    """Build the two clients, run the curation, print where everything went."""
    from agents.openai_policy import OpenAIPolicy
    from agents.policy import PolicyError
    from agents.retry import Backoff
    from agents.run_folder import interrupted_message, saved_episodes
    from agents.runner import RunAborted
    from calm.curate import CURATE_RESUME_MAY_DIFFER, CurateCommandConfig, run_curate
    from calm.intervener import Intervener
    from calm.taxonomy import DEFAULT_TAXONOMY, load_taxonomy
    from calm.verdict import VerdictRules

    resolved = resolve_run_config(args, CurateCommandConfig, args.curate_parser)
    config = resolved.curate_config()
    refuse_other_config(config.out_dir, resolved, CURATE_RESUME_MAY_DIFFER, "CALM run")
    r, j, run = resolved.reasoner, resolved.intervener, resolved.run
    backoff = Backoff(max_retries=run.max_retries)
    reasoner = OpenAIPolicy(
        r.model,
        r.base_url,
        api="completions" if r.completions else "chat",
        api_key=os.environ.get(r.api_key_env),
        tokenizer=r.tokenizer,
        max_tokens=r.max_tokens or DEFAULT_MAX_TOKENS,
        temperature=r.temperature,
        top_p=r.top_p,
        seed_requests=run.seed is not None,
        reasoning=r.reasoning,
        request_timeout=run.request_timeout,
        backoff=backoff,
        max_connections=max(run.concurrency, 1),
        max_tokens_over_context="refuse" if r.max_tokens else "clamp",
    )
    intervener = Intervener(
        j.model,
        j.base_url,
        api_key=os.environ.get(j.api_key_env),
        taxonomy=load_taxonomy(j.taxonomy) if j.taxonomy else DEFAULT_TAXONOMY,
        rules=VerdictRules(max_hint_chars=j.max_hint_chars),
        max_attempts=j.attempts,
        show_answer=j.show_answer,
        max_tokens=j.max_tokens,
        temperature=j.temperature,
        request_timeout=run.request_timeout,
        backoff=backoff,
        max_connections=max(run.concurrency, 1),
    )
    try:
        result = run_curate(reasoner, intervener, config, resolved=resolved)
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
