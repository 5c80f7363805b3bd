"""The API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served from files
packaged with fastapi-offline so that they work with no network: nothing is fetched from a CDN
or a font service."""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png
FILES = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/static/openapi-ui"


def install(app: FastAPI) -> None:
    """Mount the packaged files and add /docs and /redoc; the app must be created with
    ``docs_url=None, redoc_url=None``, and this must run before the ``/static`` mount."""
    app.mount(PREFIX, StaticFiles(directory=FILES), name="openapi-ui")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=_openapi_url(request, app),
            title=f"{title} · API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=_openapi_url(request, app),
            title=f"{title} · API",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon.png",
            with_google_fonts=False,
        )


def _openapi_url(request: Request, app: FastAPI) -> str:
    # Behind a path prefix (root_path) the schema lives under it too.
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{root}{app.openapi_url}"
