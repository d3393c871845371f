"""Episode records: one JSON line per episode, appended as episodes finish.

A record holds everything needed to inspect, re-grade or curate an episode without rerunning
it (fields documented in `agents.runner`). Appending one line per finished episode makes a
run resumable: `read_records` returns the last record of every (problem id, sample), and the
runner skips those that completed. A line cut short by a crash is ignored with a warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Key = tuple[str, int]


def record_key(record: Mapping[str, Any]) -> Key:
    """The identity of an episode record: (problem id, sample index)."""
    return (str(record["problem_id"]), int(record["sample"]))


def read_records(path: str | Path) -> dict[Key, dict[str, Any]]:
    """The last record of each episode in a JSONL file (empty if the file does not exist)."""
    path = Path(path)
    records: dict[Key, dict[str, Any]] = {}
    if not path.exists():
        return records
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record_key(record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                logger.warning("%s:%d: skipping an unreadable record (%s)", path, number, exc)
                continue
            records[key] = record
    return records


def is_complete(record: Mapping[str, Any]) -> bool:
    """Whether an episode finished (an errored one is run again on resume)."""
    return record.get("status") == "ok"


class RecordWriter:
    """Appends records to a JSONL file, one flushed line each, so a crash loses at most one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO | None = self.path.open("a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        if self._handle is None:
            raise ValueError(f"the record writer for {self.path} is closed")
        self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write records to a fresh JSONL file (replacing it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
