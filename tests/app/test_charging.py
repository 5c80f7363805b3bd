"""Asking is charged: entitlement before the answer, an escrow hold with it, exactly once."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from app import accounts
from app.ratelimit import AskLimiter, MemoryBuckets
from app.runtime import Runtime
from assets.models import Consultation
from billing import ledger
from billing import service as billing
from billing.models import Charge, LedgerEntry, UsageEvent
from core.clock import utcnow
from core.db import session_scope
from tests.factories import (
    HANDBOOK,
    PASSWORD,
    Actor,
    create_actor,
    create_test_asset,
    ingest_path,
    review_record,
)

pytestmark = pytest.mark.both_databases

CONCURRENT = 50
QUESTION = {"question": "How long does a refund take?"}


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


def grant(runtime: Runtime, actor: Actor, amount: int, key: str = "k") -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key=key
        )


def balance(runtime: Runtime, account: str) -> int:
    with Session(runtime.engine) as session:
        return ledger.balance(session, account, "usd")


def credits(runtime: Runtime, actor: Actor) -> int:
    return balance(runtime, ledger.credits(actor.account.id))


def counts(runtime: Runtime) -> tuple[int, int, int]:
    with Session(runtime.engine) as session:
        return (
            len(session.exec(select(Consultation)).all()),
            len(session.exec(select(UsageEvent)).all()),
            len(session.exec(select(Charge)).all()),
        )


async def ask(client: httpx.AsyncClient, actor: Actor, slug: str, **headers: str) -> httpx.Response:
    return await client.post(
        f"/v1/assets/{slug}/ask", json=QUESTION, headers={**actor.headers, **headers}
    )


class TestEntitlement:
    async def test_ask_is_charged_from_credits_into_escrow(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        review_record(runtime, handbook, stood=200)  # its answers are final
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 100)
        response = await ask(client, client_user, handbook)
        assert response.status_code == 200, response.text
        charge = response.json()["charge"]
        assert (charge["amount"], charge["source"], charge["status"]) == (25, "credits", "held")
        assert credits(runtime, client_user) == 75
        assert balance(runtime, ledger.escrow(charge["id"])) == 25

    async def test_ask_without_credits_is_402_and_records_nothing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 20)
        response = await ask(client, client_user, handbook)
        assert response.status_code == 402
        assert response.json()["error"] == "PaymentRequired"
        assert "0.25 USD" in response.json()["detail"]
        assert "0.20 USD" in response.json()["detail"]
        assert counts(runtime) == (0, 0, 0)
        assert credits(runtime, client_user) == 20

    async def test_trial_questions_come_first_when_there_are_no_credits(
        self,
        client: httpx.AsyncClient,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25, trial=2)
        sources = []
        for _ in range(2):
            response = await ask(client, client_user, handbook)
            sources.append(
                (response.json()["charge"]["source"], response.json()["charge"]["amount"])
            )
        assert sources == [("trial", 0), ("trial", 0)]
        assert (await ask(client, client_user, handbook)).status_code == 402

    async def test_subscription_quota_then_hard_cap(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, monthly=1000, included=3)
        assert (await ask(client, client_user, handbook)).status_code == 403
        grant(runtime, client_user, 1000)
        response = await client.post(
            f"/v1/assets/{handbook}/subscribe", headers=client_user.headers
        )
        assert response.status_code == 200, response.text
        assert credits(runtime, client_user) == 0
        amounts = []
        for _ in range(3):
            charge = (await ask(client, client_user, handbook)).json()["charge"]
            assert charge["source"] == "subscription"
            amounts.append(charge["amount"])
        # The month's money is spread over its questions, to the cent.
        assert amounts == [333, 333, 334]
        capped = await ask(client, client_user, handbook)
        assert capped.status_code == 403
        assert "3 questions" in capped.json()["detail"]

    async def test_overage_is_charged_from_credits_past_the_included_questions(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, monthly=500, included=1, overage=40)
        grant(runtime, client_user, 540)
        await client.post(f"/v1/assets/{handbook}/subscribe", headers=client_user.headers)
        first = (await ask(client, client_user, handbook)).json()["charge"]
        second = (await ask(client, client_user, handbook)).json()["charge"]
        assert (first["source"], first["amount"]) == ("subscription", 500)
        assert (second["source"], second["amount"]) == ("overage", 40)
        assert credits(runtime, client_user) == 0
        assert (await ask(client, client_user, handbook)).status_code == 402

    async def test_plan_change_applies_to_new_purchases_only(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, monthly=300, included=3)
        grant(runtime, client_user, 300)
        await client.post(f"/v1/assets/{handbook}/subscribe", headers=client_user.headers)
        await set_plan(client, expert, handbook, monthly=900, included=1, per_query=50)
        charges = [(await ask(client, client_user, handbook)).json()["charge"] for _ in range(3)]
        assert [c["amount"] for c in charges] == [100, 100, 100]
        plan = (await client.get(f"/v1/assets/{handbook}/plan", headers=client_user.headers)).json()
        assert (plan["monthly"], plan["per_query"]) == (900, 50)

    async def test_the_owner_asks_their_own_asset_free(
        self, client: httpx.AsyncClient, expert: Actor, handbook: str
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        charge = (await ask(client, expert, handbook)).json()["charge"]
        assert (charge["source"], charge["amount"]) == ("free", 0)


class TestPlans:
    async def test_only_the_owner_sets_a_plan(
        self, client: httpx.AsyncClient, client_user: Actor, expert_second: Actor, handbook: str
    ) -> None:
        for actor in (client_user, expert_second):
            response = await client.put(
                f"/v1/assets/{handbook}/plan", json={"per_query": 1}, headers=actor.headers
            )
            assert response.status_code == 403

    @pytest.mark.parametrize(
        ("plan", "message"),
        [
            ({}, "per-query price, a monthly price"),
            ({"monthly": 100}, "at least one included question"),
            ({"per_query": 10, "overage": 5}, "need a monthly price"),
            ({"per_query": 10, "currency": "u$d"}, "three-letter"),
            ({"per_query": -1}, "greater than or equal to 0"),
        ],
    )
    async def test_bad_plan_is_422_and_changes_nothing(
        self, client: httpx.AsyncClient, expert: Actor, handbook: str, plan: Any, message: str
    ) -> None:
        await set_plan(client, expert, handbook, per_query=7)
        response = await client.put(
            f"/v1/assets/{handbook}/plan", json=plan, headers=expert.headers
        )
        assert response.status_code == 422
        assert message in response.json()["detail"]
        current = await client.get(f"/v1/assets/{handbook}/plan", headers=expert.headers)
        assert current.json()["per_query"] == 7


class TestEscrow:
    async def test_accept_releases_fee_to_platform_and_rest_to_expert(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 25)
        consultation = (await ask(client, client_user, handbook)).json()["consultation_id"]
        response = await client.post(
            f"/v1/consultations/{consultation}/accept", headers=client_user.headers
        )
        assert response.json()["status"] == "released"
        assert balance(runtime, ledger.REVENUE) == 5  # 20% of 25
        assert balance(runtime, ledger.available(expert.account.id)) == 20
        again = await client.post(
            f"/v1/consultations/{consultation}/accept", headers=client_user.headers
        )
        assert again.status_code == 409
        assert balance(runtime, ledger.available(expert.account.id)) == 20

    async def test_another_client_cannot_accept_or_dispute(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        client_second: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 25)
        consultation = (await ask(client, client_user, handbook)).json()["consultation_id"]
        for action in ("accept", "dispute", "refund"):
            response = await client.post(
                f"/v1/consultations/{consultation}/{action}", headers=client_second.headers
            )
            assert response.status_code == 404, action
        earnings = await client.get("/v1/billing/earnings", headers=client_second.headers)
        assert earnings.status_code == 403

    async def test_window_releases_undisputed_holds_only(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        review_record(runtime, handbook, stood=200)  # its answers are final
        await set_plan(client, expert, handbook, per_query=10, acceptance_hours=24)
        grant(runtime, client_user, 20)
        kept = (await ask(client, client_user, handbook)).json()["consultation_id"]
        disputed = (await ask(client, client_user, handbook)).json()["consultation_id"]
        await client.post(f"/v1/consultations/{disputed}/dispute", headers=client_user.headers)
        with session_scope(runtime.engine) as session:
            early = billing.release_due(session, fee_bps=2000, now=utcnow() + timedelta(hours=23))
        with session_scope(runtime.engine) as session:
            late = billing.release_due(session, fee_bps=2000, now=utcnow() + timedelta(hours=25))
        assert (early, late) == (0, 1)
        states = {
            c: (await client.get(f"/v1/consultations/{c}", headers=client_user.headers)).json()[
                "charge"
            ]["status"]
            for c in (kept, disputed)
        }
        assert states == {kept: "released", disputed: "disputed"}

    async def test_refund_returns_credits_and_quota(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, monthly=200, included=1)
        grant(runtime, client_user, 200)
        await client.post(f"/v1/assets/{handbook}/subscribe", headers=client_user.headers)
        consultation = (await ask(client, client_user, handbook)).json()["consultation_id"]
        assert (await ask(client, client_user, handbook)).status_code == 403
        response = await client.post(
            f"/v1/consultations/{consultation}/refund", headers=expert.headers
        )
        assert response.json()["status"] == "refunded"
        # The quota the refunded answer used is given back, with its money.
        retry = await ask(client, client_user, handbook)
        assert retry.status_code == 200
        assert retry.json()["charge"]["amount"] == 200

    async def test_client_cannot_refund_themselves(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 25)
        consultation = (await ask(client, client_user, handbook)).json()["consultation_id"]
        response = await client.post(
            f"/v1/consultations/{consultation}/refund", headers=client_user.headers
        )
        assert response.status_code == 403
        assert credits(runtime, client_user) == 0


class TestIdempotency:
    async def test_retry_with_the_key_returns_the_first_answer_charged_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=25)
        grant(runtime, client_user, 100)
        first = await ask(client, client_user, handbook, **{"Idempotency-Key": "q-1"})
        second = await ask(client, client_user, handbook, **{"Idempotency-Key": "q-1"})
        assert first.json() == second.json()
        assert credits(runtime, client_user) == 75
        other = await client.post(
            f"/v1/assets/{handbook}/ask",
            json={"question": "When does the store open?"},
            headers={**client_user.headers, "Idempotency-Key": "q-1"},
        )
        assert other.status_code == 409
        assert credits(runtime, client_user) == 75

    async def test_concurrent_asks_with_one_key_charge_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=10)
        grant(runtime, client_user, 1000)
        responses = await asyncio.gather(
            *(
                ask(client, client_user, handbook, **{"Idempotency-Key": "same"})
                for _ in range(CONCURRENT)
            )
        )
        assert {r.status_code for r in responses} == {200}
        assert len({r.json()["consultation_id"] for r in responses}) == 1
        assert credits(runtime, client_user) == 990
        assert counts(runtime) == (1, 1, 1)

    async def test_concurrent_asks_spend_credits_exactly_once_each(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_user: Actor,
        handbook: str,
    ) -> None:
        await set_plan(client, expert, handbook, per_query=10)
        grant(runtime, client_user, 100)
        responses = await asyncio.gather(
            *(
                ask(client, client_user, handbook, **{"Idempotency-Key": f"k{i}"})
                for i in range(CONCURRENT)
            )
        )
        statuses = [r.status_code for r in responses]
        assert (statuses.count(200), statuses.count(402)) == (10, 40)
        assert all(
            r.json()["error"] == "PaymentRequired" for r in responses if r.status_code == 402
        )
        assert credits(runtime, client_user) == 0
        assert counts(runtime) == (10, 10, 10)
        with Session(runtime.engine) as session:
            # Replaying the credits' entries in order, the balance never dips below zero.
            entries = session.exec(
                select(LedgerEntry)
                .where(LedgerEntry.account == ledger.credits(client_user.account.id))
                .order_by(col(LedgerEntry.created_at), col(LedgerEntry.id))
            ).all()
        running = 0
        for entry in entries:
            running += entry.amount
            assert running >= 0


async def test_one_rate_limit_for_every_way_of_asking(
    client: httpx.AsyncClient,
    runtime: Runtime,
    client_second: Actor,
    handbook: str,
) -> None:
    """The API, the page's form and its stream take from one allowance per account; a second
    API key of the same account does not get a second allowance."""
    runtime.rate_limiter = AskLimiter(MemoryBuckets(), 4)
    asker = create_actor(runtime, role="client", password=PASSWORD)
    with session_scope(runtime.engine) as session:
        _, spare_key = accounts.create_api_key(session, account=asker.account, label="spare")
    await client.post("/login", data={"email": asker.account.email, "password": PASSWORD})
    form = {"question": QUESTION["question"]}
    assert (await ask(client, asker, handbook)).status_code == 200
    fragment = await client.post(f"/assets/{handbook}/ask", data=form, headers={"HX-Request": "1"})
    assert fragment.status_code == 200
    stream = await client.post(
        f"/assets/{handbook}/ask", data=form, headers={"Accept": "text/event-stream"}
    )
    assert "event: done" in stream.text
    spare = {"Authorization": f"Bearer {spare_key}"}
    assert (
        await client.post(f"/v1/assets/{handbook}/ask", json=QUESTION, headers=spare)
    ).status_code == 200

    limited = await ask(client, asker, handbook)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "4 questions in a minute" in limited.json()["detail"]
    page = await client.post(f"/assets/{handbook}/ask", data=form, headers={"HX-Request": "1"})
    assert page.status_code == 429
    assert "4 questions in a minute" in page.text
    streamed = await client.post(
        f"/assets/{handbook}/ask", data=form, headers={"Accept": "text/event-stream"}
    )
    assert streamed.status_code == 429
    # Another account has its own allowance.
    assert (await ask(client, client_second, handbook)).status_code == 200


async def test_an_abstained_answer_costs_nothing(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await set_plan(client, expert, handbook, per_query=25)
    grant(runtime, client_user, 25)
    response = await client.post(
        f"/v1/assets/{handbook}/ask",
        json={"question": "Which quantum chromodynamics gauge group describes gluons?"},
        headers=client_user.headers,
    )
    assert response.json()["status"] == "abstained"
    assert (response.json()["charge"]["amount"], response.json()["charge"]["source"]) == (0, "free")
    assert credits(runtime, client_user) == 25


async def test_admin_grant_once_per_key_and_refused_for_another_grant(
    client: httpx.AsyncClient, runtime: Runtime, admin: Actor, client_user: Actor
) -> None:
    body = {"email": client_user.account.email, "amount": 500}
    headers = {**admin.headers, "Idempotency-Key": "welcome"}
    first = await client.post("/v1/admin/credits", json=body, headers=headers)
    again = await client.post("/v1/admin/credits", json=body, headers=headers)
    assert (first.json()["credits"], again.json()["credits"]) == (500, 500)
    other = await client.post("/v1/admin/credits", json={**body, "amount": 900}, headers=headers)
    assert other.status_code == 409
    assert "another grant" in other.json()["detail"]
    assert credits(runtime, client_user) == 500
    refused = await client.post(
        "/v1/admin/credits", json=body, headers={**client_user.headers, "Idempotency-Key": "x"}
    )
    assert refused.status_code == 403
