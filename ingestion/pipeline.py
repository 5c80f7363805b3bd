"""Running an ingestion job: read and parse files while earlier batches are embedded and written.

A parser thread reads each file, hashes it, skips it when unchanged, and parses it; the job's
thread embeds the parsed chunks in batches (onnxruntime releases the GIL, so both run at once),
writes them to the asset's collection and records progress. Chunk ids hash the source, path and
text, new chunks are written before stale ones are deleted, and a document's row is written
last: a job that dies at any point can be run again and writes nothing twice.

Tar archives are unpacked into the job's own work folder under the data dir, which is removed
when the job ends, whatever its outcome (and, after a crash, when the job runs again). When an
upload's job ends, the uploaded files that were refused or left out are deleted from its folder.
"""

import contextlib
import hashlib
import queue
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from assets import review
from assets.abbreviations import Abbreviations
from assets.embeddings import Embedder
from assets.index import AssetCollection, VectorIndex
from assets.lexical import FORMAT as LEXICAL_FORMAT
from assets.lexical import LexicalIndex, LexicalStore
from assets.models import Asset
from core.clock import utcnow
from core.config import IngestSettings
from core.db import session_scope
from ingestion.errors import FileExcluded, FileRejected, InvalidSource, JobNotFound
from ingestion.files import (
    SourceFile,
    discard_upload_files,
    local_source_files,
    safe_relative_path,
    too_large,
    upload_source_files,
)
from ingestion.models import Document, IngestionJob, JobStatus, Source, UploadFile
from ingestion.readers import READERS_VERSION, read_document
from ingestion.sources.base import Chunk, ParsedDocument

ProgressCallback = Callable[[IngestionJob], None]
# Progress (and the heartbeat) is written at least this often, in seconds.
PROGRESS_INTERVAL = 0.5
# Parsed documents waiting for the embedder; enough to keep it busy, little memory.
_QUEUE_DEPTH = 16


def chunk_id(source_key: str, chunk: Chunk) -> str:
    """Stable id: the same source, path and text always give the same id."""
    raw = f"{source_key}\x00{chunk.path}\x00{chunk.text}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def unique_chunks(source_key: str, chunks: list[Chunk]) -> list[Chunk]:
    """The chunks with repeats dropped: the same passage twice in a file is stored once."""
    unique: dict[str, Chunk] = {}
    for chunk in chunks:
        unique.setdefault(chunk_id(source_key, chunk), chunk)
    return list(unique.values())


def content_hash(kind: str, data: bytes) -> str:
    # The requested kind and the readers' version are part of the hash: forcing another kind,
    # or a reader that chunks differently, re-reads the file.
    prefix = f"{READERS_VERSION}\x00{kind}\x00".encode()
    return hashlib.sha256(prefix + data).hexdigest()


@dataclass
class _Parsed:
    file: SourceFile
    hash: str
    document: ParsedDocument
    update: bool  # a changed document (else a new one)


@dataclass
class _Outcome:
    """What the parser thread says about one file."""

    file: SourceFile
    parsed: _Parsed | None = None
    unchanged: bool = False
    excluded: str | None = None
    failed: str | None = None
    seconds: float = 0.0


@dataclass
class _Counts:
    total: int = 0
    done: int = 0
    added: int = 0
    updated: int = 0
    skipped: int = 0
    removed: int = 0
    as_text: int = 0
    chunks: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(
        default_factory=lambda: {"read_parse": 0.0, "embed": 0.0, "write": 0.0}
    )

    def apply(self, job: IngestionJob) -> IngestionJob:
        job.documents_total = self.total
        job.documents_done = self.done
        job.documents_added = self.added
        job.documents_updated = self.updated
        job.documents_skipped = self.skipped
        job.documents_removed = self.removed
        job.documents_as_text = self.as_text
        job.chunks_written = self.chunks
        job.failures = list(self.failures)
        job.excluded = list(self.excluded)
        job.timings = {name: round(seconds, 3) for name, seconds in self.timings.items()}
        job.heartbeat_at = utcnow()
        return job


def source_files(
    source: Source, root: Path, limits: IngestSettings, work: Path
) -> Iterator[SourceFile]:
    """A source's files under ``root``; tar archives are unpacked under ``work``."""
    if source.origin == "upload":
        return upload_source_files(root, limits, work=work)
    return local_source_files(root, limits, work=work)


def upload_folder(session: Session, source: Source, work: Path) -> Path:
    """The folder holding an upload's files on this machine: where the replica that received
    it stored them, or else a copy from the database under ``work`` (a worker elsewhere)."""
    stored = Path(source.location)
    if stored.is_dir():
        return stored
    folder = work / "upload"
    for row in session.exec(select(UploadFile).where(UploadFile.source_id == source.id)):
        destination = folder / safe_relative_path(row.name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(row.data)
    return folder


def discard_uploads(session: Session, source: Source, names: Sequence[str]) -> None:
    """Forget these files of an upload (none of their content was ingested)."""
    if names:
        session.execute(
            delete(UploadFile).where(
                col(UploadFile.source_id) == source.id, col(UploadFile.name).in_(names)
            )
        )


class _Parser(threading.Thread):
    """Reads, hashes and parses files in order, handing outcomes to the job's thread."""

    def __init__(
        self,
        files: list[SourceFile],
        known: dict[tuple[str, str], str],
        kind: str,
        limits: IngestSettings,
    ) -> None:
        super().__init__(name="ingest-parser", daemon=True)
        self.files, self.known, self.kind, self.limits = files, known, kind, limits
        self.outcomes: queue.Queue[_Outcome | BaseException | None] = queue.Queue(_QUEUE_DEPTH)
        self.stop = threading.Event()
        self._read_bytes = 0

    def run(self) -> None:
        try:
            for file in self.files:
                if self.stop.is_set():
                    break
                self.outcomes.put(self._one(file))
        except BaseException as exc:  # handed to the job's thread, which raises it
            self.outcomes.put(exc)
        self.outcomes.put(None)

    def _one(self, file: SourceFile) -> _Outcome:
        started = time.perf_counter()
        outcome = _Outcome(file=file)
        try:
            if file.size > self.limits.max_file_bytes:
                raise too_large(file.size, self.limits.max_file_bytes)
            data = file.read()
            self._read_bytes += len(data)
            if self._read_bytes > self.limits.max_unpacked_bytes:
                raise FileRejected(
                    f"the source holds more than {self.limits.max_unpacked_bytes} bytes"
                )
            digest = content_hash(self.kind, data)
            previous = self.known.get((file.source_key, file.path))
            if previous == digest:
                outcome.unchanged = True
            else:
                document = read_document(file.path, data, self.kind)
                document.chunks = unique_chunks(file.source_key, document.chunks)
                outcome.parsed = _Parsed(file, digest, document, update=previous is not None)
        except FileExcluded as exc:
            outcome.excluded = exc.reason
        except FileRejected as exc:
            outcome.failed = exc.reason
        except OSError as exc:
            outcome.failed = f"unreadable: {exc}"
        outcome.seconds = time.perf_counter() - started
        return outcome


class _Run:
    """One execution of a claimed job."""

    def __init__(
        self,
        engine: Engine,
        job_id: str,
        index: VectorIndex,
        embedder: Embedder,
        limits: IngestSettings,
        batch_chunks: int,
        notify: ProgressCallback,
        lexical: LexicalStore,
        work: Path,
    ) -> None:
        self.engine, self.job_id, self.index, self.embedder = engine, job_id, index, embedder
        self.lexical, self.work = lexical, work
        self.limits, self.batch_chunks, self.notify = limits, batch_chunks, notify
        self.counts = _Counts()
        self.asset_id = ""
        self.source: Source | None = None
        self.root = Path()  # where the source's files are on this machine
        # Per file on disk (a file, or an archive): its entries, and those refused or left out.
        self.entries: Counter[Path] = Counter()
        self.dropped: Counter[Path] = Counter()
        self.last_save = 0.0
        self.cancelled = False

    def load(self) -> tuple[Source, Asset, AssetCollection]:
        with Session(self.engine) as session:
            job = session.get(IngestionJob, self.job_id)
            source = session.get(Source, job.source_id) if job else None
            asset = session.get(Asset, job.asset_id) if job else None
        if job is None or source is None or asset is None:
            raise JobNotFound(f"job {self.job_id} or its source or asset is missing")
        if asset.embed_model != self.embedder.name:
            raise InvalidSource(
                f"asset {asset.slug} was embedded with {asset.embed_model}, "
                f"but the configured embedder is {self.embedder.name}"
            )
        return source, asset, self.index.collection(asset.collection)

    def save(self, documents: Sequence[_Parsed] = (), force: bool = False) -> None:
        if not documents and not force and time.monotonic() - self.last_save < PROGRESS_INTERVAL:
            return
        with session_scope(self.engine) as session:
            for parsed in documents:
                _upsert_document(session, self.asset_id, parsed)
            job = session.get(IngestionJob, self.job_id)
            if job is None:
                raise JobNotFound(f"job {self.job_id} disappeared")
            self.cancelled = self.cancelled or job.cancel_requested
            session.add(self.counts.apply(job))
        self.last_save = time.monotonic()
        self.notify(job)

    def write(self, collection: AssetCollection, pending: list[_Parsed]) -> None:
        chunks = [chunk for parsed in pending for chunk in parsed.document.chunks]
        started = time.perf_counter()
        vectors = self.embedder.embed([chunk.embed_text for chunk in chunks])
        self.counts.timings["embed"] += time.perf_counter() - started
        started = time.perf_counter()
        # One read of the chunks already stored for these files and one write for the batch:
        # a call to Chroma costs far more than the records it carries.
        paths_of: dict[str, list[str]] = {}
        for parsed in pending:
            paths_of.setdefault(parsed.file.source_key, []).append(parsed.file.path)
        stored = {
            (key, path): found
            for key, paths in paths_of.items()
            for path, found in collection.ids_of_files(key, paths).items()
        }
        ids: list[str] = []
        metadatas: list[dict[str, str | int]] = []
        stale: list[str] = []
        for parsed in pending:
            key, path = parsed.file.source_key, parsed.file.path
            new = [chunk_id(key, chunk) for chunk in parsed.document.chunks]
            ids.extend(new)
            metadatas.extend({**chunk.metadata, "source": key} for chunk in parsed.document.chunks)
            stale.extend(sorted(set(stored.get((key, path), [])) - set(new)))
            self.counts.chunks += len(new)
            self.counts.as_text += bool(parsed.document.meta.get("read_as_text"))
            if parsed.update:
                self.counts.updated += 1
            else:
                self.counts.added += 1
        if ids:
            collection.upsert(ids, vectors, [chunk.text for chunk in chunks], metadatas)
        if stale:  # after the new chunks are in: a crash between loses nothing
            collection.delete(stale)
        self.counts.done += len(pending)
        self.counts.timings["write"] += time.perf_counter() - started
        self.save(pending)

    def remove_missing(
        self, collection: AssetCollection, files: list[SourceFile], keys: set[str]
    ) -> None:
        present = {(f.source_key, f.path) for f in files}
        with session_scope(self.engine) as session:
            gone = [
                doc
                for doc in session.exec(
                    select(Document).where(
                        Document.asset_id == self.asset_id, col(Document.source_key).in_(keys)
                    )
                )
                if (doc.source_key, doc.path) not in present
            ]
            for doc in gone:
                collection.delete(collection.ids_where(source=doc.source_key, path=doc.path))
                session.delete(doc)
            self.counts.removed = len(gone)

    def run(self) -> IngestionJob:
        source, asset, collection = self.load()
        self.asset_id, self.source = asset.id, source
        shutil.rmtree(self.work, ignore_errors=True)  # left behind by a run that crashed
        self.root = Path(source.location)
        if source.origin == "upload":
            with Session(self.engine) as session:
                self.root = upload_folder(session, source, self.work)
        files = list(source_files(source, self.root, self.limits, self.work))
        self.entries.update(f.on_disk for f in files)
        keys = {f.source_key for f in files}
        with Session(self.engine) as session:
            known = {
                (doc.source_key, doc.path): doc.content_hash
                for doc in session.exec(
                    select(Document).where(
                        Document.asset_id == asset.id, col(Document.source_key).in_(keys)
                    )
                )
            }
        self.counts.total = len(files)
        self.save(force=True)

        parser = _Parser(files, known, source.kind, self.limits)
        parser.start()
        pending: list[_Parsed] = []
        try:
            while (item := parser.outcomes.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                self._count(item, pending)
                if sum(len(p.document.chunks) for p in pending) >= self.batch_chunks:
                    self.write(collection, pending)
                    pending = []
                else:
                    self.save()
                if self.cancelled:
                    break
            if pending and not self.cancelled:
                self.write(collection, pending)
            if not self.cancelled:
                self.remove_missing(collection, files, keys)
            changed = self.counts.added or self.counts.updated or self.counts.removed
            # A job that died after writing chunks left the BM25 index behind: catch it up
            # (and one saved by an older Vouch lacks what the index now holds).
            lexical = self.lexical.get(asset.collection)
            behind = len(lexical) != collection.count() or lexical.version < LEXICAL_FORMAT
            if changed or behind:
                rebuilt = self.rebuild_lexical(collection, asset.collection)
                self.reindex_verified(asset, rebuilt.abbreviations)
        finally:
            parser.stop.set()
            while parser.is_alive():  # let a blocked put() through, then the thread ends
                with contextlib.suppress(queue.Empty):
                    parser.outcomes.get(timeout=0.1)
        return self.finish()

    def rebuild_lexical(self, collection: AssetCollection, name: str) -> LexicalIndex:
        started = time.perf_counter()
        built = LexicalIndex.build(collection.records())
        self.lexical.replace(name, built)
        self.counts.timings["lexical"] = time.perf_counter() - started
        return built

    def reindex_verified(self, asset: Asset, abbreviations: Abbreviations) -> None:
        """Index the asset's verified questions again in their contracted forms where the
        abbreviations it defines changed them (it embeds nothing when none did)."""
        with Session(self.engine) as session:
            review.reindex_verified(
                session,
                asset=asset,
                index=self.index,
                embedder=self.embedder,
                abbreviations=abbreviations,
            )

    def _count(self, outcome: _Outcome, pending: list[_Parsed]) -> None:
        self.counts.timings["read_parse"] += outcome.seconds
        record = {"path": outcome.file.path}
        if outcome.parsed is not None:
            pending.append(outcome.parsed)
            return
        self.counts.done += 1
        if outcome.unchanged:
            self.counts.skipped += 1
        elif outcome.excluded is not None:
            self.counts.excluded.append({**record, "reason": outcome.excluded})
            self.dropped[outcome.file.on_disk] += 1
        elif outcome.failed is not None:
            self.counts.failures.append({**record, "reason": outcome.failed})
            self.dropped[outcome.file.on_disk] += 1

    def finish(self, error: str | None = None) -> IngestionJob:
        counts = self.counts
        written = counts.added + counts.updated
        if error is None and not self.cancelled:
            if counts.total == 0:
                error = "the source holds no files"
            elif counts.failures and written == 0 and counts.skipped == 0:
                error = "no file could be ingested"
        with session_scope(self.engine) as session:
            job = session.get(IngestionJob, self.job_id)
            if job is None:
                raise JobNotFound(f"job {self.job_id} disappeared")
            counts.apply(job)
            if self.cancelled:
                job.status = JobStatus.cancelled
            else:
                job.status = JobStatus.failed if error else JobStatus.succeeded
            job.error = error
            job.finished_at = utcnow()
            session.add(job)
        self.discard_dropped_uploads()
        self.notify(job)
        return job

    def discard_dropped_uploads(self) -> None:
        # Only whole files none of whose entries was ingested: a resumed job needs the rest.
        if self.source is None or self.source.origin != "upload":
            return
        dropped = [path for path, n in self.dropped.items() if n == self.entries[path]]
        names = [
            p.relative_to(self.root).as_posix() for p in dropped if p.is_relative_to(self.root)
        ]
        with session_scope(self.engine) as session:
            discard_uploads(session, self.source, names)
        discard_upload_files(self.root, dropped)


def _upsert_document(session: Session, asset_id: str, parsed: _Parsed) -> None:
    row = session.exec(
        select(Document).where(
            Document.asset_id == asset_id,
            Document.source_key == parsed.file.source_key,
            Document.path == parsed.file.path,
        )
    ).first()
    row = row or Document(
        asset_id=asset_id,
        source_key=parsed.file.source_key,
        path=parsed.file.path,
        kind=parsed.document.kind,
        content_hash="",
        chunk_count=0,
    )
    row.kind = parsed.document.kind
    row.content_hash = parsed.hash
    row.chunk_count = len(parsed.document.chunks)
    row.meta = _plain(parsed.document.meta)
    row.updated_at = utcnow()
    session.add(row)


def _plain(meta: dict[str, Any]) -> dict[str, Any]:
    # Only JSON-friendly values; a reader's meta is informational.
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | list | dict)}


def run_job(
    engine: Engine,
    *,
    job_id: str,
    index: VectorIndex,
    embedder: Embedder,
    limits: IngestSettings,
    lexical: LexicalStore,
    work_dir: Path,
    batch_chunks: int = 64,
    on_progress: ProgressCallback | None = None,
) -> IngestionJob:
    """Ingest a claimed (running) job's source into its asset and finish the job.

    Per-file problems are recorded (excluded or failed) and the rest go on; a cancel request is
    honoured between batches. When anything changed, the asset's BM25 index is rebuilt from
    its collection. Anything else marks the job failed with the error's class and
    message, and is raised again. Archives are unpacked in ``work_dir/<job id>``, which is
    removed when the job ends.
    """
    work = work_dir / job_id
    run = _Run(
        engine, job_id, index, embedder, limits, batch_chunks, on_progress or _ignore, lexical,
        work,
    )  # fmt: skip
    try:
        return run.run()
    except Exception as exc:
        run.finish(error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ignore(_job: IngestionJob) -> None:
    pass
