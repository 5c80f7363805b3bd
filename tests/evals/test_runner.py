"""The eval runner on a real asset (the handbook, real search and answers) and on hand-made
rankings whose scores are computed by hand."""

import json
from dataclasses import dataclass, field
from math import log2
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from app import querying
from app.runtime import Runtime
from assets import answering
from assets.models import Asset
from assets.retrieval import Passage
from evals.errors import InvalidEval
from evals.golden import GoldenSet, load_golden
from evals.models import EvalRun
from evals.runner import list_eval_runs, run_eval
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "handbook.jsonl"


@pytest.fixture
def handbook(runtime: Runtime, expert: Actor) -> Asset:
    asset = create_test_asset(runtime, owner=expert.account)
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded"
    return asset


def _search(session: Session, runtime: Runtime, actor: Actor, asset: Asset) -> Any:
    def search(question: str, n: int) -> list[Passage]:
        return querying.search(
            session, runtime, account=actor.account, slug=asset.slug, query=question, k=n
        )

    return search


def test_handbook_run_scores_retrieval_answers_and_abstention_and_is_stored(
    runtime: Runtime, expert: Actor, handbook: Asset, session: Session
) -> None:
    search = _search(session, runtime, expert, handbook)

    def answer(question: str) -> answering.Answer:
        passages = search(question, querying.ANSWER_K)
        return answering.answer(question, passages, review_threshold=handbook.review_threshold)

    golden = load_golden(GOLDEN)
    report = run_eval(session, asset=handbook, golden=golden, search=search, answer=answer, k=10)
    session.commit()

    metrics = report.metrics
    assert set(metrics) == {
        "recall@10",
        "mrr@10",
        "ndcg@10",
        "map@10",
        "citation_precision",
        "citation_recall",
        "abstention_accuracy",
        "answer_accuracy",
        "final_precision",
        "coverage",
        "ece",
        "citation_support",
        "right",
    }
    # six answerable questions score retrieval; all seven answers score abstention
    assert {name: m["n"] for name, m in metrics.items()} == {
        "recall@10": 6,
        "mrr@10": 6,
        "ndcg@10": 6,
        "map@10": 6,
        "citation_precision": 6,
        "citation_recall": 6,
        "abstention_accuracy": 7,
        # the handbook set lists no facts: only its unanswerable item says what is right
        "answer_accuracy": 0,
        "final_precision": 0,
        "coverage": 1,
        "ece": 0,
        "citation_support": 0,
        # every answered question is judged right or wrong for the public score
        "right": 7,
    }
    assert all(0.0 <= m["value"] <= 1.0 for m in metrics.values() if m["n"])
    # the handbook has fewer chunks than k: every expected unit is among them
    assert metrics["recall@10"]["value"] == 1.0
    assert metrics["abstention_accuracy"]["value"] == 1.0

    by_id = {q["id"]: q for q in report.questions}
    refunds = by_id["refunds"]
    assert refunds["first_hit"] == 1
    assert refunds["rr"] == 1.0
    assert refunds["retrieved"][0]["locator"] == {
        "path": "policies.md",
        "section": "Store policies > Refunds",
        "lines": [5, 8],
    }
    assert refunds["retrieved"][0]["hits"] == [0]
    assert refunds["answer"]["citation_precision"] == 1.0
    assert refunds["answer"]["citation_recall"] == 1.0
    assert "14 days" in refunds["answer"]["text"]
    # the class chunk holds points_for and the quoted docstring: one chunk, two units
    assert by_id["loyalty"]["retrieved"][0]["hits"] == [0, 1]
    world_cup = by_id["world-cup"]
    assert world_cup["unanswerable"]
    assert "retrieved" not in world_cup
    assert world_cup["answer"]["abstained"]
    assert world_cup["answer"]["correct_abstention"]
    assert world_cup["answer"]["citation_precision"] is None

    (stored,) = list_eval_runs(session, asset_id=handbook.id)
    assert stored.id == report.run.id
    assert stored.id.startswith("evr_")
    assert (stored.golden_name, stored.golden_sha256, stored.size, stored.k) == (
        "handbook",
        golden.sha256,
        7,
        10,
    )
    assert stored.metrics == metrics
    assert stored.questions == json.loads(json.dumps(report.questions))
    assert stored.created_at.tzinfo is not None

    public = report.public()
    assert public["asset"] == handbook.slug
    assert public["golden"] == "handbook"
    assert (public["size"], public["k"]) == (7, 10)


def test_retrieval_only_run_has_no_answer_metrics(
    runtime: Runtime, expert: Actor, handbook: Asset, session: Session
) -> None:
    search = _search(session, runtime, expert, handbook)
    report = run_eval(session, asset=handbook, golden=load_golden(GOLDEN), search=search, k=3)
    assert set(report.metrics) == {"recall@3", "mrr@10", "ndcg@10", "map@10"}
    assert all(q["answer"] is None for q in report.questions)
    # up to 10 chunks are fetched whatever k is, since MRR and nDCG are read at 10
    assert all(3 < len(q["retrieved"]) <= 10 for q in report.questions if not q["unanswerable"])


# Hand-made rankings: the runner is handed a search function, so one that returns fixed
# passages tests the unit walk exactly.


def _passage(rank: int, path: str, lines: list[int], text: str = "") -> Passage:
    return Passage(
        id=f"c{rank}",
        text=text,
        kind="text",
        locator={"path": path, "lines": lines},
        score=1 - rank / 10,
    )


@dataclass
class _Citation:
    text: str
    locator: dict[str, Any]


@dataclass
class _Answer:
    text: str
    status: str
    citations: list[_Citation] = field(default_factory=list)
    confidence: float = 0.5


def _golden(tmp_path: Path, *items: dict[str, Any]) -> GoldenSet:
    path = tmp_path / "hand.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return load_golden(path)


RANKING = [
    _passage(1, "a.md", [1, 4]),  # hits nothing: one irrelevant position
    _passage(2, "a.md", [10, 30]),  # hits units 0 and 1: two positions
    _passage(3, "a.md", [20, 40]),  # hits 1 again (skipped) and 2
]
ITEM = {
    "id": "q",
    "question": "where?",
    "expected": [
        {"path": "a.md", "lines": [10, 12], "grade": 2},
        {"path": "a.md", "lines": [25, 26]},
        {"path": "a.md", "lines": [35, 35]},
        {"path": "b.md"},  # never retrieved
    ],
}


def test_units_walk_in_rank_order_and_scores_follow_by_hand(
    runtime: Runtime, expert: Actor, session: Session, tmp_path: Path
) -> None:
    asset = create_test_asset(runtime, owner=expert.account)

    def search(question: str, n: int) -> list[Passage]:
        assert (question, n) == ("where?", 10)
        return RANKING

    report = run_eval(session, asset=asset, golden=_golden(tmp_path, ITEM), search=search, k=3)
    (q,) = report.questions
    # ranked units: -1, 0, 1, 2 -> cut at k=3 keeps -1, 0, 1
    assert [r["hits"] for r in q["retrieved"]] == [[], [0, 1], [1, 2]]
    assert q["found"] == [0, 1]
    assert q["first_hit"] == 2
    assert q["recall"] == pytest.approx(2 / 4)
    assert q["rr"] == pytest.approx(1 / 2)
    dcg = 2 / log2(3) + 1 / log2(4) + 1 / log2(5)
    ideal = 2 + 1 / log2(3) + 1 / log2(4) + 1 / log2(5)
    assert q["ndcg"] == pytest.approx(dcg / ideal)
    assert q["ap"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 4)
    assert report.metrics["recall@3"] == {"value": 0.5, "n": 1}


def test_citations_and_abstentions_are_scored_per_answer(
    runtime: Runtime, expert: Actor, session: Session, tmp_path: Path
) -> None:
    asset = create_test_asset(runtime, owner=expert.account)
    golden = _golden(
        tmp_path,
        ITEM,
        {"id": "shy", "question": "also where?", "expected": [{"path": "a.md"}]},
        {"id": "none", "question": "nowhere?", "unanswerable": True},
    )
    answers = {
        # cites unit 0, then something no unit names: precision 1/2, recall 1/4
        "where?": _Answer(
            "See [1] and [2].",
            "final",
            [
                _Citation("...", {"path": "a.md", "lines": [11, 11]}),
                _Citation("...", {"path": "c.md", "lines": [1, 2]}),
            ],
        ),
        "also where?": _Answer("No idea.", "abstained"),  # wrongly abstains
        "nowhere?": _Answer("Made up [1].", "final", [_Citation("x", {"path": "a.md"})]),
    }
    report = run_eval(
        session,
        asset=asset,
        golden=golden,
        search=lambda _q, _n: RANKING,
        answer=answers.__getitem__,
    )
    by_id = {q["id"]: q for q in report.questions}
    assert by_id["q"]["answer"]["citation_precision"] == 0.5
    assert by_id["q"]["answer"]["citation_recall"] == 0.25
    assert [c["hits"] for c in by_id["q"]["answer"]["citations"]] == [[0], []]
    assert by_id["shy"]["answer"]["citation_precision"] is None
    assert by_id["shy"]["answer"]["citation_recall"] == 0.0
    assert by_id["none"]["answer"]["correct_abstention"] is False
    metrics = report.metrics
    assert metrics["citation_precision"] == {"value": 0.5, "n": 1}
    assert metrics["citation_recall"] == {"value": 0.125, "n": 2}
    assert metrics["abstention_accuracy"] == {"value": pytest.approx(1 / 3, abs=1e-4), "n": 3}
    # the worst: wrong abstentions first, then the weakest retrieval
    assert [q["id"] for q in report.worst(5)] == ["none", "shy", "q"]


def test_a_question_search_refuses_names_its_golden_line(
    runtime: Runtime, expert: Actor, handbook: Asset, session: Session, tmp_path: Path
) -> None:
    golden = _golden(
        tmp_path,
        {"id": "ok", "question": "refunds?", "expected": [{"path": "policies.md"}]},
        {"id": "long", "question": "why " * 600, "expected": [{"path": "policies.md"}]},
    )
    search = _search(session, runtime, expert, handbook)
    with pytest.raises(InvalidEval, match=r"hand.jsonl:2: the question is 2399 characters"):
        run_eval(session, asset=handbook, golden=golden, search=search)
    with pytest.raises(InvalidEval, match="k must be between 1 and 50"):
        run_eval(session, asset=handbook, golden=golden, search=search, k=51)
    assert session.exec(select(EvalRun)).all() == []


def test_answers_are_right_when_they_state_the_facts_and_cite_an_expected_unit(
    runtime: Runtime, expert: Actor, session: Session, tmp_path: Path
) -> None:
    asset = create_test_asset(runtime, owner=expert.account)
    fine = {"path": "a.md", "lines": [10, 12]}
    golden = _golden(
        tmp_path,
        {"id": "right", "question": "fine?", "expected": [fine], "facts": [["20 000 000"], "4 %"]},
        {
            "id": "half",
            "question": "fine again?",
            "expected": [fine],
            "facts": ["20 000 000", "4 %"],
        },
        {"id": "uncited", "question": "fine once more?", "expected": [fine], "facts": ["4 %"]},
        {"id": "none", "question": "moon?", "unanswerable": True},
        {"id": "nofacts", "question": "where?", "expected": [fine]},
    )
    source = _Citation(
        "fines up to EUR 20 000 000 or 4 % of turnover", {"path": "a.md", "lines": [11, 11]}
    )
    elsewhere = _Citation("4 % here too", {"path": "c.md", "lines": [1, 1]})
    answers = {
        "fine?": _Answer("Up to 20,000,000 or 4% [1].", "final", [source], 0.95),
        "fine again?": _Answer("Up to 20,000,000 [1].", "final", [source], 0.95),
        "fine once more?": _Answer("4% [1].", "pending_review", [elsewhere], 0.3),
        "moon?": _Answer("No answer.", "abstained", [], 0.1),
        "where?": _Answer("Here [1].", "final", [source], 0.8),
    }
    report = run_eval(
        session,
        asset=asset,
        golden=golden,
        search=lambda _q, _n: RANKING,
        answer=answers.__getitem__,
    )
    by_id = {q["id"]: q["answer"] for q in report.questions}
    assert (by_id["right"]["correct"], by_id["right"]["facts_stated"]) == (True, [True, True])
    assert (by_id["half"]["correct"], by_id["half"]["facts_stated"]) == (False, [True, False])
    assert by_id["uncited"]["correct"] is False  # the fact, but cited to the wrong place
    assert by_id["none"]["correct"] is True
    assert by_id["nofacts"]["correct"] is None
    m = report.metrics
    assert m["answer_accuracy"] == {"value": pytest.approx(1 / 3, abs=1e-4), "n": 3}
    # final: right, half (and nofacts, which is not judged)
    assert m["final_precision"] == {"value": 0.5, "n": 2}
    assert m["coverage"] == {"value": 0.5, "n": 4}
    # given answers: (0.95 right), (0.95 wrong), (0.3 wrong): |0.95-0.5|*2/3 + |0.3-0|*1/3
    assert m["ece"] == {"value": pytest.approx(0.4, abs=1e-4), "n": 3}
    # right: both facts in its citation; half: its one fact too; uncited: not in c.md's text? it is
    assert m["citation_support"] == {"value": 1.0, "n": 3}
