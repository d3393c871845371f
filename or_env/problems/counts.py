"""Per-(benchmark, version) problem counts, for the `or-env benchmarks` listing."""

from __future__ import annotations

import os
from typing import NamedTuple

from or_env.problems.benchmarks import list_benchmarks
from or_env.problems.loaders import _load
from or_env.problems.readers import MissingDependencyError
from or_env.problems.report import DatasetError


class VersionCount(NamedTuple):
    """How one version loads: problems loaded, broken rows skipped, rows the source excludes.

    `count` and `skipped` are None (and `error` says why) when the file could not be read, e.g.
    without a data dir or without the optional dependency for its format. `default` marks the
    benchmark's default version (its reason is `get_benchmark(name).default_reason`).
    """

    benchmark: str
    version: str
    count: int | None
    skipped: int | None
    excluded: int | None = None
    default: bool = False
    gym_id: str | None = None
    error: str | None = None


def benchmark_counts(data_dir: str | os.PathLike[str] | None = None) -> list[VersionCount]:
    """Load every registered version and count it; a missing or unreadable file never raises.

    `data_dir` defaults to $OR_ENV_DATA_DIR; the bundled sample set needs none.
    """
    rows: list[VersionCount] = []
    for benchmark in list_benchmarks():
        for version in benchmark.versions:
            default = version.name == benchmark.default_version
            try:
                _, report = _load(
                    benchmark.name,
                    version=version.name,
                    path=None if version.bundled else data_dir,
                    fields=None,
                    fmt=None,
                    split=None,
                    on_error="skip",
                    warn=False,
                )
            except (DatasetError, MissingDependencyError) as exc:
                rows.append(
                    VersionCount(
                        benchmark.name,
                        version.name,
                        None,
                        None,
                        None,
                        default,
                        benchmark.gym_id,
                        str(exc),
                    )
                )
                continue
            rows.append(
                VersionCount(
                    benchmark.name,
                    version.name,
                    report.loaded,
                    len(report.skipped),
                    len(report.excluded),
                    default,
                    benchmark.gym_id,
                )
            )
    return rows
