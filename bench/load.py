"""Load: many clients asking while ingestion jobs run, against a real ``vouch serve`` on
PostgreSQL.

A fresh PostgreSQL database and data dir; ``vouch serve`` (its queue's consumer threads run the
ingestion) on a free port; an expert's asset, priced per question, ingested and published, and
``--clients`` clients with credits and keys. For ``--seconds``, every client asks in a loop
while ``--ingests`` uploads are kept being ingested (a new one starts when one ends). Then,
from the database: the ledger balances, every charge belongs to a consultation, and charges
match the answers the clients got.

    python bench/load.py [--clients 50] [--ingests 2] [--seconds 120]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Prints throughput, ask latency p50/p95, answers by status code, and the checks.
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, make_url, text
from sqlmodel import Session, col, select

from app import accounts
from assets.models import Consultation
from billing import ledger
from billing import service as billing
from billing.models import Charge
from core.db import make_engine, session_scope
from migrations import upgrade

DOCS = Path(__file__).resolve().parent.parent / "docs"
VOUCH = str(Path(sys.executable).parent / "vouch")
QUESTIONS = [
    "How are API keys stored?",
    "How long is money held in escrow?",
    "What happens when an answer is flagged?",
    "How do I ingest a git repository?",
    "Which kinds of sources can be ingested?",
    "How are citations located in code?",
    "What does vouch settle do?",
    "How are payouts made to experts?",
]
PRICE = 5  # cents a question


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _database(admin_url: str) -> str:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"vouch_load_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop(admin_url: str, url: str) -> None:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def _setup(url: str, clients: int) -> tuple[str, list[str]]:
    """An expert (key), and ``clients`` clients with credits for far more than they can ask."""
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        expert = accounts.create_account(
            session, email="expert@load.test", name="Expert", role="expert"
        )
        _, expert_key = accounts.create_api_key(session, account=expert)
        keys = []
        for n in range(clients):
            client = accounts.create_account(
                session, email=f"client{n}@load.test", name=f"Client {n}", role="client"
            )
            billing.grant_credits(
                session, account_id=client.id, amount=10**7, currency="usd", key=f"load-{n}"
            )
            keys.append(accounts.create_api_key(session, account=client)[1])
    engine.dispose()
    return expert_key, keys


def _upload(n: int) -> list[tuple[str, tuple[str, bytes]]]:
    """The handbook, made different each time, so that each job has work to do."""
    files = []
    for path in sorted(DOCS.glob("*.md")):
        text_ = path.read_text() + f"\n\n## Revision {n}\n\nThis is revision {n} of {path.stem}.\n"
        files.append(("files", (f"rev{n}/{path.name}", text_.encode())))
    return files


async def _ask_loop(
    http: httpx.AsyncClient, key: str, deadline: float, results: list[tuple[int, float]]
) -> None:
    n = 0
    while time.monotonic() < deadline:
        question = QUESTIONS[n % len(QUESTIONS)]
        n += 1
        started = time.perf_counter()
        try:
            response = await http.post(
                "/v1/assets/handbook/ask",
                json={"question": question},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex},
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0  # no answer at all
        results.append((status, time.perf_counter() - started))


async def _ingest(http: httpx.AsyncClient, key: str, n: int) -> str:
    """Upload revision ``n`` of the handbook and wait for its job; its final status."""
    headers = {"Authorization": f"Bearer {key}"}
    response = await http.post("/v1/assets/handbook/sources", files=_upload(n), headers=headers)
    if response.status_code != 202:
        return f"upload refused: {response.status_code} {response.text[:200]}"
    job_id = response.json()["job_id"]
    while True:
        job = (await http.get(f"/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return str(job["status"])
        await asyncio.sleep(0.5)


async def _ingest_loop(
    http: httpx.AsyncClient, key: str, deadline: float, first: int, step: int, done: list[str]
) -> None:
    n = first
    while time.monotonic() < deadline:
        done.append(await _ingest(http, key, n))
        n += step


async def _load(base: str, expert_key: str, keys: list[str], ingests: int, seconds: float) -> None:
    limits = httpx.Limits(max_connections=len(keys) + ingests + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        headers = {"Authorization": f"Bearer {expert_key}"}
        created = await http.post(
            "/v1/assets", json={"slug": "handbook", "title": "Handbook"}, headers=headers
        )
        assert created.status_code == 201, created.text
        plan = await http.put(
            "/v1/assets/handbook/plan", json={"per_query": PRICE}, headers=headers
        )
        assert plan.status_code == 200, plan.text
        first = await _ingest(http, expert_key, 0)  # before the clock: something to ask
        assert first == "succeeded", first
        # A new asset starts unpublished; priced and ingested, it can be published.
        published = await http.post("/v1/assets/handbook/publish", headers=headers)
        assert published.status_code == 200, published.text
        jobs: list[str] = []
        results: list[tuple[int, float]] = []
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(_ask_loop(http, key, deadline, results) for key in keys),
            *(
                _ingest_loop(http, expert_key, deadline, 1 + i, ingests, jobs)
                for i in range(ingests)
            ),
        )
        elapsed = time.monotonic() - started
    statuses = Counter(status for status, _ in results)
    answered = sorted(seconds_ for status, seconds_ in results if status == 200)
    print(f"{len(keys)} clients and {ingests} ingestion jobs at a time, {elapsed:.0f} s")
    print(f"answers by status: {dict(sorted(statuses.items()))}")
    print(f"throughput: {len(answered) / elapsed:.1f} answers/s")
    if answered:
        p50 = statistics.median(answered) * 1000
        p95 = answered[int(0.95 * (len(answered) - 1))] * 1000
        print(f"ask latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    print(f"ingestion jobs ended during the run: {dict(Counter(jobs))}")
    server_errors = sum(n for status, n in statuses.items() if status >= 500 or status == 0)
    print(f"server errors (5xx or no answer): {server_errors}")
    _LOADED["answered"] = len(answered)


_LOADED: dict[str, int] = {}


def _checks(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        unbalanced = ledger.unbalanced_transactions(session)
        charges = session.exec(select(func.count()).select_from(Charge)).one()
        orphans = session.exec(
            select(func.count())
            .select_from(Charge)
            .outerjoin(Consultation, col(Consultation.id) == Charge.consultation_id)
            .where(col(Consultation.id).is_(None))
        ).one()
        paid = session.exec(
            select(func.count()).select_from(Charge).where(col(Charge.amount) == PRICE)
        ).one()
    engine.dispose()
    print(f"ledger: {len(unbalanced)} unbalanced transactions")
    print(f"charges: {charges}, without a consultation: {orphans}")
    print(
        f"answers the clients got: {_LOADED.get('answered', 0)}, charged the price: {paid} "
        "(the others abstained, which costs nothing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ingests", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "VOUCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    url = _database(args.postgres)
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        expert_key, keys = _setup(url, args.clients)
        env = {
            **os.environ,
            "VOUCH_DATA_DIR": data_dir,
            "VOUCH_DATABASE_URL": url,
            # Measured here: throughput, not the per-account allowance.
            "VOUCH_BILLING__ASKS_PER_MINUTE": "1000000",
            "VOUCH_QUEUE__WORKERS": str(args.ingests),
        }
        server = subprocess.Popen(
            [VOUCH, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            asyncio.run(_load(base, expert_key, keys, args.ingests, args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
        _checks(url)
    _drop(args.postgres, url)


if __name__ == "__main__":
    main()
