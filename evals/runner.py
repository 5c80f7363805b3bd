"""Score an asset on a golden set: retrieval by units, answers by citations and abstention.

``run_eval`` takes the search and answer functions as arguments, so evals imports neither app
nor billing; the CLI (``vouch eval``) hands in the product's own search and an answerer that
records and bills nothing. The run is stored as an ``EvalRun`` of the asset.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import Session, col, select

from assets.models import Asset
from assets.retrieval import MAX_K, Passage
from core.errors import InvalidInput
from evals import facts, matching, metrics
from evals.errors import InvalidEval
from evals.golden import ExpectedUnit, GoldenItem, GoldenSet
from evals.models import EvalRun

# MRR, nDCG and MAP are read at 10, whatever k is.
DEPTH = 10
ABSTAINED = "abstained"
# Who ran a set, and so whether the run may count in the public quality score
# (app/quality.py): an expert's own set stays private.
SCOPES = ("private", "platform", "approved")


class CitationLike(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def locator(self) -> Mapping[str, Any]: ...


class AnswerLike(Protocol):
    """What the runner reads of an answer (``assets.answering.Answer`` is one)."""

    @property
    def text(self) -> str: ...

    @property
    def status(self) -> str: ...  # "abstained" when the assistant declined to answer

    @property
    def confidence(self) -> float: ...  # the answerer's probability that the answer is right

    @property
    def citations(self) -> Sequence[CitationLike]: ...


SearchFn = Callable[[str, int], list[Passage]]
AnswerFn = Callable[[str], AnswerLike]


@dataclass(frozen=True, slots=True)
class EvalReport:
    """A stored run and the slug of the asset it scored."""

    run: EvalRun
    asset: str

    @property
    def metrics(self) -> dict[str, Any]:
        return self.run.metrics

    @property
    def questions(self) -> list[dict[str, Any]]:
        return self.run.questions

    def public(self) -> dict[str, Any]:
        """The JSON shape of ``vouch eval --json``."""
        return {
            "asset": self.asset,
            "golden": self.run.golden_name,
            "golden_sha256": self.run.golden_sha256,
            "size": self.run.size,
            "k": self.run.k,
            "run_id": self.run.id,
            "scope": self.run.scope,
            "golden_set_id": self.run.golden_set_id,
            "created_at": self.run.created_at.isoformat(),
            "metrics": self.run.metrics,
            "questions": self.run.questions,
        }

    def worst(self, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` questions that went worst: missed abstentions and wrong ones, then the
        lowest nDCG, reciprocal rank and recall."""

        def badness(q: dict[str, Any]) -> tuple[float, ...]:
            answer = q.get("answer") or {}
            wrong_abstention = answer.get("correct_abstention") is False
            if q["unanswerable"]:
                return (0.0 if wrong_abstention else 2.0, 0.0, 0.0, 0.0)
            return (
                0.0 if wrong_abstention else 1.0,
                q["ndcg"],
                q["rr"],
                q["recall"],
            )

        ranked = sorted(self.questions, key=badness)
        return [q for q in ranked if badness(q) < (1.0, 1.0, 1.0, 1.0)][:n]


def _unit_ids(units: Sequence[int]) -> list[str]:
    return [str(i) for i in units]


def _score(
    item: GoldenItem, *, search: SearchFn, answer: AnswerFn | None, k: int
) -> dict[str, Any]:
    relevant = {str(i): unit.grade for i, unit in enumerate(item.expected)}
    result: dict[str, Any] = {
        "id": item.id,
        "question": item.question,
        "unanswerable": item.unanswerable,
        "expected": [unit.public() for unit in item.expected],
    }
    if not item.unanswerable:
        depth = max(k, DEPTH)
        passages = search(item.question, depth)[:depth]
        chunk_hits = [matching.hits(item.expected, p.locator, p.text) for p in passages]
        ranked = metrics.units_in_rank_order([_unit_ids(h) for h in chunk_hits], depth)
        found = sorted(int(u) for u in set(ranked[:k]) if u in relevant)
        first_hit = next((r for r, u in enumerate(ranked[:DEPTH], 1) if u in relevant), None)
        result |= {
            "retrieved": [
                {"rank": rank, "score": p.score, "locator": p.locator, "hits": h}
                for rank, (p, h) in enumerate(zip(passages, chunk_hits, strict=True), 1)
            ],
            "found": found,
            "first_hit": first_hit,
            "recall": metrics.recall_at_k(ranked, relevant, k),
            "rr": metrics.mrr_at_k(ranked, relevant, DEPTH),
            "ndcg": metrics.ndcg_at_k(ranked, relevant, DEPTH),
            "ap": metrics.map_at_k(ranked, relevant, DEPTH),
        }
    result["answer"] = None if answer is None else _score_answer(item, answer(item.question))
    return result


def _score_answer(item: GoldenItem, given: AnswerLike) -> dict[str, Any]:
    expected: Sequence[ExpectedUnit] = item.expected
    relevant = {str(i): unit.grade for i, unit in enumerate(expected)}
    cited = [matching.hits(expected, c.locator, c.text) for c in given.citations]
    abstained = given.status == ABSTAINED
    scored: dict[str, Any] = {
        "status": given.status,
        "abstained": abstained,
        "correct_abstention": abstained == item.unanswerable,
        "text": given.text,
        "citations": [
            {"locator": dict(c.locator), "hits": h}
            for c, h in zip(given.citations, cited, strict=True)
        ],
        "citation_precision": None,
        "citation_recall": None,
    }
    if not item.unanswerable:
        cited_ids = [_unit_ids(h) for h in cited]
        scored["citation_precision"] = metrics.citation_precision(cited_ids)
        scored["citation_recall"] = metrics.citation_recall(cited_ids, relevant)
    scored |= _score_facts(item, given, cites_expected=any(cited))
    return scored


def _score_facts(item: GoldenItem, given: AnswerLike, *, cites_expected: bool) -> dict[str, Any]:
    """Whether the answer is right: for an unanswerable item, that it abstained; else that it
    states every fact and cites an expected unit (None when the item lists no facts). And, of
    the facts it states, the share its cited passages state too (citation support)."""
    abstained = given.status == ABSTAINED
    found = facts.facts_stated(item.facts, "" if abstained else given.text)
    sources = "\n".join(c.text for c in given.citations)
    supported = facts.facts_stated(
        [f for f, ok in zip(item.facts, found, strict=True) if ok], sources
    )
    correct: bool | None
    if item.unanswerable:
        correct = abstained
    elif not item.facts:
        correct = None
    else:
        correct = not abstained and all(found) and cites_expected
    return {
        "confidence": given.confidence,
        "facts_stated": found,
        "correct": correct,
        "citation_support": sum(supported) / len(supported) if supported else None,
    }


def answer_right(question: Mapping[str, Any]) -> bool | None:
    """Whether a scored question's answer counts as right in the public quality score; None
    when no answer was scored. An unanswerable question is answered right by abstaining; any
    other by an answer that does not abstain, cites at least one expected unit and states every
    fact the item lists (all of them when it lists none)."""
    answer = question.get("answer")
    if not answer:
        return None
    if question["unanswerable"]:
        return bool(answer["abstained"])
    cites_expected = any(c["hits"] for c in answer["citations"])
    return not answer["abstained"] and cites_expected and all(answer["facts_stated"])


def _metric(values: Sequence[float | None]) -> dict[str, Any]:
    value, n = metrics.mean(values)
    return {"value": None if value is None else round(value, 4), "n": n}


def summarise(questions: Sequence[dict[str, Any]], *, k: int) -> dict[str, dict[str, Any]]:
    """The metrics of a run from its questions' details, each as ``{"value", "n"}``.

    Retrieval metrics average over answerable questions; citation precision over answerable
    questions whose answer cites something; citation recall over answerable questions;
    abstention accuracy over every answered question; ``right`` (with its count) over every
    answered question, by ``answer_right``.
    """
    answerable = [q for q in questions if not q["unanswerable"]]
    summary = {
        f"recall@{k}": _metric([q["recall"] for q in answerable]),
        f"mrr@{DEPTH}": _metric([q["rr"] for q in answerable]),
        f"ndcg@{DEPTH}": _metric([q["ndcg"] for q in answerable]),
        f"map@{DEPTH}": _metric([q["ap"] for q in answerable]),
    }
    answered = [q for q in questions if q["answer"] is not None]
    if answered:
        summary["citation_precision"] = _metric(
            [q["answer"]["citation_precision"] for q in answered if not q["unanswerable"]]
        )
        summary["citation_recall"] = _metric(
            [q["answer"]["citation_recall"] for q in answered if not q["unanswerable"]]
        )
        accuracy = metrics.abstention_accuracy(
            (q["unanswerable"], q["answer"]["abstained"]) for q in answered
        )
        summary["abstention_accuracy"] = {
            "value": None if accuracy is None else round(accuracy, 4),
            "n": len(answered),
        }
        summary |= answer_metrics(
            [q["answer"] | {"unanswerable": q["unanswerable"]} for q in answered]
        )
        right = [bool(answer_right(q)) for q in answered]
        summary["right"] = _metric([float(ok) for ok in right]) | {"right": sum(right)}
    return summary


def answer_metrics(answers: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Answer-level figures from scored answers (each with ``correct``, ``status``,
    ``confidence``, ``abstained``, ``unanswerable`` and ``citation_support``), over the items
    that say what a right answer is (facts, or unanswerable):

    * answer accuracy: right answers among answerable items;
    * final precision: right answers among those marked final;
    * coverage: the share of items answered final;
    * expected calibration error of the confidence against being right, over answers given;
    * citation support: of the facts an answer states, the share its citations state.
    """
    judged = [a for a in answers if a["correct"] is not None]
    finals = [a["correct"] for a in judged if a["status"] == "final"]
    given = [a for a in judged if not a["abstained"]]
    return {
        "answer_accuracy": _metric([float(a["correct"]) for a in judged if not a["unanswerable"]]),
        "final_precision": _metric([float(ok) for ok in finals]),
        "coverage": _metric([float(a["status"] == "final") for a in judged]),
        "ece": {
            "value": metrics.expected_calibration_error(
                [(a["confidence"], bool(a["correct"])) for a in given]
            ),
            "n": len(given),
        },
        "citation_support": _metric(
            [a["citation_support"] for a in judged if not a["unanswerable"]]
        ),
    }


def run_eval(
    session: Session,
    *,
    asset: Asset,
    golden: GoldenSet,
    search: SearchFn,
    answer: AnswerFn | None = None,
    k: int = 10,
    scope: str = "private",
    golden_set_id: str | None = None,
) -> EvalReport:
    """Score ``asset`` on ``golden`` and store the run (flushed, not committed).

    ``search(question, n)`` returns the asset's ``n`` best passages, best first; ``answer``,
    when given, answers a question without recording or billing it. ``scope`` says who ran the
    set (``SCOPES``): only the platform's runs count in the public score.
    """
    if not 1 <= k <= MAX_K:
        raise InvalidEval(f"k must be between 1 and {MAX_K}, not {k}")
    if scope not in SCOPES:
        raise InvalidEval(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    questions = []
    for index, item in enumerate(golden.items):
        try:
            questions.append(_score(item, search=search, answer=answer, k=k))
        except InvalidInput as exc:
            raise InvalidEval(f"{golden.where(index)}: {exc.message}") from exc
    run = EvalRun(
        asset_id=asset.id,
        golden_name=golden.name,
        golden_sha256=golden.sha256,
        size=len(golden.items),
        k=k,
        metrics=summarise(questions, k=k),
        questions=questions,
        scope=scope,
        golden_set_id=golden_set_id,
    )
    session.add(run)
    session.flush()
    return EvalReport(run=run, asset=asset.slug)


def list_eval_runs(
    session: Session, *, asset_id: str, limit: int = 20, scope: str | None = None
) -> list[EvalRun]:
    """The asset's latest eval runs (of one scope, if given), newest first."""
    statement = select(EvalRun).where(EvalRun.asset_id == asset_id)
    if scope is not None:
        statement = statement.where(EvalRun.scope == scope)
    statement = statement.order_by(col(EvalRun.created_at).desc(), col(EvalRun.id)).limit(limit)
    return list(session.exec(statement))
