"""Request bodies are refused before they cost anything.

Every body is limited to ``VOUCH_SERVER__MAX_BODY_BYTES`` (FastAPI's ``max_body_size``: a
Content-Length over it is refused with 413 before anything is read, a body sent without one is
cut off at the limit), except on the routes that take files: they declare
``max_body_size=FILES`` and read their body with ``read_files``, which applies their own limit
the same way.

Routes that take files declare no ``File()`` parameter, because FastAPI reads such a body
before any dependency runs: they depend on the caller (and on the checks that may refuse it),
then on ``read_files``, so that an anonymous or unauthorised upload is refused before its first
byte is read.
"""

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from core.config import Settings
from core.errors import InvalidInput

# Boundaries and part headers around the files of a multipart body.
MULTIPART_MARGIN = 64 * 1024
# The ``max_body_size`` of a route that takes files: its real limit comes from the settings
# and is applied by ``read_files``.
FILES = 1 << 40
LimitOf = Callable[[Settings], int]


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


def _too_large(limit: int) -> "UploadTooLarge":
    return UploadTooLarge(f"the upload is larger than the {limit} byte limit")


async def _counted(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        yield chunk


async def read_files(request: Request, *, budget: int, max_files: int = 1000) -> Form:
    """The form body of ``request`` (multipart, or URL-encoded with no files); 415 for another
    type, 413 when its files pass ``budget`` bytes in all: at once when its Content-Length
    says so, else as soon as the body passes it. Call it only once the caller is known and
    allowed."""
    limit = budget + MULTIPART_MARGIN
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(budget)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    stream = _counted(request.stream(), limit)
    parser: FormParser | MultiPartParser
    if media_type == "multipart/form-data":
        parser = MultiPartParser(request.headers, stream, max_files=max_files, max_fields=100)
    elif media_type == "application/x-www-form-urlencoded":
        parser = FormParser(request.headers, stream)
    else:
        raise UnsupportedBody(
            f"send the files as multipart/form-data, not {media_type or 'an untyped body'}"
        )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"the multipart body could not be read: {exc.message}") from exc
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
            raise _too_large(budget)
    return bytes(data)


def multipart_body(
    files: dict[str, str], fields: dict[str, dict[str, Any]] | None = None, *, many: bool = False
) -> dict[str, Any]:
    """``openapi_extra`` documenting a multipart body with these file and text fields."""
    properties: dict[str, Any] = {}
    for name, description in files.items():
        one = {"type": "string", "format": "binary"}
        properties[name] = (
            {"type": "array", "items": one, "minItems": 1, "description": description}
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
