"""The CALM curation pipeline: reasoner + intervener on many problems -> SFT data and a report.

`run_curate(reasoner, intervener, CurateConfig(...))` plays `samples` episodes per problem
with the reasoner (`agents.Policy`) inside `CALMWrapper` envs, through the agents rollout
runner (concurrency, progress bar, one JSONL record per episode, resumable: rerunning the
same command skips finished episodes and retries failed ones; a run folder refuses other
settings). Then it keeps the golden trajectories (correct AND judged flawless) and writes,
in `out_dir`:

- `episodes.jsonl`: every episode record, with CALM's interventions and judgements (`calm`);
- `sft.parquet`: the kept trajectories in verl's multi-turn SFT format (`calm.export`);
- `golden.jsonl`: the same trajectories with provenance (sources, hints, dropped turns,
  judge replies, reasoner and intervener settings);
- `report.md`, `report.json`, `flaw_types.png`: what CALM changed (`calm.report`);
- `run_config.json`: the settings a resumed run must match.

`or-env calm curate` is its command line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.eval import EvalConfig, load_benchmarks
from agents.policy import Policy
from agents.runner import EpisodeSpec, RolloutRunner, plan_episodes
from calm.export import LAYOUTS, write_provenance_jsonl, write_sft_parquet
from calm.intervener import BaseIntervener
from calm.report import is_golden, summarize, write_report
from calm.tokens import make_meter
from calm.wrapper import TRIGGERS, CALMWrapper
from or_env.env import ORModelingEnv
from or_env.problems import Problem, load_problems
from or_env.sandbox import make_sandbox

logger = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
SFT_FILE = "sft.parquet"
GOLDEN_FILE = "golden.jsonl"
CONFIG_FILE = "run_config.json"
# Settings that change what an episode is; a resumed run must not mix them.
_EPISODE_SETTINGS = (
    "rendering",
    "tolerance",
    "max_turns",
    "max_executions",
    "timeout",
    "base_seed",
    "max_interventions",
    "trigger",
)
# Where a server runs does not change an episode.
_IGNORED_DESCRIPTION_KEYS = ("base_url", "episodes")


@dataclass
class CurateConfig:
    """What to curate and how.

    out_dir: the run folder. benchmarks: names from `or-env benchmarks` (NAME[@VERSION]), or
    problems_path: a file of problems (JSONL/JSON/CSV/parquet, `or_env.load_problems`).
    version / data_dir / limit: as for `or-env eval` (limit: first N problems of each).
    samples: episodes per problem. concurrency: episodes in flight. base_seed: episode seeds.
    rendering / tolerance / max_turns / max_executions / timeout: `ORModelingEnv` settings.
    sandbox / sandbox_workers: the sandbox backend and its pool size.
    max_interventions / trigger: `CALMWrapper` settings.
    sft_layout: "split" or "rendered" (`calm.export`).
    tokenizer: the reasoner's tokenizer (name or path) for the hint token share; None
        measures characters.
    progress: show a progress bar.
    """

    out_dir: Path
    benchmarks: list[str] = field(default_factory=list)
    problems_path: str | None = None
    version: str | None = None
    data_dir: str | None = None
    limit: int = 0
    samples: int = 1
    concurrency: int = 16
    base_seed: int = 0
    rendering: str = "inline"
    tolerance: str = "default"
    max_turns: int = 12
    max_executions: int = 10
    timeout: float = 30.0
    sandbox: str = "auto"
    sandbox_workers: int | None = None
    max_interventions: int = 5
    trigger: str = "end"
    sft_layout: str = "split"
    tokenizer: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if bool(self.benchmarks) == bool(self.problems_path):
            raise ValueError("give either benchmarks or a problems file (not both, not neither)")
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, got {self.trigger!r}")
        if self.sft_layout not in LAYOUTS:
            raise ValueError(f"sft_layout must be one of {LAYOUTS}, got {self.sft_layout!r}")

    def settings(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


@dataclass
class CurateResult:
    """What `run_curate` produced: the records, the kept ones, the statistics, the files."""

    records: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    summary: dict[str, Any]
    paths: dict[str, Path]


def load_curation_problems(config: CurateConfig) -> list[Problem]:
    """The problems of the configured benchmarks or problems file."""
    if config.problems_path:
        problems = load_problems(path=config.problems_path)[: config.limit or None]
    else:
        problems = load_benchmarks(
            EvalConfig(
                benchmarks=config.benchmarks,
                out_dir=config.out_dir,
                version=config.version,
                data_dir=config.data_dir,
                limit=config.limit,
            )
        )
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("the problems repeat an id; give each problem a unique id")
    return problems


def _described(thing: Policy | BaseIntervener) -> dict[str, Any]:
    return {k: v for k, v in thing.describe().items() if k not in _IGNORED_DESCRIPTION_KEYS}


def _check_resume(config: CurateConfig, reasoner: Policy, intervener: BaseIntervener) -> None:
    """Refuse to resume a run folder made with other settings (it would mix episodes)."""
    wanted = {k: config.settings()[k] for k in _EPISODE_SETTINGS}
    wanted["reasoner"] = _described(reasoner)
    wanted["intervener"] = _described(intervener)
    path = config.out_dir / CONFIG_FILE
    if path.exists() and (config.out_dir / EPISODES_FILE).exists():
        found = json.loads(path.read_text())
        differs = sorted(k for k in wanted if _canonical(found.get(k)) != _canonical(wanted[k]))
        if differs:
            raise ValueError(
                f"{config.out_dir} holds a CALM run made with other settings "
                f"({', '.join(differs)}); use another --out, or delete that folder to start over"
            )
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2, default=str) + "\n")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


async def arun_curate(
    reasoner: Policy,
    intervener: BaseIntervener,
    config: CurateConfig,
    problems: list[Problem] | None = None,
) -> CurateResult:
    """Run CALM over the problems and write the exports and the report (see the module doc)."""
    problems = load_curation_problems(config) if problems is None else problems
    if not problems:
        raise ValueError("no problems to curate")
    _check_resume(config, reasoner, intervener)
    options: dict[str, Any] = {"timeout": max(config.timeout, 1.0)}
    if config.sandbox_workers:
        options["workers"] = config.sandbox_workers
    sandbox = make_sandbox(config.sandbox, **options)
    env_kwargs = {
        "sandbox": sandbox,
        "rendering": config.rendering,
        "tolerance": config.tolerance,
        "max_turns": config.max_turns,
        "max_executions": config.max_executions,
        "timeout": config.timeout,
    }

    def make_env(spec: EpisodeSpec) -> CALMWrapper:
        env = ORModelingEnv([spec.problem], **env_kwargs)
        return CALMWrapper(env, intervener, config.max_interventions, config.trigger)

    try:
        runner = RolloutRunner(
            reasoner,
            env_factory=make_env,
            concurrency=config.concurrency,
            progress=config.progress,
            description="calm",
        )
        specs = plan_episodes(problems, config.samples, config.base_seed)
        records = await runner.arun(specs, config.out_dir / EPISODES_FILE)
    finally:
        sandbox.close()
    return export_run(records, config, intervener)


def export_run(
    records: list[dict[str, Any]], config: CurateConfig, intervener: BaseIntervener
) -> CurateResult:
    """Keep the golden records and write sft.parquet, golden.jsonl and the report."""
    out = config.out_dir
    kept = [record for record in records if is_golden(record)]
    paths = {"episodes": out / EPISODES_FILE, "sft": out / SFT_FILE, "golden": out / GOLDEN_FILE}
    write_sft_parquet(kept, paths["sft"], config.sft_layout)
    context = {"intervener": intervener.describe(), "curation": config.settings()}
    write_provenance_jsonl(kept, paths["golden"], config.sft_layout, context)
    summary = summarize(records, make_meter(config.tokenizer), intervener.taxonomy)
    reasoners = {json.dumps(r.get("policy"), sort_keys=True, default=str) for r in records}
    settings = {
        "reasoner": json.loads(sorted(reasoners)[0]) if len(reasoners) == 1 else "several",
        "intervener": _described(intervener),
        "problems": config.problems_path or ", ".join(config.benchmarks),
        "samples": config.samples,
        "max_interventions": config.max_interventions,
        "trigger": config.trigger,
        "rendering": config.rendering,
        "tolerance": config.tolerance,
        "sft_layout": config.sft_layout,
    }
    paths.update(write_report(summary, settings, out))
    errors = summary["totals"]["errors"]
    if errors:
        logger.warning(
            "%d episode(s) failed to run (see 'error' in %s); run the same command again to "
            "retry them",
            errors,
            paths["episodes"],
        )
    return CurateResult(records, kept, summary, paths)


def run_curate(
    reasoner: Policy,
    intervener: BaseIntervener,
    config: CurateConfig,
    problems: list[Problem] | None = None,
) -> CurateResult:
    """`arun_curate` from synchronous code; closes both clients' connections at the end."""

    async def go() -> CurateResult:
        try:
            return await arun_curate(reasoner, intervener, config, problems)
        finally:
            await reasoner.aclose()
            await intervener.aclose()

    return asyncio.run(go())
