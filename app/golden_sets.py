"""Golden sets an expert submits for the public score, an admin's decision on them, and the
expert's private eval runs.

An expert's own golden sets are diagnostics: ``vouch eval`` stores their runs with scope
``private``, visible to the asset's expert (and admins) only. To make a set count, the expert
submits it (``POST /v1/assets/{slug}/golden-sets``); an admin approves or rejects it; the
platform then runs an approved set itself (``app.quality.run_platform``) with scope
``approved``. Approving does not run it: the next platform run does.
"""

from typing import Any

from sqlmodel import Session, col, select

from app.accounts import viewer_of
from app.models import Account
from assets.errors import AssetNotFound, NotAssetOwner
from assets.models import Asset
from assets.service import get_managed_asset
from core.clock import utcnow
from evals import platform
from evals.errors import GoldenSetDecided, GoldenSetNotFound
from evals.golden import GoldenSet as Golden
from evals.golden import read_golden
from evals.models import EvalRun, GoldenSet
from evals.runner import list_eval_runs

STATUSES = ("submitted", "approved", "rejected")
# An uploaded golden set file: thousands of questions fit well below it.
MAX_FILE_BYTES = 5 * 1024 * 1024
PREVIEW = 5


def _when(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def golden_public(session: Session, golden: GoldenSet) -> dict[str, Any]:
    asset = session.get(Asset, golden.asset_id)
    return {
        "id": golden.id,
        "asset": asset.slug if asset else None,
        "name": golden.name,
        "sha256": golden.sha256,
        "size": len(golden.questions),
        "questions": golden.questions,
        "status": golden.status,
        "note": golden.note,
        "submitted_by": golden.submitted_by,
        "decided_at": _when(golden.decided_at),
        "created_at": _when(golden.created_at),
    }


def own_asset(session: Session, *, account: Account, slug: str) -> Asset:
    """The asset, for its expert (and admins). To anyone else its golden sets and private runs
    do not exist: 404, whether or not they can see the asset itself."""
    try:
        return get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    except NotAssetOwner as exc:
        raise AssetNotFound(f"no asset {slug!r} of yours") from exc


def golden_view(session: Session, golden: GoldenSet) -> dict[str, Any]:
    """The set as the pages show it: with its expert's name and the first questions."""
    expert = session.get(Account, golden.submitted_by)
    return golden_public(session, golden) | {
        "expert": None if expert is None else {"id": expert.id, "name": expert.name},
        "preview": [q.get("question", "") for q in golden.questions[:PREVIEW]],
        "unanswerable": sum(1 for q in golden.questions if q.get("unanswerable")),
    }


def submit(
    session: Session, *, account: Account, slug: str, name: str, items: list[dict[str, Any]]
) -> GoldenSet:
    """The asset's expert submits a golden set for approval; every bad item is reported."""
    asset = own_asset(session, account=account, slug=slug)
    return _store(session, asset, account, platform.golden_from_json(items, name=name))


def submit_file(
    session: Session, *, account: Account, slug: str, name: str, filename: str, data: bytes
) -> GoldenSet:
    """The asset's expert submits a golden set file (JSONL, or a JSON array of the same items,
    see ``evals.golden``); ``name`` defaults to the file's name without its extension."""
    asset = own_asset(session, account=account, slug=slug)
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    name = (name.strip() or stem.strip() or "golden set")[:200].strip()
    loaded = read_golden(data, source=filename or "upload", name=name)
    return _store(session, asset, account, loaded)


def _store(session: Session, asset: Asset, account: Account, loaded: Golden) -> GoldenSet:
    golden = GoldenSet(
        asset_id=asset.id,
        name=loaded.name,
        sha256=loaded.sha256,
        questions=[i.model_dump(mode="json", exclude_defaults=True) for i in loaded.items],
        submitted_by=account.id,
        status="submitted",
    )
    session.add(golden)
    session.flush()
    return golden


def for_asset(session: Session, *, account: Account, slug: str) -> list[GoldenSet]:
    """The asset's submitted sets, newest first: its expert and admins only."""
    asset = own_asset(session, account=account, slug=slug)
    return list(
        session.exec(
            select(GoldenSet)
            .where(GoldenSet.asset_id == asset.id)
            .order_by(col(GoldenSet.created_at).desc(), col(GoldenSet.id))
        )
    )


def waiting(session: Session, *, status: str = "submitted") -> list[GoldenSet]:
    """Sets of one status, oldest first (for the admin)."""
    return list(
        session.exec(
            select(GoldenSet)
            .where(GoldenSet.status == status)
            .order_by(col(GoldenSet.created_at), col(GoldenSet.id))
        )
    )


def decide(
    session: Session, *, admin: Account, golden_set_id: str, approved: bool, note: str = ""
) -> GoldenSet:
    """An admin approves or rejects a submitted set, once."""
    golden = session.get(GoldenSet, golden_set_id)
    if golden is None:
        raise GoldenSetNotFound(f"no golden set {golden_set_id}")
    if golden.status != "submitted":
        raise GoldenSetDecided(f"golden set {golden_set_id} is already {golden.status}")
    golden.status = "approved" if approved else "rejected"
    golden.note = note.strip()
    golden.decided_by = admin.id
    golden.decided_at = utcnow()
    session.add(golden)
    session.flush()
    return golden


def private_runs(session: Session, *, account: Account, slug: str) -> list[EvalRun]:
    """The expert's own ``vouch eval`` runs of the asset, newest first: its expert and admins
    only; anyone else is told the asset is missing or not theirs."""
    asset = own_asset(session, account=account, slug=slug)
    return list_eval_runs(session, asset_id=asset.id, scope="private")


def run_public(run: EvalRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "scope": run.scope,
        "golden": run.golden_name,
        "golden_sha256": run.golden_sha256,
        "size": run.size,
        "k": run.k,
        "metrics": run.metrics,
        "created_at": _when(run.created_at),
    }
