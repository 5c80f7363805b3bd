"""Marketplace tables: expert profiles, credentials and their verification, engagements with
milestones, and the events of an engagement. Tables of other packages are referenced by name."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, String, Text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class ExpertProfile(SQLModel, table=True):
    __tablename__ = "expert_profile"

    account_id: str = Field(foreign_key="account.id", primary_key=True, max_length=40)
    headline: str = Field(default="", max_length=200)
    bio: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    domains: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    links: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Typical engagement prices (minor units) and how fast the expert answers.
    price_from: int | None = Field(default=None, sa_type=BigInteger)
    price_to: int | None = Field(default=None, sa_type=BigInteger)
    currency: str = Field(default="usd", max_length=3)
    response_hours: int | None = None
    # The expert's ORCID iD ("0000-0002-1825-0097"), matched against papers' author iDs.
    orcid: str | None = Field(default=None, max_length=19)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CredentialStatus(StrEnum):
    unverified = "unverified"
    verified = "verified"
    rejected = "rejected"
    expired = "expired"


class Credential(SQLModel, table=True):
    """A claim an expert makes, the evidence for it, and how (and whether) it was verified."""

    id: str = Field(default_factory=lambda: new_id("crd"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    # commit_authorship, paper_authorship, certification, licence
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    claim: str = Field(max_length=500)
    domain: str | None = Field(default=None, max_length=32)
    # What backs it: an asset and source (commits), a document (paper), an uploaded file.
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    # git_history, paper_authors, admin_review, orcid, doi, github
    method: str | None = Field(default=None, max_length=32)
    # What the check measured (share of commits and lines, the matching author, ...).
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=1000)
    verified_by: str | None = Field(default=None, foreign_key="account.id", max_length=40)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EngagementStatus(StrEnum):
    requested = "requested"  # the client asked; the expert has not answered
    proposed = "proposed"  # the expert proposed changes; the client decides
    accepted = "accepted"  # agreed: milestones are funded and delivered one by one
    declined = "declined"
    completed = "completed"  # every milestone settled
    cancelled = "cancelled"


class Engagement(SQLModel, table=True):
    """Fixed-scope judgment work a client commissions from an expert, paid per milestone."""

    id: str = Field(default_factory=lambda: new_id("eng"), primary_key=True, max_length=40)
    client_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    asset_id: str | None = Field(default=None, foreign_key="asset.id", max_length=40)
    title: str = Field(max_length=200)
    scope: str = Field(sa_column=Column(Text, nullable=False))
    deliverable: str = Field(max_length=1000)
    currency: str = Field(default="usd", max_length=3)
    deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    revision_limit: int = 2
    # Days a delivered milestone waits for the client before it is released.
    review_days: int = 14
    # The answer this engagement was escalated from, with its citations.
    origin_consultation_id: str | None = Field(
        default=None, foreign_key="consultation.id", max_length=40
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MilestoneStatus(StrEnum):
    pending = "pending"  # not funded
    funded = "funded"  # money in escrow, work under way
    delivered = "delivered"  # report delivered, waiting for the client
    revision = "revision"  # the client asked for changes
    disputed = "disputed"  # an admin settles it
    released = "released"
    refunded = "refunded"
    split_ = "split"  # settled by an admin in parts; not ``split``, which is str.split


class Milestone(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("mil"), primary_key=True, max_length=40)
    engagement_id: str = Field(foreign_key="engagement.id", index=True, max_length=40)
    position: int
    title: str = Field(max_length=200)
    amount: int = Field(sa_type=BigInteger)
    status: str = Field(sa_column=Column(String(16), nullable=False))
    report: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    report_file: str | None = Field(default=None, max_length=500)
    revisions: int = 0
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    release_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EngagementEvent(SQLModel, table=True):
    """Every state change of an engagement, who made it and when."""

    __tablename__ = "engagement_event"

    id: str = Field(default_factory=lambda: new_id("eev"), primary_key=True, max_length=40)
    engagement_id: str = Field(foreign_key="engagement.id", index=True, max_length=40)
    milestone_id: str | None = Field(default=None, foreign_key="milestone.id", max_length=40)
    actor_id: str | None = Field(default=None, foreign_key="account.id", max_length=40)
    kind: str = Field(max_length=40)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
