"""Submitting sources and running ingestion jobs.

A request (or the CLI) stores the source and a queued job in one transaction; the queue then
calls ``run_job``, which claims the job, chunks each file, embeds in batches, writes the asset's
collection under stable chunk ids and records progress as it goes. Re-running a job, or
ingesting the same files again, writes nothing twice: chunk ids hash the path and the text, and
unchanged documents are skipped by content hash.
"""

import hashlib
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from assets.embeddings import Embedder
from assets.index import AssetCollection, VectorIndex
from assets.models import Asset
from core.clock import utcnow
from core.config import IngestSettings
from core.db import session_scope
from ingestion.errors import FileRejected, InvalidSource, InvalidUpload, JobNotFound
from ingestion.models import Document, IngestionJob, JobStatus, Source
from ingestion.readers import (
    KINDS,
    SUPPORTED,
    chunker_for,
    decode,
    is_supported,
    iter_source_files,
    safe_relative_path,
)
from ingestion.sources.base import Chunk

ProgressCallback = Callable[[IngestionJob], None]
# Progress is written at least this often (seconds) while files are being skipped or rejected.
_PROGRESS_INTERVAL = 0.5


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
    """Queue the ingestion of a file or directory on this machine (used by the CLI)."""
    _check_kind(kind)
    if not path.exists():
        raise InvalidSource(f"{path} does not exist")
    if not (path.is_file() or path.is_dir()):
        raise InvalidSource(f"{path} is neither a regular file nor a directory")
    source = Source(
        asset_id=asset.id,
        origin="local",
        location=str(path.resolve()),
        kind=kind,
        created_by=account_id,
    )
    return _new_job(session, source=source)


def _check_zip(name: str, data: bytes, limits: IngestSettings) -> None:
    try:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidUpload(f"{name} is not a valid zip archive ({exc})") from exc
    if len(infos) > limits.max_files:
        raise InvalidUpload(f"{name} holds {len(infos)} entries; the limit is {limits.max_files}")
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_unpacked_bytes:
        raise InvalidUpload(
            f"{name} unpacks to {unpacked} bytes; the limit is {limits.max_unpacked_bytes}"
        )
    for info in infos:
        try:
            safe_relative_path(info.filename)
        except FileRejected as exc:
            raise InvalidUpload(f"{name}: entry {info.filename!r}: {exc.reason}") from exc


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
    """Store uploaded files (plain files or zip archives) and queue their ingestion.

    The whole upload is refused, and nothing stored, when it is empty, too large, holds an
    unsafe or duplicate name or a broken archive, or has no file that could be ingested.
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
        if name.lower().endswith(".zip"):
            _check_zip(name, data, limits)
        names.append(name)
    if not any(is_supported(name) for name in names):
        raise InvalidUpload(
            f"none of the uploaded files can be ingested ({', '.join(names)}); "
            f"supported: {', '.join([*SUPPORTED, '.zip'])}"
        )

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
        return _new_job(session, source=source)
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
    """Move a queued job to running; False when another worker already has it."""
    result = session.execute(
        update(IngestionJob)
        .where(col(IngestionJob.id) == job_id, col(IngestionJob.status) == JobStatus.queued)
        .values(status=JobStatus.running, started_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def chunk_id(chunk: Chunk) -> str:
    """Stable id: the same path and text always give the same id, so writes are idempotent."""
    return hashlib.sha256(f"{chunk.path}\x00{chunk.text}".encode()).hexdigest()[:32]


@dataclass
class _Parsed:
    path: str
    kind: str
    content_hash: str
    chunks: list[Chunk]


@dataclass
class _Counts:
    total: int = 0
    done: int = 0
    skipped: int = 0
    chunks: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)


def _write_documents(
    collection: AssetCollection, embedder: Embedder, parsed: list[_Parsed]
) -> None:
    chunks = [chunk for doc in parsed for chunk in doc.chunks]
    vectors = embedder.embed([chunk.embed_text for chunk in chunks])
    position = 0
    for doc in parsed:
        n = len(doc.chunks)
        ids = [chunk_id(chunk) for chunk in doc.chunks]
        stale = set(collection.ids_where(path=doc.path)) - set(ids)
        if ids:
            collection.upsert(
                ids,
                vectors[position : position + n],
                [chunk.text for chunk in doc.chunks],
                [chunk.metadata for chunk in doc.chunks],
            )
        # New chunks are written before old ones go, so a crash in between loses nothing.
        if stale:
            collection.delete(sorted(stale))
        position += n


def _parse(path: str, data: bytes, kind: str) -> _Parsed:
    doc_kind, chunker = chunker_for(path, kind)
    content_hash = hashlib.sha256(doc_kind.encode() + b"\x00" + data).hexdigest()
    text = decode(data)
    chunks: dict[str, Chunk] = {}
    for chunk in chunker(path, text):
        chunks.setdefault(chunk_id(chunk), chunk)  # identical passages are stored once
    return _Parsed(
        path=path, kind=doc_kind, content_hash=content_hash, chunks=list(chunks.values())
    )


def _save_progress(
    engine: Engine,
    job_id: str,
    counts: _Counts,
    documents: Sequence[_Parsed] = (),
    asset_id: str = "",
) -> IngestionJob:
    with session_scope(engine) as session:
        for doc in documents:
            row = session.exec(
                select(Document).where(Document.asset_id == asset_id, Document.path == doc.path)
            ).first()
            row = row or Document(
                asset_id=asset_id, path=doc.path, kind=doc.kind, content_hash="", chunk_count=0
            )
            row.kind = doc.kind
            row.content_hash = doc.content_hash
            row.chunk_count = len(doc.chunks)
            row.updated_at = utcnow()
            session.add(row)
        job = _apply(get_job(session, job_id), counts)
        session.add(job)
        return job


def _apply(job: IngestionJob, counts: _Counts) -> IngestionJob:
    job.documents_total = counts.total
    job.documents_done = counts.done
    job.documents_skipped = counts.skipped
    job.chunks_written = counts.chunks
    job.failures = list(counts.failures)
    return job


def run_job(
    engine: Engine,
    *,
    job_id: str,
    index: VectorIndex,
    embedder: Embedder,
    limits: IngestSettings,
    batch_chunks: int = 64,
    on_progress: ProgressCallback | None = None,
) -> IngestionJob:
    """Ingest a claimed (running) job's source into its asset and finish the job.

    Per-file problems are recorded as failures and the rest go on; anything else marks the job
    failed with the error's class and message, and is raised again.
    """
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        source = session.get(Source, job.source_id)
        asset = session.get(Asset, job.asset_id)
        if source is None or asset is None:
            raise JobNotFound(f"job {job_id} refers to a missing source or asset")
        known = {
            doc.path: doc.content_hash
            for doc in session.exec(select(Document).where(Document.asset_id == asset.id))
        }
    counts = _Counts()
    notify = on_progress or (lambda _job: None)
    try:
        if asset.embed_model != embedder.name:
            raise InvalidSource(
                f"asset {asset.slug} was embedded with {asset.embed_model}, "
                f"but the configured embedder is {embedder.name}"
            )
        collection = index.collection(asset.collection)
        files = list(iter_source_files(Path(source.location), max_file_bytes=limits.max_file_bytes))
        counts.total = len(files)
        notify(_save_progress(engine, job_id, counts))
        pending: list[_Parsed] = []
        last_save = time.monotonic()

        def flush() -> None:
            nonlocal pending, last_save
            _write_documents(collection, embedder, pending)
            counts.done += len(pending)
            counts.chunks += sum(len(doc.chunks) for doc in pending)
            notify(_save_progress(engine, job_id, counts, pending, asset.id))
            pending, last_save = [], time.monotonic()

        for file in files:
            try:
                if file.size > limits.max_file_bytes:
                    raise FileRejected(
                        f"{file.size} bytes, over the {limits.max_file_bytes} byte limit"
                    )
                parsed = _parse(file.path, file.read(), source.kind)
            except FileRejected as exc:
                counts.failures.append({"path": file.path, "reason": exc.reason})
                counts.done += 1
            except OSError as exc:
                counts.failures.append({"path": file.path, "reason": f"unreadable: {exc}"})
                counts.done += 1
            else:
                if known.get(parsed.path) == parsed.content_hash:
                    counts.skipped += 1
                    counts.done += 1
                else:
                    pending.append(parsed)
            if sum(len(doc.chunks) for doc in pending) >= batch_chunks:
                flush()
            elif time.monotonic() - last_save > _PROGRESS_INTERVAL:
                notify(_save_progress(engine, job_id, counts))
                last_save = time.monotonic()
        if pending:
            flush()
    except Exception as exc:
        _finish(engine, job_id, counts, error=f"{type(exc).__name__}: {exc}")
        raise
    written = counts.done - counts.skipped - len(counts.failures)
    error = None
    if counts.total == 0:
        error = "the source holds no files"
    elif counts.failures and written == 0 and counts.skipped == 0:
        error = "no file could be ingested"
    job = _finish(engine, job_id, counts, error=error)
    notify(job)
    return job


def _finish(engine: Engine, job_id: str, counts: _Counts, *, error: str | None) -> IngestionJob:
    with session_scope(engine) as session:
        job = _apply(get_job(session, job_id), counts)
        job.status = JobStatus.failed if error else JobStatus.succeeded
        job.error = error
        job.finished_at = utcnow()
        session.add(job)
        return job
