"""`or-env eval`: evaluate a policy on OR benchmarks and print the papers' table.

Registered with the `or-env` command through the "or_env.cli" entry-point group; this module
imports nothing heavy at import time, because every `or-env` invocation loads it. It also
holds the options `or-env eval` and `or-env calm curate` share (defaults read from the
configs, `agents.run_folder`); the help formatter and argument types are `or_env.cli`'s.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from or_env.cli import (
    HelpFormatter,
    nonnegative_int,
    positive_float,
    positive_int,
)

logger = logging.getLogger("agents.cli")

POLICIES = ("openai", "replay", "vllm", "transformers")
# `--replay orlm`: the recorded ORLM-LLaMA-3-8B responses carried by the "orlm-hf" versions.
REPLAY_ALIASES = {"orlm": ("meta:en_math_model_coptpy_code", "ORLM-LLaMA-3-8B (replay)")}
# Tokens per generated turn when --max-tokens is not given.
DEFAULT_MAX_TOKENS = 4096
# Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

EPILOG = """examples:
  # a model behind vLLM/SGLang `serve` (or any OpenAI-compatible server)
  or-env eval --policy openai --model Qwen/Qwen3-4B-Thinking-2507 \\
      --base-url http://localhost:8000/v1 --benchmarks nl4opt,mamo-easylp --samples 4 --out runs/q3

  # re-grade ORLM-LLaMA-3-8B's published responses (direct protocol, ORLM's tolerance)
  or-env eval --policy replay --replay orlm --benchmarks nl4opt,mamo-complexlp,industryor \\
      --version orlm-hf --protocol direct --direct-rule orlm --tolerance orlm --prompt orlm \\
      --out runs/orlm-replay

the run folder:
  Rerunning a command with the same --out resumes it (finished episodes are skipped, failed
  ones retried); other episode settings in that folder are refused. The reports
  (results.md/json/png) always describe every episode in the folder, also when this command
  plans fewer (e.g. --limit 3 into a full run's folder). Ctrl-C stops the run with exit
  status 130; the finished episodes stay.

before the first episode (--policy openai):
  The server's /models is read: a server that does not answer, a base URL that is not an
  API root, or a model it does not serve stops the run at once. Without --max-tokens, turns
  are capped at 4096 tokens, or half the served context (max_model_len) when that is
  shorter; an explicit --max-tokens that cannot fit the context is refused. After 3
  episodes in a row cannot reach the server, the run stops (rerun to resume).

--seed:
  An integer seeds every episode and, with --policy openai, every request (a per-turn seed
  derived from the episode's), so a rerun asks for the same samples. `--seed none` sends no
  request seed (episode seeds use 0): needed for vLLM's CPU backend with chunked prefill,
  whose engine crashes on per-request seeds ("CPU Generator does not use offset"). The
  price: at temperature > 0 a rerun, or the rest of a resumed run, draws new samples, so
  pass@k is reproducible only in distribution; greedy decoding is unaffected.

--replay FILE (--policy replay), a JSONL file; each line is one of:
  {"problem_id": "p1", "sample": 0, "turns": ["turn 1 text", "turn 2 text"]}
  {"problem_id": "p1", "sample": 0, "turn": 0, "text": "turn 1 text"}   (one line per turn)
  an episode record of a run's episodes.jsonl (its policy turns are replayed)
  ("sample" defaults to 0). Also: meta:FIELD (a field of each problem's meta, e.g. the
  recorded responses in ORLM's files) and `orlm` (= meta:en_math_model_coptpy_code).

timeouts:
  --timeout defaults to 300 s per execution: large MILPs of IndustryOR and OptMATH take 60
  to 200 s with CBC or HiGHS on 2 cores, and ORLM evaluated with 300 s. Training and CALM
  curation keep 30 s. results.md/json count the episodes that hit the limit."""


def seed_arg(text: str) -> int | None:
    """An argparse type: an integer seed, or `none` (no per-request seed)."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from exc


def add_problem_arguments(group: Any, config_class: type) -> None:
    """--version, --data-dir, --limit, --samples, --out (shared by eval and calm curate)."""
    from agents.run_folder import default_of

    group.add_argument("--version", help="version for benchmarks given without one")
    group.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    group.add_argument(
        "--limit",
        type=nonnegative_int,
        default=default_of(config_class, "limit"),
        help="first N problems of each benchmark; 0: all",
    )
    group.add_argument(
        "--samples",
        type=positive_int,
        default=default_of(config_class, "samples"),
        help="episodes per problem (pass@k for k up to this)",
    )
    group.add_argument("--out", required=True, type=Path, help="the run folder (rerun to resume)")


def add_env_arguments(group: Any, config_class: type) -> None:
    """The env and sandbox options shared by eval and calm curate."""
    from agents.run_folder import default_of

    group.add_argument(
        "--rendering",
        choices=["inline", "chat"],
        default=default_of(config_class, "rendering"),
        help="inline: outputs continue the assistant turn; chat: they are user messages",
    )
    group.add_argument(
        "--tolerance",
        default=default_of(config_class, "tolerance"),
        help="a grading preset: default, strict, sirl, orlm, ...",
    )
    group.add_argument(
        "--max-turns",
        type=positive_int,
        default=default_of(config_class, "max_turns"),
        help="policy turns per episode",
    )
    group.add_argument(
        "--max-executions",
        type=nonnegative_int,
        default=default_of(config_class, "max_executions"),
        help="code executions per episode",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=default_of(config_class, "timeout"),
        help="seconds per code execution",
    )
    group.add_argument(
        "--sandbox",
        choices=["auto", "local", "docker"],
        default=default_of(config_class, "sandbox"),
        help="where programs run (`or-env sandbox check` says what auto picks)",
    )
    group.add_argument(
        "--sandbox-workers", type=positive_int, help="sandbox pool size (default: per CPU)"
    )


def add_running_arguments(group: Any, config_class: type) -> None:
    """--concurrency, --seed, --no-progress, --request-timeout, --max-retries."""
    from agents.run_folder import default_of

    group.add_argument(
        "--concurrency",
        type=positive_int,
        default=default_of(config_class, "concurrency"),
        help="episodes in flight",
    )
    group.add_argument(
        "--seed",
        type=seed_arg,
        default=default_of(config_class, "base_seed"),
        help="base seed of the episodes and requests, or 'none' for no request seed "
        "(see --seed below)",
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument(
        "--request-timeout",
        type=positive_float,
        default=600.0,
        help="seconds per model request, generation included",
    )
    group.add_argument(
        "--max-retries",
        type=nonnegative_int,
        default=6,
        help="retries of a failed model request (429, 5xx, timeouts, connection errors)",
    )


def run_config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The `RunConfig` fields from the shared options."""
    return {
        "out_dir": args.out,
        "version": args.version,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "samples": args.samples,
        "concurrency": args.concurrency,
        "base_seed": 0 if args.seed is None else args.seed,
        "rendering": args.rendering,
        "tolerance": args.tolerance,
        "max_turns": args.max_turns,
        "max_executions": args.max_executions,
        "timeout": args.timeout,
        "sandbox": args.sandbox,
        "sandbox_workers": args.sandbox_workers,
        "progress": not args.no_progress,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` sub-command to the `or-env` parser."""
    from agents.eval import EvalConfig
    from agents.run_folder import default_of

    p = subparsers.add_parser(
        "eval",
        help="evaluate a policy on benchmarks (pass@k table, plot, per-episode JSONL)",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--policy", choices=POLICIES, default="openai", help="who writes the turns")
    what.add_argument("--model", help="model name (openai) or path/name (vllm, transformers)")
    what.add_argument("--benchmarks", required=True, help="comma-separated, each NAME[@VERSION]")
    add_problem_arguments(what, EvalConfig)
    what.add_argument("--label", help="the row name in the table (default: the model)")

    env = p.add_argument_group("environment")
    env.add_argument(
        "--protocol",
        choices=["native", "direct"],
        default=default_of(EvalConfig, "protocol"),
        help="native: multi-turn code interpreter; direct: one response, its program runs once",
    )
    env.add_argument(
        "--direct-rule",
        choices=["default", "orlm"],
        default=default_of(EvalConfig, "direct_rule"),
        help="direct protocol: how the answer is read from the program's output",
    )
    env.add_argument(
        "--prompt",
        choices=["default", "orlm"],
        default=default_of(EvalConfig, "prompt"),
        help="prompt preset (orlm: ORLM's completion prompt)",
    )
    add_env_arguments(env, EvalConfig)

    run = p.add_argument_group("running")
    add_running_arguments(run, EvalConfig)

    gen = p.add_argument_group("policy")
    gen.add_argument("--base-url", default="http://localhost:8000/v1", help="openai: the API root")
    gen.add_argument("--completions", action="store_true", help="openai: use /v1/completions")
    gen.add_argument("--tokenizer", help="chat template for --completions (name or path)")
    gen.add_argument(
        "--replay", help="replay: a JSONL file of turns, meta:FIELD, or 'orlm' (format below)"
    )
    gen.add_argument(
        "--max-tokens",
        type=positive_int,
        help=f"tokens per generated turn (default: {DEFAULT_MAX_TOKENS}, or half the "
        "server's context when that is shorter)",
    )
    gen.add_argument("--temperature", type=float, help="(default: the server's)")
    gen.add_argument("--top-p", type=float, help="(default: the server's)")
    gen.add_argument(
        "--reasoning",
        choices=["merge", "separate"],
        default="merge",
        help="a server's reasoning_content: merged into the action as <think>, or kept apart",
    )
    p.set_defaults(func=cmd_eval, eval_parser=p)
    # `or-env eval compare|tolerance|honesty RUN_DIR...` read finished run folders; with one
    # of them, the options of a new run (--benchmarks, --out) are not needed.
    for action in p._actions:
        if action.dest in ("benchmarks", "out"):
            action.required = False
    register_analysis(p)


ANALYSIS_EPILOG = """Every command reads the run folders only (episodes.jsonl): nothing runs
again. It prints markdown tables and writes them (.md), their data (.json) and a plot (.png)
to --out
(default: the first run folder). From Python: agents.compare, agents.tolerance_curves,
agents.honesty (load a folder with agents.run_analysis.load_run)."""


def register_analysis(eval_parser: argparse.ArgumentParser) -> None:
    """The analysis sub-commands of `or-env eval`: compare, tolerance, honesty."""
    sub = eval_parser.add_subparsers(dest="eval_command", required=False, metavar="ANALYSIS")

    def add(name: str, help_: str, many: bool) -> argparse.ArgumentParser:
        parser = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=ANALYSIS_EPILOG,
            formatter_class=HelpFormatter,
        )
        parser.add_argument(
            "runs",
            nargs="+" if many else None,
            type=Path,
            metavar="RUN_DIR",
            help="`or-env eval --out` folder" + ("s" if many else ""),
        )
        parser.add_argument(
            "--out", type=Path, help="where the reports go (default: the first run folder)"
        )
        return parser

    c = add(
        "compare",
        "one table across runs: pass@1 with bootstrap intervals, pass@k, paired tests",
        True,
    )
    c.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare runs graded at different tolerances or on different benchmark versions",
    )
    c.add_argument(
        "--versions",
        action="store_true",
        help="also grade each run's episodes against every version's labels (needs the data)",
    )
    c.add_argument("--data-dir", help="benchmark data for --versions (default: $OR_ENV_DATA_DIR)")
    c.add_argument("--n-boot", type=positive_int, default=2000, help="bootstrap resamples")
    c.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    c.set_defaults(func=cmd_compare)
    t = add(
        "tolerance",
        "accuracy against tolerance: re-grade the recorded answers at 1e-9 ... 1e-1 and presets",
        False,
    )
    t.add_argument(
        "--data-dir",
        help="benchmark data, for the files' own labels (the strict presets compare markers "
        "such as -99999 as numbers); default: $OR_ENV_DATA_DIR, else the recorded labels",
    )
    t.set_defaults(func=cmd_tolerance)
    h = add(
        "honesty",
        "correct answers printed by an execution vs never computed; execution failure classes",
        False,
    )
    h.set_defaults(func=cmd_honesty)


def _write(out_dir: Path, stem: str, markdown: str, data: Any) -> list[Path]:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(markdown + "\n")
    js.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return [md, js]


def _print_written(paths: list[Path | None]) -> None:
    sys.stdout.write("\n" + "\n".join(str(p) for p in paths if p is not None) + "\n")


def cmd_compare(args: argparse.Namespace) -> int:
    """`or-env eval compare`: the comparison table, paired tests, optionally version regrades."""
    from agents.compare import (
        compare_runs,
        comparison_markdown,
        comparison_plot,
        version_markdown,
        version_regrades,
    )
    from agents.run_analysis import load_runs

    runs = load_runs(args.runs)
    comparison = compare_runs(
        runs, allow_mismatch=args.allow_mismatch, n_boot=args.n_boot, seed=args.seed
    )
    text = comparison_markdown(comparison)
    data: dict[str, Any] = comparison.to_dict()
    if args.versions:
        regrades = {run.label: version_regrades(run, args.data_dir) for run in runs}
        text += "\n\n" + "\n\n".join(version_markdown(run, regrades[run.label]) for run in runs)
        data["versions"] = {k: [g.to_dict() for g in v] for k, v in regrades.items()}
    sys.stdout.write(text + "\n")
    out_dir = args.out or runs[0].path
    paths: list[Path | None] = [*_write(out_dir, "compare", text, data)]
    paths.append(comparison_plot(comparison, out_dir / "compare.png"))
    _print_written(paths)
    return 0


def cmd_tolerance(args: argparse.Namespace) -> int:
    """`or-env eval tolerance`: accuracy at each tolerance of the sweep and each preset."""
    from agents.run_analysis import load_run, problem_truths
    from agents.tolerance_curves import curves_markdown, tolerance_curves, tolerance_plot

    run = load_run(args.runs)
    truths = problem_truths(run, args.data_dir)
    if len(truths) < len({str(r["problem_id"]) for r in run.records}):
        sys.stderr.write(
            "note: benchmark data not found for every problem; the recorded labels are used "
            "there (the strict presets then read markers such as -99999 as statuses)\n"
        )
    curves = tolerance_curves(run, truths=truths)
    text = curves_markdown(run, curves)
    sys.stdout.write(text + "\n")
    out_dir = args.out or run.path
    paths: list[Path | None] = [
        *_write(
            out_dir, "tolerance", text, {"run": run.label, "curves": [c.to_dict() for c in curves]}
        )
    ]
    paths.append(tolerance_plot(run, curves, out_dir / "tolerance.png"))
    _print_written(paths)
    return 0


def cmd_honesty(args: argparse.Namespace) -> int:
    """`or-env eval honesty`: printed vs never-computed correct answers, failure classes."""
    from agents.honesty import honesty, honesty_markdown, honesty_plot
    from agents.run_analysis import load_run

    run = load_run(args.runs)
    rows = honesty(run)
    text = honesty_markdown(run, rows)
    sys.stdout.write(text + "\n")
    out_dir = args.out or run.path
    paths: list[Path | None] = [
        *_write(
            out_dir, "honesty", text, {"run": run.label, "benchmarks": [h.to_dict() for h in rows]}
        )
    ]
    paths.append(honesty_plot(run, rows, out_dir / "honesty.png"))
    _print_written(paths)
    return 0


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
        if not Path(source).is_file():
            raise ValueError(f"--replay {source}: no such file")
        return ReplayPolicy.from_jsonl(source, label=label)
    if not args.model:
        raise ValueError(f"--policy {args.policy} needs --model")
    max_tokens = args.max_tokens or DEFAULT_MAX_TOKENS
    if args.policy == "openai":
        from agents.openai_policy import OpenAIPolicy
        from agents.retry import Backoff

        return OpenAIPolicy(
            args.model,
            args.base_url,
            api="completions" if args.completions else "chat",
            tokenizer=args.tokenizer,
            max_tokens=max_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            seed_requests=args.seed is not None,
            reasoning=args.reasoning,
            request_timeout=args.request_timeout,
            backoff=Backoff(max_retries=args.max_retries),
            max_connections=max(args.concurrency, 1),
            # The default may shrink to fit a short context; an explicit value may not.
            max_tokens_over_context="refuse" if args.max_tokens else "clamp",
        )
    sampling = {"max_tokens": max_tokens, "temperature": args.temperature, "top_p": args.top_p}
    if args.policy == "vllm":
        from agents.vllm_policy import VLLMPolicy

        return VLLMPolicy(args.model, **sampling)
    from agents.transformers_policy import TransformersPolicy

    return TransformersPolicy(args.model, **sampling)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the evaluation and print the table."""
    from agents.eval import EvalConfig, load_benchmarks, run_eval
    from agents.policy import PolicyError
    from agents.run_folder import interrupted_message, saved_episodes
    from agents.runner import RunAborted
    from agents.templating import MissingPackageError
    from or_env.cli import error

    missing = [o for o, v in (("--benchmarks", args.benchmarks), ("--out", args.out)) if not v]
    if missing:
        args.eval_parser.error(f"the following arguments are required: {', '.join(missing)}")
    config = EvalConfig(
        **run_config_kwargs(args),
        benchmarks=[b for b in args.benchmarks.split(",") if b.strip()],
        protocol=args.protocol,
        direct_rule=args.direct_rule,
        prompt=args.prompt,
        label=args.label,
    )
    problems = load_benchmarks(config)
    try:
        policy = build_policy(args, problems)
    except MissingPackageError as exc:
        error(exc)
        return 2
    try:
        result = run_eval(policy, config, problems)
    except KeyboardInterrupt:
        sys.stderr.write(interrupted_message(config.out_dir) + "\n")
        return EXIT_INTERRUPTED
    except RunAborted as exc:
        error(
            f"{exc}; {saved_episodes(config.out_dir)} episodes saved in {config.out_dir}, "
            "rerun the same command to resume once the server answers"
        )
        return 1
    except PolicyError as exc:  # the server check before the first episode
        error(exc)
        return 2
    out = sys.stdout
    out.write("\n" + result.table + "\n\n")
    for score in result.scores:
        reasons = ", ".join(f"{k} {v}" for k, v in score.failure_reasons.items()) or "-"
        out.write(
            f"{score.benchmark}: {score.problems} problems x {score.samples} samples, "
            f"mean turns {score.mean_turns:.2f}, executions {score.mean_executions:.2f}, "
            f"errors {score.errors}, timeouts {score.timeouts}; failures: {reasons}\n"
        )
    if len(result.records) > result.planned:
        out.write(
            f"\nThe reports describe all {len(result.records)} episodes in {config.out_dir}; "
            f"this command planned {result.planned}.\n"
        )
    out.write("\n" + "\n".join(f"{k}: {v}" for k, v in result.paths.items()) + "\n")
    return 1 if any(s.errors for s in result.scores) else 0
