"""Discovery rules over plain records: each filter, combinations, sorting, refused values."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from marketplace.catalog import (
    AssetRecord,
    CredentialRecord,
    ExpertRecord,
    Filters,
    search_assets,
    search_experts,
)
from marketplace.errors import InvalidCatalogFilter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cred(domain: str, claim: str = "a claim") -> CredentialRecord:
    return CredentialRecord(
        id=f"crd_{domain}",
        kind="commit_authorship",
        claim=claim,
        domain=domain,
        method="git_history",
        figures={"commit_share": 0.8},
        verified_at=T0,
    )


def expert(account_id: str, day: int, **fields: Any) -> ExpertRecord:
    base: dict[str, Any] = {
        "account_id": account_id,
        "name": account_id.title(),
        "headline": "",
        "bio": "",
        "domains": (),
        "price_from": None,
        "price_to": None,
        "currency": "usd",
        "response_hours": None,
        "credentials": (),
        "created_at": T0 + timedelta(days=day),
    }
    return ExpertRecord(**(base | fields))


ALICE = expert(
    "alice",
    1,
    headline="Python packaging and retail systems",
    domains=("python", "retail"),
    price_from=20_000,
    price_to=50_000,
    response_hours=24,
    credentials=(cred("python"),),
    asset_slugs=("garden",),
    asset_titles=("Garden store handbook",),
    asset_tags=("retail", "python"),
    quality=0.9,
)
BOB = expert(
    "bob",
    2,
    headline="Data protection lawyer",
    bio="GDPR compliance reviews for online shops.",
    domains=("gdpr",),
    price_from=100_000,
    response_hours=72,
    credentials=(cred("GDPR"),),
    asset_slugs=("gdpr-guide", "digest"),
    asset_titles=("GDPR compliance guide", "Case law digest"),
    asset_tags=("gdpr", "law", "law"),
    quality=0.5,
)
CAROL = expert(
    "carol",
    3,
    headline="Garden retail consultant",
    domains=("retail",),
    price_from=5_000,
    price_to=10_000,
    response_hours=8,
    asset_slugs=("nursery",),
    asset_titles=("Nursery stock notes",),
    asset_tags=("retail",),
)
EXPERTS = [ALICE, BOB, CAROL]


def asset(slug: str, owner: ExpertRecord, day: int, **fields: Any) -> AssetRecord:
    base: dict[str, Any] = {
        "slug": slug,
        "title": slug.title(),
        "description": "",
        "tags": (),
        "expert": owner,
        "per_query": None,
        "monthly": None,
        "currency": "usd",
        "quality": None,
        "created_at": T0 + timedelta(days=day),
    }
    return AssetRecord(**(base | fields))


ASSETS = [
    asset(
        "garden",
        ALICE,
        1,
        title="Garden store handbook",
        tags=("retail", "python"),
        per_query=25,
        quality=0.9,
    ),
    asset(
        "gdpr-guide",
        BOB,
        2,
        title="GDPR compliance guide",
        description="Articles, recitals and the guidance on them.",
        tags=("gdpr", "law"),
        per_query=100,
        monthly=2000,
        quality=0.5,
    ),
    asset("digest", BOB, 3, title="Case law digest", tags=("law",), monthly=1500),
    asset("nursery", CAROL, 4, title="Nursery stock notes", tags=("retail",), per_query=0),
]


def slugs(**filters: Any) -> list[str]:
    return [a.slug for a in search_assets(ASSETS, Filters(**filters).check())]


def names(**filters: Any) -> list[str]:
    return [e.account_id for e in search_experts(EXPERTS, Filters(**filters).check())]


class TestAssetFilters:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, ["garden", "gdpr-guide", "nursery", "digest"]),
            ({"q": "GDPR"}, ["gdpr-guide", "digest"]),  # digest: its expert's bio
            ({"q": "garden"}, ["garden", "nursery"]),  # nursery: its expert's headline
            ({"q": "handb gard"}, ["garden"]),  # word starts, any order
            ({"q": "recital"}, ["gdpr-guide"]),
            ({"q": "garden lawyer"}, []),
            ({"domain": "RETAIL"}, ["garden", "nursery"]),
            ({"domain": "law"}, ["gdpr-guide", "digest"]),
            ({"verified": "python"}, ["garden"]),
            ({"verified": "gdpr"}, ["gdpr-guide", "digest"]),
            ({"verified": "retail"}, []),
            ({"min_quality": 0.5}, ["garden", "gdpr-guide"]),
            ({"min_quality": 0.6}, ["garden"]),
            ({"min_quality": 0}, ["garden", "gdpr-guide"]),  # unscored never pass
            ({"price_min": 50}, ["gdpr-guide"]),
            ({"price_max": 30}, ["garden", "nursery"]),  # free is 0; digest is not per question
            ({"price_min": 25, "price_max": 100}, ["garden", "gdpr-guide"]),
            ({"price_min": 0, "price_max": 0}, ["nursery"]),
            ({"price_min": 500, "price_max": 100}, []),  # an empty range matches nothing
            ({"max_response_hours": 24}, ["garden", "nursery"]),
            ({"max_response_hours": 7}, []),
            ({"currency": "eur"}, []),
            ({"domain": "retail", "verified": "python"}, ["garden"]),
            ({"domain": "retail", "max_response_hours": 10}, ["nursery"]),
            ({"verified": "gdpr", "price_max": 150}, ["gdpr-guide"]),
            ({"q": "gdpr", "min_quality": 0.4}, ["gdpr-guide"]),
            ({"domain": "law", "min_quality": 0.6}, []),
        ],
    )
    def test_filter(self, filters: dict[str, Any], expected: list[str]) -> None:
        assert slugs(**filters) == expected

    def test_sort_by_price_puts_unpriced_last(self) -> None:
        assert slugs(sort="price") == ["nursery", "garden", "gdpr-guide", "digest"]

    def test_sort_newest(self) -> None:
        assert slugs(sort="newest") == ["nursery", "digest", "gdpr-guide", "garden"]

    def test_sort_quality_breaks_ties_by_newest(self) -> None:
        tied = [*ASSETS, asset("later", ALICE, 9, quality=0.9)]
        found = search_assets(tied, Filters(sort="quality"))
        assert [a.slug for a in found][:2] == ["later", "garden"]


class TestExpertFilters:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, ["alice", "bob", "carol"]),
            ({"q": "lawyer"}, ["bob"]),
            ({"q": "python"}, ["alice"]),
            ({"q": "digest"}, ["bob"]),  # an asset's title
            ({"domain": "retail"}, ["alice", "carol"]),
            ({"domain": "law"}, ["bob"]),  # from an asset's tags
            ({"verified": "python"}, ["alice"]),
            ({"verified": "Gdpr"}, ["bob"]),
            ({"min_quality": 0.6}, ["alice"]),
            ({"price_min": 60_000}, ["bob"]),  # bob names no upper price
            ({"price_max": 30_000}, ["alice", "carol"]),  # ranges that overlap
            ({"price_min": 40_000, "price_max": 60_000}, ["alice"]),
            ({"price_min": 200_000}, ["bob"]),
            ({"max_response_hours": 24}, ["alice", "carol"]),
            ({"domain": "retail", "max_response_hours": 10}, ["carol"]),
            ({"verified": "python", "price_min": 60_000}, []),
        ],
    )
    def test_filter(self, filters: dict[str, Any], expected: list[str]) -> None:
        assert names(**filters) == expected

    def test_expert_without_prices_fails_a_price_filter(self) -> None:
        silent = expert("dan", 5)
        assert search_experts([silent], Filters(price_max=10**9)) == []
        assert search_experts([silent], Filters(max_response_hours=10**4)) == []

    def test_sort_by_price_uses_the_lowest(self) -> None:
        assert names(sort="price") == ["carol", "alice", "bob"]

    def test_sort_newest(self) -> None:
        assert names(sort="newest") == ["carol", "bob", "alice"]


class TestCheck:
    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            ({"min_quality": 1.5}, "min_quality"),
            ({"min_quality": -0.1}, "min_quality"),
            ({"price_min": -1}, "price_min"),
            ({"max_response_hours": -2}, "max_response_hours"),
            ({"currency": "USD"}, "currency"),
            ({"sort": "cheapest"}, "sort"),
            ({"q": "x" * 201}, "200 characters"),
        ],
    )
    def test_refused(self, filters: dict[str, Any], message: str) -> None:
        with pytest.raises(InvalidCatalogFilter, match=message) as caught:
            Filters(**filters).check()
        assert caught.value.status_code == 422
