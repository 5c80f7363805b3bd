"""Submitting sources, and the life of an ingestion job around its run.

A request (or the CLI) stores the source and a queued job in one transaction and enqueues the
job after commit. A worker claims it (queued -> running) and runs it (``pipeline.run_job``). A
job can be cancelled; a running job whose worker died (no heartbeat) is queued again and, since
unchanged documents are skipped, resumes where it stopped.
"""

import shutil
import tarfile
import zipfile
from collections.abc import Sequence
from datetime import timedelta
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from assets.models import Asset
from core.clock import utcnow
from core.config import IngestSettings
from ingestion.errors import (
    FileRejected,
    InvalidSource,
    InvalidUpload,
    JobFinished,
    JobNotFound,
)
from ingestion.files import git_commit, is_archive, safe_relative_path
from ingestion.models import FINISHED, IngestionJob, JobStatus, Source, UploadFile
from ingestion.readers import KINDS

# A running job whose heartbeat is older than this lost its worker.
STALE_AFTER = timedelta(minutes=2)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidSource(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")


def _new_job(session: Session, *, source: Source) -> IngestionJob:
    session.add(source)
    session.flush()  # the job's foreign key needs the source row first
    job = IngestionJob(asset_id=source.asset_id, source_id=source.id)
    session.add(job)
    session.flush()
    return job


def submit_local(
    session: Session, *, asset: Asset, account_id: str, path: Path, kind: str = "auto"
) -> IngestionJob:
    """Queue a file, directory, archive or git work tree on this machine (used by the CLI)."""
    _check_kind(kind)
    if not path.exists():
        raise InvalidSource(f"{path} does not exist")
    if not (path.is_file() or path.is_dir()):
        raise InvalidSource(f"{path} is neither a regular file nor a directory")
    root = path.resolve()
    source = Source(
        asset_id=asset.id,
        origin="local",
        location=str(root),
        kind=kind,
        commit=git_commit(root) if root.is_dir() else None,
        created_by=account_id,
    )
    return _new_job(session, source=source)


def _check_archive(name: str, data: bytes, limits: IngestSettings) -> None:
    """Refuse a broken archive, an unsafe entry name (naming the archive and the entry), or one
    that unpacks too far."""
    members: list[tuple[str, int]] = []
    try:
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(BytesIO(data)) as zf:
                members = [(i.filename, i.file_size) for i in zf.infolist() if not i.is_dir()]
        else:
            total = 0
            with tarfile.open(fileobj=BytesIO(data)) as tar:
                for member in tar:  # stops early: a bomb is refused before it is unpacked
                    if not member.isdir():  # links too: an unsafe name is refused whatever it is
                        size = member.size if member.isreg() else 0
                        members.append((member.name, size))
                        total += size
                    if total > limits.max_unpacked_bytes or len(members) > limits.max_files:
                        break
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        kind = "zip" if name.lower().endswith(".zip") else "tar"
        raise InvalidUpload(f"{name} is not a valid {kind} archive ({exc})") from exc
    if len(members) > limits.max_files:
        raise InvalidUpload(f"{name} holds more than {limits.max_files} files")
    unpacked = sum(size for _, size in members)
    if unpacked > limits.max_unpacked_bytes:
        raise InvalidUpload(
            f"{name} unpacks to more than {limits.max_unpacked_bytes} bytes ({unpacked} declared)"
        )
    for entry, _ in members:
        try:
            safe_relative_path(entry)
        except FileRejected as exc:
            raise InvalidUpload(f"{name}: entry {entry!r}: {exc.reason}") from exc


def last_of_each_name(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The files, each name (as it will be stored) once, with its last file, in upload order."""
    last: dict[str, int] = {}
    for position, (name, _) in enumerate(files):
        try:
            key = safe_relative_path(name)
        except FileRejected:
            key = name  # refused, with the reason, when the upload is stored
        last[key] = position
    return [files[position] for position in sorted(last.values())]


def submit_upload(
    session: Session,
    *,
    asset: Asset,
    account_id: str,
    files: Sequence[tuple[str, bytes]],
    kind: str,
    uploads_dir: Path,
    limits: IngestSettings,
) -> IngestionJob:
    """Store uploaded files (plain files, zip or tar archives) and queue their ingestion.

    The whole upload is refused, and nothing stored, when it is empty, too large, holds an
    unsafe or duplicate name, a broken archive or a bomb. A file no kind can read (an image)
    does not refuse it: the job reports each such file with the reason, as it does any other
    file it leaves out, and ingests the rest.
    """
    _check_kind(kind)
    if not files:
        raise InvalidUpload("no files were uploaded")
    total = sum(len(data) for _, data in files)
    if total > limits.max_upload_bytes:
        raise InvalidUpload(
            f"the upload is {total} bytes; the limit is {limits.max_upload_bytes}",
            status_code=413,
        )
    names: list[str] = []
    for raw_name, data in files:
        try:
            name = safe_relative_path(raw_name)
        except FileRejected as exc:
            raise InvalidUpload(f"file {raw_name!r}: {exc.reason}") from exc
        if name in names:
            raise InvalidUpload(f"file {name!r} appears twice in the upload")
        if is_archive(name):
            _check_archive(name, data, limits)
        names.append(name)

    source = Source(
        asset_id=asset.id, origin="upload", location="", kind=kind, created_by=account_id
    )
    target = (uploads_dir / source.id).resolve()
    source.location = str(target)
    try:
        for name, (_, data) in zip(names, files, strict=True):
            destination = target / PurePosixPath(name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)
        job = _new_job(session, source=source)
        session.add_all(
            UploadFile(source_id=source.id, name=n, data=d)
            for n, (_, d) in zip(names, files, strict=True)
        )
        return job
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def get_job(session: Session, job_id: str) -> IngestionJob:
    job = session.get(IngestionJob, job_id)
    if job is None:
        raise JobNotFound(f"no ingestion job {job_id}")
    return job


def list_jobs(session: Session, *, asset_id: str, limit: int = 20) -> list[IngestionJob]:
    statement = (
        select(IngestionJob)
        .where(IngestionJob.asset_id == asset_id)
        .order_by(col(IngestionJob.created_at).desc())
        .limit(limit)
    )
    return list(session.exec(statement))


def claim_job(session: Session, job_id: str) -> bool:
    """Move a queued job to running; False when another worker has it or it was cancelled."""
    now = utcnow()
    result = session.execute(
        update(IngestionJob)
        .where(col(IngestionJob.id) == job_id, col(IngestionJob.status) == JobStatus.queued)
        .values(status=JobStatus.running, started_at=now, heartbeat_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def cancel_job(session: Session, job: IngestionJob) -> IngestionJob:
    """Cancel a queued job at once, or ask a running one to stop after its current batch."""
    if job.status in FINISHED:
        raise JobFinished(f"job {job.id} has already {job.status}; there is nothing to cancel")
    job.cancel_requested = True
    if job.status == JobStatus.queued:
        job.status = JobStatus.cancelled
        job.finished_at = utcnow()
    session.add(job)
    session.flush()
    return job


def requeue_stale(session: Session) -> list[str]:
    """Queue again the jobs whose worker died (running, no heartbeat for STALE_AFTER) and the
    queued jobs whose task may have been lost; returns their ids, to be enqueued after commit.
    """
    cutoff = utcnow() - STALE_AFTER
    stale = session.exec(
        select(IngestionJob).where(
            or_(
                (col(IngestionJob.status) == JobStatus.running)
                & (col(IngestionJob.heartbeat_at) < cutoff),
                (col(IngestionJob.status) == JobStatus.queued)
                & (col(IngestionJob.created_at) < cutoff),
            )
        )
    ).all()
    for job in stale:
        job.status = JobStatus.queued
        session.add(job)
    return [job.id for job in stale]


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
        "read_as_text": job.documents_as_text,
        "excluded": job.excluded,
        "documents_total": job.documents_total,
        "documents_done": job.documents_done,
        "percent": 100 if job.status == "succeeded" else percent,
        "timings": job.timings,
        "commit": source.commit if source else None,
        "error": job.error,
    }
