"""The server holds against a client that tries to freeze it or fill its disk, on a real uvicorn
server: no request blocks the event loop, bodies are refused before they cost anything, the
process answers /healthz throughout and stops on SIGTERM."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.runtime import Runtime
from billing import service as billing
from core.config import IngestSettings, QueueSettings, Settings
from core.db import session_scope
from tests.factories import Actor, create_actor, create_test_asset
from tests.servers import free_port, wait_for

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
GIB = 1024**3


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder where the server would spool what it reads of a body."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        queue=QueueSettings(immediate=True),
        ingest=IngestSettings(max_upload_bytes=2 * 1024 * 1024),
    )


def _tree_bytes(*roots: Path) -> int:
    total = 0
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                with contextlib.suppress(OSError):  # a file removed while we walk
                    total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _endless_upload() -> Iterator[bytes]:
    """A chunked multipart body that never ends."""
    yield _chunked(
        b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.md"\r\n\r\n'
    )
    while True:
        yield _chunked(b"# words\n" * 8192)


def _send_until_answered(
    base: str, head: str, body: Iterator[bytes] | None = None, *, most: int = 512 * 1024 * 1024
) -> tuple[bytes, int]:
    """Send ``head``, then the body (by default: filler bytes) until the server answers or
    ``most`` bytes went out; returns the answer's first bytes and the body bytes sent."""
    host, port = base.removeprefix("http://").split(":")
    filler = b"x" * 65536
    pieces = body if body is not None else iter(lambda: filler, None)
    sent = 0
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        pending = b""
        while sent < most:
            try:
                answer = sock.recv(4096)
                break
            except BlockingIOError:
                pass
            if not pending:
                pending = next(pieces, b"")
                if not pending:
                    break
            try:
                n = sock.send(pending)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += n
            pending = pending[n:]
        sock.setblocking(True)
        sock.settimeout(30)
        while not answer.endswith(b"}") and len(answer) < 4096:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    return answer, sent


class TestUploadsRefusedBeforeRead:
    def test_anonymous_gigabyte_is_refused_before_it_is_read(
        self, live_server: tuple[str, Runtime], spool: Path
    ) -> None:
        base, runtime = live_server
        before = _tree_bytes(spool, runtime.settings.data_dir)
        head = (
            "POST /v1/assets/anything/sources HTTP/1.1\r\nHost: vouch.test\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {GIB}\r\n\r\n"
        )
        answer, sent = _send_until_answered(base, head)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert sent < 64 * 1024 * 1024  # refused long before the gigabyte went out
        grown = _tree_bytes(spool, runtime.settings.data_dir) - before
        assert grown < 1024 * 1024

    def test_the_owners_gigabyte_is_refused_by_its_length(
        self, live_server: tuple[str, Runtime], spool: Path
    ) -> None:
        base, runtime = live_server
        owner = create_actor(runtime, role="expert")
        create_test_asset(runtime, owner=owner.account, slug="owned")
        before = _tree_bytes(spool, runtime.settings.data_dir)
        head = (
            "POST /v1/assets/owned/sources HTTP/1.1\r\nHost: vouch.test\r\n"
            f"Authorization: Bearer {owner.key}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {GIB}\r\n\r\n"
        )
        answer, sent = _send_until_answered(base, head)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"the upload is larger than the 2097152 byte limit" in answer
        assert sent < 64 * 1024 * 1024
        grown = _tree_bytes(spool, runtime.settings.data_dir) - before
        assert grown < 1024 * 1024

    def test_anonymous_stream_without_length_is_refused_before_it_is_read(
        self, live_server: tuple[str, Runtime], spool: Path
    ) -> None:
        base, runtime = live_server
        before = _tree_bytes(spool, runtime.settings.data_dir)
        head = (
            "POST /v1/assets/anything/sources HTTP/1.1\r\nHost: vouch.test\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        answer, sent = _send_until_answered(base, head, _endless_upload())
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert sent < 64 * 1024 * 1024
        grown = _tree_bytes(spool, runtime.settings.data_dir) - before
        assert grown < 1024 * 1024

    def test_a_stranger_to_the_asset_is_refused_before_the_body_is_read(
        self, live_server: tuple[str, Runtime]
    ) -> None:
        base, runtime = live_server
        owner = create_actor(runtime, role="expert")
        stranger = create_actor(runtime, role="expert")
        create_test_asset(runtime, owner=owner.account, slug="owned")
        head = (
            "POST /v1/assets/owned/sources HTTP/1.1\r\nHost: vouch.test\r\n"
            f"Authorization: Bearer {stranger.key}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        answer, sent = _send_until_answered(base, head, _endless_upload())
        assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        assert sent < 64 * 1024 * 1024

    def test_the_owners_stream_is_cut_off_at_the_limit(
        self, live_server: tuple[str, Runtime]
    ) -> None:
        base, runtime = live_server
        owner = create_actor(runtime, role="expert")
        create_test_asset(runtime, owner=owner.account, slug="owned")

        head = (
            "POST /v1/assets/owned/sources HTTP/1.1\r\nHost: vouch.test\r\n"
            f"Authorization: Bearer {owner.key}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        answer, sent = _send_until_answered(base, head, _endless_upload())
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"byte limit" in answer
        assert sent < 64 * 1024 * 1024
        assert not any(runtime.settings.uploads_path.glob("*/*"))


async def test_a_json_body_over_the_limit_is_refused_by_its_length(
    client: httpx.AsyncClient, client_user: Actor
) -> None:
    big = b'{"question": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/assets/anything/ask",
        content=big,
        headers={**client_user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "PayloadTooLarge",
        "detail": "the request body is larger than the 1048576 byte limit",
    }


def _grant(runtime: Runtime, actor: Actor, amount: int) -> None:
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=amount, currency="usd", key="race"
        )


@pytest.mark.both_databases
async def test_fund_and_deliver_pdf_race_never_freezes_the_server(
    live_server: tuple[str, Runtime],
) -> None:
    """The probe's freeze: a milestone funded (wallet lock, then milestone lock) while its
    expert delivers a PDF, fifty times; /healthz answers all the while. A freeze waits on locks
    and pooled connections for tens of seconds; five seconds tells it from a machine busy with
    other tests (one second did not, with the suite's other worker on the other core)."""
    base, runtime = live_server
    client_user = create_actor(runtime, role="client")
    expert = create_actor(runtime, role="expert")
    _grant(runtime, client_user, 10_000_000)
    late: list[str] = []
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def watch() -> None:
            while not done.is_set():
                try:
                    health = await http.get("/healthz", timeout=5.0)
                    assert health.status_code == 200
                except httpx.TimeoutException as exc:
                    late.append(repr(exc))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        outcomes: set[tuple[int, int]] = set()
        for n in range(50):
            eng = await http.post(
                "/v1/engagements",
                json={
                    "expert_id": expert.account.id,
                    "title": f"Review {n}",
                    "scope": "Review the payment service.",
                    "deliverable": "A report",
                    "milestones": [{"title": "All of it", "amount": 1000}],
                },
                headers=client_user.headers,
            )
            assert eng.status_code == 201, eng.text
            path = f"/v1/engagements/{eng.json()['id']}"
            accepted = await http.post(f"{path}/accept", headers=expert.headers)
            assert accepted.status_code == 200, accepted.text
            milestone = f"{path}/milestones/{eng.json()['milestones'][0]['id']}"
            fund, deliver = await asyncio.gather(
                http.post(f"{milestone}/fund", headers=client_user.headers),
                http.post(
                    f"{milestone}/deliver-pdf",
                    files={"file": ("report.pdf", PDF, "application/pdf")},
                    data={"report": "Attached."},
                    headers=expert.headers,
                ),
            )
            assert fund.status_code == 200, fund.text
            assert deliver.status_code in (200, 409), deliver.text
            outcomes.add((fund.status_code, deliver.status_code))
        done.set()
        await watcher
    assert late == []
    assert (200, 200) in outcomes or (200, 409) in outcomes


class TestHealth:
    async def test_healthz_and_readyz_answer(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready"
        assert set(body["checks"]) == {"database", "queue", "index"}
        assert all(check["ok"] for check in body["checks"].values())

    async def test_readyz_is_503_with_the_reason_when_the_database_is_down(
        self, tmp_path: Path, embedder: object
    ) -> None:
        from app.main import create_app

        down = Settings(
            environment="test",
            data_dir=tmp_path,
            database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
            queue=QueueSettings(immediate=True),
        )
        runtime = Runtime(down, embedder=embedder)  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=create_app(down, runtime=runtime))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                assert (await http.get("/healthz")).status_code == 200
                ready = await http.get("/readyz")
        finally:
            runtime.close()
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not ready"
        assert not body["checks"]["database"]["ok"]
        assert "OperationalError" in body["checks"]["database"]["error"]
        assert body["checks"]["queue"]["ok"]

    async def test_a_wrong_method_is_405_with_allow(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/v1/assets")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.json()["error"] == "MethodNotAllowed"


@pytest.mark.slow
def test_sigterm_drains_and_exits_within_ten_seconds(tmp_path: Path) -> None:
    """``vouch serve`` with a request still arriving and the queue's threads running: SIGTERM
    drains and ends the process within ten seconds."""
    port = free_port()
    env = {
        **os.environ,
        "VOUCH_DATA_DIR": str(tmp_path / "data"),
        "VOUCH_SERVER__SHUTDOWN_GRACE_SECONDS": "3",
    }
    env.pop("VOUCH_DATABASE_URL", None)
    vouch = str(Path(sys.executable).parent / "vouch")
    subprocess.run([vouch, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [vouch, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60)
        # A request whose body never ends, from a client that never gives up.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(
            b"POST /v1/me HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n'
        )
        time.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then ends by the signal it caught (exit status -15).
        assert server.wait(timeout=10) in (0, -signal.SIGTERM)
        assert server.stderr is not None
        log = server.stderr.read().decode()
        assert "Application shutdown complete" in log
        assert "Traceback" not in log
        slow.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
