"""Data preparation for verl: problems -> RL parquet, CALM output -> multi-turn SFT parquet.

RL parquet (read by verl's `RLHFDataset`; one row per problem):
- `prompt`: the chat messages the env starts an episode with (system prompt + problem), made
  by `ORModelingEnv.reset`, so the dataset's prompt and the agent loop's prompt agree;
- `data_source` ("or_env/<benchmark>"), `ability` ("operations_research");
- `reward_model`: {"style": "rule", "ground_truth": str} (a number, "infeasible" or
  "unbounded"; `or_env.grading.parse_ground_truth` reads it back);
- `extra_info`: index, split, problem_id, benchmark, question, tolerance, and env_kwargs
  (a JSON string: per-row settings of `ORModelingEnv`, e.g. max_turns; a string keeps the
  parquet schema the same whatever the settings);
- `agent_name`: which verl agent loop plays the row ("or_env", see `agent_loop.py`).

Training data, not evaluation data: `prepare-rl` defaults to the SIRL RL sample
(`sirl-rl-sample`: synthetic training problems with reference programs) and warns when a
training split is made from an evaluation benchmark (NL4Opt, MAMO, IndustryOR, ...):
training on it contaminates every later number on that benchmark. Pass your own file with
`--problems`.

SFT parquet (read by verl's `MultiTurnSFTDataset`): a `messages` column of role/content
lists, from CALM's outputs: its `sft.parquet` (checked and copied), its `golden.jsonl`
(`sft_messages` of each row) or an `episodes.jsonl` of episode records (split into SFT
messages by `calm.export` when it is installed: policy text is assistant, outputs and hints
are user messages, so they stay out of the loss). From episode records only trajectories
worth imitating are kept by default: episodes that ran, ended correct, and (in a CALM run)
were kept by CALM (judged flawless); the rest are dropped with a count per reason
(`select_sft_rows`; `include_incorrect=True` / `--include-incorrect` keeps incorrect and
not-kept ones).

Command line: `python -m recipes.verl.data rl ...` / `python -m recipes.verl.data sft ...`,
also `or-env recipes prepare-rl|prepare-sft` through `register`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from or_env.cli import HelpFormatter, error, nonnegative_int, positive_int
from or_env.env import ORModelingEnv
from or_env.problems import DatasetError, Problem, load_problems
from recipes.verl import ABILITY, AGENT_NAME, DATA_SOURCE_PREFIX

logger = logging.getLogger(__name__)

# The default RL training data: training problems, not an evaluation benchmark.
DEFAULT_RL_BENCHMARK = "sirl-rl-sample"
# Registered sets that are not evaluation benchmarks: training data, and the bundled sample
# set (a smoke test). Every other registered benchmark is used for evaluation in the papers.
NOT_EVALUATION = ("sirl-rl-sample", "sample")
TRAIN_SPLITS = ("train", "training")
# Why an episode record is not turned into an SFT row.
DROP_ERROR = "failed to run"
DROP_INCORRECT = "incorrect"
DROP_UNGRADED = "no 'correct' field"
DROP_NOT_KEPT = "not kept by CALM"
DROP_NO_TURN = "no assistant turn"

# Env settings a row may carry; the sandbox is the worker's (recipe config), never the row's.
ROW_ENV_KEYS = (
    "max_turns",
    "max_executions",
    "max_obs_chars",
    "timeout",
    "tolerance",
    "system_prompt",
    "user_template",
)


def prompt_messages(problem: Problem, env_kwargs: Mapping[str, Any] | None = None) -> list[dict]:
    """The messages `ORModelingEnv.reset` starts an episode on this problem with."""
    kwargs = {k: v for k, v in (env_kwargs or {}).items() if k in ROW_ENV_KEYS}
    # The sandbox is created lazily, on the first execution: reset alone starts nothing.
    env = ORModelingEnv(problems=[problem], sandbox="local", **kwargs)
    env.reset(options={"index": 0})
    return env.transcript.as_chat()


def rl_row(
    problem: Problem,
    index: int,
    *,
    split: str = "train",
    env_kwargs: Mapping[str, Any] | None = None,
    agent_name: str = AGENT_NAME,
) -> dict[str, Any]:
    """One RL parquet row for a problem (see the module doc)."""
    env_kwargs = dict(env_kwargs or {})
    unknown = sorted(set(env_kwargs) - set(ROW_ENV_KEYS))
    if unknown:
        raise ValueError(f"env_kwargs {unknown} cannot be set per row; allowed: {ROW_ENV_KEYS}")
    return {
        "data_source": f"{DATA_SOURCE_PREFIX}{problem.benchmark}",
        "prompt": prompt_messages(problem, env_kwargs),
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": str(problem.answer)},
        "extra_info": {
            "index": index,
            "split": split,
            "problem_id": problem.id,
            "benchmark": problem.benchmark,
            "question": problem.question,
            "tolerance": str(env_kwargs.get("tolerance", "default")),
            "env_kwargs": json.dumps(env_kwargs, sort_keys=True),
        },
        "agent_name": agent_name,
    }


def write_rl_parquet(
    problems: Sequence[Problem],
    path: str | Path,
    *,
    split: str = "train",
    env_kwargs: Mapping[str, Any] | None = None,
    agent_name: str = AGENT_NAME,
) -> int:
    """Write verl's RL parquet for `problems`; returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not problems:
        raise ValueError("no problems to write; check the benchmark name, version and data dir")
    rows = [
        rl_row(p, i, split=split, env_kwargs=env_kwargs, agent_name=agent_name)
        for i, p in enumerate(problems)
    ]
    _write(pa.Table.from_pylist(rows), path, pq)
    return len(rows)


def contamination_warning(benchmark: str, split: str) -> str | None:
    """A warning when a training split is made from an evaluation benchmark, else None."""
    name = benchmark.partition("@")[0]
    if split.lower() not in TRAIN_SPLITS or name in NOT_EVALUATION:
        return None
    return (
        f"{name} is an evaluation benchmark: training on it contaminates every later {name} "
        f"number. Train on training data ({DEFAULT_RL_BENCHMARK}, the default, or your own "
        "file with --problems); use evaluation benchmarks only for --split val/test"
    )


@dataclass
class SFTSelection:
    """The SFT rows read from a source, and the episodes dropped (reason -> count)."""

    rows: list[dict[str, Any]]
    dropped: dict[str, int] = field(default_factory=dict)
    read: int = 0

    def summary(self) -> str:
        """`dropped 226 of 556 episodes: incorrect 200, failed to run 26` (or '')."""
        total = sum(self.dropped.values())
        if not total:
            return ""
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.dropped.items())
        return f"dropped {total} of {self.read} episodes: {reasons}"


def drop_reason(record: Mapping[str, Any], include_incorrect: bool = False) -> str | None:
    """Why an episode record should not become an SFT row (None: keep it).

    Kept by default: the episode ran, ended correct, and, for a CALM run's record (it has a
    `calm` field), CALM kept it (its final judgement is flawless). `include_incorrect` also
    keeps incorrect and not-kept episodes (never ones that failed to run: their transcript
    stops where the failure struck).
    """
    if record.get("status", "ok") != "ok":
        return DROP_ERROR
    if not include_incorrect:
        if "correct" not in record:
            return DROP_UNGRADED
        if not record.get("correct"):
            return DROP_INCORRECT
        calm = record.get("calm")
        if isinstance(calm, Mapping) and calm.get("final") != "flawless":
            return DROP_NOT_KEPT
    if not any(
        m.get("source", "policy") == "policy" and m.get("role") == "assistant"
        for m in record.get("messages") or []
    ):
        return DROP_NO_TURN
    return None


def select_sft_rows(
    path: str | Path, layout: str = "split", include_incorrect: bool = False
) -> SFTSelection:
    """SFT rows from CALM's golden.jsonl (`sft_messages`, all kept: CALM chose them) or
    episode records (`messages`, filtered by `drop_reason`)."""
    selection = SFTSelection(rows=[])
    dropped: Counter[str] = Counter()
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON ({exc})") from exc
            selection.read += 1
            if "sft_messages" in record:
                messages = record["sft_messages"]
            elif "messages" in record:
                reason = drop_reason(record, include_incorrect)
                if reason is not None:
                    dropped[reason] += 1
                    continue
                messages = _split_messages(record["messages"], layout)
            else:
                raise ValueError(
                    f"{path}:{line_no}: no 'sft_messages' or 'messages'; expected CALM's "
                    "golden.jsonl or an episodes.jsonl"
                )
            selection.rows.append(
                {
                    "messages": [_role_content(m) for m in messages],
                    "data_source": f"{DATA_SOURCE_PREFIX}{record.get('benchmark')}",
                    "problem_id": str(record.get("problem_id", "")),
                }
            )
    selection.dropped = dict(dropped.most_common())
    return selection


def sft_rows_from_jsonl(
    path: str | Path, layout: str = "split", include_incorrect: bool = False
) -> list[dict[str, Any]]:
    """The rows of `select_sft_rows` (the dropped episodes are logged)."""
    selection = select_sft_rows(path, layout, include_incorrect)
    if selection.dropped:
        logger.info("%s: %s", path, selection.summary())
    return selection.rows


def write_sft_parquet(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write verl's multi-turn SFT parquet from rows with `messages`; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(rows)
    if not rows:
        raise ValueError(
            "no SFT rows to write: the source holds no correct (or CALM-kept) trajectory"
        )
    for i, row in enumerate(rows):
        check_sft_messages(row["messages"], where=f"row {i}")
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema(
        [("messages", pa.list_(message)), ("data_source", pa.string()), ("problem_id", pa.string())]
    )
    table = pa.table(
        {
            "messages": [[_role_content(m) for m in r["messages"]] for r in rows],
            "data_source": [str(r.get("data_source", "")) for r in rows],
            "problem_id": [str(r.get("problem_id", "")) for r in rows],
        },
        schema=schema,
    )
    _write(table, path, pq)
    return len(rows)


def read_sft_source(
    source: str | Path, layout: str = "split", include_incorrect: bool = False
) -> SFTSelection:
    """The SFT rows of CALM output: sft.parquet (as is), golden.jsonl or episodes.jsonl."""
    source = Path(source)
    if source.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(source).to_pylist()
        return SFTSelection(rows=rows, read=len(rows))
    return select_sft_rows(source, layout, include_incorrect)


def convert_sft(
    source: str | Path, out: str | Path, layout: str = "split", include_incorrect: bool = False
) -> int:
    """CALM output (sft.parquet, golden.jsonl or episodes.jsonl) -> verl SFT parquet; returns
    the rows written (episode records are filtered, see `drop_reason`)."""
    selection = read_sft_source(source, layout, include_incorrect)
    if selection.dropped:
        logger.info("%s: %s", source, selection.summary())
    return write_sft_parquet(selection.rows, out)


def check_sft_messages(messages: Sequence[Mapping[str, Any]], *, where: str = "") -> None:
    """Reject conversations verl would train on nothing in (or choke on)."""
    roles = [m.get("role") for m in messages]
    bad = sorted({str(r) for r in roles if r not in ("system", "user", "assistant", "tool")})
    if bad:
        raise ValueError(f"{where}: unknown roles {bad}")
    if "assistant" not in roles:
        raise ValueError(f"{where}: no assistant message, so nothing to train on")


def _split_messages(messages: Sequence[Mapping[str, Any]], layout: str) -> list[dict]:
    try:
        from calm.export import sft_messages
    except ImportError:
        # Without calm: keep the chat roles as recorded (outputs inside assistant turns
        # would then be trained on; calm's "split" layout avoids that).
        logger.warning("calm.export is not importable; using the recorded roles as they are")
        return [_role_content(m) for m in messages]
    return sft_messages(messages, layout)


def _role_content(message: Mapping[str, Any]) -> dict[str, str]:
    return {"role": str(message["role"]), "content": str(message["content"])}


def _write(table: Any, path: str | Path, pq: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


# ----------------------------------------------------------------------- command line
def _add_rl_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--benchmark",
        help=f"a registered set (`or-env benchmarks`); default: {DEFAULT_RL_BENCHMARK} (training "
        "data) unless --problems is given",
    )
    p.add_argument("--version", help="the benchmark's version (default: its default)")
    p.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    p.add_argument("--problems", help="a JSONL/JSON/CSV/parquet file of problems instead")
    p.add_argument("--out", required=True, help="the parquet file to write")
    p.add_argument(
        "--split",
        default="train",
        help="the split written in extra_info; a training split of an evaluation benchmark "
        "is warned about",
    )
    p.add_argument("--limit", type=nonnegative_int, default=0, help="first N problems; 0: all")
    p.add_argument("--max-turns", type=positive_int, help="per-row env setting")
    p.add_argument("--max-executions", type=nonnegative_int, help="per-row env setting")
    p.add_argument("--tolerance", help="a tolerance preset (default: 'default')")
    p.add_argument("--agent-name", default=AGENT_NAME, help="the verl agent loop of the rows")


def cmd_rl(args: argparse.Namespace) -> int:
    """Write the RL parquet for a benchmark (training data by default) or a problem file."""
    if args.benchmark and args.problems:
        raise ValueError("give one of --benchmark NAME or --problems FILE, not both")
    if args.problems:
        problems = load_problems(path=args.problems)
        source = args.problems
    else:
        benchmark = args.benchmark or DEFAULT_RL_BENCHMARK
        warning = contamination_warning(benchmark, args.split)
        if warning:
            sys.stderr.write(f"warning: {warning}\n")
        problems = load_problems(benchmark, version=args.version, path=args.data_dir)
        source = benchmark
    if args.limit:
        problems = problems[: args.limit]
    env_kwargs = {
        key: value
        for key, value in (
            ("max_turns", args.max_turns),
            ("max_executions", args.max_executions),
            ("tolerance", args.tolerance),
        )
        if value is not None
    }
    count = write_rl_parquet(
        problems, args.out, split=args.split, env_kwargs=env_kwargs, agent_name=args.agent_name
    )
    sys.stdout.write(f"wrote {count} rows ({source}, split {args.split}) to {args.out}\n")
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    """Write the SFT parquet from CALM's output; say what was dropped and why."""
    from recipes.verl import calm_dump

    if calm_dump.is_calm_dump(args.source):  # verl's dump of the or_env_calm loop
        return calm_dump.cmd_prepare_sft_dump(args)
    selection = read_sft_source(args.source, args.layout, args.include_incorrect)
    count = write_sft_parquet(selection.rows, args.out)
    sys.stdout.write(f"wrote {count} rows to {args.out}\n")
    if selection.dropped:
        hint = "" if args.include_incorrect else " (--include-incorrect keeps incorrect ones)"
        sys.stdout.write(selection.summary() + hint + "\n")
    return 0


def _add_sft_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        help="CALM's sft.parquet, golden.jsonl or an episodes.jsonl, or verl's dump (a "
        "<step>.jsonl or its folder) of the or_env_calm loop (run_calm_curate.sh)",
    )
    p.add_argument("--out", required=True, help="the parquet file to write")
    p.add_argument(
        "--layout",
        default="split",
        choices=("split", "rendered"),
        help="split: outputs and hints as user messages, out of the loss",
    )
    p.add_argument(
        "--include-incorrect",
        action="store_true",
        help="from episode records, also keep incorrect episodes and those CALM did not "
        "keep (default: only correct, CALM-kept ones)",
    )
    from recipes.verl.calm_dump import add_dump_args

    add_dump_args(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `or-env recipes prepare-rl|prepare-sft` to the `or-env` parser."""
    recipes = subparsers.add_parser(
        "recipes", help="verl recipes: data preparation", formatter_class=HelpFormatter
    )
    actions = recipes.add_subparsers(dest="recipes_command", required=True, metavar="ACTION")
    rl = actions.add_parser(
        "prepare-rl", help="problems -> verl RL parquet", formatter_class=HelpFormatter
    )
    _add_rl_args(rl)
    rl.set_defaults(func=cmd_rl)
    sft = actions.add_parser(
        "prepare-sft",
        help="CALM output -> verl multi-turn SFT parquet",
        formatter_class=HelpFormatter,
    )
    _add_sft_args(sft)
    sft.set_defaults(func=cmd_sft)


def main(argv: list[str] | None = None) -> int:
    """`python -m recipes.verl.data rl|sft ...`."""
    parser = argparse.ArgumentParser(
        prog="python -m recipes.verl.data", description=__doc__, formatter_class=HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rl = commands.add_parser(
        "rl", help="problems -> verl RL parquet", formatter_class=HelpFormatter
    )
    _add_rl_args(rl)
    rl.set_defaults(func=cmd_rl)
    sft = commands.add_parser(
        "sft", help="CALM output -> verl multi-turn SFT parquet", formatter_class=HelpFormatter
    )
    _add_sft_args(sft)
    sft.set_defaults(func=cmd_sft)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (DatasetError, ValueError, KeyError, OSError) as exc:
        error(exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
