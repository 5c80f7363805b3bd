"""Running ingestion jobs on local folders: counts, idempotence, changed files, claims."""

import os
import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Asset
from core.db import session_scope
from ingestion import service
from ingestion.errors import InvalidSource
from ingestion.models import Document
from tests.factories import HANDBOOK, Actor, ingest_path


def _chunks_by_path(runtime: Runtime, asset: Asset, session: Session) -> dict[str, int]:
    collection = runtime.index.collection(asset.collection)
    documents = session.exec(select(Document).where(Document.asset_id == asset.id)).all()
    found = {d.path: len(collection.ids_where(path=d.path)) for d in documents}
    assert found == {d.path: d.chunk_count for d in documents}
    assert collection.count() == sum(found.values())
    return found


def test_directory_ingest_counts_every_chunk_once(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path, session: Session
) -> None:
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert job.status == "succeeded"
    assert (job.documents_total, job.documents_done, job.documents_skipped) == (3, 3, 0)
    chunks = _chunks_by_path(runtime, asset, session)
    assert set(chunks) == {"policies.md", "delivery.txt", "tools/pricing.py"}
    assert job.chunks_written == sum(chunks.values())
    assert job.started_at is not None
    assert job.finished_at is not None


@pytest.mark.both_databases
def test_reingest_skips_unchanged_and_replaces_changed(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path, session: Session
) -> None:
    ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    collection = runtime.index.collection(asset.collection)
    old_ids = set(collection.ids_where(path="policies.md"))
    unchanged_ids = set(collection.ids_where(path="delivery.txt"))

    policies = corpus / "policies.md"
    policies.write_text(
        policies.read_text().replace("within 14 days", "within 30 days")
        + "\n## Gift cards\n\nGift cards are valid for three years.\n"
    )
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert (job.documents_done, job.documents_skipped) == (3, 2)
    new_ids = set(collection.ids_where(path="policies.md"))
    texts = "\n".join(collection_texts(runtime, asset, "policies.md"))
    assert "30 days" in texts
    assert "14 days" not in texts
    assert "Gift cards" in texts
    # Unchanged sections keep their ids; changed ones are replaced, never duplicated.
    assert old_ids & new_ids
    assert old_ids - new_ids
    assert set(collection.ids_where(path="delivery.txt")) == unchanged_ids
    _chunks_by_path(runtime, asset, session)


def collection_texts(runtime: Runtime, asset: Asset, path: str) -> list[str]:
    collection = runtime.index.collection(asset.collection)
    hits = collection.query(runtime.embedder.embed(["refund"])[0], collection.count())
    return [hit.text for hit in hits if hit.metadata["path"] == path]


def test_forcing_kind_text_rechunks_python_as_text(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    ingest_path(runtime, asset=asset, owner=expert.account, path=corpus / "tools")
    job = ingest_path(
        runtime, asset=asset, owner=expert.account, path=corpus / "tools", kind="text"
    )
    assert job.documents_skipped == 0  # the kind is part of the document's hash
    hits = runtime.index.collection(asset.collection).query(
        runtime.embedder.embed(["loyalty points"])[0], 10
    )
    assert {hit.metadata["kind"] for hit in hits} == {"text"}
    assert {hit.metadata["symbol"] for hit in hits} == {""}


def test_kind_code_reads_the_trees_prose_as_text_and_says_so(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    (corpus / "docs").mkdir()
    (corpus / "docs" / "guide.rst").write_text("Guide\n=====\n\nRefunds take five days.\n")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus, kind="code")
    assert job.status == "succeeded"
    assert job.failures == []
    assert job.documents_as_text == 3  # policies.md, delivery.txt, docs/guide.rst
    with Session(runtime.engine) as session:
        assert service.job_public(session, job)["read_as_text"] == 3
        kinds = {d.path: d.kind for d in session.exec(select(Document))}
    assert kinds["docs/guide.rst"] == kinds["policies.md"] == "text"
    assert kinds["tools/pricing.py"] == "code"
    hits = runtime.index.collection(asset.collection).query(
        runtime.embedder.embed(["refunds take five days"])[0], 1
    )
    assert hits[0].metadata["path"] == "docs/guide.rst"


def test_files_without_an_extension_are_read_when_they_are_text(
    runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "CHANGES").write_text("Version 2.0\n\nRefunds now take three days.\n")
    (root / "AUTHORS").write_text("Ada Lovelace\nGrace Hopper\n")
    (root / "Makefile").write_text("test:\n\tpytest\n")
    (root / "runner").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    (root / "blob").write_bytes(bytes(range(128, 256)) * 4)
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=root)
    assert job.status == "succeeded"
    assert job.documents_added == 3
    assert job.failures == []
    assert {e["path"]: e["reason"] for e in job.excluded} == {
        "runner": "binary content (NUL bytes)",
        "blob": "no extension, and its bytes are not text",
    }
    hits = runtime.index.collection(asset.collection).query(
        runtime.embedder.embed(["refunds now take three days"])[0], 1
    )
    assert hits[0].metadata["path"] == "CHANGES"


def test_hidden_folders_symlinks_and_caches_are_not_followed_and_listed(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nThe vault code is 1234.\n")
    os.symlink(secret, corpus / "linked.md")
    os.symlink(tmp_path, corpus / "linked-dir")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.md").write_text("# git\n\ninternal\n")
    (corpus / "__pycache__").mkdir()
    (corpus / "__pycache__" / "x.py").write_text("x = 1\n")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert job.documents_added == 3
    assert {(e["path"], e["reason"]) for e in job.excluded} == {
        (".git/notes.md", "hidden folder .git/"),
        ("__pycache__/x.py", "vendored or build folder __pycache__/"),
        ("linked.md", f"symbolic link to {secret}: links are not followed"),
        ("linked-dir", f"symbolic link to {tmp_path}: links are not followed"),
    }
    hits = runtime.index.collection(asset.collection).query(
        runtime.embedder.embed(["vault code"])[0], 20
    )
    assert all("1234" not in hit.text for hit in hits)


def test_empty_source_fails_with_a_reason(
    runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=empty)
    assert job.status == "failed"
    assert job.error == "the source holds no files"


@pytest.mark.both_databases
def test_a_job_runs_once_even_if_queued_twice(
    runtime: Runtime, expert: Actor, asset: Asset, corpus: Path
) -> None:
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    with session_scope(runtime.engine) as session:
        assert service.claim_job(session, job.id) is False
    runtime.queue.enqueue_ingest(job.id)  # a duplicate delivery changes nothing
    with Session(runtime.engine) as session:
        assert service.get_job(session, job.id).chunks_written == job.chunks_written


def test_missing_local_path_is_refused(
    runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path
) -> None:
    with pytest.raises(InvalidSource, match="does not exist"):
        ingest_path(runtime, asset=asset, owner=expert.account, path=tmp_path / "nope")


def test_local_zip_archive_is_read_member_by_member(
    runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path, session: Session
) -> None:
    archive = tmp_path / "handbook.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", HANDBOOK)
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
    assert job.status == "succeeded"
    assert set(_chunks_by_path(runtime, asset, session)) == {
        "policies.md",
        "delivery.txt",
        "tools/pricing.py",
    }
