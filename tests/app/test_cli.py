"""The `vouch` command, run from a shell as a user would, on a data dir the test owns."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import HANDBOOK

VOUCH = str(Path(sys.executable).parent / "vouch")


class Shell:
    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.env = {**os.environ, "VOUCH_DATA_DIR": str(data_dir), "NO_COLOR": "1"}
        if database_url:
            self.env["VOUCH_DATABASE_URL"] = database_url

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [VOUCH, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result


@pytest.fixture
def shell(tmp_path: Path, database_url: str | None) -> Shell:
    return Shell(tmp_path / "data", database_url)


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
    assert set(top) == {"rank", "score", "text", "locator"}
    assert top["locator"]["path"] == "tools/pricing.py"
    assert top["locator"]["symbol"].startswith("LoyaltyCard")

    answer = json.loads(
        shell.run(
            "ask", "garden", "How long do refunds take?", "--as", "cleo@example.com", "--json"
        ).stdout
    )
    assert set(answer) == {
        "answer",
        "citations",
        "confidence",
        "status",
        "consultation_id",
        "tokens",
    }
    assert "14 days" in answer["answer"]
    assert answer["citations"][0]["locator"]["path"] == "policies.md"
    assert answer["citations"][0]["locator"]["lines"] == [5, 8]
    assert answer["tokens"]["prompt"] > answer["tokens"]["completion"] > 0


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
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
