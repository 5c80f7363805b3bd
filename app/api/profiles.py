"""Expert profiles over HTTP: the expert's own, and the public view of any expert."""

from fastapi import APIRouter

from app import profiles
from app.api.schemas import ERRORS
from app.deps import CurrentAccount, SessionDep
from marketplace.profiles import ProfileUpdate
from marketplace.schemas import ExpertPage, ProfilePublic

router = APIRouter(tags=["experts"])


@router.get("/experts/me/profile", responses={401: ERRORS[401], 403: ERRORS[403]})
def my_profile(session: SessionDep, account: CurrentAccount) -> ProfilePublic:
    """Your profile as others see it (blank fields until you fill them in)."""
    return ProfilePublic.model_validate(profiles.my_profile(session, account=account))


@router.put("/experts/me/profile", responses={401: ERRORS[401], 403: ERRORS[403], 422: ERRORS[422]})
def update_profile(
    session: SessionDep, account: CurrentAccount, body: ProfileUpdate
) -> ProfilePublic:
    """Replace your profile: headline, bio, domains, links, typical engagement prices (minor
    units), response time, ORCID iD; and your name when given."""
    return ProfilePublic.model_validate(
        profiles.update_profile(session, account=account, data=body)
    )


@router.get("/experts/{account_id}", responses={404: ERRORS[404]})
def expert(session: SessionDep, account_id: str) -> ExpertPage:
    """Public, no key needed: an expert's profile, published assets and verified credentials."""
    return ExpertPage.model_validate(profiles.public_expert(session, account_id=account_id))
