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

SFT parquet (read by verl's `MultiTurnSFTDataset`): a `messages` column of role/content
lists, from CALM's outputs: its `sft.parquet` (checked and copied), its `golden.jsonl`
(`sft_messages` of each row) or an `episodes.jsonl` of episode records (split into SFT
messages by `calm.export` when it is installed: policy text is assistant, outputs and hints
are user messages, so they stay out of the loss).

Command line: `python -m recipes.verl.data rl ...` / `python -m recipes.verl.data sft ...`,
also `or-env recipes prepare-rl|prepare-sft` through `register`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from or_env.env import ORModelingEnv
from or_env.problems import Problem, load_problems
from recipes.verl import ABILITY, AGENT_NAME, DATA_SOURCE_PREFIX

logger = logging.getLogger(__name__)

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


def sft_rows_from_jsonl(path: str | Path, layout: str = "split") -> list[dict[str, Any]]:
    """SFT rows from CALM's golden.jsonl (`sft_messages`) or episode records (`messages`)."""
    rows: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "sft_messages" in record:
                messages = record["sft_messages"]
            elif "messages" in record:
                messages = _split_messages(record["messages"], layout)
            else:
                raise ValueError(
                    f"{path}:{line_no}: no 'sft_messages' or 'messages'; expected CALM's "
                    "golden.jsonl or an episodes.jsonl"
                )
            rows.append(
                {
                    "messages": [_role_content(m) for m in messages],
                    "data_source": f"{DATA_SOURCE_PREFIX}{record.get('benchmark')}",
                    "problem_id": str(record.get("problem_id", "")),
                }
            )
    return rows


def write_sft_parquet(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write verl's multi-turn SFT parquet from rows with `messages`; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(rows)
    if not rows:
        raise ValueError("no SFT rows to write; the CALM output holds no kept trajectories")
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


def convert_sft(source: str | Path, out: str | Path, layout: str = "split") -> int:
    """CALM output (sft.parquet, golden.jsonl or episodes.jsonl) -> verl SFT parquet."""
    source = Path(source)
    if source.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(source).to_pylist()
    else:
        rows = sft_rows_from_jsonl(source, layout)
    return write_sft_parquet(rows, out)


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
    p.add_argument("--benchmark", help="a registered benchmark (`or-env benchmarks`)")
    p.add_argument("--version", help="the benchmark's version (default: its default)")
    p.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    p.add_argument("--problems", help="a JSONL/JSON/CSV/parquet file of problems instead")
    p.add_argument("--out", required=True, help="the parquet file to write")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=0, help="keep only the first N problems")
    p.add_argument("--max-turns", type=int)
    p.add_argument("--max-executions", type=int)
    p.add_argument("--tolerance", help="a tolerance preset (default: 'default')")
    p.add_argument("--agent-name", default=AGENT_NAME)


def cmd_rl(args: argparse.Namespace) -> int:
    """Write the RL parquet for a benchmark or a problem file."""
    if bool(args.benchmark) == bool(args.problems):
        raise SystemExit("give exactly one of --benchmark NAME or --problems FILE")
    if args.benchmark:
        problems = load_problems(args.benchmark, version=args.version, path=args.data_dir)
    else:
        problems = load_problems(path=args.problems)
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
    sys.stdout.write(f"wrote {count} rows to {args.out}\n")
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    """Write the SFT parquet from CALM's output."""
    count = convert_sft(args.source, args.out, args.layout)
    sys.stdout.write(f"wrote {count} rows to {args.out}\n")
    return 0


def _add_sft_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="CALM's sft.parquet, golden.jsonl or an episodes.jsonl")
    p.add_argument("--out", required=True, help="the parquet file to write")
    p.add_argument("--layout", default="split", choices=("split", "rendered"))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `or-env recipes prepare-rl|prepare-sft` to the `or-env` parser."""
    recipes = subparsers.add_parser("recipes", help="verl recipes: data preparation")
    actions = recipes.add_subparsers(dest="recipes_command", required=True, metavar="ACTION")
    rl = actions.add_parser("prepare-rl", help="problems -> verl RL parquet")
    _add_rl_args(rl)
    rl.set_defaults(func=cmd_rl)
    sft = actions.add_parser("prepare-sft", help="CALM output -> verl multi-turn SFT parquet")
    _add_sft_args(sft)
    sft.set_defaults(func=cmd_sft)


def main(argv: list[str] | None = None) -> int:
    """`python -m recipes.verl.data rl|sft ...`."""
    parser = argparse.ArgumentParser(prog="python -m recipes.verl.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rl = commands.add_parser("rl", help="problems -> verl RL parquet")
    _add_rl_args(rl)
    rl.set_defaults(func=cmd_rl)
    sft = commands.add_parser("sft", help="CALM output -> verl multi-turn SFT parquet")
    _add_sft_args(sft)
    sft.set_defaults(func=cmd_sft)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
