"""The expert's figures by day, for the charts of their earnings page: what they earned,
how many questions their assets were asked, and how many of their answers stood.

- **Earnings**: money released to the expert, after the platform fee, on the day it was
  released: answers accepted or past their acceptance window, subscription periods settled,
  engagement milestones approved. Payouts do not count (the money was earned before).
- **Questions**: questions asked of the expert's assets by others (their own test questions
  do not count), on the day they were asked.
- **Acceptance rate**: of the answers whose escrow was settled that day, the share released
  to the expert (accepted, approved or corrected, or left undisputed) rather than refunded.
  Abstentions and the expert's own questions do not count.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from app.models import Account
from assets.models import Asset, Consultation
from billing import ledger
from billing.models import Charge, ChargeStatus, LedgerEntry, LedgerTransaction
from core.clock import utcnow

DAYS = 30
EARNING_KINDS = ("release", "period", "milestone_settle")


@dataclass(slots=True)
class Dashboard:
    days: list[date]
    earnings: dict[str, list[int]]  # currency -> minor units per day
    questions: list[int]
    settled: list[int]
    stood: list[int]

    @property
    def acceptance(self) -> list[float | None]:
        """Per day, the percentage of settled answers that stood (None: none settled)."""
        return [
            None if settled == 0 else 100 * stood / settled
            for settled, stood in zip(self.settled, self.stood, strict=True)
        ]

    @property
    def acceptance_overall(self) -> float | None:
        settled = sum(self.settled)
        return None if settled == 0 else 100 * sum(self.stood) / settled

    @property
    def earned(self) -> dict[str, int]:
        return {c: sum(v) for c, v in sorted(self.earnings.items())}


def expert_dashboard(
    session: Session, *, account: Account, days: int = DAYS, now: datetime | None = None
) -> Dashboard:
    """The account's earnings, questions and acceptance per day over the last ``days`` days
    (today included), as the module's docstring defines them."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=now.tzinfo)
    span = [first + timedelta(days=n) for n in range(days)]
    index = {d: n for n, d in enumerate(span)}

    earnings: dict[str, list[int]] = {}
    entries = session.exec(
        select(LedgerEntry)
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
        .where(
            LedgerEntry.account == ledger.available(account.id),
            col(LedgerEntry.amount) > 0,
            col(LedgerTransaction.kind).in_(EARNING_KINDS),
            col(LedgerEntry.created_at) >= start,
        )
    ).all()
    for entry in entries:
        day = index.get(entry.created_at.date())
        if day is not None:
            earnings.setdefault(entry.currency, [0] * days)[day] += entry.amount

    questions = [0] * days
    asked = session.exec(
        select(Consultation.created_at)
        .join(Asset, col(Asset.id) == col(Consultation.asset_id))
        .where(
            Asset.owner_id == account.id,
            Consultation.account_id != account.id,
            col(Consultation.created_at) >= start,
        )
    ).all()
    for moment in asked:
        day = index.get(moment.date())
        if day is not None:
            questions[day] += 1

    settled, stood = [0] * days, [0] * days
    charges = session.exec(
        select(Charge.status, Charge.settled_at)
        .join(Consultation, col(Consultation.id) == col(Charge.consultation_id))
        .where(
            Charge.expert_id == account.id,
            Charge.account_id != account.id,
            col(Charge.status).in_((ChargeStatus.released, ChargeStatus.refunded)),
            col(Charge.settled_at) >= start,
            Consultation.status != "abstained",
        )
    ).all()
    for status, settled_at in charges:
        day = None if settled_at is None else index.get(settled_at.date())
        if day is not None:
            settled[day] += 1
            stood[day] += status == ChargeStatus.released
    return Dashboard(
        days=span, earnings=earnings, questions=questions, settled=settled, stood=stood
    )
