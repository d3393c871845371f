"""A run folder: the settings, episodes and reports shared by `or-env eval` and `calm curate`.

Both commands write one folder per run:

- `episodes.jsonl`: one record per finished episode, appended as episodes end (resumable);
- `config.yaml`: the command's resolved run config (`or_env.run_config`: its `--config`
  file, flags and overrides), written by the command lines;
- `run_config.json`: the settings that change what an episode is (the policy's own
  description included); rerunning into a folder made with other settings is refused
  (`check_resume`: every key of config.yaml but those allowed to differ, and every
  setting of run_config.json), so a folder never mixes episodes. Folders made before
  config.yaml existed are checked against their run_config.json alone;
- their reports, which always describe every episode in the folder (`folder_records`),
  also when this command planned fewer (`--limit 3` into a full run's folder).

`RunConfig` holds the fields both configs share, with one default each. The sections of the
commands' run configs (`ProblemsSection`, `EnvSection`, `SandboxSection`, `RunSection`)
take their defaults from it, and the parsers theirs from the sections, so the CLI, the
config files and the Python API cannot drift.
The one deliberate difference: the code-execution timeout, `EVAL_TIMEOUT_S` for evaluation
and `TRAINING_TIMEOUT_S` for curation and training (see their comments).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agents.records import Key, is_complete, read_records, record_key
from or_env import run_config
from or_env.protocol import RENDERINGS
from or_env.sandbox import BACKENDS, Sandbox, make_sandbox

logger = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
CONFIG_FILE = "run_config.json"
CONFIG_YAML = run_config.CONFIG_YAML
# What a policy's or judge's description may change on resume: where the server runs, how
# many recordings a replay holds.
IGNORED_DESCRIPTION_KEYS = ("base_url", "episodes")

# Seconds per code execution. Training (GRPO rollouts, CALM curation) runs thousands of
# executions, and a program still running after 30 s is almost always a bug (an endless
# loop, a solver log flood) that should cost the episode, not the batch.
TRAINING_TIMEOUT_S = 30.0
# Evaluation must not mark a correct model wrong because its solver is slow: large MILPs of
# IndustryOR / OptMATH take 60 to 200 s with CBC or HiGHS on 2 cores, and ORLM's own
# evaluation allowed 300 s per program (ORLM `eval/execute.py`), so its published numbers
# are only comparable with the same limit.
EVAL_TIMEOUT_S = 300.0


@dataclass(kw_only=True)
class RunConfig:
    """The settings `or-env eval` and `or-env calm curate` share (both subclass this).

    out_dir: the run folder.
    benchmarks: names from `or-env benchmarks`, each optionally NAME@VERSION.
    version: the version for benchmarks given without one (None: each one's default).
    data_dir: the benchmark data folder (default: $OR_ENV_DATA_DIR).
    limit: only the first N problems of each benchmark (0: all).
    samples: episodes per problem. concurrency: episodes in flight at once.
    base_seed: seeds every episode (`agents.runner.episode_seed`).
    rendering / tolerance / max_turns / max_executions / timeout: `ORModelingEnv` settings
        (timeout: seconds per code execution).
    sandbox: "auto", "local" or "docker"; sandbox_workers: its pool size (None: per CPU).
    progress: show a progress bar.
    """

    out_dir: Path
    benchmarks: list[str] = field(default_factory=list)
    version: str | None = None
    data_dir: str | None = None
    limit: int = 0
    samples: int = 1
    concurrency: int = 64
    base_seed: int = 0
    rendering: str = "inline"
    tolerance: str = "default"
    max_turns: int = 12
    max_executions: int = 10
    timeout: float = TRAINING_TIMEOUT_S
    sandbox: str = "auto"
    sandbox_workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if self.limit < 0:
            raise ValueError(f"limit must be 0 (all) or more, got {self.limit}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    def settings(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data

    @property
    def episodes_path(self) -> Path:
        return self.out_dir / EPISODES_FILE


def default_of(config_class: type, name: str) -> Any:
    """The default of a config field (what the command line shows and uses)."""
    for f in fields(config_class):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            raise ValueError(f"{config_class.__name__}.{name} has no default")
    raise KeyError(f"{config_class.__name__} has no field {name!r}")


# ----------------------------------------------------------------------- run config sections
# The sections the run configs of `or-env eval` and `or-env calm curate` share. Metadata:
# `choices`, `min` (least value), `gt` (must be more), checked by `or_env.run_config`.
@dataclass
class ProblemsSection:
    """`problems`: benchmarks (each NAME[@VERSION]), version (for those without one),
    data_dir (default: $OR_ENV_DATA_DIR), limit (first N of each; 0: all), samples
    (episodes per problem)."""

    benchmarks: list[str] = field(default_factory=list)
    version: str | None = field(default=default_of(RunConfig, "version"))
    data_dir: str | None = field(default=default_of(RunConfig, "data_dir"))
    limit: int = field(default=default_of(RunConfig, "limit"), metadata={"min": 0})
    samples: int = field(default=default_of(RunConfig, "samples"), metadata={"min": 1})


@dataclass
class EnvSection:
    """`env`: the `ORModelingEnv` settings (timeout: seconds per code execution)."""

    rendering: str = field(
        default=default_of(RunConfig, "rendering"), metadata={"choices": RENDERINGS}
    )
    tolerance: str = field(default=default_of(RunConfig, "tolerance"))
    max_turns: int = field(default=default_of(RunConfig, "max_turns"), metadata={"min": 1})
    max_executions: int = field(
        default=default_of(RunConfig, "max_executions"), metadata={"min": 0}
    )
    timeout: float = field(default=default_of(RunConfig, "timeout"), metadata={"gt": 0})


@dataclass
class SandboxSection:
    """`sandbox`: kind ("auto", "local", "docker", ...), workers (pool size; null: per CPU)."""

    kind: str = field(default=default_of(RunConfig, "sandbox"), metadata={"choices": BACKENDS})
    workers: int | None = field(
        default=default_of(RunConfig, "sandbox_workers"), metadata={"min": 1}
    )


@dataclass
class RunSection:
    """`run`: out (the run folder, required), concurrency (episodes in flight), seed (base
    seed; null: no per-request seed, episodes use 0), progress (a progress bar),
    request_timeout (seconds per model request), max_retries (of a failed request)."""

    out: str = run_config.MISSING
    concurrency: int = field(default=default_of(RunConfig, "concurrency"), metadata={"min": 1})
    seed: int | None = field(default=default_of(RunConfig, "base_seed"))
    progress: bool = field(default=default_of(RunConfig, "progress"))
    request_timeout: float = field(default=600.0, metadata={"gt": 0})
    max_retries: int = field(default=6, metadata={"min": 0})


# What may differ when a run folder is resumed: which and how many problems (the reports
# cover every episode of the folder), where and how fast things run.
RESUME_MAY_DIFFER = (
    "problems.benchmarks",
    "problems.version",
    "problems.data_dir",
    "problems.limit",
    "problems.samples",
    "sandbox",
    "run.out",
    "run.concurrency",
    "run.progress",
    "run.request_timeout",
    "run.max_retries",
)


def run_config_fields(
    problems: ProblemsSection, env: EnvSection, sandbox: SandboxSection, run: RunSection
) -> dict[str, Any]:
    """The `RunConfig` fields of a resolved run config's shared sections."""
    return {
        "out_dir": Path(run.out),
        "benchmarks": [b.strip() for b in problems.benchmarks if b.strip()],
        "version": problems.version,
        "data_dir": problems.data_dir,
        "limit": problems.limit,
        "samples": problems.samples,
        "concurrency": run.concurrency,
        "base_seed": 0 if run.seed is None else run.seed,
        "rendering": env.rendering,
        "tolerance": env.tolerance,
        "max_turns": env.max_turns,
        "max_executions": env.max_executions,
        "timeout": env.timeout,
        "sandbox": sandbox.kind,
        "sandbox_workers": sandbox.workers,
        "progress": run.progress,
    }


# ----------------------------------------------------------------------- resuming
def canonical(value: Any) -> str:
    """A stable text form of a setting, for comparing a folder's settings with a run's."""
    return json.dumps(value, sort_keys=True, default=str)


def check_resume(
    out_dir: Path,
    wanted: Mapping[str, Any],
    what: str = "run",
    *,
    resolved: Any = None,
    ignore: Sequence[str] = RESUME_MAY_DIFFER,
) -> None:
    """Refuse a folder whose episodes were made with other settings; record ours.

    `wanted` holds the settings that change what an episode is; `resolved` the command's
    resolved run config (None from the Python API). A folder holding episodes is refused,
    naming each differing key with its old and new value, when its config.yaml differs from
    `resolved` in a key outside `ignore`, or its run_config.json differs from `wanted` in
    any of `wanted`'s keys (a folder made before config.yaml existed has only the latter).
    Otherwise `wanted` is written to run_config.json and `resolved` to config.yaml.
    """
    out_dir = Path(out_dir)
    path = out_dir / CONFIG_FILE
    if (out_dir / EPISODES_FILE).exists():
        if resolved is not None:
            run_config.check_resume(out_dir, resolved, ignore, what=what)
        if path.exists():
            found = json.loads(path.read_text())
            differences = run_config.config_differences(
                {k: found.get(k) for k in wanted}, dict(wanted)
            )
            if differences:
                raise run_config.refusal(out_dir, differences, what)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(wanted), indent=2, default=str) + "\n")
    if resolved is not None:
        run_config.save_resolved(out_dir, resolved)


def check_run_folder(
    config: RunConfig,
    episode_settings: Sequence[str],
    described: Mapping[str, Any],
    what: str = "run",
    *,
    resolved: Any = None,
    ignore: Sequence[str] = RESUME_MAY_DIFFER,
) -> None:
    """The resume check of `or-env eval` and `calm curate` (`check_resume`): the config's
    `episode_settings` and each described thing's description (`{"policy": policy}`: its
    `describe()` but `IGNORED_DESCRIPTION_KEYS`), with the resolved run config if any."""
    settings = config.settings()
    wanted: dict[str, Any] = {k: settings[k] for k in episode_settings}
    for name, thing in described.items():
        wanted[name] = {
            k: v for k, v in thing.describe().items() if k not in IGNORED_DESCRIPTION_KEYS
        }
    check_resume(config.out_dir, wanted, what, resolved=resolved, ignore=ignore)


def open_sandbox(config: RunConfig) -> Sandbox:
    """The sandbox a run's episodes share (the caller closes it)."""
    options: dict[str, Any] = {"timeout": max(config.timeout, 1.0)}
    if config.sandbox_workers:
        options["workers"] = config.sandbox_workers
    return make_sandbox(config.sandbox, **options)


def folder_records(
    out_dir: Path, planned: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Every episode of the folder (the last record of each), for the reports.

    The episodes of `planned` (this command's records) come first, in their order, then
    the folder's other episodes in the order they were first written: a subset rerun into
    a full run's folder still reports the full run.
    """
    stored = read_records(out_dir / EPISODES_FILE)
    ordered: dict[Key, dict[str, Any]] = {}
    for record in planned:
        key = record_key(record)
        ordered[key] = stored.get(key, dict(record))
    for key, record in stored.items():
        ordered.setdefault(key, record)
    return list(ordered.values())


def saved_episodes(out_dir: Path) -> int:
    """How many finished episodes the folder holds (what a resumed run skips)."""
    return sum(1 for r in read_records(out_dir / EPISODES_FILE).values() if is_complete(r))


def interrupted_message(out_dir: Path) -> str:
    """What to print when a run is interrupted (Ctrl-C)."""
    saved = saved_episodes(out_dir)
    noun = "episode" if saved == 1 else "episodes"
    return f"interrupted: {saved} {noun} saved in {out_dir}, rerun the same command to resume"
