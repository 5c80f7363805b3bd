"""Stored eval runs: an asset's scores on a golden set, shown later as its quality score."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class EvalRun(SQLModel, table=True):
    """One run of a golden set against an asset: the set's name, hash and size, the metrics and
    each question's details (what was retrieved, what it hit, how the answer fared)."""

    __tablename__ = "eval_run"

    id: str = Field(default_factory=lambda: new_id("evr"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    golden_name: str = Field(max_length=200)
    golden_sha256: str = Field(max_length=64)
    size: int  # questions in the set, answerable or not
    k: int
    # {"recall@10": {"value": 0.8, "n": 40}, ...}; value is None when n is 0
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    questions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
