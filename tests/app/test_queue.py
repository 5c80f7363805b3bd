"""Jobs run through the real task queue: consumer threads inside the server, or `vouch worker`."""

import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from sqlmodel import Session

from app.runtime import Runtime
from core.config import Settings
from core.db import make_engine
from ingestion.models import IngestionJob
from tests.app.shell import Shell
from tests.factories import HANDBOOK, create_actor, create_test_asset
from tests.servers import wait_for

VOUCH = str(Path(sys.executable).parent / "vouch")


@pytest.mark.both_databases
def test_server_consumer_threads_run_uploaded_jobs(live_server: tuple[str, Runtime]) -> None:
    base, runtime = live_server
    expert = create_actor(runtime, role="expert")
    create_test_asset(runtime, owner=expert.account, slug="garden")
    with httpx.Client(base_url=base, headers=expert.headers, timeout=30) as http:
        response = http.post(
            "/v1/assets/garden/sources",
            files={"files": ("policies.md", (HANDBOOK / "policies.md").read_bytes())},
        )
        assert response.status_code == 202
        job_id = response.json()["job_id"]

        def finished() -> bool:
            return bool(http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded")

        wait_for(finished)
        assert http.get(f"/v1/jobs/{job_id}").json()["chunks"] > 0


REDIS_URL = os.environ.get("VOUCH_TEST_REDIS_URL", "")


@pytest.mark.parametrize(
    "queue",
    [
        "sqlite",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(not REDIS_URL, reason="VOUCH_TEST_REDIS_URL is not set"),
        ),
    ],
)
def test_standalone_worker_runs_jobs_queued_by_the_cli(
    settings: Settings, tmp_path: Path, queue: str
) -> None:
    """The CLI queues the job (in this process); the installed `vouch worker`, a process of its
    own, runs it."""
    shell = Shell(settings.data_dir, None)
    if queue == "redis":  # a queue of its own in the shared Redis
        shell.env |= {
            "VOUCH_QUEUE__REDIS_URL": REDIS_URL,
            "VOUCH_QUEUE__NAME": f"test-{uuid4().hex}",
        }
    env = {**os.environ, **shell.env}

    shell.run("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "expert")
    shell.run("asset", "create", "--owner", "ada@example.com", "--slug", "garden", "--title", "G")
    queued = shell.run("ingest", "garden", str(HANDBOOK)).stdout
    assert "queued" in queued
    job_id = queued.split()[1].rstrip(":")

    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [VOUCH, "worker", "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        engine = make_engine(settings.sqlalchemy_url)

        def finished() -> bool:
            with Session(engine) as session:
                job = session.get(IngestionJob, job_id)
                return job is not None and job.status == "succeeded"

        wait_for(finished, timeout=120)
        engine.dispose()
        # The job went through Redis, or through the queue file in the data dir.
        assert (settings.data_dir / "queue.db").exists() == (queue == "sqlite")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
