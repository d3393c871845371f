"""A run folder: the settings, episodes and reports shared by `or-env eval` and `calm curate`.

Both commands write one folder per run:

- `episodes.jsonl`: one record per finished episode, appended as episodes end (resumable);
- `run_config.json`: the settings that change what an episode is; rerunning into a folder
  made with other settings is refused (`check_resume`), so a folder never mixes episodes;
- their reports, which always describe every episode in the folder (`folder_records`),
  also when this command planned fewer (`--limit 3` into a full run's folder).

`RunConfig` holds the fields both configs share, with one default each (the commands'
parsers read their defaults from the configs, so the CLI and the Python API cannot drift).
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
from or_env.sandbox import Sandbox, make_sandbox

logger = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
CONFIG_FILE = "run_config.json"

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


def canonical(value: Any) -> str:
    """A stable text form of a setting, for comparing a folder's settings with a run's."""
    return json.dumps(value, sort_keys=True, default=str)


def check_resume(out_dir: Path, wanted: Mapping[str, Any], what: str = "run") -> None:
    """Refuse a folder whose episodes were made with other settings; record ours.

    `wanted` holds the settings that change what an episode is. A folder holding episodes
    and a run_config.json that differs in any of them is refused with the names of the
    settings that differ; otherwise `wanted` is written to run_config.json.
    """
    path = out_dir / CONFIG_FILE
    if path.exists() and (out_dir / EPISODES_FILE).exists():
        found = json.loads(path.read_text())
        differs = sorted(k for k in wanted if canonical(found.get(k)) != canonical(wanted[k]))
        if differs:
            raise ValueError(
                f"{out_dir} holds a {what} made with other settings ({', '.join(differs)}); "
                "use another --out, or delete that folder to start over"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(wanted), indent=2, default=str) + "\n")


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
