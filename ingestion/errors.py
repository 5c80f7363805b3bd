"""Errors of the ingestion package."""

from core.errors import InvalidInput, NotFound


class JobNotFound(NotFound):
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
