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


class ReviewRates(BaseModel):
    """Shares from 0 to 1, rounded to 4 places; null where there is nothing to divide by."""

    auto_flagged: float | None = Field(description="Of answers")
    client_flagged: float | None = Field(description="Of answers")
    approved: float | None = Field(description="Of reviewed answers")
    corrected: float | None = Field(description="Of reviewed answers")
    rejected: float | None = Field(description="Of reviewed answers")
    served_from_verified: float | None = Field(description="Of answers")


class ReviewFigures(BaseModel):
    """How an asset's answers fare in review (clients' answers: not its expert's own)."""

    answers: int
    auto_flagged: int = Field(description="Sent to review by low confidence or sampling")
    client_flagged: int
    approved: int
    corrected: int
    rejected: int
    open: int
    rates: ReviewRates
    served_from_verified: int
    median_hours_to_review: float | None
    verified_answers: int = Field(description="Verified answers in service (not retired)")


class _AssetSlug(BaseModel):
    asset: str


# The slug first, then the figures (pydantic orders inherited fields from the last base).
class ReviewQuality(ReviewFigures, _AssetSlug):
    """An asset's review figures, for its expert and admins."""


class ScoreInterval(BaseModel):
    low: float
    high: float
    level: float = Field(examples=[0.95])
    method: str = Field(examples=["wilson"])


class QualityConsultations(BaseModel):
    right: int
    n: int
    outcomes: dict[str, int] = Field(description="Measured answers by outcome")
    flagged: int


class QualityRun(BaseModel):
    """The latest run of a golden set, as a part of the score."""

    golden: str
    golden_set_id: str | None
    size: int
    right: int
    n: int
    measured_at: str


class QualityParts(BaseModel):
    consultations: QualityConsultations
    platform: QualityRun | None = Field(description="The platform's run; null: none yet")
    approved: list[QualityRun] = Field(description="Runs of admin-approved golden sets")


class QualityScore(BaseModel):
    """An asset's public quality score and what it is made of (app/quality.py)."""

    asset: str
    score: float | None = Field(description="right / n; null below the minimum sample")
    n: int = Field(description="Measured answers")
    right: int
    min_sample: int
    interval: ScoreInterval | None
    summary: str
    formula: str
    parts: QualityParts
    review: ReviewFigures
    measured_at: str


class FlagCreated(BaseModel):
    review_item: str = Field(description="The review item the flag opened")
    status: str = Field(examples=["open"])
    due_at: str = Field(description="When the expert's review is due")


class ReviewItemPublic(BaseModel):
    """A flagged answer as its expert sees it: question, answer, citations, why, the client's
    note, age, due time and value."""

    id: str
    asset: str
    asset_title: str
    consultation_id: str
    question: str
    answer: str
    original_answer: str = Field(description="The answer as first given, once corrected")
    citations: list[dict[str, Any]]
    confidence: float
    reason: str = Field(examples=["low_confidence", "client_flag", "sampled"])
    detail: str
    client_note: str
    status: str = Field(examples=["open", "approved", "corrected", "rejected"])
    value: int = Field(description="What the answer cost, minor units")
    currency: str
    charge_status: str | None
    created_at: str
    age_hours: float
    due_at: str
    overdue: bool
    acted_by: str | None
    acted_at: str | None


class ReviewItemCorrected(ReviewItemPublic):
    verified_answer: str = Field(description="The verified answer the correction became")


class ProtectedResourceMetadata(BaseModel):
    """OAuth 2.0 protected-resource metadata (RFC 9728) of the MCP endpoint."""

    resource: str
    authorization_servers: list[str]
    bearer_methods_supported: list[str]
    resource_name: str
    resource_documentation: str
