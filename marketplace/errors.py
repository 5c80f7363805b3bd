"""Errors of the marketplace package."""

from core.errors import Conflict, Forbidden, InvalidInput, NotFound, VouchError

# Profiles and credentials


class ExpertNotFound(NotFound):
    pass


class NotAnExpert(Forbidden):
    """Profiles and credentials belong to expert accounts."""


class InvalidProfile(InvalidInput):
    pass


class CredentialNotFound(NotFound):
    pass


class InvalidCredential(InvalidInput):
    pass


class EvidenceNotFound(NotFound):
    """The asset, source or paper a claim names is not the expert's."""


class EvidenceUnusable(Conflict):
    """What a claim names exists but cannot back it (no git history, not a paper)."""


class InvalidDocument(InvalidInput):
    pass


class NotReviewable(Conflict):
    """The credential is not one an admin decides, or it has no document to decide on."""


class NotMachineCheckable(Conflict):
    """The credential is verified by an admin, not re-checked on demand."""


class InvalidSigningKey(InvalidInput):
    """The text is not one SSH or OpenPGP public key."""


class SigningKeyTaken(Conflict):
    """That key is registered already (to this account or another)."""


class SigningKeyNotFound(NotFound):
    pass


class LookupsNotConfigured(Conflict):
    """No DOI or ORCID registry is configured, so claims that need one cannot be checked."""


class LookupUnavailable(VouchError):
    """An external registry (ORCID, DOI, GitHub) could not be reached or answered nonsense."""

    status_code = 503


# Engagements


class EngagementNotFound(NotFound):
    pass


class MilestoneNotFound(NotFound):
    pass


class InvalidEngagement(InvalidInput):
    pass


class NotEngagementParty(Forbidden):
    """The engagement is visible to the account, but this step is the other party's."""


class TransitionRefused(Conflict):
    """The engagement or milestone is not in a state that allows this step."""


class RevisionLimitReached(Conflict):
    pass


# Catalog


class InvalidCatalogFilter(InvalidInput):
    pass
