"""Payouts: an expert's available earnings leave by Stripe transfer, or wait as pending."""

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from app.accounting import run_payouts
from app.runtime import Runtime
from assets.embeddings import Embedder
from billing import ledger
from billing import service as billing
from billing.models import BillingProfile, Payout
from core.config import Settings
from core.db import session_scope
from core.ids import new_id
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path
from tests.stripe_fakes import FakeGateway, stripe_settings

pytestmark = pytest.mark.both_databases

# 15.00 a question: 12.00 to the expert after the 20% fee, above the 10.00 payout minimum.
PRICE = 1500
EARNED = 1200


@pytest.fixture
async def garden(client: httpx.AsyncClient, runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    await set_price(client, expert, asset.slug, PRICE)
    return asset.slug


async def earn(
    client: httpx.AsyncClient, runtime: Runtime, buyer: Actor, slug: str, *, price: int = PRICE
) -> None:
    """The client is granted ``price`` in credits, buys one answer and accepts it: the expert's
    share (80%) is available now."""
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=buyer.account.id, amount=price, currency="usd", key=new_id("grant")
        )
    asked = await client.post(
        f"/v1/assets/{slug}/ask",
        json={"question": "How long does a refund take?"},
        headers=buyer.headers,
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["charge"]["amount"] == price
    consultation = asked.json()["consultation_id"]
    accepted = await client.post(f"/v1/consultations/{consultation}/accept", headers=buyer.headers)
    assert accepted.json()["status"] == "released", accepted.text


async def set_price(client: httpx.AsyncClient, expert: Actor, slug: str, per_query: int) -> None:
    response = await client.put(
        f"/v1/assets/{slug}/plan", json={"per_query": per_query}, headers=expert.headers
    )
    assert response.status_code == 200, response.text


def money_of(runtime: Runtime, expert: Actor) -> tuple[int, int, int]:
    """The expert's (available, payout pending, paid out), in cents."""
    expert_id = expert.account.id
    with Session(runtime.engine) as session:
        assert ledger.unbalanced_transactions(session) == []
        return (
            ledger.balance(session, ledger.available(expert_id), "usd"),
            ledger.balance(session, ledger.payout_pending(expert_id), "usd"),
            ledger.balance(session, ledger.paid_out(expert_id), "usd"),
        )


def payouts_of(runtime: Runtime) -> list[Payout]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Payout)).all())


def onboard(runtime: Runtime, expert: Actor) -> None:
    with session_scope(runtime.engine) as session:
        session.add(
            BillingProfile(
                account_id=expert.account.id, connect_account_id="acct_x", payouts_enabled=True
            )
        )


class TestWithoutStripe:
    async def test_payout_stays_pending_with_the_money_set_aside(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        assert runtime.gateway is None
        await earn(client, runtime, client_user, garden)
        assert money_of(runtime, expert) == (EARNED, 0, 0)
        [payout] = run_payouts(runtime)
        assert (payout.expert_id, payout.amount, payout.currency, payout.status) == (
            expert.account.id,
            EARNED,
            "usd",
            "pending",
        )
        assert money_of(runtime, expert) == (0, EARNED, 0)
        # The next run retries the same payout: nothing is set aside or paid twice.
        again = run_payouts(runtime)
        assert [(p.id, p.status) for p in again] == [(payout.id, "pending")]
        assert len(payouts_of(runtime)) == 1
        assert money_of(runtime, expert) == (0, EARNED, 0)

    async def test_earnings_below_the_minimum_wait_for_the_next_run(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        await set_price(client, expert, garden, 1000)
        await earn(client, runtime, client_user, garden, price=1000)
        # 8.00 is under the 10.00 minimum: no payout, the money stays available.
        assert run_payouts(runtime) == []
        assert payouts_of(runtime) == []
        assert money_of(runtime, expert) == (800, 0, 0)
        await earn(client, runtime, client_user, garden, price=1000)
        [payout] = run_payouts(runtime)
        assert payout.amount == 1600
        assert money_of(runtime, expert) == (0, 1600, 0)

    async def test_admin_runs_payouts_over_the_api(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        admin: Actor,
        garden: str,
    ) -> None:
        await earn(client, runtime, client_user, garden)
        for actor in (expert, client_user):
            refused = await client.post("/v1/admin/payouts", headers=actor.headers)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "RoleRequired"
        assert payouts_of(runtime) == []
        response = await client.post("/v1/admin/payouts", headers=admin.headers)
        assert response.status_code == 200, response.text
        [body] = response.json()
        assert body["id"].startswith("pay_")
        assert {k: body[k] for k in ("expert_id", "amount", "currency", "status")} == {
            "expert_id": expert.account.id,
            "amount": EARNED,
            "currency": "usd",
            "status": "pending",
        }
        assert (body["transfer_id"], body["failure"]) == (None, None)
        assert money_of(runtime, expert) == (0, EARNED, 0)


class TestWithStripe:
    @pytest.fixture
    def gateway(self) -> FakeGateway:
        return FakeGateway()

    @pytest.fixture
    def runtime(
        self, settings: Settings, embedder: Embedder, gateway: FakeGateway
    ) -> Iterator[Runtime]:
        runtime = Runtime(stripe_settings(settings), embedder=embedder, gateway=gateway)
        yield runtime
        runtime.close()

    async def test_onboarded_expert_is_paid_by_one_transfer(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        onboard(runtime, expert)
        await earn(client, runtime, client_user, garden)
        [payout] = run_payouts(runtime)
        assert payout.status == "paid"
        assert payout.settled_at is not None
        assert gateway.called("create_transfer") == [
            {
                "amount": EARNED,
                "currency": "usd",
                "destination": "acct_x",
                "idempotency_key": f"payout-{payout.id}",
            }
        ]
        assert payout.transfer_id in gateway.transfers
        assert money_of(runtime, expert) == (0, 0, EARNED)
        assert run_payouts(runtime) == []
        assert len(gateway.called("create_transfer")) == 1

    async def test_failed_transfer_returns_the_money_to_available(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        onboard(runtime, expert)
        await earn(client, runtime, client_user, garden)
        gateway.failures["create_transfer"] = "insufficient funds"
        [failed] = run_payouts(runtime)
        assert failed.status == "failed"
        assert failed.failure is not None
        assert "insufficient funds" in failed.failure
        assert failed.transfer_id is None
        assert money_of(runtime, expert) == (EARNED, 0, 0)
        # Once Stripe accepts transfers again, the next run pays it as a new payout.
        del gateway.failures["create_transfer"]
        [paid] = run_payouts(runtime)
        assert (paid.status, paid.amount) == ("paid", EARNED)
        assert paid.id != failed.id
        assert money_of(runtime, expert) == (0, 0, EARNED)

    async def test_lost_transfer_response_is_retried_with_the_same_key_and_paid_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        onboard(runtime, expert)
        await earn(client, runtime, client_user, garden)
        # Stripe makes the transfer, but the connection drops before its answer arrives.
        gateway.lost_responses.add("create_transfer")
        [unknown] = run_payouts(runtime)
        assert unknown.status == "pending"
        assert unknown.failure is not None
        assert "could not reach Stripe" in unknown.failure
        assert money_of(runtime, expert) == (0, EARNED, 0)
        gateway.lost_responses.clear()
        [paid] = run_payouts(runtime)
        assert (paid.id, paid.status, paid.failure) == (unknown.id, "paid", None)
        keys = [c["idempotency_key"] for c in gateway.called("create_transfer")]
        assert keys == [f"payout-{paid.id}"] * 2
        assert list(gateway.transfers) == [paid.transfer_id]  # one transfer: paid once
        assert money_of(runtime, expert) == (0, 0, EARNED)

    async def test_payout_waits_until_the_expert_has_onboarded(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        await earn(client, runtime, client_user, garden)
        [waiting] = run_payouts(runtime)
        assert waiting.status == "pending"
        assert gateway.called("create_transfer") == []
        assert money_of(runtime, expert) == (0, EARNED, 0)
        onboard(runtime, expert)
        [paid] = run_payouts(runtime)
        assert (paid.id, paid.status) == (waiting.id, "paid")
        assert len(gateway.called("create_transfer")) == 1
        assert money_of(runtime, expert) == (0, 0, EARNED)

    async def test_below_the_minimum_nothing_is_transferred(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        expert: Actor,
        client_user: Actor,
        garden: str,
    ) -> None:
        onboard(runtime, expert)
        await set_price(client, expert, garden, 500)
        await earn(client, runtime, client_user, garden, price=500)
        assert run_payouts(runtime) == []
        assert gateway.called("create_transfer") == []
        assert payouts_of(runtime) == []
        assert money_of(runtime, expert) == (400, 0, 0)
