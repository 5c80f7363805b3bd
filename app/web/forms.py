"""Page forms: refused when another site sends them, and files read only when they may be.

Every form of a signed-in page carries a token derived from the sign-in cookie
(``{{ csrf_field() }}`` in templates; htmx and the page's scripts send it as the
``X-CSRF-Token`` header). A POST that comes with the cookie but without the right token is
refused (403), whatever its Origin says, and so is a POST whose Origin names another host. The
cookie is also SameSite=Lax. Another site cannot read the cookie, so it cannot make the token.
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlmodel import Session

from app.bodies import Form, LimitOf, read_files
from app.deps import SESSION_COOKIE, PageAccount, RuntimeDep, SessionDep
from app.models import Account
from core.errors import Forbidden, VouchError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CrossSiteRefused(Forbidden):
    pass


def csrf_token(session_cookie: str) -> str:
    """The token that this sign-in's forms carry."""
    return hashlib.sha256(f"vouch-csrf\x00{session_cookie}".encode()).hexdigest()


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise CrossSiteRefused("cross-site form posts are refused")


def _check_token(request: Request, field: str | None) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return  # not signed in: the route itself asks the caller to sign in
    given = request.headers.get(CSRF_HEADER) or field
    if not given or not hmac.compare_digest(given, csrf_token(cookie)):
        raise CrossSiteRefused(
            "this form is out of date or was sent from another site; reload the page and "
            "send it again"
        )


async def check_form_post(request: Request) -> None:
    """Refuse a cross-site form post (see the module's docstring)."""
    _same_origin(request)
    field = None
    if request.cookies.get(SESSION_COOKIE) and CSRF_HEADER not in request.headers:
        value = (await request.form()).get(CSRF_FIELD)
        field = value if isinstance(value, str) else None
    _check_token(request, field)


PostGuard = Depends(check_form_post)
# For forms with files: the token is checked once the body is read (``page_files``).
OriginGuard = Depends(_same_origin)


@pass_context
def csrf_field(context: Context) -> Markup:
    """The hidden input that a form of this page needs (empty when nobody is signed in)."""
    value = csrf_value(context)
    return (
        Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{value}">') if value else Markup()
    )


@pass_context
def csrf_value(context: Context) -> str:
    request = context.get("request")
    cookie = request.cookies.get(SESSION_COOKIE) if isinstance(request, Request) else None
    return csrf_token(cookie) if cookie else ""


def install(app: FastAPI) -> None:
    app.state.templates.env.globals.update(csrf_field=csrf_field, csrf_value=csrf_value)


@dataclass(frozen=True, slots=True)
class PageFiles:
    """A page form with files. ``form`` is None when nobody is signed in or when ``error``
    says why it was refused (by the route's check, the size limit or the CSRF token)."""

    form: Form | None = None
    error: VouchError | None = None


Check = Callable[[Session, Account, dict[str, Any]], None]


def page_files(check: Check, budget: LimitOf, *, max_files: int = 1000) -> Any:
    """A dependency reading a page's multipart form, only for a signed-in account that
    ``check(session, account, path_params)`` allows (it raises VouchError otherwise)."""

    def allowed(request: Request, session: SessionDep, account: PageAccount) -> VouchError | None:
        if account is None:
            return None
        try:
            check(session, account, request.path_params)
        except VouchError as exc:
            return exc
        session.commit()  # only reads: no connection is held while the files arrive
        return None

    async def read(
        request: Request,
        runtime: RuntimeDep,
        account: PageAccount,
        refused: Annotated[VouchError | None, Depends(allowed)],
    ) -> PageFiles:
        if account is None or refused is not None:
            return PageFiles(error=refused)
        try:
            form = await read_files(request, budget=budget(runtime.settings), max_files=max_files)
            _check_token(request, form.fields.get(CSRF_FIELD))
        except VouchError as exc:
            return PageFiles(error=exc)
        return PageFiles(form=form)

    return Depends(read)
