"""The review loop end to end over HTTP: flags, the expert's actions, verified answers, money."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session

from app.runtime import Runtime
from assets.models import Consultation
from billing import ledger
from billing import service as billing
from billing.models import Charge
from core.clock import utcnow
from core.db import session_scope
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path, review_record

QUESTION = "How long does a refund take?"
# Worded differently, meaning the same.
PARAPHRASE = "How much time does it take to get refunded?"
CORRECTION = "A refund takes 14 days from the day the store receives the returned item."


@pytest.fixture
def handbook(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    return asset.slug


async def setup(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    client_user: Actor,
    slug: str,
    **settings: Any,
) -> None:
    plan = {"per_query": 25, "acceptance_hours": settings.pop("acceptance_hours", 72)}
    if settings.pop("trusted", False):  # answers of this asset have stood: some are final
        review_record(runtime, slug, stood=200)
    response = await client.put(f"/v1/assets/{slug}/plan", json=plan, headers=expert.headers)
    assert response.status_code == 200, response.text
    if settings:
        response = await client.put(
            f"/v1/assets/{slug}/review-settings", json=settings, headers=expert.headers
        )
        assert response.status_code == 200, response.text
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=client_user.account.id, amount=100, currency="usd", key="k"
        )


async def ask(client: httpx.AsyncClient, actor: Actor, slug: str, question: str) -> Any:
    response = await client.post(
        f"/v1/assets/{slug}/ask", json={"question": question}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def queue(client: httpx.AsyncClient, expert: Actor) -> list[Any]:
    response = await client.get("/v1/review/queue", headers=expert.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def balance(runtime: Runtime, account: str) -> int:
    with Session(runtime.engine) as session:
        return ledger.balance(session, account, "usd")


async def test_low_confidence_answer_corrected_then_serves_a_paraphrase(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    # Every answer below 0.99 confidence goes to review.
    await setup(client, runtime, expert, client_user, handbook, review_threshold=0.99)
    first = await ask(client, client_user, handbook, QUESTION)
    assert first["status"] == "pending_review"
    assert first["charge"]["status"] == "in_review"

    (item,) = await queue(client, expert)
    assert (item["reason"], item["question"], item["consultation_id"]) == (
        "low_confidence",
        QUESTION,
        first["consultation_id"],
    )
    assert item["citations"] == first["citations"]
    assert item["value"] == 25

    cited = first["citations"][0]
    corrected = await client.post(
        f"/v1/review/{item['id']}/correct",
        json={"answer": CORRECTION, "citations": [cited]},
        headers=expert.headers,
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["status"] == "corrected"

    # The client sees the correction, is told, and the money went to the expert.
    seen = (
        await client.get(
            f"/v1/consultations/{first['consultation_id']}", headers=client_user.headers
        )
    ).json()
    assert (seen["answer"], seen["status"], seen["charge"]["status"]) == (
        CORRECTION,
        "corrected",
        "released",
    )
    notes = (await client.get("/v1/notifications", headers=client_user.headers)).json()
    assert any(n["kind"] == "review.corrected" for n in notes)
    assert balance(runtime, ledger.available(expert.account.id)) == 20

    # A later question that means the same is answered from the expert's words.
    later = await ask(client, client_user, handbook, PARAPHRASE)
    assert later["answer"] == CORRECTION
    assert later["status"] == "final"
    assert later["confidence"] >= 0.9
    locator = later["citations"][0]["locator"]
    assert locator["verified_answer"] == corrected.json()["verified_answer"]
    assert locator["expert"] == expert.account.name
    assert locator["date"] == utcnow().date().isoformat()
    assert later["citations"][1]["locator"] == cited["locator"]
    assert await queue(client, expert) == []  # the expert's own words are not reviewed again

    # Retired, it is never served again.
    retired = await client.delete(
        f"/v1/verified/{locator['verified_answer']}", headers=expert.headers
    )
    assert retired.json()["retired"] is True
    after = await ask(client, client_user, handbook, PARAPHRASE)
    assert after["answer"] != CORRECTION
    assert all("verified_answer" not in c["locator"] for c in after["citations"])


@pytest.mark.both_databases
async def test_approve_releases_and_reject_refunds(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await setup(client, runtime, expert, client_user, handbook, review_threshold=0.99)
    kept = await ask(client, client_user, handbook, QUESTION)
    wrong = await ask(client, client_user, handbook, "When does the store open?")
    assert balance(runtime, ledger.credits(client_user.account.id)) == 50
    items = {i["consultation_id"]: i["id"] for i in await queue(client, expert)}

    approved = await client.post(
        f"/v1/review/{items[kept['consultation_id']]}/approve", headers=expert.headers
    )
    rejected = await client.post(
        f"/v1/review/{items[wrong['consultation_id']]}/reject", headers=expert.headers
    )
    assert (approved.json()["status"], rejected.json()["status"]) == ("approved", "rejected")
    assert balance(runtime, ledger.available(expert.account.id)) == 20
    assert balance(runtime, ledger.REVENUE) == 5
    assert balance(runtime, ledger.credits(client_user.account.id)) == 75

    history = (await client.get("/v1/billing/balance", headers=client_user.headers)).json()
    states = {c["consultation_id"]: c["status"] for c in history["charges"]}
    assert states == {kept["consultation_id"]: "released", wrong["consultation_id"]: "refunded"}

    # Each item is acted on once.
    again = await client.post(
        f"/v1/review/{items[kept['consultation_id']]}/reject", headers=expert.headers
    )
    assert again.status_code == 409
    assert "approved already" in again.json()["detail"]
    assert balance(runtime, ledger.credits(client_user.account.id)) == 75

    quality = (await client.get(f"/v1/assets/{handbook}/quality", headers=expert.headers)).json()
    assert (quality["answers"], quality["auto_flagged"], quality["approved"]) == (2, 2, 1)
    assert (quality["rejected"], quality["rates"]["approved"]) == (1, 0.5)
    assert quality["median_hours_to_review"] is not None


async def test_client_flag_inside_the_window_only(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await setup(client, runtime, expert, client_user, handbook, acceptance_hours=24, trusted=True)
    flagged = await ask(client, client_user, handbook, QUESTION)
    late = await ask(client, client_user, handbook, "When does the store open?")
    assert flagged["status"] == "final"

    response = await client.post(
        f"/v1/consultations/{flagged['consultation_id']}/flag",
        json={"note": "The policy says 30 days"},
        headers=client_user.headers,
    )
    assert response.status_code == 201, response.text
    (item,) = await queue(client, expert)
    assert (item["reason"], item["client_note"]) == ("client_flag", "The policy says 30 days")
    seen = (
        await client.get(
            f"/v1/consultations/{flagged['consultation_id']}", headers=client_user.headers
        )
    ).json()
    assert seen["status"] == "pending_review"
    expert_notes = (await client.get("/v1/notifications", headers=expert.headers)).json()
    assert [n["kind"] for n in expert_notes] == ["review.new"]

    twice = await client.post(
        f"/v1/consultations/{flagged['consultation_id']}/flag",
        json={"note": "again"},
        headers=client_user.headers,
    )
    assert twice.status_code == 409

    # A day later the window has closed (its money is released at the next minute's run).
    with session_scope(runtime.engine) as session:
        session.execute(
            update(Charge)
            .where(Charge.consultation_id == late["consultation_id"])
            .values(release_after=utcnow() - timedelta(minutes=1))
        )
    closed = await client.post(
        f"/v1/consultations/{late['consultation_id']}/flag",
        json={"note": "too late"},
        headers=client_user.headers,
    )
    assert closed.status_code == 409
    assert "acceptance window" in closed.json()["detail"]
    assert len(await queue(client, expert)) == 1


async def test_experts_and_clients_reach_only_their_own_items(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    client_user: Actor,
    client_second: Actor,
    handbook: str,
) -> None:
    await setup(client, runtime, expert, client_user, handbook, review_threshold=0.99)
    asked = await ask(client, client_user, handbook, QUESTION)
    (item,) = await queue(client, expert)
    assert await queue(client, expert_second) == []
    for action in ("approve", "reject"):
        response = await client.post(
            f"/v1/review/{item['id']}/{action}", headers=expert_second.headers
        )
        assert response.status_code == 404
    response = await client.post(
        f"/v1/review/{item['id']}/correct",
        json={"answer": "mine"},
        headers=expert_second.headers,
    )
    assert response.status_code == 404
    other = await client.post(
        f"/v1/consultations/{asked['consultation_id']}/flag",
        json={"note": "not mine"},
        headers=client_second.headers,
    )
    assert other.status_code == 404
    assert (await client.get("/v1/review/queue", headers=client_user.headers)).status_code == 403
    # Nothing moved: the item is still open and its money held.
    assert [i["status"] for i in await queue(client, expert)] == ["open"]


async def test_sampling_sends_final_answers_to_review(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await setup(client, runtime, expert, client_user, handbook, sample_rate=1.0, trusted=True)
    asked = await ask(client, client_user, handbook, QUESTION)
    assert asked["status"] == "pending_review"
    (item,) = await queue(client, expert)
    assert item["reason"] == "sampled"


async def test_bad_correction_is_422_and_the_item_stays_open(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await setup(client, runtime, expert, client_user, handbook, review_threshold=0.99)
    await ask(client, client_user, handbook, QUESTION)
    (item,) = await queue(client, expert)
    for body in (
        {"answer": "   "},
        {"answer": "fine", "citations": [{"text": "x", "locator": {}}]},
    ):
        response = await client.post(
            f"/v1/review/{item['id']}/correct", json=body, headers=expert.headers
        )
        assert response.status_code == 422, body
    assert [i["status"] for i in await queue(client, expert)] == ["open"]


async def test_correction_markers_point_at_the_passages_kept(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await setup(client, runtime, expert, client_user, handbook, review_threshold=0.99)
    asked = await ask(client, client_user, handbook, QUESTION)
    (item,) = await queue(client, expert)
    kept = asked["citations"][0]
    response = await client.post(
        f"/v1/review/{item['id']}/correct",
        json={"answer": f"Refunds take 14 days [{kept['n']}]. Not this [99].", "citations": [kept]},
        headers=expert.headers,
    )
    assert response.status_code == 200, response.text
    seen = (
        await client.get(
            f"/v1/consultations/{asked['consultation_id']}", headers=client_user.headers
        )
    ).json()
    # [1] is the verified answer itself; the kept passage is [2]; a marker to nothing is dropped.
    assert seen["answer"] == "Refunds take 14 days [2]. Not this."
    assert seen["citations"][1]["locator"] == kept["locator"]


async def test_an_assets_record_decides_whether_its_answers_are_final(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, handbook: str
) -> None:
    await setup(client, runtime, expert, client_user, handbook)
    # A new asset: its kind's calibration alone is not sure enough; the client is told why.
    first = await ask(client, client_user, handbook, QUESTION)
    assert first["status"] == "pending_review"
    assert first["confidence"] < 0.9
    assert "needed for a final answer" in first["review_reason"]
    (item,) = await queue(client, expert)
    assert item["reason"] == "low_confidence"
    with Session(runtime.engine) as session:
        stored = session.get(Consultation, first["consultation_id"])
        assert stored is not None
        assert stored.prior_confidence == first["confidence"]  # no reviews yet: no offset
    # Its expert approved many earlier answers: the same kind of answer is now final.
    review_record(runtime, handbook, stood=200)
    trusted = await ask(client, client_user, handbook, "When does the store open?")
    assert trusted["status"] == "final"
    assert trusted["review_reason"] is None
    assert trusted["confidence"] >= 0.9
    # Then the expert corrected or rejected even more: pending again.
    review_record(runtime, handbook, stood=0, wrong=400)
    doubted = await ask(client, client_user, handbook, "Can I return a plant?")
    assert doubted["status"] == "pending_review"
    assert doubted["confidence"] < trusted["confidence"]
