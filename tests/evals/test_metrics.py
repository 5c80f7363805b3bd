"""Ranking and answer metrics on hand-computed cases."""

import math

import pytest

from evals.metrics import (
    abstention_accuracy,
    citation_precision,
    citation_recall,
    expected_calibration_error,
    map_at_k,
    mean,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    units_in_rank_order,
)

RELEVANT = {"a": 2, "b": 1, "z": 0}


def test_recall_counts_relevant_units_found_in_the_first_k() -> None:
    assert recall_at_k(["x", "a", "y", "b"], RELEVANT, 2) == 0.5
    assert recall_at_k(["x", "a", "y", "b"], RELEVANT, 4) == 1.0
    assert recall_at_k(["a"], {}, 10) == 0.0


def test_mrr_is_the_reciprocal_rank_of_the_first_hit() -> None:
    assert mrr_at_k(["z", "x", "b"], RELEVANT) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 10 + ["a"], RELEVANT, 10) == 0.0


def test_ndcg_uses_linear_grades_and_ignores_repeats() -> None:
    assert ndcg_at_k(["a", "b"], RELEVANT) == pytest.approx(1.0)
    # linear gain = grade, as trec_eval ndcg_cut and ranx: (1 + 2/log2 3) / (2 + 1/log2 3)
    swapped = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], RELEVANT) == pytest.approx(swapped)
    assert ndcg_at_k(["a", "a", "b"], RELEVANT) < 1.0
    assert ndcg_at_k(["x"], RELEVANT) == 0.0
    assert ndcg_at_k(["x", "a"], {}) == 0.0


def test_ndcg_ideal_comes_from_all_graded_units_not_only_those_retrieved() -> None:
    # only "b" found at rank 1: DCG 1; ideal is a then b: 2 + 1/log2 3
    assert ndcg_at_k(["b"], RELEVANT) == pytest.approx(1 / (2 + 1 / math.log2(3)))


def test_map_averages_precision_at_each_relevant_hit() -> None:
    assert map_at_k(["a", "x", "b"], RELEVANT) == pytest.approx((1 + 2 / 3) / 2)
    assert map_at_k(["x", "b"], RELEVANT) == pytest.approx((1 / 2) / 2)
    # the denominator is min(|relevant|, k)
    assert map_at_k(["x", "a"], RELEVANT, k=2) == pytest.approx((1 / 2) / 2)
    assert map_at_k(["a"], RELEVANT, k=1) == 1.0
    assert map_at_k(["a"], {}) == 0.0


class TestUnitsInRankOrder:
    def test_a_chunk_hitting_several_units_uses_one_position_each(self) -> None:
        assert units_in_rank_order([["a", "b", "c"], ["d"]], k=10) == ["a", "b", "c", "d"]

    def test_units_already_listed_are_skipped(self) -> None:
        assert units_in_rank_order([["a"], ["a"], ["a", "b"]], k=10) == ["a", "b"]

    def test_a_chunk_hitting_nothing_uses_one_position_of_its_own(self) -> None:
        assert units_in_rank_order([[], ["a"], []], k=10) == ["-1", "a", "-3"]

    def test_the_list_is_cut_at_k(self) -> None:
        assert units_in_rank_order([["a", "b", "c"], ["d"]], k=2) == ["a", "b"]
        ranked = units_in_rank_order([[], ["b", "a"]], k=2)
        assert recall_at_k(ranked, RELEVANT, 2) == 0.5
        assert mrr_at_k(ranked, RELEVANT) == 0.5


def test_citation_precision_is_the_share_of_citations_that_hit() -> None:
    assert citation_precision([["a"], [], ["a", "b"], []]) == 0.5
    assert citation_precision([]) is None


def test_citation_recall_is_the_share_of_relevant_units_cited() -> None:
    assert citation_recall([["a"], ["x"], ["a"]], RELEVANT) == 0.5
    assert citation_recall([["a", "b"]], RELEVANT) == 1.0
    assert citation_recall([], RELEVANT) == 0.0
    assert citation_recall([["a"]], {}) == 0.0


def test_abstention_accuracy_rewards_abstaining_exactly_when_unanswerable() -> None:
    outcomes = [(True, True), (True, False), (False, False), (False, True)]
    assert abstention_accuracy(outcomes) == 0.5
    assert abstention_accuracy([(False, False)]) == 1.0
    assert abstention_accuracy([]) is None


def test_mean_skips_undefined_values() -> None:
    assert mean([1.0, None, 0.0]) == (0.5, 2)
    assert mean([None]) == (None, 0)


def test_expected_calibration_error_weighs_each_bin_by_its_size() -> None:
    # bin 0.9-1.0: confidences 0.95, 0.95, right 1 of 2 -> |0.95 - 0.5| = 0.45, weight 2/4;
    # bin 0.2-0.3: 0.25, 0.25, right 0 of 2 -> 0.25, weight 2/4.
    outcomes = [(0.95, True), (0.95, False), (0.25, False), (0.25, False)]
    assert expected_calibration_error(outcomes) == pytest.approx(0.35)
    assert expected_calibration_error([(1.0, True), (0.0, False)]) == 0.0
    assert expected_calibration_error([]) is None
