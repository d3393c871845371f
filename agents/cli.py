"""`or-env eval`: evaluate a policy on OR benchmarks and print the papers' table.

Registered with the `or-env` command through the "or_env.cli" entry-point group; this module
imports nothing heavy at import time, because every `or-env` invocation loads it. It also
holds what `or-env eval` and `or-env calm curate` share: their options, each a flag for a key
of the command's run config (`config_option`; defaults from the run config's sections,
`agents.run_folder`), `--config` and the dot-list overrides (`add_config_arguments`), and
their resolution (`resolve_run_config`, `or_env.run_config`). The help formatter and
argument types are `or_env.cli`'s.
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

  # the paper's setting from a run config, two keys overridden
  or-env eval --config configs/eval-qwen3-4b-thinking.yaml policy.temperature=0.7 \\
      run.out=runs/q3-t07

run configs (--config FILE.yaml, KEY=VALUE overrides):
  Every option below is also a key of the run config, in sections: policy (--policy is
  policy.kind, --model, --base-url, --temperature, ... --label), problems (--benchmarks,
  --version, --data-dir, --limit, --samples), env (--protocol, --direct-rule, --prompt,
  --rendering, --tolerance, --max-turns, --max-executions, --timeout), sandbox (--sandbox
  is sandbox.kind, --sandbox-workers is sandbox.workers) and run (--out, --concurrency,
  --seed, --no-progress is run.progress=false, --request-timeout, --max-retries). A key
  is set by, lowest first: its default < the --config file < its flag given on the command
  line < a KEY=VALUE override (lists: problems.benchmarks=[nl4opt,optmath]; null: none).
  An unknown key, a value of the wrong type or a required key left unset is an error
  naming the key. The resolved config is saved as config.yaml in the run folder; configs/
  holds the paper's setting.

the run folder:
  Rerunning a command with the same --out resumes it (finished episodes are skipped, failed
  ones retried); a different run config in that folder is refused, naming each key that
  differs (problems.*, sandbox.*, run.out, run.concurrency, run.progress, run.request_timeout,
  run.max_retries, policy.base_url and policy.label may differ). The reports
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


def comma_list(text: str) -> list[str]:
    """An argparse type: comma-separated names (`nl4opt,mamo-easylp`)."""
    return [item.strip() for item in text.split(",") if item.strip()]


class OverridesAction(argparse._SubParsersAction):
    """A command's positional slot: dot-list overrides of its run config (`KEY=VALUE ...`),
    or one of its sub-commands (`or-env eval compare ...`).

    argparse cannot put a positional list next to sub-commands (the list would swallow the
    sub-command's name), so this is the sub-commands' own action: a first word holding "="
    starts the overrides. Everything after the first override reaches it too (argparse hands
    a sub-command the rest of the line), so the options among them are parsed again here:
    overrides and options may come in any order.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse checks the first word against the choices before calling the action.
        self._name_parser_map = self.choices = _AnyChoice(self._name_parser_map)

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        choices = self._name_parser_map
        choices.strict = True  # argparse refuses a name already taken by asking `in`
        try:
            return super().add_parser(name, **kwargs)
        finally:
            choices.strict = False

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values and dict.__contains__(self._name_parser_map, values[0]):
            super().__call__(parser, namespace, values, option_string)
            return
        count = 0
        while count < len(values) and "=" in values[count] and not values[count].startswith("-"):
            count += 1
        if count == 0:
            known = ", ".join(self._name_parser_map)
            parser.error(
                f"expected KEY=VALUE overrides{' or one of: ' + known if known else ''}, "
                f"got {values[0]!r}"
            )
        namespace.overrides = [*getattr(namespace, "overrides", []), *values[:count]]
        if values[count:]:
            parser.parse_args(values[count:], namespace)


class _AnyChoice(dict):  # type: ignore[type-arg]
    """The sub-commands, as choices that also admit any other word (see OverridesAction)."""

    strict = False

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) if self.strict else True


def add_config_arguments(parser: argparse.ArgumentParser, commands: bool = False) -> Any:
    """--config FILE.yaml and the positional dot-list overrides (`or_env.run_config`).

    commands: the overrides share their slot with sub-commands; the sub-parsers action
    (`add_parser`) is returned for them.
    """
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="a run config: YAML sections (see 'run configs' below and configs/)",
    )
    parser.set_defaults(overrides=[])
    return parser.add_subparsers(
        action=OverridesAction,
        dest="analysis" if commands else "no_command",
        required=False,
        metavar="KEY=VALUE" + (" | ANALYSIS" if commands else ""),
        help="dot-list overrides of the run config (`policy.temperature=0.6 env.max_turns=8`)",
    )


def config_option(
    group: Any, schema: type, key: str, *flags: str, help: str, **kwargs: Any
) -> None:
    """A flag that sets `key` (dotted) of the run config `schema`.

    It has no argparse default, so it is in the parsed namespace (under `key`) only when
    given: a flag left out never overrides the --config file. Its help shows the schema's
    default, and its choices are the schema's (`choices` in the field's metadata).
    """
    from or_env.run_config import MISSING, schema_default, schema_field

    metadata = schema_field(schema, key).metadata
    flag_like = kwargs.get("action") in ("store_true", "store_false")
    if "choices" in metadata and not flag_like:
        kwargs.setdefault("choices", list(metadata["choices"]))
    default = schema_default(schema, key)
    if not flag_like and default not in (None, MISSING, []):
        help += f" (default: {default})"
    group.add_argument(*flags, dest=key, default=argparse.SUPPRESS, help=help, **kwargs)


def add_problem_arguments(group: Any, schema: type) -> None:
    """--version, --data-dir, --limit, --samples, --out (shared by eval and calm curate)."""
    config_option(
        group,
        schema,
        "problems.version",
        "--version",
        help="version for benchmarks given without one",
    )
    config_option(
        group,
        schema,
        "problems.data_dir",
        "--data-dir",
        help="benchmark data folder (default: $OR_ENV_DATA_DIR)",
    )
    config_option(
        group,
        schema,
        "problems.limit",
        "--limit",
        type=nonnegative_int,
        help="first N problems of each benchmark; 0: all",
    )
    config_option(
        group,
        schema,
        "problems.samples",
        "--samples",
        type=positive_int,
        help="episodes per problem (pass@k for k up to this)",
    )
    config_option(group, schema, "run.out", "--out", help="the run folder (rerun to resume)")


def add_env_arguments(group: Any, schema: type) -> None:
    """The env and sandbox options shared by eval and calm curate."""
    config_option(
        group,
        schema,
        "env.rendering",
        "--rendering",
        help="inline: outputs continue the assistant turn; chat: they are user messages",
    )
    config_option(
        group,
        schema,
        "env.tolerance",
        "--tolerance",
        help="a grading preset: default, strict, sirl, orlm, ...",
    )
    config_option(
        group,
        schema,
        "env.max_turns",
        "--max-turns",
        type=positive_int,
        help="policy turns per episode",
    )
    config_option(
        group,
        schema,
        "env.max_executions",
        "--max-executions",
        type=nonnegative_int,
        help="code executions per episode",
    )
    config_option(
        group,
        schema,
        "env.timeout",
        "--timeout",
        type=positive_float,
        help="seconds per code execution",
    )
    config_option(
        group,
        schema,
        "sandbox.kind",
        "--sandbox",
        help="where programs run (`or-env sandbox check` says what auto picks)",
    )
    config_option(
        group,
        schema,
        "sandbox.workers",
        "--sandbox-workers",
        type=positive_int,
        help="sandbox pool size (default: per CPU)",
    )


def add_running_arguments(group: Any, schema: type) -> None:
    """--concurrency, --seed, --no-progress, --request-timeout, --max-retries."""
    config_option(
        group,
        schema,
        "run.concurrency",
        "--concurrency",
        type=positive_int,
        help="episodes in flight",
    )
    config_option(
        group,
        schema,
        "run.seed",
        "--seed",
        type=seed_arg,
        help="base seed of the episodes and requests, or 'none' for no request seed "
        "(see --seed below)",
    )
    config_option(
        group, schema, "run.progress", "--no-progress", action="store_false", help="no progress bar"
    )
    config_option(
        group,
        schema,
        "run.request_timeout",
        "--request-timeout",
        type=positive_float,
        help="seconds per model request, generation included",
    )
    config_option(
        group,
        schema,
        "run.max_retries",
        "--max-retries",
        type=nonnegative_int,
        help="retries of a failed model request (429, 5xx, timeouts, connection errors)",
    )


def resolve_run_config(
    args: argparse.Namespace, schema: type, parser: argparse.ArgumentParser
) -> Any:
    """The resolved run config of a command line: defaults < --config < flags < overrides.

    Required keys left unset are reported as argparse reports a missing option (usage and
    exit status 2), naming the flags and the keys.
    """
    from or_env.run_config import RunConfigError, load_run_config

    flags = {k: v for k, v in vars(args).items() if "." in k}
    names = {a.dest: a.option_strings[0] for a in parser._actions if "." in a.dest}
    try:
        return load_run_config(schema, args.config, list(args.overrides), flags, flag_names=names)
    except RunConfigError as exc:
        if not exc.missing or not all(key in names for key in exc.missing):
            raise
        parser.error(
            f"the following arguments are required: {', '.join(names[k] for k in exc.missing)} "
            f"(run config keys {', '.join(exc.missing)}: set them with --config or KEY=VALUE)"
        )


def refuse_other_config(out_dir: Path, resolved: Any, ignore: Any, what: str) -> None:
    """Refuse a run folder made with another run config before any server is asked (the
    run checks it again, with the policy's own description, once the servers answer)."""
    from agents.run_folder import EPISODES_FILE
    from or_env.run_config import check_resume

    if (out_dir / EPISODES_FILE).exists():
        check_resume(out_dir, resolved, ignore, what=what)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` sub-command to the `or-env` parser."""
    from agents.eval import EvalCommandConfig as schema

    p = subparsers.add_parser(
        "eval",
        help="evaluate a policy on benchmarks (pass@k table, plot, per-episode JSONL)",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    what = p.add_argument_group("what to evaluate")
    config_option(what, schema, "policy.kind", "--policy", help="who writes the turns")
    config_option(
        what,
        schema,
        "policy.model",
        "--model",
        help="model name (openai) or path/name (vllm, transformers)",
    )
    config_option(
        what,
        schema,
        "problems.benchmarks",
        "--benchmarks",
        type=comma_list,
        help="comma-separated, each NAME[@VERSION]",
    )
    add_problem_arguments(what, schema)
    config_option(
        what,
        schema,
        "policy.label",
        "--label",
        help="the row name in the table (default: the model)",
    )

    env = p.add_argument_group("environment")
    config_option(
        env,
        schema,
        "env.protocol",
        "--protocol",
        help="native: multi-turn code interpreter; direct: one response, its program runs once",
    )
    config_option(
        env,
        schema,
        "env.direct_rule",
        "--direct-rule",
        help="direct protocol: how the answer is read from the program's output",
    )
    config_option(
        env, schema, "env.prompt", "--prompt", help="prompt preset (orlm: ORLM's completion prompt)"
    )
    add_env_arguments(env, schema)

    run = p.add_argument_group("running")
    add_running_arguments(run, schema)

    gen = p.add_argument_group("policy")
    config_option(gen, schema, "policy.base_url", "--base-url", help="openai: the API root")
    config_option(
        gen,
        schema,
        "policy.completions",
        "--completions",
        action="store_true",
        help="openai: use /v1/completions",
    )
    config_option(
        gen,
        schema,
        "policy.tokenizer",
        "--tokenizer",
        help="chat template for --completions (name or path)",
    )
    config_option(
        gen,
        schema,
        "policy.replay",
        "--replay",
        help="replay: a JSONL file of turns, meta:FIELD, or 'orlm' (format below)",
    )
    config_option(
        gen,
        schema,
        "policy.max_tokens",
        "--max-tokens",
        type=positive_int,
        help=f"tokens per generated turn (default: {DEFAULT_MAX_TOKENS}, or half the "
        "server's context when that is shorter)",
    )
    config_option(
        gen,
        schema,
        "policy.temperature",
        "--temperature",
        type=float,
        help="(default: the server's)",
    )
    config_option(
        gen, schema, "policy.top_p", "--top-p", type=float, help="(default: the server's)"
    )
    config_option(
        gen,
        schema,
        "policy.reasoning",
        "--reasoning",
        help="a server's reasoning_content: merged into the action as <think>, or kept apart",
    )
    p.set_defaults(func=cmd_eval, eval_parser=p)
    # `or-env eval compare|tolerance|honesty RUN_DIR...` read finished run folders; they
    # share the positional slot with the overrides of a new run.
    register_analysis(p, add_config_arguments(p, commands=True))


ANALYSIS_EPILOG = """Every command reads the run folders only (episodes.jsonl): nothing runs
again. It prints markdown tables and writes them (.md), their data (.json) and a plot (.png)
to --out
(default: the first run folder). From Python: agents.compare, agents.tolerance_curves,
agents.honesty (load a folder with agents.run_analysis.load_run)."""


def register_analysis(eval_parser: argparse.ArgumentParser, sub: Any) -> None:
    """The analysis sub-commands of `or-env eval`: compare, tolerance, honesty (`sub`: the
    sub-parsers action from `add_config_arguments`)."""

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


def build_policy(config: Any, problems: list[Any]) -> Any:
    """The policy an `or-env eval` run config (`agents.eval.EvalCommandConfig`) asks for."""
    policy, run = config.policy, config.run
    if policy.kind == "replay":
        from agents.replay import ReplayPolicy

        if not policy.replay:
            raise ValueError(
                "--policy replay needs --replay (a JSONL file, meta:FIELD or 'orlm'; policy.replay)"
            )
        source, label = REPLAY_ALIASES.get(policy.replay, (policy.replay, None))
        label = policy.label or label
        if source.startswith("meta:"):
            field = source.removeprefix("meta:")
            return ReplayPolicy.from_problem_meta(problems, field, label=label)
        if not Path(source).is_file():
            raise ValueError(f"--replay {source}: no such file")
        return ReplayPolicy.from_jsonl(source, label=label)
    if not policy.model:
        raise ValueError(f"--policy {policy.kind} needs --model (policy.model)")
    max_tokens = policy.max_tokens or DEFAULT_MAX_TOKENS
    if policy.kind == "openai":
        from agents.openai_policy import OpenAIPolicy
        from agents.retry import Backoff

        return OpenAIPolicy(
            policy.model,
            policy.base_url,
            api="completions" if policy.completions else "chat",
            tokenizer=policy.tokenizer,
            max_tokens=max_tokens,
            temperature=policy.temperature,
            top_p=policy.top_p,
            seed_requests=run.seed is not None,
            reasoning=policy.reasoning,
            request_timeout=run.request_timeout,
            backoff=Backoff(max_retries=run.max_retries),
            max_connections=max(run.concurrency, 1),
            # The default may shrink to fit a short context; an explicit value may not.
            max_tokens_over_context="refuse" if policy.max_tokens else "clamp",
        )
    sampling = {"max_tokens": max_tokens, "temperature": policy.temperature, "top_p": policy.top_p}
    if policy.kind == "vllm":
        from agents.vllm_policy import VLLMPolicy

        return VLLMPolicy(policy.model, **sampling)
    from agents.transformers_policy import TransformersPolicy

    return TransformersPolicy(policy.model, **sampling)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the evaluation and print the table."""
    from agents.eval import EVAL_RESUME_MAY_DIFFER, EvalCommandConfig, load_benchmarks, run_eval
    from agents.policy import PolicyError
    from agents.run_folder import interrupted_message, saved_episodes
    from agents.runner import RunAborted
    from agents.templating import MissingPackageError
    from or_env.cli import error

    resolved = resolve_run_config(args, EvalCommandConfig, args.eval_parser)
    config = resolved.eval_config()
    refuse_other_config(config.out_dir, resolved, EVAL_RESUME_MAY_DIFFER, "run")
    problems = load_benchmarks(config)
    try:
        policy = build_policy(resolved, problems)
    except MissingPackageError as exc:
        error(exc)
        return 2
    try:
        result = run_eval(policy, config, problems, resolved=resolved)
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
