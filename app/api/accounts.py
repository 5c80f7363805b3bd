"""The caller's account and API keys; accounts for admins."""

from fastapi import APIRouter, status

from app import accounts
from app.api.schemas import (
    ERRORS,
    AccountCreate,
    AccountPublic,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
)
from app.deps import AdminAccount, CurrentAccount, SessionDep

router = APIRouter(tags=["accounts"], responses={401: ERRORS[401]})


@router.get("/me")
def me(account: CurrentAccount) -> AccountPublic:
    return AccountPublic.of(account)


@router.get("/api-keys")
def list_keys(session: SessionDep, account: CurrentAccount) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in accounts.list_api_keys(session, account=account)]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_key(session: SessionDep, account: CurrentAccount, body: ApiKeyCreate) -> ApiKeyCreated:
    key, secret = accounts.create_api_key(session, account=account, label=body.label)
    return ApiKeyCreated(**ApiKeyPublic.of(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", responses={404: ERRORS[404]})
def revoke_key(session: SessionDep, account: CurrentAccount, key_id: str) -> ApiKeyPublic:
    return ApiKeyPublic.of(accounts.revoke_api_key(session, account=account, key_ref=key_id))


@router.get("/admin/accounts", responses={403: ERRORS[403]})
def list_accounts(session: SessionDep, _admin: AdminAccount) -> list[AccountPublic]:
    return [AccountPublic.of(a) for a in accounts.list_accounts(session)]


@router.post(
    "/admin/accounts",
    status_code=status.HTTP_201_CREATED,
    responses={403: ERRORS[403], 409: ERRORS[404] | {"description": "E-mail taken"}},
)
def create_account(session: SessionDep, _admin: AdminAccount, body: AccountCreate) -> AccountPublic:
    account = accounts.create_account(
        session, email=body.email, name=body.name, role=body.role, password=body.password
    )
    return AccountPublic.of(account)
