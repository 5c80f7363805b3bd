"""The review pages: the expert's queue, an item's approve / reject / correct, verified answers,
review settings and quality; and the client's flag, through real sign-in on both databases."""

import re
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from billing import service as billing
from core.db import session_scope
from tests.factories import (
    HANDBOOK,
    Actor,
    create_test_asset,
    ingest_path,
    review_record,
    sign_in,
)

HTMX = {"HX-Request": "true"}
QUESTION = "How long does a refund take?"
CORRECTION = "A refund takes 14 days from the day the store receives the returned item."


@pytest.fixture
async def garden(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> str:
    """An asset at 0.25 USD a question whose client has credits."""
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    assert job.status == "succeeded", job.error
    plan = await client.put(
        "/v1/assets/garden/plan", json={"per_query": 25}, headers=expert.headers
    )
    assert plan.status_code == 200, plan.text
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=client_user.account.id, amount=100, currency="usd", key="k"
        )
    return asset.slug


@pytest.fixture
async def in_review(
    client: httpx.AsyncClient, expert: Actor, client_user: Actor, garden: str
) -> dict[str, str]:
    """A client's answer sent to review for its low confidence: its consultation and item."""
    settings = await client.put(
        f"/v1/assets/{garden}/review-settings",
        json={"review_threshold": 0.99},
        headers=expert.headers,
    )
    assert settings.status_code == 200, settings.text
    asked = await client.post(
        f"/v1/assets/{garden}/ask", json={"question": QUESTION}, headers=client_user.headers
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "pending_review"
    queue = (await client.get("/v1/review/queue", headers=expert.headers)).json()
    (item,) = queue
    return {"consultation": asked.json()["consultation_id"], "item": item["id"]}


async def _consultation(client: httpx.AsyncClient, actor: Actor, consultation_id: str) -> Any:
    response = await client.get(f"/v1/consultations/{consultation_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _text(html: str) -> str:
    return " ".join(html.split())


def _row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}".*?</tr>', page, re.S)
    assert found is not None, page
    return _text(found.group(0))


async def test_review_pages_need_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/review", "/review/rev_x", "/assets/garden/verified", "/assets/garden/quality"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    posted = await client.post("/review/rev_x/approve")
    assert posted.status_code == 303
    assert posted.headers["location"] == "/login?next=/review/rev_x"


async def test_queue_lists_the_item_and_expert_approves_it_once(
    client: httpx.AsyncClient, expert: Actor, client_user: Actor, in_review: dict[str, str]
) -> None:
    item_id = in_review["item"]
    await sign_in(client, expert)
    queue = await client.get("/review")
    assert queue.status_code == 200
    assert 'href="/review">Review queue</a>' in queue.text
    row = _row(queue.text, item_id)
    assert f'href="/review/{item_id}"' in row
    assert QUESTION in row
    assert "Low confidence" in row
    assert "0.25 USD" in row
    assert "0.0 h" in row  # its age
    assert "overdue" not in row

    page = await client.get(f"/review/{item_id}")
    assert page.status_code == 200
    text = _text(page.text)
    assert QUESTION in text
    assert "Answer given" in text
    assert "policies.md:5-8" in text  # the citation's locator, with its passage
    assert "Store policies &gt; Refunds" in text
    for action in ("approve", "reject", "correct"):
        assert f'action="/review/{item_id}/{action}"' in page.text

    approved = await client.post(f"/review/{item_id}/approve")
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/review/{item_id}?done=1"
    after = await client.get(approved.headers["location"])
    assert "Approved: the answer stands" in after.text
    assert 'data-status="approved"' in after.text
    assert f'action="/review/{item_id}/reject"' not in after.text

    again = await client.post(f"/review/{item_id}/reject")
    assert again.status_code == 409
    assert "this item was approved already; it cannot be rejected again" in again.text
    assert 'data-status="approved"' in again.text
    twice = await client.post(f"/review/{item_id}/correct", data={"answer": CORRECTION})
    assert twice.status_code == 409

    assert item_id not in (await client.get("/review")).text
    assert item_id in (await client.get("/review?status=approved")).text
    seen = await _consultation(client, client_user, in_review["consultation"])
    assert (seen["status"], seen["charge"]["status"]) == ("final", "released")


async def test_expert_rejects_and_the_client_sees_it_refunded(
    client: httpx.AsyncClient, expert: Actor, client_user: Actor, in_review: dict[str, str]
) -> None:
    await sign_in(client, expert)
    rejected = await client.post(f"/review/{in_review['item']}/reject")
    assert rejected.status_code == 303
    assert (
        "Rejected: the client gets their money"
        in (await client.get(rejected.headers["location"])).text
    )

    await sign_in(client, client_user)
    page = (await client.get("/billing")).text
    row = _row(page, f"charge-{in_review['consultation']}")
    assert 'data-status="refunded"' in row
    assert "answer rejected" in row
    assert "1.00 USD" in page  # the credits are back


async def test_expert_corrects_keeping_one_citation(
    client: httpx.AsyncClient, expert: Actor, client_user: Actor, in_review: dict[str, str]
) -> None:
    item_id = in_review["item"]
    before = await _consultation(client, client_user, in_review["consultation"])
    kept = before["citations"][0]
    await sign_in(client, expert)
    page = await client.get(f"/review/{item_id}")
    assert f'name="keep" value="{kept["n"]}" checked' in page.text
    assert before["answer"] in page.text.replace("&#39;", "'")  # prefilled

    corrected = await client.post(
        f"/review/{item_id}/correct", data={"answer": CORRECTION, "keep": [str(kept["n"])]}
    )
    assert corrected.status_code == 303
    after = _text((await client.get(corrected.headers["location"])).text)
    assert "Corrected: the client now sees your answer" in after
    assert 'data-status="corrected"' in after
    assert "Your correction" in after
    assert CORRECTION in after

    seen = await _consultation(client, client_user, in_review["consultation"])
    assert (seen["answer"], seen["status"], seen["charge"]["status"]) == (
        CORRECTION,
        "corrected",
        "released",
    )
    first, second = seen["citations"]
    assert first["locator"]["expert"] == expert.account.name
    assert (second["text"], second["locator"]) == (kept["text"], kept["locator"])

    await sign_in(client, client_user)
    row = _row((await client.get("/billing")).text, f"charge-{in_review['consultation']}")
    assert "answer corrected" in row


async def test_empty_correction_is_refused_and_the_item_stays_open(
    client: httpx.AsyncClient, expert: Actor, in_review: dict[str, str]
) -> None:
    item_id = in_review["item"]
    await sign_in(client, expert)
    refused = await client.post(f"/review/{item_id}/correct", data={"answer": "   ", "keep": "1"})
    assert refused.status_code == 422
    assert "the corrected answer is empty" in refused.text
    assert 'data-status="open"' in refused.text
    assert f'action="/review/{item_id}/correct"' in refused.text
    assert 'name="keep" value="1" checked' in refused.text
    assert item_id in (await client.get("/review")).text


async def test_another_expert_gets_404_and_a_client_403(
    client: httpx.AsyncClient,
    expert_second: Actor,
    client_user: Actor,
    garden: str,
    in_review: dict[str, str],
) -> None:
    item_id = in_review["item"]
    await sign_in(client, expert_second)
    assert item_id not in (await client.get("/review")).text
    for response in (
        await client.get(f"/review/{item_id}"),
        await client.post(f"/review/{item_id}/approve"),
        await client.post(f"/review/{item_id}/correct", data={"answer": CORRECTION}),
    ):
        assert response.status_code == 404
        assert "<h1>404" in response.text
        assert f"no review item {item_id}" in response.text
    for path in (f"/assets/{garden}/verified", f"/assets/{garden}/quality"):
        refused = await client.get(path)
        assert refused.status_code == 403, path
        assert "only the owner" in refused.text

    await sign_in(client, client_user)
    for response in (
        await client.get("/review"),
        await client.get(f"/review/{item_id}"),
        await client.post(f"/review/{item_id}/approve"),
    ):
        assert response.status_code == 403
        assert "the review queue is for experts" in response.text
    assert 'href="/review"' not in (await client.get("/billing")).text


async def test_the_page_says_why_an_answer_is_pending(
    client: httpx.AsyncClient, client_user: Actor, garden: str
) -> None:
    await sign_in(client, client_user)
    answer = await client.post(f"/assets/{garden}/ask", data={"question": QUESTION}, headers=HTMX)
    assert answer.status_code == 200
    assert 'data-status="pending_review"' in answer.text
    assert "needed for a final answer" in answer.text


async def test_client_flags_an_answer_with_a_note_from_the_page(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, garden: str
) -> None:
    review_record(runtime, garden, stood=200)  # its answers are final
    await sign_in(client, client_user)
    answer = await client.post(f"/assets/{garden}/ask", data={"question": QUESTION}, headers=HTMX)
    assert answer.status_code == 200
    assert "Flag for review</button>" in answer.text
    assert "Dispute" not in answer.text
    found = re.search(r'id="charge-(con_[a-z0-9]+)"', answer.text)
    assert found is not None
    consultation_id = found.group(1)

    note = "The policy page says 30 days, not 14."
    flagged = await client.post(
        f"/billing/answers/{consultation_id}/dispute",
        data={"view": "line", "note": note},
        headers=HTMX,
    )
    assert flagged.status_code == 200
    text = _text(flagged.text)
    assert "flagged for review</strong>: held until the expert reviews it" in text
    assert "Flag for review</button>" not in text

    await sign_in(client, expert)
    queue = (await client.get("/review")).text
    assert "Flagged by the client" in queue
    assert "The policy page says 30 days, not 14." in queue


async def test_verified_answer_is_edited_and_retired(
    client: httpx.AsyncClient, expert: Actor, garden: str, in_review: dict[str, str]
) -> None:
    await sign_in(client, expert)
    done = await client.post(f"/review/{in_review['item']}/correct", data={"answer": CORRECTION})
    assert done.status_code == 303
    (verified,) = (await client.get(f"/v1/assets/{garden}/verified", headers=expert.headers)).json()
    verified_id = verified["id"]

    page = await client.get(f"/assets/{garden}/verified")
    assert page.status_code == 200
    assert f'id="{verified_id}"' in page.text
    assert CORRECTION in page.text
    assert f'value="{QUESTION}"' in page.text

    edited = await client.post(
        f"/assets/{garden}/verified/{verified_id}",
        data={"question": "How long do refunds take?", "answer": "Refunds take 14 days."},
    )
    assert edited.status_code == 303
    page = await client.get(edited.headers["location"])
    assert "Verified answer saved." in page.text
    assert "Refunds take 14 days." in page.text
    assert 'value="How long do refunds take?"' in page.text

    empty = await client.post(
        f"/assets/{garden}/verified/{verified_id}", data={"question": QUESTION, "answer": " "}
    )
    assert empty.status_code == 422
    assert "the verified answer is empty" in empty.text
    (live,) = (await client.get(f"/v1/assets/{garden}/verified", headers=expert.headers)).json()
    assert live["answer"] == "Refunds take 14 days."

    retired = await client.post(f"/assets/{garden}/verified/{verified_id}/retire")
    assert retired.status_code == 303
    page = await client.get(retired.headers["location"])
    assert "Verified answer retired" in page.text
    assert f'<tr id="{verified_id}" data-retired="true">' in page.text
    assert f'action="/assets/{garden}/verified/{verified_id}/retire"' not in page.text
    assert (await client.get(f"/v1/assets/{garden}/verified", headers=expert.headers)).json() == []


async def test_review_settings_are_saved_from_the_form(
    client: httpx.AsyncClient, expert: Actor, expert_second: Actor, garden: str
) -> None:
    await sign_in(client, expert)
    page = await client.get(f"/assets/{garden}/verified")
    assert 'name="review_hours" type="text" inputmode="decimal" value="48"' in page.text
    assert f'href="/assets/{garden}/quality"' in page.text

    saved = await client.post(
        f"/assets/{garden}/review-settings",
        data={"sample_rate": "10", "review_hours": "24", "review_threshold": "0.5"},
    )
    assert saved.status_code == 303
    page = await client.get(saved.headers["location"])
    assert "Review settings saved." in page.text
    for value in ('value="10"', 'value="24"', 'value="0.5"'):
        assert value in page.text

    bad = await client.post(
        f"/assets/{garden}/review-settings",
        data={"sample_rate": "lots", "review_hours": "24", "review_threshold": "0.5"},
    )
    assert bad.status_code == 422
    assert "Sample rate (% of answers reviewed at random): &#39;lots&#39;" in bad.text
    assert 'value="lots"' in bad.text
    hours = await client.post(f"/assets/{garden}/review-settings", data={"review_hours": "1.5"})
    assert hours.status_code == 422
    assert "use whole hours" in hours.text
    stored = await client.put(
        f"/v1/assets/{garden}/review-settings", json={}, headers=expert.headers
    )
    assert (stored.json()["sample_rate"], stored.json()["review_hours"]) == (0.1, 24)

    await sign_in(client, expert_second)
    foreign = await client.post(f"/assets/{garden}/review-settings", data={"review_hours": "1"})
    assert foreign.status_code == 403


async def test_quality_page_shows_the_counts(
    client: httpx.AsyncClient, expert: Actor, garden: str, in_review: dict[str, str]
) -> None:
    await sign_in(client, expert)
    await client.post(f"/review/{in_review['item']}/correct", data={"answer": CORRECTION})
    page = await client.get(f"/assets/{garden}/quality")
    assert page.status_code == 200
    assert f'href="/assets/{garden}/verified"' in page.text
    assert _row(page.text, "q-answers").endswith("<td>1</td><td></td></tr>")
    assert "<td>1</td><td>100%</td>" in _row(page.text, "q-auto_flagged")
    assert "<td>1</td><td>100%</td>" in _row(page.text, "q-corrected")
    assert "<td>0</td><td>0%</td>" in _row(page.text, "q-approved")
    assert "<td>1</td>" in _row(page.text, "q-verified_answers")
    assert " h</td>" in _row(page.text, "q-median")
