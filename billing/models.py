"""Usage events: one append-only row per metered action."""

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class UsageEvent(SQLModel, table=True):
    __tablename__ = "usage_event"

    id: str = Field(default_factory=lambda: new_id("use"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    # Referenced by table name: billing never imports assets.
    consultation_id: str = Field(foreign_key="consultation.id", unique=True, max_length=40)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    model: str = Field(max_length=200)
    encoding: str = Field(max_length=32)
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
