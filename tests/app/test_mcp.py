"""Assets inside the client's own AI tools over MCP: the SDK's own client against a running
server, over Streamable HTTP (/mcp) and over stdio (`vouch mcp`), charged like any ask."""

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextResourceContents
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Consultation
from billing import ledger
from billing import service as billing
from billing.models import Charge
from core.config import Settings
from core.db import session_scope
from ingestion.models import FINISHED, IngestionJob
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path
from tests.servers import wait_for

# SQLite only: the MCP protocol over the ask, whose charge and hold are tested on both in
# test_ask.py and test_charging.py.

QUESTION = "How long does a refund take?"
PRICE = 50


@pytest.fixture
def asks_per_minute() -> int:
    return 60


@pytest.fixture
def settings(settings: Settings, asks_per_minute: int) -> Settings:
    billing = settings.billing.model_copy(update={"asks_per_minute": asks_per_minute})
    return settings.model_copy(update={"billing": billing})


@pytest.fixture
def priced(live_server: tuple[str, Runtime], expert: Actor, expert_second: Actor) -> str:
    """A published asset at 0.50 USD a question, and another expert's unpublished one."""
    _, runtime = live_server
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    wait_for(lambda: _status(runtime, job.id) in FINISHED, timeout=120)  # the server's queue
    assert _status(runtime, job.id) == "succeeded"
    create_test_asset(runtime, owner=expert_second.account, slug="draft", published=False)
    with session_scope(runtime.engine) as session:
        billing.set_plan(session, asset_id=asset.id, terms=billing.PlanTerms(per_query=PRICE))
    return asset.slug


def _status(runtime: Runtime, job_id: str) -> str | None:
    with Session(runtime.engine) as session:
        job = session.get(IngestionJob, job_id)
        return job.status if job else None


def grant(runtime: Runtime, actor: Actor, amount: int) -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key="grant"
        )


def credits(runtime: Runtime, actor: Actor) -> int:
    with Session(runtime.engine) as session:
        return ledger.balance(session, ledger.credits(actor.account.id), "usd")


def charges(runtime: Runtime) -> list[Charge]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Charge)))


def consultations(runtime: Runtime) -> int:
    with Session(runtime.engine) as session:
        return len(session.exec(select(Consultation)).all())


@asynccontextmanager
async def connect(url: str, key: str, query: str = "") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        Client(streamable_http_client(f"{url}/mcp{query}", http_client=http)) as client,
    ):
        yield client


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def test_a_client_sees_ask_with_the_assets_it_may_use_and_their_price(
    live_server: tuple[str, Runtime], priced: str, client_user: Actor, expert: Actor
) -> None:
    url, runtime = live_server
    grant(runtime, client_user, 500)
    monthly = create_test_asset(runtime, owner=expert.account, slug="monthly")
    with session_scope(runtime.engine) as session:
        terms = billing.PlanTerms(monthly=1000, included=20)
        billing.set_plan(session, asset_id=monthly.id, terms=terms)
    async with connect(url, client_user.key) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
    # Passages are the corpus: a client asks, only the expert searches.
    assert set(tools) == {"ask"}
    ask = tools["ask"]
    # Not the other expert's unpublished asset.
    assert sorted(ask.input_schema["properties"]["asset"]["enum"]) == [priced, "monthly"]
    assert "monthly: Garden store handbook. 10.00 USD a month for 20 questions" in (
        ask.description or ""
    )
    assert "garden: Garden store handbook. 0.50 USD a question" in (ask.description or "")
    assert "0.50 USD from your credits (5.00 USD)" in (ask.description or "")


async def test_ask_is_answered_with_citations_charged_and_held_once_per_request_id(
    live_server: tuple[str, Runtime], priced: str, client_user: Actor
) -> None:
    url, runtime = live_server
    grant(runtime, client_user, 500)
    arguments = {"asset": priced, "question": QUESTION, "request_id": "r-1"}
    async with connect(url, client_user.key) as mcp:
        result = await mcp.call_tool("ask", arguments)
        again = await mcp.call_tool("ask", arguments)
        answer = result.structured_content
        assert not result.is_error, text_of(result)
        cited = answer["citations"][0]
        assert cited["locator"]["path"] == "policies.md"
        assert "14 days" in answer["answer"]
        # The text a person reads names each source by its locator, and the charge.
        assert "[1] policies.md:5-8" in text_of(result)
        assert "Charged 0.50 USD (credits), held in escrow until" in text_of(result)
        # Each citation is also a resource that can be read again later.
        resources = [c.resource for c in result.content if c.type == "resource"]
        assert isinstance(resources[0], TextResourceContents)
        assert resources[0].uri == f"vouch://consultations/{answer['consultation_id']}/citations/1"
        assert resources[0].text == cited["text"]
        (again_read,) = (await mcp.read_resource(resources[0].uri)).contents
        assert isinstance(again_read, TextResourceContents)
        assert again_read.text == cited["text"]
    assert again.structured_content["consultation_id"] == answer["consultation_id"]
    (charge,) = charges(runtime)
    # Held in escrow; an answer that awaits the expert's review is held until it is judged.
    held = "held" if answer["status"] == "final" else "in_review"
    assert (charge.amount, charge.status, charge.source) == (PRICE, held, "credits")
    assert charge.consultation_id == answer["consultation_id"]
    assert credits(runtime, client_user) == 500 - PRICE


async def test_refusals_are_tool_errors_that_charge_and_record_nothing(
    live_server: tuple[str, Runtime], priced: str, client_user: Actor, client_second: Actor
) -> None:
    url, runtime = live_server
    grant(runtime, client_user, 500)
    async with connect(url, client_second.key) as mcp:  # no credits
        broke = await mcp.call_tool("ask", {"asset": priced, "question": QUESTION})
    async with connect(url, client_user.key) as mcp:
        hidden = await mcp.call_tool("ask", {"asset": "draft", "question": QUESTION})
        blank = await mcp.call_tool("ask", {"asset": priced, "question": "   "})
        search = await mcp.call_tool("search", {"asset": priced, "query": "refund"})
    assert broke.is_error
    assert broke.structured_content["status"] == 402
    assert "credits" in text_of(broke)
    assert hidden.is_error
    assert hidden.structured_content["status"] == 404
    assert blank.is_error
    assert blank.structured_content["status"] == 422
    assert search.is_error
    assert search.structured_content["status"] == 403
    assert charges(runtime) == []
    assert consultations(runtime) == 0
    # A connection scoped to an asset the key may not use is refused as well.
    async with connect(url, client_user.key, "?asset=draft") as mcp:
        scoped = await mcp.call_tool("ask", {"question": QUESTION})
    assert scoped.structured_content["status"] == 404


@pytest.mark.parametrize("asks_per_minute", [1])
async def test_too_many_questions_is_a_tool_error_saying_when_to_try_again(
    live_server: tuple[str, Runtime], priced: str, client_user: Actor
) -> None:
    url, runtime = live_server
    grant(runtime, client_user, 500)
    async with connect(url, client_user.key) as mcp:
        first = await mcp.call_tool("ask", {"asset": priced, "question": QUESTION})
        second = await mcp.call_tool("ask", {"asset": priced, "question": "Do you ship abroad?"})
    assert not first.is_error
    assert second.is_error
    assert second.structured_content["status"] == 429
    assert second.structured_content["retry_after"] >= 1
    assert "try again in" in text_of(second)
    assert len(charges(runtime)) == 1


async def test_without_a_valid_key_mcp_answers_401_pointing_to_its_metadata(
    live_server: tuple[str, Runtime],
) -> None:
    url, _ = live_server
    async with httpx.AsyncClient(base_url=url) as http:
        bare = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        wrong = await http.post(
            "/mcp", json={}, headers={"Authorization": "Bearer vch_nope_123456"}
        )
        metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
        stream = await http.get("/mcp", headers={"Authorization": "Bearer vch_nope_123456"})
    assert bare.status_code == wrong.status_code == 401
    assert "Bearer vch_" in bare.json()["error_description"]
    assert wrong.json()["error_description"] == "unknown API key"
    challenge = bare.headers["www-authenticate"]
    assert f'resource_metadata="{url}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert metadata.json()["resource"] == f"{url}/mcp"
    assert metadata.json()["bearer_methods_supported"] == ["header"]
    assert stream.status_code == 405  # no server-initiated stream: every call is a POST


async def test_an_expert_searches_the_passages_of_their_own_asset_for_free(
    live_server: tuple[str, Runtime], priced: str, expert: Actor
) -> None:
    url, runtime = live_server
    async with connect(url, expert.key, f"?asset={priced}") as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        found = await mcp.call_tool("search", {"query": "refund", "k": 3})
        asked = await mcp.call_tool("ask", {"question": QUESTION})
    assert set(tools) == {"ask", "search"}
    assert "free to ask (you manage this asset)" in (tools["ask"].description or "")
    results = found.structured_content["results"]
    assert len(results) == 3
    assert results[0]["locator"]["path"] == "policies.md"
    assert asked.structured_content["charge"]["amount"] == 0
    assert [c.amount for c in charges(runtime)] == [0]


async def test_vouch_mcp_serves_the_same_tools_over_stdio(
    live_server: tuple[str, Runtime], priced: str, client_user: Actor
) -> None:
    url, runtime = live_server
    grant(runtime, client_user, 500)
    vouch = Path(sys.executable).parent / "vouch"
    server = StdioServerParameters(
        command=str(vouch),
        args=["mcp", "--asset", priced, "--key", client_user.key],
        env={**os.environ, "VOUCH_URL": url},
    )
    async with Client(server) as mcp:
        tools = (await mcp.list_tools()).tools
        result = await mcp.call_tool("ask", {"question": QUESTION, "request_id": "desk-1"})
    assert [t.name for t in tools] == ["ask"]
    assert not result.is_error, text_of(result)
    assert result.structured_content["citations"][0]["locator"]["path"] == "policies.md"
    (charge,) = charges(runtime)
    assert charge.consultation_id == result.structured_content["consultation_id"]
    assert (charge.amount, charge.status) == (PRICE, result.structured_content["charge"]["status"])
    assert credits(runtime, client_user) == 500 - PRICE


def test_vouch_mcp_says_when_the_server_refuses_the_key(live_server: tuple[str, Runtime]) -> None:
    url, _ = live_server
    vouch = Path(sys.executable).parent / "vouch"
    run = subprocess.run(
        [str(vouch), "mcp", "--key", "vch_nope_123456", "--url", url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert f"the Vouch server at {url} did not serve MCP" in run.stderr
    assert "401: unknown API key" in run.stderr


async def test_the_asset_page_shows_addresses_that_work_in_mcp_and_openai_clients(
    live_server: tuple[str, Runtime], priced: str, client_user: Actor
) -> None:
    url, runtime = live_server
    grant(runtime, client_user, 500)
    async with httpx.AsyncClient(base_url=url) as http:
        page = (await http.get(f"/catalog/assets/{priced}")).text
    shown = re.search(r'<code id="mcp-url">([^<]+)</code>', page)
    assert shown is not None
    assert shown[1] == f"{url}/mcp?asset={priced}"
    async with connect(url, client_user.key, shown[1].removeprefix(f"{url}/mcp")) as mcp:
        (ask,) = (await mcp.list_tools()).tools
        answered = await mcp.call_tool("ask", {"question": QUESTION})
    assert ask.input_schema["properties"]["asset"]["enum"] == [priced]
    assert "14 days" in answered.structured_content["answer"]
    assert f'<code id="openai-base">{url}/v1</code>' in page
    command = re.search(r'<code id="mcp-command">([^<]+)</code>', page)
    assert command is not None
    assert command[1] == f"vouch mcp --asset {priced} --key vch_… --url {url}"
