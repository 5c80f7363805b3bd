"""Billing tables: usage, plans, subscriptions, the ledger, charges (escrow), search charges,
Stripe and payouts.

Money is an integer in minor units with a three-letter currency. Balances are never stored:
they are sums of ``ledger_entry`` rows. Tables of other packages are referenced by table name
(``asset.id``, ``consultation.id``, ``account.id``): billing never imports assets or app.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, String, UniqueConstraint
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


class Plan(SQLModel, table=True):
    """One version of an asset's prices. Setting a plan adds a version; the newest applies to
    new purchases, and a subscription keeps the version it was bought under."""

    id: str = Field(default_factory=lambda: new_id("pln"), primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    currency: str = Field(default="usd", max_length=3)
    # None: not sold per query.
    per_query: int | None = Field(default=None, sa_type=BigInteger)
    # None: no subscription offered.
    monthly: int | None = Field(default=None, sa_type=BigInteger)
    included: int = 0
    # Price of a question past the included ones; None is a hard cap.
    overage: int | None = Field(default=None, sa_type=BigInteger)
    trial: int = 0
    acceptance_hours: int = 72
    # A client's search of the passages; None: not sold (the corpus stays private), 0: free.
    per_search: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SubscriptionStatus(StrEnum):
    incomplete = "incomplete"  # checkout started, nothing paid yet
    active = "active"
    past_due = "past_due"  # a renewal failed: no quota until it is paid
    canceled = "canceled"


class Subscription(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("sub"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    # The asset's owner, who earns what the subscription pays.
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    plan_id: str = Field(foreign_key="plan.id", max_length=40)
    status: str = Field(sa_column=Column(String(16), nullable=False))
    period_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    period_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stripe_subscription_id: str | None = Field(default=None, unique=True, max_length=255)
    # ``created`` of the newest Stripe event applied, so an older one arriving late is ignored.
    stripe_event_at: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerTransaction(SQLModel, table=True):
    """One money movement: its entries sum to zero. The key makes it happen once."""

    __tablename__ = "ledger_transaction"

    id: str = Field(default_factory=lambda: new_id("ltx"), primary_key=True, max_length=40)
    idempotency_key: str = Field(unique=True, max_length=255)
    kind: str = Field(max_length=32)
    memo: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    """A signed amount on one ledger account: positive adds to it, negative takes from it."""

    __tablename__ = "ledger_entry"

    id: str = Field(default_factory=lambda: new_id("len"), primary_key=True, max_length=40)
    transaction_id: str = Field(foreign_key="ledger_transaction.id", index=True, max_length=40)
    account: str = Field(index=True, max_length=120)
    currency: str = Field(max_length=3)
    amount: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Wallet(SQLModel, table=True):
    """A row per client that money-moving requests lock (by updating it) to run one at a time."""

    account_id: str = Field(foreign_key="account.id", primary_key=True, max_length=40)
    version: int = Field(default=0, sa_type=BigInteger)


class ChargeStatus(StrEnum):
    held = "held"  # in escrow until accepted, undisputed past the window, or refunded
    disputed = "disputed"  # held until the expert or an admin settles it
    in_review = "in_review"  # held while the expert reviews the answer
    released = "released"
    refunded = "refunded"


class Charge(SQLModel, table=True):
    """What one answered question cost, where it was paid from, and its escrow hold."""

    __table_args__ = (UniqueConstraint("account_id", "idempotency_key"),)

    id: str = Field(default_factory=lambda: new_id("chg"), primary_key=True, max_length=40)
    consultation_id: str = Field(foreign_key="consultation.id", unique=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    # credits, subscription, overage, trial or free
    source: str = Field(sa_column=Column(String(16), nullable=False))
    subscription_id: str | None = Field(default=None, foreign_key="subscription.id", index=True)
    # The ledger account the money came from, where a refund returns it.
    origin: str | None = Field(default=None, max_length=120)
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    fee: int = Field(default=0, sa_type=BigInteger)
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    release_after: datetime = Field(sa_type=UTCDateTime)
    idempotency_key: str | None = Field(default=None, max_length=255)
    # sha256 of what was asked, so a key reused for another question is refused.
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SearchCharge(SQLModel, table=True):
    """What one priced search of an asset's passages cost a client: paid from credits at once
    (there is no answer to dispute), the fee to the platform and the rest to the expert."""

    __tablename__ = "search_charge"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key"),)

    id: str = Field(default_factory=lambda: new_id("sch"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=40)
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    amount: int = Field(sa_type=BigInteger)
    fee: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    idempotency_key: str | None = Field(default=None, max_length=255)
    # sha256 of what was searched, so a key reused for another search is refused.
    request_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StripeEvent(SQLModel, table=True):
    """A webhook event, stored by Stripe's id so that a replay is recognised and ignored."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    created: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BillingProfile(SQLModel, table=True):
    """An account's Stripe identities: a customer (clients) and a Connect account (experts)."""

    __tablename__ = "billing_profile"

    account_id: str = Field(foreign_key="account.id", primary_key=True, max_length=40)
    stripe_customer_id: str | None = Field(default=None, unique=True, max_length=255)
    connect_account_id: str | None = Field(default=None, unique=True, max_length=255)
    payouts_enabled: bool = False


class CheckoutSession(SQLModel, table=True):
    """A Stripe Checkout session we created: credits (payment) or a subscription."""

    __tablename__ = "checkout_session"

    id: str = Field(primary_key=True, max_length=255)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    mode: str = Field(max_length=16)
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    asset_id: str | None = Field(default=None, foreign_key="asset.id", max_length=40)
    plan_id: str | None = Field(default=None, foreign_key="plan.id", max_length=40)
    url: str = Field(max_length=2000)
    status: str = Field(default="open", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PayoutStatus(StrEnum):
    pending = "pending"  # recorded; no Stripe, or the expert has not onboarded yet
    paid = "paid"
    failed = "failed"


class Payout(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("pay"), primary_key=True, max_length=40)
    expert_id: str = Field(foreign_key="account.id", index=True, max_length=40)
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    status: str = Field(sa_column=Column(String(16), nullable=False))
    transfer_id: str | None = Field(default=None, max_length=255)
    failure: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
