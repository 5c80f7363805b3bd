"""Payouts: experts' available earnings, moved out in three steps around the transfer.

1. ``start_payouts`` (one transaction): for each expert whose available earnings reach the
   minimum, a pending Payout and a ledger move from available to payout_pending.
2. The caller asks Stripe for a transfer to the expert's connected account, keyed by the
   payout id, outside any database transaction.
3. ``complete_payout`` moves the money on to paid_out, or ``fail_payout`` returns it to
   available when Stripe refused the transfer. Without Stripe, before the expert has onboarded,
   or when the transfer's outcome is unknown (``retry_later``: Stripe unreachable or failing on
   its side), payouts stay pending and the next run retries them under the same key, so that a
   transfer Stripe did make is found again rather than made twice.
"""

from datetime import datetime

from sqlmodel import Session, col, select

from billing import ledger
from billing.ledger import Move
from billing.models import BillingProfile, LedgerEntry, Payout, PayoutStatus
from billing.service import lock_wallet


def _experts_with_earnings(session: Session) -> list[tuple[str, str]]:
    """(expert id, currency) pairs that have an available-earnings account."""
    rows = session.exec(
        select(LedgerEntry.account, LedgerEntry.currency)
        .where(col(LedgerEntry.account).startswith("expert:"))
        .where(col(LedgerEntry.account).endswith(":available"))
        .distinct()
    ).all()
    return sorted((account.split(":")[1], currency) for account, currency in rows)


def start_payouts(
    session: Session, *, minimum: int, now: datetime, expert_id: str | None = None
) -> list[Payout]:
    """Record a pending payout of all available earnings at or above ``minimum``."""
    started = []
    for expert, currency in _experts_with_earnings(session):
        if expert_id is not None and expert != expert_id:
            continue
        lock_wallet(session, expert)
        amount = ledger.balance(session, ledger.available(expert), currency)
        if amount < minimum:
            continue
        payout = Payout(
            expert_id=expert,
            amount=amount,
            currency=currency,
            status=PayoutStatus.pending,
            created_at=now,
        )
        session.add(payout)
        session.flush()
        ledger.post(
            session,
            key=f"payout:{payout.id}",
            kind="payout",
            currency=currency,
            moves=[Move(ledger.available(expert), ledger.payout_pending(expert), amount)],
            memo=f"payout {payout.id}",
        )
        started.append(payout)
    return started


def pending_payouts(session: Session) -> list[Payout]:
    return list(
        session.exec(
            select(Payout)
            .where(Payout.status == PayoutStatus.pending)
            .order_by(col(Payout.created_at), col(Payout.id))
        ).all()
    )


def destination(session: Session, expert_id: str) -> str | None:
    """The expert's connected Stripe account, once it can receive payouts."""
    profile = session.get(BillingProfile, expert_id)
    if profile is None or not profile.payouts_enabled:
        return None
    return profile.connect_account_id


def complete_payout(session: Session, payout: Payout, *, transfer_id: str, now: datetime) -> None:
    """The transfer went through: the money is paid out."""
    if payout.status != PayoutStatus.pending:
        return
    ledger.post(
        session,
        key=f"payout-paid:{payout.id}",
        kind="payout_paid",
        currency=payout.currency,
        moves=[
            Move(
                ledger.payout_pending(payout.expert_id),
                ledger.paid_out(payout.expert_id),
                payout.amount,
            )
        ],
        memo=f"transfer {transfer_id}",
    )
    payout.status = PayoutStatus.paid
    payout.transfer_id = transfer_id
    payout.failure = None
    payout.settled_at = now
    session.add(payout)
    session.flush()


def fail_payout(session: Session, payout: Payout, *, reason: str, now: datetime) -> None:
    """The transfer failed: the money goes back to the expert's available earnings."""
    if payout.status != PayoutStatus.pending:
        return
    ledger.post(
        session,
        key=f"payout-failed:{payout.id}",
        kind="payout_failed",
        currency=payout.currency,
        moves=[
            Move(
                ledger.payout_pending(payout.expert_id),
                ledger.available(payout.expert_id),
                payout.amount,
            )
        ],
        memo=reason,
    )
    payout.status = PayoutStatus.failed
    payout.failure = reason[:500]
    payout.settled_at = now
    session.add(payout)
    session.flush()


def retry_later(session: Session, payout: Payout, *, reason: str) -> None:
    """The transfer's outcome is unknown: the payout stays pending, its money set aside, and
    ``reason`` says why until the next attempt."""
    if payout.status != PayoutStatus.pending:
        return
    payout.failure = reason[:500]
    session.add(payout)
    session.flush()
