"""What a caller may ask from the AI tools they already use (the MCP server, the
OpenAI-compatible API): the assets their key reaches, each with what its next question costs."""

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app import catalog
from app.accounts import viewer_of
from app.models import Account
from app.runtime import Runtime
from assets.models import Asset
from assets.service import can_manage, get_visible_asset, list_assets
from billing import service as billing


@dataclass(frozen=True, slots=True)
class Askable:
    """An asset the caller may ask, with ``catalog.price_for``'s answer for them."""

    asset: Asset
    price: dict[str, Any]
    own: bool  # the caller manages it (its owner, or an admin): free to ask

    def price_line(self) -> str:
        """The price in a sentence, as a tool's description shows it."""
        if self.own:
            return "free to ask (you manage this asset)"
        plan = self.price["plan"]
        terms = []
        if plan["per_query"]:
            terms.append(billing.money(plan["per_query"], plan["currency"]) + " a question")
        if plan.get("monthly") is not None:
            monthly = billing.money(plan["monthly"], plan["currency"])
            terms.append(f"{monthly} a month for {plan['included']} questions")
        each = " or ".join(terms) or "free"
        return f"{each}; {self.price['detail']}"


def _askable(session: Session, runtime: Runtime, account: Account, asset: Asset) -> Askable:
    own = can_manage(viewer_of(account), asset)
    return Askable(asset, catalog.price_for(session, runtime, account=account, asset=asset), own)


def askable_assets(session: Session, runtime: Runtime, *, account: Account) -> list[Askable]:
    """The assets ``account`` may ask: published ones and their own (any, for an admin)."""
    assets = list_assets(session, viewer=viewer_of(account))
    return [_askable(session, runtime, account, a) for a in assets]


def askable(session: Session, runtime: Runtime, *, account: Account, slug: str) -> Askable:
    """One asset ``account`` may ask; any other is AssetNotFound (404), as on the HTTP API."""
    asset = get_visible_asset(session, viewer=viewer_of(account), slug=slug)
    return _askable(session, runtime, account, asset)
