"""The flaw taxonomy of CALM: what an intervener looks for in a reasoner's trajectory.

The CALM paper (arXiv 2510.04204) sorts the flaws of reasoning models on optimisation
modeling into two categories:

- computation-driven reasoning flaws (`CATEGORY_COMPUTATION`): the model has a code
  interpreter but reasons around it: it calculates by hand, ignores or second-guesses what
  its program printed, or writes code that cannot run on its own;
- domain-knowledge flaws (`CATEGORY_DOMAIN`): the mathematical model itself is wrong: the
  formulation, the constraints, the variable types, or a program that no longer matches the
  model the text states.

`DEFAULT_TAXONOMY` holds the seven flaw types below as data. Each has a `name` (the label
the judge answers with), its `category`, a `definition`, an `example` of the flaw and a
`sample_hint` that shows the kind of hint meant: short, in the solver's own voice, pointing
at the flaw without giving the answer. A project can use its own taxonomy: write one as
JSON (`Taxonomy.to_json` shows the layout) and load it with `load_taxonomy`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CATEGORY_COMPUTATION = "computation"
CATEGORY_DOMAIN = "domain"
CATEGORY_TITLES = {
    CATEGORY_COMPUTATION: "Computation-driven reasoning flaws",
    CATEGORY_DOMAIN: "Domain-knowledge flaws",
}
_REQUIRED = ("name", "category", "definition", "example", "sample_hint")


@dataclass(frozen=True)
class FlawType:
    """One kind of flaw the intervener can name.

    name: a snake_case label, the value of `flaw_type` in a verdict.
    category: `CATEGORY_COMPUTATION` or `CATEGORY_DOMAIN`.
    definition: what counts as this flaw, written for the judge.
    example: a short trajectory excerpt showing it.
    sample_hint: a hint of the intended kind (short, first person, no answer in it).
    """

    name: str
    category: str
    definition: str
    example: str
    sample_hint: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Taxonomy:
    """An ordered set of flaw types, looked up by name (see the module doc)."""

    def __init__(self, flaws: Iterable[FlawType]) -> None:
        self.flaws: tuple[FlawType, ...] = tuple(flaws)
        if not self.flaws:
            raise ValueError("a taxonomy needs at least one flaw type")
        names = [flaw.name for flaw in self.flaws]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"flaw type names must be unique; repeated: {duplicates}")
        for flaw in self.flaws:
            if flaw.category not in CATEGORY_TITLES:
                raise ValueError(
                    f"flaw type {flaw.name!r} has category {flaw.category!r}; "
                    f"expected one of {sorted(CATEGORY_TITLES)}"
                )
        self._by_name = {flaw.name: flaw for flaw in self.flaws}

    def __iter__(self) -> Iterator[FlawType]:
        return iter(self.flaws)

    def __len__(self) -> int:
        return len(self.flaws)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [flaw.name for flaw in self.flaws]

    def get(self, name: str) -> FlawType:
        """The flaw type called `name`; KeyError naming the known ones otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown flaw type {name!r}; known: {', '.join(self.names)}") from None

    def by_category(self) -> dict[str, list[FlawType]]:
        grouped: dict[str, list[FlawType]] = {category: [] for category in CATEGORY_TITLES}
        for flaw in self.flaws:
            grouped[flaw.category].append(flaw)
        return {category: flaws for category, flaws in grouped.items() if flaws}

    def to_json(self) -> str:
        return json.dumps({"flaw_types": [f.to_dict() for f in self.flaws]}, indent=2) + "\n"

    @classmethod
    def from_dicts(cls, rows: Iterable[Mapping[str, Any]]) -> Taxonomy:
        flaws = []
        for number, row in enumerate(rows, 1):
            missing = [key for key in _REQUIRED if not str(row.get(key) or "").strip()]
            if missing:
                raise ValueError(f"flaw type #{number} lacks {missing}; each needs {_REQUIRED}")
            flaws.append(FlawType(**{key: str(row[key]).strip() for key in _REQUIRED}))
        return cls(flaws)


def load_taxonomy(path: str | Path) -> Taxonomy:
    """A taxonomy from a JSON file: `{"flaw_types": [{name, category, definition, ...}]}`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); see Taxonomy.to_json") from exc
    rows = data.get("flaw_types") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list under 'flaw_types'; see Taxonomy.to_json")
    return Taxonomy.from_dicts(rows)


DEFAULT_TAXONOMY = Taxonomy(
    [
        FlawType(
            name="manual_calculation",
            category=CATEGORY_COMPUTATION,
            definition=(
                "The solver computes something by hand or by mental enumeration (objective "
                "values, vertex checks, sums over many terms, trial and error over integer "
                "choices) that it should have computed by running code with a solver, or it "
                "answers without having run any model."
            ),
            example=(
                "'Checking the corners: (0, 40) gives 1200, (30, 10) gives 1150, so the "
                "maximum is 1200.' -- no program was run."
            ),
            sample_hint=(
                "Wait, I am evaluating candidate solutions by hand. I should write the model "
                "in pulp and let the solver find the optimum."
            ),
        ),
        FlawType(
            name="output_distrust",
            category=CATEGORY_COMPUTATION,
            definition=(
                "The solver ignores, overrides or second-guesses what its program printed: it "
                "reports a number the output does not support, replaces the solver's result "
                "with a hand calculation, or carries on as if an error or an 'Infeasible' "
                "status had not been printed."
            ),
            example=(
                "The output shows 'Status: Optimal, objective 8450.0', and the next turn says "
                "'this seems too high, the answer is probably 8000'."
            ),
            sample_hint=(
                "Wait, the solver reported an optimal status. If I doubt its value I should "
                "check the model in code, not replace the result by a guess."
            ),
        ),
        FlawType(
            name="fragmented_code",
            category=CATEGORY_COMPUTATION,
            definition=(
                "A code block cannot run on its own: it uses variables, imports or functions "
                "defined only in an earlier block (every block runs as a fresh program), is "
                "cut off, or relies on state that does not exist."
            ),
            example=(
                "Turn 2 defines `model` and `x`; turn 3's block is only "
                "`model += x[0] <= 10; model.solve()` and fails with NameError."
            ),
            sample_hint=(
                "Wait, each code block runs as a separate program, so I must write the whole "
                "model again, with its imports and data, in one block."
            ),
        ),
        FlawType(
            name="wrong_formulation",
            category=CATEGORY_DOMAIN,
            definition=(
                "The mathematical model is wrong at its core: wrong decision variables, an "
                "objective with the wrong sense (min vs max), wrong coefficients or wrong "
                "quantity, or a structure that does not describe the problem (e.g. a "
                "single-period model for a multi-period problem)."
            ),
            example=(
                "The question asks to minimise total cost, and the model maximises profit "
                "using the selling prices."
            ),
            sample_hint=(
                "Wait, let me reread what the question asks to optimise; my objective may "
                "not measure that quantity."
            ),
        ),
        FlawType(
            name="constraint_error",
            category=CATEGORY_DOMAIN,
            definition=(
                "A constraint stated in the problem is missing, has the wrong direction or "
                "right-hand side, uses wrong coefficients, or a constraint is added that the "
                "problem does not impose."
            ),
            example=(
                "The problem says at most 80 hl of stout can be sold, and the model has no "
                "bound on stout."
            ),
            sample_hint=(
                "Wait, let me check each limit in the problem statement against my "
                "constraints; one of them may be missing or reversed."
            ),
        ),
        FlawType(
            name="variable_type_error",
            category=CATEGORY_DOMAIN,
            definition=(
                "Decision variables have the wrong type: continuous variables for "
                "indivisible quantities (people, trucks, machines, yes/no decisions) or "
                "integer/binary variables where fractions are allowed; or rounding an LP "
                "solution instead of solving the integer program."
            ),
            example="'Number of buses = 12.4' is accepted, or rounded up to 13 by hand.",
            sample_hint=(
                "Wait, some of these quantities cannot be fractional; I should check which "
                "variables must be integer and solve that model."
            ),
        ),
        FlawType(
            name="code_model_mismatch",
            category=CATEGORY_DOMAIN,
            definition=(
                "The program does not implement the model the text states: a coefficient, "
                "bound, index range or constraint in the code differs from the written "
                "formulation, or data is copied wrongly from the problem into the code."
            ),
            example=("The text writes '2x + 3y <= 120', and the code has `m += 2*x + 3*y <= 12`."),
            sample_hint=(
                "Wait, let me compare my code line by line with the formulation I wrote; "
                "a number or a bound may have been copied wrongly."
            ),
        ),
    ]
)
