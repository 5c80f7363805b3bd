"""Dense top-k retrieval over an asset's collection, with locators a person can follow."""

from dataclasses import dataclass
from typing import Any

from assets.embeddings import Embedder
from assets.errors import EmbedderMismatch, InvalidQuestion
from assets.index import VectorIndex
from assets.models import Asset

MAX_K = 50
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    text: str
    kind: str
    locator: dict[str, Any]
    score: float


def locator_from_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The ARCHITECTURE.md locator of a stored chunk: path, then section or symbol, then lines."""
    locator: dict[str, Any] = {"path": metadata.get("path", "")}
    if metadata.get("section"):
        locator["section"] = metadata["section"]
    if metadata.get("symbol"):
        locator["symbol"] = metadata["symbol"]
    if "line_start" in metadata:
        locator["lines"] = [int(metadata["line_start"]), int(metadata["line_end"])]
    return locator


def clean_query(text: str) -> str:
    """A stripped query; empty or overlong ones are refused with a clear message."""
    query = text.strip()
    if not query:
        raise InvalidQuestion("the question is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQuestion(f"the question is {len(query)} characters; at most {MAX_QUERY_CHARS}")
    return query


def search(
    asset: Asset, *, query: str, k: int, index: VectorIndex, embedder: Embedder
) -> list[Passage]:
    """The ``k`` passages of ``asset`` closest in meaning to ``query``, best first."""
    query = clean_query(query)
    if not 1 <= k <= MAX_K:
        raise InvalidQuestion(f"k must be between 1 and {MAX_K}, not {k}")
    if embedder.name != asset.embed_model:
        raise EmbedderMismatch(
            f"asset {asset.slug} was embedded with {asset.embed_model}; the configured embedder "
            f"is {embedder.name}. Configure {asset.embed_model} or re-ingest into a new asset."
        )
    (vector,) = embedder.embed([query])
    hits = index.collection(asset.collection).query(vector, k)
    return [
        Passage(
            id=hit.id,
            text=hit.text,
            kind=str(hit.metadata.get("kind", "text")),
            locator=locator_from_metadata(hit.metadata),
            score=round(hit.score, 4),
        )
        for hit in hits
    ]
