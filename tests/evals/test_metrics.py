"""Ranking metrics on hand-computed cases."""

import math

import pytest

from evals.metrics import mrr_at_k, ndcg_at_k, recall_at_k

RELEVANT = {"a": 2, "b": 1, "z": 0}


def test_recall_counts_relevant_units_found_in_the_first_k() -> None:
    assert recall_at_k(["x", "a", "y", "b"], RELEVANT, 2) == 0.5
    assert recall_at_k(["x", "a", "y", "b"], RELEVANT, 4) == 1.0
    assert recall_at_k(["a"], {}, 10) == 0.0


def test_mrr_is_the_reciprocal_rank_of_the_first_hit() -> None:
    assert mrr_at_k(["z", "x", "b"], RELEVANT) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 10 + ["a"], RELEVANT, 10) == 0.0


def test_ndcg_uses_grades_and_ignores_repeats() -> None:
    assert ndcg_at_k(["a", "b"], RELEVANT) == pytest.approx(1.0)
    swapped = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], RELEVANT) == pytest.approx(swapped)
    assert ndcg_at_k(["a", "a", "b"], RELEVANT) < 1.0
    assert ndcg_at_k(["x"], RELEVANT) == 0.0
