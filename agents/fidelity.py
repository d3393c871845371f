"""Fidelity against published results: the env's verdicts on ORLM-LLaMA-3-8B's recorded outputs.

ORLM's result files (benchmark version "orlm-hf") hold, per problem, the model's response
(`en_math_model_coptpy_code`), the result of running its program (`execution_best_solution`,
`execution_state`) and the ground truth. Replaying the responses through the env with the
direct protocol (`direct_rule="orlm"`, `tolerance="orlm"`) must give the same answers and
the same accuracy. `compare_with_recorded` measures, per benchmark:

- answer agreement: the env's answer equals the recorded `execution_best_solution` (both
  none, both "No Best Solution", or numbers within 1e-6 relative: solver round-off);
- verdict agreement: the env's correct/incorrect equals ORLM's own judgement of the
  recorded answer (`orlm_judgement`, a transcription of ORLM `eval/execute.py`);
- the accuracy of each, and every disagreement with its class:
  - "timeout": one side hit its time limit (the env's `timeout`, ORLM's 300 s);
  - "licence size limit": COPT without a licence refuses models over 2000 variables or
    constraints, and the two runs differ in whether that stopped the program;
  - "solver version": otherwise different execution results (ORLM ran COPT 7.1.x; the
    env runs whatever coptpy is installed, e.g. 8.0.7);
  - "ground truth -99999": same answer, different verdict, because ORLM compares the
    -99999 marker as a number while `or_env.grading` reads it as "infeasible".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from or_env.problems import Problem

RECORDED_ANSWER = "execution_best_solution"
RECORDED_STATE = "execution_state"
NO_SOLUTION = "No Best Solution"
_SIZE_LIMIT_RE = re.compile(r"exceeding the size limit|\(LICENSE\)")


def orlm_judgement(ground_truth: Any, predicted: str | None, tolerance: float = 0.05) -> bool:
    """ORLM's verdict on one answer (eval/execute.py, pass@1 branch, transcribed)."""
    if ground_truth == NO_SOLUTION:
        return predicted is not None and predicted == ground_truth
    truth = round(float(ground_truth))
    if predicted is None or predicted == NO_SOLUTION:
        return False
    try:
        value = round(float(predicted))
    except ValueError:
        return False
    if truth == 0:
        return abs(value) <= tolerance
    return abs((value - truth) / truth) <= tolerance


def _normal(answer: str | None) -> float | str | None:
    if answer is None or answer == NO_SOLUTION:
        return answer
    try:
        return float(answer)
    except ValueError:
        return answer.strip()


def same_answer(ours: str | None, recorded: str | None) -> bool:
    """Whether two execution answers agree (numbers within 1e-6 relative)."""
    a, b = _normal(ours), _normal(recorded)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))
    return a == b


@dataclass
class Disagreement:
    """One problem where the env and the recorded run differ."""

    problem_id: str
    kind: str  # "answer" or "verdict"
    cause: str
    ours: str | None
    recorded: str | None
    ground_truth: Any
    note: str = ""


@dataclass
class BenchmarkFidelity:
    """The comparison on one benchmark (see the module doc)."""

    benchmark: str
    problems: int
    env_correct: int
    recorded_correct: int
    answers_agree: int
    verdicts_agree: int
    disagreements: list[Disagreement] = field(default_factory=list)


def _cause(record: Mapping[str, Any], problem: Problem) -> tuple[str, str]:
    output = "\n".join(m["content"] for m in record.get("messages", []) if m["source"] == "env")
    state = str(problem.meta.get(RECORDED_STATE, ""))
    if record.get("termination_reason") == "timeout" or "Timeout" in state:
        return "timeout", f"env: {record.get('termination_reason')}; recorded: {state[:60]}"
    if bool(_SIZE_LIMIT_RE.search(output)) != bool(_SIZE_LIMIT_RE.search(state)):
        return "licence size limit", "one run hit COPT's size limit without a licence"
    last_line = output.strip().rsplit("\n", 2)[0].rsplit("\n", 1)[-1]
    return "solver version", f"env: {record.get('termination_reason')} ({last_line[:80]}); " + (
        f"recorded: {state.splitlines()[0][:40]} ... {state.strip().splitlines()[-1][:80]}"
    )


def compare_with_recorded(
    records: Iterable[Mapping[str, Any]], problems: Iterable[Problem]
) -> list[BenchmarkFidelity]:
    """Per benchmark: the env's records against the recorded execution results."""
    by_id = {p.id: p for p in problems}
    results: dict[str, BenchmarkFidelity] = {}
    for record in records:
        problem = by_id[str(record["problem_id"])]
        if RECORDED_ANSWER not in problem.meta:
            raise ValueError(f"problem {problem.id!r} has no recorded {RECORDED_ANSWER!r}")
        recorded = problem.meta[RECORDED_ANSWER]
        truth_raw = problem.meta.get("answer_raw", problem.answer)
        recorded_verdict = orlm_judgement(truth_raw, recorded)
        ours, correct = record.get("answer"), bool(record.get("correct"))
        fid = results.setdefault(
            problem.benchmark, BenchmarkFidelity(problem.benchmark, 0, 0, 0, 0, 0)
        )
        fid.problems += 1
        fid.env_correct += correct
        fid.recorded_correct += recorded_verdict
        agree = same_answer(ours, recorded)
        fid.answers_agree += agree
        fid.verdicts_agree += correct == recorded_verdict
        if not agree:
            cause, note = _cause(record, problem)
            fid.disagreements.append(
                Disagreement(problem.id, "answer", cause, ours, recorded, truth_raw, note)
            )
        elif correct != recorded_verdict:
            cause = "ground truth -99999" if _is_marker(truth_raw) else "grading"
            fid.disagreements.append(
                Disagreement(problem.id, "verdict", cause, ours, recorded, truth_raw)
            )
    return list(results.values())


def _is_marker(value: Any) -> bool:
    try:
        return float(value) == -99999
    except (TypeError, ValueError):
        return False


def fidelity_markdown(results: Iterable[BenchmarkFidelity], *, coptpy_version: str) -> str:
    """A README-ready summary table plus the list of disagreements."""
    results = list(results)
    lines = [
        "| benchmark | problems | env accuracy | ORLM's accuracy (recorded) "
        "| answers agree | verdicts agree |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.benchmark} | {r.problems} | {100 * r.env_correct / r.problems:.1f}% "
            f"({r.env_correct}) | {100 * r.recorded_correct / r.problems:.1f}% "
            f"({r.recorded_correct}) | {r.answers_agree}/{r.problems} "
            f"| {r.verdicts_agree}/{r.problems} |"
        )
    lines += ["", f"Disagreements (env with coptpy {coptpy_version}):", ""]
    found = [(r.benchmark, d) for r in results for d in r.disagreements]
    for benchmark, d in found:
        lines.append(
            f"- {benchmark} `{d.problem_id}` ({d.kind}, {d.cause}): env {d.ours!r}, "
            f"recorded {d.recorded!r}, ground truth {d.ground_truth!r}"
        )
    if not found:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m agents.fidelity RUN_DIR`: compare an ORLM replay run with the recordings."""
    import argparse
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from agents.records import read_records
    from or_env.problems import DatasetError, load_problems

    parser = argparse.ArgumentParser(prog="python -m agents.fidelity", description=main.__doc__)
    parser.add_argument("run_dir", help="the --out folder of an `or-env eval --replay orlm` run")
    parser.add_argument("--data-dir", help="benchmark data folder (default: $OR_ENV_DATA_DIR)")
    args = parser.parse_args(argv)
    records = list(read_records(f"{args.run_dir}/episodes.jsonl").values())
    names = sorted({str(r["benchmark"]) for r in records})
    try:
        problems = [
            p for n in names for p in load_problems(n, version="orlm-hf", path=args.data_dir)
        ]
    except DatasetError as exc:
        parser.error(str(exc))
    try:
        copt = version("coptpy")
    except PackageNotFoundError:
        copt = "(not installed)"
    results = compare_with_recorded(records, problems)
    sys.stdout.write(fidelity_markdown(results, coptpy_version=copt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
