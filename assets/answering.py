"""Grounded extractive answers: sentences (or code lines) taken from the passages, each cited.

No LLM is needed. The answerer picks the sentences that share the most of the question's terms
among the best passages, keeps them in passage order and cites each with its passage number.
It abstains when retrieval found nothing close enough.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from assets.retrieval import Passage

MODEL = "extractive-v1"
# Below this cosine similarity the best passage is taken to be unrelated to the question.
ABSTAIN_SCORE = 0.3
# Passages scoring under this share of the best one are not quoted.
RELATIVE_FLOOR = 0.8
MAX_SENTENCES = 3
MAX_PASSAGES = 5
MAX_CODE_LINES = 15
NO_ANSWER = "The sources of this asset do not answer this question."

_STOPWORDS = frozenset(
    """a about an and are as at be by can could do does for from has have how i if in into is
    it its me my of on or should that the their them then there these this to was what when
    where which who why will with would you your""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z0-9_]+")
_LIST_ITEM = re.compile(r"^([-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")


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
    prompt: str  # everything the answerer read: the question and the numbered passages
    model: str = MODEL
    review_reason: str | None = None
    passages: list[Passage] = field(default_factory=list)


def _terms(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return {_stem(w) for w in words if w not in _STOPWORDS and len(w) > 1}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _paragraphs(text: str) -> list[str]:
    """Prose paragraphs with wrapped lines joined; headings, fences and code are left out."""
    paragraphs: list[list[str]] = [[]]
    in_fence = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            paragraphs.append([])
            continue
        if in_fence or not stripped or stripped.startswith(("#", "|")):
            paragraphs.append([])
            continue
        item = _LIST_ITEM.match(stripped)
        if item:  # each list item reads as its own paragraph
            paragraphs.append([stripped[item.end() :]])
            continue
        paragraphs[-1].append(stripped)
    return [" ".join(p) for p in paragraphs if p]


def _units(passage: Passage) -> list[str]:
    """The quotable pieces of a passage: sentences of prose, or a code passage's opening lines."""
    if passage.kind == "code":
        lines = passage.text.strip("\n").splitlines()
        return ["\n".join(lines[:MAX_CODE_LINES])]
    return [
        sentence.strip()
        for paragraph in _paragraphs(passage.text)
        for sentence in _SENTENCE_END.split(paragraph)
        if sentence.strip()
    ]


def build_prompt(question: str, passages: list[Passage]) -> str:
    """The question and the numbered passages, as an answerer reads them."""
    blocks = [f"[{i}] {p.locator.get('path', '')}\n{p.text}" for i, p in enumerate(passages, 1)]
    return f"Question: {question}\n\nPassages:\n" + "\n\n".join(blocks)


def answer(question: str, passages: list[Passage], *, review_threshold: float) -> Answer:
    """An extractive answer to ``question`` from ``passages`` (best first), with citations."""
    prompt = build_prompt(question, passages)
    top = passages[0].score if passages else 0.0
    if top < ABSTAIN_SCORE:
        return Answer(
            text=NO_ANSWER,
            citations=[],
            confidence=round(max(top, 0.0) / 2, 3),
            status="abstained",
            prompt=prompt,
            review_reason="no passage is close enough to the question",
            passages=passages,
        )
    wanted = _terms(question)
    candidates: list[tuple[float, int, int, str]] = []  # (score, passage rank, position, text)
    for rank, passage in enumerate(passages[:MAX_PASSAGES]):
        if passage.score < top * RELATIVE_FLOOR:
            continue
        for position, unit in enumerate(_units(passage)):
            overlap = len(wanted & _terms(unit)) / len(wanted) if wanted else 0.0
            candidates.append((0.6 * overlap + 0.4 * passage.score, rank, position, unit))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen = sorted(candidates[:MAX_SENTENCES], key=lambda c: (c[1], c[2]))

    numbers: dict[int, int] = {}
    pieces: list[str] = []
    for _, rank, _, unit in chosen:
        n = numbers.setdefault(rank, len(numbers) + 1)
        if passages[rank].kind == "code":
            pieces.append(f"```\n{unit}\n```\n[{n}]")
        else:
            pieces.append(f"{unit} [{n}]")
    citations = [
        Citation(n=n, text=passages[rank].text, locator=passages[rank].locator)
        for rank, n in numbers.items()
    ]
    covered = _terms(" ".join(unit for *_, unit in chosen))
    support = len(wanted & covered) / len(wanted) if wanted else 0.0
    strength = min(max((top - ABSTAIN_SCORE) / 0.4, 0.0), 1.0)
    confidence = round(0.5 * strength + 0.5 * support, 3)
    pending = confidence < review_threshold
    return Answer(
        text="\n".join(pieces) if any(p.startswith("```") for p in pieces) else " ".join(pieces),
        citations=citations,
        confidence=confidence,
        status="pending_review" if pending else "final",
        prompt=prompt,
        review_reason=f"confidence {confidence} is below the asset's threshold"
        if pending
        else None,
        passages=passages,
    )
