"""`or-env calm curate` end to end, against real HTTP OpenAI-compatible servers on 127.0.0.1.

Both endpoints are `ScriptedOpenAIServer`s (from the agents tests: real sockets, requests
validated as vLLM validates them, stop sequences applied): a scripted reasoner, and a
scripted judge server standing in for the intervener, since no capable judge model runs
here. Episodes run in the real env with the real local sandbox; the exports are read back
from disk.

The four problems exercise the paths of the pipeline:
- careful: right the first time, judged flawless -> kept, no hint;
- sloppy: answers by hand, wrongly; the judge flags turn 1; with the hint the reasoner runs
  code and answers right -> corrected and kept;
- leaky: like sloppy, but the judge's first hint states the answer; validation rejects it,
  the judge is asked again with the error and gives a clean hint -> kept;
- mute: right, but the judge never sends a valid verdict -> "no_verdict", not kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_agents_openai import ScriptedOpenAIServer

from or_env.cli import main

REASONER = "scripted-reasoner"
JUDGE = "scripted-judge"
PROBLEMS = [
    {"id": "careful", "question": "[careful] Compute 5 + 7 as the objective.", "answer": 12},
    {"id": "sloppy", "question": "[sloppy] Compute 20 * 3 as the objective.", "answer": 60},
    {"id": "leaky", "question": "[sloppy] Compute 6 * 7 as the objective.", "answer": 42},
    {"id": "mute", "question": "[careful] Compute 9 - 4 as the objective.", "answer": 5},
]
HINT = "Wait, I worked this out by hand; I should run the computation in code."


def scripted_reasoner(body: dict[str, Any]) -> str:
    """The scripted reasoner: careful problems get code at once; sloppy ones are answered by
    hand (wrongly) unless a hint is in the conversation. It answers from printed output."""
    messages = body["messages"]
    question = messages[1]["content"]
    expression = re.search(r"Compute (.+) as", question).group(1)
    seen = "\n".join(m["content"] for m in messages[2:])
    printed = re.findall(r"```output\n(.*?)\n```", seen, re.DOTALL)
    if printed:
        return f"The program printed {printed[-1]}, so \\boxed{{{printed[-1]}}}."
    if "[sloppy]" in question and "Wait," not in seen:
        wrong = eval(expression) + 1
        return f"By hand, {expression} is about {wrong}, so \\boxed{{{wrong}}}."
    return f"Let me run it.\n```python\nprint({expression})\n```\n```output\nhallucinated\n```"


def scripted_judge(body: dict[str, Any]) -> str:
    """The scripted judge server: flags hand calculations, passes code-backed answers."""
    messages = body["messages"]
    prompt = messages[1]["content"]
    if "9 - 4" in prompt:
        return "I am not sure what to say about this one."  # never a verdict
    if "graded correct" in prompt and "```python" in prompt:
        return 'Looks right.\n```json\n{"flawless": true}\n```'
    if "6 * 7" in prompt and len(messages) == 2:
        return json.dumps(
            {"flawless": False, "turn": 1, "flaw_type": "manual_calculation", "hint": "It is 42."}
        )
    return json.dumps(
        {
            "flawless": False,
            "turn": 1,
            "flaw_type": "manual_calculation",
            "hint": HINT,
            "rationale": "no code was run",
        }
    )


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedOpenAIServer, ScriptedOpenAIServer]]:
    reasoner = ScriptedOpenAIServer(scripted_reasoner, model=REASONER).start()
    judge = ScriptedOpenAIServer(scripted_judge, model=JUDGE).start()
    yield reasoner, judge
    reasoner.stop()
    judge.stop()


def curate(
    reasoner: ScriptedOpenAIServer,
    judge: ScriptedOpenAIServer,
    problems: Path,
    out: Path,
    *extra: str,
) -> int:
    return main(
        [
            "calm",
            "curate",
            "--reasoner-base-url",
            reasoner.base_url,
            "--reasoner-model",
            REASONER,
            "--intervener-base-url",
            judge.base_url,
            "--intervener-model",
            JUDGE,
            "--problems",
            str(problems),
            "--samples",
            "1",
            "--concurrency",
            "4",
            "--sandbox",
            "local",
            "--sandbox-workers",
            "2",
            "--max-retries",
            "1",
            "--no-progress",
            "--out",
            str(out),
            *extra,
        ]
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_curate_end_to_end(servers, tmp_path, capsys) -> None:
    reasoner, judge = servers
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    out = tmp_path / "run"
    assert curate(reasoner, judge, problems, out) == 0
    printed = capsys.readouterr().out
    assert "kept 3 (3 problems)" in printed and "corrected 2" in printed

    episodes = {r["problem_id"]: r for r in read_jsonl(out / "episodes.jsonl")}
    assert {k: r["calm"]["final"] for k, r in episodes.items()} == {
        "careful": "flawless",
        "sloppy": "flawless",
        "leaky": "flawless",
        "mute": "no_verdict",
    }
    leaky = episodes["leaky"]["calm"]
    first = leaky["judgements"][0]
    assert first["status"] == "flaw" and first["attempts"] == 2
    assert "gives the answer away" in first["errors"][0]
    # The retry request carried the rejected reply and the reason back to the judge.
    retries = [body for _, body in judge.requests if len(body["messages"]) == 4]
    assert any("6 * 7" in b["messages"][1]["content"] for b in retries)
    assert all("Your reply was rejected" in b["messages"][3]["content"] for b in retries)
    mute = episodes["mute"]["calm"]["judgements"][0]
    assert mute["status"] == "no_verdict" and mute["attempts"] == 3

    # After the hint the reasoner continued the assistant turn that begins with the hint.
    continued = [
        body
        for _, body in reasoner.requests
        if body.get("continue_final_message") and body["messages"][-1]["content"] == HINT + "\n\n"
    ]
    assert len(continued) == 2  # sloppy and leaky, once each
    sloppy = episodes["sloppy"]
    assert sloppy["turns"] == 2 and sloppy["generated_turns"] == 3 and sloppy["correct"]

    # SFT parquet: one row per kept trajectory; hints and outputs are user messages.
    table = pq.read_table(out / "sft.parquet").to_pylist()
    rows = {row["problem_id"]: row for row in table}
    assert sorted(rows) == ["careful", "leaky", "sloppy"]
    assert rows["sloppy"]["interventions"] == 1 and rows["careful"]["interventions"] == 0
    roles = [m["role"] for m in rows["sloppy"]["messages"]]
    assert roles == ["system", "user", "user", "assistant", "user", "assistant"]
    assert rows["sloppy"]["messages"][2]["content"].startswith(HINT)
    assert all(
        HINT not in m["content"] for m in rows["sloppy"]["messages"] if m["role"] == "assistant"
    )
    assert rows["sloppy"]["messages"][-1]["content"] == "The program printed 60, so \\boxed{60}."

    # JSONL with provenance: sources, the dropped turn, the judge's settings.
    golden = {row["problem_id"]: row for row in read_jsonl(out / "golden.jsonl")}
    assert sorted(golden) == ["careful", "leaky", "sloppy"]
    provenance = golden["sloppy"]
    assert [m["source"] for m in provenance["messages"]][2] == "intervener"
    dropped = provenance["calm"]["interventions"][0]["dropped"]
    assert dropped[0]["content"].startswith("By hand, 20 * 3")
    assert (
        provenance["intervener"]["model"] == JUDGE and provenance["reasoner"]["model"] == REASONER
    )

    # The report: counts, the hint share in characters (labelled so), the flaw figure.
    report = json.loads((out / "report.json").read_text())
    totals = report["totals"]
    assert (totals["problems"], totals["kept"], totals["corrected"]) == (4, 3, 2)
    assert (totals["first_try_correct"], totals["final_correct"]) == (2, 4)
    assert totals["final_status"] == {"flawless": 3, "no_verdict": 1}
    assert report["unit"] == "characters" and "no tokenizer" in report["unit_label"]
    hint_chars = sum(
        len(m["content"])
        for row in golden.values()
        for m in row["messages"]
        if m["source"] == "intervener"
    )
    policy_chars = sum(
        len(m["content"])
        for row in golden.values()
        for m in row["messages"]
        if m["source"] == "policy"
    )
    assert totals["hint_share_kept"] == pytest.approx(hint_chars / (hint_chars + policy_chars))
    assert report["flaw_types"]["custom"]["manual_calculation"] == 2
    assert report["interventions_histogram"] == {"0": 2, "1": 2}
    # The judge: careful, sloppy (twice: flaw, then flawless), leaky (a rejected reply, then
    # a flaw; then flawless), mute (3 rejected replies). Every count adds up.
    assert report["judge"] == {
        "judgements": 6,
        "flawless": 3,
        "flaw": 2,
        "no_verdict": 1,
        "too_long": 0,
        "out_of_attempts": 1,
        "requests": 9,
        "attempts": 9,
        "accepted": 5,
        "rejected_replies": 4,
        "re_asks": 3,
    }
    markdown = (out / "report.md").read_text()
    assert "| **total** | 4 | 4 | 0 | 2 | 4 | 2 | 2 | 3 | 3 |" in markdown
    assert (out / "flaw_types.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Rerunning resumes: nothing is asked again, the exports are rewritten the same.
    before = (len(reasoner.requests), len(judge.requests))
    sft_before = (out / "sft.parquet").read_bytes()
    assert curate(reasoner, judge, problems, out) == 0
    assert (len(reasoner.requests), len(judge.requests)) == before
    assert pq.read_table(out / "sft.parquet").to_pylist() == table
    assert len(sft_before) > 0

    # Other episode settings in the same folder are refused.
    capsys.readouterr()
    assert curate(reasoner, judge, problems, out, "--max-interventions", "2") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "other settings (calm.max_interventions: 5 -> 2)" in err

    # A subset rerun into the folder rewrites the exports and the report of all of it.
    report_before = (out / "report.json").read_text()
    assert curate(reasoner, judge, problems, out, "--limit", "1") == 0
    assert (out / "report.json").read_text() == report_before
    assert pq.read_table(out / "sft.parquet").to_pylist() == table


def test_curate_with_the_judge_down_records_errors_to_retry(servers, tmp_path, capsys) -> None:
    reasoner, judge = servers
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps(PROBLEMS[0]) + "\n")
    out = tmp_path / "run"
    for _ in range(2):  # --max-retries 1: two attempts, both fail
        judge.fail_next(503, "judge overloaded")
    assert curate(reasoner, judge, problems, out) == 1
    (record,) = read_jsonl(out / "episodes.jsonl")
    assert record["status"] == "error" and "judge overloaded" in record["error"]
    # The judge is back: the rerun retries the failed episode and keeps it.
    assert curate(reasoner, judge, problems, out) == 0
    assert [r["problem_id"] for r in pq.read_table(out / "sft.parquet").to_pylist()] == ["careful"]


def test_curate_run_config_round_trip_and_resume(servers, tmp_path, capsys) -> None:
    """--config + overrides -> config.yaml; the same config resumes, another is refused."""
    reasoner, judge = servers
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps(PROBLEMS[0]) + "\n")
    config = tmp_path / "curate.yaml"
    config.write_text(
        f"""
reasoner: {{base_url: "{reasoner.base_url}", model: {REASONER}}}
intervener: {{base_url: "{judge.base_url}", model: {JUDGE}, max_hint_chars: 300}}
problems: {{file: "{problems}"}}
sandbox: {{kind: local, workers: 2}}
run: {{out: "{tmp_path / "run"}", concurrency: 4, progress: false, max_retries: 1}}
"""
    )
    assert main(["calm", "curate", "--config", str(config), "calm.max_interventions=3"]) == 0
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "max_interventions: 3" in saved and "max_hint_chars: 300" in saved
    assert f"model: {JUDGE}" in saved
    before = (len(reasoner.requests), len(judge.requests))
    again = ["calm", "curate", "calm.max_interventions=3", "--config", str(config)]
    assert main([*again, "--concurrency", "2"]) == 0  # concurrency may differ
    assert (len(reasoner.requests), len(judge.requests)) == before
    capsys.readouterr()
    assert main([*again, "--max-hint-chars", "200", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "other settings (intervener.max_hint_chars: 300 -> 200)" in err
    assert (len(reasoner.requests), len(judge.requests)) == before  # refused before asking


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["reasoner.model=m", "intervener.model=j", "calm.trigger=never"], ["calm.trigger"]),
        (["reasoner.model=m", "judge.model=j"], ["unknown key 'judge'", "intervener"]),
        (["reasoner.model=m", "intervener.model=j", "reasoner.top_p=high"], ["expected float"]),
    ],
)
def test_curate_bad_run_configs_are_one_error_line(tmp_path, capsys, extra, words) -> None:
    args = ["calm", "curate", "--benchmarks", "sample", "--out", str(tmp_path / "run")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err


def test_curate_names_the_missing_models(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["calm", "curate", "--benchmarks", "sample", "--out", str(tmp_path / "run")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "required: --reasoner-model, --intervener-model (run config keys reasoner.model" in err
