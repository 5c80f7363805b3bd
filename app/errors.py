"""Errors of accounts and auth, and the handlers that render every error.

API routes answer ``{"error": <class name>, "detail": message}`` with the error's status; page
routes answer a plain HTML error page; the OpenAI-compatible routes answer in OpenAI's shape
(``openai_error``). A page that needs a signed-in account and has none raises SignInFirst,
which sends the visitor to the sign-in page (and back). Anything else that escapes is a bug
and a 500.
"""

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized, VouchError


class InvalidCredentials(Unauthorized):
    pass


class AccountNotFound(NotFound):
    pass


class ApiKeyNotFound(NotFound):
    pass


class EmailTaken(Conflict):
    pass


class InvalidAccount(InvalidInput):
    pass


class RoleRequired(Forbidden):
    pass


class EmailUnverified(Forbidden):
    """The account has not proved its e-mail address yet, and the action needs it."""


class AccountSuspended(Forbidden):
    """An admin suspended the account: it cannot sign in or use its API keys."""


class LinkInvalid(Forbidden):
    """A mailed link (verification, e-mail change, password reset) that is forged, cut short,
    expired or used up: it grants nothing."""


class OrcidFailed(VouchError):
    """ORCID's sign-in did not prove an iD (refused, unreachable, or a mismatched state)."""

    status_code = 400


class OrcidTaken(Conflict):
    """The ORCID iD is proved by another account already."""


class RateLimited(VouchError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SignInFirst(Exception):
    """A page needs a signed-in account and none is: go to the sign-in page and come back to
    ``then`` afterwards; a page fragment (``fragment``) answers 401 with ``message`` instead.
    Raised by ``app.deps.signed_in``."""

    def __init__(self, then: str, *, fragment: str | None = None, message: str = "") -> None:
        super().__init__(then)
        self.then = then
        self.fragment = fragment
        self.message = message


_STATUS_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
}


# OpenAI's error types by status, for the OpenAI-compatible routes (app/api/openai_compat.py).
_OPENAI_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


def openai_error(status: int | None, error: str, detail: str) -> dict[str, Any]:
    """An error as OpenAI's clients read it: ``{"error": {"message", "type", "param",
    "code"}}``, the code being Vouch's error name (None: found after a stream started)."""
    if status is None:
        kind = "api_error"
    else:
        kind = _OPENAI_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
    return {"error": {"message": detail, "type": kind, "param": None, "code": error}}


def _openai_shaped(request: Request) -> bool:
    """The OpenAI-compatible routes answer errors in OpenAI's shape, every other route in ours."""
    path = request.url.path
    return path.startswith("/v1/chat/") or path == "/v1/models" or path.startswith("/v1/models/")


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/v1") and "text/html" in request.headers.get(
        "accept", ""
    )


def render_error(
    request: Request, status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """The error as ``{"error", "detail"}`` JSON, or as an HTML page for a page request."""
    if _wants_html(request):
        templates = request.app.state.templates
        return templates.TemplateResponse(  # type: ignore[no-any-return]
            request,
            "error.html",
            {"status": status, "error": error, "detail": detail},
            status_code=status,
            headers=headers,
        )
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    if _openai_shaped(request):
        body = openai_error(status, error, detail)
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(VouchError)
    async def vouch_error(request: Request, exc: VouchError) -> Response:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return render_error(request, exc.status_code, type(exc).__name__, exc.message, headers)

    @app.exception_handler(SignInFirst)
    async def signed_out(request: Request, exc: SignInFirst) -> Response:
        if exc.fragment is not None:
            templates = request.app.state.templates
            return templates.TemplateResponse(  # type: ignore[no-any-return]
                request, exc.fragment, {"error": exc.message}, status_code=401
            )
        return RedirectResponse(f"/login?next={quote(exc.then)}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return render_error(request, 422, "ValidationError", _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        name = _STATUS_NAMES.get(exc.status_code, "HTTPError")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route with this path only.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(app, request))}
        return render_error(request, exc.status_code, name, str(exc.detail), headers)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


class PlainTooLarge:
    """Starlette refuses a body over its limit (``max_body_size``) with a plain-text 413 of its
    own, past every exception handler; this gives that answer the error model of every other
    error. It wraps the whole middleware stack (see ``app.main``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_or_replace(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the plain body of the answer replaced
            if (
                message["type"] == "http.response.start"
                and message["status"] == 413
                and (b"content-type", b"text/plain; charset=utf-8") in message["headers"]
            ):
                replaced = True
                limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                detail = f"the request body is larger than the {limit} byte limit"
                response = render_error(Request(scope, receive), 413, "PayloadTooLarge", detail)
                await response(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, send_or_replace)
