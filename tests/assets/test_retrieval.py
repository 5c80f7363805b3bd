"""Hybrid retrieval: dense + BM25 fused, exact hits first, overlaps merged, filters."""

import shutil
from pathlib import Path

import pytest

from app.runtime import Runtime
from assets import retrieval
from assets.errors import InvalidQuestion
from assets.index import Metadata
from assets.lexical import LexicalIndex, tokenize
from assets.models import Asset
from tests.factories import HANDBOOK, Actor, create_test_asset, ingest_path

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def asset(runtime: Runtime, expert: Actor, tmp_path: Path) -> Asset:
    corpus = tmp_path / "corpus"
    shutil.copytree(HANDBOOK, corpus)
    shutil.copy(DATA / "regulation" / "gdpr_excerpt.md", corpus / "gdpr.md")
    shutil.copytree(DATA / "polyglot" / "py", corpus / "shop")
    asset = create_test_asset(runtime, owner=expert.account, slug="mixed")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert job.status == "succeeded", job.error
    return asset


def _search(
    runtime: Runtime, asset: Asset, query: str, k: int = 5, **filters: object
) -> list[retrieval.Passage]:
    return retrieval.search(
        asset, query=query, k=k, index=runtime.index, embedder=runtime.embedder,
        lexical=runtime.lexical, **filters,  # type: ignore[arg-type]
    )  # fmt: skip


class TestTokenize:
    def test_identifiers_are_kept_whole_and_split(self) -> None:
        tokens = tokenize("LoyaltyCard.add_purchase and getAppDir")
        assert {"loyaltycard.add_purchase", "add_purchase", "getappdir"} <= set(tokens)
        assert {"loyalti", "card", "add", "purchas", "app", "dir"} <= set(tokens)

    def test_citation_forms_stay_whole(self) -> None:
        tokens = tokenize("see Article 17(3)(b), § 164.512(a) and Rule 1.1.2")
        assert {"art17", "art17(3)", "art17(3)(b)", "§164.512", "§164.512(a)", "1.1.2"} <= set(
            tokens
        )

    def test_stopwords_are_dropped_before_stemming(self) -> None:
        assert "doe" not in tokenize("What does it do?")


def test_exact_symbol_name_goes_to_the_top(runtime: Runtime, asset: Asset) -> None:
    (top, *_) = _search(runtime, asset, "what does price_with_vat return?")
    assert top.locator["symbol"] == "price_with_vat"


def test_exact_citation_path_goes_to_the_top(runtime: Runtime, asset: Asset) -> None:
    results = _search(runtime, asset, "Art. 17(3)", k=3)
    assert results[0].locator["section"].startswith("Art. 17(3)")


def test_bm25_finds_a_rare_word_dense_alone_ranks_lower(runtime: Runtime, asset: Asset) -> None:
    # "tail lift" appears once in the corpus; the fused ranking puts its chunk first.
    (top, *_) = _search(runtime, asset, "tail lift")
    assert top.locator["path"] == "delivery.txt"
    assert "tail lift" in top.text


def test_filters_by_kind_and_path_prefix(runtime: Runtime, asset: Asset) -> None:
    code = _search(runtime, asset, "loyalty points", k=10, kinds=["code"])
    assert code
    assert {p.kind for p in code} == {"code"}
    shop = _search(runtime, asset, "cart total", k=10, path_prefix="shop/")
    assert shop
    assert all(p.locator["path"].startswith("shop/") for p in shop)
    assert _search(runtime, asset, "cart total", path_prefix="nowhere/") == []
    with pytest.raises(InvalidQuestion, match="unknown kind"):
        _search(runtime, asset, "x", kinds=["poems"])


def test_overlapping_chunks_of_one_document_are_merged(runtime: Runtime, expert: Actor) -> None:
    asset = create_test_asset(runtime, owner=expert.account, slug="overlap")
    collection = runtime.index.collection(asset.collection)
    lines = [f"line {n}: the refund window is fourteen days" for n in range(1, 11)]
    texts = ["\n".join(lines[0:6]), "\n".join(lines[4:10])]
    metadata: list[Metadata] = [
        {"path": "a.md", "kind": "text", "source": "s", "line_start": 1, "line_end": 6},
        {"path": "a.md", "kind": "text", "source": "s", "line_start": 5, "line_end": 10},
    ]
    vectors = runtime.embedder.embed(texts)
    collection.upsert(["one", "two"], vectors, texts, metadata)
    runtime.lexical.replace(asset.collection, LexicalIndex.build(collection.records()))
    results = _search(runtime, asset, "refund window fourteen days")
    assert len(results) == 1
    assert results[0].locator == {"path": "a.md", "lines": [1, 10]}
    assert results[0].text == "\n".join(lines)


def test_bm25_follows_reingest(runtime: Runtime, expert: Actor, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(HANDBOOK, corpus)
    asset = create_test_asset(runtime, owner=expert.account, slug="follow")
    ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    assert runtime.lexical.get(asset.collection).search("tail lift", 5)
    (corpus / "delivery.txt").unlink()
    ingest_path(runtime, asset=asset, owner=expert.account, path=corpus)
    words = runtime.lexical.get(asset.collection)
    assert words.search("tail lift", 5) == []
    assert len(words) == runtime.index.collection(asset.collection).count()
