"""Stored eval runs: an asset's scores on a golden set, shown later as its quality score."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, String
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
    # "private": the expert's own diagnostic; "platform": the set the platform holds, built from
    # accepted and corrected questions; "approved": a golden set an admin approved. Only the
    # last two count in the public quality score.
    scope: str = Field(
        default="private", sa_column=Column(String(16), nullable=False, server_default="private")
    )
    golden_set_id: str | None = Field(default=None, foreign_key="golden_set.id", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GoldenSet(SQLModel, table=True):
    """A golden set an expert submitted for an asset. It stays the expert's private diagnostic
    until an admin approves it; approved sets are run by the platform and count in the public
    score."""

    __tablename__ = "golden_set"

    id: str = Field(default_factory=lambda: new_id("gld"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    questions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    submitted_by: str = Field(foreign_key="account.id", max_length=40)
    # "submitted", "approved" or "rejected"
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    note: str = Field(default="", max_length=1000)
    decided_by: str | None = Field(default=None, foreign_key="account.id", max_length=40)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
