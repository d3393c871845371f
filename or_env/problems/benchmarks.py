"""The benchmark registry: every public benchmark copy the package can load, with its provenance.

Files live under a data dir laid out as `<benchmark>/<source>/<original file name>` (point
OR_ENV_DATA_DIR at it). Each benchmark keeps every published copy selectable as a version,
because cleaned copies disagree with the originals; the default is the copy most papers' tables
use, and `default_reason` says why.
"""

from __future__ import annotations

from or_env.problems import adapters
from or_env.problems.spec import Benchmark, FieldMap, UnknownBenchmarkError, Version

# Field layouts shared by several sources.
_EN = FieldMap(question="en_question", answer="en_answer")
_LLMOPT = FieldMap(question="question", answer="answer", id="index")
_MAMO = FieldMap(question="Question", answer="Answer", id="id")
_OPTIMIND = FieldMap(question="question", answer="_answer")
_SUMMARY = FieldMap(question="description", answer="ground_truth")
_SIRL_FIXED = FieldMap(question="en_question", answer="_answer")
_LLMOPT_META = ("ori",)
_ORLM_META = (
    "source",
    "difficulty",
    "scene",
    "type",
    "en_math_model_coptpy_code",
    "to_run_script",
    "execution_result",
    "execution_best_solution",
    "execution_state",
)
_ORLM_NOTE = (
    "ORLM repo results/{}/executed.jsonl: question + ground truth of the May-2024 HF "
    "CardinalOperations copy, with ORLM-LLaMA-3-8B's coptpy program and execution log in meta "
    "(model output, not a verified reference)"
)


def _llmopt(path: str, what: str) -> Version:
    return Version(
        "llmopt",
        path,
        "jsonl",
        _LLMOPT,
        f"antgroup/LLMOPT data/testset: {what}",
        meta_fields=_LLMOPT_META,
    )


def _orlm(path: str, folder: str, id_field: str | None = None) -> Version:
    fields = FieldMap("en_question", "en_answer", id=id_field)
    return Version(
        "orlm-hf", path, "jsonl", fields, _ORLM_NOTE.format(folder), meta_fields=_ORLM_META
    )


_ORLM_NL4OPT = "NL4OPT.q2mc_en.ORLM-LLaMA-3-8B"
_ORLM_COMPLEX = "MAMO.ComplexLP.q2mc_en.ORLM-LLaMA-3-8B"
_ORLM_INDUSTRY = "IndustryOR.q2mc_en.ORLM-LLaMA-3-8B"
_TABLES = "the CardinalOperations copy used in the ORLM, SIRL and OptMATH comparison tables"

BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "nl4opt",
        "NL4Opt",
        "or_env/NL4Opt-v0",
        "NL4Opt competition LP word problems, converted to objective-value answers (245).",
        "optmath",
        f"{_TABLES}; SIRL's 2025 corrected copy changes 5 records and is version 'sirl'",
        (
            Version(
                "optmath",
                "nl4opt/optmath/NL4OPT.json",
                "jsonl",
                _EN,
                "optsuite/OptMATH benchmark/NL4OPT.json: the CardinalOperations 245-problem "
                "conversion (17 'No Best Solution'); JSON Lines despite .json",
            ),
            Version(
                "sirl",
                "nl4opt/sirl/NL4OPT.jsonl",
                "jsonl",
                _EN,
                "Cardinal-Operations/SIRL test_data: SIRL-corrected NL4OPT (2025-09)",
            ),
            _llmopt("nl4opt/llmopt/nl4opt_test.jsonl", "re-labelled NL4Opt, 15 unsolvable removed"),
            Version(
                "resocratic",
                "nl4opt/resocratic/NL4OPT-E.json",
                "json",
                FieldMap("question", "_objective", id="index"),
                "yangzhch6/ReSocratic NL4OPT-E (289); answer = the objective entry of the "
                "'results' dict (rule in adapters.resocratic_objective)",
                meta_fields=("type", "results", "_objective_key"),
                adapter=adapters.resocratic_objective,
            ),
            _orlm(f"nl4opt/orlm_results/{_ORLM_NL4OPT}/executed.jsonl", _ORLM_NL4OPT, "source"),
        ),
    ),
    Benchmark(
        "mamo-easylp",
        "MAMO EasyLP",
        "or_env/MAMO-EasyLP-v0",
        "Mamo EasyLP: 652 short LP word problems (most questions carry literal backslash-n "
        "sequences in every published copy; the text is kept as published).",
        "sirl",
        f"{_TABLES} (byte-identical to OptMATH's copy); 3 answers differ from the Mamo "
        "authors' file",
        (
            Version(
                "sirl",
                "mamo_easylp/sirl/MAMO_EasyLP.json",
                "jsonl",
                _EN,
                "Cardinal-Operations/SIRL test_data: original (uncorrected) EasyLP, "
                "identical to optsuite/OptMATH benchmark/MAMO_EasyLP.json",
            ),
            Version(
                "sirl-fixed",
                "mamo_easylp/sirl/MAMO_EasyLP_fixed.jsonl",
                "jsonl",
                _SIRL_FIXED,
                "Cardinal-Operations/SIRL test_data: SIRL-corrected EasyLP (642; 10 removed, "
                "~70 answers fixed, original_answer kept; -9999 = no optimal solution)",
                meta_fields=("is_checked", "original_answer", "en_answer"),
                adapter=adapters.sirl_fixed,
            ),
            Version(
                "mamo",
                "mamo_easylp/mamo/mamo_easy_lp.jsonl",
                "jsonl",
                _MAMO,
                "FreedomIntelligence/Mamo: the Mamo authors' original EasyLP",
                meta_fields=("Category", "Type"),
            ),
            _llmopt(
                "mamo_easylp/llmopt/mamo_easy_test.jsonl",
                "manually re-checked EasyLP (652)",
            ),
        ),
    ),
    Benchmark(
        "mamo-complexlp",
        "MAMO ComplexLP",
        "or_env/MAMO-ComplexLP-v0",
        "Mamo ComplexLP: 211 longer LP/MILP word problems.",
        "sirl",
        f"{_TABLES}; same questions and answers as the Mamo authors' file",
        (
            Version(
                "sirl",
                "mamo_complexlp/sirl/MAMO_ComplexLP.json",
                "jsonl",
                _EN,
                "Cardinal-Operations/SIRL test_data: original (uncorrected) ComplexLP, "
                "identical to optsuite/OptMATH benchmark/MAMO_ComplexLP.json",
            ),
            Version(
                "sirl-fixed",
                "mamo_complexlp/sirl/MAMO_ComplexLP_fixed.jsonl",
                "jsonl",
                _SIRL_FIXED,
                "Cardinal-Operations/SIRL test_data: SIRL-corrected ComplexLP (203; -9999 = no "
                "optimal solution)",
                meta_fields=("is_checked", "original_answer", "en_answer"),
                adapter=adapters.sirl_fixed,
            ),
            Version(
                "mamo",
                "mamo_complexlp/mamo/mamo_complex_lp.jsonl",
                "jsonl",
                _MAMO,
                "FreedomIntelligence/Mamo: the Mamo authors' original ComplexLP",
                meta_fields=("Category", "Type"),
            ),
            _llmopt("mamo_complexlp/llmopt/mamo_complex_test.jsonl", "ComplexLP (211)"),
            Version(
                "optimind",
                "mamo_complexlp/optimind/optimind_cleaned_classified_mamo_complex.csv",
                "csv",
                _OPTIMIND,
                "microsoft/OptiGuide optimind/data: expert-cleaned ComplexLP (210), answers "
                "as one-element lists, UTF-8 BOM",
                meta_fields=("problem_class",),
                adapter=adapters.list_answer,
            ),
            _orlm(f"mamo_complexlp/orlm_results/{_ORLM_COMPLEX}/executed.jsonl", _ORLM_COMPLEX),
        ),
    ),
    Benchmark(
        "industryor",
        "IndustryOR",
        "or_env/IndustryOR-v0",
        "IndustryOR: 100 industrial OR problems of mixed difficulty.",
        "orlm-hf",
        "the original CardinalOperations/IndustryOR (HF, May 2024) used in ORLM's paper and the "
        "tables that compare with it (the only file here with that exact copy; LLMOPT's agrees "
        "on 95/100); the revised question set is 'sirl-fixed-v2', 'orthought', 'optimind'",
        (
            _orlm(f"industryor/orlm_results/{_ORLM_INDUSTRY}/executed.jsonl", _ORLM_INDUSTRY),
            _llmopt("industryor/llmopt/industryor.jsonl", "IndustryOR (3 answers -99999)"),
            Version(
                "sirl-fixed-v2",
                "industryor/sirl/IndustryOR_fixedV2.json",
                "jsonl",
                FieldMap("en_question", "en_answer", id="id"),
                "Cardinal-Operations/SIRL test_data: expert-revised IndustryOR (2025-10-11); "
                "JSON Lines despite .json",
                meta_fields=("difficulty",),
            ),
            Version(
                "optimind",
                "industryor/optimind/optimind_cleaned_classified_industryor.csv",
                "csv",
                _OPTIMIND,
                "microsoft/OptiGuide optimind/data: expert-cleaned IndustryOR (99)",
                meta_fields=("problem_class",),
                adapter=adapters.list_answer,
            ),
            Version(
                "orthought",
                "industryor/orthought/IndustryOR.csv",
                "csv",
                FieldMap("en_question", "en_answer", id="id"),
                "ZJU-TSELab/ORThought datasets/processed: IndustryOR (100) with problem_type",
                meta_fields=("difficulty", "problem_type"),
            ),
            Version(
                "orthought-clean",
                "industryor/orthought/industryor_clean.jsonl",
                "jsonl",
                _EN,
                "ZJU-TSELab/ORThought datasets/processed: 42-problem clean subset",
                meta_fields=("difficulty", "question_type"),
            ),
            Version(
                "orthought-summary",
                "industryor/orthought/summary_industryor.json",
                "json-dict",
                _SUMMARY,
                "ZJU-TSELab/ORThought datasets/summary: re-annotated IndustryOR (83); null "
                "ground truth = no optimal solution",
                meta_fields=("difficulty", "problem_type", "problem_size"),
                null_means_no_optimum=True,
            ),
        ),
    ),
    Benchmark(
        "optmath",
        "OptMATH-Bench",
        "or_env/OptMATH-v0",
        "OptMATH-Bench: 166 hard LP/MILP/NLP problems with long data-rich statements.",
        "optmath",
        "the OptMATH authors' official 166-problem file, evaluated in the OptMATH and SIRL "
        "tables (SIRL's own 166 copy differs in 2 questions)",
        (
            Version(
                "optmath",
                "optmath_bench/optmath/OptMATH_Bench.json",
                "json",
                FieldMap("en_question", "en_answer", id="id"),
                "optsuite/OptMATH benchmark/OptMATH_Bench.json: official OptMATH-Bench (166)",
            ),
            Version(
                "sirl-166",
                "optmath_bench/sirl/OptMATH_Bench_166.jsonl",
                "jsonl",
                _EN,
                "Cardinal-Operations/SIRL test_data: OptMATH-Bench 166 (2 questions differ)",
            ),
            Version(
                "sirl-193",
                "optmath_bench/sirl/OptMATH_Bench_193.jsonl",
                "jsonl",
                _EN,
                "Cardinal-Operations/SIRL test_data: extended 193-problem variant",
            ),
            _llmopt("optmath_bench/llmopt/optmath_bench.jsonl", "OptMATH-Bench (166)"),
            Version(
                "optimind",
                "optmath_bench/optimind/optimind_cleaned_classified_optmath.csv",
                "csv",
                _OPTIMIND,
                "microsoft/OptiGuide optimind/data: expert-cleaned OptMATH (130; 2 rows have "
                "no answer and are skipped)",
                meta_fields=("problem_class",),
                adapter=adapters.list_answer,
            ),
        ),
    ),
    Benchmark(
        "optibench",
        "OptiBench",
        "or_env/OptiBench-v0",
        "OptiBench (ReSocratic): 605 linear and nonlinear problems, some with tables.",
        "sirl",
        "the scalar-answer copy used in the SIRL and LLMOPT tables; it took the last 'results' "
        "entry, which is not the objective in 7 rows (version 'resocratic' picks the objective)",
        (
            Version(
                "sirl",
                "optibench/sirl/OptiBench.jsonl",
                "jsonl",
                _EN,
                "Cardinal-Operations/SIRL test_data: OptiBench with scalar answers rounded "
                "to 2 decimals",
            ),
            Version(
                "resocratic",
                "optibench/resocratic/OptiBench.json",
                "json",
                FieldMap("question", "_objective", id="index"),
                "yangzhch6/ReSocratic data/OptiBench.json (official); answer = the objective "
                "entry of the 'results' dict (rule in adapters.resocratic_objective)",
                meta_fields=("type", "results", "_objective_key"),
                adapter=adapters.resocratic_objective,
            ),
            _llmopt("optibench/llmopt/optibench.jsonl", "OptiBench (605)"),
        ),
    ),
    Benchmark(
        "nlp4lp",
        "NLP4LP",
        "or_env/NLP4LP-v0",
        "NLP4LP (OptiMUS): LP/MILP word problems.",
        "llmopt",
        "the 242 feasible problems with scalar answers used in LLMOPT's and later papers' tables",
        (
            _llmopt("nlp4lp/llmopt/nlp4lp.jsonl", "242 feasible NLP4LP problems (2025-04)"),
            Version(
                "orthought-summary",
                "nlp4lp/orthought/summary_nlp4lp.json",
                "json-dict",
                _SUMMARY,
                "ZJU-TSELab/ORThought datasets/summary: corrected NLP4LP (264); null ground "
                "truth (22) = no optimal solution",
                meta_fields=("problem_type", "problem_size"),
                null_means_no_optimum=True,
            ),
            Version(
                "orthought",
                "nlp4lp/orthought/nlp4lp.csv",
                "csv",
                FieldMap("description", "_objective", id="id"),
                "ZJU-TSELab/ORThought datasets/processed: OptiMUS-format NLP4LP (269) with "
                "parameters and a gurobipy program (optimus_code, reads parameters.json from "
                "a hard-coded path); answer = solution['objective']",
                meta_fields=("problem_type", "parameters", "optimus_code", "solution"),
                adapter=adapters.optimus_objective,
                exclude=(("problem_type", "Wrong problem"),),
            ),
        ),
    ),
    Benchmark(
        "complexor",
        "ComplexOR",
        "or_env/ComplexOR-v0",
        "ComplexOR (Chain-of-Experts): 18 complex OR models with instance data.",
        "llmopt",
        "the only copy with self-contained questions (data written into the text), as in "
        "LLMOPT's tables",
        (
            _llmopt("complexor/llmopt/complexor.jsonl", "18 feasible ComplexOR problems"),
            Version(
                "orthought",
                "complexor/orthought/summary_complexor.json",
                "json-dict",
                FieldMap("_question", "_answer"),
                "ZJU-TSELab/ORThought datasets/summary: abstract description + one sample "
                "input/output; question composed as description + sample data",
                meta_fields=("problem_type", "problem_size", "details"),
                adapter=adapters.complexor_sample,
                null_means_no_optimum=True,
            ),
        ),
    ),
    Benchmark(
        "logior",
        "LogiOR",
        "or_env/LogiOR-v0",
        "LogiOR (ORThought): 92 logistics and supply-chain problems (LP, ILP, MILP, NLP).",
        "orthought",
        "the only copy",
        (
            Version(
                "orthought",
                "logior/orthought/summary_logior.json",
                "json-dict",
                _SUMMARY,
                "ZJU-TSELab/ORThought datasets/summary: LogiOR (92)",
                meta_fields=("problem_type", "problem_size", "details"),
                null_means_no_optimum=True,
            ),
        ),
    ),
    Benchmark(
        "icml2024-task3",
        "ICML 2024 AI4Math Task 3",
        None,
        "ICML 2024 AI4Math challenge track 3 test split, labelled by LLMOPT (410).",
        "llmopt",
        "the only copy",
        (_llmopt("icml2024_task3/llmopt/task3_test.jsonl", "ICML 2024 track-3 test (410)"),),
    ),
    Benchmark(
        "sirl-rl-sample",
        "SIRL RL sample",
        None,
        "84 OptMATH-style synthetic training problems with a reference gurobipy program each "
        "(training data, not a benchmark).",
        "sirl",
        "the only copy",
        (
            Version(
                "sirl",
                "sirl_rl_sample/sirl/gurobi_examples_OR_test.parquet",
                "parquet",
                _EN,
                "Cardinal-Operations/SIRL SIRLTrain/trainset: verl-format RL sample; "
                "reference program = last ```python block of 'output'",
                meta_fields=("_reference_code", "sol", "data_source"),
                adapter=adapters.sirl_reference_program,
            ),
        ),
    ),
    Benchmark(
        "sample",
        "or-env sample",
        "or_env/Sample-v0",
        "Small problems written for this package, each with a reference program that "
        "reproduces its answer; ships with the package.",
        "bundled",
        "the only copy",
        (
            Version(
                "bundled",
                "sample/problems.jsonl",
                "jsonl",
                FieldMap("question", "answer", id="id"),
                "written for or-env; reference programs next to the problems file",
                meta_fields=("type", "reference", "_reference_code"),
                adapter=adapters.bundled_reference_program,
                bundled=True,
                id_prefix="",
            ),
        ),
    ),
)

_BY_NAME = {b.name: b for b in BENCHMARKS}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def list_benchmarks() -> list[Benchmark]:
    """All registered benchmarks, in listing order."""
    return list(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called `name` (case and '_'/'-' insensitive)."""
    benchmark = _BY_NAME.get(_normalise(name))
    if benchmark is None:
        raise UnknownBenchmarkError(
            f"unknown benchmark {name!r}; valid names: {', '.join(_BY_NAME)}"
            " (or pass path= to load your own file, or 'hf:Org/Name' for a Hugging Face dataset)"
        )
    return benchmark
