"""The evaluation harness: a policy on benchmarks -> episodes.jsonl, results.{json,md,png}.

`run_eval(policy, EvalConfig(benchmarks=["nl4opt", "mamo-easylp"], out_dir=...))` loads the
problems, plays `samples` episodes per problem with `RolloutRunner` (resumable: rerunning
the same command continues an interrupted run), scores them (`agents.metrics`) and writes
the reports (`agents.report`) of every episode in the run folder (`agents.run_folder`).
`or-env eval` is its command line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.metrics import BenchmarkScore, score_benchmarks
from agents.policy import Policy
from agents.report import main_table, write_reports
from agents.run_folder import (
    CONFIG_FILE,
    EPISODES_FILE,
    EVAL_TIMEOUT_S,
    RunConfig,
    check_resume,
    folder_records,
    open_sandbox,
)
from agents.runner import RolloutRunner, plan_episodes
from or_env.direct import ORLM_USER_TEMPLATE
from or_env.problems import Problem, load_problems
from or_env.sandbox import Sandbox

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "EPISODES_FILE",
    "PROMPTS",
    "EvalConfig",
    "EvalResult",
    "arun_eval",
    "load_benchmarks",
    "run_eval",
]

# The prompt presets: (system prompt, user template); None keeps the env's default.
PROMPTS: dict[str, tuple[str | None, str]] = {
    "default": (None, "{question}"),
    "orlm": ("", ORLM_USER_TEMPLATE),
}
# Settings that change what an episode is; a resumed run must not mix them.
_EPISODE_SETTINGS = (
    "protocol",
    "rendering",
    "direct_rule",
    "tolerance",
    "prompt",
    "max_turns",
    "max_executions",
    "timeout",
    "base_seed",
)


@dataclass(kw_only=True)
class EvalConfig(RunConfig):
    """What to evaluate and how: the shared run settings (`agents.run_folder.RunConfig`:
    out_dir, benchmarks, version, data_dir, limit, samples, concurrency, base_seed,
    rendering, tolerance, max_turns, max_executions, timeout, sandbox, sandbox_workers,
    progress), and:

    timeout: seconds per code execution; default `EVAL_TIMEOUT_S` (300 s), long enough for
        the large MILPs of the benchmarks (see `agents.run_folder`).
    protocol / direct_rule: `ORModelingEnv` settings ("native" or "direct").
    prompt: "default" or "orlm" (ORLM's completion prompt, for its models and replays).
    label: the row name in the table (default: the policy's model).
    """

    timeout: float = EVAL_TIMEOUT_S
    protocol: str = "native"
    direct_rule: str = "default"
    prompt: str = "default"
    label: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prompt not in PROMPTS:
            raise ValueError(f"unknown prompt {self.prompt!r}; choose from {sorted(PROMPTS)}")


@dataclass
class EvalResult:
    """What `run_eval` produced: scores, the records, the written files, the table.

    records: every episode of the run folder (the reports describe them all); planned:
    how many of them this call's plan held.
    """

    scores: list[BenchmarkScore]
    records: list[dict[str, Any]]
    paths: dict[str, Path]
    table: str
    planned: int = 0


def parse_benchmark(spec: str, default_version: str | None) -> tuple[str, str | None]:
    """("nl4opt", "orlm-hf") from "nl4opt@orlm-hf"; the default version when none is given."""
    name, _, version = spec.strip().partition("@")
    if not name:
        raise ValueError(f"empty benchmark name in {spec!r}")
    return name, version or default_version


def load_benchmarks(config: RunConfig) -> list[Problem]:
    """The problems of every configured benchmark, each cut to `limit`."""
    problems: list[Problem] = []
    for spec in config.benchmarks:
        name, version = parse_benchmark(spec, config.version)
        loaded = load_problems(name, version=version, path=config.data_dir)
        problems.extend(loaded[: config.limit or None])
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("two benchmarks share problem ids; evaluate them in separate runs")
    return problems


def _check_resume(config: EvalConfig, policy: Policy) -> None:
    """Refuse to resume a run that was made with other settings (it would mix episodes)."""
    wanted = {k: config.settings()[k] for k in _EPISODE_SETTINGS}
    # Where the server runs, or how many recordings a replay holds, does not change an episode.
    wanted["policy"] = {
        k: v for k, v in policy.describe().items() if k not in ("base_url", "episodes")
    }
    check_resume(config.out_dir, wanted, "run")


def env_kwargs(config: EvalConfig, sandbox: Sandbox) -> dict[str, Any]:
    """The ORModelingEnv settings of a config."""
    system_prompt, user_template = PROMPTS[config.prompt]
    return {
        "sandbox": sandbox,
        "rendering": config.rendering,
        "protocol": config.protocol,
        "direct_rule": config.direct_rule,
        "tolerance": config.tolerance,
        "max_turns": config.max_turns,
        "max_executions": config.max_executions,
        "timeout": config.timeout,
        "system_prompt": system_prompt,
        "user_template": user_template,
    }


async def arun_eval(
    policy: Policy, config: EvalConfig, problems: list[Problem] | None = None
) -> EvalResult:
    """Evaluate `policy` (see the module doc); `problems` overrides loading the benchmarks.

    The policy is checked first (`Policy.aprepare`: for a server, that it answers and serves
    the model). The reports cover every episode in `config.out_dir`, also those of earlier
    runs with other benchmarks or a larger `limit`.
    """
    problems = load_benchmarks(config) if problems is None else problems
    if not problems:
        raise ValueError("no problems to evaluate")
    await policy.aprepare()
    _check_resume(config, policy)
    sandbox = open_sandbox(config)
    try:
        runner = RolloutRunner(
            policy,
            env_kwargs=env_kwargs(config, sandbox),
            concurrency=config.concurrency,
            progress=config.progress,
            description="eval",
        )
        specs = plan_episodes(problems, config.samples, config.base_seed)
        planned = await runner.arun(specs, config.episodes_path)
    finally:
        sandbox.close()
    records = folder_records(config.out_dir, planned)
    if len(records) > len(planned):
        logger.warning(
            "%s holds %d episodes, %d of them planned by this run: the reports describe all %d",
            config.out_dir,
            len(records),
            len(planned),
            len(records),
        )
    scores = score_benchmarks(records)
    described = policy.describe()
    model = config.label or str(described.get("model") or described.get("source") or policy.name)
    shown = {k: config.settings()[k] for k in ("protocol", "rendering", "tolerance", "samples")}
    shown["timeout_s"] = config.timeout
    if config.protocol == "direct":
        shown["direct_rule"] = config.direct_rule
    paths = write_reports(scores, model, {**shown, "policy": policy.name}, config.out_dir)
    paths["episodes"] = config.episodes_path
    errors = sum(s.errors for s in scores)
    if errors:
        logger.warning(
            "%d episode(s) failed to run and count as incorrect; run the same command again "
            "to retry them (see 'error' in %s)",
            errors,
            paths["episodes"],
        )
    return EvalResult(scores, records, paths, main_table(scores, model), len(planned))


def run_eval(
    policy: Policy, config: EvalConfig, problems: list[Problem] | None = None
) -> EvalResult:
    """`arun_eval` from synchronous code; closes the policy's connections at the end."""

    async def go() -> EvalResult:
        try:
            return await arun_eval(policy, config, problems)
        finally:
            await policy.aclose()

    return asyncio.run(go())
