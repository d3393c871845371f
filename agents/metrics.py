"""Scores from episode records: pass@k per benchmark, macro average, turns, failure reasons.

- pass@1 of a benchmark: the mean over its problems of (correct samples / samples), i.e.
  accuracy averaged over the N samples, as the papers report it.
- pass@k (k <= N): the unbiased estimator of Chen et al. (2021), mean over problems of
  1 - C(n - c, k) / C(n, k) for n samples of which c are correct.
- macro: the unweighted mean of the benchmarks' pass@1 (each benchmark counts once).
- Episodes that failed to run (`status="error"`) count as incorrect, and are reported as
  `errors` so that a broken server cannot pass for a weak model.
- failure reasons of incorrect episodes: the grade's reason for answered ones
  (wrong_value, status_mismatch, unparsable, ...) and the termination reason otherwise
  (max_turns, no_code, context_length, error, ...).
- timeouts: episodes in which at least one code execution hit the execution time limit
  (whatever the episode's outcome), and timed_out_executions: how many executions did.
  Many timeouts mean the limit, not the model, decided those episodes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from math import comb
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate for one problem with n samples, c of them correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def default_ks(samples: int) -> list[int]:
    """The k reported for N samples: 1, the powers of two below N, and N."""
    ks = {1, samples}
    k = 2
    while k < samples:
        ks.add(k)
        k *= 2
    return sorted(ks)


def timed_out_executions(record: Mapping[str, Any]) -> int:
    """How many of an episode's code executions hit the time limit."""
    return sum(
        1 for step in record.get("steps") or [] if (step.get("execution") or {}).get("timed_out")
    )


def failure_reason(record: Mapping[str, Any]) -> str | None:
    """Why an episode is not correct (None when it is)."""
    if record.get("correct"):
        return None
    if record.get("status") != "ok":
        return "error"
    reason = record.get("termination_reason")
    grade = record.get("grade") or {}
    if reason == "answered" and grade.get("reason"):
        return str(grade["reason"])
    return str(reason or "unknown")


@dataclass
class BenchmarkScore:
    """The scores of one benchmark (see the module doc)."""

    benchmark: str
    version: str | None
    problems: int
    samples: int
    episodes: int
    pass_at: dict[int, float]
    mean_turns: float
    mean_executions: float
    errors: int
    failure_reasons: dict[str, int] = field(default_factory=dict)
    termination_reasons: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timeouts: int = 0
    timed_out_executions: int = 0
    guessed: int = 0

    @property
    def pass1(self) -> float:
        return self.pass_at[1]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pass_at"] = {f"pass@{k}": v for k, v in self.pass_at.items()}
        return data


def label_of(record: Mapping[str, Any], versions: Mapping[str, set[str | None]]) -> str:
    """The benchmark label: its name, plus @version when one run holds several versions."""
    name = str(record.get("benchmark"))
    if len(versions.get(name, ())) > 1:
        return f"{name}@{record.get('version')}"
    return name


def score_benchmarks(records: Iterable[Mapping[str, Any]]) -> list[BenchmarkScore]:
    """Per-benchmark scores of a run's records, benchmarks in order of first appearance."""
    records = list(records)
    versions: dict[str, set[str | None]] = defaultdict(set)
    for record in records:
        versions[str(record.get("benchmark"))].add(record.get("version"))
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        groups[label_of(record, versions)].append(record)
    return [_score(label, group) for label, group in groups.items()]


def _score(label: str, records: list[Mapping[str, Any]]) -> BenchmarkScore:
    per_problem: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        per_problem[str(record["problem_id"])].append(bool(record.get("correct")))
    samples = min(len(v) for v in per_problem.values())
    pass_at = {}
    for k in default_ks(samples):
        values = [pass_at_k(len(v), sum(v), k) for v in per_problem.values()]
        pass_at[k] = sum(values) / len(values)
    failures = Counter(r for r in map(failure_reason, records) if r is not None)
    terminations = Counter(str(r.get("termination_reason")) for r in records)
    tokens = [r.get("tokens") or {} for r in records]
    versions = {r.get("version") for r in records}
    timed_out = [timed_out_executions(r) for r in records]
    return BenchmarkScore(
        benchmark=label,
        version=versions.pop() if len(versions) == 1 else None,
        problems=len(per_problem),
        samples=samples,
        episodes=len(records),
        pass_at=pass_at,
        mean_turns=sum(int(r.get("turns", 0)) for r in records) / len(records),
        mean_executions=sum(int(r.get("executions", 0)) for r in records) / len(records),
        errors=sum(1 for r in records if r.get("status") != "ok"),
        failure_reasons=dict(failures.most_common()),
        termination_reasons=dict(terminations.most_common()),
        prompt_tokens=sum(t.get("prompt") or 0 for t in tokens),
        completion_tokens=sum(t.get("completion") or 0 for t in tokens),
        timeouts=sum(1 for n in timed_out if n),
        timed_out_executions=sum(timed_out),
        guessed=sum(1 for r in records if guessed(r)),
    )


def guessed(record: Mapping[str, Any]) -> bool:
    """A correct episode whose answer no execution printed (the env's `answer_printed`)."""
    return bool(record.get("correct")) and record.get("answer_printed") is False


def macro_average(scores: Iterable[BenchmarkScore], k: int = 1) -> float | None:
    """The unweighted mean pass@k over benchmarks (None without benchmarks or without k)."""
    values = [s.pass_at[k] for s in scores if k in s.pass_at]
    return sum(values) / len(values) if values else None
