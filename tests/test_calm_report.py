"""CALM's report: the judge's counts add up, and the flaw figure stays a 0-100% share."""

from __future__ import annotations

from typing import Any

import pytest

from calm.report import TOO_LONG_PREFIX, judge_counts, judge_sentence, summarize

TOO_LONG = f"{TOO_LONG_PREFIX}: HTTP 400 from http://judge/v1: maximum context length is 8"
REJECTED = "the hint gives the answer away"


def judgement(status: str, attempts: int, errors: list[str]) -> dict[str, Any]:
    return {"status": status, "attempts": attempts, "errors": errors}


# One row per way a judgement can go (max_attempts 3).
CASES = {
    "flawless at once": judgement("flawless", 1, []),
    "flaw after a rejected reply": judgement("flaw", 2, [REJECTED]),
    "every reply rejected": judgement("no_verdict", 3, [REJECTED] * 3),
    "too long from the start": judgement("no_verdict", 0, [TOO_LONG]),
    "too long after a rejected reply": judgement("no_verdict", 1, [REJECTED, TOO_LONG]),
}
EXPECTED = {
    "flawless at once": dict(requests=1, attempts=1, accepted=1, rejected_replies=0, re_asks=0),
    "flaw after a rejected reply": dict(
        requests=2, attempts=2, accepted=1, rejected_replies=1, re_asks=1
    ),
    "every reply rejected": dict(
        requests=3, attempts=3, accepted=0, rejected_replies=3, re_asks=2, out_of_attempts=1
    ),
    "too long from the start": dict(
        requests=1, attempts=0, accepted=0, rejected_replies=0, re_asks=0, too_long=1
    ),
    "too long after a rejected reply": dict(
        requests=2, attempts=1, accepted=0, rejected_replies=1, re_asks=1, too_long=1
    ),
}


def check_identities(counts: dict[str, int]) -> None:
    assert counts["judgements"] == counts["flawless"] + counts["flaw"] + counts["no_verdict"]
    assert counts["no_verdict"] == counts["too_long"] + counts["out_of_attempts"]
    assert counts["attempts"] == counts["accepted"] + counts["rejected_replies"]
    assert counts["requests"] == counts["attempts"] + counts["too_long"]
    assert counts["requests"] == counts["judgements"] + counts["re_asks"]
    assert counts["rejected_replies"] == counts["re_asks"] + counts["out_of_attempts"]


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_judgement_is_counted_once(case: str) -> None:
    counts = judge_counts([CASES[case]])
    for key, value in EXPECTED[case].items():
        assert counts[key] == value, key
    check_identities(counts)


def test_the_counts_of_a_mixed_run_add_up_and_read_consistently() -> None:
    # The run that printed "24 judgements from 0 replies; 24 replies rejected": every
    # trajectory was too long for the judge.
    counts = judge_counts([CASES["too long from the start"]] * 24)
    check_identities(counts)
    assert (counts["attempts"], counts["rejected_replies"], counts["too_long"]) == (0, 0, 24)
    assert "24 judgements: 0 flawless, 0 flaw, 24 no verdict (24 too long" in (
        judge_sentence(counts)
    )
    # The run that reported 72 rejections for 48 re-asks: 24 judgements out of attempts.
    counts = judge_counts([CASES["every reply rejected"]] * 24)
    check_identities(counts)
    assert (counts["rejected_replies"], counts["re_asks"]) == (72, 48)
    sentence = judge_sentence(counts)
    assert "72 rejected by validation" in sentence and "48 of the requests were re-asks" in (
        sentence
    )
    mixed = judge_counts([j for j in CASES.values() for _ in range(3)])
    check_identities(mixed)


def record(benchmark: str, judgements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "problem_id": f"{benchmark}-1",
        "benchmark": benchmark,
        "status": "ok",
        "correct": False,
        "messages": [],
        "calm": {"final": "no_verdict", "interventions": [], "judgements": judgements},
    }


@pytest.mark.parametrize(
    "records",
    [
        [],  # nothing judged
        [record("nl4opt", [CASES["too long from the start"]])],  # judged, no flaw found
    ],
)
def test_the_flaw_figure_has_no_negative_axis_when_no_flaw_was_found(records) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from calm.report import flaw_figure

    summary = summarize(records)
    fig, ax = flaw_figure(summary, plt)
    try:
        assert ax.get_ylim() == (0.0, 100.0)
        assert any(t.get_text() == "no flaws found" for t in ax.texts)
    finally:
        plt.close(fig)
