"""Engagements over HTTP: commission (or escalate an answer), agree the terms, fund, deliver,
approve, revise, dispute, and an admin's settlement of disputes. The step routes are made from
``engagements.STEPS``."""

import inspect
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from app import engagements
from app.api.schemas import ERRORS, ErrorBody
from app.bodies import FILES, Form, multipart_body, read_files
from app.deps import CurrentAccount, RuntimeDep, SessionDep
from app.engagements import MilestoneIn, Step, StepIn
from core.errors import InvalidInput
from marketplace.engagements import Terms

router = APIRouter(tags=["engagements"], responses={401: ERRORS[401], 404: ERRORS[404]})
Responses = dict[int | str, dict[str, Any]]
REFUSED = {"model": ErrorBody, "description": "Not a step this engagement allows now"}
STEP: Responses = {403: ERRORS[403], 409: REFUSED, 422: ERRORS[422]}
PAY: Responses = {402: {"model": ErrorBody, "description": "Not enough credits"}}
NOT_CONFIGURED: dict[str, Any] = {
    "model": ErrorBody,
    "description": "Stripe is not configured on this server, or the step is refused",
}


class EngagementIn(BaseModel):
    expert_id: str = Field(max_length=40, description="The expert's account id")
    asset: str | None = Field(
        default=None, max_length=64, description="One of the expert's assets it is about (slug)"
    )
    title: str = Field(min_length=1, max_length=200)
    scope: str = Field(min_length=1, max_length=20_000)
    deliverable: str = Field(min_length=1, max_length=1000, examples=["A written report"])
    currency: str = Field(default="usd", min_length=3, max_length=3)
    deadline: datetime | None = Field(default=None, description="UTC when no zone is given")
    milestones: list[MilestoneIn] = Field(min_length=1, max_length=20)
    revision_limit: int = Field(default=2, ge=0, le=10)
    review_days: int = Field(
        default=14, ge=1, le=90, description="Days a delivery waits for the client before release"
    )


class EscalationIn(BaseModel):
    """Everything is optional: by default the expert is asked for a written answer to the
    question, at the typical price on their profile, with the answer and its sources attached."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    note: str = Field(default="", max_length=5000, description="What you want the expert to do")
    scope: str | None = Field(
        default=None,
        min_length=1,
        max_length=20_000,
        description="Replaces the scope written from the question, answer and sources",
    )
    deliverable: str | None = Field(default=None, min_length=1, max_length=1000)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    deadline: datetime | None = None
    milestones: list[MilestoneIn] | None = Field(default=None, min_length=1, max_length=20)
    revision_limit: int = Field(default=2, ge=0, le=10)
    review_days: int = Field(default=14, ge=1, le=90)


class DraftIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    asset: str | None = Field(
        default=None, max_length=64, description="Your asset (default: the engagement's)"
    )


class Party(BaseModel):
    id: str
    name: str | None


class MilestonePublic(BaseModel):
    id: str
    position: int
    title: str
    amount: int
    status: str = Field(
        examples=["pending", "funded", "delivered", "revision", "disputed", "released"]
    )
    held: int = Field(description="In escrow now (minor units)")
    report: str
    report_pdf: bool
    revisions: int
    delivered_at: datetime | None
    release_after: datetime | None = Field(
        description="Released to the expert then unless the client answers"
    )
    settled_at: datetime | None
    actions: list[str] = Field(description="Steps you may take on it now")


class EventPublic(BaseModel):
    kind: str
    actor: str | None
    actor_id: str | None
    milestone_id: str | None
    data: dict[str, Any]
    created_at: datetime


class Origin(BaseModel):
    consultation_id: str
    question: str
    answer: str
    citations: list[dict[str, Any]]
    asked_at: datetime


class EngagementPublic(BaseModel):
    id: str
    status: str = Field(
        examples=["requested", "proposed", "accepted", "declined", "completed", "cancelled"]
    )
    title: str
    scope: str
    deliverable: str
    currency: str
    total: int
    deadline: datetime | None
    revision_limit: int
    review_days: int
    client: Party
    expert: Party
    asset: str | None
    created_at: datetime
    viewer: str = Field(description="Your part: client, expert or admin")
    actions: list[str] = Field(description="Steps you may take on the engagement now")
    milestones: list[MilestonePublic]
    events: list[EventPublic]
    origin: Origin | None = Field(description="The answer this engagement was escalated from")


class EngagementSummary(BaseModel):
    id: str
    title: str
    status: str
    currency: str
    total: int
    milestones: list[str]
    client: Party
    expert: Party
    viewer: str
    your_turn: bool
    created_at: datetime


class CheckoutStarted(BaseModel):
    checkout_url: str = Field(description="Stripe's payment page: send the client there")


class Draft(BaseModel):
    asset: str
    question: str
    answer: str
    status: str
    confidence: float
    citations: list[dict[str, Any]]
    markdown: str = Field(description="The answer and its sources, to insert into the report")


class DisputePublic(BaseModel):
    engagement_id: str
    title: str
    milestone_id: str
    position: int
    milestone: str
    amount: int
    currency: str
    held: int
    client: str | None
    expert: str | None
    reason: str


def _public(session: SessionDep, account: CurrentAccount, engagement_id: str) -> EngagementPublic:
    return EngagementPublic.model_validate(
        engagements.view(session, account=account, engagement_id=engagement_id)
    )


@router.post(
    "/engagements", status_code=status.HTTP_201_CREATED, responses={403: ERRORS[403], **STEP}
)
def commission(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, body: EngagementIn
) -> EngagementPublic:
    """Ask an expert for fixed-scope work; it is paid per milestone, into escrow, once agreed."""
    eng = engagements.request(
        session,
        runtime,
        account=account,
        expert_id=body.expert_id,
        asset_slug=body.asset,
        terms=Terms(
            title=body.title,
            scope=body.scope,
            deliverable=body.deliverable,
            currency=body.currency,
            deadline=body.deadline,
            milestones=[m.terms() for m in body.milestones],
            revision_limit=body.revision_limit,
            review_days=body.review_days,
        ),
    )
    return _public(session, account, eng.id)


@router.post(
    "/consultations/{consultation_id}/escalate",
    status_code=status.HTTP_201_CREATED,
    responses=STEP,
)
def escalate(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    consultation_id: str,
    body: EscalationIn | None = None,
) -> EngagementPublic:
    """Turn an answer you got into an engagement request to the asset's expert, with the
    question, the answer and its citations attached."""
    body = body or EscalationIn()
    eng = engagements.escalate(
        session,
        runtime,
        account=account,
        consultation_id=consultation_id,
        title=body.title,
        scope=body.scope,
        note=body.note,
        deliverable=body.deliverable,
        milestones=[m.terms() for m in body.milestones] if body.milestones else None,
        currency=body.currency,
        deadline=body.deadline,
        revision_limit=body.revision_limit,
        review_days=body.review_days,
    )
    return _public(session, account, eng.id)


@router.get("/engagements")
def list_engagements(session: SessionDep, account: CurrentAccount) -> list[EngagementSummary]:
    """Engagements you commissioned or were commissioned for (every one, for an admin)."""
    return [
        EngagementSummary.model_validate(row)
        for row in engagements.summaries(session, account=account)
    ]


@router.get("/engagements/{engagement_id}")
def get_engagement(
    session: SessionDep, account: CurrentAccount, engagement_id: str
) -> EngagementPublic:
    """The engagement, its milestones and events, and the steps you may take now."""
    return _public(session, account, engagement_id)


def _step_route(step: Step) -> None:
    """The route of one step in ``engagements.STEPS``: its body, its answer, its docs."""

    def take(
        *,
        session: SessionDep,
        runtime: RuntimeDep,
        account: CurrentAccount,
        engagement_id: str,
        milestone_id: str | None = None,
        body: StepIn | None = None,
    ) -> EngagementPublic | CheckoutStarted:
        inputs = body.inputs() if body is not None else {}
        url = engagements.take(
            session,
            runtime,
            account=account,
            step=step.name,
            engagement_id=engagement_id,
            milestone_id=milestone_id,
            **inputs,
        )
        if url is not None:
            return CheckoutStarted(checkout_url=url)
        return _public(session, account, engagement_id)

    # FastAPI reads a route's parameters from its signature: this step's body (required or
    # not), and the milestone id only on a milestone's path.
    params = []
    for param in inspect.signature(take).parameters.values():
        if param.name == "body":
            if step.body is None:
                continue
            if step.body_required:
                param = param.replace(annotation=step.body, default=inspect.Parameter.empty)
            else:
                param = param.replace(annotation=step.body | None)
        elif param.name == "milestone_id":
            if not step.milestone:
                continue
            param = param.replace(annotation=str, default=inspect.Parameter.empty)
        params.append(param)
    take.__signature__ = inspect.signature(take).replace(parameters=params)  # type: ignore[attr-defined]
    card = step.name == "fund"
    router.add_api_route(
        step.path,
        take,
        methods=["POST"],
        name=step.name,
        description=step.doc,
        response_model=EngagementPublic | CheckoutStarted if card else EngagementPublic,
        responses={**STEP, **PAY, 409: NOT_CONFIGURED, 502: {"model": ErrorBody}} if card else STEP,
    )


for _step in engagements.STEPS.values():
    _step_route(_step)


def _may_deliver(
    session: SessionDep, account: CurrentAccount, engagement_id: str, milestone_id: str
) -> None:
    engagements.check_deliver(
        session, account=account, engagement_id=engagement_id, milestone_id=milestone_id
    )
    session.commit()  # only reads: no connection is held while the file arrives


async def _report_upload(
    request: Request, _allowed: Annotated[None, Depends(_may_deliver)]
) -> Form:
    return await read_files(request, budget=engagements.MAX_REPORT_BYTES, max_files=1)


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/deliver-pdf",
    responses={**STEP, 413: ERRORS[413]},
    openapi_extra=multipart_body(
        {"file": "The report as a PDF"},
        {"report": {"type": "string", "maxLength": 200_000, "description": "A Markdown summary"}},
    ),
    max_body_size=FILES,
)
def deliver_pdf(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    engagement_id: str,
    milestone_id: str,
    form: Annotated[Form, Depends(_report_upload)],
) -> EngagementPublic:
    """The expert delivers a funded milestone's report as a PDF (with optional Markdown)."""
    files = form.files.get("file", [])
    if not files:
        raise InvalidInput("file: attach the report as a PDF")
    engagements.take(
        session,
        runtime,
        account=account,
        step="deliver",
        engagement_id=engagement_id,
        milestone_id=milestone_id,
        report=form.text("report", max_length=200_000),
        pdf=files[0][1],
    )
    return _public(session, account, engagement_id)


@router.get(
    "/engagements/{engagement_id}/milestones/{milestone_id}/report.pdf",
    response_class=FileResponse,
    responses={200: {"content": {"application/pdf": {}}}},
)
def report_pdf(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    engagement_id: str,
    milestone_id: str,
) -> FileResponse:
    """The PDF report of a milestone (its client, its expert, admins)."""
    path = engagements.report_file(
        session, runtime, account=account, engagement_id=engagement_id, milestone_id=milestone_id
    )
    return FileResponse(path, media_type="application/pdf", filename=f"report-{milestone_id}.pdf")


@router.post("/engagements/{engagement_id}/draft", responses=STEP)
def draft(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    engagement_id: str,
    body: DraftIn,
) -> Draft:
    """Ask your own asset while writing a report: the answer and its citations as Markdown to
    insert into the draft. Nothing is recorded or billed."""
    return Draft.model_validate(
        engagements.draft(
            session,
            runtime,
            account=account,
            engagement_id=engagement_id,
            question=body.question,
            slug=body.asset,
        )
    )


@router.get("/admin/disputes", responses={403: ERRORS[403]})
def list_disputes(session: SessionDep, account: CurrentAccount) -> list[DisputePublic]:
    """Disputed milestones waiting for an admin's settlement."""
    return [
        DisputePublic.model_validate(row) for row in engagements.disputes(session, account=account)
    ]
