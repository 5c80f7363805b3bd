"""The engagement pages through real sign-in on both databases: commission, agree, fund,
deliver (with a PDF, and a draft from the expert's asset), approve, dispute and an admin's
settlement; escalation from an answer; refusals shown on the page."""

import html
import re
from urllib.parse import quote

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from billing import ledger
from billing import service as billing
from core.db import session_scope
from marketplace.models import Engagement
from tests.factories import (
    HANDBOOK,
    Actor,
    create_test_asset,
    ingest_path,
    sign_in,
)

QUESTION = "How long does a refund take?"
PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def garden(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    assert job.status == "succeeded", job.error
    return asset.slug


def grant(runtime: Runtime, actor: Actor, amount: int = 100_000) -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key="g"
        )


def balance(runtime: Runtime, account: str) -> int:
    with Session(runtime.engine) as session:
        assert ledger.unbalanced_transactions(session) == []
        return ledger.balance(session, account, "usd")


def section(page: str, element_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{element_id}".*?</section>', page, re.S)
    assert found is not None, page
    return found.group(0)


async def post(client: httpx.AsyncClient, path: str, **data: str | list[str]) -> httpx.Response:
    return await client.post(path, data=data)


def form_action(page: str) -> str:
    """Where the commission form posts (HTML-unescaped)."""
    found = re.search(r'<form method="post" action="([^"]+)" id="commission">', page)
    assert found is not None, page
    return html.unescape(found.group(1))


async def commissioned(client: httpx.AsyncClient, expert: Actor, slug: str = "") -> str:
    """The signed-in client commissions ``expert`` through the form; returns its page path."""
    form = await client.get(f"/engagements/new?expert={expert.account.id}&asset={slug}")
    assert form.status_code == 200
    assert f"Commission {expert.account.name}" in form.text
    action = form_action(form.text)
    assert action == f"/engagements/new?expert={expert.account.id}&asset={slug}"
    response = await post(
        client,
        action,
        expert=expert.account.id,
        asset=slug,
        title="Architecture review",
        scope="Review the design of the order service.",
        deliverable="A written report",
        milestone_title=["Design", "Failure modes", ""],
        milestone_amount=["300.00", "200", ""],
        deadline="2099-12-31",
        revision_limit="1",
        review_days="10",
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/engagements/eng_[a-z0-9]+\?done=requested", location)
    return location.split("?")[0]


def milestone_ids(page: str) -> list[str]:
    return re.findall(r'<section class="card milestone" id="milestone-(mil_[a-z0-9]+)"', page)


async def test_pages_need_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/engagements", "/engagements/new?expert=x", "/admin/disputes"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


async def test_a_form_sent_signed_out_comes_back_to_itself_after_signing_in(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
) -> None:
    """The sign-in ran out while the form was filled in: nothing is requested, and signing in
    again leads back to the form for the same expert and asset."""
    await sign_in(client, client_user)
    action = form_action((await client.get(f"/engagements/new?expert={expert.account.id}")).text)
    client.cookies.clear()
    response = await post(client, action, expert=expert.account.id, title="Review")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={quote(action)}"
    with Session(runtime.engine) as session:
        assert session.exec(select(Engagement)).all() == []
    await sign_in(client, client_user)
    again = await client.get(action)
    assert f"Commission {expert.account.name}" in again.text


async def test_commission_agree_fund_deliver_and_approve_through_the_pages(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor, garden: str
) -> None:
    grant(runtime, client_user)
    await sign_in(client, client_user)
    path = await commissioned(client, expert, garden)
    page = (await client.get(f"{path}?done=requested")).text
    assert "Request sent" in page
    assert "500.00 USD in 2 milestones" in page
    assert 'data-status="requested"' in page
    assert "due 2099-12-31" in page
    listed = (await client.get("/engagements")).text
    assert "Architecture review" in listed
    assert 'href="/engagements"' in listed  # in the navigation

    await sign_in(client, expert)
    page = (await client.get(path)).text
    assert "your turn" in (await client.get("/engagements")).text
    assert 'action="' + path + '/accept"' in page
    assert 'action="' + path + '/propose"' in page
    response = await post(client, f"{path}/accept")
    assert response.status_code == 303
    first, second = milestone_ids((await client.get(path)).text)

    await sign_in(client, client_user)
    response = await post(client, f"{path}/milestones/{first}/fund", pay="credits")
    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?done=funded"
    page = (await client.get(f"{path}?done=funded")).text
    assert "300.00 USD held in escrow" in page
    assert balance(runtime, ledger.credits(client_user.account.id)) == 70_000
    assert "Pay by card" not in page  # Stripe is not configured

    await sign_in(client, expert)
    page = (await client.get(path)).text
    assert 'action="' + path + f'/milestones/{first}/deliver"' in page
    assert f'/milestones/{second}/deliver"' not in page  # not funded
    # Draft with the asset: the answer and its sources land in the report being written.
    response = await post(
        client,
        f"{path}/milestones/{first}/draft",
        report="# Design review\n\nMy notes.",
        question=QUESTION,
    )
    assert response.status_code == 200, response.text
    textarea = re.search(
        r'<textarea id="report-' + first + r'"[^>]*>(.*?)</textarea>', response.text, re.S
    )
    assert textarea is not None
    assert textarea.group(1).startswith("# Design review\n\nMy notes.\n\n**Q:** How long")
    assert "- [1] policies.md" in textarea.group(1)
    response = await client.post(
        f"{path}/milestones/{first}/deliver",
        data={"report": "# Design review\n\nSound."},
        files={"file": ("review.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 303, response.text

    await sign_in(client, client_user)
    page = (await client.get(path)).text
    ms = section(page, f"milestone-{first}")
    assert 'data-status="delivered"' in ms
    assert "Sound." in ms
    assert f"{path}/milestones/{first}/report.pdf" in ms
    assert "Ask for a revision (1 left)" in ms
    pdf = await client.get(f"{path}/milestones/{first}/report.pdf")
    assert pdf.content == PDF
    response = await post(client, f"{path}/milestones/{first}/approve")
    assert response.headers["location"] == f"{path}?done=approved"
    page = (await client.get(f"{path}?done=approved")).text
    assert "released to the expert" in page
    assert 'data-kind="approved"' in page
    assert "240.00 USD to the expert, 60.00 USD fee" in page
    assert balance(runtime, ledger.available(expert.account.id)) == 24_000


async def test_refused_steps_are_shown_on_the_page(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor
) -> None:
    grant(runtime, client_user, 1_000)
    await sign_in(client, client_user)
    response = await post(
        client,
        "/engagements/new",
        expert=expert.account.id,
        title="Review",
        scope="Scope",
        deliverable="Report",
        milestone_title=["Only"],
        milestone_amount=["ten"],
    )
    assert response.status_code == 422
    assert "milestone &#39;Only&#39;: &#39;ten&#39; is not an amount" in response.text
    assert 'value="Review"' in response.text  # what was typed is kept
    path = await commissioned(client, expert)
    first, _ = milestone_ids((await client.get(path)).text)
    # Funding before the expert accepted.
    response = await post(client, f"{path}/milestones/{first}/fund")
    assert response.status_code == 409
    assert "waits for the expert to accept" in response.text

    await sign_in(client, expert)
    await post(client, f"{path}/accept")
    await sign_in(client, client_user)
    response = await post(client, f"{path}/milestones/{first}/fund")
    assert response.status_code == 402
    assert "this milestone costs 300.00 USD and you have 10.00 USD in credits" in response.text


async def test_strangers_get_404_pages(
    client: httpx.AsyncClient, client_user: Actor, client_second: Actor, expert: Actor
) -> None:
    await sign_in(client, client_user)
    path = await commissioned(client, expert)
    await sign_in(client, client_second)
    page = await client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "no engagement" in page.text
    response = await post(client, f"{path}/cancel")
    assert response.status_code == 404
    assert "Architecture review" not in (await client.get("/engagements")).text


async def test_an_admin_settles_a_dispute_from_the_disputes_page(
    client: httpx.AsyncClient, runtime: Runtime, client_user: Actor, expert: Actor, admin: Actor
) -> None:
    grant(runtime, client_user)
    await sign_in(client, client_user)
    path = await commissioned(client, expert)
    await sign_in(client, expert)
    await post(client, f"{path}/accept")
    first, _ = milestone_ids((await client.get(path)).text)
    await sign_in(client, client_user)
    await post(client, f"{path}/milestones/{first}/fund")
    await sign_in(client, expert)
    response = await client.post(f"{path}/milestones/{first}/deliver", data={"report": "Done."})
    assert response.status_code == 303
    await sign_in(client, client_user)
    response = await post(client, f"{path}/milestones/{first}/dispute", reason="Too thin.")
    assert response.headers["location"] == f"{path}?done=disputed"

    await sign_in(client, admin)
    assert "1 disputed milestone waits for you" in (await client.get("/engagements")).text
    page = (await client.get("/admin/disputes")).text
    card = section(page, f"dispute-{first}")
    assert "Too thin." in card
    assert "300.00 USD" in card
    settle = f"{path}/milestones/{first}/settle"
    response = await post(client, settle, outcome="split", expert_share="500", back="disputes")
    assert response.status_code == 422
    assert "an expert_share between 1 and 29999" in response.text
    response = await post(
        client, settle, outcome="split", expert_share="120.00", note="Half", back="disputes"
    )
    assert response.headers["location"] == "/admin/disputes?done=1"
    assert "No disputes wait" in (await client.get("/admin/disputes")).text
    assert balance(runtime, ledger.available(expert.account.id)) == 9_600
    assert balance(runtime, ledger.credits(client_user.account.id)) == 100_000 - 30_000 + 18_000
    assert balance(runtime, ledger.milestone(first)) == 0

    await sign_in(client, client_user)
    response = await client.get("/admin/disputes", headers={"Accept": "text/html"})
    assert response.status_code == 403


async def test_an_answer_is_escalated_from_its_page(
    client: httpx.AsyncClient, client_user: Actor, expert: Actor, garden: str
) -> None:
    await sign_in(client, client_user)
    answer = await client.post(
        f"/assets/{garden}/ask", data={"question": QUESTION}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200, answer.text
    link = re.search(r'href="(/engagements/new\?consultation=con_[a-z0-9]+)"', answer.text)
    assert link is not None, answer.text
    form = await client.get(link.group(1))
    assert form.status_code == 200
    assert f"Take this answer further with {expert.account.name}" in form.text
    assert QUESTION in section(form.text, "origin")
    assert 'value="100.00"' in form.text  # the default price of an escalation
    consultation = link.group(1).split("=")[1]
    response = await post(
        client,
        "/engagements/new",
        expert=expert.account.id,
        consultation=consultation,
        title=f"Follow-up: {QUESTION}",
        scope="Is this right for store credit too?",
        deliverable="A written answer",
        milestone_title=["Written answer"],
        milestone_amount=["100.00"],
    )
    assert response.status_code == 303, response.text
    page = (await client.get(response.headers["location"])).text
    origin = section(page, "origin")
    assert "Escalated from an answer" in origin
    assert QUESTION in origin
    assert "policies.md" in origin
    assert "Is this right for store credit too?" in section(page, "terms")

    await sign_in(client, expert)
    page = (await client.get(response.headers["location"].split("?")[0])).text
    assert QUESTION in section(page, "origin")
