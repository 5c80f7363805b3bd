"""Assets: create and list them, upload sources, follow jobs, publish, price, search, ask."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from app import catalog, querying, sse
from app.accounts import viewer_of
from app.api.schemas import (
    ASK_EVENT,
    ASK_EVENTS,
    ERRORS,
    AskDelta,
    AskIdempotencyKey,
    AskPublic,
    ErrorBody,
    JobPublic,
)
from app.bodies import FILES, Form, multipart_body, read_files
from app.deps import CurrentAccount, MaybeAccount, RuntimeDep, SessionDep
from assets import service as assets
from assets.errors import AssetNotReady
from assets.models import Asset
from assets.schemas import (
    AskRequest,
    AssetCreate,
    AssetPublic,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from billing import service as billing
from ingestion.models import IngestionJob
from ingestion.readers import KINDS
from ingestion.service import job_public

router = APIRouter(tags=["assets"], responses={401: ERRORS[401]})
# The Idempotency-Key header of a search, as an ask takes it.
SearchIdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="Retrying with the same key searches again without a second charge",
    ),
]


def _public(asset: Asset) -> AssetPublic:
    return AssetPublic.model_validate(asset, from_attributes=True)


def _job(session: Session, job: IngestionJob, asset: Asset) -> JobPublic:
    return JobPublic(asset=asset.slug, **job_public(session, job))


@router.get("/assets", responses={422: ERRORS[422]})
def list_assets(
    session: SessionDep, account: CurrentAccount, mine: bool = False
) -> list[AssetPublic]:
    """Published assets and your own; ``mine=true`` lists only yours."""
    return [_public(a) for a in assets.list_assets(session, viewer=viewer_of(account), mine=mine)]


@router.post(
    "/assets",
    status_code=status.HTTP_201_CREATED,
    responses={
        403: ERRORS[403],
        409: {
            "model": ErrorBody,
            "description": "Slug taken, or `published: true` (a new asset has no price or "
            "ingested sources yet)",
        },
        422: ERRORS[422],
    },
)
def create_asset(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, body: AssetCreate
) -> AssetPublic:
    """A new asset, unpublished: set its price and ingest its sources, then publish it."""
    if body.published:
        raise AssetNotReady(
            f"a new asset cannot be published yet: create {body.slug!r} unpublished, set its "
            f"price (PUT /v1/assets/{body.slug}/plan), ingest its sources, then POST "
            f"/v1/assets/{body.slug}/publish"
        )
    asset = assets.create_asset(
        session, owner=viewer_of(account), data=body, embedder=runtime.embedder
    )
    return _public(asset)


@router.get("/assets/{slug}", responses={404: ERRORS[404]})
def get_asset(session: SessionDep, account: CurrentAccount, slug: str) -> AssetPublic:
    return _public(assets.get_visible_asset(session, viewer=viewer_of(account), slug=slug))


class PlanView(BaseModel):
    per_query: int | None = Field(description="Per question, minor units; null: not sold so")
    monthly: int | None = Field(description="A month's subscription; null: none")
    included: int = Field(description="Questions a month's subscription includes")
    overage: int | None = None
    currency: str
    trial: int = Field(description="Free questions for a client without credits")
    acceptance_hours: int | None = None
    per_search: int | None = Field(
        default=None, description="A client's search of the passages; null: not sold, 0: free"
    )


class ExpertLink(BaseModel):
    account_id: str
    name: str
    url: str = Field(description="The expert's public page")


class PricePublic(BaseModel):
    """What the next question costs the caller and what pays for it."""

    asset: str
    plan: PlanView
    expert: ExpertLink
    can_ask: bool = Field(description="Whether the caller could ask now")
    pays_with: Literal["subscription", "overage", "credits", "trial", "free"] | None = Field(
        description="What would pay for the next question; null: nothing (see `detail`)"
    )
    amount: int | None = Field(description="What the next question costs, minor units")
    currency: str
    credits: int | None = Field(description="The caller's credits in `currency`")
    questions_left: int | None = Field(
        description="Questions left this period of the caller's subscription, if any"
    )
    trial_left: int | None = Field(description="Trial questions the caller has left")
    detail: str = Field(description="The same in a sentence, or why the caller cannot ask")


_NOT_READY = {
    "model": ErrorBody,
    "description": "No price yet, or no finished ingest: `detail` says what to do",
}


@router.post(
    "/assets/{slug}/publish",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: _NOT_READY},
)
def publish_asset(session: SessionDep, account: CurrentAccount, slug: str) -> AssetPublic:
    """List the asset in the catalog, so that clients can find it and ask. It needs a price
    (a plan), a finished ingest, and an owner whose e-mail address is verified (403)."""
    return _public(catalog.publish(session, account=account, slug=slug))


@router.post("/assets/{slug}/unpublish", responses={403: ERRORS[403], 404: ERRORS[404]})
def unpublish_asset(session: SessionDep, account: CurrentAccount, slug: str) -> AssetPublic:
    """Take the asset out of the catalog: clients can no longer find it or ask it."""
    return _public(catalog.unpublish(session, account=account, slug=slug))


@router.get(
    "/assets/{slug}/price",
    responses={404: ERRORS[404]},
    openapi_extra={"security": [{}, {"HTTPBearer": []}]},  # no key needed
)
def asset_price(
    session: SessionDep, runtime: RuntimeDep, account: MaybeAccount, slug: str
) -> PricePublic:
    """What your next question on a published asset costs and what pays for it: your
    subscription's questions left, your credits, or a trial question (``can_ask`` false and
    ``detail`` saying why when nothing does). Without an API key: the price alone."""
    asset = catalog.public_asset(session, account=account, slug=slug)
    return PricePublic.model_validate(
        catalog.price_for(session, runtime, account=account, asset=asset)
    )


def _managed_asset(session: SessionDep, account: CurrentAccount, slug: str) -> Asset:
    """The asset, if the caller manages it (else 403/404), checked before the upload is read;
    the read ends the transaction, so that no connection is held while the files arrive."""
    asset = assets.get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    session.commit()
    return asset


async def _source_files(
    request: Request, runtime: RuntimeDep, _asset: Annotated[Asset, Depends(_managed_asset)]
) -> Form:
    return await read_files(request, budget=runtime.settings.ingest.max_upload_bytes)


@router.post(
    "/assets/{slug}/sources",
    status_code=status.HTTP_202_ACCEPTED,
    responses={403: ERRORS[403], 404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]},
    openapi_extra=multipart_body(
        {"files": "Source code, Markdown, text, HTML, XML, LaTeX, PDF, zip or tar files"},
        {"kind": {"type": "string", "enum": list(KINDS), "default": "auto"}},
        many=True,
    ),
    max_body_size=FILES,
)
def upload_source(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    slug: str,
    form: Annotated[Form, Depends(_source_files)],
) -> JobPublic:
    """Store the files and queue their ingestion; follow the job at ``/v1/jobs/{job_id}``.

    A file no kind can read (an image, say) does not refuse the upload: the job lists it under
    ``excluded`` with the reason and ingests the rest. A name given twice keeps its last file.
    Refused with 422, nothing stored: an unknown ``kind``, an unsafe name (absolute, ``..``),
    a broken archive or one that unpacks too large. The caller is authenticated and allowed
    before the body is read; a body larger than the upload limit is refused with 413 before
    it is read."""
    job = querying.submit_upload(
        session,
        runtime,
        account=account,
        slug=slug,
        files=form.files.get("files", []),
        kind=form.text("kind", max_length=20, default="auto"),
    )
    return JobPublic(asset=slug, **job_public(session, job))


@router.get("/assets/{slug}/jobs", responses={403: ERRORS[403], 404: ERRORS[404]})
def list_jobs(session: SessionDep, account: CurrentAccount, slug: str) -> list[JobPublic]:
    jobs, asset = querying.list_jobs(session, account=account, slug=slug)
    return [_job(session, job, asset) for job in jobs]


@router.get("/jobs/{job_id}", responses={404: ERRORS[404]})
def get_job(session: SessionDep, account: CurrentAccount, job_id: str) -> JobPublic:
    job, asset = querying.get_job(session, account=account, job_id=job_id)
    return _job(session, job, asset)


@router.post("/jobs/{job_id}/cancel", responses={404: ERRORS[404], 409: ERRORS[404]})
def cancel_job(session: SessionDep, account: CurrentAccount, job_id: str) -> JobPublic:
    """Cancel a queued job now, or stop a running one after its current batch."""
    job, asset = querying.cancel_job(session, account=account, job_id=job_id)
    return _job(session, job, asset)


@router.post(
    "/assets/{slug}/search",
    responses={
        402: {"model": ErrorBody, "description": "Not enough credits for the price of a search"},
        403: {
            "model": ErrorBody,
            "description": "The asset's plan does not sell its passages (ask instead), or the "
            "caller's e-mail address is not verified for a priced search",
        },
        404: ERRORS[404],
        409: {"model": ErrorBody, "description": "Idempotency-Key reused for another search"},
        422: ERRORS[422],
    },
)
def search(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    slug: str,
    body: SearchRequest,
    idempotency_key: SearchIdempotencyKey = None,
) -> SearchResponse:
    """The passages closest to the query. The asset's owner and admins search free; a client
    searches a published asset as its plan's ``per_search`` says: null, its passages are not
    sold (403: ask instead); 0, free; more, each search is paid from the client's credits at
    once (no escrow: there is no answer to dispute), 402 when they do not cover it. The same
    Idempotency-Key again searches again and charges once; with another search it is 409."""
    passages = querying.search(
        session,
        runtime,
        account=account,
        slug=slug,
        query=body.query,
        k=body.k,
        kinds=list(body.kinds) if body.kinds else None,
        path_prefix=body.path_prefix,
        idempotency_key=idempotency_key,
    )
    return SearchResponse(
        results=[
            SearchResult(
                rank=i, score=p.rank_score, similarity=p.score, text=p.text, locator=p.locator
            )
            for i, p in enumerate(passages, 1)
        ]
    )


@router.post(
    "/assets/{slug}/ask",
    response_model=AskPublic,
    responses={
        200: {
            "description": "The answer; as server-sent events when streamed: `delta` events, "
            "then `done` (the answer as JSON) or `error`, each event's data as `x-events` says",
            "content": {sse.MEDIA_TYPE: {"schema": ASK_EVENT, "x-events": ASK_EVENTS}},
        },
        402: {"model": ErrorBody, "description": "Not enough credits for the price"},
        403: {"model": ErrorBody, "description": "Subscription needed, or its questions used"},
        404: ERRORS[404],
        409: {"model": ErrorBody, "description": "Idempotency-Key reused for another question"},
        422: ERRORS[422],
        429: {"model": ErrorBody, "description": "Too many questions; see Retry-After"},
        503: {"model": ErrorBody, "description": "The language model endpoint failed"},
    },
)
def ask(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    slug: str,
    body: AskRequest,
    idempotency_key: AskIdempotencyKey = None,
) -> AskPublic | Response:
    """A cited answer from the asset, charged and recorded with its token counts.

    The price (per question, from a subscription's quota, or a trial question) is checked
    before answering (402 or 403 when the caller is not entitled) and held in escrow with the
    answer; ``charge`` says how much, from where, and until when it is held. With
    ``"stream": true`` (or ``Accept: text/event-stream``) the answer comes as server-sent
    events: ``delta`` events (``{"text": ...}``) as it is written, then one ``done`` event with
    the same JSON as a plain answer, or an ``error`` event (``{"error", "detail"}``) if the
    language model fails midway. The final text in ``done`` is authoritative. Errors found
    before the stream starts are plain JSON errors.
    """
    if body.stream or sse.wants_stream(request.headers.get("accept")):
        stream = querying.start_ask_stream(
            session,
            runtime,
            account=account,
            slug=slug,
            question=body.question,
            idempotency_key=idempotency_key,
        )
        if isinstance(stream, querying.AskStream):
            return sse.response(_typed_event(e) for e in stream.events())
        return AskPublic.model_validate(stream.public())
    result = querying.ask(
        session,
        runtime,
        account=account,
        slug=slug,
        question=body.question,
        idempotency_key=idempotency_key,
    )
    return AskPublic.model_validate(result.public())


def _typed_event(e: querying.AskEvent) -> str:
    """An event of a streamed answer, its data checked against the model the document names."""
    models: dict[str, type[BaseModel]] = {"delta": AskDelta, "done": AskPublic, "error": ErrorBody}
    model = models[e.name]
    return sse.event(e.name, model.model_validate(e.data).model_dump(mode="json"))


@router.get("/consultations/{consultation_id}", responses={404: ERRORS[404]})
def get_consultation(
    session: SessionDep, account: CurrentAccount, consultation_id: str
) -> AskPublic:
    consultation = assets.get_consultation(
        session, viewer=viewer_of(account), consultation_id=consultation_id
    )
    charge = billing.charge_for_consultation(session, consultation.id)
    return AskPublic.model_validate(querying.consultation_public(consultation, charge))
