"""Content gaps: what an asset's clients asked that it could not answer well, grouped by meaning.

A gap question is a consultation of the asset, asked by someone other than its expert (their
own questions are tests, as on the quality page), that

- **abstained**: the sources did not answer it (free to the asker);
- went to **review** because its confidence was low (answers sent to review at random are
  not counted: being sampled says nothing about the asset);
- was **flagged** by its client.

The questions of a window are embedded with the asset's own embedder and clustered by meaning
(scikit-learn's agglomerative clustering, cosine distance, average linkage, cut at a distance
rather than at a number of clusters), so that "Do you ship to Canada?" and "What does delivery
to Canada cost?" count as one gap. Nothing is stored: a report is computed when asked for.

Lost revenue is what abstentions would have cost their askers at the asset's per-question
price in force when they were asked (the plan version of that time); admins, who ask for
free, count nothing. Subscribers' and trial questions are counted at that
price too, so it is an upper bound on what the asset lost.

Once a week every expert gets one notification per asset with gap questions in the past seven
days (``send_digests``), at most one per asset and week however often it runs.
"""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from app import notifications
from app.accounts import viewer_of
from app.models import Account, Notification, Role
from app.runtime import Runtime
from assets import retrieval
from assets.models import Asset, Consultation, ReviewItem
from assets.service import get_managed_asset
from billing import service as billing
from billing.models import Plan
from core.clock import utcnow
from core.db import session_scope
from core.errors import VouchError

log = logging.getLogger(__name__)

REASONS = ("abstained", "review", "flagged")
REASON_LABELS = {
    "abstained": "abstained",
    "review": "went to review",
    "flagged": "flagged by the client",
}
# Average cosine distance (1 - similarity, all-MiniLM-L6-v2) under which questions join one
# cluster: rewordings of one question score 0.55-0.9 alike, questions on one subject 0.3-0.65
# and unrelated ones under 0.25, so an average similarity of 0.4 keeps a subject together
# without merging subjects ("refund a damaged pot" vs "shipping to Canada": 0.1-0.35).
DISTANCE = 0.6
EXAMPLES = 5
# Agglomerative clustering holds an n x n distance matrix: past this many questions, the
# newest are clustered (the counts still cover every question of the window).
MAX_CLUSTERED = 2000
WINDOWS = (4, 12)
DIGEST_KIND = "gaps.digest"
DIGEST_TOP = 3


@dataclass(frozen=True, slots=True)
class GapQuestion:
    consultation_id: str
    question: str
    reason: str
    asked_at: datetime
    # What its asker would have paid, for an abstention; 0 otherwise.
    lost: int
    currency: str


@dataclass(slots=True)
class Cluster:
    label: str
    size: int
    reasons: dict[str, int]
    examples: list[str]
    weeks: list[int]
    last_asked: datetime
    lost: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class GapReport:
    asset: Asset
    since: datetime
    until: datetime
    weeks: list[date]  # Mondays, oldest first
    totals: dict[str, int]
    by_week: dict[str, list[int]]  # reason -> count per week
    clusters: list[Cluster]
    lost: dict[str, int]  # currency -> minor units
    clustered: int  # questions clustered (at most MAX_CLUSTERED)

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def public(self) -> dict[str, Any]:
        """The report as the JSON API returns it."""
        return {
            "asset": self.asset.slug,
            "since": self.since,
            "until": self.until,
            "weeks": [w.isoformat() for w in self.weeks],
            "total": self.total,
            "totals": self.totals,
            "by_week": self.by_week,
            "lost_revenue": [{"currency": c, "amount": a} for c, a in sorted(self.lost.items())],
            "clustered": self.clustered,
            "clusters": [
                {
                    "label": c.label,
                    "size": c.size,
                    "reasons": c.reasons,
                    "examples": c.examples,
                    "weeks": c.weeks,
                    "last_asked": c.last_asked,
                    "lost_revenue": [
                        {"currency": cur, "amount": a} for cur, a in sorted(c.lost.items())
                    ],
                }
                for c in self.clusters
            ],
        }


def week_start(moment: datetime | date) -> date:
    """The Monday of the ISO week of ``moment``."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def window(weeks: int, *, now: datetime | None = None) -> datetime:
    """The start of a window of ``weeks`` calendar weeks ending now (this week included)."""
    now = now or utcnow()
    monday = week_start(now) - timedelta(weeks=weeks - 1)
    return datetime(monday.year, monday.month, monday.day, tzinfo=now.tzinfo)


def _reason(consultation: Consultation, item: ReviewItem | None) -> str | None:
    if consultation.status == "abstained":
        return "abstained"
    if item is not None:
        return {"client_flag": "flagged", "low_confidence": "review"}.get(item.reason)
    # Low confidence with no queue item (answers from a verified answer are never queued).
    return "review" if consultation.status == "pending_review" else None


def _pricer(session: Session, asset: Asset) -> Callable[[Consultation], tuple[int, str]]:
    plans = session.exec(
        select(Plan).where(Plan.asset_id == asset.id).order_by(col(Plan.created_at), col(Plan.id))
    ).all()
    free = set(session.exec(select(Account.id).where(col(Account.role) == Role.admin)).all())

    def price(consultation: Consultation) -> tuple[int, str]:
        if consultation.account_id in free:
            return 0, plans[-1].currency if plans else "usd"
        in_force = [p for p in plans if p.created_at <= consultation.created_at]
        if not in_force:
            return 0, plans[0].currency if plans else "usd"
        return in_force[-1].per_query or 0, in_force[-1].currency

    return price


def gap_questions(
    session: Session, *, asset: Asset, since: datetime, until: datetime
) -> list[GapQuestion]:
    """The asset's gap questions asked by others than its expert in [since, until), oldest
    first."""
    rows = session.exec(
        select(Consultation, ReviewItem)
        .join(ReviewItem, col(ReviewItem.consultation_id) == col(Consultation.id), isouter=True)
        .where(
            Consultation.asset_id == asset.id,
            Consultation.account_id != asset.owner_id,
            col(Consultation.created_at) >= since,
            col(Consultation.created_at) < until,
        )
        .order_by(col(Consultation.created_at), col(Consultation.id))
    ).all()
    price = _pricer(session, asset)
    found = []
    for consultation, item in rows:
        reason = _reason(consultation, item)
        if reason is None:
            continue
        lost, currency = price(consultation) if reason == "abstained" else (0, "usd")
        found.append(
            GapQuestion(
                consultation_id=consultation.id,
                question=consultation.question,
                reason=reason,
                asked_at=consultation.created_at,
                lost=lost,
                currency=currency,
            )
        )
    return found


def cluster_labels(vectors: list[list[float]]) -> list[int]:
    """A cluster number per vector: agglomerative, cosine distance, average linkage, cut at
    ``DISTANCE``. Deterministic for a given order; a lone vector is its own cluster."""
    if len(vectors) < 2:
        return [0] * len(vectors)
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=DISTANCE
    )
    labels: list[int] = model.fit_predict(np.asarray(vectors, dtype=np.float64)).tolist()
    return labels


def _centrality(vectors: list[list[float]]) -> list[float]:
    """Each vector's mean cosine similarity to the others of its group (1.0 alone)."""
    import numpy as np

    if len(vectors) == 1:
        return [1.0]
    matrix = np.asarray(vectors, dtype=np.float64)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    similarity = matrix @ matrix.T
    scores: list[float] = ((similarity.sum(axis=1) - 1.0) / (len(vectors) - 1)).tolist()
    return scores


def _clusters(
    questions: list[GapQuestion], vectors: list[list[float]], weeks: list[date]
) -> list[Cluster]:
    groups: dict[int, list[int]] = {}
    for n, label in enumerate(cluster_labels(vectors)):
        groups.setdefault(label, []).append(n)
    index = {w: n for n, w in enumerate(weeks)}
    clusters = []
    for members in groups.values():
        scores = _centrality([vectors[n] for n in members])
        ranked = sorted(zip(scores, members, strict=True), key=lambda p: (-round(p[0], 6), p[1]))
        examples: list[str] = []
        for _, n in ranked:
            text = questions[n].question
            if text not in examples:
                examples.append(text)
        per_week = [0] * len(weeks)
        lost: dict[str, int] = {}
        for n in members:
            q = questions[n]
            per_week[index[week_start(q.asked_at)]] += 1
            if q.lost:
                lost[q.currency] = lost.get(q.currency, 0) + q.lost
        reasons = Counter(questions[n].reason for n in members)
        clusters.append(
            Cluster(
                label=examples[0],
                size=len(members),
                reasons={r: reasons.get(r, 0) for r in REASONS},
                examples=examples[:EXAMPLES],
                weeks=per_week,
                last_asked=max(questions[n].asked_at for n in members),
                lost=lost,
            )
        )
    clusters.sort(key=lambda c: (-c.size, -c.last_asked.timestamp(), c.label))
    return clusters


def content_gaps(
    session: Session,
    runtime: Runtime,
    *,
    asset: Asset,
    since: datetime,
    until: datetime | None = None,
) -> GapReport:
    """The asset's gap questions asked in [since, until): totals and counts per week by reason,
    clusters by meaning, and the revenue lost to abstentions. Unchecked: the caller decides
    who may see it."""
    until = until or utcnow()
    questions = gap_questions(session, asset=asset, since=since, until=until)
    weeks: list[date] = []
    monday = week_start(since)
    while monday <= week_start(until - timedelta(microseconds=1)) or not weeks:
        weeks.append(monday)
        monday += timedelta(weeks=1)
    index = {w: n for n, w in enumerate(weeks)}
    by_week = {r: [0] * len(weeks) for r in REASONS}
    lost: dict[str, int] = {}
    for q in questions:
        by_week[q.reason][index[week_start(q.asked_at)]] += 1
        if q.lost:
            lost[q.currency] = lost.get(q.currency, 0) + q.lost
    clustered = questions[-MAX_CLUSTERED:]
    clusters: list[Cluster] = []
    if clustered:
        retrieval.check_embedder(asset, runtime.embedder)
        vectors = runtime.embedder.embed([q.question for q in clustered])
        clusters = _clusters(clustered, vectors, weeks)
    return GapReport(
        asset=asset,
        since=since,
        until=until,
        weeks=weeks,
        totals={r: sum(v) for r, v in by_week.items()},
        by_week=by_week,
        clusters=clusters,
        lost=lost,
        clustered=len(clustered),
    )


def for_owner(
    session: Session, runtime: Runtime, *, account: Account, slug: str, weeks: int
) -> GapReport:
    """The gaps report of the last ``weeks`` calendar weeks, for the asset's owner and admins
    (others: 403, or 404 for an asset they cannot see)."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return content_gaps(session, runtime, asset=asset, since=window(weeks))


# The weekly digest


def _digest_message(report: GapReport) -> str:
    counts = ", ".join(
        f"{report.totals[r]} {REASON_LABELS[r]}" for r in REASONS if report.totals[r]
    )
    total = report.total
    parts = [
        f"{total} question{'s' if total != 1 else ''} on {report.asset.title} were not answered "
        f"well in the past 7 days ({counts})."
    ]
    top = [f"'{_short(c.label)}' ({c.size})" for c in report.clusters[:DIGEST_TOP] if c.label]
    if top:
        parts.append("Most asked: " + "; ".join(top) + ".")
    if report.lost:
        money = ", ".join(billing.money(a, c) for c, a in sorted(report.lost.items()))
        parts.append(f"Lost to abstentions: {money}.")
    return " ".join(parts)[:1000]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _sent(session: Session, *, account_id: str, slug: str, week: str, now: datetime) -> bool:
    recent = session.exec(
        select(Notification).where(
            Notification.account_id == account_id,
            Notification.kind == DIGEST_KIND,
            col(Notification.created_at) >= now - timedelta(days=15),
        )
    ).all()
    return any(n.data.get("asset") == slug and n.data.get("week") == week for n in recent)


def digest_asset(
    session: Session, runtime: Runtime, *, asset: Asset, now: datetime
) -> Notification | None:
    """Tell the asset's expert about its gaps of the 7 days before ``now``: once per asset and
    ISO week of ``now``; nothing when there were none."""
    week = week_start(now).isoformat()
    if _sent(session, account_id=asset.owner_id, slug=asset.slug, week=week, now=now):
        return None
    owner = session.get(Account, asset.owner_id)
    if owner is None or owner.suspended_at is not None:
        return None
    report = content_gaps(session, runtime, asset=asset, since=now - timedelta(days=7), until=now)
    if not report.total:
        return None
    return notifications.notify(
        session,
        runtime,
        account_id=asset.owner_id,
        kind=DIGEST_KIND,
        message=_digest_message(report),
        data={
            "asset": asset.slug,
            "week": week,
            "total": report.total,
            "totals": report.totals,
            "clusters": [{"label": c.label, "size": c.size} for c in report.clusters[:DIGEST_TOP]],
            "lost_revenue": [{"currency": c, "amount": a} for c, a in sorted(report.lost.items())],
        },
    )


def send_digests(runtime: Runtime, *, now: datetime | None = None) -> int:
    """The weekly digest of every asset with gaps, each in its own transaction (an asset that
    cannot be reported, say embedded by another model, does not stop the others); returns how
    many were sent."""
    now = now or utcnow()
    with session_scope(runtime.engine) as session:
        asset_ids = session.exec(
            select(Consultation.asset_id)
            .where(col(Consultation.created_at) >= now - timedelta(days=7))
            .distinct()
        ).all()
    sent = 0
    for asset_id in sorted(asset_ids):
        try:
            with session_scope(runtime.engine) as session:
                asset = session.get(Asset, asset_id)
                if asset is not None and digest_asset(session, runtime, asset=asset, now=now):
                    sent += 1
        except VouchError as exc:  # say, its embedder is no longer the configured one
            log.warning("gaps digest of asset %s not sent: %s", asset_id, exc.message)
    return sent
