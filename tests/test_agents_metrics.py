"""Scores and reports: pass@k, per-benchmark aggregation, results.{json,md,png}."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from agents.metrics import (
    default_ks,
    failure_reason,
    macro_average,
    pass_at_k,
    score_benchmarks,
)
from agents.report import main_table, markdown_report, write_reports


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),
        (4, 2, 2, 1 - 1 / 6),
        (4, 0, 4, 0.0),
        (5, 3, 3, 1.0),  # fewer wrong samples than k: some draw is right
        (8, 3, 1, 3 / 8),
    ],
)
def test_pass_at_k_unbiased_estimator(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "c"), [(5, 2), (6, 3), (4, 1)])
def test_pass_at_k_equals_the_share_of_k_subsets_with_a_correct_sample(n: int, c: int) -> None:
    samples = [True] * c + [False] * (n - c)
    for k in range(1, n + 1):
        subsets = list(combinations(samples, k))
        exact = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(exact)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, 1, 0), (3, 1, 4), (2, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("samples", "ks"), [(1, [1]), (2, [1, 2]), (5, [1, 2, 4, 5]), (8, [1, 2, 4, 8])]
)
def test_reported_ks(samples: int, ks: list[int]) -> None:
    assert default_ks(samples) == ks


def rec(problem: str, sample: int, correct: bool, bench: str = "nl4opt", **extra: Any) -> dict:
    record = {
        "problem_id": problem,
        "benchmark": bench,
        "version": "v1",
        "sample": sample,
        "status": "ok",
        "correct": correct,
        "termination_reason": "answered",
        "grade": {"reason": "correct" if correct else "wrong_value"},
        "turns": 2,
        "executions": 1,
        "tokens": {"prompt": 10, "completion": 5},
    }
    return {**record, **extra}


RECORDS = [
    rec("a", 0, True),
    rec("a", 1, False),
    rec("b", 0, False),
    rec("b", 1, False, termination_reason="max_turns", turns=12, executions=10),
    rec("c", 0, True, bench="industryor"),
    rec("c", 1, False, bench="industryor", status="error", termination_reason="error"),
]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (RECORDS[0], None),
        (RECORDS[1], "wrong_value"),
        (RECORDS[3], "max_turns"),
        (RECORDS[5], "error"),
        (
            rec("x", 0, False, termination_reason="no_code", grade={"reason": "no_answer"}),
            "no_code",
        ),
    ],
)
def test_failure_reason(record: dict, reason: str | None) -> None:
    assert failure_reason(record) == reason


def test_scores_per_benchmark() -> None:
    nl4opt, industry = score_benchmarks(RECORDS)
    assert (nl4opt.benchmark, nl4opt.problems, nl4opt.samples, nl4opt.episodes) == (
        "nl4opt",
        2,
        2,
        4,
    )
    assert nl4opt.pass_at[1] == pytest.approx(0.25)  # (1/2 + 0/2) / 2
    assert nl4opt.pass_at[2] == pytest.approx(0.5)  # a: some sample right, b: none
    assert nl4opt.mean_turns == pytest.approx((2 + 2 + 2 + 12) / 4)
    assert nl4opt.failure_reasons == {"wrong_value": 2, "max_turns": 1}
    assert nl4opt.errors == 0 and nl4opt.prompt_tokens == 40
    assert industry.pass_at[1] == pytest.approx(0.5) and industry.errors == 1
    assert industry.failure_reasons == {"error": 1}
    assert macro_average([nl4opt, industry]) == pytest.approx((0.25 + 0.5) / 2)


def test_two_versions_of_one_benchmark_are_kept_apart() -> None:
    records = [rec("a", 0, True), rec("a2", 0, False, version="v2")]
    labels = [s.benchmark for s in score_benchmarks(records)]
    assert labels == ["nl4opt@v1", "nl4opt@v2"]


def test_tables_and_report_files(tmp_path: Path) -> None:
    scores = score_benchmarks(RECORDS)
    table = main_table(scores, "my-model")
    assert table.splitlines()[0] == "| model | NL4Opt | IndustryOR | macro |"
    assert "| my-model | 25.0 | 50.0 | 37.5 |" in table
    assert "| my-model (pass@2) | 50.0 | 100.0 | 75.0 |" in table
    settings = {"protocol": "native", "samples": 2}
    markdown = markdown_report(scores, "my-model", settings)
    assert "wrong_value 2, max_turns 1" in markdown and "unbiased estimator" in markdown
    paths = write_reports(scores, "my-model", settings, tmp_path / "out")
    results = json.loads(paths["json"].read_text())
    assert results["macro"] == {"pass@1": pytest.approx(0.375), "pass@2": pytest.approx(0.75)}
    assert results["benchmarks"][0]["pass_at"]["pass@2"] == pytest.approx(0.5)
    assert paths["markdown"].read_text() == markdown
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
