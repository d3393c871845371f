"""The intervener's verdict: its schema, and the checks a judge's reply must pass.

A judge replies with one JSON object (prose or a ```json fence around it is tolerated; a
`<think>` block before it is dropped):

    {"flawless": true}
    {"flawless": false, "turn": 3, "flaw_type": "manual_calculation",
     "hint": "Wait, I should ...", "rationale": "optional, for the records"}

`parse_verdict` turns the reply into a `Verdict` or raises `VerdictError` saying what is
wrong in words the judge can act on (the intervener feeds it back and asks again):

- the reply holds a JSON object with a boolean `flawless`;
- for a flaw: `turn` is an integer between 1 and the number of policy turns, numbered as
  the env numbers them (`env.turn`: the first policy turn is 1); `flaw_type` is a name of
  the taxonomy (case, spaces and hyphens are normalised); `hint` is a non-empty string of at
  most `max_hint_chars` characters that does not state the ground truth
  (`calm.leakage.leaked_numbers`); `rationale`, if given, is a string (cut to
  `max_rationale_chars`, never shown to the reasoner).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from calm.leakage import DEFAULT_LEAK_REL_TOL, leaked_numbers
from calm.taxonomy import DEFAULT_TAXONOMY, Taxonomy
from or_env.errors import DataError

DEFAULT_MAX_HINT_CHARS = 400
DEFAULT_MAX_RATIONALE_CHARS = 2000

_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


class VerdictError(DataError):
    """A judge's reply is not a valid verdict; the message says what to fix."""


@dataclass(frozen=True)
class VerdictRules:
    """What a verdict must satisfy besides the schema.

    max_hint_chars: the longest hint accepted.
    leak_rel_tol: a number in the hint within this relative distance of the ground truth
        is a leak (see `calm.leakage`).
    max_rationale_chars: longer rationales are cut (they are for the records only).
    """

    max_hint_chars: int = DEFAULT_MAX_HINT_CHARS
    leak_rel_tol: float = DEFAULT_LEAK_REL_TOL
    max_rationale_chars: int = DEFAULT_MAX_RATIONALE_CHARS

    def __post_init__(self) -> None:
        if self.max_hint_chars < 1:
            raise ValueError(f"max_hint_chars must be at least 1, got {self.max_hint_chars}")
        if self.leak_rel_tol < 0:
            raise ValueError(f"leak_rel_tol must not be negative, got {self.leak_rel_tol}")


@dataclass(frozen=True)
class Verdict:
    """A validated judgement of a trajectory.

    flawless: True when the judge found no flaw (the other fields are then None).
    turn: the first flawed policy turn (1-based, as the env numbers turns).
    flaw_type / category: the taxonomy's name and category of the flaw.
    hint: the text to insert where the flawed turn began.
    rationale: the judge's short explanation (records only).
    """

    flawless: bool
    turn: int | None = None
    flaw_type: str | None = None
    category: str | None = None
    hint: str | None = None
    rationale: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_json_object(reply: str) -> dict[str, Any]:
    """The JSON object in a judge's reply: the whole reply, the last ```json fence, or else the
    last top-level `{...}` in surrounding prose that parses. Raises VerdictError if none."""
    text = _THINK_RE.sub("", reply or "").strip()
    if not text:
        raise VerdictError("the reply is empty; answer with one JSON object")
    for candidate in [text, *reversed(_FENCE_RE.findall(text))]:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
        raise VerdictError(f"the reply is JSON but a {type(value).__name__}, not an object")
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            found = value  # a later object is the judge's final word
        position = text.find("{", end)
    if found is not None:
        return found
    raise VerdictError(
        "no JSON object found in the reply; answer with one object such as "
        '{"flawless": false, "turn": 2, "flaw_type": "...", "hint": "..."}'
    )


def _flaw_name(value: Any, taxonomy: Taxonomy) -> str:
    if not isinstance(value, str) or not value.strip():
        raise VerdictError(f"'flaw_type' must be one of: {', '.join(taxonomy.names)}")
    name = re.sub(r"[\s\-]+", "_", value.strip().lower())
    if name not in taxonomy:
        raise VerdictError(
            f"unknown flaw_type {value!r}; use exactly one of: {', '.join(taxonomy.names)}"
        )
    return name


def _turn(value: Any, n_turns: int) -> int:
    if isinstance(value, bool):
        raise VerdictError("'turn' must be an integer turn number, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise VerdictError(f"'turn' must be an integer between 1 and {n_turns}, got {value!r}")
    if not 1 <= value <= n_turns:
        raise VerdictError(
            f"'turn' {value} is out of range: the trajectory has turns 1 to {n_turns}"
        )
    return value


def parse_verdict(
    reply: str,
    *,
    n_turns: int,
    ground_truth: float | str | None = None,
    taxonomy: Taxonomy = DEFAULT_TAXONOMY,
    rules: VerdictRules | None = None,
) -> Verdict:
    """Validate a judge's reply (see the module doc); raise VerdictError when it fails."""
    rules = rules or VerdictRules()
    data = extract_json_object(reply)
    if "flawless" not in data:
        raise VerdictError("the object lacks 'flawless' (true or false)")
    flawless = data["flawless"]
    if not isinstance(flawless, bool):
        raise VerdictError(f"'flawless' must be true or false, got {flawless!r}")
    rationale = data.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        raise VerdictError("'rationale' must be a string when given")
    if rationale is not None:
        rationale = rationale.strip()[: rules.max_rationale_chars]
    if flawless:
        return Verdict(True, rationale=rationale)
    if n_turns < 1:
        raise VerdictError("the trajectory has no policy turn to flag; answer flawless: true")
    missing = [key for key in ("turn", "flaw_type", "hint") if data.get(key) is None]
    if missing:
        raise VerdictError(f"a verdict with flawless: false needs {missing} as well")
    turn = _turn(data["turn"], n_turns)
    flaw = taxonomy.get(_flaw_name(data["flaw_type"], taxonomy))
    hint = data["hint"]
    if not isinstance(hint, str) or not hint.strip():
        raise VerdictError("'hint' must be a non-empty string")
    hint = hint.strip()
    if len(hint) > rules.max_hint_chars:
        raise VerdictError(
            f"the hint has {len(hint)} characters; the limit is {rules.max_hint_chars}. "
            "Point at the flaw in one or two short sentences."
        )
    leaks = leaked_numbers(hint, ground_truth, rules.leak_rel_tol)
    if leaks:
        raise VerdictError(
            f"the hint gives the answer away ({', '.join(repr(x) for x in leaks)} is the "
            "correct result or close to it); point at the flaw without stating results"
        )
    return Verdict(False, turn, flaw.name, flaw.category, hint, rationale)
