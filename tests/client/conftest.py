"""A running Vouch server with the demo loaded (``app.demo``: the *Vouch handbook* asset built
from docs/, priced 0.25 USD a question, a client with 10.00 USD of credits), for the client
package ``vouch_client`` (clients/python) to talk to over real HTTP."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from vouch_client import AsyncVouch, PlanIn, Vouch

from app import accounts, demo
from app.models import Account
from app.runtime import Runtime
from billing import ledger
from billing.models import Charge, SearchCharge
from core.config import Settings
from core.db import session_scope
from ingestion.models import IngestionJob
from tests.conftest import DataTemplates
from tests.factories import create_actor, review_record
from tests.servers import ROOT

SLUG = demo.SLUG
PRICE = 25  # the demo's price of a question, in cents
assert demo.PLAN.per_query == PRICE
SEARCH_PRICE = 3  # what a client's search of the demo costs, in cents
assert demo.PLAN.per_search == SEARCH_PRICE
QUESTION = "How are API keys stored?"


@dataclass
class Demo:
    """The server, its runtime, and the demo's keys: its client, the asset's expert, and a
    client of one's own made on demand (``new_client``)."""

    base: str
    runtime: Runtime
    client_key: str
    expert_key: str
    client_id: str
    opened: list[Vouch] = field(default_factory=list)

    def vouch(self, key: str | None = None, **options: Any) -> Vouch:
        client = Vouch(self.client_key if key is None else key, base_url=self.base, **options)
        self.opened.append(client)
        return client

    def async_vouch(self, key: str | None = None, **options: Any) -> AsyncVouch:
        return AsyncVouch(self.client_key if key is None else key, base_url=self.base, **options)

    def new_client(self) -> tuple[str, str]:
        """A client account without credits: its (account id, API key)."""
        actor = create_actor(self.runtime, role="client")
        return actor.account.id, actor.key

    def credits(self, account_id: str | None = None) -> int:
        """Credits in the ledger (not through the API), minor units."""
        with Session(self.runtime.engine) as session:
            return ledger.balance(session, ledger.credits(account_id or self.client_id), "usd")

    def price_searches(self, per_search: int | None) -> None:
        """The expert keeps the demo's plan but prices a client's search at ``per_search``
        (None: passages not sold; the demo sells them at SEARCH_PRICE)."""
        expert = self.vouch(self.expert_key)
        plan = expert.plan(SLUG)
        assert plan is not None
        terms = plan.model_dump(exclude={"id", "asset", "per_search"})
        assert expert.set_plan(SLUG, PlanIn(**terms, per_search=per_search)).per_search == (
            per_search
        )

    def search_charges(self, account_id: str | None = None) -> list[SearchCharge]:
        """The account's search charges in the database."""
        account_id = account_id or self.client_id
        with Session(self.runtime.engine) as session:
            return list(
                session.exec(select(SearchCharge).where(SearchCharge.account_id == account_id))
            )

    def charges(self, account_id: str | None = None) -> list[Charge]:
        """The account's charges in the database."""
        account_id = account_id or self.client_id
        with Session(self.runtime.engine) as session:
            return list(session.exec(select(Charge).where(Charge.account_id == account_id)))


@pytest.fixture
def asks_per_minute() -> int:
    return 60


@dataclass(frozen=True)
class DemoKeys:
    """The keys `vouch demo` made: its client's, and one of the asset's expert."""

    client_key: str
    expert_key: str
    client_id: str


def _load_demo(runtime: Runtime) -> DemoKeys:
    summary = demo.load(runtime, corpus=ROOT / "docs", run_job=lambda job: _job(runtime, job))
    assert summary.job["status"] == "succeeded", summary.job
    # A record of answers that stood, as in test_openai_compat: answers are final and held.
    review_record(runtime, SLUG, stood=200)
    with session_scope(runtime.engine) as session:
        expert = session.exec(select(Account).where(Account.email == demo.LOGINS[0][0])).one()
        client = session.exec(select(Account).where(Account.email == demo.LOGINS[1][0])).one()
        _, expert_key = accounts.create_api_key(session, account=expert, label="test")
        return DemoKeys(summary.client_key, expert_key, client.id)


@pytest.fixture
def demo_keys(settings: Settings, data_templates: DataTemplates) -> DemoKeys:
    """The demo, loaded once per worker; each test's server starts on a copy of its own."""
    root, keys = data_templates.get("demo", _load_demo)
    data_templates.copy_into(root, settings)
    return keys


@pytest.fixture
def settings(settings: Settings, asks_per_minute: int) -> Settings:
    billing = settings.billing.model_copy(update={"asks_per_minute": asks_per_minute})
    return settings.model_copy(update={"billing": billing})


def _job(runtime: Runtime, job_id: str) -> IngestionJob:
    """The demo's ingestion job, run inline on commit by the immediate queue."""
    with Session(runtime.engine) as session:
        found = session.get(IngestionJob, job_id)
        assert found is not None
        return found


@pytest.fixture
def served(demo_keys: DemoKeys, live_server: tuple[str, Runtime]) -> Iterator[Demo]:
    """`vouch demo` on a running server: its asset ingested from docs/, priced, published."""
    base, runtime = live_server
    served = Demo(base, runtime, demo_keys.client_key, demo_keys.expert_key, demo_keys.client_id)
    yield served
    for opened in served.opened:
        opened.close()


@dataclass
class Proxy:
    """A relay in front of the server that forwards the first ask (or search) and then loses its
    answer: the server answered and charged, the client heard nothing (``drop``: the connection
    closes) or a 503 with Retry-After (``unavailable``: a proxy's own failure).
    ``asks`` are the Idempotency-Keys of the asks and searches that came through."""

    url: str
    failure: str = "drop"
    asks: list[str | None] = field(default_factory=list)


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target = ""
    state: Proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        answer = httpx.request(
            self.command, self.target + self.path, content=body, headers=headers, timeout=120
        )
        if self.path.endswith(("/ask", "/search")):
            self.state.asks.append(self.headers.get("Idempotency-Key"))
            if len(self.state.asks) == 1 and self.state.failure == "drop":
                self.close_connection = True
                return
            if len(self.state.asks) == 1:
                answer = httpx.Response(503, headers={"Retry-After": "0"}, text="upstream lost")
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _HOP | {"content-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)


_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@pytest.fixture
def proxy_failure(request: pytest.FixtureRequest) -> str:
    """Parametrize indirectly with ``unavailable`` for a 503 instead of a dropped connection."""
    return str(getattr(request, "param", "drop"))


@pytest.fixture
def proxy(served: Demo, proxy_failure: str) -> Iterator[Proxy]:
    state = Proxy(url="", failure=proxy_failure)
    handler = type("Relay", (_Relay,), {"target": served.base, "state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
