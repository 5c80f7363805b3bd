"""Discovery: text search, filters and sorting over plain records of published assets and
experts. Pure: the records are gathered elsewhere (``app/catalog.py``), so the rules are tested
without a database.

The rules, for both assets and experts:

- ``q``: every word of the query starts a word of the record's text (case-insensitive), so
  "refund polic" finds "Refunds policy". An asset's text is its title, description and tags and
  its expert's name, headline and bio; an expert's text is their name, headline, bio, domains
  and the titles and tags of their published assets.
- ``domain``: an asset tagged with it; an expert with it among their domains or their published
  assets' tags.
- ``verified``: the expert (an asset's owner) holds a verified credential in that domain.
- ``min_quality``: the asset's quality score, or the expert's best asset's, is at least this;
  unscored records never pass.
- ``price_min``/``price_max`` (minor units): an asset's per-question price lies in the range
  (assets not sold per question never pass); an expert's typical engagement price range
  overlaps it (no upper price means no upper bound).
- ``max_response_hours``: the expert's stated response time is at most this; none stated never
  passes.
- ``currency``: only prices in this currency.

Sorting: ``quality`` (by the lower bound of the score's 95% interval, highest first, so that
a few lucky answers do not outrank a long record; unscored last), ``price`` (cheapest first,
unpriced last), ``newest``. Ties keep the newest first.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from marketplace.errors import InvalidCatalogFilter

SORTS = ("quality", "price", "newest")
Sort = Literal["quality", "price", "newest"]
MAX_QUERY = 200
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A verified credential as the catalog shows it."""

    id: str
    kind: str
    claim: str
    domain: str | None
    method: str | None
    figures: dict[str, object]  # the public ones only (credentials.public_figures)
    verified_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExpertRecord:
    account_id: str
    name: str
    headline: str
    bio: str
    domains: tuple[str, ...]
    price_from: int | None
    price_to: int | None
    currency: str
    response_hours: int | None
    credentials: tuple[CredentialRecord, ...]
    # The expert's published assets (slugs, titles, tags) and their best quality score.
    asset_slugs: tuple[str, ...] = ()
    asset_titles: tuple[str, ...] = ()
    asset_tags: tuple[str, ...] = ()
    quality: float | None = None
    # The lower bound of the quality score's interval: what sorting by quality uses.
    quality_low: float | None = None
    created_at: datetime | None = None

    @property
    def verified_domains(self) -> frozenset[str]:
        return frozenset(c.domain.lower() for c in self.credentials if c.domain)

    def text(self) -> str:
        return " ".join(
            [
                self.name,
                self.headline,
                self.bio,
                *self.domains,
                *self.asset_titles,
                *self.asset_tags,
            ]
        )


@dataclass(frozen=True, slots=True)
class AssetRecord:
    slug: str
    title: str
    description: str
    tags: tuple[str, ...]
    expert: ExpertRecord
    # Per-question price of the current plan (None: not sold per question), and monthly.
    per_query: int | None
    monthly: int | None
    currency: str
    quality: float | None
    created_at: datetime
    # The score's 95% interval and the measured answers behind it (app/quality.py).
    quality_low: float | None = None
    quality_high: float | None = None
    quality_n: int = 0

    def text(self) -> str:
        e = self.expert
        return " ".join([self.title, self.description, *self.tags, e.name, e.headline, e.bio])


@dataclass(frozen=True, slots=True)
class Filters:
    """What a client searches for; ``check()`` refuses values that cannot match anything."""

    q: str = ""
    domain: str | None = None
    verified: str | None = None
    min_quality: float | None = None
    price_min: int | None = None
    price_max: int | None = None
    max_response_hours: int | None = None
    currency: str | None = None
    sort: Sort = "quality"
    words: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(_words(self.q)))

    def check(self) -> "Filters":
        if len(self.q) > MAX_QUERY:
            raise InvalidCatalogFilter(f"q: keep the search to {MAX_QUERY} characters")
        if self.min_quality is not None and not 0 <= self.min_quality <= 1:
            raise InvalidCatalogFilter(
                f"min_quality: {self.min_quality:g} is not a score from 0 to 1"
            )
        for name in ("price_min", "price_max", "max_response_hours"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidCatalogFilter(f"{name}: {value} is negative")
        if self.currency is not None and not re.fullmatch(r"[a-z]{3}", self.currency):
            raise InvalidCatalogFilter(
                f"currency: {self.currency!r} is not a three-letter ISO code in lower case"
            )
        if self.sort not in SORTS:
            raise InvalidCatalogFilter(f"sort: use one of {', '.join(SORTS)}, not {self.sort!r}")
        return self


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _matches_text(words: Sequence[str], text: str) -> bool:
    have = _words(text)
    return all(any(h.startswith(w) for h in have) for w in words)


def _lower(values: Iterable[str]) -> set[str]:
    return {v.strip().casefold() for v in values}


def _expert_passes(
    expert: ExpertRecord, f: Filters, *, quality: float | None, text: str, domains: set[str]
) -> bool:
    """The filters an asset and its expert share."""
    if f.words and not _matches_text(f.words, text):
        return False
    if f.domain and f.domain.strip().casefold() not in domains:
        return False
    if f.verified and f.verified.strip().casefold() not in expert.verified_domains:
        return False
    if f.min_quality is not None and (quality is None or quality < f.min_quality):
        return False
    return f.max_response_hours is None or (
        expert.response_hours is not None and expert.response_hours <= f.max_response_hours
    )


def asset_matches(asset: AssetRecord, f: Filters) -> bool:
    if not _expert_passes(
        asset.expert, f, quality=asset.quality, text=asset.text(), domains=_lower(asset.tags)
    ):
        return False
    if f.price_min is None and f.price_max is None and f.currency is None:
        return True
    if f.currency is not None and asset.currency != f.currency:
        return False
    if f.price_min is None and f.price_max is None:
        return True
    if asset.per_query is None:
        return False
    low = f.price_min if f.price_min is not None else 0
    return low <= asset.per_query and (f.price_max is None or asset.per_query <= f.price_max)


def expert_matches(expert: ExpertRecord, f: Filters) -> bool:
    domains = _lower([*expert.domains, *expert.asset_tags])
    if not _expert_passes(expert, f, quality=expert.quality, text=expert.text(), domains=domains):
        return False
    if f.currency is not None and expert.currency != f.currency:
        return False
    if f.price_min is None and f.price_max is None:
        return True
    if expert.price_from is None and expert.price_to is None:
        return False
    low = expert.price_from if expert.price_from is not None else 0
    high = expert.price_to  # None: no upper bound
    if f.price_max is not None and low > f.price_max:
        return False
    return not (f.price_min is not None and high is not None and high < f.price_min)


T = TypeVar("T", AssetRecord, ExpertRecord)


def _rank(record: AssetRecord | ExpertRecord) -> float | None:
    """What sorting by quality ranks on: the interval's lower bound (the score itself for a
    record that carries no interval)."""
    return record.quality if record.quality_low is None else record.quality_low


def _sorted(records: list[T], sort: Sort, price: Callable[[T], int | None]) -> list[T]:
    # Newest first as the base order; Python's sort is stable, so it breaks later ties.
    floor = datetime.min
    ordered = sorted(
        records,
        key=lambda r: (r.created_at or floor).replace(tzinfo=None),
        reverse=True,
    )
    if sort == "quality":
        ordered.sort(key=lambda r: (_rank(r) is None, -(_rank(r) or 0.0)))
    elif sort == "price":
        ordered.sort(key=lambda r: (price(r) is None, price(r) or 0))
    return ordered


def search_assets(records: Iterable[AssetRecord], f: Filters) -> list[AssetRecord]:
    """The assets that pass every filter, in the requested order."""
    found = [r for r in records if asset_matches(r, f)]
    return _sorted(found, f.sort, lambda r: r.per_query)


def search_experts(records: Iterable[ExpertRecord], f: Filters) -> list[ExpertRecord]:
    """The experts that pass every filter, in the requested order (price: their lowest)."""
    found = [r for r in records if expert_matches(r, f)]
    return _sorted(
        found, f.sort, lambda r: r.price_from if r.price_from is not None else r.price_to
    )
