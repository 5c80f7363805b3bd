"""Vouch scaled out, as deploy/compose.yaml deploys it: PostgreSQL, a Chroma server, Redis, two
`vouch serve` replicas and one `vouch worker`, each Vouch process with a data dir of its own.

The Vouch services run with the commands and environment of the compose file, as local
processes (only addresses, ports and data dirs differ): an upload through one replica is
ingested by the worker and searched, exact and BM25 hits, from the other; 40 asks for one
wallet spread over both replicas are charged exactly; a replica killed during a burst loses
nothing (its clients retry on the other with the same Idempotency-Key).
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.embeddings import MiniLMEmbedder
from assets.models import Consultation
from billing import ledger
from billing import service as billing
from billing.models import Charge
from core.config import ChromaSettings, Settings
from core.db import session_scope
from tests.factories import HANDBOOK, create_actor, create_test_asset, review_record
from tests.servers import free_port, new_postgres_database, wait_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("VOUCH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("VOUCH_TEST_REDIS_URL")
PRICE = 25

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (POSTGRES_URL and REDIS_URL),
        reason="needs VOUCH_TEST_POSTGRES_URL and VOUCH_TEST_REDIS_URL",
    ),
]


@dataclass
class Cluster:
    database_url: str
    root: Path
    chroma_port: int
    queue: str = field(default_factory=lambda: f"cluster-{uuid.uuid4().hex}")
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def env(self, service: dict[str, Any], name: str) -> dict[str, str]:
        """The service's compose environment, its addresses pointed at the local services."""
        here = {
            "VOUCH_DATABASE_URL": self.database_url,
            "VOUCH_CHROMA__HOST": "127.0.0.1",
            "VOUCH_CHROMA__PORT": str(self.chroma_port),
            "VOUCH_QUEUE__REDIS_URL": REDIS_URL,
            "VOUCH_BILLING__RATE_LIMIT_REDIS_URL": REDIS_URL,
            "VOUCH_AUTH__SECRET_KEY": self.secret,
            "VOUCH_DATA_DIR": str(self.root / name),
        }
        declared = service["environment"]
        assert set(here) <= set(declared), "the compose file no longer sets these"
        env = {key: str(here.get(key, value)) for key, value in declared.items()}
        # A queue of its own in the shared Redis; asks are not what is rate limited here.
        env |= {"VOUCH_QUEUE__NAME": self.queue, "VOUCH_BILLING__ASKS_PER_MINUTE": "1000"}
        return {**os.environ, **env}

    def start(self, services: dict[str, Any], name: str) -> None:
        command = [str(BIN / services[name]["command"][0]), *services[name]["command"][1:]]
        if "serve" in command:
            self.ports[name] = free_port()
            command[command.index("--host") + 1] = "127.0.0.1"
            command[command.index("--port") + 1] = str(self.ports[name])
        with (self.root / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                command, env=self.env(services[name], name), stdout=log, stderr=subprocess.STDOUT
            )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    assert POSTGRES_URL is not None
    with new_postgres_database(POSTGRES_URL, "vouch_cluster") as url:
        yield from _running(url, tmp_path)


def _running(url: str, tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    cluster = Cluster(url, tmp_path, free_port())
    chroma = [str(BIN / "chroma"), *services["chroma"]["command"][1:]]
    chroma[chroma.index("--path") + 1] = str(tmp_path / "chroma")
    chroma[chroma.index("--host") + 1] = "127.0.0.1"
    chroma[chroma.index("--port") + 1] = str(cluster.chroma_port)
    with (tmp_path / "chroma.log").open("wb") as log:
        cluster.processes["chroma"] = subprocess.Popen(chroma, stdout=log, stderr=log)
    try:
        cluster.start(services, "migrate")
        assert cluster.processes["migrate"].wait(timeout=120) == 0, cluster.log("migrate")
        for service in ("api-1", "api-2", "worker"):
            cluster.start(services, service)
        wait_for(lambda: _up(f"http://127.0.0.1:{cluster.chroma_port}/api/v2/heartbeat"))
        for api in ("api-1", "api-2"):
            wait_for(partial(_up, f"{cluster.url(api)}/healthz"), timeout=120)
        yield cluster, services
    finally:
        for process in cluster.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in cluster.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _runtime(cluster: Cluster, embedder: MiniLMEmbedder) -> Runtime:
    """This test's own view of the cluster's database and Chroma, to set up accounts."""
    settings = Settings(
        data_dir=cluster.root / "test",
        database_url=cluster.database_url,
        chroma=ChromaSettings(host="127.0.0.1", port=cluster.chroma_port),
    )
    return Runtime(settings, embedder=embedder)


def _balances(runtime: Runtime, account_id: str) -> tuple[int, int, int, int]:
    """The client's credits, consultations and charges (count, sum), from the database."""
    with Session(runtime.engine) as session:
        charges = session.exec(select(Charge).where(Charge.account_id == account_id)).all()
        consultations = session.exec(
            select(Consultation).where(Consultation.account_id == account_id)
        ).all()
        return (
            ledger.balance(session, ledger.credits(account_id), "usd"),
            len(consultations),
            len(charges),
            sum(charge.amount for charge in charges),
        )


def _ledger_balances(runtime: Runtime) -> None:
    with Session(runtime.engine) as session:
        totals: dict[str, int] = {}
        for (_, currency), amount in ledger.balances(session).items():
            totals[currency] = totals.get(currency, 0) + amount
    assert set(totals.values()) <= {0}, totals


def test_two_replicas_a_worker_and_shared_services(
    cluster: tuple[Cluster, dict[str, Any]], embedder: MiniLMEmbedder
) -> None:
    nodes, _ = cluster
    runtime = _runtime(nodes, embedder)
    try:
        expert = create_actor(runtime, role="expert")
        client = create_actor(runtime, role="client")
        asset = create_test_asset(runtime, owner=expert.account, slug="garden")
        with session_scope(runtime.engine) as session:
            billing.set_plan(session, asset_id=asset.id, terms=billing.PlanTerms(per_query=PRICE))
        review_record(runtime, "garden", stood=200)  # its answers are final, their money held
        one, other = nodes.url("api-1"), nodes.url("api-2")

        # An upload through one replica, ingested by the worker (the replicas run no jobs).
        files = [
            ("files", ("policies.md", (HANDBOOK / "policies.md").read_bytes())),
            ("files", ("tools/pricing.py", (HANDBOOK / "tools" / "pricing.py").read_bytes())),
        ]
        uploaded = httpx.post(
            f"{one}/v1/assets/garden/sources", files=files, headers=expert.headers, timeout=60
        )
        assert uploaded.status_code == 202, uploaded.text
        job = f"{other}/v1/jobs/{uploaded.json()['job_id']}"

        def ingested() -> bool:
            status = httpx.get(job, headers=expert.headers, timeout=10).json()["status"]
            assert status not in ("failed", "cancelled"), nodes.log("worker")
            return bool(status == "succeeded")

        wait_for(ingested, timeout=180)

        # The other replica, which neither received the upload nor ran the job, finds the
        # exact symbol and the BM25 side (a path filter is answered from the lexical index).
        def search(**body: Any) -> list[dict[str, Any]]:
            found = httpx.post(
                f"{other}/v1/assets/garden/search",
                json={"k": 3, **body},
                headers=expert.headers,
                timeout=30,
            )
            assert found.status_code == 200, found.text
            return list(found.json()["results"])

        seen: list[list[dict[str, Any]]] = []

        def exact_hit() -> bool:
            seen.append(search(query="LoyaltyCard.points_for"))
            return bool(seen[-1]) and seen[-1][0]["locator"].get("symbol") == "LoyaltyCard"

        try:
            wait_for(exact_hit, timeout=10)
        except AssertionError as exc:
            raise AssertionError(f"{seen[-1:]}\n{nodes.log('api-2')}") from exc
        # (each top folder of an upload is a source of its own: its files' paths start inside it)
        in_tools = search(query="loyalty points for a purchase", path_prefix="pricing")
        assert {hit["locator"]["path"] for hit in in_tools} == {"pricing.py"}
        copy = nodes.root / "api-2" / "lexical" / asset.collection / "version"
        assert copy.read_text() == "1"

        # 40 asks for one wallet that pays for 30, spread over both replicas at once.
        with session_scope(runtime.engine) as session:
            billing.grant_credits(
                session, account_id=client.account.id, amount=30 * PRICE, currency="usd",
                key="grant-1",
            )  # fmt: skip

        def ask(n: int, replicas: tuple[str, ...]) -> int:
            for base in replicas:
                try:
                    answered = httpx.post(
                        f"{base}/v1/assets/garden/ask",
                        json={"question": "How are loyalty points counted?"},
                        headers={**client.headers, "Idempotency-Key": f"ask-{n}"},
                        timeout=120,
                    )
                except httpx.TransportError:
                    continue  # this replica is gone: the same request to the next one
                if answered.status_code < 500:
                    return answered.status_code
            raise AssertionError(f"ask {n} found no replica")

        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(lambda n: ask(n, ((one, other)[n % 2],)), range(40)))
        assert sorted(statuses) == [200] * 30 + [402] * 10
        assert _balances(runtime, client.account.id) == (0, 30, 30, 30 * PRICE)
        _ledger_balances(runtime)

        # One replica killed during a burst: its clients retry on the other, nothing is lost
        # and nothing is charged twice.
        with session_scope(runtime.engine) as session:
            billing.grant_credits(
                session, account_id=client.account.id, amount=20 * PRICE, currency="usd",
                key="grant-2",
            )  # fmt: skip
        with ThreadPoolExecutor(max_workers=20) as pool:
            burst = [pool.submit(ask, n, (one, other)) for n in range(100, 120)]
            time.sleep(0.3)
            nodes.processes["api-1"].send_signal(signal.SIGKILL)
            statuses = [future.result() for future in burst]
        assert nodes.processes["api-1"].wait(timeout=10) == -signal.SIGKILL
        assert statuses == [200] * 20
        assert _balances(runtime, client.account.id) == (0, 50, 50, 50 * PRICE)
        _ledger_balances(runtime)
        # Each answered ask is one consultation with one charge.
        with Session(runtime.engine) as session:
            charged = session.exec(select(Charge.consultation_id)).all()
            assert len(set(charged)) == len(charged) == 50
    finally:
        runtime.close()
