"""What a load did: loaded count, skipped and excluded rows, and the error for broken rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from or_env.errors import DataError


@dataclass(frozen=True)
class SkippedRow:
    """One source record that did not become a `Problem`, with where it is and why.

    Attributes:
        source: the file (as given, or relative to the data dir) or dataset the record is in.
        record: 1-based record number (the line number for JSON Lines, else the item/row number).
        line: 1-based line of the file where the record starts, when the format has lines.
        key: the record's key in a JSON object keyed by id, else None.
        reason: what is wrong with it (or why the source marks it unusable).
    """

    source: str
    record: int
    line: int | None
    reason: str
    key: str | None = None

    @property
    def where(self) -> str:
        """`file:line` where there is a line, else `file[key]` or `file[record N]`."""
        if self.line is not None:
            return f"{self.source}:{self.line}"
        if self.key is not None:
            return f"{self.source}[{self.key}]"
        return f"{self.source}[record {self.record}]"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class DatasetError(DataError):
    """A dataset that cannot be read, or (with on_error="raise") one broken row in it.

    For a broken row, `row` holds its location and reason and the message starts with `file:line`.
    """

    def __init__(self, message: str, *, row: SkippedRow | None = None) -> None:
        super().__init__(message)
        self.row = row


@dataclass
class LoadReport:
    """The outcome of one load: how many problems came out and which records did not, and why.

    `skipped` are broken rows (no question, unreadable answer, bad JSON line, duplicate id...);
    `excluded` are rows the source itself marks as unusable (e.g. "Wrong problem"): they are
    left out by design and never raise.
    """

    source: str
    benchmark: str
    version: str | None = None
    records: int = 0
    loaded: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    excluded: list[SkippedRow] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        label = self.benchmark if self.version is None else f"{self.benchmark}/{self.version}"
        text = f"{label}: {self.loaded} of {self.records} records loaded from {self.source}"
        if self.skipped:
            text += f", {len(self.skipped)} broken skipped (first: {self.skipped[0]})"
        if self.excluded:
            text += f", {len(self.excluded)} excluded as the source marks them unusable"
        return text
