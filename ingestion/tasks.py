"""The task queue: huey on SQLite in the data dir, with thin task wrappers around the service.

Tasks are registered on a huey instance built by the entry point, bound to an ``IngestContext``
that holds the clients a worker needs. Consumers run as threads inside ``vouch serve`` or as a
standalone ``vouch worker`` process; both claim a job before running it, so a job queued twice
runs once.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huey import SqliteHuey
from huey.consumer import Consumer
from sqlalchemy import Engine

from assets.embeddings import Embedder
from assets.index import VectorIndex
from core.config import IngestSettings
from core.db import session_scope
from ingestion import service

log = logging.getLogger(__name__)


@dataclass
class IngestContext:
    engine: Engine
    index: VectorIndex
    embedder: Embedder
    limits: IngestSettings


@dataclass
class Queue:
    huey: SqliteHuey
    enqueue_ingest: Callable[[str], None]

    def consumer(self, workers: int) -> Consumer:
        return _EmbeddedConsumer(self.huey, workers=max(workers, 1), worker_type="thread")


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves signal handling to its host process (uvicorn, or the CLI)."""

    def _set_signal_handlers(self) -> None:
        pass


def run_ingest(context: IngestContext, job_id: str) -> None:
    """Claim the job and run it; a job another worker already claimed is left alone."""
    with session_scope(context.engine) as session:
        claimed = service.claim_job(session, job_id)
    if not claimed:
        log.info("job %s is not queued any more; skipping", job_id)
        return
    service.run_job(
        context.engine,
        job_id=job_id,
        index=context.index,
        embedder=context.embedder,
        limits=context.limits,
    )


def build_queue(path: Path, context: Callable[[], IngestContext], *, immediate: bool) -> Queue:
    """A huey queue stored at ``path`` (in memory and run inline when ``immediate``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    huey = SqliteHuey(name="vouch", filename=str(path), results=False, immediate=immediate)

    @huey.task(name="ingest")  # type: ignore[untyped-decorator]
    def ingest(job_id: str) -> None:
        run_ingest(context(), job_id)

    def enqueue(job_id: str) -> None:
        ingest(job_id)

    return Queue(huey=huey, enqueue_ingest=enqueue)
