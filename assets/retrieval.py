"""Dense top-k retrieval over an asset's collection, with locators a person can follow."""

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from assets.embeddings import Embedder
from assets.errors import EmbedderMismatch, InvalidQuestion, RerankUnavailable
from assets.index import Hit, VectorIndex
from assets.lexical import LexicalHit, LexicalIndex, LexicalStore, document_text, tokenize
from assets.models import Asset
from assets.rerank import Reranker

log = logging.getLogger(__name__)

MAX_K = 50
KINDS = ("code", "regulation", "paper", "text")
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    text: str
    kind: str
    locator: dict[str, Any]
    score: float  # cosine similarity to the query, in [-1, 1]: how close in meaning
    # The score the results are ordered by: the fused score (dense and BM25, exact hits first),
    # or the re-ranker's when one is configured.
    rank_score: float = 0.0


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


# Fusion, tuned on the shared evalsets with bench/retrieval.py (nDCG@10, see the issue note).
# Code: reciprocal rank fusion of the dense and BM25 rankings; paraphrased questions about code
# share few words with it, and ranks are steadier than scores there.
RRF_K = 10
# Prose (regulations, papers, text): a weighted sum of the cosine and the BM25 score relative to
# the best BM25 hit. The dense weight falls from DENSE_MAX to DENSE_MIN as the best BM25 hit
# covers more of the question's words: a question worded like its answer is best found by BM25.
DENSE_MAX = 0.5
DENSE_MIN = 0.15
# Exact hits on a symbol or citation path go to the top, unless the name is so common (the same
# rule number in forty rulebooks, ``__init__`` in every class) that it says little.
EXACT_BONUS = 1.0
EXACT_MAX = 3
CANDIDATES = 50
_LEXICAL_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")


@dataclass
class _Candidate:
    id: str
    fused: float = 0.0


def _rank_fusion(
    dense: list[tuple[str, float]], lexical: list[LexicalHit]
) -> dict[str, _Candidate]:
    candidates: dict[str, _Candidate] = {}
    for rank, (chunk_id, _) in enumerate(dense, 1):
        candidates.setdefault(chunk_id, _Candidate(chunk_id)).fused += 1 / (RRF_K + rank)
    for rank, lex in enumerate(lexical, 1):
        candidates.setdefault(lex.id, _Candidate(lex.id)).fused += 1 / (RRF_K + rank)
    return candidates


def _score_fusion(
    dense: list[tuple[str, float]], lexical: list[LexicalHit], coverage: float
) -> dict[str, _Candidate]:
    dense_weight = DENSE_MAX - (DENSE_MAX - DENSE_MIN) * coverage
    candidates: dict[str, _Candidate] = {}
    for chunk_id, score in dense:
        candidates.setdefault(chunk_id, _Candidate(chunk_id)).fused += dense_weight * score
    best = lexical[0].score if lexical else 1.0
    for lex in lexical:
        candidate = candidates.setdefault(lex.id, _Candidate(lex.id))
        candidate.fused += (1 - dense_weight) * lex.score / best
    return candidates


def _coverage(query: str, hit: Hit | None) -> float:
    """The share of the question's BM25 tokens found in a chunk."""
    wanted = set(tokenize(query))
    if hit is None or not wanted:
        return 0.0
    return len(wanted & set(tokenize(document_text(hit.text, hit.metadata)))) / len(wanted)


def _fuse(
    dense: list[tuple[str, float]],
    lexical: list[LexicalHit],
    exact: list[str],
    coverage: float,
    kind_of: Callable[[str], str],
) -> list[_Candidate]:
    kinds = [kind_of(chunk_id) for chunk_id, _ in dense[:10]]
    if kinds and kinds.count("code") * 2 > len(kinds):
        candidates = _rank_fusion(dense, lexical)
    else:
        candidates = _score_fusion(dense, lexical, coverage)
    if len(exact) <= EXACT_MAX:
        for chunk_id in exact:
            candidates.setdefault(chunk_id, _Candidate(chunk_id)).fused += EXACT_BONUS
    return sorted(candidates.values(), key=lambda c: -c.fused)


def _lines(metadata: dict[str, Any]) -> tuple[int, int] | None:
    start, end = int(metadata.get("line_start") or 0), int(metadata.get("line_end") or 0)
    return (start, end) if start and end else None


def _merge(passages: list[tuple[Passage, Hit]]) -> list[Passage]:
    """Overlapping chunks of one document become one passage at the better one's rank."""
    merged: list[tuple[Passage, Hit]] = []
    for passage, hit in passages:
        span = _lines(hit.metadata)
        target = None
        for index, (_, kept_hit) in enumerate(merged):
            kept_span = _lines(kept_hit.metadata)
            same_document = hit.metadata.get("source") == kept_hit.metadata.get("source") and (
                hit.metadata.get("path") == kept_hit.metadata.get("path")
            )
            if (
                same_document
                and span
                and kept_span
                and span[0] <= kept_span[1]
                and (kept_span[0] <= span[1])
            ):
                target = index
                break
        if target is None:
            merged.append((passage, hit))
            continue
        kept, kept_hit = merged[target]
        kept_span = _lines(kept_hit.metadata)
        assert span is not None
        assert kept_span is not None
        lines: dict[int, str] = {}
        for (start, _), text in ((span, hit.text), (kept_span, kept_hit.text)):
            for offset, line in enumerate(text.split("\n")):
                lines.setdefault(start + offset, line)
        low, high = min(lines), max(lines)
        metadata = {**kept_hit.metadata, "line_start": low, "line_end": high}
        text = "\n".join(lines.get(n, "") for n in range(low, high + 1))
        merged_hit = Hit(kept_hit.id, text, metadata, max(kept_hit.score, hit.score))
        merged[target] = (
            replace(kept, text=text, locator=locator_from_metadata(metadata),
                    score=round(merged_hit.score, 4)),
            merged_hit,
        )  # fmt: skip
    return [passage for passage, _ in merged]


def _where(kinds: Sequence[str] | None, paths: Sequence[str] | None) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if kinds:
        clauses.append({"kind": {"$in": list(kinds)}})
    if paths is not None:
        clauses.append({"path": {"$in": list(paths)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def check_embedder(asset: Asset, embedder: Embedder) -> None:
    """Refuse to compare vectors of another model than the one the asset was embedded with."""
    if embedder.name != asset.embed_model:
        raise EmbedderMismatch(
            f"asset {asset.slug} was embedded with {asset.embed_model}; the configured embedder "
            f"is {embedder.name}. Configure {asset.embed_model} or re-ingest into a new asset."
        )


def search(
    asset: Asset,
    *,
    query: str,
    k: int,
    index: VectorIndex,
    embedder: Embedder,
    lexical: LexicalStore | None = None,
    kinds: Sequence[str] | None = None,
    path_prefix: str | None = None,
    vector: Sequence[float] | None = None,
    reranker: Reranker | None = None,
) -> list[Passage]:
    """The ``k`` best passages of ``asset`` for ``query``, best first.

    Dense (the asset's Chroma collection) and BM25 (its lexical index) results are fused (by
    rank for code, by score for prose); chunks whose symbol or citation path the query names
    exactly come first; overlapping chunks of one document are merged. ``kinds`` and
    ``path_prefix`` filter. ``vector`` is the query's embedding when the caller has it already.
    A ``reranker`` then orders the candidates; if it fails, the fused order stands.
    """
    query = clean_query(query)
    if not 1 <= k <= MAX_K:
        raise InvalidQuestion(f"k must be between 1 and {MAX_K}, not {k}")
    if kinds and set(kinds) - set(KINDS):
        raise InvalidQuestion(f"unknown kind in {list(kinds)}; use: {', '.join(KINDS)}")
    check_embedder(asset, embedder)
    collection = index.collection(asset.collection)
    words = lexical.get(asset.collection) if lexical else LexicalIndex.empty()
    mask = words.mask(kinds, path_prefix)
    paths = None
    if path_prefix:
        paths = sorted({p for p in words.paths if p.startswith(path_prefix)})
        if not paths:
            return []
    allowed = set(np.array(words.ids)[mask]) if mask is not None else None

    def lexical_side() -> tuple[list[LexicalHit], list[str], float]:
        hits = words.search(query, max(CANDIDATES, k), mask)
        exact = [i for i in words.exact(query) if allowed is None or i in allowed]
        # How much of the question the best BM25 hit covers sets the fusion's weights.
        top = collection.documents([hits[0].id]) if hits else []
        return hits, exact, _coverage(query, top[0] if top else None)

    # BM25 runs while the query is embedded (onnxruntime releases the GIL); the dense search
    # returns ids and scores only, and only the passages that rank are read.
    pending = _LEXICAL_POOL.submit(lexical_side)
    if vector is None:
        (vector,) = embedder.embed([query])
    dense = collection.nearest(vector, max(CANDIDATES, k), where=_where(kinds, paths))
    lexical_hits, exact, coverage = pending.result()
    ranked = _fuse(dense, lexical_hits, exact, coverage, words.kind)[: k * 2]
    fetched = {hit.id: hit for hit in collection.get([c.id for c in ranked], vector)}
    results: list[tuple[Passage, Hit]] = []
    for candidate in ranked:
        hit = fetched.get(candidate.id)
        if hit is None:  # written to BM25 but gone from the collection since
            continue
        passage = Passage(
            id=hit.id,
            text=hit.text,
            kind=str(hit.metadata.get("kind", "text")),
            locator=locator_from_metadata(hit.metadata),
            score=round(hit.score, 4),
            rank_score=round(candidate.fused, 6),
        )
        results.append((passage, hit))
    if reranker is not None:
        results = _rerank(reranker, query, results)
    return _merge(results)[:k]


# A provision that ends in a colon introduces points that may be chunks of their own: the
# answer path reads up to POINT_LINES lines after it for them (the AI Act's list of prohibited
# practices, Art. 5(1), spans 30).
POINT_LINES = 120


def complete_provisions(asset: Asset, passages: list[Passage], index: VectorIndex) -> list[Passage]:
    """``passages`` with each regulation provision that introduces points ("... the following:")
    joined with those points (``Art. 99(7)`` with ``Art. 99(7)(a)`` to ``(j)``), its lines
    extended; passages it now holds are dropped. An answer then quotes the provision whole."""
    collection = index.collection(asset.collection)
    completed: list[Passage] = []
    for passage in passages:
        section, span = passage.locator.get("section"), passage.locator.get("lines")
        if (
            passage.kind != "regulation"
            or not isinstance(section, str)
            or not isinstance(span, list)
            or not passage.text.rstrip().endswith(":")
        ):
            completed.append(passage)
            continue
        after = collection.matching(
            {"$and": [
                {"path": passage.locator["path"]},
                {"line_start": {"$gt": int(span[1])}},
                {"line_start": {"$lte": int(span[1]) + POINT_LINES}},
            ]},
            limit=POINT_LINES,
        )  # fmt: skip
        points: list[Hit] = []
        for hit in sorted(after, key=lambda h: int(h.metadata["line_start"])):
            if not str(hit.metadata.get("section", "")).startswith(f"{section}("):
                break
            points.append(hit)
        if not points:
            completed.append(passage)
            continue
        end = int(points[-1].metadata.get("line_end") or points[-1].metadata["line_start"])
        text = "\n\n".join([passage.text, *(hit.text for hit in points)])
        locator = {**passage.locator, "lines": [int(span[0]), end]}
        completed.append(replace(passage, text=text, locator=locator))
    return [p for p in completed if not _held(p, completed)]


def _held(passage: Passage, passages: list[Passage]) -> bool:
    """Whether another of ``passages`` holds all of ``passage``'s lines."""
    span = passage.locator.get("lines")
    if not isinstance(span, list):
        return False
    for other in passages:
        lines = other.locator.get("lines")
        if (
            other is not passage
            and isinstance(lines, list)
            and other.locator.get("path") == passage.locator.get("path")
            and lines[0] <= span[0] <= span[1] <= lines[1]
            and (lines[0], lines[1]) != (span[0], span[1])
        ):
            return True
    return False


def _rerank(
    reranker: Reranker, query: str, results: list[tuple[Passage, Hit]]
) -> list[tuple[Passage, Hit]]:
    """``results`` in the re-ranker's order, each scored by it; as they were if it fails."""
    try:
        scores = reranker.scores(query, [passage.text for passage, _ in results])
    except RerankUnavailable as exc:
        log.warning("re-ranking with %s failed, fused order kept: %s", reranker.name, exc)
        return results
    order = sorted(range(len(results)), key=lambda i: -scores[i])
    return [(replace(results[i][0], rank_score=round(scores[i], 6)), results[i][1]) for i in order]
