"""Where the lexical (BM25) index should live when replicas run on several machines.

    python bench/lexical_scale.py [--sizes 50000,500000] [--queries 100]
                                  [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Today each asset's bm25s index is a folder on the local disk of the process that ran the
ingest (assets/lexical.py). For each size, on chunks made from the shared evalsets' SciFact
abstracts and ObliQA passages (repeated, each copy with a token of its own, until there are N),
in one process, it prints:

* build: ``LexicalIndex.build`` (tokenising included), i.e. what a replica pays to rebuild an
  index from the chunks when it finds its copy stale;
* files: the saved folder's size, ``save`` and ``load`` (a replica fetching a fresh copy from
  shared storage pays at least the load);
* shared (what Vouch does, ``LexicalStore`` on a fresh migrated PostgreSQL database): the
  builder's ``replace`` (save, tar, write the next version of the ``lexical_snapshot`` row), a
  fresh replica's first ``get`` (read the version, fetch the row, unpack, load) and the search
  p50/p95 through ``get`` (its version check included) beside ``LexicalIndex.search`` alone;
* search: p50/p95 of ``LexicalIndex.search`` (k=10) once loaded;
* pg-fts: the same tokens as a ``tsvector`` per chunk in PostgreSQL with a GIN index (the index
  held in the database itself, nothing to fetch): insert (COPY) and index time, then p50/p95 of
  an OR query ranked by ``ts_rank`` (not BM25: no document-length normalisation of BM25's kind).

Ratios are to bm25s search latency in the same process.
"""

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from sqlalchemy import Engine, make_url
from sqlalchemy import text as sql

from assets.lexical import LexicalIndex, LexicalStore, document_text, tokenize
from core.db import make_engine
from migrations import upgrade

EVALSETS = Path(__file__).resolve().parents[2] / "shared" / "evalsets"


def _texts() -> list[str]:
    texts = []
    for name in ("scifact", "obliqa"):
        for line in (EVALSETS / name / "corpus.jsonl").read_text().splitlines():
            item = json.loads(line)
            text = " ".join(filter(None, (item.get("title"), item.get("text"))))
            if len(text) > 40:
                texts.append(text)
    return texts


def _queries(n: int) -> list[str]:
    lines = (EVALSETS / "scifact" / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:n]]


def _records(texts: list[str], n: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for i, text in zip(range(n), itertools.cycle(texts), strict=False):
        copy = i // len(texts)
        body = f"{text} copy{copy}" if copy else text
        yield f"c{i}", body, {"path": f"doc{i // 50}.txt", "kind": "text"}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def _shared(
    engine: Engine, index: LexicalIndex, queries: list[str], size: int
) -> tuple[float, float, list[float]]:
    """The builder's replace, a new replica's first get, and searches through get."""
    with tempfile.TemporaryDirectory() as tmp:
        collection = f"bench{size}"
        builder = LexicalStore(Path(tmp) / "builder", engine)
        _, replace = _timed(builder.replace, collection, index)
        replica = LexicalStore(Path(tmp) / "replica", engine)
        _, first = _timed(replica.get, collection)
        latencies = []
        for query in queries:
            started = time.perf_counter()
            replica.get(collection).search(query, 10)
            latencies.append(time.perf_counter() - started)
    return replace, first, latencies


@contextmanager
def _database(url: str) -> Iterator[Engine]:
    """A fresh database with Vouch's tables, dropped afterwards."""
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"bench_lexical_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sql(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(url).set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fts(
    conn: psycopg.Connection[Any],
    records: list[tuple[str, str, dict[str, Any]]],
    queries: list[str],
) -> tuple[float, float, list[float]]:
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_lexical_fts")
        cur.execute("CREATE TABLE bench_lexical_fts (id text, tokens text[])")
        started = time.perf_counter()
        with cur.copy("COPY bench_lexical_fts (id, tokens) FROM STDIN") as copy:
            for chunk_id, text, metadata in records:
                copy.write_row((chunk_id, tokenize(document_text(text, metadata))))
        cur.execute(
            "ALTER TABLE bench_lexical_fts ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (array_to_tsvector(tokens)) STORED"
        )
        conn.commit()
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        cur.execute("CREATE INDEX ON bench_lexical_fts USING gin (tsv)")
        cur.execute("ANALYZE bench_lexical_fts")
        conn.commit()
        indexed = time.perf_counter() - started
        latencies = []
        for query in queries:
            terms = sorted(set(tokenize(query)))
            if not terms:
                continue
            started = time.perf_counter()
            cur.execute(
                "SELECT id FROM bench_lexical_fts, to_tsquery('simple', %s) q "
                "WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT 10",
                (" | ".join("'" + t.replace("'", "''") + "'" for t in terms),),
            )
            cur.fetchall()
            latencies.append(time.perf_counter() - started)
        cur.execute("DROP TABLE bench_lexical_fts")
        conn.commit()
    return inserted, indexed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50000,500000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    texts = _texts()
    queries = _queries(args.queries)
    with _database(args.postgres) as engine:
        _run(args, texts, queries, engine)


def _run(args: argparse.Namespace, texts: list[str], queries: list[str], engine: Engine) -> None:
    conn = psycopg.connect(args.postgres.replace("postgresql+psycopg://", "postgresql://"))
    print(f"{len(texts)} source texts; {len(queries)} queries")
    for size in (int(s) for s in args.sizes.split(",")):
        records = list(_records(texts, size))
        index, build = _timed(LexicalIndex.build, records)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "index"
            _, save = _timed(index.save, folder)
            size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
            loaded, load = _timed(LexicalIndex.load, folder)
        replace, first, through_get = _shared(engine, index, queries, size)
        g50, g95 = _percentiles(through_get)
        search = []
        for query in queries:
            _, seconds = _timed(loaded.search, query, 10)
            search.append(seconds)
        s50, s95 = _percentiles(search)
        inserted, indexed, fts = _fts(conn, records, queries)
        f50, f95 = _percentiles(fts)
        print(f"\n{size} chunks")
        print(f"  build (bm25s, tokenising)   {build:8.1f} s")
        print(f"  files: {size_mb:7.1f} MB      save {save:6.2f} s   load {load:6.2f} s")
        print(f"  search bm25s                p50 {s50 * 1000:7.2f} ms   p95 {s95 * 1000:7.2f} ms")
        print(
            f"  shared: replace (to the db) {replace:6.2f} s"
            f"   new replica's first get {first:6.2f} s"
        )
        print(
            f"  search through get          p50 {g50 * 1000:7.2f} ms   p95 {g95 * 1000:7.2f} ms"
            f"   ({g50 / s50:.1f}x / {g95 / s95:.1f}x bm25s alone)"
        )
        print(f"  pg-fts insert+index         {inserted:6.1f} s + {indexed:6.1f} s")
        print(
            f"  search pg-fts ts_rank       p50 {f50 * 1000:7.2f} ms   p95 {f95 * 1000:7.2f} ms"
            f"   ({f50 / s50:.1f}x / {f95 / s95:.1f}x bm25s)"
        )
    conn.close()


if __name__ == "__main__":
    main()
