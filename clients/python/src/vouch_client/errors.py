"""What the client raises. Every refusal carries the server's own message.

    VouchError                  message, status (None: no answer), error, detail
    ├── ConnectionError         the server could not be reached, or the connection broke
    ├── AuthenticationError     401: no, malformed, unknown or revoked API key
    ├── PaymentRequired         402: not enough credits for the price (nothing was charged)
    ├── PermissionDenied        403: not allowed (a subscription needed, not the asset's owner)
    ├── NotFound                404: no such asset or consultation, or not visible to the key
    ├── Conflict                409: already settled, or an Idempotency-Key reused for another
    │                           question
    ├── ValidationError         422: invalid input, the server says which field and why
    ├── RateLimited             429: too many questions; ``retry_after`` seconds to wait
    └── ServerError             5xx (503: the language model failed), or a streamed ``error``

``message`` is the server's ``detail``, ``error`` its name for the refusal (``AssetNotFound``,
``InsufficientCredit``...), ``detail`` the whole error body as sent.
"""

from typing import Any


class VouchError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        detail: Any = None,
        *,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        self.error = error

    def __str__(self) -> str:
        return f"{self.message} ({self.status})" if self.status else self.message


# Shadows the builtin inside this package on purpose: `vouch_client.ConnectionError`.
class ConnectionError(VouchError):
    """No answer: the server is unreachable, timed out, or dropped the connection."""


class AuthenticationError(VouchError):
    """401."""


class PaymentRequired(VouchError):
    """402: not enough credits."""


class PermissionDenied(VouchError):
    """403."""


class NotFound(VouchError):
    """404."""


class Conflict(VouchError):
    """409."""


class ValidationError(VouchError):
    """422."""


class RateLimited(VouchError):
    """429: ``retry_after`` is how many seconds the server asks to wait."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        detail: Any = None,
        *,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status, detail, error=error)
        self.retry_after = retry_after


class ServerError(VouchError):
    """5xx, or an ``error`` event in a streamed answer."""


BY_STATUS: dict[int, type[VouchError]] = {
    401: AuthenticationError,
    402: PaymentRequired,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
}


def retry_after_seconds(value: str | None) -> float | None:
    """The Retry-After header in seconds (Vouch sends whole seconds); None if absent."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_response(status: int, body: Any, retry_after: str | None = None) -> VouchError:
    """The error for a refusal: ``body`` is the parsed JSON (``{"error", "detail"}``) or text."""
    if isinstance(body, dict):
        message = str(body.get("detail") or body.get("error") or f"HTTP {status}")
        error = body.get("error") if isinstance(body.get("error"), str) else None
    else:
        message = str(body).strip() or f"HTTP {status}"
        error = None
    if status == 429:
        return RateLimited(
            message, status, body, error=error, retry_after=retry_after_seconds(retry_after)
        )
    kind = BY_STATUS.get(status) or (ServerError if status >= 500 else VouchError)
    return kind(message, status, body, error=error)
