"""The catalog over HTTP: published assets and experts found by text, domain, verified
credentials, measured quality, price and response time; an asset's page; its quality score.
The catalog is public: no API key is needed (a key sent must be valid)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app import catalog, quality
from app.api.assets import PlanView, PricePublic
from app.api.schemas import ERRORS, ErrorBody, QualityScore
from app.deps import ClientAddress, CurrentAccount, MaybeAccount, RuntimeDep, SessionDep
from billing.service import MAX_AMOUNT
from marketplace.catalog import MAX_QUERY, Filters
from marketplace.schemas import CatalogAsset, CatalogCredential, CatalogExpert

router = APIRouter(tags=["catalog"], responses={401: ERRORS[401]})


class CatalogQuery(BaseModel):
    """Every filter is optional; those given must all hold."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(
        default="",
        max_length=MAX_QUERY,
        description="Words that must each start a word of the title, description, tags, or "
        "the expert's name, headline or bio",
    )
    domain: str | None = Field(
        default=None, max_length=32, description="A tag of the asset (or a domain of the expert)"
    )
    verified: str | None = Field(
        default=None,
        max_length=32,
        description="The expert holds a verified credential in this domain",
    )
    min_quality: float | None = Field(
        default=None, ge=0, le=1, description="Lowest quality score, from 0 to 1"
    )
    price_min: int | None = Field(
        default=None,
        ge=0,
        le=MAX_AMOUNT,
        description="Minor units: per question for assets, typical engagement for experts",
    )
    price_max: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    max_response_hours: int | None = Field(
        default=None, ge=0, le=24 * 365, description="The expert answers within this many hours"
    )
    currency: str | None = Field(default=None, pattern="^[a-z]{3}$")
    sort: Literal["quality", "price", "newest"] = "quality"

    def filters(self) -> Filters:
        return Filters(**self.model_dump())


CatalogQueryDep = Annotated[CatalogQuery, Query()]


class SampleCitation(BaseModel):
    n: int
    text: str
    locator: dict[str, Any] = Field(examples=[{"path": "policies.md", "lines": [5, 8]}])


class SampleAnswer(BaseModel):
    """A sample question answered live (not charged, not recorded)."""

    question: str
    answer: str
    status: str = Field(examples=["final", "pending_review", "abstained"])
    confidence: float
    citations: list[SampleCitation]


class SampleRefused(BaseModel):
    """A sample question that could not be answered now, and why."""

    question: str
    error: str


class AssetPageExpert(BaseModel):
    account_id: str
    name: str
    headline: str
    response_hours: int | None
    url: str = Field(description="The expert's public page")
    verified_credentials: list[CatalogCredential]


class AssetPage(BaseModel):
    """A published asset as a client sees it before asking. A free asset's ``plan`` (and
    ``price.plan``) has no ``overage`` and ``acceptance_hours``."""

    slug: str
    title: str
    description: str
    tags: list[str]
    plan: PlanView
    quality: QualityScore
    expert: AssetPageExpert
    commission_url: str
    price: PricePublic
    samples: list[SampleAnswer | SampleRefused]


# No key needed: the document says the key is optional ({}: none).
PUBLIC: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}]}


@router.get("/catalog/assets", responses={422: ERRORS[422]}, openapi_extra=PUBLIC)
def catalog_assets(
    session: SessionDep, runtime: RuntimeDep, _account: MaybeAccount, query: CatalogQueryDep
) -> list[CatalogAsset]:
    """Published assets that match every filter given, sorted (quality, price or newest)."""
    found = catalog.find_assets(session, runtime, query.filters())
    return [CatalogAsset.model_validate(catalog.asset_public(a)) for a in found]


@router.get("/catalog/experts", responses={422: ERRORS[422]}, openapi_extra=PUBLIC)
def catalog_experts(
    session: SessionDep, runtime: RuntimeDep, _account: MaybeAccount, query: CatalogQueryDep
) -> list[CatalogExpert]:
    """Experts that match every filter given; price filters use their typical engagement
    prices, quality their best published asset's score."""
    found = catalog.find_experts(session, runtime, query.filters())
    return [CatalogExpert.model_validate(catalog.expert_public(e)) for e in found]


@router.get(
    "/catalog/assets/{slug}",
    responses={
        404: ERRORS[404],
        429: {"model": ErrorBody, "description": "Too many asset pages; see Retry-After"},
    },
    openapi_extra=PUBLIC,
    # A free asset's plan has no overage or acceptance_hours: left out, as they were.
    response_model_exclude_unset=True,
)
def catalog_asset(
    session: SessionDep,
    runtime: RuntimeDep,
    account: MaybeAccount,
    address: ClientAddress,
    slug: str,
) -> AssetPage:
    """A published asset as a client sees it: plans, what your next question costs and what
    pays for it (``price``; without a key, the price and a call to sign up), quality score,
    the expert's verified credentials, and sample questions answered live (not charged, not
    recorded; limited per client address: 429 past the limit)."""
    return AssetPage.model_validate(
        catalog.asset_page(session, runtime, account=account, slug=slug, address=address)
    )


@router.get("/assets/{slug}/quality-score", responses={404: ERRORS[404]})
def quality_score(session: SessionDep, account: CurrentAccount, slug: str) -> QualityScore:
    """The public quality score of a published asset, with its measured parts and dates."""
    return QualityScore.model_validate(quality.quality_score(session, account=account, slug=slug))
