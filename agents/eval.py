"""The evaluation harness: a policy on benchmarks -> episodes.jsonl, results.{json,md,png}.

`run_eval(policy, EvalConfig(benchmarks=["nl4opt", "mamo-easylp"], out_dir=...))` loads the
problems, plays `samples` episodes per problem with `RolloutRunner` (resumable: rerunning
the same command continues an interrupted run), scores them (`agents.metrics`) and writes
the reports (`agents.report`). `or-env eval` is its command line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agents.metrics import BenchmarkScore, score_benchmarks
from agents.policy import Policy
from agents.report import main_table, write_reports
from agents.runner import RolloutRunner, plan_episodes
from or_env.direct import ORLM_USER_TEMPLATE
from or_env.problems import Problem, load_problems
from or_env.sandbox import Sandbox, make_sandbox

logger = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
CONFIG_FILE = "run_config.json"
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


@dataclass
class EvalConfig:
    """What to evaluate and how.

    benchmarks: names from `or-env benchmarks`, each optionally `name@version`.
    out_dir: where episodes.jsonl and the reports go.
    version: the version for benchmarks given without one (None: each one's default).
    data_dir: the benchmark data folder (default: $OR_ENV_DATA_DIR).
    limit: evaluate only the first N problems of each benchmark (0: all).
    samples: episodes per problem (pass@k for k <= samples).
    concurrency: episodes in flight at once.
    base_seed: seeds every episode (`agents.runner.episode_seed`).
    protocol / rendering / direct_rule / tolerance / max_turns / max_executions / timeout:
        `ORModelingEnv` settings (timeout: seconds per code execution).
    prompt: "default" or "orlm" (ORLM's completion prompt, for its models and replays).
    sandbox: "auto", "local" or "docker"; sandbox_workers: its pool size (None: per CPU).
    progress: show a progress bar.
    label: the row name in the table (default: the policy's model).
    """

    benchmarks: list[str]
    out_dir: Path
    version: str | None = None
    data_dir: str | None = None
    limit: int = 0
    samples: int = 1
    concurrency: int = 64
    base_seed: int = 0
    protocol: str = "native"
    rendering: str = "inline"
    direct_rule: str = "default"
    tolerance: str = "default"
    max_turns: int = 12
    max_executions: int = 10
    timeout: float = 30.0
    prompt: str = "default"
    sandbox: str = "auto"
    sandbox_workers: int | None = None
    progress: bool = True
    label: str | None = None

    def settings(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


@dataclass
class EvalResult:
    """What `run_eval` produced: scores, the records, the written files, the table."""

    scores: list[BenchmarkScore]
    records: list[dict[str, Any]]
    paths: dict[str, Path]
    table: str


def parse_benchmark(spec: str, default_version: str | None) -> tuple[str, str | None]:
    """("nl4opt", "orlm-hf") from "nl4opt@orlm-hf"; the default version when none is given."""
    name, _, version = spec.strip().partition("@")
    if not name:
        raise ValueError(f"empty benchmark name in {spec!r}")
    return name, version or default_version


def load_benchmarks(config: EvalConfig) -> list[Problem]:
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
    path = config.out_dir / CONFIG_FILE
    if path.exists() and (config.out_dir / EPISODES_FILE).exists():
        found = json.loads(path.read_text())
        differs = sorted(k for k in wanted if _canonical(found.get(k)) != _canonical(wanted[k]))
        if differs:
            raise ValueError(
                f"{config.out_dir} holds a run made with other settings ({', '.join(differs)}); "
                "use another --out, or delete that folder to start over"
            )
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2, default=str) + "\n")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def env_kwargs(config: EvalConfig, sandbox: Sandbox) -> dict[str, Any]:
    """The ORModelingEnv settings of a config."""
    if config.prompt not in PROMPTS:
        raise ValueError(f"unknown prompt {config.prompt!r}; choose from {sorted(PROMPTS)}")
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
    """Evaluate `policy` (see the module doc); `problems` overrides loading the benchmarks."""
    problems = load_benchmarks(config) if problems is None else problems
    if not problems:
        raise ValueError("no problems to evaluate")
    _check_resume(config, policy)
    options = {"timeout": max(config.timeout, 1.0)}
    if config.sandbox_workers:
        options["workers"] = config.sandbox_workers
    sandbox = make_sandbox(config.sandbox, **options)
    try:
        runner = RolloutRunner(
            policy,
            env_kwargs=env_kwargs(config, sandbox),
            concurrency=config.concurrency,
            progress=config.progress,
            description="eval",
        )
        specs = plan_episodes(problems, config.samples, config.base_seed)
        records = await runner.arun(specs, config.out_dir / EPISODES_FILE)
    finally:
        sandbox.close()
    scores = score_benchmarks(records)
    described = policy.describe()
    model = config.label or str(described.get("model") or described.get("source") or policy.name)
    shown = {k: config.settings()[k] for k in ("protocol", "rendering", "tolerance", "samples")}
    if config.protocol == "direct":
        shown["direct_rule"] = config.direct_rule
    paths = write_reports(scores, model, {**shown, "policy": policy.name}, config.out_dir)
    paths["episodes"] = config.out_dir / EPISODES_FILE
    errors = sum(s.errors for s in scores)
    if errors:
        logger.warning(
            "%d episode(s) failed to run and count as incorrect; run the same command again "
            "to retry them (see 'error' in %s)",
            errors,
            paths["episodes"],
        )
    return EvalResult(scores, records, paths, main_table(scores, model))


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
