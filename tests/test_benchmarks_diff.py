"""`or-env benchmarks diff`: aligning versions of a benchmark and finding label changes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from or_env.cli import main
from or_env.problems import load_problems
from or_env.problems.diff import align_problems, diff_problems, diff_versions

DATA_DIR = os.environ.get("OR_ENV_DATA_DIR")


def test_diff_finds_a_planted_label_change_a_dropped_and_a_reworded_problem() -> None:
    reference = load_problems("sample")
    other = [dataclasses.replace(p, meta={**p.meta}) for p in reference]
    planted = other[3]
    other[3] = dataclasses.replace(planted, answer=float(planted.answer) + 7)  # type: ignore[arg-type]
    reworded = other[5]
    other[5] = dataclasses.replace(
        reworded, id="renamed", question="  " + reworded.question.upper().replace(" ", "  ")
    )
    dropped = other.pop(8)
    diff = diff_problems(reference, other, benchmark="sample")
    assert [c.reference_id for c in diff.changes] == [planted.id]
    change = diff.changes[0]
    assert change.abs_diff == pytest.approx(7) and change.material
    assert diff.only_in_reference == [dropped.id] and diff.only_in_version == []
    assert diff.aligned == len(reference) - 1
    renamed = [p for p in align_problems(reference, other) if p.other.id == "renamed"]
    assert renamed and renamed[0].reference.id == reworded.id


@pytest.mark.benchmark_data
def test_benchmarks_diff_finds_a_label_change_planted_in_a_copy(tmp_path: Path, capsys) -> None:
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        pytest.skip("set OR_ENV_DATA_DIR to the benchmark data folder to run this test")
    before, _ = diff_versions("nl4opt", versions=["sirl"], data_dir=DATA_DIR)
    known = {c.reference_id for c in before[0].changes}
    copy = tmp_path / "data"
    shutil.copytree(Path(DATA_DIR) / "nl4opt", copy / "nl4opt")
    path = copy / "nl4opt" / "sirl" / "NL4OPT.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    target = next(i for i, r in enumerate(rows) if f"nl4opt-optmath-{i + 1}" not in known)
    rows[target]["en_answer"] = str(float(rows[target]["en_answer"]) + 1000)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["benchmarks", "diff", "nl4opt", "--versions", "sirl", "--data-dir", str(copy)]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    changes = data["diffs"][0]["changes"]
    planted = [c for c in changes if c["reference_id"] not in known]
    assert len(changes) == len(known) + 1 and len(planted) == 1
    assert planted[0]["abs_diff"] == pytest.approx(1000)
    assert main(args) == 0
    assert "| nl4opt | optmath (245) | sirl (245) |" in capsys.readouterr().out
