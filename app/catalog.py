"""The catalog's use cases, where assets, plans, quality and the marketplace meet: gather the
published assets and experts as plain records for ``marketplace.catalog`` to search, build an
asset's page (for clients and for visitors who are not signed in) with sample questions
answered live from the asset, publish and unpublish assets, and tell a client what the next
question costs and what pays for it."""

import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from app import accounts, querying
from app.accounts import viewer_of
from app.models import Account
from app.quality import asset_score, latest_runs, published_asset, scores
from app.runtime import Runtime
from assets.errors import AssetNotFound, AssetNotReady
from assets.models import Asset
from assets.service import get_managed_asset
from billing import service as billing
from billing.errors import PaymentRequired, SubscriptionRequired
from billing.models import Plan
from core.clock import utcnow
from core.errors import VouchError
from ingestion.models import Document, IngestionJob, JobStatus
from marketplace import credentials as credential_rules
from marketplace.catalog import (
    AssetRecord,
    CredentialRecord,
    ExpertRecord,
    Filters,
    search_assets,
    search_experts,
)
from marketplace.credentials import public_figures
from marketplace.models import Credential, CredentialStatus, ExpertProfile

SAMPLES = 3
# Chunks read to find headings for sample questions when the asset has no eval run.
HEADING_SCAN = 500


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def verified_credentials(
    session: Session, account_ids: Iterable[str], *, now: datetime
) -> dict[str, list[Credential]]:
    """Each account's verified credentials that have not expired, oldest first."""
    ids = list(set(account_ids))
    found: dict[str, list[Credential]] = defaultdict(list)
    if not ids:
        return found
    rows = session.exec(
        select(Credential)
        .where(
            col(Credential.account_id).in_(ids),
            Credential.status == CredentialStatus.verified,
            or_(col(Credential.expires_at).is_(None), col(Credential.expires_at) > now),
        )
        .order_by(col(Credential.created_at), col(Credential.id))
    ).all()
    for credential in rows:
        if credential_rules.proved(credential):  # verified under rules since tightened: not shown
            found[credential.account_id].append(credential)
    return found


def _credential_record(c: Credential) -> CredentialRecord:
    return CredentialRecord(
        id=c.id,
        kind=c.kind,
        claim=c.claim,
        domain=c.domain,
        method=c.method,
        figures=public_figures(c.figures),
        verified_at=c.verified_at,
    )


def _current_plans(session: Session, asset_ids: list[str]) -> dict[str, Plan]:
    """The newest plan version of each asset (as ``billing.current_plan``), in one query."""
    plans: dict[str, Plan] = {}
    if not asset_ids:
        return plans
    rows = session.exec(
        select(Plan)
        .where(col(Plan.asset_id).in_(asset_ids))
        .order_by(col(Plan.created_at).desc(), col(Plan.id).desc())
    ).all()
    for plan in rows:
        plans.setdefault(plan.asset_id, plan)
    return plans


def gather(session: Session, *, currency: str) -> tuple[list[AssetRecord], list[ExpertRecord]]:
    """Every published asset and every expert with a profile or a published asset, as records.
    ``currency`` is what an asset without a plan (free to ask) is listed in."""
    assets = list(session.exec(select(Asset).where(col(Asset.published).is_(True))).all())
    asset_ids = [a.id for a in assets]
    profiles = {p.account_id: p for p in session.exec(select(ExpertProfile)).all()}
    expert_ids = set(profiles) | {a.owner_id for a in assets}
    accounts = {
        a.id: a for a in session.exec(select(Account).where(col(Account.id).in_(expert_ids))).all()
    }
    credentials = verified_credentials(session, expert_ids, now=utcnow())
    quality = scores(session, asset_ids)
    plans = _current_plans(session, asset_ids)
    owned: dict[str, list[Asset]] = defaultdict(list)
    for asset in assets:
        owned[asset.owner_id].append(asset)

    experts: dict[str, ExpertRecord] = {}
    for account_id in sorted(expert_ids):
        account = accounts.get(account_id)
        if account is None:  # pragma: no cover - a foreign key keeps the account
            continue
        profile = profiles.get(account_id) or ExpertProfile(account_id=account_id)
        theirs = owned.get(account_id, [])
        best = [q for a in theirs if (q := quality[a.id].value) is not None]
        lows = [low for a in theirs if (low := quality[a.id].low) is not None]
        experts[account_id] = ExpertRecord(
            account_id=account_id,
            name=account.name,
            headline=profile.headline,
            bio=profile.bio,
            domains=tuple(profile.domains),
            price_from=profile.price_from,
            price_to=profile.price_to,
            currency=profile.currency,
            response_hours=profile.response_hours,
            credentials=tuple(_credential_record(c) for c in credentials.get(account_id, [])),
            asset_slugs=tuple(a.slug for a in theirs),
            asset_titles=tuple(a.title for a in theirs),
            asset_tags=tuple(t for a in theirs for t in a.tags),
            quality=max(best) if best else None,
            quality_low=max(lows) if lows else None,
            created_at=account.created_at,
        )
    records = []
    for asset in assets:
        plan = plans.get(asset.id)
        measured = quality[asset.id]
        interval = measured.interval
        records.append(
            AssetRecord(
                slug=asset.slug,
                title=asset.title,
                description=asset.description,
                tags=tuple(asset.tags),
                expert=experts[asset.owner_id],
                per_query=plan.per_query if plan else 0,
                monthly=plan.monthly if plan else None,
                currency=plan.currency if plan else currency,
                quality=measured.value,
                created_at=asset.created_at,
                quality_low=interval[0] if interval else None,
                quality_high=interval[1] if interval else None,
                quality_n=measured.n,
            )
        )
    return records, list(experts.values())


def credential_public(c: CredentialRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind,
        "claim": c.claim,
        "domain": c.domain,
        "method": c.method,
        "figures": c.figures,
        "verified_at": _when(c.verified_at),
    }


def expert_public(e: ExpertRecord) -> dict[str, Any]:
    return {
        "account_id": e.account_id,
        "name": e.name,
        "headline": e.headline,
        "domains": list(e.domains),
        "price_from": e.price_from,
        "price_to": e.price_to,
        "currency": e.currency,
        "response_hours": e.response_hours,
        "quality": e.quality,
        "assets": list(e.asset_slugs),
        "verified_credentials": [credential_public(c) for c in e.credentials],
        "url": f"/experts/{e.account_id}",
    }


def asset_public(a: AssetRecord) -> dict[str, Any]:
    e = a.expert
    return {
        "slug": a.slug,
        "title": a.title,
        "description": a.description,
        "tags": list(a.tags),
        "per_query": a.per_query,
        "monthly": a.monthly,
        "currency": a.currency,
        "quality": a.quality,
        # The score's 95% interval and how many measured answers it rests on (app/quality.py).
        "quality_interval": None
        if a.quality_low is None
        else {"low": a.quality_low, "high": a.quality_high},
        "quality_n": a.quality_n,
        "created_at": _when(a.created_at),
        "expert": {
            "account_id": e.account_id,
            "name": e.name,
            "headline": e.headline,
            "response_hours": e.response_hours,
            "verified_domains": sorted(e.verified_domains),
            "url": f"/experts/{e.account_id}",
        },
        "url": f"/catalog/assets/{a.slug}",
    }


def find_assets(session: Session, runtime: Runtime, filters: Filters) -> list[AssetRecord]:
    """Published assets that pass ``filters``, sorted as asked."""
    records, _ = gather(session, currency=runtime.settings.billing.currency)
    return search_assets(records, filters.check())


def find_experts(session: Session, runtime: Runtime, filters: Filters) -> list[ExpertRecord]:
    """Experts that pass ``filters``, sorted as asked."""
    _, experts = gather(session, currency=runtime.settings.billing.currency)
    return search_experts(experts, filters.check())


# The asset page


def _heading_questions(runtime: Runtime, asset: Asset, n: int) -> list[str]:
    """Questions about the first headings of the asset's documents (subheadings first, since a
    document's top heading is usually its title)."""
    records = runtime.index.collection(asset.collection).records(batch=HEADING_SCAN)
    found: list[tuple[bool, str, int, str]] = []
    for _id, _text, meta in itertools.islice(records, HEADING_SCAN):
        section = str(meta.get("section") or "")
        if meta.get("kind") == "regulation":
            label = str(meta.get("heading") or "") or section
        else:
            label = section.split(" > ")[-1].strip() or str(meta.get("symbol") or "")
        if label:
            top = " > " not in section and meta.get("kind") == "text"
            line = int(meta.get("line_start") or 0)
            found.append((top, str(meta.get("path") or ""), line, label))
    questions: list[str] = []
    for *_, label in sorted(found):
        question = f"What about {label}?"
        if question not in questions:
            questions.append(question)
        if len(questions) == n:
            break
    return questions


def sample_questions(
    session: Session, runtime: Runtime, asset: Asset, n: int = SAMPLES
) -> list[str]:
    """The first answerable questions of the asset's latest run of an admin-approved golden
    set; without one, questions about the first headings of its documents."""
    # An approved set's questions only: the platform-held set is made of clients' questions,
    # and an expert's private sets are theirs.
    run = latest_runs(session, [asset.id], scopes=("approved",)).get(asset.id)
    if run is not None:
        asked = [q["question"] for q in run.questions if not q.get("unanswerable")]
        if asked:
            return asked[:n]
    return _heading_questions(runtime, asset, n)


def sample_answers(session: Session, runtime: Runtime, *, asset: Asset) -> list[dict[str, Any]]:
    """Sample questions answered live from a published asset: nothing is charged, recorded or
    cached. A question that cannot be answered now shows why instead of failing the page."""
    samples: list[dict[str, Any]] = []
    for question in sample_questions(session, runtime, asset):
        try:
            answer = querying.draft_from(session, runtime, asset=asset, question=question)
        except VouchError as exc:
            samples.append({"question": question, "error": exc.message})
            continue
        samples.append(
            {
                "question": question,
                "answer": answer.text,
                "status": answer.status,
                "confidence": answer.confidence,
                "citations": [
                    {"n": c.n, "text": c.text, "locator": c.locator} for c in answer.citations
                ],
            }
        )
    return samples


def plan_view(plan: Plan | None, currency: str) -> dict[str, Any]:
    if plan is None:
        return {"per_query": 0, "monthly": None, "included": 0, "currency": currency, "trial": 0}
    return {
        "per_query": plan.per_query,
        "monthly": plan.monthly,
        "included": plan.included,
        "overage": plan.overage,
        "currency": plan.currency,
        "trial": plan.trial,
        "acceptance_hours": plan.acceptance_hours,
        "per_search": plan.per_search,
    }


def public_asset(session: Session, *, account: Account | None, slug: str) -> Asset:
    """A published asset, for anyone: signed-in accounts and visitors alike."""
    if account is not None:
        return published_asset(session, account=account, slug=slug)
    asset = session.exec(select(Asset).where(Asset.slug == slug)).first()
    if asset is None or not asset.published:
        raise AssetNotFound(f"no published asset {slug!r}")
    return asset


def asset_page(
    session: Session, runtime: Runtime, *, account: Account | None, slug: str, address: str
) -> dict[str, Any]:
    """What a client (or a visitor, ``account`` None) sees of a published asset before asking:
    its plans, what the next question would cost them, its quality score with its parts, its
    expert's verified credentials, and sample questions answered live. The live answers are
    limited per client ``address`` (RateLimited, 429)."""
    asset = public_asset(session, account=account, slug=slug)
    runtime.sample_limiter.check(address)
    owner = session.get(Account, asset.owner_id)
    profile = session.get(ExpertProfile, asset.owner_id)
    credentials = verified_credentials(session, [asset.owner_id], now=utcnow())
    currency = runtime.settings.billing.currency
    return {
        "slug": asset.slug,
        "title": asset.title,
        "description": asset.description,
        "tags": list(asset.tags),
        "plan": plan_view(billing.current_plan(session, asset.id), currency),
        "quality": asset_score(session, asset),
        "expert": {
            "account_id": asset.owner_id,
            "name": owner.name if owner else "",
            "headline": profile.headline if profile else "",
            "response_hours": profile.response_hours if profile else None,
            "url": f"/experts/{asset.owner_id}",
            "verified_credentials": [
                credential_public(_credential_record(c))
                for c in credentials.get(asset.owner_id, [])
            ],
        },
        "commission_url": f"/engagements/new?expert={asset.owner_id}&asset={asset.slug}",
        "price": price_for(session, runtime, account=account, asset=asset),
        "samples": sample_answers(session, runtime, asset=asset),
    }


# What the next question costs


def price_for(
    session: Session, runtime: Runtime, *, account: Account | None, asset: Asset
) -> dict[str, Any]:
    """What the next question on ``asset`` costs ``account`` and what pays for it (their
    subscription's questions left, their credits, a trial question), or why they cannot ask;
    for a visitor (``account`` None), the price and a call to sign up."""
    currency = runtime.settings.billing.currency
    plan = billing.current_plan(session, asset.id)
    owner = session.get(Account, asset.owner_id)
    found: dict[str, Any] = {
        "asset": asset.slug,
        "plan": plan_view(plan, currency),
        "expert": {
            "account_id": asset.owner_id,
            "name": owner.name if owner else "",
            "url": f"/experts/{asset.owner_id}",
        },
        "can_ask": False,
        "pays_with": None,
        "amount": None,
        "currency": plan.currency if plan else currency,
        "credits": None,
        "questions_left": None,
        "trial_left": None,
        "detail": "",
    }
    if account is None:
        found["detail"] = "Sign up or sign in to ask"
        return found
    now = utcnow()
    found["credits"] = billing.credit_balance(session, account.id, found["currency"])
    if plan is not None:
        used = billing.trials_used(session, account_id=account.id, asset_id=asset.id)
        found["trial_left"] = max(0, plan.trial - used)
    sub = billing.active_subscription(session, account_id=account.id, asset_id=asset.id, now=now)
    if sub is not None:
        terms = session.get(Plan, sub.plan_id)
        if terms is not None:
            found["questions_left"] = max(0, terms.included - billing.quota_used(session, sub))
    try:
        price = billing.quote(
            session, account_id=account.id, asset_id=asset.id, now=now, currency=currency
        )
    except (PaymentRequired, SubscriptionRequired) as exc:
        found["detail"] = exc.message
        return found
    found.update(can_ask=True, pays_with=price.source, amount=price.amount)
    found["detail"] = _pays_with(price, found)
    return found


def _pays_with(price: billing.Price, found: dict[str, Any]) -> str:
    cost = billing.money(price.amount, price.currency)
    if price.source == "free":
        return "Free to ask"
    if price.source == "subscription":
        left = found["questions_left"]
        return f"From your subscription: {left} question{'s' if left != 1 else ''} left"
    if price.source == "trial":
        left = found["trial_left"]
        return f"A free trial question ({left} left)"
    balance = billing.money(found["credits"], price.currency)
    if price.source == "overage":
        return f"Your subscription's questions are used: {cost} from your credits ({balance})"
    return f"{cost} from your credits ({balance})"


# Publishing


def missing_to_publish(session: Session, asset: Asset) -> list[str]:
    """What the asset lacks before it can be published: a price, and a finished ingest."""
    missing = []
    if billing.current_plan(session, asset.id) is None:
        missing.append(
            f"set a price first: /earnings#plan-{asset.slug} (or PUT /v1/assets/{asset.slug}/plan)"
        )
    ingested = session.exec(
        select(IngestionJob.id).where(
            IngestionJob.asset_id == asset.id, IngestionJob.status == JobStatus.succeeded
        )
    ).first()
    has_documents = session.exec(select(Document.id).where(Document.asset_id == asset.id)).first()
    if ingested is None or has_documents is None:
        running = session.exec(
            select(IngestionJob.id).where(
                IngestionJob.asset_id == asset.id,
                col(IngestionJob.status).in_([JobStatus.queued, JobStatus.running]),
            )
        ).first()
        missing.append(
            f"wait for its ingestion job {running} to finish"
            if running is not None and ingested is None
            else f"ingest its sources first: upload them on /assets/{asset.slug} "
            f"(or POST /v1/assets/{asset.slug}/sources)"
        )
    return missing


def publish(session: Session, *, account: Account, slug: str) -> Asset:
    """List the asset in the catalog, once it has a price and a finished ingest and its
    publisher has verified their e-mail address."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    accounts.ensure_verified(account, "publish an asset")
    missing = missing_to_publish(session, asset)
    if missing:
        raise AssetNotReady(f"{slug!r} cannot be published yet: " + "; ".join(missing))
    asset.published = True
    session.add(asset)
    session.flush()
    return asset


def unpublish(session: Session, *, account: Account, slug: str) -> Asset:
    """Take the asset out of the catalog: clients can no longer find it or ask it."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    asset.published = False
    session.add(asset)
    session.flush()
    return asset
