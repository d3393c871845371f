"""The intervener's verdict validation, the answer-leak check and the flaw taxonomy.

Table-driven: each row is a judge reply (well-formed or malformed in one way) and what
validation must make of it. No model runs here; the replies are the texts a judge could send.
"""

from __future__ import annotations

import json

import pytest

from calm.leakage import leaked_numbers, numbers_in
from calm.taxonomy import (
    CATEGORY_COMPUTATION,
    CATEGORY_DOMAIN,
    DEFAULT_TAXONOMY,
    Taxonomy,
    load_taxonomy,
)
from calm.verdict import VerdictError, VerdictRules, extract_json_object, parse_verdict

TRUTH = 10730.76923076923  # the answer of the sample brewery problem
N_TURNS = 3


def flaw(**overrides: object) -> str:
    body = {
        "flawless": False,
        "turn": 2,
        "flaw_type": "constraint_error",
        "hint": "Wait, I have not bounded the stout sales; let me check the limits again.",
        "rationale": "the 80 hl limit is missing",
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not ...})


VALID = [
    ("flawless", '{"flawless": true}', (True, None, None)),
    ("flawless with rationale", '{"flawless": true, "rationale": "fine"}', (True, None, None)),
    ("a flaw", flaw(), (False, 2, "constraint_error")),
    (
        "prose around JSON",
        f"Here is my verdict:\n{flaw()}\nThanks.",
        (False, 2, "constraint_error"),
    ),
    ("json fence", f"```json\n{flaw(turn=1)}\n```", (False, 1, "constraint_error")),
    (
        "think block first",
        f"<think>turn 3? {{no}}</think>{flaw(turn=3)}",
        (False, 3, "constraint_error"),
    ),
    (
        "last object wins",
        f'Draft: {{"flawless": true}} Final: {flaw()}',
        (False, 2, "constraint_error"),
    ),
    ("type normalised", flaw(flaw_type="Variable-Type Error"), (False, 2, "variable_type_error")),
    ("turn as digit string", flaw(turn="3"), (False, 3, "constraint_error")),
    ("turn as integral float", flaw(turn=1.0), (False, 1, "constraint_error")),
    (
        "problem data numbers are fine",
        flaw(hint="Wait, stout is capped at 80 hl."),
        (False, 2, "constraint_error"),
    ),
]


@pytest.mark.parametrize(
    ("reply", "expected"), [row[1:] for row in VALID], ids=[r[0] for r in VALID]
)
def test_valid_replies_are_accepted(reply: str, expected: tuple) -> None:
    verdict = parse_verdict(reply, n_turns=N_TURNS, ground_truth=TRUTH)
    assert (verdict.flawless, verdict.turn, verdict.flaw_type) == expected
    if not verdict.flawless:
        assert verdict.category == DEFAULT_TAXONOMY.get(verdict.flaw_type).category
        assert verdict.hint and verdict.hint == verdict.hint.strip()


MALFORMED = [
    ("empty reply", "", "empty"),
    ("prose only", "The second turn forgets the stout limit.", "no JSON object"),
    ("bad JSON", '{"flawless": false, "turn": 2, "flaw_type": constraint_error}', "no JSON object"),
    ("truncated JSON", flaw()[:40], "no JSON object"),
    ("a list, not an object", "[1, 2]", "not an object"),
    (
        "missing flawless",
        '{"turn": 2, "flaw_type": "constraint_error", "hint": "x"}',
        "lacks 'flawless'",
    ),
    ("flawless not a bool", '{"flawless": "no"}', "true or false"),
    ("missing hint", flaw(hint=...), "needs ['hint']"),
    ("missing turn and type", flaw(turn=..., flaw_type=...), "needs ['turn', 'flaw_type']"),
    ("null turn", flaw(turn=None), "needs ['turn']"),
    ("turn zero", flaw(turn=0), "out of range"),
    ("turn past the end", flaw(turn=4), "out of range: the trajectory has turns 1 to 3"),
    ("negative turn", flaw(turn=-1), "out of range"),
    ("turn as a word", flaw(turn="two"), "must be an integer"),
    ("turn as fraction", flaw(turn=1.5), "must be an integer"),
    ("turn as bool", flaw(turn=True), "not a boolean"),
    ("unknown type", flaw(flaw_type="arithmetic_slip"), "unknown flaw_type 'arithmetic_slip'"),
    ("type not a string", flaw(flaw_type=3), "must be one of"),
    ("empty hint", flaw(hint="   "), "non-empty string"),
    ("hint not a string", flaw(hint=["a"]), "non-empty string"),
    ("hint too long", flaw(hint="Wait, " + "check the constraints " * 30), "the limit is 400"),
    (
        "hint leaks the answer",
        flaw(hint="The optimum is 10730.77, fix the model."),
        "gives the answer away",
    ),
    (
        "hint leaks with separators",
        flaw(hint="It should come to $10,730.77."),
        "gives the answer away",
    ),
    ("hint leaks rounded", flaw(hint="You should get about 10731."), "gives the answer away"),
    ("hint leaks in sci notation", flaw(hint="Expect 1.073e4 or so."), "gives the answer away"),
    ("hint leaks in thousands", flaw(hint="Profit near 10.73 thousand."), "gives the answer away"),
    ("rationale not a string", flaw(rationale=5), "'rationale' must be a string"),
]


@pytest.mark.parametrize(
    ("reply", "message"), [r[1:] for r in MALFORMED], ids=[r[0] for r in MALFORMED]
)
def test_malformed_replies_are_rejected_with_a_usable_message(reply: str, message: str) -> None:
    with pytest.raises(VerdictError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_verdict(reply, n_turns=N_TURNS, ground_truth=TRUTH)


def test_a_flaw_needs_a_turn_to_point_at() -> None:
    with pytest.raises(VerdictError, match="no policy turn"):
        parse_verdict(flaw(turn=1), n_turns=0, ground_truth=TRUTH)


def test_rules_set_the_hint_limit_and_cut_the_rationale() -> None:
    rules = VerdictRules(max_hint_chars=20, max_rationale_chars=5)
    with pytest.raises(VerdictError, match="the limit is 20"):
        parse_verdict(flaw(), n_turns=3, ground_truth=TRUTH, rules=rules)
    verdict = parse_verdict(flaw(hint="Wait, check x."), n_turns=3, ground_truth=TRUTH, rules=rules)
    assert verdict.rationale == "the 8"
    with pytest.raises(ValueError, match="max_hint_chars"):
        VerdictRules(max_hint_chars=0)


def test_extract_json_object_prefers_the_whole_reply_then_fences() -> None:
    assert extract_json_object('{"a": 1}') == {"a": 1}
    fenced = 'x {"a": 1} y\n```json\n{"a": 2}\n```\n'
    assert extract_json_object(fenced) == {"a": 2}
    nested = 'so: {"flawless": false, "meta": {"x": 1}} ok'
    assert extract_json_object(nested) == {"flawless": False, "meta": {"x": 1}}


# ---------------------------------------------------------------------------- leak check
LEAKS = [
    # (hint, ground truth, leaked pieces)
    ("The answer is 135.27.", 135.27, ["135.27"]),
    ("Roughly 135 then.", 135.27, ["135"]),
    ("Expect 136.", 135.27, []),  # 0.54% away: outside the 0.5% tolerance
    ("Cost is -500 or 500.", -500.0, ["-500", "500"]),
    ("It costs −500.", -500.0, ["−500"]),
    ("1,234,567 units", 1234567.0, ["1,234,567"]),
    ("1 234 567 units", 1234567.0, ["1 234 567"]),
    ("About 1.2 million.", 1.2e6, ["1.2 million"]),
    ("About 12k.", 12000.0, ["12k"]),
    ("1.2 × 10^5 total", 1.2e5, ["1.2 × 10^5"]),
    ("1.2\\times10^{5} total", 1.2e5, ["1.2\\times10^{5}"]),
    ("A 12.5% share", 0.125, ["12.5%"]),
    ("A 12.5% share", 12.5, ["12.5%"]),
    ("Use x1 and x_12 only.", 12.0, []),  # identifiers are not numbers
    ("x >= 0 for all x", 0.0, []),  # a zero ground truth is not checked
    ("The model is infeasible.", "infeasible", ["infeasib"]),
    ("Check the bounds.", "unbounded", []),
    ("No number here.", 42.0, []),
]


@pytest.mark.parametrize(("hint", "truth", "leaks"), LEAKS)
def test_leaked_numbers(hint: str, truth: float | str, leaks: list[str]) -> None:
    assert leaked_numbers(hint, truth) == leaks


def test_numbers_in_reads_common_forms() -> None:
    found = dict(numbers_in("$1,200.50 and 3e2 and 7% and 2 billion"))
    assert found["$1,200.50"] == [1200.5]
    assert found["3e2"] == [300.0]
    assert found["7%"] == [7.0, 0.07]
    assert found["2 billion"] == [2e9, 2.0]


# ---------------------------------------------------------------------------- taxonomy
def test_default_taxonomy_has_seven_documented_types_in_two_categories() -> None:
    assert len(DEFAULT_TAXONOMY) == 7
    grouped = DEFAULT_TAXONOMY.by_category()
    assert [f.name for f in grouped[CATEGORY_COMPUTATION]] == [
        "manual_calculation",
        "output_distrust",
        "fragmented_code",
    ]
    assert len(grouped[CATEGORY_DOMAIN]) == 4
    for flaw_type in DEFAULT_TAXONOMY:
        assert flaw_type.definition and flaw_type.example and flaw_type.sample_hint
        # The sample hints obey the rules hints are held to.
        assert len(flaw_type.sample_hint) <= VerdictRules().max_hint_chars


def test_taxonomy_round_trips_through_json_and_rejects_bad_files(tmp_path) -> None:
    path = tmp_path / "taxonomy.json"
    path.write_text(DEFAULT_TAXONOMY.to_json())
    assert load_taxonomy(path).names == DEFAULT_TAXONOMY.names
    custom = Taxonomy.from_dicts([{**DEFAULT_TAXONOMY.flaws[0].to_dict(), "name": "my_flaw"}])
    verdict = parse_verdict(flaw(flaw_type="my_flaw"), n_turns=3, taxonomy=custom)
    assert verdict.flaw_type == "my_flaw"
    path.write_text('{"flaw_types": [{"name": "x", "category": "computation"}]}')
    with pytest.raises(ValueError, match="lacks"):
        load_taxonomy(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_taxonomy(path)
    flaw_type = DEFAULT_TAXONOMY.flaws[0]
    with pytest.raises(ValueError, match="unique"):
        Taxonomy([flaw_type, flaw_type])
    with pytest.raises(KeyError, match="known: manual_calculation"):
        DEFAULT_TAXONOMY.get("nope")
