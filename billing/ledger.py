"""The double-entry ledger: balanced transactions of signed entries, keyed to happen once.

An entry adds its amount to one ledger account (negative takes from it); a transaction's
entries sum to zero per currency. Balances are sums of entries. Money enters from the source
accounts (``platform:cash`` for Stripe payments, ``platform:grants`` for credits granted
without Stripe, ``platform:losses`` for what the platform covers itself), whose balances are
therefore negative; every other account must stay at or
above zero, which the services check under a wallet lock before moving money out.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from billing.errors import LedgerUnbalanced
from billing.models import LedgerEntry, LedgerTransaction

CASH = "platform:cash"
GRANTS = "platform:grants"
REVENUE = "platform:revenue"
REFUNDS = "platform:refunds"
# What the platform pays from its own pocket, e.g. a Stripe refund of credits already spent.
LOSSES = "platform:losses"
SOURCES = (CASH, GRANTS, LOSSES)


def credits(account_id: str) -> str:
    return f"client:{account_id}:credits"


def subscription(subscription_id: str, period_end: datetime) -> str:
    """Money paid for one period of a subscription and not yet spent on answers. Each period
    has its own account, so a renewal paid before the last period is settled never mixes
    with what that period left."""
    return f"subscription:{subscription_id}:{period_end.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def subscription_period_end(account: str) -> datetime:
    """The end of the period a ``subscription(...)`` account belongs to."""
    return datetime.strptime(account.rsplit(":", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def escrow(charge_id: str) -> str:
    return f"escrow:{charge_id}"


def milestone(milestone_id: str) -> str:
    """Escrow of one engagement milestone, from funding until it is settled."""
    return f"milestone:{milestone_id}"


def available(expert_id: str) -> str:
    return f"expert:{expert_id}:available"


def payout_pending(expert_id: str) -> str:
    return f"expert:{expert_id}:payout_pending"


def paid_out(expert_id: str) -> str:
    return f"expert:{expert_id}:paid_out"


@dataclass(frozen=True, slots=True)
class Move:
    """``amount`` from one account to another."""

    source: str
    target: str
    amount: int


def post(
    session: Session,
    *,
    key: str,
    kind: str,
    currency: str,
    moves: Iterable[Move],
    memo: str = "",
) -> LedgerTransaction | None:
    """Write a balanced transaction once per ``key``, in the caller's transaction.

    Returns the transaction (the existing one if ``key`` was used before), or None when every
    move is zero. A negative amount is a bug in the caller and raises.
    """
    entries: list[tuple[str, int]] = []
    for move in moves:
        if move.amount < 0:
            raise LedgerUnbalanced(f"negative move of {move.amount} in {kind}")
        if move.amount:
            entries += [(move.source, -move.amount), (move.target, move.amount)]
    if not entries:
        return None
    if sum(amount for _, amount in entries) != 0:  # pragma: no cover - moves always balance
        raise LedgerUnbalanced(f"{kind} does not balance")
    existing = find(session, key)
    if existing is not None:
        return existing
    txn = LedgerTransaction(idempotency_key=key, kind=kind, memo=memo[:300])
    try:
        with session.begin_nested():
            session.add(txn)
            session.flush()
    except IntegrityError:  # a concurrent request posted the same key first
        found = find(session, key)
        if found is None:  # pragma: no cover - the conflict was on another constraint
            raise
        return found
    session.add_all(
        LedgerEntry(transaction_id=txn.id, account=account, currency=currency, amount=amount)
        for account, amount in entries
    )
    session.flush()
    return txn


def find(session: Session, key: str) -> LedgerTransaction | None:
    return session.exec(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).first()


def balance(session: Session, account: str, currency: str) -> int:
    """The sum of the account's entries in ``currency``."""
    total = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account == account, LedgerEntry.currency == currency
        )
    ).one()
    return int(total)


def balances(session: Session, *, prefix: str = "") -> dict[tuple[str, str], int]:
    """Every account (starting with ``prefix``) and currency with its balance."""
    statement = select(
        LedgerEntry.account, LedgerEntry.currency, func.sum(LedgerEntry.amount)
    ).group_by(col(LedgerEntry.account), col(LedgerEntry.currency))
    if prefix:
        statement = statement.where(col(LedgerEntry.account).startswith(prefix))
    return {(a, c): int(total) for a, c, total in session.exec(statement).all()}


def unbalanced_transactions(session: Session) -> list[str]:
    """Ids of transactions whose entries do not sum to zero per currency (should be none)."""
    statement = (
        select(LedgerEntry.transaction_id)
        .group_by(col(LedgerEntry.transaction_id), col(LedgerEntry.currency))
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    return list(session.exec(statement).all())
