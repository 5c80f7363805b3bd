"""Billing pages: a client's credits and answers, an expert's earnings and prices, the
platform's revenue, and monthly statements."""

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import accounting, history, payments
from app.accounts import viewer_of
from app.deps import RuntimeDep, SessionDep, SignedIn, get_runtime
from app.models import Account, Role
from app.runtime import Runtime
from app.web.actions import Failed, page_action
from app.web.forms import PostGuard
from app.web.pages import refused, render
from assets import service as assets
from billing import service as billing
from billing import statements
from billing.errors import InvalidAmount, InvalidPlan
from billing.models import Plan
from core.clock import utcnow
from core.errors import InvalidInput, VouchError

router = APIRouter(include_in_schema=False)

# What a ledger account group holds, for the admin's revenue page.
GROUPS = {
    "platform:cash": "Paid in through Stripe (a source: negative)",
    "platform:grants": "Credits granted by admins (a source: negative)",
    "platform:losses": "Covered by the platform (a source: negative)",
    "platform:revenue": "Platform revenue (fees)",
    "platform:refunds": "Refunded through Stripe",
    "client": "Clients' credits",
    "subscription": "Subscriptions paid, not yet spent",
    "escrow": "Held in escrow for answers",
    "milestone": "Held in escrow for engagement milestones",
    "expert": "Experts: available, payout pending and paid out",
}


def _hours_until(moment: str | datetime) -> int:
    """Whole hours from now until ``moment`` (rounded up, never below zero)."""
    at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return max(0, math.ceil((at - utcnow()).total_seconds() / 3600))


def install(app: FastAPI) -> None:
    """Add the billing pages, and the template filters they and the answer fragment use."""
    filters = app.state.templates.env.filters
    filters["money"] = billing.money
    filters["hours_until"] = _hours_until
    app.include_router(router)


def _wants_fragment(request: Request) -> bool:
    return "hx-request" in request.headers


# The client


def _subscribable(session: SessionDep, account: Account) -> list[dict[str, Any]]:
    """Published assets with a price, and what they cost."""
    priced = []
    for asset in assets.list_assets(session, viewer=viewer_of(account)):
        plan = billing.current_plan(session, asset.id)
        if plan is not None:
            priced.append({"slug": asset.slug, "title": asset.title, "plan": plan})
    return priced


def _client_page(
    request: Request,
    session: SessionDep,
    runtime: Runtime,
    account: Account,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    filters = extra.pop("filters", None) or history.HistoryFilter()
    return render(
        request,
        "billing.html",
        status_code,
        account=account,
        summary=accounting.client_summary(session, account=account),
        answers=history.answers(session, account=account, filters=filters),
        filters=filters,
        statuses=history.STATUS_LABELS,
        asked=history.assets_asked(session, account=account),
        priced=_subscribable(session, account),
        stripe_enabled=runtime.settings.billing.stripe_enabled,
        month=statements.this_month(),
        **extra,
    )


CHECKOUT_NOTICES = {
    "done": "Payment received: your credits are added as soon as Stripe confirms it.",
    "canceled": "Checkout canceled: nothing was charged.",
}


@router.get("/billing")
def billing_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    checkout: str = "",
) -> Response:
    if account.role != Role.client:
        # Experts land here from Stripe's onboarding (payments.CONNECT_RETURN).
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/earnings{query}", status_code=303)
    notice = CHECKOUT_NOTICES.get(checkout)
    try:
        filters = _history_filter(request.query_params)
    except InvalidInput as exc:
        return _client_page(request, session, runtime, account, 422, error=exc.message)
    return _client_page(request, session, runtime, account, notice=notice, filters=filters)


def _history_filter(params: Mapping[str, str]) -> history.HistoryFilter:
    """The answers' filters and page as typed in the page's form (empty fields: no filter)."""

    def day(name: str, label: str) -> date | None:
        text = params.get(name, "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise history.InvalidHistoryFilter(
                f"{label}: {text[:20]!r} is not a date; write e.g. 2026-01-31"
            ) from None

    page = params.get("page", "1").strip() or "1"
    if not page.isdigit() or len(page) > 6:
        raise history.InvalidHistoryFilter("page: a whole number from 1")
    since, until = day("since", "From"), day("until", "Until")
    if since and until and since > until:
        raise history.InvalidHistoryFilter(
            f"From {since} is after until {until}; swap them or leave one empty"
        )
    return history.HistoryFilter(
        status=params.get("status", "").strip() or None,
        asset=params.get("asset", "").strip()[:64] or None,
        since=since,
        until=until,
        page=int(page),
    ).check()


def _billing_refused(
    exc: VouchError, request: Request, session: SessionDep, account: Account, **extra: Any
) -> Response:
    """The client's billing page again, saying why (the credits form as typed)."""
    runtime = get_runtime(request)
    form = {"amount": extra["amount"], "currency": extra["currency"]} if "amount" in extra else {}
    typed = {"form": form} if form else {}
    return _client_page(
        request, session, runtime, account, exc.status_code, error=exc.message, **typed
    )


@router.post("/billing/credits", dependencies=[PostGuard])
@page_action(_billing_refused)
def buy_credits(
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    amount: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "",
) -> Response:
    """Send the client to Stripe Checkout for ``amount`` (currency units) of credits."""
    cents = _parse_amount(amount, "Amount")
    if cents is None:
        raise InvalidAmount("Amount: how much to buy, e.g. 20.00")
    url = payments.checkout_credits(
        session, runtime, account=account, amount=cents, currency=currency.strip() or None
    )
    return RedirectResponse(url, status_code=303)


@router.post("/billing/subscribe", dependencies=[PostGuard])
@page_action(_billing_refused)
def subscribe(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    slug: Annotated[str, Form()] = "",
    pay: Annotated[str, Form()] = "credits",
) -> Response:
    """A month from credits now, or (``pay=card``) a monthly subscription through Stripe."""
    if pay == "card":
        url = payments.checkout_subscription(session, runtime, account=account, slug=slug)
        return RedirectResponse(url, status_code=303)
    sub = accounting.subscribe_with_credits(session, account=account, slug=slug)
    asset = accounting.subscription_public(session, sub)["asset"]
    return _client_page(request, session, runtime, account, notice=f"Subscribed to {asset}.")


def _charge_view(
    session: SessionDep, account: Account, consultation_id: str
) -> tuple[dict[str, Any], str]:
    """The row of a charge the account paid (viewer "client") or earned or, for an admin,
    settles (viewer "expert"); an empty row when there is none."""
    charge = billing.charge_for_consultation(session, consultation_id)
    if charge is None:
        return {}, "client"
    if charge.account_id == account.id:
        return accounting.charge_row(session, charge), "client"
    if charge.expert_id == account.id or account.role == Role.admin:
        return accounting.charge_row(session, charge), "expert"
    return {}, "client"


def _charge_fragment(
    request: Request,
    session: SessionDep,
    account: Account,
    consultation_id: str,
    *,
    view: str,
    status_code: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    """The charge again after a decision: its history row, or its line under an answer."""
    row, viewer = _charge_view(session, account, consultation_id)
    name = "_charge_line.html" if view == "line" else "_charge_row.html"
    return render(
        request,
        name,
        status_code,
        charge=row or None,
        consultation_id=consultation_id,
        viewer=viewer,
        charge_error=error,
    )


def _not_decided(page: Callable[..., HTMLResponse]) -> Failed:
    """A refused decision on a charge: its row (or answer line) with why for htmx; else
    ``page`` (the client's billing page, or the expert's earnings page) with why."""

    def failed(
        exc: VouchError,
        request: Request,
        session: SessionDep,
        account: Account,
        consultation_id: str,
        view: str = "row",
        **_: Any,
    ) -> Response:
        if _wants_fragment(request):
            return _charge_fragment(
                request,
                session,
                account,
                consultation_id,
                view=view,
                status_code=exc.status_code,
                error=exc.message,
            )
        runtime = get_runtime(request)
        return page(request, session, runtime, account, exc.status_code, error=exc.message)

    return failed


def _decided(
    request: Request, session: SessionDep, account: Account, consultation_id: str, view: str
) -> Response:
    """The answer's row (or answer line) again after a decision for htmx, or the billing
    page for a plain form post."""
    if _wants_fragment(request):
        return _charge_fragment(request, session, account, consultation_id, view=view)
    return RedirectResponse("/billing", status_code=303)


@router.post("/billing/answers/{consultation_id}/accept", dependencies=[PostGuard])
@page_action(_not_decided(_client_page))
def accept(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    consultation_id: str,
    view: Annotated[str, Form()] = "row",
) -> Response:
    accounting.accept(session, runtime, account=account, consultation_id=consultation_id)
    return _decided(request, session, account, consultation_id, view)


@router.post("/billing/answers/{consultation_id}/dispute", dependencies=[PostGuard])
@page_action(_not_decided(_client_page))
def dispute(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    consultation_id: str,
    view: Annotated[str, Form()] = "row",
    note: Annotated[str, Form()] = "",
) -> Response:
    """Flag an answer for the expert's review (its money stays in escrow), with a note."""
    accounting.dispute(
        session, runtime, account=account, consultation_id=consultation_id, note=note.strip()
    )
    return _decided(request, session, account, consultation_id, view)


# The expert

PLAN_FIELDS = {
    "currency": "Currency",
    "per_query": "Price per question",
    "monthly": "Monthly price",
    "included": "Questions included a month",
    "overage": "Price per question past those",
    "trial": "Free trial questions",
    "acceptance_hours": "Hours a client has to accept",
    "per_search": "Price per search",
}
_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?")
_COUNT = re.compile(r"\d{1,9}")


def _cents(value: int | None) -> str:
    return "" if value is None else f"{value // 100}.{value % 100:02d}"


def _plan_form(plan: Plan | None, currency: str) -> dict[str, str]:
    if plan is None:
        return {"currency": currency, "included": "0", "trial": "0", "acceptance_hours": "72"}
    return {
        "currency": plan.currency,
        "per_query": _cents(plan.per_query),
        "monthly": _cents(plan.monthly),
        "included": str(plan.included),
        "overage": _cents(plan.overage),
        "trial": str(plan.trial),
        "acceptance_hours": str(plan.acceptance_hours),
        "per_search": _cents(plan.per_search),
    }


def _parse_amount(text: str, label: str) -> int | None:
    """``"0.25"`` -> 25 (minor units); None when empty."""
    text = text.strip()
    if not text:
        return None
    if not _AMOUNT.fullmatch(text):
        raise InvalidAmount(f"{label}: {text!r} is not an amount; write e.g. 0.25")
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


def _amount(form: dict[str, str], name: str) -> int | None:
    try:
        return _parse_amount(form.get(name, ""), PLAN_FIELDS[name])
    except InvalidAmount as exc:
        raise InvalidPlan(f"{exc.message} (or leave it empty)") from exc


def _count(form: dict[str, str], name: str, default: int) -> int:
    text = form.get(name, "").strip()
    if not text:
        return default
    if not _COUNT.fullmatch(text):
        raise InvalidPlan(f"{PLAN_FIELDS[name]}: {text!r} is not a whole number")
    return int(text)


def plan_terms(form: dict[str, str]) -> billing.PlanTerms:
    """The plan an expert typed: amounts in currency units (``0.25``), counts as integers.

    Only the typing is checked here; ``PlanTerms.check`` judges the terms when they are set.
    """
    return billing.PlanTerms(
        currency=form.get("currency", "").strip().lower(),
        per_query=_amount(form, "per_query"),
        monthly=_amount(form, "monthly"),
        included=_count(form, "included", 0),
        overage=_amount(form, "overage"),
        trial=_count(form, "trial", 0),
        acceptance_hours=_count(form, "acceptance_hours", 72),
        per_search=_amount(form, "per_search"),
    )


def _plan_summary(plan: Plan | None) -> str:
    if plan is None:
        return "Free to ask: no plan yet."
    parts = []
    if plan.per_query is not None:
        parts.append(f"{billing.money(plan.per_query, plan.currency)} a question")
    if plan.monthly is not None:
        monthly = (
            f"{billing.money(plan.monthly, plan.currency)} a month for "
            f"{plan.included} question{'s' if plan.included != 1 else ''}"
        )
        if plan.overage is not None:
            monthly += f", then {billing.money(plan.overage, plan.currency)} each"
        parts.append(monthly)
    if plan.trial:
        parts.append(f"{plan.trial} free trial question{'s' if plan.trial != 1 else ''}")
    parts.append(f"{plan.acceptance_hours} h to accept")
    searches = billing.search_terms(plan)
    return "; ".join(parts) + f". {searches[0].upper()}{searches[1:]}."


def _earnings_page(
    request: Request,
    session: SessionDep,
    runtime: Runtime,
    account: Account,
    status_code: int = 200,
    *,
    typed: tuple[str, dict[str, str]] | None = None,
    **extra: Any,
) -> HTMLResponse:
    owned = []
    for asset in assets.list_assets(session, viewer=viewer_of(account), mine=True):
        plan = billing.current_plan(session, asset.id)
        form = _plan_form(plan, runtime.settings.billing.currency)
        if typed is not None and typed[0] == asset.slug:
            form = typed[1]
        owned.append(
            {
                "slug": asset.slug,
                "title": asset.title,
                "summary": _plan_summary(plan),
                "form": form,
            }
        )
    return render(
        request,
        "earnings.html",
        status_code,
        account=account,
        summary=accounting.expert_summary(session, account=account),
        owned=owned,
        fields=PLAN_FIELDS,
        month=statements.this_month(),
        stripe_enabled=runtime.settings.billing.stripe_enabled,
        **extra,
    )


@router.get("/earnings")
def earnings_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    saved: str = "",
    connect: str = "",
) -> Response:
    if account.role == Role.client:
        return refused(request, account, "earnings are for expert accounts")
    notice = CONNECT_NOTICES.get(connect)
    return _earnings_page(request, session, runtime, account, saved=saved, notice=notice)


CONNECT_NOTICES = {
    "done": "Stripe has your payout details; payouts start once Stripe enables your account.",
    "refresh": "The Stripe setup link expired: start the setup again.",
}


def _earnings_refused(
    exc: VouchError, request: Request, session: SessionDep, account: Account, **_: Any
) -> Response:
    runtime = get_runtime(request)
    return _earnings_page(request, session, runtime, account, exc.status_code, error=exc.message)


@router.post("/earnings/connect", dependencies=[PostGuard])
@page_action(_earnings_refused)
def connect(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: SignedIn
) -> Response:
    """Send the expert to Stripe to set up the account their payouts go to."""
    if account.role == Role.client:
        return refused(request, account, "only experts are paid out")
    url = payments.connect_onboarding(session, runtime, account=account)
    return RedirectResponse(url, status_code=303)


def _plan_not_set(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    slug: str,
    **typed: Any,
) -> Response:
    runtime = get_runtime(request)
    form = {name: typed[name] for name in PLAN_FIELDS}
    return _earnings_page(
        request,
        session,
        runtime,
        account,
        exc.status_code,
        typed=(slug, form),
        error=exc.message,
        error_slug=slug,
    )


@router.post("/earnings/plans/{slug}", dependencies=[PostGuard])
@page_action(_plan_not_set)
def set_plan(
    request: Request,
    session: SessionDep,
    account: SignedIn,
    slug: str,
    currency: Annotated[str, Form()] = "",
    per_query: Annotated[str, Form()] = "",
    monthly: Annotated[str, Form()] = "",
    included: Annotated[str, Form()] = "",
    overage: Annotated[str, Form()] = "",
    trial: Annotated[str, Form()] = "",
    acceptance_hours: Annotated[str, Form()] = "",
    per_search: Annotated[str, Form()] = "",
) -> Response:
    if account.role == Role.client:
        return refused(request, account, "only an asset's expert sets its prices")
    form = {
        "currency": currency,
        "per_query": per_query,
        "monthly": monthly,
        "included": included,
        "overage": overage,
        "trial": trial,
        "acceptance_hours": acceptance_hours,
        "per_search": per_search,
    }
    accounting.set_plan(session, account=account, slug=slug, terms=plan_terms(form))
    return RedirectResponse(f"/earnings?saved={slug}#plan-{slug}", status_code=303)


@router.post("/earnings/answers/{consultation_id}/refund", dependencies=[PostGuard])
@page_action(_not_decided(_earnings_page))
def refund(
    request: Request, session: SessionDep, account: SignedIn, consultation_id: str
) -> Response:
    if account.role == Role.client:
        return refused(request, account, "only an asset's expert or an admin refunds an answer")
    accounting.refund(session, account=account, consultation_id=consultation_id)
    if _wants_fragment(request):
        return _charge_fragment(request, session, account, consultation_id, view="row")
    return RedirectResponse("/earnings", status_code=303)


# The platform


@router.get("/admin/revenue")
def revenue_page(request: Request, session: SessionDep, account: SignedIn) -> Response:
    if account.role != Role.admin:
        return refused(request, account, "the revenue page is for admins")
    return render(
        request,
        "revenue.html",
        account=account,
        summary=statements.platform_summary(session),
        groups=GROUPS,
    )


# Statements


def _months_around(month: str) -> tuple[str, str]:
    year, number = (int(part) for part in month.split("-"))
    before = f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"
    after = f"{year + 1:04d}-01" if number == 12 else f"{year:04d}-{number + 1:02d}"
    return before, after


def _no_statement(
    exc: VouchError, request: Request, account: Account, month: str = "", **_: Any
) -> Response:
    return render(
        request,
        "statement.html",
        exc.status_code,
        account=account,
        month=month.strip() or statements.this_month(),
        lines=[],
        error=exc.message,
    )


@router.get("/statement")
@page_action(_no_statement)
def statement_page(
    request: Request, session: SessionDep, account: SignedIn, month: str = ""
) -> Response:
    month = month.strip() or statements.this_month()
    lines = accounting.statement(session, account=account, month=month)
    before, after = _months_around(month)
    return render(
        request,
        "statement.html",
        account=account,
        month=month,
        lines=lines,
        before=before,
        after=after,
    )


def _no_statement_csv(exc: VouchError, request: Request, account: Account, **_: Any) -> Response:
    return render(
        request,
        "error.html",
        exc.status_code,
        account=account,
        status=exc.status_code,
        error="Bad month",
        detail=exc.message,
    )


@router.get("/statement.csv")
@page_action(_no_statement_csv)
def statement_csv(session: SessionDep, account: SignedIn, month: str = "") -> Response:
    month = month.strip() or statements.this_month()
    lines = accounting.statement(session, account=account, month=month)
    return Response(
        statements.statement_csv(lines),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="vouch-statement-{month}.csv"'},
    )
