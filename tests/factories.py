"""Typed factories for test data, written through the real services."""

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlmodel import Session, select

from app import accounts, querying
from app.models import Account
from app.runtime import Runtime
from assets import review
from assets.models import Asset, Consultation
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset
from core.clock import utcnow
from core.db import session_scope
from ingestion.models import IngestionJob

HANDBOOK = Path(__file__).parent / "data" / "handbook"
PASSWORD = "correct-horse"  # for accounts that sign in to pages
_counter = itertools.count(1)


@dataclass
class Actor:
    account: Account
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@functools.cache
def _password_hash() -> str:
    return PasswordHasher().hash(PASSWORD)


def create_actor(
    runtime: Runtime, *, role: str, email: str | None = None, password: str | None = None
) -> Actor:
    n = next(_counter)
    with session_scope(runtime.engine) as session:
        account = accounts.create_account(
            session,
            email=email or f"{role}{n}@example.com",
            name=f"{role.title()} {n}",
            role=role,
            password=None if password == PASSWORD else password,
        )
        if password == PASSWORD:
            # argon2 spends a tenth of a second per hash by design; every test account shares
            # one hash of PASSWORD (its salt too), and signing in still verifies it for real.
            account.password_hash = _password_hash()
        _, key = accounts.create_api_key(session, account=account, label="test")
    return Actor(account=account, key=key)


async def sign_in(client: httpx.AsyncClient, actor: Actor, next_page: str = "/assets") -> None:
    """Sign ``actor`` (made with ``password=PASSWORD``) in to the pages, as the only one."""
    client.cookies.clear()
    response = await client.post(
        "/login", data={"email": actor.account.email, "password": PASSWORD, "next": next_page}
    )
    assert response.status_code == 303, response.text


def create_test_asset(
    runtime: Runtime, *, owner: Account, slug: str | None = None, published: bool = True
) -> Asset:
    with session_scope(runtime.engine) as session:
        return create_asset(
            session,
            owner=Viewer(owner.id, owner.role),
            data=AssetCreate(
                slug=slug or f"asset-{next(_counter)}",
                title="Garden store handbook",
                tags=["retail"],
                published=published,
            ),
            embedder=runtime.embedder,
        )


def ingest_path(
    runtime: Runtime, *, asset: Asset, owner: Account, path: Path, kind: str = "auto"
) -> IngestionJob:
    """Queue a local path; with the immediate queue of the tests it runs on commit."""
    with session_scope(runtime.engine) as session:
        job = querying.submit_local(
            session, runtime, account=owner, slug=asset.slug, path=path, kind=kind
        )
    with Session(runtime.engine) as session:
        found = session.get(IngestionJob, job.id)
        assert found is not None
        return found


def review_record(runtime: Runtime | Engine, slug: str, *, stood: int, wrong: int = 0) -> None:
    """Give the asset ``slug`` a record of reviewed answers, as its expert would have judged
    them: ``stood`` approved and ``wrong`` rejected, each one its kind's calibration gave 0.5.
    An asset whose answers stood is trusted with final answers (assets/calibration.py)."""
    engine = runtime.engine if isinstance(runtime, Runtime) else runtime
    with session_scope(engine) as session:
        asset = session.exec(select(Asset).where(Asset.slug == slug)).one()
        for n in range(stood + wrong):
            consultation = Consultation(
                asset_id=asset.id,
                account_id=asset.owner_id,
                question=f"Earlier question {n}?",
                answer="An earlier answer.",
                confidence=0.5,
                prior_confidence=0.5,
                status="pending_review",
                model="extractive-v1",
                prompt_tokens=0,
                completion_tokens=0,
                latency_ms=0,
            )
            session.add(consultation)
            session.flush()
            now = utcnow()
            item = review.flag(
                session, consultation=consultation, asset=asset, reason="low_confidence", now=now
            )
            judge = review.approve if n < stood else review.reject
            judge(session, item, actor_id=asset.owner_id, now=now)
