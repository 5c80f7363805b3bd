"""Knowledge assets and consultations (a question, its answer and citations)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class Asset(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("ast"), primary_key=True, max_length=40)
    owner_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    slug: str = Field(unique=True, max_length=64)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Unpublished assets are visible to their owner and admins only. A new asset starts
    # unpublished; its expert publishes it once it has a price and a finished ingest.
    published: bool = False
    collection: str = Field(max_length=64)
    embed_model: str = Field(max_length=200)
    embed_dimension: int
    # Answers below this confidence are marked pending review.
    review_threshold: float = 0.4
    # Share of other answers sent to review at random, and the expert's target response time.
    sample_rate: float = 0.0
    review_hours: int = 48
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Consultation(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("con"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    question: str = Field(sa_column=Column(Text, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    citations: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    confidence: float
    # The confidence by the kind's calibration alone, before the asset's reviews refined it:
    # what the asset's offset is learnt from once the answer is reviewed.
    prior_confidence: float | None = None
    status: str = Field(sa_column=Column(String(32), nullable=False))
    review_reason: str | None = Field(default=None, max_length=200)
    model: str = Field(max_length=200)
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    # Answered from, or corrected into, this verified answer.
    verified_answer_id: str | None = Field(default=None, foreign_key="verified_answer.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReviewStatus(StrEnum):
    open = "open"
    approved = "approved"
    corrected = "corrected"
    rejected = "rejected"


class ReviewItem(SQLModel, table=True):
    """A consultation waiting for (or given) the expert's judgment."""

    __tablename__ = "review_item"

    id: str = Field(default_factory=lambda: new_id("rev"), primary_key=True, max_length=40)
    consultation_id: str = Field(foreign_key="consultation.id", unique=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    # low_confidence, client_flag or sampled
    reason: str = Field(sa_column=Column(String(16), nullable=False))
    detail: str = Field(default="", max_length=500)
    client_note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # What the answer cost (minor units), to sort the queue by value.
    value: int = 0
    currency: str = Field(default="usd", max_length=3)
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    # The answer as first given, kept when a correction replaces it.
    original_answer: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    due_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acted_by: str | None = Field(default=None, foreign_key="account.id", max_length=40)
    acted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class VerifiedAnswer(SQLModel, table=True):
    """An expert's answer to a question, served to later questions that mean the same."""

    __tablename__ = "verified_answer"

    id: str = Field(default_factory=lambda: new_id("ver"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    question: str = Field(sa_column=Column(Text, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    citations: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    source_consultation_id: str | None = Field(default=None, max_length=40)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LexicalSnapshot(SQLModel, table=True):
    """The latest BM25 index of an asset's collection, shared by every process: the one that
    rebuilds it after an ingest stores it here under a new version, and each process that
    searches fetches it into its own data dir when its copy is older (``assets/lexical.py``)."""

    __tablename__ = "lexical_snapshot"

    collection: str = Field(primary_key=True, max_length=64)
    version: int
    chunks: int
    # The saved index folder as one uncompressed tar.
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    built_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
