"""Uploading sources over HTTP: what ingests, what is reported per file, what is refused."""

import io
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Asset
from core.db import session_scope
from ingestion import service as ingestion
from ingestion.models import Document, IngestionJob, Source, UploadFile
from ingestion.tasks import run_ingest
from tests.factories import HANDBOOK, Actor


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _stored(session: Session, uploads: Path) -> tuple[int, int, int, list[Path]]:
    files = sorted(uploads.rglob("*")) if uploads.exists() else []
    return (
        len(session.exec(select(Source)).all()),
        len(session.exec(select(IngestionJob)).all()),
        len(session.exec(select(Document)).all()),
        files,
    )


async def test_upload_ingests_files_and_zip_and_reports_failures_per_file(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime, session: Session
) -> None:
    archive = _zip(
        {
            "docs/policies.md": (HANDBOOK / "policies.md").read_bytes(),
            "tools/pricing.py": (HANDBOOK / "tools" / "pricing.py").read_bytes(),
            "tools/broken.py": b"\x00\x00\x89PNG binary",
        }
    )
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files=[
            ("files", ("handbook.zip", archive)),
            ("files", ("delivery.txt", (HANDBOOK / "delivery.txt").read_bytes())),
            ("files", ("latin1.md", "# Menu\n\nCafé crème brûlée à la carte.\n".encode("cp1252"))),
            ("files", ("photo.png", b"\x89PNG\r\n")),
            ("files", ("broken.pdf", b"%PDF-1.7\n1 0 obj <<\n truncated")),
        ],
        headers=expert.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    job = (await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)).json()
    assert job["status"] == "succeeded"
    assert job["documents"] == 4
    assert job["documents_total"] == job["documents_done"] == 7
    assert job["percent"] == 100
    failed = {f["path"]: f["reason"] for f in job["failed"]}
    assert set(failed) == {"broken.pdf"}
    assert "corrupt PDF" in failed["broken.pdf"]
    excluded = {f["path"]: f["reason"] for f in job["excluded"]}
    assert set(excluded) == {"tools/broken.py", "photo.png"}
    assert "binary" in excluded["tools/broken.py"]
    assert "binary file type (.png)" in excluded["photo.png"]

    documents = session.exec(select(Document).where(Document.asset_id == asset.id)).all()
    assert {d.path for d in documents} == {
        "docs/policies.md",
        "tools/pricing.py",
        "delivery.txt",
        "latin1.md",
    }
    # The legacy encoding was detected, not refused.
    hits = runtime.index.collection(asset.collection).query(
        runtime.embedder.embed(["crème brûlée"])[0], 1
    )
    assert "Café crème brûlée" in hits[0].text
    collection = runtime.index.collection(asset.collection)
    assert collection.count() == sum(d.chunk_count for d in documents) == job["chunks"]


@pytest.mark.both_databases
async def test_same_upload_twice_writes_nothing_new(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime
) -> None:
    files = [("files", ("policies.md", (HANDBOOK / "policies.md").read_bytes()))]
    first = await client.post(
        f"/v1/assets/{asset.slug}/sources", files=files, headers=expert.headers
    )
    collection = runtime.index.collection(asset.collection)
    count = collection.count()
    ids = collection.ids_where(path="policies.md")
    second = await client.post(
        f"/v1/assets/{asset.slug}/sources", files=files, headers=expert.headers
    )
    job = (await client.get(f"/v1/jobs/{second.json()['job_id']}", headers=expert.headers)).json()
    assert first.status_code == second.status_code == 202
    assert (job["documents"], job["skipped"], job["chunks"]) == (0, 1, 0)
    assert collection.count() == count
    assert sorted(collection.ids_where(path="policies.md")) == sorted(ids)


@pytest.mark.parametrize(
    ("files", "status", "needle"),
    [
        ([], 422, "files"),
        ([("files", ("../escape.md", b"# x\n\ny"))], 422, "'..'"),
        ([("files", ("/etc/passwd.md", b"# x\n\ny"))], 422, "absolute"),
        ([("files", ("bad.zip", b"PK\x03\x04 not really a zip"))], 422, "not a valid zip"),
        (
            [("files", ("evil.zip", _zip({"../../outside.md": b"# pwned\n\nx"})))],
            422,
            "evil.zip: entry '../../outside.md': paths may not contain '..'",
        ),
        (
            [("files", ("evil.zip", _zip({"/etc/cron.d/x.md": b"# pwned\n\nx"})))],
            422,
            "evil.zip: entry '/etc/cron.d/x.md': absolute paths are not allowed",
        ),
    ],
)
async def test_bad_upload_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    expert: Actor,
    asset: Asset,
    runtime: Runtime,
    session: Session,
    files: list[tuple[str, tuple[str, bytes]]],
    status: int,
    needle: str,
) -> None:
    before = _stored(session, runtime.settings.uploads_path)
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files=files or None,
        data={} if files else {"kind": "auto"},
        headers=expert.headers,
    )
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]
    assert _stored(session, runtime.settings.uploads_path) == before
    assert runtime.index.collection(asset.collection).count() == 0


async def test_zip_bomb_is_refused_before_unpacking(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime, session: Session
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.txt", b"0" * (runtime.settings.ingest.max_unpacked_bytes + 1))
    assert len(buffer.getvalue()) < 1_000_000  # small on the wire
    before = _stored(session, runtime.settings.uploads_path)
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files={"files": ("bomb.zip", buffer.getvalue())},
        headers=expert.headers,
    )
    assert response.status_code == 422
    assert "unpacks to" in response.json()["detail"]
    assert _stored(session, runtime.settings.uploads_path) == before


async def test_upload_over_the_size_limit_is_413(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime, session: Session
) -> None:
    limit = runtime.settings.ingest.max_upload_bytes
    runtime.settings.ingest.max_upload_bytes = 1000
    try:
        response = await client.post(
            f"/v1/assets/{asset.slug}/sources",
            files={"files": ("big.md", b"# big\n\n" + b"x" * 2000)},
            headers=expert.headers,
        )
    finally:
        runtime.settings.ingest.max_upload_bytes = limit
    assert response.status_code == 413
    assert "1000 byte limit" in response.json()["detail"]
    assert _stored(session, runtime.settings.uploads_path)[:3] == (0, 0, 0)


async def test_unknown_kind_is_refused(
    client: httpx.AsyncClient, expert: Actor, asset: Asset
) -> None:
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files={"files": ("a.md", b"# a\n\ntext")},
        data={"kind": "poetry"},
        headers=expert.headers,
    )
    assert response.status_code == 422
    assert "auto, code, regulation, paper, text" in response.json()["detail"]


def _upload_folder(session: Session, job_id: str) -> Path:
    job = session.get(IngestionJob, job_id)
    assert job is not None
    source = session.get(Source, job.source_id)
    assert source is not None
    return Path(source.location)


async def test_refused_and_excluded_upload_files_are_deleted_when_the_job_ends(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, session: Session
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files=[
            ("files", ("policies.md", (HANDBOOK / "policies.md").read_bytes())),
            ("files", ("model.bin", bytes(range(256)) * 12_000)),  # 3 MB, over the file limit
            ("files", ("broken.pdf", b"%PDF-1.7\n1 0 obj <<\n truncated")),
            ("files", ("mixed.zip", _zip({"pricing.py": (HANDBOOK / "tools" / "pricing.py")
                                           .read_bytes(), "logo.png": png}))),
            ("files", ("images.zip", _zip({"logo.png": png, "icon.png": png}))),
            ("files", ("site/index.md", (HANDBOOK / "delivery.txt").read_bytes())),
            ("files", ("site/node_modules/dep/index.js", b"module.exports = 1;\n")),
        ],
        headers=expert.headers,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    job = (await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)).json()
    assert job["status"] == "succeeded"
    assert job["documents"] == 3
    assert {f["path"] for f in job["failed"]} == {"broken.pdf"}
    assert {f["path"] for f in job["excluded"]} == {
        "model.bin", "logo.png", "icon.png", "node_modules/dep/index.js",
    }  # fmt: skip

    folder = _upload_folder(session, job["job_id"])
    left = {p.relative_to(folder).as_posix(): p.is_dir() for p in folder.rglob("*")}
    # What was ingested stays for a resumed job, and so does an archive some of whose members
    # were; the rest is gone, folders it leaves empty too.
    assert left == {"policies.md": False, "mixed.zip": False, "site": True, "site/index.md": False}
    # So in the database, where a worker on another machine reads the upload from.
    source_id = session.exec(select(Source.id)).one()
    kept = session.exec(select(UploadFile.name).where(UploadFile.source_id == source_id)).all()
    assert sorted(kept) == ["mixed.zip", "policies.md", "site/index.md"]


@pytest.mark.both_databases
def test_a_worker_elsewhere_ingests_an_upload_from_the_database(
    runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path
) -> None:
    """The replica that received the upload stored it on its own disk, which the worker that
    runs the job does not have: the worker reads the files from the database."""
    replica_disk = tmp_path / "replica" / "uploads"
    with session_scope(runtime.engine) as session:
        job = ingestion.submit_upload(
            session,
            asset=asset,
            account_id=expert.account.id,
            files=[
                ("policies.md", (HANDBOOK / "policies.md").read_bytes()),
                (
                    "tools.zip",
                    _zip({"pricing.py": (HANDBOOK / "tools" / "pricing.py").read_bytes()}),
                ),
            ],
            kind="auto",
            uploads_dir=replica_disk,
            limits=runtime.settings.ingest,
        )
    shutil.rmtree(replica_disk)
    run_ingest(runtime.ingest_context(), job.id)
    with Session(runtime.engine) as session:
        done = session.get(IngestionJob, job.id)
        assert done is not None
        assert (done.status, done.error) == ("succeeded", None)
        paths = session.exec(select(Document.path).where(Document.asset_id == asset.id)).all()
    assert sorted(paths) == ["policies.md", "pricing.py"]
    assert not replica_disk.exists()  # nothing written where the worker has no business


async def test_upload_of_which_nothing_ingests_leaves_no_folder(
    client: httpx.AsyncClient, expert: Actor, asset: Asset, runtime: Runtime, session: Session
) -> None:
    response = await client.post(
        f"/v1/assets/{asset.slug}/sources",
        files=[
            ("files", ("broken.pdf", b"%PDF-1.7\n1 0 obj <<\n truncated")),
            ("files", ("photo.png", b"\x89PNG\r\n")),
        ],
        headers=expert.headers,
    )
    assert response.status_code == 202, response.text
    job = (await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)).json()
    assert job["status"] == "failed"
    assert job["error"] == "no file could be ingested"
    assert not _upload_folder(session, job["job_id"]).exists()
    assert not any(runtime.settings.uploads_path.iterdir())
