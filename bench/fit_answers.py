"""Fit the answerer's models on the answer sets: which units to quote, and how sure to be.

For every answerable question of the three sets (``evals/datasets/answers/``, ingested by
``bench/answers.py``, whose data dir this reuses), the product's own retrieval gives the
passages and ``assets.answering`` cuts them into units with their features. A unit is a good
one to quote when it states one of the question's facts and its passage is one the golden set
expects. Three logistic models per kind of corpus are fitted, in order, as the answerer uses
them:

1. ``units``: every unit, without closeness in meaning (it costs an embedding): shortlists;
2. ``shortlist``: the shortlisted units, with their closeness in meaning: picks what to quote;
3. ``calibration``: the answers then composed, each right or not (facts stated and an expected
   unit cited; an unanswerable question right when the answer abstains), on the answer's own
   features: the probability that an answer is right, which decides whether it is final.

Printed: for each kind, the share of questions whose best unit is a good one (hit@1) with the
hand-set weights and with the fitted ones, in 5-fold cross-validation by question; with
``--calibrate``, the calibration's accuracy, expected calibration error, and the precision and
share of the answers it would mark final (p >= 0.9), out of fold. ``--write`` saves the
calibration fitted on all questions to ``assets/calibration.json`` and, with ``--units``, the
unit models to ``assets/answer_model.json`` (the answerer uses the hand-set unit weights there
today: the fitted ones did no better out of fold).

    python bench/fit_answers.py [--data /tmp/vouch-answers] [--calibrate] [--units] [--write]
"""

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, select

from app import querying
from app.models import Account
from app.runtime import Runtime
from assets import answering, calibration, compose
from assets.answering.extractive import _context, _scored
from core.config import QueueSettings, Settings
from evals import matching
from evals.facts import facts_stated
from evals.golden import GoldenItem, load_golden
from evals.metrics import expected_calibration_error
from evals.runner import _score_facts

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "evals" / "datasets" / "answers"
MODEL_FILE = ROOT / "assets" / "answer_model.json"
CALIBRATION_FILE = ROOT / "assets" / "calibration.json"
KINDS = ("code", "regulation", "paper")
FOLDS = 5
L2 = 1.0
FINAL = 0.9


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (the bias, column 0, is free)."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 1e-6
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x.T * (p * (1 - p))) @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass
class Question:
    item: GoldenItem
    passages: list[Any]
    scored: list[compose.Scored]
    good: list[bool]  # per scored unit: states a fact, in an expected passage


def _questions(runtime: Runtime, kind: str, owner: Account, session: Session) -> list[Question]:
    golden = load_golden(SETS / f"{kind}.jsonl")
    found = []
    for item in golden.items:
        passages = querying.search(
            session,
            runtime,
            account=owner,
            slug=f"answers-{kind}",
            query=item.question,
            k=querying.ANSWER_K,
        )
        considered = passages[: answering.MAX_PASSAGES]
        intent = compose.intent_of(item.question)
        scored = _scored(item.question, considered, intent)
        good = []
        for s in scored:
            passage = considered[s.unit.rank]
            expected = bool(matching.hits(item.expected, passage.locator, passage.text))
            good.append(expected and any(facts_stated(item.facts, s.unit.text)))
        found.append(Question(item, passages, scored, good))
    return found


def _matrix(scored: list[compose.Scored], features: tuple[str, ...]) -> np.ndarray:
    return np.array([[s.features[f] for f in features] for s in scored])


def _hit_at_1(questions: list[Question], weights: dict[str, float]) -> float:
    hits = []
    for q in questions:
        if not q.scored or not q.item.facts:
            continue
        best = max(
            range(len(q.scored)), key=lambda i: compose.linear(weights, q.scored[i].features)
        )
        hits.append(q.good[best])
    return float(np.mean(hits)) if hits else 0.0


def fit_listwise(
    groups: list[tuple[np.ndarray, np.ndarray]], l2: float = L2, steps: int = 400
) -> np.ndarray:
    """Weights that give the good units of each question most of its softmax: maximise
    sum over questions of log(sum of p over its good units), p = softmax(x @ w), with an L2
    penalty (Adam; the bias cancels out in a softmax and stays 0)."""
    d = groups[0][0].shape[1]
    w = np.zeros(d)
    m = np.zeros(d)
    v = np.zeros(d)
    for t in range(1, steps + 1):
        gradient = l2 * w
        for x, good in groups:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            q = p * good
            q /= q.sum()
            gradient += x.T @ (p - q)
        gradient[0] = 0.0
        m = 0.9 * m + 0.1 * gradient
        v = 0.999 * v + 0.001 * gradient**2
        w -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def _fit_units(questions: list[Question], features: tuple[str, ...]) -> dict[str, float]:
    groups = [
        (_matrix(q.scored, features), np.array(q.good, dtype=float))
        for q in questions
        if q.item.facts and any(q.good)
    ]
    if not groups:
        return {}
    w = fit_listwise(groups)
    return {f: round(float(v), 4) for f, v in zip(features, w, strict=True)}


def _folds(n: int) -> list[np.ndarray]:
    order = np.random.default_rng(7).permutation(n)
    return [order[i::FOLDS] for i in range(FOLDS)]


def _cross_validated(questions: list[Question], fit: Any, score: Any) -> list[float]:
    """Out-of-fold ``score(held_out, fit(train))`` for each fold."""
    results = []
    for held in _folds(len(questions)):
        train = [q for i, q in enumerate(questions) if i not in set(held)]
        test = [questions[i] for i in held]
        results.append(score(test, fit(train)))
    return results


def _shortlist(q: Question, units_model: dict[str, float]) -> list[int]:
    ranked = sorted(
        range(len(q.scored)), key=lambda i: -compose.linear(units_model, q.scored[i].features)
    )
    return ranked[: answering.SHORTLIST]


def _add_meaning(runtime: Runtime, questions: list[Question]) -> None:
    """Closeness in meaning for every unit (the fit's shortlists change with the weights)."""
    for q in questions:
        texts = [f"{_context(q.passages[s.unit.rank])}\n{s.unit.text}" for s in q.scored]
        if not texts:
            continue
        query, *vectors = runtime.embedder.embed([q.item.question, *texts])
        for s, vector in zip(q.scored, vectors, strict=True):
            s.features["meaning"] = float(np.dot(query, vector))


# Calibration


def _outcomes(runtime: Runtime, questions: list[Question]) -> tuple[np.ndarray, np.ndarray]:
    """Each question's answer (as the answerer gives it, units picked by the models now in
    assets/answer_model.json) that is not abstained: its calibration features, and whether it
    is right (facts stated and an expected unit cited; for an unanswerable question: never)."""
    rows, right = [], []
    for q in questions:
        given = answering.answer(
            q.item.question, q.passages, review_threshold=0.0, embed=runtime.embedder.embed
        )
        if given.status == "abstained":
            continue
        cites = any(matching.hits(q.item.expected, c.locator, c.text) for c in given.citations)
        correct = _score_facts(q.item, given, cites_expected=cites)["correct"]
        if correct is None and not q.item.unanswerable:
            continue  # an item with no facts to check
        rows.append([given.features[f] for f in calibration.FEATURES])
        right.append(float(bool(correct)))
    return np.array(rows), np.array(right)


def _calibration_report(p: np.ndarray, y: np.ndarray) -> str:
    final = p >= calibration.FINAL
    precision = f"{y[final].mean():.3f}" if final.any() else "-"
    ece = expected_calibration_error(list(zip(p.tolist(), (y > 0.5).tolist(), strict=True)))
    return (
        f"accuracy {y.mean():.3f}, final precision {precision} on {int(final.sum())} "
        f"(coverage {final.mean():.3f}), ECE {ece:.3f}"
    )


def _fit_calibration(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], str]:
    """The kind's calibration model fitted on all its answers, and its out-of-fold figures."""
    out = np.zeros(len(y))
    for held in _folds(len(y)):
        train = np.setdiff1d(np.arange(len(y)), held)
        out[held] = 1 / (1 + np.exp(-(x[held] @ fit_logistic(x[train], y[train]))))
    w = fit_logistic(x, y)
    model = {f: round(float(v), 4) for f, v in zip(calibration.FEATURES, w, strict=True)}
    return model, _calibration_report(out, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/vouch-answers"))
    parser.add_argument("--write", action="store_true", help="save the fitted models")
    parser.add_argument(
        "--calibrate", action="store_true", help="fit the calibration (after the unit models)"
    )
    parser.add_argument("--units", action="store_true", help="fit the unit models too")
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    runtime = Runtime(Settings(data_dir=args.data, queue=QueueSettings(immediate=True)))
    model = json.loads(MODEL_FILE.read_text())
    calibrations: dict[str, dict[str, float]] = {}
    pooled: list[tuple[np.ndarray, np.ndarray]] = []
    stage1 = tuple(f for f in compose.FEATURES if f != "meaning")
    stage2 = compose.FEATURES
    with Session(runtime.engine) as session:
        owner = session.exec(select(Account).where(Account.email == "bench@answers.test")).one()
        for kind in KINDS:
            questions = _questions(runtime, kind, owner, session)
            _add_meaning(runtime, questions)
            hand = model.get("shortlist", {}).get(kind, model["units"][kind])
            units = _fit_units(questions, stage1)
            folds = _cross_validated(
                questions,
                lambda train: (_fit_units(train, stage1), _fit_units(train, stage2)),
                lambda test, w: _hit_at_1(test, w[1]),
            )
            shortlist = _fit_units(questions, stage2)
            print(
                f"{kind}: {len(questions)} questions; best unit good (hit@1): hand-set "
                f"{_hit_at_1(questions, hand):.3f}, fitted in-sample "
                f"{_hit_at_1(questions, shortlist):.3f}, 5-fold "
                f"{np.mean(folds):.3f} (folds {', '.join(f'{f:.2f}' for f in folds)})",
                flush=True,
            )
            print(f"  units: {units}\n  shortlist: {shortlist}", flush=True)
            model["units"][kind] = units
            model.setdefault("shortlist", {})[kind] = shortlist
            if args.calibrate:
                x, y = _outcomes(runtime, questions)
                pooled.append((x, y))
                calibrations[kind], figures = _fit_calibration(x, y)
                print(f"  calibration, 5-fold: {figures}\n  {calibrations[kind]}", flush=True)
        if pooled:  # text, and any other kind: all the sets together
            x = np.vstack([x for x, _ in pooled])
            y = np.concatenate([y for _, y in pooled])
            calibrations["text"], figures = _fit_calibration(x, y)
            print(f"all kinds: calibration, 5-fold: {figures}", flush=True)
    if args.write and args.units:
        MODEL_FILE.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
        print(f"wrote {MODEL_FILE}")
    if args.write and calibrations:
        CALIBRATION_FILE.write_text(json.dumps(calibrations, indent=1, sort_keys=True) + "\n")
        print(f"wrote {CALIBRATION_FILE}")
    runtime.close()


if __name__ == "__main__":
    main()
