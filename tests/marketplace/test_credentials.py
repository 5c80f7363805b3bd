"""Credential rules without a database: git authorship from real repositories, name matching,
paper checks, input validation, statuses, uploaded documents, and the registry lookups
against a local server speaking their JSON."""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.config import MarketplaceSettings
from marketplace import credentials as rules
from marketplace.credentials import (
    COMMIT_SHARE_MIN,
    CredentialCreate,
    GitHistory,
    GitUnreadable,
    read_git_history,
)
from marketplace.errors import LookupUnavailable
from marketplace.lookups import DoiLookup, GitHubLookup, OrcidLookup, build_lookups
from marketplace.models import Credential, CredentialStatus
from marketplace.profiles import ProfileUpdate, clean_orcid, names_match
from tests.git_repos import Commit, git, lines, make_repo
from tests.registries import Registry, registry_server
from tests.servers import free_port

ME = "Ada@Example.com"
OTHER = "grace@navy.example"
ORCID = "0000-0002-1825-0097"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


class TestNamesMatch:
    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("Ada Lovelace", "Ada Lovelace"),
            ("Ada Lovelace", "A. Lovelace"),
            ("Ada Lovelace", "Lovelace, Ada"),
            ("Ada Lovelace", "ADA LOVELACE"),
            ("Ada Lovelace", "Ada B. Lovelace"),
            ("Ada Lovelace", "Augusta Ada Lovelace"),
            ("José Núñez", "Jose Nunez"),
            ("Ludwig van Beethoven", "L. van Beethoven"),
            ("Jean-Luc Picard", "J.-L. Picard"),
        ],
    )
    def test_same_person(self, first: str, second: str) -> None:
        assert names_match(first, second)
        assert names_match(second, first)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("Ada Lovelace", "Grace Hopper"),
            ("Ada Lovelace", "Lovelace"),
            ("Ada Lovelace", "Ada Byron"),
            ("Ada Lovelace", "B. Lovelace"),
            ("Ada Lovelace", "Adam Lovelace"),
            ("Lovelace", "Lovelace"),
        ],
    )
    def test_different_people(self, first: str, second: str) -> None:
        assert not names_match(first, second)


def test_orcid_checked_and_normalised() -> None:
    assert clean_orcid(f"https://orcid.org/{ORCID}") == ORCID
    assert clean_orcid("0000-0002-1694-233x") == "0000-0002-1694-233X"
    with pytest.raises(ValueError, match="check digit"):
        clean_orcid("0000-0002-1825-0098")


class TestGitHistory:
    @pytest.fixture
    def repo(self, tmp_path: Path) -> tuple[Path, str]:
        head = make_repo(
            tmp_path / "repo",
            [
                Commit(ME, {"core/a.py": lines(30)}),
                Commit(OTHER, {"core/b.py": lines(50)}),
                Commit(ME.lower(), {"core/a.py": lines(40)}),  # adds 10 lines
                Commit(OTHER, {"docs/guide.md": lines(100)}),
                Commit(ME, {"logo.bin": "\x00\x01binary"}),
            ],
        )
        return tmp_path / "repo", head

    def test_counts_commits_and_lines_by_email(self, repo: tuple[Path, str]) -> None:
        path, head = repo
        history = read_git_history(path, commit=head, emails={ME.lower()})
        assert history == GitHistory(
            commits=3, total_commits=5, lines=40, total_lines=190, emails_matched=(ME.lower(),)
        )

    def test_folder_counts_only_its_changes(self, repo: tuple[Path, str]) -> None:
        path, head = repo
        history = read_git_history(path / "core", commit=head, emails={ME.lower()})
        assert (history.commits, history.total_commits) == (2, 3)
        assert (history.lines, history.total_lines) == (40, 90)

    def test_history_stops_at_the_recorded_commit(self, repo: tuple[Path, str]) -> None:
        path, head = repo
        make_repo(path, [Commit(ME, {"later.py": lines(500)})])
        history = read_git_history(path, commit=head, emails={ME.lower()})
        assert (history.commits, history.total_commits, history.total_lines) == (3, 5, 190)

    def test_merges_and_mailmap_do_not_count(self, repo: tuple[Path, str]) -> None:
        path, _ = repo
        git(path, "checkout", "-q", "-b", "side")
        make_repo(path, [Commit(OTHER, {"side.py": lines(5)})])
        git(path, "checkout", "-q", "main")
        make_repo(path, [Commit(ME, {".mailmap": f"Ada <{ME}> Grace <{OTHER}>\n"})])
        git(path, "merge", "-q", "--no-ff", "-m", "merge side", "side", email=ME)
        head = git(path, "rev-parse", "HEAD")
        history = read_git_history(path, commit=head, emails={ME.lower()})
        # The merge is left out; the .mailmap that maps Grace to Ada is not obeyed.
        assert (history.commits, history.total_commits) == (4, 7)

    def test_unreadable_repository(self, repo: tuple[Path, str], tmp_path: Path) -> None:
        path, head = repo
        with pytest.raises(GitUnreadable, match="not a commit id"):
            read_git_history(path, commit="--output=/tmp/x", emails=set())
        with pytest.raises(GitUnreadable, match="cannot read commit"):
            read_git_history(path, commit="0" * 40, emails=set())
        shutil.rmtree(path)
        with pytest.raises(GitUnreadable, match="is gone"):
            read_git_history(path, commit=head, emails=set())
        (tmp_path / "plain").mkdir()
        with pytest.raises(GitUnreadable, match="cannot read commit"):
            read_git_history(tmp_path / "plain", commit=head, emails=set())


class TestGitCheck:
    def _check(self, commits: int, total: int) -> rules.Check:
        history = GitHistory(commits, total, commits * 10, total * 10, ("a@x.org",))
        return rules.git_check(history, commit="abc1234def", remote="https://git.example/r.git")

    def test_verified_at_the_threshold(self) -> None:
        check = self._check(1, 10)
        assert COMMIT_SHARE_MIN == 0.10
        assert check.status == CredentialStatus.verified
        assert check.figures["commit_share"] == 0.1
        assert check.figures["threshold"] == COMMIT_SHARE_MIN
        assert "1 of 10 commits (10%)" in check.note

    def test_below_the_threshold_rejected_with_figures(self) -> None:
        check = self._check(1, 11)
        assert check.status == CredentialStatus.rejected
        assert check.figures["commits"] == 1
        assert check.figures["total_commits"] == 11
        assert "at least 10% of the commits are needed" in check.note

    def test_empty_history_rejected(self) -> None:
        check = self._check(0, 0)
        assert check.status == CredentialStatus.rejected
        assert check.figures["commit_share"] == 0.0


class TestPaperCheck:
    def _check(self, name: str, orcid: str | None) -> rules.Check:
        return rules.paper_check(
            method="paper_authors",
            name=name,
            orcid=orcid,
            authors=["Ada Lovelace", "Grace Hopper"],
            orcids=[ORCID],
            about={"title": "Analytical Engines Revisited"},
        )

    def test_a_name_alone_is_not_proof(self) -> None:
        check = self._check("Grace B. Hopper", None)
        assert check.status == CredentialStatus.rejected
        assert check.figures["matched_author"] == "Grace Hopper"
        assert not check.figures["orcid_matched"]
        assert "a name is not proof" in check.note
        assert "sign in with ORCID" in check.note

    def test_by_orcid(self) -> None:
        check = self._check("Someone Else", ORCID)
        assert check.status == CredentialStatus.verified
        assert check.figures["orcid_matched"]
        assert check.figures["matched_author"] is None

    def test_neither(self) -> None:
        check = self._check("Someone Else", "0000-0002-1694-233X")
        assert check.status == CredentialStatus.rejected
        assert "Ada Lovelace, Grace Hopper" in check.note

    @pytest.mark.parametrize(
        ("verified", "listed", "status", "proof"),
        [
            (True, {"ada@example.org"}, CredentialStatus.verified, "email"),
            (False, {"ada@example.org"}, CredentialStatus.rejected, None),
            (True, {"grace@example.org"}, CredentialStatus.rejected, None),
            (True, None, CredentialStatus.rejected, None),  # the text could not be read
        ],
    )
    def test_by_email(
        self,
        verified: bool,
        listed: set[str] | None,
        status: CredentialStatus,
        proof: str | None,
    ) -> None:
        check = rules.paper_check(
            method="paper_authors",
            name="Someone Else",
            orcid=None,
            authors=["Ada Lovelace"],
            orcids=[],
            about={"title": "Analytical Engines Revisited"},
            email="Ada@Example.org",
            email_verified=verified,
            emails_listed=listed,
        )
        assert (check.status, check.figures["proof"]) == (status, proof)
        assert "example.org" not in check.note.lower()  # the address is not public


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Ada Lovelace (ada@example.org)", {"ada@example.org"}),
        ("{ada, grace}@Example.ORG", {"ada@example.org", "grace@example.org"}),
        ("{ada|grace}@cs.example.org.", {"ada@cs.example.org", "grace@cs.example.org"}),
        ("mailto:x.y+z@a-b.example.com;", {"x.y+z@a-b.example.com"}),
        ("nada@example.org is not ada@example.org's", {"nada@example.org", "ada@example.org"}),
        ("ada@localhost, @example.org, ada@", set()),
    ],
)
def test_emails_in(text: str, found: set[str]) -> None:
    assert rules.emails_in(text) == found


class TestCredentialCreate:
    def test_valid(self) -> None:
        data = CredentialCreate.model_validate(
            {
                "kind": "paper_authorship",
                "claim": "  Wrote   the paper ",
                "domain": "History",
                "evidence": {"doi": "https://doi.org/10.5555/VOUCH.2026.42"},
            }
        )
        assert data.claim == "Wrote the paper"
        assert data.domain == "history"
        assert data.evidence.doi == "10.5555/vouch.2026.42"

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"kind": "fame", "claim": "x"}, "kind"),
            ({"kind": "licence", "claim": "   "}, "the claim is blank"),
            ({"kind": "commit_authorship", "claim": "x"}, "public URL"),
            (
                {"kind": "commit_authorship", "claim": "x", "evidence": {"remote": "file:///x"}},
                "not fetched",
            ),
            (
                {
                    "kind": "commit_authorship",
                    "claim": "x",
                    "evidence": {"asset": "a", "ref": "v1"},
                },
                "give the remote too",
            ),
            (
                {
                    "kind": "commit_authorship",
                    "claim": "x",
                    "evidence": {"asset": "a", "doi": "10.1234/x"},
                },
                "does not take doi",
            ),
            ({"kind": "paper_authorship", "claim": "x", "evidence": {"asset": "a"}}, "or give"),
            (
                {
                    "kind": "paper_authorship",
                    "claim": "x",
                    "evidence": {"asset": "a", "path": "p", "doi": "10.1234/x"},
                },
                "not both",
            ),
            (
                {"kind": "paper_authorship", "claim": "x", "evidence": {"doi": "11.2/x"}},
                "not a DOI",
            ),
            ({"kind": "licence", "claim": "x", "evidence": {"colour": "red"}}, "Extra inputs"),
            ({"kind": "licence", "claim": "x", "domain": "Not A Tag!"}, "domain"),
            (
                {
                    "kind": "commit_authorship",
                    "claim": "x",
                    "evidence": {"asset": "a"},
                    "expires_at": "2030-01-01",
                },
                "only certifications and licences expire",
            ),
        ],
    )
    def test_invalid(self, body: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            CredentialCreate.model_validate(body)

    def test_naive_expiry_is_utc(self) -> None:
        data = CredentialCreate.model_validate(
            {"kind": "licence", "claim": "x", "expires_at": "2030-01-01T00:00:00"}
        )
        assert data.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


class TestStatus:
    def _credential(self, status: str, expires_at: datetime | None) -> Credential:
        return Credential(
            account_id="acc_1", kind="licence", claim="x", status=status, expires_at=expires_at
        )

    def test_expired_once_the_date_passes(self) -> None:
        credential = self._credential("verified", NOW + timedelta(days=1))
        assert rules.effective_status(credential, now=NOW) == "verified"
        assert rules.is_live(credential, now=NOW)
        later = NOW + timedelta(days=1)
        assert rules.effective_status(credential, now=later) == "expired"
        assert not rules.is_live(credential, now=later)

    def test_rejection_stays(self) -> None:
        credential = self._credential("rejected", NOW - timedelta(days=1))
        assert rules.effective_status(credential, now=NOW) == "rejected"

    def test_admin_rejection_needs_a_note(self) -> None:
        credential = self._credential("unverified", None)
        with pytest.raises(ValueError, match="say why"):
            rules.decide(credential, admin_id="acc_2", verified=False, note="  ", now=NOW)
        rules.decide(credential, admin_id="acc_2", verified=True, note="", now=NOW)
        assert (credential.status, credential.verified_by) == ("verified", "acc_2")

    def test_public_view_hides_emails_and_paths(self) -> None:
        credential = self._credential("verified", None)
        credential.figures = {"commits": 3, "emails_matched": ["a@x.org"], "path": "/home/a"}
        credential.evidence = {"asset": "a", "source": "src_1"}
        view = rules.public_view(credential, now=NOW)
        assert view["figures"] == {"commits": 3}
        assert view["evidence"] == {}  # an asset the viewer cannot see is not named
        seen = rules.public_view(credential, now=NOW, visible_assets=frozenset({"a"}))
        assert seen["evidence"] == {"asset": "a"}
        assert rules.owner_view(credential, now=NOW)["figures"]["emails_matched"] == ["a@x.org"]


class TestDocuments:
    @pytest.mark.parametrize(
        ("data", "suffix"),
        [
            (b"%PDF-1.7\n...", ".pdf"),
            (b"\x89PNG\r\n\x1a\n....", ".png"),
            (b"\xff\xd8\xff\xe0....", ".jpg"),
            (b"RIFF\x00\x00\x00\x00WEBPVP8 ", ".webp"),
        ],
    )
    def test_known_types(self, data: bytes, suffix: str) -> None:
        assert rules.document_type("scan", data)[0] == suffix

    @pytest.mark.parametrize("data", [b"", b"<html><script>", b"RIFF\x00\x00\x00\x00WAVE"])
    def test_other_files_refused(self, data: bytes) -> None:
        with pytest.raises(ValueError, match=r"cert\.pdf"):
            rules.document_type("cert.pdf", data)

    def test_display_name(self) -> None:
        assert rules.display_name("C:\\Users\\ada\\licence\x07.pdf") == "licence.pdf"
        assert rules.display_name("../../") == "document"


class TestProfileUpdate:
    def test_normalised(self) -> None:
        data = ProfileUpdate(
            name="  Ada   Lovelace ",
            domains=["GDPR", "gdpr", " privacy "],
            links=["https://ada.example/"],
            price_from=10_000,
            price_to=50_000,
            currency="EUR",
            orcid=f"https://orcid.org/{ORCID}",
        )
        assert data.name == "Ada Lovelace"
        assert data.domains == ["gdpr", "privacy"]
        assert (data.currency, data.orcid) == ("eur", ORCID)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"links": ["javascript:alert(1)"]}, "http"),
            ({"price_from": -1}, "greater than or equal"),
            ({"currency": "dollars"}, "three-letter"),
            ({"domains": ["a b"]}, "domain"),
            ({"orcid": "1234"}, "ORCID"),
            ({"name": "   "}, "blank"),
            ({"response_hours": 0}, "greater than or equal"),
        ],
    )
    def test_invalid(self, fields: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            ProfileUpdate.model_validate(fields)


class TestLookups:
    @pytest.fixture
    def registry(self) -> Iterator[Registry]:
        with registry_server() as registry:
            registry.add_person(ORCID, "Ada", "Lovelace", ["10.5555/vouch.2026.42"])
            registry.add_work(
                "10.5555/vouch.2026.42",
                "Analytical Engines Revisited",
                [("Ada", "Lovelace", ORCID), ("Grace", "Hopper", None)],
            )
            registry.users["ada"] = {"login": "ada", "name": "Ada Lovelace", "email": ME}
            yield registry

    def test_orcid_record(self, registry: Registry) -> None:
        record = OrcidLookup(registry.orcid_api, timeout=5).fetch(f"https://orcid.org/{ORCID}")
        assert record is not None
        assert record.names == ("Ada Lovelace",)
        assert record.orcids == (ORCID,)
        assert record.dois == ("10.5555/vouch.2026.42",)
        check = rules.orcid_works_check(record, doi="10.5555/vouch.2026.42", orcid=ORCID)
        assert check.status == CredentialStatus.verified
        other = rules.orcid_works_check(record, doi="10.1234/other", orcid=ORCID)
        assert other.status == CredentialStatus.rejected
        assert "does not list 10.1234/other" in other.note

    def test_doi_work(self, registry: Registry) -> None:
        record = DoiLookup(registry.doi_api, timeout=5).fetch("10.5555/VOUCH.2026.42")
        assert record is not None
        assert record.names == ("Ada Lovelace", "Grace Hopper")
        assert record.orcids == (ORCID,)
        assert record.title == "Analytical Engines Revisited"
        # Only a proved ORCID iD among the authors' verifies; a matching name does not.
        assert rules.doi_check(record, name="Alan Turing", orcid=ORCID).status == "verified"
        assert rules.doi_check(record, name="Grace Hopper", orcid=None).status == "rejected"

    def test_github_user(self, registry: Registry) -> None:
        record = GitHubLookup(registry.github_api, timeout=5).fetch("ada")
        assert record is not None
        assert (record.key, record.names, record.emails) == (
            "ada",
            ("Ada Lovelace",),
            (ME.lower(),),
        )

    def test_unknown_is_none(self, registry: Registry) -> None:
        assert OrcidLookup(registry.orcid_api, timeout=5).fetch("0000-0002-1694-233X") is None
        assert DoiLookup(registry.doi_api, timeout=5).fetch("10.1234/missing") is None
        assert GitHubLookup(registry.github_api, timeout=5).fetch("nobody") is None

    def test_failures_are_unavailable(self, registry: Registry) -> None:
        registry.failing = True
        with pytest.raises(LookupUnavailable, match="HTTP 500"):
            DoiLookup(registry.doi_api, timeout=5).fetch("10.5555/vouch.2026.42")
        closed = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(LookupUnavailable, match="could not be reached"):
            OrcidLookup(closed, timeout=5).fetch(ORCID)

    def test_off_unless_configured(self, registry: Registry) -> None:
        off = build_lookups(MarketplaceSettings())
        assert (off.orcid, off.doi, off.github) == (None, None, None)
        on = build_lookups(MarketplaceSettings(doi_api=registry.doi_api))
        assert isinstance(on.doi, DoiLookup)
        assert (on.orcid, on.github) == (None, None)
        assert registry.requests == []
