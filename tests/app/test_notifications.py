"""Notifications: the API, the page, and webhooks POSTed to a real receiver on 127.0.0.1, signed
and retried, on both databases; webhook URLs on private addresses refused unless allowed."""

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from app.models import WebhookDelivery, WebhookEndpoint
from app.notifications import notify, pinned
from app.runtime import Runtime
from core.config import NotificationSettings, QueueSettings, Settings
from core.db import session_scope
from tests.factories import Actor
from tests.servers import free_port, wait_for, webhook_receiver

PASSWORD = "correct-horse"


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        queue=QueueSettings(immediate=True),
        # Short waits, so that retries happen within a test; the receiver is on 127.0.0.1.
        notifications=NotificationSettings(
            webhook_attempts=3,
            webhook_backoff_seconds=0.05,
            webhook_timeout_seconds=5,
            webhook_private_targets=True,
        ),
    )


def _notify(runtime: Runtime, actor: Actor, message: str = "The expert approved an answer.") -> str:
    with session_scope(runtime.engine) as session:
        note = notify(
            session,
            runtime,
            account_id=actor.account.id,
            kind="review.approved",
            message=message,
            data={"consultation_id": "con_test", "status": "final"},
        )
    return note.id


def _deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with session_scope(runtime.engine) as session:
        return list(session.exec(select(WebhookDelivery)))


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _set_webhook(client: httpx.AsyncClient, actor: Actor, url: str) -> str:
    response = await client.put("/v1/account/webhook", json={"url": url}, headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url
    secret: str = response.json()["secret"]
    return secret


@pytest.mark.both_databases
class TestWebhookDelivery:
    async def test_delivered_signed(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        with webhook_receiver() as receiver:
            secret = await _set_webhook(client, client_user, receiver.url)
            note_id = _notify(runtime, client_user)

        ((headers, body),) = receiver.received
        headers = {k.lower(): v for k, v in headers.items()}
        assert headers["content-type"] == "application/json"
        assert headers["x-vouch-event"] == "review.approved"
        assert headers["x-vouch-signature"] == _signed(secret, body)
        event = json.loads(body)
        assert event["id"] == note_id
        assert event["type"] == "review.approved"
        assert event["message"] == "The expert approved an answer."
        assert event["data"] == {"consultation_id": "con_test", "status": "final"}
        assert event["created"].startswith("20")

        shown = await client.get("/v1/account/webhook", headers=client_user.headers)
        assert shown.status_code == 200
        assert "secret" not in shown.text
        assert secret not in shown.text
        (delivery,) = shown.json()["deliveries"]
        assert delivery["id"] == headers["x-vouch-delivery"]
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
            "delivered",
            1,
            200,
        )
        assert delivery["kind"] == "review.approved"
        assert delivery["delivered_at"] is not None

    async def test_retried_after_server_error(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        with webhook_receiver(statuses=[500]) as receiver:
            secret = await _set_webhook(client, client_user, receiver.url)
            _notify(runtime, client_user)

        first, second = receiver.received
        assert first[1] == second[1]  # the same signed body, twice
        assert first[0]["X-Vouch-Delivery"] == second[0]["X-Vouch-Delivery"]
        assert second[0]["X-Vouch-Signature"] == _signed(secret, second[1])
        (delivery,) = _deliveries(runtime)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 2, 200)
        assert delivery.last_error is None

    async def test_failed_after_last_attempt(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        with webhook_receiver(statuses=[503, 503, 503, 503]) as receiver:
            await _set_webhook(client, client_user, receiver.url)
            _notify(runtime, client_user)
        assert len(receiver.received) == 3  # webhook_attempts, then it stops
        (delivery,) = _deliveries(runtime)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 3, 503)
        assert delivery.last_error == "HTTP 503"

        # Nobody listening: a connection error is recorded without a status.
        await _set_webhook(client, client_user, f"http://127.0.0.1:{free_port()}/hook")
        _notify(runtime, client_user)
        shown = (await client.get("/v1/account/webhook", headers=client_user.headers)).json()
        latest = shown["deliveries"][0]
        assert (latest["status"], latest["attempts"], latest["last_status"]) == ("failed", 3, None)
        assert latest["last_error"].startswith("ConnectError")

    def test_retried_by_the_queue_consumer(
        self, live_server: tuple[str, Runtime], client_user: Actor
    ) -> None:
        """The production path: a real consumer runs the task and the scheduled retry."""
        base, live = live_server
        with webhook_receiver(statuses=[500]) as receiver, httpx.Client(base_url=base) as http:
            response = http.put(
                "/v1/account/webhook", json={"url": receiver.url}, headers=client_user.headers
            )
            assert response.status_code == 200, response.text
            secret = response.json()["secret"]
            _notify(live, client_user)

            def delivered() -> bool:
                return [d.status for d in _deliveries(live)] == ["delivered"]

            wait_for(delivered, timeout=60)
        assert len(receiver.received) == 2
        headers, body = receiver.received[1]
        assert headers["X-Vouch-Signature"] == _signed(secret, body)
        (delivery,) = _deliveries(live)
        assert (delivery.attempts, delivery.last_status) == (2, 200)


class TestWebhookEndpoint:
    async def test_bad_url_rejected(self, client: httpx.AsyncClient, client_user: Actor) -> None:
        for url in ["ftp://example.com/x", "example.com/hook", "javascript:alert(1)", "http://"]:
            response = await client.put(
                "/v1/account/webhook", json={"url": url}, headers=client_user.headers
            )
            assert response.status_code == 422, url
            assert response.json()["error"] == "InvalidWebhookUrl"
        missing = await client.get("/v1/account/webhook", headers=client_user.headers)
        assert missing.status_code == 404

    async def test_rotated_and_removed(
        self, client: httpx.AsyncClient, runtime: Runtime, expert: Actor
    ) -> None:
        """Any role may have a webhook; a new PUT makes a new secret; DELETE stops deliveries."""
        with webhook_receiver() as receiver:
            first = await _set_webhook(client, expert, receiver.url)
            second = await _set_webhook(client, expert, receiver.url)
            assert first != second
            _notify(runtime, expert)
            assert receiver.received[0][0]["X-Vouch-Signature"] == _signed(
                second, receiver.received[0][1]
            )

            removed = await client.delete("/v1/account/webhook", headers=expert.headers)
            assert removed.status_code == 204
            _notify(runtime, expert)
            assert len(receiver.received) == 1
        assert len(_deliveries(runtime)) == 1
        gone = await client.get("/v1/account/webhook", headers=expert.headers)
        assert gone.status_code == 404
        again = await client.delete("/v1/account/webhook", headers=expert.headers)
        assert again.status_code == 404


class TestWebhookTargets:
    """With the default settings a webhook cannot reach the server's own network."""

    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str | None) -> Settings:
        return Settings(
            environment="test",
            data_dir=tmp_path,
            database_url=database_url,
            queue=QueueSettings(immediate=True),
            notifications=NotificationSettings(webhook_attempts=2, webhook_backoff_seconds=0.05),
        )

    PRIVATE = (
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "https://api.localhost/hook",
        "http://[::1]:8080/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://2130706433/hook",  # 127.0.0.1 written as one number
        "http://0x7f.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0:8000/hook",
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a00:5]/hook",  # NAT64 of 10.0.0.5
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[::127.0.0.1]/hook",  # IPv4-compatible
        "http://[64:ff9b:1::1]/hook",  # NAT64 for local use
    )

    async def test_private_addresses_refused(
        self, client: httpx.AsyncClient, client_user: Actor
    ) -> None:
        public = "https://hooks.example.com/vouch"
        await _set_webhook(client, client_user, public)  # a name: not looked up until delivery
        for url in self.PRIVATE:
            response = await client.put(
                "/v1/account/webhook", json={"url": url}, headers=client_user.headers
            )
            assert response.status_code == 422, url
            assert response.json()["error"] == "InvalidWebhookUrl"
            assert "a webhook must reach a public host" in response.json()["detail"], url
        shown = await client.get("/v1/account/webhook", headers=client_user.headers)
        assert shown.json()["url"] == public  # the refused URLs changed nothing
        # A public IPv4 address inside an IPv6 one is public: NAT64 of 8.8.8.8.
        await _set_webhook(client, client_user, "http://[64:ff9b::808:808]/hook")

        await client.post("/login", data={"email": client_user.account.email, "password": PASSWORD})
        page = await client.post("/notifications/webhook", data={"url": self.PRIVATE[6]})
        assert page.status_code == 422
        assert "169.254.169.254 is not a public address" in page.text

    def test_delivery_refused_to_a_private_address(
        self, runtime: Runtime, client_user: Actor
    ) -> None:
        """A URL stored while private targets were allowed, or a name that resolves to a private
        address: each delivery looks the host up and refuses to connect."""
        with webhook_receiver() as receiver:
            with session_scope(runtime.engine) as session:
                session.add(
                    WebhookEndpoint(account_id=client_user.account.id, url=receiver.url, secret="s")
                )
            _notify(runtime, client_user)
        assert receiver.received == []
        (delivery,) = _deliveries(runtime)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 2, None)
        assert delivery.last_error == (
            "refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"
        )


def test_a_checked_address_is_the_one_connected_to() -> None:
    """A plain-http delivery goes to the address that passed the check, under its own Host."""
    assert pinned("http://hook:pw@hooks.example.com:8080/v?x=1", "93.184.216.34") == (
        "http://hook:pw@93.184.216.34:8080/v?x=1",
        "hooks.example.com:8080",
    )
    assert pinned("http://hooks.example.com/v", "2606:2800:220:1::1") == (
        "http://[2606:2800:220:1::1]/v",
        "hooks.example.com",
    )
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        url, host = pinned(f"http://hooks.example.com:{port}/hooks/vouch", "127.0.0.1")
        assert httpx.post(url, content=b"{}", headers={"Host": host}).status_code == 200
    assert receiver.received[0][0]["Host"] == f"hooks.example.com:{port}"


class TestNotificationsApi:
    async def test_unread_filter_and_read_all(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        ids = [_notify(runtime, client_user, message=f"note {n}") for n in range(3)]
        listed = (await client.get("/v1/notifications", headers=client_user.headers)).json()
        assert [n["id"] for n in listed] == ids[::-1]  # newest first
        assert listed[0]["kind"] == "review.approved"
        assert listed[0]["data"] == {"consultation_id": "con_test", "status": "final"}

        read = await client.post(f"/v1/notifications/{ids[1]}/read", headers=client_user.headers)
        assert read.status_code == 200
        assert read.json()["read_at"] is not None
        unread = await client.get(
            "/v1/notifications", params={"unread": "true"}, headers=client_user.headers
        )
        assert [n["id"] for n in unread.json()] == [ids[2], ids[0]]

        marked = await client.post("/v1/notifications/read-all", headers=client_user.headers)
        assert marked.json() == {"marked": 2}
        unread = await client.get(
            "/v1/notifications", params={"unread": "true"}, headers=client_user.headers
        )
        assert unread.json() == []
        everything = await client.get("/v1/notifications", headers=client_user.headers)
        assert len(everything.json()) == 3

    async def test_private_to_their_account(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        client_user: Actor,
        client_second: Actor,
    ) -> None:
        note_id = _notify(runtime, client_user)
        theirs = await client.get("/v1/notifications", headers=client_second.headers)
        assert theirs.json() == []
        refused = await client.post(
            f"/v1/notifications/{note_id}/read", headers=client_second.headers
        )
        assert refused.status_code == 404
        assert refused.json()["error"] == "NotificationNotFound"
        marked = await client.post("/v1/notifications/read-all", headers=client_second.headers)
        assert marked.json() == {"marked": 0}
        mine = (
            await client.get(
                "/v1/notifications", params={"unread": "true"}, headers=client_user.headers
            )
        ).json()
        assert [n["id"] for n in mine] == [note_id]
        anonymous = await client.get("/v1/notifications")
        assert anonymous.status_code == 401


class TestNotificationsPage:
    async def test_page_lists_and_marks_read(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        assert (await client.get("/notifications")).status_code == 303  # to sign in
        first = _notify(runtime, client_user, message="Your answer was corrected.")
        _notify(runtime, client_user, message="Your answer was approved.")
        signed_in = await client.post(
            "/login", data={"email": client_user.account.email, "password": PASSWORD}
        )
        assert signed_in.status_code == 303

        page = await client.get("/notifications")
        assert page.status_code == 200
        assert "Your answer was corrected." in page.text
        assert "Your answer was approved." in page.text
        assert 'Notifications <span class="tag">2</span>' in page.text  # the nav's count
        assert 'Notifications <span class="tag">2</span>' in (await client.get("/keys")).text

        read = await client.post(f"/notifications/{first}/read")
        assert read.status_code == 303
        page = await client.get("/notifications")
        assert 'Notifications <span class="tag">1</span>' in page.text
        await client.post("/notifications/read-all")
        page = await client.get("/notifications")
        assert 'id="nav-notifications">Notifications</a>' in page.text
        assert "Mark as read" not in page.text

    async def test_page_sets_webhook(
        self, client: httpx.AsyncClient, runtime: Runtime, client_user: Actor
    ) -> None:
        await client.post("/login", data={"email": client_user.account.email, "password": PASSWORD})
        bad = await client.post("/notifications/webhook", data={"url": "gopher://example.com"})
        assert bad.status_code == 422
        assert "http:// or https://" in bad.text

        with webhook_receiver() as receiver:
            made = await client.post("/notifications/webhook", data={"url": receiver.url})
            assert made.status_code == 201
            secret = made.text.split('id="webhook-secret">')[1].split("<")[0]
            assert secret.startswith("whsec_")
            _notify(runtime, client_user)
        headers, body = receiver.received[0]
        assert headers["X-Vouch-Signature"] == _signed(secret, body)

        page = await client.get("/notifications")
        assert secret not in page.text  # shown once
        assert receiver.url in page.text
        assert "delivered" in page.text
        removed = await client.post("/notifications/webhook/delete")
        assert removed.status_code == 303
        assert "Recent deliveries" not in (await client.get("/notifications")).text
