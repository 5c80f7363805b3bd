"""Ranking and answer metrics as pure functions over unit ids and graded relevance judgments.

Retrieval is scored on units, not chunks (shared/evalsets/README.md): walk the chunks in rank
order, append the units each one hits, skip units already listed, cut at k. A chunk hitting
three units uses three positions, since the client reads all of it; a chunk hitting none uses
one position of its own.
"""

import math
from collections.abc import Iterable, Mapping, Sequence


def units_in_rank_order(chunk_hits: Sequence[Sequence[str]], k: int) -> list[str]:
    """The ranked unit ids of ranked chunks, each given as the ids of the units it hits.

    A chunk that hits nothing stands for one irrelevant unit (``"-<chunk rank>"``); a chunk whose
    units are all listed already adds nothing.
    """
    ranked: list[str] = []
    listed: set[str] = set()
    for rank, units in enumerate(chunk_hits, 1):
        if not units:
            ranked.append(f"-{rank}")
        for unit in units:
            if unit not in listed:
                listed.add(unit)
                ranked.append(unit)
        if len(ranked) >= k:
            break
    return ranked[:k]


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant units found in the first ``k`` results."""
    wanted = {unit for unit, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted & set(ranked[:k])) / len(wanted)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant result within ``k`` (0 when none)."""
    for rank, unit in enumerate(ranked[:k], 1):
        if relevant.get(unit, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain, linear gain = grade, log2 discount.

    As trec_eval ``ndcg_cut``, ranx and BEIR; the ideal ranking comes from all graded units.
    """
    seen: set[str] = set()
    dcg = 0.0
    for rank, unit in enumerate(ranked[:k], 1):
        if unit in seen:
            continue  # a unit retrieved twice earns once
        seen.add(unit)
        dcg += max(relevant.get(unit, 0), 0) / math.log2(rank + 1)
    ideal_grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_grades, 1))
    return dcg / ideal if ideal else 0.0


def map_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Average precision within ``k``: precision at each relevant hit over min(|relevant|, k)."""
    wanted = {unit for unit, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    found: set[str] = set()
    total = 0.0
    for rank, unit in enumerate(ranked[:k], 1):
        if unit in wanted and unit not in found:
            found.add(unit)
            total += len(found) / rank
    return total / min(len(wanted), k)


def citation_precision(cited_hits: Sequence[Sequence[str]]) -> float | None:
    """Of an answer's citations (each given as the units it hits), the share that hit one.

    None when the answer cites nothing: precision is not defined then.
    """
    if not cited_hits:
        return None
    return sum(1 for units in cited_hits if units) / len(cited_hits)


def citation_recall(cited_hits: Sequence[Sequence[str]], relevant: Mapping[str, int]) -> float:
    """Of the relevant units, the share that some citation of the answer hits."""
    wanted = {unit for unit, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    cited = {unit for units in cited_hits for unit in units}
    return len(wanted & cited) / len(wanted)


def abstention_accuracy(outcomes: Iterable[tuple[bool, bool]]) -> float | None:
    """Share of ``(unanswerable, abstained)`` pairs where the answer abstained exactly when the
    question cannot be answered from the corpus; None for no pairs."""
    pairs = list(outcomes)
    if not pairs:
        return None
    return sum(1 for unanswerable, abstained in pairs if unanswerable == abstained) / len(pairs)


def mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    """The mean of the values that are defined, and how many there were."""
    defined = [v for v in values if v is not None]
    return (sum(defined) / len(defined) if defined else None), len(defined)


def expected_calibration_error(
    outcomes: Sequence[tuple[float, bool]], bins: int = 10
) -> float | None:
    """How far stated confidence is from the rate of being right: the mean, weighted by size,
    of |mean confidence - share right| over equal-width confidence bins; None for no outcomes."""
    if not outcomes:
        return None
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(p, ok) for p, ok in outcomes if low <= p < high or (b == bins - 1 and p == 1.0)]
        if inside:
            confidence = sum(p for p, _ in inside) / len(inside)
            right = sum(ok for _, ok in inside) / len(inside)
            total += len(inside) * abs(confidence - right)
    return round(total / len(outcomes), 4)


# The two-sided 95% normal quantile.
Z_95 = 1.959964


def wilson_interval(right: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``right / n`` (95% by default); None for
    ``n == 0``. Unlike the normal interval it stays inside [0, 1] and is not zero-width at 0
    or n right, so 3 of 3 reads as [0.44, 1.0], not as a certain 1.0."""
    if n <= 0:
        return None
    if not 0 <= right <= n:
        raise ValueError(f"right must be between 0 and n ({n}), not {right}")
    p = right / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
