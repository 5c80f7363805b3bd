"""Scheduled and queued app work, registered on the queue that ``vouch serve`` and ``vouch
worker`` run: every minute, holds past their acceptance window are released and ended
subscription periods are settled; webhook deliveries run when queued and retry on a schedule;
daily, the platform re-asks each published asset's held questions and runs its approved golden
sets for the public quality score (``app.quality``); weekly, each expert gets a digest of
their assets' content gaps (``app.gaps``)."""

import time
from collections.abc import Callable

from huey import Huey, crontab

from app import engagements, gaps, notifications, quality
from app.runtime import Runtime
from billing import service as billing


def register(huey: Huey, runtime: Runtime) -> Callable[[str], None]:
    """Register the tasks on ``huey``; returns the function that queues a webhook delivery."""
    fee_bps = runtime.settings.billing.platform_fee_bps

    @huey.periodic_task(crontab(minute="*"), name="settle-escrow")  # type: ignore[untyped-decorator]
    def settle_escrow() -> None:
        billing.settle_due(runtime.engine, fee_bps=fee_bps)

    @huey.periodic_task(crontab(minute="*"), name="release-engagements")  # type: ignore[untyped-decorator]
    def release_engagements() -> None:
        engagements.settle_due(runtime)

    # Not huey's own retries: each attempt is recorded on the row, and the delay doubles.
    @huey.task(name="deliver-webhook")  # type: ignore[untyped-decorator]
    def deliver_webhook(delivery_id: str) -> None:
        notifications.deliver(
            runtime.engine,
            delivery_id=delivery_id,
            settings=runtime.settings.notifications,
            retry=retry,
        )

    def retry(delivery_id: str, delay: float) -> None:
        if huey.immediate:
            # An immediate queue has no consumer to run its schedule: wait, then run inline.
            time.sleep(delay)
            deliver_webhook(delivery_id)
        else:
            deliver_webhook.schedule((delivery_id,), delay=delay)

    def enqueue(delivery_id: str) -> None:
        deliver_webhook(delivery_id)

    # Daily: a re-ask answers every held question again (a chat model's tokens, when one is set).
    @huey.periodic_task(crontab(hour="3", minute="17"), name="platform-evals")  # type: ignore[untyped-decorator]
    def platform_evals() -> None:
        quality.run_platform_evals(runtime)

    # Weekly, Monday morning: each expert's content gaps of the past week (app/gaps.py).
    @huey.periodic_task(crontab(day_of_week="1", hour="7", minute="0"), name="gaps-digest")  # type: ignore[untyped-decorator]
    def gaps_digest() -> None:
        gaps.send_digests(runtime)

    return enqueue
