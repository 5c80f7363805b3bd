"""Vouch's API shapes, generated from its OpenAPI document (clients/python/generate.py).

Do not edit: run the generator (tests/client/test_models.py fails when this file is stale).
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


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


class ExpertLink(BaseModel):
    account_id: str
    name: str
    url: str = Field(description="The expert's public page")


class PlanView(BaseModel):
    per_query: int | None = Field(description="Per question, minor units; null: not sold so")
    monthly: int | None = Field(description="A month's subscription; null: none")
    included: int = Field(description="Questions a month's subscription includes")
    overage: int | None = None
    currency: str
    trial: int = Field(description="Free questions for a client without credits")
    acceptance_hours: int | None = None
    per_search: int | None = Field(
        None, description="A client's search of the passages; null: not sold, 0: free"
    )


class PricePublic(BaseModel):
    """What the next question costs the caller and what pays for it."""

    asset: str
    plan: PlanView
    expert: ExpertLink
    can_ask: bool = Field(description="Whether the caller could ask now")
    pays_with: Literal["subscription", "overage", "credits", "trial", "free"] | None = Field(
        description="What would pay for the next question; null: nothing (see `detail`)"
    )
    amount: int | None = Field(description="What the next question costs, minor units")
    currency: str
    credits: int | None = Field(description="The caller's credits in `currency`")
    questions_left: int | None = Field(
        description="Questions left this period of the caller's subscription, if any"
    )
    trial_left: int | None = Field(description="Trial questions the caller has left")
    detail: str = Field(description="The same in a sentence, or why the caller cannot ask")


class PlanIn(BaseModel):
    """Prices in minor units (cents). Set ``per_query``, ``monthly`` (with ``included``), or
    both; without ``overage`` a subscription stops at its included questions."""

    currency: str = Field("usd", description="ISO 4217 code")
    per_query: int | None = None
    monthly: int | None = None
    included: int = 0
    overage: int | None = None
    trial: int = 0
    acceptance_hours: int = 72
    per_search: int | None = Field(
        None,
        description=(
            "A client's search of the passages, minor units: null, not sold (the "
            "corpus stays private; clients ask instead); 0, free; more, paid from "
            "credits per search"
        ),
    )


class PlanPublic(BaseModel):
    currency: str = Field("usd", description="ISO 4217 code")
    per_query: int | None = None
    monthly: int | None = None
    included: int = 0
    overage: int | None = None
    trial: int = 0
    acceptance_hours: int = 72
    per_search: int | None = Field(
        None,
        description=(
            "A client's search of the passages, minor units: null, not sold (the "
            "corpus stays private; clients ask instead); 0, free; more, paid from "
            "credits per search"
        ),
    )
    id: str
    asset: str


class SearchRequest(BaseModel):
    query: str
    k: int = 5
    kinds: list[Literal["code", "regulation", "paper", "text"]] | None = Field(
        None, description="Only chunks of these kinds"
    )
    path_prefix: str | None = Field(None, description="Only chunks whose path starts with this")


class SearchResult(BaseModel):
    rank: int
    score: float = Field(
        description=(
            "What the results are ordered by (closeness in meaning and in words "
            "fused, or the re-ranker's score when one is configured): it falls with "
            "rank"
        )
    )
    similarity: float = Field(description="The passage's cosine similarity to the query")
    text: str
    locator: dict[str, Any]


class SearchResponse(BaseModel):
    results: list[SearchResult]


class AskRequest(BaseModel):
    question: str
    stream: bool = Field(
        False,
        description=(
            "Answer as server-sent events: `delta` pieces of text, then `done` with "
            "the same JSON as a plain answer (or `error`). `Accept: "
            "text/event-stream` does the same."
        ),
    )


class ChargePublic(BaseModel):
    """What an answer cost and where its money is: ``held`` in escrow until the client accepts
    it or its window passes, ``disputed``, ``released`` to the expert, or ``refunded``."""

    id: str
    amount: int = Field(description="Minor units (cents)")
    currency: str
    source: str
    status: str
    release_after: datetime


class CitationPublic(BaseModel):
    n: int
    text: str
    locator: dict[str, Any]


class TokenCounts(BaseModel):
    prompt: int
    completion: int


class AskPublic(BaseModel):
    answer: str
    citations: list[CitationPublic]
    confidence: float = Field(
        description=(
            "The probability that the answer is right, calibrated per kind of corpus "
            "and refined by the asset's reviewed answers"
        )
    )
    status: str = Field(description="final, pending_review (the expert reviews it) or abstained")
    review_reason: str | None = Field(
        None, description="Why the answer is not final (pending review or abstained)"
    )
    consultation_id: str
    tokens: TokenCounts
    charge: ChargePublic | None


class ErrorBody(BaseModel):
    error: str
    detail: str


class ChargeRow(BaseModel):
    """One answer's charge, as balances and earnings list them."""

    consultation_id: str
    asset: str | None
    answer_status: str | None = Field(
        description="final, abstained, pending_review, corrected or rejected"
    )
    amount: int
    fee: int
    currency: str
    source: str
    status: str
    created_at: str
    release_after: str


class SubscriptionPublic(BaseModel):
    id: str
    asset: str
    status: str
    period_start: str | None
    period_end: str | None
    included: int = Field(description="Questions a period includes")
    used: int = Field(description="Questions asked this period")
    monthly: int | None
    overage: int | None
    currency: str


class ClientSummary(BaseModel):
    credits: dict[str, int]
    subscriptions: list[SubscriptionPublic] = Field(description="Newest first")
    charges: list[ChargeRow] = Field(description="The latest, newest first")


class FlagIn(BaseModel):
    note: str = Field("", description="What looks wrong, for the expert")


class FlagCreated(BaseModel):
    review_item: str = Field(description="The review item the flag opened")
    status: str
    due_at: str = Field(description="When the expert's review is due")


class AskDelta(BaseModel):
    """A streamed answer's ``delta`` event: the next piece of the answer's text."""

    text: str
