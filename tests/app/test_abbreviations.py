"""Verified answers matched across the abbreviations an asset defines, end to end over HTTP:
a corpus that says "data protection officer (DPO)" is ingested, an expert corrects a question
asked one way, and a client who types it the other way gets the expert's answer.

Cosines (all-MiniLM-L6-v2) of the question typed against the one corrected: as written (all
that matching compared before abbreviations were learnt), then the best of both forms.

    corrected "What must the DPO do?"
        "What must the data protection officer do?"             0.42 -> 1.00
        "What are the duties of the data protection officer?"   0.35 -> 0.86
        "What must the data protection authority do?"           0.38 -> 0.69, and DPA is not DPO
    corrected "Who does the data protection officer report to?"
        "Who does the DPO report to?"                           0.55 -> 1.00
        "To whom does the DPO report?"                          0.50 -> 0.96
        "Who does the data protection authority report to?"     0.94 (served before), DPA is not DPO
    either: "How long are records of processing kept?"          0.07 and 0.27
"""

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.runtime import Runtime
from assets.embeddings import MiniLMEmbedder
from assets.lexical import LexicalIndex, LexicalStore
from assets.models import Asset
from billing import service as billing
from core.config import Settings
from core.db import session_scope
from tests.factories import Actor, create_actor, create_test_asset, ingest_path

# SQLite only: abbreviations learnt from text; the index they ride on is tested on both in
# tests/assets/test_lexical_store.py.

PRIVACY = Path(__file__).parents[1] / "data" / "privacy"
PASSWORD = "correct-horse"
CORRECTION = "The expert's answer: inform and advise, monitor compliance, cooperate."
UNRELATED = "How long are records of processing kept?"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A copy of the privacy corpus the test may change."""
    target = tmp_path / "privacy"
    shutil.copytree(PRIVACY, target)
    return target


def ingest(runtime: Runtime, asset: Asset, owner: Actor, path: Path) -> None:
    job = ingest_path(runtime, asset=asset, owner=owner.account, path=path)
    assert job.status == "succeeded", job.error


async def open_for_questions(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, slug: str
) -> None:
    """A price, credits for the client, and every answer below 0.99 confidence to review."""
    plan = await client.put(
        f"/v1/assets/{slug}/plan", json={"per_query": 1}, headers=expert.headers
    )
    assert plan.status_code == 200, plan.text
    settings = await client.put(
        f"/v1/assets/{slug}/review-settings",
        json={"review_threshold": 0.99},
        headers=expert.headers,
    )
    assert settings.status_code == 200, settings.text
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


async def correct(
    client: httpx.AsyncClient, expert: Actor, client_user: Actor, slug: str, question: str
) -> str:
    """The client asks ``question``, the expert corrects the answer: the verified answer's id."""
    asked = await ask(client, client_user, slug, question)
    assert asked["status"] == "pending_review"
    (item,) = (await client.get("/v1/review/queue", headers=expert.headers)).json()
    corrected = await client.post(
        f"/v1/review/{item['id']}/correct", json={"answer": CORRECTION}, headers=expert.headers
    )
    assert corrected.status_code == 200, corrected.text
    return str(corrected.json()["verified_answer"])


def served(answer: Any, verified_id: str) -> bool:
    """Whether an answer is the verified one, cited as such."""
    locator = answer["citations"][0]["locator"]
    return bool(answer["answer"] == CORRECTION and locator.get("verified_answer") == verified_id)


@pytest.mark.parametrize(
    ("corrected", "matching", "not_matching"),
    [
        pytest.param(
            "What must the DPO do?",
            [
                "What must the data protection officer do?",
                "What are the duties of the data protection officer?",
            ],
            ["What must the data protection authority do?", UNRELATED],
            id="asked-short-typed-long",
        ),
        pytest.param(
            "Who does the data protection officer report to?",
            ["Who does the DPO report to?", "To whom does the DPO report?"],
            ["Who does the data protection authority report to?", UNRELATED],
            id="asked-long-typed-short",
        ),
    ],
)
async def test_correction_serves_the_question_typed_with_the_other_form(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    client_user: Actor,
    corrected: str,
    matching: list[str],
    not_matching: list[str],
) -> None:
    asset = create_test_asset(runtime, owner=expert.account, slug="privacy")
    ingest(runtime, asset, expert, PRIVACY)
    await open_for_questions(client, runtime, expert, client_user, asset.slug)
    verified_id = await correct(client, expert, client_user, asset.slug, corrected)

    for question in matching:
        answer = await ask(client, client_user, asset.slug, question)
        assert served(answer, verified_id), question
        assert answer["status"] == "final"
    for question in not_matching:
        answer = await ask(client, client_user, asset.slug, question)
        assert not served(answer, verified_id), question
        assert answer["answer"] != CORRECTION


class CountingEmbedder:
    """The real embedder, counting the questions it is asked to embed (not the pieces of
    passages the answerer weighs by meaning, each a line naming its passage and the piece)."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(t for t in texts if "\n" not in t)
        return self.inner.embed(texts)


async def test_a_second_embedding_only_for_a_long_form_that_did_not_match(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    counting = CountingEmbedder(embedder)
    runtime = Runtime(settings, embedder=counting)
    try:
        expert = create_actor(runtime, role="expert")
        client_user = create_actor(runtime, role="client")
        asset = create_test_asset(runtime, owner=expert.account, slug="privacy")
        ingest(runtime, asset, expert, PRIVACY)
        transport = httpx.ASGITransport(app=create_app(runtime.settings, runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as client:
            await open_for_questions(client, runtime, expert, client_user, asset.slug)
            question = "Can the data protection officer be dismissed?"
            counting.texts.clear()
            verified_id = await correct(client, expert, client_user, asset.slug, question)
            # Asked once, then indexed in both forms with one more call.
            assert counting.texts == [question, question, "Can the DPO be dismissed?"]

            async def embedded_for(question: str) -> list[str]:
                counting.texts.clear()
                await ask(client, client_user, asset.slug, question)
                return list(counting.texts)

            # No abbreviation or long form, or only an abbreviation: embedded once.
            assert await embedded_for(UNRELATED) == [UNRELATED]
            assert await embedded_for("Who designates the DPO?") == ["Who designates the DPO?"]
            # A long form that matched as written: once.
            assert await embedded_for(question) == [question]
            # A long form that matched nothing as written is tried as its abbreviation.
            other = "What must the data protection authority do?"
            assert await embedded_for(other) == [other, "What must the DPA do?"]
            answer = await ask(client, client_user, asset.slug, "Can the DPO be dismissed?")
            assert served(answer, verified_id)
    finally:
        runtime.close()


def learnt(runtime: Runtime, asset: Asset) -> dict[str, str]:
    """The asset's abbreviations as another server reads them."""
    store = LexicalStore(runtime.settings.data_dir / "elsewhere", runtime.engine)
    return dict(store.get(asset.collection).abbreviations.pairs)


async def test_abbreviations_follow_the_documents_that_define_them(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor, corpus: Path
) -> None:
    officer = corpus / "officer.md"
    defined = officer.read_text()
    officer.unlink()
    asset = create_test_asset(runtime, owner=expert.account, slug="privacy")
    ingest(runtime, asset, expert, corpus)
    # From a paragraph and from a code comment.
    assert learnt(runtime, asset) == {"DPA": "data protection authority", "TTL": "time to live"}
    await open_for_questions(client, runtime, expert, client_user, asset.slug)
    question = "Who does the data protection officer report to?"
    verified_id = await correct(client, expert, client_user, asset.slug, question)
    typed = "Who does the DPO report to?"
    assert not served(await ask(client, client_user, asset.slug, typed), verified_id)

    # The document that defines DPO arrives: the verified question is indexed with it.
    officer.write_text(defined)
    ingest(runtime, asset, expert, corpus)
    assert learnt(runtime, asset)["DPO"] == "data protection officer"
    assert served(await ask(client, client_user, asset.slug, typed), verified_id)

    # It changes and no longer defines DPO: forgotten, and the question no longer matches.
    officer.write_text(defined.replace(" (DPO)", ""))
    ingest(runtime, asset, expert, corpus)
    assert "DPO" not in learnt(runtime, asset)
    assert not served(await ask(client, client_user, asset.slug, typed), verified_id)

    # Defined again, then the document is removed from the source.
    officer.write_text(defined)
    ingest(runtime, asset, expert, corpus)
    assert served(await ask(client, client_user, asset.slug, typed), verified_id)
    officer.unlink()
    ingest(runtime, asset, expert, corpus)
    assert "DPO" not in learnt(runtime, asset)
    assert not served(await ask(client, client_user, asset.slug, typed), verified_id)
    # The question as the expert verified it is served throughout.
    assert served(await ask(client, client_user, asset.slug, question), verified_id)


def test_an_index_saved_before_abbreviations_is_rebuilt_by_the_next_ingest(
    runtime: Runtime, expert: Actor
) -> None:
    asset = create_test_asset(runtime, owner=expert.account, slug="privacy")
    ingest(runtime, asset, expert, PRIVACY)
    # The index an older Vouch stored: without abbreviations or a format.
    folder = runtime.settings.data_dir / "lexical" / asset.collection
    old = json.loads((folder / "chunks.json").read_text())
    del old["abbreviations"], old["format"]
    (folder / "chunks.json").write_text(json.dumps(old))
    runtime.lexical.replace(asset.collection, LexicalIndex.load(folder))
    assert learnt(runtime, asset) == {}

    ingest(runtime, asset, expert, PRIVACY)  # nothing changed but the index's format
    assert set(learnt(runtime, asset)) == {"DPA", "DPO", "TTL"}


async def test_the_verified_answers_page_lists_the_abbreviations(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    expert = create_actor(runtime, role="expert", password=PASSWORD)
    asset = create_test_asset(runtime, owner=expert.account, slug="privacy")
    ingest(runtime, asset, expert, PRIVACY)
    signed_in = await client.post(
        "/login", data={"email": expert.account.email, "password": PASSWORD, "next": "/assets"}
    )
    assert signed_in.status_code == 303
    page = await client.get(f"/assets/{asset.slug}/verified")
    assert page.status_code == 200
    section = re.search(r'<section class="card" id="abbreviations">.*?</section>', page.text, re.S)
    assert section is not None, page.text
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", section.group(0))
    assert rows == [
        ("DPA", "data protection authority"),
        ("DPO", "data protection officer"),
        ("TTL", "time to live"),
    ]
