"""A correction that cites passages the expert found by searching the asset: the item's search
(API and htmx page), the picked passages stored with their locators and shown to the client,
and refusals (another asset's passages, another expert's item), on both databases."""

import re

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Asset, ReviewItem, VerifiedAnswer
from billing import service as billing
from core.db import session_scope
from tests.factories import (
    HANDBOOK,
    Actor,
    create_test_asset,
    ingest_path,
    sign_in,
)

# SQLite only: how a review page shows citations; review's writes are tested on both in
# test_review.py.

HTMX = {"HX-Request": "true"}
QUESTION = "How long does a refund take?"


@pytest.fixture
def depot(runtime: Runtime, expert_second: Actor) -> str:
    """Another expert's asset, about deliveries."""
    asset = create_test_asset(runtime, owner=expert_second.account, slug="depot")
    job = ingest_path(
        runtime, asset=asset, owner=expert_second.account, path=HANDBOOK / "delivery.txt"
    )
    assert job.status == "succeeded", job.error
    return asset.slug


@pytest.fixture
async def in_review(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, depot: str
) -> dict[str, str]:
    """A client's answer on the expert's garden asset, waiting for review (with another
    expert's ``depot`` beside it)."""
    assert depot == "depot"
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    assert job.status == "succeeded", job.error
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=client_user.account.id, amount=100, currency="usd", key="k"
        )
    settings = await client.put(
        "/v1/assets/garden/review-settings",
        json={"review_threshold": 0.99},
        headers=expert.headers,
    )
    assert settings.status_code == 200, settings.text
    asked = await client.post(
        "/v1/assets/garden/ask", json={"question": QUESTION}, headers=client_user.headers
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "pending_review"
    (item,) = (await client.get("/v1/review/queue", headers=expert.headers)).json()
    return {"consultation": asked.json()["consultation_id"], "item": item["id"]}


def chunk_ids(runtime: Runtime, slug: str) -> list[str]:
    with Session(runtime.engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == slug)).one()
    return runtime.index.collection(asset.collection).ids()


async def search(client: httpx.AsyncClient, actor: Actor, item: str, q: str) -> httpx.Response:
    return await client.get(f"/v1/review/{item}/search", params={"q": q}, headers=actor.headers)


async def test_search_finds_passages_of_this_asset_only(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, in_review: dict[str, str]
) -> None:
    # The other asset is all about deliveries by van; this one mentions delivery fees once.
    response = await search(client, expert, in_review["item"], "delivery by van kilograms")
    assert response.status_code == 200, response.text
    found = response.json()
    assert found
    assert {p["locator"]["path"] for p in found} == {"policies.md"}
    assert {p["chunk_id"] for p in found} <= set(chunk_ids(runtime, "garden"))
    assert not {p["chunk_id"] for p in found} & set(chunk_ids(runtime, "depot"))
    guarantee = (await search(client, expert, in_review["item"], "plant guarantee")).json()
    assert "one-year guarantee" in guarantee[0]["text"]
    assert guarantee[0]["locator"]["lines"]
    assert [p["rank"] for p in guarantee] == list(range(1, len(guarantee) + 1))


async def test_search_is_refused_to_anyone_but_the_assets_expert(
    client: httpx.AsyncClient,
    expert: Actor,
    expert_second: Actor,
    client_user: Actor,
    in_review: dict[str, str],
) -> None:
    for outsider in (expert_second, client_user):
        response = await search(client, outsider, in_review["item"], "refund")
        assert response.status_code == 404, response.text
        assert "no review item" in response.json()["detail"]
    blank = await search(client, expert, in_review["item"], "   ")
    assert blank.status_code == 422
    assert "empty" in blank.json()["detail"]


async def test_a_correction_cites_picked_passages_and_the_client_sees_their_locators(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    client_user: Actor,
    in_review: dict[str, str],
) -> None:
    (picked, *_) = (await search(client, expert, in_review["item"], "plant guarantee")).json()
    response = await client.post(
        f"/v1/review/{in_review['item']}/correct",
        headers=expert.headers,
        json={
            "answer": "Refunds take up to 14 days; plants are covered by a guarantee [2].",
            # The text and locator are read from the asset: what the request says is ignored.
            "citations": [{"n": 2, "chunk_id": picked["chunk_id"], "text": "made up"}],
        },
    )
    assert response.status_code == 200, response.text
    with Session(runtime.engine) as session:
        verified = session.get(VerifiedAnswer, response.json()["verified_answer"])
        assert verified is not None
        assert verified.citations == [{"text": picked["text"], "locator": picked["locator"]}]

    shown = await client.get(
        f"/v1/consultations/{in_review['consultation']}", headers=client_user.headers
    )
    body = shown.json()
    assert body["status"] == "corrected"
    assert body["answer"].endswith("a guarantee [2].")
    assert body["citations"][0]["locator"]["verified_answer"] == verified.id
    assert body["citations"][1] == {"n": 2, "text": picked["text"], "locator": picked["locator"]}

    await sign_in(client, client_user)
    page = await client.get(f"/answers/{in_review['consultation']}")
    assert page.status_code == 200
    lines = picked["locator"]["lines"]
    assert f"policies.md:{lines[0]}-{lines[1]}" in page.text
    assert "one-year guarantee" in page.text
    assert "Corrected" in page.text


async def test_passages_of_another_asset_or_unknown_ids_are_refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    client_user: Actor,
    in_review: dict[str, str],
) -> None:
    foreign = chunk_ids(runtime, "depot")[0]
    for chunk in (foreign, "chk_nonexistent"):
        response = await client.post(
            f"/v1/review/{in_review['item']}/correct",
            headers=expert.headers,
            json={"answer": "Fourteen days.", "citations": [{"chunk_id": chunk}]},
        )
        assert response.status_code == 422, response.text
        assert "is not a passage of Garden store handbook" in response.json()["detail"]
    neither = await client.post(
        f"/v1/review/{in_review['item']}/correct",
        headers=expert.headers,
        json={"answer": "Fourteen days.", "citations": [{"n": 2}]},
    )
    assert neither.status_code == 422
    # Nothing changed: the item is open and the client's answer is as it was.
    with Session(runtime.engine) as session:
        item = session.get(ReviewItem, in_review["item"])
        assert item is not None
        assert item.status == "open"
    shown = await client.get(
        f"/v1/consultations/{in_review['consultation']}", headers=client_user.headers
    )
    assert shown.json()["status"] == "pending_review"


async def test_the_review_page_searches_with_htmx_and_corrects_with_the_picked_passages(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    client_user: Actor,
    in_review: dict[str, str],
) -> None:
    item = in_review["item"]
    await sign_in(client, expert)
    page = (await client.get(f"/review/{item}")).text
    assert f'hx-post="/review/{item}/search"' in page
    fragment = await client.post(
        f"/review/{item}/search", data={"q": "plant guarantee"}, headers=HTMX
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    ids = re.findall(r'name="chunk" value="([^"]+)"', fragment.text)
    assert ids
    assert set(ids) <= set(chunk_ids(runtime, "garden"))
    assert "one-year guarantee" in fragment.text

    # A second search keeps the first pick ticked, at the top.
    again = await client.post(
        f"/review/{item}/search", data={"q": "opening hours", "chunk": ids[0]}, headers=HTMX
    )
    assert re.findall(r'name="chunk" value="([^"]+)"( checked)?', again.text)[0] == (
        ids[0],
        " checked",
    )

    # An empty search says so, and what was ticked stays ticked.
    empty = await client.post(
        f"/review/{item}/search", data={"q": " ", "chunk": ids[0]}, headers=HTMX
    )
    assert "the question is empty" in empty.text
    assert f'value="{ids[0]}" checked' in empty.text

    # Without htmx, the whole page comes back with the answer as typed.
    whole = await client.post(
        f"/review/{item}/search", data={"q": "plant guarantee", "answer": "My draft"}
    )
    assert whole.status_code == 200
    assert "My draft</textarea>" in whole.text
    assert "one-year guarantee" in whole.text

    # A passage of another asset is refused on the page too, and the item stays open.
    foreign = chunk_ids(runtime, "depot")[0]
    refused = await client.post(
        f"/review/{item}/correct", data={"answer": "Fourteen days.", "chunk": foreign}
    )
    assert refused.status_code == 422
    assert "is not a passage of Garden store handbook" in refused.text

    done = await client.post(
        f"/review/{item}/correct", data={"answer": "Fourteen days.", "chunk": ids[0]}
    )
    assert done.status_code == 303, done.text
    await sign_in(client, client_user)
    answer = await client.get(f"/answers/{in_review['consultation']}")
    assert "one-year guarantee" in answer.text
    assert "policies.md:" in answer.text

    # Another expert can neither search this item nor see the client's answer page.
    await sign_in(client, expert_second)
    other = await client.post(f"/review/{item}/search", data={"q": "refund"}, headers=HTMX)
    assert other.status_code == 404
    assert (await client.get(f"/answers/{in_review['consultation']}")).status_code == 404
