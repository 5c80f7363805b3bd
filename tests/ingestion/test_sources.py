"""Sources end to end: git work trees, tar archives, what is left out, re-ingest, cancel, crash."""

import io
import shutil
import subprocess
import tarfile
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from app import querying
from app.runtime import Runtime
from assets.models import Asset
from core.clock import utcnow
from core.db import session_scope
from ingestion import pipeline, service
from ingestion.errors import InvalidUpload, JobFinished
from ingestion.files import local_source_files
from ingestion.models import Document, IngestionJob, JobStatus
from ingestion.readers import read_document
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path


@pytest.fixture
def asset(runtime: Runtime, expert: Actor) -> Asset:
    return create_test_asset(runtime, owner=expert.account, slug="garden")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(HANDBOOK, target)
    return target


def _expected_ids(runtime: Runtime, root: Path) -> set[str]:
    """The chunk ids a fresh ingest of ``root`` would write, computed from the files alone."""
    ids = set()
    for file in local_source_files(root.resolve(), runtime.settings.ingest):
        try:
            parsed = read_document(file.path, file.read())
        except Exception:  # excluded or failed files have no chunks
            continue
        ids |= {pipeline.chunk_id(file.source_key, chunk) for chunk in parsed.chunks}
    return ids


def _stored_ids(runtime: Runtime, asset: Asset) -> set[str]:
    collection = runtime.index.collection(asset.collection)
    return (
        set(collection.ids_where(kind="text"))
        | set(collection.ids_where(kind="code"))
        | set(collection.ids_where(kind="regulation"))
        | set(collection.ids_where(kind="paper"))
    )


def _report(runtime: Runtime, job: IngestionJob) -> dict[str, object]:
    with Session(runtime.engine) as session:
        return querying.job_public(session, job)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ada@example.com", "-c", "user.name=Ada", *args],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip


def test_git_work_tree_respects_gitignore_and_records_the_commit(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    (corpus / ".gitignore").write_text("secrets/\n*.log\n")
    (corpus / "secrets").mkdir()
    (corpus / "secrets" / "keys.md").write_text("# Keys\n\nThe vault code is 1234.\n")
    (corpus / "debug.log").write_text("noise\n")
    _git(corpus, "init", "-q")
    _git(corpus, "add", ".")
    _git(corpus, "commit", "-qm", "first")
    (corpus / "notes.md").write_text("# Notes\n\nUntracked but not ignored: ingested.\n")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=corpus, capture_output=True, text=True, check=True
    ).stdout.strip()

    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    report = _report(runtime, job)
    assert report["commit"] == commit
    with Session(runtime.engine) as session:
        paths = {d.path for d in session.exec(select(Document))}
    assert paths == {"policies.md", "delivery.txt", "tools/pricing.py", "notes.md"}
    assert {e["path"] for e in job.excluded} == {".gitignore"}
    assert _stored_ids(runtime, asset) == _expected_ids(runtime, corpus)


def test_reingest_after_edit_delete_and_add_leaves_exactly_the_right_chunks(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path, session: Session
) -> None:
    first = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert (first.documents_added, first.documents_updated, first.documents_removed) == (3, 0, 0)

    policies = corpus / "policies.md"
    policies.write_text(policies.read_text().replace("14 days", "30 days"))
    (corpus / "delivery.txt").unlink()
    (corpus / "returns.md").write_text("# Returns\n\nReturn items within 60 days.\n")
    second = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)

    assert (
        second.documents_added,
        second.documents_updated,
        second.documents_skipped,
        second.documents_removed,
    ) == (1, 1, 1, 1)
    assert _stored_ids(runtime, asset) == _expected_ids(runtime, corpus)
    documents = session.exec(select(Document).where(Document.asset_id == asset.id)).all()
    assert {d.path for d in documents} == {"policies.md", "tools/pricing.py", "returns.md"}
    collection = runtime.index.collection(asset.collection)
    assert collection.count() == sum(d.chunk_count for d in documents)


def test_files_left_out_are_listed_with_their_reason(
    runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    (root / "vendor" / "lib").mkdir(parents=True)
    (root / "vendor" / "lib" / "dep.py").write_text("def dep():\n    return 1\n")
    (root / "api_pb2.py").write_text("# generated protobuf\nX = 1\n")
    (root / "gen.go").write_text("// Code generated by stringer. DO NOT EDIT.\npackage x\n")
    (root / "app.js").write_text("var a=1;" * 350 + "\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "big.md").write_text("# Big\n\n" + "word " * 1000)
    (root / "main.py").write_text("def main():\n    return 'hello'\n")
    small = runtime.settings.ingest.model_copy(update={"max_file_bytes": 3000})
    runtime.settings.ingest = small

    job = ingest_path(runtime, asset=asset, owner=expert.account, path=root)
    reasons = {e["path"]: e["reason"] for e in job.excluded}
    assert reasons == {
        "vendor/lib/dep.py": "vendored or build folder vendor/",
        "api_pb2.py": "generated file (by its name)",
        "gen.go": "generated file (says so in its first lines)",
        "app.js": "minified file (very long lines)",
        "logo.png": "binary file type (.png)",
        "big.md": "5007 bytes, over the 3000 byte limit",
    }
    assert job.documents_added == 1
    assert job.failures == []


async def test_tar_gz_upload_is_unpacked_safely(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("policies.md", "tools/pricing.py"):
            tar.add(HANDBOOK / name, arcname=f"handbook/{name}")
        link = tarfile.TarInfo("handbook/escape.md")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        fifo = tarfile.TarInfo("handbook/pipe")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files={"files": ("handbook.tar.gz", buffer.getvalue())},
        headers=expert.headers,
    )
    assert response.status_code == 202, response.text
    job = (await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)).json()
    assert job["status"] == "succeeded"
    assert job["added"] == 2
    assert job["failed"] == []
    unpacked = list(runtime.settings.uploads_path.rglob("*"))
    assert not any(p.is_symlink() for p in unpacked)
    assert not any(p.name in ("escape.md", "pipe") for p in unpacked)


@pytest.mark.parametrize(
    ("members", "needle"),
    [
        ({"../outside.md": b"# x\n\ny"}, "'..'"),
        ({"/abs.md": b"# x\n\ny"}, "absolute"),
    ],
)
async def test_unsafe_tar_is_refused_and_nothing_stored(
    client: httpx.AsyncClient,
    expert: Actor,
    asset: Asset,
    runtime: Runtime,
    members: dict[str, bytes],
    needle: str,
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files={"files": ("bad.tgz", buffer.getvalue())},
        headers=expert.headers,
    )
    assert response.status_code == 422
    assert needle in response.json()["detail"]
    assert not runtime.settings.uploads_path.exists() or not any(
        runtime.settings.uploads_path.iterdir()
    )


def test_tar_bomb_is_refused_before_unpacking(
    runtime: Runtime, expert: Actor, asset: Asset, session: Session
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        zeros = runtime.settings.ingest.max_unpacked_bytes + 1
        info = tarfile.TarInfo("zeros.txt")
        info.size = zeros
        tar.addfile(info, io.BytesIO(bytes(zeros)))
    assert len(buffer.getvalue()) < 1_000_000
    with pytest.raises(InvalidUpload, match="unpacks to more than"):
        querying.submit_upload(
            session, runtime, account=expert.account, slug=asset.slug,
            files=[("bomb.tar.gz", buffer.getvalue())], kind="auto",
        )  # fmt: skip


def test_queued_job_cancelled_never_runs(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    with session_scope(runtime.engine) as session:
        job = service.submit_local(session, asset=asset, account_id=expert.account.id, path=corpus)
    with session_scope(runtime.engine) as session:
        cancelled = service.cancel_job(session, service.get_job(session, job.id))
        assert cancelled.status == JobStatus.cancelled
    runtime.queue.enqueue_ingest(job.id)
    with Session(runtime.engine) as session:
        assert service.get_job(session, job.id).documents_done == 0
        with pytest.raises(JobFinished, match="nothing to cancel"):
            service.cancel_job(session, service.get_job(session, job.id))
    assert runtime.index.collection(asset.collection).count() == 0


def _queued_job(runtime: Runtime, asset: Asset, expert: Actor, path: Path) -> str:
    with session_scope(runtime.engine) as session:
        job = service.submit_local(session, asset=asset, account_id=expert.account.id, path=path)
        assert service.claim_job(session, job.id)
    return job.id


def test_running_job_stops_after_a_batch_when_cancelled(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    job_id = _queued_job(runtime, asset, expert, corpus)

    def cancel_once_started(job: IngestionJob) -> None:
        if job.documents_done and job.status == JobStatus.running and not job.cancel_requested:
            with session_scope(runtime.engine) as session:
                service.cancel_job(session, service.get_job(session, job_id))

    job = pipeline.run_job(
        runtime.engine, job_id=job_id, index=runtime.index, embedder=runtime.embedder,
        limits=runtime.settings.ingest, lexical=runtime.lexical, batch_chunks=1,
        on_progress=cancel_once_started,
    )  # fmt: skip
    assert job.status == JobStatus.cancelled
    assert 0 < job.documents_done < job.documents_total
    # What was written is consistent, and a new ingest finishes the work without duplicates.
    again = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert again.documents_skipped == job.documents_done
    assert _stored_ids(runtime, asset) == _expected_ids(runtime, corpus)


class WorkerDied(BaseException):
    """Stands for the process being killed: nothing after it runs, not even error handling."""


def test_job_of_a_dead_worker_is_requeued_and_resumes_without_duplicates(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    job_id = _queued_job(runtime, asset, expert, corpus)

    def die_after_first_document(job: IngestionJob) -> None:
        if job.documents_done:
            raise WorkerDied

    with pytest.raises(WorkerDied):
        pipeline.run_job(
            runtime.engine, job_id=job_id, index=runtime.index, embedder=runtime.embedder,
            limits=runtime.settings.ingest, lexical=runtime.lexical, batch_chunks=1,
            on_progress=die_after_first_document,
        )  # fmt: skip
    with session_scope(runtime.engine) as session:
        assert service.get_job(session, job_id).status == JobStatus.running
        assert service.requeue_stale(session) == []  # its heartbeat is fresh
        # Two minutes and more pass without a heartbeat.
        session.execute(
            update(IngestionJob)
            .where(col(IngestionJob.id) == job_id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    assert runtime.queue.requeue_stale() == [job_id]  # the immediate queue runs it now
    with Session(runtime.engine) as session:
        job = service.get_job(session, job_id)
    assert job.status == JobStatus.succeeded
    assert job.documents_skipped >= 1  # resumed: what was written before is not redone
    assert _stored_ids(runtime, asset) == _expected_ids(runtime, corpus)


async def test_cancel_over_http_is_for_the_owner_and_unfinished_jobs(
    client: httpx.AsyncClient,
    expert: Actor,
    expert_second: Actor,
    asset: Asset,
    runtime: Runtime,
    corpus: Path,
) -> None:
    with session_scope(runtime.engine) as session:
        queued = service.submit_local(
            session, asset=asset, account_id=expert.account.id, path=corpus
        )
    stranger = await client.post(f"/v1/jobs/{queued.id}/cancel", headers=expert_second.headers)
    assert stranger.status_code == 404
    cancelled = await client.post(f"/v1/jobs/{queued.id}/cancel", headers=expert.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/v1/jobs/{queued.id}/cancel", headers=expert.headers)
    assert again.status_code == 409
    assert again.json()["error"] == "JobFinished"


async def test_zip_symlink_entries_are_never_followed(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("policies.md", (HANDBOOK / "policies.md").read_bytes())
        link = zipfile.ZipInfo("passwd.md")
        link.external_attr = 0o120777 << 16  # a symbolic link to /etc/passwd
        zf.writestr(link, "/etc/passwd")
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files={"files": ("links.zip", buffer.getvalue())},
        headers=expert.headers,
    )
    job = (await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)).json()
    assert job["status"] == "succeeded"
    assert job["documents_total"] == 1
    hits = runtime.index.collection(asset.collection).ids_where(path="passwd.md")
    assert hits == []
