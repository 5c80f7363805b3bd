"""Accounts, passwords (argon2), API keys and web sign-in sessions."""

import hashlib
import hmac
import re
import secrets
import string
import threading
from collections.abc import Callable
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, or_, select

from app.errors import (
    AccountNotFound,
    AccountSuspended,
    ApiKeyNotFound,
    EmailTaken,
    EmailUnverified,
    InvalidAccount,
    InvalidCredentials,
    RateLimited,
)
from app.models import Account, ApiKey, Role, WebSession
from assets.service import Viewer
from core.clock import utcnow
from core.patterns import SPACE

KEY_PREFIX = "vch_"
SESSION_DAYS = 14
MIN_PASSWORD = 8
# An address a mail header carries as one recipient: dot-separated atoms of RFC 5322 "atext"
# (RFC 6531 letters beyond ASCII included) before the @, dot-separated labels after it. No
# quoting, comments, commas or angle brackets: "a,b@x.org" would otherwise mail two people.
_NON_ASCII = (
    r"\u00a1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff"
    r"\u3001-\ud7ff\ue000-\uffff"
)
_ATOM = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_NON_ASCII}]+"
_LABEL = rf"[A-Za-z0-9\-{_NON_ASCII}]+"
_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+"
_EMAIL = re.compile(rf"^{_ADDRESS}$")
# What create_account accepts as typed (it strips the whitespace around it and lowers it).
EMAIL_INPUT = rf"^{SPACE}*{_ADDRESS}{SPACE}*$"
_ALPHABET = string.ascii_lowercase + string.digits
_hasher = PasswordHasher()


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def clean_email(email: str) -> str:
    """The address as stored (trimmed, lower case); InvalidAccount when it is not one."""
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidAccount(
            f"{cleaned!r} is not an e-mail address we can write to: use name@example.org, "
            "without spaces, quotes, commas, brackets or a second @"
        )
    return cleaned


def create_account(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    verified: bool = True,
) -> Account:
    """A new account; the e-mail is unique (case-insensitive) and the role one of Role.

    An account an admin creates is ``verified`` at once (the admin vouches for its address);
    one made by sign-up is not until its owner follows the link mailed to it."""
    email = clean_email(email)
    if not name.strip():
        raise InvalidAccount("the name is blank")
    if role not in {r.value for r in Role}:
        raise InvalidAccount(f"unknown role {role!r}; use one of: expert, client, admin")
    if password is not None and len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"the password must have at least {MIN_PASSWORD} characters")
    if session.exec(select(Account).where(Account.email == email)).first():
        raise EmailTaken(f"an account with e-mail {email} exists already")
    account = Account(
        email=email,
        name=name.strip(),
        role=role,
        password_hash=_hasher.hash(password) if password else None,
        email_verified_at=utcnow() if verified else None,
    )
    session.add(account)
    session.flush()
    return account


def get_account_by_email(session: Session, email: str) -> Account:
    account = session.exec(select(Account).where(Account.email == email.strip().lower())).first()
    if account is None:
        raise AccountNotFound(f"no account with e-mail {email}")
    return account


def list_accounts(session: Session) -> list[Account]:
    return list(session.exec(select(Account).order_by(col(Account.created_at))))


def set_password(session: Session, account: Account, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"the password must have at least {MIN_PASSWORD} characters")
    account.password_hash = _hasher.hash(password)
    session.add(account)


def rename(session: Session, account: Account, name: str) -> None:
    if not name.strip():
        raise InvalidAccount("the name is blank")
    account.name = name.strip()[:200]
    session.add(account)


class PasswordChecks:
    """argon2 checks, ``workers`` at a time with ``waiting`` more in line; past that a check is
    refused at once (RateLimited), so that a flood of sign-ins holds a bounded number of the
    server's threads and cores."""

    def __init__(self, workers: int, waiting: int) -> None:
        self._running = threading.Semaphore(workers)
        self._admitted = threading.Semaphore(workers + waiting)

    def run(self, check: Callable[[], bool]) -> bool:
        if not self._admitted.acquire(blocking=False):
            raise RateLimited("too many sign-ins at once; try again in a second", retry_after=1)
        try:
            with self._running:
                return check()
        finally:
            self._admitted.release()


def verify_password(
    session: Session, *, email: str, password: str, checks: PasswordChecks
) -> Account:
    """The account whose password this is; one message for unknown e-mail and wrong password."""
    account = session.exec(select(Account).where(Account.email == email.strip().lower())).first()
    stored = account.password_hash if account is not None else None

    def check() -> bool:
        if not stored:
            _hasher.hash(password)  # spend the same time as a real check
            return False
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    if not checks.run(check) or account is None:
        raise InvalidCredentials("wrong e-mail or password")
    return account


def create_api_key(session: Session, *, account: Account, label: str = "") -> tuple[ApiKey, str]:
    """A new key for ``account`` and its secret text, which is never stored or shown again."""
    prefix = KEY_PREFIX + _random(10)
    secret = f"{prefix}_{_random(32)}"
    key = ApiKey(account_id=account.id, prefix=prefix, key_hash=_sha256(secret), label=label[:100])
    session.add(key)
    session.flush()
    return key, secret


def authenticate_api_key(session: Session, secret: str) -> tuple[Account, ApiKey]:
    """The account of a live key, and the key; unknown, malformed and revoked keys are refused.

    The key's ``last_used_at`` is not written here (see ``touch_api_key``): a write would hold
    a lock on the key for the whole request.
    """
    prefix, _, rest = secret.strip().rpartition("_")
    if not prefix.startswith(KEY_PREFIX) or not rest:
        raise InvalidCredentials("malformed API key; keys look like vch_xxxxxxxxxx_...")
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None or not hmac.compare_digest(key.key_hash, _sha256(secret.strip())):
        raise InvalidCredentials("unknown API key")
    if key.revoked_at is not None:
        raise InvalidCredentials("this API key was revoked")
    account = session.get(Account, key.account_id)
    if account is None:
        raise InvalidCredentials("unknown API key")
    ensure_active(account)
    return account, key


def ensure_active(account: Account) -> None:
    """Refuse a suspended account (AccountSuspended, 403)."""
    if account.suspended_at is not None:
        raise AccountSuspended(
            "this account is suspended; write to the platform's administrators to lift it"
        )


def ensure_verified(account: Account, action: str) -> None:
    """Refuse ``action`` (e.g. "publish an asset") with EmailUnverified (403) until the account
    has proved its e-mail address."""
    if account.email_verified_at is None:
        raise EmailUnverified(
            f"Verify your e-mail address before you {action}: we sent a link to "
            f"{account.email}; resend it from /account"
        )


def viewer_of(account: Account) -> Viewer:
    """The account as the assets package sees a caller: an id and a role."""
    return Viewer(account_id=account.id, role=account.role)


# last_used_at is for people reading their key list: a minute's precision is plenty.
TOUCH_EVERY = timedelta(minutes=1)


def stale_last_use(key: ApiKey) -> bool:
    """Whether the key's ``last_used_at`` is older than TOUCH_EVERY (or unset)."""
    return key.last_used_at is None or key.last_used_at < utcnow() - TOUCH_EVERY


def touch_api_key(engine: Engine, key_id: str) -> None:
    """Stamp the key's last use, in a short transaction of its own, at most once a minute."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(ApiKey)
            .where(col(ApiKey.id) == key_id)
            .where(
                or_(
                    col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < now - TOUCH_EVERY
                )
            )
            .values(last_used_at=now)
        )


def list_api_keys(session: Session, *, account: Account) -> list[ApiKey]:
    statement = (
        select(ApiKey)
        .where(ApiKey.account_id == account.id)
        .order_by(col(ApiKey.created_at).desc())
    )
    return list(session.exec(statement))


def revoke_api_key(session: Session, *, account: Account, key_ref: str) -> ApiKey:
    """Revoke one of ``account``'s keys, named by its id, its prefix or the whole key as it
    was shown; revoking twice is harmless."""
    key_ref = key_ref.strip()
    prefix, _, rest = key_ref.rpartition("_")
    whole_key = prefix.startswith(KEY_PREFIX) and bool(rest)
    key = session.exec(
        select(ApiKey).where(
            ApiKey.account_id == account.id,
            (col(ApiKey.id) == key_ref)
            | (col(ApiKey.prefix) == (prefix if whole_key else key_ref)),
        )
    ).first()
    if key is not None and whole_key and not hmac.compare_digest(key.key_hash, _sha256(key_ref)):
        key = None  # the right prefix with another secret: not this key
    if key is None:
        shown = f"{prefix}_…" if whole_key else key_ref  # never echo a secret
        raise ApiKeyNotFound(f"no API key {shown} on this account")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    return key


def start_web_session(session: Session, *, account: Account) -> str:
    """A new sign-in session; returns the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id=_sha256(token),
            account_id=account.id,
            created_at=now,
            expires_at=now + timedelta(days=SESSION_DAYS),
        )
    )
    session.flush()
    return token


def account_for_web_session(session: Session, token: str) -> Account | None:
    row = session.get(WebSession, _sha256(token))
    if row is None or row.expires_at <= utcnow():
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.suspended_at is not None:
        return None  # suspending ends the account's sessions; this is the second lock
    return account


def end_web_session(session: Session, token: str) -> None:
    row = session.get(WebSession, _sha256(token))
    if row is not None:
        session.delete(row)
