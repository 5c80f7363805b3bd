"""`vouch eval` from a shell (in this process: tests/app/shell.py): score an ingested folder on
a golden set, as JSON and as tables."""

import json
from pathlib import Path

from sqlmodel import Session

from core.db import make_engine
from evals.models import EvalRun
from tests.app.shell import Shell
from tests.factories import HANDBOOK

GOLDEN = HANDBOOK.parent / "golden" / "handbook.jsonl"


def test_eval_scores_an_ingested_folder_and_reports_bad_golden_lines(
    shell: Shell, tmp_path: Path, database_url: str | None
) -> None:
    shell.run("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "expert")
    shell.run(
        *["asset", "create", "--owner", "ada@example.com", "--slug", "garden", "--title", "G"]
    )
    shell.run("ingest", "garden", str(HANDBOOK), "--wait", "--json")

    report = json.loads(shell.run("eval", "garden", str(GOLDEN), "--json").stdout)
    assert {"asset", "golden", "size", "k", "metrics", "questions"} <= set(report)
    assert (report["asset"], report["golden"], report["size"], report["k"]) == (
        "garden",
        "handbook",
        7,
        10,
    )
    assert report["run_id"].startswith("evr_")
    assert report["metrics"]["recall@10"] == {"value": 1.0, "n": 6}
    assert report["metrics"]["abstention_accuracy"] == {"value": 1.0, "n": 7}
    assert {"mrr@10", "ndcg@10", "map@10", "citation_precision", "citation_recall"} <= set(
        report["metrics"]
    )
    assert [q["id"] for q in report["questions"]][:2] == ["refunds", "opening-hours"]
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'data' / 'vouch.db'}")
    with Session(engine) as session:
        stored = session.get(EvalRun, report["run_id"])
        assert stored is not None
        assert (stored.golden_name, stored.size, stored.metrics) == (
            "handbook",
            7,
            report["metrics"],
        )
    engine.dispose()

    table = shell.run("eval", "garden", str(GOLDEN), "-k", "1", "--no-answers").stdout
    assert "recall@1" in table
    assert "ndcg@10" in table
    assert "abstention_accuracy" not in table
    assert "worst questions" in table

    bad = tmp_path / "golden.jsonl"
    bad.write_text(
        '{"id": "q1", "question": "refunds?", "expected": [{"path": "policies.md"}]}\n'
        '{"id": "q2", "question": "hours?", "expected": [{"lines": [1, 2]}]}\n'
    )
    failed = shell.run("eval", "garden", str(bad), "--json", ok=False)
    assert failed.returncode == 1
    assert f"{bad}:2: expected[0]: " in failed.stderr
    assert "Traceback" not in failed.stderr
    assert failed.stdout == ""

    unknown = shell.run("eval", "nope", str(GOLDEN), ok=False)
    assert unknown.returncode == 1
    assert "no asset 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
