"""Stripe behind one small interface: the only module that imports ``stripe``.

``Gateway`` is what the rest of Vouch calls: keyword-only arguments, plain ``str``/``int``/``dict``
results, and every Stripe failure raised as ``GatewayError`` (502) with a message a person can act
on. ``StripeGateway`` implements it with ``stripe.StripeClient``; tests inject an in-memory one.
Every call that creates something at Stripe sends an idempotency key, so a retried request does
not create it twice.
"""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import stripe

from billing.errors import GatewayError, GatewayUnavailable, WebhookInvalid
from core.config import BillingSettings

CheckoutMode = Literal["payment", "subscription"]


@dataclass(frozen=True, slots=True)
class CheckoutLink:
    """A Stripe Checkout session: its id and the page the client pays on."""

    id: str
    url: str


class Gateway(Protocol):
    """What Vouch asks of Stripe. Implementations raise GatewayError on any Stripe failure."""

    def create_customer(self, *, email: str, name: str, account_id: str) -> str: ...

    def create_checkout_session(
        self,
        *,
        mode: CheckoutMode,
        customer: str,
        amount: int,
        currency: str,
        product_name: str,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> CheckoutLink: ...

    def cancel_subscription(self, stripe_subscription_id: str) -> None: ...

    def create_connect_account(
        self, *, email: str, account_id: str, idempotency_key: str
    ) -> str: ...

    def create_account_link(self, *, account: str, refresh_url: str, return_url: str) -> str: ...

    def create_transfer(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> str: ...

    def parse_event(self, payload: bytes, signature: str | None) -> dict[str, Any]: ...


def verify_event(payload: bytes, signature: str | None, *secrets: str) -> dict[str, Any]:
    """The event in a webhook body, once its ``Stripe-Signature`` header proves it came from
    Stripe (signed recently with one of ``secrets``: the platform endpoint's, and the Connect
    endpoint's when connected accounts' events go to an endpoint of their own); WebhookInvalid
    otherwise."""
    secrets = tuple(secret for secret in secrets if secret)
    if not secrets:
        raise WebhookInvalid(
            "webhooks cannot be verified: set VOUCH_BILLING__STRIPE_WEBHOOK_SECRET to the "
            "endpoint's signing secret (whsec_...)"
        )
    if not signature:
        raise WebhookInvalid("the Stripe-Signature header is missing")
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(payload, signature, secret)
            break
        except stripe.SignatureVerificationError as exc:
            mismatch = exc.user_message
        except (ValueError, UnicodeDecodeError) as exc:  # not JSON, or not a Stripe event
            raise WebhookInvalid(f"the body is not a Stripe event: {exc}") from exc
    else:
        raise WebhookInvalid(f"the Stripe signature does not match: {mismatch}")
    event = json.loads(payload)
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookInvalid("the event lacks an id, type, created time or data.object")
    return event


class StripeGateway:
    """The real Stripe API (or a Stripe-compatible server at ``stripe_api_base``)."""

    def __init__(self, settings: BillingSettings) -> None:
        base = settings.stripe_api_base
        self._where = base or "api.stripe.com"
        self._webhook_secrets = (
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_connect_webhook_secret.get_secret_value(),
        )
        self._client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            base_addresses={"api": base} if base else None,
            # A failed call surfaces as GatewayError now; the caller (or Stripe) retries.
            max_network_retries=0,
        )

    @contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        try:
            yield
        except stripe.AuthenticationError as exc:
            raise GatewayError(
                f"Stripe rejected the secret key while trying to {action}: check "
                "VOUCH_BILLING__STRIPE_SECRET_KEY"
            ) from exc
        except stripe.APIConnectionError as exc:
            # The request may have reached Stripe and taken effect before the connection failed.
            raise GatewayUnavailable(
                f"could not reach Stripe at {self._where} to {action}; try again in a moment, "
                "and check the network (or VOUCH_BILLING__STRIPE_API_BASE) if it persists"
            ) from exc
        except stripe.RateLimitError as exc:
            raise GatewayUnavailable(
                f"Stripe is rate limiting requests ({action}); try again in a minute"
            ) from exc
        except stripe.StripeError as exc:
            detail = exc.user_message or str(exc) or type(exc).__name__
            code = f", code {exc.code}" if exc.code else ""
            if exc.http_status is None or exc.http_status >= 500:
                # Stripe's own failure: its outcome is indeterminate (Stripe's advice).
                raise GatewayUnavailable(
                    f"Stripe failed to {action}: {detail} (HTTP {exc.http_status}{code})"
                ) from exc
            raise GatewayError(
                f"Stripe refused to {action}: {detail} (HTTP {exc.http_status}{code})"
            ) from exc

    def create_customer(self, *, email: str, name: str, account_id: str) -> str:
        with self._calling("create a customer"):
            customer = self._client.v1.customers.create(
                params={"email": email, "name": name, "metadata": {"account_id": account_id}},
                options={"idempotency_key": f"vouch-customer-{account_id}"},
            )
        return customer.id

    def create_checkout_session(
        self,
        *,
        mode: CheckoutMode,
        customer: str,
        amount: int,
        currency: str,
        product_name: str,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> CheckoutLink:
        with self._calling("start a checkout"):
            if mode == "subscription":
                session = self._client.v1.checkout.sessions.create(
                    params={
                        "mode": "subscription",
                        "customer": customer,
                        "line_items": [
                            {
                                "quantity": 1,
                                "price_data": {
                                    "currency": currency,
                                    "unit_amount": amount,
                                    "product_data": {"name": product_name},
                                    "recurring": {"interval": "month"},
                                },
                            }
                        ],
                        "success_url": success_url,
                        "cancel_url": cancel_url,
                        "metadata": metadata,
                        # Invoices and subscription events carry these, whatever their order.
                        "subscription_data": {"metadata": metadata},
                    },
                    options={"idempotency_key": idempotency_key},
                )
            else:
                session = self._client.v1.checkout.sessions.create(
                    params={
                        "mode": "payment",
                        "customer": customer,
                        "line_items": [
                            {
                                "quantity": 1,
                                "price_data": {
                                    "currency": currency,
                                    "unit_amount": amount,
                                    "product_data": {"name": product_name},
                                },
                            }
                        ],
                        "success_url": success_url,
                        "cancel_url": cancel_url,
                        "metadata": metadata,
                        # Stripe copies these onto the charge, which charge.refunded carries.
                        "payment_intent_data": {"metadata": metadata},
                    },
                    options={"idempotency_key": idempotency_key},
                )
        if not session.url:
            raise GatewayError(f"Stripe created checkout {session.id} without a payment page URL")
        return CheckoutLink(id=session.id, url=session.url)

    def cancel_subscription(self, stripe_subscription_id: str) -> None:
        with self._calling(f"cancel subscription {stripe_subscription_id}"):
            self._client.v1.subscriptions.cancel(stripe_subscription_id)

    def create_connect_account(self, *, email: str, account_id: str, idempotency_key: str) -> str:
        with self._calling("create a Connect account for payouts"):
            account = self._client.v1.accounts.create(
                params={
                    "type": "express",
                    "email": email,
                    "capabilities": {"transfers": {"requested": True}},
                    "metadata": {"account_id": account_id},
                },
                options={"idempotency_key": idempotency_key},
            )
        return account.id

    def create_account_link(self, *, account: str, refresh_url: str, return_url: str) -> str:
        with self._calling("create a Connect onboarding link"):
            link = self._client.v1.account_links.create(
                params={
                    "account": account,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                },
                # A link expires within minutes, so each request makes a new one.
                options={"idempotency_key": f"vouch-link-{uuid.uuid4().hex}"},
            )
        return link.url

    def create_transfer(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> str:
        with self._calling(f"transfer {amount} {currency} to {destination}"):
            transfer = self._client.v1.transfers.create(
                params={"amount": amount, "currency": currency, "destination": destination},
                options={"idempotency_key": idempotency_key},
            )
        return transfer.id

    def parse_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        return verify_event(payload, signature, *self._webhook_secrets)


def build_gateway(settings: BillingSettings) -> Gateway | None:
    """The Stripe gateway, or None when no secret key is configured (payments off)."""
    if not settings.stripe_enabled:
        return None
    return StripeGateway(settings)
