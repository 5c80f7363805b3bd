"""Expert profiles: the expert's own (read and replace), and the public view of an expert with
their published assets and verified credentials."""

from typing import Any

from sqlmodel import Session, col, select

from app.models import Account, Role
from assets.models import Asset
from core.clock import utcnow
from marketplace import credentials as rules
from marketplace import profiles
from marketplace.errors import ExpertNotFound, NotAnExpert
from marketplace.models import Credential, ExpertProfile


def require_expert(account: Account, what: str) -> None:
    if account.role != Role.expert:
        raise NotAnExpert(f"{what} belong to expert accounts; this is a {account.role} account")


def stored_profile(session: Session, account_id: str) -> ExpertProfile:
    """The expert's profile row, or a blank one (not added to the session)."""
    return session.get(ExpertProfile, account_id) or ExpertProfile(account_id=account_id)


def my_profile(session: Session, *, account: Account) -> dict[str, Any]:
    require_expert(account, "profiles")
    return profiles.profile_view(stored_profile(session, account.id), name=account.name)


def update_profile(
    session: Session, *, account: Account, data: profiles.ProfileUpdate
) -> dict[str, Any]:
    """Replace the expert's profile with ``data``; the name is changed only when given."""
    require_expert(account, "profiles")
    profile = stored_profile(session, account.id)
    profiles.apply(profile, data, now=utcnow())
    if data.name is not None:
        account.name = data.name
        session.add(account)
    session.add(profile)
    session.flush()
    return profiles.profile_view(profile, name=account.name)


def public_expert(session: Session, *, account_id: str) -> dict[str, Any]:
    """An expert as anyone sees them: profile, published assets, live verified credentials."""
    account = session.get(Account, account_id)
    if account is None or account.role != Role.expert:
        raise ExpertNotFound(f"no expert {account_id}")
    now = utcnow()
    published = session.exec(
        select(Asset)
        .where(Asset.owner_id == account.id, col(Asset.published).is_(True))
        .order_by(col(Asset.created_at).desc())
    ).all()
    held = session.exec(
        select(Credential)
        .where(Credential.account_id == account.id)
        .order_by(col(Credential.created_at), col(Credential.id))
    ).all()
    return {
        "profile": profiles.profile_view(stored_profile(session, account.id), name=account.name),
        "assets": [{"slug": a.slug, "title": a.title, "tags": list(a.tags)} for a in published],
        # Proved through ORCID's sign-in (the profile's own ``orcid`` is only typed in).
        "orcid_proved": account.orcid,
        "credentials": [
            rules.public_view(c, now=now, visible_assets=frozenset(a.slug for a in published))
            for c in held
            if rules.is_live(c, now=now)
        ],
    }
