"""The public quality score of an asset: the share of its measured answers that were right,
with how many were measured and a 95% interval. Only what the platform measured counts;
nothing the expert types in or runs on their own does.

A measured answer is one of:

1. **A real consultation's outcome**, asked by a client (not the asset's expert, not an
   admin) whose e-mail address is verified, once settled. A freshly signed-up account that
   never proved its address (a sock puppet the expert made to praise their own asset) does not
   vote; its answers count once it verifies:

   ============  =========================================================  ==============
   outcome       when                                                       counts as
   ============  =========================================================  ==============
   accepted      money released: the client accepted, or did not dispute     right
                 within the acceptance window
   approved      the expert reviewed the answer (flagged by a client, by     right
                 low confidence or by sampling) and let it stand
   corrected     the expert replaced the answer with a verified one          wrong
   rejected      the expert found the answer wrong (refunded)                wrong
   refunded      the money went back to the client (the expert or an         wrong
                 admin settling a dispute) with no review saying otherwise
   abstained     the assistant said the sources do not answer it             shown, not counted
   pending       held, flagged or in review, not yet settled                 shown, not counted
   ============  =========================================================  ==============

   A correction or rejection decides over the money (a corrected answer is released to the
   expert but was still wrong). "Flagged" is shown beside it: answers a client flagged, whatever
   their outcome.

2. **The platform-held set, re-asked**: the asset's accepted and corrected questions
   (``evals.platform``), re-asked by the platform against the current asset (the huey task
   ``platform-evals`` daily, or ``vouch quality run``), stored as an eval run with scope
   ``platform``. Each re-asked answer is right when it cites one of the reference answer's
   sources and states every number the reference states (``evals.runner.answer_right``). The
   latest platform run counts.

3. **Approved golden sets**: a set the expert submitted and an admin approved, run by the
   platform (scope ``approved``) in the same task; an unanswerable question is answered right by
   abstaining. The latest run of each approved set counts.

An expert's own golden sets (``vouch eval``, scope ``private``) are diagnostics for the expert:
they never enter the score, the catalog or the public pages.

The score is ``right / n`` over all measured answers pooled, with the Wilson 95% score interval
(``evals.metrics.wilson_interval``; every part is a right/wrong count, so one proportion fits).
Below ``MIN_SAMPLE`` measured answers no score is shown, only "not enough measured answers yet
(n of MIN_SAMPLE)". The catalog sorts by the interval's lower bound, unscored assets last: a
handful of lucky answers has a wide interval and a low bound, so it cannot outrank a long
record.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from app import querying
from app.accounts import viewer_of
from app.models import Account, Role
from app.runtime import Runtime
from assets import answering
from assets.errors import AssetNotFound
from assets.models import Asset, Consultation, ReviewItem, ReviewStatus, VerifiedAnswer
from assets.retrieval import Passage
from assets.review import asset_quality
from assets.service import get_visible_asset
from billing.models import Charge, ChargeStatus
from core.clock import utcnow
from core.db import session_scope
from core.errors import VouchError
from evals import metrics, platform
from evals.golden import GoldenSet as Golden
from evals.models import EvalRun, GoldenSet
from evals.runner import EvalReport, run_eval

log = logging.getLogger(__name__)

MIN_SAMPLE = 20
CONFIDENCE = 0.95
PUBLIC_SCOPES = ("platform", "approved")
PLATFORM_SET = "platform-held set"
RIGHT = ("accepted", "approved")
WRONG = ("corrected", "rejected", "refunded")
OUTCOMES = (*RIGHT, *WRONG, "abstained", "pending")
FORMULA = (
    "right answers / measured answers, pooled over settled consultations of clients with a "
    "verified e-mail (accepted or approved = right; corrected, rejected or refunded = wrong; "
    "abstained and pending not counted), the platform's re-asks of accepted and corrected "
    "questions, and admin-approved golden sets; Wilson 95% interval; shown from "
    f"{MIN_SAMPLE} measured answers"
)


@dataclass(frozen=True, slots=True)
class Part:
    """Right answers out of measured ones, from one source."""

    right: int
    n: int


@dataclass(slots=True)
class Score:
    """An asset's measured answers and what they add up to."""

    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    flagged: int = 0
    platform: EvalRun | None = None
    approved: list[tuple[GoldenSet, EvalRun]] = field(default_factory=list)

    @property
    def consultations(self) -> Part:
        right = sum(self.outcomes[o] for o in RIGHT)
        return Part(right, right + sum(self.outcomes[o] for o in WRONG))

    def parts(self) -> list[Part]:
        runs = ([self.platform] if self.platform else []) + [r for _, r in self.approved]
        return [self.consultations, *(run_part(r) for r in runs)]

    @property
    def right(self) -> int:
        return sum(p.right for p in self.parts())

    @property
    def n(self) -> int:
        return sum(p.n for p in self.parts())

    @property
    def scored(self) -> bool:
        return self.n >= MIN_SAMPLE

    @property
    def value(self) -> float | None:
        """The score, or None below ``MIN_SAMPLE`` measured answers."""
        return round(self.right / self.n, 4) if self.scored else None

    @property
    def interval(self) -> tuple[float, float] | None:
        found = metrics.wilson_interval(self.right, self.n) if self.scored else None
        return None if found is None else (round(found[0], 4), round(found[1], 4))

    @property
    def low(self) -> float | None:
        """The interval's lower bound: what the catalog sorts by."""
        return None if self.interval is None else self.interval[0]

    def summary(self) -> str:
        if not self.scored:
            return f"not enough measured answers yet ({self.n} of {MIN_SAMPLE})"
        assert self.interval is not None
        low, high = self.interval
        return f"{self.right / self.n:.2f} (95% interval {low:.2f}-{high:.2f}, n = {self.n})"


def run_part(run: EvalRun) -> Part:
    """Right answers of a platform or approved run, from its ``right`` metric."""
    figure = run.metrics.get("right") or {}
    n = int(figure.get("n") or 0)
    right = figure.get("right")
    if right is None:  # written before the count was stored: the value is rounded to 4 places
        right = round(float(figure.get("value") or 0.0) * n)
    return Part(int(right), n)


def _outcome(consultation_status: str, review: str | None, charge: str | None) -> str:
    """The outcome of a client's consultation (see the module docstring)."""
    if review in (ReviewStatus.corrected, ReviewStatus.rejected):
        return str(review)
    if consultation_status == "abstained":
        return "abstained"
    if charge == ChargeStatus.refunded:
        return "refunded"
    if review == ReviewStatus.approved:
        return "approved"
    if charge == ChargeStatus.released:
        return "accepted"
    return "pending"


def _client_consultations(asset_ids: list[str]) -> "Select[str, str, str, str, str]":
    """Consultations asked by clients: not the asset's expert, not an admin, and verified."""
    return (
        select_columns(
            col(Consultation.asset_id),
            col(Consultation.status),
            col(ReviewItem.status),
            col(ReviewItem.reason),
            col(Charge.status),
        )
        .join(Asset, col(Asset.id) == col(Consultation.asset_id))
        .join(Account, col(Account.id) == col(Consultation.account_id))
        .outerjoin(ReviewItem, col(ReviewItem.consultation_id) == col(Consultation.id))
        .outerjoin(Charge, col(Charge.consultation_id) == col(Consultation.id))
        .where(
            col(Consultation.asset_id).in_(asset_ids),
            col(Consultation.account_id) != col(Asset.owner_id),
            col(Account.role) != Role.admin,
            col(Account.email_verified_at).is_not(None),
        )
    )


def latest_runs(
    session: Session, asset_ids: list[str], *, scopes: Iterable[str] = ("platform",)
) -> dict[str, EvalRun]:
    """Each asset's latest eval run of ``scopes``, for those that have one."""
    if not asset_ids:
        return {}
    wanted = list(scopes)
    latest = (
        select(EvalRun.asset_id, func.max(EvalRun.created_at).label("at"))
        .where(col(EvalRun.asset_id).in_(asset_ids), col(EvalRun.scope).in_(wanted))
        .group_by(col(EvalRun.asset_id))
        .subquery()
    )
    runs = session.exec(
        select(EvalRun)
        .join(
            latest,
            and_(
                col(EvalRun.asset_id) == latest.c.asset_id,
                col(EvalRun.created_at) == latest.c.at,
            ),
        )
        .where(col(EvalRun.scope).in_(wanted))
        .order_by(col(EvalRun.id))
    ).all()
    return {run.asset_id: run for run in runs}


def _approved_runs(
    session: Session, asset_ids: list[str]
) -> dict[str, list[tuple[GoldenSet, EvalRun]]]:
    """The latest run of each approved golden set of each asset."""
    found: dict[str, list[tuple[GoldenSet, EvalRun]]] = {a: [] for a in asset_ids}
    if not asset_ids:
        return found
    rows = session.exec(
        select(GoldenSet, EvalRun)
        .join(EvalRun, col(EvalRun.golden_set_id) == col(GoldenSet.id))
        .where(
            col(GoldenSet.asset_id).in_(asset_ids),
            GoldenSet.status == "approved",
            EvalRun.scope == "approved",
        )
        .order_by(col(EvalRun.created_at).desc(), col(EvalRun.id))
    ).all()
    seen: set[str] = set()
    for golden, run in rows:
        if golden.id not in seen:
            seen.add(golden.id)
            found[golden.asset_id].append((golden, run))
    return found


def scores(session: Session, asset_ids: list[str]) -> dict[str, Score]:
    """The measured answers of each asset (every asset gets an entry), in a few queries."""
    found = {a: Score() for a in asset_ids}
    if not asset_ids:
        return found
    for asset_id, status, review, reason, charge in session.execute(
        _client_consultations(asset_ids)
    ).all():
        score = found[asset_id]
        score.outcomes[_outcome(status, review, charge)] += 1
        score.flagged += reason == "client_flag"
    for asset_id, run in latest_runs(session, asset_ids).items():
        found[asset_id].platform = run
    for asset_id, runs in _approved_runs(session, asset_ids).items():
        found[asset_id].approved = runs
    return found


def _when(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def run_public(run: EvalRun) -> dict[str, Any]:
    part = run_part(run)
    return {
        "golden": run.golden_name,
        "golden_set_id": run.golden_set_id,
        "size": run.size,
        "right": part.right,
        "n": part.n,
        "measured_at": _when(run.created_at),
    }


def score_public(score: Score) -> dict[str, Any]:
    """The score and what it is made of, as the JSON and the pages show it."""
    consultations = score.consultations
    interval = score.interval
    return {
        "score": score.value,
        "n": score.n,
        "right": score.right,
        "min_sample": MIN_SAMPLE,
        "interval": None
        if interval is None
        else {"low": interval[0], "high": interval[1], "level": CONFIDENCE, "method": "wilson"},
        "summary": score.summary(),
        "formula": FORMULA,
        "parts": {
            "consultations": {
                "right": consultations.right,
                "n": consultations.n,
                "outcomes": dict(score.outcomes),
                "flagged": score.flagged,
            },
            "platform": None if score.platform is None else run_public(score.platform),
            "approved": [run_public(run) for _, run in score.approved],
        },
    }


def asset_score(session: Session, asset: Asset) -> dict[str, Any]:
    """The score of ``asset`` with its parts visible (no access check: see ``quality_score``)."""
    review = asset_quality(session, asset)
    review.pop("asset", None)
    return {
        "asset": asset.slug,
        **score_public(scores(session, [asset.id])[asset.id]),
        "review": review,
        "measured_at": _when(utcnow()),
    }


def published_asset(session: Session, *, account: Account, slug: str) -> Asset:
    """A published asset: what the catalog and the quality score show. Unpublished assets are
    missing here even for their owner, who sees them elsewhere."""
    asset = get_visible_asset(session, viewer=viewer_of(account), slug=slug)
    if not asset.published:
        raise AssetNotFound(f"no published asset {slug!r}; publish it to list it in the catalog")
    return asset


def quality_score(session: Session, *, account: Account, slug: str) -> dict[str, Any]:
    """The public quality score of a published asset, for any signed-in account."""
    return asset_score(session, published_asset(session, account=account, slug=slug))


# The platform's runs


def references(session: Session, asset: Asset) -> list[platform.Reference]:
    """The asset's clients' questions whose answer stood or was corrected, newest first (as
    counted in the score: verified clients only)."""
    rows = session.exec(
        select(Consultation, ReviewItem.status, Charge.status)
        .join(Account, col(Account.id) == col(Consultation.account_id))
        .outerjoin(ReviewItem, col(ReviewItem.consultation_id) == col(Consultation.id))
        .outerjoin(Charge, col(Charge.consultation_id) == col(Consultation.id))
        .where(
            Consultation.asset_id == asset.id,
            Consultation.account_id != asset.owner_id,
            Account.role != Role.admin,
            col(Account.email_verified_at).is_not(None),
        )
        .order_by(col(Consultation.created_at).desc(), col(Consultation.id))
    ).all()
    found: list[platform.Reference] = []
    for consultation, review, charge in rows:
        outcome = _outcome(consultation.status, review, charge)
        if outcome in RIGHT:
            found.append(
                platform.Reference(
                    id=consultation.id,
                    question=consultation.question,
                    answer=consultation.answer,
                    citations=consultation.citations,
                    kind="accepted",
                )
            )
        elif outcome == "corrected" and consultation.verified_answer_id is not None:
            verified = session.get(VerifiedAnswer, consultation.verified_answer_id)
            if verified is None or verified.retired_at is not None:
                continue  # the expert withdrew it: no reference any more
            extra = platform.citation_unit({"text": verified.answer})
            found.append(
                platform.Reference(
                    id=consultation.id,
                    question=consultation.question,
                    answer=verified.answer,
                    citations=verified.citations,
                    kind="corrected",
                    extra_units=(extra,) if extra else (),
                )
            )
    return found


def _run(
    session: Session,
    runtime: Runtime,
    asset: Asset,
    golden: Golden,
    *,
    scope: str,
    golden_set_id: str | None = None,
) -> EvalReport:
    """Re-ask ``golden`` against the asset as it is now: its retrieval and answerer, as its
    expert would ask (nothing recorded or billed)."""
    owner = session.get(Account, asset.owner_id)
    assert owner is not None  # a foreign key guarantees it

    def search(question: str, n: int) -> list[Passage]:
        return querying.search(
            session, runtime, account=owner, slug=asset.slug, query=question, k=n
        )

    def answer(question: str) -> answering.Answer:
        return querying.draft_answer(
            session, runtime, account=owner, slug=asset.slug, question=question
        )

    return run_eval(
        session,
        asset=asset,
        golden=golden,
        search=search,
        answer=answer,
        scope=scope,
        golden_set_id=golden_set_id,
    )


def run_platform(session: Session, runtime: Runtime, asset: Asset) -> list[EvalReport]:
    """Re-ask the asset's platform-held set and run each approved golden set of it, storing a
    run of each (flushed, not committed). A platform-held set with no items is not run."""
    reports = []
    held = platform.platform_set(references(session, asset), name=PLATFORM_SET)
    if held.items:
        reports.append(_run(session, runtime, asset, held, scope="platform"))
    approved = session.exec(
        select(GoldenSet)
        .where(GoldenSet.asset_id == asset.id, GoldenSet.status == "approved")
        .order_by(col(GoldenSet.created_at), col(GoldenSet.id))
    ).all()
    for golden in approved:
        loaded = platform.stored_golden(golden.name, golden.questions)
        reports.append(
            _run(session, runtime, asset, loaded, scope="approved", golden_set_id=golden.id)
        )
    return reports


def run_platform_evals(runtime: Runtime, *, slug: str | None = None) -> list[dict[str, Any]]:
    """The platform's runs of every published asset (or of the asset ``slug``, published or
    not), each asset in its own transaction: one that fails is logged and the rest still run.
    Returns each stored run as ``EvalReport.public`` gives it."""
    with session_scope(runtime.engine) as session:
        statement = select(Asset.id)
        if slug is None:
            statement = statement.where(col(Asset.published).is_(True))
        else:
            statement = statement.where(Asset.slug == slug)
        asset_ids = list(session.exec(statement.order_by(col(Asset.id))).all())
    if slug is not None and not asset_ids:
        raise AssetNotFound(f"no asset {slug!r}")
    reports: list[dict[str, Any]] = []
    for asset_id in asset_ids:
        try:
            with session_scope(runtime.engine) as session:
                asset = session.get(Asset, asset_id)
                if asset is None:  # deleted meanwhile
                    continue
                reports.extend(r.public() for r in run_platform(session, runtime, asset))
        except VouchError as exc:
            if slug is not None:
                raise
            log.warning("platform eval of asset %s failed: %s", asset_id, exc.message)
    return reports
