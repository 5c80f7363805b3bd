"""Billing: plans, escrow decisions on answers, balances, statements, credits and payouts."""

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app import accounting, accounts, history
from app.api.schemas import ERRORS, ChargePublic, ErrorBody
from app.deps import AdminAccount, CurrentAccount, RuntimeDep, SessionDep
from billing import statements
from billing.models import Charge
from billing.schemas import (
    AnswerPage,
    ClientSummary,
    CreditsGranted,
    ExpertSummary,
    PayoutRun,
    PlatformSummary,
    Statement,
    StatementLinePublic,
    SubscriptionPublic,
)
from billing.service import MAX_AMOUNT, PlanTerms, charge_public, plan_public
from core.errors import Forbidden
from core.patterns import documented

CURRENCY = re.compile(r"^[A-Za-z]{3}$")
# YYYY-MM of a real month: years 0001 to 9999, months 01 to 12.
MONTH = r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(?:0[1-9]|1[0-2])$"
router = APIRouter(tags=["billing"], responses={401: ERRORS[401]})
CONFLICT = {"model": ErrorBody, "description": "Already settled"}


class PlanIn(BaseModel):
    """Prices in minor units (cents). Set ``per_query``, ``monthly`` (with ``included``), or
    both; without ``overage`` a subscription stops at its included questions."""

    # At least one price, as a number: the document says so, as PlanTerms.check does.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"per_query": {"type": "integer"}}, "required": ["per_query"]},
                {"properties": {"monthly": {"type": "integer"}}, "required": ["monthly"]},
            ],
            # A monthly plan includes at least one question; without one, no included
            # questions and no overage.
            "if": {"properties": {"monthly": {"type": "integer"}}, "required": ["monthly"]},
            "then": {"properties": {"included": {"minimum": 1}}, "required": ["included"]},
            "else": {"properties": {"included": {"maximum": 0}, "overage": {"type": "null"}}},
        }
    )

    currency: str = Field(
        default="usd",
        description="ISO 4217 code",
        json_schema_extra=documented(CURRENCY.pattern),
    )
    per_query: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    monthly: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    included: int = Field(default=0, ge=0, le=MAX_AMOUNT)
    overage: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    trial: int = Field(default=0, ge=0, le=1000)
    acceptance_hours: int = Field(default=72, ge=1, le=24 * 90)
    per_search: int | None = Field(
        default=None,
        ge=0,
        le=MAX_AMOUNT,
        description="A client's search of the passages, minor units: null, not sold (the "
        "corpus stays private; clients ask instead); 0, free; more, paid from credits per search",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        # Checked here rather than by ``pattern`` for a message a person can act on.
        if not CURRENCY.fullmatch(value):
            raise ValueError(f"{value!r} is not a three-letter ISO 4217 code such as usd or eur")
        return value


class PlanPublic(PlanIn):
    id: str
    asset: str


class CreditGrant(BaseModel):
    email: str
    amount: int = Field(gt=0, description="Minor units (cents)")
    currency: str = Field(default="usd", min_length=3, max_length=3)
    memo: str = Field(default="", max_length=200)


def _plan(slug: str, plan: Any) -> PlanPublic | None:
    data = plan_public(plan)
    return PlanPublic(asset=slug, **data) if data else None


def _charge(charge: Charge) -> ChargePublic:
    return ChargePublic.model_validate(charge_public(charge))


@router.get("/assets/{slug}/plan", responses={404: ERRORS[404]})
def get_plan(session: SessionDep, account: CurrentAccount, slug: str) -> PlanPublic | None:
    """The asset's current prices; null when it is free to ask."""
    asset, plan = accounting.get_plan(session, account=account, slug=slug)
    return _plan(asset.slug, plan)


@router.put("/assets/{slug}/plan", responses={403: ERRORS[403], 404: ERRORS[404], 422: ERRORS[422]})
def set_plan(session: SessionDep, account: CurrentAccount, slug: str, body: PlanIn) -> PlanPublic:
    """Set the asset's prices; they apply to new purchases, not to subscriptions already paid."""
    asset, plan = accounting.set_plan(
        session, account=account, slug=slug, terms=PlanTerms(**body.model_dump())
    )
    result = _plan(asset.slug, plan)
    assert result is not None
    return result


@router.post(
    "/assets/{slug}/subscribe",
    responses={
        402: {"model": ErrorBody, "description": "Not enough credits"},
        403: {"model": ErrorBody, "description": "Only client accounts subscribe"},
        404: ERRORS[404],
        409: {
            "model": ErrorBody,
            "description": "Subscribed already, or the asset has no monthly plan (it is sold "
            "per question: pay with credits)",
        },
    },
)
def subscribe(session: SessionDep, account: CurrentAccount, slug: str) -> SubscriptionPublic:
    """Buy a month of the asset's subscription from your credits (Stripe: see /checkout)."""
    sub = accounting.subscribe_with_credits(session, account=account, slug=slug)
    return SubscriptionPublic.model_validate(accounting.subscription_public(session, sub))


@router.post("/consultations/{consultation_id}/accept", responses={404: ERRORS[404], 409: CONFLICT})
def accept(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, consultation_id: str
) -> ChargePublic:
    """Accept an answer you asked: its money goes to the expert now."""
    return _charge(
        accounting.accept(session, runtime, account=account, consultation_id=consultation_id)
    )


@router.post(
    "/consultations/{consultation_id}/dispute", responses={404: ERRORS[404], 409: CONFLICT}
)
def dispute(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, consultation_id: str
) -> ChargePublic:
    """Dispute an answer you asked, within its window: the expert reviews it, and its money
    stays in escrow until then (``/flag`` does the same with a note for the expert)."""
    return _charge(
        accounting.dispute(session, runtime, account=account, consultation_id=consultation_id)
    )


@router.post(
    "/consultations/{consultation_id}/refund",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: CONFLICT},
)
def refund(session: SessionDep, account: CurrentAccount, consultation_id: str) -> ChargePublic:
    """Return an answer's money to the client (the asset's expert or an admin)."""
    return _charge(accounting.refund(session, account=account, consultation_id=consultation_id))


@router.post(
    "/consultations/{consultation_id}/release",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: CONFLICT},
)
def release(
    session: SessionDep, runtime: RuntimeDep, account: AdminAccount, consultation_id: str
) -> ChargePublic:
    """Settle a dispute for the expert: the money is released (admins)."""
    return _charge(
        accounting.release(session, runtime, account=account, consultation_id=consultation_id)
    )


@router.get("/billing/balance")
def balance(session: SessionDep, account: CurrentAccount) -> ClientSummary:
    """A client's credits, subscriptions and latest charges."""
    return ClientSummary.model_validate(accounting.client_summary(session, account=account))


class AnswersQuery(BaseModel):
    """Every filter is optional; those given must all hold."""

    model_config = ConfigDict(extra="forbid")

    status: history.Status | None = Field(default=None, description="The answer's status")
    asset: str | None = Field(default=None, max_length=64, description="An asset's slug")
    since: date | None = Field(default=None, description="Asked on or after this day (UTC)")
    until: date | None = Field(default=None, description="Asked on or before this day (UTC)")
    page: int = Field(default=1, ge=1, le=history.MAX_PAGE)
    per_page: int = Field(default=history.PER_PAGE, ge=1, le=100)


@router.get("/billing/answers", responses={422: ERRORS[422]})
def answers(
    session: SessionDep, account: CurrentAccount, query: Annotated[AnswersQuery, Query()]
) -> AnswerPage:
    """Your questions, newest first, a page at a time: each with its answer's status (final,
    pending_review, accepted, corrected, refunded or abstained), amount and date; ``next_page``
    and ``previous_page`` are the pages to ask for next (null at either end)."""
    return AnswerPage.model_validate(
        history.answers(
            session, account=account, filters=history.HistoryFilter(**query.model_dump())
        )
    )


@router.get("/billing/earnings", responses={403: ERRORS[403]})
def earnings(session: SessionDep, account: CurrentAccount) -> ExpertSummary:
    """An expert's earnings: held in escrow, available, on the way, paid out; and payouts."""
    if account.role == "client":
        raise Forbidden("earnings are for expert accounts")
    return ExpertSummary.model_validate(accounting.expert_summary(session, account=account))


@router.get(
    "/billing/statement",
    response_model=Statement,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV"}, **ERRORS},
)
def statement(
    session: SessionDep,
    account: CurrentAccount,
    month: Annotated[str | None, Query(pattern=MONTH, examples=["2026-11"])] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Statement | PlainTextResponse:
    """Your ledger lines for a month (default: this one), as JSON or CSV."""
    month = month or statements.this_month()
    lines = accounting.statement(session, account=account, month=month)
    if format == "csv":
        return PlainTextResponse(
            statements.statement_csv(lines),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="vouch-statement-{month}.csv"'},
        )
    return Statement(
        month=month,
        lines=[
            StatementLinePublic(
                date=line.at.isoformat(),
                kind=line.kind,
                memo=line.memo,
                account=line.account,
                currency=line.currency,
                amount=line.amount,
                balance=line.balance,
            )
            for line in lines
        ],
    )


@router.post("/admin/credits", responses={403: ERRORS[403], 404: ERRORS[404], 422: ERRORS[422]})
def grant_credits(
    session: SessionDep,
    _admin: AdminAccount,
    body: CreditGrant,
    idempotency_key: Annotated[
        str, Header(min_length=1, max_length=200, description="Grants once per key")
    ],
) -> CreditsGranted:
    """Grant a client credits without Stripe; the Idempotency-Key makes a retry grant once."""
    client = accounts.get_account_by_email(session, body.email)
    balance = accounting.grant_credits(
        session,
        account=client,
        amount=body.amount,
        currency=body.currency,
        key=f"grant:{idempotency_key}",
        memo=body.memo,
    )
    return CreditsGranted(email=client.email, currency=body.currency.lower(), credits=balance)


@router.get("/admin/revenue", responses={403: ERRORS[403]})
def revenue(session: SessionDep, _admin: AdminAccount) -> PlatformSummary:
    """Platform revenue, and the balance of every group of ledger accounts."""
    return PlatformSummary.model_validate(statements.platform_summary(session))


@router.post("/admin/payouts", responses={403: ERRORS[403]})
def run_payouts(_admin: AdminAccount, runtime: RuntimeDep) -> list[PayoutRun]:
    """Pay experts their available earnings above the minimum (pending without Stripe)."""
    return [
        PayoutRun.model_validate(payout, from_attributes=True)
        for payout in accounting.run_payouts(runtime)
    ]
