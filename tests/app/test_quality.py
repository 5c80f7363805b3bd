"""The public quality score counts only what the platform measured: client outcomes, the
platform's re-asks and admin-approved golden sets; an expert's own golden set changes nothing.
No score below the minimum sample; the interval and n are shown; tenants stay apart."""

import json
from typing import Any

import httpx
from sqlmodel import Session, select

from app import quality
from app.models import Account
from app.runtime import Runtime
from assets.models import Asset, Consultation, ReviewItem
from billing.models import Charge
from core.clock import utcnow
from core.db import session_scope
from evals.golden import GoldenItem
from evals.golden import GoldenSet as Golden
from evals.models import EvalRun
from tests.factories import HANDBOOK, Actor, create_actor, create_test_asset, ingest_path

REFUNDS = {
    "id": "refunds",
    "question": "How long does it take to get a refund?",
    "expected": [{"path": "policies.md", "lines": [5, 8], "grade": 2}],
}
# The same item as the API takes it: keyed by its id.
REFUNDS_ITEMS = {"refunds": {k: v for k, v in REFUNDS.items() if k != "id"}}


def _outcomes(runtime: Runtime, slug: str, asker: Actor, **counts: int) -> None:
    """Settled client consultations of ``slug``, ``counts`` of each outcome, written as the
    services leave them (consultation, charge, review item)."""
    charge_of = {"accepted": "released", "approved": "released", "corrected": "released"}
    charge_of |= {"rejected": "refunded", "refunded": "refunded", "abstained": "released"}
    charge_of |= {"pending": "held"}
    review_of = {"approved": "approved", "corrected": "corrected", "rejected": "rejected"}
    with session_scope(runtime.engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == slug)).one()
        for outcome, n in counts.items():
            for i in range(n):
                consultation = Consultation(
                    asset_id=asset.id,
                    account_id=asker.account.id,
                    question=f"{outcome} question {i}?",
                    answer="An answer.",
                    confidence=0.8,
                    status="abstained" if outcome == "abstained" else "final",
                    model="extractive-v1",
                    prompt_tokens=0,
                    completion_tokens=0,
                    latency_ms=0,
                )
                session.add(consultation)
                session.flush()
                now = utcnow()
                session.add(
                    Charge(
                        consultation_id=consultation.id,
                        account_id=asker.account.id,
                        asset_id=asset.id,
                        expert_id=asset.owner_id,
                        source="credits",
                        amount=25,
                        currency="usd",
                        status=charge_of[outcome],
                        release_after=now,
                    )
                )
                if outcome in review_of:
                    session.add(
                        ReviewItem(
                            consultation_id=consultation.id,
                            asset_id=asset.id,
                            expert_id=asset.owner_id,
                            reason="client_flag",
                            status=review_of[outcome],
                            due_at=now,
                        )
                    )


async def _score(client: httpx.AsyncClient, who: Actor, slug: str) -> dict[str, Any]:
    response = await client.get(f"/v1/assets/{slug}/quality-score", headers=who.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    found.pop("measured_at")
    return found


def _handbook(runtime: Runtime, expert: Actor, slug: str) -> Asset:
    asset = create_test_asset(runtime, owner=expert.account, slug=slug)
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    return asset


async def test_expert_golden_set_leaves_public_score_unchanged_approved_one_counts(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    client_user: Actor,
    admin: Actor,
) -> None:
    asset = _handbook(runtime, expert, "garden")
    _outcomes(runtime, "garden", client_user, accepted=12, corrected=8)
    before = await _score(client, client_user, "garden")
    assert (before["score"], before["n"], before["right"]) == (0.6, 20, 12)

    # The expert's own one-question set, which the asset answers perfectly: private.
    with session_scope(runtime.engine) as session:
        found = session.get(Asset, asset.id)
        assert found is not None
        golden = Golden("mine", "0" * 64, "mine", [GoldenItem.model_validate(REFUNDS)], [1])
        report = quality._run(session, runtime, found, golden, scope="private")
        assert report.metrics["right"] == {"value": 1.0, "n": 1, "right": 1}
    assert await _score(client, client_user, "garden") == before

    # The same set submitted for approval: it counts only once an admin approved it and the
    # platform ran it.
    submitted = await client.post(
        "/v1/assets/garden/golden-sets",
        json={"name": "refunds", "items": REFUNDS_ITEMS},
        headers=expert.headers,
    )
    assert submitted.status_code == 201, submitted.text
    set_id = submitted.json()["id"]
    assert submitted.json()["status"] == "submitted"
    quality.run_platform_evals(runtime, slug="garden")
    assert await _score(client, client_user, "garden") == before

    for outsider in (expert, client_user):
        refused = await client.post(
            f"/v1/admin/golden-sets/{set_id}/approve", json={}, headers=outsider.headers
        )
        assert refused.status_code == 403, refused.text
    approved = await client.post(
        f"/v1/admin/golden-sets/{set_id}/approve", json={"note": "fair"}, headers=admin.headers
    )
    assert approved.status_code == 200, approved.text
    again = await client.post(
        f"/v1/admin/golden-sets/{set_id}/reject", json={}, headers=admin.headers
    )
    assert again.status_code == 409

    quality.run_platform_evals(runtime, slug="garden")
    after = await _score(client, client_user, "garden")
    assert (after["n"], after["right"]) == (21, 13)
    assert after["parts"]["approved"][0]["golden"] == "refunds"
    assert (after["parts"]["approved"][0]["right"], after["parts"]["approved"][0]["n"]) == (1, 1)


async def test_no_score_below_the_minimum_sample_and_interval_shown(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="small")
    _outcomes(runtime, "small", client_user, accepted=19, abstained=3, pending=2)
    small = await _score(client, client_user, "small")
    assert (small["score"], small["interval"], small["n"]) == (None, None, 19)
    assert small["summary"] == "not enough measured answers yet (19 of 20)"
    page = await client.get("/v1/catalog/assets", headers=client_user.headers)
    listed = {a["slug"]: a for a in page.json()}
    assert (listed["small"]["quality"], listed["small"]["quality_n"]) == (None, 19)

    _outcomes(runtime, "small", client_user, refunded=1)
    scored = await _score(client, client_user, "small")
    assert (scored["score"], scored["n"], scored["right"]) == (0.95, 20, 19)
    low, high = scored["interval"]["low"], scored["interval"]["high"]
    assert 0.7 < low < 0.95 < high <= 1.0
    assert scored["interval"]["method"] == "wilson"


async def test_outcomes_counted_as_defined(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="mixed")
    counts = {"accepted": 9, "approved": 6, "corrected": 2, "rejected": 2, "refunded": 1}
    _outcomes(runtime, "mixed", client_user, abstained=4, pending=3, **counts)
    # The expert's own questions never count.
    _outcomes(runtime, "mixed", expert, accepted=10)
    found = await _score(client, client_user, "mixed")
    part = found["parts"]["consultations"]
    assert part["outcomes"] == counts | {"abstained": 4, "pending": 3}
    assert (part["right"], part["n"]) == (15, 20)
    assert part["flagged"] == 10  # approved, corrected and rejected were flagged by the client
    assert (found["score"], found["n"]) == (0.75, 20)


async def test_catalog_sorts_by_lower_bound_so_a_tiny_perfect_record_does_not_lead(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    for slug in ("lucky", "steady", "unscored"):
        create_test_asset(runtime, owner=expert.account, slug=slug)
    _outcomes(runtime, "lucky", client_user, accepted=20)
    _outcomes(runtime, "steady", client_user, accepted=95, refunded=2)
    _outcomes(runtime, "unscored", client_user, accepted=3)
    page = await client.get("/v1/catalog/assets?sort=quality", headers=client_user.headers)
    listed = page.json()
    assert [a["slug"] for a in listed] == ["steady", "lucky", "unscored"]
    lucky = next(a for a in listed if a["slug"] == "lucky")
    assert lucky["quality"] == 1.0
    assert lucky["quality_interval"]["low"] < 0.9


async def test_platform_reasks_accepted_questions_and_the_score_uses_the_run(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    _handbook(runtime, expert, "garden")
    asked = await client.post(
        "/v1/assets/garden/ask",
        json={"question": "How long does it take to get a refund?"},
        headers=client_user.headers,
    )
    assert asked.status_code == 200, asked.text
    consultation_id = asked.json()["consultation_id"]
    accepted = await client.post(
        f"/v1/consultations/{consultation_id}/accept", headers=client_user.headers
    )
    assert accepted.status_code == 200, accepted.text
    before = await _score(client, client_user, "garden")
    assert before["parts"]["platform"] is None

    reports = quality.run_platform_evals(runtime)
    assert [(r["asset"], r["scope"]) for r in reports] == [("garden", "platform")]
    with Session(runtime.engine) as session:
        run = session.exec(select(EvalRun).where(EvalRun.scope == "platform")).one()
        assert [q["id"] for q in run.questions] == [consultation_id]
    after = await _score(client, client_user, "garden")
    assert after["parts"]["platform"]["n"] == 1
    assert after["parts"]["platform"]["right"] == 1  # the same asset answers it the same way
    assert (after["n"], after["right"]) == (2, 2)


async def test_private_runs_are_the_owners_alone(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    client_user: Actor,
) -> None:
    asset = create_test_asset(runtime, owner=expert.account, slug="mine")
    with session_scope(runtime.engine) as session:
        session.add(
            EvalRun(
                asset_id=asset.id,
                golden_name="diagnostic",
                golden_sha256="0" * 64,
                size=1,
                k=10,
                metrics={"right": {"value": 1.0, "n": 1, "right": 1}},
                questions=[],
            )
        )
    own = await client.get("/v1/assets/mine/eval-runs", headers=expert.headers)
    assert own.status_code == 200
    assert [r["golden"] for r in own.json()] == ["diagnostic"]
    for outsider in (expert_second, client_user):
        refused = await client.get("/v1/assets/mine/eval-runs", headers=outsider.headers)
        assert refused.status_code in (403, 404), refused.text
        assert "diagnostic" not in refused.text
        sets = await client.get("/v1/assets/mine/golden-sets", headers=outsider.headers)
        assert sets.status_code in (403, 404)
    public = await _score(client, client_user, "mine")
    assert (public["n"], public["parts"]["approved"], public["parts"]["platform"]) == (0, [], None)
    assert "diagnostic" not in json.dumps(public)


async def test_submitting_a_bad_golden_set_is_422_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, expert_second: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="mine")
    bad = await client.post(
        "/v1/assets/mine/golden-sets",
        json={"name": "x", "items": {"a": {"question": "Q?"}}},
        headers=expert.headers,
    )
    assert bad.status_code == 422
    assert "expected" in bad.json()["detail"]
    theirs = await client.post(
        "/v1/assets/mine/golden-sets",
        json={"name": "x", "items": REFUNDS_ITEMS},
        headers=expert_second.headers,
    )
    assert theirs.status_code == 404  # another expert's asset: its sets are not theirs
    listed = await client.get("/v1/assets/mine/golden-sets", headers=expert.headers)
    assert listed.json() == []


async def test_a_client_without_a_verified_email_does_not_vote(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    """A sock puppet signs up and praises the asset: nothing changes until it verifies."""
    create_test_asset(runtime, owner=expert.account, slug="mixed")
    _outcomes(runtime, "mixed", client_user, accepted=10, refunded=10)
    puppet = create_actor(runtime, role="client")
    with session_scope(runtime.engine) as session:
        unverified = session.get(Account, puppet.account.id)
        assert unverified is not None
        unverified.email_verified_at = None
        session.add(unverified)
    _outcomes(runtime, "mixed", puppet, accepted=30)
    found = await _score(client, client_user, "mixed")
    assert (found["score"], found["n"], found["right"]) == (0.5, 20, 10)
    assert found["parts"]["consultations"]["outcomes"]["accepted"] == 10
    with session_scope(runtime.engine) as session:
        # Nor are its questions re-asked by the platform: the client's 10 accepted ones are.
        assert len(quality.references(session, session.exec(select(Asset)).one())) == 10

    with session_scope(runtime.engine) as session:
        verified = session.get(Account, puppet.account.id)
        assert verified is not None
        verified.email_verified_at = utcnow()
        session.add(verified)
    counted = await _score(client, client_user, "mixed")
    assert (counted["n"], counted["right"]) == (50, 40)
