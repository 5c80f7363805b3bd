"""Profiles and credentials over HTTP on both databases: commit authorship from a real git
repository each expert ingested, paper authorship from an ingested paper and through the
DOI and ORCID registries (a local server), admin review of uploaded documents, input errors,
and one expert's credentials out of another's reach. Then the pages, signed in for real."""

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from app import profiles
from app.models import Account
from app.runtime import Runtime
from assets.models import Asset
from core.clock import utcnow
from core.config import MarketplaceSettings, Settings
from core.db import session_scope
from marketplace.models import Credential
from tests.factories import PASSWORD, Actor, create_actor, create_test_asset, ingest_path, sign_in
from tests.git_repos import Commit, GitServer, git_server, lines, make_repo, ssh_key
from tests.registries import Registry, registry_server

PAPERS = Path(__file__).parents[1] / "data" / "papers"
OTHER = "someone@elsewhere.example"
ORCID = "0000-0002-1825-0097"  # the iD printed in tests/data/papers/engines.tex
DOI = "10.5555/vouch.2026.42"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The repositories are served from 127.0.0.1, which production refuses to fetch from.
    marketplace = settings.marketplace.model_copy(update={"allow_private_remotes": True})
    return settings.model_copy(update={"marketplace": marketplace})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "served") as served:
        yield served


def _prove_orcid(runtime: Runtime, actor: Actor, orcid: str) -> None:
    """What ORCID's sign-in stores on the account (a typed iD on the profile proves nothing)."""
    with session_scope(runtime.engine) as session:
        account = session.get(Account, actor.account.id)
        assert account is not None
        account.orcid = orcid
        session.add(account)


@pytest.fixture
def repo(tmp_path: Path, expert: Actor) -> Path:
    """A repository where the expert wrote 3 of 5 commits (under their e-mail in capitals)."""
    path = tmp_path / "engine"
    email = expert.account.email
    make_repo(
        path,
        [
            Commit(email.upper(), {"engine/store.py": "def store():\n    return 1000\n"}),
            Commit(OTHER, {"engine/mill.py": "def mill(a, b):\n    return a + b\n"}),
            Commit(email, {"engine/cards.py": lines(20, "# card")}),
            Commit(OTHER, {"README.md": "# Engine\n\nA difference engine.\n"}),
            Commit(email, {"engine/store.py": "def store():\n    return 2000\n"}),
        ],
    )
    return path


def _ingested_repo(runtime: Runtime, owner: Actor, repo: Path, slug: str) -> Asset:
    asset = create_test_asset(runtime, owner=owner.account, slug=slug)
    job = ingest_path(runtime, asset=asset, owner=owner.account, path=repo)
    assert job.status == "succeeded", job.error
    return asset


async def _add(client: httpx.AsyncClient, actor: Actor, **body: Any) -> httpx.Response:
    return await client.post("/v1/credentials", json=body, headers=actor.headers)


async def test_commit_authorship_verified_for_the_author_only(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    repo: Path,
    server: GitServer,
) -> None:
    """The Done-when bullet: the expert's claim on a public repository the platform fetched is
    verified with the figures shown; another expert's claim on the same repository is not."""
    _ingested_repo(runtime, expert, repo, "engine")
    url = server.publish(repo, "engine")

    mine = await _add(
        client,
        expert,
        kind="commit_authorship",
        claim="Wrote most of the engine",
        domain="engines",
        evidence={"remote": url},
    )
    assert mine.status_code == 201, mine.text
    body = mine.json()
    assert (body["status"], body["method"]) == ("verified", "git_history")
    figures = body["figures"]
    assert (figures["commits"], figures["total_commits"]) == (3, 5)
    assert figures["commit_share"] == 0.6
    assert (figures["lines"], figures["total_lines"]) == (23, 28)
    assert figures["emails_matched"] == [expert.account.email.lower()]
    assert len(figures["commit_checked"]) == 40
    assert "3 of 5 commits (60%)" in body["note"]

    theirs = await _add(
        client,
        expert_second,
        kind="commit_authorship",
        claim="Wrote the engine",
        evidence={"remote": url},
    )
    assert theirs.status_code == 201, theirs.text
    other = theirs.json()
    assert other["status"] == "rejected"
    assert (other["figures"]["commits"], other["figures"]["total_commits"]) == (0, 5)
    assert other["figures"]["lines"] == 0
    assert other["figures"]["emails_matched"] == []
    assert "at least 10% of the commits are needed" in other["note"]

    public = await client.get(f"/v1/experts/{expert.account.id}")  # no key: public
    assert public.status_code == 200, public.text
    (shown,) = public.json()["credentials"]
    assert shown["claim"] == "Wrote most of the engine"
    assert shown["figures"]["commits"] == 3
    assert "emails_matched" not in shown["figures"]
    assert "path" not in shown["figures"]
    assert shown["figures"]["remote"] == url
    assert [a["slug"] for a in public.json()["assets"]] == ["engine"]
    second = (await client.get(f"/v1/experts/{expert_second.account.id}")).json()
    assert second["credentials"] == []


async def test_commit_check_reruns_on_demand(
    client: httpx.AsyncClient, expert: Actor, repo: Path, server: GitServer
) -> None:
    url = server.publish(repo, "engine")
    added = await _add(
        client, expert, kind="commit_authorship", claim="c", evidence={"remote": url}
    )
    credential = added.json()["id"]
    # More of the expert's commits: read once they are pushed (published), not before.
    make_repo(repo, [Commit(expert.account.email, {f"f{i}.py": f"x = {i}\n"}) for i in range(3)])
    again = await client.post(f"/v1/credentials/{credential}/verify", headers=expert.headers)
    assert again.json()["figures"]["total_commits"] == 5
    server.publish(repo, "engine")
    again = await client.post(f"/v1/credentials/{credential}/verify", headers=expert.headers)
    assert again.status_code == 200, again.text
    assert (again.json()["figures"]["commits"], again.json()["figures"]["total_commits"]) == (6, 8)

    # The repository is gone from its host: the credential is left unverified, saying why.
    shutil.rmtree(server.root / "engine.git")
    gone = await client.post(f"/v1/credentials/{credential}/verify", headers=expert.headers)
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "unverified"
    assert "could not fetch it" in gone.json()["note"]


class TestCommitEvidence:
    async def test_another_experts_asset(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        expert_second: Actor,
        repo: Path,
    ) -> None:
        _ingested_repo(runtime, expert, repo, "engine")
        response = await _add(
            client, expert_second, kind="commit_authorship", claim="c", evidence={"asset": "engine"}
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "you have no asset 'engine'"

    async def test_upload_has_no_history(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        create_test_asset(runtime, owner=expert.account, slug="notes")
        upload = await client.post(
            "/v1/assets/notes/sources",
            files={"files": ("notes.md", b"# Notes\n\nSome text.\n")},
            headers=expert.headers,
        )
        assert upload.status_code == 202, upload.text
        source = await _add(
            client, expert, kind="commit_authorship", claim="c", evidence={"asset": "notes"}
        )
        assert source.status_code == 201, source.text
        assert source.json()["status"] == "rejected"
        assert "did not fetch this history itself" in source.json()["note"]

    async def test_unknown_source(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, repo: Path
    ) -> None:
        _ingested_repo(runtime, expert, repo, "engine")
        response = await _add(
            client,
            expert,
            kind="commit_authorship",
            claim="c",
            evidence={"asset": "engine", "source": "src_nope"},
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "asset 'engine' has no source 'src_nope'"


async def _set_profile(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    response = await client.put("/v1/experts/me/profile", json=fields, headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_paper_authorship_from_an_ingested_paper(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, expert_second: Actor
) -> None:
    await _set_profile(client, expert, name="A. Lovelace", orcid=ORCID)  # typed: no proof
    for actor, slug in ((expert, "papers"), (expert_second, "papers-too")):
        asset = create_test_asset(runtime, owner=actor.account, slug=slug)
        job = ingest_path(runtime, asset=asset, owner=actor.account, path=PAPERS / "engines.tex")
        assert job.status == "succeeded", job.error

    by_name = await _add(
        client,
        expert,
        kind="paper_authorship",
        claim="First author of Analytical Engines Revisited",
        evidence={"asset": "papers", "path": "engines.tex"},
    )
    assert by_name.status_code == 201, by_name.text
    body = by_name.json()
    assert (body["status"], body["method"]) == ("rejected", "paper_authors")
    assert "a name is not proof" in body["note"]
    assert body["figures"]["matched_author"] == "Ada Lovelace"
    assert body["figures"]["authors"] == ["Ada Lovelace", "Grace Hopper"]
    assert body["figures"]["doi"] == DOI
    assert body["evidence"]["document"].startswith("doc_")

    # The second expert is neither author by name, until ORCID's sign-in proves their iD.
    claim = await _add(
        client,
        expert_second,
        kind="paper_authorship",
        claim="Co-author",
        evidence={"asset": "papers-too", "path": "engines.tex"},
    )
    assert claim.json()["status"] == "rejected"
    assert "sign in with ORCID" in claim.json()["note"]
    await _set_profile(client, expert_second, orcid=f"https://orcid.org/{ORCID}")
    typed = await client.post(
        f"/v1/credentials/{claim.json()['id']}/verify", headers=expert_second.headers
    )
    assert typed.json()["status"] == "rejected"
    _prove_orcid(runtime, expert_second, ORCID)
    again = await client.post(
        f"/v1/credentials/{claim.json()['id']}/verify", headers=expert_second.headers
    )
    assert again.json()["status"] == "verified"
    assert again.json()["figures"]["orcid_matched"] is True

    missing = await _add(
        client,
        expert,
        kind="paper_authorship",
        claim="x",
        evidence={"asset": "papers", "path": "nope.pdf"},
    )
    assert missing.status_code == 404
    assert missing.json()["detail"] == "asset 'papers' has no document at 'nope.pdf'"


async def test_doi_claim_refused_while_lookups_are_off(
    client: httpx.AsyncClient, expert: Actor
) -> None:
    response = await _add(client, expert, kind="paper_authorship", claim="x", evidence={"doi": DOI})
    assert response.status_code == 409
    assert "looks no DOIs up" in response.json()["detail"]


class TestRegistries:
    """Papers that are not ingested, checked against a local DOI registry and ORCID."""

    @pytest.fixture
    def registry(self) -> Iterator[Registry]:
        with registry_server() as registry:
            yield registry

    @pytest.fixture
    def settings(self, settings: Settings, registry: Registry) -> Settings:
        lookups = MarketplaceSettings(orcid_api=registry.orcid_api, doi_api=registry.doi_api)
        return settings.model_copy(update={"marketplace": lookups})

    async def test_doi_authors(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, registry: Registry
    ) -> None:
        registry.add_work(DOI, "Analytical Engines Revisited", [("Grace", "Hopper", ORCID)])
        await _set_profile(client, expert, name="Grace Hopper")
        named = await _add(
            client, expert, kind="paper_authorship", claim="x", evidence={"doi": DOI}
        )
        assert named.json()["status"] == "rejected"  # the name alone
        _prove_orcid(runtime, expert, ORCID)
        response = await _add(
            client, expert, kind="paper_authorship", claim="x", evidence={"doi": DOI}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["method"]) == ("verified", "doi")
        assert body["figures"]["orcid_matched"] is True
        assert registry.requests == [f"/crossref/works/{DOI}"] * 2

    async def test_orcid_works_when_the_doi_lists_others(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, registry: Registry
    ) -> None:
        registry.add_work(DOI, "Analytical Engines Revisited", [("Grace", "Hopper", None)])
        registry.add_person(ORCID, "Ada", "Lovelace", [DOI])
        _prove_orcid(runtime, expert, ORCID)
        response = await _add(
            client, expert, kind="paper_authorship", claim="x", evidence={"doi": DOI}
        )
        body = response.json()
        assert (body["status"], body["method"]) == ("verified", "orcid")
        assert body["figures"]["doi_in_works"] is True

    async def test_unknown_doi_rejected(self, client: httpx.AsyncClient, expert: Actor) -> None:
        response = await _add(
            client, expert, kind="paper_authorship", claim="x", evidence={"doi": "10.1234/none"}
        )
        assert response.json()["status"] == "rejected"
        assert "no record of 10.1234/none" in response.json()["note"]

    async def test_registry_down_leaves_it_unverified(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, registry: Registry
    ) -> None:
        registry.failing = True
        response = await _add(
            client, expert, kind="paper_authorship", claim="x", evidence={"doi": DOI}
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "unverified"
        assert "HTTP 500" in response.json()["note"]
        registry.failing = False
        registry.add_work(DOI, "Analytical Engines Revisited", [("Expert", "Person", ORCID)])
        _prove_orcid(runtime, expert, ORCID)
        again = await client.post(
            f"/v1/credentials/{response.json()['id']}/verify", headers=expert.headers
        )
        assert again.json()["status"] == "verified"


@pytest.mark.both_databases
async def test_admin_review_of_a_licence(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    client_user: Actor,
    admin: Actor,
) -> None:
    added = await _add(
        client,
        expert,
        kind="licence",
        claim="Licensed patent attorney",
        domain="patents",
        evidence={"issuer": "Patent Office", "number": "PA-1234"},
        expires_at=(utcnow() + timedelta(days=365)).isoformat(),
    )
    assert added.status_code == 201, added.text
    credential = added.json()
    assert (credential["status"], credential["method"]) == ("unverified", "admin_review")
    assert "upload it" in credential["note"]
    cid = credential["id"]
    url = f"/v1/credentials/{cid}/document"

    nothing = await client.get("/v1/admin/credentials", headers=admin.headers)
    assert nothing.json() == []  # no document yet
    wrong = await client.post(url, files={"file": ("x.pdf", b"<html>")}, headers=expert.headers)
    assert wrong.status_code == 422
    assert "not a PDF, PNG, JPEG or WebP" in wrong.json()["detail"]
    runtime.settings.marketplace.max_evidence_bytes = 64
    big = await client.post(url, files={"file": ("x.pdf", PDF * 3)}, headers=expert.headers)
    assert big.status_code == 413
    runtime.settings.marketplace.max_evidence_bytes = 10_000
    upload = await client.post(
        url, files={"file": ("../licence.pdf", PDF, "text/html")}, headers=expert.headers
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["evidence"]["document"]["name"] == "licence.pdf"
    assert upload.json()["evidence"]["document"]["media_type"] == "application/pdf"
    assert "stored" not in upload.json()["evidence"]["document"]

    # Only admins review; only the owner and admins see the document.
    for actor in (expert, client_user):
        refused = await client.get("/v1/admin/credentials", headers=actor.headers)
        assert refused.status_code == 403
        decided = await client.post(
            f"/v1/admin/credentials/{cid}/verify", json={}, headers=actor.headers
        )
        assert decided.status_code == 403
    (waiting,) = (await client.get("/v1/admin/credentials", headers=admin.headers)).json()
    assert waiting["id"] == cid
    assert waiting["expert"]["email"] == expert.account.email
    for actor in (expert, admin):
        document = await client.get(url, headers=actor.headers)
        assert document.status_code == 200
        assert document.content == PDF
        assert document.headers["content-type"] == "application/pdf"
        assert document.headers["content-disposition"].startswith("attachment")
    assert (await client.get(url, headers=expert_second.headers)).status_code == 404
    # A replica on another machine, without the file on its disk, serves it from the database.
    shutil.rmtree(runtime.settings.uploads_path)
    elsewhere = await client.get(url, headers=admin.headers)
    assert (elsewhere.status_code, elsewhere.content) == (200, PDF)
    machine = await client.post(f"/v1/credentials/{cid}/verify", headers=expert.headers)
    assert machine.status_code == 409

    no_note = await client.post(
        f"/v1/admin/credentials/{cid}/reject", json={"note": " "}, headers=admin.headers
    )
    assert no_note.status_code == 422
    assert "say why" in no_note.json()["detail"]
    rejected = await client.post(
        f"/v1/admin/credentials/{cid}/reject",
        json={"note": "The scan is unreadable; upload a sharper one."},
        headers=admin.headers,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    told = (await client.get("/v1/notifications", headers=expert.headers)).json()
    assert any("unreadable" in n["message"] for n in told)

    await client.post(url, files={"file": ("licence.pdf", PDF)}, headers=expert.headers)
    assert [
        c["id"] for c in (await client.get("/v1/admin/credentials", headers=admin.headers)).json()
    ] == [cid]
    verified = await client.post(
        f"/v1/admin/credentials/{cid}/verify", json={"note": "Checked"}, headers=admin.headers
    )
    assert verified.json()["status"] == "verified"
    assert verified.json()["verified_by"] == admin.account.id
    public = (await client.get(f"/v1/experts/{expert.account.id}")).json()
    assert [c["id"] for c in public["credentials"]] == [cid]
    assert public["credentials"][0]["evidence"] == {"issuer": "Patent Office"}

    # Lapsed: expired on read, and gone from the public page.
    with Session(runtime.engine) as session:
        row = session.get(Credential, cid)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    mine = await client.get(f"/v1/credentials/{cid}", headers=expert.headers)
    assert mine.json()["status"] == "expired"
    assert (await client.get(f"/v1/experts/{expert.account.id}")).json()["credentials"] == []


async def test_admin_decides_only_documents(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, admin: Actor, repo: Path
) -> None:
    _ingested_repo(runtime, expert, repo, "engine")
    commits = await _add(
        client, expert, kind="commit_authorship", claim="c", evidence={"asset": "engine"}
    )
    response = await client.post(
        f"/v1/admin/credentials/{commits.json()['id']}/verify", json={}, headers=admin.headers
    )
    assert response.status_code == 409
    assert "git_history check" in response.json()["detail"]
    licence = await _add(client, expert, kind="certification", claim="c")
    early = await client.post(
        f"/v1/admin/credentials/{licence.json()['id']}/verify", json={}, headers=admin.headers
    )
    assert early.status_code == 409
    assert "no document" in early.json()["detail"]
    missing = await client.post(
        "/v1/admin/credentials/crd_nope/verify", json={}, headers=admin.headers
    )
    assert missing.status_code == 404
    upload = await client.post(
        f"/v1/credentials/{commits.json()['id']}/document",
        files={"file": ("x.pdf", PDF)},
        headers=expert.headers,
    )
    assert upload.status_code == 422


async def test_one_expert_cannot_reach_anothers_credentials(
    client: httpx.AsyncClient, expert: Actor, expert_second: Actor
) -> None:
    mine = (await _add(client, expert, kind="certification", claim="Certified")).json()
    theirs = (await _add(client, expert_second, kind="licence", claim="Licensed")).json()
    cid = mine["id"]
    for method, path in (
        ("GET", f"/v1/credentials/{cid}"),
        ("POST", f"/v1/credentials/{cid}/verify"),
        ("DELETE", f"/v1/credentials/{cid}"),
        ("GET", f"/v1/credentials/{cid}/document"),
    ):
        response = await client.request(method, path, headers=expert_second.headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == f"you have no credential {cid}"
    upload = await client.post(
        f"/v1/credentials/{cid}/document",
        files={"file": ("x.pdf", PDF)},
        headers=expert_second.headers,
    )
    assert upload.status_code == 404
    listed = (await client.get("/v1/credentials", headers=expert_second.headers)).json()
    assert [c["id"] for c in listed] == [theirs["id"]]
    gone = await client.delete(f"/v1/credentials/{cid}", headers=expert.headers)
    assert gone.status_code == 204
    assert (await client.get("/v1/credentials", headers=expert.headers)).json() == []


class TestProfile:
    async def test_edit_and_public_view(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        blank = await client.get("/v1/experts/me/profile", headers=expert.headers)
        assert blank.status_code == 200
        assert (blank.json()["headline"], blank.json()["domains"]) == ("", [])
        saved = await _set_profile(
            client,
            expert,
            name="Ada Lovelace",
            headline="Analytical engines",
            bio="Notes on the engine.",
            domains=["Engines", "maths"],
            links=["https://ada.example/"],
            price_from=50_000,
            price_to=200_000,
            currency="GBP",
            response_hours=24,
            orcid=ORCID,
        )
        assert saved["domains"] == ["engines", "maths"]
        assert (saved["currency"], saved["name"]) == ("gbp", "Ada Lovelace")
        create_test_asset(runtime, owner=expert.account, slug="shown")
        create_test_asset(runtime, owner=expert.account, slug="hidden", published=False)
        public = await client.get(f"/v1/experts/{expert.account.id}")
        assert public.json()["profile"]["headline"] == "Analytical engines"
        assert public.json()["profile"]["name"] == "Ada Lovelace"
        assert [a["slug"] for a in public.json()["assets"]] == ["shown"]
        # PUT replaces: a field left out goes back to its default; the name stays.
        again = await _set_profile(client, expert, headline="Engines")
        assert (again["bio"], again["name"], again["price_from"]) == ("", "Ada Lovelace", None)
        # A range written backwards is the same range.
        backwards = await _set_profile(client, expert, price_from=500, price_to=100)
        assert (backwards["price_from"], backwards["price_to"]) == (100, 500)

    async def test_only_experts(
        self, client: httpx.AsyncClient, client_user: Actor, admin: Actor
    ) -> None:
        for actor in (client_user, admin):
            response = await client.get("/v1/experts/me/profile", headers=actor.headers)
            assert response.status_code == 403
            assert "belong to expert accounts" in response.json()["detail"]
        added = await _add(client, client_user, kind="licence", claim="x")
        assert added.status_code == 403
        for unknown in (client_user.account.id, "acc_nope"):
            response = await client.get(f"/v1/experts/{unknown}")
            assert response.status_code == 404
            assert response.json()["error"] == "ExpertNotFound"
        anonymous = await client.get("/v1/experts/me/profile")
        assert anonymous.status_code == 401

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"links": ["javascript:alert(1)"]}, "http"),
            ({"currency": "dollars"}, "three-letter"),
            ({"orcid": "0000-0002-1825-0098"}, "check digit"),
            ({"domains": ["two words"]}, "domain"),
            ({"response_hours": "soon"}, "response_hours"),
        ],
    )
    async def test_invalid(
        self, client: httpx.AsyncClient, expert: Actor, body: dict[str, Any], message: str
    ) -> None:
        response = await client.put("/v1/experts/me/profile", json=body, headers=expert.headers)
        assert response.status_code == 422
        assert message in response.json()["detail"]


async def test_a_lapsed_licence_is_kept_and_shown_expired(
    client: httpx.AsyncClient, expert: Actor
) -> None:
    body = {"kind": "licence", "claim": "Bar admission", "expires_at": "2001-01-01"}
    added = await client.post("/v1/credentials", json=body, headers=expert.headers)
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "expired"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "fame", "claim": "x"}, "kind"),
        ({"kind": "licence", "claim": ""}, "claim"),
        ({"kind": "licence", "claim": "x", "evidence": {"colour": "red"}}, "colour"),
        ({"kind": "commit_authorship", "claim": "x"}, "public URL"),
        ({"kind": "licence", "claim": "x", "expires_at": "someday"}, "expires_at"),
    ],
)
async def test_invalid_credentials(
    client: httpx.AsyncClient, expert: Actor, body: dict[str, Any], message: str
) -> None:
    response = await client.post("/v1/credentials", json=body, headers=expert.headers)
    assert response.status_code == 422
    assert message in response.json()["detail"]


# Pages


@pytest.fixture
def expert_web(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="expert", password=PASSWORD)


@pytest.fixture
def admin_web(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="admin", password=PASSWORD)


HTML = {"Accept": "text/html"}


async def test_pages(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert_web: Actor,
    admin_web: Actor,
    tmp_path: Path,
) -> None:
    repo = tmp_path / "tool"
    make_repo(repo, [Commit(expert_web.account.email, {"tool.py": lines(5)})])
    _ingested_repo(runtime, expert_web, repo, "tool")
    await sign_in(client, expert_web, "/")
    with git_server(tmp_path / "served") as server:
        url = server.publish(repo, "tool")
        added = await client.post(
            "/credentials",
            data={"kind": "commit_authorship", "claim": "Wrote the tool", "remote": url},
        )
    assert added.status_code == 303, added.text

    form = (await client.get("/profile")).text
    assert 'name="headline"' in form
    bad = await client.post("/profile", data={"name": "Ada", "links": "ftp://x", "currency": "usd"})
    assert bad.status_code == 422
    assert "use a full http:// or https:// address" in bad.text
    saved = await client.post(
        "/profile",
        data={
            "name": "Ada Lovelace",
            "headline": "Engines & <b>maths</b>",
            "domains": "engines, maths",
            "links": "https://ada.example/",
            "price_from": "250",
            "price_to": "999.50",
            "currency": "usd",
            "response_hours": "48",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/experts/{expert_web.account.id}?saved=1"
    with session_scope(runtime.engine) as session:
        profile = profiles.my_profile(session, account=expert_web.account)
    assert (profile["price_from"], profile["price_to"]) == (25_000, 99_950)

    page = (await client.get("/credentials")).text
    assert 'data-status="verified"' in page
    assert "1 of 1 (100%)" in page
    refused = await client.post(
        "/credentials",
        data={"kind": "paper_authorship", "claim": "x", "asset": "nope", "path": "p"},
    )
    assert refused.status_code == 404
    assert "you have no asset &#39;nope&#39;" in refused.text
    bad_key = await client.post("/signing-keys", data={"public_key": "nope"})
    assert bad_key.status_code == 422
    assert "not an SSH public key" in bad_key.text
    _, public_key = ssh_key(tmp_path / "keys")
    key = await client.post("/signing-keys", data={"public_key": public_key, "label": "laptop"})
    assert key.status_code == 303, key.text
    keys = (await client.get("/credentials")).text
    assert "laptop" in keys
    assert "SHA256:" in keys
    licence = await client.post("/credentials", data={"kind": "licence", "claim": "Licensed"})
    assert licence.status_code == 303
    cid = licence.headers["location"].split("#")[1]
    uploaded = await client.post(
        f"/credentials/{cid}/document", files={"file": ("licence.png", b"\x89PNG\r\n\x1a\n..")}
    )
    assert uploaded.status_code == 303, uploaded.text
    assert (await client.get("/admin/credentials", headers=HTML)).status_code == 403

    # Anyone sees the public page, escaped.
    client.cookies.clear()
    public = await client.get(f"/experts/{expert_web.account.id}")
    assert public.status_code == 200
    assert "Engines &amp; &lt;b&gt;maths&lt;/b&gt;" in public.text
    assert "250.00 USD \u2013 999.50 USD" in public.text
    assert "Wrote the tool" in public.text
    assert "Licensed" not in public.text  # not verified yet
    assert expert_web.account.email not in public.text

    await sign_in(client, admin_web, "/")
    queue = (await client.get("/admin/credentials")).text
    assert f'id="{cid}"' in queue
    assert "licence.png" in queue
    empty_note = await client.post(f"/admin/credentials/{cid}/reject", data={"note": ""})
    assert empty_note.status_code == 422
    assert "say why" in empty_note.text
    done = await client.post(f"/admin/credentials/{cid}/verify", data={"note": "ok"})
    assert done.status_code == 303
    assert re.search(r"Nothing waits for review", (await client.get(done.headers["location"])).text)
    assert "Licensed" in (await client.get(f"/experts/{expert_web.account.id}")).text
