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
* blob: the folder as one tar in a PostgreSQL ``bytea`` row, written and read back (the index
  kept in the database, fetched by each replica when its version changes);
* search: p50/p95 of ``LexicalIndex.search`` (k=10) once loaded;
* pg-fts: the same tokens as a ``tsvector`` per chunk in PostgreSQL with a GIN index (the index
  held in the database itself, nothing to fetch): insert (COPY) and index time, then p50/p95 of
  an OR query ranked by ``ts_rank`` (not BM25: no document-length normalisation of BM25's kind).

Ratios are to bm25s search latency in the same process.
"""

import argparse
import io
import itertools
import json
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from assets.lexical import LexicalIndex, document_text, tokenize

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


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def _blob(conn: psycopg.Connection[Any], data: bytes) -> tuple[float, float]:
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_lexical_blob")
        cur.execute("CREATE TABLE bench_lexical_blob (id int PRIMARY KEY, data bytea)")
        started = time.perf_counter()
        cur.execute("INSERT INTO bench_lexical_blob VALUES (1, %s)", (data,))
        conn.commit()
        wrote = time.perf_counter() - started
        started = time.perf_counter()
        cur.execute("SELECT data FROM bench_lexical_blob WHERE id = 1")
        row = cur.fetchone()
        read = time.perf_counter() - started
        assert row is not None
        assert len(row[0]) == len(data)
        cur.execute("DROP TABLE bench_lexical_blob")
        conn.commit()
    return wrote, read


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
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    texts = _texts()
    queries = _queries(args.queries)
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
            blob = _tar(folder)
        blob_write, blob_read = _blob(conn, blob)
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
        print(f"  blob in PostgreSQL          write {blob_write:6.2f} s   read {blob_read:6.2f} s")
        print(f"  search bm25s                p50 {s50 * 1000:7.2f} ms   p95 {s95 * 1000:7.2f} ms")
        print(f"  pg-fts insert+index         {inserted:6.1f} s + {indexed:6.1f} s")
        print(
            f"  search pg-fts ts_rank       p50 {f50 * 1000:7.2f} ms   p95 {f95 * 1000:7.2f} ms"
            f"   ({f50 / s50:.1f}x / {f95 / s95:.1f}x bm25s)"
        )
    conn.close()


if __name__ == "__main__":
    main()
