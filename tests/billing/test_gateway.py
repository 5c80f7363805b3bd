"""StripeGateway against localstripe (a real Stripe-compatible server), and webhook signatures."""

import json
import time
from collections.abc import Iterator

import pytest
import stripe
from pydantic import SecretStr

from billing.errors import GatewayError, GatewayUnavailable, WebhookInvalid
from billing.gateway import StripeGateway, build_gateway, verify_event
from core.config import BillingSettings
from tests.servers import free_port
from tests.stripe_fakes import SECRET_KEY, WEBHOOK_SECRET, event, localstripe_server, sign


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    with localstripe_server() as url:
        yield url


def _settings(api_base: str, *, key: str = SECRET_KEY) -> BillingSettings:
    return BillingSettings(
        stripe_secret_key=SecretStr(key),
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
        stripe_api_base=api_base,
    )


@pytest.fixture
def gateway(localstripe: str) -> StripeGateway:
    return StripeGateway(_settings(localstripe))


@pytest.fixture
def stripe_client(localstripe: str) -> stripe.StripeClient:
    """The stripe library used directly, to set up what the gateway itself never creates."""
    return stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": localstripe}, max_network_retries=0
    )


def test_build_gateway_is_none_without_secret_key() -> None:
    assert build_gateway(BillingSettings()) is None
    assert isinstance(build_gateway(_settings("http://127.0.0.1:1")), StripeGateway)


def test_create_customer_at_stripe(
    gateway: StripeGateway, stripe_client: stripe.StripeClient
) -> None:
    customer_id = gateway.create_customer(email="ada@example.com", name="Ada", account_id="acc_123")
    assert customer_id.startswith("cus_")
    customer = stripe_client.v1.customers.retrieve(customer_id)
    assert (customer.email, customer.name) == ("ada@example.com", "Ada")
    assert customer.metadata is not None
    assert customer.metadata["account_id"] == "acc_123"


def test_cancel_subscription_at_stripe(
    gateway: StripeGateway, stripe_client: stripe.StripeClient
) -> None:
    customer_id = gateway.create_customer(email="bo@example.com", name="Bo", account_id="acc_9")
    product = stripe_client.v1.products.create(params={"name": "Garden handbook"})
    plan = stripe_client.v1.plans.create(
        params={"product": product.id, "amount": 1500, "currency": "usd", "interval": "month"}
    )
    card = stripe_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    stripe_client.v1.payment_methods.attach(card.id, params={"customer": customer_id})
    stripe_client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    sub = stripe_client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"plan": plan.id}]}
    )
    assert sub.status == "active"

    gateway.cancel_subscription(sub.id)

    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "canceled"


class TestErrors:
    def test_stripe_refusal_becomes_gateway_error(self, gateway: StripeGateway) -> None:
        with pytest.raises(GatewayError) as caught:
            gateway.cancel_subscription("sub_missing")
        assert caught.value.status_code == 502
        assert "Stripe refused to cancel subscription sub_missing" in caught.value.message
        assert "HTTP 404" in caught.value.message
        # A refusal is final: nothing was done, unlike an unreachable Stripe.
        assert not isinstance(caught.value, GatewayUnavailable)

    def test_unsupported_endpoint_becomes_gateway_error(self, gateway: StripeGateway) -> None:
        # localstripe has no Connect: Stripe's error path all the same.
        with pytest.raises(GatewayError, match="Stripe refused to transfer 100 usd"):
            gateway.create_transfer(
                amount=100, currency="usd", destination="acct_1", idempotency_key="payout-1"
            )

    def test_rejected_key_names_the_setting(self, localstripe: str) -> None:
        gateway = StripeGateway(_settings(localstripe, key="rk_bad"))
        with pytest.raises(GatewayError, match="VOUCH_BILLING__STRIPE_SECRET_KEY"):
            gateway.create_customer(email="c@example.com", name="C", account_id="acc_c")

    def test_unreachable_stripe_says_so(self) -> None:
        gateway = StripeGateway(_settings(f"http://127.0.0.1:{free_port()}"))
        # Unavailable, not refused: the request's outcome is unknown, so it is retried.
        with pytest.raises(
            GatewayUnavailable, match=r"could not reach Stripe at http://127\.0\.0\.1"
        ):
            gateway.create_customer(email="d@example.com", name="D", account_id="acc_d")


class TestVerifyEvent:
    def _payload(self) -> bytes:
        return json.dumps(event("customer.created", {"id": "cus_1"})).encode()

    def test_signed_event_is_returned_as_a_dict(self) -> None:
        payload = self._payload()
        parsed = verify_event(payload, sign(payload), WEBHOOK_SECRET)
        assert parsed == json.loads(payload)

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "t=1,v1=deadbeef",
            sign(b"something else"),
            sign(b"", secret="whsec_other"),
        ],
        # Named, not shown: a signature holds the time, and xdist workers must agree on ids.
        ids=["missing", "empty", "malformed", "other-payload", "other-secret"],
    )
    def test_bad_signature_is_refused(self, header: str | None) -> None:
        payload = self._payload()
        with pytest.raises(WebhookInvalid):
            verify_event(payload, header, WEBHOOK_SECRET)

    def test_wrong_secret_is_refused(self) -> None:
        payload = self._payload()
        with pytest.raises(WebhookInvalid, match="signature"):
            verify_event(payload, sign(payload, secret="whsec_other"), WEBHOOK_SECRET)

    def test_stale_timestamp_is_refused(self) -> None:
        payload = self._payload()
        old = sign(payload, timestamp=int(time.time()) - 3600)
        with pytest.raises(WebhookInvalid):
            verify_event(payload, old, WEBHOOK_SECRET)

    def test_signed_body_that_is_not_an_event_is_refused(self) -> None:
        payload = b'{"object": "event", "id": "evt_1"}'
        with pytest.raises(WebhookInvalid, match="lacks"):
            verify_event(payload, sign(payload), WEBHOOK_SECRET)

    def test_the_connect_endpoints_secret_is_accepted_too(self) -> None:
        """Stripe signs Connect events with their endpoint's own secret; both are tried."""
        settings = _settings("http://127.0.0.1:9")
        settings.stripe_connect_webhook_secret = SecretStr("whsec_connect")
        gateway = StripeGateway(settings)
        payload = json.dumps(event("account.updated", {"id": "acct_1"})).encode()
        for secret in (WEBHOOK_SECRET, "whsec_connect"):
            signed = sign(payload, secret=secret)
            assert gateway.parse_event(payload, signed)["type"] == "account.updated"
        with pytest.raises(WebhookInvalid, match="signature does not match"):
            gateway.parse_event(payload, sign(payload, secret="whsec_other"))
        # Without the Connect secret configured, its events are refused.
        alone = StripeGateway(_settings("http://127.0.0.1:9"))
        with pytest.raises(WebhookInvalid, match="signature does not match"):
            alone.parse_event(payload, sign(payload, secret="whsec_connect"))

    def test_missing_secret_names_the_setting(self) -> None:
        payload = self._payload()
        with pytest.raises(WebhookInvalid, match="STRIPE_WEBHOOK_SECRET"):
            verify_event(payload, sign(payload), "")
