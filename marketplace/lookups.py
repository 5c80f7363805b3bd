"""Public registries behind one interface: ORCID (a person's record and works), a Crossref-style
DOI API (a work's authors) and GitHub (a user's public profile).

Each is an httpx client of the service's JSON API, built only when its base URL is configured
(``MarketplaceSettings``): a lookup that is off is None and nothing is fetched. Tests run a
local server speaking the same JSON. This is the only module that reaches those services.
"""

import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from core.config import MarketplaceSettings
from core.patterns import NON_SPACE
from marketplace.errors import LookupUnavailable
from marketplace.profiles import clean_orcid

DOI = re.compile(rf"^10\.[0-9]{{4,9}}/{NON_SPACE}+$")
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_ORCID_IN_URL = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dXx])")


@dataclass(frozen=True, slots=True)
class Record:
    """What a registry says about one identifier, flattened to what credentials compare."""

    service: str  # "orcid", "doi" or "github"
    key: str  # the ORCID iD, DOI or login that was looked up
    url: str  # where it was read
    names: tuple[str, ...] = ()  # the person's names (ORCID, GitHub) or the work's authors (DOI)
    orcids: tuple[str, ...] = ()  # the person's iD (ORCID) or the authors' iDs (DOI)
    dois: tuple[str, ...] = ()  # the person's works (ORCID) or the work itself (DOI)
    title: str = ""
    emails: tuple[str, ...] = ()


class Lookup(Protocol):
    """One registry: ``fetch`` reads the record of ``key``, None when the registry has none;
    LookupUnavailable when it cannot be reached or answers something unreadable."""

    service: str

    def fetch(self, key: str) -> Record | None: ...


class _HttpLookup:
    service = ""
    label = ""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str) -> tuple[str, dict[str, Any] | None]:
        url = f"{self.base_url}/{path}"
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=True) as client:
                response = client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise LookupUnavailable(
                f"{self.label} could not be reached ({type(exc).__name__}); try again later"
            ) from exc
        if response.status_code == 404:
            return url, None
        if response.status_code != 200:
            raise LookupUnavailable(
                f"{self.label} answered HTTP {response.status_code}; try again later"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise LookupUnavailable(f"{self.label} answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise LookupUnavailable(f"{self.label} answered JSON of an unexpected shape")
        return url, body

    def _unreadable(self, what: str) -> LookupUnavailable:
        return LookupUnavailable(f"{self.label} answered a record without {what}")


def _value(node: Any, *path: str) -> Any:
    """``node[path[0]][path[1]]...``, or None where a step is missing or null."""
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


def _text(node: Any, *path: str) -> str:
    value = _value(node, *path)
    return " ".join(value.split()) if isinstance(value, str) else ""


class OrcidLookup(_HttpLookup):
    """ORCID's public API (v3.0): ``GET {base}/{orcid}/record``."""

    service = "orcid"
    label = "ORCID"

    def fetch(self, key: str) -> Record | None:
        orcid = clean_orcid(key)
        url, body = self._get(f"{orcid}/record")
        if body is None:
            return None
        person = _value(body, "person", "name")
        if not isinstance(person, dict):
            raise self._unreadable("a name")
        names = []
        given, family = _text(person, "given-names", "value"), _text(person, "family-name", "value")
        if given and family:
            names.append(f"{given} {family}")
        credit = _text(person, "credit-name", "value")
        if credit and credit not in names:
            names.append(credit)
        dois: list[str] = []
        groups = _value(body, "activities-summary", "works", "group")
        for group in groups if isinstance(groups, list) else []:
            ids = _value(group, "external-ids", "external-id")
            for ident in ids if isinstance(ids, list) else []:
                if _text(ident, "external-id-type").lower() == "doi":
                    doi = _text(ident, "external-id-value").lower()
                    if doi and doi not in dois:
                        dois.append(doi)
        return Record(
            service=self.service,
            key=orcid,
            url=url,
            names=tuple(names),
            orcids=(orcid,),
            dois=tuple(dois),
        )


class DoiLookup(_HttpLookup):
    """A Crossref-style works API: ``GET {base}/works/{doi}`` -> ``message.author[]``."""

    service = "doi"
    label = "The DOI registry"

    def fetch(self, key: str) -> Record | None:
        doi = key.strip().lower()
        if not DOI.match(doi):
            raise ValueError(f"{key!r} is not a DOI (10.<registrant>/<suffix>)")
        url, body = self._get(f"works/{quote(doi, safe='/')}")
        if body is None:
            return None
        message = body.get("message")
        authors = _value(message, "author")
        if not isinstance(authors, list):
            raise self._unreadable("an author list")
        names: list[str] = []
        orcids: list[str] = []
        for author in authors:
            name = " ".join(p for p in (_text(author, "given"), _text(author, "family")) if p)
            name = name or _text(author, "name")
            if name:
                names.append(name)
            found = _ORCID_IN_URL.search(_text(author, "ORCID"))
            if found:
                orcids.append(found.group(1).upper())
        titles = _value(message, "title")
        title = titles[0] if isinstance(titles, list) and titles else ""
        return Record(
            service=self.service,
            key=doi,
            url=url,
            names=tuple(names),
            orcids=tuple(orcids),
            dois=(doi,),
            title=" ".join(str(title).split()),
        )


class GitHubLookup(_HttpLookup):
    """GitHub's REST API: ``GET {base}/users/{login}`` -> name and public e-mail."""

    service = "github"
    label = "GitHub"

    def fetch(self, key: str) -> Record | None:
        login = key.strip()
        if not _LOGIN.match(login):
            raise ValueError(f"{key!r} is not a GitHub login")
        url, body = self._get(f"users/{login}")
        if body is None:
            return None
        if not _text(body, "login"):
            raise self._unreadable("a login")
        name, email = _text(body, "name"), _text(body, "email")
        return Record(
            service=self.service,
            key=_text(body, "login"),
            url=url,
            names=(name,) if name else (),
            emails=(email.lower(),) if email else (),
        )


@dataclass(frozen=True, slots=True)
class Lookups:
    """The registries that are on; None for each that is not configured."""

    orcid: Lookup | None = None
    doi: Lookup | None = None
    github: Lookup | None = None


def build_lookups(settings: MarketplaceSettings) -> Lookups:
    """A lookup for each registry with a base URL in ``settings``; the others stay off."""
    timeout = settings.lookup_timeout_seconds
    return Lookups(
        orcid=OrcidLookup(settings.orcid_api, timeout=timeout) if settings.orcid_api else None,
        doi=DoiLookup(settings.doi_api, timeout=timeout) if settings.doi_api else None,
        github=GitHubLookup(settings.github_api, timeout=timeout) if settings.github_api else None,
    )
