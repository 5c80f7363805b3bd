"""The FastAPI application: JSON API under /v1, pages at /, OpenAPI docs at /docs."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.routing import Route
from starlette.types import ASGIApp

from app import docs_pages, errors, mcp_server, quality
from app.api import accounts as accounts_api
from app.api import assets as assets_api
from app.api import billing as billing_api
from app.api import catalog as catalog_api
from app.api import credentials as credentials_api
from app.api import engagements as engagements_api
from app.api import gaps as gaps_api
from app.api import golden_sets as golden_sets_api
from app.api import health as health_api
from app.api import notifications as notifications_api
from app.api import openai_compat
from app.api import profiles as profiles_api
from app.api import review as review_api
from app.api import stripe as stripe_api
from app.api.schemas import ErrorBody, ProtectedResourceMetadata
from app.runtime import Runtime
from app.web import (
    account_pages,
    billing_pages,
    catalog_pages,
    engagement_pages,
    forms,
    gap_pages,
    notification_pages,
    pages,
    quality_pages,
    review_pages,
)
from app.web import profile_pages as profile_web
from app.wiring import wire
from core.config import Settings

log = logging.getLogger(__name__)
WEB = Path(__file__).parent / "web"


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        return errors.PlainTooLarge(super().build_middleware_stack())


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """The app on ``settings``; consumer threads for the task queue start with the server.

    A ``runtime`` handed in gets the app's tasks and Stripe handlers too, if it has none yet."""
    runtime = wire(runtime or Runtime(settings))
    mcp = mcp_server.HttpEndpoint(runtime)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        consumer = None
        if settings.queue.workers and not settings.queue.immediate:
            consumer = runtime.queue.consumer(
                settings.queue.workers, shutdown_timeout=settings.server.shutdown_grace_seconds
            )
            consumer.start()
            log.info("task queue: %d consumer threads", settings.queue.workers)
        try:
            async with mcp.running():
                yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            runtime.close()

    app = _App(
        title="Vouch",
        version="0.1.0",
        description="Experts' corpora and judgment as paid, cited AI knowledge assets.",
        lifespan=lifespan,
        # Served by app/docs_pages.py from packaged files, so they work offline.
        docs_url=None,
        redoc_url=None,
        # Bodies past this are refused before they are read (routes that take files: bodies.py).
        max_body_size=settings.server.max_body_bytes,
        # One error model for every error: {"error": <class name>, "detail": message}.
        responses={
            "4XX": {"model": ErrorBody, "description": "Refused; `detail` says why"},
            "5XX": {"model": ErrorBody, "description": "Failed; `detail` says why"},
        },
    )
    app.state.runtime = runtime
    app.state.templates = Jinja2Templates(directory=WEB / "templates")
    app.state.templates.env.globals["quality_min_sample"] = quality.MIN_SAMPLE
    errors.install(app)
    forms.install(app)
    app.include_router(health_api.router)
    app.include_router(accounts_api.router, prefix="/v1")
    app.include_router(assets_api.router, prefix="/v1")
    app.include_router(billing_api.router, prefix="/v1")
    app.include_router(catalog_api.router, prefix="/v1")
    app.include_router(credentials_api.router, prefix="/v1")
    app.include_router(engagements_api.router, prefix="/v1")
    app.include_router(gaps_api.router, prefix="/v1")
    app.include_router(golden_sets_api.router, prefix="/v1")
    app.include_router(profiles_api.router, prefix="/v1")
    app.include_router(notifications_api.router, prefix="/v1")
    app.include_router(openai_compat.router, prefix="/v1")
    app.include_router(review_api.router, prefix="/v1")
    app.include_router(stripe_api.router, prefix="/v1")
    app.include_router(pages.router)
    billing_pages.install(app)
    review_pages.install(app)
    notification_pages.install(app)
    catalog_pages.install(app)
    profile_web.install(app)
    engagement_pages.install(app)
    account_pages.install(app)
    docs_pages.install(app)
    quality_pages.install(app)
    gap_pages.install(app)
    # The MCP server (Streamable HTTP) and its OAuth protected-resource metadata (RFC 9728).
    # POST only: stateless, it opens no stream of its own, so GET is 405 as the transport allows.
    app.router.routes.append(Route(mcp_server.PATH, mcp.app, methods=["POST"]))

    @app.get(mcp_server.METADATA_PATH, include_in_schema=False)
    def mcp_metadata(request: Request) -> ProtectedResourceMetadata:
        return ProtectedResourceMetadata.model_validate(
            mcp_server.resource_metadata(str(request.base_url))
        )

    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    return app
