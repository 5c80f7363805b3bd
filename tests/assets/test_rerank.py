"""The re-rank stage: a /rerank endpoint (Cohere/Jina/llama.cpp and TEI shapes) and the chat
model as a listwise re-ranker, each against a real local server; search through the API in the
re-ranker's order, and in the fused order when it fails."""

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.runtime import Runtime
from assets import retrieval
from assets.errors import RerankUnavailable
from assets.llm import build_llm
from assets.models import Asset
from assets.rerank import ChatReranker, HTTPReranker, ranking
from core.config import LLMSettings, RerankSettings, Settings
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path
from tests.servers import (
    RerankServer,
    chat_server,
    free_port,
    overlap_scores,
    rerank_server,
)

DOCUMENTS = [
    "Opening hours are nine to five.",
    "Refunds are paid back within 14 days of the return.",
    "A refund needs the receipt.",
]
QUESTION = "when are refunds paid back"


@pytest.fixture
def server() -> Iterator[RerankServer]:
    with rerank_server() as running:
        yield running


def test_an_endpoint_in_the_shared_shape_scores_every_document(server: RerankServer) -> None:
    reranker = HTTPReranker(url=server.url, model="bge-reranker", api_key="sk-test")
    scores = reranker.scores(QUESTION, DOCUMENTS)
    assert scores == overlap_scores(QUESTION, DOCUMENTS)
    assert max(range(3), key=lambda i: scores[i]) == 1
    (sent,) = server.requests
    assert sent["path"] == "/v1/rerank"
    assert sent["body"] == {
        "query": QUESTION, "documents": DOCUMENTS, "top_n": 3, "model": "bge-reranker"
    }  # fmt: skip
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    reranker.close()


def test_text_embeddings_inference_is_asked_with_texts_after_one_refusal() -> None:
    with rerank_server(mode="tei") as tei:
        reranker = HTTPReranker(url=tei.url)
        assert reranker.scores(QUESTION, DOCUMENTS) == overlap_scores(QUESTION, DOCUMENTS)
        assert reranker.scores("opening hours", DOCUMENTS)[0] == 1.0
        sent = [request["body"] for request in tei.requests]
        # documents refused once (422), then texts, and texts from then on
        assert ["documents" in b for b in sent] == [True, False, False]
        assert sent[1] == {"query": QUESTION, "texts": DOCUMENTS}


def test_documents_left_out_by_top_n_rank_below_the_scored_ones() -> None:
    from assets.rerank import _read_scores

    scores = _read_scores({"results": [{"index": 2, "relevance_score": 0.2}]}, 3)
    assert scores[2] == 0.2
    assert scores[0] < 0.2
    assert scores[1] < 0.2
    assert scores[0] > scores[1]


@pytest.mark.parametrize(
    ("mode", "said"),
    [("error", "HTTP 500"), ("bad_index", "index is 8, not one of the 3 documents")],
)
def test_a_failing_endpoint_is_named_clearly(mode: str, said: str) -> None:
    with rerank_server(mode=mode) as failing, pytest.raises(RerankUnavailable, match=said):
        HTTPReranker(url=failing.url).scores(QUESTION, DOCUMENTS)


def test_an_unreachable_endpoint_is_unavailable() -> None:
    reranker = HTTPReranker(url=f"http://127.0.0.1:{free_port()}/rerank", timeout=2)
    with pytest.raises(RerankUnavailable, match="could not be reached"):
        reranker.scores(QUESTION, DOCUMENTS)


def test_the_chat_model_ranks_the_passages_listwise() -> None:
    with chat_server() as chat:
        llm = build_llm(LLMSettings(base_url=chat.url, model=chat.model, timeout_seconds=10))
        reranker = ChatReranker(llm, depth=3)
        documents = [*DOCUMENTS, "Refunds are paid back by bank transfer."]
        scores = reranker.scores(QUESTION, documents)
        order = sorted(range(4), key=lambda i: -scores[i])
        # the model saw the first three: it named 2 > 3; 1 shares no word, then the unseen 4th
        assert chat.replies == ["2 > 3"]
        assert order == [1, 2, 0, 3]
        prompt = chat.requests[0]["messages"][1]["content"]
        assert prompt.startswith(f"Question: {QUESTION}")
        assert "[3] A refund needs the receipt." in prompt
        assert "bank transfer" not in prompt
        chat.mode = "error"
        with pytest.raises(RerankUnavailable, match="could not rank"):
            reranker.scores(QUESTION, documents)
        llm.close()


def test_a_ranking_reply_is_read_leniently() -> None:
    assert ranking("3 > 1 > 2", 3) == [2, 0, 1]
    assert ranking("[2] > [2] > [9] > [1]", 3) == [1, 0]
    assert ranking("Passage 3 is best, then 1.", 3) == [2, 0]
    assert ranking("none of them", 3) == []


def test_a_re_ranker_is_refused_at_start_without_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VOUCH_RERANK__URL"):
        RerankSettings(provider="http")
    with pytest.raises(ValidationError, match="VOUCH_LLM__BASE_URL"):
        Settings(data_dir=tmp_path, rerank=RerankSettings(provider="llm"))


@pytest.fixture
def settings(settings: Settings, server: RerankServer) -> Settings:
    """The suite's settings with the /rerank endpoint configured, as VOUCH_RERANK__* would."""
    return settings.model_copy(
        update={"rerank": RerankSettings(provider="http", url=server.url, model="bge-reranker")}
    )


@pytest.fixture
def asset(runtime: Runtime, expert: Actor, tmp_path: Path) -> Asset:
    corpus = tmp_path / "corpus"
    shutil.copytree(HANDBOOK, corpus)
    asset = create_test_asset(runtime, owner=expert.account, slug="handbook")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert job.status == "succeeded", job.error
    return asset


async def test_search_comes_back_in_the_re_rankers_order(
    client: httpx.AsyncClient, runtime: Runtime, asset: Asset, expert: Actor,
    server: RerankServer,
) -> None:  # fmt: skip
    query = "when is the store closed"
    fused = retrieval.search(
        asset, query=query, k=10, index=runtime.index, embedder=runtime.embedder,
        lexical=runtime.lexical,
    )  # fmt: skip
    response = await client.post(
        "/v1/assets/handbook/search", json={"query": query, "k": 5}, headers=expert.headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    (sent,) = [r["body"] for r in server.requests if r["body"]["query"] == query]
    # the endpoint scored the fused candidates (twice k), and the best five come back in its order
    assert len(sent["documents"]) > 5
    expected = overlap_scores(query, sent["documents"])
    assert [r["score"] for r in results] == sorted(expected, reverse=True)[:5]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    # a passage the fused search ranked sixth shares more words than the fifth: it moves up
    assert {r["text"] for r in results} != {p.text for p in fused[:5]}


async def test_search_keeps_the_fused_order_when_the_re_ranker_fails(
    client: httpx.AsyncClient, runtime: Runtime, asset: Asset, expert: Actor,
    server: RerankServer, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    server.mode = "error"
    query = "how long does a refund take to be paid"
    fused = retrieval.search(
        asset, query=query, k=5, index=runtime.index, embedder=runtime.embedder,
        lexical=runtime.lexical,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        response = await client.post(
            "/v1/assets/handbook/search", json={"query": query, "k": 5}, headers=expert.headers
        )
    assert response.status_code == 200, response.text
    assert [r["text"] for r in response.json()["results"]] == [p.text for p in fused]
    assert "fused order kept" in caplog.text
    assert "HTTP 500" in caplog.text
