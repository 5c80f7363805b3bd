"""The grounded extractive answerer: no LLM, it quotes the units that best answer the question.

Every passage is cut into units (code statements, sentences) scored for the question by its
kind's unit model (assets/compose.py; weights in assets/answer_model.json); with the asset's
embedder the ``SHORTLIST`` best are weighed again by meaning. The ``QUOTED`` passages whose best
unit scores best are quoted, each cited as ``[n]``, and the answer is judged like any other
(confidence.py); it abstains when no passage is close enough.
"""

import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from assets import compose
from assets.answering.code_quotes import _absolute, _code_snippet, _constants_named
from assets.answering.confidence import _judged, assess
from assets.answering.prose_quotes import _passage_text, _provision, _sentences
from assets.answering.result import ABSTAIN_SCORE, MODEL, Answer, Citation, _abstain
from assets.answering.safety import is_instruction
from assets.retrieval import Passage

# The passages an extractive answer is drawn from, best first.
MAX_PASSAGES = 10
# The passages quoted: the QUOTED whose best unit scores best (measured on the answer sets
# by bench/answers.py: quoting 3 rather than 1 or 2 states the facts of a right answer most
# often, on every kind; the calibration then decides whether the answer is final).
QUOTED = 3
# A passage after the first is quoted only when its best unit holds at least this share of the
# question's words (weighted by rarity) that the first one's holds: never an unrelated one.
QUOTE_OVERLAP = 0.25
# The best units (by everything but meaning) that are also weighed by meaning. Answer accuracy
# on the answer sets (code, regulation, paper): none 0.468, 0.627, 0.617 (8-33 ms an answer);
# 8: 0.511, 0.608, 0.638 (about 190 ms); 24: 0.511, 0.608, 0.660 (470-800 ms).
SHORTLIST = 8
# The unit models, per kind of corpus: hand-set weights (bench/fit_answers.py --units fits
# others; they did no better out of fold on the answer sets).
ANSWER_MODEL: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "answer_model.json").read_text()
)


def build_prompt(question: str, passages: list[Passage]) -> str:
    """The question and the numbered passages, as the extractive answerer reads them."""
    blocks = [f"[{i}] {p.locator.get('path', '')}\n{p.text}" for i, p in enumerate(passages, 1)]
    return f"Question: {question}\n\nPassages:\n" + "\n\n".join(blocks)


def _context(passage: Passage) -> str:
    """What names a passage: its symbol, section or heading, and its path."""
    loc = passage.locator
    return " ".join(str(loc.get(k) or "") for k in ("symbol", "section", "heading", "path"))


def _units(rank: int, passage: Passage) -> list[compose.Unit]:
    if passage.kind == "code":
        lines = passage.text.split("\n")
        unsafe = [is_instruction(line) for line in lines]
        return [
            u
            for u in compose.code_units(rank, passage.text)
            if not any(unsafe[u.first : u.last + 1])
        ]
    return compose.prose_units(rank, passage.text, lambda _text: _sentences(passage))


def _model(kind: str, stage: str = "units") -> dict[str, float]:
    """A kind's unit model: ``units`` (all units, no meaning) or ``shortlist`` (with meaning)."""
    models: dict[str, dict[str, float]] = ANSWER_MODEL.get(stage) or ANSWER_MODEL["units"]
    return models.get(kind) or models.get("text") or ANSWER_MODEL["units"]["text"]


def _scored(
    question: str, passages: Sequence[Passage], intent: compose.Intent
) -> list[compose.Scored]:
    """Every unit of ``passages`` (best first), scored for the question by its kind's model
    (assets/compose.py: ``unit_features``), best first."""
    weights = compose.idf_weights(question, [p.text for p in passages])
    term = compose.defined_term(question)
    scored: list[compose.Scored] = []
    for rank, passage in enumerate(passages):
        code = passage.kind == "code"
        path = str(passage.locator.get("path", ""))
        section = str(passage.locator.get("section", ""))
        model = _model(passage.kind)
        marks = compose.docstring_lines(passage.text) if code else []
        for unit in _units(rank, passage):
            features = compose.unit_features(
                unit,
                weights=weights,
                intent=intent,
                rank=rank,
                closeness=passage.score,
                context=_context(passage),
                code=code,
                doc=code and compose.is_doc(unit, marks),
                test=code and compose.is_test_path(path),
                recital=compose.is_recital(section),
                term=term,
            )
            scored.append(compose.Scored(unit, features, compose.linear(model, features)))
    return sorted(scored, key=lambda s: -s.score)


Embed = Callable[[Sequence[str]], list[list[float]]]


def _rescore(
    question: str,
    scored: list[compose.Scored],
    passages: Sequence[Passage],
    embed: Embed,
    query: list[float] | None = None,
) -> list[compose.Scored]:
    """The SHORTLIST best units, scored again with their closeness in meaning to the question
    (``query``, its vector, when it was embedded already; each unit is embedded with what
    names its passage)."""
    shortlist = scored[:SHORTLIST]
    texts = [f"{_context(passages[s.unit.rank])}\n{s.unit.text}" for s in shortlist]
    if query is None:
        query, *vectors = embed([question, *texts])
    else:
        vectors = embed(texts)
    for s, vector in zip(shortlist, vectors, strict=True):
        s.features["meaning"] = sum(a * b for a, b in zip(query, vector, strict=True))
        s.score = compose.linear(_model(passages[s.unit.rank].kind, "shortlist"), s.features)
    return sorted(shortlist, key=lambda s: -s.score) + scored[SHORTLIST:]


def answer(
    question: str,
    passages: list[Passage],
    *,
    review_threshold: float,
    embed: Embed | None = None,
    offset: float = 0.0,
    query: list[float] | None = None,
) -> Answer:
    """An extractive answer to ``question`` from ``passages`` (best first), with citations.

    It quotes what best answers the question (assets/compose.py): code statements, a whole
    provision, or a run of sentences, each cited; it abstains when no passage is close enough.
    With ``embed`` (the asset's embedder), the best units by words are also weighed by meaning.
    """
    prompt = build_prompt(question, passages)
    top = max((p.score for p in passages), default=0.0)
    if top < ABSTAIN_SCORE:
        return _abstain(prompt, passages, model=MODEL, why="no passage is close enough")
    considered = passages[:MAX_PASSAGES]
    intent = compose.intent_of(question)
    scored = _scored(question, considered, intent)
    if embed is not None and scored:
        scored = _rescore(question, scored, considered, embed, query)
    if not scored:
        return _abstain(prompt, passages, model=MODEL, why="no passage holds a quotable answer")
    # The passages quoted are those whose best unit scores best, QUOTED of them, each from its
    # best unit on (a code passage's docstring paragraph also gets the best statement after).
    best_of: dict[int, compose.Scored] = {}
    for s in scored:
        best_of.setdefault(s.unit.rank, s)
    lead, *others = best_of.values()
    floor = max(QUOTE_OVERLAP * lead.overlap, 1e-9)
    chosen: list[compose.Scored] = [lead, *(s for s in others if s.overlap >= floor)][:QUOTED]
    extra = []
    for piece in chosen:
        passage = considered[piece.unit.rank]
        if piece.features["doc"]:
            statement = next(
                (s for s in scored if s.unit.rank == piece.unit.rank and not s.features["doc"]),
                None,
            )
            if statement is not None:
                extra.append(statement)
    # Best passage first; a passage's pieces in their order in it.
    order = {rank: i for i, rank in enumerate(dict.fromkeys(c.unit.rank for c in chosen))}
    chosen = sorted([*chosen, *extra], key=lambda c: (order[c.unit.rank], c.unit.index))

    numbers: dict[int, int] = {}
    pieces: list[str] = []
    spans: dict[int, list[int]] = {}
    for piece in chosen:
        passage = considered[piece.unit.rank]
        n = numbers.setdefault(piece.unit.rank, len(numbers) + 1)
        if piece.features["doc"]:
            quoted = " ".join(
                line.strip().strip("\"'#").strip() for line in piece.unit.text.split("\n")
            )
            first, last = _absolute(passage, piece.unit)
            if first:
                low, high = spans.get(n, [first, last])
                spans[n] = [min(low, first), max(high, last)]
            pieces.append(f"{quoted} [{n}]")
        elif passage.kind == "code":
            body, span = _code_snippet(passage, piece.unit)
            if span:
                low, high = spans.get(n, span)
                spans[n] = [min(low, span[0]), max(high, span[1])]
            pieces.append(f"```\n{body}\n```\n[{n}]")
        elif passage.kind == "regulation":
            pieces.extend(f"{sentence} [{n}]" for sentence in _provision(passage, piece.unit))
        else:
            pieces.extend(f"{sentence} [{n}]" for sentence in _passage_text(passage, piece.unit))
    cited = {n: considered[rank] for rank, n in numbers.items()}
    quoted_code = [p for p in pieces if p.startswith("```")]
    for definition in _constants_named(question, "\n".join(quoted_code), considered):
        n = len(cited) + 1
        cited[n] = definition
        spans[n] = definition.locator["lines"]
        pieces.append(f"```\n{definition.text}\n```\n[{n}]")
    text = "\n".join(pieces) if any(p.startswith("```") for p in pieces) else " ".join(pieces)
    citations = []
    for n, passage in cited.items():
        locator = dict(passage.locator)
        if n in spans:  # code cites the lines it quotes
            locator["lines"] = spans[n]
        citations.append(Citation(n=n, text=passage.text, locator=locator))
    assessment = assess(text, cited=cited, shown=[p.text for p in passages])
    return Answer(
        text=text,
        citations=citations,
        prompt=prompt,
        passages=passages,
        **_judged(
            question,
            text,
            read=considered,
            cited=sorted(numbers),
            assessment=assessment,
            reasons=assessment.reasons(),
            review_threshold=review_threshold,
            offset=offset,
        ),
    )


def stream_answer(
    question: str,
    passages: list[Passage],
    *,
    review_threshold: float,
    embed: Embed | None = None,
    offset: float = 0.0,
    query: list[float] | None = None,
) -> Iterator[str | Answer]:
    """The extractive answer as a stream: its text in a few pieces, then the ``Answer``."""
    result = answer(
        question,
        passages,
        review_threshold=review_threshold,
        embed=embed,
        offset=offset,
        query=query,
    )
    yield from re.split(r"(?<=\])(?=[ \n])", result.text)
    yield result
