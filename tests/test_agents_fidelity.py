"""Our grading is the literature's grading: ORLM-LLaMA-3-8B's published responses, replayed.

Every recorded response in ORLM's result files (NL4Opt, MAMO ComplexLP, IndustryOR) is played
through the env with the direct protocol, ORLM's epilogue and ORLM's tolerance, and compared
with the execution results ORLM recorded. Measured with coptpy 8.0.7 (ORLM ran COPT 7.1.x):

| benchmark | env accuracy | ORLM's own | answers agree | verdicts agree |
|---|---|---|---|---|
| nl4opt | 213/245 | 210/245 | 245/245 | 242/245 |
| mamo-complexlp | 79/211 | 79/211 | 210/211 | 211/211 |
| industryor | 38/100 | 38/100 | 100/100 | 100/100 |

The 3 NL4Opt verdicts differ because ORLM compares the ground-truth marker -99999 as a
number, while `or_env.grading` reads it as infeasible (the program said "No Best Solution").
The ComplexLP answer differs because COPT 7.1 refused a non-convex quadratic objective
(the program crashed) and COPT 8 solves it (infeasible); both verdicts are "wrong".
"""

from __future__ import annotations

import importlib.util
import os
from importlib.metadata import version
from pathlib import Path

import pytest

from agents.eval import EvalConfig, run_eval
from agents.fidelity import compare_with_recorded, fidelity_markdown, orlm_judgement
from agents.replay import ReplayPolicy
from or_env.problems import load_problems

DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")
BENCHMARKS = ("nl4opt", "mamo-complexlp", "industryor")
# benchmark: (problems, env correct, ORLM's recorded correct, answers agree, verdicts agree)
MEASURED = {
    "nl4opt": (245, 213, 210, 245, 242),
    "mamo-complexlp": (211, 79, 79, 210, 211),
    "industryor": (100, 38, 38, 100, 100),
}


@pytest.mark.parametrize(
    ("truth", "predicted", "verdict"),
    [
        ("No Best Solution", "No Best Solution", True),
        ("No Best Solution", None, False),
        (1160.0, "1160.0", True),
        (1160.0, "1200", True),  # within 5% after rounding
        (1160.0, "1300", False),
        (0.0, "0.4", True),  # rounds to 0
        (-99999, "No Best Solution", False),  # ORLM compares the marker as a number
        (100, None, False),
    ],
)
def test_orlm_judgement_transcription(truth, predicted, verdict) -> None:
    assert orlm_judgement(truth, predicted) is verdict


@pytest.mark.benchmark_data
@pytest.mark.slow
def test_replaying_orlm_reproduces_its_recorded_results(tmp_path: Path) -> None:
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        pytest.skip("set OR_ENV_DATA_DIR to the benchmark data folder to run this test")
    if importlib.util.find_spec("coptpy") is None:
        pytest.skip("ORLM's programs need coptpy: pip install coptpy==8.0.7")
    problems = [p for name in BENCHMARKS for p in load_problems(name, version="orlm-hf")]
    policy = ReplayPolicy.from_problem_meta(problems, "en_math_model_coptpy_code")
    config = EvalConfig(
        benchmarks=list(BENCHMARKS),
        out_dir=tmp_path / "orlm",
        version="orlm-hf",
        protocol="direct",
        direct_rule="orlm",
        tolerance="orlm",
        prompt="orlm",
        timeout=120.0,
        sandbox="local",
        concurrency=16,
        progress=False,
    )
    result = run_eval(policy, config, problems)
    assert all(s.errors == 0 for s in result.scores)
    fidelity = {f.benchmark: f for f in compare_with_recorded(result.records, problems)}
    report = fidelity_markdown(fidelity.values(), coptpy_version=version("coptpy"))
    for name, (count, env_ok, orlm_ok, answers, verdicts) in MEASURED.items():
        f = fidelity[name]
        assert (f.problems, f.recorded_correct) == (count, orlm_ok), report
        assert f.answers_agree >= answers and f.verdicts_agree >= verdicts, report
        assert f.env_correct == env_ok, report
    causes = {(d.kind, d.cause) for f in fidelity.values() for d in f.disagreements}
    assert causes <= {("verdict", "ground truth -99999"), ("answer", "solver version")}, report
