"""Stripe for the tests: an in-memory Gateway, events in Stripe's shape, signing, localstripe.

localstripe (a real Stripe-compatible server) serves customers and subscriptions but not
Checkout or Connect, so the app's tests inject ``FakeGateway``, which keeps what it created and
answers like Stripe, including idempotency keys. Webhooks are verified for real: the fake's
``parse_event`` is the production ``verify_event``, and the tests sign events the way Stripe does.
"""

import hashlib
import hmac
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from billing.errors import GatewayError, GatewayUnavailable
from billing.gateway import CheckoutLink, CheckoutMode, verify_event
from core.config import BillingSettings, Settings
from tests.servers import free_port, wait_for

WEBHOOK_SECRET = "whsec_test_vouch"
SECRET_KEY = "sk_test_vouch"
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_test{next(_ids):06d}"


def stripe_settings(settings: Settings, *, api_base: str | None = None) -> Settings:
    """``settings`` with Stripe keys (and optionally a Stripe-compatible server) configured."""
    billing = BillingSettings(
        stripe_secret_key=SecretStr(SECRET_KEY),
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
        stripe_api_base=api_base,
        public_url="http://vouch.test",
    )
    return settings.model_copy(update={"billing": billing})


@dataclass
class Call:
    method: str
    kwargs: dict[str, Any]


@dataclass
class FakeGateway:
    """The Gateway protocol in memory. Set ``failures[method] = message`` to make a method raise
    GatewayError (e.g. ``failures["create_transfer"] = "insufficient funds"``). Add a method to
    ``lost_responses`` to make it do its work and then raise GatewayUnavailable, as when the
    connection drops before Stripe's answer arrives."""

    webhook_secret: str = WEBHOOK_SECRET
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    lost_responses: set[str] = field(default_factory=set)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    connect_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    canceled: list[str] = field(default_factory=list)
    # idempotency key -> the id it created, as Stripe replays a request sent with the same key
    _keys: dict[str, str] = field(default_factory=dict)

    def _call(self, method: str, **kwargs: Any) -> None:
        self.calls.append(Call(method, kwargs))
        if method in self.failures:
            raise GatewayError(f"Stripe refused to {method}: {self.failures[method]}")

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.kwargs for c in self.calls if c.method == method]

    def _create(self, store: dict[str, dict[str, Any]], prefix: str, key: str, **obj: Any) -> str:
        if key in self._keys:
            return self._keys[key]
        new = _id(prefix)
        store[new] = {"id": new, **obj}
        self._keys[key] = new
        return new

    def create_customer(self, *, email: str, name: str, account_id: str) -> str:
        self._call("create_customer", email=email, name=name, account_id=account_id)
        return self._create(
            self.customers,
            "cus",
            f"customer-{account_id}",
            email=email,
            name=name,
            metadata={"account_id": account_id},
        )

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
        kwargs = {
            "mode": mode,
            "customer": customer,
            "amount": amount,
            "currency": currency,
            "product_name": product_name,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
        }
        self._call("create_checkout_session", idempotency_key=idempotency_key, **kwargs)
        if customer not in self.customers:
            raise GatewayError(f"Stripe refused to start a checkout: no such customer {customer}")
        session_id = self._create(self.checkouts, "cs", idempotency_key, **kwargs)
        return CheckoutLink(session_id, f"https://checkout.stripe.test/c/pay/{session_id}")

    def cancel_subscription(self, stripe_subscription_id: str) -> None:
        self._call("cancel_subscription", stripe_subscription_id=stripe_subscription_id)
        self.canceled.append(stripe_subscription_id)

    def create_connect_account(self, *, email: str, account_id: str, idempotency_key: str) -> str:
        self._call(
            "create_connect_account",
            email=email,
            account_id=account_id,
            idempotency_key=idempotency_key,
        )
        return self._create(
            self.connect_accounts,
            "acct",
            idempotency_key,
            email=email,
            metadata={"account_id": account_id},
        )

    def create_account_link(self, *, account: str, refresh_url: str, return_url: str) -> str:
        self._call(
            "create_account_link", account=account, refresh_url=refresh_url, return_url=return_url
        )
        if account not in self.connect_accounts:
            raise GatewayError(f"Stripe refused to create an onboarding link: no account {account}")
        return f"https://connect.stripe.test/setup/e/{account}/{_id('link')}"

    def create_transfer(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> str:
        self._call(
            "create_transfer",
            amount=amount,
            currency=currency,
            destination=destination,
            idempotency_key=idempotency_key,
        )
        transfer = self._create(
            self.transfers,
            "tr",
            idempotency_key,
            amount=amount,
            currency=currency,
            destination=destination,
        )
        if "create_transfer" in self.lost_responses:
            raise GatewayUnavailable("could not reach Stripe to create_transfer; try again")
        return transfer

    def parse_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        return verify_event(payload, signature, self.webhook_secret)


# Events in Stripe's shape (API version 2025-08-27.basil)


def event(type_: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": _id("evt"),
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created if created is not None else int(time.time()),
        "type": type_,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def checkout_session(
    *,
    session_id: str | None = None,
    metadata: dict[str, str],
    amount: int,
    currency: str = "usd",
    mode: str = "payment",
    payment_intent: str | None = None,
    subscription: str | None = None,
    payment_status: str = "paid",
) -> dict[str, Any]:
    return {
        "id": session_id or _id("cs"),
        "object": "checkout.session",
        "mode": mode,
        "status": "complete",
        "payment_status": payment_status,
        "amount_total": amount,
        "currency": currency,
        "customer": _id("cus"),
        "metadata": metadata,
        "payment_intent": (payment_intent or _id("pi")) if mode == "payment" else None,
        "subscription": subscription if mode == "subscription" else None,
    }


def invoice(
    *,
    subscription: str,
    metadata: dict[str, str],
    amount_paid: int,
    period: tuple[int, int],
    currency: str = "usd",
    invoice_id: str | None = None,
    status: str = "paid",
) -> dict[str, Any]:
    start, end = period
    return {
        "id": invoice_id or _id("in"),
        "object": "invoice",
        "status": status,
        "amount_paid": amount_paid if status == "paid" else 0,
        "amount_due": amount_paid,
        "currency": currency,
        "billing_reason": "subscription_cycle",
        # The invoice's own period is the previous one (for usage); the line's is paid for.
        "period_start": start - 30 * 86400,
        "period_end": start,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription, "metadata": metadata},
        },
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": _id("il"),
                    "object": "line_item",
                    "amount": amount_paid,
                    "currency": currency,
                    "period": {"start": start, "end": end},
                }
            ],
        },
    }


def subscription(
    *, subscription_id: str, metadata: dict[str, str], status: str, period: tuple[int, int]
) -> dict[str, Any]:
    start, end = period
    return {
        "id": subscription_id,
        "object": "subscription",
        "status": status,
        "metadata": metadata,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": _id("si"),
                    "object": "subscription_item",
                    "current_period_start": start,
                    "current_period_end": end,
                }
            ],
        },
    }


def charge(
    *,
    metadata: dict[str, str],
    amount: int,
    amount_refunded: int,
    payment_intent: str,
    charge_id: str,
    currency: str = "usd",
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded == amount,
        "currency": currency,
        "payment_intent": payment_intent,
        "metadata": metadata,
    }


def connect_account(*, account_id: str, metadata: dict[str, str], enabled: bool) -> dict[str, Any]:
    return {
        "id": account_id,
        "object": "account",
        "type": "express",
        "payouts_enabled": enabled,
        "charges_enabled": False,
        "details_submitted": enabled,
        "metadata": metadata,
    }


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header: HMAC-SHA256 of ``"{t}.{payload}"``."""
    t = timestamp if timestamp is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


async def post_event(
    client: httpx.AsyncClient, evt: dict[str, Any], *, secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    payload = json.dumps(evt).encode()
    return await client.post(
        "/v1/stripe/webhook",
        content=payload,
        headers={
            "Stripe-Signature": sign(payload, secret=secret),
            "Content-Type": "application/json",
        },
    )


# localstripe, for StripeGateway

# Run in-process state only: localstripe otherwise pickles its store to /tmp after each write.
_LOCALSTRIPE = """
import sys
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
sys.argv = ["localstripe", "--port", sys.argv[1], "--from-scratch"]
server.start()
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def localstripe_server() -> Iterator[str]:
    """Start localstripe on a free port; yields its base URL for ``stripe_api_base``."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCALSTRIPE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        wait_for(lambda: process.poll() is not None or _listening(port), timeout=30)
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with status {process.returncode}")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
