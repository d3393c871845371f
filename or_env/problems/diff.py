"""Benchmark versions side by side: which problems changed their ground truth, which exist once.

Published copies of a benchmark disagree: cleaned copies fix (or break) labels, drop problems
or reword them. `diff_versions("nl4opt")` aligns every version of a benchmark with a reference
version (the default one unless told) and lists, per version:

- the problems whose ground truth differs (with the absolute and relative difference, or the
  two statuses), and whether the difference is material (`default` tolerance says the labels
  disagree) or only a matter of rounding;
- the problems that exist only in the reference, or only in the other version.

Alignment (`align_problems`), in this order, each problem used once:

1. the same normalised question text (whitespace and case folded);
2. the same source id (the problem id without the `<benchmark>-<version>-` prefix) when the
   questions are still similar (`difflib` ratio >= `ID_SIMILARITY`), so that line-numbered
   copies with a dropped row do not pair unrelated problems;
3. the most similar remaining question (ratio >= `TEXT_SIMILARITY`) that states the same
   numbers (NL4Opt-style problems share templates and differ only in their data, so text
   similarity alone would pair different problems);
4. for copies translated or reworded anew (IndustryOR's versions): the mutual best match by
   content, half the Jaccard overlap of the numbers the questions state and half that of
   their words, when it is at least `CONTENT_SIMILARITY`.

`or-env benchmarks diff NAME` is the command line.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from or_env.grading import grade_value
from or_env.problems.benchmarks import get_benchmark
from or_env.problems.loaders import load_problems
from or_env.problems.record import Problem
from or_env.problems.report import DatasetError

logger = logging.getLogger(__name__)

#: Questions paired by source id must be at least this similar (difflib ratio).
ID_SIMILARITY = 0.6
#: Questions paired by text alone must be at least this similar.
TEXT_SIMILARITY = 0.85
#: Questions paired by content (numbers and words, step 4) score at least this.
CONTENT_SIMILARITY = 0.5
# Two numeric labels closer than this (relative) are the same label.
_SAME_LABEL_REL = 1e-9


def normalise_question(text: str) -> str:
    """The question with whitespace collapsed and case folded (the key of exact matching)."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def source_id(problem: Problem) -> str:
    """The problem id without the `<benchmark>-<version>-` prefix the loader adds."""
    version = problem.meta.get("version")
    prefix = f"{problem.benchmark}-{version}-"
    return problem.id.removeprefix(prefix) if version else problem.id


_WORD_RE = re.compile(r"[a-z]{3,}")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")


def question_numbers(text: str) -> frozenset[str]:
    """The numbers a question states (thousands separators dropped): its data."""
    return frozenset(n.replace(",", "") for n in _NUMBER_RE.findall(text))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def content_similarity(a: str, b: str) -> float:
    """Half the Jaccard overlap of two questions' numbers plus half that of their words."""
    words_a = frozenset(_WORD_RE.findall(a.casefold()))
    words_b = frozenset(_WORD_RE.findall(b.casefold()))
    return 0.5 * _jaccard(question_numbers(a), question_numbers(b)) + 0.5 * _jaccard(
        words_a, words_b
    )


def similarity(a: str, b: str) -> float:
    """difflib's ratio of two normalised questions (1.0: the same text)."""
    return difflib.SequenceMatcher(None, normalise_question(a), normalise_question(b)).ratio()


@dataclass(frozen=True)
class Pair:
    """Two aligned problems: `how` they were paired ("text", "id", "similar", "content") and
    how alike (1.0 for the same text)."""

    reference: Problem
    other: Problem
    how: str
    similarity: float


def align_problems(reference: Sequence[Problem], other: Sequence[Problem]) -> list[Pair]:
    """Pair the problems of two versions (see the module doc); unpaired ones are left out."""
    pairs: list[Pair] = []
    free_ref = list(range(len(reference)))
    free_other = list(range(len(other)))

    # 1. Exact text (duplicates pair in file order).
    by_text: dict[str, list[int]] = defaultdict(list)
    for j in free_other:
        by_text[normalise_question(other[j].question)].append(j)
    used_other: set[int] = set()
    left_ref = []
    for i in free_ref:
        bucket = by_text.get(normalise_question(reference[i].question))
        if bucket:
            j = bucket.pop(0)
            used_other.add(j)
            pairs.append(Pair(reference[i], other[j], "text", 1.0))
        else:
            left_ref.append(i)
    free_other = [j for j in free_other if j not in used_other]

    # 2. Source id, when the texts are still alike.
    by_id = {source_id(other[j]): j for j in free_other}
    still_ref = []
    for i in left_ref:
        j = by_id.get(source_id(reference[i]))
        score = similarity(reference[i].question, other[j].question) if j is not None else 0.0
        if j is not None and j not in used_other and score >= ID_SIMILARITY:
            used_other.add(j)
            pairs.append(Pair(reference[i], other[j], "id", score))
        else:
            still_ref.append(i)
    free_other = [j for j in free_other if j not in used_other]

    # 3. The most similar remaining question (quick_ratio bounds the ratio from above).
    numbers = {j: question_numbers(other[j].question) for j in free_other}
    for i in still_ref:
        text = normalise_question(reference[i].question)
        wanted = question_numbers(reference[i].question)
        best, best_score = None, TEXT_SIMILARITY
        for j in free_other:
            if j in used_other or numbers[j] != wanted:
                continue
            matcher = difflib.SequenceMatcher(None, text, normalise_question(other[j].question))
            if matcher.real_quick_ratio() < best_score or matcher.quick_ratio() < best_score:
                continue
            score = matcher.ratio()
            if score >= best_score:
                best, best_score = j, score
        if best is not None:
            used_other.add(best)
            pairs.append(Pair(reference[i], other[best], "similar", best_score))
    left_ref = [i for i in still_ref if reference[i].id not in {p.reference.id for p in pairs}]
    left_other = [j for j in free_other if j not in used_other]
    pairs.extend(_content_pairs(reference, other, left_ref, left_other))
    return pairs


def _content_pairs(
    reference: Sequence[Problem], other: Sequence[Problem], refs: list[int], others: list[int]
) -> list[Pair]:
    """Step 4: mutual best matches by `content_similarity`."""
    if not refs or not others:
        return []
    scores = {
        (i, j): content_similarity(reference[i].question, other[j].question)
        for i in refs
        for j in others
    }
    best_other = {i: max(others, key=lambda j: scores[i, j]) for i in refs}
    best_ref = {j: max(refs, key=lambda i: scores[i, j]) for j in others}
    return [
        Pair(reference[i], other[j], "content", scores[i, j])
        for i, j in best_other.items()
        if best_ref[j] == i and scores[i, j] >= CONTENT_SIMILARITY
    ]


@dataclass
class LabelChange:
    """One aligned problem whose ground truth differs between the two versions.

    abs_diff / rel_diff: |other - reference| and that over |reference| (None for a status or a
    zero reference). material: the `default` tolerance does not accept one label for the other
    (False: the copies only round differently).
    """

    reference_id: str
    other_id: str
    reference_answer: float | str
    other_answer: float | str
    abs_diff: float | None
    rel_diff: float | None
    material: bool
    how: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VersionDiff:
    """How one version differs from the reference version of a benchmark."""

    benchmark: str
    reference: str
    version: str
    reference_problems: int
    problems: int
    aligned: int
    aligned_by: dict[str, int]
    changes: list[LabelChange] = field(default_factory=list)
    only_in_reference: list[str] = field(default_factory=list)
    only_in_version: list[str] = field(default_factory=list)

    @property
    def material_changes(self) -> int:
        return sum(1 for c in self.changes if c.material)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["material_changes"] = self.material_changes
        return data


def labels_differ(reference: float | str, other: float | str) -> bool:
    """Whether two ground truths are different labels (not merely float noise)."""
    if isinstance(reference, str) or isinstance(other, str):
        return reference != other
    return not math.isclose(reference, other, rel_tol=_SAME_LABEL_REL, abs_tol=1e-12)


def label_change(pair: Pair) -> LabelChange | None:
    """The change of a pair's ground truth, or None when the labels agree."""
    ref, oth = pair.reference.answer, pair.other.answer
    if not labels_differ(ref, oth):
        return None
    numeric = not isinstance(ref, str) and not isinstance(oth, str)
    abs_diff = abs(oth - ref) if numeric else None  # type: ignore[operator]
    rel_diff = abs_diff / abs(ref) if numeric and ref != 0 else None  # type: ignore[operator,arg-type]
    material = not grade_value(oth, ref, preset="default").correct
    return LabelChange(
        pair.reference.id, pair.other.id, ref, oth, abs_diff, rel_diff, material, pair.how
    )


def diff_problems(
    reference: Sequence[Problem],
    other: Sequence[Problem],
    *,
    benchmark: str = "custom",
    reference_name: str = "reference",
    version_name: str = "other",
) -> VersionDiff:
    """Align two lists of problems and list label changes and unpaired problems."""
    pairs = align_problems(reference, other)
    paired_ref = {p.reference.id for p in pairs}
    paired_other = {p.other.id for p in pairs}
    changes = [c for c in map(label_change, pairs) if c is not None]
    aligned_by: dict[str, int] = defaultdict(int)
    for pair in pairs:
        aligned_by[pair.how] += 1
    return VersionDiff(
        benchmark=benchmark,
        reference=reference_name,
        version=version_name,
        reference_problems=len(reference),
        problems=len(other),
        aligned=len(pairs),
        aligned_by=dict(aligned_by),
        changes=changes,
        only_in_reference=[p.id for p in reference if p.id not in paired_ref],
        only_in_version=[p.id for p in other if p.id not in paired_other],
    )


def diff_versions(
    name: str,
    *,
    reference: str | None = None,
    versions: Sequence[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[VersionDiff], dict[str, str]]:
    """Every version of benchmark `name` against `reference` (default: the default version).

    Returns the diffs and, per version that could not be loaded (file missing, ...), why.
    """
    benchmark = get_benchmark(name)
    reference = reference or benchmark.default_version
    wanted = list(versions) if versions else [v for v in benchmark.version_names]
    ref_problems = load_problems(name, version=reference, path=data_dir)
    diffs, missing = [], {}
    for version in wanted:
        if version == reference:
            continue
        try:
            problems = load_problems(name, version=version, path=data_dir)
        except (DatasetError, OSError) as exc:
            logger.warning("%s@%s not compared: %s", name, version, exc)
            missing[version] = str(exc)
            continue
        diffs.append(
            diff_problems(
                ref_problems,
                problems,
                benchmark=name,
                reference_name=reference,
                version_name=version,
            )
        )
    return diffs, missing


def diff_table(diffs: Sequence[VersionDiff]) -> str:
    """A markdown table: one row per version compared with the reference."""
    lines = [
        "| benchmark | reference (problems) | version (problems) "
        "| aligned (text / id / similar / content) "
        "| labels differ (material) | only in reference | only in version |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in diffs:
        how = " / ".join(str(d.aligned_by.get(k, 0)) for k in ("text", "id", "similar", "content"))
        lines.append(
            f"| {d.benchmark} | {d.reference} ({d.reference_problems}) | {d.version} "
            f"({d.problems}) | {d.aligned} ({how}) | {len(d.changes)} ({d.material_changes}) "
            f"| {len(d.only_in_reference)} | {len(d.only_in_version)} |"
        )
    return "\n".join(lines)


def changes_table(diff: VersionDiff, limit: int = 0) -> str:
    """A markdown table of one version's label changes (the first `limit`; 0: all)."""
    lines = [
        f"{diff.benchmark}: {diff.reference} -> {diff.version}",
        "",
        "| reference id | version id | reference label | version label | abs diff | rel diff "
        "| material |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in diff.changes[: limit or None]:
        rel = "-" if c.rel_diff is None else f"{c.rel_diff:.3g}"
        absd = "-" if c.abs_diff is None else f"{c.abs_diff:.6g}"
        lines.append(
            f"| {c.reference_id} | {c.other_id} | {c.reference_answer} | {c.other_answer} "
            f"| {absd} | {rel} | {'yes' if c.material else 'no'} |"
        )
    return "\n".join(lines)
