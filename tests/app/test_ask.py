"""Asking over HTTP: cited answers, recorded consultations and usage, clear errors."""

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Consultation
from billing.metering import count_tokens
from billing.models import UsageEvent
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path


@pytest.fixture
def handbook(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    return asset.slug


def _counts(session: Session) -> tuple[int, int]:
    return (
        len(session.exec(select(Consultation)).all()),
        len(session.exec(select(UsageEvent)).all()),
    )


async def test_ask_returns_answer_citing_path_and_lines(
    client: httpx.AsyncClient, client_user: Actor, handbook: str
) -> None:
    response = await client.post(
        f"/v1/assets/{handbook}/ask",
        json={"question": "How long does a refund take?"},
        headers=client_user.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "answer",
        "citations",
        "confidence",
        "status",
        "review_reason",
        "consultation_id",
        "tokens",
        "charge",
    }
    # The asset has no plan: free to ask, and the answer still has its (empty) escrow hold.
    assert body["charge"]["amount"] == 0
    assert body["charge"]["source"] == "free"
    assert "14 days" in body["answer"]
    assert body["status"] in ("final", "pending_review")
    cited = body["citations"][0]
    assert cited["locator"] == {
        "path": "policies.md",
        "section": "Store policies > Refunds",
        "lines": [5, 8],
    }
    # The locator's lines are exactly the cited text, so a reader can follow it.
    lines = (HANDBOOK / "policies.md").read_text().splitlines()
    assert cited["text"] == "\n".join(lines[4:8])
    # Every sentence of the answer carries a citation that exists.
    numbers = {c["n"] for c in body["citations"]}
    for piece in body["answer"].split(" [")[1:]:
        assert int(piece.split("]")[0]) in numbers


async def test_ask_about_code_cites_symbol_and_line_span(
    client: httpx.AsyncClient, client_user: Actor, handbook: str
) -> None:
    response = await client.post(
        f"/v1/assets/{handbook}/ask",
        json={"question": "How many loyalty points does a purchase earn?"},
        headers=client_user.headers,
    )
    body = response.json()
    cited = {c["locator"]["symbol"]: c["locator"] for c in body["citations"]}
    assert cited["LoyaltyCard"]["path"] == "tools/pricing.py"
    first, last = cited["LoyaltyCard"]["lines"]
    assert first <= 22 <= last  # return int(amount // 10): the lines quoted are the lines cited
    assert "return int(amount // 10)" in body["answer"]


async def test_ask_records_consultation_and_usage_with_tiktoken_counts(
    client: httpx.AsyncClient, client_user: Actor, handbook: str, session: Session
) -> None:
    response = await client.post(
        f"/v1/assets/{handbook}/ask",
        json={"question": "When does the store open?"},
        headers=client_user.headers,
    )
    body = response.json()
    consultation = session.get(Consultation, body["consultation_id"])
    assert consultation is not None
    assert consultation.account_id == client_user.account.id
    assert consultation.question == "When does the store open?"
    assert consultation.answer == body["answer"]
    assert consultation.citations == body["citations"]
    assert consultation.completion_tokens == count_tokens(body["answer"]) > 0
    # The prompt holds the question and every passage the answerer read.
    assert consultation.prompt_tokens > count_tokens("When does the store open?")
    assert body["tokens"] == {
        "prompt": consultation.prompt_tokens,
        "completion": consultation.completion_tokens,
    }
    event = session.exec(
        select(UsageEvent).where(UsageEvent.consultation_id == consultation.id)
    ).one()
    assert (event.prompt_tokens, event.completion_tokens) == (
        consultation.prompt_tokens,
        consultation.completion_tokens,
    )
    assert event.encoding == "o200k_base"
    assert event.account_id == client_user.account.id

    again = await client.get(f"/v1/consultations/{consultation.id}", headers=client_user.headers)
    assert again.json() == body


async def test_ask_abstains_when_sources_do_not_answer(
    client: httpx.AsyncClient, client_user: Actor, handbook: str
) -> None:
    response = await client.post(
        f"/v1/assets/{handbook}/ask",
        json={"question": "Which quantum chromodynamics gauge group describes gluons?"},
        headers=client_user.headers,
    )
    body = response.json()
    assert body["status"] == "abstained"
    assert body["citations"] == []
    assert "do not answer" in body["answer"]


@pytest.mark.parametrize(
    ("slug", "payload", "status", "error"),
    [
        ("garden", {"question": ""}, 422, "ValidationError"),
        ("garden", {"question": "   "}, 422, "InvalidQuestion"),
        ("garden", {}, 422, "ValidationError"),
        ("garden", {"question": "x" * 2001}, 422, "ValidationError"),
        ("no-such-asset", {"question": "When does the store open?"}, 404, "AssetNotFound"),
    ],
)
async def test_ask_rejects_bad_input_and_stores_nothing(
    client: httpx.AsyncClient,
    client_user: Actor,
    handbook: str,
    session: Session,
    slug: str,
    payload: dict[str, str],
    status: int,
    error: str,
) -> None:
    del handbook
    before = _counts(session)
    response = await client.post(
        f"/v1/assets/{slug}/ask", json=payload, headers=client_user.headers
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["detail"]
    assert _counts(session) == before


async def test_ask_rejects_malformed_json(
    client: httpx.AsyncClient, client_user: Actor, handbook: str
) -> None:
    response = await client.post(
        f"/v1/assets/{handbook}/ask",
        content=b"{not json",
        headers={**client_user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"
