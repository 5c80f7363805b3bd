"""Paying through Stripe over HTTP: Checkout, Connect onboarding and the webhook's checks."""

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.embeddings import Embedder
from billing import ledger
from billing import service as billing
from billing.models import BillingProfile, CheckoutSession, StripeEvent, Subscription
from core.clock import utcnow
from core.config import Settings
from core.db import session_scope
from tests.factories import Actor, create_test_asset
from tests.stripe_fakes import (
    FakeGateway,
    checkout_session,
    event,
    post_event,
    sign,
    stripe_settings,
)

MONTHLY = billing.PlanTerms(monthly=1500, included=30)


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def runtime(settings: Settings, embedder: Embedder, gateway: FakeGateway) -> Iterator[Runtime]:
    runtime = Runtime(stripe_settings(settings), embedder=embedder, gateway=gateway)
    yield runtime
    runtime.close()


def asset_with_plan(
    runtime: Runtime, owner: Actor, plan: billing.PlanTerms | None, *, published: bool = True
) -> str:
    asset = create_test_asset(runtime, owner=owner.account, published=published)
    if plan is not None:
        with session_scope(runtime.engine) as session:
            billing.set_plan(session, asset_id=asset.id, terms=plan)
    return asset.slug


def nothing_stored(runtime: Runtime) -> bool:
    with Session(runtime.engine) as session:
        return (
            session.exec(select(StripeEvent)).all() == []
            and session.exec(select(CheckoutSession)).all() == []
            and ledger.balances(session) == {}
        )


class TestWithoutStripe:
    @pytest.fixture
    def runtime(self, settings: Settings, embedder: Embedder) -> Iterator[Runtime]:
        runtime = Runtime(settings, embedder=embedder)
        yield runtime
        runtime.close()

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/billing/checkout/credits", {"amount": 2000}),
            ("/v1/assets/garden/checkout", None),
            ("/v1/billing/connect", None),
        ],
    )
    async def test_payments_answer_409_pointing_at_credit_grants(
        self, client: httpx.AsyncClient, client_user: Actor, path: str, body: dict[str, int] | None
    ) -> None:
        response = await client.post(path, json=body, headers=client_user.headers)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "PaymentsNotConfigured"
        detail = response.json()["detail"]
        assert "payments are not configured" in detail
        assert "vouch credits grant" in detail

    async def test_webhook_answers_409_and_stores_nothing(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        completed = event(
            "checkout.session.completed",
            checkout_session(metadata={"account_id": "acc_x"}, amount=100),
        )
        response = await post_event(client, completed)
        assert response.status_code == 409
        assert nothing_stored(runtime)


class TestCreditsCheckout:
    async def test_checkout_gives_stripe_url_and_records_the_session(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
    ) -> None:
        response = await client.post(
            "/v1/billing/checkout/credits", json={"amount": 2500}, headers=client_user.headers
        )
        assert response.status_code == 200, response.text
        (session_id,) = gateway.checkouts
        assert response.json() == {
            "checkout_url": f"https://checkout.stripe.test/c/pay/{session_id}"
        }
        (created,) = gateway.called("create_checkout_session")
        assert created["mode"] == "payment"
        assert (created["amount"], created["currency"]) == (2500, "usd")
        assert created["metadata"] == {"purpose": "credits", "account_id": client_user.account.id}
        assert created["success_url"].startswith("http://vouch.test/")
        with Session(runtime.engine) as session:
            row = session.get(CheckoutSession, session_id)
            assert row is not None
            assert (row.account_id, row.mode, row.amount, row.status) == (
                client_user.account.id,
                "payment",
                2500,
                "open",
            )
            profile = session.get(BillingProfile, client_user.account.id)
            assert profile is not None
            assert profile.stripe_customer_id == created["customer"]
            # Credits come with Stripe's webhook, not with the checkout.
            assert ledger.balances(session) == {}

    @pytest.mark.both_databases
    async def test_second_checkout_reuses_the_customer(
        self, client: httpx.AsyncClient, gateway: FakeGateway, client_user: Actor
    ) -> None:
        for _ in range(2):
            response = await client.post(
                "/v1/billing/checkout/credits",
                json={"amount": 1000, "currency": "EUR"},
                headers=client_user.headers,
            )
            assert response.status_code == 200, response.text
        assert len(gateway.called("create_customer")) == 1
        assert len(gateway.checkouts) == 2
        assert {c["currency"] for c in gateway.called("create_checkout_session")} == {"eur"}

    @pytest.mark.parametrize("amount", [0, 49, 10**12])
    async def test_amount_out_of_range_is_refused_before_stripe(
        self, client: httpx.AsyncClient, gateway: FakeGateway, client_user: Actor, amount: int
    ) -> None:
        response = await client.post(
            "/v1/billing/checkout/credits", json={"amount": amount}, headers=client_user.headers
        )
        assert response.status_code == 422
        assert gateway.calls == []

    async def test_only_clients_buy_credits(
        self, client: httpx.AsyncClient, gateway: FakeGateway, expert: Actor
    ) -> None:
        response = await client.post(
            "/v1/billing/checkout/credits", json={"amount": 1000}, headers=expert.headers
        )
        assert response.status_code == 403
        assert gateway.calls == []

    @pytest.mark.both_databases
    async def test_stripe_failure_is_502_and_saves_nothing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
    ) -> None:
        gateway.failures["create_checkout_session"] = "the API is down"
        response = await client.post(
            "/v1/billing/checkout/credits", json={"amount": 1000}, headers=client_user.headers
        )
        assert response.status_code == 502
        assert response.json()["error"] == "GatewayError"
        assert "the API is down" in response.json()["detail"]
        assert nothing_stored(runtime)


class TestSubscriptionCheckout:
    async def test_checkout_creates_an_incomplete_subscription(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
    ) -> None:
        slug = asset_with_plan(runtime, expert, MONTHLY)
        response = await client.post(f"/v1/assets/{slug}/checkout", headers=client_user.headers)
        assert response.status_code == 200, response.text
        assert response.json()["checkout_url"].startswith("https://checkout.stripe.test/")

        (created,) = gateway.called("create_checkout_session")
        assert (created["mode"], created["amount"], created["currency"]) == (
            "subscription",
            1500,
            "usd",
        )
        meta = created["metadata"]
        with Session(runtime.engine) as session:
            sub = session.get(Subscription, meta["subscription_id"])
            assert sub is not None
            assert sub.status == "incomplete"
            assert sub.stripe_subscription_id is None
            assert meta == {
                "purpose": "subscription",
                "account_id": client_user.account.id,
                "asset_id": sub.asset_id,
                "plan_id": sub.plan_id,
                "expert_id": expert.account.id,
                "subscription_id": sub.id,
            }
            (row,) = session.exec(select(CheckoutSession)).all()
            assert (row.mode, row.asset_id, row.plan_id) == (
                "subscription",
                sub.asset_id,
                sub.plan_id,
            )
        assert created["idempotency_key"].endswith(meta["subscription_id"])

    @pytest.mark.parametrize("plan", [None, billing.PlanTerms(per_query=25)])
    async def test_asset_without_monthly_price_is_refused(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
        plan: billing.PlanTerms | None,
    ) -> None:
        slug = asset_with_plan(runtime, expert, plan)
        response = await client.post(f"/v1/assets/{slug}/checkout", headers=client_user.headers)
        assert response.status_code == 409
        assert response.json() == {
            "error": "NoMonthlyPlan",
            "detail": f"{slug} has no monthly plan: pay per question with credits",
        }
        assert gateway.calls == []

    async def test_client_cannot_checkout_an_unpublished_asset(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
    ) -> None:
        slug = asset_with_plan(runtime, expert, MONTHLY, published=False)
        response = await client.post(f"/v1/assets/{slug}/checkout", headers=client_user.headers)
        assert response.status_code == 404
        assert gateway.calls == []
        with Session(runtime.engine) as session:
            assert session.exec(select(Subscription)).all() == []

    async def test_active_subscriber_is_refused(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
    ) -> None:
        asset = create_test_asset(runtime, owner=expert.account)
        with session_scope(runtime.engine) as session:
            billing.set_plan(session, asset_id=asset.id, terms=MONTHLY)
            billing.grant_credits(
                session, account_id=client_user.account.id, amount=1500, currency="usd", key="g"
            )
            billing.subscribe_with_credits(
                session,
                account_id=client_user.account.id,
                asset_id=asset.id,
                expert_id=expert.account.id,
                now=utcnow(),
            )
        response = await client.post(
            f"/v1/assets/{asset.slug}/checkout", headers=client_user.headers
        )
        assert response.status_code == 409
        assert response.json()["error"] == "AlreadySubscribed"
        assert gateway.called("create_checkout_session") == []


class TestConnect:
    @pytest.mark.both_databases
    async def test_connect_account_is_created_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
    ) -> None:
        urls = []
        for _ in range(2):
            response = await client.post("/v1/billing/connect", headers=expert.headers)
            assert response.status_code == 200, response.text
            urls.append(response.json()["onboarding_url"])
        (account_id,) = gateway.connect_accounts
        assert all(
            url.startswith(f"https://connect.stripe.test/setup/e/{account_id}/") for url in urls
        )
        assert len(gateway.called("create_connect_account")) == 1
        links = gateway.called("create_account_link")
        assert len(links) == 2
        assert links[0]["return_url"].startswith("http://vouch.test/")
        with Session(runtime.engine) as session:
            profile = session.get(BillingProfile, expert.account.id)
            assert profile is not None
            assert profile.connect_account_id == account_id
            assert profile.payouts_enabled is False  # until Stripe says so (account.updated)

    async def test_only_experts_onboard(
        self, client: httpx.AsyncClient, gateway: FakeGateway, client_user: Actor
    ) -> None:
        response = await client.post("/v1/billing/connect", headers=client_user.headers)
        assert response.status_code == 403
        assert gateway.calls == []


class TestWebhookSignature:
    def _payload(self, account_id: str) -> bytes:
        meta = {"purpose": "credits", "account_id": account_id}
        completed = event(
            "checkout.session.completed", checkout_session(metadata=meta, amount=5000)
        )
        return json.dumps(completed).encode()

    @pytest.mark.parametrize("attack", ["tampered", "wrong_secret", "no_header", "stale"])
    async def test_bad_signature_is_400_and_nothing_is_stored(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, attack: str
    ) -> None:
        payload = self._payload(client_user.account.id)
        headers = {"Stripe-Signature": sign(payload)}
        if attack == "tampered":
            payload = payload.replace(b'"amount_total": 5000', b'"amount_total": 500000')
        elif attack == "wrong_secret":
            headers = {"Stripe-Signature": sign(payload, secret="whsec_someone_else")}
        elif attack == "no_header":
            headers = {}
        else:
            headers = {"Stripe-Signature": sign(payload, timestamp=int(time.time()) - 3600)}
        response = await client.post("/v1/stripe/webhook", content=payload, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "WebhookInvalid"
        assert nothing_stored(runtime)

    async def test_good_signature_is_received(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        payload = self._payload(client_user.account.id)
        response = await client.post(
            "/v1/stripe/webhook", content=payload, headers={"Stripe-Signature": sign(payload)}
        )
        assert response.status_code == 200
        assert response.json() == {"received": True, "duplicate": False}
        with Session(runtime.engine) as session:
            credits = ledger.credits(client_user.account.id)
            assert ledger.balance(session, credits, "usd") == 5000
