"""The pages: sign in, assets, ask with citations, upload with progress, API keys."""

import re

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path

# SQLite only: page rendering and sign-in redirects; the writes behind the pages are tested on both
# by their API tests.

PASSWORD = "correct-horse"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def garden(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    return asset.slug


async def _sign_in(client: httpx.AsyncClient, actor: Actor, next_page: str = "/assets") -> None:
    response = await client.post(
        "/login",
        data={"email": actor.account.email, "password": PASSWORD, "next": next_page},
    )
    assert response.status_code == 303
    assert response.headers["location"] == next_page
    assert "vouch_session" in client.cookies


async def test_pages_need_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/assets", "/assets/garden", "/keys"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    assert "<form" in (await client.get("/login")).text


@pytest.mark.parametrize(
    ("method", "path", "back"),
    [
        # A page comes back to itself, query and all.
        ("GET", "/statement?month=2026-01", "/statement%3Fmonth%3D2026-01"),
        ("GET", "/review/rev_x", "/review/rev_x"),
        # A form comes back to the page that holds it.
        ("POST", "/assets/garden/verified/vrf_x/retire", "/assets/garden/verified"),
        ("POST", "/account/email", "/account"),
        ("POST", "/admin/golden-sets/gld_x/approve", "/admin/golden-sets"),
        ("POST", "/signing-keys/key_x/remove", "/credentials"),
    ],
)
async def test_signed_out_visitors_sign_in_and_come_back(
    client: httpx.AsyncClient, method: str, path: str, back: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={back}"


async def test_signed_out_fragments_ask_to_sign_in_again(client: httpx.AsyncClient) -> None:
    """Parts of a page (htmx) cannot redirect the page: they say why, as a 401."""
    asked = await client.post("/assets/garden/ask", data={"question": "?"}, headers=HTMX)
    assert asked.status_code == 401
    assert "Your session ended; sign in again." in asked.text
    job = await client.get("/jobs/job_x")
    assert job.status_code == 401
    assert "Sign in again." in job.text


async def test_wrong_password_is_refused_on_the_page(
    client: httpx.AsyncClient, client_user: Actor
) -> None:
    response = await client.post(
        "/login", data={"email": client_user.account.email, "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert "wrong e-mail or password" in response.text
    assert "vouch_session" not in client.cookies


async def test_sign_in_never_redirects_off_site(
    client: httpx.AsyncClient, client_user: Actor
) -> None:
    response = await client.post(
        "/login",
        data={
            "email": client_user.account.email,
            "password": PASSWORD,
            "next": "//evil.example/",
        },
    )
    assert response.headers["location"] == "/assets"


async def test_client_asks_on_the_asset_page_and_sees_citations(
    client: httpx.AsyncClient, client_user: Actor, garden: str
) -> None:
    await _sign_in(client, client_user, f"/assets/{garden}")
    page = await client.get(f"/assets/{garden}")
    assert page.status_code == 200
    assert 'hx-post="/assets/garden/ask"' in page.text
    assert "Add sources" not in page.text  # the corpus is the expert's, not the client's
    answer = await client.post(f"/assets/{garden}/ask", data={"question": "When is it closed?"})
    assert answer.status_code == 200
    assert "Sundays" in answer.text
    assert "policies.md:" in answer.text
    assert "Store policies &gt; Opening hours" in answer.text

    empty = await client.post(f"/assets/{garden}/ask", data={"question": "  "})
    assert empty.status_code == 422
    assert "the question is empty" in empty.text


async def test_expert_creates_asset_uploads_and_follows_progress(
    client: httpx.AsyncClient, expert: Actor
) -> None:
    await _sign_in(client, expert)
    bad = await client.post("/assets", data={"slug": "No Good", "title": "Shop"})
    assert bad.status_code == 422
    assert "slug: use 3-64 lowercase" in bad.text
    assert 'value="No Good"' in bad.text  # what was typed is kept

    made = await client.post(
        "/assets", data={"slug": "shop", "title": "Shop", "tags": "retail, plants"}
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/assets/shop"
    page = await client.get("/assets/shop")
    assert "Add sources" in page.text

    uploaded = await client.post(
        "/assets/shop/sources",
        files=[
            ("files", ("policies.md", (HANDBOOK / "policies.md").read_bytes())),
            ("files", ("photo.png", b"\x89PNG")),
        ],
        data={"kind": "auto"},
    )
    assert uploaded.status_code == 202
    job_id = re.search(r'id="(job_[a-z0-9]+)"', uploaded.text)
    assert job_id is not None
    progress = await client.get(f"/jobs/{job_id.group(1)}")
    assert 'data-status="succeeded"' in progress.text
    assert "100%" in progress.text
    assert "photo.png" in progress.text
    assert "binary file type (.png)" in progress.text
    assert "hx-trigger" not in progress.text  # a finished job stops polling

    refused = await client.post(
        "/assets/shop/sources", files=[("files", ("evil.md", b"x"))], data={"kind": "poetry"}
    )
    assert refused.status_code == 422
    assert "unknown kind" in refused.text


async def test_client_cannot_upload_from_pages(
    client: httpx.AsyncClient, client_user: Actor, garden: str
) -> None:
    await _sign_in(client, client_user)
    upload = await client.post(
        f"/assets/{garden}/sources", files=[("files", ("x.md", b"# x\n\ny"))]
    )
    assert upload.status_code == 403
    assert "only the owner" in upload.text


async def test_session_cookie_is_not_an_api_credential(
    client: httpx.AsyncClient, client_user: Actor
) -> None:
    await _sign_in(client, client_user)
    response = await client.get("/v1/me")
    assert response.status_code == 401


async def test_keys_page_shows_a_new_key_once_and_revokes(
    client: httpx.AsyncClient, client_user: Actor
) -> None:
    await _sign_in(client, client_user)
    created = await client.post("/keys", data={"label": "laptop"})
    key = re.search(r'id="new-key">(vch_[a-z0-9_]+)<', created.text)
    assert key is not None
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert me.status_code == 200
    listing = await client.get("/keys")
    assert key.group(1) not in listing.text
    key_id = re.findall(r'action="/keys/(key_[a-z0-9]+)/revoke"', listing.text)
    for ref in key_id:
        await client.post(f"/keys/{ref}/revoke")
    after = await client.get("/v1/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert after.status_code == 401


async def test_cross_site_post_is_refused(client: httpx.AsyncClient, client_user: Actor) -> None:
    await _sign_in(client, client_user)
    response = await client.post(
        "/keys", data={"label": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


async def test_sign_out_ends_the_session(client: httpx.AsyncClient, client_user: Actor) -> None:
    await _sign_in(client, client_user)
    token = client.cookies["vouch_session"]
    await client.post("/logout")
    client.cookies.set("vouch_session", token)  # a copied cookie is dead too
    assert (await client.get("/assets")).status_code == 303


async def test_unknown_page_is_an_html_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "<h1>404" in response.text
