"""Structure lines: units, divisions and headings as the line reader recognises them.

``_unit_match`` finds a line opening a unit ("Article 5", "§ 12", "Section 3.", "Rule 1.1.2")
with its heading, ``_division_match`` one opening a division (part, title, chapter, section,
annex) with its rank; the patterns for recitals, the enacting formula and the closing formula
of an EU act live here too.
"""

import re

from ingestion.sources.regulation.labels import _LABEL
from ingestion.sources.regulation.text_helpers import _ws

_UNIT_LINE = re.compile(
    r"^(?P<kw>Article|ARTICLE|Art\.|§|Section|SECTION|Sec\.|SEC\.|Rule|RULE)\s*"
    r"(?P<num>\d+[A-Za-z]{0,3}(?:[.\-]\d+[A-Za-z]{0,3})*)\.?(?:\s*[:\-\u2013\u2014]\s*|\s+|$)(?P<rest>.*)$"
)
_UNIT_PREFIX = {
    "article": "Art.",
    "art.": "Art.",
    "§": "§",
    "section": "Section",
    "sec.": "Section",
    "rule": "Rule",
}
_DIVISION_LINE = re.compile(
    r"^(?P<kw>PART|Part|TITLE|Title|CHAPTER|Chapter|SECTION|Section|SUB-SECTION|Sub-section"
    r"|SUBSECTION|Subsection|SUBPART|Subpart|SUBCHAPTER|Subchapter|BOOK|Book"
    r"|ANNEX|Annex|APPENDIX|Appendix|SCHEDULE|Schedule)"
    r"(?:\s+(?P<num>[IVXLCDM]+|\d+[A-Za-z]?|[A-Z]))?\.?(?:\s*[:\-\u2013\u2014.]\s*|\s+|$)(?P<rest>.*)$"
)
_RANKS = {
    "book": 0,
    "part": 1,
    "title": 2,
    "chapter": 3,
    "subchapter": 4,
    "subpart": 4,
    "section": 5,
    "sub-section": 6,
    "subsection": 6,
}
_ANNEXES = frozenset({"annex", "appendix", "schedule"})
_OPENERS = "\u2018'\"\u201c([\u00ab"
_ENDS_SENTENCE = re.compile(r"[.;:!?)]\s*$")
_LEAD_IN = re.compile(r"[:\u2014\u2013-]\s*$")
_ENDS_CLAUSE = re.compile(r"(?:[:;.,\u2014\u2013]|\b(?:or|and|but))\s*$")
_WHEREAS = re.compile(r"^whereas\b.{0,40}$", re.IGNORECASE)
# Recitals under a heading of their own ("## Recitals"), and the one-recital-per-page layout of
# unofficial copies ("Recital 85", "## Recital 85 - Cooperation along the value chain").
_RECITALS_HEADING = re.compile(r"^(?:recitals?|whereas)\s*:?$", re.IGNORECASE)
_RECITAL_LINE = re.compile(
    r"^recital\s+(?P<number>\d{1,3}[a-z]?)(?:\s*[-\u2013\u2014:.]?\s+(?P<title>\S.*))?$",
    re.IGNORECASE,
)
# Older acts open every recital with the word: "(1) Whereas the objectives of the Community".
_OLD_RECITAL = re.compile(r"^whereas\b", re.IGNORECASE)
_ADOPTED = re.compile(r"^HAVE ADOPTED\b", re.IGNORECASE)
# The closing formula of an EU act ends its last article.
_CLOSING = re.compile(
    r"^(?:This (?:Regulation|Directive|Decision) shall be binding|Done at [A-Z][a-z]+, )"
)


def _clean_heading(text: str) -> str:
    return _ws(text.strip().strip("#*_").strip(" -\u2013\u2014:"))


def _heading_ok(rest: str, level: int) -> bool:
    """Text after "Article 17" on the same line reads as its heading, not as a sentence."""
    if not rest or level:
        return True
    return len(rest) <= 200 and (rest[0].isupper() or rest[0] in _OPENERS)


def _subtitle_ok(text: str, level: int) -> bool:
    """The line after a bare "Article 17" or "CHAPTER III" reads as its heading."""
    if level:
        return True
    if len(text) > 200 or _LABEL.match(text) or text[-1] in ".;:,":
        return False
    return text[0].isupper() or text[0] in _OPENERS


def _unit_match(text: str, level: int, *, articles: bool) -> tuple[str, str, str] | None:
    """(prefix, number, heading) of a line opening an article, a § or a section."""
    match = _UNIT_LINE.match(text)
    if not match:
        return None
    prefix = _UNIT_PREFIX[match["kw"].lower()]
    if prefix == "Section" and articles:
        return None  # in a regulation with articles, a section groups articles
    rest = _clean_heading(match["rest"])
    if not _heading_ok(rest, level):
        return None
    return prefix, match["num"], rest


def _division_match(text: str, level: int) -> tuple[int, str, bool] | None:
    """(rank, display text, heading given) of a line opening a part, chapter, section, annex."""
    match = _DIVISION_LINE.match(text)
    if not match:
        return None
    keyword = match["kw"].lower()
    if keyword not in _ANNEXES and not match["num"]:
        return None
    rest = _clean_heading(match["rest"])
    if not _heading_ok(rest, level):
        return None
    display = _ws(f"{match['kw'].capitalize()} {match['num'] or ''} {rest}")
    return _RANKS.get(keyword, -1), display, bool(rest)
