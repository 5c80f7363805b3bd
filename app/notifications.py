"""Notifications: in-app messages, and for accounts with a webhook, a signed POST of each.

A delivery is a row written in the notifying transaction and a queued task started after it
commits. The task POSTs the notification as JSON, signed with HMAC-SHA256 of the exact body
bytes under the endpoint's secret; a failed attempt is recorded and tried again with
exponential backoff until the configured attempts are spent. Deliveries are at least once:
receivers should ignore an ``X-Vouch-Delivery`` they have already seen.

Webhook URLs must lead to public addresses (unless the settings allow private ones): an IP
literal is refused when the URL is set, and at each delivery the host is resolved and every
address it has must be public; a plain-http delivery then connects to the address that was
checked, so that a second lookup cannot point it elsewhere (an https one is held to its host
by the certificate).
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select, update

from app.models import Account, Notification, WebhookDelivery, WebhookEndpoint
from app.runtime import Runtime
from core.clock import utcnow
from core.config import NotificationSettings
from core.db import after_commit, session_scope
from core.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


class NotificationNotFound(NotFound):
    pass


class WebhookNotFound(NotFound):
    pass


class InvalidWebhookUrl(InvalidInput):
    pass


def notify(
    session: Session,
    runtime: Runtime,
    *,
    account_id: str,
    kind: str,
    message: str,
    data: dict[str, Any],
) -> Notification:
    """Record an in-app notification in the caller's transaction; with a webhook, queue its POST
    for after the commit."""
    notification = Notification(account_id=account_id, kind=kind, message=message, data=data)
    session.add(notification)
    session.flush()
    endpoint = session.get(WebhookEndpoint, account_id)
    if endpoint is not None:
        delivery = WebhookDelivery(
            notification_id=notification.id, url=endpoint.url, status="pending"
        )
        session.add(delivery)
        session.flush()
        after_commit(session, partial(runtime.deliver_webhook, delivery.id))
    return notification


def link(notification: Notification) -> str | None:
    """The page of the notification's subject, one its recipient can open: the answer for a
    client told of a review, the review item for its expert, the engagement for either party,
    the credentials page for their expert, an asset's gaps page for
    its weekly digest; None for a kind with no page."""
    data, kind = notification.data, notification.kind
    if kind == "review.new" and data.get("review_item"):
        return f"/review/{quote(str(data['review_item']))}"
    if kind.startswith("review.") and data.get("consultation_id"):
        return f"/answers/{quote(str(data['consultation_id']))}"
    if kind.startswith("engagement.") and data.get("engagement"):
        url = f"/engagements/{quote(str(data['engagement']))}"
        return url + (
            f"#milestone-{quote(str(data['milestone']))}" if data.get("milestone") else ""
        )
    if kind.startswith("credential."):
        return "/credentials"
    if kind == "gaps.digest" and data.get("asset"):
        return f"/assets/{quote(str(data['asset']))}/gaps"
    return None


def list_notifications(
    session: Session, *, account: Account, unread: bool = False, limit: int = 50
) -> list[Notification]:
    """The account's notifications, newest first; only those not yet read when ``unread``."""
    query = select(Notification).where(Notification.account_id == account.id)
    if unread:
        query = query.where(col(Notification.read_at).is_(None))
    query = query.order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
    return list(session.exec(query.limit(limit)))


def unread_count(session: Session, *, account_id: str) -> int:
    """How many of the account's notifications are not read yet."""
    query = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.account_id == account_id, col(Notification.read_at).is_(None))
    )
    return session.exec(query).one()


def mark_read(session: Session, *, account: Account, notification_id: str) -> Notification:
    """Mark one of the account's notifications read (another account's is not found)."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.account_id != account.id:
        raise NotificationNotFound(f"no notification '{notification_id}'")
    if notification.read_at is None:
        notification.read_at = utcnow()
        session.add(notification)
        session.flush()
    return notification


def mark_all_read(session: Session, *, account: Account) -> int:
    """Mark all the account's unread notifications read; returns how many there were."""
    result = session.exec(
        update(Notification)
        .where(col(Notification.account_id) == account.id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
    )
    return int(result.rowcount)


# Webhooks


_LOCAL_NAMES = ("localhost", "localhost.", "localhost.localdomain")


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, never public
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as getaddrinfo gives it, judged by the IPv4 address it carries, if any:
    IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo (the client) addresses all reach
    the IPv4 address inside them."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone does not matter
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address in _NAT64_LOCAL:
        return ipaddress.IPv4Address("0.0.0.0")  # judged like "this network": not public
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return address.ipv4_mapped or address.sixtofour or address


def _numeric_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names without a DNS lookup: ``10.0.0.1``, ``[::1]``, and the forms
    the C library also reads as addresses (``2130706433``, ``127.1``); None for a name."""
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return _address(str(infos[0][4][0]))


def _check_url(url: str, *, private_ok: bool) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise InvalidWebhookUrl(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidWebhookUrl("a webhook URL must be http:// or https:// with a host")
    if len(url) > 2000 or any(c.isspace() for c in url):
        raise InvalidWebhookUrl("a webhook URL has no spaces and at most 2000 characters")
    if not private_ok:
        if host.lower() in _LOCAL_NAMES or host.lower().endswith(".localhost"):
            raise InvalidWebhookUrl(f"{host} is this server; a webhook must reach a public host")
        address = _numeric_address(host)
        if address is not None and not address.is_global:
            named = host if host == str(address) else f"{host} ({address})"
            raise InvalidWebhookUrl(
                f"{named} is not a public address; a webhook must reach a public host"
            )
    return url


class _Refused(Exception):
    pass


def _public_address(host: str) -> str:
    """The address to connect to for ``host``; _Refused unless every address it has is public."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise _Refused(f"{host} does not resolve: {exc}") from exc
    addresses = [_address(str(info[4][0])) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise _Refused(f"refused: {host} resolves to {address}, which is not a public address")
    return str(addresses[0])


def pinned(url: str, address: str) -> tuple[str, str]:
    """``url`` with its host replaced by ``address`` (port and credentials kept), and the Host
    header that still names the original host."""
    parts = urlsplit(url)
    userinfo, _, host_port = parts.netloc.rpartition("@")
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    netloc = f"{userinfo}@{netloc}" if userinfo else netloc
    return urlunsplit(parts._replace(netloc=netloc)), host_port


def set_webhook(
    session: Session, *, account: Account, url: str, settings: NotificationSettings
) -> tuple[WebhookEndpoint, str]:
    """Point the account's webhook at ``url`` with a new signing secret (which replaces any
    earlier one); returns the endpoint and the secret, shown only this once."""
    url = _check_url(url, private_ok=settings.webhook_private_targets)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    endpoint = session.get(WebhookEndpoint, account.id)
    if endpoint is None:
        endpoint = WebhookEndpoint(account_id=account.id, url=url, secret=secret)
    else:
        endpoint.url, endpoint.secret, endpoint.created_at = url, secret, utcnow()
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def get_webhook(session: Session, *, account: Account) -> WebhookEndpoint:
    """The account's webhook (WebhookNotFound when it has none)."""
    endpoint = session.get(WebhookEndpoint, account.id)
    if endpoint is None:
        raise WebhookNotFound("this account has no webhook")
    return endpoint


def delete_webhook(session: Session, *, account: Account) -> None:
    """Remove the account's webhook; deliveries still pending then fail."""
    session.delete(get_webhook(session, account=account))
    session.flush()


def recent_deliveries(
    session: Session, *, account: Account, limit: int = 10
) -> list[tuple[WebhookDelivery, str]]:
    """The account's latest webhook deliveries, newest first, each with its notification kind."""
    query = (
        select(WebhookDelivery, Notification.kind)
        .join(Notification, col(WebhookDelivery.notification_id) == col(Notification.id))
        .where(Notification.account_id == account.id)
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        .limit(limit)
    )
    return [(delivery, kind) for delivery, kind in session.exec(query)]


def payload(notification: Notification) -> bytes:
    """The body POSTed for a notification: these exact bytes are signed."""
    event = {
        "id": notification.id,
        "type": notification.kind,
        "created": notification.created_at.isoformat(),
        "message": notification.message,
        "data": notification.data,
    }
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Vouch-Signature`` header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(
    url: str, body: bytes, headers: dict[str, str], settings: NotificationSettings
) -> tuple[int | None, str]:
    """POST once: the status (None when no response came) and an error ('' on a 2xx)."""
    if not settings.webhook_private_targets:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            address = _public_address(host)
        except _Refused as exc:
            return None, str(exc)[:500]
        if parts.scheme == "http":  # connect to the address checked, not to a new lookup's
            url, host_header = pinned(url, address)
            headers = {**headers, "Host": host_header}
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=settings.webhook_timeout_seconds
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if response.is_success:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


def deliver(
    engine: Engine,
    *,
    delivery_id: str,
    settings: NotificationSettings,
    retry: Callable[[str, float], None],
) -> WebhookDelivery:
    """Make one attempt at a pending delivery and record it; after a failure, ``retry`` is
    called (once the record is committed) with the delay before the next attempt."""
    with session_scope(engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise LookupError(f"no webhook delivery {delivery_id}")
        if delivery.status != "pending":
            return delivery
        notification = session.get(Notification, delivery.notification_id)
        assert notification is not None  # a foreign key
        endpoint = session.get(WebhookEndpoint, notification.account_id)
        if endpoint is None:
            delivery.status, delivery.last_error = "failed", "the webhook was removed"
            session.add(delivery)
            return delivery
        # The endpoint's current URL and secret: a client who fixes its URL gets the retries.
        url, body = endpoint.url, payload(notification)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Vouch-Webhooks/1",
            "X-Vouch-Event": notification.kind,
            "X-Vouch-Delivery": delivery.id,
            "X-Vouch-Signature": signature(endpoint.secret, body),
        }
    # No transaction is held open while the receiver takes its time.
    status, error = _post(url, body, headers, settings)
    with session_scope(engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.url = url
        delivery.attempts += 1
        delivery.last_status = status
        delivery.last_error = error or None
        if not error:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
        elif delivery.attempts >= settings.webhook_attempts:
            delivery.status = "failed"
            log.warning("webhook delivery %s failed for good: %s", delivery.id, error)
        else:
            delay = settings.webhook_backoff_seconds * 2 ** (delivery.attempts - 1)
            after_commit(session, partial(retry, delivery.id, delay))
        session.add(delivery)
    return delivery
