"""Knowledge assets and consultations (a question, its answer and citations)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, String, Text
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
    # Unpublished assets are visible to their owner and admins only.
    published: bool = True
    collection: str = Field(max_length=64)
    embed_model: str = Field(max_length=200)
    embed_dimension: int
    # Answers below this confidence are marked pending review.
    review_threshold: float = 0.4
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
    status: str = Field(sa_column=Column(String(32), nullable=False))
    review_reason: str | None = Field(default=None, max_length=200)
    model: str = Field(max_length=200)
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
