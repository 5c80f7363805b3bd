"""How sure to be of an answer: the probability that it is right, and whether it is final.

    confidence = sigmoid(w[kind] . features(answer) + offset[asset])

``features`` are read off the answer and the passages it was drawn from, the same way for the
extractive answerer and a chat model: how close the best passage came, how much of the question
the answer covers, how well its sentences are supported by their citations, whether it is the
kind of answer the question wants (a number, an amount, the cases...), and where the passages it
cites ranked. ``w[kind]`` is a logistic model per kind of corpus, fitted on the answer-level
golden sets (``bench/fit_answers.py --calibrate --write`` writes assets/calibration.json; the
figures it prints are out of fold).

``offset[asset]`` refines the kind's model with the asset's own reviews: each answer the expert
approved counts as right, each one corrected or rejected as wrong. It is the shift of the
log-odds that best explains those outcomes under a normal prior centred on 0 (PRIOR_SD), so a
few reviews move it a little and many reviews decide it.

An answer is final when its confidence is at least FINAL (or the asset's own, stricter,
threshold) and its sentences are supported by their citations; otherwise the expert reviews
it, and the client is told why.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from assets import compose

# An answer is final only when it is right with at least this probability.
FINAL = 0.9
# How far (in log-odds) an asset's reviews may move the kind's model, a priori.
PRIOR_SD = 1.0
# The most recent reviews an asset's offset is learnt from.
REVIEWS = 500
FEATURES = (
    "bias", "closeness", "cited_closeness", "cited_rank", "overlap", "fit", "coverage",
    "support", "wants", "citations",
)  # fmt: skip
MODELS: dict[str, dict[str, float]] = json.loads(
    (Path(__file__).parent / "calibration.json").read_text()
)


def features(
    question: str,
    text: str,
    *,
    passages: Sequence[tuple[float, str]],
    cited: Sequence[int],
    coverage: float,
    support: float,
) -> dict[str, float]:
    """What an answer's confidence is estimated from. ``passages`` are (cosine, text) of every
    passage the answerer read, best first; ``cited`` the 0-based positions of those it cites."""
    intent = compose.intent_of(question)
    weights = compose.idf_weights(question, [t for _, t in passages])
    closeness = [score for score, _ in passages]
    return {
        "bias": 1.0,
        "closeness": max(closeness, default=0.0),
        "cited_closeness": max((closeness[i] for i in cited), default=0.0),
        "cited_rank": 1 / (1 + min(cited, default=len(passages))),
        "overlap": compose.overlap(weights, text),
        "fit": compose.fits(intent, text, code="```" in text),
        "coverage": coverage,
        "support": support,
        "wants": min(len(intent.wants), 3) / 3,
        "citations": min(len(cited), 3) / 3,
    }


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def prior(kind: str, values: Mapping[str, float]) -> float:
    """The probability that the answer is right, by its kind's model alone."""
    model = MODELS.get(kind) or MODELS["text"]
    return _sigmoid(sum(model.get(name, 0.0) * value for name, value in values.items()))


def refine(p: float, offset: float) -> float:
    return _sigmoid(_logit(p) + offset)


def asset_offset(reviewed: Sequence[tuple[float, bool]]) -> float:
    """The log-odds shift that best explains an asset's reviewed answers, each (the kind's
    probability for it, whether it stood): the maximum a posteriori under N(0, PRIOR_SD^2),
    by Newton's method."""
    logits = [_logit(p) for p, _ in reviewed]
    offset = 0.0
    for _ in range(30):
        gradient = -offset / PRIOR_SD**2
        curvature = 1 / PRIOR_SD**2
        for z, right in zip(logits, (r for _, r in reviewed), strict=True):
            p = _sigmoid(z + offset)
            gradient += float(right) - p
            curvature += p * (1 - p)
        step = gradient / curvature
        offset += step
        if abs(step) < 1e-9:
            break
    return offset


@dataclass(frozen=True, slots=True)
class Judgment:
    confidence: float  # refined by the asset's reviews
    prior: float  # the kind's model alone
    final: bool
    reason: str | None  # why it is not final


def judge(kind: str, values: Mapping[str, float], *, offset: float, threshold: float) -> Judgment:
    """The calibrated confidence and whether it is enough for a final answer (at least FINAL
    and ``threshold``, the asset's own)."""
    p0 = prior(kind, values)
    p = refine(p0, offset)
    needed = max(FINAL, threshold)
    if p >= needed:
        return Judgment(round(p, 3), round(p0, 3), True, None)
    return Judgment(
        round(p, 3),
        round(p0, 3),
        False,
        f"confidence {p:.2f} is below the {needed:.2f} needed for a final answer",
    )
