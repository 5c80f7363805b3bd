"""``vouch eval``: score an asset on a golden set and store the run as its quality record.

Retrieval goes through the product's own search; answers go through the same steps as
``ask`` (retrieval, then the chat model or the extractive answerer) but are neither recorded as
consultations nor billed. With a chat model configured, answering costs its tokens: use
``--no-answers`` to score retrieval only.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app import locators, quality, querying
from app.cli_common import err, fail, out, print_json, runtime, session
from app.models import Account
from assets import answering
from assets.retrieval import MAX_K, Passage
from assets.service import Viewer, get_visible_asset
from core.errors import VouchError
from evals.errors import GoldenSetError, InvalidEval
from evals.golden import load_golden
from evals.runner import EvalReport, run_eval

WORST = 5


def eval_command(
    asset: Annotated[str, typer.Argument(help="The asset's slug")],
    golden: Annotated[Path, typer.Argument(help="Golden set, JSONL (see evals/golden.py)")],
    k: Annotated[int, typer.Option("-k", min=1, max=MAX_K, help="Recall cut-off")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON")] = False,
    no_answers: Annotated[
        bool, typer.Option("--no-answers", help="Score retrieval only, not answers")
    ] = False,
) -> None:
    """Score an asset on a golden set (retrieval, citations, abstention) and store the run."""
    try:
        golden_set = load_golden(golden)
    except GoldenSetError as exc:
        for problem in exc.message.splitlines():
            err.print(f"[red]error:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    rt = runtime()
    with session() as s:
        found = get_visible_asset(s, viewer=Viewer(account_id="", role="admin"), slug=asset)
        owner = s.get(Account, found.owner_id)
        assert owner is not None  # a foreign key guarantees it

        def search(question: str, n: int) -> list[Passage]:
            return querying.search(s, rt, account=owner, slug=found.slug, query=question, k=n)

        def answer(question: str) -> answering.Answer:
            return querying.draft_answer(s, rt, account=owner, slug=found.slug, question=question)

        try:
            report = run_eval(
                s,
                asset=found,
                golden=golden_set,
                search=search,
                answer=None if no_answers else answer,
                k=k,
            )
        except InvalidEval as exc:
            raise fail(exc.message) from exc
        data = report.public()
    if as_json:
        print_json(data)
        return
    _print_report(out, report)


def _print_report(console: Console, report: EvalReport) -> None:
    data = report.public()
    console.print(
        f"[bold]{data['asset']}[/bold] on golden set [bold]{data['golden']}[/bold] "
        f"({data['size']} questions, sha256 {data['golden_sha256'][:12]}) · k={data['k']} · "
        f"run {data['run_id']}",
        highlight=False,
    )
    table = Table("metric", "value", "n")
    for name, metric in data["metrics"].items():
        value = "-" if metric["value"] is None else f"{metric['value']:.3f}"
        table.add_row(name, value, str(metric["n"]))
    console.print(table)
    worst = report.worst(WORST)
    if not worst:
        return
    answered = any(q.get("answer") for q in worst)
    rows = Table("id", "nDCG@10", f"R@{data['k']}", "1st hit")
    rows.columns[0].max_width = 24
    rows.columns[0].overflow = "ellipsis"
    rows.columns[0].no_wrap = True
    if answered:
        rows.add_column("answer")
    rows.add_column("question · top result", ratio=1)
    for q in worst:
        retrieved = q.get("retrieved") or []
        cells = [
            q["id"],
            "-" if q["unanswerable"] else f"{q['ndcg']:.2f}",
            "-" if q["unanswerable"] else f"{q['recall']:.2f}",
            "unanswerable" if q["unanswerable"] else str(q["first_hit"] or "none"),
        ]
        if answered:
            cells.append((q.get("answer") or {}).get("status", ""))
        top = f"\n[dim]top: {_where(retrieved[0]['locator'])}[/dim]" if retrieved else ""
        cells.append(escape(q["question"][:200]) + top)
        rows.add_row(*cells)
    console.print("worst questions")
    console.print(rows)


def _where(locator: dict[str, Any]) -> str:
    return escape(locators.describe(locator))


quality_app = typer.Typer(
    help="The public quality score: the platform's own runs", no_args_is_help=True
)


@quality_app.command("run")
def quality_run(
    asset: Annotated[
        str | None,
        typer.Option(
            "--asset", help="Only this asset (published or not); default: every published one"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON")] = False,
) -> None:
    """Re-ask each asset's accepted and corrected questions and run its approved golden sets,
    storing platform runs that count in the public quality score (as the daily task does)."""
    try:
        reports = quality.run_platform_evals(runtime(), slug=asset)
    except VouchError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(reports)
        return
    if not reports:
        out.print("nothing to run: no accepted or corrected questions, no approved golden sets")
        return
    table = Table("asset", "scope", "set", "right", "run")
    for r in reports:
        right = r["metrics"].get("right") or {}
        table.add_row(
            r["asset"],
            r["scope"],
            escape(r["golden"]),
            f"{right.get('right', 0)} of {right.get('n', 0)}",
            r["run_id"],
        )
    out.print(table)
