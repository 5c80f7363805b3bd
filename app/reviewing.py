"""The review loop's use cases, where answers, money and notifications meet: flags (low
confidence, sampled, the client's), the expert's queue and actions, verified answers, and
the quality figures of an asset (counted by ``assets.review.asset_quality``)."""

from typing import Any

from sqlmodel import Session

from app import notifications
from app.accounts import viewer_of
from app.models import Account, Role
from app.runtime import Runtime
from assets import retrieval, review
from assets.abbreviations import Abbreviations
from assets.errors import ConsultationNotFound
from assets.models import Asset, Consultation, ReviewItem, ReviewStatus, VerifiedAnswer
from assets.service import get_managed_asset
from billing import service as billing
from billing.errors import ChargeSettled
from billing.models import Charge, ChargeStatus
from core.clock import utcnow
from core.errors import Forbidden, InvalidInput

OPEN = billing.UNSETTLED
# Passages a search for a correction's citations shows at once.
SEARCH_K = 8


def _expert_name(session: Session, expert_id: str) -> str:
    expert = session.get(Account, expert_id)
    return expert.name if expert else "the expert"


def abbreviations_of(runtime: Runtime, asset: Asset) -> Abbreviations:
    """The abbreviations the asset's documents define, as its last ingest learnt them."""
    return runtime.lexical.get(asset.collection).abbreviations


def after_answer(
    session: Session,
    runtime: Runtime,
    *,
    consultation: Consultation,
    asset: Asset,
    charge: Charge,
) -> ReviewItem | None:
    """Send a new answer to review when its confidence is low, or at the sample rate."""
    if consultation.account_id == asset.owner_id or consultation.verified_answer_id:
        return None  # the expert's own questions, and the expert's own words
    if consultation.status == "pending_review":
        reason, detail = "low_confidence", consultation.review_reason or "low confidence"
    elif consultation.status == "final" and review.sampled(asset):
        reason, detail = "sampled", "picked at random for review"
    else:
        return None
    now = utcnow()
    item = review.flag(
        session,
        consultation=consultation,
        asset=asset,
        reason=reason,
        detail=detail,
        now=now,
        value=charge.amount,
        currency=charge.currency,
    )
    billing.send_to_review(session, charge)
    _tell_expert(session, runtime, item, asset)
    return item


def _quoted(question: str) -> str:
    """A question as a notification quotes it: on one line, and not too long."""
    text = " ".join(question.split())
    return f"'{text}'" if len(text) <= 120 else f"'{text[:117]}...'"


_WHY = {
    "low_confidence": "its confidence is low",
    "sampled": "it was picked at random for review",
    "client_flag": "the client flagged it",
}


def _tell_expert(session: Session, runtime: Runtime, item: ReviewItem, asset: Asset) -> None:
    consultation = session.get(Consultation, item.consultation_id)
    assert consultation is not None  # a foreign key guarantees it
    why = _WHY.get(item.reason, item.reason.replace("_", " "))
    notifications.notify(
        session,
        runtime,
        account_id=asset.owner_id,
        kind="review.new",
        message=f"The answer to {_quoted(consultation.question)} on {asset.title} waits for "
        f"your review: {why}",
        data={"review_item": item.id, "asset": asset.slug},
    )


def flag(
    session: Session, runtime: Runtime, *, account: Account, consultation_id: str, note: str = ""
) -> ReviewItem:
    """The client flags an answer within its acceptance window: its money stays in escrow and
    the answer goes to the expert's queue."""
    charge = billing.charge_for_consultation(session, consultation_id)
    if charge is None or charge.account_id != account.id:
        raise ConsultationNotFound(f"no consultation {consultation_id}")
    now = utcnow()
    if charge.status == ChargeStatus.held and charge.release_after <= now:
        raise ChargeSettled(
            f"the acceptance window of this answer closed on "
            f"{charge.release_after:%Y-%m-%d %H:%M} UTC; it can no longer be flagged"
        )
    if charge.status != ChargeStatus.held:
        raise ChargeSettled(
            f"this answer is {charge.status.replace('_', ' ')}; it cannot be flagged"
        )
    consultation = session.get(Consultation, consultation_id)
    asset = session.get(Asset, charge.asset_id)
    assert consultation is not None
    assert asset is not None
    billing.dispute(session, charge, account_id=account.id)
    item = review.flag(
        session,
        consultation=consultation,
        asset=asset,
        reason="client_flag",
        detail="flagged by the client",
        client_note=note,
        now=now,
        value=charge.amount,
        currency=charge.currency,
    )
    _tell_expert(session, runtime, item, asset)
    return item


def queue(session: Session, *, account: Account, status: str = "open") -> list[ReviewItem]:
    if account.role == Role.client:
        raise Forbidden("the review queue is for experts")
    return review.queue(session, viewer=viewer_of(account), status=status)


def item_view(session: Session, item: ReviewItem) -> dict[str, Any]:
    """An item as the expert sees it: question, answer, citations with their passages, why,
    the client's note, age, due time and value."""
    consultation = session.get(Consultation, item.consultation_id)
    asset = session.get(Asset, item.asset_id)
    charge = billing.charge_for_consultation(session, item.consultation_id)
    assert consultation is not None
    assert asset is not None
    now = utcnow()
    return {
        "id": item.id,
        "asset": asset.slug,
        "asset_title": asset.title,
        "consultation_id": consultation.id,
        "question": consultation.question,
        "answer": consultation.answer,
        "original_answer": item.original_answer,
        "citations": consultation.citations,
        "confidence": consultation.confidence,
        "reason": item.reason,
        "detail": item.detail,
        "client_note": item.client_note,
        "status": item.status,
        "value": item.value,
        "currency": item.currency,
        "charge_status": charge.status if charge else None,
        "created_at": item.created_at.isoformat(),
        "age_hours": round((now - item.created_at).total_seconds() / 3600, 1),
        "due_at": item.due_at.isoformat(),
        "overdue": item.status == ReviewStatus.open and item.due_at < now,
        "acted_by": item.acted_by,
        "acted_at": item.acted_at.isoformat() if item.acted_at else None,
    }


def get_item(session: Session, *, account: Account, item_id: str) -> ReviewItem:
    """An item of the account's assets (any for an admin); others are reported missing."""
    return review.get_item(session, viewer=viewer_of(account), item_id=item_id)


def _settle_money(session: Session, runtime: Runtime, item: ReviewItem, *, refund: bool) -> None:
    charge = billing.charge_for_consultation(session, item.consultation_id)
    if charge is None or charge.status not in OPEN:
        return  # accepted by the client meanwhile, or free
    if refund:
        billing.refund(session, charge, now=utcnow())
    else:
        billing.release(
            session,
            charge,
            fee_bps=runtime.settings.billing.platform_fee_bps,
            now=utcnow(),
            allowed=OPEN,
        )


def _tell_client(
    session: Session, runtime: Runtime, item: ReviewItem, kind: str, outcome: str
) -> None:
    """Tell the client what became of their answer: "Your answer to '...' on <asset> was
    <outcome>"."""
    consultation = session.get(Consultation, item.consultation_id)
    asset = session.get(Asset, item.asset_id)
    assert consultation is not None  # foreign keys guarantee both
    assert asset is not None
    notifications.notify(
        session,
        runtime,
        account_id=consultation.account_id,
        kind=kind,
        message=f"Your answer to {_quoted(consultation.question)} on {asset.title} was {outcome}",
        data={"consultation_id": consultation.id, "status": consultation.status},
    )


def approve(session: Session, runtime: Runtime, *, account: Account, item_id: str) -> ReviewItem:
    """The answer stands: its hold is released to the expert."""
    item = get_item(session, account=account, item_id=item_id)
    review.approve(session, item, actor_id=account.id, now=utcnow())
    _settle_money(session, runtime, item, refund=False)
    _tell_client(
        session, runtime, item, "review.approved", f"approved by {account.name}: it stands"
    )
    return item


def reject(session: Session, runtime: Runtime, *, account: Account, item_id: str) -> ReviewItem:
    """The answer was wrong and there is no fix: the client's money (or quota) comes back."""
    item = get_item(session, account=account, item_id=item_id)
    review.reject(session, item, actor_id=account.id, now=utcnow())
    _settle_money(session, runtime, item, refund=True)
    _tell_client(
        session,
        runtime,
        item,
        "review.rejected",
        f"found wrong by {account.name}: what it cost comes back to you",
    )
    return item


def search_passages(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    item_id: str,
    query: str,
    k: int = SEARCH_K,
) -> list[retrieval.Passage]:
    """Passages of the item's asset for ``query`` (hybrid search, as answers use), for the
    expert to cite in a correction; another expert's item is not found."""
    item = get_item(session, account=account, item_id=item_id)
    asset = session.get(Asset, item.asset_id)
    assert asset is not None  # a foreign key guarantees it
    return retrieval.search(
        asset,
        query=query,
        k=k,
        index=runtime.index,
        embedder=runtime.embedder,
        lexical=runtime.lexical,
        reranker=runtime.reranker,
    )


def _resolve_citations(
    runtime: Runtime, asset: Asset, citations: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Citations as the expert gave them, a picked passage (``chunk_id``) taking its text and
    locator from the asset's own index rather than from the request."""
    picked = {
        p.id: p
        for p in review.passages_by_id(
            asset,
            [str(c["chunk_id"]) for c in citations if c.get("chunk_id")],
            index=runtime.index,
        )
    }
    resolved = []
    for c in citations:
        passage = picked.get(str(c.get("chunk_id") or ""))
        if passage is None:
            resolved.append(c)
        else:
            resolved.append({"n": c.get("n"), "text": passage.text, "locator": passage.locator})
    return resolved


def correct(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    item_id: str,
    answer: str,
    citations: list[dict[str, Any]],
) -> tuple[ReviewItem, VerifiedAnswer]:
    """The expert's answer replaces the given one, becomes a verified answer, and the hold is
    released. A citation is a passage as shown (text and locator) or one the expert picked by
    its ``chunk_id``, which must be a passage of the item's asset."""
    item = get_item(session, account=account, item_id=item_id)
    asset = session.get(Asset, item.asset_id)
    assert asset is not None  # a foreign key guarantees it
    _, verified = review.correct(
        session,
        item,
        actor_id=account.id,
        expert_name=_expert_name(session, item.expert_id),
        answer=answer,
        citations=_resolve_citations(runtime, asset, citations),
        index=runtime.index,
        embedder=runtime.embedder,
        abbreviations=abbreviations_of(runtime, asset),
        now=utcnow(),
    )
    _settle_money(session, runtime, item, refund=False)
    _tell_client(session, runtime, item, "review.corrected", f"corrected by {account.name}")
    return item, verified


# Verified answers


def verified_view(session: Session, verified: VerifiedAnswer) -> dict[str, Any]:
    return {
        "id": verified.id,
        "question": verified.question,
        "answer": verified.answer,
        "citations": verified.citations,
        "locator": review.verified_locator(verified, _expert_name(session, verified.expert_id)),
        "retired": verified.retired_at is not None,
        "created_at": verified.created_at.isoformat(),
        "updated_at": verified.updated_at.isoformat(),
    }


def list_verified(
    session: Session, *, account: Account, slug: str, retired: bool = False
) -> list[VerifiedAnswer]:
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return review.list_verified(session, asset=asset, retired=retired)


def list_abbreviations(
    session: Session, runtime: Runtime, *, account: Account, slug: str
) -> list[tuple[str, str]]:
    """The abbreviations an asset the account manages defines, with their long forms."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return list(abbreviations_of(runtime, asset).pairs)


def edit_verified(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    verified_id: str,
    answer: str,
    question: str | None = None,
) -> VerifiedAnswer:
    verified, asset = review.get_verified(
        session, viewer=viewer_of(account), verified_id=verified_id
    )
    return review.edit_verified(
        session,
        verified,
        asset=asset,
        answer=answer,
        question=question,
        index=runtime.index,
        embedder=runtime.embedder,
        abbreviations=abbreviations_of(runtime, asset),
        now=utcnow(),
    )


def retire_verified(
    session: Session, runtime: Runtime, *, account: Account, verified_id: str
) -> VerifiedAnswer:
    verified, asset = review.get_verified(
        session, viewer=viewer_of(account), verified_id=verified_id
    )
    return review.retire_verified(session, verified, asset=asset, index=runtime.index, now=utcnow())


def set_review_settings(
    session: Session,
    *,
    account: Account,
    slug: str,
    sample_rate: float | None = None,
    review_hours: int | None = None,
    review_threshold: float | None = None,
) -> Asset:
    """The expert's review settings of an asset: sample rate, target response time, threshold."""
    if sample_rate is not None and not 0 <= sample_rate <= 1:
        raise InvalidInput("the sample rate is a share between 0 and 1")
    if review_hours is not None and not 1 <= review_hours <= 24 * 30:
        raise InvalidInput("the target response time is between 1 hour and 30 days")
    if review_threshold is not None and not 0 <= review_threshold <= 1:
        raise InvalidInput("the confidence threshold is between 0 and 1")
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    if sample_rate is not None:
        asset.sample_rate = sample_rate
    if review_hours is not None:
        asset.review_hours = review_hours
    if review_threshold is not None:
        asset.review_threshold = review_threshold
    session.add(asset)
    session.flush()
    return asset


# Quality


def quality(session: Session, *, account: Account, slug: str) -> dict[str, Any]:
    """How the asset's answers fare (``assets.review.asset_quality``), for its owner and admins."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return review.asset_quality(session, asset)
