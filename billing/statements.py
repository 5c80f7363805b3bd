"""What the ledger says: monthly statements of ledger accounts, and where all the money
received is now (the platform's view)."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from billing import ledger
from billing.errors import InvalidAmount
from billing.models import LedgerEntry, LedgerTransaction
from billing.service import add_month
from core.clock import utcnow


@dataclass(frozen=True, slots=True)
class StatementLine:
    at: datetime
    kind: str
    memo: str
    account: str
    currency: str
    amount: int
    balance: int


def this_month() -> str:
    """The current month as YYYY-MM (UTC), the statements' default."""
    today: date = utcnow().date()
    return f"{today.year:04d}-{today.month:02d}"


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidAmount(f"month {month!r} is not YYYY-MM, e.g. 2026-11") from exc
    if (first.year, first.month) == (9999, 12):
        return first, datetime.max.replace(tzinfo=UTC)  # no month after it
    return first, add_month(first)


def _owned(names: list[str]) -> Any:
    column = col(LedgerEntry.account)
    return or_(*(column.startswith(n) if n.endswith(":") else column == n for n in names))


def _short(account: str) -> str:
    """``client:acc_x:credits`` -> ``credits``; ``subscription:sub_x:...`` -> ``subscription``."""
    parts = account.split(":")
    return parts[0] if parts[0] == "subscription" else parts[-1]


def statement(session: Session, *, accounts: list[str], month: str) -> list[StatementLine]:
    """Every ledger entry in ``month`` (YYYY-MM) on the ledger ``accounts`` (names, or prefixes
    ending in ':'), with the running balance of that ledger account and currency."""
    start, end = _month_bounds(month)
    opening: dict[tuple[str, str], int] = {}
    for name, currency, amount in session.exec(
        select(LedgerEntry.account, LedgerEntry.currency, LedgerEntry.amount).where(
            _owned(accounts), col(LedgerEntry.created_at) < start
        )
    ).all():
        opening[(name, currency)] = opening.get((name, currency), 0) + amount
    rows = session.exec(
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, col(LedgerTransaction.id) == LedgerEntry.transaction_id)
        .where(
            _owned(accounts),
            col(LedgerEntry.created_at) >= start,
            col(LedgerEntry.created_at) < end,
        )
        .order_by(col(LedgerEntry.created_at), col(LedgerEntry.id))
    ).all()
    lines = []
    for entry, txn in rows:
        key = (entry.account, entry.currency)
        opening[key] = opening.get(key, 0) + entry.amount
        lines.append(
            StatementLine(
                at=entry.created_at,
                kind=txn.kind,
                memo=txn.memo,
                account=_short(entry.account),
                currency=entry.currency,
                amount=entry.amount,
                balance=opening[key],
            )
        )
    return lines


def statement_csv(lines: list[StatementLine]) -> str:
    """A statement as CSV, amounts in major units."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "kind", "memo", "account", "currency", "amount", "balance"])
    for line in lines:
        writer.writerow(
            [
                line.at.isoformat(),
                line.kind,
                line.memo,
                line.account,
                line.currency,
                f"{line.amount / 100:.2f}",
                f"{line.balance / 100:.2f}",
            ]
        )
    return out.getvalue()


def platform_summary(session: Session) -> dict[str, Any]:
    """Revenue, and where all the money received is now (the admin's view)."""
    totals: dict[str, dict[str, int]] = {}
    for (name, currency), amount in ledger.balances(session).items():
        group = name.split(":")[0] if ":" in name else name
        if name in ledger.SOURCES or name in (ledger.REVENUE, ledger.REFUNDS):
            group = name
        bucket = totals.setdefault(currency, {})
        bucket[group] = bucket.get(group, 0) + amount
    return {
        "revenue": {c: t.get(ledger.REVENUE, 0) for c, t in totals.items()},
        "accounts": totals,
        "unbalanced_transactions": ledger.unbalanced_transactions(session),
    }
