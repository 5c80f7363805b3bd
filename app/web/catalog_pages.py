"""Catalog pages, open to everyone (signed in or not): search published assets and experts
with filters, and an asset's page for clients (plans, what the next question costs, quality
score, the expert's verified credentials, live sample answers)."""

import re
from dataclasses import replace
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from app import catalog
from app.deps import PageAccount, RuntimeDep, SessionDep, client_address
from app.errors import RateLimited
from app.models import Account
from app.web.actions import page_action
from app.web.pages import error_page, render
from core.errors import VouchError
from marketplace.catalog import MAX_QUERY, SORTS, Filters, Sort
from marketplace.errors import InvalidCatalogFilter

router = APIRouter(include_in_schema=False)

FIELDS = {
    "q": "Search",
    "domain": "Domain",
    "verified": "Verified credential in",
    "min_quality": "Minimum quality score",
    "price_min": "Per question from",
    "price_max": "Per question up to",
    "engagement_min": "Engagement from",
    "engagement_max": "Engagement up to",
    "max_response_hours": "Answers within (hours)",
    "sort": "Sort by",
}
SORT_LABELS = {"quality": "Quality, best first", "price": "Price, lowest first", "newest": "Newest"}
_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?")
_HOURS = re.compile(r"\d{1,5}")
_SCORE = re.compile(r"(0(\.\d+)?|1(\.0+)?|\.\d+)")


def install(app: FastAPI) -> None:
    """Add the catalog pages."""
    app.state.templates.env.globals["sort_labels"] = SORT_LABELS
    app.include_router(router)


def _amount(form: dict[str, str], name: str) -> int | None:
    """``"0.25"`` -> 25 minor units; None when empty."""
    text = form.get(name, "").strip()
    if not text:
        return None
    if not _AMOUNT.fullmatch(text):
        raise InvalidCatalogFilter(f"{FIELDS[name]}: {text!r} is not an amount; write e.g. 0.25")
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


def _range(form: dict[str, str], low: str, high: str) -> tuple[int | None, int | None]:
    start, end = _amount(form, low), _amount(form, high)
    if start is not None and end is not None and start > end:
        raise InvalidCatalogFilter(
            f"{FIELDS[low]} {form[low]} is above {FIELDS[high].lower()} {form[high]}; "
            "swap them or leave one empty"
        )
    return start, end


def filters_from(form: dict[str, str]) -> tuple[Filters, Filters]:
    """The filters as typed on the page, for assets and for experts: prices in currency units
    (per question for assets, the typical engagement for experts), a score from 0 to 1."""
    text = {k: form.get(k, "").strip() for k in FIELDS}
    if len(text["q"]) > MAX_QUERY:
        raise InvalidCatalogFilter(f"Search: keep it to {MAX_QUERY} characters")
    for name in ("domain", "verified"):
        if len(text[name]) > 32:
            raise InvalidCatalogFilter(f"{FIELDS[name]}: a domain is at most 32 characters")
    score = None
    if text["min_quality"]:
        if not _SCORE.fullmatch(text["min_quality"]):
            raise InvalidCatalogFilter(
                f"{FIELDS['min_quality']}: {text['min_quality']!r} is not a score from 0 to 1"
            )
        score = float(text["min_quality"])
    hours = None
    if text["max_response_hours"]:
        if not _HOURS.fullmatch(text["max_response_hours"]):
            raise InvalidCatalogFilter(
                f"{FIELDS['max_response_hours']}: {text['max_response_hours']!r} is not a "
                "whole number of hours"
            )
        hours = int(text["max_response_hours"])
    sort = text["sort"] or "quality"
    if sort not in SORTS:
        raise InvalidCatalogFilter(f"{FIELDS['sort']}: use one of {', '.join(SORTS)}")
    shared = Filters(
        q=text["q"],
        domain=text["domain"] or None,
        verified=text["verified"] or None,
        min_quality=score,
        max_response_hours=hours,
        sort=cast(Sort, sort),
    )
    low, high = _range(text, "price_min", "price_max")
    for_assets = replace(shared, price_min=low, price_max=high)
    low, high = _range(text, "engagement_min", "engagement_max")
    for_experts = replace(shared, price_min=low, price_max=high)
    return for_assets.check(), for_experts.check()


@router.get("/catalog")
def catalog_page(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: PageAccount
) -> Response:
    form = {k: v for k, v in request.query_params.items() if k in FIELDS}
    context: dict[str, Any] = {
        "account": account,
        "form": form,
        "fields": FIELDS,
        "currency": runtime.settings.billing.currency,
        "searched": bool(form),
    }
    try:
        for_assets, for_experts = filters_from(form)
    except InvalidCatalogFilter as exc:
        return render(request, "catalog.html", 422, error=exc.message, **context)
    return render(
        request,
        "catalog.html",
        experts=catalog.find_experts(session, runtime, for_experts),
        assets=catalog.find_assets(session, runtime, for_assets),
        **context,
    )


def _no_asset_page(
    exc: VouchError, request: Request, account: Account | None, **_: Any
) -> Response:
    shown = error_page(request, account, exc)
    if isinstance(exc, RateLimited):
        shown.headers["Retry-After"] = str(exc.retry_after)
    return shown


@router.get("/catalog/assets/{slug}")
@page_action(_no_asset_page)
def asset_page(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: PageAccount, slug: str
) -> Response:
    page = catalog.asset_page(
        session, runtime, account=account, slug=slug, address=client_address(request)
    )
    return render(request, "catalog_asset.html", account=account, page=page)
