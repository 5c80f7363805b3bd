"""The golden-set pages: the expert submits a set from their asset's page and sees their private
runs and the set's status; an admin approves or rejects it from theirs; nobody else sees any of
it. Real sign-in, on both databases."""

import json
import re

import httpx
from sqlmodel import select

from app.runtime import Runtime
from core.db import session_scope
from evals.models import EvalRun, GoldenSet
from tests.factories import PASSWORD, Actor, create_actor, create_test_asset, sign_in

# SQLite only: how the quality pages render figures computed and tested on both in test_quality.py.

ITEMS = [
    {
        "id": "refund-days",
        "question": "How long does a refund take?",
        "expected": [{"path": "policies.md", "lines": [5, 8]}],
        "facts": ["14 days"],
    },
    {"id": "crypto", "question": "Can I pay in bitcoin?", "unanswerable": True},
]
JSONL = "\n".join(json.dumps(item) for item in ITEMS).encode()


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def _submit(
    client: httpx.AsyncClient, slug: str, data: bytes, name: str = ""
) -> httpx.Response:
    return await client.post(
        f"/assets/{slug}/golden-sets",
        data={"name": name},
        files={"file": ("refunds.jsonl", data, "application/jsonl")},
    )


async def test_expert_submits_a_set_and_the_admin_approves_it_from_the_page(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, admin: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="garden")
    await sign_in(client, expert)
    asset_page = await client.get("/assets/garden")
    assert 'href="/assets/garden/golden-sets"' in asset_page.text

    submitted = await _submit(client, "garden", JSONL)
    assert submitted.status_code == 303, submitted.text
    assert submitted.headers["location"] == "/assets/garden/golden-sets?done=submitted"
    page = _text((await client.get(submitted.headers["location"])).text)
    assert "refunds 2 (1 unanswerable)" in page  # named after the file
    assert "Waiting for an admin" in page

    await sign_in(client, admin)
    nav = await client.get("/assets")
    assert 'href="/admin/golden-sets"' in nav.text
    listed = await client.get("/admin/golden-sets")
    assert listed.status_code == 200
    shown = _text(listed.text)
    assert "refunds" in shown
    assert expert.account.name in shown
    assert "/garden" in shown
    assert "How long does a refund take?" in shown  # the preview of its questions
    with session_scope(runtime.engine) as session:
        golden = session.exec(select(GoldenSet)).one()
    approved = await client.post(
        f"/admin/golden-sets/{golden.id}/approve", data={"note": "a fair test"}
    )
    assert approved.status_code == 303
    assert "Approved" in (await client.get(approved.headers["location"])).text
    with session_scope(runtime.engine) as session:
        decided = session.get(GoldenSet, golden.id)
        assert decided is not None
        assert (decided.status, decided.note, decided.decided_by) == (
            "approved",
            "a fair test",
            admin.account.id,
        )
    # Decided once: a second decision is refused and changes nothing.
    again = await client.post(f"/admin/golden-sets/{golden.id}/reject", data={"note": "no"})
    assert again.status_code == 409
    assert "already approved" in again.text
    with session_scope(runtime.engine) as session:
        assert session.get(GoldenSet, golden.id).status == "approved"  # type: ignore[union-attr]

    await sign_in(client, expert)
    own = _text((await client.get("/assets/garden/golden-sets")).text)
    assert "Approved" in own
    assert "a fair test" in own


async def test_admin_rejects_with_a_note_the_expert_reads(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, admin: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="garden")
    await sign_in(client, expert)
    assert (await _submit(client, "garden", JSONL, name="easy ones")).status_code == 303
    with session_scope(runtime.engine) as session:
        golden = session.exec(select(GoldenSet)).one()
    await sign_in(client, admin)
    rejected = await client.post(
        f"/admin/golden-sets/{golden.id}/reject", data={"note": "only questions it answers"}
    )
    assert rejected.status_code == 303
    waiting = await client.get("/admin/golden-sets")
    assert "easy ones" not in waiting.text
    assert "easy ones" in (await client.get("/admin/golden-sets?status=rejected")).text
    await sign_in(client, expert)
    own = _text((await client.get("/assets/garden/golden-sets")).text)
    assert "easy ones" in own
    assert "Rejected" in own
    assert "only questions it answers" in own


async def test_golden_set_review_is_for_admins(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="garden")
    await sign_in(client, expert)
    assert (await _submit(client, "garden", JSONL)).status_code == 303
    with session_scope(runtime.engine) as session:
        golden = session.exec(select(GoldenSet)).one()
    client_user = create_actor(runtime, role="client", password=PASSWORD)
    for who in (expert, client_user):
        await sign_in(client, who)
        assert (await client.get("/admin/golden-sets")).status_code == 403
        refused = await client.post(f"/admin/golden-sets/{golden.id}/approve", data={})
        assert refused.status_code == 403
    assert 'href="/admin/golden-sets"' not in (await client.get("/assets")).text
    with session_scope(runtime.engine) as session:
        assert session.get(GoldenSet, golden.id).status == "submitted"  # type: ignore[union-attr]
    client.cookies.clear()
    anonymous = await client.get("/admin/golden-sets")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


async def test_owner_sees_private_runs_another_expert_gets_404(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, expert_second: Actor
) -> None:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    with session_scope(runtime.engine) as session:
        session.add(
            EvalRun(
                asset_id=asset.id,
                golden_name="my diagnostic",
                golden_sha256="ab" * 32,
                size=7,
                k=10,
                metrics={"right": {"value": 0.5714, "n": 7, "right": 4}},
                questions=[],
            )
        )
    await sign_in(client, expert)
    own = await client.get("/assets/garden/golden-sets")
    assert own.status_code == 200
    shown = _text(own.text)
    assert "my diagnostic" in shown
    assert "right 0.57 n=7" in shown

    await sign_in(client, expert_second)
    theirs = await client.get("/assets/garden/golden-sets")
    assert theirs.status_code == 404
    assert "my diagnostic" not in theirs.text
    upload = await _submit(client, "garden", JSONL)
    assert upload.status_code == 404
    with session_scope(runtime.engine) as session:
        assert session.exec(select(GoldenSet)).all() == []


async def test_a_bad_file_is_refused_with_its_lines_and_nothing_is_stored(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor
) -> None:
    create_test_asset(runtime, owner=expert.account, slug="garden")
    await sign_in(client, expert)
    bad = JSONL + b'\n{"id": "x", "question": "Where?"}\nnot json\n'
    refused = await _submit(client, "garden", bad)
    assert refused.status_code == 422
    shown = _text(refused.text)
    assert "refunds.jsonl:3" in shown
    assert "expected" in shown
    assert "refunds.jsonl:4: not JSON" in shown
    missing = await client.post("/assets/garden/golden-sets", data={"name": "x"}, files={})
    assert missing.status_code == 422
    with session_scope(runtime.engine) as session:
        assert session.exec(select(GoldenSet)).all() == []
