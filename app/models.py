"""Accounts and their credentials: users, API keys and web sign-in sessions."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime
from core.ids import new_id


class Role(StrEnum):
    expert = "expert"
    client = "client"
    admin = "admin"


class Account(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("acc"), primary_key=True, max_length=40)
    email: str = Field(unique=True, max_length=320)
    name: str = Field(max_length=200)
    role: str = Field(sa_column=Column(String(16), nullable=False))
    # None: this account signs in with API keys only.
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When the account proved it receives mail at ``email`` (None: not proved yet).
    email_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # An ORCID iD proved through ORCID's OAuth sign-in (never typed in).
    orcid: str | None = Field(default=None, unique=True, max_length=19)
    # A suspended account cannot sign in or use its API keys.
    suspended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SigningKey(SQLModel, table=True):
    """A public key the account signs its git commits with (SSH or OpenPGP); commits it signed
    count as the account's own in an authorship check."""

    __tablename__ = "signing_key"

    id: str = Field(default_factory=lambda: new_id("sgk"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    kind: str = Field(sa_column=Column(String(8), nullable=False))  # "ssh" or "gpg"
    public_key: str = Field(sa_column=Column(Text, nullable=False))
    fingerprint: str = Field(unique=True, max_length=128)
    label: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    # The key's public start, shown in lists and used to find the row; the rest is secret.
    prefix: str = Field(unique=True, max_length=32)
    key_hash: str = Field(max_length=64)
    label: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    # sha256 of the cookie's token: a stolen database does not yield live sessions.
    id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class Notification(SQLModel, table=True):
    """An in-app message to an account; clients with a webhook also get it by POST."""

    id: str = Field(default_factory=lambda: new_id("ntf"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    kind: str = Field(max_length=40)
    message: str = Field(max_length=1000)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookEndpoint(SQLModel, table=True):
    """Where a client's notifications are POSTed, signed with HMAC-SHA256 and its secret."""

    __tablename__ = "webhook_endpoint"

    account_id: str = Field(foreign_key="account.id", primary_key=True, max_length=40)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One notification's delivery to a webhook, with every attempt's outcome."""

    __tablename__ = "webhook_delivery"

    id: str = Field(default_factory=lambda: new_id("whd"), primary_key=True, max_length=40)
    notification_id: str = Field(foreign_key="notification.id", index=True, max_length=40)
    url: str = Field(max_length=2000)
    # pending, delivered or failed (gave up)
    status: str = Field(max_length=16)
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
