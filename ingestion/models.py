"""Sources, ingestion jobs and the documents they wrote into an asset."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class Source(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("src"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    # "upload": files kept in the database (``UploadFile``) and under the data dir of the
    # process that received them (``location``); "local": a path on this machine (CLI only).
    origin: str = Field(sa_column=Column(String(16), nullable=False))
    location: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="auto", max_length=16)
    # The commit checked out when a local git work tree was ingested.
    commit: str | None = Field(default=None, max_length=64)
    created_by: str = Field(foreign_key="account.id", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UploadFile(SQLModel, table=True):
    """An uploaded file (or archive), kept in the database so that a worker on another machine
    than the replica that received it can ingest it (``ingestion/service.py``)."""

    __tablename__ = "upload_file"

    source_id: str = Field(foreign_key="source.id", primary_key=True, max_length=40)
    # Its path inside the upload, as the client named it (checked by ``safe_relative_path``).
    name: str = Field(primary_key=True, max_length=1024)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class IngestionJob(SQLModel, table=True):
    __tablename__ = "ingestion_job"

    id: str = Field(default_factory=lambda: new_id("job"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    source_id: str = Field(foreign_key="source.id", index=True, max_length=40)
    status: str = Field(
        default=JobStatus.queued, sa_column=Column(String(16), nullable=False, index=True)
    )
    documents_total: int = 0
    documents_done: int = 0  # files looked at, whatever became of them
    documents_added: int = 0
    documents_updated: int = 0
    documents_skipped: int = 0  # unchanged since the last ingest
    documents_removed: int = 0  # gone from the source: their chunks were deleted
    # Prose in a source forced to another kind (README.md under --kind code), read as text.
    documents_as_text: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    chunks_written: int = 0
    failures: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    excluded: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Seconds spent reading, parsing, embedding and writing.
    timings: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cancel_requested: bool = False
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Written with every progress update; a running job whose heartbeat stops is re-queued.
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Document(SQLModel, table=True):
    """A file as last ingested into an asset, identified by its source and path.

    Its content hash decides whether a re-ingest can skip it.
    """

    __table_args__ = (UniqueConstraint("asset_id", "source_key", "path"),)

    id: str = Field(default_factory=lambda: new_id("doc"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    # "local:/abs/dir" or "upload:<name>": ingesting the same source again updates it.
    source_key: str = Field(sa_column=Column(Text, nullable=False))
    path: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(max_length=16)
    content_hash: str = Field(max_length=64)
    chunk_count: int
    # What the reader learnt: a paper's title, authors, DOI, ORCID iDs; a file's language.
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
