"""A PDF's layout: its pages as typeset, and the headings its outline or its type marks.

``_pdf_pages`` reads every page's text and, through ``_TypeReader``, its lines with the size and
weight most of each is set in; ``_outline_marks`` places the outline's bookmarks (page and
height) on lines, and ``_type_marks`` takes lines set larger than the body text, or in bold at
its size, as headings. ``_PDF_ERRORS`` are what pypdf raises on a damaged file.
"""

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pypdf
from pypdf.errors import PyPdfError

from ingestion.errors import FileRejected
from ingestion.sources.paper.headings import (
    _KNOWN_SECTIONS,
    _NUMBERED,
    _REFERENCE_TITLES,
    _normal_title,
)
from ingestion.sources.paper.metadata import _DOI, _EMAIL, _URL

# pypdf raises its own errors for most damage, but built-in ones for some malformed objects;
# any of them means the file cannot be read, which is the file's problem and not a bug here.
_PDF_ERRORS = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    AssertionError,
    RecursionError,
    ZeroDivisionError,
    NotImplementedError,  # a stream filter pypdf does not support
    OSError,
    zlib.error,
)


def _effective_size(matrix: list[float], font_size: float) -> float:
    scale = abs(matrix[0] * matrix[3] - matrix[1] * matrix[2]) ** 0.5
    return font_size * (scale or 1.0)


_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)


def _line_key(text: str) -> str:
    """A line's letters and digits, for matching the same line across pypdf's two readings."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


@dataclass(slots=True)
class _TypeLine:
    """A line of a PDF page as typeset: its text, the size and weight most of it is set in, and
    its height on the page."""

    text: str
    size: float
    bold: bool
    y: float | None


class _TypeReader:
    """Collects pypdf's text runs (flushed at each line break) into lines with their type."""

    def __init__(self) -> None:
        self.lines: list[_TypeLine] = []
        self._runs: list[tuple[str, float, bool]] = []
        self._y: float | None = None

    def visit(self, text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if piece.strip():
                name = str(font.get("/BaseFont", "")) if isinstance(font, dict) else ""
                effective = _effective_size(tm, size) * _effective_size(cm, 1.0)
                self._runs.append((piece, round(effective, 1), bool(_BOLD_FONT.search(name))))
                if self._y is None:  # where the line starts, in page space
                    self._y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            if i < len(pieces) - 1:
                self.flush()

    def flush(self) -> list[_TypeLine]:
        if self._runs:
            sizes: Counter[float] = Counter()
            for piece, size, _ in self._runs:
                sizes[size] += len(piece.strip())
            letters = sum(len(piece.strip()) for piece, _, _ in self._runs)
            bold = sum(len(piece.strip()) for piece, _, b in self._runs if b)
            text = " ".join("".join(piece for piece, _, _ in self._runs).split())
            self.lines.append(_TypeLine(text, sizes.most_common(1)[0][0], bold == letters, self._y))
        self._runs, self._y = [], None
        return self.lines


def _pdf_pages(reader: pypdf.PdfReader) -> tuple[list[str], str, list[int], list[list[_TypeLine]]]:
    """Each page's text, the title set in the largest type on page 1 (if any is larger), the
    pages whose text could not be read, and each page's lines with their type."""
    typeset: list[list[_TypeLine]] = []
    pages: list[str] = []
    failed: list[int] = []
    for index, page in enumerate(reader.pages):
        lines = _TypeReader()
        try:
            pages.append(page.extract_text(visitor_text=lines.visit))
            typeset.append(lines.flush())
        except _PDF_ERRORS:
            pages.append("")  # one damaged page should not cost the rest of the paper
            typeset.append([])
            failed.append(index + 1)
    if pages and len(failed) == len(pages):
        raise FileRejected("corrupt PDF: no page could be read")

    title = ""
    weights: Counter[float] = Counter()
    fragments = [(line.text, line.size) for line in typeset[0]] if typeset else []
    for text, size in fragments:
        weights[round(size, 1)] += len(text.strip())
    if weights:
        body_size = weights.most_common(1)[0][0]
        largest = max(weights)
        if largest >= body_size * 1.2:
            parts = [text for text, size in fragments if round(size, 1) == largest]
            candidate = " ".join(" ".join(parts).split())
            if 4 <= len(candidate) <= 300 and sum(c.isalpha() for c in candidate) >= 4:
                title = candidate
    return pages, title, failed, typeset


@dataclass(frozen=True, slots=True)
class _Mark:
    """A PDF line found to be a heading (or the continuation of the one above it)."""

    level: int
    continues: bool = False


def _outline(reader: pypdf.PdfReader) -> list[tuple[int, str, int, float | None]]:
    """The outline's entries: (page index, title, depth, top of the destination or None)."""
    entries: list[tuple[int, str, int, float | None]] = []

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            page = reader.get_destination_page_number(item)
            top = item.get("/Top")
            title = " ".join(str(item.title or "").split())
            if page is not None and page >= 0 and title:
                entries.append((page, title, depth, float(top) if top is not None else None))

    try:
        walk(reader.outline, 0)
    except _PDF_ERRORS:
        return []  # a damaged outline: the type is read instead
    return entries


# A heading's number: "3", "3.2.", "IV.", "A.", "A.1".
_SECTION_NUMBER = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVX]{1,5}\.|[A-H](?:\.\d{1,2}){0,3}\.?(?=\s+[A-Z]\S))\s+"
)


def _unnumbered_key(text: str) -> str:
    return _line_key(_SECTION_NUMBER.sub("", text.strip()))


def _outline_marks(
    entries: list[tuple[int, str, int, float | None]], typeset: list[list[_TypeLine]]
) -> dict[tuple[int, str], list[_Mark]]:
    """The lines the outline points at, by (page, line key).

    The line at the destination (the first at or below its top, or at the top of the next page
    when the destination is the foot of a page) is the heading when it begins with the entry's
    title, which is often shorter ("Comparison" for "5. Comparison between packages"); else the
    first line on the page that reads as the title. A title wrapped over lines marks each.
    """
    marks: dict[tuple[int, str], list[_Mark]] = {}
    for page, title, depth, top in entries:
        lines = typeset[page] if page < len(typeset) else []
        below = [
            (page + 1, line) for line in lines if top is None or line.y is None or line.y <= top + 2
        ]
        if page + 1 < len(typeset):
            below += [(page + 2, line) for line in typeset[page + 1][:3]]
        want = _unnumbered_key(title)
        if not want:
            continue
        for i, (number, line) in enumerate(below):
            key = _unnumbered_key(line.text)
            if not key:
                continue
            found, joined = [(number, line)], key
            for following in below[i + 1 : i + 3]:  # a title wrapped over lines
                if joined == want or not want.startswith(joined):
                    break
                joined += _unnumbered_key(following[1].text)
                found.append(following)
            at_destination = i == 0 and _looks_like_heading(line.text)
            if joined != want and not (at_destination and key.startswith(want)):
                continue
            for n, (on_page, part) in enumerate(found if joined == want else found[:1]):
                marks.setdefault((on_page, _line_key(part.text)), []).append(
                    _Mark(depth + 1, continues=n > 0)
                )
            break
    return marks


def _looks_like_heading(text: str) -> bool:
    words = text.split()
    if not 1 <= len(words) <= 15 or len(text) > 120 or sum(c.isalpha() for c in text) < 3:
        return False
    if text[-1] in ",;:" or _EMAIL.search(text) or _DOI.search(text) or _URL.search(text):
        return False
    first = next((c for c in text if c.isalnum()), "")
    return first.isdigit() or first.isupper()


def _type_marks(typeset: list[list[_TypeLine]]) -> dict[tuple[int, str], list[_Mark]]:
    """Lines set apart by their type, by (page, line key): larger than the body text, or bold
    at its size (when bold is rare enough to mean something). A heading's level is its number's
    depth ("3.2" is 2), else the rank of its size; a long heading wrapped onto the next line in
    the same type continues there."""
    letters: Counter[float] = Counter()
    bold_letters = total = 0
    for lines in typeset:
        for line in lines:
            count = sum(c.isalpha() for c in line.text)
            letters[line.size] += count
            total += count
            bold_letters += count if line.bold else 0
    if not letters:
        return {}
    body = letters.most_common(1)[0][0]
    bold_means = bold_letters * 5 < total

    def style(line: _TypeLine) -> tuple[float, bool] | None:
        if line.size >= body * 1.15 or (bold_means and line.bold and line.size >= body * 0.95):
            return (line.size, line.bold)
        return None

    sizes = sorted({line.size for lines in typeset for line in lines if style(line)}, reverse=True)
    marks: dict[tuple[int, str], list[_Mark]] = {}
    for page, lines in enumerate(typeset, start=1):
        previous: tuple[_TypeLine, tuple[float, bool]] | None = None
        for line in lines:
            kind = style(line)
            if kind is None or not _looks_like_heading(line.text):
                previous = None
                continue
            numbered = _NUMBERED.match(line.text)
            continues = (
                previous is not None
                and previous[1] == kind
                and len(previous[0].text) > 30
                and not numbered
                and _normal_title(line.text) not in _KNOWN_SECTIONS | _REFERENCE_TITLES
            )
            if numbered:
                level = len(numbered.group("num").split("."))
            else:
                level = sizes.index(line.size) + 1 + (0 if line.size > body * 1.1 else 1)
            marks.setdefault((page, _line_key(line.text)), []).append(_Mark(level, continues))
            previous = (line, kind)
    return marks
