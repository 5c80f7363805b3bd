"""The OpenAI-compatible API, driven by the official ``openai`` client against a running server:
assets as models, cited answers plain and streamed, charged into escrow once, OpenAI's errors."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import openai
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Asset, Consultation
from billing import ledger
from billing import service as billing
from billing.models import Charge, UsageEvent
from core.config import Settings
from core.db import session_scope
from ingestion.models import IngestionJob
from tests.conftest import DataTemplates
from tests.factories import (
    HANDBOOK,
    Actor,
    create_actor,
    create_test_asset,
    ingest_path,
    review_record,
)
from tests.servers import ROOT, wait_for

# SQLite only: the OpenAI protocol over the ask, whose charge and hold are tested on both in
# test_ask.py and test_charging.py.

QUESTION = "How long does a refund take?"
PRICE = 25


@dataclass
class Served:
    base: str
    runtime: Runtime
    expert: Actor
    client: Actor
    opened: list[openai.OpenAI] = field(default_factory=list)

    def openai(self, key: str | None = None) -> openai.OpenAI:
        # No retries: a refusal is checked as the server sent it, once.
        client = openai.OpenAI(
            base_url=f"{self.base}/v1", api_key=key or self.client.key, max_retries=0
        )
        self.opened.append(client)
        return client


def _ingest(runtime: Runtime, asset: Asset, owner: Actor, path: object = HANDBOOK) -> None:
    """Ingest on the server's own queue, and wait for the job to finish."""
    job = ingest_path(runtime, asset=asset, owner=owner.account, path=path)  # type: ignore[arg-type]

    def status() -> str:
        with Session(runtime.engine) as session:
            found = session.get(IngestionJob, job.id)
            assert found is not None
            return found.status

    wait_for(lambda: status() in ("succeeded", "failed"))
    assert status() == "succeeded"


def _price(runtime: Runtime, slug: str, per_query: int) -> None:
    with session_scope(runtime.engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == slug)).one()
        billing.set_plan(session, asset_id=asset.id, terms=billing.PlanTerms(per_query=per_query))


def _grant(runtime: Runtime, actor: Actor, amount: int) -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key="grant"
        )


def _credits(runtime: Runtime, actor: Actor) -> int:
    with Session(runtime.engine) as session:
        return ledger.balance(session, ledger.credits(actor.account.id), "usd")


def _counts(served: Served) -> tuple[int, int, int]:
    """The client's consultations, usage events and charges."""
    account_id = served.client.account.id
    with Session(served.runtime.engine) as session:
        return (
            len(
                session.exec(
                    select(Consultation).where(Consultation.account_id == account_id)
                ).all()
            ),
            len(session.exec(select(UsageEvent).where(UsageEvent.account_id == account_id)).all()),
            len(session.exec(select(Charge).where(Charge.account_id == account_id)).all()),
        )


def _consultation(runtime: Runtime, consultation_id: str) -> tuple[Consultation, Charge]:
    with Session(runtime.engine) as session:
        consultation = session.get(Consultation, consultation_id)
        charge = session.exec(select(Charge).where(Charge.consultation_id == consultation_id)).one()
        assert consultation is not None
        return consultation, charge


def _garden(runtime: Runtime) -> tuple[Actor, Actor]:
    """A published, priced asset ``garden`` whose answers stand (so they are final and held),
    an unpublished ``secret`` of another expert, and a client: (expert, client)."""
    expert = create_actor(runtime, role="expert")
    garden = create_test_asset(runtime, owner=expert.account, slug="garden")
    _ingest(runtime, garden, expert)
    _price(runtime, "garden", PRICE)
    # A record of answers that stood: its answers are final, so their money is held.
    review_record(runtime, "garden", stood=200)
    other = create_actor(runtime, role="expert")
    create_test_asset(runtime, owner=other.account, slug="secret", published=False)
    return expert, create_actor(runtime, role="client")


@pytest.fixture
def actors(settings: Settings, data_templates: DataTemplates) -> tuple[Actor, Actor]:
    """``_garden``, made once per worker; each test's server starts on a copy of its own."""
    root, made = data_templates.get("openai-garden", _garden)
    data_templates.copy_into(root, settings)
    return made


@pytest.fixture
def served(actors: tuple[Actor, Actor], live_server: tuple[str, Runtime]) -> Iterator[Served]:
    base, runtime = live_server
    served = Served(base, runtime, *actors)
    yield served
    for client in served.opened:
        client.close()


@pytest.fixture
def funded(served: Served) -> Served:
    _grant(served.runtime, served.client, 100)
    return served


class TestModels:
    def test_models_are_exactly_the_assets_the_key_may_ask(self, served: Served) -> None:
        models = served.openai().models.list().data
        assert [m.id for m in models] == ["garden"]
        garden = models[0]
        assert garden.object == "model"
        assert garden.owned_by == served.expert.account.name
        assert isinstance(garden.created, int)
        vouch = garden.model_extra["vouch"]  # type: ignore[index]
        assert vouch["title"] == "Garden store handbook"
        assert vouch["price"].startswith("0.25 USD a question")
        assert vouch["can_ask"] is False  # no credits yet
        _grant(served.runtime, served.client, 100)
        (garden,) = served.openai().models.list().data
        assert garden.model_extra["vouch"]["can_ask"] is True  # type: ignore[index]

    def test_model_by_slug_or_openai_not_found(self, served: Served) -> None:
        client = served.openai()
        assert client.models.retrieve("garden").id == "garden"
        with pytest.raises(openai.NotFoundError) as refused:
            client.models.retrieve("secret")
        assert refused.value.body == {
            "message": "no asset 'secret'",
            "type": "not_found_error",
            "param": None,
            "code": "AssetNotFound",
        }

    def test_an_expert_lists_their_unpublished_asset_too(self, served: Served) -> None:
        owner = create_actor(served.runtime, role="expert")
        create_test_asset(served.runtime, owner=owner.account, slug="drafts", published=False)
        models = {m.id: m for m in served.openai(owner.key).models.list().data}
        assert sorted(models) == ["drafts", "garden"]  # not the other expert's "secret"
        vouch = models["drafts"].model_extra["vouch"]  # type: ignore[index]
        assert vouch["price"] == "free to ask (you manage this asset)"


class TestCompletion:
    def test_answer_cites_its_sources_and_is_held_in_escrow(self, funded: Served) -> None:
        completion = funded.openai().chat.completions.create(
            model="garden",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "When does the store open?"},
                {"role": "assistant", "content": "It opens at nine."},
                {"role": "user", "content": QUESTION},
            ],
            temperature=0.2,
            user="someone",
        )
        assert completion.object == "chat.completion"
        assert completion.model == "garden"
        choice = completion.choices[0]
        assert (choice.index, choice.finish_reason, choice.message.role) == (0, "stop", "assistant")
        text = choice.message.content
        assert text is not None
        assert "14 days" in text
        # The last user message is the question: every [n] names a citation with its locator.
        citations = completion.citations  # type: ignore[attr-defined]
        assert citations == completion.model_extra["citations"]  # type: ignore[index]
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
        assert numbers
        assert numbers <= {c["n"] for c in citations}
        assert citations[0]["locator"]["path"] == "policies.md"
        vouch = completion.model_extra["vouch"]  # type: ignore[index]
        consultation, charge = _consultation(funded.runtime, vouch["consultation_id"])
        assert completion.id == f"chatcmpl-{consultation.id}"
        assert consultation.question == QUESTION
        assert consultation.answer == text
        assert consultation.citations == citations
        assert completion.usage is not None
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
            consultation.prompt_tokens,
            consultation.completion_tokens,
        )
        assert completion.usage.total_tokens == (
            consultation.prompt_tokens + consultation.completion_tokens
        )
        assert consultation.completion_tokens > 0
        assert (charge.amount, charge.source, charge.status) == (PRICE, "credits", "held")
        assert vouch["charge"]["id"] == charge.id
        assert (vouch["status"], vouch["review_reason"]) == ("final", None)
        assert _credits(funded.runtime, funded.client) == 100 - PRICE
        with Session(funded.runtime.engine) as session:
            assert ledger.balance(session, ledger.escrow(charge.id), "usd") == PRICE
        assert _counts(funded) == (1, 1, 1)

    def test_text_parts_are_the_question(self, funded: Served) -> None:
        completion = funded.openai().chat.completions.create(
            model="garden",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "How long does a refund"}]},
            ],
        )
        vouch = completion.model_extra["vouch"]  # type: ignore[index]
        consultation, _ = _consultation(funded.runtime, vouch["consultation_id"])
        assert consultation.question == "How long does a refund"

    def test_idempotency_key_replays_the_answer_charged_once(self, funded: Served) -> None:
        client = funded.openai()
        first, second = (
            client.chat.completions.create(
                model="garden",
                messages=[{"role": "user", "content": QUESTION}],
                extra_headers={"Idempotency-Key": "retry-1"},
            )
            for _ in range(2)
        )
        assert second.id == first.id
        assert second.choices[0].message.content == first.choices[0].message.content
        streamed = client.chat.completions.create(
            model="garden",
            messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"Idempotency-Key": "retry-1"},
            stream=True,
        )
        chunks = list(streamed)
        assert {c.id for c in chunks} == {first.id}
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            first.choices[0].message.content
        )
        assert _counts(funded) == (1, 1, 1)
        assert _credits(funded.runtime, funded.client) == 100 - PRICE


class TestStream:
    def test_stream_reassembles_the_answer_then_citations_and_usage(self, funded: Served) -> None:
        stream = funded.openai().chat.completions.create(
            model="garden",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert {c.object for c in chunks} == {"chat.completion.chunk"}
        assert len({c.id for c in chunks}) == 1
        assert chunks[0].choices[0].delta.role == "assistant"
        *answer, last, usage = chunks
        text = "".join(c.choices[0].delta.content or "" for c in answer)
        assert "14 days" in text
        assert all(c.choices[0].finish_reason is None for c in answer)
        assert last.choices[0].finish_reason == "stop"
        vouch = last.model_extra["vouch"]  # type: ignore[index]
        consultation, charge = _consultation(funded.runtime, vouch["consultation_id"])
        assert consultation.answer == text
        assert vouch["answer"] is None  # what was streamed is what was recorded
        assert last.model_extra["citations"] == consultation.citations  # type: ignore[index]
        assert consultation.citations[0]["locator"]["path"] == "policies.md"
        assert usage.choices == []
        assert usage.usage is not None
        assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (
            consultation.prompt_tokens,
            consultation.completion_tokens,
        )
        assert (charge.amount, charge.status) == (PRICE, "held")
        assert _counts(funded) == (1, 1, 1)
        assert _credits(funded.runtime, funded.client) == 100 - PRICE

    def test_stream_without_usage_option_has_no_usage_chunk(self, funded: Served) -> None:
        chunks = list(
            funded.openai().chat.completions.create(
                model="garden", messages=[{"role": "user", "content": QUESTION}], stream=True
            )
        )
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert all(c.usage is None for c in chunks)

    def test_credits_gone_while_answering_end_the_stream_with_an_error(
        self, funded: Served
    ) -> None:
        """The price is checked again when the answer is recorded: a price raised meanwhile
        (while the client's money is locked, so it happens before the answer is recorded)
        ends the stream with an error chunk, and nothing is charged."""
        client = funded.openai()
        client.models.list()  # the key's first use is recorded now, not during the ask
        with Session(funded.runtime.engine) as session:
            billing.lock_wallet(session, funded.client.account.id)
            stream = client.chat.completions.create(
                model="garden", messages=[{"role": "user", "content": QUESTION}], stream=True
            )
            asset = session.exec(select(Asset).where(Asset.slug == "garden")).one()
            billing.set_plan(session, asset_id=asset.id, terms=billing.PlanTerms(per_query=1000))
            session.commit()
        with pytest.raises(openai.APIError) as failed:
            list(stream)
        assert "10.00 USD" in failed.value.message
        assert failed.value.body == {
            "message": failed.value.message,
            "type": "api_error",
            "param": None,
            "code": "PaymentRequired",
        }
        assert _counts(funded) == (0, 0, 0)
        assert _credits(funded.runtime, funded.client) == 100


class TestRefusals:
    def test_without_credits_is_402_and_records_nothing(self, served: Served) -> None:
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as refused:
                served.openai().chat.completions.create(
                    model="garden", messages=[{"role": "user", "content": QUESTION}], stream=stream
                )
            assert refused.value.status_code == 402
            assert "0.25 USD" in refused.value.message
            assert refused.value.body["code"] == "PaymentRequired"  # type: ignore[index]
            assert refused.value.body["type"] == "insufficient_quota"  # type: ignore[index]
        assert _counts(served) == (0, 0, 0)

    def test_another_experts_unpublished_asset_is_not_found(self, funded: Served) -> None:
        with pytest.raises(openai.NotFoundError) as refused:
            funded.openai().chat.completions.create(
                model="secret", messages=[{"role": "user", "content": QUESTION}]
            )
        assert refused.value.body["code"] == "AssetNotFound"  # type: ignore[index]
        assert "secret" in refused.value.message
        assert _counts(funded) == (0, 0, 0)
        assert _credits(funded.runtime, funded.client) == 100

    def test_bad_key_is_401(self, served: Served) -> None:
        client = served.openai("vch_nothing_wrong")
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(
                model="garden", messages=[{"role": "user", "content": QUESTION}]
            )
        assert refused.value.body["type"] == "authentication_error"  # type: ignore[index]
        with pytest.raises(openai.AuthenticationError):
            client.models.list()

    def test_no_user_message_is_400(self, funded: Served) -> None:
        with pytest.raises(openai.BadRequestError) as refused:
            funded.openai().chat.completions.create(
                model="garden", messages=[{"role": "system", "content": QUESTION}]
            )
        assert refused.value.body["code"] == "NoQuestion"  # type: ignore[index]
        assert "user message" in refused.value.message
        assert _counts(funded) == (0, 0, 0)

    def test_invalid_body_is_422_in_openai_shape(self, funded: Served) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            funded.openai().chat.completions.create(
                model="garden", messages=[{"role": "user", "content": "   "}]
            )
        assert refused.value.body["type"] == "invalid_request_error"  # type: ignore[index]

    def test_other_routes_keep_their_error_shape(self, served: Served) -> None:
        response = httpx.get(f"{served.base}/v1/assets/secret", headers=served.client.headers)
        assert response.status_code == 404
        assert response.json() == {"error": "AssetNotFound", "detail": "no asset 'secret'"}


def _readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## OpenAI-compatible clients", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_readme_snippet_asks_the_handbook(
    live_server: tuple[str, Runtime],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's Python runs as shown, against the demo's asset built from docs/."""
    base, runtime = live_server
    expert = create_actor(runtime, role="expert")
    handbook = create_test_asset(runtime, owner=expert.account, slug="vouch-handbook")
    _ingest(runtime, handbook, expert, ROOT / "docs")
    client = create_actor(runtime, role="client")
    monkeypatch.setenv("KEY", client.key)
    snippet = _readme_snippet()
    assert "http://127.0.0.1:8000/v1" in snippet
    names: dict[str, object] = {}
    local = snippet.replace("127.0.0.1:8000", base.removeprefix("http://"))
    try:
        exec(compile(local, "README.md", "exec"), names)
    finally:
        made = names.get("vouch")
        if isinstance(made, openai.OpenAI):
            made.close()
    printed = capsys.readouterr().out
    assert "vouch-handbook" in printed
    assert "SHA-256" in printed
    assert "'path': 'api.md'" in printed
