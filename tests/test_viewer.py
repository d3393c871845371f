"""The trajectory viewer's data and page, without a browser (`agents.viewer`).

The counts the overview shows must equal the run's own reports (results.json of an eval run,
report.json and golden.jsonl of a CALM run), the filters must select what they say, and the
page must carry untrusted text only as escaped JSON, under a policy that runs nothing but
the viewer's own script. The browser tests (`test_viewer_browser.py`) open the pages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support import chromium
from support.view_runs import (
    HINT,
    HOSTILE_OUTPUT,
    cached_run,
    make_calm_run,
    make_orlm_run,
    make_synthetic_run,
)

from agents.records import read_records
from agents.viewer import load_run, render_html, select, write_view
from agents.viewer.data import (
    execution_class,
    inline_spans,
    markdown_blocks,
    problem_text,
)
from agents.viewer.page import script_json
from calm.report import is_golden
from or_env.cli import main

ASSETS = Path(__file__).resolve().parents[1] / "agents" / "viewer" / "assets"
DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_run(tmp_path_factory, "synthetic", lambda f: make_synthetic_run(f, 400))


@pytest.fixture(scope="module")
def calm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_run(tmp_path_factory, "calm", make_calm_run)


def assert_counts_match_results(run: Path) -> None:
    """Per benchmark and in total, the viewer's counts are those of results.json."""
    view = load_run(run)
    results = json.loads((run / "results.json").read_text())
    assert view.kind == "eval"
    assert view.counts["episodes"] == results["episodes"] == len(view.rows)
    assert view.counts["timeouts"] == results["timeouts"]
    for score in results["benchmarks"]:
        rows = [r for r in view.rows if r.benchmark == score["benchmark"]]
        assert len(rows) == score["episodes"]
        assert len({r.problem_id for r in rows}) == score["problems"]
        terminations = Counter(r.termination for r in rows)
        assert terminations == Counter(score["termination_reasons"])
        assert Counter(r.reason for r in rows if r.reason) == Counter(score["failure_reasons"])
        assert sum(1 for r in rows if r.outcome == "error") == score["errors"]
        correct = sum(1 for r in rows if r.outcome == "correct")
        assert correct == pytest.approx(score["pass_at"]["pass@1"] * score["episodes"])
        assert sum(1 for r in rows if r.timeouts) == score["timeouts"]
        assert sum(r.timeouts for r in rows) == score["timed_out_executions"]
    totals: Counter[str] = Counter()
    for score in results["benchmarks"]:
        totals.update(score["termination_reasons"])
    assert Counter(view.counts["termination_reasons"]) == totals


def test_counts_equal_results_json_of_a_synthetic_run(synthetic_run: Path) -> None:
    assert_counts_match_results(synthetic_run)
    view = load_run(synthetic_run)
    # Every execution class the generator makes is counted, over every step's execution.
    records = list(read_records(synthetic_run / "episodes.jsonl").values())
    executions = Counter(
        execution_class(s["execution"]) for r in records for s in r["steps"] if s["execution"]
    )
    assert view.counts["execution_classes"] == dict(executions)
    assert set(executions) == {"ok", "program_error", "timeout", "sandbox_lost"}
    assert view.counts["executions"] == sum(r["executions"] for r in records)


@pytest.mark.benchmark_data
@pytest.mark.slow
def test_counts_equal_results_json_of_the_orlm_replay(tmp_path_factory) -> None:
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        if os.environ.get("OR_ENV_REQUIRE_DATA") == "1":
            pytest.fail("OR_ENV_REQUIRE_DATA=1 but OR_ENV_DATA_DIR is not a folder")
        pytest.skip("set OR_ENV_DATA_DIR to the benchmark data folder to run this test")
    pytest.importorskip("coptpy", reason="ORLM's programs need coptpy")
    run = cached_run(tmp_path_factory, "orlm", lambda f: make_orlm_run(f, DATA_DIR))
    assert_counts_match_results(run)
    view = load_run(run)
    assert view.counts["outcomes"] == {"correct": 330, "wrong": 226, "error": 0}
    (row,) = [r for r in view.rows if r.problem_id == "industryor-orlm-hf-71"]
    assert (row.outcome, row.reason) == ("wrong", "wrong_value")


def test_counts_equal_the_calm_report_and_golden_file(calm_run: Path) -> None:
    view = load_run(calm_run)
    report = json.loads((calm_run / "report.json").read_text())
    totals = report["totals"]
    assert view.kind == "calm" and view.title == "CALM curation: scripted-reasoner"
    counts = view.counts
    assert counts["episodes"] == totals["episodes"] == 4
    assert counts["outcomes"]["error"] == totals["errors"]
    assert counts["outcomes"]["correct"] == totals["final_correct"]
    assert counts["final_status"] == totals["final_status"]
    assert counts["intervened"] == totals["intervened"] == 1
    assert counts["interventions"] == totals["interventions"]
    assert counts["kept"] == totals["kept"]
    golden = {
        (json.loads(line)["problem_id"], json.loads(line)["sample"])
        for line in (calm_run / "golden.jsonl").read_text().splitlines()
    }
    assert {(r.problem_id, r.sample) for r in view.rows if r.kept} == golden
    assert [r.kept for r in view.rows] == [is_golden(r) for r in view.records]
    sloppy = next(r for r in view.rows if r.problem_id == "sloppy")
    assert (sloppy.interventions, sloppy.turns, sloppy.generated_turns) == (1, 2, 3)
    # The report's own settings table is shown as the page's settings, not twice.
    assert not any(
        b["type"] == "heading" and b["spans"] == [["text", "Settings"]] for b in view.report
    )
    assert view.settings["max_interventions"] == 5
    assert any(b["type"] == "image" for b in view.report)  # flaw_types.png, embedded


def _expected(records: list[dict[str, Any]], keep: Any) -> list[int]:
    return [i for i, r in enumerate(records) if keep(r)]


def test_filters_select_what_they_say(synthetic_run: Path) -> None:
    view = load_run(synthetic_run)
    records = view.records

    def chosen(**filters: Any) -> list[int]:
        return [row.index for row in select(view, **filters)]

    assert chosen() == list(range(len(records)))
    assert chosen(benchmark="nl4opt") == _expected(records, lambda r: r["benchmark"] == "nl4opt")
    assert chosen(outcome="correct") == _expected(records, lambda r: r["correct"])
    assert chosen(outcome="wrong") == _expected(records, lambda r: not r["correct"])
    assert chosen(outcome="error") == _expected(records, lambda r: r["status"] != "ok")
    assert chosen(termination="max_turns") == _expected(
        records, lambda r: r["termination_reason"] == "max_turns"
    )
    both = chosen(benchmark="optmath", outcome="wrong")
    assert both == _expected(records, lambda r: r["benchmark"] == "optmath" and not r["correct"])
    assert both and all(i in chosen(outcome="wrong") for i in both)
    # Free text: every word, case-insensitively, in the problem text or its id.
    words = ["WAREHOUSE", "diet"]
    assert chosen(query=" ".join(words)) == _expected(
        records, lambda r: all(w.lower() in problem_text(r).lower() for w in words)
    )
    assert chosen(query="optmath-7") == _expected(records, lambda r: "optmath-7" in r["problem_id"])
    assert chosen(query="no such words here") == []
    # The counts of the list are the counts of the rows it holds.
    assert len(chosen(outcome="error")) == view.counts["outcomes"]["error"]


def test_calm_filters(calm_run: Path) -> None:
    view = load_run(calm_run)
    assert [r.problem_id for r in select(view, intervened=True)] == ["sloppy"]
    assert sorted(r.problem_id for r in select(view, intervened=False)) == [
        "careful",
        "hostile",
        "mute",
    ]
    assert [r.problem_id for r in select(view, final="no_verdict")] == ["mute"]
    assert [r.problem_id for r in select(view, query="<b>not bold</b>")] == ["hostile"]


def test_execution_classes() -> None:
    assert execution_class({"exit_code": 0, "timed_out": False}) == "ok"
    assert execution_class({"exit_code": 1}) == "program_error"
    assert execution_class({"exit_code": -9, "timed_out": True}) == "timeout"
    assert execution_class({"exit_code": None, "sandbox_error": "x", "failure": "busy"}) == (
        "sandbox_busy"
    )
    assert execution_class({"exit_code": None, "sandbox_error": "x"}) == "sandbox_error"


def test_markdown_blocks(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    (tmp_path / "plot.png").write_bytes(png)
    (tmp_path / "fake.png").write_bytes(b"<svg onload=alert(1)>")
    text = (
        "# Title\n\nSettings: a 1.\n\nSome `code` and **bold** text\ncontinued.\n\n"
        "| a | b |\n|---|---|\n| 1 | **2** |\n\n![plot](plot.png)\n![fake](fake.png)\n"
        "![far](../plot.png)\n## Details\n"
    )
    blocks = markdown_blocks(text, tmp_path)
    kinds = [b["type"] for b in blocks]
    assert kinds == ["heading", "paragraph", "paragraph", "table", "image", "heading"]
    assert blocks[2]["spans"] == [
        ["text", "Some "],
        ["code", "code"],
        ["text", " and "],
        ["strong", "bold"],
        ["text", " text continued."],
    ]
    assert blocks[3]["header"] == [[["text", "a"]], [["text", "b"]]]
    assert blocks[3]["rows"] == [[[["text", "1"]], [["strong", "2"]]]]
    assert blocks[4]["src"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert inline_spans("") == []


def test_script_json_cannot_close_its_element() -> None:
    value = {"out": "</script><script>alert(1)</script><!-- & -->", "x": float("nan")}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    back = json.loads(text)
    assert back["out"] == value["out"] and back["x"] == "nan"
    assert json.loads(script_json({"inf": math.inf}))["inf"] == "inf"


def test_page_carries_untrusted_text_only_as_escaped_data(calm_run: Path) -> None:
    view = load_run(calm_run)
    page = render_html(view)
    # Exactly the index, the viewer's script and one block per episode: the program's
    # `</script><script>` could not end a block and open another.
    scripts = re.findall(r"<script([^>]*)>", page)
    assert len(scripts) == 2 + len(view.records)
    assert scripts.count("") == 1  # one executable script, the viewer's
    assert page.count("</script>") == len(scripts)
    assert "alert(1)" in page and "<script>alert(1)" not in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    # The policy admits only the inline style and script that are in the page (by hash).
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)[1]
    assert "default-src 'none'" in policy and "connect-src" not in policy
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)[1]
    script = re.search(r"<script>(.*?)</script>", page, re.DOTALL)[1]
    for text in (style, script):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    # No resource is fetched from anywhere: no URL of any scheme but data: in the page.
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//)", page)
    records = [
        json.loads(m)
        for m in re.findall(r'<script type="application/json" id="e\d+">(.*?)</script>', page)
    ]
    assert records == view.records
    hostile = next(r for r in records if r["problem_id"] == "hostile")
    assert any(HOSTILE_OUTPUT in m["content"] for m in hostile["messages"])
    sloppy = next(r for r in records if r["problem_id"] == "sloppy")
    assert [m["source"] for m in sloppy["messages"]].count("intervener") == 1
    assert HINT in sloppy["calm"]["interventions"][0]["text"]


def test_viewer_script_builds_no_markup_from_strings() -> None:
    script = (ASSETS / "viewer.js").read_text()
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("style',
        "</script",
        "<!--",
    ):
        assert forbidden not in script, forbidden
    assert "</style" not in (ASSETS / "viewer.css").read_text()
    assert "http" not in (ASSETS / "viewer.css").read_text()  # no web fonts, no imports


def test_or_env_view_command(synthetic_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "page" / "run.html"
    assert main(["view", str(synthetic_run), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert write_view(synthetic_run, tmp_path / "again.html").read_text() == out.read_text()
    assert main(["view", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "absent")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_browser_tests_skip_without_chromium_unless_it_is_required(monkeypatch) -> None:
    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
    monkeypatch.delenv(chromium.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium on PATH"):
        chromium.require_chromium()
    monkeypatch.setenv(chromium.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="OR_ENV_REQUIRE_CHROMIUM=1 but no Chromium"):
        chromium.require_chromium()
