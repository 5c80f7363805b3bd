"""Paying through Stripe: Checkout for credits and subscriptions, Connect onboarding for
experts, and the webhook intake.

Stripe is called before anything is written, so that on SQLite the database's write lock is not
held across a network call; the rows follow in the request's transaction. If that transaction
fails after Stripe answered, nothing is lost: the metadata put on every checkout lets the
webhook handlers credit the client and create the subscription on their own.
"""

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.accounts import ensure_verified, viewer_of
from app.models import Account, Role
from app.runtime import Runtime
from assets.service import get_visible_asset
from billing import service as billing
from billing import webhooks
from billing.errors import AlreadySubscribed, InvalidAmount, NoMonthlyPlan, PaymentsNotConfigured
from billing.gateway import Gateway
from billing.models import BillingProfile, CheckoutSession, Subscription, SubscriptionStatus
from core.clock import utcnow
from core.errors import Forbidden
from core.ids import new_id

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "payments are not configured on this server (no Stripe key): credits are granted by an "
    "admin with `vouch credits grant`"
)
# Where Stripe sends people back to, under BillingSettings.public_url.
CREDITS_RETURN = "/billing"
CONNECT_RETURN = "/billing"
# Stripe's smallest charge is about 0.50 in most currencies.
MIN_CREDITS = 50


def _gateway(runtime: Runtime) -> Gateway:
    gateway = runtime.gateway
    if gateway is None:
        raise PaymentsNotConfigured(NOT_CONFIGURED)
    return gateway


def _customer(session: Session, gateway: Gateway, account: Account) -> str:
    """The account's Stripe customer, created at Stripe (once per account) if need be."""
    profile = session.get(BillingProfile, account.id)
    if profile is not None and profile.stripe_customer_id:
        return profile.stripe_customer_id
    # Keyed by the account at Stripe, so two concurrent requests get the same customer.
    return gateway.create_customer(email=account.email, name=account.name, account_id=account.id)


def _save_profile(session: Session, account_id: str, **fields: Any) -> None:
    """Set Stripe ids on the account's billing profile, creating it if need be."""
    profile = session.get(BillingProfile, account_id)
    if profile is None:
        try:
            with session.begin_nested():
                session.add(BillingProfile(account_id=account_id, **fields))
                session.flush()
            return
        except IntegrityError:  # a concurrent request created it first
            profile = session.get(BillingProfile, account_id)
            assert profile is not None
    for name, value in fields.items():
        setattr(profile, name, value)
    session.add(profile)
    session.flush()


def _return_url(runtime: Runtime, path: str, outcome: str) -> str:
    base = runtime.settings.billing.public_url.rstrip("/")
    return f"{base}{path}?checkout={outcome}"


def checkout_credits(
    session: Session, runtime: Runtime, *, account: Account, amount: int, currency: str | None
) -> str:
    """Start a Stripe Checkout that buys ``amount`` of credits; returns its payment page."""
    gateway = _gateway(runtime)
    if account.role != Role.client:
        raise Forbidden("only client accounts buy credits")
    currency = (currency or runtime.settings.billing.currency).lower()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidAmount(f"currency {currency!r} is not a three-letter ISO code")
    if not MIN_CREDITS <= amount <= billing.MAX_AMOUNT:
        raise InvalidAmount(
            f"buy at least {billing.money(MIN_CREDITS, currency)} of credits "
            f"(the amount is in cents: {amount} is {billing.money(amount, currency)})"
        )
    customer = _customer(session, gateway, account)
    link = gateway.create_checkout_session(
        mode="payment",
        customer=customer,
        amount=amount,
        currency=currency,
        product_name=f"Vouch credits: {billing.money(amount, currency)}",
        success_url=_return_url(runtime, CREDITS_RETURN, "done"),
        cancel_url=_return_url(runtime, CREDITS_RETURN, "canceled"),
        metadata={"purpose": "credits", "account_id": account.id},
        idempotency_key=f"vouch-checkout-{new_id('buy')}",
    )
    _save_profile(session, account.id, stripe_customer_id=customer)
    session.add(
        CheckoutSession(
            id=link.id,
            account_id=account.id,
            mode="payment",
            amount=amount,
            currency=currency,
            url=link.url,
        )
    )
    session.flush()
    return link.url


def checkout_milestone(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    milestone_id: str,
    amount: int,
    currency: str,
    title: str,
    return_path: str,
) -> str:
    """Start a Stripe Checkout paying one engagement milestone into its escrow; the webhook
    funds it (``purpose: milestone``). The caller checks that the milestone can be funded."""
    gateway = _gateway(runtime)
    if amount < MIN_CREDITS:
        raise InvalidAmount(
            f"Stripe's smallest payment is {billing.money(MIN_CREDITS, currency)}: "
            "fund this milestone with credits"
        )
    customer = _customer(session, gateway, account)
    link = gateway.create_checkout_session(
        mode="payment",
        customer=customer,
        amount=amount,
        currency=currency,
        product_name=f"Vouch engagement milestone: {title}"[:250],
        success_url=_return_url(runtime, return_path, "done"),
        cancel_url=_return_url(runtime, return_path, "canceled"),
        metadata={"purpose": "milestone", "account_id": account.id, "milestone_id": milestone_id},
        idempotency_key=f"vouch-checkout-{new_id('buy')}",
    )
    _save_profile(session, account.id, stripe_customer_id=customer)
    session.add(
        CheckoutSession(
            id=link.id,
            account_id=account.id,
            mode="payment",
            amount=amount,
            currency=currency,
            url=link.url,
        )
    )
    session.flush()
    return link.url


def checkout_subscription(
    session: Session, runtime: Runtime, *, account: Account, slug: str
) -> str:
    """Start a Stripe Checkout for a monthly subscription to the asset's current plan."""
    gateway = _gateway(runtime)
    asset = get_visible_asset(session, viewer=viewer_of(account), slug=slug)
    if account.role != Role.client:
        raise Forbidden("only client accounts subscribe")
    plan = billing.current_plan(session, asset.id)
    if plan is None or plan.monthly is None:
        raise NoMonthlyPlan(f"{slug} has no monthly plan: pay per question with credits")
    if billing.active_subscription(session, account_id=account.id, asset_id=asset.id, now=utcnow()):
        raise AlreadySubscribed("you already have an active subscription to this asset")
    customer = _customer(session, gateway, account)
    sub_id = new_id("sub")
    link = gateway.create_checkout_session(
        mode="subscription",
        customer=customer,
        amount=plan.monthly,
        currency=plan.currency,
        product_name=f"{asset.title}: {plan.included} questions a month",
        success_url=_return_url(runtime, f"/assets/{asset.slug}", "done"),
        cancel_url=_return_url(runtime, f"/assets/{asset.slug}", "canceled"),
        metadata={
            "purpose": "subscription",
            "account_id": account.id,
            "asset_id": asset.id,
            "plan_id": plan.id,
            "expert_id": asset.owner_id,
            "subscription_id": sub_id,
        },
        idempotency_key=f"vouch-checkout-{sub_id}",
    )
    _save_profile(session, account.id, stripe_customer_id=customer)
    session.add(
        Subscription(
            id=sub_id,
            account_id=account.id,
            asset_id=asset.id,
            expert_id=asset.owner_id,
            plan_id=plan.id,
            status=SubscriptionStatus.incomplete,
        )
    )
    session.flush()
    session.add(
        CheckoutSession(
            id=link.id,
            account_id=account.id,
            mode="subscription",
            amount=plan.monthly,
            currency=plan.currency,
            asset_id=asset.id,
            plan_id=plan.id,
            url=link.url,
        )
    )
    session.flush()
    return link.url


def connect_onboarding(session: Session, runtime: Runtime, *, account: Account) -> str:
    """A Stripe onboarding link for the expert's Connect account (created once) for payouts."""
    gateway = _gateway(runtime)
    if account.role != Role.expert:
        raise Forbidden("only experts are paid out")
    ensure_verified(account, "set up payouts")
    profile = session.get(BillingProfile, account.id)
    connect_id = profile.connect_account_id if profile else None
    if connect_id is None:
        connect_id = gateway.create_connect_account(
            email=account.email,
            account_id=account.id,
            idempotency_key=f"vouch-connect-{account.id}",
        )
    base = runtime.settings.billing.public_url.rstrip("/")
    url = gateway.create_account_link(
        account=connect_id,
        refresh_url=f"{base}{CONNECT_RETURN}?connect=refresh",
        return_url=f"{base}{CONNECT_RETURN}?connect=done",
    )
    _save_profile(session, account.id, connect_account_id=connect_id)
    return url


def receive_webhook(
    session: Session, runtime: Runtime, *, payload: bytes, signature: str | None
) -> bool:
    """Verify and apply a Stripe webhook; False when the event was received before."""
    event = _gateway(runtime).parse_event(payload, signature)
    new = webhooks.receive(session, event=event)
    if new:
        # Registered by the entry point (app.wiring): engagements, which starts its milestone
        # checkouts through this module, funds a milestone paid by card.
        for handle in runtime.stripe_handlers:
            handle(session, runtime, event)
    log.info("stripe event %s %s%s", event["type"], event["id"], "" if new else " (replay)")
    return new
