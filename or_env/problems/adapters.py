"""Source-specific row adapters: derive a question, answer or reference program from a raw row.

An adapter takes a raw record (and the folder of the file it came from) and returns a new dict
with derived fields added under names starting with "_" (the originals stay as they are). It
raises `RowError` when the row does not hold what it needs; the loader then reports the row as
broken, so an adapter never guesses an answer.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from or_env.answer_parsing import NO_OPTIMUM
from or_env.errors import DataError
from or_env.grading import GroundTruthMarker

Row = dict[str, Any]
Adapter = Callable[[Row, Path | None], Row]


class RowError(DataError):
    """A row that an adapter cannot turn into a question and an answer."""


# Key words that name an objective in ReSocratic "results" dicts ("Maximized Profit",
# "The minimum cost", "Total Number of Trips", "Objective value"...). Words such as "best" are
# left out on purpose: "The x coordinate of the best location" is a variable, not the objective.
_OBJECTIVE_KEY = re.compile(
    r"\b(maxim\w*|minim\w*|max|min|optimal|optimum|objective|total)\b", re.I
)


def _literal(value: Any, what: str) -> Any:
    """Parse a field that may hold a Python/JSON literal as a string (e.g. "{'a': '1.0'}")."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise RowError(f"cannot parse {what}: {value[:80]!r}") from exc


def resocratic_objective(row: Row, folder: Path | None = None) -> Row:
    """Pick the objective value out of a ReSocratic `results` dict (OptiBench, NL4OPT-E).

    The dict lists the optimal variable values and the objective, each under a descriptive key.
    Rule: among the entries with a numeric value, take the last one when its key names an
    objective or when no key does (ReSocratic writes the objective last); otherwise take the one
    entry whose key names an objective; if several do and the last does not, the row is
    undecidable and raises RowError.
    """
    results = _literal(row.get("results"), "results")
    if not isinstance(results, dict) or not results:
        raise RowError("field 'results' is not a non-empty dict")
    numeric: list[tuple[str, float]] = []
    for key, value in results.items():
        try:
            numeric.append((str(key), float(value)))
        except (TypeError, ValueError):
            continue
    if not numeric:
        raise RowError("no numeric entry in 'results'")
    named = [i for i, (key, _) in enumerate(numeric) if _OBJECTIVE_KEY.search(key)]
    last = len(numeric) - 1
    if last in named or not named:
        choice = last
    elif len(named) == 1:
        choice = named[0]
    else:
        keys = [numeric[i][0] for i in named]
        raise RowError(f"cannot tell which 'results' entry is the objective among {keys}")
    key, value = numeric[choice]
    return {**row, "_objective": value, "_objective_key": key}


def list_answer(row: Row, folder: Path | None = None) -> Row:
    """Unwrap OptiMind answers written as a one-element list ("[18.0]"); scalars pass through."""
    raw = row.get("answer")
    if isinstance(raw, str) and raw.strip().startswith("["):
        values = _literal(raw.strip(), "answer")
        if not isinstance(values, list) or len(values) != 1:
            raise RowError(f"answer {raw!r} is not a one-element list; a problem holds one answer")
        return {**row, "_answer": values[0]}
    return {**row, "_answer": raw}


def optimus_objective(row: Row, folder: Path | None = None) -> Row:
    """Read the objective out of an OptiMUS `solution` JSON ({"variables": ..., "objective": x})."""
    try:
        solution = json.loads(row.get("solution") or "")
    except json.JSONDecodeError as exc:
        raise RowError(f"'solution' is not JSON: {exc.msg}") from exc
    if not isinstance(solution, dict) or solution.get("objective") is None:
        raise RowError("'solution' has no objective (the source recorded no optimal solution)")
    return {**row, "_objective": solution["objective"]}


def complexor_sample(row: Row, folder: Path | None = None) -> Row:
    """Compose a ComplexOR question from the abstract description and its one sample input.

    ORThought's ComplexOR summary gives an abstract model description plus one sample
    `{"input": {name: {"value", "description"}}, "output": [objective]}`; the question shown to the
    agent is the description followed by the sample's data, and the answer is the sample output.
    """
    samples = _literal(row.get("sample"), "sample")
    if not isinstance(samples, list) or len(samples) != 1 or not isinstance(samples[0], dict):
        raise RowError("'sample' is not a list with exactly one input/output pair")
    sample = samples[0]
    inputs, output = sample.get("input"), sample.get("output")
    if not isinstance(inputs, dict) or not isinstance(output, list) or len(output) != 1:
        raise RowError("the sample needs an 'input' dict and a one-element 'output' list")
    lines = []
    for name, spec in inputs.items():
        if isinstance(spec, dict) and "value" in spec:
            note = f" ({spec['description']})" if spec.get("description") else ""
            lines.append(f"- {name}{note}: {json.dumps(spec['value'])}")
        else:
            lines.append(f"- {name}: {json.dumps(spec)}")
    description = str(row.get("description") or "").strip()
    if not description:
        raise RowError("no description")
    question = description + "\n\nThe input data are:\n" + "\n".join(lines)
    return {**row, "_question": question, "_answer": output[0]}


_PYTHON_BLOCK = re.compile(r"```python[^\n]*\n(.*?)```", re.S)


def sirl_reference_program(row: Row, folder: Path | None = None) -> Row:
    """Keep the gurobipy program of a SIRL RL row: the last ```python block of `output`.

    Some outputs hold a repair dialogue with several blocks; the last one is the final program.
    A row without a block still loads (its question and answer are fine), just without a program.
    """
    blocks = _PYTHON_BLOCK.findall(str(row.get("output") or ""))
    if not blocks:
        return dict(row)
    return {**row, "_reference_code": blocks[-1].strip() + "\n"}


#: SIRL's corrected MAMO files write "no optimal solution" as -9999 (EasyLP record 630,
#: ComplexLP record 70, 1-based lines); SIRL's check_result.py reads any en_answer containing
#: "-9999" as "no optimal solution". Matched as numbers here, so -99990 stays a number.
SIRL_FIXED_NO_OPTIMUM_VALUES = (-9999.0, -99999.0)


def sirl_fixed(row: Row, folder: Path | None = None) -> Row:
    """SIRL's corrected MAMO copies: their -9999 marker, and one misspelt key.

    `_answer` is `en_answer`, or the NO_OPTIMUM marker where en_answer is -9999 or -99999 (a
    `GroundTruthMarker` that keeps the value written, so a strict preset whose source compares
    -9999 as a number still can). The ComplexLP file spells `orginal_answer` on one record; it
    is folded into `original_answer`.
    """
    if "orginal_answer" in row and "original_answer" not in row:
        row = {**row, "original_answer": row["orginal_answer"]}
    answer = row.get("en_answer")
    try:
        marker = float(str(answer).strip()) in SIRL_FIXED_NO_OPTIMUM_VALUES
    except ValueError:
        marker = False
    return {**row, "_answer": GroundTruthMarker(NO_OPTIMUM, answer) if marker else answer}


def bundled_reference_program(row: Row, folder: Path | None = None) -> Row:
    """Attach the source of the reference program named by `reference` (same folder)."""
    name = row.get("reference")
    if not name:
        return dict(row)
    if folder is None or Path(str(name)).name != str(name):
        raise RowError(f"reference {name!r} must be a file name in the data folder")
    try:
        code = (folder / str(name)).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RowError(f"reference program {name!r} not found next to the problems file") from exc
    return {**row, "_reference_code": code}
