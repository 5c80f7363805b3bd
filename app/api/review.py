"""The review loop over HTTP: flags, the expert's queue and actions, verified answers, quality."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from app import reviewing
from app.api.schemas import (
    ERRORS,
    ErrorBody,
    FlagCreated,
    ReviewItemCorrected,
    ReviewItemPublic,
    ReviewQuality,
)
from app.deps import CurrentAccount, RuntimeDep, SessionDep
from assets.models import ReviewItem, VerifiedAnswer
from assets.schemas import ReviewSettingsPublic, VerifiedAnswerPublic
from core.patterns import NOT_BLANK, documented

router = APIRouter(tags=["review"], responses={401: ERRORS[401]})
ACTED = {"model": ErrorBody, "description": "Reviewed already, or the window closed"}


class FlagIn(BaseModel):
    note: str = Field(default="", max_length=2000, description="What looks wrong, for the expert")


class PickedCitation(BaseModel):
    """A passage picked from ``GET /v1/review/{id}/search``: its text and locator are read from
    the asset."""

    n: int | None = Field(
        default=None, ge=1, description="The number your answer's [n] markers use for it"
    )
    chunk_id: str = Field(
        min_length=1,
        max_length=200,
        description="A passage's id from the item's search; it must be a passage of this asset",
    )


class CitationIn(BaseModel):
    """A passage given as its text and locator (as the item shows its citations)."""

    n: int | None = Field(
        default=None, ge=1, description="The number your answer's [n] markers use for it"
    )
    text: str = Field(min_length=1, max_length=4000)
    locator: dict[str, Any] = Field(examples=[{"path": "policies.md", "lines": [5, 8]}])


class PassagePublic(BaseModel):
    chunk_id: str = Field(description="Cite it in a correction by this id")
    rank: int
    kind: str = Field(examples=["code", "regulation", "paper", "text"])
    text: str
    locator: dict[str, Any] = Field(examples=[{"path": "policies.md", "lines": [5, 8]}])


class CorrectionIn(BaseModel):
    answer: str = Field(min_length=1, max_length=20_000)
    citations: list[Annotated[PickedCitation | CitationIn, Field(union_mode="left_to_right")]] = (
        Field(default_factory=list, max_length=20)
    )


class VerifiedEdit(BaseModel):
    answer: str = Field(min_length=1, max_length=20_000)
    question: str | None = Field(default=None, max_length=2000)


class ReviewSettings(BaseModel):
    sample_rate: float | None = Field(default=None, ge=0, le=1)
    review_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    review_threshold: float | None = Field(default=None, ge=0, le=1)


def _item(session: Session, item: ReviewItem) -> ReviewItemPublic:
    return ReviewItemPublic.model_validate(reviewing.item_view(session, item))


def _verified(session: Session, verified: VerifiedAnswer) -> VerifiedAnswerPublic:
    return VerifiedAnswerPublic.model_validate(reviewing.verified_view(session, verified))


@router.post(
    "/consultations/{consultation_id}/flag",
    status_code=201,
    responses={404: ERRORS[404], 409: ACTED, 422: ERRORS[422]},
)
def flag(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    consultation_id: str,
    body: FlagIn,
) -> FlagCreated:
    """Flag an answer you got, within its acceptance window: the expert reviews it and its
    money stays in escrow until then."""
    item = reviewing.flag(
        session, runtime, account=account, consultation_id=consultation_id, note=body.note
    )
    return FlagCreated(review_item=item.id, status=item.status, due_at=item.due_at.isoformat())


@router.get("/review/queue", responses={403: ERRORS[403], 422: ERRORS[422]})
def queue(
    session: SessionDep,
    account: CurrentAccount,
    status: Annotated[str, Query(pattern="^(open|approved|corrected|rejected)$")] = "open",
) -> list[ReviewItemPublic]:
    """Your assets' answers waiting for review, oldest first, then the most valuable."""
    return [
        _item(session, item) for item in reviewing.queue(session, account=account, status=status)
    ]


@router.get("/review/{item_id}", responses={404: ERRORS[404]})
def get_item(session: SessionDep, account: CurrentAccount, item_id: str) -> ReviewItemPublic:
    item = reviewing.get_item(session, account=account, item_id=item_id)
    return _item(session, item)


@router.get("/review/{item_id}/search", responses={404: ERRORS[404], 422: ERRORS[422]})
def search(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    item_id: str,
    q: Annotated[
        str, Query(min_length=1, max_length=2000, json_schema_extra=documented(NOT_BLANK))
    ],
    k: Annotated[int, Query(ge=1, le=20)] = reviewing.SEARCH_K,
) -> list[PassagePublic]:
    """Passages of the item's asset for ``q``, best first (the asset's expert only): cite them
    in a correction by ``chunk_id``."""
    passages = reviewing.search_passages(
        session, runtime, account=account, item_id=item_id, query=q, k=k
    )
    return [
        PassagePublic(chunk_id=p.id, rank=i, kind=p.kind, text=p.text, locator=p.locator)
        for i, p in enumerate(passages, 1)
    ]


@router.post("/review/{item_id}/approve", responses={404: ERRORS[404], 409: ACTED})
def approve(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, item_id: str
) -> ReviewItemPublic:
    """The answer stands: its money is released to you."""
    item = reviewing.approve(session, runtime, account=account, item_id=item_id)
    return _item(session, item)


@router.post("/review/{item_id}/reject", responses={404: ERRORS[404], 409: ACTED})
def reject(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, item_id: str
) -> ReviewItemPublic:
    """The answer was wrong and you offer no fix: the client is refunded."""
    item = reviewing.reject(session, runtime, account=account, item_id=item_id)
    return _item(session, item)


@router.post(
    "/review/{item_id}/correct", responses={404: ERRORS[404], 409: ACTED, 422: ERRORS[422]}
)
def correct(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    item_id: str,
    body: CorrectionIn,
) -> ReviewItemCorrected:
    """Your answer replaces the given one, the client is told, the money is released, and later
    questions that mean the same are answered from it."""
    item, verified = reviewing.correct(
        session,
        runtime,
        account=account,
        item_id=item_id,
        answer=body.answer,
        citations=[c.model_dump(exclude_none=True) for c in body.citations],
    )
    return ReviewItemCorrected.model_validate(
        {**reviewing.item_view(session, item), "verified_answer": verified.id}
    )


@router.get(
    "/assets/{slug}/verified", responses={403: ERRORS[403], 404: ERRORS[404], 422: ERRORS[422]}
)
def list_verified(
    session: SessionDep, account: CurrentAccount, slug: str, retired: bool = False
) -> list[VerifiedAnswerPublic]:
    return [
        _verified(session, v)
        for v in reviewing.list_verified(session, account=account, slug=slug, retired=retired)
    ]


@router.put("/verified/{verified_id}", responses={404: ERRORS[404], 422: ERRORS[422]})
def edit_verified(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    verified_id: str,
    body: VerifiedEdit,
) -> VerifiedAnswerPublic:
    verified = reviewing.edit_verified(
        session,
        runtime,
        account=account,
        verified_id=verified_id,
        answer=body.answer,
        question=body.question,
    )
    return _verified(session, verified)


@router.delete("/verified/{verified_id}", responses={404: ERRORS[404]})
def retire_verified(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, verified_id: str
) -> VerifiedAnswerPublic:
    """Retire a verified answer: it is never served again."""
    verified = reviewing.retire_verified(session, runtime, account=account, verified_id=verified_id)
    return _verified(session, verified)


@router.put(
    "/assets/{slug}/review-settings",
    responses={403: ERRORS[403], 404: ERRORS[404], 422: ERRORS[422]},
)
def review_settings(
    session: SessionDep, account: CurrentAccount, slug: str, body: ReviewSettings
) -> ReviewSettingsPublic:
    """Sample rate of random reviews, your target response time, the confidence threshold."""
    asset = reviewing.set_review_settings(session, account=account, slug=slug, **body.model_dump())
    return ReviewSettingsPublic(
        asset=asset.slug,
        sample_rate=asset.sample_rate,
        review_hours=asset.review_hours,
        review_threshold=asset.review_threshold,
    )


@router.get("/assets/{slug}/quality", responses={403: ERRORS[403], 404: ERRORS[404]})
def quality(session: SessionDep, account: CurrentAccount, slug: str) -> ReviewQuality:
    """Answers given, flagged, approved, corrected and rejected; time to review; verified share."""
    return ReviewQuality.model_validate(reviewing.quality(session, account=account, slug=slug))
