"""Page forms against cross-site posts, and sign-in against password guessing."""

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from app.main import create_app
from app.models import ApiKey
from app.runtime import Runtime
from core.config import AuthSettings, QueueSettings, Settings
from tests.factories import PASSWORD, Actor, create_actor, create_test_asset

# SQLite only: form tokens and form parsing, before any query.

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@pytest.fixture
async def bare(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that sends only what a form or another site would: no token unless given."""
    transport = httpx.ASGITransport(app=create_app(runtime.settings, runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as client:
        yield client


async def _sign_in(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        "/login", data={"email": actor.account.email, "password": PASSWORD}
    )
    assert response.status_code == 303


def _keys(session: Session, actor: Actor) -> int:
    rows = session.exec(select(ApiKey).where(ApiKey.account_id == actor.account.id)).all()
    return len(rows)


class TestCrossSiteForms:
    @pytest.fixture
    def member(self, runtime: Runtime) -> Actor:
        return create_actor(runtime, role="client", password=PASSWORD)

    async def test_every_form_of_a_signed_in_page_carries_the_token(
        self, bare: httpx.AsyncClient, member: Actor
    ) -> None:
        await _sign_in(bare, member)
        page = (await bare.get("/keys")).text
        forms = re.findall(r'<form[^>]*method="post"', page)
        assert len(forms) >= 3  # create, revoke, sign out
        assert len(TOKEN.findall(page)) == len(forms)
        assert len(set(TOKEN.findall(page))) == 1
        assert f'"X-CSRF-Token": "{TOKEN.findall(page)[0]}"' in page  # htmx's header

    async def test_a_post_without_the_token_is_refused_and_changes_nothing(
        self, bare: httpx.AsyncClient, member: Actor, session: Session
    ) -> None:
        await _sign_in(bare, member)
        before = _keys(session, member)
        # No Origin header at all: what a cross-site form post from some clients looks like.
        missing = await bare.post("/keys", data={"label": "stolen"})
        wrong = await bare.post("/keys", data={"label": "stolen", "csrf_token": "0" * 64})
        for refused in (missing, wrong):
            assert refused.status_code == 403
            assert "reload the page" in refused.text
        assert _keys(session, member) == before

    async def test_the_pages_token_is_accepted_as_a_field_or_a_header(
        self, bare: httpx.AsyncClient, member: Actor, session: Session
    ) -> None:
        await _sign_in(bare, member)
        before = _keys(session, member)
        (token,) = set(TOKEN.findall((await bare.get("/keys")).text))
        by_field = await bare.post("/keys", data={"label": "laptop", "csrf_token": token})
        by_header = await bare.post(
            "/keys", data={"label": "phone"}, headers={"X-CSRF-Token": token}
        )
        assert by_field.status_code == by_header.status_code == 201
        assert _keys(session, member) == before + 2

    async def test_another_origin_is_refused_even_with_the_token(
        self, bare: httpx.AsyncClient, member: Actor, session: Session
    ) -> None:
        await _sign_in(bare, member)
        (token,) = set(TOKEN.findall((await bare.get("/keys")).text))
        before = _keys(session, member)
        response = await bare.post(
            "/keys",
            data={"label": "x", "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert _keys(session, member) == before

    async def test_an_upload_without_the_token_is_refused_and_nothing_stored(
        self, bare: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        expert = create_actor(runtime, role="expert", password=PASSWORD)
        create_test_asset(runtime, owner=expert.account, slug="shop")
        await _sign_in(bare, expert)
        response = await bare.post(
            "/assets/shop/sources", files=[("files", ("policies.md", b"# Policies\n\nText."))]
        )
        assert response.status_code == 403
        assert "reload the page" in response.text
        assert not any(runtime.settings.uploads_path.glob("*/*"))

    async def test_signed_out_posts_are_sent_to_sign_in(self, bare: httpx.AsyncClient) -> None:
        response = await bare.post("/keys", data={"label": "x"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


class TestSignInThrottle:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str | None) -> Settings:
        return Settings(
            environment="test",
            data_dir=tmp_path,
            database_url=database_url,
            queue=QueueSettings(immediate=True),
            auth=AuthSettings(failures_per_account=3, failures_per_address=10),
        )

    async def test_wrong_passwords_lock_the_account_for_a_while(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        victim = create_actor(runtime, role="client", password=PASSWORD)
        other = create_actor(runtime, role="client", password=PASSWORD)
        email = victim.account.email
        for _ in range(3):
            wrong = await client.post("/login", data={"email": email, "password": "guess-1234"})
            assert wrong.status_code == 401
        for password in ("guess-9999", PASSWORD):  # the right one waits too
            locked = await client.post("/login", data={"email": email, "password": password})
            assert locked.status_code == 429
            assert int(locked.headers["Retry-After"]) >= 1
            assert "too many wrong passwords for this account" in locked.text
        assert "vouch_session" not in locked.cookies
        await _sign_in(client, other)  # others are not locked out

    async def test_a_flood_gets_429s_while_signed_in_requests_are_served(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        member = create_actor(runtime, role="client", password=PASSWORD)

        async def guess(n: int) -> int:
            response = await client.post(
                "/login", data={"email": f"nobody{n}@example.com", "password": "guess-1234"}
            )
            return response.status_code

        async def served() -> list[int]:
            codes = []
            for _ in range(10):
                codes.append((await client.get("/v1/me", headers=member.headers)).status_code)
            return codes

        guesses, own = await asyncio.gather(
            asyncio.gather(*(guess(n) for n in range(40))), served()
        )
        assert set(guesses) <= {401, 429}
        assert guesses.count(429) >= 20
        assert own == [200] * 10
