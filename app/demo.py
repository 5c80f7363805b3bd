"""Demo data for `make run`: three accounts, an asset built from Vouch's own docs and priced,
a client key and credits."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlmodel import Session, select

from app import accounts, catalog, querying
from app.models import Account, ApiKey
from app.runtime import Runtime
from assets.models import Asset
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset
from billing import service as billing
from core.config import Settings
from core.db import session_scope
from ingestion import service as ingestion
from ingestion.errors import InvalidSource
from ingestion.models import IngestionJob

DOCS = Path(__file__).resolve().parent.parent / "docs"
SLUG = "vouch-handbook"
KEY_LABEL = "demo"
# 25 cents a question, or 5.00 a month for 30; a client without credits gets 3 questions free;
# its passages are sold at 3 cents a search (the retrievers of clients/python use them).
PLAN = billing.PlanTerms(per_query=25, monthly=500, included=30, trial=3, per_search=3)
CREDITS = 1000
# One grant per data dir, however often `vouch demo` runs.
CREDITS_KEY = "demo:client-credits"
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
    plan: str
    credits: str


def _account(session: Session, email: str, name: str, role: str, password: str) -> Account:
    found = session.exec(select(Account).where(Account.email == email)).first()
    return found or accounts.create_account(
        session, email=email, name=name, role=role, password=password
    )


def load(runtime: Runtime, *, corpus: Path, run_job: Callable[[str], IngestionJob]) -> Summary:
    """Create what is missing, give the client a fresh key, and (re-)ingest the corpus."""
    if not corpus.is_dir():
        raise InvalidSource(f"the demo corpus {corpus} is not a directory")
    currency = runtime.settings.billing.currency
    with session_scope(runtime.engine) as session:
        expert, client, _ = (_account(session, *login) for login in LOGINS)
        asset = session.exec(select(Asset).where(Asset.slug == SLUG)).first()
        if asset is None:
            asset = create_asset(
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
        # Priced once: a plan the expert changed since is theirs to keep.
        plan = billing.current_plan(session, asset.id)
        if plan is None:
            plan = billing.set_plan(
                session, asset_id=asset.id, terms=replace(PLAN, currency=currency)
            )
        credits = billing.grant_credits(
            session,
            account_id=client.id,
            amount=CREDITS,
            currency=currency,
            key=CREDITS_KEY,
            memo="demo credits",
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
        report = ingestion.job_public(session, finished)
        # Priced and ingested: list it in the catalog, as its expert would (demo accounts
        # have not verified an e-mail address, so the check is the catalog's own).
        listed = session.exec(select(Asset).where(Asset.slug == SLUG)).one()
        if not listed.published and not catalog.missing_to_publish(session, listed):
            listed.published = True
            session.add(listed)
    return Summary(
        logins=[(email, password, role) for email, _, role, password in LOGINS],
        slug=SLUG,
        client_key=client_key,
        job=report,
        plan=billing.describe_plan(SLUG, plan),
        credits=billing.money(credits, currency),
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
    console.print(f"Demo prices: {summary.plan}", highlight=False, soft_wrap=True)
    console.print(
        f"Demo client credits: {summary.credits} (`vouch credits grant client@vouch.demo CENTS` "
        "adds more)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"Demo client API key (new on every start): [bold]{summary.client_key}[/bold]")
    console.print(
        f'Try: curl -H "Authorization: Bearer {summary.client_key}" '
        f"-H 'Content-Type: application/json' -X POST {base}/v1/assets/{summary.slug}/ask "
        '-d \'{"question": "How are API keys stored?"}\'',
        highlight=False,
        soft_wrap=True,
    )
