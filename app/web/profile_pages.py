"""Profile and credential pages: an expert's public page, the expert's profile form and
credentials (add, re-check, upload a document, withdraw), and the admin's review of uploaded
certificates and licences."""

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app import credentials, profiles
from app.api.credentials import document_response
from app.bodies import FILES
from app.deps import PageAccount, RuntimeDep, SessionDep, SignedIn, signed_in
from app.models import Account, Role
from app.runtime import Runtime
from app.web.actions import Failed, page_action
from app.web.forms import OriginGuard, PageFiles, PostGuard, page_files
from app.web.pages import refused, render, show_error
from core.clock import utcnow
from core.config import Settings
from core.errors import InvalidInput, VouchError
from marketplace import credentials as rules
from marketplace.errors import InvalidDocument, InvalidProfile
from marketplace.profiles import ProfileUpdate

router = APIRouter(include_in_schema=False)
# The profile's and the credentials' forms come back to their page after signing in.
ProfileForm = Annotated[Account, signed_in("/profile")]
CredentialsForm = Annotated[Account, signed_in("/credentials")]
AdminForm = Annotated[Account, signed_in("/admin/credentials")]

KINDS = {
    "commit_authorship": "Commit authorship (a public git repository the platform fetches)",
    "paper_authorship": "Paper authorship (a paper in your asset, or a DOI)",
    "certification": "Certification (an admin reviews the document)",
    "licence": "Licence (an admin reviews the document)",
}
METHODS = {
    "git_history": "git history",
    "paper_authors": "paper's authors",
    "doi": "DOI registry",
    "orcid": "ORCID record",
    "admin_review": "admin review",
}


def install(app: FastAPI) -> None:
    """Add the profile and credential pages and the labels their templates use."""
    app.state.templates.env.globals["credential_kinds"] = KINDS
    app.state.templates.env.globals["credential_methods"] = METHODS
    app.include_router(router)


def _invalid(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


# The public page


@router.get("/experts/{account_id}")
@page_action(show_error)
def expert_page(
    request: Request, session: SessionDep, account: PageAccount, account_id: str, saved: str = ""
) -> Response:
    """Anyone may see an expert's page, signed in or not."""
    expert = profiles.public_expert(session, account_id=account_id)
    own = account is not None and account.id == account_id
    return render(
        request,
        "expert.html",
        account=account,
        expert=expert,
        own=own,
        notice="Profile saved." if saved and own else None,
    )


# The expert's profile


def _profile_form(profile: dict[str, Any]) -> dict[str, str]:
    def major(amount: int | None) -> str:
        return "" if amount is None else f"{Decimal(amount) / 100:.2f}"

    return {
        "name": profile["name"],
        "headline": profile["headline"],
        "bio": profile["bio"],
        "domains": ", ".join(profile["domains"]),
        "links": "\n".join(profile["links"]),
        "price_from": major(profile["price_from"]),
        "price_to": major(profile["price_to"]),
        "currency": profile["currency"],
        "response_hours": ""
        if profile["response_hours"] is None
        else str(profile["response_hours"]),
        "orcid": profile["orcid"] or "",
    }


def _minor(text: str, label: str) -> int | None:
    """ "12.50" -> 1250; empty -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value != value.to_integral_value():
        raise InvalidProfile(f"{label}: {text!r} is not an amount such as 250 or 99.50")
    return int(value)


def _profile_update(form: dict[str, str]) -> ProfileUpdate:
    hours = form["response_hours"].strip()
    if hours and not hours.isdigit():
        raise InvalidProfile(f"Response time: {hours!r} is not a whole number of hours")
    return ProfileUpdate.model_validate(
        {
            "name": form["name"],
            "headline": form["headline"],
            "bio": form["bio"],
            "domains": [d for d in form["domains"].replace("\n", ",").split(",") if d.strip()],
            "links": [link for link in form["links"].split() if link.strip()],
            "price_from": _minor(form["price_from"], "Price from"),
            "price_to": _minor(form["price_to"], "Price to"),
            "currency": form["currency"] or "usd",
            "response_hours": int(hours) if hours else None,
            "orcid": form["orcid"] or None,
        }
    )


@router.get("/profile")
def profile_page(request: Request, session: SessionDep, account: SignedIn) -> Response:
    if account.role != Role.expert:
        return refused(request, account, "profiles are for expert accounts")
    form = _profile_form(profiles.my_profile(session, account=account))
    return render(request, "profile_edit.html", account=account, form=form)


def _profile_not_saved(
    exc: VouchError, request: Request, account: Account, **typed: Any
) -> Response:
    form = {name: typed[name] for name in PROFILE_FIELDS}
    return render(
        request, "profile_edit.html", exc.status_code, account=account, form=form, error=exc.message
    )


PROFILE_FIELDS = (
    *("name", "headline", "bio", "domains", "links", "price_from", "price_to"),
    *("currency", "response_hours", "orcid"),
)


@router.post("/profile", dependencies=[PostGuard])
@page_action(_profile_not_saved)
def save_profile(
    request: Request,
    session: SessionDep,
    account: ProfileForm,
    name: Annotated[str, Form()] = "",
    headline: Annotated[str, Form()] = "",
    bio: Annotated[str, Form()] = "",
    domains: Annotated[str, Form()] = "",
    links: Annotated[str, Form()] = "",
    price_from: Annotated[str, Form()] = "",
    price_to: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "usd",
    response_hours: Annotated[str, Form()] = "",
    orcid: Annotated[str, Form()] = "",
) -> Response:
    if account.role != Role.expert:
        return refused(request, account, "profiles are for expert accounts")
    form = {
        "name": name,
        "headline": headline,
        "bio": bio,
        "domains": domains,
        "links": links,
        "price_from": price_from,
        "price_to": price_to,
        "currency": currency,
        "response_hours": response_hours,
        "orcid": orcid,
    }
    try:
        data = _profile_update(form)
    except ValidationError as exc:
        raise InvalidProfile(_invalid(exc)) from exc
    profiles.update_profile(session, account=account, data=data)
    return RedirectResponse(f"/experts/{account.id}?saved=1", status_code=303)


# The expert's credentials


def _credentials_page(
    request: Request,
    session: Session,
    account: Account,
    status_code: int = 200,
    *,
    form: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    now = utcnow()
    held = [rules.owner_view(c, now=now) for c in credentials.list_own(session, account=account)]
    keys = [
        credentials.signing_key_view(k) for k in credentials.signing_keys(session, account=account)
    ]
    return render(
        request,
        "credentials.html",
        status_code,
        account=account,
        credentials=held,
        signing_keys=keys,
        email_verified=account.email_verified_at is not None,
        form=form or {},
        **extra,
    )


@router.get("/credentials")
def credentials_page(
    request: Request, session: SessionDep, account: SignedIn, done: str = ""
) -> Response:
    if account.role != Role.expert:
        return refused(request, account, "credentials are for expert accounts")
    notices = {
        "added": "Credential added.",
        "checked": "Checked again.",
        "uploaded": "Document uploaded: an admin will review it.",
        "withdrawn": "Credential withdrawn.",
        "key-added": "Signing key added: check your commit credentials again to count it.",
        "key-removed": "Signing key removed.",
    }
    return _credentials_page(request, session, account, notice=notices.get(done))


CREDENTIAL_FIELDS = (
    *("kind", "claim", "domain", "expires", "remote", "ref", "asset", "source"),
    *("path", "doi", "issuer", "number"),
)


def _credential_not_added(
    exc: VouchError, request: Request, session: SessionDep, account: Account, **typed: Any
) -> Response:
    form = {name: typed[name] for name in CREDENTIAL_FIELDS}
    return _credentials_page(
        request, session, account, exc.status_code, form=form, error=exc.message
    )


@router.post("/credentials", dependencies=[PostGuard])
@page_action(_credential_not_added, savepoint=False)  # the check commits its reads first
def add_credential(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: CredentialsForm,
    kind: Annotated[str, Form()] = "",
    claim: Annotated[str, Form()] = "",
    domain: Annotated[str, Form()] = "",
    remote: Annotated[str, Form()] = "",
    ref: Annotated[str, Form()] = "",
    asset: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "",
    path: Annotated[str, Form()] = "",
    doi: Annotated[str, Form()] = "",
    issuer: Annotated[str, Form()] = "",
    number: Annotated[str, Form()] = "",
    expires: Annotated[str, Form()] = "",
) -> Response:
    if account.role != Role.expert:
        return refused(request, account, "credentials are for expert accounts")
    typed = {"remote": remote, "ref": ref, "asset": asset, "source": source, "path": path}
    typed |= {"doi": doi}
    typed |= {"issuer": issuer, "number": number}
    try:
        data = rules.CredentialCreate.model_validate(
            {
                "kind": kind,
                "claim": claim,
                "domain": domain or None,
                "evidence": {k: v for k, v in typed.items() if v.strip()},
                "expires_at": expires.strip() or None,
            }
        )
    except ValidationError as exc:
        raise InvalidInput(_invalid(exc)) from exc
    credential = credentials.add(session, runtime, account=account, data=data)
    return RedirectResponse(f"/credentials?done=added#{credential.id}", status_code=303)


def _credential_refused(*, anchored: bool) -> Failed:
    """The credentials page again, saying why (beside the credential when ``anchored``)."""

    def failed(
        exc: VouchError,
        request: Request,
        session: SessionDep,
        account: Account,
        credential_id: str,
        **_: Any,
    ) -> Response:
        anchor = credential_id if anchored else ""
        return _credentials_page(
            request, session, account, exc.status_code, error=exc.message, error_id=anchor
        )

    return failed


@router.post("/credentials/{credential_id}/verify", dependencies=[PostGuard])
@page_action(_credential_refused(anchored=True), savepoint=False)  # commits its reads first
def verify_credential(
    session: SessionDep, runtime: RuntimeDep, account: CredentialsForm, credential_id: str
) -> Response:
    credentials.verify(session, runtime, account=account, credential_id=credential_id)
    return RedirectResponse(f"/credentials?done=checked#{credential_id}", status_code=303)


@router.post("/credentials/{credential_id}/withdraw", dependencies=[PostGuard])
@page_action(_credential_refused(anchored=False))
def withdraw_credential(
    session: SessionDep, runtime: RuntimeDep, account: CredentialsForm, credential_id: str
) -> Response:
    credentials.withdraw(session, runtime, account=account, credential_id=credential_id)
    return RedirectResponse("/credentials?done=withdrawn#", status_code=303)


def _key_refused(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    public_key: str | None = None,
    label: str = "",
    **_: Any,
) -> Response:
    typed = {} if public_key is None else {"key_form": {"public_key": public_key, "label": label}}
    return _credentials_page(
        request, session, account, exc.status_code, key_error=exc.message, **typed
    )


@router.post("/signing-keys", dependencies=[PostGuard])
@page_action(_key_refused, savepoint=False)  # commits its reads before reading the key
def add_signing_key(
    request: Request,
    session: SessionDep,
    account: CredentialsForm,
    public_key: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
) -> Response:
    if account.role != Role.expert:
        return refused(request, account, "signing keys are for expert accounts")
    try:
        data = rules.SigningKeyCreate.model_validate({"public_key": public_key, "label": label})
    except ValidationError as exc:
        raise InvalidInput(_invalid(exc)) from exc
    credentials.add_signing_key(session, account=account, data=data)
    return RedirectResponse("/credentials?done=key-added#signing-keys", status_code=303)


@router.post("/signing-keys/{key_id}/remove", dependencies=[PostGuard])
@page_action(_key_refused)
def remove_signing_key(session: SessionDep, account: CredentialsForm, key_id: str) -> Response:
    credentials.remove_signing_key(session, account=account, key_id=key_id)
    return RedirectResponse("/credentials?done=key-removed#signing-keys", status_code=303)


def _own_credential(session: Session, account: Account, path: dict[str, Any]) -> None:
    credentials.get(session, account=account, credential_id=path["credential_id"])


def _evidence_limit(settings: Settings) -> int:
    return settings.marketplace.max_evidence_bytes


@router.post(
    "/credentials/{credential_id}/document", dependencies=[OriginGuard], max_body_size=FILES
)
@page_action(_credential_refused(anchored=True))
def upload_document(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CredentialsForm,
    credential_id: str,
    upload: Annotated[PageFiles, page_files(_own_credential, _evidence_limit, max_files=1)],
) -> Response:
    if upload.error is not None:
        raise upload.error
    assert upload.form is not None
    files = upload.form.files.get("file", [])
    if not files:
        raise InvalidDocument("choose the document's file (PDF or image) to upload")
    ((name, data),) = files
    credentials.attach_document(
        session, runtime, account=account, credential_id=credential_id, name=name, data=data
    )
    return RedirectResponse(f"/credentials?done=uploaded#{credential_id}", status_code=303)


@router.get("/credentials/{credential_id}/document")
@page_action(show_error)
def credential_document(
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    credential_id: str,
) -> Response:
    """The uploaded document, for its expert and admins."""
    stored = credentials.document(session, runtime, account=account, credential_id=credential_id)
    return document_response(stored)


# The admin


def _admin_page(
    request: Request, session: Session, account: Account, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    waiting = [credentials.admin_view(session, c) for c in credentials.pending(session)]
    return render(
        request, "admin_credentials.html", status_code, account=account, pending=waiting, **extra
    )


@router.get("/admin/credentials")
def admin_page(
    request: Request, session: SessionDep, account: SignedIn, done: str = ""
) -> Response:
    if account.role != Role.admin:
        return refused(request, account, "credential review is for admins")
    notice = {"verified": "Verified.", "rejected": "Rejected: the expert was told why."}.get(done)
    return _admin_page(request, session, account, notice=notice)


def _not_decided(
    exc: VouchError,
    request: Request,
    session: SessionDep,
    account: Account,
    credential_id: str,
    note: str = "",
    **_: Any,
) -> Response:
    return _admin_page(
        request,
        session,
        account,
        exc.status_code,
        error=exc.message,
        error_id=credential_id,
        notes={credential_id: note},
    )


def _decide(
    request: Request,
    session: Session,
    runtime: Runtime,
    account: Account,
    credential_id: str,
    *,
    verified: bool,
    note: str,
) -> Response:
    if account.role != Role.admin:
        return refused(request, account, "credential review is for admins")
    credentials.decide(
        session,
        runtime,
        admin=account,
        credential_id=credential_id,
        verified=verified,
        note=note,
    )
    done = "verified" if verified else "rejected"
    return RedirectResponse(f"/admin/credentials?done={done}", status_code=303)


@router.post("/admin/credentials/{credential_id}/verify", dependencies=[PostGuard])
@page_action(_not_decided)
def admin_verify(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: AdminForm,
    credential_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    return _decide(request, session, runtime, account, credential_id, verified=True, note=note)


@router.post("/admin/credentials/{credential_id}/reject", dependencies=[PostGuard])
@page_action(_not_decided)
def admin_reject(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: AdminForm,
    credential_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    return _decide(request, session, runtime, account, credential_id, verified=False, note=note)
