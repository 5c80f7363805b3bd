"""`vouch quality run` from a shell (in this process: tests/app/shell.py): the platform re-asks
a client's accepted question, stores a platform run, and prints what it found (as a table and as
JSON)."""

import json
from pathlib import Path

from sqlmodel import Session, col, select

from app import accounting
from app.models import Account
from app.runtime import Runtime
from assets.embeddings import MiniLMEmbedder
from core.config import Settings
from core.db import session_scope
from evals.models import EvalRun
from tests.app.shell import Shell
from tests.factories import HANDBOOK


def _accepted_question(
    shell: Shell, tmp_path: Path, database_url: str | None, embedder: MiniLMEmbedder
) -> str:
    """Ada's published handbook at 0.25 USD a question, and Cleo's question about it, which
    Cleo accepted."""
    shell.run("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "expert")
    shell.run("user", "create", "--email", "cleo@example.com", "--name", "Cleo", "--role", "client")
    shell.run(
        *["asset", "create", "--owner", "ada@example.com", "--slug", "garden"], "--title", "G"
    )
    shell.run("ingest", "garden", str(HANDBOOK), "--wait", "--json")
    shell.run("plan", "set", "garden", "--per-query", "25")
    shell.run("publish", "garden")
    shell.run("credits", "grant", "cleo@example.com", "1000", "--key", "welcome")
    shell.trust("garden")
    asked = shell.run(
        "ask", "garden", "How long do refunds take?", "--as", "cleo@example.com", "--json"
    )
    consultation_id: str = json.loads(asked.stdout)["consultation_id"]
    runtime = Runtime(
        Settings(data_dir=tmp_path / "data", database_url=database_url), embedder=embedder
    )
    try:
        with session_scope(runtime.engine) as session:
            cleo = session.exec(select(Account).where(Account.email == "cleo@example.com")).one()
            accounting.accept(session, runtime, account=cleo, consultation_id=consultation_id)
    finally:
        runtime.close()
    return consultation_id


def test_quality_run_stores_a_platform_run_and_prints_its_figures(
    shell: Shell, tmp_path: Path, database_url: str | None, embedder: MiniLMEmbedder
) -> None:
    consultation_id = _accepted_question(shell, tmp_path, database_url, embedder)

    table = shell.run("quality", "run", "--asset", "garden").stdout
    assert "garden" in table
    assert "platform" in table
    assert "platform-held set" in table
    assert "1 of 1" in table  # right of measured: the asset answers it as it did

    reports = json.loads(shell.run("quality", "run", "--asset", "garden", "--json").stdout)
    assert [(r["asset"], r["scope"], r["golden"], r["size"]) for r in reports] == [
        ("garden", "platform", "platform-held set", 1)
    ]
    assert reports[0]["metrics"]["right"] == {"value": 1.0, "n": 1, "right": 1}
    runtime = Runtime(
        Settings(data_dir=tmp_path / "data", database_url=database_url), embedder=embedder
    )
    try:
        with Session(runtime.engine) as session:
            runs = session.exec(select(EvalRun).order_by(col(EvalRun.created_at))).all()
            assert [r.scope for r in runs] == ["platform", "platform"]
            stored = session.get(EvalRun, reports[0]["run_id"])
            assert stored is not None
            assert stored.metrics == reports[0]["metrics"]
            assert [q["id"] for q in stored.questions] == [consultation_id]
    finally:
        runtime.close()

    # Every published asset by default; an unknown asset is an error a person can read.
    everything = json.loads(shell.run("quality", "run", "--json").stdout)
    assert [r["asset"] for r in everything] == ["garden"]
    unknown = shell.run("quality", "run", "--asset", "nope", ok=False)
    assert unknown.returncode == 1
    assert "no asset 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_quality_run_with_nothing_to_run_says_so(shell: Shell) -> None:
    shell.run("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "expert")
    shell.run(
        *["asset", "create", "--owner", "ada@example.com", "--slug", "garden"], "--title", "G"
    )
    quiet = shell.run("quality", "run", "--asset", "garden")
    assert "nothing to run" in quiet.stdout
    assert json.loads(shell.run("quality", "run", "--asset", "garden", "--json").stdout) == []
