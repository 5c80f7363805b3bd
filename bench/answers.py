"""Answers, measured: the three answer-level golden sets, before and after, in one run.

The sets (``evals/datasets/answers/``) ask a codebase (urllib3 2.8.0, fetched from PyPI by
``bench/corpora/code/fetch.py``), a regulation (the EU AI Act) and papers (three JSS articles),
each question with the facts a right answer states. Each corpus is ingested once into an asset
of a data dir kept between runs (``--data``). Every question is answered twice:

* before: the answerer and retrieval of commit ``--baseline`` (today's code path as it landed),
  loaded from git into this process;
* after: the product as it is, through the same function ``vouch eval`` uses.

Printed per set: answer accuracy (facts stated and an expected unit cited), final precision
(right among answers marked final), coverage (share final), abstention accuracy, expected
calibration error and citation support (evals/runner.py defines them); then per question tag.

    python bench/answers.py [--data /tmp/vouch-answers] [--baseline c8dedfb] [--sets code,...]
        [--json out.json] [--after-only] [--limit N]

With ``VOUCH_LLM__BASE_URL`` and ``VOUCH_LLM__MODEL`` set, "after" is the chat model's answers.
"""

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlmodel import Session, select

from app import accounts, querying
from app.models import Account
from app.runtime import Runtime
from assets.errors import AssetNotFound
from assets.models import Asset
from assets.retrieval import Passage
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset, get_visible_asset
from core.config import QueueSettings, Settings
from core.db import session_scope
from evals.golden import load_golden
from evals.runner import answer_metrics, run_eval
from ingestion import pipeline
from ingestion import service as ingestion
from migrations import upgrade

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "bench" / "corpora"
SETS = ROOT / "evals" / "datasets" / "answers"
BASELINE_K = 5  # passages the baseline answered from (app.querying.ANSWER_K then)


@dataclass(frozen=True)
class AnswerSet:
    name: str
    kind: str
    files: Callable[[Path], list[Path]]  # the corpus, given the data dir


def _code_files(data: Path) -> list[Path]:
    dest = data / "corpora" / "code"
    if not (dest / "urllib3").is_dir():
        subprocess.run([sys.executable, str(CORPORA / "code" / "fetch.py"), str(dest)], check=True)
    return [dest / "urllib3"]


ANSWER_SETS = {
    "code": AnswerSet("code", "code", _code_files),
    "regulation": AnswerSet(
        "regulation", "regulation", lambda _: [CORPORA / "regulation" / "ai_act_2024_1689.md"]
    ),
    "paper": AnswerSet("paper", "paper", lambda _: sorted((CORPORA / "paper").glob("*.pdf"))),
}


def _baseline(commit: str) -> tuple[ModuleType, ModuleType]:
    """``assets/retrieval.py`` and ``assets/answering.py`` as they were at ``commit``."""
    folder = Path(tempfile.mkdtemp(prefix="vouch-baseline-"))
    loaded = []
    for name in ("retrieval", "answering"):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:assets/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path = folder / f"baseline_{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        loaded.append(module)
    return loaded[0], loaded[1]


def _ingested(runtime: Runtime, answer_set: AnswerSet) -> tuple[Asset, Account]:
    """The set's asset, ingested once (a kept data dir reuses it)."""
    slug = f"answers-{answer_set.name}"
    with session_scope(runtime.engine) as session:
        owner = session.exec(select(Account).where(Account.email == "bench@answers.test")).first()
        if owner is None:
            owner = accounts.create_account(
                session, email="bench@answers.test", name="Bench", role="expert"
            )
        viewer = Viewer(owner.id, owner.role)
        try:
            return get_visible_asset(session, viewer=viewer, slug=slug), owner
        except AssetNotFound:
            pass  # made below, then ingested
        asset = create_asset(
            session,
            owner=viewer,
            data=AssetCreate(slug=slug, title=f"Answer set: {answer_set.name}"),
            embedder=runtime.embedder,
        )
    for path in answer_set.files(runtime.settings.data_dir):
        with session_scope(runtime.engine) as session:
            job = ingestion.submit_local(
                session, asset=asset, account_id=owner.id, path=path, kind=answer_set.kind
            )
            ingestion.claim_job(session, job.id)
        done = pipeline.run_job(
            runtime.engine,
            job_id=job.id,
            index=runtime.index,
            embedder=runtime.embedder,
            limits=runtime.settings.ingest,
            lexical=runtime.lexical,
            work_dir=runtime.settings.work_path,
        )
        print(f"ingested {path.name}: {done.status}, {done.chunks_written} chunks", flush=True)
    return asset, owner


def _by_tag(questions: list[dict[str, Any]], tags: dict[str, list[str]]) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q in questions:
        for tag in tags.get(q["id"], []):
            grouped[tag].append(q["answer"] | {"unanswerable": q["unanswerable"]})
    return {tag: answer_metrics(answers) for tag, answers in sorted(grouped.items())}


def _row(name: str, m: dict[str, Any]) -> str:
    def cell(metric: str) -> str:
        value = m.get(metric, {}).get("value")
        return "   -  " if value is None else f"{value:6.3f}"

    return (
        f"  {name:<10} accuracy {cell('answer_accuracy')}  final-precision "
        f"{cell('final_precision')}  coverage {cell('coverage')}  abstention "
        f"{cell('abstention_accuracy')}  ECE {cell('ece')}  support {cell('citation_support')}"
    )


def _measure(
    runtime: Runtime,
    answer_set: AnswerSet,
    baseline_retrieval: Any,
    baseline_answering: Any,
    *,
    before_too: bool = True,
    limit: int = 0,
) -> dict[str, Any]:
    """Print the set's figures, before and after; return its scored questions."""
    golden = load_golden(SETS / f"{answer_set.name}.jsonl")
    if limit and limit < len(golden):  # spread over the set: it is written topic by topic
        chosen = [round(i * len(golden) / limit) for i in range(limit)]
        golden = replace(
            golden, items=[golden.items[i] for i in chosen], lines=[golden.lines[i] for i in chosen]
        )
    tags = {item.id: list(item.tags) for item in golden.items}
    asset, owner = _ingested(runtime, answer_set)
    dump: dict[str, Any] = {}
    with Session(runtime.engine) as session:

        def search(question: str, n: int) -> list[Passage]:
            return querying.search(
                session, runtime, account=owner, slug=asset.slug, query=question, k=n
            )

        def before(question: str) -> Any:
            passages = baseline_retrieval.search(
                asset,
                query=question,
                k=BASELINE_K,
                index=runtime.index,
                embedder=runtime.embedder,
                lexical=runtime.lexical,
            )
            return baseline_answering.answer(
                question, passages, review_threshold=asset.review_threshold
            )

        def after(question: str) -> Any:
            return querying.draft_answer(
                session, runtime, account=owner, slug=asset.slug, question=question
            )

        print(f"\n{answer_set.name}: {len(golden)} questions", flush=True)
        runs = (("before", before), ("after", after)) if before_too else (("after", after),)
        for label, answer in runs:
            report = run_eval(session, asset=asset, golden=golden, search=search, answer=answer)
            print(_row(label, report.metrics), flush=True)
            for tag, figures in _by_tag(report.questions, tags).items():
                print("    " + _row(tag, figures).strip(), flush=True)
            dump[f"{answer_set.name}/{label}"] = report.questions
        session.rollback()  # the runs are not kept
    return dump


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/vouch-answers"))
    parser.add_argument("--baseline", default="c8dedfb", help="commit of 'before'")
    parser.add_argument("--sets", default="code,regulation,paper")
    parser.add_argument("--json", type=Path, help="write every scored question here")
    parser.add_argument("--after-only", action="store_true", help="skip 'before'")
    parser.add_argument("--limit", type=int, default=0, help="N questions of each set, spread")
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # fonts it cannot fully read: noise here

    settings = Settings(data_dir=args.data, queue=QueueSettings(immediate=True))
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    baseline_retrieval, baseline_answering = _baseline(args.baseline)
    dump: dict[str, Any] = {}
    for name in args.sets.split(","):
        dump |= _measure(
            runtime,
            ANSWER_SETS[name],
            baseline_retrieval,
            baseline_answering,
            before_too=not args.after_only,
            limit=args.limit,
        )
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1, default=str))
    runtime.close()


if __name__ == "__main__":
    main()
