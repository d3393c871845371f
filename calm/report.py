"""What CALM changed: curation statistics, report.md / report.json, and a flaw-type figure.

Definitions (per benchmark and in total; an episode is one (problem, sample) run):

- problems / episodes: tried; errors: episodes that failed to run (server down, ...);
- first_try_correct: episodes whose answer was correct the first time the episode ended
  (before any end-of-episode intervention rewound it);
- final_correct: correct at the very end; corrected: final_correct but not first_try_correct;
- intervened: episodes that received at least one hint;
- final_status: counts of the last judgement ("flawless", "flawed", "no_verdict",
  "not_judged", see `calm.wrapper`);
- kept: golden episodes (correct AND judged flawless), and kept_problems with at least one;
- interventions_per_episode / _per_kept: mean hints per finished / per kept episode;
- hint_share_kept / _all: hint size / (hint size + policy text size) in the final
  trajectories, measured in the unit named by `unit` (the reasoner's tokens when a tokenizer
  was given, else characters);
- flaw_types: flaws the judge found (every "flaw" verdict, also one left when the budget was
  spent), by benchmark and type.
- judge: how the judge was asked (`judge_counts`). judgements = flawless + flaw +
  no_verdict, and no_verdict = too_long (the trajectory did not fit the judge's context)
  + out_of_attempts (every reply rejected). Replies (`attempts`) = accepted + rejected
  (by validation); requests = replies + too_long (a request refused for length has no
  reply); re_asks = requests - judgements (every request after a judgement's first); and
  rejected = re_asks + out_of_attempts: every rejected reply was answered with a re-ask,
  except the last one of a judgement that ran out of attempts.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.report import display_name
from calm.taxonomy import CATEGORY_TITLES, DEFAULT_TAXONOMY, Taxonomy
from calm.tokens import TextMeter

logger = logging.getLogger(__name__)

# How `calm.intervener.Intervener` records a request the judge's context could not hold (an
# error without a reply, not a rejected reply).
TOO_LONG_PREFIX = "the trajectory does not fit the judge"
JUDGE_KEYS = (
    "judgements",
    "flawless",
    "flaw",
    "no_verdict",
    "too_long",
    "out_of_attempts",
    "requests",
    "attempts",
    "accepted",
    "rejected_replies",
    "re_asks",
)

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
FLAW_PNG = "flaw_types.png"


def is_golden(record: Mapping[str, Any]) -> bool:
    """Kept by CALM: the episode ran, ended correct, and its final judgement is flawless."""
    calm = record.get("calm") or {}
    return (
        record.get("status") == "ok"
        and bool(record.get("correct"))
        and calm.get("final") == "flawless"
    )


def first_try_correct(record: Mapping[str, Any]) -> bool:
    """Whether the answer was correct the first time the episode ended."""
    for intervention in (record.get("calm") or {}).get("interventions") or []:
        before = intervention.get("outcome_before")
        if before:
            return bool(before.get("correct"))
    return bool(record.get("correct"))


def judge_counts(judgements: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How the judge was asked over a set of judgement records (see the module doc); the
    counts add up: judgements = flawless + flaw + no_verdict, no_verdict = too_long +
    out_of_attempts, attempts = accepted + rejected_replies, requests = attempts +
    too_long = judgements + re_asks, rejected_replies = re_asks + out_of_attempts."""
    counts = dict.fromkeys(JUDGE_KEYS, 0)
    for judgement in judgements:
        status = judgement.get("status", "no_verdict")
        attempts = int(judgement.get("attempts") or 0)
        too_long = any(str(e).startswith(TOO_LONG_PREFIX) for e in judgement.get("errors") or [])
        accepted = 1 if status in ("flawless", "flaw") else 0
        requests = attempts + (1 if too_long else 0)
        counts["judgements"] += 1
        counts[status if status in ("flawless", "flaw") else "no_verdict"] += 1
        if not accepted:
            counts["too_long" if too_long else "out_of_attempts"] += 1
        counts["attempts"] += attempts
        counts["accepted"] += accepted
        counts["rejected_replies"] += attempts - accepted
        counts["requests"] += requests
        counts["re_asks"] += max(requests - 1, 0)
    return counts


def _sizes(record: Mapping[str, Any], meter: TextMeter) -> tuple[int, int]:
    hint = policy = 0
    for message in record.get("messages") or []:
        if message.get("source") == "intervener":
            hint += meter.count(message["content"])
        elif message.get("source") == "policy":
            policy += meter.count(message["content"])
    return hint, policy


def _share(hint: int, policy: int) -> float | None:
    return hint / (hint + policy) if hint + policy else None


def _row(records: Sequence[Mapping[str, Any]], meter: TextMeter) -> dict[str, Any]:
    finished = [r for r in records if r.get("status") == "ok"]
    kept = [r for r in finished if is_golden(r)]
    hints = [len((r.get("calm") or {}).get("interventions") or []) for r in finished]
    kept_hints = [len((r.get("calm") or {}).get("interventions") or []) for r in kept]
    sizes_all = [_sizes(r, meter) for r in finished]
    sizes_kept = [_sizes(r, meter) for r in kept]
    first = [first_try_correct(r) for r in finished]
    final = [bool(r.get("correct")) for r in finished]
    statuses = Counter((r.get("calm") or {}).get("final", "not_judged") for r in finished)
    return {
        "problems": len({r["problem_id"] for r in records}),
        "episodes": len(records),
        "errors": len(records) - len(finished),
        "first_try_correct": sum(first),
        "final_correct": sum(final),
        "corrected": sum(1 for a, b in zip(first, final, strict=True) if b and not a),
        "intervened": sum(1 for n in hints if n),
        "final_status": dict(sorted(statuses.items())),
        "kept": len(kept),
        "kept_problems": len({r["problem_id"] for r in kept}),
        "interventions": sum(hints),
        "interventions_per_episode": sum(hints) / len(hints) if hints else None,
        "interventions_per_kept": sum(kept_hints) / len(kept_hints) if kept_hints else None,
        "hint_units_kept": sum(h for h, _ in sizes_kept),
        "policy_units_kept": sum(p for _, p in sizes_kept),
        "hint_share_kept": _share(sum(h for h, _ in sizes_kept), sum(p for _, p in sizes_kept)),
        "hint_share_all": _share(sum(h for h, _ in sizes_all), sum(p for _, p in sizes_all)),
    }


def summarize(
    records: Iterable[Mapping[str, Any]],
    meter: TextMeter | None = None,
    taxonomy: Taxonomy = DEFAULT_TAXONOMY,
) -> dict[str, Any]:
    """The curation statistics of a run's episode records (see the module doc)."""
    meter = meter or TextMeter()
    records = list(records)
    by_benchmark: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_benchmark[str(record.get("benchmark"))].append(record)
    flaws: dict[str, Counter[str]] = {name: Counter() for name in by_benchmark}
    histogram: Counter[int] = Counter()
    judgements: list[Mapping[str, Any]] = []
    for record in records:
        calm = record.get("calm") or {}
        if record.get("status") == "ok":
            histogram[len(calm.get("interventions") or [])] += 1
        for judgement in calm.get("judgements") or []:
            judgements.append(judgement)
            verdict = judgement.get("verdict") or {}
            if judgement.get("status") == "flaw" and verdict.get("flaw_type"):
                flaws[str(record.get("benchmark"))][verdict["flaw_type"]] += 1
    return {
        "unit": meter.unit,
        "unit_label": meter.label,
        "totals": _row(records, meter),
        "benchmarks": {name: _row(rows, meter) for name, rows in sorted(by_benchmark.items())},
        "flaw_types": {
            name: {flaw: counts.get(flaw, 0) for flaw in taxonomy.names}
            for name, counts in sorted(flaws.items())
        },
        "flaw_categories": {flaw.name: flaw.category for flaw in taxonomy},
        "interventions_histogram": {str(k): histogram[k] for k in sorted(histogram)},
        "judge": judge_counts(judgements),
    }


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:.2f}%"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def render_markdown(summary: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """report.md: settings, the curation table, statuses, interventions, flaw types, judge."""
    lines = ["# CALM curation report", "", "## Settings", "", "| setting | value |", "|---|---|"]
    for key, value in settings.items():
        shown = json.dumps(value, default=str) if not isinstance(value, str) else value
        lines.append(f"| {key} | {shown} |")
    columns = [
        ("problems", "problems", False),
        ("episodes", "episodes", False),
        ("errors", "errors", False),
        ("first-try correct", "first_try_correct", False),
        ("final correct", "final_correct", False),
        ("corrected", "corrected", False),
        ("intervened", "intervened", False),
        ("kept", "kept", False),
        ("kept problems", "kept_problems", False),
        ("hints / episode", "interventions_per_episode", False),
        ("hints / kept", "interventions_per_kept", False),
        ("hint share (kept)", "hint_share_kept", True),
        ("hint share (all)", "hint_share_all", True),
    ]
    lines += [
        "",
        "## What CALM changed",
        "",
        f"Hint share = hint / (hint + reasoner text) in the final trajectories, measured in "
        f"{summary['unit_label']}. Kept = correct and judged flawless.",
        "",
        "| benchmark | " + " | ".join(title for title, _, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    rows = [*summary["benchmarks"].items(), ("**total**", summary["totals"])]
    for name, row in rows:
        cells = [_fmt(row.get(key), percent) for _, key, percent in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    statuses = ("flawless", "flawed", "no_verdict", "not_judged")
    lines += ["", "## Final judgement", "", "| benchmark | " + " | ".join(statuses) + " |"]
    lines.append("|---|" + "---|" * len(statuses))
    for name, row in rows:
        counts = row["final_status"]
        lines.append(f"| {name} | " + " | ".join(str(counts.get(s, 0)) for s in statuses) + " |")
    lines += ["", "## Interventions per trajectory", "", "| hints | episodes |", "|---|---|"]
    for hints, count in summary["interventions_histogram"].items():
        lines.append(f"| {hints} | {count} |")
    flaw_names = list(summary["flaw_categories"])
    lines += [
        "",
        "## Flaw types found, by benchmark",
        "",
        f"![flaw types by benchmark]({FLAW_PNG})",
        "",
        "| flaw type | category | " + " | ".join(summary["flaw_types"]) + " |",
        "|---|---|" + "---|" * len(summary["flaw_types"]),
    ]
    for flaw in flaw_names:
        counts = [str(by.get(flaw, 0)) for by in summary["flaw_types"].values()]
        lines.append(
            f"| {flaw} | {summary['flaw_categories'][flaw]} | " + " | ".join(counts) + " |"
        )
    lines += ["", "## Judge", "", judge_sentence(summary["judge"]), ""]
    return "\n".join(lines)


def judge_sentence(judge: Mapping[str, int]) -> str:
    """The judge's counts in words, each part adding up (see `judge_counts`)."""
    return (
        f"{judge['judgements']} judgements: {judge['flawless']} flawless, {judge['flaw']} "
        f"flaw, {judge['no_verdict']} no verdict ({judge['too_long']} too long for the "
        f"judge's context, {judge['out_of_attempts']} with every reply rejected). "
        f"{judge['requests']} requests: {judge['attempts']} replies ({judge['accepted']} "
        f"accepted, {judge['rejected_replies']} rejected by validation) and "
        f"{judge['too_long']} refused as too long; {judge['re_asks']} of the requests were "
        "re-asks after a rejected reply."
    )


def plot_flaw_types(summary: Mapping[str, Any], path: str | Path) -> Path | None:
    """A grouped bar chart: share of each flaw type among a benchmark's flaws (matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no %s (pip install matplotlib)", path)
        return None
    fig, _ = flaw_figure(summary, plt)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def flaw_figure(summary: Mapping[str, Any], plt: Any) -> tuple[Any, Any]:
    """The flaw-type figure and its axes (`plot_flaw_types` saves it). The y-axis is a
    share, 0 to 100%, also when no flaw was found (the figure then says so)."""
    flaw_names = list(summary["flaw_categories"])
    benchmarks = list(summary["flaw_types"])
    fig, ax = plt.subplots(figsize=(max(9.5, 1.4 * len(flaw_names)), 4.8))
    width = 0.8 / max(len(benchmarks), 1)
    found = 0
    for i, name in enumerate(benchmarks):
        counts = summary["flaw_types"][name]
        total = sum(counts.values())
        found += total
        shares = [100.0 * counts.get(f, 0) / total if total else 0.0 for f in flaw_names]
        xs = [j + (i - (len(benchmarks) - 1) / 2) * width for j in range(len(flaw_names))]
        ax.bar(xs, shares, width, label=f"{display_name(name)} (n={total})")
    ax.set_xticks(range(len(flaw_names)))
    ax.set_xticklabels([f.replace("_", "\n") for f in flaw_names], fontsize=8)
    # The two categories side by side, split by a dashed line, as the taxonomy orders them.
    categories = [summary["flaw_categories"][f] for f in flaw_names]
    for category in dict.fromkeys(categories):
        where = [j for j, c in enumerate(categories) if c == category]
        ax.text(
            (where[0] + where[-1]) / 2,
            1.01,
            CATEGORY_TITLES.get(category, category),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
        )
        if where[0] > 0:
            ax.axvline(where[0] - 0.5, color="grey", linestyle="--", linewidth=0.8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of the benchmark's flaws (%)")
    ax.set_title("Flaw types found by the intervener", pad=22)
    if not found:
        ax.text(0.5, 0.5, "no flaws found", transform=ax.transAxes, ha="center", va="center")
    if benchmarks:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig, ax


def write_report(
    summary: Mapping[str, Any], settings: Mapping[str, Any], out_dir: str | Path
) -> dict[str, Path]:
    """report.md, report.json and the flaw-type PNG in `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"report_md": out_dir / REPORT_MD, "report_json": out_dir / REPORT_JSON}
    paths["report_md"].write_text(render_markdown(summary, settings), encoding="utf-8")
    payload = {"settings": dict(settings), **summary}
    paths["report_json"].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    png = plot_flaw_types(summary, out_dir / FLAW_PNG)
    if png is not None:
        paths["flaw_png"] = png
    return paths
