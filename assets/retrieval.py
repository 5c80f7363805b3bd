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
    """The ARCHITECTURE.md locator of a stored chunk, by kind.

    code: path, lines, symbol; regulation: path, section (the citation path),
    heading, and page or lines when known; paper: path, page, section; text: path, section,
    lines.
    """
    kind = metadata.get("kind", "text")
    locator: dict[str, Any] = {"path": metadata.get("path", "")}
    fields = {
        "code": ("symbol", "lines"),
        "regulation": ("section", "heading", "page", "lines"),
        "paper": ("page", "section", "lines"),
    }.get(kind, ("section", "lines"))
    for name in fields:
        if name == "lines":
            if metadata.get("line_start"):
                locator["lines"] = [int(metadata["line_start"]), int(metadata["line_end"])]
        elif metadata.get(name):
            locator[name] = metadata[name]
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
