"""Problems and benchmarks: the `Problem` record, the benchmark registry and the loaders."""

from or_env.problems.benchmarks import get_benchmark, list_benchmarks
from or_env.problems.counts import VersionCount, benchmark_counts
from or_env.problems.loaders import (
    DATA_DIR_ENV,
    load_problems,
    load_problems_with_report,
    resolve_data_dir,
)
from or_env.problems.readers import MissingDependencyError
from or_env.problems.record import Problem
from or_env.problems.report import DatasetError, LoadReport, SkippedRow
from or_env.problems.spec import Benchmark, FieldMap, UnknownBenchmarkError, Version

__all__ = [
    "DATA_DIR_ENV",
    "Benchmark",
    "DatasetError",
    "FieldMap",
    "LoadReport",
    "MissingDependencyError",
    "Problem",
    "SkippedRow",
    "UnknownBenchmarkError",
    "Version",
    "VersionCount",
    "benchmark_counts",
    "get_benchmark",
    "list_benchmarks",
    "load_problems",
    "load_problems_with_report",
    "resolve_data_dir",
]
