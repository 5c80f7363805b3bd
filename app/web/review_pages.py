"""Review pages: the expert's queue and its items (approve, correct, reject), an asset's
verified answers and review settings, and its quality figures."""

import contextlib
import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app import querying, reviewing
from app.accounts import viewer_of
from app.deps import RuntimeDep, SessionDep, SignedIn, get_runtime, signed_in
from app.models import Account, Role
from app.runtime import Runtime
from app.web.actions import page_action
from app.web.forms import PostGuard
from app.web.pages import error_page, refused, render, show_error
from assets import service as assets
from assets.models import Asset
from assets.retrieval import Passage
from assets.review import passages_by_id
from billing import service as billing
from core.errors import InvalidInput, VouchError

router = APIRouter(include_in_schema=False)

STATUSES = ("open", "approved", "corrected", "rejected")
REASONS = {
    "low_confidence": "Low confidence",
    "client_flag": "Flagged by the client",
    "sampled": "Sampled at random",
}
DONE = {
    "approved": "Approved: the answer stands and its money is released to you.",
    "corrected": "Corrected: the client now sees your answer, and later questions that mean "
    "the same are answered from it.",
    "rejected": "Rejected: the client gets their money (or question) back.",
}
SETTINGS_FIELDS = {
    "sample_rate": "Sample rate (% of answers reviewed at random)",
    "review_hours": "Target response time (hours)",
    "review_threshold": "Confidence threshold (answers below it wait for your review)",
}


class InvalidReviewSettings(InvalidInput):
    pass


# The item's and the verified answers' forms come back to their page after signing in.
ItemForm = Annotated[Account, signed_in("/review/{item_id}")]
VerifiedForm = Annotated[Account, signed_in("/assets/{slug}/verified")]


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100, 2):g}%"


def install(app: FastAPI) -> None:
    """Add the review pages and the filters their templates use."""
    app.state.templates.env.filters["percent"] = _percent
    app.state.templates.env.globals["review_reasons"] = REASONS
    app.include_router(router)


# The queue and its items


@router.get("/review")
def queue_page(
    request: Request, session: SessionDep, account: SignedIn, status: str = "open"
) -> Response:
    if account.role == Role.client:
        return refused(request, account, "the review queue is for experts")
    if status not in STATUSES:
        return error_page(
            request,
            account,
            InvalidInput(f"unknown status {status!r}: use one of {', '.join(STATUSES)}"),
        )
    items = [
        reviewing.item_view(session, item)
        for item in reviewing.queue(session, account=account, status=status)
    ]
    return render(
        request,
        "review_queue.html",
        account=account,
        items=items,
        status=status,
        statuses=STATUSES,
    )


def _item_page(
    request: Request,
    session: Session,
    account: Account,
    item_id: str,
    status_code: int = 200,
    *,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The item with its actions; ``form`` is a correction as typed (answer, kept citations)."""
    try:
        item = reviewing.item_view(
            session, reviewing.get_item(session, account=account, item_id=item_id)
        )
    except VouchError as exc:
        return error_page(request, account, exc)
    if form is None:
        form = {"answer": item["answer"], "keep": {c["n"] for c in item["citations"]}}
    extra.setdefault("results", form.get("results"))
    return render(
        request,
        "review_item.html",
        status_code,
        account=account,
        item=item,
        form=form,
        done_messages=DONE,
        **extra,
    )


@router.get("/review/{item_id}")
def item_page(
    request: Request, session: SessionDep, account: SignedIn, item_id: str, done: str = ""
) -> Response:
    if account.role == Role.client:
        return refused(request, account, "the review queue is for experts")
    return _item_page(request, session, account, item_id, done=bool(done))


def _not_acted(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    item_id: str,
    answer: str | None = None,
    keep: list[str] | None = None,
    chunk: list[str] | None = None,
    **_: Any,
) -> Response:
    """The item with why its action was refused, and a refused correction as typed (its
    picked passages shown again, ticked)."""
    form: dict[str, Any] | None = None
    if answer is not None:
        form = {"answer": answer, "keep": _kept(keep)}
        picks = _picks(chunk)
        if picks:
            with contextlib.suppress(VouchError):  # the refusal may be about a bad pick
                runtime = get_runtime(request)
                picked = _picked(session, runtime, account, item_id, picks)
                form["results"] = {"picked": picked, "found": [], "q": ""}
    return _item_page(
        request, session, account, item_id, exc.status_code, form=form, error=exc.message
    )


def _acted(request: Request, account: Account, item_id: str, act: Callable[[], object]) -> Response:
    """An expert acts on an item, then back to it; clients are refused."""
    if account.role == Role.client:
        return refused(request, account, "the review queue is for experts")
    act()
    return RedirectResponse(f"/review/{item_id}?done=1", status_code=303)


@router.post("/review/{item_id}/approve", dependencies=[PostGuard])
@page_action(_not_acted)
def approve(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: ItemForm, item_id: str
) -> Response:
    return _acted(
        request,
        account,
        item_id,
        lambda: reviewing.approve(session, runtime, account=account, item_id=item_id),
    )


@router.post("/review/{item_id}/reject", dependencies=[PostGuard])
@page_action(_not_acted)
def reject(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: ItemForm, item_id: str
) -> Response:
    return _acted(
        request,
        account,
        item_id,
        lambda: reviewing.reject(session, runtime, account=account, item_id=item_id),
    )


def _picked(
    session: Session, runtime: Runtime, account: Account, item_id: str, chunks: list[str]
) -> list[Passage]:
    """The passages of the item's asset the expert ticked, read again from the asset."""
    item = reviewing.get_item(session, account=account, item_id=item_id)
    asset = session.get(Asset, item.asset_id)
    assert asset is not None  # a foreign key guarantees it
    return passages_by_id(asset, chunks, index=runtime.index)


@router.post("/review/{item_id}/search", dependencies=[PostGuard])
def search(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: ItemForm,
    item_id: str,
    q: Annotated[str, Form(max_length=2000)] = "",
    answer: Annotated[str, Form()] = "",
    keep: Annotated[list[str] | None, Form()] = None,
    chunk: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Search the item's asset for passages to cite: the results fragment (htmx), or the
    item page with the correction as typed and the results (a plain form post). Passages
    already ticked stay ticked, at the top."""
    if account.role == Role.client:
        return refused(request, account, "the review queue is for experts")
    form = {"answer": answer, "keep": _kept(keep), "q": q}
    picked: list[Passage] = []
    found: list[Passage] = []
    error = ""
    try:
        picked = _picked(session, runtime, account, item_id, chunk or [])
        found = reviewing.search_passages(
            session, runtime, account=account, item_id=item_id, query=q
        )
    except VouchError as exc:
        if exc.status_code == 404:
            return error_page(request, account, exc)
        error = exc.message  # the ticked passages stay, unless one of them was the trouble
    ticked = {p.id for p in picked}
    results = {"picked": picked, "found": [p for p in found if p.id not in ticked], "q": q}
    if "hx-request" in request.headers:
        return render(
            request, "_passages.html", item_id=item_id, results=results, search_error=error
        )
    return _item_page(
        request, session, account, item_id, form=form, results=results, search_error=error
    )


def _kept(keep: list[str] | None) -> set[int]:
    return {int(n) for n in keep or [] if n.isdigit()}


def _picks(chunk: list[str] | None) -> list[str]:
    return [c for c in dict.fromkeys(chunk or []) if c]


@router.post("/review/{item_id}/correct", dependencies=[PostGuard])
@page_action(_not_acted)
def correct(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: ItemForm,
    item_id: str,
    answer: Annotated[str, Form()] = "",
    keep: Annotated[list[str] | None, Form()] = None,
    chunk: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The expert's answer replaces the given one, citing the passages they kept and those
    they picked by searching the asset."""
    kept = _kept(keep)

    def act() -> object:
        item = reviewing.get_item(session, account=account, item_id=item_id)
        citations: list[dict[str, Any]] = [
            {"n": c["n"], "text": c["text"], "locator": c["locator"]}
            for c in reviewing.item_view(session, item)["citations"]
            if c["n"] in kept
        ]
        citations += [{"chunk_id": c} for c in _picks(chunk)]
        return reviewing.correct(
            session, runtime, account=account, item_id=item_id, answer=answer, citations=citations
        )

    return _acted(request, account, item_id, act)


# One answer, for the client who got it


@router.get("/answers/{consultation_id}")
@page_action(show_error)
def answer_page(
    request: Request, session: SessionDep, account: SignedIn, consultation_id: str
) -> Response:
    """An answer the client got (its asset's expert and admins see it too): the question, the
    answer as it stands now (corrected, if the expert corrected it), its sources with their
    locators, and its charge."""
    consultation = assets.get_consultation(
        session, viewer=viewer_of(account), consultation_id=consultation_id
    )
    asset = session.get(Asset, consultation.asset_id)
    assert asset is not None  # a foreign key guarantees it
    charge = billing.charge_for_consultation(session, consultation.id)
    return render(
        request,
        "answer.html",
        account=account,
        asset=asset,
        question=consultation.question,
        asked_at=consultation.created_at,
        result=querying.consultation_public(consultation, charge),
    )


# Verified answers and review settings


def _settings_form(session: Session, account: Account, slug: str) -> dict[str, str]:
    asset = assets.get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return {
        "sample_rate": f"{round(asset.sample_rate * 100, 2):g}",
        "review_hours": str(asset.review_hours),
        "review_threshold": f"{asset.review_threshold:g}",
    }


def _verified_page(
    request: Request,
    session: Session,
    account: Account,
    slug: str,
    status_code: int = 200,
    *,
    settings: dict[str, str] | None = None,
    typed: dict[str, dict[str, str]] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """Live and retired verified answers with their edit forms, and the review settings;
    ``typed`` keeps an edit as typed (by verified answer id), ``settings`` the settings."""
    try:
        saved_settings = _settings_form(session, account, slug)
        views = [
            reviewing.verified_view(session, v)
            for v in reviewing.list_verified(session, account=account, slug=slug, retired=True)
        ]
        abbreviations = reviewing.list_abbreviations(
            session, get_runtime(request), account=account, slug=slug
        )
    except VouchError as exc:
        return error_page(request, account, exc)
    for view in views:
        view["form"] = (typed or {}).get(view["id"]) or {
            "question": view["question"],
            "answer": view["answer"],
        }
    return render(
        request,
        "verified.html",
        status_code,
        account=account,
        slug=slug,
        live=[v for v in views if not v["retired"]],
        retired=[v for v in views if v["retired"]],
        settings=settings or saved_settings,
        fields=SETTINGS_FIELDS,
        abbreviations=abbreviations,
        **extra,
    )


@router.get("/assets/{slug}/verified")
def verified_page(
    request: Request,
    session: SessionDep,
    account: SignedIn,
    slug: str,
    saved: str = "",
    retired: str = "",
) -> Response:
    notice = None
    if saved == "settings":
        notice = "Review settings saved."
    elif saved:
        notice = "Verified answer saved."
    elif retired:
        notice = "Verified answer retired: it is no longer served."
    return _verified_page(request, session, account, slug, notice=notice)


def _verified_refused(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    slug: str,
    verified_id: str,
    answer: str | None = None,
    question: str = "",
    **_: Any,
) -> Response:
    """The verified answers again with why; a refused edit as typed, beside its answer."""
    if answer is None:
        return _verified_page(request, session, account, slug, exc.status_code, error=exc.message)
    return _verified_page(
        request,
        session,
        account,
        slug,
        exc.status_code,
        typed={verified_id: {"question": question, "answer": answer}},
        error=exc.message,
        error_id=verified_id,
    )


@router.post("/assets/{slug}/verified/{verified_id}", dependencies=[PostGuard])
@page_action(_verified_refused)
def edit_verified(
    session: SessionDep,
    runtime: RuntimeDep,
    account: VerifiedForm,
    slug: str,
    verified_id: str,
    answer: Annotated[str, Form()] = "",
    question: Annotated[str, Form()] = "",
) -> Response:
    reviewing.edit_verified(
        session,
        runtime,
        account=account,
        verified_id=verified_id,
        answer=answer,
        question=question.strip() or None,
    )
    return RedirectResponse(
        f"/assets/{slug}/verified?saved={verified_id}#{verified_id}", status_code=303
    )


@router.post("/assets/{slug}/verified/{verified_id}/retire", dependencies=[PostGuard])
@page_action(_verified_refused)
def retire_verified(
    session: SessionDep, runtime: RuntimeDep, account: VerifiedForm, slug: str, verified_id: str
) -> Response:
    reviewing.retire_verified(session, runtime, account=account, verified_id=verified_id)
    return RedirectResponse(f"/assets/{slug}/verified?retired={verified_id}", status_code=303)


def _number(form: dict[str, str], name: str, low: float, high: float) -> float | None:
    text = form.get(name, "").strip().removesuffix("%").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise InvalidReviewSettings(
            f"{SETTINGS_FIELDS[name]}: {text!r} is not a number from {low:g} to {high:g}"
        )
    return value


def review_settings(form: dict[str, str]) -> dict[str, Any]:
    """The settings as typed: a sample rate in percent, whole hours, a threshold from 0 to 1.
    An empty field leaves its setting unchanged."""
    rate = _number(form, "sample_rate", 0, 100)
    hours = _number(form, "review_hours", 1, 24 * 30)
    if hours is not None and not hours.is_integer():
        raise InvalidReviewSettings(f"{SETTINGS_FIELDS['review_hours']}: use whole hours")
    return {
        "sample_rate": None if rate is None else rate / 100,
        "review_hours": None if hours is None else int(hours),
        "review_threshold": _number(form, "review_threshold", 0, 1),
    }


def _settings_not_set(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    slug: str,
    **typed: Any,
) -> Response:
    form = {name: typed[name] for name in SETTINGS_FIELDS}
    return _verified_page(
        request,
        session,
        account,
        slug,
        exc.status_code,
        settings=form,
        settings_error=exc.message,
    )


@router.post("/assets/{slug}/review-settings", dependencies=[PostGuard])
@page_action(_settings_not_set)
def set_review_settings(
    session: SessionDep,
    account: VerifiedForm,
    slug: str,
    sample_rate: Annotated[str, Form()] = "",
    review_hours: Annotated[str, Form()] = "",
    review_threshold: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "sample_rate": sample_rate,
        "review_hours": review_hours,
        "review_threshold": review_threshold,
    }
    reviewing.set_review_settings(session, account=account, slug=slug, **review_settings(form))
    return RedirectResponse(f"/assets/{slug}/verified?saved=settings#settings", status_code=303)


# Quality


@router.get("/assets/{slug}/quality")
@page_action(show_error)
def quality_page(request: Request, session: SessionDep, account: SignedIn, slug: str) -> Response:
    figures = reviewing.quality(session, account=account, slug=slug)
    return render(request, "quality.html", account=account, slug=slug, q=figures)
