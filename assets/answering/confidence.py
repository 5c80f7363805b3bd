"""How well an answer is supported by its citations, and its calibrated confidence and status.

``assess`` measures each sentence's support: the share of its content words (lightly stemmed,
number words as numbers) found in the passages it cites; an uncited sentence counts half its
support in any passage, and a number none of the cited passages holds caps the support at
``NUMBER_MISMATCH_SUPPORT``. ``_judged`` turns that, with the other features, into the
confidence from the kind's calibration refined by the asset's reviews (assets/calibration.py),
and the status: final only when the confidence is high enough and nothing else stands in the
way.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assets import calibration, compose
from assets.answering.citations import _CITE, answer_sentences, cited_numbers
from assets.retrieval import Passage

# A sentence is supported when at least this share of its content words is in its citations.
SUPPORT_THRESHOLD = 0.5
# Support of a sentence holding a number that its cited passages do not hold.
NUMBER_MISMATCH_SUPPORT = 0.25
_REASON_CHARS = 200  # the width of Consultation.review_reason

_STOPWORDS = frozenset(
    """a about an and are as at be by can could do does for from has have how i if in into is
    it its me my of on or should that the their them then there these this to was what when
    where which who why will with would you your""".split()  # noqa: SIM905
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    )
} | {
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "hundred": "100",
}


def _stem(word: str) -> str:
    """A light suffix stripper: "closes", "closed" and "close" all become "clos"."""
    if len(word) <= 4 or word.isdigit():
        return word
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "er"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def _terms(text: str) -> set[str]:
    """Content words, stemmed; identifiers also count by their parts (``points_for``: points);
    number words as numbers ("ten euros" and "10 euros" say the same)."""
    terms: set[str] = set()
    for word in compose.words(text):
        if word in _NUMBER_WORDS:
            terms.add(_NUMBER_WORDS[word])
        elif word not in _STOPWORDS and (len(word) > 1 or word.isdigit()):
            terms.add(_stem(word))
    return terms


def _numbers(text: str) -> set[str]:
    found = {n.replace(",", ".") for n in _NUMBER.findall(text)}
    found.update(
        _NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS
    )
    return found


def _found(term: str, pool: set[str], prefixes: set[str]) -> bool:
    # A shared five-letter prefix stands in for a real stemmer ("arrival" / "arrives").
    return term in pool or (len(term) >= 5 and term[:5] in prefixes)


def _support(sentence: str, sources: Sequence[str]) -> float:
    """The share of ``sentence``'s content words found in ``sources`` (1 when it has none)."""
    terms = _terms(sentence)
    if not terms:
        return 1.0
    pool = set().union(*(_terms(s) for s in sources)) if sources else set()
    prefixes = {t[:5] for t in pool if len(t) >= 5}
    share = sum(_found(t, pool, prefixes) for t in terms) / len(terms)
    known = set().union(*(_numbers(s) for s in sources)) if sources else set()
    if _numbers(sentence) - known:
        share = min(share, NUMBER_MISMATCH_SUPPORT)
    return share


def _coverage(question: str, text: str) -> float:
    wanted = _terms(question)
    return len(wanted & _terms(_CITE.sub(" ", text))) / len(wanted) if wanted else 0.0


@dataclass(frozen=True, slots=True)
class Assessment:
    """How well an answer's sentences are supported by their citations."""

    support: float
    unsupported: list[int]  # 1-based sentences whose citations do not support them
    uncited: list[int]  # 1-based sentences with no citation and no support in any passage

    def reasons(self) -> list[str]:
        reasons = []
        if self.unsupported:
            reasons.append(f"sentence {_listed(self.unsupported)} not supported by its citations")
        if self.uncited:
            reasons.append(f"sentence {_listed(self.uncited)} cites nothing the sources say")
        return reasons


def _listed(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:5])) + (" …" if len(numbers) > 5 else "")


def assess(text: str, *, cited: dict[int, Passage], shown: Sequence[str]) -> Assessment:
    """How well ``text``'s sentences (whose ``[n]`` refer to ``cited``) are supported.

    ``shown`` is every passage text the answerer read: an uncited sentence is looked up there.
    """
    scores: list[float] = []
    unsupported: list[int] = []
    uncited: list[int] = []
    claims = [s for s in answer_sentences(text) if len(_terms(_CITE.sub(" ", s))) >= 2]
    for i, sentence in enumerate(claims, 1):
        plain = _CITE.sub(" ", sentence)
        sources = [cited[n].text for n in cited_numbers(sentence) if n in cited]
        if sources:
            support = _support(plain, sources)
            if support < SUPPORT_THRESHOLD:
                unsupported.append(i)
            scores.append(support)
        else:
            support = _support(plain, shown)
            if support < SUPPORT_THRESHOLD:
                uncited.append(i)
            scores.append(0.5 * support)
    support = sum(scores) / len(scores) if scores else (1.0 if cited else 0.0)
    return Assessment(
        support=round(support, 3),
        unsupported=unsupported,
        uncited=uncited,
    )


def _judged(
    question: str,
    text: str,
    *,
    read: Sequence[Passage],
    cited: Sequence[int],
    assessment: Assessment,
    reasons: list[str],
    review_threshold: float,
    offset: float,
) -> dict[str, Any]:
    """The calibrated confidence of an answer (assets/calibration.py) and its status: final
    only when the confidence is enough and nothing else (``reasons``) stands in the way."""
    values = calibration.features(
        question,
        text,
        passages=[(p.score, p.text) for p in read],
        cited=cited,
        coverage=_coverage(question, text),
        support=assessment.support,
    )
    kind = read[0].kind if read else "text"
    judgment = calibration.judge(kind, values, offset=offset, threshold=review_threshold)
    if judgment.reason is not None:
        reasons = [*reasons, judgment.reason]
    reason = "; ".join(reasons) or None
    if reason is not None and len(reason) > _REASON_CHARS:
        reason = reason[: _REASON_CHARS - 1] + "…"
    return {
        "confidence": judgment.confidence,
        "prior_confidence": judgment.prior,
        "status": "final" if reason is None else "pending_review",
        "review_reason": reason,
        "features": {k: round(v, 4) for k, v in values.items()},
    }
