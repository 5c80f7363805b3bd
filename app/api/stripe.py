"""Paying through Stripe: Checkout for credits and subscriptions, Connect onboarding, webhooks."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from app import payments
from app.api.schemas import ERRORS, ErrorBody
from app.deps import CurrentAccount, RuntimeDep, SessionDep

router = APIRouter(tags=["payments"])
NOT_CONFIGURED = {"model": ErrorBody, "description": "Stripe is not configured on this server"}
GATEWAY = {"model": ErrorBody, "description": "Stripe refused or could not be reached"}


class CreditsCheckout(BaseModel):
    amount: int = Field(description="Minor units (cents)", examples=[2000])
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="Default: the server's currency"
    )


class CheckoutStarted(BaseModel):
    checkout_url: str = Field(description="Stripe's payment page: send the client there")


class OnboardingStarted(BaseModel):
    onboarding_url: str = Field(description="Stripe's onboarding page; it expires in minutes")


class WebhookReceived(BaseModel):
    received: bool = True
    duplicate: bool


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/billing/checkout/credits",
    responses={
        401: ERRORS[401],
        403: ERRORS[403],
        409: NOT_CONFIGURED,
        422: ERRORS[422],
        502: GATEWAY,
    },
)
def checkout_credits(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, body: CreditsCheckout
) -> CheckoutStarted:
    """Buy credits through Stripe Checkout; they are added when Stripe confirms the payment."""
    url = payments.checkout_credits(
        session, runtime, account=account, amount=body.amount, currency=body.currency
    )
    return CheckoutStarted(checkout_url=url)


@router.post(
    "/assets/{slug}/checkout",
    responses={
        401: ERRORS[401],
        403: ERRORS[403],
        404: ERRORS[404],
        409: {
            "model": ErrorBody,
            "description": "Stripe is not configured on this server, subscribed already, or "
            "the asset has no monthly plan (it is sold per question: pay with credits)",
        },
        502: GATEWAY,
    },
)
def checkout_subscription(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, slug: str
) -> CheckoutStarted:
    """Subscribe monthly to the asset's current plan through Stripe Checkout."""
    url = payments.checkout_subscription(session, runtime, account=account, slug=slug)
    return CheckoutStarted(checkout_url=url)


@router.post(
    "/billing/connect",
    responses={401: ERRORS[401], 403: ERRORS[403], 409: NOT_CONFIGURED, 502: GATEWAY},
)
def connect(session: SessionDep, runtime: RuntimeDep, account: CurrentAccount) -> OnboardingStarted:
    """Set up (or finish setting up) the expert's Stripe account that payouts go to."""
    return OnboardingStarted(
        onboarding_url=payments.connect_onboarding(session, runtime, account=account)
    )


@router.post(
    "/stripe/webhook",
    # The body is read raw: the signature covers its exact bytes.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "title": "Event"}}},
        }
    },
    responses={
        400: {"model": ErrorBody, "description": "Bad signature or body; nothing stored"},
        409: NOT_CONFIGURED,
    },
)
def stripe_webhook(
    session: SessionDep,
    runtime: RuntimeDep,
    payload: Annotated[bytes, Depends(_raw_body)],
    stripe_signature: Annotated[str | None, Header()] = None,
) -> WebhookReceived:
    """Stripe's events, verified by their signature; a replayed event changes nothing."""
    new = payments.receive_webhook(session, runtime, payload=payload, signature=stripe_signature)
    return WebhookReceived(duplicate=not new)
