"""Evaluation reports: results.json, results.md (the papers' table), and a bar plot."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.metrics import BenchmarkScore, macro_average

logger = logging.getLogger(__name__)

# Column names as the papers' tables write them.
DISPLAY_NAMES = {
    "nl4opt": "NL4Opt",
    "mamo-easylp": "EasyLP",
    "mamo-complexlp": "ComplexLP",
    "industryor": "IndustryOR",
    "optmath": "OptMATH",
    "optibench": "OptiBench",
    "nlp4lp": "NLP4LP",
    "complexor": "ComplexOR",
    "logior": "LogiOR",
    "sample": "Sample",
}


def display_name(label: str) -> str:
    name, _, version = label.partition("@")
    shown = DISPLAY_NAMES.get(name, name)
    return f"{shown} ({version})" if version else shown


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def main_table(scores: Sequence[BenchmarkScore], model: str) -> str:
    """One row per k (pass@1, and pass@N when N > 1): benchmarks as columns, then macro."""
    header = ["model", *(display_name(s.benchmark) for s in scores), "macro"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    samples = min((s.samples for s in scores), default=1)
    for k in sorted({1, samples}):
        label = model if k == 1 else f"{model} (pass@{k})"
        cells = [_pct(s.pass_at.get(k)) for s in scores]
        lines.append("| " + " | ".join([label, *cells, _pct(macro_average(scores, k))]) + " |")
    return "\n".join(lines)


def details_table(scores: Sequence[BenchmarkScore]) -> str:
    """Per benchmark: size, samples, pass@k, turns, executions, errors, timeouts, failure
    reasons."""
    header = (
        "| benchmark | version | problems | samples | pass@1 | pass@k | mean turns "
        "| mean executions | errors | timeouts | guessed | failure reasons |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in scores:
        ks = ", ".join(f"@{k} {_pct(v)}" for k, v in s.pass_at.items() if k > 1) or "-"
        reasons = ", ".join(f"{name} {count}" for name, count in s.failure_reasons.items())
        lines.append(
            f"| {display_name(s.benchmark)} | {s.version or '-'} | {s.problems} | {s.samples} "
            f"| {_pct(s.pass1)} | {ks} | {s.mean_turns:.2f} | {s.mean_executions:.2f} "
            f"| {s.errors} | {_timeouts(s)} | {s.guessed} | {reasons or '-'} |"
        )
    return "\n".join(lines)


def _timeouts(score: BenchmarkScore) -> str:
    if not score.timeouts:
        return "0"
    return f"{score.timeouts} ({score.timed_out_executions} executions)"


def markdown_report(
    scores: Sequence[BenchmarkScore], model: str, settings: Mapping[str, Any]
) -> str:
    """The whole results.md."""
    samples = min((s.samples for s in scores), default=1)
    described = ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
    notes = [
        f"pass@1 (%), averaged over {samples} sample(s) per problem"
        + ("; pass@k is the unbiased estimator" if samples > 1 else "")
        + "; macro = unweighted mean over the benchmarks. Episodes that failed to run count "
        "as incorrect (column `errors`); `timeouts`: episodes in which a code execution hit "
        "the time limit"
        + (f" ({settings['timeout_s']:g} s)" if settings.get("timeout_s") else "")
        + "; `guessed`: correct episodes whose answer no execution printed.",
    ]
    return (
        "\n\n".join(
            [
                f"# Evaluation of {model}",
                f"Settings: {described}.",
                main_table(scores, model),
                *notes,
                "## Details",
                details_table(scores),
            ]
        )
        + "\n"
    )


def results_json(
    scores: Sequence[BenchmarkScore], model: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    samples = min((s.samples for s in scores), default=1)
    return {
        "model": model,
        "settings": dict(settings),
        "episodes": sum(s.episodes for s in scores),
        "timeouts": sum(s.timeouts for s in scores),
        "guessed": sum(s.guessed for s in scores),
        "benchmarks": [s.to_dict() for s in scores],
        "macro": {f"pass@{k}": macro_average(scores, k) for k in sorted({1, samples})},
    }


def write_plot(scores: Sequence[BenchmarkScore], model: str, path: str | Path) -> Path | None:
    """A bar plot of pass@1 (and pass@N) per benchmark; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    labels = [display_name(s.benchmark) for s in scores] + ["macro"]
    samples = min((s.samples for s in scores), default=1)
    ks = sorted({1, samples})
    width = 0.8 / len(ks)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels)), 3.6))
    for i, k in enumerate(ks):
        values = [100 * s.pass_at.get(k, 0.0) for s in scores]
        values.append(100 * (macro_average(scores, k) or 0.0))
        xs = [x + (i - (len(ks) - 1) / 2) * width for x in range(len(labels))]
        bars = ax.bar(xs, values, width, label=f"pass@{k}")
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title(model, fontsize=10)
    if len(ks) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(
    scores: Sequence[BenchmarkScore], model: str, settings: Mapping[str, Any], out_dir: Path
) -> dict[str, Path]:
    """results.json, results.md and results.png in `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md"}
    paths["json"].write_text(
        json.dumps(results_json(scores, model, settings), indent=2, default=str) + "\n"
    )
    paths["markdown"].write_text(markdown_report(scores, model, settings))
    plot = write_plot(scores, model, out_dir / "results.png")
    if plot is not None:
        paths["plot"] = plot
    return paths
