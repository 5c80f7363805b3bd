"""A client's answered questions, newest first: each with its answer's status, what it cost and
when, filtered by status, asset and dates, a page at a time."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from app.accounting import charge_row
from app.models import Account
from assets.models import Asset, Consultation
from billing.models import Charge, ChargeStatus
from core.errors import InvalidInput

Status = Literal["final", "pending_review", "accepted", "corrected", "refunded", "abstained"]
STATUSES: tuple[str, ...] = get_args(Status)
STATUS_LABELS = {
    "final": "final (money held)",
    "pending_review": "pending review",
    "accepted": "accepted (paid to the expert)",
    "corrected": "corrected by the expert",
    "refunded": "refunded",
    "abstained": "no answer in the sources",
}
PER_PAGE = 25
MAX_PAGE = 100_000

# One status per question, the first that holds: money given back outranks everything, then
# a correction, then money paid out (the answer stood), then a review still to come.
_answer_state = case(
    (col(Charge.status) == ChargeStatus.refunded, "refunded"),
    (col(Consultation.status) == "corrected", "corrected"),
    (col(Charge.status) == ChargeStatus.released, "accepted"),
    (
        or_(
            col(Consultation.status) == "pending_review",
            col(Charge.status).in_([ChargeStatus.in_review, ChargeStatus.disputed]),
        ),
        "pending_review",
    ),
    (col(Consultation.status) == "abstained", "abstained"),
    else_="final",
)


class InvalidHistoryFilter(InvalidInput):
    pass


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Every filter is optional; ``until`` is inclusive (the whole day)."""

    status: str | None = None
    asset: str | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1
    per_page: int = PER_PAGE

    def check(self) -> "HistoryFilter":
        if self.status is not None and self.status not in STATUSES:
            raise InvalidHistoryFilter(f"status: use one of {', '.join(STATUSES)}")
        if not 1 <= self.page <= MAX_PAGE:
            raise InvalidHistoryFilter(f"page: a number from 1 to {MAX_PAGE}")
        if not 1 <= self.per_page <= 100:
            raise InvalidHistoryFilter("per_page: a number from 1 to 100")
        return self

    def query(self) -> dict[str, str]:
        """The filters as query parameters (without the page), for next/previous links."""
        given = {
            "status": self.status,
            "asset": self.asset,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in given.items() if v}


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def answers(session: Session, *, account: Account, filters: HistoryFilter) -> dict[str, Any]:
    """One page of the questions ``account`` asked (only theirs), newest first."""
    filters = filters.check()
    statement = (
        select(Charge, Consultation, Asset, _answer_state.label("state"))
        .join(Consultation, col(Consultation.id) == col(Charge.consultation_id))
        .join(Asset, col(Asset.id) == col(Charge.asset_id))
        .where(Charge.account_id == account.id)
    )
    if filters.status is not None:
        statement = statement.where(_answer_state == filters.status)
    if filters.asset:
        statement = statement.where(Asset.slug == filters.asset)
    if filters.since:
        statement = statement.where(col(Charge.created_at) >= _start(filters.since))
    if filters.until:
        statement = statement.where(
            col(Charge.created_at) < _start(filters.until + timedelta(days=1))
        )
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    rows = session.exec(
        statement.order_by(col(Charge.created_at).desc(), col(Charge.id).desc())
        .offset((filters.page - 1) * filters.per_page)
        .limit(filters.per_page)
    ).all()
    items = []
    for charge, consultation, asset, state in rows:
        items.append(
            {
                **charge_row(session, charge),
                "asset": asset.slug,
                "question": consultation.question,
                "state": state,
                "state_label": STATUS_LABELS[state],
            }
        )
    pages = max(1, -(-int(total) // filters.per_page))
    return {
        "items": items,
        "total": int(total),
        "page": filters.page,
        "per_page": filters.per_page,
        "pages": pages,
        "next_page": filters.page + 1 if filters.page < pages else None,
        "previous_page": filters.page - 1 if filters.page > 1 else None,
    }


def assets_asked(session: Session, *, account: Account) -> list[str]:
    """Slugs of the assets ``account`` has asked, for the asset filter."""
    return list(
        session.exec(
            select(Asset.slug)
            .join(Charge, col(Charge.asset_id) == col(Asset.id))
            .where(Charge.account_id == account.id)
            .distinct()
            .order_by(col(Asset.slug))
        ).all()
    )
