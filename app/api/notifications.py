"""The caller's notifications, and the webhook that receives them by POST.

Any account may have a webhook: clients hear about reviews of their answers, experts about new
answers waiting for review.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from app import notifications
from app.api.schemas import ERRORS
from app.deps import CurrentAccount, RuntimeDep, SessionDep
from app.models import Notification, WebhookDelivery

router = APIRouter(tags=["notifications"], responses={401: ERRORS[401]})


class NotificationPublic(BaseModel):
    id: str
    kind: str = Field(examples=["review.corrected"])
    text: str = Field(
        description="The notification in words",
        examples=["Your answer to 'How long does a refund take?' on Garden was corrected by Ada"],
    )
    url: str | None = Field(
        description="The page of its subject on this server (the answer, the review item, the "
        "engagement...), one you can open; null when it has none",
        examples=["/answers/con_123"],
    )
    message: str = Field(description="The same as text (kept for earlier clients)")
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, notification: Notification) -> "NotificationPublic":
        return cls.model_validate(
            {
                **notification.model_dump(),
                "text": notification.message,
                "url": notifications.link(notification),
            }
        )


class MarkedRead(BaseModel):
    marked: int = Field(description="How many notifications were unread")


class WebhookIn(BaseModel):
    url: str = Field(
        max_length=2000,
        examples=["https://example.com/hooks/vouch"],
        description="An http:// or https:// URL of a public host (not this server's network)",
        json_schema_extra={"format": "webhook-url"},
    )


class WebhookCreated(BaseModel):
    url: str
    secret: str = Field(
        description="Verifies X-Vouch-Signature (sha256=HMAC-SHA256 of the body); shown only now"
    )
    created_at: datetime


class DeliveryPublic(BaseModel):
    id: str
    notification_id: str
    kind: str
    url: str
    status: str = Field(examples=["pending", "delivered", "failed"])
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery, kind: str) -> "DeliveryPublic":
        return cls.model_validate({**delivery.model_dump(), "kind": kind})


class WebhookPublic(BaseModel):
    url: str
    created_at: datetime
    deliveries: list[DeliveryPublic] = Field(description="The latest, newest first")


@router.get("/notifications", responses={422: ERRORS[422]})
def list_notifications(
    session: SessionDep,
    account: CurrentAccount,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[NotificationPublic]:
    """The caller's notifications, newest first; only unread ones with ``unread=true``."""
    found = notifications.list_notifications(session, account=account, unread=unread, limit=limit)
    return [NotificationPublic.of(n) for n in found]


@router.post("/notifications/read-all")
def read_all(session: SessionDep, account: CurrentAccount) -> MarkedRead:
    return MarkedRead(marked=notifications.mark_all_read(session, account=account))


@router.post("/notifications/{notification_id}/read", responses={404: ERRORS[404]})
def read_one(
    session: SessionDep, account: CurrentAccount, notification_id: str
) -> NotificationPublic:
    notification = notifications.mark_read(
        session, account=account, notification_id=notification_id
    )
    return NotificationPublic.of(notification)


@router.put("/account/webhook", responses={422: ERRORS[422]})
def set_webhook(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, body: WebhookIn
) -> WebhookCreated:
    """Send notifications to ``url`` (http or https, a public host); a new secret each time,
    shown once."""
    endpoint, secret = notifications.set_webhook(
        session, account=account, url=body.url, settings=runtime.settings.notifications
    )
    return WebhookCreated(url=endpoint.url, secret=secret, created_at=endpoint.created_at)


@router.get("/account/webhook", responses={404: ERRORS[404]})
def get_webhook(session: SessionDep, account: CurrentAccount) -> WebhookPublic:
    """The webhook's URL and its latest deliveries (never the secret)."""
    endpoint = notifications.get_webhook(session, account=account)
    deliveries = notifications.recent_deliveries(session, account=account, limit=20)
    return WebhookPublic(
        url=endpoint.url,
        created_at=endpoint.created_at,
        deliveries=[DeliveryPublic.of(d, kind) for d, kind in deliveries],
    )


@router.delete(
    "/account/webhook", status_code=status.HTTP_204_NO_CONTENT, responses={404: ERRORS[404]}
)
def delete_webhook(session: SessionDep, account: CurrentAccount) -> Response:
    notifications.delete_webhook(session, account=account)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
