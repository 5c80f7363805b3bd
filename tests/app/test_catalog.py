"""The catalog over HTTP on a seeded marketplace: filters return exactly the matching experts
and assets, sorting, unpublished assets never listed, bad values refused, the public quality
score, and the client's asset page with live sample answers."""

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Asset, Consultation
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset
from billing import service as billing
from billing.models import Charge
from core.clock import utcnow
from core.db import session_scope
from evals.models import EvalRun, GoldenSet
from marketplace.models import Credential, ExpertProfile
from tests.factories import HANDBOOK, PASSWORD, Actor, create_actor, ingest_path, sign_in

GOLDEN: list[dict[str, Any]] = [
    {"question": "How long does it take to get a refund?", "unanswerable": False},
    {"question": "Is there parking at the store?", "unanswerable": True},
    {"question": "What are the store's opening hours?", "unanswerable": False},
    {"question": "How is the price including VAT calculated?", "unanswerable": False},
    {"question": "How many loyalty points does a purchase earn?", "unanswerable": False},
]


@pytest.fixture
def shopper(runtime: Runtime) -> Actor:
    """A client who signs in to the pages with a password."""
    return create_actor(runtime, role="client", password=PASSWORD)


def _text(html: str) -> str:
    return " ".join(html.split())


def _row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}".*?</tr>', page, re.S)
    assert found is not None, page
    return _text(found.group(0))


def _section(page: str, section_id: str) -> str:
    found = re.search(rf'<section[^>]* id="{section_id}".*?</section>', page, re.S)
    assert found is not None, page
    return _text(found.group(0))


def _experts(page: str) -> list[str]:
    return re.findall(r'class="card expert" data-id="([^"]+)"', page)


def _slugs(page: str) -> list[str]:
    return re.findall(r'class="card asset" data-slug="([^"]+)"', page)


@dataclass
class Market:
    alice: Actor
    bob: Actor
    carol: Actor
    dave: Actor


def _asset(
    session: Session,
    runtime: Runtime,
    owner: Actor,
    slug: str,
    title: str,
    tags: list[str],
    *,
    description: str = "",
    published: bool = True,
    minutes: int,
) -> Asset:
    asset = create_asset(
        session,
        owner=Viewer(owner.account.id, owner.account.role),
        data=AssetCreate(
            slug=slug, title=title, description=description, tags=tags, published=published
        ),
        embedder=runtime.embedder,
    )
    # A fixed creation order, so that "newest" means something.
    asset.created_at = utcnow() - timedelta(days=1) + timedelta(minutes=minutes)
    session.add(asset)
    session.flush()
    return asset


def _run(session: Session, asset: Asset, ndcg: float, *, days_ago: int = 0) -> None:
    session.add(
        EvalRun(
            asset_id=asset.id,
            golden_name=f"{asset.slug}-golden",
            golden_sha256="0" * 64,
            size=len(GOLDEN),
            k=10,
            metrics={
                "recall@10": {"value": 0.8, "n": 4},
                "ndcg@10": {"value": ndcg, "n": 4},
                # A platform re-ask of 20 questions, ``ndcg`` of them right.
                "right": {"value": ndcg, "n": 20, "right": round(ndcg * 20)},
            },
            questions=GOLDEN,
            scope="platform",
            created_at=utcnow() - timedelta(days=days_ago),
        )
    )


def _credential(
    session: Session, who: Actor, domain: str, status: str, claim: str, **extra: Any
) -> None:
    session.add(
        Credential(
            account_id=who.account.id,
            kind=extra.pop("kind", "commit_authorship"),
            claim=claim,
            domain=domain,
            status=status,
            method=extra.pop("method", "git_history" if status == "verified" else None),
            verified_at=utcnow() if status == "verified" else None,
            **extra,
        )
    )


@pytest.fixture
def market(runtime: Runtime, expert: Actor, expert_second: Actor) -> Market:
    """Alice (verified python; an unverified gdpr claim), Bob (verified gdpr; a rejected python
    claim), Carol (a python credential that expired) and Dave (no profile, nothing published).

    Assets: garden (alice; 0.25 a question; eval 0.9), gdpr-guide (bob; 1.00 a question and a
    monthly plan; eval 0.5, an older run scored 0.95), digest (bob; monthly only; unscored),
    nursery (carol; no plan, free; unscored); unpublished: alice-draft, dave-secret.
    """
    carol = create_actor(runtime, role="expert")
    dave = create_actor(runtime, role="expert")
    alice, bob = expert, expert_second
    with session_scope(runtime.engine) as session:
        session.add(
            ExpertProfile(
                account_id=alice.account.id,
                headline="Python packaging and retail systems",
                domains=["python", "retail"],
                price_from=20_000,
                price_to=50_000,
                response_hours=24,
            )
        )
        session.add(
            ExpertProfile(
                account_id=bob.account.id,
                headline="Data protection lawyer",
                bio="GDPR compliance reviews for online shops.",
                domains=["gdpr"],
                price_from=100_000,
                response_hours=72,
            )
        )
        session.add(
            ExpertProfile(
                account_id=carol.account.id,
                headline="Garden retail consultant",
                domains=["retail"],
                price_from=5_000,
                price_to=10_000,
                response_hours=8,
            )
        )
        _credential(
            session,
            alice,
            "python",
            "verified",
            "Maintainer of the garden store's pricing code",
            figures={
                "commit_share": 0.82,
                "line_share": 0.77,
                "commits": 41,
                "remote": "https://git.example.org/alice/garden.git",
            },
        )
        _credential(session, alice, "gdpr", "unverified", "Certified data protection officer")
        _credential(
            session,
            bob,
            "gdpr",
            "verified",
            "Admitted to the bar, data protection",
            kind="licence",
            method="admin_review",
            figures={"licence": "BAR-1234"},
        )
        _credential(session, bob, "python", "rejected", "Core Python developer")
        _credential(
            session,
            carol,
            "python",
            "verified",
            "Python trainer",
            expires_at=utcnow() - timedelta(days=1),
        )
        garden = _asset(
            session,
            runtime,
            alice,
            "garden",
            "Garden store handbook",
            ["retail", "python"],
            minutes=1,
        )
        guide = _asset(
            session,
            runtime,
            bob,
            "gdpr-guide",
            "GDPR compliance guide",
            ["gdpr", "law"],
            description="Articles, recitals and the guidance on them.",
            minutes=2,
        )
        digest = _asset(session, runtime, bob, "digest", "Case law digest", ["law"], minutes=3)
        _asset(session, runtime, carol, "nursery", "Nursery stock notes", ["retail"], minutes=4)
        draft = _asset(
            session,
            runtime,
            alice,
            "alice-draft",
            "Unfinished GDPR notes",
            ["gdpr", "python"],
            published=False,
            minutes=5,
        )
        _asset(
            session,
            runtime,
            dave,
            "dave-secret",
            "Secret lawyer notes",
            ["law", "retail"],
            published=False,
            minutes=6,
        )
        billing.set_plan(session, asset_id=garden.id, terms=billing.PlanTerms(per_query=25))
        billing.set_plan(
            session,
            asset_id=guide.id,
            terms=billing.PlanTerms(per_query=100, monthly=2000, included=50),
        )
        billing.set_plan(
            session, asset_id=digest.id, terms=billing.PlanTerms(monthly=1500, included=10)
        )
        billing.set_plan(session, asset_id=draft.id, terms=billing.PlanTerms(per_query=1))
        _run(session, garden, 0.9)
        _run(session, guide, 0.5, days_ago=1)
        _run(session, guide, 0.95, days_ago=30)
        _run(session, draft, 1.0)
    return Market(alice, bob, carol, dave)


async def _get(client: httpx.AsyncClient, who: Actor, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


ASSET_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["garden", "gdpr-guide", "nursery", "digest"]),
    ({"q": "gdpr"}, ["gdpr-guide", "digest"]),  # digest: through its expert's bio
    ({"q": "garden"}, ["garden", "nursery"]),  # nursery: through its expert's headline
    ({"q": "recital"}, ["gdpr-guide"]),
    ({"q": "secret"}, []),  # only unpublished assets say so
    ({"domain": "retail"}, ["garden", "nursery"]),
    ({"domain": "law"}, ["gdpr-guide", "digest"]),
    ({"verified": "python"}, ["garden"]),  # carol's expired, bob's rejected
    ({"verified": "gdpr"}, ["gdpr-guide", "digest"]),  # alice's is unverified
    ({"min_quality": 0.6}, ["garden"]),  # gdpr-guide's latest run counts, not the older one
    ({"min_quality": 0.5}, ["garden", "gdpr-guide"]),
    ({"price_min": 50}, ["gdpr-guide"]),
    ({"price_max": 30}, ["garden", "nursery"]),
    ({"price_min": 25, "price_max": 100}, ["garden", "gdpr-guide"]),
    ({"price_min": 100, "price_max": 25}, []),  # an empty range matches nothing
    ({"max_response_hours": 24}, ["garden", "nursery"]),
    ({"domain": "retail", "verified": "python"}, ["garden"]),
    ({"domain": "retail", "max_response_hours": 10}, ["nursery"]),
    ({"verified": "gdpr", "price_max": 150}, ["gdpr-guide"]),
    ({"q": "gdpr", "min_quality": 0.4}, ["gdpr-guide"]),
    ({"domain": "law", "min_quality": 0.6}, []),
    ({"sort": "price"}, ["nursery", "garden", "gdpr-guide", "digest"]),
    ({"sort": "newest"}, ["nursery", "digest", "gdpr-guide", "garden"]),
]
EXPERT_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["alice", "bob", "carol"]),  # dave: no profile and nothing published
    ({"q": "lawyer"}, ["bob"]),
    ({"q": "python"}, ["alice"]),
    ({"q": "digest"}, ["bob"]),
    ({"domain": "retail"}, ["alice", "carol"]),
    ({"domain": "law"}, ["bob"]),  # dave's law asset is unpublished
    ({"verified": "python"}, ["alice"]),
    ({"verified": "gdpr"}, ["bob"]),
    ({"min_quality": 0.6}, ["alice"]),  # alice's unpublished 1.0 does not count
    ({"price_min": 60_000}, ["bob"]),
    ({"price_max": 30_000}, ["alice", "carol"]),
    ({"price_min": 40_000, "price_max": 60_000}, ["alice"]),
    ({"max_response_hours": 24}, ["alice", "carol"]),
    ({"domain": "retail", "max_response_hours": 10}, ["carol"]),
    ({"verified": "python", "price_min": 60_000}, []),
    ({"sort": "price"}, ["carol", "alice", "bob"]),
    ({"sort": "newest"}, ["carol", "bob", "alice"]),
]


@pytest.mark.both_databases
@pytest.mark.usefixtures("market")
async def test_asset_filters_return_exactly_the_matching_assets(
    client: httpx.AsyncClient, client_user: Actor
) -> None:
    for params, expected in ASSET_CASES:
        found = await _get(client, client_user, "/v1/catalog/assets", **params)
        assert [a["slug"] for a in found] == expected, params


@pytest.mark.both_databases
async def test_expert_filters_return_exactly_the_matching_experts(
    client: httpx.AsyncClient, market: Market, client_user: Actor
) -> None:
    ids = {
        market.alice.account.id: "alice",
        market.bob.account.id: "bob",
        market.carol.account.id: "carol",
    }
    for params, expected in EXPERT_CASES:
        found = await _get(client, client_user, "/v1/catalog/experts", **params)
        assert [ids.get(e["account_id"], e["name"]) for e in found] == expected, params


async def test_listings_carry_plans_scores_and_credentials(
    client: httpx.AsyncClient, market: Market, client_user: Actor
) -> None:
    (guide,) = await _get(client, client_user, "/v1/catalog/assets", q="recital")
    assert (guide["per_query"], guide["monthly"], guide["currency"]) == (100, 2000, "usd")
    assert guide["quality"] == 0.5
    assert guide["expert"]["verified_domains"] == ["gdpr"]
    assert guide["url"] == "/catalog/assets/gdpr-guide"
    (alice,) = await _get(client, client_user, "/v1/catalog/experts", verified="python")
    assert alice["assets"] == ["garden"]  # not the unpublished draft
    assert alice["quality"] == 0.9
    (credential,) = alice["verified_credentials"]
    assert credential["figures"]["commit_share"] == 0.82
    assert alice["url"] == f"/experts/{market.alice.account.id}"


async def test_unpublished_assets_never_appear(
    client: httpx.AsyncClient, market: Market, client_user: Actor
) -> None:
    for who in (client_user, market.alice, market.dave):
        for params in ({}, {"q": "unfinished"}, {"domain": "gdpr"}, {"sort": "newest"}):
            found = await _get(client, who, "/v1/catalog/assets", **params)
            assert not {a["slug"] for a in found} & {"alice-draft", "dave-secret"}
    for who in (client_user, market.alice):
        for path in (
            "/v1/catalog/assets/alice-draft",
            "/v1/assets/alice-draft/quality-score",
            "/catalog/assets/alice-draft",
        ):
            response = await client.get(path, headers=who.headers)
            assert response.status_code in (404, 303), (path, response.text)
            if path.startswith("/v1"):
                assert response.json()["error"] == "AssetNotFound"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"min_quality": "2"}, "min_quality"),
        ({"min_quality": "high"}, "min_quality"),
        ({"price_min": "-1"}, "price_min"),
        ({"max_response_hours": "soon"}, "max_response_hours"),
        ({"sort": "cheapest"}, "sort"),
        ({"currency": "USD"}, "currency"),
        ({"colour": "blue"}, "colour"),
        ({"q": "x" * 201}, "q"),
    ],
)
async def test_bad_filter_values_are_422(
    client: httpx.AsyncClient, client_user: Actor, params: dict[str, str], says: str
) -> None:
    for path in ("/v1/catalog/assets", "/v1/catalog/experts"):
        response = await client.get(path, params=params, headers=client_user.headers)
        assert response.status_code == 422, response.text
        assert says in response.json()["detail"]


async def test_catalog_is_open_without_an_account(client: httpx.AsyncClient) -> None:
    """The front door: no key or sign-in needed (tests/app/test_front_door.py has the rest),
    but a key that is sent must be valid."""
    response = await client.get("/v1/catalog/assets")
    assert response.status_code == 200
    bad_key = await client.get("/v1/catalog/assets", headers={"Authorization": "Bearer vch_x"})
    assert bad_key.status_code == 401
    page = await client.get("/catalog", headers={"accept": "text/html"})
    assert page.status_code == 200


def _ingest(runtime: Runtime, owner: Actor, slug: str) -> None:
    with Session(runtime.engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == slug)).one()
    job = ingest_path(runtime, asset=asset, owner=owner.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error


async def _ask(client: httpx.AsyncClient, who: Actor, slug: str, question: str) -> str:
    response = await client.post(
        f"/v1/assets/{slug}/ask", json={"question": question}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["charge"]["amount"] == 25
    return str(response.json()["consultation_id"])


@pytest.mark.both_databases
async def test_quality_score_from_eval_and_settled_answers(
    client: httpx.AsyncClient,
    runtime: Runtime,
    market: Market,
    client_user: Actor,
    client_second: Actor,
) -> None:
    garden = await _get(client, client_second, "/v1/assets/garden/quality-score")
    assert garden["score"] == 0.9  # the platform's re-ask alone: nothing settled yet
    assert (garden["right"], garden["n"]) == (18, 20)
    assert garden["parts"]["platform"]["golden"] == "garden-golden"
    assert garden["parts"]["consultations"] == {
        "right": 0,
        "n": 0,
        "outcomes": dict.fromkeys(
            ["accepted", "approved", "corrected", "rejected", "refunded", "abstained", "pending"],
            0,
        ),
        "flagged": 0,
    }
    assert garden["measured_at"].endswith("Z")
    guide = await _get(client, client_second, "/v1/assets/gdpr-guide/quality-score")
    assert guide["score"] == 0.5  # the latest run, not the better older one

    _ingest(runtime, market.alice, "garden")
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=client_user.account.id, amount=500, currency="usd", key="g"
        )
    asked = [
        await _ask(client, client_user, "garden", "How long does it take to get a refund?")
        for _ in range(5)
    ]
    # The owner's own question is free and does not count.
    own = await client.post(
        "/v1/assets/garden/ask",
        json={"question": "What are the opening hours?"},
        headers=market.alice.headers,
    )
    assert own.status_code == 200, own.text
    for consultation_id in asked[:4]:
        accepted = await client.post(
            f"/v1/consultations/{consultation_id}/accept", headers=client_user.headers
        )
        assert accepted.status_code == 200, accepted.text
    refunded = await client.post(
        f"/v1/consultations/{asked[4]}/refund", headers=market.alice.headers
    )
    assert refunded.status_code == 200, refunded.text

    garden = await _get(client, client_second, "/v1/assets/garden/quality-score")
    outcomes = garden["parts"]["consultations"]["outcomes"]
    assert (outcomes["accepted"], outcomes["refunded"]) == (4, 1)
    assert (garden["right"], garden["n"]) == (22, 25)  # 18 of 20 re-asked, 4 of 5 settled
    assert garden["score"] == 0.88
    assert garden["review"]["answers"] == 5  # the owner's own question is not counted
    # The catalog filters on the same score.
    found = await _get(client, client_second, "/v1/catalog/assets", min_quality=0.89)
    assert found == []
    found = await _get(client, client_second, "/v1/catalog/assets", min_quality=0.88)
    assert [a["slug"] for a in found] == ["garden"]
    with Session(runtime.engine) as session:
        charges = session.exec(select(Charge).where(Charge.account_id == client_user.account.id))
        assert sorted(c.status for c in charges) == ["refunded"] + ["released"] * 4


async def test_asset_page_shows_plans_score_credentials_and_live_samples(
    client: httpx.AsyncClient, runtime: Runtime, market: Market, client_user: Actor, shopper: Actor
) -> None:
    _ingest(runtime, market.alice, "garden")
    # Samples come from an admin-approved golden set only (never clients' questions).
    with session_scope(runtime.engine) as session:
        garden = session.exec(select(Asset).where(Asset.slug == "garden")).one()
        approved = GoldenSet(
            asset_id=garden.id,
            name="garden-golden",
            sha256="0" * 64,
            questions=GOLDEN,
            submitted_by=market.alice.account.id,
            status="approved",
        )
        session.add(approved)
        session.flush()
        run = session.exec(select(EvalRun).where(EvalRun.asset_id == garden.id)).one()
        run.scope, run.golden_set_id = "approved", approved.id
        session.add(run)
    page = await _get(client, client_user, "/v1/catalog/assets/garden")
    assert page["plan"]["per_query"] == 25
    assert page["quality"]["score"] == 0.9
    assert [c["claim"] for c in page["expert"]["verified_credentials"]] == [
        "Maintainer of the garden store's pricing code"
    ]
    assert page["commission_url"] == (
        f"/engagements/new?expert={market.alice.account.id}&asset=garden"
    )
    # The golden set's first three answerable questions, answered with citations.
    assert [s["question"] for s in page["samples"]] == [
        GOLDEN[0]["question"],
        GOLDEN[2]["question"],
        GOLDEN[3]["question"],
    ]
    refund = page["samples"][0]
    assert "14 days" in refund["answer"]
    assert refund["citations"][0]["locator"]["path"] == "policies.md"

    await sign_in(client, shopper, "/catalog")
    response = await client.get("/catalog/assets/garden")
    assert response.status_code == 200, response.text
    html = response.text
    assert "0.25 USD" in _row(html, "plan-per-question")
    assert "no subscription" in _row(html, "plan-monthly")
    assert 'Quality score: <span id="score">0.90</span>' in html
    assert "“garden-golden”: 18 right of 20" in _row(html, "q-approved")
    assert "18 right of 20 measured answers" in html
    credentials = _section(html, "credentials")
    assert "Maintainer of the garden store&#39;s pricing code" in credentials
    assert "commit share: 0.82" in credentials
    assert "Certified data protection officer" not in html  # unverified
    assert f'href="/experts/{market.alice.account.id}"' in html
    assert f'href="/engagements/new?expert={market.alice.account.id}&amp;asset=garden"' in html
    samples = _section(html, "samples")
    assert GOLDEN[0]["question"] in samples
    assert "14 days" in samples
    assert '<strong class="locator">policies.md:' in samples

    # Nothing was charged or recorded for the samples.
    with Session(runtime.engine) as session:
        assert session.exec(select(Consultation)).all() == []
        assert session.exec(select(Charge)).all() == []


async def test_without_an_eval_run_samples_come_from_document_headings(
    client: httpx.AsyncClient, runtime: Runtime, market: Market, client_user: Actor
) -> None:
    _ingest(runtime, market.carol, "nursery")
    page = await _get(client, client_user, "/v1/catalog/assets/nursery")
    assert page["plan"]["per_query"] == 0  # no plan: free to ask
    assert page["quality"]["score"] is None
    assert page["quality"]["parts"]["platform"] is None
    assert page["quality"]["summary"] == "not enough measured answers yet (0 of 20)"
    assert page["expert"]["verified_credentials"] == []  # carol's expired
    questions = [s["question"] for s in page["samples"]]
    assert questions[0] == "What about Refunds?"
    assert len(questions) == 3
    assert page["samples"][0]["citations"][0]["locator"]["path"] == "policies.md"
    # An asset with nothing ingested and no eval run has no samples, and no error.
    empty = await _get(client, client_user, "/v1/catalog/assets/digest")
    assert empty["samples"] == []


async def test_catalog_page_filters_and_refuses_bad_values(
    client: httpx.AsyncClient, market: Market, shopper: Actor
) -> None:
    await sign_in(client, shopper, "/catalog")
    page = await client.get("/catalog")
    assert page.status_code == 200, page.text
    assert 'href="/catalog"' in page.text  # in the navigation
    assert _slugs(page.text) == ["garden", "gdpr-guide", "nursery", "digest"]

    page = await client.get("/catalog", params={"verified": "python", "price_max": "0.30"})
    assert page.status_code == 200, page.text
    assert _slugs(page.text) == ["garden"]
    experts = _section(page.text, "experts")
    assert market.alice.account.name in experts
    assert market.bob.account.name not in experts
    assert 'value="python"' in page.text  # the form keeps what was typed

    page = await client.get("/catalog", params={"domain": "law", "sort": "price"})
    assert _slugs(page.text) == ["gdpr-guide", "digest"]

    # Engagement prices filter the experts, per-question prices the assets.
    page = await client.get("/catalog", params={"engagement_min": "600", "price_min": "0.50"})
    assert _experts(page.text) == [market.bob.account.id]
    assert _slugs(page.text) == ["gdpr-guide"]

    for params, says in [
        ({"min_quality": "2"}, "Minimum quality score: &#39;2&#39; is not a score from 0 to 1"),
        ({"price_min": "cheap"}, "Per question from: &#39;cheap&#39; is not an amount"),
        ({"price_min": "5", "price_max": "1"}, "Per question from 5 is above per question up"),
        ({"engagement_min": "9", "engagement_max": "1"}, "Engagement from 9 is above"),
        ({"max_response_hours": "1.5"}, "whole number of hours"),
        ({"sort": "random"}, "Sort by: use one of"),
    ]:
        page = await client.get("/catalog", params=params)
        assert page.status_code == 422, params
        assert says in page.text, params
