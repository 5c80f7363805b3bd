"""The caller's account and API keys; sign-up, e-mail verification and password reset; accounts
for admins."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from app import accounts, identity
from app.accounts import EMAIL_INPUT, MIN_PASSWORD
from app.api.schemas import (
    ERRORS,
    AccountCreate,
    AccountPublic,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ErrorBody,
)
from app.deps import AdminAccount, CurrentAccount, RuntimeDep, SessionDep
from core.patterns import NOT_BLANK, documented

router = APIRouter(tags=["accounts"], responses={401: ERRORS[401]})

_LINK = {"model": ErrorBody, "description": "The link is forged, cut short, expired or used"}
_SLOW_DOWN = {"model": ErrorBody, "description": "Too many mails asked for; try later"}
_TAKEN = {"model": ErrorBody, "description": "E-mail taken"}


class SignupCreate(BaseModel):
    email: str = Field(max_length=320, json_schema_extra=documented(EMAIL_INPUT))
    name: str = Field(min_length=1, max_length=200, json_schema_extra=documented(NOT_BLANK))
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)
    role: Literal["client", "expert"]


class SignupCreated(BaseModel):
    account: AccountPublic
    key: str = Field(description="An API key for the new account, shown this once")
    detail: str = Field(description="Where the verification link went")


class Done(BaseModel):
    detail: str


class TokenIn(BaseModel):
    token: str = Field(min_length=1, max_length=2000)


class ResetRequest(BaseModel):
    email: str = Field(max_length=320, json_schema_extra=documented(EMAIL_INPUT))


class ResetConfirm(BaseModel):
    token: str = Field(min_length=1, max_length=2000)
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)


class MeUpdate(BaseModel):
    name: str | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra=documented(NOT_BLANK)
    )
    email: str | None = Field(
        default=None,
        max_length=320,
        json_schema_extra=documented(EMAIL_INPUT),
        description="A new address: it replaces the current one once the link mailed to it "
        "is followed",
    )


class MeUpdated(AccountPublic):
    pending_email: str | None = Field(
        default=None, description="The new address a verification link was sent to"
    )


class AccountChange(BaseModel):
    role: Literal["expert", "client", "admin"] | None = None
    suspended: bool | None = Field(
        default=None, description="true suspends (sign-in and API keys stop working)"
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _where(runtime: RuntimeDep, email: str) -> str:
    if runtime.settings.mail.host:
        return f"we sent a verification link to {email}; check your inbox"
    return (
        f"no mail server is configured here: the link for {email} was written to the server's "
        "log and outbox folder"
    )


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses={409: _TAKEN, 422: ERRORS[422]},
)
def signup(
    request: Request, session: SessionDep, runtime: RuntimeDep, body: SignupCreate
) -> SignupCreated:
    """A client or expert account for yourself. It starts unverified: follow the link mailed to
    you to publish, ask paid questions and be paid out (trial questions work at once)."""
    account = identity.signup(
        session,
        runtime,
        email=body.email,
        name=body.name,
        password=body.password,
        role=body.role,
        address=_address(request),
    )
    _, key = accounts.create_api_key(session, account=account, label="sign-up")
    return SignupCreated(
        account=AccountPublic.of(account), key=key, detail=_where(runtime, account.email)
    )


@router.post("/verify", responses={403: _LINK, 409: _TAKEN, 422: ERRORS[422]})
def verify(session: SessionDep, runtime: RuntimeDep, body: TokenIn) -> AccountPublic:
    """Follow a verification (or e-mail change) link's token."""
    account, _ = identity.follow_link(session, runtime, token=body.token)
    return AccountPublic.of(account)


@router.get("/me")
def me(account: CurrentAccount) -> AccountPublic:
    return AccountPublic.of(account)


@router.patch("/me", responses={409: _TAKEN, 422: ERRORS[422], 429: _SLOW_DOWN})
def update_me(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    body: MeUpdate,
) -> MeUpdated:
    """Rename the account, or ask to move it to a new e-mail address (a link goes there)."""
    pending = None
    if body.email is not None:
        pending = identity.request_email_change(
            session, runtime, account=account, email=body.email, address=_address(request)
        )
    if body.name is not None:
        accounts.rename(session, account, body.name)
    return MeUpdated(**AccountPublic.of(account).model_dump(), pending_email=pending)


@router.post(
    "/me/verification",
    status_code=status.HTTP_202_ACCEPTED,
    responses={429: _SLOW_DOWN},
)
def resend_verification(
    request: Request, session: SessionDep, runtime: RuntimeDep, account: CurrentAccount
) -> Done:
    """Mail the verification link again."""
    if account.email_verified_at is not None:
        return Done(detail=f"{account.email} is verified already")
    identity.send_verification(session, runtime, account=account, address=_address(request))
    return Done(detail=_where(runtime, account.email))


@router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED, responses={422: ERRORS[422]})
def request_password_reset(
    request: Request, session: SessionDep, runtime: RuntimeDep, body: ResetRequest
) -> Done:
    """Mail a link to set a new password; the answer is the same whether or not an account
    has this address."""
    identity.request_password_reset(session, runtime, email=body.email, address=_address(request))
    return Done(detail=identity.RESET_SENT)


@router.post("/password-reset/confirm", responses={403: _LINK, 422: ERRORS[422]})
def confirm_password_reset(session: SessionDep, runtime: RuntimeDep, body: ResetConfirm) -> Done:
    """Set a new password with a reset link's token; the link dies with it, and the account's
    web sessions end."""
    identity.reset_password(session, runtime, token=body.token, password=body.password)
    return Done(detail="your password is changed; sign in with it")


@router.get("/api-keys")
def list_keys(session: SessionDep, account: CurrentAccount) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in accounts.list_api_keys(session, account=account)]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, responses={422: ERRORS[422]})
def create_key(session: SessionDep, account: CurrentAccount, body: ApiKeyCreate) -> ApiKeyCreated:
    key, secret = accounts.create_api_key(session, account=account, label=body.label)
    return ApiKeyCreated(**ApiKeyPublic.of(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", responses={404: ERRORS[404]})
def revoke_key(session: SessionDep, account: CurrentAccount, key_id: str) -> ApiKeyPublic:
    return ApiKeyPublic.of(accounts.revoke_api_key(session, account=account, key_ref=key_id))


@router.get("/admin/accounts", responses={403: ERRORS[403], 422: ERRORS[422]})
def list_accounts(
    session: SessionDep,
    _admin: AdminAccount,
    response: Response,
    q: Annotated[str, Query(max_length=320, description="Part of an e-mail or name")] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = identity.PAGE_SIZE,
) -> list[AccountPublic]:
    """Accounts, newest first; the `X-Total-Count` header says how many match in all."""
    found, total = identity.search_accounts(session, q=q, offset=offset, limit=limit)
    response.headers["X-Total-Count"] = str(total)
    return [AccountPublic.of(a) for a in found]


@router.post(
    "/admin/accounts",
    status_code=status.HTTP_201_CREATED,
    responses={403: ERRORS[403], 409: _TAKEN, 422: ERRORS[422]},
)
def create_account(session: SessionDep, _admin: AdminAccount, body: AccountCreate) -> AccountPublic:
    account = accounts.create_account(
        session, email=body.email, name=body.name, role=body.role, password=body.password
    )
    return AccountPublic.of(account)


@router.patch(
    "/admin/accounts/{account_id}",
    responses={403: ERRORS[403], 404: ERRORS[404], 422: ERRORS[422]},
)
def change_account(
    session: SessionDep, admin: AdminAccount, account_id: str, body: AccountChange
) -> AccountPublic:
    """Change another account's role, or suspend it (`suspended: true`) or lift that."""
    account = identity.update_account(
        session, admin=admin, account_id=account_id, role=body.role, suspended=body.suspended
    )
    return AccountPublic.of(account)
