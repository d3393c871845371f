"""Tests for the benchmark registry and the problem loaders.

Tests marked benchmark_data read the public benchmark copies from $OR_ENV_DATA_DIR (a folder laid
out as <benchmark>/<source>/<file>) and are skipped when it is not set; every other test builds
its own small files in tmp_path.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from or_env.grading import INFEASIBLE, NO_OPTIMUM, UNBOUNDED, GroundTruthError
from or_env.problems import (
    DATA_DIR_ENV,
    DatasetError,
    FieldMap,
    LoadReport,
    MissingDependencyError,
    Problem,
    UnknownBenchmarkError,
    adapters,
    benchmark_counts,
    get_benchmark,
    list_benchmarks,
    load_problems,
    load_problems_with_report,
)
from or_env.problems.adapters import RowError

_DATA_DIR = os.environ.get(DATA_DIR_ENV, "")
needs_data = pytest.mark.skipif(
    not _DATA_DIR or not Path(_DATA_DIR).is_dir(),
    reason=f"{DATA_DIR_ENV} is not set to the benchmark data folder",
)

# (benchmark, version, loaded, broken rows skipped, rows the source excludes), measured on the
# copies described in the data folder's SOURCES.md. Broken rows: optmath/optimind has 2 rows with
# neither question nor answer; nlp4lp/orthought has 27 rows whose solution has no objective and
# 5 rows the source marks "Wrong problem".
EXPECTED_COUNTS = [
    ("nl4opt", "optmath", 245, 0, 0),
    ("nl4opt", "sirl", 245, 0, 0),
    ("nl4opt", "llmopt", 230, 0, 0),
    ("nl4opt", "resocratic", 289, 0, 0),
    ("nl4opt", "orlm-hf", 245, 0, 0),
    ("mamo-easylp", "sirl", 652, 0, 0),
    ("mamo-easylp", "sirl-fixed", 642, 0, 0),
    ("mamo-easylp", "mamo", 652, 0, 0),
    ("mamo-easylp", "llmopt", 652, 0, 0),
    ("mamo-complexlp", "sirl", 211, 0, 0),
    ("mamo-complexlp", "sirl-fixed", 203, 0, 0),
    ("mamo-complexlp", "mamo", 211, 0, 0),
    ("mamo-complexlp", "llmopt", 211, 0, 0),
    ("mamo-complexlp", "optimind", 210, 0, 0),
    ("mamo-complexlp", "orlm-hf", 211, 0, 0),
    ("industryor", "orlm-hf", 100, 0, 0),
    ("industryor", "llmopt", 100, 0, 0),
    ("industryor", "sirl-fixed-v2", 100, 0, 0),
    ("industryor", "optimind", 99, 0, 0),
    ("industryor", "orthought", 100, 0, 0),
    ("industryor", "orthought-clean", 42, 0, 0),
    ("industryor", "orthought-summary", 83, 0, 0),
    ("optmath", "optmath", 166, 0, 0),
    ("optmath", "sirl-166", 166, 0, 0),
    ("optmath", "sirl-193", 193, 0, 0),
    ("optmath", "llmopt", 166, 0, 0),
    ("optmath", "optimind", 128, 2, 0),
    ("optibench", "sirl", 605, 0, 0),
    ("optibench", "resocratic", 605, 0, 0),
    ("optibench", "llmopt", 605, 0, 0),
    ("nlp4lp", "llmopt", 242, 0, 0),
    ("nlp4lp", "orthought-summary", 264, 0, 0),
    ("nlp4lp", "orthought", 237, 27, 5),
    ("complexor", "llmopt", 18, 0, 0),
    ("complexor", "orthought", 18, 0, 0),
    ("logior", "orthought", 92, 0, 0),
    ("icml2024-task3", "llmopt", 410, 0, 0),
    ("sirl-rl-sample", "sirl", 84, 0, 0),
]


def _write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _jsonl(path: Path, rows: list[object]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    return _write(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- registry


def test_expected_counts_cover_every_registered_data_version() -> None:
    registered = {(b.name, v.name) for b in list_benchmarks() for v in b.versions if not v.bundled}
    assert registered == {(b, v) for b, v, *_ in EXPECTED_COUNTS}


@pytest.mark.parametrize(
    ("name", "gym_id", "default"),
    [
        ("nl4opt", "or_env/NL4Opt-v0", "optmath"),
        ("mamo-easylp", "or_env/MAMO-EasyLP-v0", "sirl"),
        ("mamo-complexlp", "or_env/MAMO-ComplexLP-v0", "sirl"),
        ("industryor", "or_env/IndustryOR-v0", "orlm-hf"),
        ("optmath", "or_env/OptMATH-v0", "optmath"),
        ("optibench", "or_env/OptiBench-v0", "sirl"),
        ("nlp4lp", "or_env/NLP4LP-v0", "llmopt"),
        ("complexor", "or_env/ComplexOR-v0", "llmopt"),
        ("logior", "or_env/LogiOR-v0", "orthought"),
        ("icml2024-task3", None, "llmopt"),
        ("sample", "or_env/Sample-v0", "bundled"),
    ],
)
def test_registry_names_gym_ids_and_defaults(name: str, gym_id: str | None, default: str) -> None:
    benchmark = get_benchmark(name)
    assert benchmark.gym_id == gym_id
    assert benchmark.default_version == default
    assert benchmark.get_version().name == default
    assert benchmark.default_reason and benchmark.description and benchmark.display_name
    assert all(v.provenance and v.file for v in benchmark.versions)


def test_benchmark_names_are_normalised() -> None:
    assert get_benchmark("MAMO_EasyLP").name == "mamo-easylp"


def test_unknown_benchmark_lists_valid_names() -> None:
    with pytest.raises(UnknownBenchmarkError, match=r"nl4opt.*optibench"):
        load_problems("nl5opt")


def test_unknown_version_lists_valid_versions(tmp_path: Path) -> None:
    with pytest.raises(UnknownBenchmarkError, match=r"optmath, sirl, llmopt.*default optmath"):
        load_problems("nl4opt", version="v9", path=tmp_path)


# ---------------------------------------------------------------- data dir resolution


def test_missing_data_dir_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DatasetError, match=rf"set {DATA_DIR_ENV}.*pass path="):
        load_problems("nl4opt")


def test_missing_file_under_data_dir_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nl4opt/sirl/NL4OPT.jsonl not found.*<benchmark>"):
        load_problems("nl4opt", version="sirl", path=tmp_path)


def test_data_dir_from_path_and_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "nl4opt" / "sirl"
    folder.mkdir(parents=True)
    _jsonl(folder / "NL4OPT.jsonl", [{"en_question": "Q1?", "en_answer": "3.5"}])
    from_path = load_problems("nl4opt", version="sirl", path=tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    from_env = load_problems("nl4opt", version="sirl")
    assert from_path == from_env
    assert [(p.id, p.answer, p.benchmark) for p in from_env] == [("nl4opt-sirl-1", 3.5, "nl4opt")]
    assert from_env[0].meta["source"] == "nl4opt/sirl/NL4OPT.jsonl"


def test_registered_version_from_a_single_file(tmp_path: Path) -> None:
    # A user's own copy of a registered file: the version's format and adapter still apply.
    file = _write(
        tmp_path / "complex.csv",
        'problem_class,question,answer\n"[""Diet""]",Feed the cows.,[18.0]\n',
        bom=True,
    )
    problems = load_problems("mamo-complexlp", version="optimind", path=file)
    assert [(p.id, p.answer, p.meta["problem_class"]) for p in problems] == [
        ("mamo-complexlp-optimind-1", 18.0, '["Diet"]')
    ]


# ---------------------------------------------------------------- broken rows

_GOOD = {"question": "Maximise profit.", "answer": "42"}
BROKEN_ROWS = [
    ("missing question", {"answer": "1"}, "question field 'question' is missing"),
    ("blank question", {"question": "  ", "answer": "1"}, "question field 'question' is empty"),
    ("empty answer", {"question": "Q", "answer": ""}, "unreadable answer ''"),
    ("prose answer", {"question": "Q", "answer": "abc"}, "unreadable answer 'abc'"),
    ("null answer", {"question": "Q", "answer": None}, "answer field 'answer' is null"),
    ("no answer field", {"question": "Q"}, "answer field 'answer' is missing"),
    ("bad JSON line", '{"question": "Q", "answer": ', "bad JSON line"),
    ("not an object", "[1, 2]", "not an object"),
]


@pytest.mark.parametrize(("case", "row", "reason"), BROKEN_ROWS, ids=[c[0] for c in BROKEN_ROWS])
def test_broken_row_is_skipped_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, row: object, reason: str
) -> None:
    file = _jsonl(tmp_path / "data.jsonl", [_GOOD, row, _GOOD])
    with caplog.at_level(logging.WARNING, logger="or_env.problems"):
        problems, report = load_problems_with_report(path=file)
    assert [p.id for p in problems] == ["data-1", "data-3"]
    assert (report.records, report.loaded) == (3, 2)
    [skipped] = report.skipped
    assert (skipped.line, skipped.where) == (2, f"{file}:2")
    assert reason in skipped.reason
    assert "skipped 1 broken row(s) of 3" in caplog.text


@pytest.mark.parametrize(("case", "row", "reason"), BROKEN_ROWS, ids=[c[0] for c in BROKEN_ROWS])
def test_broken_row_raises_with_file_and_line(
    tmp_path: Path, case: str, row: object, reason: str
) -> None:
    file = _jsonl(tmp_path / "data.jsonl", [_GOOD, row])
    with pytest.raises(DatasetError) as info:
        load_problems(path=file, on_error="raise")
    assert str(info.value).startswith(f"{file}:2: ")
    assert reason in str(info.value)
    assert info.value.row is not None and info.value.row.line == 2


def test_bom_csv_with_empty_and_prose_answers(tmp_path: Path) -> None:
    text = 'question,answer\nFirst?,12.5\nSecond?,\nThird?,abc\n"Fourth,\nin two lines?",7\n'
    file = _write(tmp_path / "bom.csv", text, bom=True)
    problems, report = load_problems_with_report(path=file)
    assert [(p.id, p.question, p.answer) for p in problems] == [
        ("bom-1", "First?", 12.5),
        ("bom-4", "Fourth,\nin two lines?", 7.0),
    ]
    assert [(s.record, s.line) for s in report.skipped] == [(2, 3), (3, 4)]
    with pytest.raises(DatasetError, match=r"bom.csv:3: unreadable answer ''"):
        load_problems(path=file, on_error="raise")


def test_json_array_reports_the_line_of_a_broken_item(tmp_path: Path) -> None:
    text = '[\n  {"question": "A", "answer": 1},\n  {"question": "",\n   "answer": 2}\n]\n'
    file = _write(tmp_path / "items.json", text)
    problems, report = load_problems_with_report(path=file)
    assert [p.id for p in problems] == ["items-1"]
    assert [(s.record, s.line) for s in report.skipped] == [(2, 3)]


def test_a_file_where_nothing_loads_is_an_error(tmp_path: Path) -> None:
    file = _jsonl(tmp_path / "wrong.jsonl", [{"prompt": "Q", "answer": 1}] * 2)
    with pytest.raises(DatasetError, match=r"no problems could be read.*fields="):
        load_problems(path=file, fields={"question": "prompt_text", "answer": "answer"})


def test_unreadable_json_file_is_an_error(tmp_path: Path) -> None:
    file = _write(tmp_path / "broken.json", '[{"question": "Q", "answer": 1},\n {oops}]')
    with pytest.raises(DatasetError, match=r"broken.json:2: not valid JSON"):
        load_problems(path=file)


def test_on_error_must_be_skip_or_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        load_problems(path=_jsonl(tmp_path / "a.jsonl", [_GOOD]), on_error="ignore")  # type: ignore[arg-type]


# ---------------------------------------------------------------- field mapping and formats


def test_field_mapping_on_jsonl(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Minimise cost.", "target": "1,250", "uid": "a7"},
        {"prompt": "Is it feasible?", "target": "No Best Solution", "uid": "b9"},
    ]
    file = _jsonl(tmp_path / "x.jsonl", rows)
    fields = {"question": "prompt", "answer": "target", "id": "uid"}
    problems = load_problems(path=file, fields=fields)
    assert [(p.id, p.answer, p.benchmark) for p in problems] == [
        ("a7", 1250.0, "custom"),
        ("b9", NO_OPTIMUM, "custom"),
    ]
    assert load_problems(path=file, fields=FieldMap("prompt", "target", "uid")) == problems


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("records.jsonl", '{"q": "A?", "a": 1, "k": "x"}\n{"q": "B?", "a": 2, "k": "y"}\n'),
        ("records.json", '[{"q": "A?", "a": 1, "k": "x"}, {"q": "B?", "a": 2, "k": "y"}]'),
        ("lines.json", '{"q": "A?", "a": 1, "k": "x"}\n{"q": "B?", "a": 2, "k": "y"}\n'),
        ("records.csv", "k,q,a\nx,A?,1\ny,B?,2\n"),
    ],
)
def test_field_mapping_on_every_text_format(tmp_path: Path, name: str, text: str) -> None:
    problems = load_problems(
        path=_write(tmp_path / name, text), fields={"question": "q", "answer": "a", "id": "k"}
    )
    assert [(p.id, p.question, p.answer) for p in problems] == [("x", "A?", 1.0), ("y", "B?", 2.0)]


def test_json_object_keyed_by_id(tmp_path: Path) -> None:
    data = {"p1": {"description": "A?", "ground_truth": 5}, "p2": {"description": "B?"}}
    file = _write(tmp_path / "summary.json", json.dumps(data))
    problems, report = load_problems_with_report(
        path=file, fields={"question": "description", "answer": "ground_truth"}
    )
    assert [(p.id, p.answer) for p in problems] == [("summary-p1", 5.0)]
    assert report.skipped[0].where == f"{file}[p2]"


def test_orthought_null_ground_truth_means_no_optimum(tmp_path: Path) -> None:
    data = {"prob_001": {"description": "A?", "ground_truth": None}}
    file = _write(tmp_path / "summary_logior.json", json.dumps(data))
    [problem] = load_problems("logior", path=file)
    assert (problem.id, problem.answer) == ("logior-orthought-prob_001", NO_OPTIMUM)


def test_parquet_with_field_mapping(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"en_question": ["A?", "B?"], "en_answer": [3.0, None], "sol": [[1.0], [2.0]]})
    pq.write_table(table, tmp_path / "t.parquet")
    problems, report = load_problems_with_report(path=tmp_path / "t.parquet")
    assert [(p.id, p.answer) for p in problems] == [("t-1", 3.0)]
    assert report.skipped[0].where == f"{tmp_path / 't.parquet'}[record 2]"


def test_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = _write(tmp_path / "t.parquet", "not really parquet")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'or-env\[data\]'"):
        load_problems(path=file)


def test_fields_are_guessed_from_common_names(tmp_path: Path) -> None:
    file = _jsonl(tmp_path / "en.jsonl", [{"en_question": "A?", "en_answer": "-99999", "id": 7}])
    assert [(p.id, p.answer) for p in load_problems(path=file)] == [("7", NO_OPTIMUM)]
    other = _jsonl(tmp_path / "odd.jsonl", [{"text": "A?", "value": 1}])
    with pytest.raises(DatasetError, match=r"\['text', 'value'\].*pass fields="):
        load_problems(path=other)


def test_unknown_field_mapping_key() -> None:
    with pytest.raises(ValueError, match="unknown field mapping keys"):
        load_problems(path="x.jsonl", fields={"question": "q", "solution": "s"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "x.jsonl", "split": "test"}, "split= applies to Hugging Face"),
        ({"path": "x.jsonl", "version": "sirl"}, "version= needs a benchmark name"),
        ({"name": "hf:Org/Name", "version": "v1"}, "not path=/version="),
        ({}, "pass a benchmark name"),
    ],
)
def test_contradictory_arguments_are_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_problems(**kwargs)  # type: ignore[arg-type]


def test_a_folder_without_a_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name the benchmark"):
        load_problems(path=tmp_path)


# ---------------------------------------------------------------- ids


def test_ids_are_stable_and_duplicates_are_broken_rows(tmp_path: Path) -> None:
    rows = [
        {"q": "A", "a": 1, "k": "x"},
        {"q": "B", "a": 2, "k": "y"},
        {"q": "C", "a": 3, "k": "x"},
    ]
    file = _jsonl(tmp_path / "dup.jsonl", rows)
    fields = {"question": "q", "answer": "a", "id": "k"}
    first, report = load_problems_with_report(path=file, fields=fields)
    assert [p.id for p in first] == ["x", "y"]
    assert report.skipped[0].reason == f"duplicate id 'x' (first at {file}:1)"
    assert [p.id for p in load_problems(path=file, fields=fields)] == ["x", "y"]


def test_line_numbers_are_ids_even_with_blank_lines(tmp_path: Path) -> None:
    file = _write(tmp_path / "gaps.jsonl", json.dumps(_GOOD) + "\n\n" + json.dumps(_GOOD) + "\n")
    assert [p.id for p in load_problems(path=file)] == ["gaps-1", "gaps-3"]


# ---------------------------------------------------------------- source adapters

RESOCRATIC_CASES = [
    ("objective last", {"x": "1.0", "y": "2.0", "Maximized Profit": "30.5"}, 30.5),
    ("no key names an objective", {"Width": "1.5", "The area of paper used": "9.25"}, 9.25),
    (
        "objective named first",
        {"The minimum number of workers needed is": "22.0", "Workers on Monday": "7.0"},
        22.0,
    ),
    ("non-numeric entries ignored", {"Total Profit": "12", "Note": "n/a"}, 12.0),
    ("stringified dict", "{'Number of trips': '3.0', 'Minimized Cost': '1400.0'}", 1400.0),
]


@pytest.mark.parametrize(
    ("case", "results", "expected"), RESOCRATIC_CASES, ids=[c[0] for c in RESOCRATIC_CASES]
)
def test_resocratic_objective_rule(case: str, results: object, expected: float) -> None:
    assert adapters.resocratic_objective({"results": results})["_objective"] == expected


@pytest.mark.parametrize(
    "results",
    [{}, {"Note": "none"}, {"Total cost": "1", "Maximum load": "2", "Trucks": "3"}, "{oops"],
)
def test_resocratic_objective_refuses_to_guess(results: object) -> None:
    with pytest.raises(RowError):
        adapters.resocratic_objective({"results": results})


@pytest.mark.parametrize(
    ("answer", "expected"), [("[18.0]", 18.0), ("25.0", "25.0"), ("", ""), ("[ -3 ]", -3)]
)
def test_list_answer(answer: str, expected: object) -> None:
    assert adapters.list_answer({"answer": answer})["_answer"] == expected


def test_list_answer_with_several_values_is_broken() -> None:
    with pytest.raises(RowError, match="one-element list"):
        adapters.list_answer({"answer": "[1.0, 2.0]"})


@pytest.mark.parametrize(
    ("solution", "expected"),
    [('{"variables": {"x": 1}, "objective": 684000.0}', 684000.0), ("{}", None), ("", None)],
)
def test_optimus_objective(solution: str, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(RowError):
            adapters.optimus_objective({"solution": solution})
    else:
        assert adapters.optimus_objective({"solution": solution})["_objective"] == expected


def test_complexor_sample_question() -> None:
    sample = "[{'input': {'cap': {'value': [2, 3], 'description': 'capacity'}}, 'output': [7]}]"
    row = adapters.complexor_sample({"description": "Assign trucks.", "sample": sample})
    assert row["_question"] == "Assign trucks.\n\nThe input data are:\n- cap (capacity): [2, 3]"
    assert row["_answer"] == 7


@pytest.mark.parametrize(
    ("en_answer", "expected"),
    [("-9999", NO_OPTIMUM), ("-9999.0", NO_OPTIMUM), ("-99999", NO_OPTIMUM), ("-99990", "-99990")],
)
def test_sirl_fixed_reads_its_no_optimum_marker(en_answer: str, expected: str) -> None:
    row = adapters.sirl_fixed({"en_question": "Q", "en_answer": en_answer, "orginal_answer": "1"})
    assert (row["_answer"], row["en_answer"], row["original_answer"]) == (expected, en_answer, "1")


# (id, answer given in a problem dict or record, the error it raises)
MISSING_ANSWER_CASES = [
    ("none", None, r"problem 'p9': ground truth is None.*'infeasible', 'unbounded'"),
    ("null string", "null", r"problem 'p9': ground truth 'null'.*fix the data"),
    ("prose", "lots", r"problem 'p9': cannot read ground truth 'lots'"),
]


@pytest.mark.parametrize(
    ("answer", "message"),
    [c[1:] for c in MISSING_ANSWER_CASES],
    ids=[c[0] for c in MISSING_ANSWER_CASES],
)
def test_a_problem_without_a_readable_answer_is_refused(answer: object, message: str) -> None:
    with pytest.raises(GroundTruthError, match=message):
        Problem.from_dict({"id": "p9", "question": "Q?", "answer": answer})
    with pytest.raises(ValueError, match=message):
        Problem("p9", "Q?", answer)  # type: ignore[arg-type]


def test_problem_answers_are_normalised() -> None:
    assert Problem("p", "Q?", "No Best Solution").answer == NO_OPTIMUM
    assert Problem("p", "Q?", -99999).answer == NO_OPTIMUM
    assert Problem("p", "Q?", 3).answer == 3.0
    assert Problem.from_dict({"id": "p", "question": "Q?", "answer": "infeasible"}).answer == (
        INFEASIBLE
    )


def test_sirl_reference_program_takes_the_last_block() -> None:
    output = "<think>x</think>\n```python\nold()\n```\nfixed:\n```python\nnew()\n```"
    assert adapters.sirl_reference_program({"output": output})["_reference_code"] == "new()\n"


# ---------------------------------------------------------------- bundled sample set


def test_bundled_sample_needs_no_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import resources

    resource = resources.files("or_env").joinpath("data", "sample", "problems.jsonl")
    assert resource.is_file()
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    problems = load_problems("sample")
    lines = [line for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(problems) == len(lines)
    assert len({p.id for p in problems}) == len(problems)
    assert all(p.benchmark == "sample" and p.meta["reference_code"].strip() for p in problems)


def test_sample_format_attaches_reference_programs(tmp_path: Path) -> None:
    _write(tmp_path / "ref-a.py", "print(3)\n")
    rows = [
        {"id": "s-a", "question": "A?", "answer": 3, "type": "LP", "reference": "ref-a.py"},
        {"id": "s-b", "question": "B?", "answer": 4, "type": "LP", "reference": "missing.py"},
    ]
    file = _jsonl(tmp_path / "problems.jsonl", rows)
    problems, report = load_problems_with_report("sample", path=file)
    assert [(p.id, p.meta["reference_code"], p.meta["type"]) for p in problems] == [
        ("s-a", "print(3)\n", "LP")
    ]
    assert "reference program 'missing.py' not found" in report.skipped[0].reason


# ---------------------------------------------------------------- Hugging Face datasets


def test_hf_dataset_saved_on_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the 'hf' extra (datasets) is not installed")
    rows = {"prompt": ["A?", "B?", "C?"], "target": ["1", "abc", "3"], "uid": ["u1", "u2", "u3"]}
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict(rows), "train": datasets.Dataset.from_dict(rows)}
    ).save_to_disk(str(tmp_path / "ds"))
    fields = {"question": "prompt", "answer": "target", "id": "uid"}
    problems, report = load_problems_with_report(
        f"hf:{tmp_path / 'ds'}", split="test", fields=fields
    )
    assert [(p.id, p.answer) for p in problems] == [("u1", 1.0), ("u3", 3.0)]
    assert report.skipped[0].where == f"hf:{tmp_path / 'ds'}[test][record 2]"
    with pytest.raises(DatasetError, match=r"splits \['test', 'train'\]; pass split="):
        load_problems(f"hf:{tmp_path / 'ds'}", fields=fields)


def test_hf_dataset_from_a_local_data_folder(tmp_path: Path) -> None:
    pytest.importorskip("datasets", reason="the 'hf' extra (datasets) is not installed")
    folder = tmp_path / "repo"
    folder.mkdir()
    _jsonl(folder / "test.jsonl", [{"en_question": "A?", "en_answer": "2.5"}])
    problems = load_problems(f"hf:{folder}", split="test")
    assert [(p.id, p.answer) for p in problems] == [("repo-test-1", 2.5)]


def test_hf_without_datasets_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'or-env\[hf\]'"):
        load_problems("hf:Org/Name", split="test")


# ---------------------------------------------------------------- the shared benchmark copies


def test_counts_without_a_data_dir_report_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    counts = {(c.benchmark, c.version): c for c in benchmark_counts()}
    assert counts[("nl4opt", "optmath")].count is None
    assert DATA_DIR_ENV in (counts[("nl4opt", "optmath")].error or "")


@pytest.fixture(scope="module")
def loaded_versions() -> dict[tuple[str, str], tuple[list[Problem], LoadReport]]:
    return {
        (benchmark, version): load_problems_with_report(benchmark, version=version, path=_DATA_DIR)
        for benchmark, version, *_ in EXPECTED_COUNTS
    }


@pytest.mark.benchmark_data
@needs_data
@pytest.mark.parametrize(
    ("benchmark", "version", "loaded", "skipped", "excluded"),
    EXPECTED_COUNTS,
    ids=[f"{b}/{v}" for b, v, *_ in EXPECTED_COUNTS],
)
def test_every_version_loads_its_measured_count(
    loaded_versions: dict[tuple[str, str], tuple[list[Problem], LoadReport]],
    benchmark: str,
    version: str,
    loaded: int,
    skipped: int,
    excluded: int,
) -> None:
    problems, report = loaded_versions[(benchmark, version)]
    counts = (report.loaded, len(report.skipped), len(report.excluded))
    assert counts == (loaded, skipped, excluded)
    assert report.records == loaded + skipped + excluded
    ids = [p.id for p in problems]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{benchmark}-{version}-") for i in ids)
    assert all(p.question and p.benchmark == benchmark for p in problems)
    statuses = (INFEASIBLE, UNBOUNDED, NO_OPTIMUM)
    assert all(isinstance(p.answer, float) or p.answer in statuses for p in problems)


# The "no optimal solution" markers of every version: (benchmark, version) -> the number of
# problems read as NO_OPTIMUM (and the marker written in the file). No version names one status:
# INFEASIBLE and UNBOUNDED appear only in the bundled sample set. Versions not listed have none.
MARKER_COUNTS = {
    ("nl4opt", "optmath"): (17, {"No Best Solution"}),
    ("nl4opt", "sirl"): (17, {"No Best Solution"}),
    ("nl4opt", "orlm-hf"): (22, {"No Best Solution", "-99999", "-99999.0"}),
    ("mamo-easylp", "sirl-fixed"): (1, {"-9999"}),
    ("mamo-complexlp", "sirl-fixed"): (1, {"-9999.0"}),
    ("industryor", "orlm-hf"): (3, {"-99999"}),
    ("industryor", "llmopt"): (3, {"-99999"}),
    ("industryor", "orthought-summary"): (1, {"None"}),
    ("nlp4lp", "orthought-summary"): (22, {"None"}),
    ("complexor", "orthought"): (1, {"None"}),
}


@pytest.mark.benchmark_data
@needs_data
@pytest.mark.parametrize(
    ("benchmark", "version"),
    [(b, v) for b, v, *_ in EXPECTED_COUNTS],
    ids=[f"{b}/{v}" for b, v, *_ in EXPECTED_COUNTS],
)
def test_no_optimum_markers_of_every_version(
    loaded_versions: dict[tuple[str, str], tuple[list[Problem], LoadReport]],
    benchmark: str,
    version: str,
) -> None:
    problems = loaded_versions[(benchmark, version)][0]
    marked = [p for p in problems if isinstance(p.answer, str)]
    count, markers = MARKER_COUNTS.get((benchmark, version), (0, set()))
    assert {p.answer for p in marked} <= {NO_OPTIMUM}
    assert len(marked) == count
    assert {str(p.meta.get("en_answer", p.meta["answer_raw"])) for p in marked} == markers


@pytest.mark.benchmark_data
@needs_data
def test_ids_are_stable_across_loads(
    loaded_versions: dict[tuple[str, str], tuple[list[Problem], LoadReport]],
) -> None:
    for benchmark, version in [("nl4opt", "orlm-hf"), ("industryor", "orthought-summary")]:
        again = load_problems(benchmark, version=version, path=_DATA_DIR)
        assert again == loaded_versions[(benchmark, version)][0]
    first = loaded_versions[("nl4opt", "orlm-hf")][0][0]
    assert first.id == "nl4opt-orlm-hf-LPWP_prob_152"


@pytest.mark.benchmark_data
@needs_data
def test_benchmark_counts_match_the_measured_table() -> None:
    counts = [c for c in benchmark_counts(_DATA_DIR) if c.benchmark != "sample"]
    assert [(c.benchmark, c.version, c.count, c.skipped, c.excluded) for c in counts] == [
        tuple(row) for row in EXPECTED_COUNTS
    ]
    defaults = {c.benchmark: c.version for c in counts if c.default}
    assert defaults["nl4opt"] == "optmath" and defaults["industryor"] == "orlm-hf"


@pytest.mark.benchmark_data
@needs_data
def test_resocratic_rule_differs_from_the_scalar_copy_only_where_it_took_a_variable(
    loaded_versions: dict[tuple[str, str], tuple[list[Problem], LoadReport]],
) -> None:
    official = loaded_versions[("optibench", "resocratic")][0]
    scalar = loaded_versions[("optibench", "sirl")][0]
    differ = {
        a.meta["record"]: (a.answer, b.answer)
        for a, b in zip(official, scalar, strict=True)
        if round(float(a.answer), 2) != b.answer and round(float(a.answer)) != b.answer
    }
    # Fire stations (4 copies), minimum workers (2 copies), refills: checked against the questions.
    assert differ == {
        5: (2.0, 0.0),
        21: (2.0, 0.0),
        477: (2.0, 0.0),
        491: (2.0, 0.0),
        83: (22.0, 2.0),
        290: (22.0, 2.0),
        424: (330.0, 3000.0),
    }


@pytest.mark.benchmark_data
@needs_data
def test_orlm_and_sirl_rows_keep_their_programs(
    loaded_versions: dict[tuple[str, str], tuple[list[Problem], LoadReport]],
) -> None:
    for problem in loaded_versions[("mamo-complexlp", "orlm-hf")][0]:
        assert {"to_run_script", "execution_result", "execution_best_solution"} <= set(problem.meta)
    rl = loaded_versions[("sirl-rl-sample", "sirl")][0]
    assert all("gurobipy" in p.meta["reference_code"] for p in rl)
    assert all(isinstance(p.meta["sol"], list) for p in rl)
