"""Commit authorship that cannot be faked, on both databases: the platform fetches a public
repository itself (served here over git's dumb HTTP protocol), counts only commits under the
expert's verified e-mail or signed with a key registered to the account, and not content
another author added first. The forgery of issue 15 is replayed as the attack it was."""

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from app import accounts
from app.models import Account
from app.runtime import Runtime
from core.clock import utcnow
from core.config import Settings
from core.db import session_scope
from tests.factories import Actor, create_test_asset, ingest_path
from tests.git_repos import (
    Commit,
    Gate,
    GitServer,
    GpgKey,
    git,
    git_server,
    gpg_key,
    lines,
    make_repo,
    ssh_key,
)

ADA = "ada@example.org"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "served") as served:
        yield served


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The test server is on 127.0.0.1, which production refuses to fetch from.
    marketplace = settings.marketplace.model_copy(update={"allow_private_remotes": True})
    return settings.model_copy(update={"marketplace": marketplace})


@pytest.fixture
def ada_repo(tmp_path: Path) -> Path:
    """Another author's library: four commits by Ada."""
    path = tmp_path / "library"
    make_repo(
        path,
        [
            Commit(ADA, {"lib/core.py": lines(40, "# core")}, name="Ada"),
            Commit(ADA, {"lib/util.py": lines(25, "# util")}, name="Ada"),
            Commit(ADA, {"README.md": "# Library\n\nBy Ada.\n"}, name="Ada"),
            Commit(ADA, {"lib/core.py": lines(45, "# core")}, name="Ada"),
        ],
    )
    return path


def _copy_tree(source: Path, target: Path) -> Path:
    """The files of ``source`` without its history, as the forger copied them."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".git"))
    return target


async def _claim(client: httpx.AsyncClient, actor: Actor, **evidence: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/credentials",
        json={"kind": "commit_authorship", "claim": "Maintainer", "evidence": evidence},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _public_credentials(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/experts/{actor.account.id}")
    assert response.status_code == 200, response.text
    shown: list[dict[str, Any]] = response.json()["credentials"]
    return shown


class TestForgery:
    async def test_a_copied_tree_ingested_locally_is_rejected(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        ada_repo: Path,
        tmp_path: Path,
    ) -> None:
        """git init on another author's files, one commit under the expert's own e-mail,
        ingested from this machine: the platform did not fetch that history, so no claim."""
        copy = _copy_tree(ada_repo, tmp_path / "copy")
        files = {str(p.relative_to(copy)): p.read_text() for p in copy.rglob("*") if p.is_file()}
        shutil.rmtree(copy)
        make_repo(copy, [Commit(expert.account.email, files)])
        asset = create_test_asset(runtime, owner=expert.account, slug="library")
        job = ingest_path(runtime, asset=asset, owner=expert.account, path=copy)
        assert job.status == "succeeded", job.error

        body = await _claim(client, expert, asset="library")
        assert body["status"] == "rejected"
        assert "did not fetch this history itself" in body["note"]
        assert "public URL" in body["note"]
        assert await _public_credentials(client, expert) == []

    async def test_the_copy_merged_into_the_original_is_predated(
        self,
        client: httpx.AsyncClient,
        expert: Actor,
        ada_repo: Path,
        server: GitServer,
        tmp_path: Path,
    ) -> None:
        """The copy pushed into the original's history as later work by the expert (an
        unrelated history merged in, then an empty commit on top): nothing of it counts."""
        copy = _copy_tree(ada_repo, tmp_path / "copy")
        files = {str(p.relative_to(copy)): p.read_text() for p in copy.rglob("*") if p.is_file()}
        shutil.rmtree(copy)
        make_repo(copy, [Commit(expert.account.email, files)])
        git(ada_repo, "fetch", "-q", str(copy), "main:copied")
        git(
            ada_repo,
            "merge",
            "-q",
            "--allow-unrelated-histories",
            "-s",
            "ours",
            "-m",
            "merge",
            "copied",
            email=expert.account.email,
        )
        make_repo(ada_repo, [Commit(expert.account.email, {})])  # an empty commit
        url = server.publish(ada_repo, "library")

        body = await _claim(client, expert, remote=url)
        assert body["status"] == "rejected", body["note"]
        figures = body["figures"]
        assert (figures["commits"], figures["total_commits"]) == (0, 6)
        assert figures["predated_commits"] == 2
        assert figures["lines"] == 0
        assert "add only content another author had already added" in body["note"]
        assert await _public_credentials(client, expert) == []


async def test_a_fetched_repository_with_the_verified_email_is_verified(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    expert_second: Actor,
    server: GitServer,
    tmp_path: Path,
) -> None:
    repo = tmp_path / "engine"
    email = expert.account.email
    head = make_repo(
        repo,
        [
            Commit(email.upper(), {"engine/store.py": "def store():\n    return 1000\n"}),
            Commit(ADA, {"engine/mill.py": "def mill(a, b):\n    return a + b\n"}),
            Commit(email, {"engine/cards.py": lines(20, "# card")}),
            Commit(ADA, {"README.md": "# Engine\n"}),
        ],
    )
    url = server.publish(repo, "engine")
    create_test_asset(runtime, owner=expert.account, slug="hidden", published=False)

    body = await _claim(client, expert, remote=url, asset=None)
    assert (body["status"], body["method"]) == ("verified", "git_history"), body["note"]
    figures = body["figures"]
    assert (figures["commits"], figures["total_commits"]) == (2, 4)
    assert (figures["lines"], figures["total_lines"]) == (22, 25)
    assert (figures["remote"], figures["commit_checked"]) == (url, head)
    assert f"of {url}" in body["note"]

    (shown,) = await _public_credentials(client, expert)
    assert shown["evidence"] == {"remote": url}
    assert shown["figures"]["remote"] == url
    assert "emails_matched" not in shown["figures"]

    # The same public repository claimed by someone else: none of it is theirs.
    theirs = await _claim(client, expert_second, remote=url, ref="main")
    assert theirs["status"] == "rejected"
    assert theirs["figures"]["commits"] == 0
    assert theirs["figures"]["ref"] == "main"

    # A newer push is read at the next check: the mirror is fetched again.
    make_repo(repo, [Commit(ADA, {f"more{i}.py": f"x = {i}\n"}) for i in range(20)])
    server.publish(repo, "engine")
    again = await client.post(f"/v1/credentials/{body['id']}/verify", headers=expert.headers)
    assert again.json()["figures"]["total_commits"] == 24
    assert again.json()["status"] == "rejected"


async def test_an_unverified_email_does_not_count(
    client: httpx.AsyncClient, runtime: Runtime, server: GitServer, tmp_path: Path
) -> None:
    with session_scope(runtime.engine) as session:
        account = accounts.create_account(
            session, email="new@example.com", name="New Expert", role="expert", verified=False
        )
        _, key = accounts.create_api_key(session, account=account, label="test")
    unverified = Actor(account=account, key=key)
    repo = tmp_path / "mine"
    make_repo(repo, [Commit("new@example.com", {"a.py": lines(10)})])
    url = server.publish(repo, "mine")

    body = await _claim(client, unverified, remote=url)
    assert body["status"] == "unverified"
    assert "verify your e-mail first" in body["note"]
    assert body["figures"]["commits"] == 0  # not counted while the address is not proved
    assert await _public_credentials(client, unverified) == []


async def test_commits_signed_with_a_registered_key_count(
    client: httpx.AsyncClient, expert: Actor, server: GitServer, tmp_path: Path
) -> None:
    mine, public = ssh_key(tmp_path / "keys", "mine")
    stranger, _ = ssh_key(tmp_path / "keys", "stranger")
    repo = tmp_path / "signed"
    make_repo(
        repo,
        [
            Commit(ADA, {"a.py": lines(10, "# a")}),
            # Under an address that is not the account's, signed with the expert's key.
            Commit("laptop@home.example", {"b.py": lines(10, "# b")}, signing_key=mine),
            Commit("laptop@home.example", {"c.py": lines(10, "# c")}, signing_key=mine),
            # Signed, but by a key nobody registered: not the expert's.
            Commit("laptop@home.example", {"d.py": lines(10, "# d")}, signing_key=stranger),
        ],
    )
    url = server.publish(repo, "signed")

    before = await _claim(client, expert, remote=url)
    assert before["status"] == "rejected"
    assert before["figures"]["commits"] == 0

    added = await client.post(
        "/v1/signing-keys",
        json={"public_key": public, "label": "laptop"},
        headers=expert.headers,
    )
    assert added.status_code == 201, added.text
    assert added.json()["fingerprint"].startswith("SHA256:")
    after = await client.post(f"/v1/credentials/{before['id']}/verify", headers=expert.headers)
    body = after.json()
    assert body["status"] == "verified", body["note"]
    assert (body["figures"]["commits"], body["figures"]["total_commits"]) == (2, 4)
    assert body["figures"]["signed_commits"] == 2
    assert "2 of them by signature" in body["note"]

    # Removed: its signatures no longer count.
    key_id = added.json()["id"]
    assert (
        await client.delete(f"/v1/signing-keys/{key_id}", headers=expert.headers)
    ).status_code == 204
    again = await client.post(f"/v1/credentials/{before['id']}/verify", headers=expert.headers)
    assert again.json()["status"] == "rejected"


@pytest.fixture
def openpgp(tmp_path: Path) -> Iterator[GpgKey]:
    with gpg_key(tmp_path / "gnupg") as key:
        yield key


async def test_commits_signed_with_a_registered_openpgp_key_count(
    client: httpx.AsyncClient, expert: Actor, openpgp: GpgKey, server: GitServer, tmp_path: Path
) -> None:
    with gpg_key(tmp_path / "stranger-gnupg", "Stranger <s@example.org>") as stranger:
        repo = tmp_path / "pgp"
        make_repo(
            repo,
            [
                Commit(ADA, {"a.py": lines(10, "# a")}),
                Commit("laptop@home.example", {"b.py": lines(10, "# b")}, signing_key=openpgp),
                Commit("laptop@home.example", {"c.py": lines(10, "# c")}, signing_key=openpgp),
                # Signed with an OpenPGP key nobody registered: not the expert's.
                Commit("laptop@home.example", {"d.py": lines(10, "# d")}, signing_key=stranger),
            ],
        )
    url = server.publish(repo, "pgp")

    before = await _claim(client, expert, remote=url)
    assert before["status"] == "rejected"
    assert (before["figures"]["commits"], before["figures"]["signed_commits"]) == (0, 0)

    added = await client.post(
        "/v1/signing-keys",
        json={"public_key": openpgp.public, "label": "OpenPGP"},
        headers=expert.headers,
    )
    assert added.status_code == 201, added.text
    after = await client.post(f"/v1/credentials/{before['id']}/verify", headers=expert.headers)
    body = after.json()
    assert body["status"] == "verified", body["note"]
    assert (body["figures"]["commits"], body["figures"]["total_commits"]) == (2, 4)
    assert body["figures"]["signed_commits"] == 2
    assert (body["figures"]["lines"], body["figures"]["total_lines"]) == (20, 40)


@pytest.mark.both_databases
async def test_other_writes_go_on_while_a_repository_is_fetched(
    client: httpx.AsyncClient,
    expert: Actor,
    expert_second: Actor,
    tmp_path: Path,
) -> None:
    """The fetch runs with no transaction open: on SQLite an open one that has written would
    hold the write lock, and every other writer would wait for the slowest repository host."""
    mine = tmp_path / "mine"
    make_repo(mine, [Commit(expert.account.email, {"a.py": lines(10)})])
    gate = Gate()
    with git_server(tmp_path / "slow", gate=gate) as slow:
        url = slow.publish(mine, "mine")
        claim = asyncio.create_task(_claim(client, expert, remote=url))
        try:
            assert await asyncio.to_thread(gate.reached.wait, 60), "git never asked the host"
            # git is waiting for the host's answer: others write meanwhile, and so does the
            # expert.
            key = await client.post(
                "/v1/api-keys", json={"label": "during"}, headers=expert_second.headers
            )
            assert key.status_code == 201, key.text
            signing = await client.post(
                "/v1/signing-keys",
                json={"public_key": ssh_key(tmp_path / "keys")[1]},
                headers=expert.headers,
            )
            assert signing.status_code == 201, signing.text
            assert not claim.done()  # the host has not answered yet
        finally:
            gate.release.set()
        body = await claim
    assert body["status"] == "verified", body["note"]
    assert body["figures"]["commits"] == 1
    listed = await client.get("/v1/api-keys", headers=expert_second.headers)
    assert "during" in [k["label"] for k in listed.json()]


class TestSigningKeys:
    async def test_register_list_and_remove(
        self, client: httpx.AsyncClient, expert: Actor, expert_second: Actor, tmp_path: Path
    ) -> None:
        _, public = ssh_key(tmp_path)
        added = await client.post(
            "/v1/signing-keys", json={"public_key": public}, headers=expert.headers
        )
        assert added.status_code == 201, added.text
        key = added.json()
        assert key["public_key"] == " ".join(public.split()[:2])  # the comment is dropped
        listed = await client.get("/v1/signing-keys", headers=expert.headers)
        assert [k["id"] for k in listed.json()] == [key["id"]]
        assert (await client.get("/v1/signing-keys", headers=expert_second.headers)).json() == []

        taken = await client.post(
            "/v1/signing-keys",
            json={"public_key": public},
            headers=expert_second.headers,
        )
        assert taken.status_code == 409
        assert "registered to another account" in taken.json()["detail"]
        theirs = await client.delete(f"/v1/signing-keys/{key['id']}", headers=expert_second.headers)
        assert theirs.status_code == 404
        assert [
            k["id"] for k in (await client.get("/v1/signing-keys", headers=expert.headers)).json()
        ] == [key["id"]]

    async def test_an_openpgp_key(
        self, client: httpx.AsyncClient, expert: Actor, openpgp: GpgKey
    ) -> None:
        added = await client.post(
            "/v1/signing-keys", json={"public_key": openpgp.public}, headers=expert.headers
        )
        assert added.status_code == 201, added.text
        assert (added.json()["kind"], added.json()["fingerprint"]) == ("gpg", openpgp.fingerprint)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"public_key": "hello"}, "not an SSH public key"),
            ({"public_key": "ssh-ed25519 AAAAnotakey"}, "ssh-keygen cannot read it"),
            (
                {"public_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"},
                "that is a private key",
            ),
            (
                {
                    "public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n"
                    "-----END PGP PUBLIC KEY BLOCK-----"
                },
                "gpg cannot read it",
            ),
            ({"public_key": "ssh-ed25519 AAAA", "kind": "x509"}, "kind"),
        ],
    )
    async def test_malformed_keys(
        self, client: httpx.AsyncClient, expert: Actor, body: dict[str, Any], message: str
    ) -> None:
        response = await client.post("/v1/signing-keys", json=body, headers=expert.headers)
        assert response.status_code == 422
        assert message in response.json()["detail"]
        assert (await client.get("/v1/signing-keys", headers=expert.headers)).json() == []


class TestRemotes:
    @pytest.mark.parametrize(
        ("remote", "message"),
        [
            ("file:///etc", "local paths, file:// and ssh addresses are not fetched"),
            ("ssh://git@example.org/x.git", "not fetched"),
            ("/home/ada/library", "not fetched"),
            ("https://ada:secret@example.org/x.git", "user name or password"),
        ],
    )
    async def test_refused_urls(
        self, client: httpx.AsyncClient, expert: Actor, remote: str, message: str
    ) -> None:
        response = await client.post(
            "/v1/credentials",
            json={"kind": "commit_authorship", "claim": "x", "evidence": {"remote": remote}},
            headers=expert.headers,
        )
        assert response.status_code == 422
        assert message in response.json()["detail"]

    async def test_private_addresses_refused_unless_allowed(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        server: GitServer,
        ada_repo: Path,
    ) -> None:
        url = server.publish(ada_repo, "library")
        runtime.settings.marketplace.allow_private_remotes = False
        body = await _claim(client, expert, remote=url)
        assert body["status"] == "rejected"
        assert "private, loopback or link-local" in body["note"]
        assert not (runtime.settings.data_dir / "remotes").exists() or not any(
            p.is_dir() for p in (runtime.settings.data_dir / "remotes").iterdir()
        )

    async def test_unreachable_is_left_unverified(
        self, client: httpx.AsyncClient, expert: Actor, server: GitServer
    ) -> None:
        body = await _claim(client, expert, remote=f"{server.base}/missing.git")
        assert body["status"] == "unverified"
        assert "not found" in body["note"]


def _paper_pdf(path: Path, *contact: str) -> Path:
    """A two-page paper whose first page shows its authors and their ``contact`` lines."""
    pdf = canvas.Canvas(str(path), pagesize=letter)
    _, height = letter
    first = [
        (16, "Analytical Engines Revisited"),
        (10, "Ada Lovelace and Grace Hopper"),
        *((10, line) for line in contact),
        (12, "Abstract"),
        (10, "We ran the programs of the notes on a simulated engine and report the results."),
        (12, "1 Introduction"),
        (10, "The notes on the engine describe a program for the numbers of Bernoulli."),
    ]
    second = [
        (12, "2 Results"),
        (10, "The programs ran as described once two transcription errors were fixed."),
    ]
    for page in (first, second):
        y = height - 72
        for size, text in page:
            pdf.setFont("Helvetica-Bold" if size > 10 else "Helvetica", size)
            y -= size * 1.5 if size > 10 else 13
            pdf.drawString(72, y, text)
        pdf.showPage()
    pdf.save()
    return path


async def _claim_paper(
    client: httpx.AsyncClient, actor: Actor, asset: str, path: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/credentials",
        json={
            "kind": "paper_authorship",
            "claim": "Co-author of Analytical Engines Revisited",
            "evidence": {"asset": asset, "path": path},
        },
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestPaperEmail:
    async def test_a_paper_listing_the_verified_email_is_proof(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        expert: Actor,
        expert_second: Actor,
        tmp_path: Path,
    ) -> None:
        # Ingested from this machine, the addresses written in the shared-domain form.
        local, domain = expert.account.email.split("@")
        paper = _paper_pdf(tmp_path / "engines.pdf", f"{{ada, {local}}}@{domain.upper()}")
        asset = create_test_asset(runtime, owner=expert.account, slug="papers")
        job = ingest_path(runtime, asset=asset, owner=expert.account, path=paper)
        assert job.status == "succeeded", job.error

        body = await _claim_paper(client, expert, "papers", "engines.pdf")
        assert (body["status"], body["method"]) == ("verified", "paper_authors"), body["note"]
        assert body["figures"]["proof"] == "email"
        assert body["figures"]["email_listed"] is True
        assert "lists the expert's verified e-mail address" in body["note"]
        (shown,) = await _public_credentials(client, expert)
        assert shown["figures"]["proof"] == "email"
        assert expert.account.email not in str(shown)

        # Uploaded: the platform keeps the file it ingested and reads it again.
        create_test_asset(runtime, owner=expert_second.account, slug="uploaded")
        pdf = _paper_pdf(tmp_path / "up.pdf", expert_second.account.email).read_bytes()
        uploaded = await client.post(
            "/v1/assets/uploaded/sources",
            files={"files": ("engines.pdf", pdf, "application/pdf")},
            headers=expert_second.headers,
        )
        assert uploaded.status_code == 202, uploaded.text
        theirs = await _claim_paper(client, expert_second, "uploaded", "engines.pdf")
        assert theirs["status"] == "verified", theirs["note"]
        assert theirs["figures"]["proof"] == "email"

    async def test_a_paper_not_listing_the_email_is_rejected(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor, tmp_path: Path
    ) -> None:
        paper = _paper_pdf(tmp_path / "engines.pdf", "ada@example.org", "grace@example.org")
        asset = create_test_asset(runtime, owner=expert.account, slug="papers")
        assert ingest_path(runtime, asset=asset, owner=expert.account, path=paper).status == (
            "succeeded"
        )
        body = await _claim_paper(client, expert, "papers", "engines.pdf")
        assert body["status"] == "rejected"
        assert (body["figures"]["proof"], body["figures"]["email_listed"]) == (None, False)
        assert "do not list your account's e-mail address" in body["note"]
        assert "a proved ORCID iD or a verified e-mail address" in body["note"]
        assert await _public_credentials(client, expert) == []

    async def test_an_unverified_email_listed_waits_for_verification(
        self, client: httpx.AsyncClient, runtime: Runtime, tmp_path: Path
    ) -> None:
        with session_scope(runtime.engine) as session:
            account = accounts.create_account(
                session, email="new@example.com", name="New Expert", role="expert", verified=False
            )
            _, key = accounts.create_api_key(session, account=account, label="test")
        unverified = Actor(account=account, key=key)
        paper = _paper_pdf(tmp_path / "engines.pdf", "New@Example.com")
        asset = create_test_asset(runtime, owner=account, slug="papers")
        assert ingest_path(runtime, asset=asset, owner=account, path=paper).status == "succeeded"

        body = await _claim_paper(client, unverified, "papers", "engines.pdf")
        assert body["status"] == "unverified"
        assert body["figures"]["proof"] is None
        assert "verify your e-mail first" in body["note"]
        assert "lists your e-mail address, which counts once you verify it" in body["note"]
        assert await _public_credentials(client, unverified) == []

        # Once the address is proved, the same paper is proof.
        with session_scope(runtime.engine) as session:
            stored = session.get(Account, account.id)
            assert stored is not None
            stored.email_verified_at = utcnow()
        again = await client.post(
            f"/v1/credentials/{body['id']}/verify", headers=unverified.headers
        )
        assert again.json()["status"] == "verified", again.json()["note"]
        assert again.json()["figures"]["proof"] == "email"


async def test_admin_cannot_verify_for_an_unverified_email(
    client: httpx.AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    with session_scope(runtime.engine) as session:
        account = accounts.create_account(
            session, email="new@example.com", name="New Expert", role="expert", verified=False
        )
        _, key = accounts.create_api_key(session, account=account, label="test")
    unverified = Actor(account=account, key=key)
    added = await client.post(
        "/v1/credentials",
        json={"kind": "licence", "claim": "Licensed engineer", "evidence": {"issuer": "Board"}},
        headers=unverified.headers,
    )
    assert added.status_code == 201, added.text
    credential = added.json()["id"]
    pdf = _paper_pdf(Path(runtime.settings.data_dir) / "licence.pdf").read_bytes()
    uploaded = await client.post(
        f"/v1/credentials/{credential}/document",
        files={"file": ("licence.pdf", pdf, "application/pdf")},
        headers=unverified.headers,
    )
    assert uploaded.status_code == 200, uploaded.text

    refused = await client.post(
        f"/v1/admin/credentials/{credential}/verify", json={"note": ""}, headers=admin.headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "EmailUnverified"
    assert "new@example.com has not verified their e-mail address" in refused.json()["detail"]
    shown = await client.get(f"/v1/credentials/{credential}", headers=unverified.headers)
    assert (shown.json()["status"], shown.json()["verified_by"]) == ("unverified", None)

    # A rejection, with its reason, is still the admin's to give.
    rejected = await client.post(
        f"/v1/admin/credentials/{credential}/reject",
        json={"note": "The scan is unreadable"},
        headers=admin.headers,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
