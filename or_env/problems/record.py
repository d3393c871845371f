"""The `Problem` record: one optimisation word problem with its graded answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from or_env.grading import GroundTruthError, parse_ground_truth


@dataclass(frozen=True)
class Problem:
    """One optimisation-modeling problem.

    Attributes:
        id: unique within its benchmark (and version); stable across loads.
        question: the natural-language problem statement shown to the agent.
        answer: the optimal objective value, or `or_env.grading.INFEASIBLE`, `UNBOUNDED` or
            `NO_OPTIMUM` (either status) for problems without an optimum. It is normalised by
            `parse_ground_truth` when the record is made; None or an unreadable value raises
            GroundTruthError (a ValueError) naming the problem.
        benchmark: the benchmark name as the CLI lists it ("nl4opt", "sample", ...).
        meta: anything else the source carried (version, source file, line,
            difficulty, problem type, a reference program...).
    """

    id: str
    question: str
    answer: float | str
    benchmark: str = "custom"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "answer", _ground_truth(self.id, self.answer))

    @classmethod
    def from_dict(cls, row: dict[str, Any], *, benchmark: str = "custom") -> Problem:
        """Build a Problem from a plain mapping with keys id, question, answer (meta optional)."""
        missing = [key for key in ("id", "question", "answer") if key not in row]
        if missing:
            raise ValueError(
                f"problem dict is missing {missing}; expected keys 'id', 'question', 'answer'"
            )
        question = str(row["question"]).strip()
        if not question:
            raise ValueError(f"problem {row['id']!r} has an empty question")
        return cls(
            id=str(row["id"]),
            question=question,
            answer=_ground_truth(row["id"], row["answer"]),
            benchmark=str(row.get("benchmark", benchmark)),
            meta=dict(row.get("meta", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "benchmark": self.benchmark,
            "meta": self.meta,
        }


def _ground_truth(problem_id: object, value: object) -> float | str:
    """`parse_ground_truth`, with the problem named in the error."""
    try:
        return parse_ground_truth(value)
    except GroundTruthError as exc:
        raise GroundTruthError(f"problem {problem_id!r}: {exc}") from exc
