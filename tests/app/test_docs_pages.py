"""The API documentation pages work with no network: /docs and /redoc load only files this
server serves, and a browser that may reach nothing else still renders the operations."""

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Route, expect, sync_playwright

from app.runtime import Runtime
from tests.app.test_browser import CHROMIUM, FLAGS

# ReDoc's bundle shows the Redocly logo in its footer from this address; offline the image
# fails and hides itself. Nothing else may be fetched from another host.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


def _references(html: str) -> list[str]:
    """Every URL the page loads: src, href, spec-url and the schema url given to Swagger UI."""
    found = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)
    return found + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize(
    ("path", "files"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_pages_load_only_local_files(
    client: httpx.AsyncClient, path: str, files: set[str]
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert not re.search(r"https?://", page.text), "the page points at another host"
    refs = _references(page.text)
    assert "/openapi.json" in refs
    assert {r.rsplit("/", 1)[-1] for r in refs if r.startswith("/static/")} == files
    for ref in refs:
        served = await client.get(ref)
        assert served.status_code == 200, ref
        suffix = "." + ref.rsplit(".", 1)[-1]
        if suffix in CONTENT_TYPES:
            assert served.headers["content-type"].startswith(CONTENT_TYPES[suffix]), ref
            assert len(served.content) > 1000 or suffix == ".png", ref


async def test_docs_are_not_in_the_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/docs" not in schema["paths"]
    assert "/redoc" not in schema["paths"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "operation"),
    [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id] h2")],
)
def test_docs_render_in_a_browser_with_no_network(
    live_server: tuple[str, Runtime], path: str, operation: str
) -> None:
    base, _ = live_server
    local = urlsplit(base).netloc
    blocked: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.route("**/*", only_local)
        page.goto(f"{base}{path}")
        if path == "/docs":
            expect(page.locator(operation, has_text="/v1/assets/{slug}/ask").first).to_be_visible(
                timeout=60_000
            )
        else:
            expect(page.get_by_text("/v1/assets/{slug}/ask").first).to_be_attached(timeout=60_000)
            expect(page.locator(operation).first).to_be_visible()
        browser.close()
    assert set(blocked) <= {REDOC_LOGO}, blocked
