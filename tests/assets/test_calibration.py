"""Calibrated confidence: the kind's model, an asset's reviews moving it, and what is final."""

import math

import pytest

from assets import calibration
from assets.calibration import FINAL, asset_offset, features, judge, prior, refine

REFUNDS = "Refunds are paid back to the original card within 14 days of the return arriving."
HOURS = "The store opens at 9 in the morning and closes at 6 in the evening."


def _values(**overrides: float) -> dict[str, float]:
    values = features(
        "How long does a refund take?",
        f"{REFUNDS} [1]",
        passages=[(0.72, REFUNDS), (0.4, HOURS)],
        cited=[0],
        coverage=1.0,
        support=1.0,
    )
    return values | overrides


def test_features_are_read_off_the_answer_and_its_passages() -> None:
    values = _values()
    assert set(values) == set(calibration.FEATURES)
    assert values["closeness"] == values["cited_closeness"] == 0.72
    assert values["cited_rank"] == 1.0  # the best passage is cited
    assert values["fit"] == 1.0  # "how long" wants a duration, and "14 days" is one
    assert values["overlap"] > 0.5  # "refund" and "take": "long" is in both passages
    other = features(
        "How long does a refund take?",
        f"{HOURS} [1]",
        passages=[(0.72, REFUNDS), (0.4, HOURS)],
        cited=[1],
        coverage=0.0,
        support=1.0,
    )
    assert (other["cited_closeness"], other["cited_rank"]) == (0.4, 0.5)
    assert other["overlap"] == 0.0
    assert other["fit"] == 0.0


def test_every_kind_has_a_model_and_unknown_kinds_use_the_pooled_one() -> None:
    assert {"code", "regulation", "paper", "text"} <= set(calibration.MODELS)
    values = _values()
    assert prior("spreadsheet", values) == prior("text", values)
    assert all(0 < prior(kind, values) < 1 for kind in calibration.MODELS)


def test_no_reviews_leave_the_kinds_model_as_it_is() -> None:
    assert asset_offset([]) == 0.0
    assert refine(0.7, 0.0) == pytest.approx(0.7)


def test_reviews_move_the_confidence_the_way_they_went_more_with_more_of_them() -> None:
    few_right = asset_offset([(0.5, True)] * 3)
    many_right = asset_offset([(0.5, True)] * 60)
    many_wrong = asset_offset([(0.8, False)] * 60)
    assert 0 < few_right < many_right
    assert many_wrong < 0
    # Many reviews decide it: an asset whose answers at 0.5 all stood ends up near sure.
    assert refine(0.5, many_right) > FINAL
    assert refine(0.8, many_wrong) < 0.5


def test_the_offset_explains_a_mixed_record() -> None:
    # 45 of 50 answers the model gave 0.6 stood: the refined confidence moves close to 0.9.
    reviewed = [(0.6, True)] * 45 + [(0.6, False)] * 5
    p = refine(0.6, asset_offset(reviewed))
    assert 0.8 < p < 0.9  # the prior holds it back a little


def test_final_only_from_the_platform_floor_or_the_assets_stricter_threshold() -> None:
    values = _values()
    base = prior("text", values)
    needed = calibration._logit(0.95) - calibration._logit(base)
    sure = judge("text", values, offset=needed, threshold=0.4)
    assert sure.final
    assert sure.reason is None
    assert math.isclose(sure.confidence, 0.95, abs_tol=1e-3)
    assert sure.prior == round(base, 3)
    stricter = judge("text", values, offset=needed, threshold=0.99)
    assert not stricter.final
    assert stricter.reason == "confidence 0.95 is below the 0.99 needed for a final answer"
    unsure = judge(
        "text", values, offset=calibration._logit(0.8) - calibration._logit(base), threshold=0.0
    )
    assert not unsure.final
    assert unsure.reason == "confidence 0.80 is below the 0.90 needed for a final answer"
