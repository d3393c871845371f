"""Turning raw records into `Problem`s under a field mapping, with the broken-row policy.

A record becomes a Problem only when it has a non-empty question, a readable answer and a unique
id; anything else is a broken row: reported (file:line and reason) and skipped, or raised as a
`DatasetError` when on_error="raise". Rows the source itself marks unusable are excluded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from or_env.grading import NO_OPTIMUM, GroundTruthError, parse_ground_truth
from or_env.problems.adapters import RowError
from or_env.problems.readers import RawRecord
from or_env.problems.record import Problem
from or_env.problems.report import DatasetError, LoadReport, SkippedRow
from or_env.problems.spec import Version

logger = logging.getLogger(__name__)

OnError = Literal["skip", "raise"]
CUSTOM_VERSION = "file"


def build_problems(
    records: Iterable[RawRecord],
    version: Version,
    *,
    benchmark: str,
    source: str,
    folder: Path | None,
    on_error: OnError,
    warn: bool,
) -> tuple[list[Problem], LoadReport]:
    """Build the problems of `records` read for `version`; see the module docstring.

    `folder` is where the source file lives (adapters may read files next to it); `warn` logs a
    warning with the count when rows were skipped.
    """
    custom = version.name == CUSTOM_VERSION
    report = LoadReport(
        source=source, benchmark=benchmark, version=None if custom else version.name
    )
    prefix = version.id_prefix if version.id_prefix is not None else f"{benchmark}-{version.name}-"
    first_seen: dict[str, str] = {}
    problems: list[Problem] = []
    for record in records:
        report.records += 1
        try:
            if record.error is not None:
                raise RowError(record.error)
            row: dict[str, Any] = record.data or {}
            excluded = [(f, v) for f, v in version.exclude if str(row.get(f, "")).strip() == v]
            if excluded:
                field, value = excluded[0]
                report.excluded.append(_skipped(record, source, f"source marks {field}={value!r}"))
                continue
            if version.adapter is not None:
                row = version.adapter(row, folder)
            problem = _to_problem(row, record, version, prefix, benchmark, source)
            where = _skipped(record, source, "").where
            if problem.id in first_seen:
                raise RowError(f"duplicate id {problem.id!r} (first at {first_seen[problem.id]})")
            first_seen[problem.id] = where
        except RowError as exc:
            skipped = _skipped(record, source, str(exc))
            if on_error == "raise":
                raise DatasetError(str(skipped), row=skipped) from exc
            report.skipped.append(skipped)
            continue
        problems.append(problem)
    report.loaded = len(problems)
    if not problems:
        detail = f"; first: {report.skipped[0]}" if report.skipped else ""
        raise DatasetError(
            f"no problems could be read from {source} ({report.records} records{detail}); "
            "check the field mapping (fields=) and the format"
        )
    if report.skipped and warn:
        logger.warning(
            "%s: skipped %d broken row(s) of %d (first: %s); pass on_error='raise' to stop at "
            "the first, or use load_problems_with_report for all",
            source,
            len(report.skipped),
            report.records,
            report.skipped[0],
        )
    return problems, report


def _skipped(record: RawRecord, source: str, reason: str) -> SkippedRow:
    return SkippedRow(
        source=source, record=record.number, line=record.line, reason=reason, key=record.key
    )


def _to_problem(
    row: dict[str, Any],
    record: RawRecord,
    version: Version,
    prefix: str,
    benchmark: str,
    source: str,
) -> Problem:
    fields = version.fields
    question = row.get(fields.question)
    if question is None or not str(question).strip():
        state = "missing" if fields.question not in row else "empty"
        raise RowError(f"question field {fields.question!r} is {state}")
    if fields.answer not in row:
        raise RowError(f"answer field {fields.answer!r} is missing")
    raw_answer = row[fields.answer]
    if raw_answer is None and not version.null_means_no_optimum:
        raise RowError(f"answer field {fields.answer!r} is null")
    try:
        answer = NO_OPTIMUM if raw_answer is None else parse_ground_truth(raw_answer)
    except GroundTruthError as exc:
        raise RowError(f"unreadable answer {raw_answer!r}: {exc}") from exc
    if fields.id is not None:
        raw_id = row.get(fields.id)
        if raw_id is None or not str(raw_id).strip():
            raise RowError(f"id field {fields.id!r} is missing or empty")
        local_id = str(raw_id).strip()
    else:
        local_id = record.key if record.key is not None else str(record.number)
    meta: dict[str, Any] = {"version": version.name, "source": source, "record": record.number}
    if record.line is not None:
        meta["line"] = record.line
    meta["answer_raw"] = raw_answer
    for name in version.meta_fields:
        if name in row:
            meta[name.lstrip("_")] = row[name]
    return Problem(
        id=prefix + local_id,
        question=str(question).strip(),
        answer=answer,
        benchmark=benchmark,
        meta=meta,
    )
