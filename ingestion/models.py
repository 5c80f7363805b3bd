"""Sources, ingestion jobs and the documents they wrote into an asset."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class Source(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("src"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    # "upload": files stored under the data dir; "local": a path on this machine (CLI only).
    origin: str = Field(sa_column=Column(String(16), nullable=False))
    location: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="auto", max_length=16)
    created_by: str = Field(foreign_key="account.id", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IngestionJob(SQLModel, table=True):
    __tablename__ = "ingestion_job"

    id: str = Field(default_factory=lambda: new_id("job"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    source_id: str = Field(foreign_key="source.id", index=True, max_length=40)
    status: str = Field(
        default=JobStatus.queued, sa_column=Column(String(16), nullable=False, index=True)
    )
    documents_total: int = 0
    documents_done: int = 0
    documents_skipped: int = 0
    chunks_written: int = 0
    failures: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Document(SQLModel, table=True):
    """A file as last ingested into an asset; its hash decides whether re-ingest can skip it."""

    __table_args__ = (UniqueConstraint("asset_id", "path"),)

    id: str = Field(default_factory=lambda: new_id("doc"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    path: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(max_length=16)
    content_hash: str = Field(max_length=64)
    chunk_count: int
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
