"""Credentials' use cases, where the marketplace's rules meet the rows they are about: an
expert's assets, the sources and documents ingestion stored, the account's e-mail and name,
the registries that are configured, uploaded documents, and the admin's decisions."""

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app import notifications
from app.accounts import ensure_verified
from app.errors import EmailUnverified
from app.models import Account, Role, SigningKey
from app.profiles import require_expert
from app.runtime import Runtime
from assets.models import Asset
from core import files
from core.clock import utcnow
from core.db import after_commit
from ingestion.errors import FileRejected
from ingestion.models import Document, Source
from ingestion.pipeline import content_hash
from ingestion.sources.paper import extract_pdf_text
from marketplace import credentials as rules
from marketplace import remotes
from marketplace.errors import (
    CredentialNotFound,
    EvidenceNotFound,
    EvidenceUnusable,
    InvalidCredential,
    InvalidDocument,
    InvalidSigningKey,
    LookupsNotConfigured,
    LookupUnavailable,
    NotMachineCheckable,
    NotReviewable,
    SigningKeyNotFound,
    SigningKeyTaken,
)
from marketplace.lookups import Lookups, build_lookups
from marketplace.models import Credential, CredentialStatus

DOCUMENTS = "credentials"
# Where an ingested paper's listed e-mail addresses are looked for: its first pages (a PDF) or
# first bytes (LaTeX, Markdown, text), in the files of its newest sources.
PAPER_FIRST_PAGES = 2
PAPER_TEXT_BYTES = 20_000
PAPER_SOURCES = 20
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
    if evidence.get("asset"):
        asset = _own_asset(session, account, evidence["asset"])
        if asset is None:
            raise EvidenceNotFound(f"you have no asset {evidence['asset']!r}")
        if data.kind == "commit_authorship":
            # Kept, so that the expert sees why it cannot verify (the platform did not fetch
            # this history); a source named must still be the asset's.
            if evidence.get("source"):
                _git_source(session, asset, evidence["source"])
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
#
# A check reads what it needs from the database first (_prepare), then does its slow part
# without it: fetching a repository, reading a paper's file, asking a registry. The request's
# reads are ended in between (_checked), so that no transaction is open meanwhile: on SQLite an
# open transaction that has written holds the database's write lock, and a fetch may take
# minutes.

Perform = Callable[[], rules.Check]


def _done(check: rules.Check) -> Perform:
    return lambda: check


def _prepare(
    session: Session, runtime: Runtime, account: Account, credential: Credential
) -> Perform:
    """What the credential's check needs, read now; the returned function does the rest
    without the database."""
    evidence = credential.evidence
    asset = _own_asset(session, account, evidence["asset"]) if evidence.get("asset") else None
    if evidence.get("asset") and asset is None:
        return _done(
            rules.unreadable_check(
                credential.method or "", f"you no longer have the asset {evidence['asset']!r}"
            )
        )
    if credential.kind == "commit_authorship":
        return _git(session, runtime, account, credential)
    if asset is not None:
        return _ingested_paper(session, account, credential, asset)
    return _looked_up_paper(runtime, account, credential)


def _checked(
    session: Session, runtime: Runtime, account: Account, credential: Credential
) -> rules.Check:
    perform = _prepare(session, runtime, account, credential)
    # Only reads so far: end them, so that no transaction is open (and no connection held)
    # while a repository is fetched or a registry asked. The outcome is stored afterwards in
    # a short transaction of its own.
    session.commit()
    return perform()


def signers_of(session: Session, account: Account) -> rules.Signers:
    """The account's registered signing keys, as the git check uses them."""
    keys = session.exec(select(SigningKey).where(SigningKey.account_id == account.id)).all()
    return rules.Signers(
        ssh=tuple(k.public_key for k in keys if k.kind == "ssh"),
        gpg=tuple(k.public_key for k in keys if k.kind == "gpg"),
        fingerprints=frozenset(k.fingerprint for k in keys),
    )


def _git(session: Session, runtime: Runtime, account: Account, credential: Credential) -> Perform:
    """Fetch the named public repository (blocking: callers run in a worker thread) and read
    its history; history the platform did not fetch itself proves nothing."""
    remote = credential.evidence.get("remote")
    if not remote:
        return _done(rules.not_fetched_check())
    ref = credential.evidence.get("ref")
    settings = runtime.settings.marketplace
    remotes_dir = runtime.settings.data_dir / "remotes"
    # An e-mail address nobody proved receiving mail at is anyone's to type into a commit.
    emails = {account.email.lower()} if account.email_verified_at is not None else set()
    signers = signers_of(session, account)

    def perform() -> rules.Check:
        try:
            mirror, commit = remotes.fetch(
                remote,
                remotes=remotes_dir,
                ref=ref,
                timeout=settings.remote_timeout_seconds,
                allow_private=settings.allow_private_remotes,
            )
        except remotes.RemoteRefused as exc:
            return rules.Check(
                CredentialStatus.rejected,
                "git_history",
                {"remote": remote},
                f"Not verified: {exc}.",
            )
        except remotes.RemoteUnavailable as exc:
            return rules.unreadable_check("git_history", f"{remote}: {exc}", {"remote": remote})
        try:
            history = rules.read_git_history(mirror, commit=commit, emails=emails, signers=signers)
        except rules.GitUnreadable as exc:
            figures = {"remote": remote, "commit_checked": commit}
            return rules.unreadable_check("git_history", str(exc), figures)
        return rules.git_check(history, commit=commit, remote=remote, ref=ref)

    return perform


def _unproved_email(account: Account, check: rules.Check) -> rules.Check:
    """No credential is verified for an account whose e-mail is not verified: the outcome
    waits (unverified), saying so; a rejection for another reason stands."""
    try:
        ensure_verified(account, "hold a verified credential")
    except EmailUnverified as exc:
        waits = (
            check.status == CredentialStatus.verified
            or (check.method == "git_history" and check.figures.get("commit_checked"))
            # The paper lists the address: it proves authorship once it is verified.
            or bool(check.figures.get("email_listed"))
        )
        if waits:
            before = check.note.removeprefix("Verified: ").removeprefix("Not verified: ")
            return rules.Check(
                CredentialStatus.unverified,
                check.method,
                check.figures,
                f"Not verified yet: verify your e-mail first ({exc.message}); commits under "
                f"your e-mail address count only once it is verified. The check found: {before}"
                if check.method == "git_history"
                else f"Not verified yet: verify your e-mail first ({exc.message}). The check "
                f"found: {before}",
            )
    return check


def _paper_files(session: Session, asset: Asset, document: Document) -> list[tuple[Path, str]]:
    """Where the file ingested as ``document`` may still be on disk, newest source first, with
    the kind its source asked for: the document's content hash tells which one it is."""
    scheme, _, rest = document.source_key.partition(":")
    statement = (
        select(Source.location, Source.kind)
        .where(Source.asset_id == asset.id, Source.origin == scheme)
        .order_by(col(Source.created_at).desc(), col(Source.id).desc())
        .limit(PAPER_SOURCES)
    )
    if scheme == "local":
        statement = statement.where(Source.location == rest)
    elif scheme != "upload":
        return []
    files: list[tuple[Path, str]] = []
    for location, kind in session.exec(statement).all():
        # A local file, or an uploaded one, is its own document; else the document's path is
        # inside the folder (a local one, or an uploaded one named ``rest``).
        base = Path(location) if scheme == "local" else Path(location) / rest
        if document.path == base.name:
            files.append((base, kind))
        files.append((base / document.path, kind))
    return files


def _paper_text(files: list[tuple[Path, str]], expected: str) -> str | None:
    """The first pages' text of the ingested file (the one whose content hash matches), or
    None when it is gone or has no text layer."""
    for path, kind in files:
        try:
            if not path.is_file():
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if content_hash(kind, data) != expected:
            continue
        if not data.startswith(b"%PDF-"):
            return data[:PAPER_TEXT_BYTES].decode("utf-8", errors="replace")
        try:
            pages = extract_pdf_text(data).split("\f")
        except FileRejected:
            return None
        return "\n".join(pages[:PAPER_FIRST_PAGES])
    return None


def _ingested_paper(
    session: Session, account: Account, credential: Credential, asset: Asset
) -> Perform:
    document = session.get(Document, credential.evidence.get("document", ""))
    if document is None or document.asset_id != asset.id:
        return _done(
            rules.unreadable_check(
                "paper_authors", f"the paper is no longer in {asset.slug!r}; ingest it again"
            )
        )
    meta = document.meta

    def strings(key: str) -> list[str]:
        value = meta.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    about = {"asset": asset.slug, "document": document.id, "path": document.path}
    about.update({k: meta[k] for k in ("title", "doi") if isinstance(meta.get(k), str)})
    files, expected = _paper_files(session, asset, document), document.content_hash
    name, orcid, email = account.name, account.orcid, account.email
    email_verified = account.email_verified_at is not None

    def perform() -> rules.Check:
        text = _paper_text(files, expected)
        return rules.paper_check(
            method="paper_authors",
            name=name,
            orcid=orcid,
            authors=strings("authors"),
            orcids=strings("orcids"),
            about=about,
            email=email,
            email_verified=email_verified,
            emails_listed=rules.emails_in(text) if text is not None else None,
        )

    return perform


def _looked_up_paper(runtime: Runtime, account: Account, credential: Credential) -> Perform:
    """The DOI registry's authors first; else the expert's ORCID record's works."""
    doi = credential.evidence["doi"]
    method = credential.method or "doi"
    # Proved by ORCID's sign-in; a profile's typed iD proves nothing.
    name, orcid = account.name, account.orcid
    return lambda: _look_up(runtime, doi=doi, method=method, name=name, orcid=orcid)


def _look_up(
    runtime: Runtime, *, doi: str, method: str, name: str, orcid: str | None
) -> rules.Check:
    lookups = lookups_of(runtime)
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
                checks.append(rules.doi_check(record, name=name, orcid=orcid))
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
                checks.append(rules.orcid_works_check(record, doi=doi, orcid=orcid))
    except LookupUnavailable as exc:
        return rules.unreadable_check(method, exc.message.rstrip("."), {"doi": doi})
    verified = next((c for c in checks if c.status == "verified"), None)
    if verified is not None:
        return verified
    if not checks:
        return rules.unreadable_check(
            "orcid",
            "only ORCID lookups are on, and no ORCID iD is proved for your account: sign in "
            "with ORCID on your account page",
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


def _store(
    session: Session, account: Account, credential: Credential, check: rules.Check
) -> Credential:
    """Store a check's outcome in a new, short transaction: the account is read again, as its
    e-mail may have been verified (or it suspended) while the check ran."""
    owner = session.get(Account, account.id, populate_existing=True)
    if owner is None:
        raise CredentialNotFound("your account no longer exists")
    rules.apply_check(credential, _unproved_email(owner, check), now=utcnow())
    session.add(credential)
    session.flush()
    return credential


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
    if method == "admin_review":
        credential.note = WAITING_FOR_DOCUMENT
        session.add(credential)
        session.flush()
        return credential
    # Stored only with its outcome: nothing is written before the check has run.
    return _store(session, account, credential, _checked(session, runtime, account, credential))


def get(session: Session, *, account: Account, credential_id: str) -> Credential:
    """The account's own credential (any, for an admin); 404 for anyone else's."""
    credential = session.get(Credential, credential_id)
    if credential is None or not (
        credential.account_id == account.id or account.role == Role.admin
    ):
        raise CredentialNotFound(f"you have no credential {credential_id}")
    return credential


def _own(
    session: Session, account: Account, credential_id: str, *, fresh: bool = False
) -> Credential:
    credential = session.get(Credential, credential_id, populate_existing=fresh)
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
    check = _checked(session, runtime, account, credential)
    # Read again: it may have been withdrawn, or checked by another request, meanwhile.
    credential = _own(session, account, credential_id, fresh=True)
    return _store(session, account, credential, check)


def withdraw(session: Session, runtime: Runtime, *, account: Account, credential_id: str) -> None:
    """Delete the expert's credential and its uploaded document."""
    credential = _own(session, account, credential_id)
    session.delete(credential)
    session.flush()
    folder = runtime.settings.uploads_path / DOCUMENTS / credential.id
    files.forget(session, _document_key(runtime, f"{DOCUMENTS}/{credential.id}/"))
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
    # In the database too, for the replicas that did not receive it.
    key = _document_key(runtime, stored)
    target = files.keep(session, runtime.settings.data_dir, key, data)
    files.forget(session, _document_key(runtime, f"{DOCUMENTS}/{credential.id}/"), keep_path=key)
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


def _document_key(runtime: Runtime, stored: str) -> str:
    """A document's path relative to the data dir (``stored`` is relative to the uploads)."""
    settings = runtime.settings
    return (settings.uploads_path.relative_to(settings.data_dir) / stored).as_posix()


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
    data_dir = runtime.settings.data_dir
    path = (
        files.local(session, data_dir, _document_key(runtime, str(stored["stored"])))
        if stored
        else None
    )
    if stored is None or path is None:
        raise CredentialNotFound(f"credential {credential_id} has no uploaded document")
    return StoredDocument(path, str(stored["media_type"]), str(stored["name"]))


# Signing keys


def signing_keys(session: Session, *, account: Account) -> list[SigningKey]:
    """The keys the account signs its commits with, oldest first."""
    require_expert(account, "signing keys")
    return list(
        session.exec(
            select(SigningKey)
            .where(SigningKey.account_id == account.id)
            .order_by(col(SigningKey.created_at), col(SigningKey.id))
        )
    )


def add_signing_key(
    session: Session, *, account: Account, data: rules.SigningKeyCreate
) -> SigningKey:
    """Register a public key; commits it signs count as the account's. A key belongs to one
    account: registering one already registered is refused."""
    require_expert(account, "signing keys")
    # Only reads so far: none is left open while ssh-keygen or gpg reads the key.
    session.commit()
    try:
        kind, text, fingerprint = rules.signing_key(data.public_key)
    except ValueError as exc:
        raise InvalidSigningKey(f"public_key: {exc}") from exc
    taken = session.exec(select(SigningKey).where(SigningKey.fingerprint == fingerprint)).first()
    if taken is not None:
        whose = "your account" if taken.account_id == account.id else "another account"
        raise SigningKeyTaken(f"the key {fingerprint} is registered to {whose} already")
    key = SigningKey(
        account_id=account.id,
        kind=kind,
        public_key=text,
        fingerprint=fingerprint,
        label=" ".join(data.label.split()),
    )
    session.add(key)
    session.flush()
    return key


def remove_signing_key(session: Session, *, account: Account, key_id: str) -> None:
    """Remove the account's key; commits it signed no longer count at the next check."""
    key = session.get(SigningKey, key_id)
    if key is None or key.account_id != account.id:
        raise SigningKeyNotFound(f"you have no signing key {key_id}")
    session.delete(key)
    session.flush()


def signing_key_view(key: SigningKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "kind": key.kind,
        "fingerprint": key.fingerprint,
        "label": key.label,
        "public_key": key.public_key,
        "created_at": key.created_at.isoformat(),
    }


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
    expert = session.get(Account, credential.account_id)
    if verified and (expert is None or expert.email_verified_at is None):
        # As for the machine checks: no credential is verified for an unproved address.
        raise EmailUnverified(
            f"{expert.email if expert else 'the expert'} has not verified their e-mail address "
            "yet, and no credential is verified before it is: they can resend the link from "
            "/account. Verify this credential once they have, or reject it with a note"
        )
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
        # Only an account that proved its address can be given a verified credential.
        "email_verified": bool(expert and expert.email_verified_at is not None),
    }
    return view
