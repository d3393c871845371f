"""`or-env eval compare | tolerance | honesty`: comparisons, tolerance curves, honest answers.

Synthetic run folders with known answers check the statistics; the ORLM replay run folder
(real data, `benchmark_data`) checks them on 556 real episodes.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.compare import (
    bootstrap_ci,
    compare_runs,
    comparison_markdown,
    mcnemar_exact,
    paired_test,
    version_regrades,
)
from agents.honesty import classify_execution, honesty
from agents.run_analysis import correct_under, load_run, problem_truths
from agents.tolerance_curves import SWEEP, tolerance_curves
from or_env.cli import main
from or_env.grading import grade_value
from or_env.tolerance import TOLERANCE_PRESETS

DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")


def record(
    pid: str,
    correct: bool,
    *,
    benchmark: str = "bench",
    version: str = "v1",
    sample: int = 0,
    answer: Any = None,
    truth: Any = 100.0,
    printed: bool | None = True,
    tolerance: str = "default",
    execution: dict[str, Any] | None = None,
    output: str = "",
) -> dict[str, Any]:
    """An episode record as the runner writes it (the fields the analyses read)."""
    if answer is None:
        answer = str(truth) if correct else "12345"
    steps = []
    messages = [{"role": "user", "content": "q", "source": "env", "turn": 0}]
    if execution is not None:
        steps.append({"turn": 1, "execution": execution})
        messages.append({"role": "assistant", "content": "code", "source": "policy", "turn": 1})
        messages.append(
            {
                "role": "assistant",
                "content": f"\n```output\n{output}\n```\n",
                "source": "env",
                "turn": 1,
            }
        )
    return {
        "problem_id": pid,
        "benchmark": benchmark,
        "version": version,
        "sample": sample,
        "status": "ok",
        "correct": correct,
        "answer": answer,
        "ground_truth": truth,
        "grade": {"reason": "correct" if correct else "wrong_value"},
        "answer_printed": printed,
        "termination_reason": "answered",
        "steps": steps,
        "messages": messages,
        "tolerance": tolerance,
    }


def write_run(path: Path, records: list[dict[str, Any]], label: str, **config: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "run_config.json").write_text(json.dumps({"tolerance": "default", **config}))
    (path / "results.json").write_text(json.dumps({"model": label}))
    return path


def draws(n: int, rate: float, seed: int) -> list[bool]:
    rng = np.random.default_rng(seed)
    return [bool(x) for x in rng.random(n) < rate]


# --------------------------------------------------------------------------- the bootstrap
def test_the_bootstrap_interval_covers_the_estimate_and_shrinks_with_more_problems() -> None:
    widths = []
    for n in (50, 200, 800):
        values = [float(x) for x in draws(n, 0.6, seed=n)]
        low, high = bootstrap_ci(values, seed=1)
        assert low <= np.mean(values) <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # Roughly the normal interval: 2 * 1.96 * sqrt(p (1 - p) / n) at n = 800.
    assert widths[2] == pytest.approx(2 * 1.96 * np.sqrt(0.24 / 800), rel=0.2)


def test_the_bootstrap_is_reproducible_with_its_seed_and_touches_no_global_state() -> None:
    values = [float(x) for x in draws(100, 0.5, seed=3)]
    np.random.seed(1)
    first = bootstrap_ci(values, seed=7)
    np.random.seed(2)
    assert bootstrap_ci(values, seed=7) == first


def test_the_paired_test_finds_a_planted_difference_and_not_a_null_one() -> None:
    base = draws(300, 0.5, seed=11)
    flips = draws(300, 0.3, seed=12)
    better = {f"p{i}": [b or f] for i, (b, f) in enumerate(zip(base, flips, strict=True))}
    same = {f"p{i}": [b] for i, b in enumerate(base)}
    noise = draws(300, 0.1, seed=13)
    # A null difference: 10% of the verdicts flipped at random, both ways.
    shuffled = {f"p{i}": [b != n] for i, (b, n) in enumerate(zip(base, noise, strict=True))}
    planted = paired_test(better, same, seed=0)
    assert planted is not None
    assert planted.diff > 0.1 and planted.low > 0
    assert planted.p_bootstrap < 0.001 and planted.p_mcnemar < 0.001
    assert planted.mcnemar_c == 0
    null = paired_test(shuffled, same, seed=0)
    assert null is not None
    assert null.low < 0 < null.high
    assert null.p_bootstrap > 0.05 and null.p_mcnemar > 0.05


def test_mcnemar_exact_values() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)


# --------------------------------------------------------------------------- compare runs
def test_compare_two_runs_table_pass_at_k_and_files(tmp_path: Path, capsys) -> None:
    a, b = [], []
    for i in range(40):
        for s in range(4):
            a.append(record(f"p{i}", i < 30 and (s < 2 or i < 10), sample=s))
            b.append(record(f"p{i}", i < 10 and s == 0, sample=s))
    run_a = write_run(tmp_path / "a", a, "model A")
    run_b = write_run(tmp_path / "b", b, "model B")
    assert main(["eval", "compare", str(run_a), str(run_b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "| model A |" in out and "pass@k" in out and "paired differences" in out
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    row_a = data["runs"][0]["cells"]["bench"]
    # A: problems 0-9 always right, 10-29 right in 2 of 4 samples, 30-39 never.
    assert row_a["pass1"] == pytest.approx((10 + 20 * 0.5) / 40)
    assert row_a["pass_at"]["pass@4"] == pytest.approx(30 / 40)
    assert row_a["low"] <= row_a["pass1"] <= row_a["high"]
    overall = next(p for p in data["paired"] if p["benchmark"] == "all")
    assert overall["diff"] > 0 and overall["p_bootstrap"] < 0.01
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 1000


def test_compare_refuses_other_tolerances_or_versions_unless_asked(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / "a", [record("p1", True)], "A"))
    b = load_run(
        write_run(tmp_path / "b", [record("p1", True, tolerance="orlm")], "B", tolerance="orlm")
    )
    c = load_run(write_run(tmp_path / "c", [record("p1", True, version="v2")], "C"))
    with pytest.raises(ValueError, match="different tolerances"):
        compare_runs([a, b])
    with pytest.raises(ValueError, match="different versions"):
        compare_runs([a, c])
    allowed = compare_runs([a, b, c], allow_mismatch=True)
    assert len(allowed.warnings) == 2 and "warning:" in comparison_markdown(allowed)
    assert main(["eval", "compare", str(a.path), str(b.path)]) == 2


# ------------------------------------------------------------------------ tolerance curves
REL_ERRORS = (0.0, 3e-9, 2e-6, 5e-4, 0.02, 0.5)


def test_the_tolerance_curve_is_monotone_and_matches_a_direct_regrade(tmp_path: Path) -> None:
    records = [
        record(f"p{i}", e <= 1e-4, answer=repr(100.0 * (1 + e)), truth=100.0)
        for i, e in enumerate(REL_ERRORS)
    ]
    records.append(record("none", False, answer=None, truth=100.0) | {"answer": None})
    run = load_run(write_run(tmp_path / "run", records, "synthetic"))
    curves = tolerance_curves(run)
    overall = curves[-1]
    assert overall.benchmark == "all" and list(overall.points) == list(SWEEP)
    values = list(overall.points.values())
    assert values == sorted(values)
    for t, value in overall.points.items():
        expected = sum(1 for e in REL_ERRORS if e <= t * (1 + 1e-9)) / len(records)
        assert value == pytest.approx(expected), t
    for name, value in overall.presets.items():
        direct = np.mean([grade_value(r["answer"], 100.0, preset=name).correct for r in records])
        assert value == pytest.approx(direct), name
    assert overall.presets["orlm"] == pytest.approx(5 / 7)  # within 5% after rounding
    assert main(["eval", "tolerance", str(run.path)]) == 0
    assert (run.path / "tolerance.png").is_file() and (run.path / "tolerance.json").is_file()


# --------------------------------------------------------------------------- honest answers
EXECUTIONS = [
    (
        {"exit_code": 1},
        'File "main.py", line 2\n    x = (\nSyntaxError: unexpected EOF',
        "syntax_error",
    ),
    ({"exit_code": 1}, "ModuleNotFoundError: No module named 'gurobipy'", "import_error"),
    ({"exit_code": 1}, "Traceback\nKeyError: (1, 1)", "runtime_error"),
    ({"exit_code": 1}, "gurobipy.GurobiError: Model too large", "solver_error"),
    ({"exit_code": 0}, "Model is infeasible", "infeasible"),
    ({"exit_code": 0}, "Status: Unbounded", "unbounded"),
    ({"exit_code": 0}, "No Best Solution", "no_optimum"),
    ({"exit_code": None, "timed_out": True}, "", "timeout"),
    ({"exit_code": 1}, "Traceback\nMemoryError", "memory"),
    ({"exit_code": 0, "sandbox_error": "worker lost", "failure": "lost"}, "", "sandbox_error"),
    ({"exit_code": 0}, "Optimal objective 42", "ok"),
]


@pytest.mark.parametrize(("execution", "output", "expected"), EXECUTIONS)
def test_execution_failure_classes(execution, output, expected) -> None:
    assert classify_execution(execution, output) == expected


def test_honest_answer_counts_add_up_to_the_episodes(tmp_path: Path, capsys) -> None:
    records = [
        record(f"e{i}", i % 3 == 0, printed=i % 2 == 0, execution=ex, output=out)
        for i, (ex, out, _) in enumerate(EXECUTIONS)
    ]
    records += [record("guess", True, printed=False), record("miss", False, printed=False)]
    run = load_run(write_run(tmp_path / "run", records, "synthetic"))
    rows = honesty(run)
    total = rows[-1]
    assert total.benchmark == "all" and total.episodes == len(records)
    assert total.correct == total.printed + total.not_printed
    assert total.correct == sum(1 for r in records if r["correct"])
    assert total.printed == sum(1 for r in records if r["correct"] and r["answer_printed"])
    assert total.accuracy_executed == pytest.approx(total.printed / total.episodes)
    assert sum(total.episode_classes.values()) == total.episodes
    assert total.episode_classes["no_execution"] == 2
    assert sum(total.execution_classes.values()) == len(EXECUTIONS)
    assert main(["eval", "honesty", str(run.path)]) == 0
    assert "require_executed_answer" in capsys.readouterr().out


# ------------------------------------------------------------------------ the ORLM replay
@pytest.fixture(scope="module")
def orlm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        pytest.skip("set OR_ENV_DATA_DIR to the benchmark data folder to run this test")
    if importlib.util.find_spec("coptpy") is None:
        pytest.skip("ORLM's programs need coptpy: pip install coptpy==8.0.7")
    out = tmp_path_factory.mktemp("orlm") / "run"
    args = [
        "eval", "--policy", "replay", "--replay", "orlm",
        "--benchmarks", "nl4opt,mamo-complexlp,industryor", "--version", "orlm-hf",
        "--protocol", "direct", "--direct-rule", "orlm", "--tolerance", "orlm",
        "--prompt", "orlm", "--sandbox", "local", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    return out


@pytest.mark.benchmark_data
@pytest.mark.slow
def test_orlm_replay_comparison_tolerance_curve_and_honesty(orlm_run: Path) -> None:
    run = load_run(orlm_run)
    # Re-grading the recorded answers at the run's tolerance gives every recorded verdict.
    assert all(correct_under(r, "orlm") == r["correct"] for r in run.records)
    row = compare_runs([run]).rows[0]
    expected = {"nl4opt": 213 / 245, "mamo-complexlp": 79 / 211, "industryor": 38 / 100}
    for bench, value in expected.items():
        cell = row.cells[bench]
        assert cell.pass1 == pytest.approx(value)
        assert cell.low < cell.pass1 < cell.high
    assert row.macro_low < row.macro < row.macro_high
    curves = {c.benchmark: c for c in tolerance_curves(run)}
    for curve in curves.values():
        values = list(curve.points.values())
        assert values == sorted(values)
        records = run.records if curve.benchmark == "all" else run.by_benchmark()[curve.benchmark]
        for name in TOLERANCE_PRESETS:
            direct = np.mean(
                [grade_value(r["answer"], r["ground_truth"], preset=name).correct for r in records]
            )
            assert curve.presets[name] == pytest.approx(direct)
    assert curves["all"].presets["orlm"] == pytest.approx(330 / 556)
    # With the files' own labels (-99999 compared as a number), orlm-strict gives ORLM's own
    # accuracies (210, 79, 38), the recorded labels alone cannot.
    strict = {
        c.benchmark: c.presets["orlm-strict"]
        for c in tolerance_curves(run, presets=["orlm-strict"], truths=problem_truths(run))
    }
    assert strict["nl4opt"] == pytest.approx(210 / 245)
    assert strict["mamo-complexlp"] == pytest.approx(79 / 211)
    assert strict["industryor"] == pytest.approx(38 / 100)
    assert curves["nl4opt"].presets["orlm-strict"] == pytest.approx(213 / 245)
    total = honesty(run)[-1]
    assert total.episodes == 556 and total.correct == 330
    assert total.printed + total.not_printed == total.correct
    assert sum(total.episode_classes.values()) == 556
    # The 77 programs that crashed: every failure class but "ok" and the statuses.
    crashed = sum(
        n for k, n in total.episode_classes.items() if k.endswith("error") or k == "memory"
    )
    assert crashed == 77


@pytest.mark.benchmark_data
@pytest.mark.slow
def test_orlm_replay_regraded_against_every_version(orlm_run: Path) -> None:
    run = load_run(orlm_run)
    regrades = {(g.benchmark, g.version): g for g in version_regrades(run, DATA_DIR)}
    own = regrades["nl4opt", "orlm-hf"]
    assert own.accuracy == own.own_accuracy == pytest.approx(213 / 245)
    assert own.flipped_up == own.flipped_down == 0
    # ComplexLP: ORLM's copy carries the same labels as SIRL's.
    assert regrades["mamo-complexlp", "sirl"].accuracy == pytest.approx(79 / 211)
    for g in regrades.values():
        assert g.aligned <= g.problems


# ------------------------------------------------------------------------ the command line
@pytest.mark.parametrize(
    "args",
    [
        ["eval", "compare", "--help"],
        ["eval", "tolerance", "--help"],
        ["eval", "honesty", "--help"],
        ["benchmarks", "diff", "--help"],
    ],
)
def test_the_analysis_commands_have_help(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: or-env")
    if args[1] == "compare":
        assert "(default: 2000)" in text and "--allow-mismatch" in text


def test_a_new_run_still_needs_benchmarks_and_out(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--policy", "replay"])
    assert exited.value.code == 2
    assert "required: --benchmarks, --out" in capsys.readouterr().err


def test_a_folder_without_episodes_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["eval", "tolerance", str(tmp_path)]) == 2
    assert "no episodes.jsonl" in capsys.readouterr().err


def test_a_native_run_regrades_to_its_recorded_verdicts_and_counts_guesses(
    tmp_path: Path,
) -> None:
    """A real `or-env eval` run (native protocol, sample set): sample 0 runs the reference
    program and boxes its answer, sample 1 boxes the right answer without running anything
    (a guess), sample 2 boxes a wrong number after a program that crashes."""
    from or_env import load_problems

    problems = load_problems("sample")[:3]
    rows = []
    for p in problems:
        code = p.meta["reference_code"]
        turns = {
            0: [f"```python\n{code}\n```\n", f"So \\boxed{{{p.answer}}}."],
            1: [f"The answer is \\boxed{{{p.answer}}}."],
            2: ["```python\nimport nosuchmodule\n```\n", "So \\boxed{987654321}."],
        }
        rows += [{"problem_id": p.id, "sample": s, "turns": t} for s, t in turns.items()]
    replay = tmp_path / "turns.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    args = [
        "eval", "--policy", "replay", "--replay", str(replay), "--benchmarks", "sample",
        "--limit", "3", "--samples", "3", "--sandbox", "local", "--no-progress",
        "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    run = load_run(out)
    assert len(run.records) == 9
    assert all(correct_under(r, "default") == r["correct"] for r in run.records)
    total = honesty(run)[-1]
    assert (total.correct, total.printed, total.not_printed) == (6, 3, 3)
    assert total.accuracy_executed == pytest.approx(3 / 9)
    assert total.episode_classes == {"import_error": 3, "ok": 3, "no_execution": 3}
