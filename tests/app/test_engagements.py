"""Engagements over HTTP on SQLite and PostgreSQL: the whole way with money checked at every
step, refused steps, auto-release on a controlled clock, escalation from an answer, drafting
from the expert's asset, PDF reports, Stripe funding, and tenants kept apart."""

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from app import engagements
from app.runtime import Runtime
from assets.embeddings import Embedder
from assets.models import Consultation
from billing import ledger
from billing import service as billing
from core.config import Settings
from core.db import session_scope
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path
from tests.stripe_fakes import (
    FakeGateway,
    charge,
    checkout_session,
    event,
    post_event,
    stripe_settings,
)

FEE_BPS = 2000
QUESTION = "How long does a refund take?"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def grant(runtime: Runtime, actor: Actor, amount: int = 100_000, key: str = "grant-1") -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key=key
        )


def money(runtime: Runtime, eng: dict[str, Any]) -> dict[str, int]:
    """The balances an engagement moves, after checking that every transaction balances."""
    with Session(runtime.engine) as session:
        assert ledger.unbalanced_transactions(session) == []

        def balance(account: str) -> int:
            return ledger.balance(session, account, "usd")

        found = {
            "credits": balance(ledger.credits(eng["client"]["id"])),
            "expert": balance(ledger.available(eng["expert"]["id"])),
            "revenue": balance(ledger.REVENUE),
        }
        for m in eng["milestones"]:
            found[f"m{m['position']}"] = balance(ledger.milestone(m["id"]))
        return found


async def commission(
    client: httpx.AsyncClient,
    client_user: Actor,
    expert: Actor,
    amounts: tuple[int, ...] = (30_000, 20_000),
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "expert_id": expert.account.id,
        "title": "Architecture review",
        "scope": "Review the payment service: its design and failure modes.",
        "deliverable": "A written report per part",
        "milestones": [{"title": f"Part {n}", "amount": a} for n, a in enumerate(amounts, 1)],
        **extra,
    }
    response = await client.post("/v1/engagements", json=body, headers=client_user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def step(
    client: httpx.AsyncClient,
    actor: Actor,
    eng: dict[str, Any],
    action: str,
    milestone: int | None = None,
    body: dict[str, Any] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    path = f"/v1/engagements/{eng['id']}"
    if milestone is not None:
        path += f"/milestones/{eng['milestones'][milestone - 1]['id']}"
    response = await client.post(f"{path}/{action}", json=body, headers=actor.headers)
    assert response.status_code == status, response.text
    return dict(response.json())


async def agreed(
    client: httpx.AsyncClient,
    client_user: Actor,
    expert: Actor,
    amounts: tuple[int, ...] = (30_000, 20_000),
) -> dict[str, Any]:
    eng = await commission(client, client_user, expert, amounts)
    return await step(client, expert, eng, "accept")


@pytest.mark.both_databases
async def test_engagement_from_request_to_release_with_a_revision_and_a_split(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor, admin: Actor
) -> None:
    grant(runtime, client_user)
    eng = await commission(client, client_user, expert, (25_000, 15_000))
    assert eng["status"] == "requested"
    assert eng["viewer"] == "client"
    assert eng["actions"] == ["cancel"]
    start = {"credits": 100_000, "expert": 0, "revenue": 0, "m1": 0, "m2": 0}
    assert money(runtime, eng) == start

    # The expert asks for more; the client agrees.
    eng = await step(
        client,
        expert,
        eng,
        "propose",
        body={
            "milestones": [
                {"title": "Design review", "amount": 30_000},
                {"title": "Failure modes", "amount": 20_000},
            ],
            "note": "The failure modes need a week more.",
        },
    )
    assert (eng["status"], eng["total"]) == ("proposed", 50_000)
    assert eng["actions"] == ["propose"]
    eng = await step(client, client_user, eng, "accept-proposal")
    assert eng["status"] == "accepted"
    assert [m["actions"] for m in eng["milestones"]] == [["fund"], ["fund"]]
    assert money(runtime, eng) == start

    eng = await step(client, client_user, eng, "fund", 1)
    assert eng["milestones"][0]["status"] == "funded"
    assert money(runtime, eng) == {**start, "credits": 70_000, "m1": 30_000}

    eng = await step(client, expert, eng, "deliver", 1, {"report": "# Design\n\nToo coupled."})
    first = eng["milestones"][0]
    assert first["status"] == "delivered"
    delivered = datetime.fromisoformat(first["delivered_at"])
    assert datetime.fromisoformat(first["release_after"]) == delivered + timedelta(days=14)
    assert money(runtime, eng) == {**start, "credits": 70_000, "m1": 30_000}

    eng = await step(client, client_user, eng, "revise", 1, {"note": "Cover the queue too."})
    assert (eng["milestones"][0]["status"], eng["milestones"][0]["revisions"]) == ("revision", 1)
    assert money(runtime, eng) == {**start, "credits": 70_000, "m1": 30_000}

    eng = await step(client, expert, eng, "deliver", 1, {"report": "# Design\n\nAnd the queue."})
    assert eng["milestones"][0]["report"] == "# Design\n\nAnd the queue."
    assert money(runtime, eng) == {**start, "credits": 70_000, "m1": 30_000}

    eng = await step(client, client_user, eng, "approve", 1)
    assert eng["milestones"][0]["status"] == "released"
    # 30000 less the 20% fee to the expert.
    after_first = {**start, "credits": 70_000, "expert": 24_000, "revenue": 6_000}
    assert money(runtime, eng) == after_first

    eng = await step(client, client_user, eng, "fund", 2)
    assert money(runtime, eng) == {**after_first, "credits": 50_000, "m2": 20_000}
    eng = await step(client, expert, eng, "deliver", 2, {"report": "Failure modes: none."})
    assert money(runtime, eng) == {**after_first, "credits": 50_000, "m2": 20_000}
    eng = await step(client, client_user, eng, "dispute", 2, {"reason": "It misses the queue."})
    assert eng["milestones"][1]["status"] == "disputed"
    assert money(runtime, eng) == {**after_first, "credits": 50_000, "m2": 20_000}

    disputes = await client.get("/v1/admin/disputes", headers=admin.headers)
    assert disputes.status_code == 200
    (waiting,) = disputes.json()
    assert (waiting["milestone_id"], waiting["reason"], waiting["held"]) == (
        eng["milestones"][1]["id"],
        "It misses the queue.",
        20_000,
    )
    eng = await step(
        client,
        admin,
        eng,
        "settle",
        2,
        {"outcome": "split", "expert_share": 12_000, "note": "half the work stands"},
    )
    # 12000 to the expert less 20% (2400), 8000 back to the client's credits.
    assert money(runtime, eng) == {
        "credits": 58_000,
        "expert": 24_000 + 9_600,
        "revenue": 6_000 + 2_400,
        "m1": 0,
        "m2": 0,
    }
    assert eng["status"] == "completed"
    assert eng["milestones"][1]["status"] == "split"
    assert [e["kind"] for e in eng["events"]] == [
        "requested",
        "proposed",
        "proposal_accepted",
        "funded",
        "delivered",
        "revision_requested",
        "delivered",
        "approved",
        "funded",
        "delivered",
        "disputed",
        "settled",
        "completed",
    ]
    settled = eng["events"][-2]
    assert settled["actor"] == admin.account.name
    assert settled["data"] == {
        "outcome": "split",
        "expert_share": 12_000,
        "note": "half the work stands",
        "fee": 2_400,
        "to_expert": 9_600,
        "to_client": 8_000,
    }
    assert eng["events"][7]["data"] == {"fee": 6_000, "to_expert": 24_000, "to_client": 0}
    assert (await client.get("/v1/admin/disputes", headers=admin.headers)).json() == []


class TestRefused:
    async def test_deliver_an_unfunded_milestone(
        self, client: httpx.AsyncClient, client_user: Actor, expert: Actor
    ) -> None:
        eng = await agreed(client, client_user, expert)
        body = await step(client, expert, eng, "deliver", 1, {"report": "r"}, status=409)
        assert body == {
            "error": "TransitionRefused",
            "detail": "cannot deliver milestone 1 (Part 1): it is not funded yet: "
            "the client funds it into escrow before you deliver",
        }

    async def test_approve_twice(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
    ) -> None:
        grant(runtime, client_user)
        eng = await agreed(client, client_user, expert)
        await step(client, client_user, eng, "fund", 1)
        await step(client, expert, eng, "deliver", 1, {"report": "r"})
        eng = await step(client, client_user, eng, "approve", 1)
        before = money(runtime, eng)
        body = await step(client, client_user, eng, "approve", 1, status=409)
        assert body["detail"] == (
            "cannot approve milestone 1 (Part 1): it was released to the expert already"
        )
        assert money(runtime, eng) == before

    async def test_fund_a_declined_engagement(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
    ) -> None:
        grant(runtime, client_user)
        eng = await commission(client, client_user, expert)
        await step(client, expert, eng, "decline", body={"reason": "Fully booked"})
        body = await step(client, client_user, eng, "fund", 1, status=409)
        assert body["detail"] == "cannot fund milestone 1 (Part 1): this engagement was declined"
        assert money(runtime, eng)["credits"] == 100_000

    async def test_fund_without_enough_credits(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
    ) -> None:
        grant(runtime, client_user, 1_000)
        eng = await agreed(client, client_user, expert)
        body = await step(client, client_user, eng, "fund", 1, status=402)
        assert "this milestone costs 300.00 USD and you have 10.00 USD" in body["detail"]
        again = await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)
        assert again.json()["milestones"][0]["status"] == "pending"
        assert [e["kind"] for e in again.json()["events"]] == ["requested", "accepted"]

    async def test_revise_past_the_limit(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
    ) -> None:
        grant(runtime, client_user)
        eng = await commission(client, client_user, expert, (10_000,), revision_limit=1)
        await step(client, expert, eng, "accept")
        await step(client, client_user, eng, "fund", 1)
        await step(client, expert, eng, "deliver", 1, {"report": "r"})
        await step(client, client_user, eng, "revise", 1, {"note": "more"})
        eng = await step(client, expert, eng, "deliver", 1, {"report": "r2"})
        assert eng["milestones"][0]["actions"] == []  # the expert's view
        body = await step(client, client_user, eng, "revise", 1, {"note": "more"}, status=409)
        assert body["error"] == "RevisionLimitReached"
        assert body["detail"] == (
            "milestone 1 (Part 1) has had 1 revision(s), the limit agreed for this engagement: "
            "approve it, or dispute it for an admin to settle"
        )

    async def test_steps_of_the_other_party_are_forbidden(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
    ) -> None:
        grant(runtime, client_user)
        eng = await commission(client, client_user, expert)
        body = await step(client, client_user, eng, "accept", status=403)
        assert body["detail"] == "only the expert it was commissioned from can accept this request"
        await step(client, expert, eng, "accept")
        body = await step(client, expert, eng, "fund", 1, status=403)
        assert body["detail"] == "only the client who commissioned it can fund a milestone"
        body = await step(client, client_user, eng, "settle", 1, {"outcome": "refund"}, status=403)
        assert body["detail"] == "only an admin can settle a dispute"

    async def test_settle_an_undisputed_milestone(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        client_user: Actor,
        expert: Actor,
        admin: Actor,
    ) -> None:
        grant(runtime, client_user)
        eng = await agreed(client, client_user, expert)
        await step(client, client_user, eng, "fund", 1)
        body = await step(client, admin, eng, "settle", 1, {"outcome": "refund"}, status=409)
        assert body["detail"] == (
            "cannot settle milestone 1 (Part 1): it is funded and waits for the expert's delivery"
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"milestones": []}, "milestones: List should have at least 1 item"),
        ({"milestones": [{"title": "A", "amount": 0}]}, "greater than or equal to 1"),
        ({"deadline": "2020-01-01T00:00:00Z"}, "the deadline 2020-01-01 00:00 UTC has passed"),
        ({"currency": "us1"}, "currency 'us1' is not a three-letter ISO code"),
        ({"expert_id": "acc_nobody"}, "no expert acc_nobody"),
        ({"asset": "nowhere"}, "no asset 'nowhere'"),
    ],
)
async def test_commission_input_is_checked(
    client: httpx.AsyncClient,
    client_user: Actor,
    expert: Actor,
    change: dict[str, Any],
    message: str,
) -> None:
    body = {
        "expert_id": expert.account.id,
        "title": "Review",
        "scope": "Review it.",
        "deliverable": "A report",
        "milestones": [{"title": "All", "amount": 5_000}],
        **change,
    }
    response = await client.post("/v1/engagements", json=body, headers=client_user.headers)
    assert response.status_code in (404, 422), response.text
    assert message in response.json()["detail"]


async def test_experts_do_not_commission(
    client: httpx.AsyncClient, expert: Actor, expert_second: Actor
) -> None:
    body = {
        "expert_id": expert_second.account.id,
        "title": "Review",
        "scope": "Review it.",
        "deliverable": "A report",
        "milestones": [{"title": "All", "amount": 5_000}],
    }
    response = await client.post("/v1/engagements", json=body, headers=expert.headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "only client accounts commission engagements"


async def test_tenants_see_only_their_own_engagements(
    client: httpx.AsyncClient,
    runtime: Runtime,
    client_user: Actor,
    client_second: Actor,
    expert: Actor,
    expert_second: Actor,
    admin: Actor,
) -> None:
    grant(runtime, client_user)
    grant(runtime, client_second, key="grant-2")
    eng = await agreed(client, client_user, expert)
    path = f"/v1/engagements/{eng['id']}"
    for stranger in (client_second, expert_second):
        response = await client.get(path, headers=stranger.headers)
        assert response.status_code == 404
        assert response.json() == {
            "error": "EngagementNotFound",
            "detail": f"no engagement {eng['id']}",
        }
        assert (await client.get("/v1/engagements", headers=stranger.headers)).json() == []
    assert (await step(client, client_second, eng, "fund", 1, status=404))["error"] == (
        "EngagementNotFound"
    )
    assert (await step(client, expert_second, eng, "accept", status=404))["error"] == (
        "EngagementNotFound"
    )
    refused = await step(client, client_second, eng, "settle", 1, {"outcome": "refund"}, 404)
    assert refused["error"] == "EngagementNotFound"
    assert money(runtime, eng)["credits"] == 100_000
    for party in (client_user, expert, admin):
        (row,) = (await client.get("/v1/engagements", headers=party.headers)).json()
        assert row["id"] == eng["id"]
    response = await client.get("/v1/admin/disputes", headers=client_user.headers)
    assert response.status_code == 403


@pytest.mark.both_databases
async def test_a_delivery_left_unanswered_is_released_after_the_window(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
) -> None:
    grant(runtime, client_user)
    eng = await agreed(client, client_user, expert, (10_000,))
    await step(client, client_user, eng, "fund", 1)
    eng = await step(client, expert, eng, "deliver", 1, {"report": "Done."})
    delivered = datetime.fromisoformat(eng["milestones"][0]["delivered_at"])
    held = {"credits": 90_000, "expert": 0, "revenue": 0, "m1": 10_000}
    assert money(runtime, eng) == held

    with session_scope(runtime.engine) as session:
        early = delivered + timedelta(days=13, hours=23)
        assert engagements.release_due(session, runtime, now=early) == 0
    assert money(runtime, eng) == held
    # The scheduled task runs on the real clock: nothing is due yet either.
    assert engagements.settle_due(runtime) == 0
    assert money(runtime, eng) == held

    with session_scope(runtime.engine) as session:
        later = delivered + timedelta(days=15)
        assert engagements.release_due(session, runtime, now=later) == 1
    assert money(runtime, eng) == {"credits": 90_000, "expert": 8_000, "revenue": 2_000, "m1": 0}
    with session_scope(runtime.engine) as session:
        assert engagements.release_due(session, runtime, now=later) == 0
    assert money(runtime, eng)["expert"] == 8_000

    # Both parties are told, once.
    for actor in (client_user, expert):
        listed = await client.get("/v1/notifications", headers=actor.headers)
        released_notes = [n for n in listed.json() if n["kind"] == "engagement.released"]
        assert [n["message"] for n in released_notes] == [
            f"Milestone '{eng['milestones'][0]['title']}' of engagement '{eng['title']}' was "
            "released when its review window ended without an answer: 80.00 USD to the expert"
        ]

    shown = (await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)).json()
    assert (shown["status"], shown["milestones"][0]["status"]) == ("completed", "released")
    released = shown["events"][-2]
    assert (released["kind"], released["actor"]) == ("auto_released", None)
    assert released["data"] == {"review_days": 14, "fee": 2_000, "to_expert": 8_000, "to_client": 0}
    # The client can no longer act on it.
    await step(client, client_user, eng, "dispute", 1, {"reason": "late"}, status=409)


async def test_the_release_task_is_scheduled(runtime: Runtime) -> None:
    # Both run every minute, so both are due at any time.
    names = {task.name for task in runtime.queue.huey.read_periodic(datetime.now())}
    assert {"settle-escrow", "release-engagements"} <= names


@pytest.mark.both_databases
async def test_a_pdf_report_is_stored_and_served_to_the_parties(
    client: httpx.AsyncClient,
    runtime: Runtime,
    client_user: Actor,
    client_second: Actor,
    expert: Actor,
) -> None:
    grant(runtime, client_user)
    eng = await agreed(client, client_user, expert, (10_000,))
    await step(client, client_user, eng, "fund", 1)
    path = f"/v1/engagements/{eng['id']}/milestones/{eng['milestones'][0]['id']}"
    response = await client.post(
        f"{path}/deliver-pdf",
        files={"file": ("report.pdf", b"not a pdf", "application/pdf")},
        headers=expert.headers,
    )
    assert response.status_code == 422
    assert (
        response.json()["detail"] == "the report file is not a PDF (it does not start with %PDF-)"
    )
    response = await client.post(
        f"{path}/deliver-pdf",
        files={"file": ("report.pdf", PDF, "application/pdf")},
        data={"report": "Summary: see the PDF."},
        headers=expert.headers,
    )
    assert response.status_code == 200, response.text
    milestone = response.json()["milestones"][0]
    assert (milestone["status"], milestone["report_pdf"]) == ("delivered", True)
    stored = list((runtime.settings.data_dir / "engagements" / eng["id"]).iterdir())
    assert [p.read_bytes() for p in stored] == [PDF]
    for party in (client_user, expert):
        download = await client.get(f"{path}/report.pdf", headers=party.headers)
        assert download.status_code == 200
        assert download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
    assert (await client.get(f"{path}/report.pdf", headers=client_second.headers)).status_code == (
        404
    )
    # A replica on another machine, without the file on its disk, serves it from the database.
    shutil.rmtree(runtime.settings.data_dir / "engagements")
    elsewhere = await client.get(f"{path}/report.pdf", headers=client_user.headers)
    assert (elsewhere.status_code, elsewhere.content) == (200, PDF)


@pytest.fixture
def garden(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    assert job.status == "succeeded", job.error
    return asset.slug


async def test_escalation_carries_the_question_answer_and_citations_and_drafts_from_the_asset(
    client: httpx.AsyncClient,
    runtime: Runtime,
    client_user: Actor,
    client_second: Actor,
    expert: Actor,
    garden: str,
) -> None:
    response = await client.post(
        f"/v1/assets/{garden}/ask", json={"question": QUESTION}, headers=client_user.headers
    )
    assert response.status_code == 200, response.text
    asked = response.json()
    assert asked["citations"]
    consultation_id = asked["consultation_id"]
    escalate = f"/v1/consultations/{consultation_id}/escalate"

    assert (await client.post(escalate, headers=client_second.headers)).status_code == 404
    response = await client.post(escalate, headers=client_user.headers)
    assert response.status_code == 201, response.text
    eng = response.json()
    assert (eng["status"], eng["expert"]["id"], eng["asset"]) == (
        "requested",
        expert.account.id,
        garden,
    )
    assert eng["origin"] == {
        "consultation_id": consultation_id,
        "question": QUESTION,
        "answer": asked["answer"],
        "citations": asked["citations"],
        "asked_at": eng["origin"]["asked_at"],
    }
    assert [(m["title"], m["amount"]) for m in eng["milestones"]] == [
        ("Written answer", engagements.DEFAULT_ESCALATION_PRICE)
    ]
    assert eng["title"] == f"Follow-up: {QUESTION}"
    assert QUESTION in eng["scope"]
    assert asked["answer"] in eng["scope"]
    assert "[1] policies.md" in eng["scope"]
    requested = eng["events"][0]
    assert requested["data"]["escalated_from"] == consultation_id
    assert requested["data"]["citations"] == asked["citations"]
    # The expert sees the same attachment.
    seen = (await client.get(f"/v1/engagements/{eng['id']}", headers=expert.headers)).json()
    assert seen["origin"] == eng["origin"]

    again = await client.post(escalate, headers=client_user.headers)
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"this answer is escalated already: engagement {eng['id']} (requested)"
    )

    # The expert drafts the report with the asset's help; nothing is billed or recorded.
    with Session(runtime.engine) as session:
        consultations = session.exec(select(func.count()).select_from(Consultation)).one()
    draft = await client.post(
        f"/v1/engagements/{eng['id']}/draft", json={"question": QUESTION}, headers=expert.headers
    )
    assert draft.status_code == 200, draft.text
    drafted = draft.json()
    assert drafted["asset"] == garden
    assert drafted["citations"]
    assert drafted["markdown"].startswith(f"**Q:** {QUESTION}\n")
    assert "Sources:" in drafted["markdown"]
    assert "- [1] policies.md" in drafted["markdown"]
    with Session(runtime.engine) as session:
        assert session.exec(select(func.count()).select_from(Consultation)).one() == consultations
    refused = await client.post(
        f"/v1/engagements/{eng['id']}/draft",
        json={"question": QUESTION},
        headers=client_user.headers,
    )
    assert refused.status_code == 403


async def test_escalation_takes_the_clients_terms(
    client: httpx.AsyncClient, client_user: Actor, garden: str
) -> None:
    asked = await client.post(
        f"/v1/assets/{garden}/ask", json={"question": QUESTION}, headers=client_user.headers
    )
    response = await client.post(
        f"/v1/consultations/{asked.json()['consultation_id']}/escalate",
        json={
            "title": "Refund policy review",
            "note": "Is this right for EU customers?",
            "milestones": [{"title": "Opinion", "amount": 4_000}],
        },
        headers=client_user.headers,
    )
    assert response.status_code == 201, response.text
    eng = response.json()
    assert eng["title"] == "Refund policy review"
    assert eng["scope"].endswith("Is this right for EU customers?")
    assert eng["total"] == 4_000


@pytest.mark.both_databases
class TestStripe:
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

    async def test_a_milestone_paid_by_card_is_funded_by_the_webhook_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        expert: Actor,
    ) -> None:
        eng = await agreed(client, client_user, expert)
        milestone_id = eng["milestones"][0]["id"]
        started = await step(client, client_user, eng, "fund", 1, {"pay": "card"})
        (session_id,) = gateway.checkouts
        assert started == {"checkout_url": f"https://checkout.stripe.test/c/pay/{session_id}"}
        (created,) = gateway.called("create_checkout_session")
        assert (created["amount"], created["currency"]) == (30_000, "usd")
        metadata = {
            "purpose": "milestone",
            "account_id": client_user.account.id,
            "milestone_id": milestone_id,
        }
        assert created["metadata"] == metadata
        assert created["success_url"] == f"http://vouch.test/engagements/{eng['id']}?checkout=done"
        assert money(runtime, eng)["m1"] == 0

        paid = event(
            "checkout.session.completed",
            checkout_session(session_id=session_id, metadata=metadata, amount=30_000),
        )
        for _ in range(2):  # a replayed event changes nothing
            assert (await post_event(client, paid)).status_code == 200
        eng = (await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)).json()
        assert eng["milestones"][0]["status"] == "funded"
        assert eng["events"][-1]["data"] == {"amount": 30_000, "via": "stripe"}
        assert money(runtime, eng) == {
            "credits": 0,
            "expert": 0,
            "revenue": 0,
            "m1": 30_000,
            "m2": 0,
        }
        # A second payment of the same milestone becomes the client's credits.
        second = event(
            "checkout.session.completed",
            checkout_session(metadata=metadata, amount=30_000),
        )
        assert (await post_event(client, second)).status_code == 200
        assert money(runtime, eng)["credits"] == 30_000
        assert money(runtime, eng)["m1"] == 30_000
        # Paying again by card is refused: it is funded.
        await step(client, client_user, eng, "fund", 1, {"pay": "card"}, status=409)
        # Refunding that second payment takes back the credits it became, not the escrow.
        refund = charge(
            metadata=metadata,
            amount=30_000,
            amount_refunded=30_000,
            payment_intent=second["data"]["object"]["payment_intent"],
            charge_id="ch_second",
        )
        assert (await post_event(client, event("charge.refunded", refund))).status_code == 200
        assert (money(runtime, eng)["credits"], money(runtime, eng)["m1"]) == (0, 30_000)
        shown = await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)
        assert shown.json()["milestones"][0]["status"] == "funded"

    async def _paid_by_card(
        self,
        client: httpx.AsyncClient,
        gateway: FakeGateway,
        client_user: Actor,
        expert: Actor,
        *,
        completed: bool = True,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """An engagement whose first milestone (300.00) was paid by card (Stripe's event sent
        unless not ``completed``), and the checkout."""
        eng = await agreed(client, client_user, expert)
        await step(client, client_user, eng, "fund", 1, {"pay": "card"})
        (session_id,) = gateway.checkouts
        metadata = {
            "purpose": "milestone",
            "account_id": client_user.account.id,
            "milestone_id": eng["milestones"][0]["id"],
        }
        paid = checkout_session(session_id=session_id, metadata=metadata, amount=30_000)
        if completed:
            await post_event(client, event("checkout.session.completed", paid))
        return eng, paid

    def _refund(self, paid: dict[str, Any], refunded: int) -> dict[str, Any]:
        return event(
            "charge.refunded",
            charge(
                metadata=paid["metadata"],
                amount=paid["amount_total"],
                amount_refunded=refunded,
                payment_intent=paid["payment_intent"],
                charge_id="ch_milestone",
            ),
        )

    async def test_a_card_refund_while_the_money_is_held_ends_the_milestone(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        expert: Actor,
    ) -> None:
        eng, paid = await self._paid_by_card(client, gateway, client_user, expert)
        eng = await step(client, expert, eng, "deliver", 1, {"report": "Done."})
        assert money(runtime, eng)["m1"] == 30_000

        # 100.00 refunded to the card: it leaves the escrow, and the rest goes to credits.
        part = self._refund(paid, 10_000)
        for _ in range(2):  # a replayed event changes nothing
            assert (await post_event(client, part)).status_code == 200
        assert money(runtime, eng) == {
            "credits": 20_000,
            "expert": 0,
            "revenue": 0,
            "m1": 0,
            "m2": 0,
        }
        eng = (await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)).json()
        assert eng["milestones"][0]["status"] == "refunded"
        ended = next(e for e in eng["events"] if e["kind"] == "payment_refunded")
        assert (ended["actor"], ended["data"]) == (
            None,
            {"fee": 0, "to_expert": 0, "to_client": 20_000},
        )
        for actor in (client_user, expert):
            listed = (await client.get("/v1/notifications", headers=actor.headers)).json()
            assert [n["message"] for n in listed if n["kind"] == "engagement.refunded"] == [
                f"The card payment for milestone '{eng['milestones'][0]['title']}' of engagement "
                f"'{eng['title']}' was refunded through Stripe, so the milestone has ended: "
                "200.00 USD left in its escrow went back to the client's credits"
            ]
        # Nothing more can happen to it.
        await step(client, client_user, eng, "approve", 1, status=409)

        # The rest refunded too (the charge's running total): taken from those credits.
        assert (await post_event(client, self._refund(paid, 30_000))).status_code == 200
        assert money(runtime, eng)["credits"] == 0
        assert money(runtime, eng)["m1"] == 0

    async def test_a_card_refund_after_the_release_is_the_platforms_loss(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        expert: Actor,
    ) -> None:
        eng, paid = await self._paid_by_card(client, gateway, client_user, expert)
        await step(client, expert, eng, "deliver", 1, {"report": "Done."})
        eng = await step(client, client_user, eng, "approve", 1)
        released = {"credits": 0, "expert": 24_000, "revenue": 6_000, "m1": 0, "m2": 0}
        assert money(runtime, eng) == released

        assert (await post_event(client, self._refund(paid, 30_000))).status_code == 200
        assert money(runtime, eng) == released  # the expert keeps what was released
        with Session(runtime.engine) as session:
            assert ledger.balance(session, ledger.LOSSES, "usd") == -30_000
        eng = (await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)).json()
        assert eng["milestones"][0]["status"] == "released"

    async def test_a_refund_that_arrives_before_the_payment_waits_for_it(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        gateway: FakeGateway,
        client_user: Actor,
        expert: Actor,
    ) -> None:
        eng, paid = await self._paid_by_card(client, gateway, client_user, expert, completed=False)
        assert (await post_event(client, self._refund(paid, 10_000))).status_code == 200
        assert money(runtime, eng)["credits"] == 0  # nothing paid yet, nothing taken

        await post_event(client, event("checkout.session.completed", paid))
        # 300.00 paid, 100.00 of it refunded: not enough to fund the milestone; the rest is credit.
        assert money(runtime, eng) == {
            "credits": 20_000,
            "expert": 0,
            "revenue": 0,
            "m1": 0,
            "m2": 0,
        }
        eng = (await client.get(f"/v1/engagements/{eng['id']}", headers=client_user.headers)).json()
        assert eng["milestones"][0]["status"] == "pending"

    async def test_a_milestone_under_stripes_minimum_is_paid_with_credits(
        self, client: httpx.AsyncClient, client_user: Actor, expert: Actor
    ) -> None:
        eng = await agreed(client, client_user, expert, (30,))
        body = await step(client, client_user, eng, "fund", 1, {"pay": "card"}, status=422)
        assert body["detail"] == (
            "Stripe's smallest payment is 0.50 USD: fund this milestone with credits"
        )


async def test_paying_by_card_without_stripe_answers_409(
    client: httpx.AsyncClient, client_user: Actor, expert: Actor
) -> None:
    eng = await agreed(client, client_user, expert)
    body = await step(client, client_user, eng, "fund", 1, {"pay": "card"}, status=409)
    assert body["error"] == "PaymentsNotConfigured"
    assert "vouch credits grant" in body["detail"]
