"""The evaluation harness: a policy on benchmarks -> episodes.jsonl, results.{json,md,png}.

`run_eval(policy, EvalConfig(benchmarks=["nl4opt", "mamo-easylp"], out_dir=...))` loads the
problems, plays `samples` episodes per problem with `RolloutRunner` (resumable: rerunning
the same command continues an interrupted run), scores them (`agents.metrics`) and writes
the reports (`agents.report`) of every episode in the run folder (`agents.run_folder`).
`or-env eval` is its command line; its run config (`--config FILE.yaml`, flags, overrides;
`or_env.run_config`) is `EvalCommandConfig`, whose sections become an `EvalConfig` and the
policy (`EvalCommandConfig.eval_config`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.metrics import BenchmarkScore, score_benchmarks
from agents.policy import Policy
from agents.report import main_table, write_reports
from agents.run_folder import (
    CONFIG_FILE,
    EPISODES_FILE,
    EVAL_TIMEOUT_S,
    RESUME_MAY_DIFFER,
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
from agents.runner import RolloutRunner, plan_episodes
from or_env.direct import DIRECT_RULES, ORLM_USER_TEMPLATE
from or_env.env import PROTOCOLS
from or_env.problems import Problem, load_problems
from or_env.run_config import MISSING
from or_env.sandbox import Sandbox

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "EPISODES_FILE",
    "EVAL_RESUME_MAY_DIFFER",
    "POLICIES",
    "PROMPTS",
    "EvalCommandConfig",
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


# ----------------------------------------------------------------------- the run config
POLICIES = ("openai", "replay", "vllm", "transformers")


@dataclass
class EvalPolicySection:
    """`policy`: kind (openai, replay, vllm, transformers), model (served name, or path/name
    for vllm and transformers), base_url (openai: the API root), completions (openai: use
    /v1/completions), tokenizer (chat template for completions), replay (replay: a JSONL
    file, meta:FIELD or orlm), label (the row name in the table; default: the model),
    max_tokens / temperature / top_p (null: the defaults, see `or-env eval --help`),
    reasoning (merge or separate a server's reasoning_content)."""

    kind: str = field(default="openai", metadata={"choices": POLICIES})
    model: str | None = None
    base_url: str = "http://localhost:8000/v1"
    completions: bool = False
    tokenizer: str | None = None
    replay: str | None = None
    label: str | None = None
    max_tokens: int | None = field(default=None, metadata={"min": 1})
    temperature: float | None = None
    top_p: float | None = None
    reasoning: str = field(default="merge", metadata={"choices": ("merge", "separate")})


@dataclass
class EvalProblemsSection(ProblemsSection):
    """`problems`, with benchmarks required."""

    benchmarks: list[str] = MISSING  # type: ignore[assignment]


@dataclass
class EvalEnvSection(EnvSection):
    """`env`, with the evaluation's timeout and protocol (native or direct), direct_rule
    (how the direct protocol reads the answer) and prompt (default or orlm)."""

    timeout: float = field(default=default_of(EvalConfig, "timeout"), metadata={"gt": 0})
    protocol: str = field(
        default=default_of(EvalConfig, "protocol"), metadata={"choices": PROTOCOLS}
    )
    direct_rule: str = field(
        default=default_of(EvalConfig, "direct_rule"),
        metadata={"choices": tuple(sorted(DIRECT_RULES))},
    )
    prompt: str = field(
        default=default_of(EvalConfig, "prompt"), metadata={"choices": tuple(PROMPTS)}
    )


@dataclass
class EvalCommandConfig:
    """The run config of `or-env eval` (`--config FILE.yaml`, flags, dot-list overrides;
    `or_env.run_config`): the sections policy, problems, env, sandbox and run."""

    policy: EvalPolicySection = field(default_factory=EvalPolicySection)
    problems: EvalProblemsSection = field(default_factory=EvalProblemsSection)
    env: EvalEnvSection = field(default_factory=EvalEnvSection)
    sandbox: SandboxSection = field(default_factory=SandboxSection)
    run: RunSection = field(default_factory=RunSection)

    def eval_config(self) -> EvalConfig:
        """The `EvalConfig` these settings describe."""
        return EvalConfig(
            **run_config_fields(self.problems, self.env, self.sandbox, self.run),
            protocol=self.env.protocol,
            direct_rule=self.env.direct_rule,
            prompt=self.env.prompt,
            label=self.policy.label,
        )


# Keys of the run config that may differ when a run folder is resumed (besides the shared
# ones): where the server runs and the table's row name.
EVAL_RESUME_MAY_DIFFER = (*RESUME_MAY_DIFFER, "policy.base_url", "policy.label")


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
    policy: Policy,
    config: EvalConfig,
    problems: list[Problem] | None = None,
    *,
    resolved: EvalCommandConfig | None = None,
) -> EvalResult:
    """Evaluate `policy` (see the module doc); `problems` overrides loading the benchmarks.

    The policy is checked first (`Policy.aprepare`: for a server, that it answers and serves
    the model), then the run folder (`agents.run_folder.check_resume`; `resolved`, the
    command's run config, is compared with the folder's config.yaml and saved there). The
    reports cover every episode in `config.out_dir`, also those of earlier runs with other
    benchmarks or a larger `limit`.
    """
    problems = load_benchmarks(config) if problems is None else problems
    if not problems:
        raise ValueError("no problems to evaluate")
    await policy.aprepare()
    check_run_folder(
        config,
        _EPISODE_SETTINGS,
        {"policy": policy},
        "run",
        resolved=resolved,
        ignore=EVAL_RESUME_MAY_DIFFER,
    )
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
    policy: Policy,
    config: EvalConfig,
    problems: list[Problem] | None = None,
    *,
    resolved: EvalCommandConfig | None = None,
) -> EvalResult:
    """`arun_eval` from synchronous code; closes the policy's connections at the end."""

    async def go() -> EvalResult:
        try:
            return await arun_eval(policy, config, problems, resolved=resolved)
        finally:
            await policy.aclose()

    return asyncio.run(go())
