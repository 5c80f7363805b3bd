"""Archives and links in local sources (what `vouch ingest` reads): unpacked only under the data
dir and removed after the job, re-ingested by member content, unsafe entries and links named."""

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from sqlmodel import Session

from app import querying
from app.runtime import Runtime
from assets.models import Asset
from core.db import session_scope
from ingestion import pipeline, service
from ingestion.models import IngestionJob, JobStatus
from tests.factories import HANDBOOK, Actor, ingest_path

# SQLite only: unpacking archives safely, on the file system.

OLD = "within 14 days of the return arriving"
NEW = "within 45 days of the return arriving"
LINKS_NOT_FOLLOWED = "links are not followed"


def _handbook(policies: str | None = None) -> dict[str, bytes]:
    files = {
        name: (HANDBOOK / name).read_bytes()
        for name in ("policies.md", "delivery.txt", "tools/pricing.py")
    }
    if policies is not None:
        files["policies.md"] = policies.encode()
    return files


def _write_archive(
    path: Path, files: dict[str, bytes], links: dict[str, str] | None = None
) -> Path:
    """A real archive at ``path`` (its suffix says which kind) of these files and symbolic links."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
            for name, target in (links or {}).items():
                link = zipfile.ZipInfo(name)
                link.external_attr = 0o120777 << 16  # what `zip --symlinks` writes
                zf.writestr(link, target)
        return path
    compressed = path.name.endswith((".tar.gz", ".tgz"))
    with tarfile.open(path, "w:gz") if compressed else tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def _texts(runtime: Runtime, asset: Asset) -> list[str]:
    return [text for _, text, _ in runtime.index.collection(asset.collection).records()]


def _work_left(runtime: Runtime) -> list[Path]:
    work = runtime.settings.work_path
    return sorted(work.rglob("*")) if work.exists() else []


@pytest.fixture
def mine(tmp_path: Path) -> Path:
    """A folder of the user's own, where the archive lives."""
    folder = tmp_path / "mine"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "name", ["handbook.tar", "handbook.tar.gz", "handbook.tgz", "handbook.zip"]
)
def test_changed_archive_reingests_the_changed_member_and_leaves_nothing_behind(
    runtime: Runtime, expert: Actor, asset: Asset, mine: Path, name: str
) -> None:
    archive = _write_archive(mine / name, _handbook())
    first = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
    assert (first.status, first.documents_added) == (JobStatus.succeeded, 3)
    assert sorted(mine.iterdir()) == [archive]  # nothing written beside the source
    assert _work_left(runtime) == []

    policies = (HANDBOOK / "policies.md").read_text()
    assert OLD in policies
    _write_archive(archive, _handbook(policies.replace(OLD, NEW)))
    second = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
    assert (
        second.documents_added,
        second.documents_updated,
        second.documents_skipped,
        second.documents_removed,
    ) == (0, 1, 2, 0)
    with Session(runtime.engine) as session:
        found = querying.search(
            session, runtime, account=expert.account, slug=asset.slug,
            query="how many days until a refund is paid back to the card", k=1,
        )  # fmt: skip
    assert NEW in found[0].text
    assert not any(OLD in text for text in _texts(runtime, asset))

    third = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
    assert (third.documents_added, third.documents_updated, third.documents_skipped) == (0, 0, 3)
    assert third.chunks_written == 0
    assert sorted(mine.iterdir()) == [archive]
    assert _work_left(runtime) == []


@pytest.mark.parametrize("name", ["unsafe.tar.gz", "unsafe.zip"])
def test_unsafe_entries_are_named_in_failed_and_the_rest_ingests(
    runtime: Runtime, expert: Actor, asset: Asset, mine: Path, name: str
) -> None:
    files = {
        "../evil.txt": b"Written beside the archive, if it could be.",
        "/abs.md": b"# Absolute\n\nWritten at the root, if it could be.",
        "policies.md": (HANDBOOK / "policies.md").read_bytes(),
    }
    archive = _write_archive(mine / name, files)
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
    assert job.status == JobStatus.succeeded
    assert job.documents_added == 1
    assert job.failures == [
        {"path": "../evil.txt", "reason": "paths may not contain '..'"},
        {"path": "/abs.md", "reason": "absolute paths are not allowed"},
    ]
    assert sorted(mine.iterdir()) == [archive]
    assert not (mine.parent / "evil.txt").exists()
    assert _work_left(runtime) == []


def test_failed_job_leaves_no_work_folder(
    runtime: Runtime, expert: Actor, asset: Asset, mine: Path
) -> None:
    archive = _write_archive(mine / "broken.tar.gz", {"paper.pdf": b"%PDF-1.7\n1 0 obj <<\n cut"})
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
    assert job.status == JobStatus.failed
    assert job.error == "no file could be ingested"
    assert [f["path"] for f in job.failures] == ["paper.pdf"]
    assert sorted(mine.iterdir()) == [archive]
    assert _work_left(runtime) == []


def _claimed(runtime: Runtime, asset: Asset, expert: Actor, path: Path) -> str:
    with session_scope(runtime.engine) as session:
        job = service.submit_local(session, asset=asset, account_id=expert.account.id, path=path)
        assert service.claim_job(session, job.id)
    return job.id


def test_cancelled_job_leaves_no_work_folder(
    runtime: Runtime, expert: Actor, asset: Asset, mine: Path
) -> None:
    archive = _write_archive(mine / "handbook.tgz", _handbook())
    job_id = _claimed(runtime, asset, expert, archive)
    seen: list[list[Path]] = []

    def cancel_once_started(job: IngestionJob) -> None:
        seen.append(_work_left(runtime))
        if job.documents_done and job.status == JobStatus.running and not job.cancel_requested:
            with session_scope(runtime.engine) as session:
                service.cancel_job(session, service.get_job(session, job_id))

    job = pipeline.run_job(
        runtime.engine, job_id=job_id, index=runtime.index, embedder=runtime.embedder,
        limits=runtime.settings.ingest, lexical=runtime.lexical,
        work_dir=runtime.settings.work_path, batch_chunks=1, on_progress=cancel_once_started,
    )  # fmt: skip
    assert job.status == JobStatus.cancelled
    assert any(seen)  # the archive was unpacked under the data dir while the job ran...
    assert all(path.is_relative_to(runtime.settings.work_path / job_id) for path in seen[0])
    assert _work_left(runtime) == []  # ...and that folder is gone now
    assert sorted(mine.iterdir()) == [archive]


def test_work_folder_left_by_a_crashed_run_is_removed_when_the_job_runs_again(
    runtime: Runtime, expert: Actor, asset: Asset, mine: Path
) -> None:
    archive = _write_archive(mine / "handbook.tar", _handbook())
    job_id = _claimed(runtime, asset, expert, archive)
    # What a worker killed while unpacking leaves behind.
    stale = runtime.settings.work_path / job_id / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "1").write_text("# Stale\n\nHalf of an earlier unpacking.\n")

    job = pipeline.run_job(
        runtime.engine, job_id=job_id, index=runtime.index, embedder=runtime.embedder,
        limits=runtime.settings.ingest, lexical=runtime.lexical,
        work_dir=runtime.settings.work_path,
    )  # fmt: skip
    assert (job.status, job.documents_added) == (JobStatus.succeeded, 3)
    assert not any("Stale" in text for text in _texts(runtime, asset))
    assert _work_left(runtime) == []


class TestLinks:
    def test_zip_symbolic_links_are_listed_as_excluded(
        self, runtime: Runtime, expert: Actor, asset: Asset, mine: Path
    ) -> None:
        archive = _write_archive(
            mine / "links.zip",
            {"policies.md": (HANDBOOK / "policies.md").read_bytes()},
            links={"passwd.md": "../etc/passwd", "docs/shadow.md": "/etc/shadow"},
        )
        job = ingest_path(runtime, asset=asset, owner=expert.account, path=archive)
        assert (job.status, job.documents_added) == (JobStatus.succeeded, 1)
        assert job.excluded == [
            {
                "path": "passwd.md",
                "reason": f"symbolic link to ../etc/passwd: {LINKS_NOT_FOLLOWED}",
            },
            {
                "path": "docs/shadow.md",
                "reason": f"symbolic link to /etc/shadow: {LINKS_NOT_FOLLOWED}",
            },
        ]
        assert not any("root:" in text for text in _texts(runtime, asset))

    def test_tar_symbolic_and_hard_links_are_listed_as_excluded_and_never_created(
        self, runtime: Runtime, expert: Actor, asset: Asset, mine: Path
    ) -> None:
        archive = mine / "links.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(HANDBOOK / "policies.md", arcname="policies.md")
            symbolic = tarfile.TarInfo("passwd.md")
            symbolic.type = tarfile.SYMTYPE
            symbolic.linkname = "../etc/passwd"
            tar.addfile(symbolic)
            hard = tarfile.TarInfo("copy.md")
            hard.type = tarfile.LNKTYPE
            hard.linkname = "policies.md"
            tar.addfile(hard)
            fifo = tarfile.TarInfo("pipe")
            fifo.type = tarfile.FIFOTYPE
            tar.addfile(fifo)
        job_id = _claimed(runtime, asset, expert, archive)
        made: set[tuple[Path, str]] = set()  # what the work folder held while the job ran

        def look(_job: IngestionJob) -> None:
            for path in _work_left(runtime):
                kind = "link" if path.is_symlink() else "folder" if path.is_dir() else "file"
                made.add((path, kind))

        job = pipeline.run_job(
            runtime.engine, job_id=job_id, index=runtime.index, embedder=runtime.embedder,
            limits=runtime.settings.ingest, lexical=runtime.lexical,
            work_dir=runtime.settings.work_path, on_progress=look,
        )  # fmt: skip
        assert (job.status, job.documents_added) == (JobStatus.succeeded, 1)
        assert job.excluded == [
            {
                "path": "passwd.md",
                "reason": f"symbolic link to ../etc/passwd: {LINKS_NOT_FOLLOWED}",
            },
            {"path": "copy.md", "reason": f"hard link to policies.md: {LINKS_NOT_FOLLOWED}"},
            {"path": "pipe", "reason": "named pipe: not a regular file"},
        ]
        # Only the one regular file was unpacked, and no link was made.
        assert sorted(kind for _, kind in made if kind != "folder") == ["file"]
        assert _work_left(runtime) == []

    def test_folder_symbolic_links_are_listed_and_hard_links_read_as_files(
        self, runtime: Runtime, expert: Actor, asset: Asset, tmp_path: Path, corpus: Path
    ) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.md").write_text("# Secret\n\nThe vault code is 1234.\n")
        os.symlink("../outside/secret.md", corpus / "secret.md")
        os.symlink(outside, corpus / "elsewhere")  # a link to a folder
        os.link(corpus / "delivery.txt", corpus / "shipping.txt")
        os.mkfifo(corpus / "pipe")

        job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
        assert job.status == JobStatus.succeeded
        assert job.excluded == [
            {"path": "elsewhere", "reason": f"symbolic link to {outside}: {LINKS_NOT_FOLLOWED}"},
            {"path": "pipe", "reason": "named pipe: not a regular file"},
            {
                "path": "secret.md",
                "reason": f"symbolic link to ../outside/secret.md: {LINKS_NOT_FOLLOWED}",
            },
        ]
        assert job.documents_added == 4  # the handbook's three files and the hard link
        assert not any("vault code" in text for text in _texts(runtime, asset))
