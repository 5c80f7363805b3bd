"""Engagement pages: the client's and expert's lists, the commission form (also reached from
an answer, to escalate it), an engagement with its milestones, events and the steps each party
may take now (one action per row of ``engagements.STEPS``), and the admin's disputes."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from sqlmodel import Session
from starlette.datastructures import FormData

from app import engagements
from app.bodies import FILES
from app.deps import PageAccount, RuntimeDep, SessionDep
from app.models import Account, Role
from app.runtime import Runtime
from app.web.forms import OriginGuard, PageFiles, PostGuard, page_files
from app.web.markdown import render_markdown
from app.web.pages import error_page, login_then, render, to_login
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
def list_page(request: Request, session: SessionDep, account: PageAccount) -> Response:
    if account is None:
        return to_login(request)
    rows = engagements.summaries(session, account=account)
    disputes = engagements.disputes(session, account=account) if account.role == Role.admin else []
    return render(request, "engagements.html", account=account, rows=rows, disputes=disputes)


@router.get("/admin/disputes")
def disputes_page(
    request: Request, session: SessionDep, account: PageAccount, done: str = ""
) -> Response:
    if account is None:
        return to_login(request)
    try:
        rows = engagements.disputes(session, account=account)
    except VouchError as exc:
        return error_page(request, account, exc)
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
    try:
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
    except VouchError as exc:
        return error_page(request, account, exc)
    values = {"revision_limit": "2", "review_days": "14", "asset": asset, **initial, **(form or {})}
    values["milestones"] = _rows(values.get("milestones") or [])
    return render(
        request,
        "engagement_new.html",
        status_code,
        account=account,
        expert=chosen,
        assets=assets,
        origin=origin,
        consultation=consultation,
        form=values,
        error=error,
    )


@router.get("/engagements/new")
def new_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    expert: str = "",
    asset: str = "",
    consultation: str = "",
) -> Response:
    if account is None:
        return to_login(request)
    return _new_page(
        request, session, runtime, account, expert=expert, asset=asset, consultation=consultation
    )


@router.post("/engagements/new", dependencies=[PostGuard])
def commission(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
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
    if account is None:
        return login_then(f"/engagements/new?expert={quote(expert)}&asset={quote(asset)}")
    typed = {
        "title": title,
        "scope": scope,
        "deliverable": deliverable,
        "currency": currency,
        "deadline": deadline,
        "revision_limit": revision_limit,
        "review_days": review_days,
        "asset": asset,
        "milestones": [
            {"title": t, "amount": a}
            for t, a in zip(milestone_title or [], milestone_amount or [], strict=False)
            if t.strip() or a.strip()
        ],
    }
    try:
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
    except VouchError as exc:
        return _new_page(
            request,
            session,
            runtime,
            account,
            expert=expert,
            asset=asset,
            consultation=consultation,
            status_code=exc.status_code,
            form=typed,
            error=exc.message,
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
    try:
        eng = engagements.view(session, account=account, engagement_id=engagement_id)
    except VouchError as exc:
        return error_page(request, account, exc)
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
def engagement_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    engagement_id: str,
    done: str = "",
    checkout: str = "",
) -> Response:
    if account is None:
        return to_login(request)
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


def _taken(
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    step: engagements.Step,
    inputs: Callable[[], dict[str, Any]],
    *,
    milestone_id: str | None = None,
    drafts: dict[str, str] | None = None,
    back: str = "",
) -> Response:
    """Take a step, then back to the engagement (or Stripe, or the disputes page with
    ``back=disputes``); a refused step shows the page again with the reason."""
    try:
        url = engagements.take(
            session,
            runtime,
            account=account,
            step=step.name,
            engagement_id=engagement_id,
            milestone_id=milestone_id,
            **inputs(),
        )
    except VouchError as exc:
        if back == "disputes":
            rows = engagements.disputes(session, account=account)
            return render(
                request,
                "disputes.html",
                exc.status_code,
                account=account,
                disputes=rows,
                error=exc.message,
            )
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
    if url is None and back == "disputes":
        url = "/admin/disputes?done=1"
    return RedirectResponse(url or f"/engagements/{engagement_id}?done={step.done}", 303)


def _page_action(step: engagements.Step) -> Callable[..., Response]:
    """The page action of one step in ``engagements.STEPS``; a milestone's id comes from the
    path."""

    def act(
        request: Request,
        session: SessionDep,
        runtime: RuntimeDep,
        account: PageAccount,
        engagement_id: str,
        form: Annotated[FormData, Depends(_form)],
    ) -> Response:
        if account is None:
            return login_then(f"/engagements/{engagement_id}")
        return _taken(
            request,
            session,
            runtime,
            account,
            engagement_id,
            step,
            lambda: _inputs(step, form),
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


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/deliver",
    dependencies=[OriginGuard],
    max_body_size=FILES,
)
def deliver(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    engagement_id: str,
    milestone_id: str,
    upload: Annotated[PageFiles, page_files(_may_deliver, _report_limit, max_files=1)],
) -> Response:
    """Deliver the report typed in Markdown, and/or a PDF."""
    if account is None:
        return login_then(f"/engagements/{engagement_id}")
    report = upload.form.fields.get("report", "") if upload.form else ""
    try:
        if upload.error is not None:
            raise upload.error
        assert upload.form is not None
        report = upload.form.text("report", max_length=200_000)
        files = upload.form.files.get("file", [])
    except VouchError as exc:
        return _page(
            request,
            session,
            runtime,
            account,
            engagement_id,
            exc.status_code,
            drafts={milestone_id: report},
            error=exc.message,
        )
    return _taken(
        request,
        session,
        runtime,
        account,
        engagement_id,
        engagements.STEPS["deliver"],
        lambda: {"report": report, "pdf": files[0][1] if files else None},
        milestone_id=milestone_id,
        drafts={milestone_id: report},
    )


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/draft", dependencies=[PostGuard]
)
def draft(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    engagement_id: str,
    milestone_id: str,
    report: Annotated[str, Form()] = "",
    question: Annotated[str, Form()] = "",
    asset: Annotated[str, Form()] = "",
) -> Response:
    """Ask the expert's own asset and insert the answer, with its sources, into the report."""
    if account is None:
        return login_then(f"/engagements/{engagement_id}")
    try:
        drafted = engagements.draft(
            session,
            runtime,
            account=account,
            engagement_id=engagement_id,
            question=question,
            slug=asset.strip() or None,
        )
    except VouchError as exc:
        return _page(
            request,
            session,
            runtime,
            account,
            engagement_id,
            exc.status_code,
            drafts={milestone_id: report},
            error=exc.message,
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


@router.post(
    "/engagements/{engagement_id}/milestones/{milestone_id}/preview", dependencies=[PostGuard]
)
def preview(
    session: SessionDep,
    account: PageAccount,
    engagement_id: str,
    milestone_id: str,
    report: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """The report being written, as the client will see it (for htmx)."""
    if account is None:
        return login_then(f"/engagements/{engagement_id}")
    try:
        engagements.check_deliver(
            session, account=account, engagement_id=engagement_id, milestone_id=milestone_id
        )
    except VouchError as exc:
        return HTMLResponse(f'<p class="error">{escape(exc.message)}</p>', exc.status_code)
    shown = render_markdown(report) if report.strip() else Markup('<p class="muted">Empty.</p>')
    return HTMLResponse(f'<div class="markdown report">{shown}</div>')


@router.get("/engagements/{engagement_id}/milestones/{milestone_id}/report.pdf")
def report_pdf(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    engagement_id: str,
    milestone_id: str,
) -> Response:
    if account is None:
        return to_login(request)
    try:
        path = engagements.report_file(
            session,
            runtime,
            account=account,
            engagement_id=engagement_id,
            milestone_id=milestone_id,
        )
    except VouchError as exc:
        return error_page(request, account, exc)
    return FileResponse(path, media_type="application/pdf", filename=f"report-{milestone_id}.pdf")
