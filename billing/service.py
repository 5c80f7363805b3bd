"""Plans, entitlement, charges held in escrow, search charges, subscriptions paid from credits,
and credits.

Money-moving functions run in the caller's transaction. Those that take money from a client
first lock the client's wallet row (``lock_wallet``), so that two requests of one client never
spend the same credits: the check and the movement happen under the lock.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from billing import ledger
from billing.errors import (
    AlreadySubscribed,
    ChargeNotFound,
    ChargeSettled,
    IdempotencyKeyReused,
    InvalidAmount,
    InvalidPlan,
    NoMonthlyPlan,
    PassagesNotSold,
    PaymentRequired,
    SubscriptionRequired,
)
from billing.ledger import Move
from billing.metering import ENCODING
from billing.models import (
    Charge,
    ChargeStatus,
    LedgerEntry,
    Plan,
    SearchCharge,
    Subscription,
    SubscriptionStatus,
    UsageEvent,
    Wallet,
)
from core.clock import utcnow
from core.db import session_scope

log = logging.getLogger(__name__)

# Zero-decimal currencies are rare among what Checkout sells here; amounts are shown /100.
MAX_AMOUNT = 10**11


def money(amount: int, currency: str) -> str:
    """``1234, "usd"`` -> ``"12.34 USD"``."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {currency.upper()}"


def record_usage(
    session: Session,
    *,
    account_id: str,
    asset_id: str,
    consultation_id: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    latency_ms: int,
) -> UsageEvent:
    """Append the usage event of one answered question, in the caller's transaction."""
    event = UsageEvent(
        account_id=account_id,
        asset_id=asset_id,
        consultation_id=consultation_id,
        kind="ask",
        model=model,
        encoding=ENCODING,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    session.add(event)
    session.flush()
    return event


# Plans


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What an expert sets; amounts in minor units."""

    currency: str = "usd"
    per_query: int | None = None
    monthly: int | None = None
    included: int = 0
    overage: int | None = None
    trial: int = 0
    acceptance_hours: int = 72
    # A client's search of the passages; None: not sold, 0: free.
    per_search: int | None = None

    def check(self) -> None:
        if self.per_query is None and self.monthly is None:
            raise InvalidPlan("set a per-query price, a monthly price, or both")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise InvalidPlan(f"currency {self.currency!r} is not a three-letter ISO code")
        for name in ("per_query", "monthly", "overage", "included", "trial", "per_search"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_AMOUNT:
                raise InvalidPlan(f"{name} must be between 0 and {MAX_AMOUNT}, not {value}")
        if self.monthly is None and (self.included or self.overage is not None):
            raise InvalidPlan("included questions and overage need a monthly price")
        if self.monthly is not None and self.included < 1:
            raise InvalidPlan("a monthly plan needs at least one included question")
        if not 1 <= self.acceptance_hours <= 24 * 90:
            raise InvalidPlan("the acceptance window must be between 1 hour and 90 days")


def set_plan(session: Session, *, asset_id: str, terms: PlanTerms) -> Plan:
    """Add a plan version for the asset; it applies to new purchases from now on."""
    terms.check()
    plan = Plan(
        asset_id=asset_id,
        currency=terms.currency.lower(),
        per_query=terms.per_query,
        monthly=terms.monthly,
        included=terms.included if terms.monthly is not None else 0,
        overage=terms.overage,
        trial=terms.trial,
        acceptance_hours=terms.acceptance_hours,
        per_search=terms.per_search,
    )
    session.add(plan)
    session.flush()
    return plan


def current_plan(session: Session, asset_id: str) -> Plan | None:
    """The newest plan version of the asset; None means the asset is free to ask."""
    return session.exec(
        select(Plan)
        .where(Plan.asset_id == asset_id)
        .order_by(col(Plan.created_at).desc(), col(Plan.id).desc())
    ).first()


def plan_public(plan: Plan | None) -> dict[str, Any] | None:
    """A plan version as the API shows it; None for a free asset."""
    if plan is None:
        return None
    return {
        "id": plan.id,
        "currency": plan.currency,
        "per_query": plan.per_query,
        "monthly": plan.monthly,
        "included": plan.included,
        "overage": plan.overage,
        "trial": plan.trial,
        "acceptance_hours": plan.acceptance_hours,
        "per_search": plan.per_search,
        "created_at": plan.created_at.isoformat(),
    }


def describe_plan(slug: str, plan: Plan | None) -> str:
    """An asset's prices in one line, as the CLI and the demo print them."""
    if plan is None:
        return f"{slug}: free to ask (no plan set)"
    parts = []
    if plan.per_query is not None:
        parts.append(f"{money(plan.per_query, plan.currency)} a question")
    if plan.monthly is not None:
        extra = (
            f", then {money(plan.overage, plan.currency)} each"
            if plan.overage is not None
            else ", then stop"
        )
        parts.append(f"{money(plan.monthly, plan.currency)} a month for {plan.included}{extra}")
    if plan.trial:
        parts.append(f"{plan.trial} free question(s)")
    if plan.per_search is not None:  # not sold: said by saying nothing, as before it was sold
        parts.append(search_terms(plan))
    parts.append(f"money released {plan.acceptance_hours} h after an answer unless disputed")
    return f"{slug}: " + "; ".join(parts)


def search_terms(plan: Plan | None) -> str:
    """What a client's search of the passages costs, in words."""
    if plan is None or plan.per_search is None:
        return "passages not sold (ask instead)"
    if plan.per_search == 0:
        return "searching the passages free"
    return f"{money(plan.per_search, plan.currency)} a search of the passages"


# Wallets and entitlement


def lock_wallet(session: Session, account_id: str) -> None:
    """Take the account's money lock until the transaction ends (row lock; SQLite's write lock)."""
    table = Wallet.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(account_id=account_id).on_conflict_do_nothing())
    session.execute(
        update(Wallet)
        .where(col(Wallet.account_id) == account_id)
        .values(version=col(Wallet.version) + 1)
    )


def credit_balance(session: Session, account_id: str, currency: str) -> int:
    return ledger.balance(session, ledger.credits(account_id), currency)


@dataclass(frozen=True, slots=True)
class Price:
    """What the next question costs a client and where it is paid from."""

    source: str  # subscription, overage, credits, trial or free
    amount: int
    currency: str
    acceptance_hours: int = 72
    subscription_id: str | None = None
    # The ledger account it is paid from; None when nothing is paid.
    origin: str | None = None


def active_subscription(
    session: Session, *, account_id: str, asset_id: str, now: datetime
) -> Subscription | None:
    return session.exec(
        select(Subscription).where(
            Subscription.account_id == account_id,
            Subscription.asset_id == asset_id,
            Subscription.status == SubscriptionStatus.active,
            col(Subscription.period_start) <= now,
            col(Subscription.period_end) > now,
        )
    ).first()


def quota_used(session: Session, subscription: Subscription) -> int:
    """Questions answered from the subscription this period; refunded ones are given back."""
    count = session.exec(
        select(func.count())
        .select_from(Charge)
        .where(
            Charge.subscription_id == subscription.id,
            Charge.source == "subscription",
            Charge.status != ChargeStatus.refunded,
            col(Charge.created_at) >= subscription.period_start,
        )
    ).one()
    return int(count)


def trials_used(session: Session, *, account_id: str, asset_id: str) -> int:
    """Trial questions the account has had on the asset."""
    count = session.exec(
        select(func.count())
        .select_from(Charge)
        .where(
            Charge.account_id == account_id,
            Charge.asset_id == asset_id,
            Charge.source == "trial",
        )
    ).one()
    return int(count)


def quote(
    session: Session,
    *,
    account_id: str,
    asset_id: str,
    now: datetime,
    currency: str = "usd",
    trial_first: bool = False,
) -> Price:
    """What the next question costs, or PaymentRequired (402) / SubscriptionRequired (403).

    In order: a subscription with questions left, then credits covering the price, then a
    trial question (first of all with ``trial_first``: an account that may ask only trial
    questions). Read it again under ``lock_wallet`` before charging.
    """
    plan = current_plan(session, asset_id)
    if plan is None:
        return Price("free", 0, currency)
    hours = plan.acceptance_hours
    if trial_first and trials_used(session, account_id=account_id, asset_id=asset_id) < plan.trial:
        return Price("trial", 0, plan.currency, hours)
    sub = active_subscription(session, account_id=account_id, asset_id=asset_id, now=now)
    if sub is not None:
        terms = session.get(Plan, sub.plan_id)
        assert terms is not None
        left = terms.included - quota_used(session, sub)
        if left > 0:
            # The period's money, spread over the questions left: every cent reaches escrow.
            assert sub.period_end is not None
            period = ledger.subscription(sub.id, sub.period_end)
            paid = ledger.balance(session, period, terms.currency)
            return Price("subscription", paid // left, terms.currency, hours, sub.id, period)
        if terms.overage is None:
            renews = sub.period_end.date().isoformat() if sub.period_end else "next period"
            raise SubscriptionRequired(
                f"you have used the {terms.included} questions of your subscription; "
                f"it renews on {renews}"
            )
        have = credit_balance(session, account_id, terms.currency)
        if have < terms.overage:
            raise PaymentRequired(
                f"your subscription's {terms.included} questions are used; another costs "
                f"{money(terms.overage, terms.currency)} and you have "
                f"{money(have, terms.currency)} in credits: buy credits to go on"
            )
        return Price(
            "overage", terms.overage, terms.currency, hours, sub.id, ledger.credits(account_id)
        )
    have = credit_balance(session, account_id, plan.currency)
    if plan.per_query is not None and have >= plan.per_query:
        return Price(
            "credits", plan.per_query, plan.currency, hours, origin=ledger.credits(account_id)
        )
    if trials_used(session, account_id=account_id, asset_id=asset_id) < plan.trial:
        return Price("trial", 0, plan.currency, hours)
    if plan.per_query is not None:
        raise PaymentRequired(
            f"a question costs {money(plan.per_query, plan.currency)} and you have "
            f"{money(have, plan.currency)} in credits: buy credits or subscribe"
        )
    assert plan.monthly is not None
    raise SubscriptionRequired(
        f"this asset is sold by subscription ({money(plan.monthly, plan.currency)} a month for "
        f"{plan.included} questions): subscribe to ask"
    )


# Charges and escrow


def request_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def find_idempotent(
    session: Session, *, account_id: str, key: str, fingerprint: str
) -> Charge | None:
    """The charge an earlier request with this Idempotency-Key made, if any.

    The same key with a different request is refused (409), as Stripe does.
    """
    charge = session.exec(
        select(Charge).where(Charge.account_id == account_id, Charge.idempotency_key == key)
    ).first()
    if charge is not None and charge.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was used for a different request; use a new key"
        )
    return charge


def hold(
    session: Session,
    *,
    price: Price,
    account_id: str,
    asset_id: str,
    expert_id: str,
    consultation_id: str,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Charge:
    """Record the charge of an answer and move its price into escrow (caller holds the lock)."""
    charge = Charge(
        consultation_id=consultation_id,
        account_id=account_id,
        asset_id=asset_id,
        expert_id=expert_id,
        source=price.source,
        subscription_id=price.subscription_id,
        origin=price.origin if price.amount else None,
        amount=price.amount,
        currency=price.currency,
        status=ChargeStatus.held,
        release_after=now + timedelta(hours=price.acceptance_hours),
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        created_at=now,
    )
    session.add(charge)
    session.flush()
    if charge.origin is not None:
        ledger.post(
            session,
            key=f"hold:{charge.id}",
            kind="hold",
            currency=charge.currency,
            moves=[Move(charge.origin, ledger.escrow(charge.id), charge.amount)],
            memo=f"answer {consultation_id}",
        )
    return charge


def get_charge(session: Session, charge_id: str) -> Charge:
    charge = session.get(Charge, charge_id)
    if charge is None:
        raise ChargeNotFound(f"no charge {charge_id}")
    return charge


def charge_for_consultation(session: Session, consultation_id: str) -> Charge | None:
    return session.exec(select(Charge).where(Charge.consultation_id == consultation_id)).first()


def charges_of(
    session: Session,
    *,
    account_id: str | None = None,
    expert_id: str | None = None,
    limit: int = 50,
) -> list[Charge]:
    """The latest charges, newest first: a client's, an expert's, or (with neither) anyone's."""
    statement = select(Charge).order_by(col(Charge.created_at).desc(), col(Charge.id)).limit(limit)
    if account_id is not None:
        statement = statement.where(Charge.account_id == account_id)
    if expert_id is not None:
        statement = statement.where(Charge.expert_id == expert_id)
    return list(session.exec(statement).all())


def charge_public(charge: Charge) -> dict[str, Any]:
    """A charge as an answer carries it."""
    return {
        "id": charge.id,
        "amount": charge.amount,
        "currency": charge.currency,
        "source": charge.source,
        "status": charge.status,
        # As the API's models write it (UTC as "Z"), so a streamed answer equals a fetched one.
        "release_after": charge.release_after.isoformat().replace("+00:00", "Z"),
    }


# Searches: a client pays for the passages at once, from credits (no escrow: no answer to dispute)


def find_search_charge(
    session: Session, *, account_id: str, key: str, fingerprint: str
) -> SearchCharge | None:
    """The charge an earlier search with this Idempotency-Key made, if any; the same key with
    another search is refused (409)."""
    charge = session.exec(
        select(SearchCharge).where(
            SearchCharge.account_id == account_id, SearchCharge.idempotency_key == key
        )
    ).first()
    if charge is not None and charge.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was used for a different search; use a new key"
        )
    return charge


def search_price(session: Session, *, account_id: str, asset_id: str, name: str) -> Price:
    """What a client's search of the asset costs: PassagesNotSold (403) when its plan does not
    sell passages, PaymentRequired (402) when the client's credits do not cover it. Read it
    again under ``lock_wallet`` before charging."""
    plan = current_plan(session, asset_id)
    if plan is None or plan.per_search is None:
        raise PassagesNotSold(
            f"{name} does not sell its passages: its expert keeps the corpus private; "
            "ask it a question instead"
        )
    if plan.per_search == 0:
        return Price("free", 0, plan.currency)
    have = credit_balance(session, account_id, plan.currency)
    if have < plan.per_search:
        raise PaymentRequired(
            f"a search of {name} costs {money(plan.per_search, plan.currency)} and you have "
            f"{money(have, plan.currency)} in credits: buy credits to go on"
        )
    return Price("credits", plan.per_search, plan.currency, origin=ledger.credits(account_id))


@dataclass(frozen=True, slots=True)
class SearchPaid:
    """A search's charge (None when it was free), and whether an Idempotency-Key matched an
    earlier search, so that nothing new was charged."""

    charge: SearchCharge | None
    replayed: bool = False


def charge_search(
    session: Session,
    *,
    account_id: str,
    asset_id: str,
    expert_id: str,
    name: str,
    fee_bps: int,
    now: datetime,
    idempotency_key: str | None,
    fingerprint: str,
) -> SearchPaid:
    """Charge a client's search of an asset from its credits, in the caller's transaction and
    under the client's wallet lock: the charge and one balanced ledger transaction (credits to
    the expert's earnings less the platform fee, the fee to platform revenue) are written
    together. A known Idempotency-Key charges nothing again; of two concurrent searches with
    one key, the first charges and the second finds its charge."""
    lock_wallet(session, account_id)
    if idempotency_key is not None:
        earlier = find_search_charge(
            session, account_id=account_id, key=idempotency_key, fingerprint=fingerprint
        )
        if earlier is not None:
            return SearchPaid(earlier, replayed=True)
    price = search_price(session, account_id=account_id, asset_id=asset_id, name=name)
    if price.origin is None:
        return SearchPaid(None)
    fee = fee_for(price.amount, fee_bps)
    charge = SearchCharge(
        account_id=account_id,
        asset_id=asset_id,
        expert_id=expert_id,
        amount=price.amount,
        fee=fee,
        currency=price.currency,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(charge)
            session.flush()
    except IntegrityError:  # a concurrent search with the same key charged first
        if idempotency_key is None:  # pragma: no cover - the conflict was on another constraint
            raise
        found = find_search_charge(
            session, account_id=account_id, key=idempotency_key, fingerprint=fingerprint
        )
        if found is None:  # pragma: no cover - the conflict was on another constraint
            raise
        return SearchPaid(found, replayed=True)
    ledger.post(
        session,
        key=f"search:{charge.id}",
        kind="search",
        currency=charge.currency,
        moves=[
            Move(price.origin, ledger.REVENUE, fee),
            Move(price.origin, ledger.available(expert_id), price.amount - fee),
        ],
        memo=f"search of {name}",
    )
    return SearchPaid(charge)


# Still in escrow: held, disputed by the client, or in the expert's review.
UNSETTLED = ("held", "disputed", "in_review")


def _settle(
    session: Session,
    charge: Charge,
    *,
    allowed: tuple[str, ...],
    to: str,
    now: datetime | None,
    fee: int = 0,
) -> bool:
    """Move the charge from one of ``allowed`` to ``to`` (a conditional update, so of two
    concurrent requests only one wins); False when it was not in ``allowed``."""
    result = session.execute(
        update(Charge)
        .where(col(Charge.id) == charge.id, col(Charge.status).in_(allowed))
        .values(status=to, settled_at=now, fee=fee)
        .execution_options(synchronize_session=False)
    )
    session.refresh(charge)
    return bool(getattr(result, "rowcount", 0) == 1)


def fee_for(amount: int, fee_bps: int) -> int:
    """The platform's share, rounded half up to a whole minor unit."""
    return (amount * fee_bps + 5000) // 10_000


def release(
    session: Session,
    charge: Charge,
    *,
    fee_bps: int,
    now: datetime,
    allowed: tuple[str, ...] = (ChargeStatus.held,),
) -> Charge:
    """Pay a held charge out of escrow: the fee to platform revenue, the rest to the expert."""
    fee = fee_for(charge.amount, fee_bps)
    if not _settle(session, charge, allowed=allowed, to=ChargeStatus.released, now=now, fee=fee):
        raise ChargeSettled(f"charge {charge.id} is {charge.status}; it cannot be released")
    ledger.post(
        session,
        key=f"release:{charge.id}",
        kind="release",
        currency=charge.currency,
        moves=[
            Move(ledger.escrow(charge.id), ledger.REVENUE, fee),
            Move(ledger.escrow(charge.id), ledger.available(charge.expert_id), charge.amount - fee),
        ],
        memo=f"answer {charge.consultation_id}",
    )
    return charge


def refund(session: Session, charge: Charge, *, now: datetime) -> Charge:
    """Return an unsettled charge to where it came from; used quota is given back."""
    lock_wallet(session, charge.account_id)  # against a concurrent settle_periods
    if not _settle(
        session,
        charge,
        allowed=UNSETTLED,
        to=ChargeStatus.refunded,
        now=now,
    ):
        raise ChargeSettled(f"charge {charge.id} is {charge.status}; it cannot be refunded")
    target = charge.origin
    # A subscription period already settled to the expert takes nothing back: it becomes credits.
    if target is not None and ledger.find(session, _period_key(target)) is not None:
        target = ledger.credits(charge.account_id)
    if target is not None:
        ledger.post(
            session,
            key=f"refund:{charge.id}",
            kind="refund",
            currency=charge.currency,
            moves=[Move(ledger.escrow(charge.id), target, charge.amount)],
            memo=f"answer {charge.consultation_id}",
        )
    return charge


def accept(
    session: Session, charge: Charge, *, account_id: str, fee_bps: int, now: datetime
) -> Charge:
    """The client accepts the answer: its hold is released now."""
    if charge.account_id != account_id:
        raise ChargeNotFound(f"no charge {charge.id}")
    return release(
        session,
        charge,
        fee_bps=fee_bps,
        now=now,
        allowed=UNSETTLED,
    )


def dispute(session: Session, charge: Charge, *, account_id: str) -> Charge:
    """The client disputes the answer: its hold stays in escrow until it is settled."""
    if charge.account_id != account_id:
        raise ChargeNotFound(f"no charge {charge.id}")
    if not _settle(
        session, charge, allowed=(ChargeStatus.held,), to=ChargeStatus.disputed, now=None
    ):
        raise ChargeSettled(f"charge {charge.id} is {charge.status}; it cannot be disputed")
    return charge


def send_to_review(session: Session, charge: Charge) -> Charge:
    """A held charge waits for the expert's review: the window does not release it."""
    _settle(session, charge, allowed=(ChargeStatus.held,), to=ChargeStatus.in_review, now=None)
    return charge


def release_due(session: Session, *, fee_bps: int, now: datetime) -> int:
    """Release every held charge whose acceptance window has passed; returns how many."""
    ids = session.exec(
        select(Charge.id).where(
            Charge.status == ChargeStatus.held, col(Charge.release_after) <= now
        )
    ).all()
    released = 0
    for charge_id in ids:
        charge = session.get(Charge, charge_id)
        assert charge is not None
        try:
            release(session, charge, fee_bps=fee_bps, now=now)
        except ChargeSettled:  # accepted, disputed or refunded meanwhile
            continue
        released += 1
    return released


def settle_due(engine: Engine, *, fee_bps: int) -> tuple[int, int]:
    """Release holds whose acceptance window passed and settle ended subscription periods, in
    a transaction of its own (the scheduled task); returns how many of each."""
    now = utcnow()
    with session_scope(engine) as session:
        released = release_due(session, fee_bps=fee_bps, now=now)
        periods = settle_periods(session, fee_bps=fee_bps, now=now)
    if released or periods:
        log.info("released %d hold(s), settled %d subscription period(s)", released, periods)
    return released, periods


# Subscriptions and credits


def add_month(moment: datetime) -> datetime:
    """The same day and time next month (the month's last day when it is shorter)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def subscribe_with_credits(
    session: Session, *, account_id: str, asset_id: str, expert_id: str, now: datetime
) -> Subscription:
    """Buy one month of the asset's current subscription from the client's credits."""
    lock_wallet(session, account_id)
    plan = current_plan(session, asset_id)
    if plan is None or plan.monthly is None:
        raise NoMonthlyPlan("this asset has no monthly plan: pay per question with credits")
    if active_subscription(session, account_id=account_id, asset_id=asset_id, now=now):
        raise AlreadySubscribed("you already have an active subscription to this asset")
    have = credit_balance(session, account_id, plan.currency)
    if have < plan.monthly:
        raise PaymentRequired(
            f"a month costs {money(plan.monthly, plan.currency)} and you have "
            f"{money(have, plan.currency)} in credits: buy credits first"
        )
    sub = Subscription(
        account_id=account_id,
        asset_id=asset_id,
        expert_id=expert_id,
        plan_id=plan.id,
        status=SubscriptionStatus.active,
        period_start=now,
        period_end=add_month(now),
        created_at=now,
    )
    session.add(sub)
    session.flush()
    ledger.post(
        session,
        key=f"subscribe:{sub.id}",
        kind="subscription",
        currency=plan.currency,
        moves=[
            Move(
                ledger.credits(account_id),
                ledger.subscription(sub.id, sub.period_end),  # type: ignore[arg-type]
                plan.monthly,
            )
        ],
        memo=f"subscription {sub.id}",
    )
    return sub


def _period_key(account: str) -> str:
    return f"period:{account}"


def settle_periods(session: Session, *, fee_bps: int, now: datetime) -> int:
    """Pay out what ended subscription periods left unspent (the expert was available for
    it), and end subscriptions bought with credits whose period is over. Returns how many
    periods were settled."""
    periods = session.exec(
        select(LedgerEntry.account, LedgerEntry.currency)
        .where(col(LedgerEntry.account).startswith("subscription:"))
        .distinct()
    ).all()
    settled = 0
    for account, currency in periods:
        if ledger.subscription_period_end(account) > now:
            continue
        if ledger.find(session, _period_key(account)) is not None:
            continue
        sub = session.get(Subscription, account.split(":")[1])
        assert sub is not None
        lock_wallet(session, sub.account_id)  # against a concurrent refund into the period
        left = ledger.balance(session, account, currency)
        fee = fee_for(left, fee_bps)
        ledger.post(
            session,
            key=_period_key(account),
            kind="period",
            currency=currency,
            moves=[
                Move(account, ledger.REVENUE, fee),
                Move(account, ledger.available(sub.expert_id), left - fee),
            ],
            memo=f"subscription {sub.id}: what the period left unspent",
        )
        settled += 1
    ended = session.exec(
        select(Subscription).where(
            Subscription.status == SubscriptionStatus.active,
            col(Subscription.stripe_subscription_id).is_(None),
            col(Subscription.period_end) <= now,
        )
    ).all()
    for sub in ended:
        sub.status = SubscriptionStatus.canceled
        session.add(sub)
    session.flush()
    return settled


def grant_credits(
    session: Session, *, account_id: str, amount: int, currency: str, key: str, memo: str = ""
) -> int:
    """Add credits without Stripe (an admin's grant); returns the new balance."""
    if not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount(f"the amount must be a positive number of cents, not {amount}")
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidAmount(f"currency {currency!r} is not a three-letter ISO code")
    currency = currency.lower()
    earlier = ledger.find(session, key)
    if earlier is not None:
        entries = session.exec(
            select(LedgerEntry).where(LedgerEntry.transaction_id == earlier.id)
        ).all()
        wanted = {(ledger.credits(account_id), amount), (ledger.GRANTS, -amount)}
        if {(e.account, e.amount) for e in entries} != wanted or entries[0].currency != currency:
            raise IdempotencyKeyReused(f"the key {key!r} was used for another grant; use a new key")
    ledger.post(
        session,
        key=key,
        kind="grant",
        currency=currency,
        moves=[Move(ledger.GRANTS, ledger.credits(account_id), amount)],
        memo=memo or "credits granted",
    )
    return credit_balance(session, account_id, currency)


# Engagement milestones: escrow funded by the client, settled to the expert, the client, or both


def fund_milestone(
    session: Session, *, client_id: str, milestone_id: str, amount: int, currency: str
) -> None:
    """Move a milestone's price from the client's credits into its escrow (once)."""
    lock_wallet(session, client_id)
    key = f"fund:{milestone_id}"
    if ledger.find(session, key) is not None:
        return
    have = credit_balance(session, client_id, currency)
    if have < amount:
        raise PaymentRequired(
            f"this milestone costs {money(amount, currency)} and you have "
            f"{money(have, currency)} in credits: buy credits first"
        )
    ledger.post(
        session,
        key=key,
        kind="milestone_fund",
        currency=currency,
        moves=[Move(ledger.credits(client_id), ledger.milestone(milestone_id), amount)],
        memo=f"milestone {milestone_id}",
    )


def fund_milestone_with_cash(
    session: Session, *, key: str, milestone_id: str, amount: int, currency: str
) -> None:
    """A Stripe payment for a milestone goes straight into its escrow (once per key)."""
    ledger.post(
        session,
        key=key,
        kind="milestone_fund",
        currency=currency,
        moves=[Move(ledger.CASH, ledger.milestone(milestone_id), amount)],
        memo=f"milestone {milestone_id} paid through Stripe",
    )


def return_unfunded(
    session: Session, *, key: str, milestone_id: str, client_id: str, currency: str
) -> None:
    """What a milestone's escrow holds goes back to the client's credits (once per key): a
    card payment refunded in part before it could fund the milestone."""
    held = milestone_held(session, milestone_id=milestone_id, currency=currency)
    ledger.post(
        session,
        key=key,
        kind="milestone_settle",
        currency=currency,
        moves=[Move(ledger.milestone(milestone_id), ledger.credits(client_id), held)],
        memo=f"milestone {milestone_id}: a refunded payment that did not fund it",
    )


def milestone_held(session: Session, *, milestone_id: str, currency: str) -> int:
    return ledger.balance(session, ledger.milestone(milestone_id), currency)


@dataclass(frozen=True, slots=True)
class Settlement:
    fee: int
    to_expert: int
    to_client: int


def settle_milestone(
    session: Session,
    *,
    milestone_id: str,
    client_id: str,
    expert_id: str,
    currency: str,
    expert_share: int | None,
    fee_bps: int,
) -> Settlement:
    """Empty a milestone's escrow: ``expert_share`` (all when None) to the expert minus the
    platform fee, the rest back to the client's credits. Once per milestone."""
    held = milestone_held(session, milestone_id=milestone_id, currency=currency)
    share = held if expert_share is None else expert_share
    if not 0 <= share <= held:
        raise InvalidAmount(
            f"the expert's share must be between 0 and {money(held, currency)}, "
            f"not {money(share, currency)}"
        )
    fee = fee_for(share, fee_bps)
    escrow = ledger.milestone(milestone_id)
    ledger.post(
        session,
        key=f"settle:{milestone_id}",
        kind="milestone_settle",
        currency=currency,
        moves=[
            Move(escrow, ledger.REVENUE, fee),
            Move(escrow, ledger.available(expert_id), share - fee),
            Move(escrow, ledger.credits(client_id), held - share),
        ],
        memo=f"milestone {milestone_id}",
    )
    return Settlement(fee=fee, to_expert=share - fee, to_client=held - share)
