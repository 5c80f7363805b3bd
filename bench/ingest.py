"""Ingest throughput on a corpus (default: the demo corpus, docs/), against the raw embedder.

    python bench/ingest.py [CORPUS] [--repeat N]

Prints, measured in one process on the same chunks: end-to-end chunks/s of a first ingest into
a fresh asset (chunking, embedding, Chroma writes, job bookkeeping), the embedder's raw chunks/s
on exactly those chunk texts, their ratio, and the time of a second, unchanged ingest as a
fraction of the first.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.runtime import Runtime  # noqa: E402
from core.config import QueueSettings, Settings  # noqa: E402
from ingestion.readers import iter_source_files  # noqa: E402
from ingestion.service import _parse  # noqa: E402
from migrations import upgrade  # noqa: E402
from tests.factories import create_actor, create_test_asset, ingest_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT / "docs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    files = list(iter_source_files(args.corpus, max_file_bytes=2 * 1024 * 1024))
    texts = [chunk.embed_text for f in files for chunk in _parse(f.path, f.read(), "auto").chunks]
    first_runs, second_runs, raw_runs = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), queue=QueueSettings(immediate=True))
            runtime = Runtime(settings)
            upgrade(runtime.engine)
            runtime.embedder.embed(["warm up"])
            expert = create_actor(runtime, role="expert")
            asset = create_test_asset(runtime, owner=expert.account)
            started = time.perf_counter()
            job = ingest_path(runtime, asset=asset, owner=expert.account, path=args.corpus)
            first_runs.append(time.perf_counter() - started)
            assert job.chunks_written == len(texts), (job.chunks_written, len(texts))
            started = time.perf_counter()
            ingest_path(runtime, asset=asset, owner=expert.account, path=args.corpus)
            second_runs.append(time.perf_counter() - started)
            started = time.perf_counter()
            runtime.embedder.embed(texts)
            raw_runs.append(time.perf_counter() - started)
            runtime.close()

    first, second, raw = (statistics.median(r) for r in (first_runs, second_runs, raw_runs))
    print(
        f"corpus: {args.corpus} ({len(files)} files, {len(texts)} chunks), "
        f"median of {args.repeat} runs"
    )
    print(f"end-to-end ingest:    {len(texts) / first:8.1f} chunks/s ({first:.2f} s)")
    print(f"raw embedder:         {len(texts) / raw:8.1f} chunks/s ({raw:.2f} s)")
    print(f"end-to-end / raw:     {raw / first:8.2f}")
    print(f"unchanged re-ingest:  {second:8.3f} s = {second / first:.1%} of the first")


if __name__ == "__main__":
    main()
