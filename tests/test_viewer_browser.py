"""The trajectory viewer in a real browser: headless Chromium opens pages built from real runs.

Chromium is Debian's package, driven over the DevTools pipe (`support/chromium.py`); the
tests skip without it, and fail instead when OR_ENV_REQUIRE_CHROMIUM=1 (CI installs it). The
pages come from real run folders: the ORLM replay (the README's fidelity run; needs the
benchmark data), a CALM run against scripted OpenAI-compatible servers, and a synthetic
eval run. Screenshots of the overview and of episodes are written to each test's tmp dir
(CI keeps them as artefacts); with OR_ENV_VIEWER_SCREENSHOTS=DIR they are also written to
DIR, shrunk to a 256-colour palette, as the README's (`OR_ENV_VIEWER_SCREENSHOTS=docs`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.chromium import Chromium, Page, require_chromium
from support.view_runs import (
    HINT,
    READY,
    cached_run,
    make_calm_run,
    make_orlm_run,
    make_synthetic_run,
    time_viewer,
)

from agents.viewer import load_run, select, write_view
from agents.viewer.data import count_rows

pytestmark = pytest.mark.browser

DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")
SCREENSHOTS_ENV = "OR_ENV_VIEWER_SCREENSHOTS"
WIDTH, HEIGHT = 1280, 860


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(require_chromium()) as chromium:
        yield chromium


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    tab = browser.new_page(WIDTH, HEIGHT)
    yield tab
    tab.close()


def open_page(page: Page, html: Path, fragment: str = "") -> None:
    page.goto(html.resolve().as_uri() + fragment, ready=READY)


def text(page: Page, selector: str) -> str:
    return page.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")


def click(page: Page, selector: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def wait_view(page: Page, view: str) -> None:
    page.wait_for(f"document.documentElement.dataset.view === {json.dumps(view)}")


def shown(page: Page) -> int:
    return int(text(page, "#shown-count"))


def choose(page: Page, name: str, value: str) -> None:
    """Pick a filter's value as a user does (the change event), wait for the list."""
    page.evaluate(
        f"(function () {{ var s = document.getElementById('filter-{name}'); "
        f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )
    page.wait_for(
        f"document.getElementById('filter-{name}') && "
        f"document.getElementById('filter-{name}').value === {json.dumps(value)} && "
        f"location.hash.indexOf('{name}=') >= 0"
    )


def search(page: Page, query: str) -> None:
    page.evaluate(
        "(function () { var q = document.getElementById('filter-q'); "
        f"q.value = {json.dumps(query)}; q.dispatchEvent(new Event('input')); }})()"
    )


def count_table(page: Page, title: str) -> dict[str, list[int]]:
    """A counts table of the overview: name -> [all, shown]."""
    return page.evaluate(
        f"""(function () {{
  var out = {{}};
  document.querySelectorAll('table[data-counts={json.dumps(title)}] tbody tr[data-name]')
    .forEach(function (tr) {{
      var cells = tr.children;
      out[tr.dataset.name] = [Number(cells[1].textContent), Number(cells[2].textContent)];
    }});
  return out;
}})()"""
    )


def screenshot(page: Page, folder: Path, name: str, readme: bool = False) -> Path:
    """A PNG in the test's tmp dir; the README's (`readme`) also in $OR_ENV_VIEWER_SCREENSHOTS,
    as a palette PNG."""
    path = page.screenshot(folder / name)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    docs = os.environ.get(SCREENSHOTS_ENV)
    if docs and readme:
        target = Path(docs) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            from PIL import Image

            with Image.open(path) as image:
                image.convert("RGB").quantize(colors=256).save(target, optimize=True)
        except ImportError:
            shutil.copyfile(path, target)
    return path


def assert_safe(page: Page) -> None:
    """Nothing the page showed ran: no dialog, no error, no marker set by injected code."""
    assert page.dialogs == []
    assert page.console_errors == []
    assert page.evaluate("document.documentElement.getAttribute('data-pwned')") is None


# ---------------------------------------------------------------------------- ORLM replay
@pytest.fixture(scope="module")
def orlm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        if os.environ.get("OR_ENV_REQUIRE_DATA") == "1":
            pytest.fail("OR_ENV_REQUIRE_DATA=1 but OR_ENV_DATA_DIR is not a folder")
        pytest.skip("set OR_ENV_DATA_DIR to the benchmark data folder to run this test")
    pytest.importorskip("coptpy", reason="ORLM's programs need coptpy")
    return cached_run(tmp_path_factory, "orlm", lambda f: make_orlm_run(f, DATA_DIR))


@pytest.mark.benchmark_data
@pytest.mark.slow
def test_orlm_replay_run(orlm_run: Path, page: Page, tmp_path: Path) -> None:
    html = write_view(orlm_run, tmp_path / "orlm.html")
    results = json.loads((orlm_run / "results.json").read_text())
    open_page(page, html)
    assert text(page, "#episode-total") == str(results["episodes"]) == "556"
    assert shown(page) == 556
    assert page.evaluate("document.querySelectorAll('#episode-rows tr').length") == 100
    assert "page 1 of 6" in text(page, ".pager")
    # The overview's counts are results.json's.
    terminations: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for score in results["benchmarks"]:
        terminations.update(score["termination_reasons"])
        failures.update(score["failure_reasons"])
    table = count_table(page, "termination reason")
    assert {name: counts[0] for name, counts in table.items()} == dict(terminations)
    table = count_table(page, "failure reason")
    assert {name: counts[0] for name, counts in table.items()} == dict(failures)
    # The results table of results.md is on the page.
    assert "86.9" in text(page, ".report") and "IndustryOR" in text(page, ".report")
    screenshot(page, tmp_path, "viewer-overview.png", readme=True)

    # A known problem: found by searching its id, opened by clicking its row.
    search(page, "industryor-orlm-hf-71")
    page.wait_for("document.getElementById('shown-count').textContent === '1'")
    click(page, "#episode-rows tr")
    wait_view(page, "episode")
    assert page.evaluate("document.getElementById('episode').dataset.problemId") == (
        "industryor-orlm-hf-71"
    )
    assert text(page, "#grade-reason") == "wrong_value"
    assert text(page, "#rel-error") == "0.1167 (11.7%)"
    assert text(page, "#answer") == "268000.0"
    assert text(page, "#ground-truth") == "240000"
    # The program and its output, as code with line numbers.
    gutter = text(page, "#trajectory .msg.policy .code.lang-python pre.gutter")
    assert gutter.startswith("1\n2\n3\n")
    assert page.evaluate("document.querySelectorAll('#trajectory .code.lang-output').length") == 1
    page.resize(WIDTH, 1300)
    screenshot(page, tmp_path, "viewer-episode.png", readme=True)
    assert_safe(page)


# ---------------------------------------------------------------------------- CALM run
@pytest.fixture(scope="module")
def calm_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = cached_run(tmp_path_factory, "calm", make_calm_run)
    return write_view(run, tmp_path_factory.mktemp("calm-page") / "calm.html")


def test_calm_run(calm_html: Path, page: Page, tmp_path: Path) -> None:
    open_page(page, calm_html)
    assert text(page, "#episode-total") == "4"
    assert count_table(page, "final judgement") == {
        "flawless": [3, 3],
        "no_verdict": [1, 1],
    }
    screenshot(page, tmp_path, "viewer-calm-overview.png")
    choose(page, "intervened", "yes")
    assert shown(page) == 1
    assert count_table(page, "final judgement") == {"flawless": [3, 1], "no_verdict": [1, 0]}
    click(page, "#episode-rows tr")
    wait_view(page, "episode")
    assert page.evaluate("document.getElementById('episode').dataset.problemId") == "sloppy"
    # The hint as an intervener message, after the intervention that explains it.
    assert HINT in text(page, "#trajectory .msg.intervener")
    intervention = text(page, "#trajectory .intervention")
    assert "manual_calculation" in intervention and "rewound to turn 0" in intervention
    assert "answer 61 · not correct" in intervention  # the outcome the rewind discarded
    # The dropped turn: struck through, in a collapsible block (open).
    assert "By hand, 20 * 3" in text(page, ".intervention .msg.dropped")
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('.msg.dropped .text')).textDecorationLine"
        )
        == "line-through"
    )
    assert page.evaluate("document.querySelector('details.dropped-turns').open") is True
    # The judge's replies and the final judgement.
    judgements = page.evaluate(
        "Array.from(document.querySelectorAll('#judge [data-judgement]'))"
        ".map(function (j) { return j.dataset.judgement; })"
    )
    assert judgements == ["flaw", "flawless"]
    assert "final judgement: flawless" in text(page, "#judge")
    assert '"manual_calculation"' in text(page, "#judge .reply")
    # Reasoning is collapsed; per-turn latency and tokens are shown.
    assert page.evaluate("document.querySelector('#trajectory details.think').open") is False
    meta = text(page, "#trajectory .msg.policy .meta")
    assert "latency" in meta and "tokens 141 in / 18 out" in meta
    page.evaluate("document.getElementById('trajectory').scrollIntoView()")
    screenshot(page, tmp_path, "viewer-calm-episode.png", readme=True)
    # Back to the filtered list (keys: u).
    page.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'u'}))")
    wait_view(page, "list")
    assert shown(page) == 1
    assert_safe(page)


def test_program_output_is_shown_as_text_and_runs_nothing(calm_html: Path, page: Page) -> None:
    open_page(page, calm_html)
    search(page, "hostile")
    page.wait_for("document.getElementById('shown-count').textContent === '1'")
    click(page, "#episode-rows tr")
    wait_view(page, "episode")
    output = text(page, "#trajectory .code.lang-output pre.src")
    assert "<script>alert(1)</script>" in output
    assert "</script><script>document.documentElement.setAttribute" in output
    assert '<img src=x onerror="' in output
    # The question's markup is text too.
    assert "<b>not bold</b> &amp; more" in text(page, "#problem")
    assert page.evaluate("document.querySelectorAll('#app script, #app img, #app b').length") == 0
    # The raw record, opened, is text as well.
    page.evaluate("var d = document.querySelector('details.raw'); d.open = true;")
    page.wait_for("!!document.querySelector('details.raw .code')")
    assert "<script>alert(1)</script>" in text(page, "details.raw pre.src")
    # Only the page's own script elements: the index, the viewer, one per episode.
    assert page.evaluate("document.scripts.length") == 2 + 4
    page.browser.pump(0.3)  # give an injected handler (an image error) time to fire
    assert_safe(page)


# ---------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    run = cached_run(tmp_path_factory, "synthetic", lambda f: make_synthetic_run(f, 400))
    html = write_view(run, tmp_path_factory.mktemp("synthetic-page") / "synthetic.html")
    return html, load_run(run)


@pytest.mark.parametrize(
    ("fragment", "filters"),
    [
        ("", {}),
        ("#/?outcome=wrong&benchmark=nl4opt", {"outcome": "wrong", "benchmark": "nl4opt"}),
        ("#/?outcome=error", {"outcome": "error"}),
        ("#/?termination=max_turns", {"termination": "max_turns"}),
        ("#/?q=Warehouse%20DIET", {"query": "Warehouse DIET"}),
        ("#/?q=optmath-1&outcome=correct", {"query": "optmath-1", "outcome": "correct"}),
    ],
)
def test_the_page_filters_as_the_data_does(synthetic, page: Page, fragment, filters) -> None:
    html, view = synthetic
    open_page(page, html, fragment)
    rows = select(view, **filters)
    assert shown(page) == len(rows)
    expected = count_rows(rows)
    table = count_table(page, "termination reason")
    assert {k: v[1] for k, v in table.items() if v[1]} == expected["termination_reasons"]
    table = count_table(page, "execution class")
    assert {k: v[1] for k, v in table.items() if v[1]} == expected["execution_classes"]
    listed = page.evaluate(
        "Array.from(document.querySelectorAll('#episode-rows tr'))"
        ".map(function (tr) { return Number(tr.dataset.index); })"
    )
    assert listed == [row.index for row in rows][:100]


def test_sorting_paging_expanders_and_keys(synthetic, page: Page) -> None:
    html, view = synthetic
    open_page(page, html)
    assert "page 1 of 4" in text(page, ".pager")
    click(page, 'a[data-sort="wall_s"]')
    page.wait_for("location.hash.indexOf('sort=wall_s') >= 0")
    by_wall = sorted(view.rows, key=lambda r: (r.wall_s, r.index))
    first = page.evaluate("Number(document.querySelector('#episode-rows tr').dataset.index)")
    assert first == by_wall[0].index
    click(page, 'a[data-sort="wall_s"]')
    page.wait_for("location.hash.indexOf('desc=1') >= 0")
    first = page.evaluate("Number(document.querySelector('#episode-rows tr').dataset.index)")
    assert first == max(view.rows, key=lambda r: (r.wall_s, -r.index)).index
    click(page, ".pager a")
    page.wait_for("location.hash.indexOf('page=1') >= 0")
    assert "page 2 of 4" in text(page, ".pager")

    # A 400-line solver log is capped with an expander.
    long = next(
        i
        for i, record in enumerate(view.records)
        if any(m["content"].count("\n") > 300 for m in record["messages"])
    )
    page.evaluate(f"location.hash = '#/episode/{long}'")
    wait_view(page, "episode")
    lines = page.evaluate(
        "Array.from(document.querySelectorAll('#trajectory .code.lang-output pre.src'))"
        ".map(function (p) { return p.textContent.split('\\n').length; })"
    )
    assert 60 in lines
    button = "#trajectory .code.lang-output button.more"
    assert text(page, button).startswith("show all")
    click(page, button)
    lines = page.evaluate(
        "Array.from(document.querySelectorAll('#trajectory .code.lang-output pre.src'))"
        ".map(function (p) { return p.textContent.split('\\n').length; })"
    )
    assert max(lines) > 300
    # j: the next episode of the list (unfiltered, by index).
    page.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j'}))")
    page.wait_for(f"location.hash.indexOf('#/episode/{long + 1}') === 0")
    # An episode that failed to run shows its error.
    failed = next(row.index for row in view.rows if row.outcome == "error")
    page.evaluate(f"location.hash = '#/episode/{failed}'")
    page.wait_for(
        f"!!document.querySelector('#episode .error-box') && location.hash.indexOf('/{failed}') > 0"
    )
    assert "policy error" in text(page, "#episode .error-box")
    assert_safe(page)


@pytest.mark.slow
def test_ten_thousand_episodes_open_and_filter_quickly(
    tmp_path_factory: pytest.TempPathFactory, page: Page
) -> None:
    """The scale the issue asks for; `benchmarks/bench_viewer.py` reports the same timings.
    The bounds leave room for a loaded CI machine (measured: about 0.3 s to the overview,
    1 s to the load event and under 0.1 s per filter on 2 cores)."""
    folder = tmp_path_factory.mktemp("ten-thousand")
    run = make_synthetic_run(folder / "run", 10_000)
    html = write_view(run, folder / "view.html")
    timings = time_viewer(page, html.resolve().as_uri(), 10_000)
    assert timings["overview_drawn_ms"] < 5000, timings
    assert timings["load_event_ms"] < 15000, timings
    for key in ("filter_ms", "search_ms", "sort_ms", "open_episode_ms"):
        assert timings[key] < 2000, timings
    assert 0 < timings["searched_episodes"] <= timings["filtered_episodes"] < 10_000
    assert_safe(page)


# ---------------------------------------------------------------------------- tools rendering
HOSTILE_CODE = "print('<img src=x onerror=\"document.documentElement.setAttribute(1,1)\">')"


def make_tools_run(out: Path) -> Path:
    """An eval run in the tools rendering, replayed: a hostile program, then an answer."""
    from or_env import load_problems
    from or_env.cli import main

    sample = load_problems("sample")[0]

    def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        encoded = json.dumps(arguments)
        return {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}

    turns = [
        {"content": "Run it.", "tool_calls": [call("a", "run_python", {"code": HOSTILE_CODE})]},
        {"content": "", "tool_calls": [call("b", "submit_answer", {"answer": "<b>7</b>"})]},
    ]
    replay = out.parent / f"{out.name}-replay.jsonl"
    replay.write_text(json.dumps({"problem_id": sample.id, "turns": turns}) + "\n")
    args = ["eval", "--policy", "replay", "--replay", str(replay), "--benchmarks", "sample"]
    args += ["--limit", "1", "--rendering", "tools", "--sandbox", "local", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    return out


def test_tool_calls_and_results_are_shown_as_text(browser, page: Page, tmp_path: Path) -> None:
    run = make_tools_run(tmp_path / "tools-run")
    html = write_view(run, tmp_path / "tools.html")
    open_page(page, html)
    click(page, "#episode-rows tr")
    wait_view(page, "episode")
    calls = page.evaluate(
        "Array.from(document.querySelectorAll('#trajectory .tool-call'))"
        ".map(function (b) { return [b.dataset.tool, b.textContent]; })"
    )
    assert [tool for tool, _ in calls] == ["run_python", "submit_answer"]
    assert HOSTILE_CODE in calls[0][1] and "submit_answer: <b>7</b>" in calls[1][1]
    # The tool result is the program's output, in an output block, as text.
    output = text(page, "#trajectory .code.lang-output pre.src")
    assert '<img src=x onerror="document.documentElement.setAttribute(1,1)">' in output
    assert page.evaluate("document.querySelectorAll('#app img, #app b').length") == 0
    screenshot(page, tmp_path, "viewer-tools-episode.png")
    page.browser.pump(0.3)
    assert_safe(page)
