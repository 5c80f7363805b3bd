"""Privacy: no public route or page shows an expert's e-mail address, a path on this server, or
the private parts of a credential (e-mails matched, uploaded documents, licence numbers, the
admin's note and id). Every GET route of the app is walked, as a client and anonymously, so a
route added later is checked without being listed here."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from app.main import create_app
from app.runtime import Runtime
from tests.factories import PASSWORD, Actor, create_actor, create_test_asset, ingest_path
from tests.git_repos import Commit, git_server, lines, make_repo

EMAIL = "Ada.Private-Marker@secret-mail.example"
LICENCE_NUMBER = "LIC-MARKER-7731"
DOCUMENT_NAME = "marker-licence-scan.pdf"
ADMIN_NOTE = "Checked with the board, MARKER-ADMIN-NOTE"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
# Names of private fields of a credential (owner_view), and how pages label the first.
PRIVATE_NAMES = ("emails_matched", "emails matched", "e-mails matched", "verified_by")
# Routes whose path parameters have no row here get an id that names nothing; they are the
# owner's or an admin's (review items, verified answers, API keys, notifications) and refuse.
NOTHING = "nothing_here"


@dataclass
class Market:
    expert: Actor
    client: Actor
    admin: Actor
    slug: str
    params: dict[str, str]
    private: tuple[str, ...]  # strings no public response may contain (compared lower case)


@pytest.fixture
async def market(client: httpx.AsyncClient, runtime: Runtime, tmp_path: Path) -> Market:
    """An expert whose e-mail, repository path, document and licence number are markers: a
    published asset ingested from their git work tree, a verified commit authorship credential
    (its figures hold the e-mail matched and the path), and a licence an admin verified. A client
    asked the asset a question and commissioned the expert."""
    expert = create_actor(runtime, role="expert", email=EMAIL)
    shopper = create_actor(runtime, role="client", password=PASSWORD)
    admin = create_actor(runtime, role="admin")
    repo = tmp_path / "private-checkout" / "engine"
    make_repo(repo, [Commit(EMAIL, {"engine/store.py": lines(12, "# store")})])
    asset = create_test_asset(runtime, owner=expert.account, slug="engine")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=repo)
    assert job.status == "succeeded", job.error

    # The platform fetches the repository itself (a test server on 127.0.0.1, allowed here).
    runtime.settings.marketplace.allow_private_remotes = True
    with git_server(tmp_path / "served") as server:
        commits = await client.post(
            "/v1/credentials",
            json={
                "kind": "commit_authorship",
                "claim": "Wrote the engine",
                "domain": "engines",
                "evidence": {"remote": server.publish(repo, "engine")},
            },
            headers=expert.headers,
        )
    assert commits.status_code == 201, commits.text
    owned = commits.json()
    assert owned["status"] == "verified", owned["note"]
    assert owned["figures"]["emails_matched"] == [EMAIL.lower()]

    licence = await client.post(
        "/v1/credentials",
        json={
            "kind": "licence",
            "claim": "Licensed engineer",
            "evidence": {"issuer": "Engineering Board", "number": LICENCE_NUMBER},
        },
        headers=expert.headers,
    )
    assert licence.status_code == 201, licence.text
    licence_id = licence.json()["id"]
    uploaded = await client.post(
        f"/v1/credentials/{licence_id}/document",
        files={"file": (DOCUMENT_NAME, PDF)},
        headers=expert.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    decided = await client.post(
        f"/v1/admin/credentials/{licence_id}/verify",
        json={"note": ADMIN_NOTE},
        headers=admin.headers,
    )
    assert decided.json()["status"] == "verified", decided.text

    asked = await client.post(
        "/v1/assets/engine/ask", json={"question": "What does store do?"}, headers=shopper.headers
    )
    assert asked.status_code == 200, asked.text
    commissioned = await client.post(
        "/v1/engagements",
        json={
            "expert_id": expert.account.id,
            "title": "Engine review",
            "scope": "Review the engine's store.",
            "deliverable": "A report",
            "milestones": [{"title": "Review", "amount": 10_000}],
        },
        headers=shopper.headers,
    )
    assert commissioned.status_code == 201, commissioned.text
    engagement = commissioned.json()
    params = {
        "slug": "engine",
        "account_id": expert.account.id,
        "credential_id": owned["id"],
        "job_id": job.id,
        "consultation_id": asked.json()["consultation_id"],
        "engagement_id": engagement["id"],
        "milestone_id": engagement["milestones"][0]["id"],
        "item_id": NOTHING,
        "verified_id": NOTHING,
        "key_id": NOTHING,
        "notification_id": NOTHING,
    }
    private = (
        EMAIL,
        str(tmp_path),
        str(runtime.settings.data_dir),
        LICENCE_NUMBER,
        DOCUMENT_NAME,
        hashlib.sha256(PDF).hexdigest(),
        f"credentials/{licence_id}/",  # where the document is stored
        "MARKER-ADMIN-NOTE",
        admin.account.id,
        *PRIVATE_NAMES,
    )
    return Market(expert, shopper, admin, "engine", params, tuple(p.lower() for p in private))


def get_routes(app: FastAPI) -> list[str]:
    """Every GET path of the app with its parameters left in, API and pages alike, through
    the routers it includes. The mounts under /static (packaged files, no data) have no
    methods and are not walked."""
    return sorted(
        {
            r.path
            for r in iter_route_contexts(app.routes)
            if r.path is not None and "GET" in (r.methods or set())
        }
    )


def fill(path: str, params: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in params, f"{path}: give {{{name}}} a value in the market fixture"
        return params[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


# Query strings that make a route show data instead of an empty form.
QUERIES = {"/engagements/new": "?expert={account_id}&asset={slug}"}


async def _walk(
    http: httpx.AsyncClient, app: FastAPI, market: Market, headers: dict[str, str]
) -> dict[str, httpx.Response]:
    found: dict[str, httpx.Response] = {}
    for path in get_routes(app):
        url = fill(path, market.params) + fill(QUERIES.get(path, ""), market.params)
        found[path] = await http.get(url, headers=headers)
    return found


def _leaks(responses: dict[str, httpx.Response], private: tuple[str, ...]) -> list[str]:
    leaks = []
    # The API document describes the owner's and admins' views too, so it names their fields
    # (``verified_by``): names only, never a private value.
    names = {n.lower() for n in PRIVATE_NAMES}
    for path, response in responses.items():
        body = response.text.lower()
        headers = " ".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
        watched = [p for p in private if not (path == "/openapi.json" and p in names)]
        leaks += [f"{path} shows {p!r}" for p in watched if p in body or p in headers]
    return leaks


async def _sign_in(http: httpx.AsyncClient, actor: Actor) -> None:
    response = await http.post(
        "/login", data={"email": actor.account.email, "password": PASSWORD, "next": "/catalog"}
    )
    assert response.status_code == 303, response.text


async def test_client_sees_no_private_figures_on_any_route(
    client: httpx.AsyncClient, runtime: Runtime, market: Market
) -> None:
    await _sign_in(client, market.client)
    app = create_app(runtime.settings, runtime=runtime)  # the client's app has these routes
    responses = await _walk(client, app, market, market.client.headers)

    assert _leaks(responses, market.private) == []
    assert [p for p, r in responses.items() if r.status_code >= 500] == []
    # The walk saw the credentials where the public sees them.
    for path in (
        "/v1/experts/{account_id}",
        "/v1/catalog/experts",
        "/v1/catalog/assets/{slug}",
        "/experts/{account_id}",
        "/catalog",
        "/catalog/assets/{slug}",
    ):
        assert responses[path].status_code == 200, (path, responses[path].text)
        assert "Wrote the engine" in responses[path].text, path
    # The owner's and admins' routes refuse the client.
    for path in ("/v1/credentials/{credential_id}", "/v1/admin/credentials", "/admin/credentials"):
        assert responses[path].status_code in (403, 404), path


async def test_anonymous_visitor_sees_no_private_figures_on_any_route(
    runtime: Runtime, market: Market
) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as anonymous:
        responses = await _walk(anonymous, app, market, {})

    assert _leaks(responses, market.private) == []
    assert [p for p, r in responses.items() if r.status_code >= 500] == []
    for path in ("/v1/experts/{account_id}", "/experts/{account_id}"):
        assert responses[path].status_code == 200, path
        assert "Licensed engineer" in responses[path].text, path


async def test_public_credential_keeps_its_public_figures(
    client: httpx.AsyncClient, market: Market
) -> None:
    """What the public does see: the kind, claim, status, date and what the check measured."""
    expert = (await client.get(f"/v1/experts/{market.expert.account.id}")).json()
    commits, licence = expert["credentials"]
    assert (commits["kind"], commits["status"]) == ("commit_authorship", "verified")
    assert commits["verified_at"]
    assert (commits["figures"]["commits"], commits["figures"]["total_commits"]) == (1, 1)
    assert set(commits["figures"]) == {
        "commits",
        "total_commits",
        "commit_share",
        "lines",
        "total_lines",
        "line_share",
        "commit_checked",
        "threshold",
        "remote",  # the public URL the platform fetched
        "ref",
        "signed_commits",
        "predated_commits",
        "predated_lines",
    }
    assert commits["evidence"] == {"remote": commits["figures"]["remote"]}
    assert (licence["evidence"], licence["note"]) == ({"issuer": "Engineering Board"}, "")

    page = (
        await client.get(f"/v1/catalog/assets/{market.slug}", headers=market.client.headers)
    ).json()
    (shown, _) = page["expert"]["verified_credentials"]
    assert shown["figures"] == commits["figures"]


async def test_owner_and_admin_still_see_the_details(
    client: httpx.AsyncClient, market: Market
) -> None:
    mine = (await client.get("/v1/credentials", headers=market.expert.headers)).json()
    commits, licence = mine
    assert commits["figures"]["emails_matched"] == [EMAIL.lower()]
    assert commits["figures"]["remote"].startswith("http://127.0.0.1:")
    assert licence["evidence"]["number"] == LICENCE_NUMBER
    assert licence["evidence"]["document"]["name"] == DOCUMENT_NAME
    assert licence["note"] == ADMIN_NOTE
