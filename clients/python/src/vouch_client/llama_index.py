"""Vouch assets in llama-index: ``VouchRetriever`` (a ``BaseRetriever`` over search) and
``VouchQueryEngine`` (a query engine over ask, whose responses carry Vouch's citations).

Needs ``llama-index-core``: ``pip install 'vouch-client[llama-index]'``.
"""

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.response.schema import Response
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.query_engine import CustomQueryEngine
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as missing:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "vouch_client.llama_index needs llama-index-core: pip install 'vouch-client[llama-index]'"
    ) from missing

from vouch_client._client import AsyncVouch, Vouch
from vouch_client._passages import passage_id, passage_metadata
from vouch_client.models import AskPublic, CitationPublic, SearchResult

__all__ = ["VouchQueryEngine", "VouchRetriever", "answer_response"]
# An LLM reading a node sees its path, section, lines...; not the locator twice, nor the ranks.
_HIDDEN = ["locator", "rank", "similarity", "n"]


def _result_node(asset: str, result: SearchResult) -> NodeWithScore:
    metadata = passage_metadata(
        asset, result.locator, rank=result.rank, similarity=result.similarity
    )
    node = TextNode(
        text=result.text,
        id_=passage_id(asset, result.locator),
        metadata=metadata,
        excluded_llm_metadata_keys=_HIDDEN,
        excluded_embed_metadata_keys=_HIDDEN,
    )
    return NodeWithScore(node=node, score=result.score)


def _citation_node(asset: str, citation: CitationPublic) -> NodeWithScore:
    metadata = passage_metadata(asset, citation.locator, n=citation.n)
    node = TextNode(
        text=citation.text,
        id_=passage_id(asset, citation.locator),
        metadata=metadata,
        excluded_llm_metadata_keys=_HIDDEN,
        excluded_embed_metadata_keys=_HIDDEN,
    )
    return NodeWithScore(node=node, score=None)


def answer_response(asset: str, answer: AskPublic) -> Response:
    """An answer as llama-index's ``Response``: its citations are the source nodes, in order
    (``[n]`` in the text is ``source_nodes[n - 1]``); ``metadata`` holds the consultation id,
    status, confidence and charge."""
    return Response(
        response=answer.answer,
        source_nodes=[_citation_node(asset, c) for c in answer.citations],
        metadata={
            "asset": asset,
            "consultation_id": answer.consultation_id,
            "status": answer.status,
            "review_reason": answer.review_reason,
            "confidence": answer.confidence,
            "charge": answer.charge.model_dump(mode="json") if answer.charge else None,
            "tokens": answer.tokens.model_dump(),
        },
    )


class VouchRetriever(BaseRetriever):
    """The ``top_k`` passages of a Vouch asset closest to the query, as ``NodeWithScore``
    (the locator in each node's metadata). Search is for the asset's owner (and admins);
    ``client`` may be a ``Vouch`` or an ``AsyncVouch`` (for ``aretrieve``)."""

    def __init__(
        self,
        client: Vouch | AsyncVouch,
        asset: str,
        top_k: int = 5,
        *,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.client = client
        self.asset = asset
        self.top_k = top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if not isinstance(self.client, Vouch):
            raise TypeError("this retriever has an AsyncVouch client: use aretrieve()")
        results = self.client.search(self.asset, query_bundle.query_str, k=self.top_k)
        return [_result_node(self.asset, r) for r in results]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if not isinstance(self.client, AsyncVouch):
            return self._retrieve(query_bundle)
        results = await self.client.search(self.asset, query_bundle.query_str, k=self.top_k)
        return [_result_node(self.asset, r) for r in results]


class VouchQueryEngine(CustomQueryEngine):
    """Ask a Vouch asset: the answer is charged and held in escrow as over HTTP, and comes
    back as a ``Response`` whose source nodes are its citations (see ``answer_response``)."""

    client: Vouch | AsyncVouch
    asset: str

    def custom_query(self, query_str: str) -> Response:
        if not isinstance(self.client, Vouch):
            raise TypeError("this query engine has an AsyncVouch client: use aquery()")
        return answer_response(self.asset, self.client.ask(self.asset, query_str))

    async def acustom_query(self, query_str: str) -> Response:
        if not isinstance(self.client, AsyncVouch):
            return self.custom_query(query_str)
        return answer_response(self.asset, await self.client.ask(self.asset, query_str))
