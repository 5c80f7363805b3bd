"""Credentials and their verification, as rules over plain values: the app gathers the rows
(assets, sources, documents, the account) and stores what these functions decide.

Kinds and how each is verified (the credential's ``method``):

- ``commit_authorship`` -> ``git_history``: the share of the commits of a public repository the
  platform fetched itself (marketplace/remotes.py) that are the expert's: authored under the
  account's e-mail once that address is verified, or signed with a key registered to the
  account (git verifies the signature). Content another author's commit also introduced does
  not count (see parse_log). A claim on a local work tree or an upload is rejected: nobody
  can tell who made that history.
- ``paper_authorship`` -> ``paper_authors``: the account's ORCID iD, proved by ORCID's sign-in,
  among the iDs ingestion read from a paper in their asset, or the account's verified e-mail
  address listed on the paper's first pages (``proof``: ``orcid`` or ``email``); for a paper
  that is not ingested, ``doi`` (the DOI registry's authors' iDs) or ``orcid`` (the proved iD's
  record lists the work). A matching name is shown but is not proof.
- ``certification``, ``licence`` -> ``admin_review``: an uploaded document an admin verifies
  or rejects with a note.

Statuses: ``unverified`` (not checked yet, could not be checked, waiting for an admin, or the
account's e-mail is not verified yet), ``verified``, ``rejected`` (checked, and the evidence does
not support the claim; or an admin said no), and ``expired``, computed on read once
``expires_at`` has passed.

What these checks can and cannot prove: git author fields are whatever their writer typed, so an
e-mail counts only once its owner proved receiving mail there, and a signature only for a key the
account registered. A commit check shows that the public history credits the expert with
commits adding content nobody else added there; it cannot show that the expert wrote that
content elsewhere first (a modified copy in an unrelated history is new content), nor that the
commits are more than trivial edits. Names on papers and ORCID records prove nothing; only an
ORCID iD proved by ORCID's sign-in does.
"""

import os
import re
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assets.schemas import TAG, TAG_INPUT
from core.patterns import NON_SPACE, NOT_BLANK, SPACE, documented
from marketplace import remotes
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
    "commit_checked", "threshold", "remote", "ref", "signed_commits", "predated_commits",
    "predated_lines",  # git_history (the remote is a public URL the expert gave)
    "title", "doi", "authors", "matched_author", "orcid", "orcid_matched",  # a paper's authors
    "record_names", "works", "doi_in_works", "proof",  # an ORCID record's works
    "email_listed",  # whether a paper lists the account's address (never the address)
})  # fmt: skip
_HEX = re.compile(r"^[0-9a-f]{7,64}$")
_NUMSTAT = re.compile(r"^(\d+|-)\t(\d+|-)\t")

# Input


class Evidence(BaseModel):
    """What backs a claim; which fields apply depends on the credential's kind."""

    model_config = ConfigDict(extra="forbid")

    remote: str | None = Field(
        default=None,
        max_length=500,
        description="The git repository's public URL (https://...); the platform clones it",
    )
    ref: str | None = Field(
        default=None,
        max_length=200,
        description="A branch, tag or full commit id of that repository; else its default branch",
        json_schema_extra=documented(rf"^(?:{SPACE}*|{SPACE}*{remotes.REF}{SPACE}*)$"),
    )
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

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return remotes.clean_url(value)

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return remotes.clean_ref(value)

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
    "commit_authorship": ("remote", "ref", "asset", "source"),
    "paper_authorship": ("asset", "document", "path", "doi"),
    "certification": ("issuer", "number"),
    "licence": ("issuer", "number"),
}
_EXPLAIN = {
    "commit_authorship": "give the git repository's public URL (remote), and optionally a "
    "branch, tag or commit (ref)",
    "paper_authorship": "name your asset and the paper's document id or path in it, or give "
    "the paper's DOI",
    "certification": "name the issuer and number; the certificate itself is uploaded as a document",
    "licence": "name the issuer and number; the licence itself is uploaded as a document",
}


# The rules of CredentialCreate's validator below, stated for the API's document.
_BLANK = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": rf"^{SPACE}*$"}]}
_GIVEN = {"type": "string", "pattern": NOT_BLANK}
REMOTE_INPUT = rf"^{SPACE}*{remotes.URL}{SPACE}*$"
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
                "evidence": {
                    "anyOf": [
                        _evidence(
                            {"remote": {"type": "string", "pattern": REMOTE_INPUT}},
                            ("asset", "source", "document", "path", "doi", "issuer", "number"),
                        ),
                        _evidence(
                            {"asset": _GIVEN},
                            ("remote", "ref", "document", "path", "doi", "issuer", "number"),
                        ),
                    ]
                },
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
                            ("remote", "ref", "doi", "source", "issuer", "number"),
                        ),
                        _evidence(
                            {"asset": _GIVEN, "path": _GIVEN},
                            ("remote", "ref", "doi", "source", "issuer", "number"),
                        ),
                        _evidence(
                            {"doi": {"type": "string", "pattern": DOI_INPUT}},
                            (
                                "remote",
                                "ref",
                                "asset",
                                "document",
                                "path",
                                "source",
                                "issuer",
                                "number",
                            ),
                        ),
                    ]
                },
            },
            "required": ["evidence"],
        },
        {
            "properties": {
                "kind": {"enum": ["certification", "licence"]},
                "evidence": _evidence(
                    {}, ("remote", "ref", "asset", "source", "document", "path", "doi")
                ),
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
        if self.kind == "commit_authorship" and not (ev.remote or ev.asset):
            raise ValueError(f"evidence for commit_authorship: {_EXPLAIN[self.kind]}")
        if ev.remote and (ev.asset or ev.source):
            raise ValueError(
                "evidence for commit_authorship: give the repository's URL (remote), not an "
                "asset: the platform reads only history it fetched itself"
            )
        if ev.ref and not ev.remote:
            raise ValueError("evidence.ref names a branch of evidence.remote: give the remote too")
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
class Signers:
    """The account's registered signing keys, for git to verify commit signatures against."""

    ssh: tuple[str, ...] = ()  # public key lines, "ssh-ed25519 AAAA..."
    gpg: tuple[str, ...] = ()  # ASCII-armoured OpenPGP public keys
    fingerprints: frozenset[str] = frozenset()  # "SHA256:..." (ssh), hex primary (gpg)

    def __bool__(self) -> bool:
        return bool(self.ssh or self.gpg)


@dataclass(frozen=True, slots=True)
class GitHistory:
    """Commits and lines added at one commit of a repository, and which of them are whose."""

    commits: int
    total_commits: int
    lines: int
    total_lines: int
    emails_matched: tuple[str, ...]
    signed: int = 0  # of ``commits``: credited through a registered key's signature
    predated: int = 0  # the expert's commits that added nothing others had not added first
    predated_lines: int = 0  # lines the expert's commits added in content others added first


_ZERO_BLOB = "0" * 40


def _changes(rest: str) -> list[tuple[str | None, int]]:
    """Each changed file of one commit: the blob it introduces (None when it deletes, or
    renames or copies without changing) and the lines it adds. ``--raw`` and ``--numstat``
    list the same files in the same order."""
    blobs: list[str | None] = []
    added: list[int] = []
    for line in rest.splitlines():
        if line.startswith(":"):
            fields = line.split("\t", 1)[0].split()
            old, new = (fields[2], fields[3]) if len(fields) >= 4 else ("", "")
            blobs.append(new if new not in (old, _ZERO_BLOB) else None)
        elif found := _NUMSTAT.match(line):
            added.append(0 if found.group(1) == "-" else int(found.group(1)))
    return list(zip(blobs, added, strict=False))


def parse_log(
    output: str, emails: set[str], fingerprints: frozenset[str] = frozenset()
) -> GitHistory:
    """Count ``git log --format=%x1e%H%x1f%ae%x1f%G?%x1f%GF%x1f%GP --raw --no-abbrev
    --numstat`` output. A commit is the expert's when its author e-mail is in ``emails`` (lower
    case, verified ones only) or git found a good signature by a key in ``fingerprints``.

    Predating: content (a blob) that a commit by anyone else also introduced does not count for
    the expert, whichever came first in the log (so a copy in an unrelated history or one
    replayed on top gets nothing); an expert's commit that introduces only such content, or
    changes nothing, is not counted as theirs. One pass over the log, then one over the
    commits kept: linear in the size of the history."""
    records: list[tuple[bool, bool, str, list[tuple[str | None, int]]]] = []
    others: set[str] = set()
    total_commits = total_lines = 0
    for record in output.split("\x1e")[1:]:
        header, _, rest = record.partition("\n")
        fields = [*header.split("\x1f"), "", "", "", ""]
        email = fields[1].strip().lower()
        signature, keys = fields[2].strip(), {fields[3].strip(), fields[4].strip()} - {""}
        changes = _changes(rest)
        total_commits += 1
        total_lines += sum(n for _, n in changes)
        signed = signature in ("G", "U") and bool(keys & fingerprints)
        # "U" is a good signature whose key the keyring does not trust: the keyring holds
        # only the account's keys, and the fingerprint is checked above.
        by_email = email in emails
        if by_email or signed:
            records.append((by_email, signed, email, changes))
        else:
            others.update(blob for blob, _ in changes if blob)
    commits = lines = signed_count = predated = predated_lines = 0
    matched: list[str] = []
    for by_email, signed, email, changes in records:
        introduced = [blob for blob, _ in changes if blob]
        counted = sum(n for blob, n in changes if blob is None or blob not in others)
        if not changes or (introduced and all(blob in others for blob in introduced)):
            predated += 1
            predated_lines += sum(n for _, n in changes)
            continue
        commits += 1
        lines += counted
        predated_lines += sum(n for _, n in changes) - counted
        if by_email and email not in matched:
            matched.append(email)
        if signed and not by_email:
            signed_count += 1
    return GitHistory(
        commits, total_commits, lines, total_lines, tuple(matched), signed_count, predated,
        predated_lines,
    )  # fmt: skip


class GitUnreadable(Exception):
    """The repository or its recorded commit cannot be read (moved, deleted, not git)."""


def _git_env() -> dict[str, str]:
    # Without the caller's GIT_* variables: GIT_DIR and friends would point git elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {
        **env,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }


def _keyring(folder: Path, signers: Signers) -> list[str]:
    """Write the account's keys where git's verifiers read them; the options that point there."""
    allowed = folder / "allowed_signers"
    # The principal is a placeholder: git asks ssh-keygen which principal a key has.
    allowed.write_text("".join(f"vouch-signer {key}\n" for key in signers.ssh))
    gnupg = folder / "gnupg"
    gnupg.mkdir(mode=0o700)
    for key in signers.gpg:
        subprocess.run(
            ["gpg", "--homedir", str(gnupg), "--batch", "--quiet", "--import"],
            input=key, capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    # GNUPGHOME points at ``gnupg`` (see read_git_history): never the server's own keyring.
    return ["-c", f"gpg.ssh.allowedSignersFile={allowed}", "-c", "gpg.program=gpg"]


def read_git_history(
    path: Path, *, commit: str, emails: set[str], signers: Signers | None = None
) -> GitHistory:
    """Authorship of the history reachable from ``commit`` in the repository at ``path`` (a
    mirror the platform fetched; or a work tree or a folder of one: only that folder's changes
    count). Merges are left out: they record joining work, not writing it. Author e-mails are
    read as recorded (``%ae``), not through the repository's own .mailmap, which its owner could
    point at anyone's address. Signatures are checked by git only against ``signers``."""
    if not _HEX.match(commit):
        raise GitUnreadable(f"{commit!r} is not a commit id")
    if not path.is_dir():
        raise GitUnreadable(f"the work tree {path} is gone; ingest the repository again")
    signers = signers or Signers()
    fields = "%x1e%H%x1f%ae%x1f%G?%x1f%GF%x1f%GP" if signers else "%x1e%H%x1f%ae"
    with tempfile.TemporaryDirectory(prefix="vouch-signers-") as keys:
        options = _keyring(Path(keys), signers) if signers else []
        env = {**_git_env(), "GNUPGHOME": str(Path(keys) / "gnupg")}
        command = [
            "git", "-C", str(path), *options, "log", "--no-merges", "--no-ext-diff",
            "--no-textconv", "--no-color", "-M", "--raw", "--no-abbrev", "--numstat",
            f"--format={fields}", commit,
        ]  # fmt: skip
        if not (path / "objects").is_dir():
            # A folder of a work tree: only its changes. Never for a fetched mirror: a path
            # would let git simplify history and hide side branches, copies merged in among them.
            command += ["--", "."]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=GIT_TIMEOUT_SECONDS,
                check=False,
                env=env,
            )
        except FileNotFoundError as exc:
            raise GitUnreadable("git is not installed on this server") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitUnreadable(
                f"reading the history took longer than {GIT_TIMEOUT_SECONDS} s"
            ) from exc
        finally:
            if signers.gpg:  # gpg may have started an agent for the throwaway keyring
                subprocess.run(
                    ["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False
                )
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or ["git failed"]
        raise GitUnreadable(f"git cannot read commit {commit[:12]} in {path}: {reason[0]}")
    return parse_log(result.stdout, emails, signers.fingerprints)


NOT_FETCHED = (
    "the platform did not fetch this history itself: give the repository's public URL "
    "(evidence.remote) so that it clones the repository and reads its history"
)


def not_fetched_check(figures: dict[str, Any] | None = None) -> Check:
    """A claim on history someone handed the platform (a local work tree, an upload)."""
    return Check(
        CredentialStatus.rejected, "git_history", figures or {}, f"Not verified: {NOT_FETCHED}."
    )


def git_check(history: GitHistory, *, commit: str, remote: str, ref: str | None = None) -> Check:
    """Verified when the expert's commits (verified e-mail or registered key, not predated)
    are at least COMMIT_SHARE_MIN of the commits of the fetched ``remote``."""
    commit_share = _share(history.commits, history.total_commits)
    line_share = _share(history.lines, history.total_lines)
    figures = {
        "remote": remote,
        "ref": ref,
        "commits": history.commits,
        "total_commits": history.total_commits,
        "commit_share": commit_share,
        "lines": history.lines,
        "total_lines": history.total_lines,
        "line_share": line_share,
        "signed_commits": history.signed,
        "predated_commits": history.predated,
        "predated_lines": history.predated_lines,
        "emails_matched": list(history.emails_matched),
        "commit_checked": commit,
        "threshold": COMMIT_SHARE_MIN,
    }
    summary = (
        f"{history.commits} of {history.total_commits} commits ({_percent(commit_share)}) and "
        f"{history.lines} of {history.total_lines} lines added ({_percent(line_share)}) at "
        f"commit {commit[:12]} of {remote} are the expert's (their verified e-mail address or "
        "a signature by their registered key)"
    )
    if history.signed:
        summary += f"; {history.signed} of them by signature"
    if history.predated:
        summary += (
            f"; {history.predated} more of their commits do not count: they add only content "
            "another author had already added"
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


_EMAIL = re.compile(
    r"(?<![\w.%+-])(?:(?P<local>[\w.%+-]+)|\{(?P<group>[\w.%+\-,|\s]+)\})"
    r"@(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*"
    r"[A-Za-z0-9])?)+)"
)


def emails_in(text: str) -> set[str]:
    """The e-mail addresses written in a paper's text, lower case; the shared-domain form
    ``{ada,grace}@example.org`` stands for each of its addresses."""
    found: set[str] = set()
    for match in _EMAIL.finditer(text):
        domain = match.group("domain").lower().rstrip(".")
        locals_ = (
            [match.group("local")]
            if match.group("local")
            else re.split(r"[,|]", match.group("group"))
        )
        found.update(f"{part.strip().lower()}@{domain}" for part in locals_ if part.strip())
    return found


def paper_check(
    *,
    method: str,
    name: str,
    orcid: str | None,
    authors: list[str],
    orcids: list[str],
    about: dict[str, Any],
    email: str | None = None,
    email_verified: bool = False,
    emails_listed: set[str] | None = None,
) -> Check:
    """Verified when the expert's proved ORCID iD (``orcid``: the account's, set only by
    ORCID's sign-in, never typed) is among the paper's, or the paper lists the account's
    ``email`` (among ``emails_listed``, read from its first pages; None when its text could
    not be read) and that address is verified. A name that matches an author's is shown but
    proves nothing: anyone can type any name. ``about`` describes the paper (title, doi, where
    it was read) and goes into the figures."""
    matched = _author_match(name, authors)
    orcid_matched = bool(orcid) and orcid in {o.upper() for o in orcids}
    email_listed = bool(email and emails_listed is not None and email.lower() in emails_listed)
    proof = "orcid" if orcid_matched else "email" if email_listed and email_verified else None
    figures = {
        **about,
        "authors": authors,
        "orcids": orcids,
        "matched_author": matched,
        "orcid": orcid,
        "orcid_matched": orcid_matched,
        "email_listed": email_listed if email is not None else None,
        "proof": proof,
    }
    title = about.get("title") or about.get("doi") or "the paper"
    if orcid_matched:
        return Check(
            CredentialStatus.verified,
            method,
            figures,
            f"Verified: {title}: the expert's ORCID iD {orcid}, proved by signing in with ORCID, "
            "is among its authors'.",
        )
    if proof == "email":
        return Check(
            CredentialStatus.verified,
            method,
            figures,
            f"Verified: {title} lists the expert's verified e-mail address.",
        )
    listed = ", ".join(authors) if authors else "no authors could be read"
    why = (
        f"author {matched!r} matches the expert's name, but a name is not proof"
        if matched
        else f"the name {name!r} is not among its authors ({listed})"
    )
    need = (
        f"the ORCID iD {orcid} is not among its authors' iDs ({', '.join(orcids) or 'none'})"
        if orcid
        else "no ORCID iD is proved for this account: sign in with ORCID (on your account "
        "page) and check again"
    )
    note = f"Not verified: {title}: {why}; {need}"
    if email is not None:  # a paper whose text the platform has
        if email_listed:
            mail = "it lists your e-mail address, which counts once you verify it"
        elif emails_listed is None:
            mail = "its text could not be read to look for your e-mail address"
        else:
            mail = "its first pages do not list your account's e-mail address"
        note += (
            f"; {mail}. Paper authorship needs a proved ORCID iD or a verified e-mail address "
            "that the paper lists"
        )
    return Check(CredentialStatus.rejected, method, figures, f"{note}.")


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


def orcid_works_check(record: Record, *, doi: str, orcid: str) -> Check:
    """The expert's proved ORCID iD's record lists the work (names on the record are shown,
    not compared: the iD was proved by ORCID's sign-in)."""
    listed = doi in record.dois and record.key == orcid
    figures = {
        "doi": doi,
        "orcid": record.key,
        "record_names": list(record.names),
        "works": len(record.dois),
        "doi_in_works": doi in record.dois,
        "proof": "orcid" if listed else None,
        "read_from": record.url,
    }
    if listed:
        return Check(
            CredentialStatus.verified,
            "orcid",
            figures,
            f"Verified: the ORCID record {record.key}, proved by signing in with ORCID, lists "
            f"{doi} among its works.",
        )
    return Check(
        CredentialStatus.rejected,
        "orcid",
        figures,
        f"Not verified: ORCID record {record.key} does not list {doi} among its "
        f"{len(record.dois)} works.",
    )


# Signing keys

KeyKind = Literal["ssh", "gpg"]
_SSH_LINE = re.compile(
    r"^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[\w@.-]+)\s+[A-Za-z0-9+/=]+"
)


class SigningKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(
        min_length=1,
        max_length=100_000,
        description="The public key: a line such as 'ssh-ed25519 AAAA... you@host' (SSH), or "
        "an ASCII-armoured OpenPGP public key block; its kind is read from it",
        # What ssh-keygen and gpg accept cannot be a pattern: a format names it instead.
        json_schema_extra={"format": "signing-public-key"},
    )
    label: str = Field(default="", max_length=100, description="A name to tell keys apart")


def _tool(command: list[str], data: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, input=data, capture_output=True, text=True, timeout=30, check=False
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"{command[0]} could not read the key on this server") from exc


def signing_key(text: str) -> tuple[KeyKind, str, str]:
    """The key's kind, the key as stored and its fingerprint, read by ssh-keygen or gpg
    themselves; ValueError saying what is wrong otherwise."""
    text = text.strip()
    if "PRIVATE KEY" in text:
        raise ValueError("that is a private key: give the public one (the .pub file)")
    if "BEGIN PGP" not in text:
        found = _SSH_LINE.match(text)
        if "\n" in text or found is None:
            raise ValueError(
                "not an SSH public key: give one line such as 'ssh-ed25519 AAAA... you@host' "
                "(the contents of ~/.ssh/id_ed25519.pub), or an OpenPGP key's armoured block"
            )
        key = found.group(0)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "key.pub"
            path.write_text(key + "\n")
            result = _tool(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], "")
        parts = result.stdout.split()
        if result.returncode != 0 or len(parts) < 2 or not parts[1].startswith("SHA256:"):
            raise ValueError("not a valid SSH public key: ssh-keygen cannot read it")
        return "ssh", key, parts[1]
    if "BEGIN PGP PUBLIC KEY BLOCK" not in text:
        raise ValueError(
            "not an OpenPGP public key: give the ASCII-armoured block that "
            "'gpg --armor --export <key id>' prints"
        )
    with tempfile.TemporaryDirectory() as folder:
        result = _tool(
            ["gpg", "--homedir", folder, "--batch", "--with-colons", "--import-options",
             "show-only", "--import"],
            text,
        )  # fmt: skip
    lines = result.stdout.splitlines()
    primaries = [i for i, line in enumerate(lines) if line.startswith("pub:")]
    if result.returncode != 0 or len(primaries) != 1:
        raise ValueError("not one valid OpenPGP public key: gpg cannot read it as one key")
    fingerprint = next(
        (line.split(":")[9] for line in lines[primaries[0] :] if line.startswith("fpr:")), ""
    )
    if not fingerprint:
        raise ValueError("not a valid OpenPGP public key: gpg finds no fingerprint")
    return "gpg", text + "\n", fingerprint.upper()


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


def proved(credential: Credential) -> bool:
    """Whether the check behind a verified credential meets the current rules: one verified
    before them (on history the platform did not fetch, or on a matching name) no longer
    counts until it is checked again."""
    if credential.method == "git_history":
        return bool(credential.figures.get("remote"))
    if credential.method in ("paper_authors", "doi", "orcid"):
        return credential.figures.get("proof") is not None
    return True


def is_live(credential: Credential, *, now: datetime) -> bool:
    """Verified, proved and not expired: what the public and discovery count."""
    return effective_status(credential, now=now) == CredentialStatus.verified and proved(credential)


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


def public_view(
    credential: Credential, *, now: datetime, visible_assets: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """What anyone sees of a credential: no e-mail addresses, paths, uploaded file or its
    number, no admin's note (written to the expert), and the asset only when it is among
    ``visible_assets`` (published: an unpublished asset's slug is the expert's)."""
    evidence = {
        k: credential.evidence[k]
        for k in ("remote", "asset", "doi", "issuer")
        if credential.evidence.get(k) and (k != "asset" or credential.evidence[k] in visible_assets)
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
