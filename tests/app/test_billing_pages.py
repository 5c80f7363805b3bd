"""The billing pages: a client's credits and answers, an expert's earnings and prices, the
admin's revenue, and statements, driven through real sign-in on both databases."""

import re
from collections.abc import Iterator

import httpx
import pytest

from app.runtime import Runtime
from assets import review
from assets.embeddings import Embedder
from assets.models import Asset, Consultation
from billing import service as billing
from billing import statements
from billing.models import ChargeStatus, LedgerEntry, LedgerTransaction
from core.clock import utcnow
from core.config import Settings
from core.db import session_scope
from tests.factories import (
    HANDBOOK,
    Actor,
    create_test_asset,
    ingest_path,
    review_record,
    sign_in,
)
from tests.stripe_fakes import FakeGateway, stripe_settings

HTMX = {"HX-Request": "true"}


@pytest.fixture
def garden(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    assert job.status == "succeeded", job.error
    # Its expert approved its earlier answers: its answers are final, their money held.
    review_record(runtime, asset.slug, stood=200)
    return asset.slug


def _grant(runtime: Runtime, actor: Actor, amount: int = 2500, key: str = "grant-1") -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key=key
        )


async def _set_plan(client: httpx.AsyncClient, expert: Actor, slug: str, **terms: int) -> None:
    response = await client.put(f"/v1/assets/{slug}/plan", json=terms, headers=expert.headers)
    assert response.status_code == 200, response.text


async def _ask(client: httpx.AsyncClient, actor: Actor, slug: str) -> str:
    response = await client.post(
        f"/v1/assets/{slug}/ask",
        json={"question": "How long does a refund take?"},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text
    consultation_id: str = response.json()["consultation_id"]
    return consultation_id


def _row(page: str, consultation_id: str) -> str:
    found = re.search(rf'<tr id="charge-{consultation_id}".*?</tr>', page, re.S)
    assert found is not None, page
    return found.group(0)


async def test_billing_pages_need_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/billing", "/earnings", "/admin/revenue", "/statement", "/statement.csv"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


async def test_client_sees_granted_credits_and_that_payments_are_not_configured(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
) -> None:
    _grant(runtime, client_user)
    await sign_in(client, client_user)
    page = await client.get("/billing")
    assert page.status_code == 200
    assert "25.00 USD" in page.text
    assert "Payments are not configured" in page.text
    assert f"vouch credits grant {client_user.account.email} AMOUNT" in page.text
    assert 'href="/billing"' in page.text
    assert 'href="/earnings"' not in page.text  # the navigation fits the role


async def test_client_accepts_a_held_answer_from_the_history(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, garden: str
) -> None:
    await _set_plan(client, expert, garden, per_query=25)
    _grant(runtime, client_user)
    consultation_id = await _ask(client, client_user, garden)
    await sign_in(client, client_user)

    row = _row((await client.get("/billing")).text, consultation_id)
    assert 'data-status="held"' in row
    assert "0.25 USD" in row
    assert "credits" in row
    assert f'hx-post="/billing/answers/{consultation_id}/accept"' in row

    accepted = await client.post(
        f"/billing/answers/{consultation_id}/accept", data={"view": "row"}, headers=HTMX
    )
    assert accepted.status_code == 200
    assert accepted.text.strip().startswith(f'<tr id="charge-{consultation_id}"')
    assert 'data-status="released"' in accepted.text
    assert "Accept" not in accepted.text

    page = (await client.get("/billing")).text
    assert 'data-status="released"' in _row(page, consultation_id)
    assert "24.75 USD" in page

    again = await client.post(
        f"/billing/answers/{consultation_id}/dispute", data={"view": "row"}, headers=HTMX
    )
    assert again.status_code == 409
    assert "cannot be flagged" in again.text
    assert 'data-status="released"' in again.text

    # Without htmx the form posts and comes back to the page.
    plain = await client.post(f"/billing/answers/{consultation_id}/accept")
    assert plain.status_code == 409
    assert "cannot be released" in plain.text
    assert "<h1>Billing</h1>" in plain.text


async def test_answer_shows_its_charge_and_can_be_disputed_there(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, garden: str
) -> None:
    await _set_plan(client, expert, garden, per_query=25)
    _grant(runtime, client_user)
    await sign_in(client, client_user)
    answer = await client.post(
        f"/assets/{garden}/ask", data={"question": "How long does a refund take?"}, headers=HTMX
    )
    assert answer.status_code == 200
    text = " ".join(answer.text.split())
    assert "Charged <strong>0.25 USD</strong> from credits" in text
    assert "held until you accept or 72 h pass" in text
    found = re.search(r'id="charge-(con_[a-z0-9]+)"', answer.text)
    assert found is not None
    consultation_id = found.group(1)

    disputed = await client.post(
        f"/billing/answers/{consultation_id}/dispute", data={"view": "line"}, headers=HTMX
    )
    assert disputed.status_code == 200
    text = " ".join(disputed.text.split())
    assert "flagged for review</strong>: held until the expert reviews it" in text
    assert "Flag for review</button>" not in text


async def test_a_dispute_refused_midway_leaves_the_charge_held(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, garden: str
) -> None:
    """A dispute writes twice: the charge (disputed), then the answer's review item. When the
    second is refused, the first is undone with it: the page says so and the money stays held."""
    await _set_plan(client, expert, garden, per_query=25)
    _grant(runtime, client_user)
    consultation_id = await _ask(client, client_user, garden)
    with session_scope(runtime.engine) as session:
        consultation = session.get(Consultation, consultation_id)
        assert consultation is not None
        asset = session.get(Asset, consultation.asset_id)
        assert asset is not None
        # The answer is in its expert's queue already while its money is still held.
        review.flag(session, consultation=consultation, asset=asset, reason="sampled", now=utcnow())
    await sign_in(client, client_user)

    refused = await client.post(
        f"/billing/answers/{consultation_id}/dispute", data={"view": "row"}, headers=HTMX
    )
    assert refused.status_code == 409
    assert "sent to review already" in refused.text
    assert 'data-status="held"' in refused.text
    with session_scope(runtime.engine) as session:
        charge = billing.charge_for_consultation(session, consultation_id)
        assert charge is not None
        assert charge.status == ChargeStatus.held

    plain = await client.post(f"/billing/answers/{consultation_id}/dispute")
    assert plain.status_code == 409
    assert "<h1>Billing</h1>" in plain.text
    assert 'data-status="held"' in _row(plain.text, consultation_id)


async def test_expert_sets_a_plan_through_the_form_and_sees_it(
    client: httpx.AsyncClient, expert: Actor, garden: str
) -> None:
    await sign_in(client, expert)
    page = await client.get("/earnings")
    assert page.status_code == 200
    assert "Free to ask: no plan yet." in page.text
    assert 'href="/earnings"' in page.text

    saved = await client.post(
        f"/earnings/plans/{garden}",
        data={
            "currency": "usd",
            "per_query": "0.25",
            "monthly": "10",
            "included": "20",
            "overage": "0.5",
            "trial": "2",
            "acceptance_hours": "48",
        },
    )
    assert saved.status_code == 303
    page = await client.get(saved.headers["location"])
    assert (
        "Now: 0.25 USD a question; 10.00 USD a month for 20 questions, then 0.50 USD each; "
        "2 free trial questions; 48 h to accept." in page.text
    )
    assert 'value="0.25"' in page.text
    assert "Saved." in page.text
    plan = (await client.get(f"/v1/assets/{garden}/plan", headers=expert.headers)).json()
    assert (plan["per_query"], plan["monthly"], plan["overage"]) == (25, 1000, 50)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"per_query": "abc"}, "Price per question: &#39;abc&#39; is not an amount"),
        ({"per_query": "0.255"}, "is not an amount"),
        ({"per_query": "-1"}, "is not an amount"),
        ({"per_query": ""}, "set a per-query price, a monthly price, or both"),
        ({"monthly": "10", "included": "0"}, "needs at least one included question"),
        ({"per_query": "1", "currency": "dollars"}, "is not a three-letter ISO code"),
        ({"per_query": "1", "acceptance_hours": "0"}, "between 1 hour and 90 days"),
        ({"per_query": "1", "trial": "many"}, "Free trial questions: &#39;many&#39;"),
        ({"per_query": "1" * 40}, "is not an amount"),
    ],
)
async def test_bad_plan_input_shows_an_error_and_changes_nothing(
    client: httpx.AsyncClient, expert: Actor, garden: str, form: dict[str, str], message: str
) -> None:
    await _set_plan(client, expert, garden, per_query=10)
    await sign_in(client, expert)
    refused = await client.post(f"/earnings/plans/{garden}", data={"currency": "usd", **form})
    assert refused.status_code == 422
    assert message in refused.text
    assert "Now: 0.10 USD a question" in refused.text
    typed = next(iter(form.values()))
    if typed:
        assert f'value="{typed}"' in refused.text  # what was typed is kept
    plan = (await client.get(f"/v1/assets/{garden}/plan", headers=expert.headers)).json()
    assert plan["per_query"] == 10


async def test_expert_cannot_price_another_experts_asset(
    client: httpx.AsyncClient, expert_second: Actor, garden: str
) -> None:
    await sign_in(client, expert_second)
    refused = await client.post(f"/earnings/plans/{garden}", data={"per_query": "1"})
    assert refused.status_code == 403
    assert "only the owner" in refused.text


async def test_expert_refunds_and_sees_only_their_own_assets_charges(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    client_user: Actor,
    garden: str,
) -> None:
    await _set_plan(client, expert, garden, per_query=25)
    _grant(runtime, client_user)
    consultation_id = await _ask(client, client_user, garden)

    await sign_in(client, expert_second)
    assert consultation_id not in (await client.get("/earnings")).text
    foreign = await client.post(f"/earnings/answers/{consultation_id}/refund", headers=HTMX)
    assert foreign.status_code == 404

    await sign_in(client, expert)
    page = (await client.get("/earnings")).text
    assert "0.25 USD" in page  # held for the answer
    row = _row(page, consultation_id)
    assert "Refund</button>" in row
    refunded = await client.post(f"/earnings/answers/{consultation_id}/refund", headers=HTMX)
    assert refunded.status_code == 200
    assert 'data-status="refunded"' in refunded.text

    await sign_in(client, client_user)
    assert "25.00 USD" in (await client.get("/billing")).text


async def test_client_subscribes_from_credits(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, garden: str
) -> None:
    await _set_plan(client, expert, garden, monthly=1000, included=5)
    await sign_in(client, client_user)
    poor = await client.post("/billing/subscribe", data={"slug": garden})
    assert poor.status_code == 402
    assert "buy credits first" in poor.text

    _grant(runtime, client_user)
    page = await client.get("/billing")
    assert "10.00 USD a month for 5 questions" in page.text
    done = await client.post("/billing/subscribe", data={"slug": garden})
    assert done.status_code == 200
    assert "Subscribed to garden." in done.text
    assert "0 / 5" in done.text
    assert "15.00 USD" in done.text
    twice = await client.post("/billing/subscribe", data={"slug": garden})
    assert twice.status_code == 409
    assert "already have an active subscription" in twice.text
    missing = await client.post("/billing/subscribe", data={"slug": "nope"})
    assert missing.status_code == 404


@pytest.mark.both_databases
async def test_statement_page_and_csv_have_the_grant(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
) -> None:
    _grant(runtime, client_user)
    await sign_in(client, client_user)
    month = statements.this_month()
    csv = await client.get(f"/statement.csv?month={month}")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert f"vouch-statement-{month}.csv" in csv.headers["content-disposition"]
    lines = csv.text.splitlines()
    assert lines[0] == "date,kind,memo,account,currency,amount,balance"
    assert any(",grant,credits granted,credits,usd,25.00,25.00" in line for line in lines[1:])

    page = await client.get("/statement")
    assert page.status_code == 200
    assert f"Statement for {month}" in page.text
    assert "credits granted" in page.text
    assert "25.00 USD" in page.text

    bad = await client.get("/statement?month=2026-13")
    assert bad.status_code == 422
    assert "is not YYYY-MM" in bad.text
    bad_csv = await client.get("/statement.csv?month=soon")
    assert bad_csv.status_code == 422
    assert "is not YYYY-MM" in bad_csv.text


async def test_client_is_refused_earnings_and_revenue(
    client: httpx.AsyncClient, client_user: Actor, expert: Actor
) -> None:
    await sign_in(client, client_user)
    for path in ("/earnings", "/admin/revenue"):
        page = await client.get(path)
        assert page.status_code == 403, path
        assert "<h1>403" in page.text
    refund = await client.post("/earnings/answers/con_x/refund")
    assert refund.status_code == 403

    await sign_in(client, expert)
    assert (await client.get("/admin/revenue")).status_code == 403


@pytest.mark.both_databases
async def test_admin_sees_revenue_and_ledger_balances(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin: Actor,
    expert: Actor,
    client_user: Actor,
    garden: str,
) -> None:
    await _set_plan(client, expert, garden, per_query=25)
    _grant(runtime, client_user)
    consultation_id = await _ask(client, client_user, garden)
    accepted = await client.post(
        f"/v1/consultations/{consultation_id}/accept", headers=client_user.headers
    )
    assert accepted.status_code == 200

    await sign_in(client, admin)
    page = await client.get("/admin/revenue")
    assert page.status_code == 200
    assert 'href="/admin/revenue"' in page.text
    text = " ".join(page.text.split())
    assert "<strong>0.05 USD</strong>" in text  # 20% of 0.25
    assert "<code>platform:grants</code>" in text
    assert "-25.00 USD" in text
    assert "does not balance" not in text

    # A transaction whose entries do not sum to zero is a bug the page must shout about.
    with session_scope(runtime.engine) as session:
        broken = LedgerTransaction(idempotency_key="broken", kind="grant")
        session.add(broken)
        session.flush()
        session.add(
            LedgerEntry(
                transaction_id=broken.id, account="platform:revenue", currency="usd", amount=1
            )
        )
    warned = await client.get("/admin/revenue")
    assert "The ledger does not balance." in warned.text
    assert f"<code>{broken.id}</code>" in warned.text


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

    async def test_client_buys_credits_through_checkout(
        self, client: httpx.AsyncClient, gateway: FakeGateway, client_user: Actor
    ) -> None:
        await sign_in(client, client_user)
        page = await client.get("/billing")
        assert 'action="/billing/credits"' in page.text
        assert "Payments are not configured" not in page.text

        bad = await client.post("/billing/credits", data={"amount": "lots", "currency": "usd"})
        assert bad.status_code == 422
        assert "Amount: &#39;lots&#39; is not an amount" in bad.text
        assert 'value="lots"' in bad.text
        small = await client.post("/billing/credits", data={"amount": "0.10"})
        assert small.status_code == 422
        assert "buy at least 0.50 USD" in small.text
        assert gateway.called("create_checkout_session") == []

        started = await client.post("/billing/credits", data={"amount": "20", "currency": "usd"})
        assert started.status_code == 303
        assert started.headers["location"].startswith("https://checkout.stripe.test/")
        (checkout,) = gateway.called("create_checkout_session")
        assert (checkout["amount"], checkout["currency"]) == (2000, "usd")

        back = await client.get("/billing?checkout=done")
        assert "credits are added as soon as Stripe confirms it" in back.text

    async def test_client_subscribes_by_card(
        self, client: httpx.AsyncClient, expert: Actor, client_user: Actor, garden: str
    ) -> None:
        await _set_plan(client, expert, garden, monthly=1000, included=5)
        await sign_in(client, client_user)
        assert "Subscribe by card" in (await client.get("/billing")).text
        started = await client.post("/billing/subscribe", data={"slug": garden, "pay": "card"})
        assert started.status_code == 303
        assert started.headers["location"].startswith("https://checkout.stripe.test/")

    async def test_expert_sets_up_payouts_and_comes_back(
        self, client: httpx.AsyncClient, expert: Actor
    ) -> None:
        await sign_in(client, expert)
        started = await client.post("/earnings/connect")
        assert started.status_code == 303
        assert started.headers["location"].startswith("https://connect.stripe.test/")
        # Stripe sends the expert back to /billing (payments.CONNECT_RETURN).
        back = await client.get("/billing?connect=done", follow_redirects=True)
        assert back.url.path == "/earnings"
        assert "payouts start once Stripe enables your account" in back.text
