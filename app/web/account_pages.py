"""Account pages: sign up, follow a verification link, the account's settings (e-mail change,
a new verification link, ORCID iD), forgot and reset password, and the admin's accounts."""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import accounts, identity
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
from app.errors import LinkInvalid, OrcidFailed
from app.models import Account, Role
from app.runtime import Runtime
from app.web.actions import page_action
from app.web.forms import PostGuard
from app.web.pages import refused, render
from core.errors import InvalidInput, VouchError

router = APIRouter(include_in_schema=False)

ORCID_CALLBACK = "/account/orcid/callback"
# The account's forms come back to its page after signing in.
AccountForm = Annotated[Account, signed_in("/account")]


def install(app: FastAPI) -> None:
    app.include_router(router)


def _sign_in(response: Response, session: SessionDep, runtime: Runtime, account: Account) -> None:
    token = accounts.start_web_session(session, account=account)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=accounts.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.environment == "production",
    )


def _mail_note(runtime: Runtime) -> str:
    """Where a mailed link goes: an inbox, or the server's outbox when no SMTP is set up."""
    if runtime.settings.mail.host:
        return "Check your inbox (and the spam folder)."
    return (
        "This server has no mail server configured: the message was written to its log and "
        "to the outbox folder in its data directory."
    )


# Sign up


@router.get("/signup")
def signup_form(request: Request, account: PageAccount) -> Response:
    if account:
        return RedirectResponse("/account", status_code=303)
    return render(request, "signup.html", account=None, form={"role": "client"})


def _not_signed_up(
    exc: VouchError, request: Request, email: str, name: str, role: str = "client", **_: Any
) -> Response:
    form = {"email": email, "name": name, "role": role}
    return render(
        request, "signup.html", exc.status_code, account=None, form=form, error=exc.message
    )


@router.post("/signup", dependencies=[PostGuard])
@page_action(_not_signed_up)
def signup(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=16)] = "client",
) -> Response:
    account = identity.signup(
        session,
        runtime,
        email=email,
        name=name,
        password=password,
        role=role,
        address=client_address(request),
    )
    response = RedirectResponse("/account?sent=1", status_code=303)
    _sign_in(response, session, runtime, account)
    return response


# Verification links


def _not_verified(exc: VouchError, request: Request, account: Account | None, **_: Any) -> Response:
    return render(request, "verify.html", exc.status_code, account=account, error=exc.message)


@router.get("/verify")
@page_action(_not_verified)
def verify(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    token: str = "",
) -> Response:
    """Follow a verification or e-mail change link."""
    verified, outcome = identity.follow_link(session, runtime, token=token[:4000])
    # The address is shown only to its own signed-in account.
    mine = account is not None and account.id == verified.id
    return render(
        request,
        "verify.html",
        account=account,
        outcome=outcome,
        email=verified.email if mine else None,
    )


def _account_refused(exc: VouchError, request: Request, account: Account, **_: Any) -> Response:
    """The account's page again, saying why its form was refused."""
    runtime = get_runtime(request)
    return _account_page(request, runtime, account, exc.status_code, error=exc.message)


@router.post("/account/verification", dependencies=[PostGuard])
@page_action(_account_refused)
def resend(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: AccountForm
) -> Response:
    identity.send_verification(session, runtime, account=account, address=client_address(request))
    return RedirectResponse("/account?sent=1", status_code=303)


# The account's settings


def _account_page(
    request: Request, runtime: Runtime, account: Account, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return render(
        request,
        "account.html",
        status_code,
        account=account,
        orcid_enabled=runtime.settings.orcid.enabled,
        mail_note=_mail_note(runtime),
        **extra,
    )


@router.get("/account")
def account_page(
    request: Request,
    runtime: RuntimeDep,
    account: SignedIn,
    sent: bool = False,
    orcid: str = "",
) -> Response:
    notices = []
    if sent and account.email_verified_at is None:
        notices.append(f"We sent a verification link to {account.email}.")
    if orcid == "connected" and account.orcid:
        notices.append(f"Your ORCID iD {account.orcid} is connected.")
    return _account_page(request, runtime, account, notices=notices)


def _email_not_changed(
    exc: VouchError, request: Request, account: Account, email: str, **_: Any
) -> Response:
    runtime = get_runtime(request)
    return _account_page(
        request, runtime, account, exc.status_code, error=exc.message, new_email=email
    )


@router.post("/account/email", dependencies=[PostGuard])
@page_action(_email_not_changed)
def change_email(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: AccountForm,
    email: Annotated[str, Form(max_length=320)],
) -> Response:
    new = identity.request_email_change(
        session, runtime, account=account, email=email, address=client_address(request)
    )
    notice = (
        f"We sent a link to {new}. Your address changes to it when you open that link; until "
        f"then you keep using {account.email}."
    )
    return _account_page(request, runtime, account, notices=[notice])


# ORCID iD


@router.post("/account/orcid", dependencies=[PostGuard])
def orcid_start(request: Request, runtime: RuntimeDep, account: AccountForm) -> Response:
    settings = runtime.settings
    if not settings.orcid.enabled:
        return _account_page(
            request, runtime, account, 404, error="ORCID sign-in is not set up on this server"
        )
    state = identity.orcid_state(settings, request.cookies.get(SESSION_COOKIE, ""))
    url = identity.orcid_authorize_url(
        settings, state=state, redirect_uri=identity.site_url(settings) + ORCID_CALLBACK
    )
    return RedirectResponse(url, status_code=303)


@router.get(ORCID_CALLBACK)
@page_action(_account_refused)
def orcid_callback(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: AccountForm,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    settings = runtime.settings
    if error:
        raise OrcidFailed(f"ORCID did not connect your iD ({error[:100]}); try again")
    expected = identity.orcid_state(settings, request.cookies.get(SESSION_COOKIE, ""))
    if not state or state != expected:
        raise OrcidFailed(
            "this ORCID answer does not belong to your sign-in (the state does not match); "
            "start again from your account page"
        )
    if not code:
        raise OrcidFailed("ORCID sent no authorization code; start again")
    identity.connect_orcid(
        session,
        runtime,
        account=account,
        code=code[:200],
        redirect_uri=identity.site_url(settings) + ORCID_CALLBACK,
    )
    return RedirectResponse("/account?orcid=connected", status_code=303)


@router.post("/account/orcid/disconnect", dependencies=[PostGuard])
def orcid_disconnect(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: AccountForm
) -> Response:
    identity.disconnect_orcid(session, account=account)
    return _account_page(request, runtime, account, notices=["Your ORCID iD is disconnected."])


# Forgotten password


@router.get("/forgot-password")
def forgot_form(request: Request, account: PageAccount) -> HTMLResponse:
    return render(request, "forgot.html", account=account)


@router.post("/forgot-password", dependencies=[PostGuard])
def forgot(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    email: Annotated[str, Form(max_length=320)],
) -> HTMLResponse:
    identity.request_password_reset(session, runtime, email=email, address=client_address(request))
    return render(
        request,
        "forgot.html",
        account=account,
        sent=identity.RESET_SENT,
        mail_note=_mail_note(runtime),
    )


def _not_reset(
    exc: VouchError, request: Request, account: Account | None, token: str = "", **_: Any
) -> Response:
    # A bad link offers no form; a refused password keeps the form (and its link) to try again.
    kept = {} if isinstance(exc, LinkInvalid) or request.method == "GET" else {"token": token}
    return render(
        request, "reset.html", exc.status_code, account=account, error=exc.message, **kept
    )


@router.get("/reset-password")
@page_action(_not_reset)
def reset_form(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,
    token: str = "",
) -> Response:
    identity.reset_account(session, runtime, token=token[:4000])
    return render(request, "reset.html", account=account, token=token)


@router.post("/reset-password", dependencies=[PostGuard])
@page_action(_not_reset)
def reset(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: PageAccount,  # noqa: ARG001 (a refused password shows the page with it)
    token: Annotated[str, Form(max_length=4000)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    identity.reset_password(session, runtime, token=token, password=password)
    response = render(request, "reset.html", account=None, done=True)
    response.delete_cookie(SESSION_COOKIE)
    return response


# The admin's accounts


def _admin_page(
    request: Request,
    session: SessionDep,
    admin: Account,
    status_code: int = 200,
    q: str = "",
    page: int = 1,
    **extra: Any,
) -> HTMLResponse:
    size = identity.PAGE_SIZE
    found, total = identity.search_accounts(session, q=q, offset=(page - 1) * size, limit=size)
    pages = max(1, -(-total // size))

    def link(to: int) -> str:
        return "/admin/accounts?" + urlencode({"q": q, "page": to} if q else {"page": to})

    return render(
        request,
        "admin_accounts.html",
        status_code,
        account=admin,
        rows=found,
        total=total,
        q=q,
        page=page,
        pages=pages,
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if page < pages else None,
        roles=[r.value for r in Role],
        **extra,
    )


@router.get("/admin/accounts")
def admin_accounts(
    request: Request, session: SessionDep, account: SignedIn, q: str = "", page: int = 1
) -> Response:
    if account.role != Role.admin:
        return refused(request, account, "only admins see the list of accounts")
    return _admin_page(request, session, account, q=q[:320], page=min(max(page, 1), 100_000))


def _account_not_changed(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    q: str = "",
    page: int = 1,
    **_: Any,
) -> Response:
    return _admin_page(
        request, session, account, exc.status_code, q=q, page=page, error=exc.message
    )


@router.post("/admin/accounts/{account_id}", dependencies=[PostGuard])
@page_action(_account_not_changed)
def admin_change(
    request: Request,
    session: SessionDep,
    account: Annotated[Account, signed_in("/admin/accounts")],
    account_id: str,
    action: Annotated[str, Form(max_length=20)],
    role: Annotated[str, Form(max_length=16)] = "",
    q: Annotated[str, Form(max_length=320)] = "",
    page: Annotated[int, Form(ge=1, le=100_000)] = 1,
) -> Response:
    if account.role != Role.admin:
        return refused(request, account, "only admins change accounts")
    changes: dict[str, Any] = {
        "suspend": {"suspended": True},
        "unsuspend": {"suspended": False},
        "role": {"role": role},
    }
    if action not in changes:
        raise InvalidInput(f"unknown action {action!r}; use suspend, unsuspend or role")
    changed = identity.update_account(
        session, admin=account, account_id=account_id, **changes[action]
    )
    what = {
        "suspend": "is suspended",
        "unsuspend": "is no longer suspended",
        "role": f"is now {changed.role}",
    }[action]
    return _admin_page(request, session, account, q=q, page=page, notice=f"{changed.email} {what}.")
