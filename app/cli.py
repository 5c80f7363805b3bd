"""The ``vouch`` command: runs the server and worker, and administers the configured data dir."""

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import Session

from app import accounting, accounts, catalog, demo, engagements, locators, querying
from app.cli_common import err, fail, out, print_json, runtime, session
from app.cli_eval import eval_command, quality_app
from app.models import Account, Role
from assets.models import Asset
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset, get_visible_asset
from billing import ledger
from billing.models import PayoutStatus
from billing.service import PlanTerms, describe_plan, money, settle_due
from core.errors import InvalidInput, VouchError
from core.ids import new_id
from ingestion import pipeline
from ingestion import service as ingestion
from ingestion.models import FINISHED, IngestionJob, JobStatus

app = typer.Typer(
    help="Vouch: experts' corpora as paid, cited AI knowledge assets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
asset_app = typer.Typer(help="Knowledge assets.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="apikey")
app.add_typer(asset_app, name="asset")
job_app = typer.Typer(help="Ingestion jobs.", no_args_is_help=True)
app.add_typer(job_app, name="job")
app.command("eval")(eval_command)
app.add_typer(quality_app, name="quality")
plan_app = typer.Typer(help="Prices of assets.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
credits_app = typer.Typer(help="Clients' credits (without Stripe).", no_args_is_help=True)
app.add_typer(credits_app, name="credits")
payouts_app = typer.Typer(help="Experts' payouts.", no_args_is_help=True)
app.add_typer(payouts_app, name="payouts")


@app.command()
def migrate() -> None:
    """Create or upgrade the database tables."""
    runtime()
    out.print(f"database at {runtime().settings.sqlalchemy_url} is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: VOUCH_SERVER__HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: VOUCH_SERVER__PORT")] = None,
) -> None:
    """Serve the API and pages, with task queue consumers in the same process."""
    import uvicorn

    from app.main import create_app

    settings = runtime().settings
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings, runtime=runtime()),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
        # On SIGTERM, requests in flight get this long; then the queue's threads as long again.
        timeout_graceful_shutdown=settings.server.shutdown_grace_seconds,
    )


@app.command()
def worker(workers: Annotated[int, typer.Option(min=1, help="Consumer threads")] = 2) -> None:
    """Run a standalone task queue consumer (for when `serve` runs with no consumer threads)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    runtime().queue.requeue_stale()
    consumer = runtime().queue.huey.create_consumer(workers=workers, worker_type="thread")
    consumer.run()


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Sign-in e-mail")],
    name: Annotated[str, typer.Option(help="Display name")],
    role: Annotated[str, typer.Option(help="expert, client or admin")],
    password: Annotated[
        str | None, typer.Option(help="For page sign-in; omit for API only")
    ] = None,
) -> None:
    """Create an account."""
    with session() as s:
        account = accounts.create_account(s, email=email, name=name, role=role, password=password)
    out.print(f"created {account.role} {account.email} ({account.id})")


@key_app.command("create")
def apikey_create(
    user: Annotated[str, typer.Option(help="The account's e-mail")],
    label: Annotated[str, typer.Option(help="A name to recognise the key by")] = "",
) -> None:
    """Create an API key and print it once."""
    with session() as s:
        account = accounts.get_account_by_email(s, user)
        _, secret = accounts.create_api_key(s, account=account, label=label)
    err.print("This key is shown once; store it now.")
    sys.stdout.write(secret + "\n")


@key_app.command("revoke")
def apikey_revoke(
    key: Annotated[
        str, typer.Argument(help="The key as shown, its prefix (vch_xxxxxxxxxx) or its id")
    ],
    user: Annotated[str, typer.Option(help="The account's e-mail")],
) -> None:
    """Revoke an API key."""
    with session() as s:
        account = accounts.get_account_by_email(s, user)
        revoked = accounts.revoke_api_key(s, account=account, key_ref=key)
    out.print(f"revoked {revoked.prefix}")


@asset_app.command("create")
def asset_create(
    owner: Annotated[str, typer.Option(help="The expert's e-mail")],
    slug: Annotated[str, typer.Option(help="3-64 lowercase letters, digits and dashes")],
    title: Annotated[str, typer.Option()],
    description: Annotated[str, typer.Option()] = "",
    tags: Annotated[str, typer.Option(help="Comma-separated domain tags")] = "",
) -> None:
    """Create a knowledge asset owned by an expert."""
    try:
        data = AssetCreate(
            slug=slug,
            title=title,
            description=description,
            tags=[t for t in tags.split(",") if t.strip()],
        )
    except ValueError as exc:
        raise fail(_validation_message(exc)) from exc
    with session() as s:
        account = accounts.get_account_by_email(s, owner)
        asset = create_asset(
            s, owner=Viewer(account.id, account.role), data=data, embedder=runtime().embedder
        )
    out.print(f"created asset {asset.slug} ({asset.embed_model}, {asset.embed_dimension} dims)")


def _validation_message(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{e['loc'][0]}: {str(e['msg']).removeprefix('Value error, ')}" for e in errors()
        )
    return str(exc)


def _owner_of(s: Session, slug: str) -> tuple[Asset, Account]:
    asset = get_visible_asset(s, viewer=Viewer(account_id="", role="admin"), slug=slug)
    owner = s.get(Account, asset.owner_id)
    assert owner is not None  # a foreign key guarantees it
    return asset, owner


def run_with_progress(job_id: str, *, show: bool) -> IngestionJob:
    """Run a queued job here, or follow it if a worker took it first, with a progress bar."""
    rt = runtime()
    columns = [
        TextColumn("[bold]ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, disable=not show, transient=False) as progress:
        task = progress.add_task("ingest", total=None, chunks=0)

        def update(job: IngestionJob) -> None:
            progress.update(
                task,
                total=job.documents_total or None,
                completed=job.documents_done,
                chunks=job.chunks_written,
            )

        with session() as s:
            claimed = ingestion.claim_job(s, job_id)
        if claimed:
            try:
                job = pipeline.run_job(
                    rt.engine,
                    job_id=job_id,
                    index=rt.index,
                    embedder=rt.embedder,
                    limits=rt.settings.ingest,
                    lexical=rt.lexical,
                    work_dir=rt.settings.work_path,
                    on_progress=update,
                )
            except VouchError:
                with session() as s:
                    job = ingestion.get_job(s, job_id)
            return job
        while True:  # a worker has it: follow the row
            with session() as s:
                job = ingestion.get_job(s, job_id)
            update(job)
            if job.status in FINISHED:
                return job
            time.sleep(0.3)


@app.command()
def ingest(
    asset: Annotated[str, typer.Argument(help="The asset's slug")],
    path: Annotated[
        Path, typer.Argument(help="A file, directory, git work tree, or zip or tar archive")
    ],
    kind: Annotated[
        str, typer.Option(help="auto (per file), code, regulation, paper or text")
    ] = "auto",
    wait: Annotated[bool, typer.Option("--wait", help="Run or follow the job to its end")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON")] = False,
) -> None:
    """Ingest files into an asset. Without --wait the job is queued for `serve` or `worker`."""
    with session() as s:
        found, owner = _owner_of(s, asset)
        job = querying.submit_local(
            s, runtime(), account=owner, slug=found.slug, path=path, kind=kind
        )
    if wait:
        job = run_with_progress(job.id, show=not as_json)
    with session() as s:
        report = ingestion.job_public(s, job)
    if as_json:
        print_json(report)
    else:
        _print_job(report)
    if job.status == JobStatus.failed:
        raise typer.Exit(1)


# Files listed per kind of outcome; the rest are counted (``--json`` lists them all).
_LISTED = 20


def _print_job(report: dict[str, Any]) -> None:
    out.print(
        f"job {report['job_id']}: {report['status']} · {report['documents']} ingested · "
        f"{report['skipped']} unchanged · {report['chunks']} chunks"
        + (f" · {report['seconds']} s" if report["seconds"] is not None else ""),
        highlight=False,
    )
    if report.get("read_as_text"):
        out.print(f"  read as text: {report['read_as_text']} files", highlight=False)
    for label, files in (("not ingested", report["failed"]), ("left out", report["excluded"])):
        for note in files[:_LISTED]:
            out.print(
                f"  [yellow]{label}[/yellow] {escape(note['path'])}: {escape(note['reason'])}",
                highlight=False,
            )
        if len(files) > _LISTED:
            out.print(
                f"  … and {len(files) - _LISTED} more {label} (--json lists them all)",
                highlight=False,
            )
    if report["error"]:
        out.print(f"[red]{escape(report['error'])}[/red]")
    if report["status"] == JobStatus.queued:
        out.print("queued: `vouch serve` or `vouch worker` will run it (or use --wait)")


@job_app.command("show")
def job_show(
    job_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON")] = False,
) -> None:
    """Show a job's status, counts and per-file reasons."""
    with session() as s:
        report = ingestion.job_public(s, ingestion.get_job(s, job_id))
    if as_json:
        print_json(report)
    else:
        _print_job(report)


@job_app.command("cancel")
def job_cancel(job_id: Annotated[str, typer.Argument()]) -> None:
    """Cancel a queued job, or stop a running one after its current batch."""
    with session() as s:
        job = ingestion.cancel_job(s, ingestion.get_job(s, job_id))
    out.print(f"job {job.id}: {job.status}" + (" (stopping)" if job.status == "running" else ""))


def _search_rows(passages: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "rank": i,
            "score": p.rank_score,
            "similarity": p.score,
            "text": p.text,
            "locator": p.locator,
        }
        for i, p in enumerate(passages, 1)
    ]


@app.command()
def search(
    asset: Annotated[str, typer.Argument(help="The asset's slug")],
    query: Annotated[str | None, typer.Argument(help="What to look for")] = None,
    k: Annotated[int, typer.Option("-k", help="How many passages")] = 5,
    queries_file: Annotated[
        Path | None, typer.Option(help="JSONL with _id and text; one JSON line out per query")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    kind: Annotated[
        list[str] | None, typer.Option(help="Only this kind (repeatable): code, regulation, ...")
    ] = None,
    path: Annotated[str | None, typer.Option(help="Only paths starting with this")] = None,
) -> None:
    """Search an asset's passages (dense and BM25, fused)."""
    if (query is None) == (queries_file is None):
        raise fail("give either a QUERY or --queries-file", 2)
    with session() as s:
        found, owner = _owner_of(s, asset)

        def run(text: str) -> list[dict[str, Any]]:
            passages = querying.search(
                s,
                runtime(),
                account=owner,
                slug=found.slug,
                query=text,
                k=k,
                kinds=kind or None,
                path_prefix=path,
            )
            return _search_rows(passages)

        if queries_file is not None:
            for line_no, item in _read_queries(queries_file):
                try:
                    print_json({"_id": item["_id"], "results": run(str(item["text"]))})
                except InvalidInput as exc:
                    raise fail(f"{queries_file}:{line_no}: {exc.message}") from exc
            return
        assert query is not None
        rows = run(query)
    if as_json:
        print_json({"results": rows})
        return
    table = Table("rank", "score", "where", "text", show_lines=True)
    for row in rows:
        table.add_row(
            str(row["rank"]), f"{row['score']:.3f}", _where(row["locator"]), row["text"][:300]
        )
    out.print(table)


def _read_queries(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise fail(f"{path} is not a file")
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise fail(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict) or "_id" not in item or "text" not in item:
            raise fail(f'{path}:{line_no}: each line needs "_id" and "text"')
        yield line_no, item


def _where(locator: dict[str, Any]) -> str:
    return escape(locators.describe(locator))


@app.command()
def ask(
    asset: Annotated[str, typer.Argument(help="The asset's slug")],
    question: Annotated[str, typer.Argument()],
    as_user: Annotated[
        str | None, typer.Option("--as", help="Ask as this account (default: the asset's owner)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Ask an asset a question; prints the cited answer and records the consultation."""
    with session() as s:
        found, owner = _owner_of(s, asset)
        account = accounts.get_account_by_email(s, as_user) if as_user else owner
        result = querying.ask(s, runtime(), account=account, slug=found.slug, question=question)
        report = result.public()
    if as_json:
        print_json(report)
        return
    out.print(report["answer"], highlight=False)
    out.print(
        f"\n[dim]{report['status']} · confidence {report['confidence']:.2f} · "
        f"{report['tokens']['prompt']}+{report['tokens']['completion']} tokens[/dim]"
    )
    if report["review_reason"]:
        out.print(f"[dim]why: {report['review_reason']}[/dim]", highlight=False)
    for c in report["citations"]:
        out.print(f"[{c['n']}] {_where(c['locator'])}", highlight=False)
    charge = report["charge"]
    if charge["amount"]:
        out.print(
            f"[dim]charged {money(charge['amount'], charge['currency'])} from "
            f"{charge['source']}; held in escrow, released to the expert on "
            f"{charge['release_after'][:16].replace('T', ' ')} UTC unless disputed[/dim]",
            highlight=False,
        )
    elif charge["source"] == "trial":
        out.print("[dim]a free trial question[/dim]")


@app.command("mcp")
def mcp(
    key: Annotated[
        str,
        typer.Option(envvar="VOUCH_API_KEY", help="Your API key (vch_...); or VOUCH_API_KEY"),
    ],
    asset: Annotated[
        str | None, typer.Option(help="Only this asset's slug (default: every one you may ask)")
    ] = None,
    url: Annotated[
        str, typer.Option(envvar="VOUCH_URL", help="The Vouch server; or VOUCH_URL")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Serve Vouch's MCP tools over stdio, for desktop AI clients: each call goes to the
    server at --url as your key's account, and is charged and recorded there."""
    import anyio

    from app import mcp_server

    if not url.startswith(("http://", "https://")):
        raise fail(f"--url must start with http:// or https://, not {url!r}", 2)
    try:
        anyio.run(mcp_server.serve_stdio, url, key, asset)
    except Exception as exc:  # the server could not be reached, or refused the key
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]
        raise fail(f"the Vouch server at {url} did not serve MCP: {cause}") from exc


@plan_app.command("set")
def plan_set(
    asset: Annotated[str, typer.Argument(help="The asset's slug")],
    per_query: Annotated[int | None, typer.Option(help="Price of a question, in cents")] = None,
    monthly: Annotated[int | None, typer.Option(help="Monthly subscription, in cents")] = None,
    included: Annotated[int, typer.Option(help="Questions a month includes")] = 0,
    overage: Annotated[
        int | None, typer.Option(help="Cents per question past those (default: a hard cap)")
    ] = None,
    trial: Annotated[int, typer.Option(help="Free questions per client")] = 0,
    currency: Annotated[str, typer.Option(help="ISO code")] = "usd",
    window_hours: Annotated[
        int, typer.Option(help="Hours a client has to dispute before money is released")
    ] = 72,
) -> None:
    """Set an asset's prices; they apply to new purchases, not to periods already paid."""
    terms = PlanTerms(
        currency=currency,
        per_query=per_query,
        monthly=monthly,
        included=included,
        overage=overage,
        trial=trial,
        acceptance_hours=window_hours,
    )
    with session() as s:
        found, owner = _owner_of(s, asset)
        _, plan = accounting.set_plan(s, account=owner, slug=found.slug, terms=terms)
        out.print(describe_plan(found.slug, plan), highlight=False, soft_wrap=True)


@plan_app.command("show")
def plan_show(asset: Annotated[str, typer.Argument(help="The asset's slug")]) -> None:
    """An asset's current prices."""
    with session() as s:
        found, owner = _owner_of(s, asset)
        _, plan = accounting.get_plan(s, account=owner, slug=found.slug)
        out.print(describe_plan(found.slug, plan), highlight=False, soft_wrap=True)


@app.command("publish")
def publish(asset: Annotated[str, typer.Argument(help="The asset's slug")]) -> None:
    """List an asset in the catalog, as its expert: it needs a price (`vouch plan set`), a
    finished ingest, and the expert's verified e-mail address."""
    with session() as s:
        found, owner = _owner_of(s, asset)
        catalog.publish(s, account=owner, slug=found.slug)
    out.print(f"published {found.slug}: listed in the catalog, clients can ask it")


@app.command("unpublish")
def unpublish(asset: Annotated[str, typer.Argument(help="The asset's slug")]) -> None:
    """Take an asset out of the catalog: clients can no longer find it or ask it."""
    with session() as s:
        found, owner = _owner_of(s, asset)
        catalog.unpublish(s, account=owner, slug=found.slug)
    out.print(f"unpublished {found.slug}: only its expert sees it now")


@credits_app.command("grant")
def credits_grant(
    email: Annotated[str, typer.Argument(help="The client's e-mail")],
    amount: Annotated[int, typer.Argument(help="Cents")],
    currency: Annotated[str, typer.Option(help="ISO code")] = "usd",
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: the same key grants once (default: new)")
    ] = None,
    memo: Annotated[str, typer.Option(help="Shown on the client's statement")] = "",
) -> None:
    """Add credits to a client through the ledger (no Stripe needed)."""
    ledger_key = f"grant:{key or new_id('cli')}"
    with session() as s:
        account = accounts.get_account_by_email(s, email)
        granted_before = ledger.find(s, ledger_key) is not None
        balance = accounting.grant_credits(
            s, account=account, amount=amount, currency=currency, key=ledger_key, memo=memo
        )
    if granted_before:
        out.print(f"key {key!r} was used before: nothing granted", highlight=False, soft_wrap=True)
    out.print(
        f"{account.email} now has {money(balance, currency.lower())} in credits",
        highlight=False,
        soft_wrap=True,
    )


@credits_app.command("show")
def credits_show(email: Annotated[str, typer.Argument(help="The client's e-mail")]) -> None:
    """A client's credits and subscriptions."""
    with session() as s:
        account = accounts.get_account_by_email(s, email)
        if account.role != Role.client:
            raise fail(f"{account.email} is not a client account; credits are for clients")
        summary = accounting.client_summary(s, account=account)
    credits = summary["credits"] or {runtime().settings.billing.currency: 0}
    for currency, amount in credits.items():
        out.print(f"credits: {money(amount, currency)}")
    for sub in summary["subscriptions"]:
        out.print(
            f"subscription to {sub['asset']}: {sub['status']}, {sub['used']}/{sub['included']} "
            f"questions, until {sub['period_end']}",
            highlight=False,
            soft_wrap=True,
        )


@payouts_app.command("run")
def payouts_run() -> None:
    """Pay experts their available earnings above the minimum; pending without Stripe."""
    done = accounting.run_payouts(runtime())
    if not done:
        settings = runtime().settings.billing
        minimum = money(settings.payout_minimum, settings.currency)
        out.print(f"no earnings to pay out (the minimum is {minimum})")
        return
    waiting = (
        "Stripe is not configured"
        if runtime().gateway is None
        else "the expert has not finished Stripe onboarding"
    )
    with session() as s:
        experts = {p.expert_id: s.get(Account, p.expert_id) for p in done}
        emails = {i: a.email if a else i for i, a in experts.items()}
    for payout in done:
        why = payout.failure
        if payout.status == PayoutStatus.pending:
            why = f"last attempt: {payout.failure}" if payout.failure else waiting
        out.print(
            f"{payout.id} {money(payout.amount, payout.currency)} to {emails[payout.expert_id]}: "
            f"{payout.status}" + (f" ({why})" if why else ""),
            highlight=False,
            soft_wrap=True,
        )


@app.command("settle")
def settle() -> None:
    """Release the holds and delivered engagement milestones whose window has passed and
    settle ended subscription periods now (the server does it every minute)."""
    rt = runtime()
    released, periods = settle_due(rt.engine, fee_bps=rt.settings.billing.platform_fee_bps)
    milestones = engagements.settle_due(rt)
    out.print(
        f"released {released} hold(s) and {milestones} engagement milestone(s); "
        f"settled {periods} subscription period(s)",
        highlight=False,
        soft_wrap=True,
    )


@app.command("demo")
def load_demo(
    corpus: Annotated[
        Path | None, typer.Option(help="Default: the docs/ folder of this repo")
    ] = None,
) -> None:
    """Load the demo accounts and asset (idempotent) and print how to use them."""
    rt = runtime()
    summary = demo.load(
        rt, corpus=corpus or demo.DOCS, run_job=lambda job_id: run_with_progress(job_id, show=True)
    )
    demo.print_summary(out, rt.settings, summary)


def main() -> None:
    """Entry point: expected errors print one line and exit 1; bugs keep their traceback."""
    try:
        app()
    except VouchError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(1)
