"""FastAPI dependencies as Annotated aliases: the runtime, a session, and who is calling."""

from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app import accounts
from app.errors import InvalidCredentials, RoleRequired, SignInFirst
from app.models import Account, Role
from app.runtime import Runtime
from core.db import after_commit, session_scope

SESSION_COOKIE = "vouch_session"


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request, committed before the response is sent, rolled back on error."""
    with session_scope(runtime.engine) as session:
        yield session


# scope="function": commit (and fail loudly) before the response goes out, not after.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer vch_...`")


def current_account(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    if credentials is None:
        raise InvalidCredentials("send an API key as 'Authorization: Bearer vch_...'")
    account, key = accounts.authenticate_api_key(session, credentials.credentials)
    if accounts.stale_last_use(key):  # most requests write nothing
        after_commit(session, partial(accounts.touch_api_key, runtime.engine, key.id))
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


def admin_account(account: CurrentAccount) -> Account:
    if account.role != Role.admin:
        raise RoleRequired("this needs an admin account")
    return account


AdminAccount = Annotated[Account, Depends(admin_account)]


def page_account(request: Request, session: SessionDep) -> Account | None:
    """The signed-in account of a page request, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    return accounts.account_for_web_session(session, token) if token else None


PageAccount = Annotated[Account | None, Depends(page_account)]


def signed_in(then: str | None = None, *, fragment: str | None = None, message: str = "") -> Any:
    """A dependency: the signed-in account of a page. Without one, the visitor signs in first
    and comes back to ``then`` (a path that may name the route's ``{params}``; by default this
    very page), or, for a page fragment, gets ``fragment`` with ``message`` (401)."""

    def signed_in_account(request: Request, account: PageAccount) -> Account:
        if account is None:
            url = request.url
            here = url.path + (f"?{url.query}" if url.query else "")
            back = here if then is None else then.format(**request.path_params)
            raise SignInFirst(back, fragment=fragment, message=message)
        return account

    return Depends(signed_in_account)


# The signed-in account of a page that comes back to itself after signing in.
SignedIn = Annotated[Account, signed_in()]


def maybe_account(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account | None:
    """The caller of a public route: None without an API key; a key sent must be valid."""
    if credentials is None:
        return None
    return current_account(session, runtime, credentials)


MaybeAccount = Annotated[Account | None, Depends(maybe_account)]


def client_address(request: Request) -> str:
    """The caller's address (uvicorn takes it from X-Forwarded-For behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
