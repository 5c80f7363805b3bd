"""Identity: sign-up with a mailed verification link (over a real local SMTP server), e-mail
change, password reset, what an unverified account may not do, ORCID iD through a local OAuth
server, suspension and the admin's accounts page."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session

from app import identity
from app.accounting import run_payouts
from app.main import create_app
from app.models import Account
from app.runtime import Runtime
from assets.embeddings import Embedder
from billing import service as billing
from billing.models import BillingProfile
from core.config import AuthSettings, MailSettings, OrcidSettings, Settings
from core.db import session_scope
from core.ids import new_id
from tests.conftest import page_forms_send_their_token
from tests.factories import (
    HANDBOOK,
    PASSWORD,
    Actor,
    create_actor,
    create_test_asset,
    ingest_path,
)
from tests.servers import OrcidServer, SmtpServer, orcid_server, smtp_server
from tests.stripe_fakes import FakeGateway, stripe_settings

NEW_PASSWORD = "battery-staple-9"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def orcid() -> Iterator[OrcidServer]:
    with orcid_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer, orcid: OrcidServer) -> Settings:
    """The test settings, mailing through the local SMTP server and signing in to the local
    ORCID; at most three mails an hour to one address."""
    return settings.model_copy(
        update={
            "mail": MailSettings(host=smtp.host, port=smtp.port, starttls=False),
            "orcid": OrcidSettings(
                base_url=orcid.url,
                client_id=orcid.client_id,
                client_secret=SecretStr(orcid.client_secret),
            ),
            "auth": AuthSettings(mails_per_address_hour=3),
        }
    )


def local(link: str) -> str:
    """The path and query of a mailed link, to follow it on the test client."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def sign_up(
    client: httpx.AsyncClient, email: str, role: str = "client", password: str = PASSWORD
) -> tuple[dict[str, str], str]:
    """Sign up over the API; returns the account and its API key's headers' value."""
    response = await client.post(
        "/v1/signup",
        json={"email": email, "name": "Nell Newcomer", "password": password, "role": role},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["account"], body["key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/login", data={"email": email, "password": password, "next": "/assets"}
    )


class TestSignup:
    async def test_link_mailed_on_signup_verifies_the_account(
        self, client: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        account, key = await sign_up(client, "nell@example.com")
        assert account["email_verified_at"] is None
        (message,) = smtp.to("nell@example.com")
        assert message["Subject"] == "Confirm your e-mail address"

        page = await client.get(local(smtp.link("nell@example.com", "/verify")))
        assert page.status_code == 200
        assert "Your e-mail address is verified" in page.text
        me = (await client.get("/v1/me", headers=bearer(key))).json()
        assert me["email_verified_at"] is not None

    async def test_page_signup_signs_in_and_shows_the_banner_until_verified(
        self, client: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        form = {"email": "Page@Example.com", "name": "Page", "password": PASSWORD, "role": "expert"}
        made = await client.post("/signup", data=form)
        assert made.status_code == 303
        assert made.headers["location"] == "/account?sent=1"
        page = await client.get("/account?sent=1")
        assert "We sent a verification link to page@example.com" in page.text
        assert 'id="verify-banner"' in page.text
        assert "Check your inbox" in page.text

        followed = await client.get(local(smtp.link("page@example.com", "/verify")))
        assert "page@example.com is verified" in followed.text
        assert 'id="verify-banner"' not in (await client.get("/account")).text

    async def test_signup_as_admin_is_refused_and_nothing_is_mailed(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime
    ) -> None:
        api = await client.post(
            "/v1/signup",
            json={"email": "boss@example.com", "name": "B", "password": PASSWORD, "role": "admin"},
        )
        assert api.status_code == 422
        page = await client.post(
            "/signup",
            data={"email": "boss@example.com", "name": "B", "password": PASSWORD, "role": "admin"},
        )
        assert page.status_code == 422
        assert "sign up as a client or an expert" in page.text
        assert smtp.messages == []
        with Session(runtime.engine) as session:
            assert identity.search_accounts(session, q="boss")[1] == 0

    @pytest.mark.parametrize("email", ["ann,bob@example.com", 'ann"@example.com', "a(b@x.org"])
    async def test_address_a_mail_header_would_split_or_mangle_is_refused(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime, email: str
    ) -> None:
        """ "ann,bob@example.com" is two recipients to a mail header: the link would go to both."""
        body = {"email": email, "name": "N", "password": PASSWORD, "role": "client"}
        api = await client.post("/v1/signup", json=body)
        assert api.status_code == 422
        assert "is not an e-mail address we can write to" in api.json()["detail"]
        page = await client.post("/signup", data=body)
        assert page.status_code == 422
        assert "without spaces, quotes, commas" in page.text
        assert smtp.messages == []
        with Session(runtime.engine) as session:
            assert identity.search_accounts(session, q=email[:3])[1] == 0

    @pytest.mark.both_databases
    async def test_taken_email_is_refused(
        self, client: httpx.AsyncClient, client_user: Actor
    ) -> None:
        taken = await client.post(
            "/v1/signup",
            json={
                "email": client_user.account.email.upper(),
                "name": "Copy",
                "password": PASSWORD,
                "role": "client",
            },
        )
        assert taken.status_code == 409

    async def test_admin_created_accounts_are_verified(
        self, client: httpx.AsyncClient, admin: Actor
    ) -> None:
        made = await client.post(
            "/v1/admin/accounts",
            json={"email": "staff@example.com", "name": "Staff", "role": "expert"},
            headers=admin.headers,
        )
        assert made.status_code == 201
        assert made.json()["email_verified_at"] is not None


class TestLinks:
    async def test_tampered_link_is_refused_with_a_way_to_get_a_new_one(
        self, client: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        _, key = await sign_up(client, "tamper@example.com")
        link = local(smtp.link("tamper@example.com", "/verify"))
        body, _, signature = link.partition(".")
        forged = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        page = await client.get(forged)
        assert page.status_code == 403
        assert "This link does not work" in page.text
        assert "Send a new link" in page.text
        api = await client.post("/v1/verify", json={"token": "not-a-token"})
        assert api.status_code == 403
        assert (await client.get("/v1/me", headers=bearer(key))).json()["email_verified_at"] is None

    async def test_expired_link_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        account, key = await sign_up(client, "late@example.com")
        with Session(runtime.engine) as session:
            row = session.get(Account, account["id"])
            assert row is not None
            token = identity.make_token(
                identity.server_secret(runtime.settings),
                purpose=identity.VERIFY,
                account=row,
                email=row.email,
                hours=-1,
            )
        page = await client.get("/verify", params={"token": token})
        assert page.status_code == 403
        assert "this link has expired" in page.text
        assert (await client.get("/v1/me", headers=bearer(key))).json()["email_verified_at"] is None

    async def test_link_of_another_purpose_is_refused(
        self, client: httpx.AsyncClient, smtp: SmtpServer, client_user: Actor
    ) -> None:
        await client.post("/v1/password-reset", json={"email": client_user.account.email})
        reset = smtp.link(client_user.account.email, "/reset-password")
        page = await client.get("/verify?" + urlsplit(reset).query)
        assert page.status_code == 403
        assert "not valid here" in page.text

    async def test_resend_mails_a_new_link_and_is_limited(
        self, client: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        _, key = await sign_up(client, "again@example.com")
        for _ in range(2):
            sent = await client.post("/v1/me/verification", headers=bearer(key))
            assert sent.status_code == 202, sent.text
        assert len(smtp.to("again@example.com")) == 3
        limited = await client.post("/v1/me/verification", headers=bearer(key))
        assert limited.status_code == 429
        assert len(smtp.to("again@example.com")) == 3

    async def test_secret_is_kept_in_the_data_dir_across_restarts(self, settings: Settings) -> None:
        first = identity.server_secret(settings)
        assert (settings.data_dir / "secret_key").read_text().strip().encode() == first
        configured = settings.model_copy(
            update={"auth": AuthSettings(secret_key=SecretStr("x" * 40))}
        )
        assert identity.server_secret(configured) == b"x" * 40


class TestEmailChange:
    async def test_new_address_takes_over_only_when_its_link_is_followed(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime
    ) -> None:
        actor = create_actor(runtime, role="client", email="old@example.com", password=PASSWORD)
        asked = await client.patch(
            "/v1/me", json={"email": "New@Example.com"}, headers=actor.headers
        )
        assert asked.status_code == 200, asked.text
        assert (asked.json()["email"], asked.json()["pending_email"]) == (
            "old@example.com",
            "new@example.com",
        )
        assert len(smtp.to("new@example.com")) == 1
        assert smtp.to("old@example.com") == []
        # The old address still signs in meanwhile.
        assert (await sign_in(client, "old@example.com")).status_code == 303

        page = await client.get(local(smtp.link("new@example.com", "/verify")))
        assert "Your e-mail address is changed" in page.text
        assert "new@example.com is now your address" in page.text
        me = (await client.get("/v1/me", headers=actor.headers)).json()
        assert me["email"] == "new@example.com"
        assert me["email_verified_at"] is not None
        await client.post("/logout")
        assert (await sign_in(client, "new@example.com")).status_code == 303
        assert (await sign_in(client, "old@example.com")).status_code == 401

    async def test_change_page_refuses_an_address_in_use(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime
    ) -> None:
        actor = create_actor(runtime, role="expert", password=PASSWORD)
        other = create_actor(runtime, role="client")
        await sign_in(client, actor.account.email)
        page = await client.post("/account/email", data={"email": other.account.email})
        assert page.status_code == 409
        assert "exists already" in page.text
        assert smtp.messages == []

    async def test_link_dies_when_the_address_changed_meanwhile(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime
    ) -> None:
        actor = create_actor(runtime, role="client")
        await client.patch("/v1/me", json={"email": "first@example.com"}, headers=actor.headers)
        await client.patch("/v1/me", json={"email": "second@example.com"}, headers=actor.headers)
        first = local(smtp.link("first@example.com", "/verify"))
        await client.get(local(smtp.link("second@example.com", "/verify")))
        stale = await client.get(first)
        assert stale.status_code == 403
        assert "out of date" in stale.text
        me = (await client.get("/v1/me", headers=actor.headers)).json()
        assert me["email"] == "second@example.com"


class TestPasswordReset:
    async def test_reset_end_to_end_and_the_link_dies_after_use(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime
    ) -> None:
        actor = create_actor(runtime, role="client", password=PASSWORD)
        email = actor.account.email
        known = await client.post("/forgot-password", data={"email": email})
        unknown = await client.post("/forgot-password", data={"email": "nobody@example.com"})
        assert known.status_code == unknown.status_code == 200
        assert identity.RESET_SENT[1:] in known.text
        assert known.text.replace(email, "") == unknown.text.replace("nobody@example.com", "")
        assert smtp.to("nobody@example.com") == []
        link = local(smtp.link(email, "/reset-password"))

        form = await client.get(link)
        assert form.status_code == 200
        assert "Choose a new password" in form.text
        token = link.partition("token=")[2]
        done = await client.post("/reset-password", data={"token": token, "password": NEW_PASSWORD})
        assert "Your password is changed" in done.text
        assert (await sign_in(client, email)).status_code == 401
        assert (await sign_in(client, email, NEW_PASSWORD)).status_code == 303

        used = await client.get(link)
        assert used.status_code == 403
        assert "used already" in used.text
        again = await client.post(
            "/v1/password-reset/confirm", json={"token": token, "password": "another-pass-1"}
        )
        assert again.status_code == 403
        await client.post("/logout")
        assert (await sign_in(client, email, "another-pass-1")).status_code == 401

    async def test_reset_ends_the_accounts_web_sessions(
        self, client: httpx.AsyncClient, smtp: SmtpServer, runtime: Runtime
    ) -> None:
        actor = create_actor(runtime, role="client", password=PASSWORD)
        await sign_in(client, actor.account.email)
        assert (await client.get("/account")).status_code == 200
        await client.post("/v1/password-reset", json={"email": actor.account.email})
        token = smtp.link(actor.account.email, "/reset-password").partition("token=")[2]
        confirmed = await client.post(
            "/v1/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        assert confirmed.status_code == 200
        assert (await client.get("/account")).status_code == 303

    async def test_api_answer_is_the_same_for_unknown_addresses_and_mail_is_limited(
        self, client: httpx.AsyncClient, smtp: SmtpServer, client_user: Actor
    ) -> None:
        answers = set()
        for email in ["ghost@example.com"] + [client_user.account.email] * 5:
            response = await client.post("/v1/password-reset", json={"email": email})
            assert response.status_code == 202
            answers.add(response.json()["detail"])
        assert answers == {identity.RESET_SENT}
        assert len(smtp.to(client_user.account.email)) == 3  # mails_per_address_hour


@pytest.fixture
def garden(runtime: Runtime, expert: Actor) -> str:
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    assert job.status == "succeeded", job.error
    return asset.slug


class TestUnverified:
    async def test_trial_questions_work_but_paid_ones_wait_for_verification(
        self,
        client: httpx.AsyncClient,
        smtp: SmtpServer,
        runtime: Runtime,
        expert: Actor,
        garden: str,
    ) -> None:
        plan = await client.put(
            f"/v1/assets/{garden}/plan", json={"per_query": 25, "trial": 1}, headers=expert.headers
        )
        assert plan.status_code == 200, plan.text
        account, key = await sign_up(client, "trial@example.com")
        with session_scope(runtime.engine) as session:
            billing.grant_credits(
                session, account_id=account["id"], amount=500, currency="usd", key=new_id("g")
            )
        question = {"question": "How long does a refund take?"}
        trial = await client.post(f"/v1/assets/{garden}/ask", json=question, headers=bearer(key))
        assert trial.status_code == 200, trial.text
        assert trial.json()["charge"]["source"] == "trial"

        paid = await client.post(f"/v1/assets/{garden}/ask", json=question, headers=bearer(key))
        assert paid.status_code == 403
        assert paid.json()["error"] == "EmailUnverified"
        assert "Verify your e-mail address before you ask a paid question" in paid.json()["detail"]
        assert "trial@example.com" in paid.json()["detail"]

        await client.get(local(smtp.link("trial@example.com", "/verify")))
        paid = await client.post(f"/v1/assets/{garden}/ask", json=question, headers=bearer(key))
        assert paid.status_code == 200, paid.text
        assert paid.json()["charge"]["source"] == "credits"

    async def test_unverified_expert_cannot_set_up_payouts(
        self, settings: Settings, embedder: Embedder, smtp: SmtpServer
    ) -> None:
        runtime = Runtime(stripe_settings(settings), embedder=embedder, gateway=FakeGateway())
        app = create_app(runtime.settings, runtime=runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as api:
            _, key = await sign_up(api, "payme@example.com", role="expert")
            refused = await api.post("/v1/billing/connect", headers=bearer(key))
            assert refused.status_code == 403
            assert "before you set up payouts" in refused.json()["detail"]
            await api.get(local(smtp.link("payme@example.com", "/verify")))
            allowed = await api.post("/v1/billing/connect", headers=bearer(key))
            assert allowed.status_code == 200, allowed.text
        runtime.close()

    async def test_payout_of_an_unverified_expert_stays_pending(
        self, settings: Settings, embedder: Embedder, expert: Actor, client_user: Actor
    ) -> None:
        gateway = FakeGateway()
        runtime = Runtime(stripe_settings(settings), embedder=embedder, gateway=gateway)
        app = create_app(runtime.settings, runtime=runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as api:
            asset = create_test_asset(runtime, owner=expert.account, slug="garden")
            ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
            slug = asset.slug
            await api.put(
                f"/v1/assets/{slug}/plan", json={"per_query": 1500}, headers=expert.headers
            )
            with session_scope(runtime.engine) as session:
                billing.grant_credits(
                    session, account_id=client_user.account.id, amount=1500, currency="usd", key="g"
                )
                session.add(
                    BillingProfile(
                        account_id=expert.account.id,
                        connect_account_id="acct_x",
                        payouts_enabled=True,
                    )
                )
            asked = await api.post(
                f"/v1/assets/{slug}/ask",
                json={"question": "How long does a refund take?"},
                headers=client_user.headers,
            )
            consultation = asked.json()["consultation_id"]
            await api.post(f"/v1/consultations/{consultation}/accept", headers=client_user.headers)
        with session_scope(runtime.engine) as session:
            row = session.get(Account, expert.account.id)
            assert row is not None
            row.email_verified_at = None  # as after sign-up, before the link is followed
            session.add(row)
        [payout] = run_payouts(runtime)
        assert payout.status == "pending"
        assert [c.method for c in gateway.calls if c.method == "create_transfer"] == []
        with session_scope(runtime.engine) as session:
            row = session.get(Account, expert.account.id)
            assert row is not None
            row.email_verified_at = row.created_at
            session.add(row)
        [payout] = run_payouts(runtime)
        assert payout.status == "paid"
        runtime.close()


async def connect_orcid(client: httpx.AsyncClient) -> httpx.Response:
    """Press "Connect ORCID iD", sign in at ORCID (the local server), come back; returns the
    callback's answer."""
    started = await client.post("/account/orcid")
    assert started.status_code == 303, started.text
    authorize = started.headers["location"]
    assert "scope=%2Fauthenticate" in authorize
    with httpx.Client() as browser:
        back = browser.get(authorize)
    assert back.status_code == 302, back.text
    return await client.get(local(back.headers["location"]))


class TestOrcid:
    async def test_connecting_proves_the_id(
        self, client: httpx.AsyncClient, runtime: Runtime, orcid: OrcidServer
    ) -> None:
        actor = create_actor(runtime, role="expert", password=PASSWORD)
        await sign_in(client, actor.account.email)
        page = await client.get("/account")
        assert "Connect ORCID iD" in page.text

        done = await connect_orcid(client)
        assert done.status_code == 303
        assert done.headers["location"] == "/account?orcid=connected"
        page = await client.get("/account?orcid=connected")
        assert f"Your ORCID iD {orcid.orcid} is connected" in page.text
        me = (await client.get("/v1/me", headers=actor.headers)).json()
        assert me["orcid"] == orcid.orcid
        (request,) = orcid.token_requests
        assert request["redirect_uri"].endswith("/account/orcid/callback")
        # The public profile marks the iD as proved; a typed-in one is only "stated".
        public = (await client.get(f"/v1/experts/{actor.account.id}")).json()
        assert public["orcid_proved"] == orcid.orcid
        profile = await client.get(f"/experts/{actor.account.id}")
        assert f'{orcid.orcid}</a> <span class="ok">proved through ORCID sign-in' in profile.text

    async def test_state_of_another_session_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, orcid: OrcidServer
    ) -> None:
        victim = create_actor(runtime, role="expert", password=PASSWORD)
        await sign_in(client, victim.account.email)
        # An attacker's own callback URL (their code, their state) sent to the victim.
        forged = await client.get(
            "/account/orcid/callback", params={"code": "abc123", "state": "attackers-state"}
        )
        assert forged.status_code == 400
        assert "state does not match" in forged.text
        assert orcid.token_requests == []
        me = (await client.get("/v1/me", headers=victim.headers)).json()
        assert me["orcid"] is None

    async def test_id_proved_by_another_account_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        first = create_actor(runtime, role="expert", password=PASSWORD)
        second = create_actor(runtime, role="expert", password=PASSWORD)
        await sign_in(client, first.account.email)
        assert (await connect_orcid(client)).status_code == 303
        await client.post("/logout")
        await sign_in(client, second.account.email)
        taken = await connect_orcid(client)
        assert taken.status_code == 409
        assert "already connected to another Vouch account" in taken.text
        me = (await client.get("/v1/me", headers=second.headers)).json()
        assert me["orcid"] is None

    async def test_button_is_hidden_without_a_client_id(
        self, settings: Settings, embedder: Embedder
    ) -> None:
        plain = settings.model_copy(update={"orcid": OrcidSettings()})
        runtime = Runtime(plain, embedder=embedder)
        actor = create_actor(runtime, role="expert", password=PASSWORD)
        app = create_app(plain, runtime=runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as web:
            page_forms_send_their_token(web)
            await sign_in(web, actor.account.email)
            page = await web.get("/account")
            assert page.status_code == 200
            assert "Connect ORCID iD" not in page.text
            assert (await web.post("/account/orcid")).status_code == 404
        runtime.close()


class TestSuspension:
    async def test_suspended_account_cannot_sign_in_or_use_keys(
        self, client: httpx.AsyncClient, runtime: Runtime, admin: Actor
    ) -> None:
        actor = create_actor(runtime, role="client", password=PASSWORD)
        await sign_in(client, actor.account.email)
        assert (await client.get("/account")).status_code == 200

        suspended = await client.patch(
            f"/v1/admin/accounts/{actor.account.id}",
            json={"suspended": True},
            headers=admin.headers,
        )
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["suspended_at"] is not None
        api = await client.get("/v1/me", headers=actor.headers)
        assert api.status_code == 403
        assert "this account is suspended" in api.json()["detail"]
        assert (await client.get("/account")).status_code == 303  # the session ended
        login = await sign_in(client, actor.account.email)
        assert login.status_code == 403
        assert "this account is suspended" in login.text

        await client.patch(
            f"/v1/admin/accounts/{actor.account.id}",
            json={"suspended": False},
            headers=admin.headers,
        )
        assert (await client.get("/v1/me", headers=actor.headers)).status_code == 200
        assert (await sign_in(client, actor.account.email)).status_code == 303

    async def test_suspended_account_gets_no_reset_mail(
        self, client: httpx.AsyncClient, runtime: Runtime, admin: Actor, smtp: SmtpServer
    ) -> None:
        actor = create_actor(runtime, role="client", password=PASSWORD)
        await client.patch(
            f"/v1/admin/accounts/{actor.account.id}",
            json={"suspended": True},
            headers=admin.headers,
        )
        answer = await client.post("/v1/password-reset", json={"email": actor.account.email})
        assert answer.json()["detail"] == identity.RESET_SENT
        assert smtp.messages == []


@pytest.mark.both_databases
class TestAdminAccounts:
    async def test_api_searches_pages_and_changes_roles(
        self, client: httpx.AsyncClient, runtime: Runtime, admin: Actor
    ) -> None:
        for n in range(3):
            create_actor(runtime, role="client", email=f"findme{n}@example.com")
        found = await client.get(
            "/v1/admin/accounts", params={"q": "FINDME", "limit": 2}, headers=admin.headers
        )
        assert found.status_code == 200
        assert found.headers["x-total-count"] == "3"
        assert [a["email"] for a in found.json()] == ["findme2@example.com", "findme1@example.com"]
        rest = await client.get(
            "/v1/admin/accounts", params={"q": "findme", "offset": 2}, headers=admin.headers
        )
        assert [a["email"] for a in rest.json()] == ["findme0@example.com"]
        wild = await client.get("/v1/admin/accounts", params={"q": "%"}, headers=admin.headers)
        assert wild.json() == []

        target = found.json()[0]["id"]
        changed = await client.patch(
            f"/v1/admin/accounts/{target}", json={"role": "expert"}, headers=admin.headers
        )
        assert changed.json()["role"] == "expert"
        own = await client.patch(
            f"/v1/admin/accounts/{admin.account.id}", json={"role": "client"}, headers=admin.headers
        )
        assert own.status_code == 403
        missing = await client.patch(
            "/v1/admin/accounts/acc_nothing", json={"suspended": True}, headers=admin.headers
        )
        assert missing.status_code == 404

    async def test_non_admins_are_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        expert = create_actor(runtime, role="expert", password=PASSWORD)
        patched = await client.patch(
            f"/v1/admin/accounts/{client_user.account.id}",
            json={"suspended": True},
            headers=expert.headers,
        )
        assert patched.status_code == 403
        await sign_in(client, expert.account.email)
        assert (await client.get("/admin/accounts")).status_code == 403
        posted = await client.post(
            f"/admin/accounts/{client_user.account.id}", data={"action": "suspend"}
        )
        assert posted.status_code == 403
        me = await client.get("/v1/me", headers=client_user.headers)
        assert me.json()["suspended_at"] is None

    async def test_page_lists_searches_suspends_and_changes_roles(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        admin = create_actor(runtime, role="admin", password=PASSWORD)
        target = create_actor(runtime, role="client", email="target@example.com")
        create_actor(runtime, role="expert", email="bystander@example.com")
        await sign_in(client, admin.account.email)

        listed = await client.get("/admin/accounts")
        assert listed.status_code == 200
        assert "target@example.com" in listed.text
        assert "bystander@example.com" in listed.text
        searched = await client.get("/admin/accounts", params={"q": "target"})
        assert "target@example.com" in searched.text
        assert "bystander@example.com" not in searched.text
        assert "1 account matching" in searched.text

        suspended = await client.post(
            f"/admin/accounts/{target.account.id}", data={"action": "suspend", "q": "target"}
        )
        assert "target@example.com is suspended." in suspended.text
        assert (await client.get("/v1/me", headers=target.headers)).status_code == 403
        promoted = await client.post(
            f"/admin/accounts/{target.account.id}", data={"action": "role", "role": "expert"}
        )
        assert "target@example.com is now expert." in promoted.text
        own = await client.post(
            f"/admin/accounts/{admin.account.id}", data={"action": "role", "role": "client"}
        )
        assert own.status_code == 403
        assert "your own account" in own.text
