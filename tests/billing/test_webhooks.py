"""Stripe webhooks, signed and posted to the app: each moves money once, in any order."""

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.embeddings import Embedder
from billing import ledger, webhooks
from billing import service as billing
from billing.ledger import Move
from billing.models import (
    BillingProfile,
    CheckoutSession,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)
from core.config import Settings
from core.db import session_scope
from tests.factories import Actor, create_test_asset
from tests.stripe_fakes import (
    FakeGateway,
    charge,
    checkout_session,
    connect_account,
    event,
    invoice,
    post_event,
    stripe_settings,
    subscription,
)

pytestmark = pytest.mark.both_databases

T = 1_800_000_000  # a fixed "now" for the events' created times
MONTH = 30 * 86400


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def runtime(settings: Settings, embedder: Embedder, gateway: FakeGateway) -> Iterator[Runtime]:
    runtime = Runtime(stripe_settings(settings), embedder=embedder, gateway=gateway)
    yield runtime
    runtime.close()


def balance(runtime: Runtime, account: str) -> int:
    with Session(runtime.engine) as session:
        return ledger.balance(session, account, "usd")


def paid_periods(runtime: Runtime, sub_id: str) -> dict[float, int]:
    """The money of each period of a subscription, by the period's end (epoch seconds)."""
    prefix = ledger.subscription(sub_id, datetime.now(UTC)).rsplit(":", 1)[0] + ":"
    with Session(runtime.engine) as session:
        balances = ledger.balances(session, prefix=prefix)
    return {ledger.subscription_period_end(a).timestamp(): v for (a, _), v in balances.items()}


def stored_events(runtime: Runtime) -> list[StripeEvent]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(StripeEvent)).all())


async def deliver(client: httpx.AsyncClient, *events: dict[str, Any]) -> list[bool]:
    """Post each event; the duplicate flag of each answer."""
    flags = []
    for evt in events:
        response = await post_event(client, evt)
        assert response.status_code == 200, response.text
        assert response.json()["received"] is True
        flags.append(response.json()["duplicate"])
    return flags


class TestCreditPurchase:
    async def _checkout(
        self, client: httpx.AsyncClient, gateway: FakeGateway, buyer: Actor, amount: int
    ) -> str:
        response = await client.post(
            "/v1/billing/checkout/credits", json={"amount": amount}, headers=buyer.headers
        )
        assert response.status_code == 200, response.text
        return next(reversed(gateway.checkouts))

    async def test_purchase_adds_credits_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
    ) -> None:
        session_id = await self._checkout(client, gateway, client_user, 2000)
        meta = gateway.checkouts[session_id]["metadata"]
        completed = event(
            "checkout.session.completed",
            checkout_session(session_id=session_id, metadata=meta, amount=2000),
        )

        assert await deliver(client, completed) == [False]
        assert balance(runtime, ledger.credits(client_user.account.id)) == 2000
        assert balance(runtime, ledger.CASH) == -2000
        with Session(runtime.engine) as session:
            row = session.get(CheckoutSession, session_id)
            assert row is not None
            assert row.status == "completed"

        # A replay (same event id) changes nothing; so does the same payment in a new event.
        again = event("checkout.session.async_payment_succeeded", completed["data"]["object"])
        assert await deliver(client, completed, again) == [True, False]
        assert balance(runtime, ledger.credits(client_user.account.id)) == 2000
        assert len(stored_events(runtime)) == 2
        assert all(e.handled_at is not None for e in stored_events(runtime))

    async def test_async_payment_credits_when_it_succeeds(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        meta = {"purpose": "credits", "account_id": client_user.account.id}
        unpaid = checkout_session(metadata=meta, amount=700, payment_status="unpaid")
        await deliver(client, event("checkout.session.completed", unpaid))
        assert balance(runtime, ledger.credits(client_user.account.id)) == 0

        paid = {**unpaid, "payment_status": "paid"}
        await deliver(client, event("checkout.session.async_payment_succeeded", paid, created=T))
        assert balance(runtime, ledger.credits(client_user.account.id)) == 700

    async def test_unknown_event_is_stored_and_handled_without_effect(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        assert await deliver(client, event("product.created", {"id": "prod_1"})) == [False]
        (stored,) = stored_events(runtime)
        assert (stored.type, stored.handled_at is not None) == ("product.created", True)
        with Session(runtime.engine) as session:
            assert ledger.balances(session) == {}

    def test_receive_returns_false_for_a_replay(self, runtime: Runtime, client_user: Actor) -> None:
        meta = {"purpose": "credits", "account_id": client_user.account.id}
        completed = event("checkout.session.completed", checkout_session(metadata=meta, amount=900))
        with session_scope(runtime.engine) as session:
            assert webhooks.receive(session, event=completed) is True
        with session_scope(runtime.engine) as session:
            assert webhooks.receive(session, event=completed) is False
        assert balance(runtime, ledger.credits(client_user.account.id)) == 900


class TestRefunds:
    AMOUNT = 2000

    def _purchase(self, buyer: Actor) -> tuple[dict[str, Any], dict[str, str]]:
        meta = {"purpose": "credits", "account_id": buyer.account.id}
        completed = event(
            "checkout.session.completed",
            checkout_session(metadata=meta, amount=self.AMOUNT, payment_intent="pi_refund"),
        )
        return completed, meta

    def _refunded(self, meta: dict[str, str], amount_refunded: int) -> dict[str, Any]:
        return event(
            "charge.refunded",
            charge(
                metadata=meta,
                amount=self.AMOUNT,
                amount_refunded=amount_refunded,
                payment_intent="pi_refund",
                charge_id="ch_refund",
            ),
        )

    async def test_refund_takes_back_unspent_credits(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        completed, meta = self._purchase(client_user)
        await deliver(client, completed, self._refunded(meta, self.AMOUNT))
        assert balance(runtime, ledger.credits(client_user.account.id)) == 0
        assert balance(runtime, ledger.REFUNDS) == self.AMOUNT
        assert balance(runtime, ledger.LOSSES) == 0

    @pytest.mark.parametrize("order", ["in_order", "newest_first"])
    async def test_partial_refunds_count_once_each(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, order: str
    ) -> None:
        completed, meta = self._purchase(client_user)
        first, second = self._refunded(meta, 500), self._refunded(meta, 1200)
        refunds = [first, second] if order == "in_order" else [second, first]
        await deliver(client, completed, *refunds)
        # Replayed, and the older total resent as a new event: nothing more moves.
        await deliver(client, first, self._refunded(meta, 500))
        assert balance(runtime, ledger.credits(client_user.account.id)) == 800
        assert balance(runtime, ledger.REFUNDS) == 1200

    async def test_refund_of_spent_credits_never_makes_credits_negative(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        completed, meta = self._purchase(client_user)
        await deliver(client, completed)
        credits = ledger.credits(client_user.account.id)
        with session_scope(runtime.engine) as session:  # 1500 spent on answers
            ledger.post(
                session,
                key="spent",
                kind="test",
                currency="usd",
                moves=[Move(credits, ledger.escrow("chg_spent"), 1500)],
            )

        await deliver(client, self._refunded(meta, 1000))
        assert balance(runtime, credits) == 0
        assert balance(runtime, ledger.LOSSES) == -500
        await deliver(client, self._refunded(meta, self.AMOUNT))
        assert balance(runtime, credits) == 0
        assert balance(runtime, ledger.REFUNDS) == self.AMOUNT
        assert balance(runtime, ledger.LOSSES) == -1500
        with Session(runtime.engine) as session:
            assert ledger.unbalanced_transactions(session) == []

    async def test_refund_before_purchase_waits_for_it(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        completed, meta = self._purchase(client_user)
        refunded = self._refunded(meta, 600)
        await deliver(client, refunded)
        assert balance(runtime, ledger.REFUNDS) == 0
        (waiting,) = stored_events(runtime)
        assert waiting.handled_at is None

        await deliver(client, completed)
        assert balance(runtime, ledger.credits(client_user.account.id)) == self.AMOUNT - 600
        assert balance(runtime, ledger.REFUNDS) == 600
        assert all(e.handled_at is not None for e in stored_events(runtime))

    async def test_refund_of_a_charge_that_is_not_a_credits_purchase_changes_nothing(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        await deliver(client, self._refunded({}, 300))
        assert balance(runtime, ledger.REFUNDS) == 0
        assert all(e.handled_at is not None for e in stored_events(runtime))


@pytest.fixture
def monthly_asset(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    with session_scope(runtime.engine) as session:
        billing.set_plan(
            session, asset_id=asset.id, terms=billing.PlanTerms(monthly=1500, included=30)
        )
    return asset.slug


async def start_subscription(
    client: httpx.AsyncClient, gateway: FakeGateway, buyer: Actor, slug: str
) -> tuple[str, dict[str, str]]:
    """Checkout through the app: our subscription row (incomplete) and Stripe's metadata."""
    response = await client.post(f"/v1/assets/{slug}/checkout", headers=buyer.headers)
    assert response.status_code == 200, response.text
    session_id = next(reversed(gateway.checkouts))
    return session_id, gateway.checkouts[session_id]["metadata"]


def subscriptions_of(runtime: Runtime, actor: Actor) -> list[Subscription]:
    with Session(runtime.engine) as session:
        return list(
            session.exec(
                select(Subscription).where(Subscription.account_id == actor.account.id)
            ).all()
        )


class TestSubscriptionEvents:
    PERIOD = (T, T + MONTH)

    def _signup(self, session_id: str, meta: dict[str, str]) -> list[dict[str, Any]]:
        """What Stripe sends when a subscription checkout is paid, in the order it sends it."""
        stripe_id = "sub_stripe_1"
        return [
            event(
                "customer.subscription.created",
                subscription(
                    subscription_id=stripe_id,
                    metadata=meta,
                    status="incomplete",
                    period=self.PERIOD,
                ),
                created=T,
            ),
            event(
                "checkout.session.completed",
                checkout_session(
                    session_id=session_id,
                    metadata=meta,
                    amount=1500,
                    mode="subscription",
                    subscription=stripe_id,
                ),
                created=T + 1,
            ),
            event(
                "invoice.paid",
                invoice(
                    subscription=stripe_id, metadata=meta, amount_paid=1500, period=self.PERIOD
                ),
                created=T + 1,
            ),
            event(
                "customer.subscription.updated",
                subscription(
                    subscription_id=stripe_id, metadata=meta, status="active", period=self.PERIOD
                ),
                created=T + 2,
            ),
        ]

    @pytest.mark.parametrize("order", ["sent", "reversed", "shuffled"])
    async def test_signup_in_any_order_ends_active_and_paid_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        monthly_asset: str,
        order: str,
    ) -> None:
        session_id, meta = await start_subscription(client, gateway, client_user, monthly_asset)
        events = self._signup(session_id, meta)
        if order == "reversed":
            events.reverse()
        elif order == "shuffled":
            random.Random(7).shuffle(events)
        await deliver(client, *events)
        await deliver(client, *events)  # every one replayed

        (sub,) = subscriptions_of(runtime, client_user)
        assert sub.id == meta["subscription_id"]
        assert sub.status == SubscriptionStatus.active
        assert sub.stripe_subscription_id == "sub_stripe_1"
        assert sub.period_start is not None
        assert sub.period_end is not None
        assert (sub.period_start.timestamp(), sub.period_end.timestamp()) == self.PERIOD
        assert paid_periods(runtime, sub.id) == {self.PERIOD[1]: 1500}
        with Session(runtime.engine) as session:
            row = session.get(CheckoutSession, session_id)
            assert row is not None
            assert row.status == "completed"

    async def test_events_create_the_subscription_when_our_row_is_missing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        monthly_asset: str,
    ) -> None:
        _, meta = await start_subscription(client, gateway, client_user, monthly_asset)
        # As if the checkout's transaction had failed after Stripe created the session.
        lost = {**meta, "subscription_id": "sub_lost"}
        events = self._signup("cs_unknown", lost)
        await deliver(client, *reversed(events))

        sub = next(s for s in subscriptions_of(runtime, client_user) if s.id == "sub_lost")
        assert (sub.status, sub.asset_id, sub.plan_id) == (
            "active",
            meta["asset_id"],
            meta["plan_id"],
        )
        assert sub.expert_id == meta["expert_id"]
        assert sum(paid_periods(runtime, "sub_lost").values()) == 1500

    async def test_renewal_moves_the_period_and_a_late_older_update_does_not_undo_it(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        monthly_asset: str,
    ) -> None:
        session_id, meta = await start_subscription(client, gateway, client_user, monthly_asset)
        signup = self._signup(session_id, meta)
        next_period = (T + MONTH, T + 2 * MONTH)
        renewal = event(
            "invoice.paid",
            invoice(
                subscription="sub_stripe_1", metadata=meta, amount_paid=1500, period=next_period
            ),
            created=T + MONTH,
        )
        # The renewal arrives first; the sign-up's events come late.
        await deliver(client, renewal, *signup)

        (sub,) = subscriptions_of(runtime, client_user)
        assert sub.period_end is not None
        assert sub.period_end.timestamp() == next_period[1]
        assert sub.status == "active"
        # Each period's money stays in its own account: the renewal never mixes with the
        # sign-up's period, which is settled to the expert when it ends.
        assert paid_periods(runtime, sub.id) == {T + MONTH: 1500, next_period[1]: 1500}

    @pytest.mark.parametrize("newest_first", [False, True])
    async def test_older_status_event_does_not_undo_a_newer_one(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        monthly_asset: str,
        newest_first: bool,
    ) -> None:
        session_id, meta = await start_subscription(client, gateway, client_user, monthly_asset)
        await deliver(client, *self._signup(session_id, meta))
        failed = event(
            "invoice.payment_failed",
            invoice(
                subscription="sub_stripe_1",
                metadata=meta,
                amount_paid=1500,
                period=(T + MONTH, T + 2 * MONTH),
                status="open",
            ),
            created=T + MONTH,
        )
        older = event(
            "customer.subscription.updated",
            subscription(
                subscription_id="sub_stripe_1", metadata=meta, status="active", period=self.PERIOD
            ),
            created=T + 100,
        )
        await deliver(client, *([failed, older] if newest_first else [older, failed]))
        (sub,) = subscriptions_of(runtime, client_user)
        assert sub.status == SubscriptionStatus.past_due
        assert sum(paid_periods(runtime, sub.id).values()) == 1500  # a failure moves nothing

    @pytest.mark.parametrize("deleted_first", [False, True])
    async def test_cancellation_is_final(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        monthly_asset: str,
        deleted_first: bool,
    ) -> None:
        session_id, meta = await start_subscription(client, gateway, client_user, monthly_asset)
        signup = self._signup(session_id, meta)
        deleted = event(
            "customer.subscription.deleted",
            subscription(
                subscription_id="sub_stripe_1", metadata=meta, status="canceled", period=self.PERIOD
            ),
            created=T + 10,
        )
        await deliver(client, *([deleted, *signup] if deleted_first else [*signup, deleted]))
        (sub,) = subscriptions_of(runtime, client_user)
        assert sub.status == SubscriptionStatus.canceled
        assert sum(paid_periods(runtime, sub.id).values()) == 1500


class TestConnect:
    async def _onboard(self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor) -> str:
        response = await client.post("/v1/billing/connect", headers=expert.headers)
        assert response.status_code == 200, response.text
        with Session(runtime.engine) as session:
            profile = session.get(BillingProfile, expert.account.id)
            assert profile is not None
            assert profile.connect_account_id is not None
            return profile.connect_account_id

    @pytest.mark.parametrize("newest_first", [False, True])
    async def test_account_updated_sets_payouts_enabled_from_the_newest_event(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, newest_first: bool
    ) -> None:
        connect_id = await self._onboard(client, runtime, expert)
        meta = {"account_id": expert.account.id}
        older = event(
            "account.updated",
            connect_account(account_id=connect_id, metadata=meta, enabled=False),
            created=T,
        )
        newer = event(
            "account.updated",
            connect_account(account_id=connect_id, metadata=meta, enabled=True),
            created=T + 60,
        )
        await deliver(client, *([newer, older] if newest_first else [older, newer]))
        with Session(runtime.engine) as session:
            profile = session.get(BillingProfile, expert.account.id)
            assert profile is not None
            assert profile.payouts_enabled is True

    async def test_account_updated_for_an_unknown_account_changes_nothing(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        unknown = connect_account(account_id="acct_x", metadata={}, enabled=True)
        await deliver(client, event("account.updated", unknown))
        with Session(runtime.engine) as session:
            assert session.exec(select(BillingProfile)).all() == []
