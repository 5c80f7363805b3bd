"""The use cases that span packages: searching, asking (answer + metering), and ingesting."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.models import Account
from app.runtime import Runtime
from assets import answering, retrieval
from assets.answering import Answer
from assets.models import Asset, Consultation
from assets.service import Viewer, get_managed_asset, get_visible_asset, record_consultation
from billing.metering import count_tokens
from billing.service import record_usage
from core.db import after_commit
from ingestion import service as ingestion
from ingestion.errors import JobNotFound
from ingestion.models import IngestionJob, Source

# Passages an answer is drawn from.
ANSWER_K = 5


def viewer_of(account: Account) -> Viewer:
    return Viewer(account_id=account.id, role=account.role)


def search(
    session: Session, runtime: Runtime, *, account: Account, slug: str, query: str, k: int
) -> list[retrieval.Passage]:
    """Raw passages: the asset's owner and admins only, since they are the corpus itself."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return retrieval.search(asset, query=query, k=k, index=runtime.index, embedder=runtime.embedder)


@dataclass(frozen=True, slots=True)
class AskResult:
    consultation: Consultation
    answer: Answer

    def public(self) -> dict[str, Any]:
        return consultation_public(self.consultation)


def consultation_public(c: Consultation) -> dict[str, Any]:
    """The ask JSON shape shared by the API, the pages and the CLI."""
    return {
        "answer": c.answer,
        "citations": c.citations,
        "confidence": c.confidence,
        "status": c.status,
        "consultation_id": c.id,
        "tokens": {"prompt": c.prompt_tokens, "completion": c.completion_tokens},
    }


def ask(
    session: Session, runtime: Runtime, *, account: Account, slug: str, question: str
) -> AskResult:
    """Answer a question from an asset, then record the consultation and its usage together."""
    viewer = viewer_of(account)
    asset = get_visible_asset(session, viewer=viewer, slug=slug)
    question = retrieval.clean_query(question)
    started = time.perf_counter()
    passages = retrieval.search(
        asset, query=question, k=ANSWER_K, index=runtime.index, embedder=runtime.embedder
    )
    answer = answering.answer(question, passages, review_threshold=asset.review_threshold)
    latency_ms = round((time.perf_counter() - started) * 1000)
    prompt_tokens = count_tokens(answer.prompt)
    completion_tokens = count_tokens(answer.text)
    consultation = record_consultation(
        session,
        asset=asset,
        viewer=viewer,
        question=question,
        answer=answer,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    record_usage(
        session,
        account_id=account.id,
        asset_id=asset.id,
        consultation_id=consultation.id,
        model=answer.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    return AskResult(consultation=consultation, answer=answer)


def submit_upload(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    slug: str,
    files: list[tuple[str, bytes]],
    kind: str,
) -> IngestionJob:
    """Store an upload as a source with a queued job; the job is enqueued after commit."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    job = ingestion.submit_upload(
        session,
        asset=asset,
        account_id=account.id,
        files=files,
        kind=kind,
        uploads_dir=runtime.settings.uploads_path,
        limits=runtime.settings.ingest,
    )
    after_commit(session, lambda: runtime.queue.enqueue_ingest(job.id))
    return job


def submit_local(
    session: Session, runtime: Runtime, *, account: Account, slug: str, path: Path, kind: str
) -> IngestionJob:
    """Queue a local file or directory (CLI); the job is enqueued after commit."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    job = ingestion.submit_local(session, asset=asset, account_id=account.id, path=path, kind=kind)
    after_commit(session, lambda: runtime.queue.enqueue_ingest(job.id))
    return job


def list_jobs(session: Session, *, account: Account, slug: str) -> tuple[list[IngestionJob], Asset]:
    """The latest jobs of an asset the account manages."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return ingestion.list_jobs(session, asset_id=asset.id), asset


def get_job(session: Session, *, account: Account, job_id: str) -> tuple[IngestionJob, Asset]:
    """A job of an asset the account manages; any other job is reported as missing."""
    job = session.get(IngestionJob, job_id)
    asset = session.get(Asset, job.asset_id) if job else None
    viewer = viewer_of(account)
    if job is None or asset is None or not (viewer.is_admin or asset.owner_id == account.id):
        raise JobNotFound(f"no ingestion job {job_id}")
    return job, asset


def cancel_job(session: Session, *, account: Account, job_id: str) -> tuple[IngestionJob, Asset]:
    """Cancel a job of an asset the account manages."""
    job, asset = get_job(session, account=account, job_id=job_id)
    return ingestion.cancel_job(session, job), asset


def job_public(session: Session, job: IngestionJob) -> dict[str, Any]:
    """The ingest JSON shape shared by the API, the pages and the CLI.

    ``documents`` counts the files written (new or changed) and ``skipped`` the unchanged ones;
    ``excluded`` lists files left out on purpose and ``failed`` those that could not be read.
    """
    source = session.get(Source, job.source_id)
    seconds = None
    if job.started_at and job.finished_at:
        seconds = round((job.finished_at - job.started_at).total_seconds(), 3)
    percent = round(100 * job.documents_done / job.documents_total) if job.documents_total else 0
    return {
        "job_id": job.id,
        "status": job.status,
        "documents": job.documents_added + job.documents_updated,
        "chunks": job.chunks_written,
        "skipped": job.documents_skipped,
        "failed": job.failures,
        "seconds": seconds,
        "added": job.documents_added,
        "updated": job.documents_updated,
        "removed": job.documents_removed,
        "excluded": job.excluded,
        "documents_total": job.documents_total,
        "documents_done": job.documents_done,
        "percent": 100 if job.status == "succeeded" else percent,
        "timings": job.timings,
        "commit": source.commit if source else None,
        "error": job.error,
    }
