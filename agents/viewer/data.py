"""The data a viewer page is built from: a run folder read into an index and episode details.

`load_run(run_dir)` reads an `or-env eval` or `or-env calm curate` run folder (the last record
of every episode in `episodes.jsonl`, as the reports read it, plus `results.json` /
`results.md` or `report.json` / `report.md`, and `run_config.json`) into a `RunView`:

- `rows`: one `EpisodeRow` per episode, what the list, the filters and the counts use;
- `problems`: the problem texts (the first user message), once per problem id;
- `counts`: termination reasons, failure reasons, execution classes, outcomes and (CALM)
  final judgements of all the episodes; they equal the run's own reports (the tests check
  them against results.json and report.json);
- `report`: the run's markdown report as blocks (headings, paragraphs, tables, images with
  their PNG embedded), rendered by the page without any HTML from the file;
- `records`: the episode records themselves, each shown when its episode is opened.

`select(view, ...)` is the filter the page applies (benchmark, outcome, termination reason,
intervened, final judgement, free text in the problem); the page's script implements the
same rules on the same rows.

An execution's class (`execution_class`): "ok" (exit status 0), "program_error" (the
program failed: a non-zero exit status), "timeout" (killed at the time limit) or
"sandbox_<failure>" (the sandbox itself failed: "sandbox_lost", "sandbox_busy", ...).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agents.metrics import failure_reason, label_of, timed_out_executions
from agents.records import read_records
from agents.run_folder import CONFIG_FILE, EPISODES_FILE

logger = logging.getLogger(__name__)

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RESULTS_PNG = "results.png"
CALM_REPORT_JSON = "report.json"
CALM_REPORT_MD = "report.md"
# PNGs referenced by a report are embedded up to this size (a report's own plots are small).
MAX_EMBEDDED_IMAGE_BYTES = 2_000_000
OUTCOMES = ("correct", "wrong", "error")


class RunFolderError(ValueError):
    """The folder is not a run folder the viewer can show."""


@dataclass
class EpisodeRow:
    """What the episode list, the filters and the counts know of one episode.

    index: position in `RunView.records` (the page opens episode `index`).
    benchmark: the benchmark label as the reports use it (`agents.metrics.label_of`).
    outcome: "correct", "wrong" (ran, not correct) or "error" (failed to run).
    reason: why it is not correct (`agents.metrics.failure_reason`), None when correct.
    executions_by_class: the episode's executions counted by `execution_class`.
    interventions: CALM hints given (0 for eval runs). final: CALM's final judgement
        (None for eval runs). kept: CALM kept it (correct and judged flawless).
    problem: index into `RunView.problems`.
    """

    index: int
    problem_id: str
    benchmark: str
    sample: int
    status: str
    outcome: str
    reward: float
    termination: str
    reason: str | None
    turns: int
    generated_turns: int
    executions: int
    wall_s: float | None
    completion_tokens: int | None
    executions_by_class: dict[str, int]
    timeouts: int
    interventions: int
    final: str | None
    kept: bool
    problem: int

    @property
    def intervened(self) -> bool:
        return self.interventions > 0


COLUMNS = tuple(f.name for f in fields(EpisodeRow))


@dataclass
class RunView:
    """A run folder read for the viewer (see the module doc)."""

    kind: str  # "eval" or "calm"
    name: str
    title: str
    settings: dict[str, Any]
    config: dict[str, Any]
    report: list[dict[str, Any]]
    rows: list[EpisodeRow]
    problems: list[str]
    problem_ids: list[str]
    records: list[dict[str, Any]]
    counts: dict[str, Any] = field(default_factory=dict)
    facets: dict[str, list[str]] = field(default_factory=dict)

    def index(self) -> dict[str, Any]:
        """The page's index: everything but the episode records (rows as arrays)."""
        return {
            "format": 1,
            "kind": self.kind,
            "name": self.name,
            "title": self.title,
            "settings": self.settings,
            "config": self.config,
            "report": self.report,
            "counts": self.counts,
            "facets": self.facets,
            "columns": list(COLUMNS),
            "rows": [[getattr(row, c) for c in COLUMNS] for row in self.rows],
            "problems": self.problems,
            "problem_ids": self.problem_ids,
        }


# ------------------------------------------------------------------------ classification
def execution_class(execution: Mapping[str, Any]) -> str:
    """The class of one execution (see the module doc)."""
    if execution.get("sandbox_error") or execution.get("failure"):
        return f"sandbox_{execution.get('failure') or 'error'}"
    if execution.get("timed_out"):
        return "timeout"
    if execution.get("exit_code") == 0:
        return "ok"
    return "program_error"


def executions_by_class(record: Mapping[str, Any]) -> dict[str, int]:
    """The episode's executions (every generated turn's, also those CALM dropped) by class."""
    counts = Counter(
        execution_class(step["execution"])
        for step in record.get("steps") or []
        if step.get("execution")
    )
    return dict(sorted(counts.items()))


def outcome(record: Mapping[str, Any]) -> str:
    """ "correct", "wrong" (ran, not correct) or "error" (failed to run)."""
    if record.get("status") != "ok":
        return "error"
    return "correct" if record.get("correct") else "wrong"


def is_kept(record: Mapping[str, Any]) -> bool:
    """CALM's rule for a golden trajectory (`calm.report.is_golden`): it ran, ended correct,
    and its final judgement is flawless."""
    calm = record.get("calm") or {}
    return (
        record.get("status") == "ok"
        and bool(record.get("correct"))
        and calm.get("final") == "flawless"
    )


def problem_text(record: Mapping[str, Any]) -> str:
    """The problem as the episode posed it: its first user message (the prompt)."""
    for message in record.get("messages") or []:
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


# ------------------------------------------------------------------------ markdown
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)$")
_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")


def inline_spans(text: str) -> list[list[str]]:
    """Markdown inline text as [kind, text] spans: "text", "code" (`x`), "strong" (**x**)."""
    spans: list[list[str]] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            spans.append(["text", text[position : match.start()]])
        if match.group(1) is not None:
            spans.append(["code", match.group(1)])
        else:
            spans.append(["strong", match.group(2)])
        position = match.end()
    if position < len(text):
        spans.append(["text", text[position:]])
    return spans


def _cells(line: str) -> list[list[list[str]]]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [inline_spans(cell.strip()) for cell in inner.split("|")]


def _image_uri(folder: Path | None, src: str) -> str | None:
    if folder is None or "/" in src or "\\" in src or not src.lower().endswith(".png"):
        return None
    path = folder / src
    if not path.is_file() or path.stat().st_size > MAX_EMBEDDED_IMAGE_BYTES:
        return None
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def markdown_blocks(text: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """The markdown the reports write (headings, paragraphs, pipe tables, images) as blocks:
    {"type": "heading", "level", "spans"}, {"type": "paragraph", "spans"},
    {"type": "table", "header", "rows"} (cells are span lists), {"type": "image", "alt",
    "src"} (a PNG beside the report, embedded as a data URI; left out when absent)."""
    blocks: list[dict[str, Any]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            heading = line[level:].strip()
            blocks.append(
                {"type": "heading", "level": min(level, 6), "spans": inline_spans(heading)}
            )
            i += 1
            continue
        image = _IMAGE.match(line)
        if image:
            uri = _image_uri(folder, image["src"])
            if uri is not None:
                blocks.append({"type": "image", "alt": image["alt"], "src": uri})
            i += 1
            continue
        if line.startswith("|"):
            table = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                table.append(lines[i].strip())
                i += 1
            rows = [r for r in table if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", r)]
            if rows:
                blocks.append(
                    {
                        "type": "table",
                        "header": _cells(rows[0]),
                        "rows": [_cells(r) for r in rows[1:]],
                    }
                )
            continue
        paragraph = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("#", "|")):
            paragraph.append(lines[i].strip())
            i += 1
        blocks.append({"type": "paragraph", "spans": inline_spans(" ".join(paragraph))})
    return blocks


def _without_settings(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's blocks less its own settings (the page shows them in a table): results.md's
    "Settings: ..." paragraph, report.md's "Settings" section."""
    kept: list[dict[str, Any]] = []
    skipping = False
    for block in blocks:
        text = "".join(span[1] for span in block.get("spans", []))
        if block["type"] == "heading":
            skipping = text.strip().lower() == "settings"
            if skipping:
                continue
        own_table = skipping and block["type"] == "table"
        own_line = block["type"] == "paragraph" and text.startswith("Settings: ")
        if own_table or own_line:
            continue
        kept.append(block)
    return kept


# ------------------------------------------------------------------------ loading
def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("%s: unreadable (%s); the viewer leaves it out", path, exc)
        return None
    return value if isinstance(value, dict) else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except OSError as exc:
        logger.warning("%s: unreadable (%s); the viewer leaves it out", path, exc)
        return None


def _model_of(records: Sequence[Mapping[str, Any]]) -> str | None:
    for record in records:
        policy = record.get("policy") or {}
        name = policy.get("model") or policy.get("source") or policy.get("policy")
        if name:
            return str(name)
    return None


def _row(index: int, record: Mapping[str, Any], label: str, problem: int) -> EpisodeRow:
    calm = record.get("calm")
    timings = record.get("timings") or {}
    tokens = record.get("tokens") or {}
    return EpisodeRow(
        index=index,
        problem_id=str(record.get("problem_id")),
        benchmark=label,
        sample=int(record.get("sample") or 0),
        status=str(record.get("status")),
        outcome=outcome(record),
        reward=float(record.get("reward") or 0.0),
        termination=str(record.get("termination_reason")),
        reason=failure_reason(record),
        turns=int(record.get("turns") or 0),
        generated_turns=int(record.get("generated_turns") or record.get("turns") or 0),
        executions=int(record.get("executions") or 0),
        wall_s=timings.get("wall_s"),
        completion_tokens=tokens.get("completion"),
        executions_by_class=executions_by_class(record),
        timeouts=timed_out_executions(record),
        interventions=len((calm or {}).get("interventions") or []),
        final=(calm or {}).get("final", "not_judged") if calm is not None else None,
        kept=is_kept(record),
        problem=problem,
    )


def count_rows(rows: Iterable[EpisodeRow]) -> dict[str, Any]:
    """The counts the overview shows, over `rows` (see the module doc)."""
    rows = list(rows)
    executions: Counter[str] = Counter()
    for row in rows:
        executions.update(row.executions_by_class)
    counts: dict[str, Any] = {
        "episodes": len(rows),
        "problems": len({row.problem_id for row in rows}),
        "outcomes": {name: sum(1 for r in rows if r.outcome == name) for name in OUTCOMES},
        "termination_reasons": dict(Counter(r.termination for r in rows).most_common()),
        "failure_reasons": dict(Counter(r.reason for r in rows if r.reason).most_common()),
        "execution_classes": dict(executions.most_common()),
        "executions": sum(executions.values()),
        "timeouts": sum(1 for r in rows if r.timeouts),
        "timed_out_executions": sum(r.timeouts for r in rows),
    }
    if any(r.final is not None for r in rows):
        finished = [r for r in rows if r.status == "ok"]
        counts["final_status"] = dict(
            sorted(Counter(r.final or "not_judged" for r in finished).items())
        )
        counts["intervened"] = sum(1 for r in finished if r.intervened)
        counts["interventions"] = sum(r.interventions for r in finished)
        counts["kept"] = sum(1 for r in rows if r.kept)
    return counts


def load_run(run_dir: str | Path) -> RunView:
    """Read an eval or CALM run folder (see the module doc)."""
    folder = Path(run_dir)
    episodes = folder / EPISODES_FILE
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: no such folder")
    if not episodes.is_file():
        raise RunFolderError(f"{folder} is not a run folder: it has no {EPISODES_FILE}")
    records = list(read_records(episodes).values())
    calm_report = _read_json(folder / CALM_REPORT_JSON)
    kind = "calm" if calm_report is not None or any("calm" in r for r in records) else "eval"
    results = _read_json(folder / RESULTS_JSON) or {}
    config = _read_json(folder / CONFIG_FILE) or {}
    if kind == "calm":
        settings = dict((calm_report or {}).get("settings") or {})
        markdown = _read_text(folder / CALM_REPORT_MD)
        reasoner = settings.get("reasoner")
        model = reasoner.get("model") if isinstance(reasoner, dict) else _model_of(records)
        title = f"CALM curation: {model or folder.name}"
    else:
        settings = dict(results.get("settings") or {})
        markdown = _read_text(folder / RESULTS_MD)
        title = f"Evaluation of {results.get('model') or _model_of(records) or folder.name}"
    report = _without_settings(markdown_blocks(markdown, folder)) if markdown else []
    if kind == "eval" and report:
        plot = _image_uri(folder, RESULTS_PNG)
        if plot is not None:
            # After the main table (the first table), as results.md's reader sees the plot.
            first_table = next((i for i, b in enumerate(report) if b["type"] == "table"), None)
            at = len(report) if first_table is None else first_table + 1
            report.insert(at, {"type": "image", "alt": "pass@k by benchmark", "src": plot})

    versions: dict[str, set[str | None]] = {}
    for record in records:
        versions.setdefault(str(record.get("benchmark")), set()).add(record.get("version"))
    problem_index: dict[str, int] = {}
    problems: list[str] = []
    problem_ids: list[str] = []
    rows = []
    for index, record in enumerate(records):
        pid = str(record.get("problem_id"))
        if pid not in problem_index:
            problem_index[pid] = len(problems)
            problems.append(problem_text(record))
            problem_ids.append(pid)
        rows.append(_row(index, record, label_of(record, versions), problem_index[pid]))
    view = RunView(
        kind=kind,
        name=folder.resolve().name,
        title=title,
        settings=settings,
        config=config,
        report=report,
        rows=rows,
        problems=problems,
        problem_ids=problem_ids,
        records=records,
    )
    view.counts = count_rows(rows)
    view.facets = {
        "benchmark": list(dict.fromkeys(r.benchmark for r in rows)),
        "outcome": [o for o in OUTCOMES if view.counts["outcomes"][o]],
        "termination": sorted({r.termination for r in rows}),
        "final": sorted({r.final for r in rows if r.final is not None}),
    }
    return view


# ------------------------------------------------------------------------ filtering
def search_terms(query: str) -> list[str]:
    """The words of a free-text query, lower-cased; an episode matches when all occur."""
    return query.lower().split()


def select(
    view: RunView,
    *,
    benchmark: str | None = None,
    outcome: str | None = None,
    termination: str | None = None,
    intervened: bool | None = None,
    final: str | None = None,
    query: str = "",
) -> list[EpisodeRow]:
    """The rows the page shows for these filters (None / "" = any).

    outcome: "correct", "wrong" (not correct, also those that failed to run) or "error"
    (failed to run). query: every word occurs (case-insensitively) in the problem's text or
    id.
    """
    terms = search_terms(query)
    haystacks = [
        f"{text}\n{pid}".lower() for text, pid in zip(view.problems, view.problem_ids, strict=True)
    ]
    chosen = []
    for row in view.rows:
        if benchmark is not None and row.benchmark != benchmark:
            continue
        if outcome == "correct" and row.outcome != "correct":
            continue
        if outcome == "wrong" and row.outcome == "correct":
            continue
        if outcome == "error" and row.outcome != "error":
            continue
        if termination is not None and row.termination != termination:
            continue
        if intervened is not None and row.intervened != intervened:
            continue
        if final is not None and row.final != final:
            continue
        if terms and not all(t in haystacks[row.problem] for t in terms):
            continue
        chosen.append(row)
    return chosen


def row_dict(row: EpisodeRow) -> dict[str, Any]:
    """A row as a plain dict (with `intervened`)."""
    return {**asdict(row), "intervened": row.intervened}
