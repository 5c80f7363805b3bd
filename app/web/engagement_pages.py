"""Engagement pages: the client's and expert's lists, the commission form (also reached from
an answer, to escalate it), an engagement with its milestones, events and the steps each party
may take now (one action per row of ``engagements.STEPS``), and the admin's disputes."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from sqlmodel import Session
from starlette.datastructures import FormData

from app import engagements
from app.bodies import FILES
from app.deps import RuntimeDep, SessionDep, SignedIn, signed_in
from app.models import Account, Role
from app.runtime import Runtime
from app.web.actions import page_action
from app.web.forms import OriginGuard, PageFiles, PostGuard, page_files
from app.web.markdown import render_markdown
from app.web.pages import error_page, render, show_error
from core.config import Settings
from core.errors import Forbidden, InvalidInput, VouchError
from marketplace.engagements import MilestoneTerms, Terms
from marketplace.errors import ExpertNotFound

router = APIRouter(include_in_schema=False)

_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?")
MILESTONE_ROWS = 3
STATUS_TEXT = {
    "requested": "Requested: waiting for the expert",
    "proposed": "Changes proposed: waiting for the client",
    "accepted": "Under way",
    "declined": "Declined",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
DONE = {
    "requested": "Request sent: the expert accepts, declines or proposes changes.",
    "accepted": "Agreed: the client funds each milestone into escrow before work on it starts.",
    "declined": "Declined.",
    "proposed": "Changes proposed: the client accepts or declines them.",
    "cancelled": "Request cancelled.",
    "funded": "Funded: the money is held in escrow until the milestone is settled.",
    "delivered": "Delivered: the client approves, asks for a revision or disputes it.",
    "approved": "Approved: the milestone's money is released to the expert.",
    "revision": "Sent back to the expert for a revision.",
    "disputed": "Disputed: the money stays in escrow until an admin settles it.",
    "settled": "Dispute settled.",
}
CHECKOUT_NOTICES = {
    "done": "Payment received: the milestone is funded as soon as Stripe confirms it.",
    "canceled": "Checkout canceled: nothing was charged.",
}
# The actions on one engagement: signed out, sign in and come back to the engagement.
OnEngagement = Annotated[Account, signed_in("/engagements/{engagement_id}")]


class InvalidForm(InvalidInput):
    pass


def install(app: FastAPI) -> None:
    """Add the engagement pages."""
    app.state.templates.env.globals["engagement_status_text"] = STATUS_TEXT
    app.state.templates.env.filters["markdown"] = render_markdown
    app.include_router(router)


def _amount(text: str, label: str) -> int:
    """``"250"`` or ``"250.5"`` (currency units) -> minor units."""
    text = text.strip()
    if not _AMOUNT.fullmatch(text):
        raise InvalidForm(f"{label}: {text!r} is not an amount; write e.g. 250.00")
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


def _count(text: str, label: str, default: int) -> int:
    text = text.strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 4:
        raise InvalidForm(f"{label}: {text!r} is not a whole number")
    return int(text)


def _deadline(text: str) -> datetime | None:
    """A date from the form: the end of that day, UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise InvalidForm(f"deadline: {text!r} is not a date such as 2026-12-31") from exc
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _milestones(titles: list[str] | None, amounts: list[str] | None) -> list[MilestoneTerms]:
    """Milestone rows as typed; rows left blank are skipped."""
    titles, amounts = titles or [], amounts or []
    rows: list[MilestoneTerms] = []
    for n in range(max(len(titles), len(amounts))):
        title = titles[n].strip() if n < len(titles) else ""
        amount = amounts[n].strip() if n < len(amounts) else ""
        if not title and not amount:
            continue
        if not title:
            raise InvalidForm(f"milestone {len(rows) + 1}: give it a title")
        if not amount:
            raise InvalidForm(f"milestone {len(rows) + 1} ({title}): give it an amount")
        rows.append(MilestoneTerms(title=title, amount=_amount(amount, f"milestone {title!r}")))
    return rows


def _cents(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


def _rows(milestones: list[dict[str, str]]) -> list[dict[str, str]]:
    """Milestone rows for a form: those given, then blank ones up to MILESTONE_ROWS."""
    blank = max(MILESTONE_ROWS - len(milestones), 1)
    return milestones + [{"title": "", "amount": ""} for _ in range(blank)]


# Lists


@router.get("/engagements")
def list_page(request: Request, session: SessionDep, account: SignedIn) -> Response:
    rows = engagements.summaries(session, account=account)
    disputes = engagements.disputes(session, account=account) if account.role == Role.admin else []
    return render(request, "engagements.html", account=account, rows=rows, disputes=disputes)


@router.get("/admin/disputes")
@page_action(show_error)
def disputes_page(
    request: Request, session: SessionDep, account: SignedIn, done: str = ""
) -> Response:
    rows = engagements.disputes(session, account=account)
    notice = "Dispute settled." if done else None
    return render(request, "disputes.html", account=account, disputes=rows, notice=notice)


# The commission form


def _new_page(
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    *,
    expert: str,
    asset: str,
    consultation: str,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """The form for a request to ``expert`` (about ``asset``), or to escalate the answer
    ``consultation``; ``form`` holds what was typed."""
    if account.role != Role.client:
        raise Forbidden("only client accounts commission engagements")
    origin = None
    if consultation:
        defaults = engagements.escalation_defaults(
            session, runtime, account=account, consultation_id=consultation
        )
        origin = defaults["consultation"]
        expert = defaults["expert_id"]
        asset = defaults["asset"].slug
        initial: dict[str, Any] = {
            "title": defaults["title"],
            "scope": "",
            "deliverable": defaults["deliverable"],
            "currency": defaults["currency"],
            "milestones": [
                {"title": m.title, "amount": _cents(m.amount)} for m in defaults["milestones"]
            ],
        }
    else:
        if not expert:
            raise ExpertNotFound(
                "choose an expert first: open their page and commission them from there"
            )
        initial = {"currency": runtime.settings.billing.currency, "milestones": []}
    chosen = engagements.expert_choice(session, expert)
    assets = engagements.experts_assets(session, account=account, expert_id=chosen.id)
    # The form's address names what it is for, so that a visitor whose sign-in ran out while
    # filling it in comes back to this form after signing in again.
    about = (
        {"consultation": consultation} if consultation else {"expert": chosen.id, "asset": asset}
    )
    values = {"revision_limit": "2", "review_days": "14", "asset": asset, **initial, **(form or {})}
    values["milestones"] = _rows(values.get("milestones") or [])
    return render(
        request,
        "engagement_new.html",
        status_code,
        action=f"/engagements/new?{urlencode(about)}",
        account=account,
        expert=chosen,
        assets=assets,
        origin=origin,
        consultation=consultation,
        form=values,
        error=error,
    )


@router.get("/engagements/new")
@page_action(show_error)
def new_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    expert: str = "",
    asset: str = "",
    consultation: str = "",
) -> Response:
    return _new_page(
        request, session, runtime, account, expert=expert, asset=asset, consultation=consultation
    )


def _typed(
    asset: str,
    milestone_title: list[str] | None = None,
    milestone_amount: list[str] | None = None,
    **fields: str,
) -> dict[str, Any]:
    """The commission form as typed (the route's text fields), to show it again."""
    rows = zip(milestone_title or [], milestone_amount or [], strict=False)
    milestones = [{"title": t, "amount": a} for t, a in rows if t.strip() or a.strip()]
    return {**fields, "asset": asset, "milestones": milestones}


def _not_commissioned(
    exc: VouchError,
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    expert: str,
    asset: str,
    consultation: str,
    **typed: Any,
) -> Response:
    """A refused request: the form again, as typed, with why (the error page when the form
    itself cannot be shown, e.g. for an expert who is not one)."""
    try:
        return _new_page(
            request,
            session,
            runtime,
            account,
            expert=expert,
            asset=asset,
            consultation=consultation,
            status_code=exc.status_code,
            form=_typed(asset, **typed),
            error=exc.message,
        )
    except VouchError:
        return error_page(request, account, exc)


@router.post("/engagements/new", dependencies=[PostGuard])
@page_action(_not_commissioned)
def commission(
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    expert: Annotated[str, Form()] = "",
    asset: Annotated[str, Form()] = "",
    consultation: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    deliverable: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "",
    deadline: Annotated[str, Form()] = "",
    revision_limit: Annotated[str, Form()] = "",
    review_days: Annotated[str, Form()] = "",
    milestone_title: Annotated[list[str] | None, Form()] = None,
    milestone_amount: Annotated[list[str] | None, Form()] = None,
) -> Response:
    milestones = _milestones(milestone_title, milestone_amount)
    limit = _count(revision_limit, "revisions", 2)
    days = _count(review_days, "review window", 14)
    if consultation:
        eng = engagements.escalate(
            session,
            runtime,
            account=account,
            consultation_id=consultation,
            title=title.strip() or None,
            note=scope,
            deliverable=deliverable.strip() or None,
            milestones=milestones or None,
            currency=currency.strip() or None,
            deadline=_deadline(deadline),
            revision_limit=limit,
            review_days=days,
        )
    else:
        if not milestones:
            raise InvalidForm("milestones: give at least one, with a title and an amount")
        eng = engagements.request(
            session,
            runtime,
            account=account,
            expert_id=expert,
            asset_slug=asset.strip() or None,
            terms=Terms(
                title=title,
                scope=scope,
                deliverable=deliverable,
                currency=currency.strip() or runtime.settings.billing.currency,
                deadline=_deadline(deadline),
                milestones=milestones,
                revision_limit=limit,
                review_days=days,
            ),
        )
    return RedirectResponse(f"/engagements/{eng.id}?done=requested", status_code=303)


# One engagement


def _page(
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    status_code: int = 200,
    *,
    drafts: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The engagement with the steps the account may take; ``drafts`` are reports being
    written (by milestone id), kept across a draft request or a refused delivery."""
    eng = engagements.view(session, account=account, engagement_id=engagement_id)
    proposal = [{"title": m["title"], "amount": _cents(m["amount"])} for m in eng["milestones"]]
    return render(
        request,
        "engagement.html",
        status_code,
        account=account,
        eng=eng,
        drafts=drafts or {},
        proposal=_rows(proposal),
        stripe_enabled=runtime.settings.billing.stripe_enabled,
        done_messages=DONE,
        **extra,
    )


@router.get("/engagements/{engagement_id}")
@page_action(show_error)
def engagement_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    engagement_id: str,
    done: str = "",
    checkout: str = "",
) -> Response:
    return _page(
        request,
        session,
        runtime,
        account,
        engagement_id,
        done=DONE.get(done),
        notice=CHECKOUT_NOTICES.get(checkout),
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _proposal(form: FormData) -> dict[str, Any]:
    titles, amounts = (
        [v for v in form.getlist(name) if isinstance(v, str)]
        for name in ("milestone_title", "milestone_amount")
    )
    milestones = _milestones(titles, amounts)
    return {
        "milestones": milestones or None,
        "deadline": _deadline(_text(form, "deadline")),
        "note": _text(form, "note"),
    }


def _settlement(form: FormData) -> dict[str, Any]:
    share = _text(form, "expert_share")
    return {
        "outcome": _text(form, "outcome"),
        "expert_share": _amount(share, "expert's share") if share.strip() else None,
        "note": _text(form, "note"),
    }


# A step's inputs from its form: the fields named as in its JSON body, but where the page
# takes amounts in currency units, dates, or milestones as rows.
FORMS: dict[str, Callable[[FormData], dict[str, Any]]] = {
    "propose": _proposal,
    "settle": _settlement,
}


def _inputs(step: engagements.Step, form: FormData) -> dict[str, Any]:
    if step.name in FORMS:
        return FORMS[step.name](form)
    return {name: _text(form, name) for name in (step.body.model_fields if step.body else ())}


async def _form(request: Request) -> FormData:
    return await request.form()


def _refused(
    exc: VouchError,
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    *,
    drafts: dict[str, str] | None = None,
) -> Response:
    """A refused action: the engagement again with the reason and the report being written
    (the error page when the engagement itself cannot be shown)."""
    try:
        return _page(
            request,
            session,
            runtime,
            account,
            engagement_id,
            exc.status_code,
            drafts=drafts,
            error=exc.message,
        )
    except VouchError:
        return error_page(request, account, exc)


def _take(
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    step: engagements.Step,
    inputs: dict[str, Any],
    *,
    milestone_id: str | None = None,
    back: str = "",
) -> Response:
    """Take a step, then back to the engagement (or Stripe, or the disputes page with
    ``back=disputes``)."""
    url = engagements.take(
        session,
        runtime,
        account=account,
        step=step.name,
        engagement_id=engagement_id,
        milestone_id=milestone_id,
        **inputs,
    )
    if url is None and back == "disputes":
        url = "/admin/disputes?done=1"
    return RedirectResponse(url or f"/engagements/{engagement_id}?done={step.done}", 303)


def _step_refused(
    exc: VouchError,
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    form: FormData,
    **_: Any,
) -> Response:
    """A refused step: the page it was taken from again, with the reason."""
    if _text(form, "back") != "disputes":
        return _refused(exc, request, session, runtime, account, engagement_id)
    try:
        rows = engagements.disputes(session, account=account)
    except VouchError:
        return error_page(request, account, exc)
    return render(
        request, "disputes.html", exc.status_code, account=account, disputes=rows, error=exc.message
    )


def _page_action(step: engagements.Step) -> Callable[..., Response]:
    """The page action of one step in ``engagements.STEPS``; a milestone's id comes from the
    path."""

    @page_action(_step_refused)
    def act(
        request: Request,
        session: SessionDep,
        runtime: RuntimeDep,
        account: OnEngagement,
        engagement_id: str,
        form: Annotated[FormData, Depends(_form)],
    ) -> Response:
        return _take(
            session,
            runtime,
            account,
            engagement_id,
            step,
            _inputs(step, form),
            milestone_id=request.path_params.get("milestone_id"),
            back=_text(form, "back"),
        )

    return act


for _step in engagements.STEPS.values():
    if _step.name != "deliver":  # a file upload: its own route below
        router.add_api_route(
            _step.path, _page_action(_step), methods=["POST"], dependencies=[PostGuard]
        )


def _may_deliver(session: Session, account: Account, path: dict[str, Any]) -> None:
    engagements.check_deliver(
        session,
        account=account,
        engagement_id=path["engagement_id"],
        milestone_id=path["milestone_id"],
    )


def _report_limit(_settings: Settings) -> int:
    return engagements.MAX_REPORT_BYTES


def _not_delivered(
    exc: VouchError,
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    milestone_id: str,
    upload: PageFiles,
    **_: Any,
) -> Response:
    """A refused delivery: the engagement again with the report as typed."""
    report = upload.form.fields.get("report", "") if upload.form else ""
    drafts = {milestone_id: report}
    return _refused(exc, request, session, runtime, account, engagement_id, drafts=drafts)


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/deliver",
    dependencies=[OriginGuard],
    max_body_size=FILES,
)
@page_action(_not_delivered)
def deliver(
    session: SessionDep,
    runtime: RuntimeDep,
    account: OnEngagement,
    engagement_id: str,
    milestone_id: str,
    upload: Annotated[PageFiles, page_files(_may_deliver, _report_limit, max_files=1)],
) -> Response:
    """Deliver the report typed in Markdown, and/or a PDF."""
    if upload.error is not None:
        raise upload.error
    assert upload.form is not None
    report = upload.form.text("report", max_length=200_000)
    files = upload.form.files.get("file", [])
    return _take(
        session,
        runtime,
        account,
        engagement_id,
        engagements.STEPS["deliver"],
        {"report": report, "pdf": files[0][1] if files else None},
        milestone_id=milestone_id,
    )


def _not_drafted(
    exc: VouchError,
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    milestone_id: str,
    report: str,
    **_: Any,
) -> Response:
    """No draft: the engagement again with the report as it was."""
    drafts = {milestone_id: report}
    return _refused(exc, request, session, runtime, account, engagement_id, drafts=drafts)


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/draft", dependencies=[PostGuard]
)
@page_action(_not_drafted)
def draft(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: OnEngagement,
    engagement_id: str,
    milestone_id: str,
    report: Annotated[str, Form()] = "",
    question: Annotated[str, Form()] = "",
    asset: Annotated[str, Form()] = "",
) -> Response:
    """Ask the expert's own asset and insert the answer, with its sources, into the report."""
    drafted = engagements.draft(
        session,
        runtime,
        account=account,
        engagement_id=engagement_id,
        question=question,
        slug=asset.strip() or None,
    )
    text = f"{report.rstrip()}\n\n{drafted['markdown']}" if report.strip() else drafted["markdown"]
    notice = f"Inserted {drafted['asset']}'s answer with {len(drafted['citations'])} source(s)."
    return _page(
        request,
        session,
        runtime,
        account,
        engagement_id,
        drafts={milestone_id: text},
        notice=notice,
    )


def _no_preview(exc: VouchError, **_: Any) -> Response:
    """Why there is no preview, in its place on the page."""
    return HTMLResponse(f'<p class="error">{escape(exc.message)}</p>', exc.status_code)


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/preview", dependencies=[PostGuard]
)
@page_action(_no_preview)
def preview(
    session: SessionDep,
    account: OnEngagement,
    engagement_id: str,
    milestone_id: str,
    report: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """The report being written, as the client will see it (for htmx)."""
    engagements.check_deliver(
        session, account=account, engagement_id=engagement_id, milestone_id=milestone_id
    )
    shown = render_markdown(report) if report.strip() else Markup('<p class="muted">Empty.</p>')
    return HTMLResponse(f'<div class="markdown report">{shown}</div>')


@router.get("/engagements/{engagement_id}/milestones/{milestone_id}/report.pdf")
@page_action(show_error)
def report_pdf(
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    engagement_id: str,
    milestone_id: str,
) -> Response:
    path = engagements.report_file(
        session,
        runtime,
        account=account,
        engagement_id=engagement_id,
        milestone_id=milestone_id,
    )
    return FileResponse(path, media_type="application/pdf", filename=f"report-{milestone_id}.pdf")
