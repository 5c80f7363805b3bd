"""Tenants are isolated and keys are checked, tested from the outside over HTTP."""

import httpx
import pytest
from sqlmodel import Session, select

from app.models import ApiKey
from app.runtime import Runtime
from tests.factories import HANDBOOK, Actor, create_actor, create_test_asset, ingest_path


@pytest.fixture
def published(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="published")
    ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    return asset.slug


@pytest.fixture
def private(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="private", published=False)
    ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK / "policies.md")
    return asset.slug


class TestKeys:
    async def test_request_without_key_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/me")
        assert response.status_code == 401
        assert "Authorization: Bearer" in response.json()["detail"]

    @pytest.mark.parametrize(
        "key", ["nonsense", "vch_abcdefghij_wrongwrongwrong", "Bearer", "vch__"]
    )
    async def test_wrong_or_malformed_key_is_401(
        self, client: httpx.AsyncClient, client_user: Actor, key: str
    ) -> None:
        del client_user
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401
        assert response.json()["error"] == "InvalidCredentials"

    async def test_key_with_right_prefix_and_wrong_secret_is_401(
        self, client: httpx.AsyncClient, client_user: Actor
    ) -> None:
        prefix = client_user.key.rpartition("_")[0]
        response = await client.get(
            "/v1/me", headers={"Authorization": f"Bearer {prefix}_{'x' * 32}"}
        )
        assert response.status_code == 401

    async def test_key_is_stored_hashed_and_shown_once(
        self, client: httpx.AsyncClient, client_user: Actor, session: Session
    ) -> None:
        created = await client.post(
            "/v1/api-keys", json={"label": "laptop"}, headers=client_user.headers
        )
        assert created.status_code == 201
        secret = created.json()["key"]
        row = session.exec(select(ApiKey).where(ApiKey.prefix == created.json()["prefix"])).one()
        assert secret not in (row.key_hash, row.prefix)
        assert secret.startswith(row.prefix + "_")
        listed = await client.get("/v1/api-keys", headers=client_user.headers)
        assert secret not in listed.text
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.json()["email"] == client_user.account.email

    async def test_revoked_key_stops_working(
        self, client: httpx.AsyncClient, client_user: Actor, runtime: Runtime
    ) -> None:
        spare = create_actor(runtime, role="client")
        keys = await client.get("/v1/api-keys", headers=client_user.headers)
        (own,) = keys.json()
        stranger = await client.delete(f"/v1/api-keys/{own['id']}", headers=spare.headers)
        assert stranger.status_code == 404
        assert (await client.get("/v1/me", headers=client_user.headers)).status_code == 200

        revoked = await client.delete(f"/v1/api-keys/{own['id']}", headers=client_user.headers)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        after = await client.get("/v1/me", headers=client_user.headers)
        assert after.status_code == 401
        assert "revoked" in after.json()["detail"]
        assert (await client.get("/v1/me", headers=spare.headers)).status_code == 200


class TestTenancy:
    async def test_client_cannot_reach_admin_routes(
        self, client: httpx.AsyncClient, client_user: Actor, expert: Actor, admin: Actor
    ) -> None:
        for actor in (client_user, expert):
            listed = await client.get("/v1/admin/accounts", headers=actor.headers)
            assert listed.status_code == 403
            made = await client.post(
                "/v1/admin/accounts",
                json={"email": "x@example.com", "name": "X", "role": "admin"},
                headers=actor.headers,
            )
            assert made.status_code == 403
        assert (await client.get("/v1/admin/accounts", headers=admin.headers)).status_code == 200

    async def test_client_cannot_reach_the_corpus(
        self, client: httpx.AsyncClient, client_user: Actor, published: str
    ) -> None:
        search = await client.post(
            f"/v1/assets/{published}/search", json={"query": "refund"}, headers=client_user.headers
        )
        assert search.status_code == 403
        upload = await client.post(
            f"/v1/assets/{published}/sources",
            files={"files": ("x.md", b"# x\n\ntext")},
            headers=client_user.headers,
        )
        assert upload.status_code == 403
        jobs = await client.get(f"/v1/assets/{published}/jobs", headers=client_user.headers)
        assert jobs.status_code == 403

    async def test_expert_cannot_touch_another_experts_asset(
        self,
        client: httpx.AsyncClient,
        expert_second: Actor,
        published: str,
        private: str,
    ) -> None:
        upload = await client.post(
            f"/v1/assets/{published}/sources",
            files={"files": ("x.md", b"# x\n\ntext")},
            headers=expert_second.headers,
        )
        assert upload.status_code == 403
        for path in (f"/v1/assets/{private}", f"/v1/assets/{private}/jobs"):
            response = await client.get(path, headers=expert_second.headers)
            assert response.status_code == 404, path
        ask = await client.post(
            f"/v1/assets/{private}/ask",
            json={"question": "How long does a refund take?"},
            headers=expert_second.headers,
        )
        assert ask.status_code == 404
        listed = await client.get("/v1/assets", headers=expert_second.headers)
        assert [a["slug"] for a in listed.json()] == [published]

    async def test_jobs_are_visible_only_to_the_owner(
        self,
        client: httpx.AsyncClient,
        expert: Actor,
        expert_second: Actor,
        client_user: Actor,
        published: str,
    ) -> None:
        jobs = await client.get(f"/v1/assets/{published}/jobs", headers=expert.headers)
        job_id = jobs.json()[0]["job_id"]
        assert (await client.get(f"/v1/jobs/{job_id}", headers=expert.headers)).status_code == 200
        for stranger in (expert_second, client_user):
            response = await client.get(f"/v1/jobs/{job_id}", headers=stranger.headers)
            assert response.status_code == 404

    async def test_consultation_is_private_to_asker_and_owner(
        self,
        client: httpx.AsyncClient,
        expert: Actor,
        client_user: Actor,
        client_second: Actor,
        admin: Actor,
        published: str,
    ) -> None:
        asked = await client.post(
            f"/v1/assets/{published}/ask",
            json={"question": "When is the store closed?"},
            headers=client_user.headers,
        )
        path = f"/v1/consultations/{asked.json()['consultation_id']}"
        for allowed in (client_user, expert, admin):
            assert (await client.get(path, headers=allowed.headers)).status_code == 200
        assert (await client.get(path, headers=client_second.headers)).status_code == 404

    async def test_client_cannot_create_assets(
        self, client: httpx.AsyncClient, client_user: Actor
    ) -> None:
        response = await client.post(
            "/v1/assets", json={"slug": "mine", "title": "Mine"}, headers=client_user.headers
        )
        assert response.status_code == 403


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = (await client.get("/openapi.json")).json()
    for path in ("/v1/assets/{slug}/ask", "/v1/assets/{slug}/sources", "/v1/jobs/{job_id}"):
        assert path in schema["paths"]
    ask = schema["paths"]["/v1/assets/{slug}/ask"]["post"]
    assert {"401", "404", "422"} <= set(ask["responses"])
