"""Searching is priced as the asset's plan says: not sold (403), free, or paid from a client's
credits at once, to the expert less the platform fee, exactly once per Idempotency-Key."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from app.models import Account
from app.runtime import Runtime
from billing import ledger
from billing import service as billing
from billing.models import Charge, LedgerTransaction, Plan, SearchCharge
from core.db import session_scope
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path, sign_in

pytestmark = pytest.mark.both_databases

CONCURRENT = 20
SEARCH = {"query": "How long does a refund take?", "k": 3}


@pytest.fixture
def handbook(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    return asset.slug


async def set_plan(client: httpx.AsyncClient, expert: Actor, slug: str, **plan: Any) -> Any:
    response = await client.put(f"/v1/assets/{slug}/plan", json=plan, headers=expert.headers)
    assert response.status_code == 200, response.text
    return response.json()


def grant(runtime: Runtime, actor: Actor, amount: int) -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key="grant"
        )


def balance(runtime: Runtime, account: str) -> int:
    with Session(runtime.engine) as session:
        return ledger.balance(session, account, "usd")


def credits(runtime: Runtime, actor: Actor) -> int:
    return balance(runtime, ledger.credits(actor.account.id))


def recorded(runtime: Runtime) -> tuple[int, int, int]:
    """Search charges, ledger transactions other than grants, and ask charges."""
    with Session(runtime.engine) as session:
        return (
            len(session.exec(select(SearchCharge)).all()),
            len(
                session.exec(
                    select(LedgerTransaction).where(LedgerTransaction.kind != "grant")
                ).all()
            ),
            len(session.exec(select(Charge)).all()),
        )


async def search(
    client: httpx.AsyncClient,
    actor: Actor,
    slug: str,
    *,
    body: dict[str, Any] = SEARCH,
    key: str | None = None,
) -> httpx.Response:
    headers = {**actor.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"/v1/assets/{slug}/search", json=body, headers=headers)


class TestPlan:
    async def test_per_search_is_set_and_shown_and_defaults_to_not_sold(
        self, client: httpx.AsyncClient, expert: Actor, handbook: str
    ) -> None:
        assert (await set_plan(client, expert, handbook, per_query=25))["per_search"] is None
        plan = await set_plan(client, expert, handbook, per_query=25, per_search=5)
        assert plan["per_search"] == 5
        shown = await client.get(f"/v1/assets/{handbook}/plan", headers=expert.headers)
        assert shown.json()["per_search"] == 5
        # What a client reads before searching: the price route, open to anyone.
        price = await client.get(f"/v1/assets/{handbook}/price")
        assert price.json()["plan"]["per_search"] == 5

    async def test_a_negative_price_per_search_is_refused(
        self, client: httpx.AsyncClient, expert: Actor, handbook: str
    ) -> None:
        response = await client.put(
            f"/v1/assets/{handbook}/plan",
            json={"per_query": 25, "per_search": -1},
            headers=expert.headers,
        )
        assert response.status_code == 422

    async def test_the_plan_form_sets_the_price_per_search(
        self, client: httpx.AsyncClient, expert: Actor, handbook: str
    ) -> None:
        await sign_in(client, expert)
        page = await client.get("/earnings")
        assert "Price per search" in page.text
        form = {"currency": "usd", "per_query": "0.25", "per_search": "0.05"}
        saved = await client.post(f"/earnings/plans/{handbook}", data=form)
        assert saved.status_code == 303, saved.text
        page = await client.get(saved.headers["location"])
        assert "Now: 0.25 USD a question; 72 h to accept. 0.05 USD a search of the passages." in (
            page.text
        )
        plan = (await client.get(f"/v1/assets/{handbook}/plan", headers=expert.headers)).json()
        assert plan["per_search"] == 5
        # Emptied: the passages are not sold any more.
        saved = await client.post(f"/earnings/plans/{handbook}", data={**form, "per_search": ""})
        page = await client.get(saved.headers["location"])
        assert "Passages not sold (ask instead)." in page.text
        refused = await client.post(
            f"/earnings/plans/{handbook}", data={**form, "per_search": "-1"}
        )
        assert refused.status_code == 422
        assert "Price per search" in refused.text

    def test_the_plan_describes_its_searches(self) -> None:
        plan = Plan(asset_id="a", per_query=25, per_search=None)
        assert "passage" not in billing.describe_plan("s", plan)  # not sold: as before
        assert billing.search_terms(plan) == "passages not sold (ask instead)"
        plan.per_search = 0
        assert "searching the passages free" in billing.describe_plan("s", plan)
        plan.per_search = 5
        assert "0.05 USD a search of the passages" in billing.describe_plan("s", plan)


class TestSearchCharges:
    async def test_not_sold_is_403_and_records_nothing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 100)
        response = await search(client, client_user, handbook)
        assert response.status_code == 403
        assert response.json()["error"] == "PassagesNotSold"
        assert "does not sell its passages" in response.json()["detail"]
        assert "ask it a question instead" in response.json()["detail"]
        assert recorded(runtime) == (0, 0, 0)
        assert credits(runtime, client_user) == 100

    async def test_free_search_returns_results_and_charges_nothing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=0)
        grant(runtime, client_user, 100)
        response = await search(client, client_user, handbook)
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == 3
        assert recorded(runtime) == (0, 0, 0)
        assert credits(runtime, client_user) == 100

    async def test_priced_search_pays_the_expert_and_the_platform_at_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 100)
        fee = billing.fee_for(10, runtime.settings.billing.platform_fee_bps)
        assert 0 < fee < 10
        response = await search(client, client_user, handbook)
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == 3
        assert credits(runtime, client_user) == 90
        assert balance(runtime, ledger.available(expert.account.id)) == 10 - fee
        assert balance(runtime, ledger.REVENUE) == fee
        with Session(runtime.engine) as session:
            (charge,) = session.exec(select(SearchCharge)).all()
            assert (charge.account_id, charge.expert_id) == (
                client_user.account.id,
                expert.account.id,
            )
            assert (charge.amount, charge.fee, charge.currency) == (10, fee, "usd")
            txn = ledger.find(session, f"search:{charge.id}")
            assert txn is not None
            assert txn.kind == "search"
            assert ledger.unbalanced_transactions(session) == []
        # No escrow hold and no ask charge: a search is paid at once.
        assert recorded(runtime) == (1, 1, 0)
        await search(client, client_user, handbook)
        assert credits(runtime, client_user) == 80
        assert recorded(runtime) == (2, 2, 0)

    async def test_without_enough_credits_is_402_and_records_nothing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 9)
        response = await search(client, client_user, handbook)
        assert response.status_code == 402
        assert response.json()["error"] == "PaymentRequired"
        assert "0.10 USD" in response.json()["detail"]
        assert "0.09 USD" in response.json()["detail"]
        assert recorded(runtime) == (0, 0, 0)
        assert credits(runtime, client_user) == 9

    async def test_the_same_key_searches_again_and_charges_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 100)
        first = await search(client, client_user, handbook, key="k1")
        again = await search(client, client_user, handbook, key="k1")
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json() == first.json()
        assert credits(runtime, client_user) == 90
        assert recorded(runtime) == (1, 1, 0)

    async def test_a_retry_of_a_paid_search_needs_no_credits_left(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 10)
        first = await search(client, client_user, handbook, key="k1")
        again = await search(client, client_user, handbook, key="k1")
        assert (first.status_code, again.status_code) == (200, 200)
        assert credits(runtime, client_user) == 0
        assert recorded(runtime) == (1, 1, 0)
        assert (await search(client, client_user, handbook, key="k2")).status_code == 402

    async def test_the_same_key_with_another_query_is_409(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 100)
        first = await search(client, client_user, handbook, key="k1")
        assert first.status_code == 200
        other = await search(
            client,
            client_user,
            handbook,
            body={"query": "Who reviews answers?", "k": 3},
            key="k1",
        )
        assert other.status_code == 409
        assert other.json()["error"] == "IdempotencyKeyReused"
        assert credits(runtime, client_user) == 90
        assert recorded(runtime) == (1, 1, 0)

    async def test_concurrent_searches_with_one_key_charge_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 100)
        responses = await asyncio.gather(
            *(search(client, client_user, handbook, key="same") for _ in range(CONCURRENT))
        )
        assert {r.status_code for r in responses} == {200}
        assert credits(runtime, client_user) == 90
        assert recorded(runtime) == (1, 1, 0)

    async def test_concurrent_searches_spend_credits_once_each(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 50)
        responses = await asyncio.gather(
            *(search(client, client_user, handbook) for _ in range(CONCURRENT))
        )
        statuses = [r.status_code for r in responses]
        assert (statuses.count(200), statuses.count(402)) == (5, CONCURRENT - 5)
        assert credits(runtime, client_user) == 0
        assert recorded(runtime) == (5, 5, 0)
        with Session(runtime.engine) as session:
            assert ledger.unbalanced_transactions(session) == []

    async def test_a_priced_search_needs_a_verified_address(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        grant(runtime, client_user, 100)
        with session_scope(runtime.engine) as session:
            account = session.get(Account, client_user.account.id)
            assert account is not None
            account.email_verified_at = None
            session.add(account)
        response = await search(client, client_user, handbook)
        assert response.status_code == 403
        assert response.json()["error"] == "EmailUnverified"
        assert recorded(runtime) == (0, 0, 0)
        await set_plan(client, expert, handbook, per_query=25, per_search=0)
        assert (await search(client, client_user, handbook)).status_code == 200  # free: no need

    async def test_an_unpublished_asset_is_404_to_a_client(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
    ) -> None:
        asset = create_test_asset(runtime, owner=expert.account, slug="draft", published=False)
        await set_plan(client, expert, asset.slug, per_query=25, per_search=0)
        response = await search(client, client_user, asset.slug)
        assert response.status_code == 404
        assert recorded(runtime) == (0, 0, 0)

    async def test_the_owner_and_an_admin_search_free(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        admin: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)  # passages not sold
        for actor in (expert, admin):
            response = await search(client, actor, handbook)
            assert response.status_code == 200, response.text
            assert len(response.json()["results"]) == 3
        await set_plan(client, expert, handbook, per_query=25, per_search=10)
        assert (await search(client, expert, handbook)).status_code == 200
        assert recorded(runtime) == (0, 0, 0)
