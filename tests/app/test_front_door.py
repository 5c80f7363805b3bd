"""The front door: the catalog, asset and expert pages open to visitors who are not signed in
(published assets only, with a call to sign up), publishing an asset once it is priced and
ingested, the price and what pays for it shown before asking, and a client's answers with
their status, filtered and paged."""

import re
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from app.main import create_app
from app.models import Account
from app.runtime import Runtime
from assets.models import Asset, Consultation
from billing import service as billing
from billing.models import Charge, ChargeStatus
from core.clock import utcnow
from core.config import MarketplaceSettings
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

PLAN = billing.PlanTerms(per_query=25, monthly=500, included=3, trial=2)


def _verify(runtime: Runtime, actor: Actor, *, verified: bool = True) -> None:
    """Mark the e-mail address proved (accounts made by factories are), or not."""
    with session_scope(runtime.engine) as session:
        account = session.get(Account, actor.account.id)
        assert account is not None
        account.email_verified_at = utcnow() if verified else None
        session.add(account)


def _price(runtime: Runtime, slug: str, terms: billing.PlanTerms = PLAN) -> None:
    with session_scope(runtime.engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == slug)).one()
        billing.set_plan(session, asset_id=asset.id, terms=terms)


def _credits(runtime: Runtime, actor: Actor, amount: int) -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session,
            account_id=actor.account.id,
            amount=amount,
            currency="usd",
            key=f"test:{actor.account.id}:{amount}",
        )


def _ready(runtime: Runtime, expert: Actor, slug: str, *, published: bool = True) -> Asset:
    """A priced, ingested asset."""
    asset = create_test_asset(runtime, owner=expert.account, slug=slug, published=published)
    _price(runtime, slug)
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    return asset


def _slugs(page: str) -> list[str]:
    return re.findall(r'class="card asset" data-slug="([^"]+)"', page)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


class TestSignedOut:
    async def test_catalog_asset_and_expert_pages_show_only_published_assets(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        _ready(runtime, expert, "garden")
        create_test_asset(runtime, owner=expert.account, slug="drafts", published=False)

        catalog = await client.get("/catalog")
        assert catalog.status_code == 200
        assert _slugs(catalog.text) == ["garden"]
        assert 'href="/signup"' in catalog.text

        page = await client.get("/catalog/assets/garden")
        assert page.status_code == 200
        assert 'id="signup-link" href="/signup"' in page.text
        assert "sign in to ask" in page.text
        assert 'id="ask-link"' not in page.text  # no question box for a visitor
        assert (await client.get("/catalog/assets/drafts")).status_code == 404

        profile = await client.get(f"/experts/{expert.account.id}")
        assert profile.status_code == 200
        assert "/catalog/assets/garden" in profile.text or "garden" in profile.text
        assert "drafts" not in profile.text

        listed = await client.get("/v1/catalog/assets")
        assert listed.status_code == 200
        assert [a["slug"] for a in listed.json()] == ["garden"]
        entry = await client.get("/v1/catalog/assets/garden")
        assert entry.status_code == 200
        assert entry.json()["price"]["can_ask"] is False
        assert entry.json()["price"]["detail"] == "Sign up or sign in to ask"
        assert (await client.get("/v1/catalog/assets/drafts")).status_code == 404
        price = await client.get("/v1/assets/garden/price")
        assert price.status_code == 200
        assert price.json()["plan"]["per_query"] == 25

    async def test_asking_still_needs_an_account(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        _ready(runtime, expert, "garden")
        asked = await client.post("/v1/assets/garden/ask", json={"question": "Refunds?"})
        assert asked.status_code == 401
        page = await client.get("/assets/garden")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/assets/garden"

    async def test_live_sample_answers_are_limited_per_address(
        self, runtime: Runtime, expert: Actor
    ) -> None:
        _ready(runtime, expert, "garden")
        limited = runtime.settings.model_copy(
            update={"marketplace": MarketplaceSettings(sample_pages_per_minute=2)}
        )
        tight = Runtime(limited, embedder=runtime.embedder)
        try:
            app = create_app(limited, runtime=tight)
            one = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
            async with httpx.AsyncClient(transport=one, base_url="http://vouch.test") as http:
                for _ in range(2):
                    assert (await http.get("/catalog/assets/garden")).status_code == 200
                refused = await http.get("/catalog/assets/garden")
                assert refused.status_code == 429
                assert "asset pages with live sample answers" in refused.text
                assert int(refused.headers["retry-after"]) >= 1
                api = await http.get("/v1/catalog/assets/garden")
                assert api.status_code == 429
                assert api.json()["error"] == "RateLimited"
            other = httpx.ASGITransport(app=app, client=("203.0.113.8", 4000))
            async with httpx.AsyncClient(transport=other, base_url="http://vouch.test") as http:
                assert (await http.get("/catalog/assets/garden")).status_code == 200
        finally:
            tight.close()


class TestPublishing:
    async def test_new_assets_start_unpublished_and_publish_needs_price_ingest_and_email(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
    ) -> None:
        created = await client.post(
            "/v1/assets", json={"slug": "garden", "title": "Garden"}, headers=expert.headers
        )
        assert created.status_code == 201
        assert created.json()["published"] is False
        assert [a["slug"] for a in (await client.get("/v1/catalog/assets")).json()] == []
        eager = await client.post(
            "/v1/assets",
            json={"slug": "eager", "title": "Eager", "published": True},
            headers=expert.headers,
        )
        assert eager.status_code == 409
        assert "/v1/assets/eager/publish" in eager.json()["detail"]

        _verify(runtime, expert, verified=False)
        unverified = await client.post("/v1/assets/garden/publish", headers=expert.headers)
        assert unverified.status_code == 403
        assert unverified.json()["error"] == "EmailUnverified"
        _verify(runtime, expert)

        bare = await client.post("/v1/assets/garden/publish", headers=expert.headers)
        assert bare.status_code == 409
        assert bare.json()["error"] == "AssetNotReady"
        assert "set a price first: /earnings#plan-garden" in bare.json()["detail"]
        assert "ingest its sources first" in bare.json()["detail"]

        _price(runtime, "garden")
        priced = await client.post("/v1/assets/garden/publish", headers=expert.headers)
        assert priced.status_code == 409
        assert "set a price" not in priced.json()["detail"]
        assert "ingest its sources first" in priced.json()["detail"]

        with Session(runtime.engine) as session:
            asset = session.exec(select(Asset).where(Asset.slug == "garden")).one()
        ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
        # Refusals changed nothing: still unpublished, and a client cannot ask it.
        hidden = await client.post(
            "/v1/assets/garden/ask", json={"question": "Refunds?"}, headers=client_user.headers
        )
        assert hidden.status_code == 404

        published = await client.post("/v1/assets/garden/publish", headers=expert.headers)
        assert published.status_code == 200
        assert published.json()["published"] is True
        assert [a["slug"] for a in (await client.get("/v1/catalog/assets")).json()] == ["garden"]
        _credits(runtime, client_user, 1000)
        asked = await client.post(
            "/v1/assets/garden/ask",
            json={"question": "How long does a refund take?"},
            headers=client_user.headers,
        )
        assert asked.status_code == 200

        gone = await client.post("/v1/assets/garden/unpublish", headers=expert.headers)
        assert gone.status_code == 200
        assert gone.json()["published"] is False
        assert (await client.get("/v1/catalog/assets")).json() == []
        assert (await client.get("/catalog/assets/garden")).status_code == 404

    async def test_only_the_owner_publishes(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, expert_second: Actor
    ) -> None:
        _ready(runtime, expert, "garden", published=False)
        _verify(runtime, expert_second)
        other = await client.post("/v1/assets/garden/publish", headers=expert_second.headers)
        assert other.status_code == 404
        with Session(runtime.engine) as session:
            asset = session.exec(select(Asset).where(Asset.slug == "garden")).one()
            assert asset.published is False

    async def test_expert_publishes_from_the_asset_page(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        expert = create_actor(runtime, role="expert", password=PASSWORD)
        _verify(runtime, expert)
        create_test_asset(runtime, owner=expert.account, slug="garden", published=False)
        await sign_in(client, expert)
        page = await client.get("/assets/garden")
        assert "Not published" in page.text
        assert "set a price first" in page.text
        refused = await client.post("/assets/garden/publish")
        assert refused.status_code == 409
        assert 'id="publish-error"' in refused.text
        assert "set a price first: /earnings#plan-garden" in refused.text

        _price(runtime, "garden")
        with Session(runtime.engine) as session:
            asset = session.exec(select(Asset).where(Asset.slug == "garden")).one()
        ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
        done = await client.post("/assets/garden/publish")
        assert done.status_code == 303
        client.cookies.clear()
        assert _slugs((await client.get("/catalog")).text) == ["garden"]
        await sign_in(client, expert)
        assert (await client.post("/assets/garden/unpublish")).status_code == 303
        client.cookies.clear()
        assert _slugs((await client.get("/catalog")).text) == []


class TestPriceBeforeAsking:
    async def test_credits_trial_and_subscription_are_shown_before_asking(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        _ready(runtime, expert, "garden")
        buyer = create_actor(runtime, role="client", password=PASSWORD)

        trial = (await client.get("/v1/assets/garden/price", headers=buyer.headers)).json()
        assert trial["can_ask"] is True
        assert (trial["pays_with"], trial["amount"], trial["trial_left"]) == ("trial", 0, 2)
        assert trial["credits"] == 0
        assert trial["expert"]["url"] == f"/experts/{expert.account.id}"

        _credits(runtime, buyer, 1000)
        paid = (await client.get("/v1/assets/garden/price", headers=buyer.headers)).json()
        assert (paid["pays_with"], paid["amount"], paid["credits"]) == ("credits", 25, 1000)
        assert paid["detail"] == "0.25 USD from your credits (10.00 USD)"

        await sign_in(client, buyer)
        page = await client.get("/assets/garden")
        box = re.search(r'<div class="card" id="price">.*?</div>', page.text, re.S)
        assert box is not None
        shown = _text(box.group(0))
        assert "Next question: 0.25 USD" in shown
        assert "0.25 USD from your credits (10.00 USD)" in shown
        assert f'href="/experts/{expert.account.id}"' in box.group(0)
        assert page.text.index('id="price"') < page.text.index('id="question"')

        subscribed = await client.post("/v1/assets/garden/subscribe", headers=buyer.headers)
        assert subscribed.status_code == 200, subscribed.text
        sub = (await client.get("/v1/assets/garden/price", headers=buyer.headers)).json()
        assert (sub["pays_with"], sub["questions_left"]) == ("subscription", 3)
        assert sub["detail"] == "From your subscription: 3 questions left"

    async def test_a_client_who_cannot_pay_is_told_before_asking(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
    ) -> None:
        create_test_asset(runtime, owner=expert.account, slug="garden")
        _price(runtime, "garden", billing.PlanTerms(per_query=25))
        broke = (await client.get("/v1/assets/garden/price", headers=client_user.headers)).json()
        assert broke["can_ask"] is False
        assert broke["pays_with"] is None
        assert "buy credits" in broke["detail"]

    async def test_subscribing_to_an_asset_sold_per_question_is_a_conflict(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
    ) -> None:
        create_test_asset(runtime, owner=expert.account, slug="garden")
        _price(runtime, "garden", billing.PlanTerms(per_query=25))
        _credits(runtime, client_user, 1000)
        refused = await client.post("/v1/assets/garden/subscribe", headers=client_user.headers)
        assert refused.status_code == 409
        assert refused.json() == {
            "error": "NoMonthlyPlan",
            "detail": "garden has no monthly plan: pay per question with credits",
        }
        price = (await client.get("/v1/assets/garden/price", headers=client_user.headers)).json()
        assert (price["pays_with"], price["credits"], price["questions_left"]) == (
            "credits",
            1000,
            None,
        )


class TestUploads:
    """Any upload the document allows is taken; what cannot be ingested is reported per file."""

    async def test_an_upload_no_kind_can_read_is_taken_and_its_job_names_each_file(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        asset = create_test_asset(runtime, owner=expert.account, slug="garden")
        response = await client.post(
            "/v1/assets/garden/sources",
            files=[
                ("files", ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")),
                ("files", ("logo.gif", b"GIF89a\x01\x00\x01\x00")),
            ],
            headers=expert.headers,
        )
        assert response.status_code == 202, response.text
        job = (
            await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)
        ).json()
        assert (job["documents"], job["chunks"]) == (0, 0)
        assert {note["path"]: note["reason"] for note in job["excluded"]} == {
            "photo.png": "binary file type (.png)",
            "logo.gif": "binary file type (.gif)",
        }
        assert runtime.index.collection(asset.collection).count() == 0

    async def test_a_name_given_twice_keeps_its_last_file(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        create_test_asset(runtime, owner=expert.account, slug="garden")
        response = await client.post(
            "/v1/assets/garden/sources",
            files=[
                ("files", ("notes.md", b"# Notes\n\nThe first draft says tulips.\n")),
                ("files", ("other.md", b"# Other\n\nNothing about flowers here.\n")),
                ("files", ("./notes.md", b"# Notes\n\nThe final text says roses.\n")),
            ],
            headers=expert.headers,
        )
        assert response.status_code == 202, response.text
        job = (
            await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)
        ).json()
        assert (job["status"], job["documents"]) == ("succeeded", 2)
        found = await client.post(
            "/v1/assets/garden/search",
            json={"query": "what does the notes file say", "k": 5, "path_prefix": "notes"},
            headers=expert.headers,
        )
        texts = [result["text"] for result in found.json()["results"]]
        assert any("roses" in text for text in texts), texts
        assert not any("tulips" in text for text in texts), texts


async def _ask(client: httpx.AsyncClient, who: Actor, slug: str, question: str) -> str:
    response = await client.post(
        f"/v1/assets/{slug}/ask", json={"question": question}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    consultation_id: str = response.json()["consultation_id"]
    return consultation_id


@pytest.mark.both_databases
class TestAnswerHistory:
    async def test_filters_paging_and_isolation(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        client_second: Actor,
    ) -> None:
        _ready(runtime, expert, "garden")
        _ready(runtime, expert, "orchard")
        buyer = create_actor(runtime, role="client", password=PASSWORD)
        _credits(runtime, buyer, 10_000)
        _credits(runtime, client_second, 10_000)
        garden = [
            await _ask(client, buyer, "garden", f"How long does refund {n} take?")
            for n in range(27)
        ]
        orchard = await _ask(client, buyer, "orchard", "What are the opening hours?")
        theirs = await _ask(client, client_second, "garden", "How long does a refund take?")
        # One refunded, one accepted, and the orchard question asked two days ago.
        with session_scope(runtime.engine) as session:
            refunded = session.exec(select(Charge).where(Charge.consultation_id == garden[0])).one()
            billing.refund(session, refunded, now=utcnow())
            accepted = session.exec(select(Charge).where(Charge.consultation_id == garden[1])).one()
            accepted.status = ChargeStatus.released
            session.add(accepted)
            old = session.exec(select(Charge).where(Charge.consultation_id == orchard)).one()
            old.created_at = utcnow() - timedelta(days=2)
            session.add(old)

        first = await client.get("/v1/billing/answers", headers=buyer.headers)
        assert first.status_code == 200
        body = first.json()
        assert (body["total"], body["pages"], body["next_page"]) == (28, 2, 2)
        assert len(body["items"]) == 25
        assert body["items"][0]["question"] == "How long does refund 26 take?"
        ids = [i["consultation_id"] for i in body["items"]]
        second = (await client.get("/v1/billing/answers?page=2", headers=buyer.headers)).json()
        ids += [i["consultation_id"] for i in second["items"]]
        assert sorted(ids) == sorted([*garden, orchard])
        assert theirs not in ids
        assert second["previous_page"] == 1
        assert second["next_page"] is None

        def states(found: dict[str, object]) -> dict[str, str]:
            items = found["items"]
            assert isinstance(items, list)
            return {i["consultation_id"]: i["state"] for i in items}

        only_refunded = (
            await client.get("/v1/billing/answers?status=refunded", headers=buyer.headers)
        ).json()
        assert states(only_refunded) == {garden[0]: "refunded"}
        only_accepted = (
            await client.get("/v1/billing/answers?status=accepted", headers=buyer.headers)
        ).json()
        assert states(only_accepted) == {garden[1]: "accepted"}
        by_asset = (
            await client.get("/v1/billing/answers?asset=orchard", headers=buyer.headers)
        ).json()
        assert list(states(by_asset)) == [orchard]
        today = utcnow().date().isoformat()
        recent = (
            await client.get(f"/v1/billing/answers?since={today}", headers=buyer.headers)
        ).json()
        assert recent["total"] == 27
        earlier = (utcnow() - timedelta(days=2)).date().isoformat()
        before = (
            await client.get(f"/v1/billing/answers?until={earlier}", headers=buyer.headers)
        ).json()
        assert list(states(before)) == [orchard]
        bad = await client.get("/v1/billing/answers?status=lost", headers=buyer.headers)
        assert bad.status_code == 422
        swapped = await client.get(
            f"/v1/billing/answers?since={today}&until={earlier}", headers=buyer.headers
        )
        assert swapped.status_code == 200
        assert swapped.json()["items"] == []

        await sign_in(client, buyer)
        page = await client.get("/billing")
        assert page.status_code == 200
        assert "28 questions · page 1 of 2" in _text(page.text)
        assert page.text.count('class="question"') == 25
        assert 'id="next-page" href="/billing?page=2#history"' in page.text
        # The other 25 garden answers share a status (final, or pending review while the
        # asset has no record of reviewed answers): the page filters as the API does.
        state = states(body)[garden[2]]
        same = (
            await client.get(
                f"/v1/billing/answers?status={state}&asset=garden", headers=buyer.headers
            )
        ).json()
        assert same["total"] == 25
        filtered = await client.get(f"/billing?status={state}&asset=garden")
        assert "25 questions · page 1 of 1" in _text(filtered.text)
        paged = await client.get("/billing?asset=garden")
        assert 'href="/billing?asset=garden&amp;page=2#history"' in paged.text
        two = await client.get("/billing?asset=garden&page=2")
        assert "page 2 of 2" in _text(two.text)
        assert 'id="previous-page" href="/billing?asset=garden&amp;page=1#history"' in two.text
        assert "How long does refund 0 take?" in two.text
        assert "refunded" in two.text
        reversed_page = await client.get(f"/billing?since={today}&until={earlier}")
        assert reversed_page.status_code == 422
        assert "swap them" in reversed_page.text
        mistyped = await client.get("/billing?since=yesterday")
        assert mistyped.status_code == 422
        assert "is not a date" in mistyped.text
        with Session(runtime.engine) as session:
            mine = session.exec(
                select(Consultation).where(Consultation.account_id == buyer.account.id)
            ).all()
            assert len(mine) == 28
