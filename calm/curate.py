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
- `run_config.json` (and, from the command line, `config.yaml`, the resolved run config):
  the settings a resumed run must match.

The exports and the report cover every episode in the folder (`agents.run_folder`), also
when this call planned fewer. Before the first episode both clients are checked
(`Policy.aprepare`: the servers answer and serve the named models).

`or-env calm curate` is its command line; its run config (`--config FILE.yaml`, flags,
overrides; `or_env.run_config`) is `CurateCommandConfig`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.eval import load_benchmarks
from agents.policy import Policy
from agents.run_folder import (
    CONFIG_FILE,
    EPISODES_FILE,
    IGNORED_DESCRIPTION_KEYS,
    RESUME_MAY_DIFFER,
    TRAINING_TIMEOUT_S,
    EnvSection,
    ProblemsSection,
    RunConfig,
    RunSection,
    SandboxSection,
    check_run_folder,
    default_of,
    folder_records,
    open_sandbox,
    run_config_fields,
)
from agents.runner import EpisodeSpec, RolloutRunner, plan_episodes
from calm.export import LAYOUTS, write_provenance_jsonl, write_sft_parquet
from calm.intervener import BaseIntervener
from calm.report import is_golden, summarize, write_report
from calm.tokens import make_meter
from calm.wrapper import TRIGGERS, CALMWrapper
from or_env.env import ORModelingEnv
from or_env.problems import Problem, load_problems
from or_env.run_config import MISSING

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "CURATE_RESUME_MAY_DIFFER",
    "EPISODES_FILE",
    "CurateCommandConfig",
    "CurateConfig",
    "CurateResult",
    "run_curate",
]

SFT_FILE = "sft.parquet"
GOLDEN_FILE = "golden.jsonl"
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


@dataclass(kw_only=True)
class CurateConfig(RunConfig):
    """What to curate and how: the shared run settings (`agents.run_folder.RunConfig`:
    out_dir, benchmarks, version, data_dir, limit, samples, concurrency, base_seed,
    rendering, tolerance, max_turns, max_executions, timeout, sandbox, sandbox_workers,
    progress), and:

    problems_path: a file of problems (JSONL/JSON/CSV/parquet, `or_env.load_problems`)
        instead of benchmarks.
    concurrency: default 16 (each episode also waits on the judge).
    timeout: default `TRAINING_TIMEOUT_S` (30 s): curation makes training data.
    max_interventions / trigger: `CALMWrapper` settings.
    sft_layout: "split" or "rendered" (`calm.export`).
    tokenizer: the reasoner's tokenizer (name or path) for the hint token share; None
        measures characters.
    """

    problems_path: str | None = None
    concurrency: int = 16
    timeout: float = TRAINING_TIMEOUT_S
    max_interventions: int = 5
    trigger: str = "end"
    sft_layout: str = "split"
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.benchmarks) == bool(self.problems_path):
            raise ValueError("give either benchmarks or a problems file (not both, not neither)")
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, got {self.trigger!r}")
        if self.sft_layout not in LAYOUTS:
            raise ValueError(f"sft_layout must be one of {LAYOUTS}, got {self.sft_layout!r}")


# ----------------------------------------------------------------------- the run config
_REASONINGS = ("merge", "separate")


@dataclass
class ReasonerSection:
    """`reasoner`, the model whose trajectories are curated: base_url (its API root), model
    (served name, required), api_key_env (the variable holding its key), completions (use
    /v1/completions), tokenizer (chat template for completions, and the unit of the hint
    token share; null: characters), max_tokens / temperature / top_p (null: the defaults,
    see `or-env calm curate --help`), reasoning (merge or separate reasoning_content)."""

    base_url: str = "http://localhost:8000/v1"
    model: str = MISSING
    api_key_env: str = "OPENAI_API_KEY"
    completions: bool = False
    tokenizer: str | None = None
    max_tokens: int | None = field(default=None, metadata={"min": 1})
    temperature: float | None = None
    top_p: float | None = None
    reasoning: str = field(default="merge", metadata={"choices": _REASONINGS})


@dataclass
class IntervenerSection:
    """`intervener`, the judge that writes hints: base_url, model (required), api_key_env,
    max_tokens (per reply), temperature, attempts (replies before "no verdict"),
    max_hint_chars (longest hint accepted), show_answer (show the judge the answer),
    taxonomy (a JSON flaw taxonomy; null: the built-in seven)."""

    base_url: str = "http://localhost:8001/v1"
    model: str = MISSING
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = field(default=2048, metadata={"min": 1})
    temperature: float | None = 0.0
    attempts: int = field(default=3, metadata={"min": 1})
    max_hint_chars: int = field(default=400, metadata={"min": 1})
    show_answer: bool = True
    taxonomy: str | None = None


@dataclass
class CurateProblemsSection(ProblemsSection):
    """`problems`, plus file: a JSONL/JSON/CSV/parquet file of problems instead of
    benchmarks (give one of the two)."""

    file: str | None = None


@dataclass
class CalmSection:
    """`calm`: max_interventions (hints per episode), trigger (end: when the episode ends;
    execution: after every execution), sft_layout (split or rendered, `calm.export`)."""

    max_interventions: int = field(
        default=default_of(CurateConfig, "max_interventions"), metadata={"min": 1}
    )
    trigger: str = field(
        default=default_of(CurateConfig, "trigger"), metadata={"choices": TRIGGERS}
    )
    sft_layout: str = field(
        default=default_of(CurateConfig, "sft_layout"), metadata={"choices": LAYOUTS}
    )


@dataclass
class CurateRunSection(RunSection):
    """`run`, with curation's concurrency (each episode also waits on the judge)."""

    concurrency: int = field(default=default_of(CurateConfig, "concurrency"), metadata={"min": 1})


@dataclass
class CurateEnvSection(EnvSection):
    """`env`, with curation's timeout (it makes training data)."""

    timeout: float = field(default=default_of(CurateConfig, "timeout"), metadata={"gt": 0})


@dataclass
class CurateCommandConfig:
    """The run config of `or-env calm curate` (`--config FILE.yaml`, flags, dot-list
    overrides; `or_env.run_config`): the sections reasoner, intervener, problems, env,
    calm, sandbox and run."""

    reasoner: ReasonerSection = field(default_factory=ReasonerSection)
    intervener: IntervenerSection = field(default_factory=IntervenerSection)
    problems: CurateProblemsSection = field(default_factory=CurateProblemsSection)
    env: CurateEnvSection = field(default_factory=CurateEnvSection)
    calm: CalmSection = field(default_factory=CalmSection)
    sandbox: SandboxSection = field(default_factory=SandboxSection)
    run: CurateRunSection = field(default_factory=CurateRunSection)

    def curate_config(self) -> CurateConfig:
        """The `CurateConfig` these settings describe."""
        return CurateConfig(
            **run_config_fields(self.problems, self.env, self.sandbox, self.run),
            problems_path=self.problems.file,
            max_interventions=self.calm.max_interventions,
            trigger=self.calm.trigger,
            sft_layout=self.calm.sft_layout,
            tokenizer=self.reasoner.tokenizer,
        )


# Keys of the run config that may differ when a run folder is resumed (besides the shared
# ones): where the servers run and their keys, the problems file (like the benchmarks),
# and the export layout (rewritten from the episodes on every run).
CURATE_RESUME_MAY_DIFFER = (
    *RESUME_MAY_DIFFER,
    "problems.file",
    "reasoner.base_url",
    "reasoner.api_key_env",
    "intervener.base_url",
    "intervener.api_key_env",
    "calm.sft_layout",
)


@dataclass
class CurateResult:
    """What `run_curate` produced: the records (every episode of the run folder), the kept
    ones, the statistics, the files."""

    records: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    summary: dict[str, Any]
    paths: dict[str, Path]


def load_curation_problems(config: CurateConfig) -> list[Problem]:
    """The problems of the configured benchmarks or problems file."""
    if config.problems_path:
        problems = load_problems(path=config.problems_path)[: config.limit or None]
    else:
        problems = load_benchmarks(config)
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("the problems repeat an id; give each problem a unique id")
    return problems


def _described(thing: Policy | BaseIntervener) -> dict[str, Any]:
    return {k: v for k, v in thing.describe().items() if k not in IGNORED_DESCRIPTION_KEYS}


async def _prepare(reasoner: Policy, intervener: BaseIntervener) -> None:
    """Check both endpoints before the first episode (`Policy.aprepare`)."""
    await reasoner.aprepare()
    client = getattr(intervener, "client", None)
    if isinstance(client, Policy):
        await client.aprepare()


async def arun_curate(
    reasoner: Policy,
    intervener: BaseIntervener,
    config: CurateConfig,
    problems: list[Problem] | None = None,
    *,
    resolved: CurateCommandConfig | None = None,
) -> CurateResult:
    """Run CALM over the problems and write the exports and the report (see the module doc);
    `resolved`, the command's run config, is checked against the folder's and saved."""
    problems = load_curation_problems(config) if problems is None else problems
    if not problems:
        raise ValueError("no problems to curate")
    await _prepare(reasoner, intervener)
    check_run_folder(
        config,
        _EPISODE_SETTINGS,
        {"reasoner": reasoner, "intervener": intervener},
        "CALM run",
        resolved=resolved,
        ignore=CURATE_RESUME_MAY_DIFFER,
    )
    sandbox = open_sandbox(config)
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
        planned = await runner.arun(specs, config.episodes_path)
    finally:
        sandbox.close()
    records = folder_records(config.out_dir, planned)
    if len(records) > len(planned):
        logger.warning(
            "%s holds %d episodes, %d of them planned by this run: the exports and the report "
            "cover all %d",
            config.out_dir,
            len(records),
            len(planned),
            len(records),
        )
    return export_run(records, config, intervener)


def export_run(
    records: list[dict[str, Any]], config: CurateConfig, intervener: BaseIntervener
) -> CurateResult:
    """Keep the golden records and write sft.parquet, golden.jsonl and the report."""
    out = config.out_dir
    # Sorted, so that a resumed or subset rerun writes exactly the same files (the folder's
    # records come back in completion order).
    kept = sorted(
        (record for record in records if is_golden(record)),
        key=lambda r: (str(r.get("problem_id")), int(r.get("sample") or 0)),
    )
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
    *,
    resolved: CurateCommandConfig | None = None,
) -> CurateResult:
    """`arun_curate` from synchronous code; closes both clients' connections at the end."""

    async def go() -> CurateResult:
        try:
            return await arun_curate(reasoner, intervener, config, problems, resolved=resolved)
        finally:
            await reasoner.aclose()
            await intervener.aclose()

    return asyncio.run(go())
