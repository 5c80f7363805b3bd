"""Credentials and their verification, as rules over plain values: the app gathers the rows
(assets, sources, documents, the account) and stores what these functions decide.

Kinds and how each is verified (the credential's ``method``):

- ``commit_authorship`` -> ``git_history``: the share of commits and of lines added, in a git
  work tree the expert ingested into their own asset, authored under the expert's e-mail.
- ``paper_authorship`` -> ``paper_authors``: the expert's name or ORCID iD among the authors
  that ingestion read from a paper in their asset; for a paper that is not ingested, ``doi``
  (the DOI registry's author list) or ``orcid`` (the expert's ORCID record lists the work).
- ``certification``, ``licence`` -> ``admin_review``: an uploaded document an admin verifies
  or rejects with a note.

Statuses: ``unverified`` (not checked yet, could not be checked, or waiting for an admin),
``verified``, ``rejected`` (checked, and the evidence does not support the claim; or an admin
said no), and ``expired``, computed on read once ``expires_at`` has passed.

What these checks can and cannot prove: git author fields and profile names are whatever their
writer typed, so a check shows that the evidence names the expert, not who really wrote it.
"""

import os
import re
import subprocess
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assets.schemas import TAG, TAG_INPUT
from core.patterns import NON_SPACE, NOT_BLANK, SPACE, documented
from marketplace.lookups import DOI, Record
from marketplace.models import Credential, CredentialStatus
from marketplace.profiles import names_match

Kind = Literal["commit_authorship", "paper_authorship", "certification", "licence"]
METHODS: dict[str, str] = {
    "commit_authorship": "git_history",
    "paper_authorship": "paper_authors",
    "certification": "admin_review",
    "licence": "admin_review",
}
# The share of a repository's commits an expert must have authored for commit authorship to
# count. A tenth: high enough that a handful of drive-by fixes in a large project do not make
# someone its expert, low enough that one of ten regular maintainers qualifies. Lines are shown
# but do not decide, since one vendored or generated import can outweigh years of commits.
COMMIT_SHARE_MIN = 0.10
GIT_TIMEOUT_SECONDS = 120
# Figures anyone may see: what a check measured and its public subject (a commit, a paper, an
# ORCID record). Listed, not excluded, so that a figure a check adds stays with the expert and
# admins until it is added here; e-mail addresses, paths on this server and the addresses of
# the registries asked never are.
PUBLIC_FIGURES = frozenset({
    "commits", "total_commits", "commit_share", "lines", "total_lines", "line_share",
    "commit_checked", "threshold",  # git_history
    "title", "doi", "authors", "matched_author", "orcid", "orcid_matched",  # a paper's authors
    "record_names", "works", "doi_in_works", "name_matched",  # an ORCID record's works
})  # fmt: skip
_HEX = re.compile(r"^[0-9a-f]{7,64}$")
_NUMSTAT = re.compile(r"^(\d+|-)\t(\d+|-)\t")

# Input


class Evidence(BaseModel):
    """What backs a claim; which fields apply depends on the credential's kind."""

    model_config = ConfigDict(extra="forbid")

    asset: str | None = Field(default=None, max_length=64, description="Your asset's slug")
    source: str | None = Field(
        default=None,
        max_length=40,
        description="A source of that asset (commits); else the latest git one",
    )
    document: str | None = Field(
        default=None, max_length=40, description="A paper's document id in that asset"
    )
    path: str | None = Field(
        default=None, max_length=1000, description="Or the paper's path in that asset"
    )
    doi: str | None = Field(
        default=None, max_length=300, description="A paper's DOI, looked up when not ingested"
    )
    issuer: str | None = Field(
        default=None, max_length=200, description="Who issued the certificate or licence"
    )
    number: str | None = Field(default=None, max_length=100, description="Its number or identifier")

    @field_validator("asset", "source", "document", "path", "issuer", "number")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None

    @field_validator("doi")
    @classmethod
    def _doi(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        doi = re.sub(
            r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", "", value.strip(), flags=re.I
        ).lower()
        if not DOI.match(doi):
            raise ValueError(f"{value!r} is not a DOI: write it as 10.1234/abc")
        return doi


_ALLOWED: dict[str, tuple[str, ...]] = {
    "commit_authorship": ("asset", "source"),
    "paper_authorship": ("asset", "document", "path", "doi"),
    "certification": ("issuer", "number"),
    "licence": ("issuer", "number"),
}
_EXPLAIN = {
    "commit_authorship": "name your asset (and optionally the source) the git repository "
    "was ingested into",
    "paper_authorship": "name your asset and the paper's document id or path in it, or give "
    "the paper's DOI",
    "certification": "name the issuer and number; the certificate itself is uploaded as a document",
    "licence": "name the issuer and number; the licence itself is uploaded as a document",
}


# The rules of CredentialCreate's validator below, stated for the API's document.
_BLANK = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": rf"^{SPACE}*$"}]}
_GIVEN = {"type": "string", "pattern": NOT_BLANK}
DOI_INPUT = (
    rf"^{SPACE}*(?:[Hh][Tt][Tt][Pp][Ss]?://(?:[Dd][Xx]\.)?[Dd][Oo][Ii]\.[Oo][Rr][Gg]/|"
    rf"[Dd][Oo][Ii]:)?10\.[0-9]{{4,9}}/{NON_SPACE}+{SPACE}*$"
)


def _evidence(given: dict[str, Any], blank: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**given, **dict.fromkeys(blank, _BLANK)},
        "required": [name for name in given if given[name] is not _BLANK],
    }


def _kind_rules(schema: dict[str, Any]) -> None:
    no_expiry = {"anyOf": [{"type": "null"}]}
    schema["oneOf"] = [
        {
            "properties": {
                "kind": {"const": "commit_authorship"},
                "expires_at": no_expiry,
                "evidence": _evidence(
                    {"asset": _GIVEN}, ("document", "path", "doi", "issuer", "number")
                ),
            },
            "required": ["evidence"],
        },
        {
            "properties": {
                "kind": {"const": "paper_authorship"},
                "expires_at": no_expiry,
                "evidence": {
                    "anyOf": [
                        _evidence(
                            {"asset": _GIVEN, "document": _GIVEN},
                            ("doi", "source", "issuer", "number"),
                        ),
                        _evidence(
                            {"asset": _GIVEN, "path": _GIVEN},
                            ("doi", "source", "issuer", "number"),
                        ),
                        _evidence(
                            {"doi": {"type": "string", "pattern": DOI_INPUT}},
                            ("asset", "document", "path", "source", "issuer", "number"),
                        ),
                    ]
                },
            },
            "required": ["evidence"],
        },
        {
            "properties": {
                "kind": {"enum": ["certification", "licence"]},
                "evidence": _evidence({}, ("asset", "source", "document", "path", "doi")),
            },
        },
    ]


class CredentialCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra=_kind_rules)

    kind: Kind
    claim: str = Field(
        min_length=1,
        max_length=500,
        examples=["Core maintainer of the request-routing module"],
        json_schema_extra=documented(NOT_BLANK),
    )
    domain: str | None = Field(
        default=None,
        description="A domain tag the claim is about",
        json_schema_extra=documented(TAG_INPUT),
    )
    evidence: Evidence = Field(default_factory=Evidence)
    expires_at: datetime | None = Field(
        default=None, description="When a certificate or licence lapses (UTC when no zone given)"
    )

    @field_validator("claim")
    @classmethod
    def _claim(cls, value: str) -> str:
        claim = " ".join(value.split())
        if not claim:
            raise ValueError("the claim is blank")
        return claim

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        domain = value.strip().lower()
        if not TAG.match(domain):
            raise ValueError(f"domain {value!r}: use 1-32 lowercase letters, digits and dashes")
        return domain

    @field_validator("expires_at")
    @classmethod
    def _expires(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _evidence(self) -> "CredentialCreate":
        given = {k for k, v in self.evidence.model_dump().items() if v is not None}
        extra = given - set(_ALLOWED[self.kind])
        if extra:
            raise ValueError(
                f"evidence for {self.kind} does not take {', '.join(sorted(extra))}: "
                f"{_EXPLAIN[self.kind]}"
            )
        ev = self.evidence
        if self.kind == "commit_authorship" and not ev.asset:
            raise ValueError(f"evidence for commit_authorship: {_EXPLAIN[self.kind]}")
        if self.kind == "paper_authorship":
            ingested = bool(ev.asset and (ev.document or ev.path))
            if ev.doi and (ev.asset or ev.document or ev.path):
                raise ValueError(
                    "evidence for paper_authorship: give either your asset and the paper in it, "
                    "or a DOI, not both"
                )
            if not (ingested or ev.doi):
                raise ValueError(f"evidence for paper_authorship: {_EXPLAIN[self.kind]}")
        if self.expires_at is not None and self.kind in ("commit_authorship", "paper_authorship"):
            raise ValueError("only certifications and licences expire")
        return self


# Checks


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one verification: what it measured and what it concluded."""

    status: CredentialStatus
    method: str
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _percent(share: float) -> str:
    return f"{round(share * 100, 1):g}%"


@dataclass(frozen=True, slots=True)
class GitHistory:
    """Commits and lines added at one commit of a repository, and which of them are whose."""

    commits: int
    total_commits: int
    lines: int
    total_lines: int
    emails_matched: tuple[str, ...]


def parse_log(output: str, emails: set[str]) -> GitHistory:
    """Count ``git log --format=%x1e%H%x1f%ae --numstat`` output; ``emails`` are lower case."""
    commits = total_commits = lines = total_lines = 0
    matched: list[str] = []
    for record in output.split("\x1e")[1:]:
        header, _, rest = record.partition("\n")
        _, _, email = header.partition("\x1f")
        email = email.strip().lower()
        added = 0
        for line in rest.splitlines():
            found = _NUMSTAT.match(line)
            if found and found.group(1) != "-":  # "-": a binary file, no lines to count
                added += int(found.group(1))
        total_commits += 1
        total_lines += added
        if email in emails:
            commits += 1
            lines += added
            if email not in matched:
                matched.append(email)
    return GitHistory(commits, total_commits, lines, total_lines, tuple(matched))


class GitUnreadable(Exception):
    """The repository or its recorded commit cannot be read (moved, deleted, not git)."""


def _git_env() -> dict[str, str]:
    # Without the caller's GIT_* variables: GIT_DIR and friends would point git elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def read_git_history(path: Path, *, commit: str, emails: set[str]) -> GitHistory:
    """Authorship of the history reachable from ``commit`` under ``path`` (a work tree or a
    folder of one: only that folder's changes count). Merges are left out: they record joining
    work, not writing it. Author e-mails are read as recorded (``%ae``), not through the
    repository's own .mailmap, which its owner could point at anyone's address."""
    if not _HEX.match(commit):
        raise GitUnreadable(f"{commit!r} is not a commit id")
    if not path.is_dir():
        raise GitUnreadable(f"the work tree {path} is gone; ingest the repository again")
    command = [
        "git", "-C", str(path), "log", "--no-merges", "--no-ext-diff", "--no-textconv",
        "--no-color", "-M", "--format=%x1e%H%x1f%ae", "--numstat", commit, "--", ".",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
            env=_git_env(),
        )
    except FileNotFoundError as exc:
        raise GitUnreadable("git is not installed on this server") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitUnreadable(
            f"reading the history took longer than {GIT_TIMEOUT_SECONDS} s"
        ) from exc
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or ["git failed"]
        raise GitUnreadable(f"git cannot read commit {commit[:12]} in {path}: {reason[0]}")
    return parse_log(result.stdout, emails)


def git_check(history: GitHistory, *, commit: str, path: str) -> Check:
    """Verified when the expert authored at least COMMIT_SHARE_MIN of the commits."""
    commit_share = _share(history.commits, history.total_commits)
    line_share = _share(history.lines, history.total_lines)
    figures = {
        "commits": history.commits,
        "total_commits": history.total_commits,
        "commit_share": commit_share,
        "lines": history.lines,
        "total_lines": history.total_lines,
        "line_share": line_share,
        "emails_matched": list(history.emails_matched),
        "commit_checked": commit,
        "path": path,
        "threshold": COMMIT_SHARE_MIN,
    }
    summary = (
        f"{history.commits} of {history.total_commits} commits ({_percent(commit_share)}) and "
        f"{history.lines} of {history.total_lines} lines added ({_percent(line_share)}) at "
        f"commit {commit[:12]} are authored under the expert's e-mail address"
    )
    if history.total_commits and commit_share >= COMMIT_SHARE_MIN:
        return Check(CredentialStatus.verified, "git_history", figures, f"Verified: {summary}.")
    return Check(
        CredentialStatus.rejected,
        "git_history",
        figures,
        f"Not verified: {summary}; at least {_percent(COMMIT_SHARE_MIN)} of the commits are "
        "needed.",
    )


def unreadable_check(method: str, reason: str, figures: dict[str, Any] | None = None) -> Check:
    """The evidence could not be read now: the credential stays unverified, with the reason."""
    return Check(
        CredentialStatus.unverified,
        method,
        figures or {},
        f"Not checked: {reason}.",
    )


def _author_match(name: str, authors: list[str]) -> str | None:
    return next((author for author in authors if names_match(name, author)), None)


def paper_check(
    *,
    method: str,
    name: str,
    orcid: str | None,
    authors: list[str],
    orcids: list[str],
    about: dict[str, Any],
) -> Check:
    """Verified when the expert's name matches an author's (accents, case and initials aside)
    or the expert's ORCID iD is among the paper's. ``about`` describes the paper (title, doi,
    where it was read) and goes into the figures."""
    matched = _author_match(name, authors)
    orcid_matched = bool(orcid) and orcid in {o.upper() for o in orcids}
    figures = {
        **about,
        "authors": authors,
        "orcids": orcids,
        "matched_author": matched,
        "orcid": orcid,
        "orcid_matched": orcid_matched,
    }
    title = about.get("title") or about.get("doi") or "the paper"
    if matched or orcid_matched:
        how = (
            f"author {matched!r} matches the expert's name"
            if matched
            else (f"the expert's ORCID iD {orcid} is among its authors'")
        )
        return Check(CredentialStatus.verified, method, figures, f"Verified: {title}: {how}.")
    listed = ", ".join(authors) if authors else "no authors could be read"
    return Check(
        CredentialStatus.rejected,
        method,
        figures,
        f"Not verified: neither the name {name!r} nor "
        f"{'the ORCID iD ' + orcid if orcid else 'an ORCID iD (none on the profile)'} is among "
        f"the authors of {title} ({listed}).",
    )


def doi_check(record: Record, *, name: str, orcid: str | None) -> Check:
    """A DOI registry's author list, checked like an ingested paper's."""
    return paper_check(
        method="doi",
        name=name,
        orcid=orcid,
        authors=list(record.names),
        orcids=list(record.orcids),
        about={"doi": record.key, "title": record.title, "read_from": record.url},
    )


def orcid_works_check(record: Record, *, doi: str, name: str) -> Check:
    """The expert's ORCID record lists the work, and the record's name is the expert's."""
    listed = doi in record.dois
    matched = next((n for n in record.names if names_match(name, n)), None)
    figures = {
        "doi": doi,
        "orcid": record.key,
        "record_names": list(record.names),
        "works": len(record.dois),
        "doi_in_works": listed,
        "name_matched": matched is not None,
        "read_from": record.url,
    }
    if listed and matched:
        return Check(
            CredentialStatus.verified,
            "orcid",
            figures,
            f"Verified: ORCID record {record.key} ({matched}) lists {doi} among its works.",
        )
    reasons = []
    if not listed:
        reasons.append(
            f"ORCID record {record.key} does not list {doi} among its {len(record.dois)} works"
        )
    if not matched:
        reasons.append(f"the record's name ({', '.join(record.names) or 'none'}) is not {name!r}")
    return Check(
        CredentialStatus.rejected, "orcid", figures, f"Not verified: {'; '.join(reasons)}."
    )


# State


def apply_check(credential: Credential, check: Check, *, now: datetime) -> Credential:
    """Store a machine check's outcome on ``credential``."""
    credential.status = check.status
    credential.method = check.method
    credential.figures = check.figures
    credential.note = check.note[:1000]
    credential.verified_by = None
    credential.verified_at = now if check.status == CredentialStatus.verified else None
    return credential


def decide(
    credential: Credential, *, admin_id: str, verified: bool, note: str, now: datetime
) -> Credential:
    """An admin's decision on an uploaded document; a rejection must say why."""
    note = " ".join(note.split())
    if not verified and not note:
        raise ValueError("say why it is rejected, so the expert can fix it")
    credential.status = CredentialStatus.verified if verified else CredentialStatus.rejected
    credential.method = "admin_review"
    credential.note = note[:1000]
    credential.verified_by = admin_id
    credential.verified_at = now
    return credential


def effective_status(credential: Credential, *, now: datetime) -> str:
    """The stored status, or ``expired`` once ``expires_at`` has passed (a rejection stays)."""
    if (
        credential.expires_at is not None
        and now >= credential.expires_at
        and credential.status != CredentialStatus.rejected
    ):
        return CredentialStatus.expired
    return credential.status


def is_live(credential: Credential, *, now: datetime) -> bool:
    """Verified and not expired: what the public and discovery count."""
    return effective_status(credential, now=now) == CredentialStatus.verified


def document_of(credential: Credential) -> dict[str, Any] | None:
    document = credential.evidence.get("document")
    return document if isinstance(document, dict) else None


def owner_view(credential: Credential, *, now: datetime) -> dict[str, Any]:
    """Everything about a credential, for its expert and admins."""
    evidence = dict(credential.evidence)
    document = document_of(credential)
    if document is not None:
        evidence["document"] = {k: v for k, v in document.items() if k != "stored"}
    return {
        "id": credential.id,
        "account_id": credential.account_id,
        "kind": credential.kind,
        "claim": credential.claim,
        "domain": credential.domain,
        "status": effective_status(credential, now=now),
        "method": credential.method,
        "evidence": evidence,
        "figures": dict(credential.figures),
        "note": credential.note,
        "verified_by": credential.verified_by,
        "verified_at": credential.verified_at.isoformat() if credential.verified_at else None,
        "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
        "created_at": credential.created_at.isoformat(),
    }


def public_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures anyone may see (PUBLIC_FIGURES); the rest are the expert's and admins'."""
    return {k: v for k, v in figures.items() if k in PUBLIC_FIGURES}


def public_view(credential: Credential, *, now: datetime) -> dict[str, Any]:
    """What anyone sees of a credential: no e-mail addresses, paths, uploaded file or its
    number, and no admin's note, which is written to the expert."""
    evidence = {
        k: credential.evidence[k] for k in ("asset", "doi", "issuer") if credential.evidence.get(k)
    }
    reviewed = credential.method == "admin_review"
    return {
        "id": credential.id,
        "kind": credential.kind,
        "claim": credential.claim,
        "domain": credential.domain,
        "status": effective_status(credential, now=now),
        "method": credential.method,
        "evidence": evidence,
        "figures": public_figures(credential.figures),
        "note": "" if reviewed else credential.note,
        "verified_at": credential.verified_at.isoformat() if credential.verified_at else None,
        "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
    }


# Uploaded documents

_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"%PDF-", 0, ".pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", 0, ".png", "image/png"),
    (b"\xff\xd8\xff", 0, ".jpg", "image/jpeg"),
    (b"WEBP", 8, ".webp", "image/webp"),
)


def document_type(name: str, data: bytes) -> tuple[str, str]:
    """The suffix and media type of an uploaded certificate, read from its first bytes (not
    from its name or the browser's word); InvalidInput-worthy ValueError for anything else."""
    if not data:
        raise ValueError(f"{name or 'the upload'} is empty")
    for signature, offset, suffix, media_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature and (
            suffix != ".webp" or data[:4] == b"RIFF"
        ):
            return suffix, media_type
    raise ValueError(
        f"{name or 'the upload'} is not a PDF, PNG, JPEG or WebP file; upload a scan or PDF "
        "of the document"
    )


def display_name(name: str) -> str:
    """The uploaded file's own name, without folders or control characters, for display."""
    base = PurePath(name.replace("\\", "/")).name
    clean = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return clean[:200] if clean.strip(".") else "document"
