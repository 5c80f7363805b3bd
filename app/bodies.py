"""Request bodies are refused before they cost anything.

Every body has a limit: ``VOUCH_SERVER__MAX_BODY_BYTES`` unless its route takes files and
declares its own with ``takes_files``. A Content-Length over the limit is answered with 413
before the application runs (nothing is read, nothing spooled to disk); a body sent without one
is counted while it is read and stopped as soon as it passes the limit.

Routes that take files declare no ``File()`` parameter, because FastAPI reads such a body
before any dependency runs: they depend on the caller (and on the checks that may refuse it),
then on a reader of the multipart body (``read_files``), so that an anonymous or unauthorised
upload is refused before its first byte is read.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import render_error
from core.config import Settings
from core.errors import InvalidInput

# Boundaries and part headers around the files of a multipart body.
MULTIPART_MARGIN = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
LimitOf = Callable[[Settings], int]
_FILE_LIMITS: dict[Callable[..., Any], LimitOf] = {}


def takes_files(limit: LimitOf) -> Callable[[Endpoint], Endpoint]:
    """Mark a route whose body holds files of up to ``limit(settings)`` bytes in all."""

    def mark(endpoint: Endpoint) -> Endpoint:
        _FILE_LIMITS[endpoint] = limit
        return endpoint

    return mark


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit} byte limit")


def _too_large(limit: int) -> str:
    return f"the request body is larger than the {limit} byte limit"


class BodyLimit:
    """ASGI middleware applying the limits above."""

    def __init__(self, app: ASGIApp, *, settings: Settings, routes: list[BaseRoute]) -> None:
        self.app = app
        self.settings = settings
        self.default = settings.server.max_body_bytes
        self.routes = routes

    def _route_limit(self, scope: Scope) -> int:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                limit = _FILE_LIMITS.get(getattr(route, "endpoint", None))  # type: ignore[arg-type]
                if limit is not None:
                    return max(self.default, limit(self.settings) + MULTIPART_MARGIN)
                break
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit = self.default
        if declared is None or declared > limit:
            limit = self._route_limit(scope)
        if declared is not None and declared > limit:
            response = render_error(Request(scope), 413, "PayloadTooLarge", _too_large(limit))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(BodyLimit, settings=settings, routes=app.router.routes)


# Multipart bodies


class UnsupportedBody(InvalidInput):
    status_code = 415


class UploadTooLarge(InvalidInput):
    status_code = 413


@dataclass(frozen=True, slots=True)
class Form:
    """A multipart body read into memory: its files (name, bytes) by field, and text fields."""

    files: dict[str, list[tuple[str, bytes]]]
    fields: dict[str, str]

    def text(self, name: str, *, max_length: int, default: str = "") -> str:
        value = self.fields.get(name, default)
        if len(value) > max_length:
            raise InvalidInput(f"{name}: at most {max_length} characters")
        return value


async def read_files(request: Request, *, budget: int, max_files: int = 1000) -> Form:
    """The form body of ``request`` (multipart, or URL-encoded with no files); 415 for another
    type, 413 when its files pass ``budget`` bytes in all. Call it only once the caller is
    known and allowed."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise UnsupportedBody(
            f"send the files as multipart/form-data, not {media_type or 'an untyped body'}"
        )
    try:
        form = await request.form(max_files=max_files, max_fields=100)
    except HTTPException as exc:
        if exc.status_code == 413:
            raise
        raise InvalidInput(f"the multipart body could not be read: {exc.detail}") from exc
    try:
        files: dict[str, list[tuple[str, bytes]]] = {}
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if not value.filename:
                    continue  # a file input left empty
                data = await _read(value, budget)
                budget -= len(data)
                files.setdefault(name, []).append((value.filename, data))
            else:
                fields[name] = value
    finally:
        await form.close()
    return Form(files=files, fields=fields)


async def _read(upload: UploadFile, budget: int) -> bytes:
    data = bytearray()
    while chunk := await upload.read(1024 * 1024):
        data.extend(chunk)
        if len(data) > budget:
            raise UploadTooLarge(f"the upload is larger than the {budget} byte limit")
    return bytes(data)


def multipart_body(
    files: dict[str, str], fields: dict[str, dict[str, Any]] | None = None, *, many: bool = False
) -> dict[str, Any]:
    """``openapi_extra`` documenting a multipart body with these file and text fields."""
    properties: dict[str, Any] = {}
    for name, description in files.items():
        one = {"type": "string", "format": "binary"}
        properties[name] = (
            {"type": "array", "items": one, "description": description}
            if many
            else {**one, "description": description}
        )
    properties.update(fields or {})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": list(files),
                    }
                }
            },
        }
    }
