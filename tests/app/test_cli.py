"""The `vouch` command, run as a user would from a shell (in this process: tests/app/shell.py),
on a data dir the test owns."""

import io
import json
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from app.accounts import authenticate_api_key
from app.errors import InvalidCredentials
from billing.models import Charge
from core.clock import utcnow
from core.config import Settings
from core.db import make_engine, session_scope
from tests.app.shell import Shell
from tests.factories import HANDBOOK
from tests.ingestion.test_paper import PAGES, write_pdf


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder made by the test: two handbook files and one that cannot be read."""
    root = tmp_path / "corpus"
    (root / "tools").mkdir(parents=True)
    (root / "policies.md").write_text((HANDBOOK / "policies.md").read_text())
    (root / "tools" / "pricing.py").write_text((HANDBOOK / "tools" / "pricing.py").read_text())
    (root / "image.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return root


def _setup(shell: Shell) -> str:
    shell.run("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "expert")
    shell.run(
        "user",
        "create",
        "--email",
        "cleo@example.com",
        "--name",
        "Cleo",
        "--role",
        "client",
        "--password",
        "cleo-password",
    )
    shell.run(
        *[
            "asset",
            "create",
            "--owner",
            "ada@example.com",
            "--slug",
            "garden",
            "--title",
            "Garden store",
            "--description",
            "Policies and code",
            "--tags",
            "retail,garden",
        ]
    )
    key = shell.run("apikey", "create", "--user", "cleo@example.com").stdout.strip()
    assert key.startswith("vch_")
    return key


def test_ingest_search_and_ask_from_a_shell(shell: Shell, folder: Path) -> None:
    _setup(shell)
    ingested = shell.run("ingest", "garden", str(folder), "--wait", "--json")
    report = json.loads(ingested.stdout)
    assert set(report) >= {
        "job_id",
        "status",
        "documents",
        "chunks",
        "skipped",
        "failed",
        "seconds",
    }
    assert report["status"] == "succeeded"
    assert (report["documents"], report["skipped"]) == (2, 0)
    assert report["chunks"] > 0
    assert report["failed"] == []
    assert report["excluded"] == [{"path": "image.py", "reason": "binary content (NUL bytes)"}]
    assert report["seconds"] > 0

    again = json.loads(shell.run("ingest", "garden", str(folder), "--wait", "--json").stdout)
    assert (again["documents"], again["skipped"], again["chunks"]) == (0, 2, 0)
    shown = json.loads(shell.run("job", "show", report["job_id"], "--json").stdout)
    assert shown == report
    late = shell.run("job", "cancel", report["job_id"], ok=False)
    assert late.returncode == 1
    assert "already succeeded" in late.stderr

    found = json.loads(shell.run("search", "garden", "loyalty points", "-k", "2", "--json").stdout)
    assert [r["rank"] for r in found["results"]] == [1, 2]
    top = found["results"][0]
    assert set(top) == {"rank", "score", "similarity", "text", "locator"}
    assert top["locator"]["path"] == "tools/pricing.py"
    assert top["locator"]["symbol"].startswith("LoyaltyCard")

    answer = json.loads(
        shell.run(
            "ask", "garden", "How long do refunds take?", "--as", "ada@example.com", "--json"
        ).stdout
    )
    assert set(answer) == {
        "answer",
        "citations",
        "confidence",
        "status",
        "review_reason",
        "consultation_id",
        "tokens",
        "charge",
    }
    # The expert tries her asset before it is priced and published: free.
    assert (answer["charge"]["source"], answer["charge"]["amount"]) == ("free", 0)
    assert "14 days" in answer["answer"]
    assert answer["citations"][0]["locator"]["path"] == "policies.md"
    assert answer["citations"][0]["locator"]["lines"] == [5, 8]
    assert answer["tokens"]["prompt"] > answer["tokens"]["completion"] > 0
    # Read as text: a pending answer says why.
    assert answer["status"] == "pending_review"
    shown = shell.run("ask", "garden", "How long do refunds take?", "--as", "ada@example.com")
    assert f"why: {answer['review_reason']}" in " ".join(shown.stdout.split())


def test_ingest_of_a_changed_tar_serves_the_new_text_and_writes_nothing_beside_it(
    shell: Shell, tmp_path: Path
) -> None:
    _setup(shell)
    mine = tmp_path / "mine"
    mine.mkdir()
    archive = mine / "handbook.tar.gz"
    policies = (HANDBOOK / "policies.md").read_text()

    def pack(text: str) -> None:
        with tarfile.open(archive, "w:gz") as tar:
            for name, data in {"policies.md": text.encode(), "../evil.txt": b"escape"}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

    def ingest() -> dict[str, Any]:
        report: dict[str, Any] = json.loads(
            shell.run("ingest", "garden", str(archive), "--wait", "--json").stdout
        )
        assert report["status"] == "succeeded"
        assert report["failed"] == [{"path": "../evil.txt", "reason": "paths may not contain '..'"}]
        assert sorted(mine.iterdir()) == [archive]  # nothing unpacked beside the archive
        work = Path(shell.env["VOUCH_DATA_DIR"]) / "work"
        assert not work.exists() or not any(work.iterdir())
        return report

    def search() -> list[str]:
        found = json.loads(
            shell.run("search", "garden", "when is a refund paid back", "-k", "3", "--json").stdout
        )
        return [row["text"] for row in found["results"]]

    pack(policies)
    assert ingest()["documents"] == 1
    assert "within 14 days" in search()[0]
    pack(policies.replace("within 14 days", "within 45 days"))
    changed = ingest()
    assert (changed["updated"], changed["skipped"]) == (1, 0)
    texts = search()
    assert "within 45 days" in texts[0]
    assert not any("within 14 days" in text for text in texts)
    again = ingest()
    assert (again["documents"], again["skipped"]) == (0, 1)


def test_search_queries_file_prints_one_line_per_query(
    shell: Shell, folder: Path, tmp_path: Path
) -> None:
    _setup(shell)
    shell.run("ingest", "garden", str(folder), "--wait", "--json")
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"_id": "q1", "text": "refund to card"}\n\n{"_id": "q2", "text": "VAT price"}\n'
    )
    out = shell.run("search", "garden", "--queries-file", str(queries), "-k", "3", "--json")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["_id"] for line in lines] == ["q1", "q2"]
    assert all(len(line["results"]) == 3 for line in lines)
    assert lines[1]["results"][0]["locator"]["symbol"] == "price_with_vat"

    queries.write_text('{"_id": "q1", "text": "refund"}\n{"text": "no id"}\n')
    bad = shell.run("search", "garden", "--queries-file", str(queries), "--json", ok=False)
    assert bad.returncode == 1
    assert f"{queries}:2:" in bad.stderr
    assert "_id" in bad.stderr


def test_paper_citations_show_their_page_and_job_show_lists_what_was_left_out(
    shell: Shell, tmp_path: Path
) -> None:
    _setup(shell)
    shell.trust("garden")
    root = tmp_path / "papers"
    root.mkdir()
    write_pdf(root / "engines.pdf", PAGES)
    for n in range(22):
        (root / f"figure{n:02}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    shell.env["COLUMNS"] = "400"  # one line per table row: the test reads whole locators
    report = json.loads(shell.run("ingest", "garden", str(root), "--wait", "--json").stdout)
    assert len(report["excluded"]) == 22

    shown = shell.run("job", "show", report["job_id"]).stdout
    left_out = [line for line in shown.splitlines() if line.strip().startswith("left out")]
    assert len(left_out) == 20
    assert left_out[0].strip() == "left out figure00.png: binary file type (.png)"
    assert "… and 2 more left out (--json lists them all)" in shown

    where = "engines.pdf p. 4 § 3.2 Error Analysis"
    found = shell.run("search", "garden", "rounding errors fifty-digit columns", "-k", "1")
    assert where in found.stdout
    asked = shell.run("ask", "garden", "How large were the rounding errors?")
    assert f"[1] {where}" in asked.stdout


def test_bad_input_gets_one_clear_line_and_exit_1(shell: Shell, folder: Path) -> None:
    _setup(shell)
    cases = [
        (["ask", "nope", "hello"], "no asset 'nope'"),
        (["ask", "garden", "   "], "the question is empty"),
        (["ingest", "garden", str(folder / "missing")], "does not exist"),
        (["ingest", "garden", str(folder), "--kind", "poetry"], "unknown kind 'poetry'"),
        (
            ["user", "create", "--email", "ada@example.com", "--name", "A", "--role", "expert"],
            "exists already",
        ),
        (
            ["user", "create", "--email", "x@example.com", "--name", "X", "--role", "boss"],
            "unknown role",
        ),
        (
            ["asset", "create", "--owner", "ada@example.com", "--slug", "Bad Slug", "--title", "T"],
            "slug",
        ),
        (
            ["asset", "create", "--owner", "cleo@example.com", "--slug", "mine", "--title", "T"],
            "only experts create assets",
        ),
        (["apikey", "create", "--user", "nobody@example.com"], "no account"),
    ]
    for args, message in cases:
        result = shell.run(*args, ok=False)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_apikey_revoke_takes_the_key_as_it_was_printed(shell: Shell) -> None:
    key = _setup(shell)
    prefix = key.rpartition("_")[0]
    other_secret = f"{prefix}_{'x' * 32}"
    refused = shell.run("apikey", "revoke", other_secret, "--user", "cleo@example.com", ok=False)
    assert refused.returncode == 1
    assert f"no API key {prefix}_… on this account" in refused.stderr
    assert "x" * 32 not in refused.stderr  # a secret is never echoed

    revoked = shell.run("apikey", "revoke", key, "--user", "cleo@example.com")
    assert revoked.stdout.strip() == f"revoked {prefix}"
    settings = Settings(
        data_dir=Path(shell.env["VOUCH_DATA_DIR"]),
        database_url=shell.env.get("VOUCH_DATABASE_URL"),
    )
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(engine) as session, pytest.raises(InvalidCredentials, match="revoked"):
            authenticate_api_key(session, key)
    finally:
        engine.dispose()
    assert shell.run("apikey", "revoke", prefix, "--user", "cleo@example.com").returncode == 0


# Billing commands


def _charge_window_passed(shell: Shell, charge_id: str) -> None:
    """Move a hold's release time into the past, as if its acceptance window had run out."""
    settings = Settings(
        data_dir=Path(shell.env["VOUCH_DATA_DIR"]),
        database_url=shell.env.get("VOUCH_DATABASE_URL"),
    )
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(engine) as session:
            session.execute(
                update(Charge)
                .where(col(Charge.id) == charge_id)
                .values(release_after=utcnow() - timedelta(minutes=1))
            )
    finally:
        engine.dispose()


def test_plan_set_then_show_prints_the_prices(shell: Shell) -> None:
    _setup(shell)
    assert shell.run("plan", "show", "garden").stdout.strip() == (
        "garden: free to ask (no plan set)"
    )
    plan = [
        *("--per-query", "25", "--monthly", "500", "--included", "30"),
        *("--overage", "40", "--trial", "3", "--window-hours", "48"),
    ]
    printed = shell.run("plan", "set", "garden", *plan).stdout
    shown = shell.run("plan", "show", "garden").stdout
    assert shown == printed
    assert shown.strip() == (
        "garden: 0.25 USD a question; 5.00 USD a month for 30, then 0.40 USD each; "
        "3 free question(s); money released 48 h after an answer unless disputed"
    )
    shell.run("plan", "set", "garden", "--monthly", "900", "--included", "10", "--currency", "EUR")
    assert "9.00 EUR a month for 10, then stop" in shell.run("plan", "show", "garden").stdout


def test_credits_grant_once_per_key_and_show_the_balance(shell: Shell) -> None:
    _setup(shell)
    assert shell.run("credits", "show", "cleo@example.com").stdout.strip() == "credits: 0.00 USD"
    first = shell.run("credits", "grant", "cleo@example.com", "1000", "--key", "welcome")
    assert first.stdout.strip() == "cleo@example.com now has 10.00 USD in credits"
    again = shell.run("credits", "grant", "cleo@example.com", "1000", "--key", "welcome")
    assert "'welcome' was used before: nothing granted" in again.stdout
    assert "now has 10.00 USD" in again.stdout
    # Without --key every grant is a new one.
    shell.run("credits", "grant", "cleo@example.com", "250", "--memo", "apology")
    assert "now has 15.00 USD" in shell.run("credits", "grant", "cleo@example.com", "250").stdout
    assert shell.run("credits", "show", "cleo@example.com").stdout.strip() == "credits: 15.00 USD"


def test_settle_releases_after_the_window_and_payouts_run_records_a_pending_payout(
    shell: Shell, folder: Path
) -> None:
    _setup(shell)
    shell.run("ingest", "garden", str(folder), "--wait", "--json")
    # 15.00 a question: 12.00 to the expert after the 20% fee, above the 10.00 payout minimum.
    shell.run("plan", "set", "garden", "--per-query", "1500", "--window-hours", "1")
    shell.run("publish", "garden")
    shell.run("credits", "grant", "cleo@example.com", "3000")
    shell.trust("garden")
    asked = shell.run("ask", "garden", "How long do refunds take?", "--as", "cleo@example.com")
    assert "charged 15.00 USD from credits; held in escrow, released to the expert on" in (
        asked.stdout
    )
    charge = json.loads(
        shell.run(
            "ask", "garden", "Do refunds go to the card?", "--as", "cleo@example.com", "--json"
        ).stdout
    )["charge"]
    assert (charge["amount"], charge["source"], charge["status"]) == (1500, "credits", "held")
    assert shell.run("credits", "show", "cleo@example.com").stdout.strip() == "credits: 0.00 USD"
    broke = shell.run("ask", "garden", "And exchanges?", "--as", "cleo@example.com", ok=False)
    assert broke.returncode == 1
    assert "a question costs 15.00 USD and you have 0.00 USD in credits" in broke.stderr

    # Within the window nothing is released, so there is nothing to pay out.
    settled = shell.run("settle").stdout.strip()
    assert settled == (
        "released 0 hold(s) and 0 engagement milestone(s); settled 0 subscription period(s)"
    )
    nothing = shell.run("payouts", "run").stdout.strip()
    assert nothing == "no earnings to pay out (the minimum is 10.00 USD)"

    _charge_window_passed(shell, charge["id"])
    settled = shell.run("settle").stdout.strip()
    assert settled == (
        "released 1 hold(s) and 0 engagement milestone(s); settled 0 subscription period(s)"
    )
    run = shell.run("payouts", "run").stdout.strip()
    payout_id, line = run.split(" ", 1)
    assert payout_id.startswith("pay_")
    assert line == "12.00 USD to ada@example.com: pending (Stripe is not configured)"
    # A second run retries the same pending payout; it does not start another one.
    assert shell.run("payouts", "run").stdout.strip() == run


def test_bad_billing_input_gets_one_clear_line_and_changes_nothing(shell: Shell) -> None:
    _setup(shell)
    shell.run("plan", "set", "garden", "--per-query", "25")
    shell.run("credits", "grant", "cleo@example.com", "100", "--key", "k1")
    cases = [
        (["plan", "set", "garden", "--monthly", "100"], "at least one included question"),
        (["plan", "set", "garden", "--per-query", "10", "--overage", "5"], "need a monthly price"),
        (["plan", "set", "garden", "--per-query", "10", "--currency", "u$d"], "three-letter"),
        (["plan", "set", "garden", "--trial", "3"], "a per-query price, a monthly price"),
        (["plan", "set", "garden", "--per-query", "10", "--window-hours", "0"], "1 hour"),
        (["plan", "set", "nope", "--per-query", "10"], "no asset 'nope'"),
        (["credits", "grant", "ada@example.com", "100"], "ada@example.com is not a client"),
        (["credits", "grant", "cleo@example.com", "0"], "positive number of cents"),
        (["credits", "grant", "nobody@example.com", "100"], "no account"),
        (["credits", "show", "ada@example.com"], "ada@example.com is not a client"),
    ]
    for args, message in cases:
        result = shell.run(*args, ok=False)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert result.stdout == "", args
    shown = shell.run("plan", "show", "garden").stdout
    assert shown.startswith("garden: 0.25 USD a question; money released 72 h")
    assert shell.run("credits", "show", "cleo@example.com").stdout.strip() == "credits: 1.00 USD"


def test_demo_prices_its_asset_and_grants_the_client_credits_once(
    shell: Shell, folder: Path
) -> None:
    first = shell.run("demo", "--corpus", str(folder)).stdout
    prices = (
        "Demo prices: vouch-handbook: 0.25 USD a question; 5.00 USD a month for 30, then stop; "
        "3 free question(s); 0.03 USD a search of the passages"
    )
    assert prices in first
    assert "Demo client credits: 10.00 USD" in first
    shell.run("credits", "grant", "client@vouch.demo", "500")
    shell.run("plan", "set", "vouch-handbook", "--per-query", "40")
    again = shell.run("demo", "--corpus", str(folder)).stdout
    # Loading it again grants nothing more and keeps the expert's own prices.
    assert "Demo client credits: 15.00 USD" in again
    assert "Demo prices: vouch-handbook: 0.40 USD a question;" in again
