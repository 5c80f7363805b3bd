"""Response shapes of the API that are not owned by a package."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Header
from pydantic import BaseModel, Field

from app.accounts import EMAIL_INPUT, MIN_PASSWORD
from app.models import Account, ApiKey
from assets.schemas import AskResponse
from core.patterns import NOT_BLANK, documented

# The Idempotency-Key header of an ask, whichever route it comes by.
AskIdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="Retrying with the same key returns the first answer, charged once",
    ),
]


class ErrorBody(BaseModel):
    error: str = Field(examples=["AssetNotFound"])
    detail: str = Field(examples=["no asset 'gdpr'"])


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No, malformed, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "Not allowed for this account"},
    404: {"model": ErrorBody, "description": "Not found, or not visible to this account"},
    413: {"model": ErrorBody, "description": "The body is larger than the limit"},
    422: {"model": ErrorBody, "description": "Invalid input"},
}


class AccountPublic(BaseModel):
    id: str
    email: str
    name: str
    role: str
    created_at: datetime
    email_verified_at: datetime | None = Field(
        description="When the account proved it receives mail at `email`; null: not yet"
    )
    orcid: str | None = Field(description="The ORCID iD the account proved through ORCID")
    suspended_at: datetime | None = Field(description="Set while an admin suspends the account")

    @classmethod
    def of(cls, account: Account) -> "AccountPublic":
        return cls.model_validate(account, from_attributes=True)


class AccountCreate(BaseModel):
    email: str = Field(max_length=320, json_schema_extra=documented(EMAIL_INPUT))
    name: str = Field(min_length=1, max_length=200, json_schema_extra=documented(NOT_BLANK))
    role: Literal["expert", "client", "admin"]
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=1024)


class ApiKeyCreate(BaseModel):
    label: str = Field(default="", max_length=100)


class ApiKeyPublic(BaseModel):
    id: str
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "ApiKeyPublic":
        return cls.model_validate(key, from_attributes=True)


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The secret key. It is shown this once and never again.")


class FileNote(BaseModel):
    path: str
    reason: str


class JobPublic(BaseModel):
    job_id: str
    asset: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    documents: int = Field(description="Files written: new or changed")
    chunks: int = Field(description="Chunks written")
    skipped: int = Field(description="Files unchanged since the last ingest")
    failed: list[FileNote] = Field(description="Files that could not be read, with the reason")
    seconds: float | None
    added: int
    updated: int
    removed: int = Field(description="Files gone from the source; their chunks were deleted")
    read_as_text: int = Field(
        0, description="Prose files a forced kind cannot parse (README.md under code), read as text"
    )
    excluded: list[FileNote] = Field(
        description="Files left out on purpose: binary, vendored, generated, minified, too large"
    )
    documents_total: int
    documents_done: int
    percent: int
    timings: dict[str, float] = Field(description="Seconds reading+parsing, embedding, writing")
    commit: str | None = Field(description="The git commit ingested, for a local work tree")
    error: str | None


class ChargePublic(BaseModel):
    """What an answer cost and where its money is: ``held`` in escrow until the client accepts
    it or its window passes, ``disputed``, ``released`` to the expert, or ``refunded``."""

    id: str
    amount: int = Field(description="Minor units (cents)")
    currency: str
    source: str = Field(examples=["credits", "subscription", "overage", "trial", "free"])
    status: str = Field(examples=["held", "disputed", "released", "refunded"])
    release_after: datetime


class AskPublic(AskResponse):
    charge: ChargePublic | None


class AskDelta(BaseModel):
    """A streamed answer's ``delta`` event: the next piece of the answer's text."""

    text: str


# The events of a streamed answer (``text/event-stream``), by name, as the document states them.
ASK_EVENTS = {
    "delta": AskDelta.model_json_schema(),
    "done": {"$ref": "#/components/schemas/AskPublic"},
    "error": {"$ref": "#/components/schemas/ErrorBody"},
}

# One event of that stream as a JSON Schema reads it: its name, and its data, a JSON text that
# the named event's schema describes (what clients that validate event streams check).
ASK_EVENT = {
    "description": "One server-sent event: `event` is its name, `data` its JSON",
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "event": {"const": name},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": schema,
                },
            },
            "required": ["event", "data"],
        }
        for name, schema in ASK_EVENTS.items()
    ],
}
