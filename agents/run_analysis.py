"""Reading finished `or-env eval` run folders back, and re-grading their recorded answers.

Shared by `agents.compare`, `agents.tolerance_curves` and `agents.honesty`: none of them runs a
program again, they read `episodes.jsonl` (and `run_config.json`, `results.json`).

Re-grading uses the recorded final answer (`record["answer"]`: the content of the final box
in the native protocol, the value read from the program's output in the direct protocol) with
`or_env.grading.grade_value`, which reads a string exactly as the content of a box. That is
what the env graded: re-grading a run at its own tolerance gives every recorded verdict back
(checked in the tests on the ORLM replay run), except where the env's
`require_executed_answer` turned a correct answer down (reason "not_executed").

The recorded ground truth keeps the status a marker stands for, not the number the file
wrote (-99999): the strict presets, which compare such markers as numbers, need the
benchmark's own labels (`problem_truths`, when the data is at hand) to give the source's
verdicts.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.metrics import label_of
from agents.records import read_records
from agents.run_folder import CONFIG_FILE, EPISODES_FILE
from or_env.grading import Grade, Tolerance, grade_value

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """A finished run folder: its label, settings and episode records.

    label: the row name (results.json's model, else the folder name).
    config: run_config.json (empty when absent).
    records: the last record of every episode.
    """

    path: Path
    label: str
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tolerance(self) -> str | None:
        """The tolerance the episodes were graded with (None when they disagree)."""
        found = {r.get("tolerance") for r in self.records} | (
            {self.config["tolerance"]} if self.config.get("tolerance") else set()
        )
        found.discard(None)
        return found.pop() if len(found) == 1 else None

    def versions(self) -> dict[str, set[str | None]]:
        """benchmark -> the versions of its episodes."""
        found: dict[str, set[str | None]] = defaultdict(set)
        for record in self.records:
            found[str(record.get("benchmark"))].add(record.get("version"))
        return dict(found)

    def by_benchmark(self) -> dict[str, list[dict[str, Any]]]:
        """The records grouped by benchmark label (name, or name@version when mixed)."""
        versions = self.versions()
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.records:
            groups[label_of(record, versions)].append(record)
        return dict(groups)


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Read a run folder; ValueError when it holds no episodes."""
    path = Path(path)
    episodes = path / EPISODES_FILE
    if not episodes.is_file():
        raise ValueError(f"{path}: no {EPISODES_FILE}; give an `or-env eval --out` folder")
    records = list(read_records(episodes).values())
    if not records:
        raise ValueError(f"{episodes} holds no episodes")
    config: dict[str, Any] = {}
    if (path / CONFIG_FILE).is_file():
        config = json.loads((path / CONFIG_FILE).read_text())
    if label is None:
        results = path / "results.json"
        if results.is_file():
            label = json.loads(results.read_text()).get("model")
        label = label or path.name
    return Run(path, str(label), config, records)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Several run folders; a label shared by two runs gets the folder name appended."""
    runs = [load_run(p) for p in paths]
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        counts[run.label] += 1
    for run in runs:
        if counts[run.label] > 1:
            run.label = f"{run.label} ({run.path.name})"
    return runs


def problem_truths(run: Run, data_dir: str | None = None) -> dict[str, object]:
    """problem id -> the ground truth as the benchmark file states it (markers included), for
    every (benchmark, version) of the run whose data loads; the others are left out."""
    from or_env.problems import load_problems

    truths: dict[str, object] = {}
    for bench, versions in run.versions().items():
        for version in versions:
            try:
                problems = load_problems(bench, version=version, path=data_dir)
            except (OSError, ValueError) as exc:
                logger.info("%s@%s: the recorded labels are used (%s)", bench, version, exc)
                continue
            truths.update((p.id, p.answer) for p in problems)
    return truths


def regrade(
    record: Mapping[str, Any],
    preset: str | Tolerance,
    ground_truth: object | None = None,
) -> Grade | None:
    """The recorded final answer graded again under `preset` (None: the episode failed to run).

    `ground_truth` replaces the recorded one (another version's label).
    """
    if record.get("status") != "ok":
        return None
    truth = record.get("ground_truth") if ground_truth is None else ground_truth
    return grade_value(record.get("answer"), truth, preset=preset)


def correct_under(
    record: Mapping[str, Any], preset: str | Tolerance, ground_truth: object | None = None
) -> bool:
    """Whether the recorded answer is right under `preset` (a failed episode is not)."""
    graded = regrade(record, preset, ground_truth)
    return bool(graded is not None and graded.correct)
