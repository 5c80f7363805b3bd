"""Errors of the assets package."""

from core.errors import Conflict, Forbidden, InvalidInput, NotFound, VouchError


class AssetNotFound(NotFound):
    pass


class ConsultationNotFound(NotFound):
    pass


class AssetSlugTaken(Conflict):
    pass


class AssetNotReady(Conflict):
    """The asset cannot be published yet: it has no price or no finished ingest."""


class InvalidAsset(InvalidInput):
    pass


class InvalidQuestion(InvalidInput):
    pass


class NotAssetOwner(Forbidden):
    pass


class EmbedderMismatch(Conflict):
    """The asset's vectors were made by another model than the one configured now."""


class EmbedderUnavailable(VouchError):
    status_code = 503


class IndexUnavailable(VouchError):
    status_code = 503


class LLMUnavailable(VouchError):
    """The configured chat endpoint could not be reached or did not give a usable answer."""

    status_code = 503


class RerankUnavailable(VouchError):
    """The configured re-ranker could not order the passages; search keeps its fused order."""

    status_code = 503


class ReviewItemNotFound(NotFound):
    pass


class VerifiedAnswerNotFound(NotFound):
    pass


class AlreadyInReview(Conflict):
    pass


class ReviewItemActed(Conflict):
    """The item was approved, corrected or rejected already."""


class InvalidCorrection(InvalidInput):
    pass
