"""A local server speaking the JSON of ORCID's public API, a Crossref-style works API and
GitHub's users API, for the credential lookups (``marketplace/lookups.py``)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tests.servers import _JSONHandler


@dataclass
class Registry:
    """What the server knows, changeable while it runs; ``failing`` answers HTTP 500."""

    base: str = ""
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # ORCID iD -> record
    works: dict[str, dict[str, Any]] = field(default_factory=dict)  # DOI -> message
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # login -> user
    failing: bool = False
    requests: list[str] = field(default_factory=list)

    @property
    def orcid_api(self) -> str:
        return f"{self.base}/orcid/v3.0"

    @property
    def doi_api(self) -> str:
        return f"{self.base}/crossref"

    @property
    def github_api(self) -> str:
        return f"{self.base}/github"

    def add_person(self, orcid: str, given: str, family: str, dois: list[str]) -> None:
        groups = [
            {
                "external-ids": {
                    "external-id": [
                        {"external-id-type": "doi", "external-id-value": doi.upper()},
                        {"external-id-type": "eid", "external-id-value": "2-s2.0-1"},
                    ]
                },
                "work-summary": [{"title": {"title": {"value": f"Work {doi}"}}}],
            }
            for doi in dois
        ]
        self.people[orcid] = {
            "orcid-identifier": {"path": orcid},
            "person": {
                "name": {
                    "given-names": {"value": given},
                    "family-name": {"value": family},
                    "credit-name": None,
                }
            },
            "activities-summary": {"works": {"group": groups}},
        }

    def add_work(self, doi: str, title: str, authors: list[tuple[str, str, str | None]]) -> None:
        self.works[doi] = {
            "DOI": doi,
            "title": [title],
            "author": [
                {"given": given, "family": family, "sequence": "additional"}
                | ({"ORCID": f"http://orcid.org/{orcid}"} if orcid else {})
                for given, family, orcid in authors
            ],
        }


class _RegistryHandler(_JSONHandler):
    registry: Registry

    def do_GET(self) -> None:
        registry = self.registry
        path = unquote(self.path)
        registry.requests.append(path)
        if registry.failing:
            self._send(500, {"message": "registry down"})
            return
        found: dict[str, Any] | None = None
        if path.startswith("/orcid/v3.0/") and path.endswith("/record"):
            found = registry.people.get(path.removeprefix("/orcid/v3.0/").removesuffix("/record"))
        elif path.startswith("/crossref/works/"):
            work = registry.works.get(path.removeprefix("/crossref/works/").lower())
            found = {"status": "ok", "message-type": "work", "message": work} if work else None
        elif path.startswith("/github/users/"):
            found = registry.users.get(path.removeprefix("/github/users/"))
        if found is None:
            self._send(404, {"message": "Not Found"})
            return
        self._send(200, found)


@contextmanager
def registry_server() -> Iterator[Registry]:
    registry = Registry()
    handler = type("Handler", (_RegistryHandler,), {"registry": registry})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    registry.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
