"""A Vouch asset as a LangChain retriever: ``VouchLangChainRetriever``.

Needs ``langchain-core``: ``pip install 'vouch-client[langchain]'``.
"""

from typing_extensions import override

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as missing:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "vouch_client.langchain needs langchain-core: pip install 'vouch-client[langchain]'"
    ) from missing

from vouch_client._client import AsyncVouch, Vouch
from vouch_client._passages import passage_id, passage_metadata
from vouch_client.models import SearchResult

__all__ = ["VouchLangChainRetriever"]


def _document(asset: str, result: SearchResult) -> Document:
    metadata = passage_metadata(
        asset,
        result.locator,
        id=passage_id(asset, result.locator),
        rank=result.rank,
        score=result.score,
        similarity=result.similarity,
    )
    return Document(page_content=result.text, metadata=metadata)


class VouchLangChainRetriever(BaseRetriever):
    """The ``k`` passages of a Vouch asset closest to the query, as ``Document``s with the
    locator in their metadata. Search is for the asset's owner (and admins); ``client`` may be
    a ``Vouch`` or an ``AsyncVouch`` (for ``ainvoke``)."""

    client: Vouch | AsyncVouch
    asset: str
    k: int = 5

    @override
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if not isinstance(self.client, Vouch):
            raise TypeError("this retriever has an AsyncVouch client: use ainvoke()")
        return [_document(self.asset, r) for r in self.client.search(self.asset, query, k=self.k)]

    @override
    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if not isinstance(self.client, AsyncVouch):
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        results = await self.client.search(self.asset, query, k=self.k)
        return [_document(self.asset, r) for r in results]
