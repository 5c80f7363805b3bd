"""Errors of the ingestion package."""

from core.errors import Conflict, InvalidInput, NotFound


class JobNotFound(NotFound):
    pass


class JobFinished(Conflict):
    pass


class InvalidUpload(InvalidInput):
    pass


class InvalidSource(InvalidInput):
    pass


class FileRejected(Exception):
    """One file cannot be ingested; the job records the reason and goes on with the rest."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileExcluded(Exception):
    """A file is left out on purpose (binary, vendored, generated, minified, too large)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
