"""Runs side by side: pass@1 with bootstrap intervals, pass@k, paired tests, version regrades.

`compare_runs([run_a, run_b])` (or `or-env eval compare RUN_DIR...`) builds one paper-style
table across run folders, without running anything again:

- pass@1 per benchmark: the mean over problems of each problem's share of correct samples,
  with a 95% percentile bootstrap interval over problems (`bootstrap_ci`; `n_boot`
  resamples of the problems with replacement, `numpy.random.default_rng(seed)`); the macro
  average (unweighted mean of the benchmarks) gets its interval from the same resamples, each
  benchmark resampled on its own;
- pass@k (unbiased estimator, `agents.metrics.pass_at_k`) for every k the samples allow;
- paired differences between every two runs on the problems both hold (`paired_test`): the
  mean difference of per-problem scores with a paired bootstrap interval and p-value, and the
  exact McNemar test on the first sample's verdicts (discordant pairs, two-sided binomial);
- refusal: runs graded at different tolerances, or on different versions of a benchmark,
  are not compared unless `allow_mismatch=True` (`--allow-mismatch`): their numbers are not
  on one scale.

`version_regrades(run)` (`or-env eval compare --versions`) grades the same episodes against
the labels of every other version of each benchmark (problems aligned by
`or_env.problems.diff.align_problems`), at the run's tolerance.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.metrics import default_ks, pass_at_k
from agents.report import display_name
from agents.run_analysis import Run, correct_under

logger = logging.getLogger(__name__)

CONFIDENCE = 0.95
N_BOOT = 2000


def problem_scores(records: Sequence[dict[str, Any]]) -> dict[str, list[bool]]:
    """problem id -> the verdicts of its samples, in sample order."""
    found: dict[str, list[tuple[int, bool]]] = {}
    for record in records:
        found.setdefault(str(record["problem_id"]), []).append(
            (int(record.get("sample", 0)), bool(record.get("correct")))
        )
    return {pid: [c for _, c in sorted(v)] for pid, v in found.items()}


def bootstrap_ci(
    values: Sequence[float],
    *,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` (resampled with replacement)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n_boot, data.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass
class Cell:
    """One benchmark of one run: pass@1 and its interval, pass@k, problems and samples."""

    pass1: float
    low: float
    high: float
    problems: int
    samples: int
    pass_at: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pass_at"] = {f"pass@{k}": v for k, v in self.pass_at.items()}
        return data


@dataclass
class RunRow:
    """One run of the comparison: a cell per benchmark and the macro average with interval."""

    label: str
    path: str
    tolerance: str | None
    versions: dict[str, list[str | None]]
    cells: dict[str, Cell]
    macro: float | None
    macro_low: float | None
    macro_high: float | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cells"] = {k: c.to_dict() for k, c in self.cells.items()}
        return data


@dataclass
class PairedTest:
    """Run `a` minus run `b` on the problems of one benchmark (or "all") both hold.

    diff: mean over problems of score_a - score_b (scores: share of correct samples).
    low / high: its paired bootstrap interval; p_bootstrap: two-sided bootstrap p-value.
    mcnemar_b / mcnemar_c: problems right in a only / b only on the first sample;
    p_mcnemar: the exact two-sided McNemar p-value.
    """

    a: str
    b: str
    benchmark: str
    problems: int
    diff: float
    low: float
    high: float
    p_bootstrap: float
    mcnemar_b: int
    mcnemar_c: int
    p_mcnemar: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar_exact(b: int, c: int) -> float:
    """The exact two-sided McNemar p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_test(
    a: dict[str, list[bool]],
    b: dict[str, list[bool]],
    *,
    names: tuple[str, str] = ("a", "b"),
    benchmark: str = "all",
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> PairedTest | None:
    """Paired bootstrap and McNemar on the problems both verdict maps hold (None: none)."""
    common = [pid for pid in a if pid in b]
    if not common:
        return None
    diffs = np.array([np.mean(a[p]) - np.mean(b[p]) for p in common], dtype=float)
    rng = np.random.default_rng(seed)
    boot = diffs[rng.integers(0, diffs.size, size=(n_boot, diffs.size))].mean(axis=1)
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    # Two-sided: how often the resampled difference falls on the other side of 0.
    p_boot = min(1.0, 2.0 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
    if not diffs.any():
        p_boot = 1.0
    only_a = sum(1 for p in common if a[p][0] and not b[p][0])
    only_b = sum(1 for p in common if b[p][0] and not a[p][0])
    return PairedTest(
        names[0],
        names[1],
        benchmark,
        len(common),
        float(diffs.mean()),
        float(low),
        float(high),
        p_boot,
        only_a,
        only_b,
        mcnemar_exact(only_a, only_b),
    )


def score_cell(records: Sequence[dict[str, Any]], *, n_boot: int, seed: int) -> Cell:
    """pass@1 with its bootstrap interval, and pass@k, of one benchmark's records."""
    verdicts = problem_scores(records)
    per_problem = [float(np.mean(v)) for v in verdicts.values()]
    samples = min(len(v) for v in verdicts.values())
    pass_at = {
        k: float(np.mean([pass_at_k(len(v), sum(v), k) for v in verdicts.values()]))
        for k in default_ks(samples)
    }
    low, high = bootstrap_ci(per_problem, n_boot=n_boot, seed=seed)
    return Cell(float(np.mean(per_problem)), low, high, len(verdicts), samples, pass_at)


def _macro_ci(groups: Sequence[Sequence[float]], *, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    for values in groups:
        data = np.asarray(values, dtype=float)
        total += data[rng.integers(0, data.size, size=(n_boot, data.size))].mean(axis=1)
    means = total / len(groups)
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def run_row(run: Run, *, n_boot: int = N_BOOT, seed: int = 0) -> RunRow:
    """The comparison row of one run."""
    groups = run.by_benchmark()
    cells = {name: score_cell(recs, n_boot=n_boot, seed=seed) for name, recs in groups.items()}
    per_problem = [
        [float(np.mean(v)) for v in problem_scores(recs).values()] for recs in groups.values()
    ]
    macro = float(np.mean([c.pass1 for c in cells.values()])) if cells else None
    low, high = _macro_ci(per_problem, n_boot=n_boot, seed=seed) if cells else (None, None)
    return RunRow(
        run.label,
        str(run.path),
        run.tolerance,
        {k: sorted(v, key=str) for k, v in run.versions().items()},
        cells,
        macro,
        low,
        high,
    )


def check_comparable(runs: Sequence[Run]) -> list[str]:
    """Why these runs are not on one scale (empty: they are): tolerances, versions."""
    problems = []
    tolerances = {run.label: run.tolerance for run in runs}
    if len(set(tolerances.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in tolerances.items())
        problems.append(f"the runs were graded at different tolerances ({shown})")
    versions: dict[str, dict[str, list[str | None]]] = {}
    for run in runs:
        for bench, found in run.versions().items():
            versions.setdefault(bench, {})[run.label] = sorted(found, key=str)
    for bench, per_run in versions.items():
        if len({json.dumps(v) for v in per_run.values()}) > 1:
            shown = ", ".join(f"{k}: {','.join(map(str, v))}" for k, v in per_run.items())
            problems.append(f"{bench} was evaluated on different versions ({shown})")
    return problems


@dataclass
class Comparison:
    """The result of `compare_runs`: rows, paired tests, the benchmark order, and warnings."""

    rows: list[RunRow]
    paired: list[PairedTest]
    benchmarks: list[str]
    warnings: list[str] = field(default_factory=list)
    n_boot: int = N_BOOT
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": CONFIDENCE,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "benchmarks": self.benchmarks,
            "runs": [r.to_dict() for r in self.rows],
            "paired": [p.to_dict() for p in self.paired],
            "warnings": self.warnings,
        }


def compare_runs(
    runs: Sequence[Run],
    *,
    allow_mismatch: bool = False,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Comparison:
    """Compare runs (see the module doc); ValueError when they are not comparable."""
    if not runs:
        raise ValueError("no runs to compare")
    problems = check_comparable(runs)
    if problems and not allow_mismatch:
        raise ValueError(
            "; ".join(problems) + ": their accuracies are not comparable (--allow-mismatch "
            "compares them anyway)"
        )
    rows = [run_row(run, n_boot=n_boot, seed=seed) for run in runs]
    benchmarks: list[str] = []
    for row in rows:
        benchmarks += [b for b in row.cells if b not in benchmarks]
    paired = []
    grouped = [run.by_benchmark() for run in runs]
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            names = (runs[i].label, runs[j].label)
            all_a: dict[str, list[bool]] = {}
            all_b: dict[str, list[bool]] = {}
            for bench in benchmarks:
                if bench not in grouped[i] or bench not in grouped[j]:
                    continue
                a = {f"{bench}/{k}": v for k, v in problem_scores(grouped[i][bench]).items()}
                b = {f"{bench}/{k}": v for k, v in problem_scores(grouped[j][bench]).items()}
                all_a.update(a)
                all_b.update(b)
                test = paired_test(a, b, names=names, benchmark=bench, n_boot=n_boot, seed=seed)
                if test is not None:
                    paired.append(test)
            test = paired_test(all_a, all_b, names=names, n_boot=n_boot, seed=seed)
            if test is not None:
                paired.append(test)
    return Comparison(rows, paired, benchmarks, problems, n_boot, seed)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def comparison_markdown(comparison: Comparison) -> str:
    """The tables: pass@1 [95% CI] per benchmark and macro; pass@k; paired differences."""
    benches = comparison.benchmarks
    header = ["run", *(display_name(b) for b in benches), "macro"]
    lines = [
        f"pass@1 (%) with {100 * CONFIDENCE:.0f}% bootstrap intervals over problems "
        f"({comparison.n_boot} resamples, seed {comparison.seed})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in comparison.rows:
        cells = []
        for bench in benches:
            cell = row.cells.get(bench)
            cells.append(
                "-" if cell is None else f"{_pct(cell.pass1)} [{_pct(cell.low)}, {_pct(cell.high)}]"
            )
        macro = f"{_pct(row.macro)} [{_pct(row.macro_low)}, {_pct(row.macro_high)}]"
        lines.append("| " + " | ".join([row.label, *cells, macro]) + " |")
    ks = sorted({k for row in comparison.rows for c in row.cells.values() for k in c.pass_at})
    if any(k > 1 for k in ks):
        lines += ["", "pass@k (%), unbiased estimator", ""]
        lines.append("| run | k | " + " | ".join(display_name(b) for b in benches) + " |")
        lines.append("|" + "---|" * (len(benches) + 2))
        for row in comparison.rows:
            for k in ks:
                if k == 1:
                    continue
                cells = [
                    _pct(row.cells[b].pass_at.get(k)) if b in row.cells else "-" for b in benches
                ]
                lines.append(f"| {row.label} | {k} | " + " | ".join(cells) + " |")
    if comparison.paired:
        lines += [
            "",
            "paired differences (a - b, points of pass@1) on the problems both runs hold",
            "",
            "| a | b | benchmark | problems | diff [95% CI] | p (bootstrap) | right only in a "
            "/ only in b (sample 0) | p (McNemar) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t in comparison.paired:
            lines.append(
                f"| {t.a} | {t.b} | {display_name(t.benchmark) if t.benchmark != 'all' else 'all'} "
                f"| {t.problems} | {100 * t.diff:+.1f} [{100 * t.low:+.1f}, {100 * t.high:+.1f}] "
                f"| {t.p_bootstrap:.3g} | {t.mcnemar_b} / {t.mcnemar_c} | {t.p_mcnemar:.3g} |"
            )
    if comparison.warnings:
        lines += ["", *(f"warning: {w}" for w in comparison.warnings)]
    return "\n".join(lines)


def comparison_plot(comparison: Comparison, path: str | Path) -> Path | None:
    """A grouped bar chart (one group per benchmark and macro, one bar per run) with the
    bootstrap intervals as error bars; None when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return None
    groups = [*comparison.benchmarks, "macro"]
    n = max(len(comparison.rows), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) * max(1, n / 2)), 3.8))
    for i, row in enumerate(comparison.rows):
        values, lows, highs = [], [], []
        for bench in groups:
            if bench == "macro":
                v, lo, hi = row.macro, row.macro_low, row.macro_high
            else:
                cell = row.cells.get(bench)
                v, lo, hi = (cell.pass1, cell.low, cell.high) if cell else (None, None, None)
            v = 0.0 if v is None else v
            values.append(100 * v)
            lows.append(100 * (v - (lo if lo is not None else v)))
            highs.append(100 * ((hi if hi is not None else v) - v))
        xs = [x + (i - (n - 1) / 2) * width for x in range(len(groups))]
        ax.bar(xs, values, width, yerr=[lows, highs], capsize=3, label=row.label)
    ax.set_xticks(range(len(groups)), [display_name(g) for g in groups], rotation=20, ha="right")
    ax.set_ylabel("pass@1 (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    return plt


# ------------------------------------------------------------------ regrading per version
@dataclass
class VersionRegrade:
    """A run's episodes of one benchmark graded against another version's labels.

    aligned: problems of the run found in `version`; own_accuracy: the run's accuracy on those
    problems with its own labels; accuracy: with `version`'s labels; flipped_up / flipped_down:
    episodes that become right / wrong.
    """

    benchmark: str
    run_version: str
    version: str
    problems: int
    aligned: int
    own_accuracy: float | None
    accuracy: float | None
    flipped_up: int
    flipped_down: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_regrades(run: Run, data_dir: str | None = None) -> list[VersionRegrade]:
    """Grade the run's episodes against every version of each benchmark (see module doc)."""
    from or_env.problems import get_benchmark, load_problems
    from or_env.problems.diff import align_problems

    preset = run.tolerance or "default"
    out = []
    for bench, versions in run.versions().items():
        for run_version in sorted(v for v in versions if v is not None):
            records = [
                r
                for r in run.records
                if r.get("benchmark") == bench and r.get("version") == run_version
            ]
            own = load_problems(bench, version=run_version, path=data_dir)
            pids = {str(r["problem_id"]) for r in records}
            for version in get_benchmark(bench).version_names:
                if version == run_version:
                    others = own
                else:
                    try:
                        others = load_problems(bench, version=version, path=data_dir)
                    except (OSError, ValueError) as exc:
                        logger.warning("%s@%s: not regraded (%s)", bench, version, exc)
                        continue
                labels = {
                    p.reference.id: p.other.answer
                    for p in align_problems(own, others)
                    if p.reference.id in pids
                }
                kept = [r for r in records if str(r["problem_id"]) in labels]
                before = [bool(r.get("correct")) for r in kept]
                after = [correct_under(r, preset, labels[str(r["problem_id"])]) for r in kept]
                out.append(
                    VersionRegrade(
                        bench,
                        run_version,
                        version,
                        len(pids),
                        len({str(r["problem_id"]) for r in kept}),
                        float(np.mean(before)) if kept else None,
                        float(np.mean(after)) if kept else None,
                        sum(1 for x, y in zip(before, after, strict=True) if y and not x),
                        sum(1 for x, y in zip(before, after, strict=True) if x and not y),
                    )
                )
    return out


def version_markdown(run: Run, regrades: Sequence[VersionRegrade]) -> str:
    """The table of `version_regrades`."""
    lines = [
        f"{run.label}: the same episodes graded against each version's labels "
        f"(tolerance {run.tolerance})",
        "",
        "| benchmark | run's version | labels of | problems aligned | accuracy, run's labels "
        "| accuracy, these labels | became right | became wrong |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in regrades:
        lines.append(
            f"| {display_name(g.benchmark)} | {g.run_version} | {g.version} "
            f"| {g.aligned}/{g.problems} | {_pct(g.own_accuracy)} | {_pct(g.accuracy)} "
            f"| {g.flipped_up} | {g.flipped_down} |"
        )
    return "\n".join(lines)
