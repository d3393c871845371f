"""The strict ORLM preset gives ORLM's own verdict on all 556 of ORLM-LLaMA-3-8B's recorded answers.

ORLM's result files (version "orlm-hf" of NL4Opt, MAMO ComplexLP and IndustryOR) hold each
problem's ground truth and the answer ORLM's pipeline recorded (`execution_best_solution`).
ORLM's judge (Cardinal-Operations/ORLM eval/execute.py) marks 210, 79 and 38 of them right: the
85.7%, 37.4% and 38.0% of ORLM's paper. "orlm-strict" must agree on every problem, the three
NL4Opt ground truths of -99999 included (ORLM compares the marker as a number, so the recorded
"No Best Solution" is wrong there); the principled "orlm" preset differs on exactly those three.

The ground truth is taken from `Problem.answer`, as the environment grades it: a marker keeps
the value written in the file (`GroundTruthMarker.written`), so nothing else is needed.

Also here: the two -9999 records of SIRL's corrected MAMO files (versions "sirl-fixed") are read
as "no optimal solution" by every principled preset and by "sirl-strict", and as the number
-9999 by the strict modes of the sources that compare it as a number.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from agents.fidelity import orlm_judgement
from or_env.grading import grade, grade_value
from or_env.problems import Problem, load_problems

DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")
RECORDED = "execution_best_solution"
# benchmark: (problems, ORLM's recorded verdicts "right", the paper's accuracy)
PUBLISHED = {
    "nl4opt": (245, 210, "85.7%"),
    "mamo-complexlp": (211, 79, "37.4%"),
    "industryor": (100, 38, "38.0%"),
}
# Where "orlm" (principled) departs from ORLM on purpose: ground truth -99999, answer
# "No Best Solution".
PRINCIPLED_DEPARTURES = {"LPWP_prob_38", "LPWP_prob_234", "LPWP_prob_261"}

needs_data = pytest.mark.skipif(
    not DATA_DIR or not Path(DATA_DIR).is_dir(),
    reason="set OR_ENV_DATA_DIR to the benchmark data folder to run this test",
)


def _orlm_problems() -> dict[str, list[Problem]]:
    return {name: load_problems(name, version="orlm-hf") for name in PUBLISHED}


@pytest.mark.benchmark_data
@needs_data
def test_orlm_strict_reproduces_orlms_verdicts_on_all_556() -> None:
    problems = _orlm_problems()
    departures: set[str] = set()
    for name, (count, right, accuracy) in PUBLISHED.items():
        rows = problems[name]
        assert len(rows) == count
        ours = {p.id: grade_value(p.meta[RECORDED], p.answer, preset="orlm-strict") for p in rows}
        theirs = {p.id: orlm_judgement(p.meta["answer_raw"], p.meta[RECORDED]) for p in rows}
        differ = [pid for pid in ours if ours[pid].correct != theirs[pid]]
        assert differ == [], f"{name}: orlm-strict differs from ORLM on {differ}"
        assert sum(theirs.values()) == right, f"ORLM's judge no longer gives {accuracy}"
        assert f"{100 * right / count:.1f}%" == accuracy
        principled = {p.id: grade_value(p.meta[RECORDED], p.answer, preset="orlm") for p in rows}
        departures |= {pid for pid in ours if ours[pid].correct != principled[pid].correct}
    assert {pid.rsplit("-", 1)[-1] for pid in departures} == PRINCIPLED_DEPARTURES
    nl4opt = {p.id: p for p in problems["nl4opt"]}
    for pid in departures:
        assert float(nl4opt[pid].answer.written) == -99999  # type: ignore[union-attr]
        assert nl4opt[pid].meta[RECORDED] == "No Best Solution"


@pytest.mark.benchmark_data
@pytest.mark.slow
@needs_data
def test_orlm_replay_through_the_env_with_orlm_strict(tmp_path: Path) -> None:
    """The whole replay (programs executed, answers read from their output) under orlm-strict."""
    if importlib.util.find_spec("coptpy") is None:
        pytest.skip("ORLM's programs need coptpy: pip install coptpy==8.0.7")
    from agents.eval import EvalConfig, run_eval
    from agents.replay import ReplayPolicy

    problems = [p for rows in _orlm_problems().values() for p in rows]
    config = EvalConfig(
        benchmarks=list(PUBLISHED),
        out_dir=tmp_path / "orlm-strict",
        version="orlm-hf",
        protocol="direct",
        direct_rule="orlm",
        tolerance="orlm-strict",
        prompt="orlm",
        timeout=120.0,
        sandbox="local",
        concurrency=4,
        progress=False,
    )
    policy = ReplayPolicy.from_problem_meta(problems, "en_math_model_coptpy_code")
    result = run_eval(policy, config, problems)
    by_id = {p.id: p for p in problems}
    verdicts = {str(r["problem_id"]): bool(r["correct"]) for r in result.records}
    assert len(verdicts) == len(problems) == 556
    theirs = {
        pid: orlm_judgement(by_id[pid].meta["answer_raw"], by_id[pid].meta[RECORDED])
        for pid in verdicts
    }
    differ = sorted(pid for pid in verdicts if verdicts[pid] != theirs[pid])
    assert differ == []
    for name, (_, right, _) in PUBLISHED.items():
        assert sum(v for pid, v in verdicts.items() if by_id[pid].benchmark == name) == right


# SIRL's own corrected MAMO files use -9999 for "no optimal solution" (record numbers 1-based, as
# the loader counts them). (benchmark, problem id, en_answer as written)
SIRL_FIXED_MARKERS = [
    ("mamo-easylp", "mamo-easylp-sirl-fixed-630", "-9999"),
    ("mamo-complexlp", "mamo-complexlp-sirl-fixed-70", "-9999.0"),
]


@pytest.mark.benchmark_data
@needs_data
@pytest.mark.parametrize(("benchmark", "problem_id", "written"), SIRL_FIXED_MARKERS)
def test_sirl_fixed_versions_read_their_minus_9999_marker(
    benchmark: str, problem_id: str, written: str
) -> None:
    problems = load_problems(benchmark, version="sirl-fixed")
    marked = [p for p in problems if isinstance(p.answer, str)]
    assert [p.id for p in marked] == [problem_id]
    answer = marked[0].answer
    assert getattr(answer, "written", None) == written == marked[0].meta["en_answer"]
    for preset in ("default", "sirl", "sirl-strict", "orlm", "optmath", "optimind"):
        assert grade("\\boxed{infeasible}", answer, preset=preset).correct, preset
        assert not grade(f"\\boxed{{{written}}}", answer, preset=preset).correct, preset
    # Sources other than SIRL's check_result compare -9999 as a number.
    for preset in ("orlm-strict", "optmath-strict", "optimind-strict", "sirl-reward-strict"):
        assert not grade("\\boxed{infeasible}", answer, preset=preset).correct, preset
        assert grade(f"\\boxed{{{written}}}", answer, preset=preset).correct, preset
