"""Scheduled billing work, registered on the queue that ``vouch serve`` and ``vouch worker`` run:
every minute, holds past their acceptance window are released and ended subscription periods
are settled."""

from huey import SqliteHuey, crontab
from sqlalchemy import Engine

from app import accounting


def register(huey: SqliteHuey, engine: Engine, *, fee_bps: int) -> None:
    @huey.periodic_task(crontab(minute="*"), name="settle-escrow")  # type: ignore[untyped-decorator]
    def settle_escrow() -> None:
        accounting.settle(engine, fee_bps=fee_bps)
