"""What every answerer returns: an ``Answer`` with its numbered ``Citation``s, and the fixed texts.

``NO_ANSWER`` is the abstained answer's text, ``REFUSAL`` what the chat model is told to reply
when the passages do not answer, and ``WITHHELD`` the text of an answer held back because the
model repeated its instructions. ``_abstain`` builds the abstained answer both answerers give
when no passage is close enough or nothing quotable or citable is left.
"""

from dataclasses import dataclass, field
from typing import Any

from assets.retrieval import Passage

MODEL = "extractive-v1"
# Below this cosine similarity the best passage is taken to be unrelated to the question.
ABSTAIN_SCORE = 0.3
NO_ANSWER = "The sources of this asset do not answer this question."
# What the chat model is told to reply, word for word, when the passages do not answer.
REFUSAL = "I cannot answer this from the sources."
WITHHELD = (
    "This answer was withheld because the model repeated its own instructions; "
    "the expert will review the question."
)


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    text: str
    locator: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: list[Citation]
    confidence: float
    status: str  # "final", "pending_review" or "abstained"
    prompt: str  # everything the answerer read: the instructions, question and passages
    model: str = MODEL
    review_reason: str | None = None
    passages: list[Passage] = field(default_factory=list)
    # What the model wrote, when the answer text differs (citations renumbered, links removed).
    completion: str | None = None
    # What the confidence is estimated from, and the confidence by the kind's model alone,
    # before the asset's own reviews refined it (assets/calibration.py).
    features: dict[str, float] = field(default_factory=dict)
    prior_confidence: float | None = None

    @property
    def completion_text(self) -> str:
        """The text that was generated: the model's raw output, or the extractive answer."""
        return self.text if self.completion is None else self.completion


def _abstain(prompt: str, passages: list[Passage], *, model: str, why: str, **extra: Any) -> Answer:
    top = max((p.score for p in passages), default=0.0)
    return Answer(
        text=NO_ANSWER,
        citations=[],
        confidence=round(max(min(top, ABSTAIN_SCORE), 0.0) / 2, 3),
        status="abstained",
        prompt=prompt,
        model=model,
        review_reason=why,
        passages=passages,
        **extra,
    )
