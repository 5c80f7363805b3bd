"""Golden-set pages: the expert's private eval runs and submitted golden sets of an asset, with a
form to submit one for approval; the admin's list of submitted sets to approve or reject
(``app.golden_sets``)."""

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app import golden_sets
from app.bodies import FILES
from app.deps import SessionDep, SignedIn, signed_in
from app.models import Account, Role
from app.web.actions import page_action
from app.web.forms import OriginGuard, PageFiles, PostGuard, page_files
from app.web.pages import error_page, refused, render
from core.config import Settings
from core.errors import InvalidInput, VouchError

router = APIRouter(include_in_schema=False)

SUBMITTED = "Submitted: an admin will approve it (then the platform runs it and it counts in "
SUBMITTED += "your public quality score) or reject it with a note."
DECIDED = {
    "approved": "Approved: the platform runs it from its next run, and its runs count.",
    "rejected": "Rejected: it stays the expert's private diagnostic; they see your note.",
}
STATUS_LABELS = {
    "submitted": "Waiting for an admin",
    "approved": "Approved",
    "rejected": "Rejected",
}


class GoldenFileMissing(InvalidInput):
    pass


AdminForm = Annotated[Account, signed_in("/admin/golden-sets")]


def install(app: FastAPI) -> None:
    app.state.templates.env.globals["golden_status_labels"] = STATUS_LABELS
    app.include_router(router)


# The expert's page


def _asset_page(
    request: Request,
    session: Session,
    account: Account,
    slug: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    try:
        runs = golden_sets.private_runs(session, account=account, slug=slug)
        sets = golden_sets.for_asset(session, account=account, slug=slug)
    except VouchError as exc:
        return error_page(request, account, exc)
    return render(
        request,
        "golden_sets.html",
        status_code,
        account=account,
        slug=slug,
        runs=[golden_sets.run_public(r) for r in runs],
        sets=[golden_sets.golden_view(session, g) for g in sets],
        **extra,
    )


@router.get("/assets/{slug}/golden-sets")
def asset_golden_sets(
    request: Request, session: SessionDep, account: SignedIn, slug: str, done: str = ""
) -> Response:
    """The expert's private eval runs and submitted golden sets of their asset."""
    notice = SUBMITTED if done == "submitted" else None
    return _asset_page(request, session, account, slug, notice=notice)


def _may_submit(session: Session, account: Account, path: dict[str, Any]) -> None:
    golden_sets.own_asset(session, account=account, slug=path["slug"])


def _file_limit(_settings: Settings) -> int:
    return golden_sets.MAX_FILE_BYTES


def _not_submitted(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    slug: str,
    upload: PageFiles,
    **_: Any,
) -> Response:
    if exc is upload.error and exc.status_code == 404:
        return error_page(request, account, exc)
    typed = upload.form.fields.get("name", "") if upload.form is not None else ""
    name = typed if len(typed) <= 200 else ""  # a name too long is the error itself
    return _asset_page(
        request, session, account, slug, exc.status_code, error=exc.message, set_name=name
    )


@router.post("/assets/{slug}/golden-sets", dependencies=[OriginGuard], max_body_size=FILES)
@page_action(_not_submitted)
def submit_golden_set(
    session: SessionDep,
    account: Annotated[Account, signed_in("/assets/{slug}/golden-sets")],
    slug: str,
    upload: Annotated[PageFiles, page_files(_may_submit, _file_limit, max_files=1)],
) -> Response:
    """Submit a golden set file (JSONL, as ``vouch eval`` reads it) for an admin's approval."""
    if upload.error is not None:
        raise upload.error
    assert upload.form is not None
    name = upload.form.text("name", max_length=200)
    files = upload.form.files.get("file", [])
    if not files or not files[0][1]:
        raise GoldenFileMissing("choose the golden set's file (JSONL) to submit")
    ((filename, data),) = files
    golden_sets.submit_file(
        session, account=account, slug=slug, name=name, filename=filename, data=data
    )
    return RedirectResponse(f"/assets/{slug}/golden-sets?done=submitted", status_code=303)


# The admin's page


def _admin_page(
    request: Request,
    session: Session,
    account: Account,
    status: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    found = golden_sets.waiting(session, status=status)
    return render(
        request,
        "admin_golden_sets.html",
        status_code,
        account=account,
        status=status,
        statuses=golden_sets.STATUSES,
        sets=[golden_sets.golden_view(session, g) for g in found],
        **extra,
    )


@router.get("/admin/golden-sets")
def admin_golden_sets(
    request: Request,
    session: SessionDep,
    account: SignedIn,
    status: str = "submitted",
    done: str = "",
) -> Response:
    """Golden sets experts submitted, to approve or reject (or those already decided)."""
    if account.role != Role.admin:
        return refused(request, account, "golden-set review is for admins")
    if status not in golden_sets.STATUSES:
        return error_page(
            request,
            account,
            InvalidInput(
                f"unknown status {status!r}: use one of {', '.join(golden_sets.STATUSES)}"
            ),
        )
    return _admin_page(request, session, account, status, notice=DECIDED.get(done))


def _not_decided(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    golden_set_id: str,
    note: str = "",
    **_: Any,
) -> Response:
    return _admin_page(
        request,
        session,
        account,
        "submitted",
        exc.status_code,
        error=exc.message,
        error_id=golden_set_id,
        notes={golden_set_id: note},
    )


def _decide(
    request: Request,
    session: Session,
    account: Account,
    golden_set_id: str,
    *,
    approved: bool,
    note: str,
) -> Response:
    if account.role != Role.admin:
        return refused(request, account, "golden-set review is for admins")
    if len(note) > 1000:
        raise InvalidInput("the note has at most 1000 characters")
    golden_sets.decide(
        session, admin=account, golden_set_id=golden_set_id, approved=approved, note=note
    )
    done = "approved" if approved else "rejected"
    return RedirectResponse(f"/admin/golden-sets?done={done}", status_code=303)


@router.post("/admin/golden-sets/{golden_set_id}/approve", dependencies=[PostGuard])
@page_action(_not_decided)
def approve(
    request: Request,
    session: SessionDep,
    account: AdminForm,
    golden_set_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    return _decide(request, session, account, golden_set_id, approved=True, note=note)


@router.post("/admin/golden-sets/{golden_set_id}/reject", dependencies=[PostGuard])
@page_action(_not_decided)
def reject(
    request: Request,
    session: SessionDep,
    account: AdminForm,
    golden_set_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    return _decide(request, session, account, golden_set_id, approved=False, note=note)
