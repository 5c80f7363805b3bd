"""Per-ask overhead of metering + ledger + escrow, on SQLite and on PostgreSQL.

Each ask's recording transaction is timed two ways, alternating, in the same process:

- baseline: write the consultation alone and commit;
- billed: what ``app.querying._record`` does (lock the client's wallet, check the entitlement
  again, count the prompt and answer tokens with tiktoken, write the consultation, its usage
  event and the charge with its escrow hold in the ledger) and commit.

The overhead is billed minus baseline. Releasing a hold (accept) is timed on its own.

    python bench/ask_overhead.py [--asks 300] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, make_url, text

from app import accounts
from assets.models import Asset, Consultation
from billing import service as billing
from billing.metering import count_tokens
from billing.service import PlanTerms
from core.clock import utcnow
from core.db import make_engine, session_scope
from migrations import upgrade

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _prompt() -> tuple[str, str]:
    """A question with five passages of the demo corpus (~ what the answerer reads)."""
    text_ = "\n\n".join(p.read_text()[:1500] for p in sorted(DOCS.glob("*.md"))[:5])
    return f"Question: how are refunds handled?\n\n{text_}", text_[:600]


def _setup(engine: Engine) -> tuple[str, str, str]:
    with session_scope(engine) as session:
        suffix = uuid.uuid4().hex[:8]
        expert = accounts.create_account(
            session, email=f"e{suffix}@bench.test", name="E", role="expert"
        )
        client = accounts.create_account(
            session, email=f"c{suffix}@bench.test", name="C", role="client"
        )
        asset = Asset(
            owner_id=expert.id,
            slug=f"bench-{suffix}",
            title="Bench",
            collection="bench",
            embed_model="none",
            embed_dimension=1,
        )
        session.add(asset)
        session.flush()
        billing.set_plan(session, asset_id=asset.id, terms=PlanTerms(per_query=1))
        billing.grant_credits(
            session, account_id=client.id, amount=10**9, currency="usd", key=f"bench:{suffix}"
        )
        return expert.id, client.id, asset.id


def _consultation(
    asset_id: str, client_id: str, answer: str, tokens: tuple[int, int]
) -> Consultation:
    return Consultation(
        asset_id=asset_id,
        account_id=client_id,
        question="how are refunds handled?",
        answer=answer,
        citations=[{"n": 1, "text": answer[:200], "locator": {"path": "policies.md"}}],
        confidence=0.9,
        status="final",
        model="extractive",
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        latency_ms=10,
    )


def measure(engine: Engine, asks: int) -> dict[str, list[float]]:
    expert_id, client_id, asset_id = _setup(engine)
    prompt, answer = _prompt()

    def baseline() -> str:
        with session_scope(engine) as session:
            c = _consultation(asset_id, client_id, answer, (1, 1))
            session.add(c)
            session.flush()
            return c.id

    def billed() -> str:
        with session_scope(engine) as session:
            billing.lock_wallet(session, client_id)
            price = billing.quote(session, account_id=client_id, asset_id=asset_id, now=utcnow())
            tokens = (count_tokens(prompt), count_tokens(answer))
            c = _consultation(asset_id, client_id, answer, tokens)
            session.add(c)
            session.flush()
            billing.record_usage(
                session,
                account_id=client_id,
                asset_id=asset_id,
                consultation_id=c.id,
                model="extractive",
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
                latency_ms=10,
            )
            charge = billing.hold(
                session,
                price=price,
                account_id=client_id,
                asset_id=asset_id,
                expert_id=expert_id,
                consultation_id=c.id,
                now=utcnow(),
            )
            return charge.id

    def timed(fn: Callable[[], str]) -> tuple[float, str]:
        started = time.perf_counter()
        result = fn()
        return (time.perf_counter() - started) * 1000, result

    times: dict[str, list[float]] = {"baseline": [], "billed": [], "release": []}
    for _ in range(20):  # warm up caches, tiktoken and the connection pool
        baseline()
        billed()
    charges = []
    for _ in range(asks):
        ms, _ = timed(baseline)
        times["baseline"].append(ms)
        ms, charge_id = timed(billed)
        times["billed"].append(ms)
        charges.append(charge_id)
    for charge_id in charges:

        def release(charge_id: str = charge_id) -> str:
            with session_scope(engine) as session:
                charge = billing.get_charge(session, charge_id)
                billing.accept(session, charge, account_id=client_id, fee_bps=2000, now=utcnow())
                return charge_id

        ms, _ = timed(release)
        times["release"].append(ms)
    return times


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def report(name: str, times: dict[str, list[float]]) -> None:
    base, full = times["baseline"], times["billed"]
    overhead = [b - a for a, b in zip(base, full, strict=True)]
    print(
        f"{name:10} consultation only p50 {statistics.median(base):6.2f} ms | "
        f"with metering+ledger+escrow p50 {statistics.median(full):6.2f} ms "
        f"p95 {_p(full, 0.95):6.2f} ms | overhead p50 {statistics.median(overhead):6.2f} ms "
        f"p95 {_p(overhead, 0.95):6.2f} ms | release (accept) p50 "
        f"{statistics.median(times['release']):6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asks", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    prompt, answer = _prompt()
    counting = []
    for _ in range(200):
        started = time.perf_counter()
        count_tokens(prompt), count_tokens(answer)
        counting.append((time.perf_counter() - started) * 1000)
    print(
        f"{args.asks} asks; prompt {count_tokens(prompt)} tokens, answer {count_tokens(answer)}; "
        f"tiktoken counting alone p50 {statistics.median(counting):.2f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        report("SQLite", measure(engine, args.asks))
        engine.dispose()
    if args.no_postgres:
        return
    admin = make_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"vouch_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade(engine)
        report("PostgreSQL", measure(engine, args.asks))
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
