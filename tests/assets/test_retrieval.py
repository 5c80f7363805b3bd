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


def test_filters_on_an_asset_with_nothing_ingested_find_nothing(
    runtime: Runtime, expert: Actor
) -> None:
    # An empty BM25 index once made a float array that the path filter could not compare.
    asset = create_test_asset(runtime, owner=expert.account, slug="empty")
    assert _search(runtime, asset, "refunds", path_prefix="docs/") == []
    assert _search(runtime, asset, "refunds", kinds=["code"], path_prefix="docs/") == []


def test_bm25_path_filter_matches_the_prefix_as_written() -> None:
    words = LexicalIndex.build(
        [("a", "cart total", {"path": "shop/cart.py"}), ("b", "cart", {"path": "docs/cart.md"})]
    )
    shop, nul = words.mask(None, "shop/"), words.mask(None, "\0")
    assert shop is not None
    assert shop.tolist() == [True, False]
    # numpy's string compare ignores trailing NULs, and so once matched "\0" everywhere.
    assert nul is not None
    assert nul.tolist() == [False, False]


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


# Each point is long enough that the paragraph (over 1.5 times the chunk size) is cut between
# its points, as the AI Act's Art. 99(7) is.
_ASSESSED = (
    ", as established by the authority in its written assessment of the case, sent to the "
    "operator with the reasons for it and published in the register of decisions"
)
FACTORS = [
    f"(a) the nature, gravity and duration of the infringement and of its consequences, taking "
    f"into account the purpose of the widget and the damage suffered{_ASSESSED};",
    f"(b) whether fines have already been applied by other market surveillance authorities to "
    f"the same operator for the same infringement{_ASSESSED};",
    f"(c) the size, the annual turnover and market share of the operator committing the "
    f"infringement, and the financial benefits gained from it{_ASSESSED};",
    f"(d) the degree of cooperation with the national competent authorities, in order to remedy "
    f"the infringement and mitigate its adverse effects{_ASSESSED};",
    f"(e) the intentional or negligent character of the infringement, and any similar previous "
    f"infringements by the same operator{_ASSESSED};",
    f"(f) any action taken by the operator to mitigate the harm suffered by the affected persons, "
    f"including the recall of widgets{_ASSESSED}.",
]


def test_an_answer_quotes_a_provision_with_the_points_chunked_apart_from_it(
    runtime: Runtime, expert: Actor, tmp_path: Path
) -> None:
    from sqlmodel import Session

    from app import querying

    corpus = tmp_path / "act"
    corpus.mkdir()
    (corpus / "widget_act.md").write_text(
        "# Widget Safety Act\n\n#### Article 12\n\n*Penalties*\n\n"
        "1. Member States shall lay down the rules on penalties for infringements of this Act.\n\n"
        "2. Fines shall be effective, proportionate and dissuasive.\n\n"
        "3. When deciding on the amount of a fine in each individual case, the authority shall "
        "have regard to the following:\n\n" + "\n\n".join(FACTORS) + "\n\n"
        "4. The Commission shall publish the fines imposed each year.\n",
        encoding="utf-8",
    )
    asset = create_test_asset(runtime, owner=expert.account, slug="widgets")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=corpus, kind="regulation")
    assert job.status == "succeeded", job.error
    sections = {
        m.get("section") for _, _, m in runtime.index.collection(asset.collection).records()
    }
    assert {"Art. 12(3)", "Art. 12(3)(a)", "Art. 12(3)(f)"} <= sections  # chunked apart

    with Session(runtime.engine) as session:
        answer = querying.draft_answer(
            session, runtime, account=expert.account, slug="widgets",
            question="What does the authority weigh when deciding the amount of a fine?",
        )  # fmt: skip
    lead = answer.citations[0]
    assert lead.locator["section"] == "Art. 12(3)"
    for factor in FACTORS:  # every point, in the answer and in what it cites
        assert factor in answer.text
        assert factor in lead.text
    assert "4. The Commission shall publish" not in lead.text
    first, last = lead.locator["lines"]
    assert last - first >= 2 * len(FACTORS)  # the provision's lines down to its last point
    # the points are not cited a second time on their own
    assert not any(c.locator["section"].startswith("Art. 12(3)(") for c in answer.citations)
