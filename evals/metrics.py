"""Ranking metrics as pure functions over ranked unit ids and graded relevance judgments."""

import math
from collections.abc import Mapping, Sequence


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
    """Normalised discounted cumulative gain with graded relevance (gain 2^grade - 1)."""
    seen: set[str] = set()
    dcg = 0.0
    for rank, unit in enumerate(ranked[:k], 1):
        if unit in seen:
            continue  # a unit retrieved twice earns once
        seen.add(unit)
        dcg += (2 ** relevant.get(unit, 0) - 1) / math.log2(rank + 1)
    ideal_grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum((2**g - 1) / math.log2(rank + 1) for rank, g in enumerate(ideal_grades, 1))
    return dcg / ideal if ideal else 0.0
