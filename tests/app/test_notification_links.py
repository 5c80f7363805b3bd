"""Notifications in words, each with a link to its subject that its recipient can open: for
every kind the review loop and engagements emit, through the real flows, in the JSON API and on
the notifications page, on both databases."""

from typing import Any

import httpx
import pytest
from markupsafe import escape

from app.runtime import Runtime
from billing import service as billing
from core.db import session_scope
from tests.factories import (
    HANDBOOK,
    PASSWORD,
    Actor,
    create_actor,
    create_test_asset,
    ingest_path,
    sign_in,
)

# SQLite only: where notification links lead; notifications are stored and tested on both in
# test_notifications.py.

QUESTIONS = (
    "How long does a refund take?",
    "When does the store open?",
    "What does the plant guarantee cover?",
)


@pytest.fixture
def client_user(runtime: Runtime) -> Actor:
    actor = create_actor(runtime, role="client", password=PASSWORD)
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=200_000, currency="usd", key="g"
        )
    return actor


async def notes_of(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    response = await client.get("/v1/notifications?limit=200", headers=actor.headers)
    assert response.status_code == 200
    notes: list[dict[str, Any]] = response.json()
    return notes


async def check_links(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    """Each of the actor's notifications has words and a link, the page shows both, and the
    link opens for the actor; returns the notifications."""
    notes = await notes_of(client, actor)
    await sign_in(client, actor)
    page = (await client.get("/notifications")).text
    for note in notes:
        assert note["text"] == note["message"]
        assert note["url"], note
        assert f'<a class="subject" href="{escape(note["url"])}">' in page
        assert str(escape(note["text"])) in page
        opened = await client.get(note["url"].split("#")[0])
        assert opened.status_code == 200, (note, opened.text[:500])
    return notes


async def test_review_notifications_say_what_happened_and_link_to_the_answer_or_item(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    assert job.status == "succeeded", job.error
    settings = await client.put(
        "/v1/assets/garden/review-settings",
        json={"review_threshold": 0.99},
        headers=expert.headers,
    )
    assert settings.status_code == 200
    consultations = []
    for question in QUESTIONS:
        asked = await client.post(
            "/v1/assets/garden/ask", json={"question": question}, headers=client_user.headers
        )
        assert asked.json()["status"] == "pending_review", asked.text
        consultations.append(asked.json()["consultation_id"])
    queue = (await client.get("/v1/review/queue", headers=expert.headers)).json()
    items = {i["consultation_id"]: i["id"] for i in queue}

    told = await check_links(client, expert)
    assert {n["kind"] for n in told} == {"review.new"}
    assert {n["url"] for n in told} == {f"/review/{i}" for i in items.values()}
    assert (
        f"The answer to '{QUESTIONS[0]}' on Garden store handbook waits for your review: "
        "its confidence is low"
    ) in {n["text"] for n in told}

    actions = ("approve", "reject", "correct")
    for consultation, action in zip(consultations, actions, strict=True):
        body = {"answer": "Fourteen days."} if action == "correct" else None
        response = await client.post(
            f"/v1/review/{items[consultation]}/{action}", headers=expert.headers, json=body
        )
        assert response.status_code == 200, response.text

    told = await check_links(client, client_user)
    by_kind = {n["kind"]: n for n in told}
    name = expert.account.name
    assert by_kind["review.approved"]["text"] == (
        f"Your answer to '{QUESTIONS[0]}' on Garden store handbook was approved by {name}: "
        "it stands"
    )
    assert by_kind["review.rejected"]["text"].startswith(
        f"Your answer to '{QUESTIONS[1]}' on Garden store handbook was found wrong by {name}"
    )
    assert by_kind["review.corrected"]["text"] == (
        f"Your answer to '{QUESTIONS[2]}' on Garden store handbook was corrected by {name}"
    )
    for kind, consultation in zip(
        ("review.approved", "review.rejected", "review.corrected"), consultations, strict=True
    ):
        assert by_kind[kind]["url"] == f"/answers/{consultation}"
    page = (await client.get(by_kind["review.corrected"]["url"])).text
    assert "Fourteen days." in page


async def test_engagement_notifications_name_the_milestone_and_link_to_the_engagement(
    client: httpx.AsyncClient, expert: Actor, client_user: Actor, admin: Actor
) -> None:
    async def step(actor: Actor, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"/v1/engagements/{path}".rstrip("/")
        response = await client.post(url, headers=actor.headers, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def terms(title: str) -> dict[str, Any]:
        return {
            "expert_id": expert.account.id,
            "title": title,
            "scope": "Review the design.",
            "deliverable": "A written report",
            "milestones": [
                {"title": "Draft report", "amount": 30_000},
                {"title": "Final report", "amount": 20_000},
            ],
            "revision_limit": 1,
        }

    # Requested, proposed, accepted (both ways), funded, delivered, revision, released,
    # disputed and settled.
    eng = await step(client_user, "", terms("Architecture review"))
    eid = eng["id"]
    first, second = (m["id"] for m in eng["milestones"])
    await step(
        expert,
        f"{eid}/propose",
        {
            "milestones": [
                {"title": "Draft report", "amount": 30_000},
                {"title": "Final report", "amount": 25_000},
            ]
        },
    )
    eng = await step(client_user, f"{eid}/accept-proposal")
    first, second = (m["id"] for m in eng["milestones"])
    for ms in (first, second):
        await step(client_user, f"{eid}/milestones/{ms}/fund", {"pay": "credits"})
        await step(expert, f"{eid}/milestones/{ms}/deliver", {"report": "# Report"})
    await step(client_user, f"{eid}/milestones/{first}/revise", {"note": "More detail"})
    await step(expert, f"{eid}/milestones/{first}/deliver", {"report": "# Report, detailed"})
    await step(client_user, f"{eid}/milestones/{first}/approve")
    await step(client_user, f"{eid}/milestones/{second}/dispute", {"reason": "Incomplete"})
    await step(admin, f"{eid}/milestones/{second}/settle", {"outcome": "refund"})
    # Declined, and cancelled.
    declined = await step(client_user, "", terms("Second opinion"))
    await step(expert, f"{declined['id']}/decline", {"reason": "Busy"})
    await step(expert, f"{(await step(client_user, '', terms('Third')))['id']}/accept")
    cancelled = await step(client_user, "", terms("Fourth"))
    await step(client_user, f"{cancelled['id']}/cancel")

    expert_notes = await check_links(client, expert)
    client_notes = await check_links(client, client_user)
    kinds = {n["kind"] for n in expert_notes} | {n["kind"] for n in client_notes}
    assert kinds >= {
        f"engagement.{k}"
        for k in (
            "requested",
            "proposed",
            "accepted",
            "funded",
            "delivered",
            "revision",
            "released",
            "disputed",
            "settled",
            "declined",
            "cancelled",
        )
    }
    for note in expert_notes + client_notes:
        assert note["url"].startswith(f"/engagements/{note['data']['engagement']}")
    texts = {n["text"] for n in expert_notes}
    assert (
        f"Milestone 'Draft report' of engagement 'Architecture review' was approved by "
        f"{client_user.account.name}: 240.00 USD is yours"
    ) in texts
    assert (
        f"{client_user.account.name} asks for a revision of milestone 'Draft report' of "
        "engagement 'Architecture review'"
    ) in texts
    revision = next(n for n in expert_notes if n["kind"] == "engagement.revision")
    assert revision["url"] == f"/engagements/{eid}#milestone-{first}"
    delivered = [n for n in client_notes if n["kind"] == "engagement.delivered"]
    assert any("milestone 'Final report' of engagement 'Architecture review'" in n["text"]
               for n in delivered)  # fmt: skip
