"""Errors of the billing package."""

from core.errors import Conflict, Forbidden, InvalidInput, NotFound, VouchError


class PaymentRequired(VouchError):
    """Not enough credits for the price, and no subscription or trial question left."""

    status_code = 402


class SubscriptionRequired(Forbidden):
    """The asset is sold by subscription only, or the subscription's questions are used up."""


class PassagesNotSold(Forbidden):
    """The asset's plan does not sell its passages to clients: they may ask it instead."""


class InvalidPlan(InvalidInput):
    pass


class InvalidAmount(InvalidInput):
    pass


class ChargeNotFound(NotFound):
    pass


class ChargeSettled(Conflict):
    """The charge was released or refunded already, or is disputed."""


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key was sent with a different request."""


class AlreadySubscribed(Conflict):
    pass


class NoMonthlyPlan(Conflict):
    """The asset has no monthly plan to subscribe to: it is sold per question."""


class PaymentsNotConfigured(Conflict):
    """Stripe is not configured: credits are granted by an admin and payouts stay pending."""


class WebhookInvalid(InvalidInput):
    """A webhook with a bad signature or body; nothing is stored."""

    status_code = 400


class GatewayError(VouchError):
    """Stripe refused or could not be reached."""

    status_code = 502


class GatewayUnavailable(GatewayError):
    """Stripe could not be reached or failed on its side, so whether the request took effect is
    unknown: retry it with the same idempotency key rather than treat it as refused."""


class LedgerUnbalanced(VouchError):
    """A bug: a movement that does not balance is never written."""
