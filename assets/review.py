"""The expert's review: flagged consultations, the actions on them, and verified answers.

A consultation enters review when its confidence is low, when its client flags it, or by
random sampling. The expert approves it, corrects it (the correction becomes a verified answer),
or rejects it; each item is acted on once. Verified answers live in a companion collection of
the asset (``<collection>__verified``), one vector per question, so that a later question that
means the same is answered from the expert's words; a retired one is deleted from it.

Abbreviations the asset defines (``assets/abbreviations.py``) are matched either way: a
question that spells out a known long form is also indexed, and asked, with its abbreviation
("What must the data protection officer do?" as "What must the DPO do?"), so a correction asked
one way serves a question typed the other. The short form is the canonical one because MiniLM
scores questions that share a long noun phrase as alike whatever else they ask (all-MiniLM-L6-v2:
"What must the data protection officer do?" and "...the data protection authority do?" 0.92,
"Who appoints the data protection officer?" 0.82) and the bare abbreviation much less so (0.69,
0.72); the two forms of one question score 0.42. And a question that names a defined term is
never matched to one naming only other terms (DPO is not DPA, whatever the cosine).

Also here: the passages a correction cites, read again from the asset's index by id, and the
asset's review figures (``asset_quality``) that its quality score shows.
"""

import random
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from assets import retrieval
from assets.abbreviations import Abbreviations
from assets.answering import Answer, Citation
from assets.embeddings import Embedder
from assets.errors import (
    AlreadyInReview,
    InvalidCorrection,
    ReviewItemActed,
    ReviewItemNotFound,
    VerifiedAnswerNotFound,
)
from assets.index import Hit, VectorIndex
from assets.models import (
    Asset,
    Consultation,
    ReviewItem,
    ReviewStatus,
    VerifiedAnswer,
)
from assets.service import Viewer, can_manage

# Cosine similarity (all-MiniLM-L6-v2) from which a question counts as the verified one
# reworded: paraphrases score 0.75-0.95 here, different questions on one topic 0.3-0.65, but
# short ones that share a long noun phrase up to 0.8-0.9 ("Who appoints the data protection
# officer?" and "What must the data protection officer do?" 0.82).
VERIFIED_MATCH = 0.75
VERIFIED_CONFIDENCE = 0.95
# Nearest entries looked at per question form: a verified answer has up to two (its question
# as written, and with its long forms contracted), and one may be skipped for naming other terms.
_MATCH_K = 4
REASONS = ("low_confidence", "client_flag", "sampled")


def verified_collection(asset: Asset) -> str:
    return f"{asset.collection}__verified"


def flag(
    session: Session,
    *,
    consultation: Consultation,
    asset: Asset,
    reason: str,
    now: datetime,
    detail: str = "",
    client_note: str = "",
    value: int = 0,
    currency: str = "usd",
) -> ReviewItem:
    """Put a consultation in its expert's queue (once) and mark it pending review."""
    if reason not in REASONS:
        raise ValueError(f"unknown review reason {reason!r}")
    if session.exec(
        select(ReviewItem).where(ReviewItem.consultation_id == consultation.id)
    ).first():
        raise AlreadyInReview("this answer has been sent to review already")
    item = ReviewItem(
        consultation_id=consultation.id,
        asset_id=asset.id,
        expert_id=asset.owner_id,
        reason=reason,
        detail=detail[:500],
        client_note=client_note[:2000],
        value=value,
        currency=currency,
        status=ReviewStatus.open,
        original_answer=consultation.answer,
        due_at=now + timedelta(hours=asset.review_hours),
        created_at=now,
    )
    session.add(item)
    consultation.status = "pending_review"
    consultation.review_reason = (detail or reason)[:200]
    session.add(consultation)
    session.flush()
    return item


def sampled(asset: Asset, *, rng: random.Random | None = None) -> bool:
    """Whether a final answer goes to review at random (the asset's sample rate)."""
    return asset.sample_rate > 0 and (rng or random).random() < asset.sample_rate


def queue(
    session: Session, *, viewer: Viewer, status: str = ReviewStatus.open, limit: int = 100
) -> list[ReviewItem]:
    """The viewer's items (an admin sees all), oldest first, then the most valuable."""
    statement = (
        select(ReviewItem)
        .where(ReviewItem.status == status)
        .order_by(col(ReviewItem.created_at), col(ReviewItem.value).desc(), col(ReviewItem.id))
        .limit(limit)
    )
    if not viewer.is_admin:
        statement = statement.where(ReviewItem.expert_id == viewer.account_id)
    return list(session.exec(statement).all())


def get_item(session: Session, *, viewer: Viewer, item_id: str) -> ReviewItem:
    """An item of the viewer's assets; any other is reported as missing."""
    item = session.get(ReviewItem, item_id)
    if item is None or not (viewer.is_admin or item.expert_id == viewer.account_id):
        raise ReviewItemNotFound(f"no review item {item_id}")
    return item


def _act(session: Session, item: ReviewItem, *, to: str, actor_id: str, now: datetime) -> None:
    """Close an open item (a conditional update: of two concurrent actions one wins)."""
    result = session.execute(
        update(ReviewItem)
        .where(col(ReviewItem.id) == item.id, col(ReviewItem.status) == ReviewStatus.open)
        .values(status=to, acted_by=actor_id, acted_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(item)
    if getattr(result, "rowcount", 0) != 1:
        raise ReviewItemActed(f"this item was {item.status} already; it cannot be {to} again")


def _consultation(session: Session, item: ReviewItem) -> Consultation:
    consultation = session.get(Consultation, item.consultation_id)
    assert consultation is not None  # a foreign key guarantees it
    return consultation


def approve(session: Session, item: ReviewItem, *, actor_id: str, now: datetime) -> Consultation:
    """The answer stands as it is."""
    _act(session, item, to=ReviewStatus.approved, actor_id=actor_id, now=now)
    consultation = _consultation(session, item)
    consultation.status = "final"
    session.add(consultation)
    session.flush()
    return consultation


def reject(session: Session, item: ReviewItem, *, actor_id: str, now: datetime) -> Consultation:
    """The answer was wrong and the expert offers no fix."""
    _act(session, item, to=ReviewStatus.rejected, actor_id=actor_id, now=now)
    consultation = _consultation(session, item)
    consultation.status = "rejected"
    session.add(consultation)
    session.flush()
    return consultation


def reviewed_outcomes(session: Session, *, asset_id: str, limit: int) -> list[tuple[float, bool]]:
    """The asset's answers the expert has judged, newest first, up to ``limit``: the confidence
    its kind's calibration gave each, and whether it stood (approved; corrected or rejected
    did not)."""
    rows = session.exec(
        select(Consultation.prior_confidence, ReviewItem.status)
        .join(ReviewItem, col(ReviewItem.consultation_id) == col(Consultation.id))
        .where(
            col(ReviewItem.asset_id) == asset_id,
            col(ReviewItem.status) != ReviewStatus.open,
            col(Consultation.prior_confidence).is_not(None),
        )
        .order_by(col(ReviewItem.acted_at).desc())
        .limit(limit)
    ).all()
    return [(float(p), status == ReviewStatus.approved) for p, status in rows if p is not None]


@dataclass(frozen=True, slots=True)
class VerifiedSource:
    """Who verified an answer, for its citation."""

    expert_name: str


def verified_locator(verified: VerifiedAnswer, expert_name: str) -> dict[str, Any]:
    when = verified.updated_at.date().isoformat()
    return {"verified_answer": verified.id, "expert": expert_name, "date": when}


def _clean_citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The passages an expert cites in a correction: text and a locator each (and the number
    the expert's text calls it by, if any)."""
    cleaned = []
    for c in citations:
        text = str(c.get("text", "")).strip()
        locator = c.get("locator")
        if not text or not isinstance(locator, dict) or not locator:
            raise InvalidCorrection("each citation needs its text and a locator")
        cleaned.append({"text": text[:4000], "locator": locator, "n": c.get("n")})
    return cleaned


_MARKER = re.compile(r"\s?\[(\d+)\]")


def _renumber(answer: str, cited: list[dict[str, Any]]) -> str:
    """Point the expert's ``[n]`` markers at the numbers the kept passages get (the verified
    answer itself is [1], the passages follow); a marker to a passage not kept is dropped."""
    numbers = {c["n"]: i for i, c in enumerate(cited, 2) if isinstance(c.get("n"), int)}

    def swap(match: re.Match[str]) -> str:
        new = numbers.get(int(match.group(1)))
        return f"{match.group(0)[: -len(match.group(0).lstrip())]}[{new}]" if new else ""

    return _MARKER.sub(swap, answer).strip()


def correct(
    session: Session,
    item: ReviewItem,
    *,
    actor_id: str,
    expert_name: str,
    answer: str,
    citations: list[dict[str, Any]],
    index: VectorIndex,
    embedder: Embedder,
    abbreviations: Abbreviations,
    now: datetime,
) -> tuple[Consultation, VerifiedAnswer]:
    """Replace the answer with the expert's, store it as a verified answer and index it."""
    answer = answer.strip()
    if not answer:
        raise InvalidCorrection("the corrected answer is empty")
    if len(answer) > 20_000:
        raise InvalidCorrection("the corrected answer is longer than 20,000 characters")
    cited = _clean_citations(citations)
    answer = _renumber(answer, cited)
    _act(session, item, to=ReviewStatus.corrected, actor_id=actor_id, now=now)
    consultation = _consultation(session, item)
    verified = VerifiedAnswer(
        asset_id=item.asset_id,
        expert_id=item.expert_id,
        question=consultation.question,
        answer=answer,
        citations=[{"text": c["text"], "locator": c["locator"]} for c in cited],
        source_consultation_id=consultation.id,
        created_at=now,
        updated_at=now,
    )
    session.add(verified)
    session.flush()
    consultation.answer = answer
    consultation.citations = _numbered(verified, expert_name)
    consultation.status = "corrected"
    consultation.confidence = VERIFIED_CONFIDENCE
    consultation.verified_answer_id = verified.id
    session.add(consultation)
    session.flush()
    asset = session.get(Asset, item.asset_id)
    assert asset is not None
    _index(index, embedder, asset, verified, abbreviations)
    return consultation, verified


def _numbered(verified: VerifiedAnswer, expert_name: str) -> list[dict[str, Any]]:
    first = {"n": 1, "text": verified.answer, "locator": verified_locator(verified, expert_name)}
    rest = [{"n": n, **c} for n, c in enumerate(verified.citations, 2)]
    return [first, *rest]


def _short_id(verified_id: str) -> str:
    """The id of a verified question's contracted form in the collection."""
    return f"{verified_id}:short"


def _index(
    index: VectorIndex,
    embedder: Embedder,
    asset: Asset,
    verified: VerifiedAnswer,
    abbreviations: Abbreviations,
) -> None:
    """Index the question as written and, if it spells out a long form the asset defines,
    with its abbreviations (one call to the embedder either way)."""
    question = verified.question
    short = abbreviations.contract(question)
    texts = [question] if short == question else [question, short]
    vectors = embedder.embed(texts)
    collection = index.collection(verified_collection(asset))
    collection.upsert(
        ids=[verified.id, _short_id(verified.id)][: len(texts)],
        embeddings=vectors,
        documents=texts,
        metadatas=[{"kind": "verified", "verified": verified.id}] * len(texts),
    )
    if short == question:  # an edit may have taken the long form out
        collection.delete([_short_id(verified.id)])


def reindex_verified(
    session: Session,
    *,
    asset: Asset,
    index: VectorIndex,
    embedder: Embedder,
    abbreviations: Abbreviations,
) -> int:
    """Bring the contracted forms of the asset's live verified questions in line with the
    abbreviations it now defines (after an ingest changed them); returns how many were
    embedded. The questions as written are left as they are."""
    live = list_verified(session, asset=asset)
    if not live:
        return 0
    collection = index.collection(verified_collection(asset))
    short = {v.id: abbreviations.contract(v.question) for v in live}
    stored = {hit.id: hit.text for hit in collection.documents([_short_id(v.id) for v in live])}
    write = [v for v in live if short[v.id] not in (v.question, stored.get(_short_id(v.id)))]
    stale = [_short_id(v.id) for v in live if short[v.id] == v.question]
    stale = [key for key in stale if key in stored]
    if write:
        collection.upsert(
            ids=[_short_id(v.id) for v in write],
            embeddings=embedder.embed([short[v.id] for v in write]),
            documents=[short[v.id] for v in write],
            metadatas=[{"kind": "verified", "verified": v.id} for v in write],
        )
    if stale:
        collection.delete(stale)
    return len(write)


def _conflicting(asked: frozenset[str], stored: frozenset[str]) -> bool:
    """Whether two questions name different defined terms (DPO against DPA); one that names
    more of them than the other (DPO and GDPR against DPO) is not a conflict."""
    return bool(asked and stored) and not (asked <= stored or stored <= asked)


def _best(
    session: Session, hits: list[Hit], asked: frozenset[str], abbreviations: Abbreviations
) -> VerifiedAnswer | None:
    for hit in sorted(hits, key=lambda h: h.score, reverse=True):
        if hit.score < VERIFIED_MATCH:
            return None
        if _conflicting(asked, abbreviations.terms(hit.text)):
            continue
        verified = session.get(VerifiedAnswer, str(hit.metadata.get("verified") or hit.id))
        if verified is not None and verified.retired_at is None:
            return verified
    return None


def match_verified(
    session: Session,
    *,
    asset: Asset,
    question: str,
    vector: Sequence[float],
    index: VectorIndex,
    embedder: Embedder,
    abbreviations: Abbreviations,
) -> VerifiedAnswer | None:
    """The live verified answer whose question means the same as ``question`` (embedded as
    ``vector``), if any: asked as written, then, if it spells out a long form the asset
    defines, with its abbreviations (the only case that costs a second embedding)."""
    collection = index.collection(verified_collection(asset))
    hits = collection.query(vector, _MATCH_K)
    if not hits:  # no verified answers at all
        return None
    asked = abbreviations.terms(question)
    found = _best(session, hits, asked, abbreviations)
    short = abbreviations.contract(question)
    if found is None and short != question:
        (short_vector,) = embedder.embed([short])
        found = _best(session, collection.query(short_vector, _MATCH_K), asked, abbreviations)
    return found


def verified_answer(verified: VerifiedAnswer, *, question: str, expert_name: str) -> Answer:
    """The answer a client gets from a verified answer, cited to the expert who verified it."""
    citations = [
        Citation(c["n"], c["text"], c["locator"]) for c in _numbered(verified, expert_name)
    ]
    return Answer(
        text=verified.answer,
        citations=citations,
        confidence=VERIFIED_CONFIDENCE,
        status="final",
        prompt=f"Question: {question}\n\nVerified answer: {verified.answer}",
        model="verified",
    )


def list_verified(session: Session, *, asset: Asset, retired: bool = False) -> list[VerifiedAnswer]:
    statement = select(VerifiedAnswer).where(VerifiedAnswer.asset_id == asset.id)
    if not retired:
        statement = statement.where(col(VerifiedAnswer.retired_at).is_(None))
    return list(session.exec(statement.order_by(col(VerifiedAnswer.created_at).desc())).all())


def get_verified(
    session: Session, *, viewer: Viewer, verified_id: str
) -> tuple[VerifiedAnswer, Asset]:
    verified = session.get(VerifiedAnswer, verified_id)
    asset = session.get(Asset, verified.asset_id) if verified else None
    if verified is None or asset is None or not can_manage(viewer, asset):
        raise VerifiedAnswerNotFound(f"no verified answer {verified_id}")
    return verified, asset


def edit_verified(
    session: Session,
    verified: VerifiedAnswer,
    *,
    asset: Asset,
    answer: str,
    question: str | None,
    index: VectorIndex,
    embedder: Embedder,
    abbreviations: Abbreviations,
    now: datetime,
) -> VerifiedAnswer:
    """Change a live verified answer (and the question it answers)."""
    if verified.retired_at is not None:
        raise InvalidCorrection("this verified answer is retired; write a new one instead")
    if not answer.strip():
        raise InvalidCorrection("the verified answer is empty")
    verified.answer = answer.strip()
    if question is not None and question.strip():
        verified.question = question.strip()
    verified.updated_at = now
    session.add(verified)
    session.flush()
    _index(index, embedder, asset, verified, abbreviations)
    return verified


def retire_verified(
    session: Session, verified: VerifiedAnswer, *, asset: Asset, index: VectorIndex, now: datetime
) -> VerifiedAnswer:
    """Stop serving a verified answer: it leaves the index and is never matched again."""
    if verified.retired_at is None:
        verified.retired_at = now
        session.add(verified)
        session.flush()
    index.collection(verified_collection(asset)).delete([verified.id, _short_id(verified.id)])
    return verified


def passages_by_id(
    asset: Asset, chunk_ids: list[str], *, index: VectorIndex
) -> list[retrieval.Passage]:
    """The asset's own chunks with these ids, in the order given; InvalidCorrection (422) names
    an id that is not a passage of this asset."""
    wanted = list(dict.fromkeys(i for i in chunk_ids if i))
    if not wanted:
        return []
    found = {hit.id: hit for hit in index.collection(asset.collection).documents(wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise InvalidCorrection(
            f"{missing[0]!r} is not a passage of {asset.title}; cite passages found by searching "
            "this asset"
        )
    return [
        retrieval.Passage(
            id=hit.id,
            text=hit.text,
            kind=str(hit.metadata.get("kind", "text")),
            locator=retrieval.locator_from_metadata(hit.metadata),
            score=0.0,
        )
        for hit in (found[i] for i in wanted)
    ]


def asset_quality(session: Session, asset: Asset) -> dict[str, Any]:
    """How the asset's answers fare: counts and rates of flags and review outcomes, the median
    time to review, and the share of answers served from verified answers. Read-only and
    unchecked: the caller decides who may see it (the owner, or anyone for a published asset's
    public quality score)."""
    answers = session.exec(
        select(func.count())
        .select_from(Consultation)
        .where(Consultation.asset_id == asset.id, Consultation.account_id != asset.owner_id)
    ).one()
    from_verified = session.exec(
        select(func.count())
        .select_from(Consultation)
        .where(
            Consultation.asset_id == asset.id,
            Consultation.account_id != asset.owner_id,
            Consultation.model == "verified",
        )
    ).one()
    items = session.exec(select(ReviewItem).where(ReviewItem.asset_id == asset.id)).all()
    count = {
        "auto_flagged": sum(i.reason in ("low_confidence", "sampled") for i in items),
        "client_flagged": sum(i.reason == "client_flag" for i in items),
        "approved": sum(i.status == ReviewStatus.approved for i in items),
        "corrected": sum(i.status == ReviewStatus.corrected for i in items),
        "rejected": sum(i.status == ReviewStatus.rejected for i in items),
        "open": sum(i.status == ReviewStatus.open for i in items),
    }
    reviewed = count["approved"] + count["corrected"] + count["rejected"]
    hours = [
        (i.acted_at - i.created_at).total_seconds() / 3600 for i in items if i.acted_at is not None
    ]

    def rate(n: int, of: int) -> float | None:
        return round(n / of, 4) if of else None

    return {
        "asset": asset.slug,
        "answers": int(answers),
        **count,
        "rates": {
            "auto_flagged": rate(count["auto_flagged"], int(answers)),
            "client_flagged": rate(count["client_flagged"], int(answers)),
            "approved": rate(count["approved"], reviewed),
            "corrected": rate(count["corrected"], reviewed),
            "rejected": rate(count["rejected"], reviewed),
            "served_from_verified": rate(int(from_verified), int(answers)),
        },
        "served_from_verified": int(from_verified),
        "median_hours_to_review": round(statistics.median(hours), 2) if hours else None,
        "verified_answers": len(
            session.exec(
                select(VerifiedAnswer.id).where(
                    VerifiedAnswer.asset_id == asset.id, col(VerifiedAnswer.retired_at).is_(None)
                )
            ).all()
        ),
    }
