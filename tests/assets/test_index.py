"""The vector index on disk (the default) and on a Chroma server (VOUCH_CHROMA__HOST)."""

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import querying
from app.runtime import Runtime
from assets.embeddings import MiniLMEmbedder
from core.config import ChromaSettings, QueueSettings, Settings
from core.db import session_scope
from tests.factories import HANDBOOK, create_actor, create_test_asset, ingest_path
from tests.servers import free_port, wait_for

CHROMA = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    """Chroma's own server (the `chroma` command shipped with chromadb) on a free port."""
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    process = subprocess.Popen(
        [CHROMA, "run", "--path", str(tmp_path / "chroma-server"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up() -> bool:
        try:
            return httpx.get(f"http://localhost:{port}/api/v2/heartbeat").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=60)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_assets_live_on_a_chroma_server_when_a_host_is_set(
    settings: Settings, embedder: MiniLMEmbedder, chroma_server: int
) -> None:
    remote = settings.model_copy(
        update={
            "chroma": ChromaSettings(host="localhost", port=chroma_server),
            "queue": QueueSettings(immediate=True),
        }
    )
    runtime = Runtime(remote, embedder=embedder)
    expert = create_actor(runtime, role="expert")
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded"
    with session_scope(runtime.engine) as session:
        result = querying.ask(
            session,
            runtime,
            account=expert.account,
            slug="garden",
            question="How long does a refund take?",
        )
    assert "14 days" in result.consultation.answer
    # Nothing was written to the data dir's own Chroma folder.
    assert not remote.chroma_path.exists()
    runtime.close()
