"""Who an account is: self-service sign-up, e-mail verification and change, password reset,
a proved ORCID iD, and suspension (with the admin's list of accounts).

Links mailed to people carry a signed token (HMAC-SHA256 under the server's secret) that binds
its purpose, the account, an e-mail address and an expiry; a reset token also binds the current
password hash, so it dies once the password changes. Mail leaves after the request's commit
(``after_commit``), in the request's worker thread.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import delete, func
from sqlmodel import Session, col, or_, select

from app import accounts
from app.errors import (
    AccountNotFound,
    EmailTaken,
    InvalidAccount,
    LinkInvalid,
    OrcidFailed,
    OrcidTaken,
    RateLimited,
)
from app.mail import Mail, Mailer
from app.models import Account, Role, WebSession
from app.runtime import Runtime
from core.clock import utcnow
from core.config import Settings
from core.db import after_commit
from core.errors import Forbidden

log = logging.getLogger(__name__)

VERIFY = "verify"
EMAIL_CHANGE = "email-change"
RESET = "reset"
SIGNUP_ROLES = (Role.client.value, Role.expert.value)
PAGE_SIZE = 50
# The one answer to a reset request, whether or not an account has the address.
RESET_SENT = (
    "if an account uses this address, a link to set a new password is on its way to it; "
    "it works once, for a short while"
)

_secrets: dict[Path, bytes] = {}
_secrets_lock = threading.Lock()


def server_secret(settings: Settings) -> bytes:
    """The key that signs mailed links: ``VOUCH_AUTH__SECRET_KEY``, or one generated once and
    kept in the data dir (``secret_key``, readable by its owner only)."""
    configured = settings.auth.secret_key.get_secret_value()
    if configured:
        return configured.encode()
    path = settings.data_dir / "secret_key"
    with _secrets_lock:
        if path not in _secrets:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with path.open("x", encoding="ascii") as f:
                        path.chmod(0o600)
                        f.write(secrets.token_urlsafe(48))
                except FileExistsError:
                    pass  # another process made it first: use theirs
            _secrets[path] = path.read_text(encoding="ascii").strip().encode()
        return _secrets[path]


def mailer(settings: Settings) -> Mailer:
    return Mailer(settings.mail, settings.data_dir / "outbox")


def site_url(settings: Settings) -> str:
    """This site's address as links in mail name it."""
    return (settings.mail.base_url or settings.billing.public_url).rstrip("/")


# Signed tokens


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _password_mark(account: Account) -> str:
    # Not the hash itself: the token is readable by whoever holds the link.
    return hashlib.sha256(f"reset\x00{account.password_hash or ''}".encode()).hexdigest()[:24]


def make_token(
    secret: bytes, *, purpose: str, account: Account, email: str, hours: int, bind: str = ""
) -> str:
    """A link token for ``purpose`` that ``read_token`` accepts for ``hours``."""
    expires = math.floor((utcnow() + timedelta(hours=hours)).timestamp())
    claims = {"p": purpose, "a": account.id, "e": email, "x": expires, "b": bind}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


@dataclass(frozen=True)
class Claims:
    purpose: str
    account_id: str
    email: str
    bind: str


def read_token(secret: bytes, token: str, *, purposes: tuple[str, ...]) -> Claims:
    """The claims of a genuine, unexpired token for one of ``purposes``; else LinkInvalid."""
    if not token.strip():
        raise LinkInvalid("this link has no token: open the whole link from the message")
    body, _, signature = token.strip().partition(".")
    try:
        expected = hmac.new(secret, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise LinkInvalid("this link is not valid: it was changed or cut short")
        claims = json.loads(_unb64(body))
        purpose, account_id, email = claims["p"], claims["a"], claims["e"]
        expires, bind = int(claims["x"]), str(claims["b"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError) as exc:
        raise LinkInvalid("this link is not valid: it was changed or cut short") from exc
    if purpose not in purposes:
        raise LinkInvalid("this link is not valid here")
    if expires < utcnow().timestamp():
        raise LinkInvalid("this link has expired")
    return Claims(purpose, str(account_id), str(email), bind)


# Mail, sent after the commit and limited per address


def _allow_mail(runtime: Runtime, *, to: str, address: str | None) -> bool:
    """Whether one more mail may go to ``to`` (and be asked for from ``address``)."""
    auth = runtime.settings.auth
    limits = [(f"mail:to:{to}", auth.mails_per_address_hour)]
    if address:
        limits.append((f"mail:from:{address}", auth.mails_per_client_hour))
    for key, per_hour in limits:
        if runtime.buckets.take(key, float(per_hour), per_hour / 3600.0, peek=True):
            log.warning("mail to %s not sent: %s asked for too many", to, key)
            return False
    for key, per_hour in limits:
        runtime.buckets.take(key, float(per_hour), per_hour / 3600.0)
    return True


def _send_after_commit(session: Session, runtime: Runtime, mail: Mail) -> None:
    send = mailer(runtime.settings).send

    def deliver() -> None:
        send(mail)  # a failure is logged; the user can ask for the link again

    after_commit(session, deliver)


def send_verification(
    session: Session, runtime: Runtime, *, account: Account, address: str | None = None
) -> None:
    """Mail ``account`` a link that proves its address (nothing when it is verified already).
    Asked again too often: RateLimited."""
    if account.email_verified_at is not None:
        return
    if not _allow_mail(runtime, to=account.email, address=address):
        raise RateLimited(
            "a verification link was sent several times in the last hour; check your inbox "
            "(and spam folder), or try again later",
            retry_after=600,
        )
    settings = runtime.settings
    token = make_token(
        server_secret(settings),
        purpose=VERIFY,
        account=account,
        email=account.email,
        hours=settings.auth.verify_link_hours,
    )
    link = f"{site_url(settings)}/verify?{urlencode({'token': token})}"
    body = (
        f"Hello {account.name},\n\n"
        f"Confirm that {account.email} is your e-mail address on Vouch by opening this link:\n\n"
        f"{link}\n\n"
        f"It works for {settings.auth.verify_link_hours} hours. If you did not sign up, ignore "
        "this message.\n"
    )
    _send_after_commit(session, runtime, Mail(account.email, "Confirm your e-mail address", body))


def signup(
    session: Session,
    runtime: Runtime,
    *,
    email: str,
    name: str,
    password: str,
    role: str,
    address: str | None = None,
) -> Account:
    """A new client or expert account, unverified, and the mail with its verification link."""
    if role not in SIGNUP_ROLES:
        raise InvalidAccount(f"sign up as a client or an expert, not {role!r}")
    if len(password) < accounts.MIN_PASSWORD:
        raise InvalidAccount(f"the password must have at least {accounts.MIN_PASSWORD} characters")
    account = accounts.create_account(
        session, email=email, name=name, role=role, password=password, verified=False
    )
    # Past the mail limit the account still exists; its owner asks for the link again later.
    with contextlib.suppress(RateLimited):
        send_verification(session, runtime, account=account, address=address)
    return account


def follow_link(session: Session, runtime: Runtime, *, token: str) -> tuple[Account, str]:
    """Mark the address of a verification or e-mail change link proved; returns the account
    and what happened ("verified", "already", "changed")."""
    claims = read_token(server_secret(runtime.settings), token, purposes=(VERIFY, EMAIL_CHANGE))
    account = session.get(Account, claims.account_id)
    if account is None:
        raise LinkInvalid("this link is not valid: its account no longer exists")
    if claims.purpose == VERIFY:
        if account.email != claims.email:
            raise LinkInvalid(
                "this link was sent to an address the account no longer uses; ask for a new one"
            )
        if account.email_verified_at is not None:
            return account, "already"
        account.email_verified_at = utcnow()
        session.add(account)
        return account, "verified"
    if claims.bind != account.email:
        raise LinkInvalid(
            "this link is out of date: the account's e-mail address changed since it was sent"
        )
    if account.email == claims.email:
        return account, "already"
    taken = session.exec(select(Account).where(Account.email == claims.email)).first()
    if taken is not None:
        raise EmailTaken(f"another account uses {claims.email} now; the address was not changed")
    account.email = claims.email
    account.email_verified_at = utcnow()
    session.add(account)
    return account, "changed"


def request_email_change(
    session: Session, runtime: Runtime, *, account: Account, email: str, address: str | None = None
) -> str:
    """Mail a link to the NEW address; the account's address changes when it is followed (the
    old one keeps working meanwhile). Returns the new address as it will be stored."""
    new = accounts.clean_email(email)
    if new == account.email:
        raise InvalidAccount(f"{new} is already this account's address")
    if session.exec(select(Account).where(Account.email == new)).first():
        raise EmailTaken(f"an account with e-mail {new} exists already")
    if not _allow_mail(runtime, to=new, address=address):
        raise RateLimited(
            f"several links went to {new} in the last hour; check that inbox or try later",
            retry_after=600,
        )
    settings = runtime.settings
    token = make_token(
        server_secret(settings),
        purpose=EMAIL_CHANGE,
        account=account,
        email=new,
        hours=settings.auth.verify_link_hours,
        bind=account.email,
    )
    link = f"{site_url(settings)}/verify?{urlencode({'token': token})}"
    body = (
        f"Hello {account.name},\n\n"
        f"Someone (we hope you) asked to change the e-mail address of a Vouch account to {new}. "
        f"Open this link to confirm it:\n\n{link}\n\n"
        f"It works for {settings.auth.verify_link_hours} hours. Until then the account keeps "
        "its current address. If this was not you, ignore this message.\n"
    )
    _send_after_commit(session, runtime, Mail(new, "Confirm your new e-mail address", body))
    return new


def request_password_reset(
    session: Session, runtime: Runtime, *, email: str, address: str | None = None
) -> None:
    """Mail a reset link if an account has ``email``; the caller answers the same either way."""
    found = session.exec(select(Account).where(Account.email == email.strip().lower())).first()
    if found is None or found.suspended_at is not None:
        return
    if not _allow_mail(runtime, to=found.email, address=address):
        return
    settings = runtime.settings
    token = make_token(
        server_secret(settings),
        purpose=RESET,
        account=found,
        email=found.email,
        hours=settings.auth.reset_link_hours,
        bind=_password_mark(found),
    )
    link = f"{site_url(settings)}/reset-password?{urlencode({'token': token})}"
    body = (
        f"Hello {found.name},\n\n"
        f"Someone (we hope you) asked to set a new password for {found.email} on Vouch. "
        f"Open this link to choose one:\n\n{link}\n\n"
        f"It works once, for {settings.auth.reset_link_hours} hours. If this was not you, "
        "ignore this message: your password stays as it is.\n"
    )
    _send_after_commit(session, runtime, Mail(found.email, "Set a new password", body))


def reset_account(session: Session, runtime: Runtime, *, token: str) -> Account:
    """The account a live reset link is for; LinkInvalid once it was used or has expired."""
    claims = read_token(server_secret(runtime.settings), token, purposes=(RESET,))
    account = session.get(Account, claims.account_id)
    if (
        account is None
        or account.email != claims.email
        or not hmac.compare_digest(claims.bind, _password_mark(account))
    ):
        raise LinkInvalid("this link was used already, or a newer one replaced it")
    return account


def reset_password(session: Session, runtime: Runtime, *, token: str, password: str) -> Account:
    """Set a new password through a reset link (which dies with it) and end the account's
    sign-in sessions. Following the link also proves the address."""
    account = reset_account(session, runtime, token=token)
    accounts.set_password(session, account, password)
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
    session.add(account)
    session.execute(delete(WebSession).where(col(WebSession.account_id) == account.id))
    return account


# ORCID iD, proved through ORCID's OAuth sign-in (scope /authenticate)


def orcid_state(settings: Settings, session_cookie: str) -> str:
    """The OAuth ``state`` for this web session: the callback accepts only its own."""
    message = f"orcid-state\x00{session_cookie}".encode()
    return hmac.new(server_secret(settings), message, hashlib.sha256).hexdigest()


def orcid_authorize_url(settings: Settings, *, state: str, redirect_uri: str) -> str:
    query = urlencode(
        {
            "client_id": settings.orcid.client_id or "",
            "response_type": "code",
            "scope": "/authenticate",
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{settings.orcid.base_url.rstrip('/')}/oauth/authorize?{query}"


def connect_orcid(
    session: Session, runtime: Runtime, *, account: Account, code: str, redirect_uri: str
) -> str:
    """Trade the authorization ``code`` for the iD it proves and set it on ``account``; an iD
    another account proved is refused (OrcidTaken)."""
    orcid = runtime.settings.orcid
    try:
        response = httpx.post(
            f"{orcid.base_url.rstrip('/')}/oauth/token",
            data={
                "client_id": orcid.client_id or "",
                "client_secret": orcid.client_secret.get_secret_value(),
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
            },
            headers={"Accept": "application/json"},
            timeout=orcid.timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise OrcidFailed(f"ORCID could not be reached ({exc}); try again") from exc
    if response.status_code != 200:
        raise OrcidFailed(f"ORCID refused the sign-in (HTTP {response.status_code}); connect again")
    try:
        payload: Any = response.json()
        proved = str(payload["orcid"]).strip().upper()
    except (ValueError, KeyError, TypeError) as exc:
        raise OrcidFailed("ORCID's answer had no ORCID iD; connect again") from exc
    if len(proved) != 19:
        raise OrcidFailed(f"ORCID answered with {proved!r}, which is not an ORCID iD")
    holder = session.exec(select(Account).where(Account.orcid == proved)).first()
    if holder is not None and holder.id != account.id:
        raise OrcidTaken(
            f"the ORCID iD {proved} is already connected to another Vouch account; "
            "an iD belongs to one account"
        )
    account.orcid = proved
    session.add(account)
    return proved


def disconnect_orcid(session: Session, *, account: Account) -> None:
    account.orcid = None
    session.add(account)


# Suspension and the admin's list


def search_accounts(
    session: Session, *, q: str = "", offset: int = 0, limit: int = PAGE_SIZE
) -> tuple[list[Account], int]:
    """Accounts whose e-mail or name contains ``q`` (any case), newest first, and how many
    match in all."""
    statement = select(Account)
    counted = select(func.count()).select_from(Account)
    text = q.strip().lower()
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        where = or_(
            func.lower(col(Account.email)).like(pattern, escape="\\"),
            func.lower(col(Account.name)).like(pattern, escape="\\"),
        )
        statement = statement.where(where)
        counted = counted.where(where)
    total = session.exec(counted).one()
    rows = session.exec(
        statement.order_by(col(Account.created_at).desc(), col(Account.id))
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total)


def update_account(
    session: Session,
    *,
    admin: Account,
    account_id: str,
    role: str | None = None,
    suspended: bool | None = None,
) -> Account:
    """Change another account's role or suspend it (its sign-in sessions end) or lift that."""
    account = session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(f"no account {account_id}")
    if account.id == admin.id:
        raise Forbidden("you cannot change your own account's role or suspend it")
    if role is not None:
        if role not in {r.value for r in Role}:
            raise InvalidAccount(f"unknown role {role!r}; use one of: expert, client, admin")
        account.role = role
    if suspended is True and account.suspended_at is None:
        account.suspended_at = utcnow()
        session.execute(delete(WebSession).where(col(WebSession.account_id) == account.id))
    elif suspended is False:
        account.suspended_at = None
    session.add(account)
    session.flush()
    return account
