"""Content gaps (app/gaps.py): an asset's questions that abstained, went to review or were
flagged, grouped by meaning with the real MiniLM embedder; the owner-only page and JSON API,
the weekly digest, and the charts of the expert's earnings page. Questions are asked through
the real API, on both databases."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import Session, select

from app import gaps, reviewing
from app.models import Notification
from app.runtime import Runtime
from assets.models import Asset
from billing import service as billing
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
    sign_in,
)

# SQLite only: clustering in Python over one simple select.

PRICE = 25
REFUNDS = (
    "Can I get my money back for a broken vase?",
    "How do I get a refund for a damaged pot?",
    "Will you refund me if the item I bought arrived broken?",
    "Is a refund possible for an order that arrived damaged?",
)
SHIPPING = (
    "How much does shipping to Canada cost?",
    "Do you ship orders to Canada?",
    "What are the international shipping fees for Canada?",
)
UNRELATED = "Who won the football world cup in 1998?"
FLAGGED = "When does the store open?"
ACCEPTED = "How long does a refund take?"


@dataclass
class Seeded:
    expert: Actor
    client: Actor
    statuses: dict[str, str]  # question -> status the ask returned
    consultations: dict[str, str]  # question -> consultation id

    @property
    def abstained(self) -> int:
        return sum(1 for q, s in self.statuses.items() if s == "abstained" and q != ACCEPTED)


async def _ask(client: httpx.AsyncClient, actor: Actor, question: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/assets/garden/ask", json={"question": question}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def seed(client: httpx.AsyncClient, runtime: Runtime) -> Seeded:
    """The garden handbook asset at 0.25 USD a question, trusted with final answers; a client
    accepts one answer, flags another, then asks (with every answer held for review) four
    questions about refunds of damaged goods, three about shipping to Canada, and one about
    football, which the handbook cannot answer."""
    expert = create_actor(runtime, role="expert", password=PASSWORD)
    asker = create_actor(runtime, role="client", password=PASSWORD)
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded"
    review_record(runtime, "garden", stood=200)  # the expert's own: not counted as gaps
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=asker.account.id, amount=10_000, currency="usd", key="g"
        )
    plan = await client.put(
        "/v1/assets/garden/plan", json={"per_query": PRICE}, headers=expert.headers
    )
    assert plan.status_code == 200, plan.text
    statuses, ids = {}, {}
    for question in (ACCEPTED, FLAGGED):
        body = await _ask(client, asker, question)
        assert body["status"] == "final", body
        statuses[question], ids[question] = body["status"], body["consultation_id"]
    accepted = await client.post(f"/v1/consultations/{ids[ACCEPTED]}/accept", headers=asker.headers)
    assert accepted.status_code == 200, accepted.text
    flagged = await client.post(
        f"/v1/consultations/{ids[FLAGGED]}/flag",
        json={"note": "the hours are wrong"},
        headers=asker.headers,
    )
    assert flagged.status_code == 201, flagged.text
    with session_scope(runtime.engine) as session:
        reviewing.set_review_settings(
            session, account=expert.account, slug="garden", review_threshold=0.99
        )
    for question in (*REFUNDS, *SHIPPING, UNRELATED):
        body = await _ask(client, asker, question)
        statuses[question], ids[question] = body["status"], body["consultation_id"]
        assert body["status"] in ("pending_review", "abstained"), body
    assert statuses[UNRELATED] == "abstained"
    return Seeded(expert=expert, client=asker, statuses=statuses, consultations=ids)


def _report(runtime: Runtime, *, weeks: int = 4) -> gaps.GapReport:
    with Session(runtime.engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == "garden")).one()
        return gaps.content_gaps(session, runtime, asset=asset, since=gaps.window(weeks))


class TestContentGaps:
    async def test_questions_grouped_by_meaning(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        await seed(client, runtime)
        report = _report(runtime)
        groups = [set(c.examples) for c in report.clusters]
        # Every cluster lists all its questions here (none has more than EXAMPLES).
        assert sum(c.size for c in report.clusters) == len(REFUNDS) + len(SHIPPING) + 2
        assert set(REFUNDS) in groups
        assert set(SHIPPING) in groups
        assert {UNRELATED} in groups
        assert {FLAGGED} in groups
        biggest = report.clusters[0]
        assert (biggest.size, biggest.label in REFUNDS) == (4, True)
        assert report.clusters[1].size == 3

    async def test_counts_by_reason_and_lost_revenue(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        seeded = await seed(client, runtime)
        report = _report(runtime)
        # The accepted answer and the expert's own 200 reviewed questions are no gaps.
        assert report.total == len(REFUNDS) + len(SHIPPING) + 2
        assert report.totals == {
            "abstained": seeded.abstained,
            "review": len(REFUNDS) + len(SHIPPING) + 1 - seeded.abstained,
            "flagged": 1,
        }
        assert report.lost == {"usd": seeded.abstained * PRICE}
        this_week = {r: counts[-1] for r, counts in report.by_week.items()}
        assert this_week == report.totals
        assert len(report.weeks) == 4
        flagged = next(c for c in report.clusters if c.label == FLAGGED)
        assert flagged.reasons == {"abstained": 0, "review": 0, "flagged": 1}
        assert flagged.weeks == [0, 0, 0, 1]
        football = next(c for c in report.clusters if c.label == UNRELATED)
        assert football.lost == {"usd": PRICE}

    async def test_later_plan_does_not_reprice_earlier_abstentions(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        seeded = await seed(client, runtime)
        raised = await client.put(
            "/v1/assets/garden/plan", json={"per_query": 90}, headers=seeded.expert.headers
        )
        assert raised.status_code == 200
        await _ask(client, seeded.client, "What is the capital of Mongolia?")
        report = _report(runtime)
        assert report.totals["abstained"] == seeded.abstained + 1
        assert report.lost == {"usd": seeded.abstained * PRICE + 90}


class TestAccess:
    async def test_owner_sees_page_and_api(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        seeded = await seed(client, runtime)
        await sign_in(client, seeded.expert)
        asset_page = await client.get("/assets/garden")
        assert 'href="/assets/garden/gaps"' in asset_page.text
        page = await client.get("/assets/garden/gaps")
        assert page.status_code == 200
        assert 'aria-label="Gap questions per week by reason' in page.text
        assert "<title>Gap questions per week by reason" in page.text
        assert page.text.count('class="cluster"') == 4
        for question in (UNRELATED, FLAGGED):
            assert f'<strong class="cluster-label">{question}</strong>' in page.text
        assert f"{seeded.abstained * PRICE / 100:.2f} USD" in page.text
        twelve = await client.get("/assets/garden/gaps?weeks=12")
        assert twelve.status_code == 200
        assert '<strong aria-current="page">last 12 weeks</strong>' in twelve.text

        api = await client.get("/v1/assets/garden/gaps?weeks=12", headers=seeded.expert.headers)
        assert api.status_code == 200, api.text
        body = api.json()
        assert (body["asset"], len(body["weeks"]), body["total"]) == ("garden", 12, 9)
        assert body["lost_revenue"] == [{"currency": "usd", "amount": seeded.abstained * PRICE}]
        assert [c["size"] for c in body["clusters"]] == [4, 3, 1, 1]
        assert set(body["clusters"][1]["examples"]) == set(SHIPPING)

    async def test_others_are_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, admin: Actor
    ) -> None:
        seeded = await seed(client, runtime)
        other = create_actor(runtime, role="expert", password=PASSWORD)
        for actor, status in ((other, 403), (seeded.client, 403), (admin, 200)):
            api = await client.get("/v1/assets/garden/gaps", headers=actor.headers)
            assert api.status_code == status, (actor.account.role, api.text)
        missing = await client.get("/v1/assets/nothing/gaps", headers=seeded.expert.headers)
        assert missing.status_code == 404
        odd = await client.get("/v1/assets/garden/gaps?weeks=0", headers=seeded.expert.headers)
        assert odd.status_code == 422
        anonymous = await client.get("/v1/assets/garden/gaps")
        assert anonymous.status_code == 401
        for actor in (other, seeded.client):
            await sign_in(client, actor)
            page = await client.get("/assets/garden/gaps")
            assert page.status_code == 403
            assert REFUNDS[0] not in page.text
        client.cookies.clear()
        to_login = await client.get("/assets/garden/gaps")
        assert (to_login.status_code, to_login.headers["location"]) == (
            303,
            "/login?next=/assets/garden/gaps",
        )


class TestDigest:
    async def test_sent_once_a_week_with_a_link(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        seeded = await seed(client, runtime)
        now = utcnow()
        assert gaps.send_digests(runtime, now=now) == 1
        assert gaps.send_digests(runtime, now=now + timedelta(minutes=5)) == 0
        notes = await client.get("/v1/notifications?limit=200", headers=seeded.expert.headers)
        digests = [n for n in notes.json() if n["kind"] == "gaps.digest"]
        assert len(digests) == 1
        (digest,) = digests
        assert digest["url"] == "/assets/garden/gaps"
        assert digest["data"]["week"] == gaps.week_start(now).isoformat()
        assert digest["data"]["total"] == 9
        assert "9 questions on Garden store handbook" in digest["text"]
        assert "(4)" in digest["text"]  # the refunds group, the biggest
        assert f"Lost to abstentions: {seeded.abstained * PRICE / 100:.2f} USD" in digest["text"]
        await sign_in(client, seeded.expert)
        page = await client.get("/notifications")
        assert 'href="/assets/garden/gaps"' in page.text
        # A week later nothing new was asked: nothing to tell.
        assert gaps.send_digests(runtime, now=now + timedelta(days=7)) == 0
        with Session(runtime.engine) as session:
            kinds = session.exec(
                select(Notification.kind).where(Notification.kind == gaps.DIGEST_KIND)
            ).all()
        assert len(kinds) == 1


class TestDashboard:
    async def test_earnings_page_charts(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        seeded = await seed(client, runtime)
        expert = seeded.expert
        queue = await client.get("/v1/review/queue", headers=expert.headers)
        items = {i["question"]: i["id"] for i in queue.json()}
        refund_items = [items[q] for q in REFUNDS if q in items]
        assert len(refund_items) >= 2
        approved = await client.post(
            f"/v1/review/{refund_items[0]}/approve", headers=expert.headers
        )
        assert approved.status_code == 200, approved.text
        rejected = await client.post(
            f"/v1/review/{refund_items[1]}/reject", json={}, headers=expert.headers
        )
        assert rejected.status_code == 200, rejected.text

        await sign_in(client, expert)
        earnings = await client.get("/earnings")
        assert 'hx-get="/earnings/charts"' in earnings.text
        fragment = await client.get("/earnings/charts", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        for label in ("Earnings released to you", "Questions asked of your assets", "Acceptance"):
            assert f'aria-label="{label}' in fragment.text
        fee = billing.fee_for(PRICE, runtime.settings.billing.platform_fee_bps)
        earned = 2 * (PRICE - fee)  # the accepted answer and the approved one
        assert f'<strong id="earned-total">{earned / 100:.2f} USD</strong>' in fragment.text
        asked = len(seeded.statuses)
        assert f'<strong id="questions-total">{asked}</strong>' in fragment.text
        # Accepted and approved stood, rejected was refunded: 2 of 3.
        assert '<strong id="acceptance-total">67% of 3</strong>' in fragment.text
        whole = await client.get("/earnings/charts")
        assert "<html" in whole.text
        assert whole.text.count("<svg") == 3

    async def test_clients_refused(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        asker = create_actor(runtime, role="client", password=PASSWORD)
        await sign_in(client, asker)
        page = await client.get("/earnings/charts")
        assert page.status_code == 403


def test_cluster_labels_deterministic_and_single(runtime: Runtime) -> None:
    assert gaps.cluster_labels([]) == []
    assert gaps.cluster_labels([[1.0, 0.0]]) == [0]
    vectors = runtime.embedder.embed([*REFUNDS, *SHIPPING, UNRELATED])
    first = gaps.cluster_labels(vectors)
    assert first == gaps.cluster_labels(vectors)
    assert len(set(first[:4])) == 1
    assert len(set(first[4:7])) == 1
    assert len({first[0], first[4], first[7]}) == 3
