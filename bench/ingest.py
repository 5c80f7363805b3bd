"""Ingest throughput on a corpus, against the raw embedder on the same chunks.

    python bench/ingest.py [CORPUS] [--kind auto] [--repeat N]

CORPUS defaults to the demo corpus (docs/); any folder, archive or git work tree works, for
example ../shared/evalsets/obliqa/docs. Prints, measured in one process on the same chunks:
end-to-end chunks/s of a first ingest into a fresh asset (reading, parsing, embedding, Chroma
writes, job bookkeeping), the embedder's raw chunks/s on exactly those chunk texts, their ratio,
and the time of a second, unchanged ingest as a fraction of the first.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.runtime import Runtime
from core.config import QueueSettings, Settings
from ingestion.errors import FileExcluded, FileRejected
from ingestion.files import local_source_files
from ingestion.pipeline import unique_chunks
from ingestion.readers import read_document
from migrations import upgrade
from tests.factories import create_actor, create_test_asset, ingest_path


def chunk_texts(corpus: Path, kind: str, settings: Settings) -> list[str]:
    texts: list[str] = []
    work = settings.work_path / "bench"  # the data dir is a temporary folder
    for file in local_source_files(corpus.resolve(), settings.ingest, work=work):
        try:
            parsed = read_document(file.path, file.read(), kind)
        except (FileExcluded, FileRejected):
            continue
        chunks = unique_chunks(file.source_key, parsed.chunks)
        texts.extend(chunk.embed_text for chunk in chunks)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "corpus", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent / "docs"
    )
    parser.add_argument("--kind", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    first_runs, second_runs, raw_runs = [], [], []
    texts: list[str] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), queue=QueueSettings(immediate=True))
            runtime = Runtime(settings)
            upgrade(runtime.engine)
            runtime.embedder.embed(["warm up"])
            texts = chunk_texts(args.corpus, args.kind, settings)
            expert = create_actor(runtime, role="expert")
            asset = create_test_asset(runtime, owner=expert.account)
            started = time.perf_counter()
            job = ingest_path(
                runtime, asset=asset, owner=expert.account, path=args.corpus, kind=args.kind
            )
            first_runs.append(time.perf_counter() - started)
            assert job.chunks_written == len(texts), (job.chunks_written, len(texts))
            started = time.perf_counter()
            again = ingest_path(
                runtime, asset=asset, owner=expert.account, path=args.corpus, kind=args.kind
            )
            second_runs.append(time.perf_counter() - started)
            assert again.chunks_written == 0
            started = time.perf_counter()
            runtime.embedder.embed(texts)
            raw_runs.append(time.perf_counter() - started)
            timings = job.timings
            runtime.close()

    first, second, raw = (statistics.median(r) for r in (first_runs, second_runs, raw_runs))
    print(f"corpus: {args.corpus} ({len(texts)} chunks), median of {args.repeat} runs")
    print(f"end-to-end ingest:    {len(texts) / first:8.1f} chunks/s ({first:.2f} s)")
    print(f"raw embedder:         {len(texts) / raw:8.1f} chunks/s ({raw:.2f} s)")
    print(f"end-to-end / raw:     {raw / first:8.2f}")
    print(f"unchanged re-ingest:  {second:8.3f} s = {second / first:.1%} of the first")
    print(f"last run's job timings (s): {timings}")


if __name__ == "__main__":
    main()
