"""Request and response shapes of assets, search results and answers."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from core.patterns import NOT_BLANK, SPACE, documented

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")
TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Tags as typed: surrounding whitespace and case do not matter, blank tags are dropped.
TAG_INPUT = rf"^{SPACE}*(?:[A-Za-z0-9][A-Za-z0-9-]{{0,31}})?{SPACE}*$"


class AssetCreate(BaseModel):
    slug: str = Field(
        description="3-64 lowercase letters, digits and dashes, starting and ending with a "
        "letter or digit",
        examples=["gdpr"],
        json_schema_extra=documented(SLUG.pattern),
    )
    title: str = Field(min_length=1, max_length=200, json_schema_extra=documented(NOT_BLANK))
    description: str = Field(default="", max_length=5000)
    tags: list[Annotated[str, Field(json_schema_extra=documented(TAG_INPUT))]] = Field(
        default_factory=list, max_length=10
    )
    published: bool = Field(
        default=False,
        description="A new asset starts unpublished: set a price and ingest its sources, then "
        "`POST /v1/assets/{slug}/publish`",
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        # Checked here rather than by ``pattern`` for a message a person can act on.
        if not SLUG.match(value):
            raise ValueError(
                "use 3-64 lowercase letters, digits and dashes, starting and ending with a "
                "letter or digit"
            )
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the title is blank")
        return value.strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        tags = [v.strip().lower() for v in values if v.strip()]
        for tag in tags:
            if not TAG.match(tag):
                raise ValueError(f"tag {tag!r}: use 1-32 lowercase letters, digits and dashes")
        return list(dict.fromkeys(tags))


class AssetPublic(BaseModel):
    slug: str
    title: str
    description: str
    tags: list[str]
    published: bool
    owner_id: str
    embed_model: str
    embed_dimension: int
    created_at: datetime


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000, json_schema_extra=documented(NOT_BLANK))
    k: int = Field(default=5, ge=1, le=50)
    kinds: list[Literal["code", "regulation", "paper", "text"]] | None = Field(
        default=None, description="Only chunks of these kinds"
    )
    path_prefix: str | None = Field(
        default=None, max_length=1000, description="Only chunks whose path starts with this"
    )


class SearchResult(BaseModel):
    rank: int
    score: float = Field(
        description="What the results are ordered by (closeness in meaning and in words "
        "fused, or the re-ranker's score when one is configured): it falls with rank"
    )
    similarity: float = Field(description="The passage's cosine similarity to the query")
    text: str
    locator: dict[str, Any]


class SearchResponse(BaseModel):
    results: list[SearchResult]


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, json_schema_extra=documented(NOT_BLANK))
    stream: bool = Field(
        default=False,
        description="Answer as server-sent events: `delta` pieces of text, then `done` with "
        "the same JSON as a plain answer (or `error`). `Accept: text/event-stream` does the same.",
    )


class CitationPublic(BaseModel):
    n: int
    text: str
    locator: dict[str, Any]


class TokenCounts(BaseModel):
    prompt: int
    completion: int


class AskResponse(BaseModel):
    answer: str
    citations: list[CitationPublic]
    confidence: float = Field(
        description="The probability that the answer is right, calibrated per kind of corpus "
        "and refined by the asset's reviewed answers"
    )
    status: str = Field(description="final, pending_review (the expert reviews it) or abstained")
    review_reason: str | None = Field(
        default=None, description="Why the answer is not final (pending review or abstained)"
    )
    consultation_id: str
    tokens: TokenCounts


class VerifiedAnswerPublic(BaseModel):
    id: str
    question: str
    answer: str
    citations: list[dict[str, Any]]
    locator: dict[str, Any] = Field(
        description="How answers cite it",
        examples=[{"verified_answer": "vfa_1", "expert": "Ada", "date": "2026-11-26"}],
    )
    retired: bool
    created_at: str
    updated_at: str


class ReviewSettingsPublic(BaseModel):
    asset: str
    sample_rate: float = Field(description="Share of answers sent to review at random")
    review_hours: int = Field(description="The expert's target time to review")
    review_threshold: float = Field(description="Answers below this confidence go to review")
