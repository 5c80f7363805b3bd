"""The public quality score of a published asset, assembled only from what the platform
measured: its latest eval run, its review figures and how clients settled its answers.
Nothing in it is typed in by the expert.

The headline score, from 0 to 1:

    score = 0.7 * nDCG@10 + 0.3 * acceptance   when both are known
    score = nDCG@10                            with an eval run only
    score = acceptance                         with enough settled answers only
    score = None                               with neither (unscored)

- nDCG@10 is the retrieval score of the asset's latest eval run on its golden set, run by the
  platform (``vouch eval``): does the asset find the passages that answer the set's questions,
  best first.
- acceptance is the share of the asset's settled paid answers whose money was released to the
  expert (accepted by the client, approved or corrected by the expert, or undisputed past the
  window) rather than refunded. Free answers (the owner's and admins' own questions,
  abstentions) are left out. It counts only from ``MIN_SETTLED`` settled answers, so that one
  lucky answer does not make a perfect score; below that it is shown but not used.

The review figures (flags, approvals, corrections, rejections, time to review) are shown beside
the score as its context; a rejected answer already counts against acceptance by its refund.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from app import reviewing
from app.accounts import viewer_of
from app.models import Account
from assets.errors import AssetNotFound
from assets.models import Asset
from assets.service import get_visible_asset
from billing.models import Charge, ChargeStatus
from core.clock import utcnow
from evals.models import EvalRun
from evals.runner import DEPTH

EVAL_WEIGHT = 0.7
ACCEPTANCE_WEIGHT = 0.3
MIN_SETTLED = 5
EVAL_METRIC = f"ndcg@{DEPTH}"
FORMULA = (
    f"{EVAL_WEIGHT:g} * nDCG@{DEPTH} + {ACCEPTANCE_WEIGHT:g} * acceptance rate "
    f"(either alone when only one is measured; acceptance from {MIN_SETTLED} settled answers)"
)


@dataclass(frozen=True, slots=True)
class Acceptance:
    released: int
    refunded: int

    @property
    def settled(self) -> int:
        return self.released + self.refunded

    @property
    def rate(self) -> float | None:
        return round(self.released / self.settled, 4) if self.settled else None

    @property
    def counts(self) -> bool:
        """Enough settled answers for the rate to enter the score."""
        return self.settled >= MIN_SETTLED

    def public(self) -> dict[str, Any]:
        return {
            "released": self.released,
            "refunded": self.refunded,
            "settled": self.settled,
            "rate": self.rate,
            "counted": self.counts,
            "min_settled": MIN_SETTLED,
        }


def _metric(run: EvalRun | None, name: str) -> float | None:
    if run is None:
        return None
    value = (run.metrics.get(name) or {}).get("value")
    return None if value is None else float(value)


def headline(eval_score: float | None, acceptance: float | None) -> float | None:
    """The score from its two measured parts (see the module docstring); None if neither."""
    if eval_score is not None and acceptance is not None:
        return round(EVAL_WEIGHT * eval_score + ACCEPTANCE_WEIGHT * acceptance, 4)
    if eval_score is not None:
        return round(eval_score, 4)
    if acceptance is not None:
        return round(acceptance, 4)
    return None


def score_of(run: EvalRun | None, acceptance: Acceptance) -> float | None:
    """The headline score of an asset from its latest eval run and its settled answers."""
    return headline(_metric(run, EVAL_METRIC), acceptance.rate if acceptance.counts else None)


def latest_runs(session: Session, asset_ids: list[str]) -> dict[str, EvalRun]:
    """Each asset's latest eval run, for those that have one."""
    if not asset_ids:
        return {}
    latest = (
        select(EvalRun.asset_id, func.max(EvalRun.created_at).label("at"))
        .where(col(EvalRun.asset_id).in_(asset_ids))
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
        .order_by(col(EvalRun.id))
    ).all()
    return {run.asset_id: run for run in runs}


def acceptances(session: Session, asset_ids: list[str]) -> dict[str, Acceptance]:
    """Released and refunded paid answers of each asset (every asset gets an entry)."""
    counts: dict[str, dict[str, int]] = {a: {} for a in asset_ids}
    if asset_ids:
        rows = session.exec(
            select(Charge.asset_id, Charge.status, func.count())
            .where(
                col(Charge.asset_id).in_(asset_ids),
                col(Charge.status).in_([ChargeStatus.released, ChargeStatus.refunded]),
                Charge.source != "free",
            )
            .group_by(col(Charge.asset_id), col(Charge.status))
        ).all()
        for asset_id, status, n in rows:
            counts[asset_id][status] = int(n)
    return {
        a: Acceptance(c.get(ChargeStatus.released, 0), c.get(ChargeStatus.refunded, 0))
        for a, c in counts.items()
    }


def scores(session: Session, asset_ids: list[str]) -> dict[str, float | None]:
    """The headline score of each asset, in two queries (for the catalog)."""
    runs = latest_runs(session, asset_ids)
    accepted = acceptances(session, asset_ids)
    return {a: score_of(runs.get(a), accepted[a]) for a in asset_ids}


def _when(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def eval_public(run: EvalRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "golden": run.golden_name,
        "golden_sha256": run.golden_sha256,
        "size": run.size,
        "k": run.k,
        "metrics": {name: m.get("value") for name, m in run.metrics.items()},
        "measured_at": _when(run.created_at),
    }


def asset_score(session: Session, asset: Asset) -> dict[str, Any]:
    """The score of ``asset`` with its parts visible (no access check: see ``quality_score``)."""
    run = latest_runs(session, [asset.id]).get(asset.id)
    acceptance = acceptances(session, [asset.id])[asset.id]
    review = reviewing.asset_quality(session, asset)
    review.pop("asset", None)
    return {
        "asset": asset.slug,
        "score": score_of(run, acceptance),
        "formula": FORMULA,
        "eval": eval_public(run),
        "acceptance": acceptance.public(),
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
