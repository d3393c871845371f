"""Reading records out of JSON Lines, JSON (array or object keyed by id), CSV and parquet files.

Readers yield one `RawRecord` per record, with its position, so that a broken record can be
reported as `file:line`. A record that cannot be decoded (a bad JSON line, a line that is not an
object) is yielded with `error` set instead of raising, so the caller decides whether to skip or
stop; a file that cannot be read at all raises `DatasetError`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from or_env.errors import MissingExtraError
from or_env.problems.report import DatasetError

FORMATS = ("jsonl", "json", "json-dict", "csv", "parquet")
DATA_EXTRA_HINT = "pip install 'or-env[data]'"


class MissingDependencyError(MissingExtraError):
    """An optional dependency (an extra of or-env) is needed for this file or dataset."""


@dataclass(frozen=True)
class RawRecord:
    """One record as read from a source, before any field mapping.

    `number` is the 1-based line number for JSON Lines and the 1-based item/row number otherwise;
    `line` is where the record starts in the file when known; `key` is the record's key in a JSON
    object keyed by id. Exactly one of `data` and `error` is set.
    """

    number: int
    line: int | None
    data: dict[str, Any] | None
    error: str | None = None
    key: str | None = None


def detect_format(path: Path) -> str:
    """Guess the format from the file name; `.json` files are sniffed (many are JSON Lines)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".json":
        return _sniff_json(path)
    raise DatasetError(
        f"cannot tell the format of {path}: pass format= as one of {', '.join(FORMATS)}"
    )


def _sniff_json(path: Path) -> str:
    text = _read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # Several benchmark files named .json hold one JSON object per line.
        if exc.msg == "Extra data":
            return "jsonl"
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if isinstance(value, list):
        return "json"
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return "json-dict"
    if isinstance(value, dict):
        return "jsonl"  # a single JSON object on one line is a one-record JSON Lines file
    raise DatasetError(f"{path}: expected a JSON array or an object of records")


def read_records(path: Path, fmt: str) -> Iterator[RawRecord]:
    """Yield the records of `path` read as `fmt` (one of FORMATS)."""
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "json":
        return _read_json_array(path)
    if fmt == "json-dict":
        return _read_json_dict(path)
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "parquet":
        return _read_parquet(path)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: some published files start with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DatasetError(f"file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _object_or_error(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(value, dict):
        return value, None
    return None, f"record is a JSON {type(value).__name__}, not an object"


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    for number, text in enumerate(_read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRecord(number, number, None, f"bad JSON line: {exc.msg} (column {exc.colno})")
            continue
        data, error = _object_or_error(value)
        yield RawRecord(number, number, data, error)


def _read_json_array(path: Path) -> Iterator[RawRecord]:
    # Decode item by item (instead of json.load) to know the line each item starts on.
    text = _read_text(path)
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise DatasetError(f"{path}: expected a JSON array of records")
    pos = _skip_ws(text, pos + 1)
    number, line, counted = 0, 1, 0
    while pos < len(text) and text[pos] != "]":
        number += 1
        line += text.count("\n", counted, pos)  # incremental, so long files stay linear
        counted = pos
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            # Past a broken item the rest of the array cannot be located reliably.
            raise DatasetError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
        data, error = _object_or_error(value)
        yield RawRecord(number, line, data, error)
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            line = text.count("\n", 0, pos) + 1
            raise DatasetError(f"{path}:{line}: expected ',' or ']' in the JSON array")
    if pos >= len(text):
        raise DatasetError(f"{path}: JSON array is not closed")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_json_dict(path: Path) -> Iterator[RawRecord]:
    try:
        value = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise DatasetError(f"{path}: expected a JSON object mapping ids to records")
    for number, (key, item) in enumerate(value.items(), start=1):
        data, error = _object_or_error(item)
        yield RawRecord(number, None, data, error, key=str(key))


def _read_csv(path: Path) -> Iterator[RawRecord]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise DatasetError(f"file not found: {path}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}:1: cannot read the CSV header: {exc}") from exc
        number = 0
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DatasetError(f"{path}:{start}: cannot read CSV: {exc}") from exc
            if not any(cell.strip() for cell in cells):
                continue
            number += 1
            if len(cells) != len(header):
                error = f"row has {len(cells)} cells, the header has {len(header)}"
                yield RawRecord(number, start, None, error)
                continue
            yield RawRecord(number, start, dict(zip(header, cells, strict=True)))


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading parquet ({path.name}) needs pyarrow: {DATA_EXTRA_HINT}"
        ) from exc
    if not path.is_file():
        raise DatasetError(f"file not found: {path}")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DatasetError(f"{path}: cannot read parquet: {exc}") from exc
    for number, row in enumerate(rows, start=1):
        yield RawRecord(number, None, row)
