"""Errors that Vouch raises on purpose.

Every expected failure is a subclass of ``VouchError`` carrying the HTTP status it maps to; the
app renders all of them with one handler as ``{"error": <class name>, "detail": message}``.

    VouchError (500: a bug if it ever escapes as a 500)
    ├── NotFound (404)          each package: AssetNotFound, JobNotFound, ...
    ├── Forbidden (403)         authenticated, but not allowed
    ├── Unauthorized (401)      no or bad credentials
    ├── Conflict (409)          the request clashes with stored state
    └── InvalidInput (422)      the request is well-formed but its content is unusable
"""


class VouchError(Exception):
    """Base of every error Vouch raises on purpose."""

    status_code: int = 500

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class InvalidInput(VouchError):
    status_code = 422


class Unauthorized(VouchError):
    status_code = 401


class Forbidden(VouchError):
    status_code = 403


class NotFound(VouchError):
    status_code = 404


class Conflict(VouchError):
    status_code = 409
