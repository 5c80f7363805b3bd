"""Credentials' use cases, where the marketplace's rules meet the rows they are about: an
expert's assets, the sources and documents ingestion stored, the account's e-mail and name,
the registries that are configured, uploaded documents, and the admin's decisions."""

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app import notifications
from app.models import Account, Role
from app.profiles import require_expert, stored_profile
from app.runtime import Runtime
from assets.models import Asset
from core.clock import utcnow
from core.db import after_commit
from ingestion.models import Document, Source
from marketplace import credentials as rules
from marketplace.errors import (
    CredentialNotFound,
    EvidenceNotFound,
    EvidenceUnusable,
    InvalidCredential,
    InvalidDocument,
    LookupsNotConfigured,
    LookupUnavailable,
    NotMachineCheckable,
    NotReviewable,
)
from marketplace.lookups import Lookups, build_lookups
from marketplace.models import Credential, CredentialStatus

DOCUMENTS = "credentials"
WAITING_FOR_DOCUMENT = "Waiting for the document: upload it for an admin to review."
WAITING_FOR_ADMIN = "Waiting for an admin to review the document."


def lookups_of(runtime: Runtime) -> Lookups:
    return build_lookups(runtime.settings.marketplace)


# Resolving evidence into rows


def _own_asset(session: Session, account: Account, slug: str) -> Asset | None:
    return session.exec(
        select(Asset).where(Asset.slug == slug, Asset.owner_id == account.id)
    ).first()


def _git_source(session: Session, asset: Asset, source_id: str | None) -> Source:
    """The named source of ``asset``, or its latest one ingested from a git work tree."""
    if source_id:
        source = session.get(Source, source_id)
        if source is None or source.asset_id != asset.id:
            raise EvidenceNotFound(f"asset {asset.slug!r} has no source {source_id!r}")
        if source.origin != "local" or not source.commit:
            raise EvidenceUnusable(
                f"source {source_id} of {asset.slug!r} was not ingested from a local git work "
                "tree, so it has no history to read; ingest the repository's work tree "
                "(vouch ingest) and name that source"
            )
        return source
    source = session.exec(
        select(Source)
        .where(
            Source.asset_id == asset.id,
            Source.origin == "local",
            col(Source.commit).is_not(None),
        )
        .order_by(col(Source.created_at).desc(), col(Source.id).desc())
    ).first()
    if source is None:
        raise EvidenceUnusable(
            f"asset {asset.slug!r} has no source ingested from a local git work tree; ingest "
            "the repository's work tree into it (vouch ingest) first"
        )
    return source


def _paper(session: Session, asset: Asset, document_id: str | None, path: str | None) -> Document:
    statement = select(Document).where(Document.asset_id == asset.id)
    if document_id:
        statement = statement.where(Document.id == document_id)
    else:
        statement = statement.where(Document.path == path)
    document = session.exec(statement.order_by(col(Document.updated_at).desc())).first()
    if document is None:
        named = f"document {document_id!r}" if document_id else f"document at {path!r}"
        raise EvidenceNotFound(f"asset {asset.slug!r} has no {named}")
    if document.kind != "paper":
        raise EvidenceUnusable(
            f"{document.path} was ingested as {document.kind}, not as a paper, so no authors "
            "were read from it; ingest it with kind paper"
        )
    return document


def _resolve(
    session: Session, runtime: Runtime, account: Account, data: rules.CredentialCreate
) -> tuple[dict[str, Any], str]:
    """The evidence with the rows it names pinned by id, and the method that will check it;
    InvalidCredential (422) for evidence that names nothing of the expert's."""
    evidence = data.evidence.model_dump(exclude_none=True)
    method = rules.METHODS[data.kind]
    if data.kind == "commit_authorship" or evidence.get("asset"):
        asset = _own_asset(session, account, evidence["asset"])
        if asset is None:
            raise EvidenceNotFound(f"you have no asset {evidence['asset']!r}")
        if data.kind == "commit_authorship":
            # Checked now, but not pinned: without a named source each check reads the
            # latest git work tree ingested into the asset.
            _git_source(session, asset, evidence.get("source"))
        else:
            document = _paper(session, asset, evidence.get("document"), evidence.get("path"))
            evidence.update(document=document.id, path=document.path)
    elif data.kind == "paper_authorship":
        lookups = lookups_of(runtime)
        if lookups.doi is None and lookups.orcid is None:
            raise LookupsNotConfigured(
                "this server looks no DOIs up (no DOI or ORCID registry is configured): "
                "ingest the paper into one of your assets and name it instead"
            )
        method = "doi" if lookups.doi is not None else "orcid"
    return evidence, method


# Checks


def _check(
    session: Session, runtime: Runtime, account: Account, credential: Credential
) -> rules.Check:
    evidence = credential.evidence
    asset = _own_asset(session, account, evidence["asset"]) if evidence.get("asset") else None
    if evidence.get("asset") and asset is None:
        return rules.unreadable_check(
            credential.method or "", f"you no longer have the asset {evidence['asset']!r}"
        )
    if credential.kind == "commit_authorship":
        return _git(session, account, credential, asset)
    if asset is not None:
        return _ingested_paper(session, account, credential, asset)
    return _looked_up_paper(session, runtime, account, credential)


def _git(
    session: Session, account: Account, credential: Credential, asset: Asset | None
) -> rules.Check:
    if asset is None:
        return rules.unreadable_check("git_history", "the credential names no asset")
    try:
        source = _git_source(session, asset, credential.evidence.get("source"))
    except InvalidCredential as exc:
        return rules.unreadable_check("git_history", exc.message)
    assert source.commit is not None  # _git_source returns git sources only
    try:
        history = rules.read_git_history(
            Path(source.location), commit=source.commit, emails={account.email.lower()}
        )
    except rules.GitUnreadable as exc:
        figures = {"commit_checked": source.commit, "path": source.location}
        return rules.unreadable_check("git_history", str(exc), figures)
    return rules.git_check(history, commit=source.commit, path=source.location)


def _ingested_paper(
    session: Session, account: Account, credential: Credential, asset: Asset
) -> rules.Check:
    document = session.get(Document, credential.evidence.get("document", ""))
    if document is None or document.asset_id != asset.id:
        return rules.unreadable_check(
            "paper_authors", f"the paper is no longer in {asset.slug!r}; ingest it again"
        )
    meta = document.meta

    def strings(key: str) -> list[str]:
        value = meta.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    about = {"asset": asset.slug, "document": document.id, "path": document.path}
    about.update({k: meta[k] for k in ("title", "doi") if isinstance(meta.get(k), str)})
    return rules.paper_check(
        method="paper_authors",
        name=account.name,
        orcid=stored_profile(session, account.id).orcid,
        authors=strings("authors"),
        orcids=strings("orcids"),
        about=about,
    )


def _looked_up_paper(
    session: Session, runtime: Runtime, account: Account, credential: Credential
) -> rules.Check:
    """The DOI registry's authors first; else the expert's ORCID record's works."""
    doi = credential.evidence["doi"]
    lookups = lookups_of(runtime)
    orcid = stored_profile(session, account.id).orcid
    checks: list[rules.Check] = []
    try:
        if lookups.doi is not None:
            record = lookups.doi.fetch(doi)
            if record is None:
                checks.append(
                    rules.Check(
                        CredentialStatus.rejected,
                        "doi",
                        {"doi": doi},
                        f"Not verified: the DOI registry has no record of {doi}.",
                    )
                )
            else:
                checks.append(rules.doi_check(record, name=account.name, orcid=orcid))
        if lookups.orcid is not None and orcid and not any(c.status == "verified" for c in checks):
            record = lookups.orcid.fetch(orcid)
            if record is None:
                checks.append(
                    rules.Check(
                        CredentialStatus.rejected,
                        "orcid",
                        {"doi": doi, "orcid": orcid},
                        f"Not verified: ORCID has no record {orcid}.",
                    )
                )
            else:
                checks.append(rules.orcid_works_check(record, doi=doi, name=account.name))
    except LookupUnavailable as exc:
        return rules.unreadable_check(
            credential.method or "doi", exc.message.rstrip("."), {"doi": doi}
        )
    verified = next((c for c in checks if c.status == "verified"), None)
    if verified is not None:
        return verified
    if not checks:
        return rules.unreadable_check(
            "orcid",
            "only ORCID lookups are on, and your profile has no ORCID iD: add it to your profile",
            {"doi": doi},
        )
    if len(checks) == 1:
        return checks[0]
    first, second = checks
    return rules.Check(
        CredentialStatus.rejected,
        first.method,
        {**first.figures, "orcid_check": second.figures},
        f"{first.note} {second.note.removeprefix('Not verified: ')}",
    )


def _run(session: Session, runtime: Runtime, account: Account, credential: Credential) -> None:
    rules.apply_check(credential, _check(session, runtime, account, credential), now=utcnow())
    session.add(credential)
    session.flush()


# The expert


def add(
    session: Session, runtime: Runtime, *, account: Account, data: rules.CredentialCreate
) -> Credential:
    """Record a credential and, when the platform can check it itself, check it now."""
    require_expert(account, "credentials")
    # A date already past is kept: the credential shows as expired, as it would have later.
    evidence, method = _resolve(session, runtime, account, data)
    credential = Credential(
        account_id=account.id,
        kind=data.kind,
        claim=data.claim,
        domain=data.domain,
        evidence=evidence,
        status=CredentialStatus.unverified,
        method=method,
        expires_at=data.expires_at,
    )
    session.add(credential)
    session.flush()
    if method == "admin_review":
        credential.note = WAITING_FOR_DOCUMENT
    else:
        _run(session, runtime, account, credential)
    return credential


def get(session: Session, *, account: Account, credential_id: str) -> Credential:
    """The account's own credential (any, for an admin); 404 for anyone else's."""
    credential = session.get(Credential, credential_id)
    if credential is None or not (
        credential.account_id == account.id or account.role == Role.admin
    ):
        raise CredentialNotFound(f"you have no credential {credential_id}")
    return credential


def _own(session: Session, account: Account, credential_id: str) -> Credential:
    credential = session.get(Credential, credential_id)
    if credential is None or credential.account_id != account.id:
        raise CredentialNotFound(f"you have no credential {credential_id}")
    return credential


def list_own(session: Session, *, account: Account) -> list[Credential]:
    require_expert(account, "credentials")
    return list(
        session.exec(
            select(Credential)
            .where(Credential.account_id == account.id)
            .order_by(col(Credential.created_at), col(Credential.id))
        )
    )


def verify(
    session: Session, runtime: Runtime, *, account: Account, credential_id: str
) -> Credential:
    """Run the credential's check again (the repository or paper may have changed)."""
    credential = _own(session, account, credential_id)
    if credential.method == "admin_review":
        raise NotMachineCheckable(
            "an admin reviews certifications and licences: upload the document and wait for "
            "the decision"
        )
    _run(session, runtime, account, credential)
    return credential


def withdraw(session: Session, runtime: Runtime, *, account: Account, credential_id: str) -> None:
    """Delete the expert's credential and its uploaded document."""
    credential = _own(session, account, credential_id)
    session.delete(credential)
    session.flush()
    folder = runtime.settings.uploads_path / DOCUMENTS / credential.id
    after_commit(session, lambda: shutil.rmtree(folder, ignore_errors=True))


def attach_document(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    credential_id: str,
    name: str,
    data: bytes,
) -> Credential:
    """Store the certificate or licence (PDF or image) for an admin to review; a new document
    replaces the old and waits for a new decision."""
    credential = _own(session, account, credential_id)
    if credential.method != "admin_review":
        raise InvalidCredential(
            f"a {credential.kind} credential is checked by the platform, not from a document; "
            "only certifications and licences take one"
        )
    limit = runtime.settings.marketplace.max_evidence_bytes
    if len(data) > limit:
        raise InvalidDocument(
            f"the document is larger than the {limit} byte limit", status_code=413
        )
    try:
        suffix, media_type = rules.document_type(name, data)
    except ValueError as exc:
        raise InvalidDocument(str(exc)) from exc
    digest = hashlib.sha256(data).hexdigest()
    # A new name per content: the old file stays until the new row is committed.
    stored = f"{DOCUMENTS}/{credential.id}/{digest[:16]}{suffix}"
    target = runtime.settings.uploads_path / stored
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    after_commit(session, lambda: _remove_others(target))
    credential.evidence = {
        **credential.evidence,
        "document": {
            "name": rules.display_name(name),
            "media_type": media_type,
            "bytes": len(data),
            "sha256": digest,
            "stored": stored,
            "uploaded_at": utcnow().isoformat(),
        },
    }
    credential.status = CredentialStatus.unverified
    credential.note = WAITING_FOR_ADMIN
    credential.verified_by = None
    credential.verified_at = None
    session.add(credential)
    session.flush()
    return credential


def _remove_others(kept: Path) -> None:
    for path in kept.parent.iterdir():
        if path != kept:
            path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    path: Path
    media_type: str
    name: str


def document(
    session: Session, runtime: Runtime, *, account: Account, credential_id: str
) -> StoredDocument:
    """The uploaded document, for its expert or an admin."""
    credential = get(session, account=account, credential_id=credential_id)
    stored = rules.document_of(credential)
    path = runtime.settings.uploads_path / str(stored["stored"]) if stored else None
    if stored is None or path is None or not path.is_file():
        raise CredentialNotFound(f"credential {credential_id} has no uploaded document")
    return StoredDocument(path, str(stored["media_type"]), str(stored["name"]))


# The admin


def pending(session: Session) -> list[Credential]:
    """Certifications and licences with a document, waiting for an admin, oldest first."""
    waiting = session.exec(
        select(Credential)
        .where(
            Credential.method == "admin_review", Credential.status == CredentialStatus.unverified
        )
        .order_by(col(Credential.created_at), col(Credential.id))
    ).all()
    return [c for c in waiting if rules.document_of(c) is not None]


def decide(
    session: Session,
    runtime: Runtime,
    *,
    admin: Account,
    credential_id: str,
    verified: bool,
    note: str,
) -> Credential:
    """An admin verifies or rejects an uploaded certificate or licence; the expert is told."""
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise CredentialNotFound(f"no credential {credential_id}")
    if credential.method != "admin_review":
        raise NotReviewable(
            f"credential {credential_id} is checked by its {credential.method} check, not by "
            "an admin"
        )
    if rules.document_of(credential) is None:
        raise NotReviewable(f"credential {credential_id} has no document to review yet")
    try:
        rules.decide(credential, admin_id=admin.id, verified=verified, note=note, now=utcnow())
    except ValueError as exc:
        raise InvalidCredential(str(exc)) from exc
    session.add(credential)
    session.flush()
    outcome = "verified" if verified else "rejected"
    notifications.notify(
        session,
        runtime,
        account_id=credential.account_id,
        kind=f"credential.{outcome}",
        message=f"Your credential {credential.claim!r} was {outcome}"
        + (f": {credential.note}" if credential.note else ""),
        data={"credential": credential.id, "status": outcome},
    )
    return credential


def admin_view(session: Session, credential: Credential) -> dict[str, Any]:
    """A credential with its expert's name and e-mail, for the admin's list."""
    expert = session.get(Account, credential.account_id)
    view = rules.owner_view(credential, now=utcnow())
    view["expert"] = {
        "id": credential.account_id,
        "name": expert.name if expert else "",
        "email": expert.email if expert else "",
    }
    return view
