"""Page routes: sign in, assets, an asset's ask and upload forms, publishing, job progress,
API keys."""

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app import accounts, catalog, querying, sse
from app.accounts import viewer_of
from app.bodies import FILES
from app.deps import (
    SESSION_COOKIE,
    PageAccount,
    RuntimeDep,
    SessionDep,
    SignedIn,
    client_address,
    get_runtime,
    signed_in,
)
from app.errors import InvalidCredentials, RateLimited
from app.models import Account
from app.web.actions import page_action
from app.web.forms import OriginGuard, PageFiles, PostGuard, page_files
from assets import service as assets
from assets.schemas import AssetCreate
from core.errors import InvalidInput, VouchError
from ingestion.models import IngestionJob
from ingestion.service import job_public

router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, name, context, status_code=status_code
    )
    return response


def to_login(request: Request) -> RedirectResponse:
    """Sign in, then come back to this page."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return login_then(target)


def login_then(path: str) -> RedirectResponse:
    """Sign in, then go to ``path``."""
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


def error_page(request: Request, account: Account | None, exc: VouchError) -> HTMLResponse:
    """An expected failure as a page with its status and message."""
    return render(
        request,
        "error.html",
        exc.status_code,
        account=account,
        status=exc.status_code,
        error=type(exc).__name__,
        detail=exc.message,
    )


def show_error(exc: VouchError, request: Request, account: Account | None, **_: Any) -> Response:
    """A page action's ``failed``: the error page."""
    return error_page(request, account, exc)


def refused(request: Request, account: Account, detail: str) -> HTMLResponse:
    """A 403 page saying why."""
    return render(
        request, "error.html", 403, account=account, status=403, error="Forbidden", detail=detail
    )


def _safe_next(target: str) -> str:
    # Only local paths: never send a signed-in user on to another site.
    return target if target.startswith("/") and not target.startswith("//") else "/assets"


@router.get("/")
def home(account: PageAccount) -> RedirectResponse:
    return RedirectResponse("/assets" if account else "/login", status_code=303)


@router.get("/login")
def login_form(request: Request, account: PageAccount, next: str = "/assets") -> Response:
    if account:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", next=_safe_next(next), account=None)


@router.post("/login", dependencies=[PostGuard])
def login(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/assets",
) -> Response:
    address = client_address(request)
    context = {"email": email, "next": _safe_next(next)}
    try:
        runtime.sign_in_throttle.check(account=email, address=address)
        account = accounts.verify_password(
            session, email=email, password=password, checks=runtime.password_checks
        )
    except RateLimited as exc:
        refused = render(request, "login.html", 429, error=exc.message, **context)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except InvalidCredentials as exc:
        runtime.sign_in_throttle.failed(account=email, address=address)
        return render(request, "login.html", 401, error=exc.message, **context)
    runtime.sign_in_throttle.succeeded(account=email)
    if account.suspended_at is not None:
        detail = "this account is suspended; write to the platform's administrators to lift it"
        return render(request, "login.html", 403, error=detail, **context)
    token = accounts.start_web_session(session, account=account)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=accounts.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.environment == "production",
    )
    return response


@router.post("/logout", dependencies=[PostGuard])
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.end_web_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _assets_page(
    request: Request, session: SessionDep, account: Account, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    mine = account.role == "expert"
    listed = assets.list_assets(session, viewer=viewer_of(account), mine=mine)
    context = {"account": account, "assets": listed, "form": {}, **extra}
    return render(request, "assets.html", status_code, **context)


@router.get("/assets")
def assets_page(request: Request, session: SessionDep, account: SignedIn) -> Response:
    return _assets_page(request, session, account)


def _asset_not_created(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    slug: str,
    title: str,
    description: str = "",
    tags: str = "",
    **_: Any,
) -> Response:
    form = {"slug": slug, "title": title, "description": description, "tags": tags}
    return _assets_page(request, session, account, exc.status_code, error=exc.message, form=form)


@router.post("/assets", dependencies=[PostGuard])
@page_action(_asset_not_created)
def create_asset(
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    slug: Annotated[str, Form()],
    title: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = AssetCreate(
            slug=slug.strip(),
            title=title,
            description=description,
            tags=[t for t in tags.split(",") if t.strip()],
        )
    except ValidationError as exc:
        message = "; ".join(
            f"{e['loc'][0]}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise InvalidInput(message) from exc
    asset = assets.create_asset(
        session, owner=viewer_of(account), data=data, embedder=runtime.embedder
    )
    return RedirectResponse(f"/assets/{asset.slug}", status_code=303)


def _asset_context(
    session: SessionDep, runtime: RuntimeDep, account: Account, slug: str
) -> dict[str, Any]:
    viewer = viewer_of(account)
    asset = assets.get_visible_asset(session, viewer=viewer, slug=slug)
    manage = assets.can_manage(viewer, asset)
    jobs = []
    missing: list[str] = []
    price = None
    if manage:
        rows, _ = querying.list_jobs(session, account=account, slug=slug)
        jobs = [_job_view(session, job, slug) for job in rows]
        missing = catalog.missing_to_publish(session, asset)
    else:
        # What the next question costs and what pays for it, shown above the question box.
        price = catalog.price_for(session, runtime, account=account, asset=asset)
    return {
        "account": account,
        "asset": asset,
        "manage": manage,
        "jobs": jobs,
        "missing": missing,
        "price": price,
    }


@router.get("/assets/{slug}")
def asset_page(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: SignedIn, slug: str
) -> Response:
    return render(request, "asset.html", **_asset_context(session, runtime, account, slug))


def _not_published(
    exc: VouchError, request: Request, session: SessionDep, account: Account, slug: str, **_: Any
) -> Response:
    # Nothing was changed: show the page again with why.
    try:
        context = _asset_context(session, get_runtime(request), account, slug)
    except VouchError:
        return error_page(request, account, exc)
    return render(request, "asset.html", exc.status_code, publish_error=exc.message, **context)


@router.post("/assets/{slug}/publish", dependencies=[PostGuard])
@page_action(_not_published)
def publish(session: SessionDep, account: SignedIn, slug: str) -> Response:
    """List the asset in the catalog (it needs a price and a finished ingest)."""
    catalog.publish(session, account=account, slug=slug)
    return RedirectResponse(f"/assets/{slug}", status_code=303)


@router.post("/assets/{slug}/unpublish", dependencies=[PostGuard])
@page_action(_not_published)
def unpublish(session: SessionDep, account: SignedIn, slug: str) -> Response:
    """Take the asset out of the catalog."""
    catalog.unpublish(session, account=account, slug=slug)
    return RedirectResponse(f"/assets/{slug}", status_code=303)


def _fragment(request: Request, name: str, **context: Any) -> str:
    """A template rendered to a string, for the events of a streamed answer."""
    html: str = request.app.state.templates.get_template(name).render(request=request, **context)
    return html


def _stream_answer(request: Request, stream: querying.AskStream) -> Response:
    def events() -> Iterator[str]:
        for e in stream.events():
            if e.name == "delta":
                yield sse.event("delta", e.data)
            elif e.name == "done":
                yield sse.event("done", {"html": _fragment(request, "_answer.html", result=e.data)})
            else:
                html = _fragment(request, "_answer.html", error=e.data["detail"])
                yield sse.event("error", {**e.data, "html": html})

    return sse.response(events())


def _whole_page(request: Request) -> bool:
    """A plain form post with no script: the answer comes in the whole asset page."""
    return "hx-request" not in request.headers and not sse.wants_stream(
        request.headers.get("accept")
    )


def _not_answered(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: Account,
    slug: str,
    question: str = "",
    **_: Any,
) -> Response:
    if _whole_page(request):
        context = {**_asset_context(session, runtime, account, slug), "question": question}
        return render(request, "asset.html", exc.status_code, error=exc.message, **context)
    return render(request, "_answer.html", exc.status_code, error=exc.message)


AskingAccount = Annotated[
    Account, signed_in(fragment="_answer.html", message="Your session ended; sign in again.")
]


@router.post("/assets/{slug}/ask", dependencies=[PostGuard])
@page_action(_not_answered, savepoint=False)  # ask commits its reads, then records on its own
def ask(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: AskingAccount,
    slug: str,
    question: Annotated[str, Form()] = "",
) -> Response:
    """The answer fragment (htmx), server-sent events (the page's script), or, for a plain
    form post with no script, the whole asset page with the answer."""
    if sse.wants_stream(request.headers.get("accept")):
        stream = querying.start_ask_stream(
            session, runtime, account=account, slug=slug, question=question
        )
        assert isinstance(stream, querying.AskStream)  # no Idempotency-Key: never a replay
        return _stream_answer(request, stream)
    result = querying.ask(session, runtime, account=account, slug=slug, question=question)
    if _whole_page(request):
        context = {**_asset_context(session, runtime, account, slug), "question": question}
        return render(request, "asset.html", result=result.public(), **context)
    return render(request, "_answer.html", result=result.public())


def _may_upload(session: Session, account: Account, path: dict[str, Any]) -> None:
    assets.get_managed_asset(session, viewer=viewer_of(account), slug=path["slug"])


def _job_failed(exc: VouchError, request: Request, **_: Any) -> Response:
    return render(request, "_upload_error.html", exc.status_code, error=exc.message)


UploadingAccount = Annotated[
    Account, signed_in(fragment="_upload_error.html", message="Sign in again to upload.")
]
JobAccount = Annotated[Account, signed_in(fragment="_upload_error.html", message="Sign in again.")]


@router.post("/assets/{slug}/sources", dependencies=[OriginGuard], max_body_size=FILES)
@page_action(_job_failed)
def upload(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: UploadingAccount,
    slug: str,
    upload: Annotated[
        PageFiles, page_files(_may_upload, lambda settings: settings.ingest.max_upload_bytes)
    ],
) -> Response:
    if upload.error is not None:
        raise upload.error
    assert upload.form is not None
    job = querying.submit_upload(
        session,
        runtime,
        account=account,
        slug=slug,
        files=upload.form.files.get("files", []),
        kind=upload.form.text("kind", max_length=20, default="auto"),
    )
    return render(request, "_job.html", 202, job=_job_view(session, job, slug))


@router.get("/jobs/{job_id}")
def job_fragment(
    request: Request, session: SessionDep, account: JobAccount, job_id: str
) -> Response:
    job, asset = querying.get_job(session, account=account, job_id=job_id)
    return render(request, "_job.html", job=_job_view(session, job, asset.slug))


@router.post("/jobs/{job_id}/cancel", dependencies=[PostGuard])
@page_action(_job_failed)
def cancel_job(request: Request, session: SessionDep, account: JobAccount, job_id: str) -> Response:
    job, asset = querying.cancel_job(session, account=account, job_id=job_id)
    return render(request, "_job.html", job=_job_view(session, job, asset.slug))


def _job_view(session: SessionDep, job: IngestionJob, slug: str) -> dict[str, Any]:
    return {"asset": slug, **job_public(session, job)}


@router.get("/keys")
def keys_page(request: Request, session: SessionDep, account: SignedIn) -> Response:
    keys = accounts.list_api_keys(session, account=account)
    return render(request, "keys.html", account=account, keys=keys)


@router.post("/keys", dependencies=[PostGuard])
def create_key(
    request: Request,
    session: SessionDep,
    account: SignedIn,
    label: Annotated[str, Form()] = "",
) -> Response:
    _, secret = accounts.create_api_key(session, account=account, label=label)
    keys = accounts.list_api_keys(session, account=account)
    return render(request, "keys.html", 201, account=account, keys=keys, created=secret)


@router.post("/keys/{key_id}/revoke", dependencies=[PostGuard])
def revoke_key(session: SessionDep, account: SignedIn, key_id: str) -> Response:
    accounts.revoke_api_key(session, account=account, key_ref=key_id)
    return RedirectResponse("/keys", status_code=303)
