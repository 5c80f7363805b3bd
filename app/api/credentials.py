"""Credentials over HTTP: an expert adds, lists, re-checks and withdraws theirs and uploads the
documents of certifications and licences; admins review those documents."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from app import credentials
from app.api.schemas import ERRORS, ErrorBody
from app.bodies import FILES, Form, multipart_body, read_files
from app.deps import AdminAccount, CurrentAccount, RuntimeDep, SessionDep
from core.clock import utcnow
from marketplace import credentials as rules
from marketplace.credentials import CredentialCreate
from marketplace.errors import InvalidDocument
from marketplace.models import Credential
from marketplace.schemas import CredentialReview, CredentialView, SigningKeyPublic

router = APIRouter(tags=["credentials"], responses={401: ERRORS[401]})
CONFLICT = {"model": ErrorBody, "description": "Not checked this way"}
CONFLICT_KEY = {"model": ErrorBody, "description": "The key is registered already"}
LOOKUP = {"model": ErrorBody, "description": "A registry could not be reached"}
LOOKUP_OFF = {
    "model": ErrorBody,
    "description": "This server looks no DOIs up, or the evidence cannot be checked (a source "
    "not ingested from a git work tree, a document not ingested as a paper)",
}


class Decision(BaseModel):
    note: str = Field(
        default="", max_length=1000, description="Why; required when rejecting, shown to the expert"
    )


def _view(credential: Credential) -> CredentialView:
    return CredentialView.model_validate(rules.owner_view(credential, now=utcnow()))


def _review(session: Session, credential: Credential) -> CredentialReview:
    return CredentialReview.model_validate(credentials.admin_view(session, credential))


@router.post(
    "/credentials",
    status_code=status.HTTP_201_CREATED,
    responses={403: ERRORS[403], 404: ERRORS[404], 409: LOOKUP_OFF, 422: ERRORS[422]},
)
def add(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, body: CredentialCreate
) -> CredentialView:
    """Add a credential. Commit and paper authorship are checked at once and the figures
    returned; a certification or licence waits for its document (``POST .../document``)."""
    return _view(credentials.add(session, runtime, account=account, data=body))


@router.get("/credentials", responses={403: ERRORS[403]})
def list_own(session: SessionDep, account: CurrentAccount) -> list[CredentialView]:
    """Your credentials, whatever their status, oldest first."""
    return [_view(c) for c in credentials.list_own(session, account=account)]


@router.get("/credentials/{credential_id}", responses={404: ERRORS[404]})
def get(session: SessionDep, account: CurrentAccount, credential_id: str) -> CredentialView:
    return _view(credentials.get(session, account=account, credential_id=credential_id))


@router.post("/credentials/{credential_id}/verify", responses={404: ERRORS[404], 409: CONFLICT})
def verify(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, credential_id: str
) -> CredentialView:
    """Run the check again, e.g. after ingesting a newer commit or fixing your profile's name."""
    credential = credentials.verify(session, runtime, account=account, credential_id=credential_id)
    return _view(credential)


@router.delete(
    "/credentials/{credential_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: ERRORS[404]},
)
def withdraw(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, credential_id: str
) -> Response:
    credentials.withdraw(session, runtime, account=account, credential_id=credential_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _own_credential(session: SessionDep, account: CurrentAccount, credential_id: str) -> None:
    credentials.get(session, account=account, credential_id=credential_id)  # else 404
    session.commit()  # only reads: no connection is held while the file arrives


async def _document_upload(
    request: Request, runtime: RuntimeDep, _own: Annotated[None, Depends(_own_credential)]
) -> Form:
    budget = runtime.settings.marketplace.max_evidence_bytes
    return await read_files(request, budget=budget, max_files=1)


@router.post(
    "/credentials/{credential_id}/document",
    responses={404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]},
    openapi_extra=multipart_body({"file": "The certificate or licence: PDF, PNG, JPEG, WebP"}),
    max_body_size=FILES,
)
def upload_document(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    credential_id: str,
    form: Annotated[Form, Depends(_document_upload)],
) -> CredentialView:
    """Upload the document of a certification or licence; it waits for an admin's review."""
    files = form.files.get("file", [])
    if not files:
        raise InvalidDocument("file: attach the certificate or licence (PDF or image)")
    name, data = files[0]
    credential = credentials.attach_document(
        session, runtime, account=account, credential_id=credential_id, name=name, data=data
    )
    return _view(credential)


@router.get("/credentials/{credential_id}/document", responses={404: ERRORS[404]})
def download_document(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, credential_id: str
) -> FileResponse:
    """The uploaded document, for its expert and admins."""
    stored = credentials.document(session, runtime, account=account, credential_id=credential_id)
    return document_response(stored)


def document_response(stored: credentials.StoredDocument) -> FileResponse:
    # An attachment, never rendered inline under this site's origin.
    return FileResponse(
        stored.path,
        media_type=stored.media_type,
        filename=stored.name,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )


# Signing keys


@router.get("/signing-keys", responses={403: ERRORS[403]})
def list_signing_keys(session: SessionDep, account: CurrentAccount) -> list[SigningKeyPublic]:
    """The public keys you sign commits with; commits they sign count as yours."""
    return [
        SigningKeyPublic.model_validate(credentials.signing_key_view(k))
        for k in credentials.signing_keys(session, account=account)
    ]


@router.post(
    "/signing-keys",
    status_code=status.HTTP_201_CREATED,
    responses={403: ERRORS[403], 409: CONFLICT_KEY, 422: ERRORS[422]},
)
def add_signing_key(
    session: SessionDep, account: CurrentAccount, body: rules.SigningKeyCreate
) -> SigningKeyPublic:
    """Register an SSH or OpenPGP public key. Commit authorship checks then count the commits
    it signed (git verifies the signatures), whatever e-mail they carry."""
    return SigningKeyPublic.model_validate(
        credentials.signing_key_view(
            credentials.add_signing_key(session, account=account, data=body)
        )
    )


@router.delete(
    "/signing-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: ERRORS[404]},
)
def remove_signing_key(session: SessionDep, account: CurrentAccount, key_id: str) -> Response:
    credentials.remove_signing_key(session, account=account, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# The admin


@router.get("/admin/credentials", responses={403: ERRORS[403]})
def admin_list(session: SessionDep, _admin: AdminAccount) -> list[CredentialReview]:
    """Certifications and licences whose documents wait for review, oldest first."""
    return [_review(session, c) for c in credentials.pending(session)]


@router.post(
    "/admin/credentials/{credential_id}/verify",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: CONFLICT, 422: ERRORS[422]},
)
def admin_verify(
    session: SessionDep,
    runtime: RuntimeDep,
    admin: AdminAccount,
    credential_id: str,
    body: Decision,
) -> CredentialReview:
    """Verify an uploaded certificate or licence. Refused (403) while the expert's e-mail
    address is not verified: no credential is verified before it is."""
    credential = credentials.decide(
        session, runtime, admin=admin, credential_id=credential_id, verified=True, note=body.note
    )
    return _review(session, credential)


@router.post(
    "/admin/credentials/{credential_id}/reject",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: CONFLICT, 422: ERRORS[422]},
)
def admin_reject(
    session: SessionDep,
    runtime: RuntimeDep,
    admin: AdminAccount,
    credential_id: str,
    body: Decision,
) -> CredentialReview:
    """Reject with a note saying why (required): the expert sees it and can upload anew."""
    credential = credentials.decide(
        session, runtime, admin=admin, credential_id=credential_id, verified=False, note=body.note
    )
    return _review(session, credential)
