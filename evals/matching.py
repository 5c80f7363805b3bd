"""When a retrieved chunk (or a citation) hits an expected unit: by overlap.

A chunk is its locator (ARCHITECTURE.md "Citations and locators") and its text. A unit with a
``path`` is hit by chunks of the same file (paths compared exactly after normalising ``./``)
that satisfy every narrowing the unit gives:

* ``lines``: the inclusive line spans overlap;
* ``section``: the citation (or heading) paths are equal, or one is the other's prefix cut at a
  citation boundary. A chunk ``Art. 17(3)(b)`` hits ``Art. 17(3)`` and ``Art. 17``, being a
  part of them; ``Art. 17(2)`` and ``Art. 1`` do not. A broader chunk ``Art. 17(3)`` hits
  ``Art. 17(3)(b)`` only when it contains it: its text shows the next part's marker (``(b)``,
  ``b.``, ``b)``; ``1.1.2`` under ``1.1``; the heading ``Opening hours`` under ``Store policies``),
  since a reader may have cut the points out into chunks of their own and left only the
  paragraph's opening words;
* ``page``: the chunk is on that page (or its page range covers it);
* ``symbol``: the same qualified name, or one nested in the other at a ``.`` (a chunk
  ``Class.method`` hits ``Class``; a chunk ``Class`` hits ``Class.method`` when its text
  names ``method``).

A unit with only a path is hit by any chunk of that file. A unit with ``text`` is hit when the
texts overlap: after whitespace normalisation one contains the other, or they share a run of
words that is substantial (at least MIN_RUN_WORDS, and half the shorter text or LONG_RUN_WORDS).
"""

import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from evals.golden import ExpectedUnit, normalise_path

MIN_RUN_WORDS = 8
LONG_RUN_WORDS = 40
_SPACE_AROUND_BRACKET = re.compile(r"\s*([()\[\]])\s*")


def _normal_section(section: str) -> str:
    # "Art. 17 (3)" and "Art. 17(3)" are the same citation.
    return _SPACE_AROUND_BRACKET.sub(r"\1", " ".join(section.split()))


def _is_prefix_at_boundary(prefix: str, whole: str) -> bool:
    if not prefix or not whole.startswith(prefix):
        return False
    if len(prefix) == len(whole):
        return True
    # "Art. 1" is not a part of "Art. 17": the cut must not fall inside a number or a word.
    return not (prefix[-1].isalnum() and whole[len(prefix)].isalnum())


_NEXT_BRACKET = re.compile(r"^\(([^()]+)\)")
_NEXT_DOTTED = re.compile(r"^\.([A-Za-z0-9]+)")
_HEADING_SEPARATOR = re.compile(r"\s*>\s*")


def _shows_part(text: str, broader: str, narrower: str) -> bool:
    """Whether a chunk of ``broader`` with ``text`` contains the part ``narrower`` of it."""
    rest = narrower[len(broader) :]
    if bracket := _NEXT_BRACKET.match(rest):
        label = re.escape(bracket.group(1))
        marker = rf"(?<![\w(])(?:\({label}\)|{label}[.)])(?!\w)"
        return re.search(marker, text) is not None
    if dotted := _NEXT_DOTTED.match(rest):
        number = re.escape(broader + dotted.group(0))
        return re.search(rf"(?<![\w.]){number}(?![\w]|\.\w)", text) is not None
    part = _HEADING_SEPARATOR.split(rest.strip(" >"))[0].strip()
    return bool(part) and part.casefold() in " ".join(text.split()).casefold()


def section_hit(expected: str, found: str, text: str) -> bool:
    """Whether a chunk of section ``found`` with ``text`` hits the section ``expected``: the same
    place, a part of it, or a broader place whose text contains it."""
    a, b = _normal_section(expected), _normal_section(found)
    if _is_prefix_at_boundary(a, b):
        return True
    return _is_prefix_at_boundary(b, a) and _shows_part(text, b, a)


def symbol_hit(expected: str, found: str, text: str) -> bool:
    """Whether a chunk of symbol ``found`` with ``text`` hits the symbol ``expected``: the same
    symbol, one nested in it, or an enclosing one whose text defines it."""
    a, b = expected.strip(), found.strip()
    if a == b or b.startswith(a + "."):
        return True
    if not a.startswith(b + "."):
        return False
    name = a[len(b) + 1 :].split(".")[0]
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) is not None


def lines_overlap(expected: Sequence[int], found: Sequence[int]) -> bool:
    """Inclusive line spans ``[first, last]`` that share at least one line."""
    return found[0] <= expected[1] and found[1] >= expected[0]


def texts_overlap(expected: str, found: str) -> bool:
    """One text contains the other (whitespace normalised), or they share a substantial run."""
    a, b = " ".join(expected.split()), " ".join(found.split())
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    words_a, words_b = a.split(" "), b.split(" ")
    match = SequenceMatcher(None, words_a, words_b, autojunk=False).find_longest_match(
        0, len(words_a), 0, len(words_b)
    )
    shorter = min(len(words_a), len(words_b))
    return match.size >= MIN_RUN_WORDS and (
        match.size * 2 >= shorter or match.size >= LONG_RUN_WORDS
    )


def _span(value: Any) -> tuple[int, int] | None:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        try:
            first, last = int(value[0]), int(value[1])
        except (TypeError, ValueError):
            return None
        return (first, last) if first >= 1 and last >= first else None
    return None


def _pages(locator: Mapping[str, Any]) -> tuple[int, int] | None:
    pages = locator.get("pages")
    if isinstance(pages, str) and "-" in pages:
        pages = pages.split("-", 1)
    span = _span(pages)
    if span:
        return span
    try:
        page = int(locator.get("page") or 0)
    except (TypeError, ValueError):
        return None
    return (page, page) if page >= 1 else None


def unit_hit(unit: ExpectedUnit, locator: Mapping[str, Any], text: str = "") -> bool:
    """Whether a chunk with ``locator`` and ``text`` hits ``unit``."""
    if unit.path is not None:
        if normalise_path(str(locator.get("path") or "")) != unit.path:
            return False
        if unit.lines is not None:
            span = _span(locator.get("lines"))
            if span is None or not lines_overlap(unit.lines, span):
                return False
        if unit.section is not None:
            section = locator.get("section")
            if not isinstance(section, str) or not section_hit(unit.section, section, text):
                return False
        if unit.page is not None:
            pages = _pages(locator)
            if pages is None or not pages[0] <= unit.page <= pages[1]:
                return False
        if unit.symbol is not None:
            symbol = locator.get("symbol")
            if not isinstance(symbol, str) or not symbol_hit(unit.symbol, symbol, text):
                return False
    return unit.text is None or texts_overlap(unit.text, text)


def hits(units: Sequence[ExpectedUnit], locator: Mapping[str, Any], text: str = "") -> list[int]:
    """The indexes of the ``units`` a chunk hits, in the order the units are listed."""
    return [i for i, unit in enumerate(units) if unit_hit(unit, locator, text)]
