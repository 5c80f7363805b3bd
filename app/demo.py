"""Demo data for `make run`: three accounts, an asset built from Vouch's own docs, a client key."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlmodel import Session, select

from app import accounts, querying
from app.models import Account, ApiKey
from app.runtime import Runtime
from assets.models import Asset
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset
from core.config import Settings
from core.db import session_scope
from ingestion.errors import InvalidSource
from ingestion.models import IngestionJob

DOCS = Path(__file__).resolve().parent.parent / "docs"
SLUG = "vouch-handbook"
KEY_LABEL = "demo"
# Demo passwords are printed on purpose: they only ever exist in a local demo data dir.
LOGINS = [
    ("expert@vouch.demo", "Ada Expert", "expert", "vouch-demo-expert"),
    ("client@vouch.demo", "Cleo Client", "client", "vouch-demo-client"),
    ("admin@vouch.demo", "Avi Admin", "admin", "vouch-demo-admin"),
]


@dataclass
class Summary:
    logins: list[tuple[str, str, str]]
    slug: str
    client_key: str
    job: dict[str, Any]


def _account(session: Session, email: str, name: str, role: str, password: str) -> Account:
    found = session.exec(select(Account).where(Account.email == email)).first()
    return found or accounts.create_account(
        session, email=email, name=name, role=role, password=password
    )


def load(runtime: Runtime, *, corpus: Path, run_job: Callable[[str], IngestionJob]) -> Summary:
    """Create what is missing, give the client a fresh key, and (re-)ingest the corpus."""
    if not corpus.is_dir():
        raise InvalidSource(f"the demo corpus {corpus} is not a directory")
    with session_scope(runtime.engine) as session:
        expert, client, _ = (_account(session, *login) for login in LOGINS)
        if session.exec(select(Asset).where(Asset.slug == SLUG)).first() is None:
            create_asset(
                session,
                owner=Viewer(expert.id, expert.role),
                data=AssetCreate(
                    slug=SLUG,
                    title="The Vouch handbook",
                    description="How Vouch works: assets, ingestion, answers and citations, "
                    "the API, the CLI and configuration. Built from Vouch's own docs.",
                    tags=["vouch", "documentation"],
                ),
                embedder=runtime.embedder,
            )
        # Keys are stored hashed and cannot be shown again: each demo start issues a new one.
        for key in session.exec(
            select(ApiKey).where(ApiKey.account_id == client.id, ApiKey.label == KEY_LABEL)
        ):
            accounts.revoke_api_key(session, account=client, key_ref=key.id)
        _, client_key = accounts.create_api_key(session, account=client, label=KEY_LABEL)
        job = querying.submit_local(
            session, runtime, account=expert, slug=SLUG, path=corpus, kind="auto"
        )
    finished = run_job(job.id)
    with session_scope(runtime.engine) as session:
        report = querying.job_public(session, finished)
    return Summary(
        logins=[(email, password, role) for email, _, role, password in LOGINS],
        slug=SLUG,
        client_key=client_key,
        job=report,
    )


def print_summary(console: Console, settings: Settings, summary: Summary) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    job = summary.job
    console.print(
        f"demo asset [bold]{summary.slug}[/bold]: {job['documents']} documents ingested, "
        f"{job['skipped']} unchanged, {job['chunks']} chunks written"
    )
    table = Table("role", "e-mail", "password", title=f"Demo sign-in at {base}/login")
    for email, password, role in summary.logins:
        table.add_row(role, email, password)
    console.print(table)
    console.print(f"Demo client API key (new on every start): [bold]{summary.client_key}[/bold]")
    console.print(
        f'Try: curl -H "Authorization: Bearer {summary.client_key}" '
        f"-H 'Content-Type: application/json' -X POST {base}/v1/assets/{summary.slug}/ask "
        '-d \'{"question": "How are API keys stored?"}\'',
        highlight=False,
        soft_wrap=True,
    )
