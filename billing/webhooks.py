"""Stripe webhook events: stored once by id, then applied to credits, subscriptions and payouts.

``receive`` runs in the caller's transaction: the event row, the money it moves and the state it
changes commit together, so a replayed event (same id) finds its row and changes nothing.

Stripe delivers events in any order and retries failures for days, so every handler gives the
same end state whatever the order:

- money moves are keyed by Stripe ids (checkout session, invoice, charge and amount refunded)
  and happen once, whenever they arrive;
- a subscription is found by its Stripe id or by our id in the metadata set at checkout, and is
  created from that metadata when Stripe's events come before our row;
- a status change applies only when its event is newer than the last one applied
  (``Subscription.stripe_event_at``); ``canceled`` is final and ``incomplete`` only ever starts;
- a refund of a credits purchase or a milestone payment whose payment has not been credited yet
  waits (its event stays without ``handled_at``) and is applied right after the payment;
- a refunded milestone payment comes back out of the milestone's escrow first, then the
  client's credits, and what neither holds any more (the milestone was released) is a loss.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from billing import ledger
from billing.ledger import Move
from billing.models import (
    BillingProfile,
    CheckoutSession,
    LedgerEntry,
    LedgerTransaction,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)
from billing.service import add_month, fund_milestone_with_cash, lock_wallet
from core.clock import utcnow

log = logging.getLogger(__name__)

# (session, the event's data.object, the event's created time) -> handled now (False: later)
Handler = Callable[[Session, dict[str, Any], int], bool]

_CHECKOUT_PAID = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
_SUBSCRIPTION_KEYS = ("account_id", "asset_id", "plan_id", "expert_id")
_STATUSES = {
    "active": SubscriptionStatus.active,
    "trialing": SubscriptionStatus.active,
    "past_due": SubscriptionStatus.past_due,
    "unpaid": SubscriptionStatus.past_due,
    "paused": SubscriptionStatus.past_due,
    "incomplete": SubscriptionStatus.incomplete,
    "incomplete_expired": SubscriptionStatus.canceled,
    "canceled": SubscriptionStatus.canceled,
}


def receive(session: Session, *, event: dict[str, Any]) -> bool:
    """Store a verified event and apply it, in the caller's transaction.

    Returns False, changing nothing, for an event id stored before (a replay).
    """
    if session.get(StripeEvent, event["id"]) is not None:
        return False
    row = StripeEvent(id=event["id"], type=event["type"], created=event["created"], payload=event)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # a concurrent delivery of the same event stored it first
        return False
    handler = _HANDLERS.get(row.type)
    if handler is None or handler(session, event["data"]["object"], row.created):
        _handled(session, row)
    return True


def _handled(session: Session, row: StripeEvent) -> None:
    row.handled_at = utcnow()
    session.add(row)
    session.flush()


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata")
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _events(
    types: tuple[str, ...], path: tuple[str, ...], value: str
) -> SelectOfScalar[StripeEvent]:
    """Stored events of ``types`` whose payload has ``value`` at ``path``."""
    at = col(StripeEvent.payload)[path].as_string()
    return select(StripeEvent).where(col(StripeEvent.type).in_(types), at == value)


# Credits bought through Checkout, and their refunds


def _checkout_paid(session: Session, obj: dict[str, Any], _created: int) -> bool:
    row = session.get(CheckoutSession, obj["id"])
    meta = _metadata(obj)
    if obj.get("mode") == "subscription":
        if _subscription(session, stripe_id=obj.get("subscription"), metadata=meta) is None:
            log.warning("checkout %s: subscription metadata missing; not ours?", obj["id"])
    elif meta.get("purpose") == "milestone":
        if obj.get("payment_status") in ("paid", "no_payment_required"):
            _milestone_paid(session, obj, meta)
            if obj.get("payment_intent"):
                _apply_waiting_refunds(session, payment_intent=obj["payment_intent"])
    elif meta.get("purpose", "credits") != "credits":
        log.info("checkout %s pays for %s: not credits", obj["id"], meta["purpose"])
    elif obj.get("payment_status") not in ("paid", "no_payment_required"):
        return True  # an async payment method: the money comes with async_payment_succeeded
    else:
        account_id = meta.get("account_id") or (row.account_id if row else None)
        if account_id is None:
            log.warning("checkout %s: no account_id in its metadata; not ours?", obj["id"])
            return True
        ledger.post(
            session,
            key=f"stripe:{obj['id']}",
            kind="purchase",
            currency=obj["currency"],
            moves=[Move(ledger.CASH, ledger.credits(account_id), int(obj["amount_total"]))],
            memo=f"credits bought through Stripe checkout {obj['id']}",
        )
        if obj.get("payment_intent"):
            _apply_waiting_refunds(session, payment_intent=obj["payment_intent"])
    if row is not None and row.status != "completed":
        row.status = "completed"
        session.add(row)
        session.flush()
    return True


def _milestone_paid(session: Session, obj: dict[str, Any], meta: dict[str, str]) -> None:
    """A Checkout paying an engagement milestone: the money goes into the milestone's escrow,
    once. A milestone funded before (with credits, or by another checkout) is not funded
    twice: the payment becomes the client's credits instead."""
    milestone_id, account_id = meta.get("milestone_id"), meta.get("account_id")
    if not milestone_id or not account_id:
        log.warning("checkout %s: milestone metadata missing; not ours?", obj["id"])
        return
    key = f"stripe:{obj['id']}"
    amount, currency = int(obj["amount_total"]), obj["currency"]
    # The lock that funding with credits takes too: one of the two sees the other's money.
    lock_wallet(session, account_id)
    escrow = ledger.milestone(milestone_id)
    funded_before = session.exec(
        select(LedgerEntry.id).where(LedgerEntry.account == escrow, LedgerEntry.amount > 0)
    ).first()
    if ledger.find(session, key) is None and funded_before is not None:
        ledger.post(
            session,
            key=key,
            kind="purchase",
            currency=currency,
            moves=[Move(ledger.CASH, ledger.credits(account_id), amount)],
            memo=f"milestone {milestone_id} was funded already: checkout {obj['id']} as credits",
        )
        return
    fund_milestone_with_cash(
        session, key=key, milestone_id=milestone_id, amount=amount, currency=currency
    )


def _checkout_ended(status: str) -> Handler:
    def handle(session: Session, obj: dict[str, Any], _created: int) -> bool:
        row = session.get(CheckoutSession, obj["id"])
        if row is not None and row.status == "open":
            row.status = status
            session.add(row)
            session.flush()
        return True

    return handle


def _charge_refunded(session: Session, obj: dict[str, Any], _created: int) -> bool:
    meta = _metadata(obj)
    purpose = meta.get("purpose")
    ours = meta.get("account_id") and (
        purpose == "credits" or (purpose == "milestone" and meta.get("milestone_id"))
    )
    if not ours:
        log.info("charge %s refunded: not a payment of ours, nothing to take back", obj["id"])
        return True
    payment_intent = obj.get("payment_intent")
    if payment_intent and _payment(session, payment_intent) is None:
        return False  # applied by _checkout_paid once the payment arrives
    _refund_charge(session, charge=obj)
    return True


def _payment(session: Session, payment_intent: str) -> LedgerTransaction | None:
    """The ledger transaction that took in a Checkout's payment, once it has."""
    checkouts = session.exec(
        _events(_CHECKOUT_PAID, ("data", "object", "payment_intent"), payment_intent)
    ).all()
    for checkout in checkouts:
        found = ledger.find(session, f"stripe:{checkout.payload['data']['object']['id']}")
        if found is not None:
            return found
    return None


def _apply_waiting_refunds(session: Session, *, payment_intent: str) -> None:
    waiting = session.exec(
        _events(("charge.refunded",), ("data", "object", "payment_intent"), payment_intent)
        .where(col(StripeEvent.handled_at).is_(None))
        .order_by(col(StripeEvent.created), col(StripeEvent.id))
    ).all()
    for row in waiting:
        _refund_charge(session, charge=row.payload["data"]["object"])
        _handled(session, row)


def _refund_charge(session: Session, *, charge: dict[str, Any]) -> None:
    """Take what Stripe refunded of a charge back from where its money went: a milestone's
    escrow (for a milestone payment), then the client's credits, as far as they reach; the part
    already spent or released the platform pays from losses. ``amount_refunded`` is the
    charge's running total, so each event moves only what earlier ones did not."""
    meta = _metadata(charge)
    account_id = meta["account_id"]
    currency = charge["currency"]
    total = int(charge["amount_refunded"])
    prefix = f"stripe:refund:{charge['id']}:"
    lock_wallet(session, account_id)
    so_far = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
        .where(
            col(LedgerTransaction.idempotency_key).startswith(prefix),
            LedgerEntry.account == ledger.REFUNDS,
            LedgerEntry.currency == currency,
        )
    ).one()
    due = total - int(so_far)
    if due <= 0:  # an older event of this charge, arriving after a newer one
        return
    sources = [ledger.credits(account_id)]
    payment = _payment(session, charge["payment_intent"]) if charge.get("payment_intent") else None
    if payment is not None and payment.kind == "milestone_fund":  # not credited instead
        sources.insert(0, ledger.milestone(meta["milestone_id"]))
    moves, left = [], due
    for source in sources:
        taken = min(left, max(ledger.balance(session, source, currency), 0))
        moves.append(Move(source, ledger.REFUNDS, taken))
        left -= taken
    moves.append(Move(ledger.LOSSES, ledger.REFUNDS, left))
    ledger.post(
        session,
        key=f"{prefix}{total}",
        kind="refund",
        currency=currency,
        moves=moves,
        memo=f"Stripe refund of charge {charge['id']}",
    )


# Subscriptions


def _subscription(
    session: Session, *, stripe_id: str | None, metadata: dict[str, str]
) -> Subscription | None:
    """Our subscription for a Stripe one, linked (and created from the metadata) if need be."""
    sub = None
    if stripe_id:
        sub = session.exec(
            select(Subscription).where(Subscription.stripe_subscription_id == stripe_id)
        ).first()
    our_id = metadata.get("subscription_id")
    if sub is None and our_id:
        sub = session.get(Subscription, our_id)
    if sub is None:
        if not all(metadata.get(k) for k in _SUBSCRIPTION_KEYS):
            return None
        sub = Subscription(
            account_id=metadata["account_id"],
            asset_id=metadata["asset_id"],
            plan_id=metadata["plan_id"],
            expert_id=metadata["expert_id"],
            status=SubscriptionStatus.incomplete,
        )
        if our_id:
            sub.id = our_id
    if stripe_id and sub.stripe_subscription_id is None:
        sub.stripe_subscription_id = stripe_id
    session.add(sub)
    session.flush()
    return sub


def _set_status(
    session: Session,
    sub: Subscription,
    *,
    status: SubscriptionStatus,
    created: int,
    period: tuple[datetime, datetime] | None = None,
) -> None:
    """Apply a status (and period) unless a newer event was applied already."""
    if sub.status == SubscriptionStatus.canceled:
        return  # final at Stripe too
    if status == SubscriptionStatus.incomplete and sub.status != SubscriptionStatus.incomplete:
        return  # only a new subscription is incomplete: this is a stale event
    if status != SubscriptionStatus.canceled and created < sub.stripe_event_at:
        return
    sub.status = status
    if period is not None:
        sub.period_start, sub.period_end = period
    sub.stripe_event_at = max(sub.stripe_event_at, created)
    session.add(sub)
    session.flush()


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _period(start: Any, end: Any) -> tuple[datetime, datetime] | None:
    begins, ends = _timestamp(start), _timestamp(end)
    return (begins, ends) if begins and ends else None


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The Stripe subscription id and its metadata, from ``parent.subscription_details`` (API
    2025-03-31 and later) or the older top-level ``subscription``/``subscription_details``."""
    details = (invoice.get("parent") or {}).get("subscription_details") or invoice.get(
        "subscription_details"
    )
    details = details if isinstance(details, dict) else {}
    stripe_id = details.get("subscription") or invoice.get("subscription")
    if isinstance(stripe_id, dict):  # expanded
        stripe_id = stripe_id.get("id")
    return (stripe_id if isinstance(stripe_id, str) else None), _metadata(details)


def _invoice_period(invoice: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The service period the invoice pays: its line reaching furthest ahead. (The invoice's
    own period_start/period_end are the previous period's, for usage.)"""
    lines = (invoice.get("lines") or {}).get("data") or []
    periods = [line["period"] for line in lines if isinstance(line.get("period"), dict)]
    if not periods:
        return None
    latest = max(periods, key=lambda p: p.get("end") or 0)
    return _period(latest.get("start"), latest.get("end"))


def _invoice_paid(session: Session, obj: dict[str, Any], created: int) -> bool:
    stripe_id, meta = _invoice_subscription(obj)
    if stripe_id is None:
        return True  # a one-off invoice: nothing of ours
    sub = _subscription(session, stripe_id=stripe_id, metadata=meta)
    if sub is None:
        log.warning("invoice %s: unknown subscription %s", obj["id"], stripe_id)
        return True
    period = _invoice_period(obj)
    ends = period[1] if period else sub.period_end
    if ends is None:
        log.warning("invoice %s: no period; it pays a month from now", obj["id"])
        ends = add_month(utcnow())
    ledger.post(
        session,
        key=f"stripe:{obj['id']}",
        kind="subscription_payment",
        currency=obj["currency"],
        # The money of each period in its own account: see ledger.subscription.
        moves=[Move(ledger.CASH, ledger.subscription(sub.id, ends), int(obj["amount_paid"]))],
        memo=f"Stripe invoice {obj['id']} for subscription {sub.id}",
    )
    _set_status(
        session,
        sub,
        status=SubscriptionStatus.active,
        created=created,
        period=period,
    )
    return True


def _invoice_failed(session: Session, obj: dict[str, Any], created: int) -> bool:
    stripe_id, meta = _invoice_subscription(obj)
    sub = _subscription(session, stripe_id=stripe_id, metadata=meta) if stripe_id else None
    if sub is not None:
        _set_status(session, sub, status=SubscriptionStatus.past_due, created=created)
    return True


def _subscription_changed(session: Session, obj: dict[str, Any], created: int) -> bool:
    sub = _subscription(session, stripe_id=obj["id"], metadata=_metadata(obj))
    status = _STATUSES.get(str(obj.get("status")))
    if sub is None or status is None:
        log.warning(
            "subscription %s (%s): not ours, or unknown status", obj["id"], obj.get("status")
        )
        return True
    # API 2025-03-31 moved the period onto the items.
    items = (obj.get("items") or {}).get("data") or [{}]
    period = _period(
        items[0].get("current_period_start", obj.get("current_period_start")),
        items[0].get("current_period_end", obj.get("current_period_end")),
    )
    _set_status(session, sub, status=status, created=created, period=period)
    return True


def _subscription_deleted(session: Session, obj: dict[str, Any], created: int) -> bool:
    sub = _subscription(session, stripe_id=obj["id"], metadata=_metadata(obj))
    if sub is not None:
        _set_status(session, sub, status=SubscriptionStatus.canceled, created=created)
    return True


# Connect


def _account_updated(session: Session, obj: dict[str, Any], created: int) -> bool:
    connect_id = obj["id"]
    profile = session.exec(
        select(BillingProfile).where(BillingProfile.connect_account_id == connect_id)
    ).first()
    if profile is None:
        account_id = _metadata(obj).get("account_id")
        profile = session.get(BillingProfile, account_id) if account_id else None
        if profile is None or profile.connect_account_id not in (None, connect_id):
            log.warning("Connect account %s belongs to no profile here", connect_id)
            return True
        profile.connect_account_id = connect_id
    newer = session.exec(
        _events(("account.updated",), ("data", "object", "id"), connect_id).where(
            col(StripeEvent.created) > created, col(StripeEvent.handled_at).is_not(None)
        )
    ).first()
    if newer is None:
        profile.payouts_enabled = bool(obj.get("payouts_enabled"))
    session.add(profile)
    session.flush()
    return True


_HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_paid,
    "checkout.session.async_payment_succeeded": _checkout_paid,
    "checkout.session.async_payment_failed": _checkout_ended("failed"),
    "checkout.session.expired": _checkout_ended("expired"),
    "charge.refunded": _charge_refunded,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_failed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_deleted,
    "account.updated": _account_updated,
}
