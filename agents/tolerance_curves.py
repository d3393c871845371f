"""Accuracy against tolerance: how much a run's verdict depends on the grading threshold.

`tolerance_curve(run)` (or `or-env eval tolerance RUN_DIR`) re-grades every episode's recorded
final answer (`agents.run_analysis.regrade`, no execution) at a sweep of relative tolerances
(`SWEEP`: 1e-9 to 1e-1, rule `|p - g| <= t * |g|`, and `t` itself when g = 0) and at every
named preset of `or_env.TOLERANCE_PRESETS`, per benchmark; `tolerance_plot` draws accuracy
against tolerance per benchmark and marks where the presets sit (at their `rel_tol`).

The sweep is monotone by construction: a looser threshold never turns a right answer wrong.
Presets with other rules (scaled, rounded) are not points of that curve: they are reported
next to it. Pass `truths` (`agents.run_analysis.problem_truths`, the benchmark's own labels;
`or-env eval tolerance` loads them when the data is there) for the strict twins (`-strict`):
the recorded ground truth keeps the status a marker stands for but not the number the file
wrote (-99999), which those presets compare as a number.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.report import display_name
from agents.run_analysis import Run, correct_under
from or_env.grading import Tolerance
from or_env.tolerance import TOLERANCE_PRESETS

logger = logging.getLogger(__name__)

#: The relative tolerances of the sweep: 1e-9, 3e-9, 1e-8, ..., 3e-2, 1e-1.
SWEEP: tuple[float, ...] = (
    *(float(f"{m}e{e}") for e in range(-9, -1) for m in (1, 3)),
    1e-1,
)


def sweep_tolerance(rel_tol: float) -> Tolerance:
    """The plain relative rule at `rel_tol` (absolute floor `rel_tol` for a zero truth)."""
    return Tolerance(rule="relative", rel_tol=rel_tol, abs_tol=rel_tol, name=f"rel {rel_tol:g}")


@dataclass
class Curve:
    """One benchmark's (or "all") accuracy at each sweep tolerance and at each preset."""

    benchmark: str
    episodes: int
    points: dict[float, float]
    presets: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["points"] = {f"{k:g}": v for k, v in self.points.items()}
        return data


def accuracy(
    records: Sequence[dict[str, Any]],
    preset: str | Tolerance,
    truths: Mapping[str, object] | None = None,
) -> float:
    """The share of episodes whose recorded answer is right under `preset` (against
    `truths[problem_id]` where given, else the recorded ground truth)."""
    truths = truths or {}
    verdicts = [correct_under(r, preset, truths.get(str(r["problem_id"]))) for r in records]
    return float(np.mean(verdicts)) if verdicts else 0.0


def tolerance_curves(
    run: Run,
    *,
    sweep: Sequence[float] = SWEEP,
    presets: Sequence[str] | None = None,
    truths: Mapping[str, object] | None = None,
) -> list[Curve]:
    """A curve per benchmark of the run, then one over all its episodes ("all"); `truths`:
    the benchmark files' labels by problem id (see the module doc)."""
    names = list(TOLERANCE_PRESETS) if presets is None else list(presets)
    groups = dict(run.by_benchmark())
    groups["all"] = list(run.records)
    curves = []
    for bench, records in groups.items():
        points = {t: accuracy(records, sweep_tolerance(t), truths) for t in sweep}
        at_presets = {name: accuracy(records, name, truths) for name in names}
        curves.append(Curve(bench, len(records), points, at_presets))
    return curves


def curves_markdown(run: Run, curves: Sequence[Curve]) -> str:
    """Accuracy (%) per benchmark at each sweep tolerance, then at each preset."""
    benches = [c.benchmark for c in curves]
    shown = [display_name(b) if b != "all" else "all" for b in benches]
    lines = [
        f"{run.label}: accuracy (%) of the recorded answers re-graded at each tolerance "
        f"(recorded at {run.tolerance})",
        "",
        "| relative tolerance | " + " | ".join(shown) + " |",
        "|" + "---|" * (len(shown) + 1),
    ]
    for t in curves[0].points if curves else []:
        cells = [f"{100 * c.points[t]:.1f}" for c in curves]
        lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
    lines += ["", "| preset | rule | " + " | ".join(shown) + " |", "|" + "---|" * (len(shown) + 2)]
    for name in curves[0].presets if curves else []:
        tol = TOLERANCE_PRESETS[name]
        cells = [f"{100 * c.presets[name]:.1f}" for c in curves]
        lines.append(f"| {name} | {tol.rule} {tol.rel_tol:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tolerance_plot(run: Run, curves: Sequence[Curve], path: str | Path) -> Path | None:
    """Accuracy against relative tolerance (log axis) per benchmark, presets marked at their
    rel_tol; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    markers = "osD^v<>pX*h"
    for curve in curves:
        xs = list(curve.points)
        line = ax.plot(
            xs,
            [100 * v for v in curve.points.values()],
            label=display_name(curve.benchmark) if curve.benchmark != "all" else "all",
            linestyle="--" if curve.benchmark == "all" else "-",
        )[0]
        for k, name in enumerate(n for n in curve.presets if not n.endswith("-strict")):
            tol = TOLERANCE_PRESETS[name]
            ax.scatter(
                [tol.rel_tol],
                [100 * curve.presets[name]],
                color=line.get_color(),
                marker=markers[k % len(markers)],
                s=22,
                zorder=3,
            )
    names = [n for n in (curves[0].presets if curves else []) if not n.endswith("-strict")]
    for k, name in enumerate(names):
        ax.scatter([], [], color="gray", marker=markers[k % len(markers)], label=f"preset {name}")
    ax.set_xscale("log")
    ax.set_xlabel("relative tolerance")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(run.label, fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
