"""The task queue: huey on SQLite in the data dir (or on Redis), with thin task wrappers around
the service.

Tasks are registered on a huey instance built by the entry point, bound to an ``IngestContext``
that holds the clients a worker needs. Consumers run as threads inside ``vouch serve`` or as a
standalone ``vouch worker`` process; both claim a job before running it, so a job queued twice
runs once. Every minute (and when a consumer starts) jobs whose worker died are queued again.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlalchemy import Engine

from assets.embeddings import Embedder
from assets.index import VectorIndex
from assets.lexical import LexicalStore
from core.config import IngestSettings
from core.db import after_commit, session_scope
from ingestion import pipeline, service

log = logging.getLogger(__name__)


@dataclass
class IngestContext:
    engine: Engine
    index: VectorIndex
    embedder: Embedder
    limits: IngestSettings
    lexical: LexicalStore
    work_dir: Path  # jobs unpack archives in a folder of their own under it


@dataclass
class Queue:
    huey: Huey
    enqueue_ingest: Callable[[str], None]
    requeue_stale: Callable[[], list[str]]

    def consumer(self, workers: int, *, shutdown_timeout: float | None = None) -> Consumer:
        """Consumer threads for a host process (``vouch serve``), after re-queuing lost jobs.

        Stopping waits at most ``shutdown_timeout`` seconds for running tasks; an ingestion
        job cut short is left running, queued again once its heartbeat is stale, and resumes
        where it stopped (unchanged files are skipped)."""
        self.requeue_stale()
        return _EmbeddedConsumer(
            self.huey,
            workers=max(workers, 1),
            worker_type="thread",
            shutdown_timeout=shutdown_timeout,
        )


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
    pipeline.run_job(
        context.engine,
        job_id=job_id,
        index=context.index,
        embedder=context.embedder,
        limits=context.limits,
        lexical=context.lexical,
        work_dir=context.work_dir,
    )


def build_queue(
    path: Path,
    engine: Engine,
    context: Callable[[], IngestContext],
    *,
    immediate: bool,
    redis_url: str | None = None,
    name: str = "vouch",
) -> Queue:
    """A huey queue stored at ``path``, or in Redis at ``redis_url`` under ``name`` (in memory
    and run inline when ``immediate``)."""
    huey: Huey
    if redis_url:
        huey = RedisHuey(name=name, url=redis_url, results=False, immediate=immediate)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(name=name, filename=str(path), results=False, immediate=immediate)

    @huey.task(name="ingest")  # type: ignore[untyped-decorator]
    def ingest(job_id: str) -> None:
        run_ingest(context(), job_id)

    def enqueue(job_id: str) -> None:
        ingest(job_id)

    def requeue_stale() -> list[str]:
        with session_scope(engine) as session:
            job_ids = service.requeue_stale(session)
            for job_id in job_ids:
                after_commit(session, partial(enqueue, job_id))
        if job_ids:
            log.warning("queued again %d job(s) whose worker stopped: %s", len(job_ids), job_ids)
        return job_ids

    @huey.periodic_task(crontab(minute="*"), name="requeue-stale")  # type: ignore[untyped-decorator]
    def requeue_periodically() -> None:
        requeue_stale()

    return Queue(huey=huey, enqueue_ingest=enqueue, requeue_stale=requeue_stale)
