"""Detection: whether a text reads as legislation, for files whose kind is not given.

``looks_like_regulation`` looks for article, § or "Section N." headings starting lines,
headings run into the text by a PDF extractor, or a rulebook's rules stated as sentences in
ascending order (``_reads_as_rulebook``), telling them apart from a paper's numbered headings
and a changelog's versions.
"""

import re
from html import unescape
from itertools import pairwise

from ingestion.sources.regulation.headings import _unit_match
from ingestion.sources.regulation.markdown import _md_norm
from ingestion.sources.regulation.rulebook import (
    _guidance,
    _rule_key,
    _rule_line,
    _rule_sentence,
    _RuleLine,
)

_SNIFF_CHARS = 400_000
_HTMLISH = re.compile(r"<(?:html|body|p|div|h[1-6]|table|br)\b", re.IGNORECASE)
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_DOTTED = re.compile(r"^(?:Section|SECTION|Sec\.|SEC\.|Rule|RULE)\s+\d+[A-Za-z]?\.(?:\s|$)")
# A heading run into the text, as extractors that join lines give it: "... Article 2 Material
# scope 1. This ...". A reference is followed by "(1)", "of", "and", punctuation or lower case.
_INLINE_HEADING = re.compile(
    r"(?:\bArticle|\bARTICLE|§)\s*(\d+[a-z]?(?:\.\d+)*)\s+(?=[A-Z\u2018\u201c\"'][a-z])"
)


def looks_like_regulation(text: str) -> bool:
    """Whether a text reads as legislation: two or more article, § or "Section N." headings
    starting lines, three article headings run into the text by a PDF extractor, or a
    rulebook's rules "1.1.2 A Person must..." (see `_reads_as_rulebook`)."""
    sample = text[:_SNIFF_CHARS]
    if _HTMLISH.search(sample):
        sample = unescape(_TAGS.sub("\n", sample))
    found: set[tuple[str, str]] = set()
    lines: list[str] = []
    for raw in sample.splitlines():
        norm, level = _md_norm(raw)
        lines.append(norm)
        match = _unit_match(norm, level, articles=False)
        if match is None:
            continue
        if match[0] in ("Art.", "§") or _DOTTED.match(norm):
            found.add((match[0], match[1]))
            if len(found) >= 2:
                return True
    if len({m[1] for m in _INLINE_HEADING.finditer(sample)}) >= 3:
        return True
    return _reads_as_rulebook(lines)


def _reads_as_rulebook(lines: list[str]) -> bool:
    """Three rules or more, numbered with three levels and stated as sentences ("1.1.2 A Person
    must keep records."), in ascending order; two are enough beside a "Guidance" heading.

    A paper's "3.2.1 Results" is a heading, not a sentence. A changelog's "1.2.3 - 2024-01-01"
    is followed by a date, versions have zeros ("1.2.0") that rule numbers never have, and a
    changelog lists its versions newest first, where a rulebook counts up."""
    numbers: list[str] = []
    guidance = False
    for norm in lines:
        parsed = _rule_line(norm)
        if parsed is None:
            unit = _unit_match(norm, 0, articles=False)
            if unit and unit[0] == "Rule" and unit[1].count(".") >= 2:
                parsed = _RuleLine(unit[1], 3, "label")  # "Rule 1.1.2" says what it is
            else:
                guidance = guidance or _guidance(norm, "", 0) is not None
                continue
        if parsed.depth < 3:
            continue
        if parsed.form == "guidance":
            guidance = True
        elif parsed.number not in numbers and (
            parsed.form == "label" or (parsed.form == "text" and _rule_sentence(parsed.rest))
        ):
            numbers.append(parsed.number)
    if len(numbers) < (2 if guidance else 3):
        return False
    keys = [_rule_key(number) for number in numbers]
    rising = sum(later > earlier for earlier, later in pairwise(keys))
    return rising >= 0.75 * (len(keys) - 1)
