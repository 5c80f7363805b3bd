"""The demo asset in llama-index: ``VouchRetriever`` inside llama-index's own
``RetrieverQueryEngine`` (its ``MockLLM`` writing), and ``VouchQueryEngine``'s cited answers."""

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode
from vouch_client import PaymentRequired, PermissionDenied, PlanIn
from vouch_client.llama_index import VouchQueryEngine, VouchRetriever

from tests.client.conftest import PRICE, QUESTION, SEARCH_PRICE, SLUG, Demo


def test_retriever_in_a_retriever_query_engine_keeps_the_locators(served: Demo) -> None:
    retriever = VouchRetriever(served.vouch(), SLUG, top_k=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = engine.query(QUESTION)
    assert len(response.source_nodes) == 3
    first = response.source_nodes[0]
    assert first.node.metadata["locator"]["path"] == "api.md"
    assert first.node.metadata["path"] == "api.md"
    assert first.node.metadata["asset"] == SLUG
    assert "SHA-256" in first.node.get_content()
    # What the LLM of the engine reads: the passage under its path and section.
    shown = first.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "path: api.md" in shown
    assert "locator" not in shown
    assert first.score is not None
    assert first.node.node_id.startswith(f"vouch:{SLUG}:")
    # The same passage has the same id on the next search.
    assert retriever.retrieve(QUESTION)[0].node.node_id == first.node.node_id
    # Each retrieval is a search the client pays for at once; no answer is held in escrow.
    assert served.credits() == 1000 - 2 * SEARCH_PRICE
    assert len(served.search_charges()) == 2
    assert served.charges() == []


async def test_retriever_async_and_refused_where_passages_are_not_sold(served: Demo) -> None:
    served.price_searches(None)
    with pytest.raises(PermissionDenied):
        VouchRetriever(served.vouch(), SLUG).retrieve(QUESTION)
    served.price_searches(SEARCH_PRICE)
    async with served.async_vouch(served.expert_key) as expert:
        nodes = await VouchRetriever(expert, SLUG, top_k=2).aretrieve(QUESTION)
    assert served.search_charges() == []  # the expert searches the own asset free
    async with served.async_vouch() as vouch:
        nodes = await VouchRetriever(vouch, SLUG, top_k=2).aretrieve(QUESTION)
    assert [n.node.metadata["rank"] for n in nodes] == [1, 2]
    assert nodes[0].node.metadata["locator"]["lines"][0] >= 1
    assert served.credits() == 1000 - SEARCH_PRICE


def test_query_engine_answers_with_vouchs_citations_and_charge(served: Demo) -> None:
    engine = VouchQueryEngine(client=served.vouch(), asset=SLUG)
    response = engine.query(QUESTION)
    assert "SHA-256" in str(response)
    assert response.source_nodes
    assert response.source_nodes[0].node.metadata["locator"]["path"] == "api.md"
    assert [n.node.metadata["n"] for n in response.source_nodes] == list(
        range(1, len(response.source_nodes) + 1)
    )
    metadata = response.metadata or {}
    assert metadata["status"] == "final"
    assert metadata["charge"]["amount"] == PRICE
    assert metadata["charge"]["status"] == "held"
    (charge,) = served.charges()
    assert charge.consultation_id == metadata["consultation_id"]
    assert served.credits() == 1000 - PRICE


async def test_query_engine_async_and_its_refusal(served: Demo) -> None:
    async with served.async_vouch() as vouch:
        response = await VouchQueryEngine(client=vouch, asset=SLUG).aquery(QUESTION)
    assert response.source_nodes[0].node.metadata["locator"]["path"] == "api.md"
    served.vouch(served.expert_key).set_plan(SLUG, PlanIn(per_query=PRICE, trial=0))
    account_id, key = served.new_client()
    with pytest.raises(PaymentRequired):
        VouchQueryEngine(client=served.vouch(key), asset=SLUG).query(QUESTION)
    assert served.charges(account_id) == []
    assert len(served.charges()) == 1
