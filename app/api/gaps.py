"""Content gaps over HTTP: an asset's questions that abstained, went to review or were
flagged, grouped by meaning, for its expert and admins (``app.gaps``)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app import gaps
from app.api.schemas import ERRORS, ErrorBody
from app.deps import CurrentAccount, RuntimeDep, SessionDep

router = APIRouter(tags=["gaps"], responses={401: ERRORS[401]})

MISMATCH = {
    "model": ErrorBody,
    "description": "The asset was embedded by another model than the one configured now",
}


class ReasonCounts(BaseModel):
    abstained: int = Field(ge=0, description="The sources did not answer it (free to the asker)")
    review: int = Field(ge=0, description="Sent to review for its low confidence")
    flagged: int = Field(ge=0, description="Flagged by its client")


class ReasonWeeks(BaseModel):
    abstained: list[int]
    review: list[int]
    flagged: list[int]


class Money(BaseModel):
    currency: str = Field(description="ISO 4217, lower case")
    amount: int = Field(description="Minor units (cents)")


class GapCluster(BaseModel):
    label: str = Field(description="The group's most typical question")
    size: int = Field(ge=1)
    reasons: ReasonCounts
    examples: list[str] = Field(description=f"Up to {gaps.EXAMPLES}, most typical first")
    weeks: list[int] = Field(description="Questions per week, aligned with the report's weeks")
    last_asked: datetime
    lost_revenue: list[Money]


class GapReport(BaseModel):
    asset: str
    since: datetime
    until: datetime
    weeks: list[str] = Field(description="The Monday (ISO date) starting each week, oldest first")
    total: int
    totals: ReasonCounts
    by_week: ReasonWeeks
    lost_revenue: list[Money] = Field(
        description="What abstentions would have cost their askers at the per-question price "
        "then in force (admins' questions count nothing): an upper bound"
    )
    clustered: int = Field(description=f"Questions grouped: the newest {gaps.MAX_CLUSTERED}")
    clusters: list[GapCluster] = Field(description="Groups of questions by meaning, biggest first")


@router.get(
    "/assets/{slug}/gaps",
    response_model=GapReport,
    responses={403: ERRORS[403], 404: ERRORS[404], 409: MISMATCH, 422: ERRORS[422]},
)
def asset_gaps(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    slug: str,
    weeks: Annotated[int, Query(ge=1, le=52, description="Calendar weeks, this one included")] = 4,
) -> dict[str, object]:
    """Your asset's questions that abstained, went to review or were flagged, grouped by
    meaning, with counts per week and the revenue lost to abstentions."""
    report = gaps.for_owner(session, runtime, account=account, slug=slug, weeks=weeks)
    return report.public()
