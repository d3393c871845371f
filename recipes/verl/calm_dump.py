"""CALM trajectories played inside verl: their record in verl's generation dump, and curation.

Write side (in the rollout workers, `calm_agent_loop.py`): `episode_record` turns one
trajectory of the `or_env_calm` loop into an episode record in the rollout runner's format
(`agents.runner`: problem, status, correct, the transcript's messages with their sources,
CALM's `calm` summary, ...), so the curation code of `or-env calm curate` reads it as it is.
`dump_fields` packs it into the loop's `reward_extra_info`: verl writes every
`reward_extra_info` key of every sample into its generation dumps
(`trainer.validation_data_dir/<step>.jsonl` in a validation-only run, `run_calm_curate.sh`;
`trainer.rollout_data_dir` during training). The record travels as one JSON string
(`calm_record`): verl stacks each key into a numpy array over the batch, which keeps strings
as they are (nested lists would be reshaped or refused), and skips strings when it averages
validation metrics. Numbers next to it (`calm_interventions`, `calm_kept`) become verl's
validation metrics.

Read side: `read_dump` gives the records back (a dump file, or a folder of them);
`curate_dump` keeps the golden ones with the rule of `or-env calm curate`
(`calm.report.is_golden`: the episode ran, ended correct, and its final judgement is
flawless) and writes what `calm curate` writes: the SFT parquet (`calm.export`, verl's
multi-turn format), golden.jsonl, episodes.jsonl and the report (`calm.report`: tried,
corrected, kept, hint share, flaw types, interventions per trajectory). `or-env recipes
prepare-sft DUMP` calls it for a dump.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.records import SCHEMA_VERSION
from calm.export import LAYOUTS, sft_messages, write_provenance_jsonl, write_sft_parquet
from calm.report import is_golden, summarize, write_report
from calm.taxonomy import DEFAULT_TAXONOMY, Taxonomy
from calm.tokens import make_meter
from calm.wrapper import TRIGGERS
from or_env.cli import error
from or_env.env import ORModelingEnv

logger = logging.getLogger(__name__)

#: The agent loop that plays the env inside `CALMWrapper` (config/agent_loop.yaml).
CALM_AGENT_NAME = "or_env_calm"
#: The dump column holding the episode record (a JSON string).
RECORD_KEY = "calm_record"
EPISODES_FILE = "episodes.jsonl"
GOLDEN_FILE = "golden.jsonl"
# Keys of a final step's info copied into the record (as the rollout runner does).
_OUTCOME_KEYS = ("answer", "grade")


def episode_record(
    env: ORModelingEnv,
    *,
    calm: Mapping[str, Any],
    info: Mapping[str, Any],
    done: bool,
    reward: float,
    termination_reason: str | None,
    generated_turns: int,
    tokens: Mapping[str, int],
    policy: Mapping[str, Any],
    intervener: Mapping[str, Any],
    taxonomy: Taxonomy,
    request_id: str,
) -> dict[str, Any]:
    """The episode record of one trajectory (the rollout runner's fields, see the module doc).

    `sample` is None here: a worker does not know which of a prompt's n samples it plays;
    `read_dump` numbers them. `tokens`: prompt, response, hint token counts of the final
    trajectory as the model saw it.
    """
    problem = env.problem
    assert problem is not None
    return {
        "schema": SCHEMA_VERSION,
        "problem_id": problem.id,
        "benchmark": problem.benchmark,
        "version": problem.meta.get("version"),
        "sample": None,
        "seed": None,
        "status": "ok",
        "error": None,
        "reward": float(reward),
        "correct": bool(info.get("correct")) if done else False,
        **{key: info.get(key) if done else None for key in _OUTCOME_KEYS},
        "ground_truth": problem.answer,
        "termination_reason": termination_reason,
        "turns": env.turn,
        "generated_turns": generated_turns,
        "executions": env.executions,
        "messages": env.transcript.to_dicts(),
        "tokens": dict(tokens),
        "rendering": env.rendering,
        "tolerance": getattr(env.tolerance, "name", str(env.tolerance)),
        "policy": dict(policy),
        "intervener": dict(intervener),
        "taxonomy": [flaw.to_dict() for flaw in taxonomy],
        "request_id": request_id,
        "calm": dict(calm),
    }


def dump_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The `reward_extra_info` entries that carry a record into verl's dumps."""
    calm = record.get("calm") or {}
    return {
        RECORD_KEY: json.dumps(record, ensure_ascii=False, default=str),
        "calm_final": str(calm.get("final")),
        "calm_interventions": len(calm.get("interventions") or []),
        "calm_kept": bool(is_golden(record)),
    }


# ----------------------------------------------------------------------- read side
def dump_files(path: str | Path) -> list[Path]:
    """The dump files at `path`: the file itself, or a folder's `<step>.jsonl` files in
    step order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"), key=lambda p: (not p.stem.isdigit(), _step(p), p.name))
        return [f for f in files if f.name not in (EPISODES_FILE, GOLDEN_FILE)]
    return [path]


def _step(path: Path) -> int:
    return int(path.stem) if path.stem.isdigit() else 0


def is_calm_dump(path: str | Path) -> bool:
    """Whether `path` is a verl dump written with the `or_env_calm` loop (its first line
    holds a `calm_record`)."""
    for file in dump_files(path):
        if not file.is_file():
            continue
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        first = json.loads(line)
                    except json.JSONDecodeError:
                        return False
                    return isinstance(first, dict) and RECORD_KEY in first
    return False


def read_dump(path: str | Path) -> list[dict[str, Any]]:
    """The episode records in a verl dump (file or folder), samples numbered per problem
    in dump order."""
    records: list[dict[str, Any]] = []
    files = dump_files(path)
    if not files:
        raise ValueError(f"{path}: no dump files (*.jsonl)")
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    record = json.loads(row[RECORD_KEY])
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{file}:{number}: not JSON ({exc})") from exc
                except (KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{file}:{number}: no {RECORD_KEY!r}: not a dump of the {CALM_AGENT_NAME} "
                        "loop (run recipes/verl/run_calm_curate.sh)"
                    ) from exc
                record["dump"] = {"file": file.name, "line": number, "step": row.get("step")}
                records.append(record)
    seen: Counter[str] = Counter()
    for record in records:
        if record.get("sample") is None:
            record["sample"] = seen[str(record["problem_id"])]
        seen[str(record["problem_id"])] += 1
    return records


def dump_taxonomy(records: Sequence[Mapping[str, Any]]) -> Taxonomy:
    """The flaw taxonomy the loop judged with (recorded), else the default."""
    for record in records:
        if record.get("taxonomy"):
            return Taxonomy.from_dicts(record["taxonomy"])
    return DEFAULT_TAXONOMY


def _one(values: Iterable[Any]) -> Any:
    shown = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return json.loads(sorted(shown)[0]) if len(shown) == 1 else "several"


@dataclass
class DumpCuration:
    """What `curate_dump` read and wrote: every record, the SFT rows' records, the kept
    (golden) ones, the report's statistics, the files, and why records were not written."""

    records: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    summary: dict[str, Any]
    paths: dict[str, Path]
    dropped: dict[str, int]

    def totals_line(self) -> str:
        """One line in the words of `or-env calm curate`."""
        t = self.summary["totals"]
        share = t["hint_share_kept"]
        shown = "-" if share is None else f"{100 * share:.2f}%"
        return (
            f"{t['problems']} problems, {t['episodes']} trajectories: first-try correct "
            f"{t['first_try_correct']}, final correct {t['final_correct']}, corrected "
            f"{t['corrected']}, kept {t['kept']} ({t['kept_problems']} problems); hint share "
            f"of kept trajectories {shown} ({self.summary['unit_label']})"
        )


def curate_dump(
    source: str | Path,
    out: str | Path,
    *,
    layout: str = "split",
    report_dir: str | Path | None = None,
    tokenizer: str | Any | None = None,
    include_incorrect: bool = False,
) -> DumpCuration:
    """Read a dump, keep the golden trajectories, write the SFT parquet and the report.

    The parquet at `out` gets the kept records (with `include_incorrect`, every record that
    ran and has a policy turn, as `prepare-sft --include-incorrect` does for episode files);
    `report_dir` (default: the dump's folder) gets episodes.jsonl, golden.jsonl, report.md,
    report.json and flaw_types.png. Raises ValueError when no row is left to write (after
    writing the report, which says why).
    """
    from recipes.verl.data import check_sft_messages, drop_reason

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    source = Path(source)
    records = read_dump(source)
    folder = Path(report_dir) if report_dir else (source if source.is_dir() else source.parent)
    folder.mkdir(parents=True, exist_ok=True)
    kept = [r for r in records if is_golden(r)]
    dropped: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for record in records:
        reason = drop_reason(record, include_incorrect)
        if reason is None:
            rows.append(record)
        else:
            dropped[reason] += 1
    paths = {"episodes": folder / EPISODES_FILE, "golden": folder / GOLDEN_FILE}
    with paths["episodes"].open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    taxonomy = dump_taxonomy(records)
    settings = {
        "source": f"verl dump {source}",
        "reasoner": _one(r.get("policy") for r in records),
        "intervener": _one(r.get("intervener") for r in records),
        "problems": len({str(r["problem_id"]) for r in records}),
        "samples": max(Counter(str(r["problem_id"]) for r in records).values(), default=0),
        "max_interventions": _one((r.get("calm") or {}).get("max_interventions") for r in records),
        "trigger": _one((r.get("calm") or {}).get("trigger") for r in records),
        "rendering": _one(r.get("rendering") for r in records),
        "tolerance": _one(r.get("tolerance") for r in records),
        "sft_layout": layout,
    }
    context = {"intervener": settings["intervener"], "curation": settings}
    write_provenance_jsonl(kept, paths["golden"], layout, context)
    summary = summarize(records, make_meter(tokenizer), taxonomy)
    paths.update(write_report(summary, settings, folder))
    curation = DumpCuration(records, rows, kept, summary, paths, dict(dropped.most_common()))
    if not rows:
        raise ValueError(
            f"no trajectory of {len(records)} was kept (correct and judged flawless): nothing "
            f"to train on; see {paths['report_md']}"
        )
    for record in rows:
        where = f"{record['problem_id']}/{record['sample']}"
        check_sft_messages(sft_messages(record["messages"], layout), where=where)
    write_sft_parquet(rows, out, layout)
    paths["sft"] = Path(out)
    return curation


# ----------------------------------------------------------------------- command line
def add_dump_args(p: argparse.ArgumentParser) -> None:
    """`prepare-sft` options that only a CALM dump uses."""
    p.add_argument(
        "--report-dir",
        help="for a verl dump of the or_env_calm loop: where the curation report, "
        "episodes.jsonl and golden.jsonl go (default: the dump's folder)",
    )
    p.add_argument(
        "--tokenizer",
        help="for a verl dump: the reasoner's tokenizer (name or path) to measure the hint "
        "share in tokens (default: characters)",
    )


def cmd_prepare_sft_dump(args: argparse.Namespace) -> int:
    """`prepare-sft` on a verl dump: curate, write the parquet, print what was kept."""
    from recipes.verl.data import SFTSelection

    curation = curate_dump(
        args.source,
        args.out,
        layout=args.layout,
        report_dir=getattr(args, "report_dir", None),
        tokenizer=getattr(args, "tokenizer", None),
        include_incorrect=args.include_incorrect,
    )
    out = sys.stdout
    out.write(curation.totals_line() + "\n")
    out.write(f"wrote {len(curation.rows)} rows to {args.out}\n")
    dropped = SFTSelection(curation.rows, curation.dropped, len(curation.records)).summary()
    if dropped:
        out.write(dropped + "\n")
    out.write("\n".join(f"{k}: {v}" for k, v in curation.paths.items()) + "\n")
    return 0


# ----------------------------------------------------------------------- launcher support
def check_problems(path: str | Path) -> int:
    """The row count of an RL parquet whose every row is played by the CALM loop; raises
    ValueError otherwise (rows of the plain loop would be played without CALM, and the run
    would dump nothing to curate)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["agent_name"])
    names = Counter(str(name) for name in table.column("agent_name").to_pylist())
    others = {name: count for name, count in names.items() if name != CALM_AGENT_NAME}
    if others:
        raise ValueError(
            f"{path}: {sum(others.values())} of {table.num_rows} rows name another agent loop "
            f"({', '.join(sorted(others))}); make the problems with `or-env recipes prepare-rl "
            f"--agent-name {CALM_AGENT_NAME} ...`"
        )
    if not table.num_rows:
        raise ValueError(f"{path}: no rows")
    return table.num_rows


def curate_loop_config(
    base: str | Path,
    *,
    intervener_url: str,
    intervener_model: str,
    concurrency: int | None = None,
    max_interventions: int | None = None,
    trigger: str | None = None,
    sandbox: str | None = None,
) -> list[dict[str, Any]]:
    """The agent-loop config of a curation run: `base` (the recipe's agent_loop.yaml) with
    the `or_env_calm` entry's judge endpoint and knobs set."""
    import yaml

    entries = yaml.safe_load(Path(base).read_text(encoding="utf-8"))
    (entry,) = [e for e in entries if e.get("name") == CALM_AGENT_NAME]
    entry["intervener"] = {
        **(entry.get("intervener") or {}),
        "base_url": intervener_url,
        "model": intervener_model,
    }
    if concurrency is not None:
        entry["intervener"]["max_connections"] = int(concurrency)
    if max_interventions is not None:
        entry["max_interventions"] = int(max_interventions)
    if trigger is not None:
        entry["trigger"] = trigger
    if sandbox is not None:
        entry["sandbox"] = sandbox
    return entries


def cmd_prepare_run(args: argparse.Namespace) -> int:
    """Check the problems and write the run's agent-loop config."""
    import yaml

    rows = check_problems(args.problems)
    entries = curate_loop_config(
        args.base,
        intervener_url=args.intervener_url,
        intervener_model=args.intervener_model,
        concurrency=args.concurrency,
        max_interventions=args.max_interventions,
        trigger=args.trigger,
        sandbox=args.sandbox,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `python -m recipes.verl.calm_dump prepare-run` for a curation run.\n"
    out.write_text(header + yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    sys.stdout.write(f"{args.problems}: {rows} problems for {CALM_AGENT_NAME}; config {out}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m recipes.verl.calm_dump prepare-run ...` (used by run_calm_curate.sh)."""
    parser = argparse.ArgumentParser(prog="python -m recipes.verl.calm_dump", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("prepare-run", help="check the problems, write the loop config")
    run.add_argument("--problems", required=True, help="the RL parquet (agent_name or_env_calm)")
    run.add_argument("--base", required=True, help="the recipe's agent_loop.yaml")
    run.add_argument("--out", required=True, help="the run's agent-loop yaml to write")
    run.add_argument("--intervener-url", required=True, help="the judge's API root")
    run.add_argument("--intervener-model", required=True, help="the judge's served model")
    run.add_argument("--concurrency", type=int, help="judge requests in flight per worker")
    run.add_argument("--max-interventions", type=int, help="hints per trajectory at most")
    run.add_argument("--trigger", choices=TRIGGERS, help="when the judge is asked")
    run.add_argument("--sandbox", choices=("auto", "local", "docker"), help="sandbox backend")
    run.set_defaults(func=cmd_prepare_run)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        error(exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
