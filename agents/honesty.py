"""Honest answers: was a correct answer computed or guessed, and how did executions fail.

From a run's records alone (`or-env eval honesty RUN_DIR`):

- `honesty(run)`: per benchmark, the correct episodes whose answer some execution printed
  (`answer_printed`, the env's check) and those whose answer no execution printed
  (guessed, or copied from the question), and the accuracy under `require_executed_answer`
  (a correct answer counts only when printed). correct = printed + not printed.
- `execution_failures(run)`: every code execution classified from its recorded status and
  its output (the env's output block in the transcript; the records keep no separate
  stdout): `EXECUTION_CLASSES`. Counted per execution, and per episode by its last
  execution ("no_execution" when it ran none), so the episode counts add up to the episodes.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.report import display_name
from agents.run_analysis import Run
from or_env.answer_parsing import printed_values
from or_env.grading import INFEASIBLE, UNBOUNDED

logger = logging.getLogger(__name__)

#: The classes of an execution, in the order the classifier tries them.
EXECUTION_CLASSES = (
    "sandbox_error",  # the sandbox itself failed (not the program)
    "timeout",  # the execution hit the time limit
    "memory",  # MemoryError, or killed without a timeout (the memory limit)
    "syntax_error",  # SyntaxError, IndentationError, TabError
    "import_error",  # ImportError, ModuleNotFoundError
    "solver_error",  # a solver's own exception (GurobiError, CoptError, PulpSolverError, ...)
    "runtime_error",  # any other exception, or a non-zero exit
    "infeasible",  # ran, and reported infeasibility
    "unbounded",  # ran, and reported unboundedness
    "no_optimum",  # ran, and reported an unspecific "no solution" status ("No Best Solution")
    "ok",  # ran, and reported no non-optimal status
)
EPISODE_CLASSES = (*EXECUTION_CLASSES, "no_execution")

_EXCEPTION_RE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b", re.M)
_SOLVER_ERROR_RE = re.compile(r"(gurobi|copt|pulp|highs|cplex|scip|mosek|ortools|pyomo)", re.I)
# Statuses that do not say which non-optimal status it was (ORLM's epilogue prints "No Best
# Solution" for all of them).
_NO_OPTIMUM_RE = re.compile(
    r"no best solution|no optimal solution|infeasible or unbounded|inf_or_unbd", re.I
)
_OUTPUT_FENCE_RE = re.compile(r"```output\n(.*?)(?:\n```|\Z)", re.S)


def execution_outputs(record: Mapping[str, Any]) -> dict[int, str]:
    """turn -> the text of the env's output blocks that turn (what the program printed)."""
    found: dict[int, list[str]] = {}
    for message in record.get("messages") or []:
        if message.get("source") != "env":
            continue
        try:
            turn = int(message.get("turn"))
        except (TypeError, ValueError):
            continue
        blocks = _OUTPUT_FENCE_RE.findall(str(message.get("content") or ""))
        if blocks:
            found.setdefault(turn, []).extend(blocks)
    return {turn: "\n".join(texts) for turn, texts in found.items()}


def classify_execution(execution: Mapping[str, Any], output: str) -> str:
    """The class of one execution (`EXECUTION_CLASSES`) from its status and output."""
    if execution.get("sandbox_error") or execution.get("failure"):
        return "sandbox_error"
    if execution.get("timed_out"):
        return "timeout"
    exit_code = execution.get("exit_code")
    exceptions = _EXCEPTION_RE.findall(output)
    last = exceptions[-1] if exceptions else ""
    if "MemoryError" in last or exit_code in (-9, 137):
        return "memory"
    if exit_code not in (0, None) or last:
        short = last.rsplit(".", 1)[-1]
        if short in ("SyntaxError", "IndentationError", "TabError"):
            return "syntax_error"
        if short in ("ImportError", "ModuleNotFoundError"):
            return "import_error"
        if last and _SOLVER_ERROR_RE.search(last):
            return "solver_error"
        if exit_code not in (0, None):
            return "runtime_error"
    if _NO_OPTIMUM_RE.search(output):
        return "no_optimum"
    statuses = printed_values(output).statuses
    if statuses == {INFEASIBLE}:
        return "infeasible"
    if statuses == {UNBOUNDED}:
        return "unbounded"
    if statuses:
        return "no_optimum"
    return "ok"


def episode_executions(record: Mapping[str, Any]) -> list[str]:
    """The classes of an episode's executions, in order."""
    outputs = execution_outputs(record)
    classes = []
    for step in record.get("steps") or []:
        execution = step.get("execution")
        if execution is None:
            continue
        classes.append(classify_execution(execution, outputs.get(int(step.get("turn") or 0), "")))
    return classes


@dataclass
class Honesty:
    """One benchmark's (or "all") honest-answer counts; see the module doc.

    correct = printed + not_printed; accuracy_executed = printed / episodes.
    """

    benchmark: str
    episodes: int
    correct: int
    printed: int
    not_printed: int
    accuracy: float
    accuracy_executed: float
    execution_classes: dict[str, int] = field(default_factory=dict)
    episode_classes: dict[str, int] = field(default_factory=dict)

    @property
    def printed_share(self) -> float | None:
        """The share of correct answers some execution printed (None without correct ones)."""
        return self.printed / self.correct if self.correct else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["printed_share"] = self.printed_share
        return data


def _honesty(benchmark: str, records: Sequence[Mapping[str, Any]]) -> Honesty:
    correct = [r for r in records if r.get("correct")]
    printed = sum(1 for r in correct if r.get("answer_printed"))
    executions: Counter[str] = Counter()
    episodes: Counter[str] = Counter()
    for record in records:
        classes = episode_executions(record)
        executions.update(classes)
        episodes[classes[-1] if classes else "no_execution"] += 1
    n = len(records)
    return Honesty(
        benchmark,
        n,
        len(correct),
        printed,
        len(correct) - printed,
        len(correct) / n if n else 0.0,
        printed / n if n else 0.0,
        {k: executions[k] for k in EXECUTION_CLASSES if executions[k]},
        {k: episodes[k] for k in EPISODE_CLASSES if episodes[k]},
    )


def honesty(run: Run) -> list[Honesty]:
    """Per benchmark of the run, then "all"."""
    rows = [_honesty(bench, recs) for bench, recs in run.by_benchmark().items()]
    rows.append(_honesty("all", run.records))
    return rows


def honesty_markdown(run: Run, rows: Sequence[Honesty]) -> str:
    """The honest-answer table and the failure classes (per episode, by its last execution)."""

    def name(b: str) -> str:
        return "all" if b == "all" else display_name(b)

    lines = [
        f"{run.label}: correct answers that some execution printed vs never computed",
        "",
        "| benchmark | episodes | correct | printed | not printed | printed share "
        "| accuracy | accuracy, require_executed_answer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h in rows:
        share = "-" if h.printed_share is None else f"{100 * h.printed_share:.1f}%"
        lines.append(
            f"| {name(h.benchmark)} | {h.episodes} | {h.correct} | {h.printed} | {h.not_printed} "
            f"| {share} | {100 * h.accuracy:.1f} | {100 * h.accuracy_executed:.1f} |"
        )
    used = [c for c in EPISODE_CLASSES if any(c in h.episode_classes for h in rows)]
    lines += [
        "",
        "episodes by the class of their last execution (executions in parentheses)",
        "",
        "| benchmark | " + " | ".join(used) + " |",
        "|" + "---|" * (len(used) + 1),
    ]
    for h in rows:
        cells = [
            f"{h.episode_classes.get(c, 0)} ({h.execution_classes.get(c, 0)})"
            if c != "no_execution"
            else str(h.episode_classes.get(c, 0))
            for c in used
        ]
        lines.append(f"| {name(h.benchmark)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def honesty_plot(run: Run, rows: Sequence[Honesty], path: str | Path) -> Path | None:
    """Two panels: correct answers printed / not printed per benchmark (% of episodes), and
    episodes by the class of their last execution; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    names = ["all" if h.benchmark == "all" else display_name(h.benchmark) for h in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    printed = [100 * h.printed / h.episodes if h.episodes else 0.0 for h in rows]
    guessed = [100 * h.not_printed / h.episodes if h.episodes else 0.0 for h in rows]
    left.bar(names, printed, label="correct, printed by an execution")
    left.bar(names, guessed, bottom=printed, label="correct, never printed")
    left.set_ylabel("% of episodes")
    left.set_ylim(0, 105)
    left.legend(fontsize=7)
    left.tick_params(axis="x", rotation=20)
    bottom = [0.0] * len(rows)
    for cls in EPISODE_CLASSES:
        values = [100 * h.episode_classes.get(cls, 0) / max(h.episodes, 1) for h in rows]
        if any(values):
            right.bar(names, values, bottom=bottom, label=cls)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_ylabel("% of episodes (last execution)")
    right.legend(fontsize=6)
    right.tick_params(axis="x", rotation=20)
    fig.suptitle(run.label, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
