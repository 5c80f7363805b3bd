"""Server-sent events: the wire format of streamed answers (API and pages)."""

import json
from collections.abc import Iterable
from typing import Any

from fastapi.responses import StreamingResponse

MEDIA_TYPE = "text/event-stream"


def event(name: str, data: Any) -> str:
    """One event; the data is JSON on a single line (JSON escapes newlines)."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def wants_stream(accept: str | None) -> bool:
    return MEDIA_TYPE in (accept or "")


def response(events: Iterable[str]) -> StreamingResponse:
    """A streaming response that proxies and browsers neither buffer nor cache."""
    return StreamingResponse(
        events,
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
