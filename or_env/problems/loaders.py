"""Loading problems from the benchmark registry, a local file, or a Hugging Face dataset.

Every record becomes a `Problem` or is reported: a broken row (no question, an empty or
unreadable answer, a bad JSON line, a duplicate id) is skipped with a warning naming `file:line`
(on_error="skip", the default) or stops the load with a `DatasetError` (on_error="raise"). A row
is never turned into a guessed answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from importlib import resources
from pathlib import Path

from or_env.problems.benchmarks import get_benchmark
from or_env.problems.build import CUSTOM_VERSION, OnError, build_problems
from or_env.problems.hf import read_hf_records
from or_env.problems.readers import RawRecord, detect_format, read_records
from or_env.problems.record import Problem
from or_env.problems.report import DatasetError, LoadReport
from or_env.problems.spec import Benchmark, FieldMap, Version

DATA_DIR_ENV = "OR_ENV_DATA_DIR"
HF_PREFIX = "hf:"
Fields = FieldMap | Mapping[str, str | None] | None

# Field names tried, in order, when a file is loaded without a field mapping.
_QUESTION_NAMES = ("question", "en_question", "Question")
_ANSWER_NAMES = ("answer", "en_answer", "Answer", "ground_truth")


def load_problems(
    name: str | None = None,
    *,
    version: str | None = None,
    path: str | os.PathLike[str] | None = None,
    fields: Fields = None,
    format: str | None = None,
    split: str | None = None,
    on_error: OnError = "skip",
) -> list[Problem]:
    """Load problems from a registered benchmark, a local file, or a Hugging Face dataset.

    - `load_problems("nl4opt")`: the benchmark's default version, read from the data dir
      (`path=` if it is a folder, else the OR_ENV_DATA_DIR environment variable).
    - `load_problems("nl4opt", version="sirl", path="my/NL4OPT.jsonl")`: a registered version
      read from your own copy of its file.
    - `load_problems(path="x.jsonl", fields={"question": "prompt", "answer": "target",
      "id": "uid"})`: any JSON Lines / JSON / CSV / parquet file (`format=` overrides the guess
      from the file name; without `fields`, common names like question/en_question are tried).
    - `load_problems("hf:Org/Name", split="test", fields=...)`: a Hugging Face dataset (needs
      `pip install 'or-env[hf]'`); a local dataset folder works as well as a hub id.

    Broken rows are skipped with a warning (on_error="skip") or raise DatasetError naming
    file:line (on_error="raise"). Use `load_problems_with_report` to get the details.
    """
    problems, _ = load_problems_with_report(
        name,
        version=version,
        path=path,
        fields=fields,
        format=format,
        split=split,
        on_error=on_error,
    )
    return problems


def load_problems_with_report(
    name: str | None = None,
    *,
    version: str | None = None,
    path: str | os.PathLike[str] | None = None,
    fields: Fields = None,
    format: str | None = None,
    split: str | None = None,
    on_error: OnError = "skip",
) -> tuple[list[Problem], LoadReport]:
    """Same as `load_problems`, and also return the `LoadReport` (counts, skipped rows, reasons)."""
    return _load(
        name,
        version=version,
        path=path,
        fields=fields,
        fmt=format,
        split=split,
        on_error=on_error,
        warn=True,
    )


def _load(
    name: str | None,
    *,
    version: str | None,
    path: str | os.PathLike[str] | None,
    fields: Fields,
    fmt: str | None,
    split: str | None,
    on_error: OnError,
    warn: bool,
) -> tuple[list[Problem], LoadReport]:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
    field_map = FieldMap.coerce(fields)
    is_hf = name is not None and name.startswith(HF_PREFIX)
    local = path if path is not None else (name[len(HF_PREFIX) :] if is_hf else None)
    if local is not None and os.path.exists(local):
        # The file holds ground truths: the programs of this process's sandboxes must not
        # read it (a folder is hidden whole, a file with its folder).
        from or_env.sandbox.local import hide_from_programs

        hide_from_programs(local)
    if split is not None and not is_hf:
        raise ValueError("split= applies to Hugging Face datasets ('hf:Org/Name') only")
    if version is not None and name is None:
        raise ValueError(
            "version= needs a benchmark name, e.g. load_problems('nl4opt', version=...)"
        )
    if is_hf:
        if path is not None or version is not None:
            raise ValueError("a Hugging Face dataset takes split= and fields=, not path=/version=")
        records, source = read_hf_records(name[len(HF_PREFIX) :], split=split)
        stem = name[len(HF_PREFIX) :].rstrip("/").split("/")[-1] + (f"-{split}" if split else "")
        spec = _custom_version(stem, source, field_map, records, fmt="hf")
        return build_problems(
            records,
            spec,
            benchmark="custom",
            source=source,
            folder=None,
            on_error=on_error,
            warn=warn,
        )
    if name is None:
        return _load_file(path, field_map, fmt, on_error=on_error, warn=warn)
    benchmark = get_benchmark(name)
    chosen = benchmark.get_version(version)
    if field_map is not None:
        chosen = replace(chosen, fields=field_map)
    with ExitStack() as stack:
        file, source = _locate(benchmark, chosen, path, stack)
        records = list(read_records(file, fmt or chosen.format))
        return build_problems(
            records,
            chosen,
            benchmark=benchmark.name,
            source=source,
            folder=file.parent,
            on_error=on_error,
            warn=warn,
        )


def _load_file(
    path: str | os.PathLike[str] | None,
    field_map: FieldMap | None,
    fmt: str | None,
    *,
    on_error: OnError,
    warn: bool,
) -> tuple[list[Problem], LoadReport]:
    if path is None:
        raise ValueError(
            "pass a benchmark name (see or_env.problems.list_benchmarks()), path= to a data "
            "file, or 'hf:Org/Name' for a Hugging Face dataset"
        )
    file = Path(path)
    if file.is_dir():
        raise ValueError(
            f"path={str(file)!r} is a folder: name the benchmark to load from it, "
            "e.g. load_problems('nl4opt', path=...)"
        )
    if not file.is_file():
        raise DatasetError(f"file not found: {file}")
    fmt = fmt or detect_format(file)
    records = list(read_records(file, fmt))
    spec = _custom_version(file.stem, str(file), field_map, records, fmt=fmt)
    return build_problems(
        records,
        spec,
        benchmark="custom",
        source=str(file),
        folder=file.parent,
        on_error=on_error,
        warn=warn,
    )


def _custom_version(
    stem: str, source: str, field_map: FieldMap | None, records: list[RawRecord], *, fmt: str
) -> Version:
    if field_map is None:
        field_map = _guess_fields(source, records)
    # Ids from the file's own id field are kept verbatim; otherwise "<file stem>-<line/row>".
    prefix = "" if field_map.id else f"{stem}-"
    # Records are already read at this point, so the format only labels the version.
    return Version(
        CUSTOM_VERSION,
        source,
        "jsonl" if fmt == "hf" else fmt,
        field_map,
        f"loaded from {source}",
        id_prefix=prefix,
    )


def _guess_fields(source: str, records: list[RawRecord]) -> FieldMap:
    first = next((r.data for r in records if r.data is not None), None)
    if first is None:
        return FieldMap()
    question = next((n for n in _QUESTION_NAMES if n in first), None)
    answer = next((n for n in _ANSWER_NAMES if n in first), None)
    if question is None or answer is None:
        raise DatasetError(
            f"{source}: cannot tell which fields hold the question and the answer (fields: "
            f"{sorted(first)}); pass fields={{'question': ..., 'answer': ..., 'id': ...}}"
        )
    return FieldMap(question, answer, id="id" if "id" in first else None)


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: `path` if given, else $OR_ENV_DATA_DIR; error if neither."""
    if path is not None:
        return Path(path)
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    if value:
        return Path(value)
    raise DatasetError(
        f"the benchmark files are not part of the package: set {DATA_DIR_ENV} to a folder laid "
        "out as <benchmark>/<source>/<file> (e.g. nl4opt/sirl/NL4OPT.jsonl), or pass path= "
        "(that folder, or the file itself)"
    )


def _locate(
    benchmark: Benchmark, version: Version, path: str | os.PathLike[str] | None, stack: ExitStack
) -> tuple[Path, str]:
    """The file to read for `version` and the label used for it in reports and meta."""
    if path is not None and Path(path).is_file():
        return Path(path), str(path)
    if version.bundled and path is None:
        resource = resources.files("or_env").joinpath("data", *version.file.split("/"))
        if not resource.is_file():
            raise DatasetError(
                f"the bundled {benchmark.name!r} problems (or_env/data/{version.file}) are "
                "missing from this installation; reinstall or-env"
            )
        return stack.enter_context(resources.as_file(resource)), version.file
    data_dir = resolve_data_dir(path)
    file = data_dir / version.file
    if not file.is_file():
        where = "path=" if path is not None else f"${DATA_DIR_ENV}"
        raise DatasetError(
            f"{benchmark.name}/{version.name}: {version.file} not found under {data_dir} "
            f"({where}); the data dir must be laid out as <benchmark>/<source>/<file>"
        )
    return file, version.file
