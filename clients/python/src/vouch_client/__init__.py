"""A typed client for Vouch's HTTP API: assets, search, ask (streamed too), consultations,
credits and plans, sync (``Vouch``) and async (``AsyncVouch``).

Framework adapters import their framework and are imported on their own:
``vouch_client.llama_index`` (``pip install 'vouch-client[llama-index]'``) and
``vouch_client.langchain`` (``pip install 'vouch-client[langchain]'``).
"""

from vouch_client._client import (
    DEFAULT_URL,
    IDEMPOTENCY_HEADER,
    AskEvent,
    AsyncVouch,
    Vouch,
    __version__,
)
from vouch_client.errors import (
    AuthenticationError,
    Conflict,
    ConnectionError,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationError,
    VouchError,
)
from vouch_client.models import (
    AskDelta,
    AskPublic,
    AssetPublic,
    ChargePublic,
    CitationPublic,
    ClientSummary,
    FlagCreated,
    PlanIn,
    PlanPublic,
    PricePublic,
    SearchResult,
    SubscriptionPublic,
)

__all__ = [
    "DEFAULT_URL",
    "IDEMPOTENCY_HEADER",
    "AskDelta",
    "AskEvent",
    "AskPublic",
    "AssetPublic",
    "AsyncVouch",
    "AuthenticationError",
    "ChargePublic",
    "CitationPublic",
    "ClientSummary",
    "Conflict",
    "ConnectionError",
    "FlagCreated",
    "NotFound",
    "PaymentRequired",
    "PermissionDenied",
    "PlanIn",
    "PlanPublic",
    "PricePublic",
    "RateLimited",
    "SearchResult",
    "ServerError",
    "SubscriptionPublic",
    "ValidationError",
    "Vouch",
    "VouchError",
    "__version__",
]
