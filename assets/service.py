"""Creating and finding assets, who may see them, and recording consultations."""

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from assets.answering import Answer
from assets.embeddings import Embedder
from assets.errors import AssetNotFound, AssetSlugTaken, ConsultationNotFound, NotAssetOwner
from assets.models import Asset, Consultation
from assets.schemas import AssetCreate


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: an account id and its role (expert, client or admin)."""

    account_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def create_asset(
    session: Session, *, owner: Viewer, data: AssetCreate, embedder: Embedder
) -> Asset:
    """A new asset owned by ``owner``, recording the embedder its vectors will come from."""
    if owner.role not in ("expert", "admin"):
        raise NotAssetOwner("only experts create assets")
    if session.exec(select(Asset).where(Asset.slug == data.slug)).first():
        raise AssetSlugTaken(f"the slug {data.slug!r} is taken; choose another")
    asset = Asset(
        owner_id=owner.account_id,
        slug=data.slug,
        title=data.title,
        description=data.description,
        tags=data.tags,
        published=data.published,
        collection="",
        embed_model=embedder.name,
        embed_dimension=embedder.dimension,
    )
    asset.collection = f"asset_{asset.id.removeprefix('ast_')}"
    session.add(asset)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent create took the slug first
        raise AssetSlugTaken(f"the slug {data.slug!r} is taken; choose another") from exc
    return asset


def can_manage(viewer: Viewer, asset: Asset) -> bool:
    return viewer.is_admin or asset.owner_id == viewer.account_id


def get_visible_asset(session: Session, *, viewer: Viewer, slug: str) -> Asset:
    """The asset if ``viewer`` may see it: published, or their own, or any for an admin."""
    asset = session.exec(select(Asset).where(Asset.slug == slug)).first()
    if asset is None or not (asset.published or can_manage(viewer, asset)):
        raise AssetNotFound(f"no asset {slug!r}")
    return asset


def get_managed_asset(session: Session, *, viewer: Viewer, slug: str) -> Asset:
    """The asset if ``viewer`` owns it (or is an admin); others get 404 or 403."""
    asset = get_visible_asset(session, viewer=viewer, slug=slug)
    if not can_manage(viewer, asset):
        raise NotAssetOwner(f"only the owner of {slug!r} can do this")
    return asset


def list_assets(session: Session, *, viewer: Viewer, mine: bool = False) -> list[Asset]:
    """Assets the viewer can see (or only their own), newest first."""
    statement = select(Asset).order_by(col(Asset.created_at).desc())
    if mine:
        statement = statement.where(Asset.owner_id == viewer.account_id)
    elif not viewer.is_admin:
        statement = statement.where(
            or_(col(Asset.published).is_(True), Asset.owner_id == viewer.account_id)
        )
    return list(session.exec(statement))


def record_consultation(
    session: Session,
    *,
    asset: Asset,
    viewer: Viewer,
    question: str,
    answer: Answer,
    prompt_tokens: int,
    completion_tokens: int,
    latency_ms: int,
) -> Consultation:
    """Store a question, its answer and citations, in the caller's transaction."""
    consultation = Consultation(
        asset_id=asset.id,
        account_id=viewer.account_id,
        question=question,
        answer=answer.text,
        citations=[{"n": c.n, "text": c.text, "locator": c.locator} for c in answer.citations],
        confidence=answer.confidence,
        prior_confidence=answer.prior_confidence,
        status=answer.status,
        review_reason=answer.review_reason,
        model=answer.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    session.add(consultation)
    session.flush()
    return consultation


def get_consultation(session: Session, *, viewer: Viewer, consultation_id: str) -> Consultation:
    """A consultation seen by the client who asked, the asset's owner, or an admin."""
    consultation = session.get(Consultation, consultation_id)
    if consultation is not None and not viewer.is_admin:
        asset = session.get(Asset, consultation.asset_id)
        allowed = consultation.account_id == viewer.account_id or (
            asset is not None and asset.owner_id == viewer.account_id
        )
        consultation = consultation if allowed else None
    if consultation is None:
        raise ConsultationNotFound(f"no consultation {consultation_id}")
    return consultation
