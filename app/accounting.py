"""Billing use cases that need assets or accounts: plans, escrow decisions, balances,
statements and payouts. What needs billing alone is in ``billing`` (``billing.service``,
``billing.statements``)."""

import logging
from typing import Any

from sqlmodel import Session, col, select

from app import reviewing
from app.accounts import viewer_of
from app.models import Account, Role
from app.runtime import Runtime
from assets.errors import ConsultationNotFound
from assets.models import Asset, Consultation
from assets.service import can_manage, get_managed_asset, get_visible_asset
from billing import ledger, payouts, statements
from billing import service as billing
from billing.errors import GatewayError, GatewayUnavailable, InvalidAmount, NoMonthlyPlan
from billing.models import Charge, Payout, Plan, Subscription
from billing.statements import StatementLine
from core.clock import utcnow
from core.db import session_scope
from core.errors import Forbidden

log = logging.getLogger(__name__)


def set_plan(
    session: Session, *, account: Account, slug: str, terms: billing.PlanTerms
) -> tuple[Asset, Plan]:
    """A new plan version for an asset the account manages."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return asset, billing.set_plan(session, asset_id=asset.id, terms=terms)


def get_plan(session: Session, *, account: Account, slug: str) -> tuple[Asset, Plan | None]:
    asset = get_visible_asset(session, viewer=viewer_of(account), slug=slug)
    return asset, billing.current_plan(session, asset.id)


def _own_charge(session: Session, account: Account, consultation_id: str) -> Charge:
    charge = billing.charge_for_consultation(session, consultation_id)
    if charge is None or charge.account_id != account.id:
        raise ConsultationNotFound(f"no consultation {consultation_id}")
    return charge


def accept(session: Session, runtime: Runtime, *, account: Account, consultation_id: str) -> Charge:
    """The client accepts an answer: its hold is released to the expert now."""
    charge = _own_charge(session, account, consultation_id)
    return billing.accept(
        session,
        charge,
        account_id=account.id,
        fee_bps=runtime.settings.billing.platform_fee_bps,
        now=utcnow(),
    )


def dispute(
    session: Session, runtime: Runtime, *, account: Account, consultation_id: str, note: str = ""
) -> Charge:
    """The client disputes an answer within its window: it goes to the expert's review queue
    and its hold stays in escrow until the expert (or an admin) settles it."""
    reviewing.flag(session, runtime, account=account, consultation_id=consultation_id, note=note)
    return _own_charge(session, account, consultation_id)


def _managed_charge(session: Session, account: Account, consultation_id: str) -> Charge:
    """A charge on an asset the account manages (its expert, or an admin)."""
    charge = billing.charge_for_consultation(session, consultation_id)
    asset = session.get(Asset, charge.asset_id) if charge else None
    if charge is None or asset is None:
        raise ConsultationNotFound(f"no consultation {consultation_id}")
    if not can_manage(viewer_of(account), asset):
        if charge.account_id == account.id:
            raise Forbidden("only the asset's expert or an admin can settle this answer")
        raise ConsultationNotFound(f"no consultation {consultation_id}")
    return charge


def refund(session: Session, *, account: Account, consultation_id: str) -> Charge:
    """Return the answer's money to the client (the expert or an admin decides)."""
    charge = _managed_charge(session, account, consultation_id)
    return billing.refund(session, charge, now=utcnow())


def release(
    session: Session, runtime: Runtime, *, account: Account, consultation_id: str
) -> Charge:
    """Release a held or disputed answer to the expert (an admin settling a dispute)."""
    if account.role != Role.admin:
        raise Forbidden("only an admin releases a disputed answer; the client accepts it")
    charge = _managed_charge(session, account, consultation_id)
    return billing.release(
        session,
        charge,
        fee_bps=runtime.settings.billing.platform_fee_bps,
        now=utcnow(),
        allowed=billing.UNSETTLED,
    )


def subscribe_with_credits(session: Session, *, account: Account, slug: str) -> Subscription:
    asset = get_visible_asset(session, viewer=viewer_of(account), slug=slug)
    if account.role != Role.client:
        raise Forbidden("only client accounts subscribe")
    plan = billing.current_plan(session, asset.id)
    if plan is None or plan.monthly is None:
        raise NoMonthlyPlan(f"{asset.slug} has no monthly plan: pay per question with credits")
    return billing.subscribe_with_credits(
        session, account_id=account.id, asset_id=asset.id, expert_id=asset.owner_id, now=utcnow()
    )


def grant_credits(
    session: Session, *, account: Account, amount: int, currency: str, key: str, memo: str = ""
) -> int:
    if account.role != Role.client:
        raise InvalidAmount(f"{account.email} is not a client account; credits are for clients")
    return billing.grant_credits(
        session, account_id=account.id, amount=amount, currency=currency, key=key, memo=memo
    )


# What each role sees


def _by_currency(balances: dict[tuple[str, str], int], account: str) -> dict[str, int]:
    return {c: v for (a, c), v in balances.items() if a == account and v}


def client_summary(session: Session, *, account: Account) -> dict[str, Any]:
    """Credits, subscriptions and the latest charges of a client."""
    balances = ledger.balances(session, prefix=ledger.credits(account.id))
    subs = session.exec(
        select(Subscription)
        .where(Subscription.account_id == account.id)
        .order_by(col(Subscription.created_at).desc())
    ).all()
    return {
        "credits": _by_currency(balances, ledger.credits(account.id)),
        "subscriptions": [subscription_public(session, s) for s in subs],
        "charges": [
            charge_row(session, c) for c in billing.charges_of(session, account_id=account.id)
        ],
    }


def subscription_public(session: Session, sub: Subscription) -> dict[str, Any]:
    plan = session.get(Plan, sub.plan_id)
    asset = session.get(Asset, sub.asset_id)
    assert plan is not None
    assert asset is not None
    return {
        "id": sub.id,
        "asset": asset.slug,
        "status": sub.status,
        "period_start": sub.period_start.isoformat() if sub.period_start else None,
        "period_end": sub.period_end.isoformat() if sub.period_end else None,
        "included": plan.included,
        "used": billing.quota_used(session, sub),
        "monthly": plan.monthly,
        "overage": plan.overage,
        "currency": plan.currency,
    }


def charge_row(session: Session, charge: Charge) -> dict[str, Any]:
    asset = session.get(Asset, charge.asset_id)
    consultation = session.get(Consultation, charge.consultation_id)
    return {
        "consultation_id": charge.consultation_id,
        "asset": asset.slug if asset else None,
        # final, abstained, pending_review, corrected or rejected
        "answer_status": consultation.status if consultation else None,
        "amount": charge.amount,
        "fee": charge.fee,
        "currency": charge.currency,
        "source": charge.source,
        "status": charge.status,
        "created_at": charge.created_at.isoformat(),
        "release_after": charge.release_after.isoformat(),
    }


def expert_summary(session: Session, *, account: Account) -> dict[str, Any]:
    """Earnings held in escrow, available, on their way, and paid out; and payouts."""
    held: dict[str, int] = {}
    for charge in session.exec(
        select(Charge).where(
            Charge.expert_id == account.id, col(Charge.status).in_(billing.UNSETTLED)
        )
    ).all():
        held[charge.currency] = held.get(charge.currency, 0) + charge.amount
    balances = ledger.balances(session, prefix=f"expert:{account.id}:")
    recent = session.exec(
        select(Payout)
        .where(Payout.expert_id == account.id)
        .order_by(col(Payout.created_at).desc())
        .limit(20)
    ).all()
    return {
        "held": held,
        "available": _by_currency(balances, ledger.available(account.id)),
        "payout_pending": _by_currency(balances, ledger.payout_pending(account.id)),
        "paid_out": _by_currency(balances, ledger.paid_out(account.id)),
        "payouts": [
            {
                "id": p.id,
                "amount": p.amount,
                "currency": p.currency,
                "status": p.status,
                "transfer_id": p.transfer_id,
                "failure": p.failure,
                "created_at": p.created_at.isoformat(),
            }
            for p in recent
        ],
        "charges": [
            charge_row(session, c) for c in billing.charges_of(session, expert_id=account.id)
        ],
    }


# Statements


def _statement_accounts(session: Session, account: Account) -> list[str]:
    """Ledger account names, or prefixes ending in ':', that are the account's own."""
    if account.role == Role.expert:
        return [
            ledger.available(account.id),
            ledger.payout_pending(account.id),
            ledger.paid_out(account.id),
        ]
    subs = session.exec(select(Subscription.id).where(Subscription.account_id == account.id)).all()
    return [ledger.credits(account.id), *(f"subscription:{s}:" for s in subs)]


def statement(session: Session, *, account: Account, month: str) -> list[StatementLine]:
    """Every ledger entry on the account's own ledger accounts in ``month`` (YYYY-MM), with the
    running balance of that ledger account and currency."""
    names = _statement_accounts(session, account)
    return statements.statement(session, accounts=names, month=month)


# Payouts


def run_payouts(runtime: Runtime, *, expert_id: str | None = None) -> list[Payout]:
    """Start payouts of available earnings, then transfer each pending one through Stripe.

    Without Stripe, for an expert who has not finished onboarding, has not verified their
    e-mail address or is suspended, or when Stripe could not be reached, a payout stays pending
    (its money set aside) and the next run tries it again.
    """
    settings = runtime.settings.billing
    with session_scope(runtime.engine) as session:
        payouts.start_payouts(
            session, minimum=settings.payout_minimum, now=utcnow(), expert_id=expert_id
        )
        pending = [
            p
            for p in payouts.pending_payouts(session)
            if expert_id is None or p.expert_id == expert_id
        ]
        targets = {p.id: payouts.destination(session, p.expert_id) for p in pending}
        for payout in pending:
            expert = session.get(Account, payout.expert_id)
            if expert is None or expert.email_verified_at is None or expert.suspended_at:
                # Money leaves only for a proved address and an account in good standing: the
                # payout stays pending (set aside) until then.
                targets[payout.id] = None
    gateway = runtime.gateway
    for payout in pending:
        target = targets[payout.id]
        if gateway is None or target is None:
            continue
        try:
            transfer_id = gateway.create_transfer(
                amount=payout.amount,
                currency=payout.currency,
                destination=target,
                idempotency_key=f"payout-{payout.id}",
            )
        except GatewayUnavailable as exc:
            # Stripe may have made the transfer: only a retry under the same key can tell.
            log.warning("payout %s stays pending: %s", payout.id, exc.message)
            with session_scope(runtime.engine) as session:
                found = session.get(Payout, payout.id)
                assert found is not None
                payouts.retry_later(session, found, reason=exc.message)
            continue
        except GatewayError as exc:
            with session_scope(runtime.engine) as session:
                found = session.get(Payout, payout.id)
                assert found is not None
                payouts.fail_payout(session, found, reason=exc.message, now=utcnow())
            continue
        with session_scope(runtime.engine) as session:
            found = session.get(Payout, payout.id)
            assert found is not None
            payouts.complete_payout(session, found, transfer_id=transfer_id, now=utcnow())
    with session_scope(runtime.engine) as session:
        ids = [p.id for p in pending]
        return list(session.exec(select(Payout).where(col(Payout.id).in_(ids))).all())
