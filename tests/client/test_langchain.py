"""The demo asset as a LangChain retriever, and the adapters' optional imports."""

import subprocess
import sys

import pytest
from langchain_core.documents import Document
from vouch_client import PermissionDenied
from vouch_client.langchain import VouchLangChainRetriever

from tests.client.conftest import QUESTION, SEARCH_PRICE, SLUG, Demo


def test_retriever_returns_documents_with_their_locators(served: Demo) -> None:
    retriever = VouchLangChainRetriever(client=served.vouch(), asset=SLUG, k=3)
    documents = retriever.invoke(QUESTION)
    assert len(documents) == 3
    assert all(isinstance(d, Document) for d in documents)
    first = documents[0]
    assert "SHA-256" in first.page_content
    assert first.metadata["locator"]["path"] == "api.md"
    assert (first.metadata["asset"], first.metadata["rank"]) == (SLUG, 1)
    # The client paid for the search at once; no answer is held in escrow.
    assert served.credits() == 1000 - SEARCH_PRICE
    assert served.charges() == []


async def test_retriever_async_and_refused_where_passages_are_not_sold(served: Demo) -> None:
    served.price_searches(None)
    with pytest.raises(PermissionDenied):
        VouchLangChainRetriever(client=served.vouch(), asset=SLUG).invoke(QUESTION)
    served.price_searches(SEARCH_PRICE)
    async with served.async_vouch() as vouch:
        documents = await VouchLangChainRetriever(client=vouch, asset=SLUG, k=2).ainvoke(QUESTION)
    assert [d.metadata["rank"] for d in documents] == [1, 2]
    assert served.credits() == 1000 - SEARCH_PRICE


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("vouch_client.langchain", "langchain_core", "vouch-client[langchain]"),
        ("vouch_client.llama_index", "llama_index", "vouch-client[llama-index]"),
    ],
)
def test_the_client_imports_without_the_frameworks(module: str, blocked: str, extra: str) -> None:
    """A fresh interpreter where the framework cannot be imported (``None`` in sys.modules):
    ``vouch_client`` works, its adapter says which extra to install."""
    script = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "import vouch_client\n"
        "assert vouch_client.Vouch\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert extra in done.stdout
