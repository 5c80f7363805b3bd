"""Recording what was used. Plans, credits and the ledger build on these events."""

from sqlmodel import Session

from billing.metering import ENCODING
from billing.models import UsageEvent


def record_usage(
    session: Session,
    *,
    account_id: str,
    asset_id: str,
    consultation_id: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    latency_ms: int,
) -> UsageEvent:
    """Append the usage event of one answered question, in the caller's transaction."""
    event = UsageEvent(
        account_id=account_id,
        asset_id=asset_id,
        consultation_id=consultation_id,
        kind="ask",
        model=model,
        encoding=ENCODING,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    session.add(event)
    session.flush()
    return event
