"""The records that describe a benchmark: its field mapping, its versions, the benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from or_env.errors import DataError
from or_env.problems.adapters import Adapter
from or_env.problems.readers import FORMATS


class UnknownBenchmarkError(DataError):
    """A benchmark or version name that the registry does not know; the message lists valid ones."""


@dataclass(frozen=True)
class FieldMap:
    """Which fields of a source record hold the question, the answer and (optionally) the id.

    Without an id field, problems are numbered by their 1-based line (JSON Lines) or row.
    """

    question: str = "question"
    answer: str = "answer"
    id: str | None = None

    @classmethod
    def coerce(cls, value: FieldMap | Mapping[str, str | None] | None) -> FieldMap | None:
        """Accept a FieldMap or a dict like {"question": "prompt", "answer": "target"}."""
        if value is None or isinstance(value, FieldMap):
            return value
        unknown = set(value) - {"question", "answer", "id"}
        if unknown:
            raise ValueError(
                f"unknown field mapping keys {sorted(unknown)}; use 'question', 'answer', 'id'"
            )
        return cls(**dict(value))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Version:
    """One copy of a benchmark: a file under the data dir, how to read it, where it came from.

    Attributes:
        name: the version name ("sirl", "llmopt", ...).
        file: path relative to the data dir (`<benchmark>/<source>/<original file name>`), or to
            the package's data folder when `bundled`.
        format: one of jsonl, json (array), json-dict (object keyed by id), csv, parquet.
        fields: where question, answer and id are (possibly fields an adapter derives).
        provenance: one line on where the file comes from and what it is.
        meta_fields: source fields copied into Problem.meta (a leading "_" is dropped).
        adapter: derives question/answer/reference fields from a raw row (see adapters.py).
        exclude: (field, value) pairs marking rows the source itself flags as unusable.
        null_means_no_optimum: a null answer is this source's marker for "no optimal
            solution" without saying why (ORThought's summaries): it becomes NO_OPTIMUM, which
            an infeasible or an unbounded answer matches. Elsewhere a null answer is a broken
            row, never a silent "infeasible".
        bundled: the file ships inside the package (no data dir needed).
        id_prefix: prefix for problem ids; None means "<benchmark>-<version>-".
    """

    name: str
    file: str
    format: str
    fields: FieldMap
    provenance: str
    meta_fields: tuple[str, ...] = ()
    adapter: Adapter | None = None
    exclude: tuple[tuple[str, str], ...] = ()
    null_means_no_optimum: bool = False
    bundled: bool = False
    id_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"version {self.name!r}: format {self.format!r} not in {FORMATS}")


@dataclass(frozen=True)
class Benchmark:
    """A benchmark the CLI lists: names, gym id, its versions and which one loads by default.

    `default_reason` says why the default version was picked; `or-env benchmarks` shows it.
    """

    name: str
    display_name: str
    gym_id: str | None
    description: str
    default_version: str
    default_reason: str
    versions: tuple[Version, ...]

    def __post_init__(self) -> None:
        names = [v.name for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark {self.name!r} has duplicate version names: {names}")
        if self.default_version not in names:
            raise ValueError(f"benchmark {self.name!r}: default {self.default_version!r} unknown")

    @property
    def version_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.versions)

    def get_version(self, name: str | None = None) -> Version:
        """The named version, or the default one when `name` is None."""
        wanted = self.default_version if name is None else name
        for version in self.versions:
            if version.name == wanted:
                return version
        raise UnknownBenchmarkError(
            f"benchmark {self.name!r} has no version {wanted!r}; "
            f"valid versions: {', '.join(self.version_names)} (default {self.default_version})"
        )
